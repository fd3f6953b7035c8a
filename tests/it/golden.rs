//! The contract evolves compatibly, proven on real data: an event store
//! written by the Part 1 code (`tests/fixtures/part1`, see its README) must
//! still open, verify, answer its stored command results and rebuild to the
//! view digests recorded when it was made.

use std::path::Path;

use prost::Message;
use tepai::ops::progress::Progress;
use tepai::projection::digest::{self, TableDigest};
use tepai::store::{EventStore, StoreOptions, StoreReader};
use tepai::wire::pb;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/part1");

/// Events in the fixture: every Part 1 event kind, multi-event commits included.
const EVENTS: u64 = 46;

/// `table rows sha256-hex` lines, as `digests.txt` holds them.
fn render(digests: &[TableDigest]) -> String {
    digests
        .iter()
        .map(|t| {
            let hex: String = t.digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("{} {} {hex}\n", t.table, t.rows)
        })
        .collect()
}

#[test]
fn a_store_written_by_part_1_opens_verifies_and_rebuilds_to_the_recorded_views() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("events.db");
    std::fs::copy(Path::new(FIXTURE).join("events.db"), &store).unwrap();

    // The writer opens it, running any migration added since.
    let writer = EventStore::open(&store, StoreOptions::default()).unwrap();
    assert_eq!(writer.head().position, EVENTS);
    drop(writer);

    let reader = StoreReader::open(&store).unwrap();
    let chain = reader.verify_chain().unwrap();
    assert!(chain.is_clean(), "{:?}", chain.first_fault);
    assert_eq!(chain.events, EVENTS);

    // A resent command still gets its first answer: an acceptance of two
    // events (close-workstation ending a post) and a refusal with its rule.
    let answer = |id: &str| {
        let bytes = reader
            .command_result(&id.parse().unwrap())
            .unwrap()
            .unwrap_or_else(|| panic!("no stored result for {id}"));
        pb::CommandResult::decode(bytes.as_slice()).unwrap().outcome
    };
    match answer("7e9a1000-0009-4000-8000-0000000000d0") {
        Some(pb::command_result::Outcome::Accepted(a)) => {
            let positions: Vec<u64> = a.events.iter().map(|e| e.global_position).collect();
            assert_eq!(positions, [45, 46]);
        }
        other => panic!("expected an acceptance, got {other:?}"),
    }
    match answer("7e9a1000-0009-4000-8000-000000000021") {
        Some(pb::command_result::Outcome::Rejected(r)) => assert_eq!(r.rule, "HOURS_OVER_LIMIT"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A rebuild decodes every event (one that no longer decodes fails it).
    let views = dir.path().join("views.db");
    let mut progress = Progress::new("golden rebuild", EVENTS);
    let reached = tepai::ops::rebuild::from_store(&store, &views, None, &mut progress).unwrap();
    assert_eq!(reached, EVENTS);

    let conn = rusqlite::Connection::open(&views).unwrap();
    let rebuilt = digest::digests(&conn).unwrap();
    let recorded = std::fs::read_to_string(Path::new(FIXTURE).join("digests.txt")).unwrap();
    let rendered = render(&rebuilt);
    // Every table recorded must be unchanged; tables of views added since
    // have no recorded digest and are left to their own tests.
    let lines: Vec<&str> = recorded.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        lines.len(),
        5,
        "digests.txt holds the five Part 1 tables; rebuilt now:\n{rendered}"
    );
    for line in lines {
        assert!(
            rendered.lines().any(|r| r == line),
            "the views rebuilt from the Part 1 store differ from the recorded\n  {line}\nrebuilt now:\n{rendered}"
        );
    }
}
