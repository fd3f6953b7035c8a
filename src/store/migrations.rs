//! Versioned schema migrations for the event store.
//!
//! The schema version lives in SQLite's `PRAGMA user_version`: migration `i`
//! (0-based in [`MIGRATIONS`]) moves the database from version `i` to `i + 1`.
//! Each migration runs in its own transaction together with the version bump,
//! so a crash mid-migration leaves the database at the previous version rather
//! than half-migrated. Migrations are append-only: never edit a released one,
//! add a new entry instead.

use rusqlite::{Connection, TransactionBehavior};

use crate::store::StoreError;

/// Migration 1: the events table, the command log and the append-only triggers.
const V1: &str = "
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    event_id       BLOB    NOT NULL UNIQUE CHECK (length(event_id) = 16),
    stream_id      TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        BLOB    NOT NULL,
    correlation_id TEXT    NOT NULL,
    causation_id   TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    hash           BLOB    NOT NULL CHECK (length(hash) = 32),
    UNIQUE (stream_id, stream_version)
);

CREATE TABLE commands (
    command_id  BLOB    PRIMARY KEY CHECK (length(command_id) = 16),
    result      BLOB    NOT NULL,
    recorded_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
";

/// All migrations, in the order they are applied. The schema version a
/// database reaches after all of them is `MIGRATIONS.len()`.
pub const MIGRATIONS: &[&str] = &[V1];

/// The schema version this code writes and understands.
pub fn latest_version() -> i64 {
    // The list is a handful of entries, far below i64::MAX.
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Reads the schema version recorded in the database.
pub fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Fails with [`StoreError::SchemaTooNew`] if the database was written by a
/// newer build than this one.
pub fn ensure_not_too_new(conn: &Connection) -> Result<i64, StoreError> {
    let found = current_version(conn)?;
    let known = latest_version();
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    Ok(found)
}

/// Brings the database up to [`latest_version`], applying each missing
/// migration in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    if ensure_not_too_new(conn)? == latest_version() {
        // Up to date: don't take the write lock on every open.
        return Ok(());
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let target = i64::try_from(index + 1).unwrap_or(i64::MAX);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the write lock: another process may have migrated
        // between our first look and taking the lock.
        let found = current_version(&tx)?;
        if found > latest_version() {
            return Err(StoreError::SchemaTooNew {
                found,
                known: latest_version(),
            });
        }
        if found >= target {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        tracing::info!(version = target, "applied event store migration");
    }
    Ok(())
}
