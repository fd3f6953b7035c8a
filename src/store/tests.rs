//! Tests for the event store, all against real SQLite files in temp dirs.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use tempfile::TempDir;

use crate::store::chain::{self, GENESIS};
use crate::store::migrations;
use crate::store::{
    ChainFault, CommandRecord, Durability, EventStore, FaultKind, Head, NewEvent, StoreError,
    StoreOptions, StoreReader, StoredEvent,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn temp_store() -> Result<(TempDir, PathBuf, EventStore), StoreError> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.db");
    let store = EventStore::open(&path, StoreOptions::default())?;
    Ok((dir, path, store))
}

fn event(position: u64, stream: &str, version: u64) -> NewEvent {
    NewEvent {
        position,
        event_id: uuid::Uuid::now_v7(),
        stream_id: stream.to_owned(),
        stream_version: version,
        event_type: format!("Thing{version}Happened"),
        schema_version: 3,
        payload: format!("payload of {stream}#{version}").into_bytes(),
        correlation_id: format!("corr-{position}"),
        causation_id: format!("cause-{position}"),
        actor: "commissioner:7".to_owned(),
        recorded_at: 1_700_000_000_000 + i64::try_from(position).unwrap_or(0),
    }
}

fn command(result: &[u8]) -> CommandRecord {
    CommandRecord {
        command_id: uuid::Uuid::new_v4(),
        result: result.to_vec(),
        recorded_at: 1_700_000_000_123,
    }
}

/// Appends `n` events spread over three streams, continuing the head.
fn append_n(store: &mut EventStore, n: u64) -> Result<Head, StoreError> {
    let start = store.head().position;
    let events: Vec<NewEvent> = (start + 1..=start + n)
        .map(|p| event(p, &format!("stream-{}", p % 3), p))
        .collect();
    store.append(&events, &[])
}

fn stored(new: &NewEvent, hash: [u8; 32]) -> StoredEvent {
    StoredEvent {
        position: new.position,
        event_id: new.event_id,
        stream_id: new.stream_id.clone(),
        stream_version: new.stream_version,
        event_type: new.event_type.clone(),
        schema_version: new.schema_version,
        payload: new.payload.clone(),
        correlation_id: new.correlation_id.clone(),
        causation_id: new.causation_id.clone(),
        actor: new.actor.clone(),
        recorded_at: new.recorded_at,
        hash,
    }
}

/// A raw connection with the append-only triggers removed, to simulate tampering.
fn tamper(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.execute_batch("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;")?;
    Ok(conn)
}

fn count_rows(path: &Path, table: &str) -> Result<i64, rusqlite::Error> {
    let conn = Connection::open(path)?;
    let sql = match table {
        "events" => "SELECT count(*) FROM events",
        _ => "SELECT count(*) FROM commands",
    };
    conn.query_row(sql, [], |row| row.get(0))
}

#[test]
fn empty_store_has_genesis_head() -> TestResult {
    let (_dir, _path, store) = temp_store()?;
    assert_eq!(
        store.head(),
        Head {
            position: 0,
            hash: [0; 32]
        }
    );
    assert!(store.read_from(0, 100)?.is_empty());
    let report = store.verify_chain()?;
    assert_eq!(report.events, 0);
    assert_eq!(report.head, Head::EMPTY);
    assert!(report.is_clean());
    Ok(())
}

#[test]
fn append_and_read_round_trip_all_fields() -> TestResult {
    let (_dir, _path, mut store) = temp_store()?;
    let mut e1 = event(1, "case-1", 1);
    // Non-ASCII text, empty and binary payloads, negative time must all survive.
    e1.actor = "委员 Ünïcode".to_owned();
    e1.payload = vec![0, 255, 1, 254];
    e1.recorded_at = -42;
    e1.schema_version = u32::MAX;
    let mut e2 = event(2, "case-1", 2);
    e2.payload = Vec::new();
    e2.causation_id = String::new();
    let e3 = event(3, "case-2", 1);

    let head = store.append(&[e1.clone(), e2.clone(), e3.clone()], &[])?;

    let h1 = chain::link_hash(&GENESIS, &e1.fields());
    let h2 = chain::link_hash(&h1, &e2.fields());
    let h3 = chain::link_hash(&h2, &e3.fields());
    assert_eq!(
        head,
        Head {
            position: 3,
            hash: h3
        }
    );
    assert_eq!(store.head(), head);

    assert_eq!(
        store.read_stream("case-1")?,
        vec![stored(&e1, h1), stored(&e2, h2)]
    );
    assert_eq!(store.read_stream("case-2")?, vec![stored(&e3, h3)]);
    assert!(store.read_stream("nope")?.is_empty());
    assert_eq!(
        store.read_from(0, 10)?,
        vec![stored(&e1, h1), stored(&e2, h2), stored(&e3, h3)]
    );
    Ok(())
}

#[test]
fn read_stream_orders_by_version_not_position() -> TestResult {
    let (_dir, _path, mut store) = temp_store()?;
    // Versions deliberately out of position order within the stream.
    let a = event(1, "s", 2);
    let b = event(2, "s", 1);
    store.append(&[a, b], &[])?;
    let versions: Vec<u64> = store
        .read_stream("s")?
        .iter()
        .map(|e| e.stream_version)
        .collect();
    assert_eq!(versions, vec![1, 2]);
    Ok(())
}

#[test]
fn duplicate_stream_version_in_batch_writes_nothing() -> TestResult {
    let (_dir, path, mut store) = temp_store()?;
    append_n(&mut store, 2)?;
    let before = store.head();

    let batch = vec![
        event(3, "alpha", 1),
        event(4, "beta", 1),
        event(5, "alpha", 1), // duplicate (alpha, 1)
    ];
    let cmd = command(b"ok");
    let err = store.append(&batch, std::slice::from_ref(&cmd));
    assert!(matches!(err, Err(StoreError::Sqlite(_))), "got {err:?}");
    assert_eq!(store.head(), before);
    assert_eq!(store.read_from(2, 100)?, Vec::new());
    assert_eq!(store.command_result(&cmd.command_id)?, None);
    assert_eq!(count_rows(&path, "events")?, 2);

    // The store is still usable and continues from the unchanged head.
    let good = vec![event(3, "alpha", 1), event(4, "beta", 1)];
    let head = store.append(&good, std::slice::from_ref(&cmd))?;
    assert_eq!(head.position, 4);
    assert_eq!(store.read_from(2, 100)?.len(), 2);
    assert_eq!(store.command_result(&cmd.command_id)?, Some(b"ok".to_vec()));
    assert!(store.verify_chain()?.is_clean());
    Ok(())
}

#[test]
fn duplicate_event_id_in_batch_writes_nothing() -> TestResult {
    let (_dir, path, mut store) = temp_store()?;
    let first = event(1, "alpha", 1);
    let mut second = event(2, "beta", 1);
    second.event_id = first.event_id;
    let err = store.append(&[first, second], &[]);
    assert!(matches!(err, Err(StoreError::Sqlite(_))), "got {err:?}");
    assert_eq!(store.head(), Head::EMPTY);
    assert_eq!(count_rows(&path, "events")?, 0);

    let head = store.append(&[event(1, "alpha", 1), event(2, "beta", 1)], &[])?;
    assert_eq!(head.position, 2);
    Ok(())
}

#[test]
fn conflict_with_already_stored_version_is_rejected() -> TestResult {
    let (_dir, _path, mut store) = temp_store()?;
    store.append(&[event(1, "alpha", 1)], &[])?;
    let before = store.head();
    let err = store.append(&[event(2, "beta", 1), event(3, "alpha", 1)], &[]);
    assert!(matches!(err, Err(StoreError::Sqlite(_))), "got {err:?}");
    assert_eq!(store.head(), before);
    assert!(store.read_stream("beta")?.is_empty());
    Ok(())
}

#[test]
fn position_gap_is_rejected_before_writing() -> TestResult {
    let (_dir, path, mut store) = temp_store()?;
    // Must start at head + 1.
    let err = store.append(&[event(2, "a", 1)], &[]);
    assert!(
        matches!(
            err,
            Err(StoreError::PositionGap {
                expected: 1,
                got: 2
            })
        ),
        "got {err:?}"
    );
    // Must be consecutive; the valid prefix is not written either.
    let err = store.append(&[event(1, "a", 1), event(3, "a", 2)], &[command(b"x")]);
    assert!(
        matches!(
            err,
            Err(StoreError::PositionGap {
                expected: 2,
                got: 3
            })
        ),
        "got {err:?}"
    );
    // Re-using an existing position is a gap too.
    store.append(&[event(1, "a", 1)], &[])?;
    let err = store.append(&[event(1, "a", 2)], &[]);
    assert!(
        matches!(
            err,
            Err(StoreError::PositionGap {
                expected: 2,
                got: 1
            })
        ),
        "got {err:?}"
    );
    assert_eq!(store.head().position, 1);
    assert_eq!(count_rows(&path, "events")?, 1);
    assert_eq!(count_rows(&path, "commands")?, 0);
    Ok(())
}

#[test]
fn command_results_round_trip_and_duplicates_fail() -> TestResult {
    let (_dir, path, mut store) = temp_store()?;
    let c1 = command(b"result one");
    let c2 = command(b"");
    store.append(&[event(1, "a", 1)], &[c1.clone(), c2.clone()])?;
    assert_eq!(
        store.command_result(&c1.command_id)?,
        Some(c1.result.clone())
    );
    assert_eq!(store.command_result(&c2.command_id)?, Some(Vec::new()));
    assert_eq!(store.command_result(&uuid::Uuid::new_v4())?, None);

    // A command-only append (e.g. a rejected command) needs no events.
    let c3 = command(b"rejected");
    assert_eq!(store.append(&[], std::slice::from_ref(&c3))?.position, 1);
    assert_eq!(
        store.command_result(&c3.command_id)?,
        Some(c3.result.clone())
    );

    // Duplicate within one batch: nothing written, events included.
    let dup = command(b"first");
    let mut dup2 = command(b"second");
    dup2.command_id = dup.command_id;
    let err = store.append(&[event(2, "a", 2)], &[dup.clone(), dup2]);
    assert!(matches!(err, Err(StoreError::Sqlite(_))), "got {err:?}");
    assert_eq!(store.command_result(&dup.command_id)?, None);
    assert_eq!(store.head().position, 1);
    assert_eq!(count_rows(&path, "events")?, 1);

    // Duplicate of an already recorded command.
    let mut again = command(b"other");
    again.command_id = c1.command_id;
    let err = store.append(&[event(2, "a", 2)], &[again]);
    assert!(matches!(err, Err(StoreError::Sqlite(_))), "got {err:?}");
    assert_eq!(store.command_result(&c1.command_id)?, Some(c1.result));
    assert_eq!(store.head().position, 1);
    Ok(())
}

#[test]
fn reopen_restores_head_and_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    // Parent directories are created on demand.
    let path = dir.path().join("nested/deeper/events.db");
    let head = {
        let mut store = EventStore::open(&path, StoreOptions::default())?;
        append_n(&mut store, 5)?
    };
    let mut store = EventStore::open(&path, StoreOptions::default())?;
    assert_eq!(store.head(), head);
    // Appending after reopen continues the same chain.
    append_n(&mut store, 3)?;
    let report = store.verify_chain()?;
    assert!(report.is_clean(), "{:?}", report.first_fault);
    assert_eq!(report.events, 8);
    assert_eq!(report.head, store.head());
    Ok(())
}

#[test]
fn durability_option_sets_synchronous() -> TestResult {
    let dir = tempfile::tempdir()?;
    let full = EventStore::open(&dir.path().join("full.db"), StoreOptions::default())?;
    let normal = EventStore::open(
        &dir.path().join("normal.db"),
        StoreOptions {
            durability: Durability::Normal,
            ..StoreOptions::default()
        },
    )?;
    let sync = |s: &EventStore| -> Result<i64, rusqlite::Error> {
        s.conn.pragma_query_value(None, "synchronous", |r| r.get(0))
    };
    assert_eq!(sync(&full)?, 2);
    assert_eq!(sync(&normal)?, 1);
    let mode: String = full
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    assert_eq!(mode, "wal");
    Ok(())
}

#[test]
fn verify_chain_is_clean_on_good_store() -> TestResult {
    let (_dir, _path, mut store) = temp_store()?;
    append_n(&mut store, 10)?;
    append_n(&mut store, 7)?;
    let report = store.verify_chain()?;
    assert_eq!(report.first_fault, None);
    assert_eq!(report.events, 17);
    assert_eq!(report.head, store.head());
    Ok(())
}

#[test]
fn corrupted_payload_byte_is_found_at_its_position() -> TestResult {
    let (_dir, path, mut store) = temp_store()?;
    append_n(&mut store, 6)?;
    let raw = tamper(&path)?;
    let payload: Vec<u8> =
        raw.query_row("SELECT payload FROM events WHERE position = 4", [], |r| {
            r.get(0)
        })?;
    let mut flipped = payload.clone();
    flipped[0] ^= 0x01;
    raw.execute(
        "UPDATE events SET payload = ?1 WHERE position = 4",
        [&flipped],
    )?;

    let report = store.verify_chain()?;
    assert_eq!(
        report.first_fault,
        Some(ChainFault {
            position: 4,
            problem: FaultKind::HashMismatch
        })
    );
    assert_eq!(report.events, 6);
    let message = report
        .first_fault
        .map(|f| f.to_string())
        .unwrap_or_default();
    assert_eq!(
        message,
        "position 4: stored hash does not match its contents or predecessor"
    );
    Ok(())
}

#[test]
fn any_changed_column_is_found_at_its_position() -> TestResult {
    // Each statement changes one stored column of event 3 of 5.
    let cases: &[(&str, &str)] = &[
        (
            "event_id",
            "UPDATE events SET event_id = randomblob(16) WHERE position = 3",
        ),
        (
            "stream_id",
            "UPDATE events SET stream_id = stream_id || 'x' WHERE position = 3",
        ),
        (
            "stream_version",
            "UPDATE events SET stream_version = stream_version + 1000 WHERE position = 3",
        ),
        (
            "event_type",
            "UPDATE events SET event_type = 'Other' WHERE position = 3",
        ),
        (
            "schema_version",
            "UPDATE events SET schema_version = schema_version + 1 WHERE position = 3",
        ),
        (
            "payload",
            "UPDATE events SET payload = CAST(payload || x'00' AS BLOB) WHERE position = 3",
        ),
        (
            "correlation_id",
            "UPDATE events SET correlation_id = 'forged' WHERE position = 3",
        ),
        (
            "causation_id",
            "UPDATE events SET causation_id = 'forged' WHERE position = 3",
        ),
        (
            "actor",
            "UPDATE events SET actor = 'mallory' WHERE position = 3",
        ),
        (
            "recorded_at",
            "UPDATE events SET recorded_at = recorded_at + 1 WHERE position = 3",
        ),
        (
            "hash",
            "UPDATE events SET hash = zeroblob(32) WHERE position = 3",
        ),
        // Moving bytes between adjacent string fields keeps the concatenation
        // equal; only the length prefixes tell the two apart.
        (
            "correlation/causation boundary",
            "UPDATE events SET correlation_id = correlation_id || substr(causation_id, 1, 1), \
             causation_id = substr(causation_id, 2) WHERE position = 3",
        ),
    ];
    for (column, sql) in cases {
        let (_dir, path, mut store) = temp_store()?;
        append_n(&mut store, 5)?;
        assert_eq!(tamper(&path)?.execute(sql, [])?, 1, "{column}");
        let report = store.verify_chain()?;
        assert_eq!(
            report.first_fault,
            Some(ChainFault {
                position: 3,
                problem: FaultKind::HashMismatch
            }),
            "changing {column}"
        );
    }
    Ok(())
}

#[test]
fn malformed_row_is_a_fault_not_an_abort() -> TestResult {
    let (_dir, path, mut store) = temp_store()?;
    append_n(&mut store, 4)?;
    let raw = tamper(&path)?;
    // The CHECK constraints would refuse this; tampering bypasses them too.
    raw.execute_batch(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE events SET event_id = x'0102' WHERE position = 2;",
    )?;
    let report = store.verify_chain()?;
    let fault = report.first_fault.ok_or("expected a fault")?;
    assert_eq!(fault.position, 2);
    assert!(
        matches!(&fault.problem, FaultKind::Malformed(reason) if reason.contains("event_id is 2 bytes")),
        "{fault}"
    );
    assert_eq!(report.events, 4);
    // Ordinary reads surface the same problem as an error.
    let err = store.read_from(0, 10);
    assert!(matches!(err, Err(StoreError::Corrupt(_))), "got {err:?}");
    Ok(())
}

#[test]
fn deleted_row_shows_as_gap() -> TestResult {
    let (_dir, path, mut store) = temp_store()?;
    append_n(&mut store, 5)?;
    tamper(&path)?.execute("DELETE FROM events WHERE position = 3", [])?;
    let report = store.verify_chain()?;
    // Detected at the next row present, naming the missing position.
    let fault = report.first_fault.ok_or("expected a gap")?;
    assert_eq!(
        fault,
        ChainFault {
            position: 4,
            problem: FaultKind::Gap { expected: 3 }
        }
    );
    assert!(fault
        .to_string()
        .starts_with("position 4: expected position 3"));
    assert_eq!(report.events, 4);

    // Losing the first event is a gap as well.
    let (_dir2, path2, mut store2) = temp_store()?;
    append_n(&mut store2, 2)?;
    tamper(&path2)?.execute("DELETE FROM events WHERE position = 1", [])?;
    assert_eq!(
        store2.verify_chain()?.first_fault,
        Some(ChainFault {
            position: 2,
            problem: FaultKind::Gap { expected: 1 }
        })
    );
    Ok(())
}

#[test]
fn triggers_refuse_update_and_delete() -> TestResult {
    let (_dir, path, mut store) = temp_store()?;
    append_n(&mut store, 2)?;
    let raw = Connection::open(&path)?;
    for sql in [
        "UPDATE events SET payload = x'00' WHERE position = 1",
        "DELETE FROM events WHERE position = 2",
        "DELETE FROM events",
    ] {
        match raw.execute(sql, []) {
            Ok(n) => panic!("{sql} succeeded, changed {n} rows"),
            Err(err) => assert!(
                err.to_string().contains("events are append-only"),
                "{sql}: {err}"
            ),
        }
    }
    assert_eq!(count_rows(&path, "events")?, 2);
    assert!(store.verify_chain()?.is_clean());
    Ok(())
}

#[test]
fn read_from_pages_with_limit() -> TestResult {
    let (_dir, _path, mut store) = temp_store()?;
    append_n(&mut store, 10)?;
    let mut after = 0;
    let mut pages = Vec::new();
    loop {
        let page = store.read_from(after, 4)?;
        let Some(last) = page.last() else { break };
        after = last.position;
        pages.push(page.iter().map(|e| e.position).collect::<Vec<_>>());
    }
    assert_eq!(pages, vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9, 10]]);
    assert!(store.read_from(0, 0)?.is_empty());
    assert!(store.read_from(10, 5)?.is_empty());
    assert!(store.read_from(u64::MAX, 5)?.is_empty());
    assert_eq!(store.read_from(7, usize::MAX)?.len(), 3);
    Ok(())
}

#[test]
fn for_each_from_streams_in_order_and_stops_on_error() -> TestResult {
    let (_dir, _path, mut store) = temp_store()?;
    append_n(&mut store, 6)?;
    let mut seen = Vec::new();
    store.for_each_from(2, |e| -> Result<(), StoreError> {
        seen.push(e.position);
        Ok(())
    })?;
    assert_eq!(seen, vec![3, 4, 5, 6]);

    #[derive(Debug)]
    enum AppError {
        Store(StoreError),
        Stop(u64),
    }
    impl From<StoreError> for AppError {
        fn from(err: StoreError) -> Self {
            AppError::Store(err)
        }
    }
    let mut calls = 0;
    let result = store.for_each_from(0, |e| {
        calls += 1;
        if e.position == 3 {
            Err(AppError::Stop(e.position))
        } else {
            Ok(())
        }
    });
    assert!(matches!(result, Err(AppError::Stop(3))), "got {result:?}");
    assert_eq!(calls, 3);
    if let Err(AppError::Store(err)) = result {
        panic!("unexpected store error {err}");
    }
    Ok(())
}

#[test]
fn reader_sees_what_the_writer_committed() -> TestResult {
    let (_dir, path, mut store) = temp_store()?;
    let reader = StoreReader::open(&path)?;
    assert_eq!(reader.head()?, Head::EMPTY);

    let c = command(b"done");
    let e1 = event(1, "x", 1);
    store.append(&[e1.clone(), event(2, "y", 1)], std::slice::from_ref(&c))?;
    assert_eq!(reader.head()?, store.head());
    assert_eq!(reader.read_stream("x")?, store.read_stream("x")?);
    assert_eq!(reader.read_stream("x")?[0].event_id, e1.event_id);
    assert_eq!(reader.read_from(0, 10)?, store.read_from(0, 10)?);
    assert_eq!(
        reader.command_result(&c.command_id)?,
        Some(b"done".to_vec())
    );
    let mut n = 0;
    reader.for_each_from(0, |_| -> Result<(), StoreError> {
        n += 1;
        Ok(())
    })?;
    assert_eq!(n, 2);
    assert_eq!(reader.verify_chain()?, store.verify_chain()?);

    // While a reader is mid-scan, the writer can still commit (WAL), and the
    // scan keeps its snapshot.
    let mut scanned = Vec::new();
    reader.for_each_from(0, |e| -> Result<(), StoreError> {
        if e.position == 1 {
            append_n(&mut store, 3)?;
        }
        scanned.push(e.position);
        Ok(())
    })?;
    assert_eq!(scanned, vec![1, 2]);
    assert_eq!(reader.head()?.position, 5);
    Ok(())
}

#[test]
fn reader_cannot_write() -> TestResult {
    let (_dir, path, _store) = temp_store()?;
    let reader = StoreReader::open(&path)?;
    let err = reader
        .conn
        .execute("INSERT INTO commands VALUES (zeroblob(16), x'', 0)", []);
    assert!(err.is_err());
    Ok(())
}

#[test]
fn schema_too_new_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.db");
    drop(EventStore::open(&path, StoreOptions::default())?);
    Connection::open(&path)?.pragma_update(None, "user_version", 99)?;

    let known = migrations::latest_version();
    let err = EventStore::open(&path, StoreOptions::default());
    assert!(
        matches!(err, Err(StoreError::SchemaTooNew { found: 99, known: k }) if k == known),
        "got {err:?}"
    );
    let err = StoreReader::open(&path);
    assert!(
        matches!(err, Err(StoreError::SchemaTooNew { found: 99, .. })),
        "got {err:?}"
    );
    Ok(())
}

#[test]
fn migrations_record_the_latest_version() -> TestResult {
    let (_dir, path, _store) = temp_store()?;
    let conn = Connection::open(&path)?;
    assert_eq!(
        migrations::current_version(&conn)?,
        migrations::latest_version()
    );
    assert_eq!(migrations::latest_version(), 1);
    Ok(())
}

#[test]
fn canonical_encoding_is_length_prefixed_and_big_endian() {
    let id = [7u8; 16];
    let fields = chain::EventFields {
        position: 1,
        event_id: &id,
        stream_id: "ab",
        stream_version: 2,
        event_type: "",
        schema_version: 3,
        payload: &[9],
        correlation_id: "c",
        causation_id: "d",
        actor: "e",
        recorded_at: -1,
    };
    let mut expected = Vec::new();
    expected.extend_from_slice(&1u64.to_be_bytes());
    expected.extend_from_slice(&id);
    expected.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
    expected.extend_from_slice(&2u64.to_be_bytes());
    expected.extend_from_slice(&[0, 0, 0, 0]);
    expected.extend_from_slice(&3u32.to_be_bytes());
    expected.extend_from_slice(&[0, 0, 0, 1, 9]);
    expected.extend_from_slice(&[0, 0, 0, 1, b'c']);
    expected.extend_from_slice(&[0, 0, 0, 1, b'd']);
    expected.extend_from_slice(&[0, 0, 0, 1, b'e']);
    expected.extend_from_slice(&[0xff; 8]);
    assert_eq!(chain::canonical(&fields), expected);

    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update([1u8; 32]);
    hasher.update(&expected);
    let direct: [u8; 32] = hasher.finalize().into();
    assert_eq!(chain::link_hash(&[1u8; 32], &fields), direct);
}

#[test]
fn a_chain_hash_round_trips_through_hex_and_bad_digits_are_refused() {
    let hash: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
    let text = chain::hash_to_hex(&hash);
    assert_eq!(&text[..8], "00254a6f", "lower case, two digits a byte");
    assert_eq!(text.len(), 64);
    assert_eq!(chain::hash_from_hex(&text), Ok(hash));
    assert_eq!(chain::hash_from_hex(&text.to_uppercase()), Ok(hash));
    assert_eq!(
        chain::hash_from_hex(&text[..62]),
        Err("62 characters".to_owned())
    );
    assert_eq!(
        chain::hash_from_hex(&format!("{}zz", &text[..62])),
        Err("'z' is not a hex digit".to_owned())
    );
}

#[test]
fn large_batch_is_one_transaction() -> TestResult {
    let (_dir, _path, mut store) = temp_store()?;
    let head = append_n(&mut store, 5_000)?;
    assert_eq!(head.position, 5_000);
    assert_eq!(store.verify_chain()?.events, 5_000);
    Ok(())
}

#[test]
fn a_background_checkpoint_copies_the_wal_the_writer_left() -> Result<(), Box<dyn std::error::Error>>
{
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.db");
    let mut store = EventStore::open(
        &path,
        StoreOptions {
            background_checkpoint: true,
            ..StoreOptions::default()
        },
    )?;
    let autocheckpoint: i64 = store
        .conn
        .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))?;
    assert_eq!(autocheckpoint, 0);
    let events: Vec<NewEvent> = (1..=200).map(|p| event(p, &format!("s-{p}"), 1)).collect();
    store.append(&events, &[])?;
    assert_eq!(super::checkpoint(&path)?, 0, "every frame copied");
    assert_eq!(StoreReader::open(&path)?.head()?.position, 200);
    Ok(())
}

/// The relay reads after every commit with a new `LIMIT`-bound position:
/// its cached statement must be planned once, not compiled again at every
/// bind (SQLite plans a bound `LIMIT` by its value unless told not to).
#[test]
fn read_from_is_not_recompiled_at_each_call() -> TestResult {
    let (_dir, path, mut store) = temp_store()?;
    append_n(&mut store, 10)?;
    let reader = StoreReader::open(&path)?;
    for (after, limit) in [(0, 3), (3, 5), (8, 1024), (9, 1)] {
        let events = reader.read_from(after, limit)?;
        assert_eq!(events.first().map(|e| e.position), Some(after + 1));
    }
    let reprepared = reader
        .conn
        .prepare_cached(super::SELECT_FROM_LIMIT)?
        .get_status(rusqlite::StatementStatus::RePrepare);
    assert_eq!(reprepared, 0);
    Ok(())
}
