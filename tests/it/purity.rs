//! Architecture invariant: the domain does no IO, knows no wire format,
//! reads no clock and draws no random numbers. Time and ids arrive in the
//! command, so a decision replays to the same answer.

/// Names the domain must not use: IO and wire crates, then clocks and
/// randomness.
const FORBIDDEN: [&str; 14] = [
    "tokio",
    "rusqlite",
    "async_nats",
    "prost",
    "axum",
    "std::fs",
    "std::net",
    "SystemTime",
    "Instant::now",
    "Utc::now",
    "Local::now",
    "new_v4",
    "now_v7",
    "rand",
];

/// The first forbidden name `line` uses in code (not in a `//` comment),
/// as a whole name: `rand::` or `rand_core` counts, `random` and
/// `operand` do not.
fn forbidden_in(line: &str) -> Option<&'static str> {
    let code = line.split("//").next().unwrap_or("");
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    FORBIDDEN.into_iter().find(|name| {
        code.match_indices(name).any(|(i, _)| {
            let before = code[..i].chars().next_back();
            let after = code[i + name.len()..].chars().next();
            !before.is_some_and(is_name) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

#[test]
fn the_guard_catches_each_forbidden_name_and_only_whole_names() {
    let caught = [
        ("use tokio::sync::mpsc;", "tokio"),
        ("use tokio_util::sync::CancellationToken;", "tokio"),
        ("let conn = rusqlite::Connection::open(path)?;", "rusqlite"),
        ("let text = std::fs::read_to_string(p)?;", "std::fs"),
        ("let now = std::time::SystemTime::now();", "SystemTime"),
        ("let started = Instant::now();", "Instant::now"),
        ("let today = chrono::Utc::now().date_naive();", "Utc::now"),
        ("let today = Local::now().date_naive();", "Local::now"),
        ("let id = uuid::Uuid::new_v4();", "new_v4"),
        ("let id = Uuid::now_v7();", "now_v7"),
        ("let n: u32 = rand::random();", "rand"),
        ("use rand_core::RngCore;", "rand"),
    ];
    for (line, name) in caught {
        assert_eq!(forbidden_in(line), Some(name), "{line}");
    }
    let allowed = [
        "let random = prop::collection::vec(op(), len);",
        "fn random_command_sequences_keep_every_rule() {",
        "let operand = 3; // tokio and rand are named only in this comment",
        "let today = command.today; // not Utc::now()",
        "pub fn decide(state: &State, today: Date) -> Result<Vec<Event>, Rejection> {",
    ];
    for line in allowed {
        assert_eq!(forbidden_in(line), None, "{line}");
    }
}

#[test]
fn the_domain_names_no_io_wire_clock_or_randomness() {
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
            if let Some(name) = forbidden_in(line) {
                panic!(
                    "{}:{}: the domain must not use {name}",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    assert!(checked >= 5, "found only {checked} domain files");
}
