//! A rebuild: loaded without secondary indexes, finished into the schema
//! and rows of the live views.

use super::*;

fn schema_of(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .unwrap();
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// A rebuild loads without the secondary indexes and creates them at the
/// end, and takes the store's payloads as well as bus envelopes: the
/// finished file has the rows of the live path and the schema of a
/// migrated file, index by index.
#[test]
fn a_rebuild_has_the_rows_and_the_schema_of_the_live_views() {
    let live = fed(history().len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rebuilt.db");
    let mut rebuild = Projection::open_for_rebuild(&path).unwrap();
    let all = envelopes(&history());
    rebuild.apply_batch(&all[..10]).unwrap();
    // The rest as the store keeps it: positions and encoded payloads.
    let payloads: Vec<(u64, Vec<u8>)> = (1..)
        .zip(history())
        .skip(10)
        .map(|(position, event)| (position, wire::encode_event_payload(&event)))
        .collect();
    let outcome = rebuild
        .apply_payloads(payloads.iter().map(|(p, bytes)| (*p, bytes.as_slice())))
        .unwrap();
    assert_eq!(outcome.applied, all.len() - 10);
    assert_eq!(rebuild.finish().unwrap(), all.len() as u64);

    assert_eq!(digests_of(&path), digests_of(&live.path));
    assert_eq!(schema_of(&path), schema_of(&live.path));
}

/// A rebuild that stops before `finish` leaves a file without its
/// secondary indexes; opening it as live views puts them back.
#[test]
fn opening_an_unfinished_rebuild_restores_its_indexes() {
    let live = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rebuilt.db");
    let mut rebuild = Projection::open_for_rebuild(&path).unwrap();
    rebuild.apply_batch(&envelopes(&history())).unwrap();
    drop(rebuild);
    assert_ne!(schema_of(&path), schema_of(&live.path));

    drop(Projection::open(&path).unwrap());
    assert_eq!(schema_of(&path), schema_of(&live.path));
}
