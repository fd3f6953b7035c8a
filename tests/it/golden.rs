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

    // Each recorded table must hold the same rows in its recorded columns.
    // Columns and tables of views added since are not recorded: their own
    // tests cover them.
    let recorded = std::fs::read_to_string(Path::new(FIXTURE).join("digests.txt")).unwrap();
    let lines: Vec<&str> = recorded.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 5, "digests.txt holds the five Part 1 tables");
    for line in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        let [table, _, _, columns] = fields[..] else {
            panic!("digests.txt: not `table rows sha256 columns`: {line}");
        };
        let now = digest_line(&views, table, columns);
        assert_eq!(
            now, line,
            "the views rebuilt from the Part 1 store differ from the recorded ones"
        );
    }
}

/// The `table rows sha256 columns` line of `table` in the views at `views`,
/// over `columns` only (comma-separated): the digest of a scratch table
/// holding just those columns, in that order.
fn digest_line(views: &Path, table: &str, columns: &str) -> String {
    let scratch = rusqlite::Connection::open_in_memory().unwrap();
    scratch
        .execute("ATTACH DATABASE ?1 AS views", [views.to_str().unwrap()])
        .unwrap();
    scratch
        .execute_batch(&format!(
            "CREATE TABLE {table} AS SELECT {columns} FROM views.{table}"
        ))
        .unwrap();
    let [TableDigest { rows, digest, .. }] = &digest::digests(&scratch).unwrap()[..] else {
        panic!("the scratch database holds one table");
    };
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{table} {rows} {hex} {columns}")
}
