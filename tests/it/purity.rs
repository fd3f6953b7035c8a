//! Architecture invariant: the domain does no IO and knows no wire format.

#[test]
fn the_domain_names_no_io_or_wire_crate() {
    let forbidden = [
        "tokio",
        "rusqlite",
        "async_nats",
        "prost",
        "axum",
        "std::fs",
        "std::net",
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut files = vec![root];
    let mut checked = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        checked += 1;
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in forbidden {
                let used = code
                    .match_indices(name)
                    .any(|(i, _)| !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
                assert!(
                    !used,
                    "{}:{}: the domain must not use {name}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    assert!(checked >= 5, "found only {checked} domain files");
}
