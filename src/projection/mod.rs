//! The views (projections) in SQLite, fed by the events on the bus.
//!
//! [`Projection`] owns the write connection: the JetStream consumer hands it
//! batches of [`pb::EventEnvelope`]s in global-position order, possibly with
//! redeliveries, and it applies each batch in one transaction together with
//! its checkpoint row. [`Views`] are read-only connections that answer the
//! queries of `query.proto`, as of any position up to the checkpoint.
//!
//! Architecture invariant: the views file is derived data. Everything in it
//! can be rebuilt from the event store, so it runs with
//! `synchronous=NORMAL`, and a batch is applied whole or not at all.

pub mod digest;
mod fold;
mod generation;
pub mod live;
mod rows;
mod schema;
#[cfg(test)]
mod tests;
mod versioned;
mod views;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

pub use generation::{RebuildLock, ViewsDir};
pub use views::{QueryError, Views, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

use crate::domain::Event;
use crate::wire::{self, pb};

/// Why the views could not be opened or a batch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Filesystem error, e.g. creating the parent directory.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The file's schema is not the one this build reads.
    #[error("views schema version {found}, this build knows {known}: rebuild the views or use the matching build")]
    SchemaVersion {
        /// Version found in the file.
        found: i64,
        /// Latest version this build knows.
        known: i64,
    },
    /// An envelope does not continue the checkpoint: events were lost on
    /// the way. Nothing of the batch was applied; fetch from `expected`.
    #[error("gap in the event sequence: expected position {expected}, got {got}")]
    Gap {
        /// The position that had to come next (checkpoint + 1).
        expected: u64,
        /// The position received instead.
        got: u64,
    },
    /// An envelope carries no event, or one that does not decode. Nothing of
    /// the batch was applied.
    #[error("event at position {position} cannot be decoded: {reason}")]
    Undecodable {
        /// Global position of the envelope.
        position: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// An event contradicts the views (e.g. it names a post they do not
    /// hold). The store never writes such an event; nothing of the batch
    /// was applied.
    #[error("event at position {position} does not fit the views: {reason}")]
    Inconsistent {
        /// Global position of the event.
        position: u64,
        /// What does not fit.
        reason: String,
    },
    /// Stored data is not what this code wrote.
    #[error("views are corrupt: {0}")]
    Corrupt(String),
}

/// What [`Projection::apply_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Events applied.
    pub applied: usize,
    /// Envelopes at or below the checkpoint, ignored as redeliveries.
    pub skipped: usize,
    /// The checkpoint after the batch.
    pub checkpoint: u64,
}

/// The writer of the views: owns the only write connection to the file.
#[derive(Debug)]
pub struct Projection {
    conn: Connection,
    /// Mirror of the checkpoint row, updated only after a commit.
    checkpoint: u64,
    /// The batch being folded, and the current rows cached from the file.
    rows: fold::Rows,
}

impl Projection {
    /// Opens (creating if missing, with its parent directory) the views at
    /// `path`, switches them to WAL and runs pending migrations.
    pub fn open(path: &Path) -> Result<Self, ProjectionError> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Refuse a newer schema before changing anything about the file.
        let found = schema::current_version(&conn)?;
        if found > schema::latest_version() {
            return Err(ProjectionError::SchemaVersion {
                found,
                known: schema::latest_version(),
            });
        }
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Without WAL, every query would block the consumer.
            return Err(ProjectionError::Corrupt(format!(
                "could not switch journal_mode to WAL (got {mode})"
            )));
        }
        // Views can be rebuilt from the store, so losing the last commits to
        // a power cut costs a redelivery, not data.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A batch touches rows all over the indexes; with SQLite's default
        // 2 MB cache it spills dirty pages mid-transaction and re-reads
        // them (the profile of a rebuild showed little else).
        conn.pragma_update(None, "cache_size", -VIEWS_CACHE_KIB)?;
        // A live batch is small (tens of events) and dirties index pages
        // all over the file; each checkpoint copies every page in the WAL
        // back and fsyncs the file. Checkpointing three times less often
        // copies a page rewritten by many batches once instead of several
        // times, and pays one fsync for three. Ten times less often saved
        // no more CPU but doubled the p99 of command answers: the larger
        // write-back delayed the store's fsync (BENCHMARKS.md).
        conn.pragma_update(None, "wal_autocheckpoint", VIEWS_WAL_AUTOCHECKPOINT)?;
        schema::migrate(&mut conn)?;
        // A rebuild interrupted before `finish` leaves a file without them.
        schema::create_secondary_indexes(&mut conn)?;
        let checkpoint = schema::read_checkpoint(&conn)?;
        tracing::debug!(path = %path.display(), checkpoint, "opened views");
        Ok(Self {
            conn,
            checkpoint,
            rows: fold::Rows::default(),
        })
    }

    /// Opens views that nobody reads yet, for a rebuild: nothing is live
    /// until [`Projection::finish`] has made the file durable and the
    /// caller swaps it in, so commits skip fsync and the page cache is
    /// large (a rebuild runs in its own process, briefly).
    pub fn open_for_rebuild(path: &Path) -> Result<Self, ProjectionError> {
        let mut projection = Self::open(path)?;
        projection.conn.pragma_update(None, "synchronous", "OFF")?;
        projection
            .conn
            .pragma_update(None, "cache_size", -REBUILD_CACHE_KIB)?;
        // Its 50,000-event commits each fill the WAL past any threshold;
        // keep SQLite's default, as measured at 1M events.
        projection
            .conn
            .pragma_update(None, "wal_autocheckpoint", SQLITE_WAL_AUTOCHECKPOINT)?;
        // The index lookups of a batch use the primary keys alone, so the
        // secondary indexes can wait until every row is in.
        schema::drop_secondary_indexes(&mut projection.conn)?;
        Ok(projection)
    }

    /// Creates the secondary indexes a rebuild left out, copies everything
    /// into the database file and syncs it, so the file can be made live and
    /// survive a power cut.
    pub fn finish(mut self) -> Result<u64, ProjectionError> {
        schema::create_secondary_indexes(&mut self.conn)?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let path = self.conn.path().map(std::path::PathBuf::from);
        let checkpoint = self.checkpoint;
        drop(self);
        if let Some(path) = path {
            std::fs::File::open(path)?.sync_all()?;
        }
        Ok(checkpoint)
    }

    /// The last applied global position (0 = none).
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// Applies a batch in ONE transaction together with the checkpoint row.
    ///
    /// Envelopes at or below the running checkpoint are skipped (JetStream
    /// redeliveries and duplicates). Every other envelope must be exactly
    /// checkpoint + 1, else [`ProjectionError::Gap`]. The batch is all or
    /// nothing: on a gap, an undecodable envelope or any other error, none
    /// of it is applied, not even the contiguous prefix, so the caller
    /// simply fetches again from `checkpoint() + 1`.
    pub fn apply_batch(
        &mut self,
        events: &[pb::EventEnvelope],
    ) -> Result<ApplyOutcome, ProjectionError> {
        self.apply_decoding(events.iter().map(|envelope| {
            let decode = || {
                envelope
                    .event
                    .clone()
                    .ok_or(wire::DecodeError::MissingOneof("event"))
                    .and_then(wire::event_from_pb)
            };
            (envelope.global_position, decode)
        }))
    }

    /// As [`Projection::apply_batch`], for events as the store keeps them:
    /// each global position with its encoded payload. A rebuild from the
    /// store decodes the payload straight into the event, instead of
    /// building the bus envelope and decoding that.
    pub fn apply_payloads<'p>(
        &mut self,
        events: impl IntoIterator<Item = (u64, &'p [u8])>,
    ) -> Result<ApplyOutcome, ProjectionError> {
        self.apply_decoding(
            events
                .into_iter()
                .map(|(position, payload)| (position, move || wire::decode_event_payload(payload))),
        )
    }

    /// Applies each position's event, decoded only once its position is
    /// known to come next; all or nothing, as [`Projection::apply_batch`].
    fn apply_decoding<D>(
        &mut self,
        events: impl IntoIterator<Item = (u64, D)>,
    ) -> Result<ApplyOutcome, ProjectionError>
    where
        D: FnOnce() -> Result<Event, wire::DecodeError>,
    {
        let outcome = self.fold_and_commit(events);
        match outcome {
            Ok(_) => self.rows.settle(),
            // Rolled back: the memory may hold rows the file does not.
            Err(_) => self.rows.clear(),
        }
        outcome
    }

    fn fold_and_commit<D>(
        &mut self,
        events: impl IntoIterator<Item = (u64, D)>,
    ) -> Result<ApplyOutcome, ProjectionError>
    where
        D: FnOnce() -> Result<Event, wire::DecodeError>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut at = self.checkpoint;
        let (mut applied, mut skipped) = (0, 0);
        for (position, decode) in events {
            if position == 0 {
                return Err(ProjectionError::Undecodable {
                    position,
                    reason: "global_position is 0; positions start at 1".to_owned(),
                });
            }
            if position <= at {
                skipped += 1;
                continue;
            }
            if position != at + 1 {
                return Err(ProjectionError::Gap {
                    expected: at + 1,
                    got: position,
                });
            }
            let event = decode().map_err(|e| ProjectionError::Undecodable {
                position,
                reason: e.to_string(),
            })?;
            self.rows.apply(&tx, position, &event)?;
            at = position;
            applied += 1;
        }
        if applied > 0 {
            self.rows.write(&tx)?;
            schema::write_checkpoint(&tx, at)?;
            tx.commit()?;
            self.checkpoint = at;
        }
        Ok(ApplyOutcome {
            applied,
            skipped,
            checkpoint: self.checkpoint,
        })
    }
}

/// Page cache of the views' writer, in KiB.
const VIEWS_CACHE_KIB: i64 = 64 * 1024;

/// WAL pages after which a views commit checkpoints: about 12 MB with
/// 4 KiB pages, three times SQLite's default.
const VIEWS_WAL_AUTOCHECKPOINT: i64 = 3_000;

/// SQLite's own default of `wal_autocheckpoint`.
const SQLITE_WAL_AUTOCHECKPOINT: i64 = 1_000;

/// Page cache of a rebuild, in KiB: the whole views of a large region fit.
const REBUILD_CACHE_KIB: i64 = 1024 * 1024;

/// How long a connection waits for another one's lock before giving up.
/// Long enough to ride out a large batch commit.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
