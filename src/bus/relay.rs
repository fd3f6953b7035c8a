//! The relay: the transactional outbox's second half. The event store is
//! the outbox; the relay reads committed events after its checkpoint and
//! publishes them to JetStream in global-position order, many acks in
//! flight at once, each with `Nats-Msg-Id` = event id so JetStream drops
//! any it already holds. The checkpoint advances only after every ack of a
//! batch is in.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{
    BusError, EVENTS_STREAM, EVENTS_SUBJECTS, HEADER_EVENT_TYPE, HEADER_HASH, HEADER_POSITION,
    HEADER_SCHEMA_VERSION,
};
use crate::store::{Position, StoreReader, StoredEvent};
use crate::wire;

/// Events read and published per round.
pub const RELAY_BATCH: usize = 1024;

/// Longest time the saved checkpoint trails the acknowledged position.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// How long JetStream remembers message ids for deduplication.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Creates the events stream, or brings its configuration up to date,
/// with `replicas` copies; `None` keeps the copies an existing stream has
/// (one for a new stream), for tools that do not own its configuration.
pub async fn ensure_stream(
    js: &jetstream::Context,
    replicas: Option<usize>,
) -> Result<stream::Info, BusError> {
    let num_replicas = match replicas {
        Some(replicas) => replicas,
        None => match js.get_stream(EVENTS_STREAM).await {
            Ok(stream) => stream.cached_info().config.num_replicas,
            Err(_) => 1,
        },
    };
    let made = js
        .create_or_update_stream(stream::Config {
            name: EVENTS_STREAM.to_owned(),
            description: Some("tepai events, in global-position order".to_owned()),
            subjects: vec![EVENTS_SUBJECTS.to_owned()],
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas,
            ..Default::default()
        })
        .await;
    match made {
        Ok(info) => Ok(info),
        // A clustered JetStream (2.9) may drop the answer to one of two
        // nodes creating the stream at once, though the stream was made:
        // then it is there, as asked.
        Err(error) => match js.get_stream(EVENTS_STREAM).await {
            Ok(stream) if stream.cached_info().config.num_replicas == num_replicas => {
                Ok(stream.cached_info().clone())
            }
            _ => Err(BusError::nats(error)),
        },
    }
}

/// The subject of an event: `tepai.evt.<category>.<id>`.
pub fn subject_of(stream_id: &str) -> String {
    let (category, id) = stream_id.split_once('-').unwrap_or(("unknown", stream_id));
    format!("tepai.evt.{category}.{id}")
}

/// The relay's durable position, in its own small SQLite file so that it
/// never contends with the writer for the event store's lock.
/// The relay's durable position.
pub struct Checkpoint {
    conn: Connection,
}

impl Checkpoint {
    fn open(path: &Path) -> Result<Self, BusError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Advisory: the relay resumes from what the stream holds, so this
        // file need not cost an fsync per batch on the writer's disk.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS relay (
                 id INTEGER PRIMARY KEY CHECK (id = 1),
                 position INTEGER NOT NULL
             );",
        )?;
        Ok(Self { conn })
    }

    /// The position saved in the checkpoint file at `path`, if any; for
    /// operators' tools, which must not create the file.
    pub fn saved(path: &Path) -> Result<Option<Position>, BusError> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let position: Option<i64> = conn
            .query_row("SELECT position FROM relay WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        Ok(position.map(|p| u64::try_from(p).unwrap_or(0)))
    }

    fn load(&self) -> Result<Position, BusError> {
        let position: Option<i64> = self
            .conn
            .query_row("SELECT position FROM relay WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        Ok(position.map_or(0, |p| u64::try_from(p).unwrap_or(0)))
    }

    fn save(&self, position: Position) -> Result<(), BusError> {
        self.conn.execute(
            "INSERT INTO relay (id, position) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET position = excluded.position",
            params![i64::try_from(position).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }
}

/// Publishes committed events to JetStream.
pub struct Relay {
    js: jetstream::Context,
    replicas: usize,
    reader: Arc<Mutex<StoreReader>>,
    checkpoint: Arc<Mutex<Checkpoint>>,
    position: Position,
    published: watch::Sender<Position>,
    saved_at: std::time::Instant,
    saved: Position,
    fence: Option<CancellationToken>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// Publishes `events` in order with every ack in flight at once, then
/// waits for all of them. Returns how many JetStream had already (dropped
/// as duplicates by `Nats-Msg-Id`).
pub async fn publish_events(
    js: &jetstream::Context,
    events: &[StoredEvent],
) -> Result<usize, BusError> {
    publish(js, events, false).await
}

/// [`publish_events`], each publish made on the condition that the
/// stream's last sequence is the event's position minus one
/// (`Nats-Expected-Last-Sequence`): the stream then holds position n at
/// sequence n, and a writer whose idea of the stream is stale (deposed,
/// or missing a message it sent) is refused with
/// [`BusError::StreamMoved`] instead of adding to it. JetStream checks
/// `Nats-Msg-Id` first, so a resend within the duplicate window is still
/// a duplicate, not a refusal.
pub async fn publish_fenced(
    js: &jetstream::Context,
    events: &[StoredEvent],
) -> Result<usize, BusError> {
    publish(js, events, true).await
}

async fn publish(
    js: &jetstream::Context,
    events: &[StoredEvent],
    fenced: bool,
) -> Result<usize, BusError> {
    let mut acks = Vec::with_capacity(events.len());
    for event in events {
        let envelope = wire::event_envelope(event).map_err(|e| {
            BusError::Nats(format!(
                "event at position {} cannot be encoded: {e}",
                event.position
            ))
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            event.event_id.hyphenated().to_string().as_str(),
        );
        headers.insert(HEADER_EVENT_TYPE, event.event_type.as_str());
        headers.insert(HEADER_POSITION, event.position.to_string().as_str());
        headers.insert(
            HEADER_HASH,
            crate::store::chain::hash_to_hex(&event.hash).as_str(),
        );
        headers.insert(
            HEADER_SCHEMA_VERSION,
            event.schema_version.to_string().as_str(),
        );
        if fenced {
            headers.insert(
                "Nats-Expected-Last-Sequence",
                event.position.saturating_sub(1).to_string().as_str(),
            );
        }
        let ack = js
            .publish_with_headers(
                subject_of(&event.stream_id),
                headers,
                envelope.encode_to_vec().into(),
            )
            .await
            .map_err(BusError::nats)?;
        acks.push((event.position, ack));
    }
    let mut duplicates = 0;
    for (position, ack) in acks {
        match ack.await {
            Ok(ack) if ack.duplicate => duplicates += 1,
            Ok(_) => {}
            Err(error)
                if error.kind() == jetstream::context::PublishErrorKind::WrongLastSequence =>
            {
                return Err(BusError::StreamMoved { position })
            }
            Err(error) => return Err(BusError::nats(error)),
        }
    }
    Ok(duplicates)
}

/// The global position of the last event the stream holds, from its header.
pub async fn last_position_in_stream(js: &jetstream::Context) -> Result<Position, BusError> {
    let mut stream = js.get_stream(EVENTS_STREAM).await.map_err(BusError::nats)?;
    let last = stream
        .info()
        .await
        .map_err(BusError::nats)?
        .state
        .last_sequence;
    if last == 0 {
        return Ok(0);
    }
    let message = stream.get_raw_message(last).await.map_err(BusError::nats)?;
    Ok(message
        .headers
        .get(HEADER_POSITION)
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(0))
}

/// Where to go on after a failed round, `acked` being the last position
/// JetStream acknowledged. A stream behind it lost its unsynced tail and is
/// refilled from where it ends. A stream ahead of it holds events whose
/// acks never came; it is trusted only if it has as many messages as
/// positions. When a connection drops, what sat in its write buffer is
/// lost while publishes still queued go out after the reconnect, leaving a
/// hole (positions ahead of sequences); jumping to the last position would
/// skip the hole for good, so the relay resends from `acked` instead,
/// within the duplicate window: JetStream drops what it holds and stores
/// the missing events.
async fn resume_after_error(
    js: &jetstream::Context,
    acked: Position,
) -> Result<Position, BusError> {
    let in_stream = last_position_in_stream(js).await?;
    if in_stream <= acked {
        return Ok(in_stream);
    }
    let mut stream = js.get_stream(EVENTS_STREAM).await.map_err(BusError::nats)?;
    let last_sequence = stream
        .info()
        .await
        .map_err(BusError::nats)?
        .state
        .last_sequence;
    if last_sequence >= in_stream {
        Ok(in_stream)
    } else {
        tracing::warn!(
            acked,
            in_stream,
            last_sequence,
            "the stream has a hole after the last acknowledged event; resending from there"
        );
        Ok(acked)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BusError> + Send + 'static,
) -> Result<T, BusError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BusError::Nats(format!("blocking task failed: {e}")))?
}

impl Relay {
    /// Opens the relay over the store at `store_path`, keeping its
    /// checkpoint at `checkpoint_path`, and makes sure the stream exists.
    /// It resumes after the last event the stream holds: the stream, not the
    /// checkpoint, is the truth about what was delivered. A stream behind
    /// the checkpoint (deleted, or a server that lost its unsynced tail) is
    /// refilled from the store. The stream is kept at `replicas` copies.
    pub async fn open(
        js: jetstream::Context,
        store_path: &Path,
        checkpoint_path: &Path,
        replicas: usize,
    ) -> Result<Self, BusError> {
        ensure_stream(&js, Some(replicas)).await?;
        let reader = StoreReader::open(store_path)?;
        let checkpoint = Checkpoint::open(checkpoint_path)?;
        let saved = checkpoint.load()?;
        let in_stream = last_position_in_stream(&js).await?;
        let position = in_stream;
        if saved > in_stream {
            tracing::warn!(
                saved,
                in_stream,
                "the stream is behind the relay's checkpoint; republishing from the store"
            );
        }
        tracing::info!(position, "relay resumes");
        let (published, _) = watch::channel(position);
        Ok(Self {
            js,
            replicas,
            reader: Arc::new(Mutex::new(reader)),
            checkpoint: Arc::new(Mutex::new(checkpoint)),
            position,
            published,
            saved_at: std::time::Instant::now(),
            saved,
            fence: None,
        })
    }

    /// Publishes with fencing ([`publish_fenced`]): once the stream holds
    /// events this node's store does not, another node is the writer; the
    /// relay then cancels `fenced` and stops without publishing more. It
    /// stops the same way, without flushing, when the caller cancels
    /// `fenced` (the writer's lease was lost).
    pub fn fenced(mut self, fenced: CancellationToken) -> Self {
        self.fence = Some(fenced);
        self
    }

    /// The last position JetStream has acknowledged.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Follows the acknowledged position.
    pub fn published(&self) -> watch::Receiver<Position> {
        self.published.subscribe()
    }

    /// Publishes the next batch of committed events; returns how many.
    /// On an error nothing is lost: the checkpoint has not moved, and the
    /// next round republishes, deduplicated by JetStream.
    pub async fn run_once(&mut self) -> Result<usize, BusError> {
        let after = self.position;
        let reader = self.reader.clone();
        let events: Vec<StoredEvent> = blocking(move || {
            let reader = reader
                .lock()
                .map_err(|_| BusError::Nats("reader lock poisoned".into()))?;
            Ok(reader.read_from(after, RELAY_BATCH)?)
        })
        .await?;
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(0);
        };

        if self.fence.is_some() {
            publish_fenced(&self.js, &events).await?;
        } else {
            publish_events(&self.js, &events).await?;
        }
        self.position = last;
        self.published.send_replace(last);
        metrics::gauge!("tepai_relay_position").set(last as f64);
        // The checkpoint is advisory (the relay resumes from the stream), so
        // under a trickle of single commands it is saved at most every
        // CHECKPOINT_EVERY rather than once per event.
        if self.saved_at.elapsed() >= CHECKPOINT_EVERY {
            self.save_checkpoint().await?;
        }
        Ok(events.len())
    }

    /// Whether this node has stopped being the writer: nothing more of
    /// its store may go to the stream.
    fn is_fenced(&self) -> bool {
        self.fence.as_ref().is_some_and(|f| f.is_cancelled())
    }

    /// Whether the stream holds something this node's store does not:
    /// it reaches past the store's head, or differs from it at the last
    /// position both hold (the chained hash there vouches for all before).
    async fn someone_else_wrote(&self) -> Result<bool, BusError> {
        let last = super::follower::stream_last_sequence(&self.js).await?;
        if last == 0 {
            return Ok(false);
        }
        let reader = self.reader.clone();
        let ours = blocking(move || {
            let reader = reader
                .lock()
                .map_err(|_| BusError::Nats("reader lock poisoned".into()))?;
            Ok(reader.read_from(last - 1, 1)?.into_iter().next())
        })
        .await?;
        let Some(ours) = ours else {
            return Ok(true);
        };
        Ok(super::follower::hash_in_stream(&self.js, last).await? != ours.hash)
    }

    async fn save_checkpoint(&mut self) -> Result<(), BusError> {
        let (checkpoint, position) = (self.checkpoint.clone(), self.position);
        blocking(move || {
            checkpoint
                .lock()
                .map_err(|_| BusError::Nats("checkpoint lock poisoned".into()))?
                .save(position)
        })
        .await?;
        self.saved_at = std::time::Instant::now();
        self.saved = position;
        Ok(())
    }

    /// Publishes until `shutdown`, waking on each commit (`committed`) or
    /// every 200 ms when the writer runs in another process. On shutdown it
    /// flushes what is committed, for up to five seconds.
    pub async fn run(
        mut self,
        mut committed: Option<watch::Receiver<Position>>,
        shutdown: CancellationToken,
    ) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.is_fenced() {
                tracing::info!(
                    position = self.position,
                    "relay stopped: no longer the writer"
                );
                return;
            }
            let round = self.run_once().await;
            if let Some(head) = committed.as_ref().map(|rx| *rx.borrow()) {
                metrics::gauge!("tepai_relay_lag").set(head.saturating_sub(self.position) as f64);
            }
            match round {
                Ok(0) => {
                    // Idle: bring the advisory checkpoint up to date.
                    if self.saved != self.position {
                        if let Err(error) = self.save_checkpoint().await {
                            tracing::warn!(%error, "could not save the relay checkpoint");
                        }
                    }
                    backoff = Duration::from_millis(100);
                    let wake = async {
                        match committed.as_mut() {
                            Some(rx) => {
                                let _ =
                                    tokio::time::timeout(Duration::from_millis(200), rx.changed())
                                        .await;
                            }
                            None => tokio::time::sleep(Duration::from_millis(200)).await,
                        }
                    };
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = wake => {}
                    }
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(BusError::StreamMoved { position }) if self.fence.is_some() => {
                    match self.someone_else_wrote().await {
                        Ok(true) => {
                            tracing::error!(
                                position,
                                "fenced: the stream holds events this node did not write; \
                                 another node is the writer"
                            );
                            if let Some(fence) = &self.fence {
                                fence.cancel();
                            }
                            return;
                        }
                        // A message of this node's went missing; start
                        // again after what the stream holds.
                        Ok(false) => {
                            if let Ok(position) = last_position_in_stream(&self.js).await {
                                self.position = position;
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "cannot compare the stream with the store");
                        }
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, position = self.position, "relay round failed; retrying");
                    // The server may have restarted and lost its unsynced
                    // tail, or the stream may have been deleted: recreate it
                    // if need be and start again after what it really holds.
                    if ensure_stream(&self.js, Some(self.replicas)).await.is_err() {
                        continue;
                    }
                    if let Ok(position) = resume_after_error(&self.js, self.position).await {
                        self.position = position;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        if self.is_fenced() {
            tracing::info!(
                position = self.position,
                "relay stopped: no longer the writer"
            );
            return;
        }
        let flush = async {
            while let Ok(n) = self.run_once().await {
                if n == 0 {
                    break;
                }
            }
        };
        let flushed = tokio::time::timeout(Duration::from_secs(5), flush).await;
        if let Err(error) = self.save_checkpoint().await {
            tracing::warn!(%error, "could not save the relay checkpoint");
        }
        if flushed.is_err() {
            tracing::warn!(
                position = self.position,
                "relay stopped before flushing everything; it resumes from here"
            );
        }
        tracing::info!(position = self.position, "relay stopped");
    }
}
