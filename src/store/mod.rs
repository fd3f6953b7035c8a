//! The SQLite event store: an append-only, hash-chained log of events plus the
//! command log used for idempotency.
//!
//! [`EventStore`] owns the single write connection; [`StoreReader`] opens
//! read-only connections that, thanks to WAL, never block the writer. Both
//! share the read paths, which are free functions over a [`Connection`].
//!
//! Positions are global and dense (1, 2, 3, ...); the caller assigns them and
//! [`EventStore::append`] refuses anything that does not continue the head.
//! Every event carries `hash_n = SHA-256(hash_{n-1} || canonical(event_n))`
//! (see [`chain`]), and triggers make the `events` table refuse UPDATE and
//! DELETE, so tampering needs deliberate effort and is caught by
//! [`EventStore::verify_chain`].

pub mod chain;
pub mod checkpointer;
pub mod migrations;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use crate::store::chain::{walk_chain, EventFields, GENESIS};

/// Global position of an event. The first event is 1; 0 means "before any event".
pub type Position = u64;

/// How long a connection waits on a lock held by another connection before
/// giving up with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Column list shared by every query that materialises a [`StoredEvent`];
/// [`decode_event`] relies on this order. A macro so the queries below can be
/// assembled at compile time with `concat!`.
macro_rules! event_columns {
    () => {
        "position, event_id, stream_id, stream_version, event_type, schema_version, \
         payload, correlation_id, causation_id, actor, recorded_at, hash"
    };
}

const SELECT_STREAM: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE stream_id = ?1 ORDER BY stream_version"
);

const SELECT_FROM_LIMIT: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
);

const SELECT_FROM: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE position > ?1 ORDER BY position"
);

const SELECT_ALL: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events ORDER BY position"
);

const INSERT_EVENT: &str = "INSERT INTO events (position, event_id, stream_id, stream_version, \
     event_type, schema_version, payload, correlation_id, causation_id, actor, recorded_at, hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

const INSERT_COMMAND: &str =
    "INSERT INTO commands (command_id, result, recorded_at) VALUES (?1, ?2, ?3)";

const SELECT_COMMAND: &str = "SELECT result FROM commands WHERE command_id = ?1";

const SELECT_HEAD: &str = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1";

/// An event as handed to [`EventStore::append`]; the store adds the hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Global position; must be exactly one past the previous event.
    pub position: Position,
    /// Globally unique event id.
    pub event_id: uuid::Uuid,
    /// Stream (aggregate) the event belongs to.
    pub stream_id: String,
    /// Version within the stream; unique per stream.
    pub stream_version: u64,
    /// Event type name.
    pub event_type: String,
    /// Schema version of `payload`, for upcasting.
    pub schema_version: u32,
    /// Encoded event body.
    pub payload: Vec<u8>,
    /// Id tying together everything caused by one external request.
    pub correlation_id: String,
    /// Id of the command or event that directly caused this one.
    pub causation_id: String,
    /// Who caused the event.
    pub actor: String,
    /// Unix time in milliseconds.
    pub recorded_at: i64,
}

impl NewEvent {
    /// The hashed view of this event.
    pub fn fields(&self) -> EventFields<'_> {
        EventFields {
            position: self.position,
            event_id: self.event_id.as_bytes(),
            stream_id: &self.stream_id,
            stream_version: self.stream_version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: &self.payload,
            correlation_id: &self.correlation_id,
            causation_id: &self.causation_id,
            actor: &self.actor,
            recorded_at: self.recorded_at,
        }
    }
}

/// An event as read back from the store, with its chained hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Global position.
    pub position: Position,
    /// Globally unique event id.
    pub event_id: uuid::Uuid,
    /// Stream (aggregate) the event belongs to.
    pub stream_id: String,
    /// Version within the stream.
    pub stream_version: u64,
    /// Event type name.
    pub event_type: String,
    /// Schema version of `payload`.
    pub schema_version: u32,
    /// Encoded event body.
    pub payload: Vec<u8>,
    /// Correlation id.
    pub correlation_id: String,
    /// Causation id.
    pub causation_id: String,
    /// Who caused the event.
    pub actor: String,
    /// Unix time in milliseconds.
    pub recorded_at: i64,
    /// `SHA-256(previous hash || canonical(this event))`.
    pub hash: [u8; 32],
}

impl StoredEvent {
    /// The hashed view of this event.
    pub fn fields(&self) -> EventFields<'_> {
        EventFields {
            position: self.position,
            event_id: self.event_id.as_bytes(),
            stream_id: &self.stream_id,
            stream_version: self.stream_version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: &self.payload,
            correlation_id: &self.correlation_id,
            causation_id: &self.causation_id,
            actor: &self.actor,
            recorded_at: self.recorded_at,
        }
    }
}

/// The outcome of a handled command, kept so a retried command returns the
/// same result instead of running twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRecord {
    /// Client-chosen id of the command.
    pub command_id: uuid::Uuid,
    /// Encoded result to replay on retry.
    pub result: Vec<u8>,
    /// Unix time in milliseconds.
    pub recorded_at: i64,
}

/// How hard a commit insists on reaching the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// `PRAGMA synchronous=FULL`: a committed append survives power loss.
    #[default]
    Full,
    /// `PRAGMA synchronous=NORMAL`: the database stays consistent, but the
    /// last commits may be lost on power loss (not on a process crash).
    Normal,
}

impl Durability {
    /// The value for `PRAGMA synchronous`.
    fn pragma_value(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// Options for [`EventStore::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct StoreOptions {
    /// Commit durability.
    pub durability: Durability,
    /// Leave WAL checkpoints to [`checkpoint`] on another thread instead of
    /// running them inside the writer's commits, where each one stalls
    /// every command of its batch.
    pub background_checkpoint: bool,
}

/// Copies committed WAL frames into the database file from a connection of
/// its own (PASSIVE: never waits for, nor blocks, the writer or readers).
/// Returns the WAL frames still not copied. For a writer opened with
/// `background_checkpoint`; call it periodically.
pub fn checkpoint(path: &Path) -> Result<i64, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let (_busy, log, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    Ok(log - copied)
}

/// The last event in the store: where the next append continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Position of the last event, 0 when empty.
    pub position: Position,
    /// Hash of the last event, all zeros when empty.
    pub hash: [u8; 32],
}

impl Head {
    /// The head of an empty store.
    pub const EMPTY: Head = Head {
        position: 0,
        hash: GENESIS,
    };
}

/// Result of walking the whole chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// Number of event rows walked.
    pub events: u64,
    /// Position and stored hash of the last row walked.
    pub head: Head,
    /// The first place where the chain does not hold, if any.
    pub first_fault: Option<ChainFault>,
}

impl ChainReport {
    /// True when no fault was found.
    pub fn is_clean(&self) -> bool {
        self.first_fault.is_none()
    }
}

/// Where and how the chain breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFault {
    /// Position of the row at which the fault was detected.
    pub position: Position,
    /// What is wrong there.
    pub problem: FaultKind,
}

impl fmt::Display for ChainFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "position {}: {}", self.position, self.problem)
    }
}

/// The kinds of chain fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The row found does not follow its predecessor: rows from `expected` up
    /// to the found position minus one are missing.
    Gap {
        /// The position that should have come next.
        expected: Position,
    },
    /// The stored hash does not match the row's contents and its predecessor's hash.
    HashMismatch,
    /// The row cannot be decoded at all (wrong blob length, wrong column type,
    /// out-of-range integer), so it cannot be what was hashed.
    Malformed(String),
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Gap { expected } => write!(
                f,
                "expected position {expected} next; the events before this one are missing"
            ),
            FaultKind::HashMismatch => {
                f.write_str("stored hash does not match its contents or predecessor")
            }
            FaultKind::Malformed(reason) => write!(f, "row cannot be decoded: {reason}"),
        }
    }
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error (including constraint violations such as a
    /// duplicate event id, stream version or command id).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer build.
    #[error("database schema version {found} is newer than this build understands ({known}); upgrade before opening it")]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Latest version this build knows.
        known: i64,
    },
    /// An appended event does not continue the head.
    #[error("append out of order: expected position {expected}, got {got}")]
    PositionGap {
        /// The position that had to come next.
        expected: Position,
        /// The position supplied.
        got: Position,
    },
    /// Stored data is not what this code wrote (e.g. a blob of the wrong length).
    #[error("event store is corrupt: {0}")]
    Corrupt(String),
    /// The store file can only be opened read-only.
    #[error("the event store {0} is read-only (read-only file system or file); the writer needs write access to its data directory")]
    ReadOnly(String),
    /// Filesystem error, e.g. creating the parent directory.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The writer: owns the single write connection and the in-memory head.
#[derive(Debug)]
pub struct EventStore {
    conn: Connection,
    head: Head,
}

impl EventStore {
    /// Opens (creating if missing, with its parent directory) the store at
    /// `path`, switches it to WAL, applies `options`, runs pending migrations
    /// and loads the head.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let mut conn = Connection::open(path)?;
        // SQLite quietly falls back to read-only when it may not write (a
        // read-only mount, a file without write permission); a writer that
        // started so would refuse every command, so refuse to start instead.
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(StoreError::ReadOnly(path.display().to_string()));
        }
        conn.busy_timeout(BUSY_TIMEOUT)?;
        plan_once(&conn)?;
        // Refuse a newer schema before changing anything about the file.
        migrations::ensure_not_too_new(&conn)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Without WAL, readers would block the writer and vice versa.
            return Err(StoreError::Corrupt(format!(
                "could not switch journal_mode to WAL (got {mode})"
            )));
        }
        conn.pragma_update(None, "synchronous", options.durability.pragma_value())?;
        if options.background_checkpoint {
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        migrations::migrate(&mut conn)?;
        let head = query_head(&conn)?;
        tracing::debug!(
            path = %path.display(),
            head = head.position,
            durability = ?options.durability,
            "opened event store"
        );
        Ok(Self { conn, head })
    }

    /// The last committed event (position 0 and a zero hash when empty).
    pub fn head(&self) -> Head {
        self.head
    }

    /// Appends events and command records in ONE transaction (one fsync).
    ///
    /// Events must be numbered head+1, head+2, ... consecutively, else
    /// [`StoreError::PositionGap`] and nothing is written. Computes each
    /// event's chained hash. On any error the transaction rolls back and the
    /// in-memory head is unchanged. Returns the new head.
    pub fn append(
        &mut self,
        events: &[NewEvent],
        commands: &[CommandRecord],
    ) -> Result<Head, StoreError> {
        // Check numbering before touching the database so a bad batch costs nothing.
        for (expected, event) in (self.head.position + 1..).zip(events) {
            if event.position != expected {
                return Err(StoreError::PositionGap {
                    expected,
                    got: event.position,
                });
            }
        }
        if events.is_empty() && commands.is_empty() {
            return Ok(self.head);
        }

        // IMMEDIATE takes the write lock up front, so the batch can't fail
        // half-way with SQLITE_BUSY on lock upgrade.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut head = self.head;
        {
            let mut insert = tx.prepare_cached(INSERT_EVENT)?;
            for event in events {
                let hash = chain::link_hash(&head.hash, &event.fields());
                insert.execute(params![
                    to_sql_int(event.position, "position")?,
                    event.event_id.as_bytes().as_slice(),
                    event.stream_id,
                    to_sql_int(event.stream_version, "stream_version")?,
                    event.event_type,
                    event.schema_version,
                    event.payload,
                    event.correlation_id,
                    event.causation_id,
                    event.actor,
                    event.recorded_at,
                    hash.as_slice(),
                ])?;
                head = Head {
                    position: event.position,
                    hash,
                };
            }
            let mut insert = tx.prepare_cached(INSERT_COMMAND)?;
            for command in commands {
                insert.execute(params![
                    command.command_id.as_bytes().as_slice(),
                    command.result,
                    command.recorded_at,
                ])?;
            }
        }
        tx.commit()?;
        // Only now is the batch durable, so only now may the head move.
        self.head = head;
        tracing::trace!(
            events = events.len(),
            commands = commands.len(),
            head = head.position,
            "appended batch"
        );
        Ok(head)
    }

    /// The recorded result of `command_id`, if that command was handled.
    pub fn command_result(&self, command_id: &uuid::Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        query_command_result(&self.conn, command_id)
    }

    /// All events of `stream_id`, ordered by stream version.
    pub fn read_stream(&self, stream_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        query_stream(&self.conn, stream_id)
    }

    /// Up to `limit` events with position > `after`, ascending.
    pub fn read_from(&self, after: Position, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        query_from(&self.conn, after, limit)
    }

    /// Streams every event with position > `after` to `f` in order without
    /// loading all into memory; stops at the first error of `f`.
    pub fn for_each_from<E: From<StoreError>>(
        &self,
        after: Position,
        f: impl FnMut(StoredEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        scan_from(&self.conn, after, f)
    }

    /// Walks all events, checking that positions are dense and every hash links.
    pub fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        walk_chain(&self.conn)
    }
}

/// A read-only view of the store on its own connection. Under WAL it sees
/// every commit made before each query starts and never blocks the writer.
#[derive(Debug)]
pub struct StoreReader {
    conn: Connection,
}

impl StoreReader {
    /// Opens an existing store read-only. The writer must have created and
    /// migrated it first.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        plan_once(&conn)?;
        migrations::ensure_not_too_new(&conn)?;
        Ok(Self { conn })
    }

    /// The last committed event, read from the database.
    pub fn head(&self) -> Result<Head, StoreError> {
        query_head(&self.conn)
    }

    /// The recorded result of `command_id`, if that command was handled.
    pub fn command_result(&self, command_id: &uuid::Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        query_command_result(&self.conn, command_id)
    }

    /// All events of `stream_id`, ordered by stream version.
    pub fn read_stream(&self, stream_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        query_stream(&self.conn, stream_id)
    }

    /// Up to `limit` events with position > `after`, ascending.
    pub fn read_from(&self, after: Position, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        query_from(&self.conn, after, limit)
    }

    /// Streams every event with position > `after` to `f` in order without
    /// loading all into memory; stops at the first error of `f`.
    pub fn for_each_from<E: From<StoreError>>(
        &self,
        after: Position,
        f: impl FnMut(StoredEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        scan_from(&self.conn, after, f)
    }

    /// Walks all events, checking that positions are dense and every hash links.
    pub fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        walk_chain(&self.conn)
    }
}

// ---- shared read paths -------------------------------------------------

fn query_head(conn: &Connection) -> Result<Head, StoreError> {
    let mut stmt = conn.prepare_cached(SELECT_HEAD)?;
    let mut rows = stmt.query([])?;
    match rows.next()? {
        None => Ok(Head::EMPTY),
        Some(row) => Ok(Head {
            position: get_u64(row, 0, "position")?,
            hash: get_array(row, 1, "hash")?,
        }),
    }
}

fn query_command_result(
    conn: &Connection,
    command_id: &uuid::Uuid,
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut stmt = conn.prepare_cached(SELECT_COMMAND)?;
    Ok(stmt
        .query_row([command_id.as_bytes().as_slice()], |row| row.get(0))
        .optional()?)
}

fn query_stream(conn: &Connection, stream_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(SELECT_STREAM)?;
    let mut rows = stmt.query([stream_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode_event(row)?);
    }
    Ok(out)
}

/// Turns on SQLite's query planner stability guarantee, so a cached
/// statement is planned once. Without it, SQLite (since 3.47) plans a
/// `LIMIT ?` by its bound value and so marks the statement expired at every
/// bind: `read_from`, which the relay calls after every commit, was
/// compiled again each time (about 7% of the relay's and the views'
/// SQLite thread time in a profile of `tepai bench`). The store's queries
/// have a single sensible plan: they walk the primary key.
fn plan_once(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn query_from(
    conn: &Connection,
    after: Position,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(SELECT_FROM_LIMIT)?;
    // A limit beyond i64::MAX means "no limit" in practice.
    let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![after_to_sql(after), sql_limit])?;
    let mut out = Vec::with_capacity(limit.min(1024));
    while let Some(row) = rows.next()? {
        out.push(decode_event(row)?);
    }
    Ok(out)
}

fn scan_from<E: From<StoreError>>(
    conn: &Connection,
    after: Position,
    mut f: impl FnMut(StoredEvent) -> Result<(), E>,
) -> Result<(), E> {
    let mut stmt = conn.prepare_cached(SELECT_FROM).map_err(StoreError::from)?;
    let mut rows = stmt
        .query([after_to_sql(after)])
        .map_err(StoreError::from)?;
    while let Some(row) = rows.next().map_err(StoreError::from)? {
        f(decode_event(row)?)?;
    }
    Ok(())
}

// ---- row decoding and integer conversion ------------------------------

/// Decodes a row selected with `event_columns!()`.
fn decode_event(row: &Row<'_>) -> Result<StoredEvent, StoreError> {
    let schema_version: i64 = row.get(5)?;
    Ok(StoredEvent {
        position: get_u64(row, 0, "position")?,
        event_id: uuid::Uuid::from_bytes(get_array(row, 1, "event_id")?),
        stream_id: row.get(2)?,
        stream_version: get_u64(row, 3, "stream_version")?,
        event_type: row.get(4)?,
        schema_version: u32::try_from(schema_version).map_err(|_| {
            StoreError::Corrupt(format!("schema_version {schema_version} is not a u32"))
        })?,
        payload: row.get(6)?,
        correlation_id: row.get(7)?,
        causation_id: row.get(8)?,
        actor: row.get(9)?,
        recorded_at: row.get(10)?,
        hash: get_array(row, 11, "hash")?,
    })
}

/// Reads a non-negative INTEGER column as u64.
fn get_u64(row: &Row<'_>, idx: usize, name: &str) -> Result<u64, StoreError> {
    let value: i64 = row.get(idx)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{name} {value} is negative")))
}

/// Reads a BLOB column that must be exactly `N` bytes long.
fn get_array<const N: usize>(row: &Row<'_>, idx: usize, name: &str) -> Result<[u8; N], StoreError> {
    match row.get_ref(idx)? {
        ValueRef::Blob(bytes) => bytes.try_into().map_err(|_| {
            StoreError::Corrupt(format!("{name} is {} bytes, expected {N}", bytes.len()))
        }),
        other => Err(StoreError::Corrupt(format!(
            "{name} has type {}, expected a blob",
            other.data_type()
        ))),
    }
}

/// Converts a u64 for storage in an INTEGER column (signed 64-bit).
fn to_sql_int(value: u64, name: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|err| {
        tracing::debug!(name, value, "value does not fit an SQLite integer");
        StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(err)))
    })
}

/// Converts an "after" bound; every stored position is <= i64::MAX, so a
/// larger bound simply matches nothing.
fn after_to_sql(after: Position) -> i64 {
    i64::try_from(after).unwrap_or(i64::MAX)
}
