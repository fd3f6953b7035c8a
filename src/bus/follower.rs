//! The standby's follower: appends the events of `TEPAI_EVENTS` to the
//! node's own event store with their original ids, positions, stream
//! versions and payloads, so that on taking over the writer's lease the
//! node decides from the same history the deposed writer had.
//!
//! Each message must sit at the stream sequence equal to its position and
//! carry the writer's chained hash; the follower recomputes the hash from
//! the message and its own previous one and refuses anything that does not
//! match, so the copy is the writer's chain, link by link. Every command
//! that wrote events gets its command record back (accepted, with those
//! events), so a resend after a failover gets the first answer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy};
use futures::StreamExt;
use prost::Message;

use super::{
    BusError, EVENTS_STREAM, HEADER_EVENT_TYPE, HEADER_HASH, HEADER_POSITION, HEADER_SCHEMA_VERSION,
};
use crate::store::{chain, CommandRecord, EventStore, Head, NewEvent, Position, StoreOptions};
use crate::wire::{self, pb};

/// Messages fetched per round.
const FOLLOW_BATCH: usize = 1000;

/// The events of one command seen so far. They are appended only once the
/// next command's first event shows the command complete (or at takeover),
/// together with its command record, in one transaction.
struct Group {
    causation_id: String,
    recorded_at: i64,
    events: Vec<NewEvent>,
}

/// Follows the stream into an event store.
pub struct Follower {
    js: jetstream::Context,
    store: Arc<Mutex<EventStore>>,
    consumer: pull::Stream,
    /// Position and hash after the last event taken in, appended or held.
    next: Head,
    group: Option<Group>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("next", &self.next.position)
            .finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BusError> + Send + 'static,
) -> Result<T, BusError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BusError::Nats(format!("blocking task failed: {e}")))?
}

/// The stream's last sequence.
pub async fn stream_last_sequence(js: &jetstream::Context) -> Result<u64, BusError> {
    let mut stream = js.get_stream(EVENTS_STREAM).await.map_err(BusError::nats)?;
    Ok(stream
        .info()
        .await
        .map_err(BusError::nats)?
        .state
        .last_sequence)
}

/// The chained hash the stream holds at `sequence`.
pub async fn hash_in_stream(js: &jetstream::Context, sequence: u64) -> Result<[u8; 32], BusError> {
    let stream = js.get_stream(EVENTS_STREAM).await.map_err(BusError::nats)?;
    let message = stream
        .get_raw_message(sequence)
        .await
        .map_err(BusError::nats)?;
    let text = message
        .headers
        .get(HEADER_HASH)
        .map(|v| v.as_str().to_owned())
        .ok_or_else(|| {
            BusError::Follow(format!(
                "stream message {sequence} has no {HEADER_HASH} header (published by an older \
                 tepai); start the standby from a copy of the writer's store"
            ))
        })?;
    chain::hash_from_hex(&text)
        .map_err(|e| BusError::Follow(format!("stream message {sequence}: {HEADER_HASH}: {e}")))
}

/// Checks that `head` is a prefix of the stream: the stream reaches its
/// position and holds the same hash there (which, chained, vouches for
/// everything before). Returns the stream's last sequence.
pub async fn check_prefix(js: &jetstream::Context, head: Head) -> Result<u64, BusError> {
    let last = stream_last_sequence(js).await?;
    if head.position == 0 {
        return Ok(last);
    }
    if head.position > last {
        return Err(BusError::Diverged {
            store_head: head.position,
            stream_last: last,
            detail: format!(
                "; positions {}..={} were never acknowledged by JetStream",
                last + 1,
                head.position
            ),
        });
    }
    if hash_in_stream(js, head.position).await? != head.hash {
        return Err(BusError::Diverged {
            store_head: head.position,
            stream_last: last,
            detail: format!("; they hold different events at position {}", head.position),
        });
    }
    Ok(last)
}

/// Moves a store that diverges from the stream aside, with its WAL, to
/// `<store>.diverged-<unix ms>`, and returns where. Nothing is deleted:
/// an operator can still read it (`tepai ops export --data-dir`).
pub fn quarantine(store_path: &Path, now_ms: i64) -> std::io::Result<PathBuf> {
    let mut aside = store_path.as_os_str().to_owned();
    aside.push(format!(".diverged-{now_ms}"));
    let aside = PathBuf::from(aside);
    for suffix in ["", "-wal", "-shm"] {
        let mut from = store_path.as_os_str().to_owned();
        from.push(suffix);
        let mut to = aside.as_os_str().to_owned();
        to.push(suffix);
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(aside)
}

impl Follower {
    /// Opens the store at `store_path` and a consumer from just after its
    /// head. Refuses ([`BusError::Diverged`]) a store that is not a prefix
    /// of the stream, or whose chain is broken.
    pub async fn open(js: jetstream::Context, store_path: &Path) -> Result<Self, BusError> {
        let path = store_path.to_owned();
        let store = blocking(move || {
            let store = EventStore::open(&path, StoreOptions::default())?;
            let report = store.verify_chain()?;
            if let Some(fault) = report.first_fault {
                return Err(BusError::Follow(format!(
                    "the event store's chain is broken at {fault}"
                )));
            }
            Ok(store)
        })
        .await?;
        let head = store.head();
        check_prefix(&js, head).await?;
        let stream = js.get_stream(EVENTS_STREAM).await.map_err(BusError::nats)?;
        let consumer = stream
            .create_consumer(pull::Config {
                deliver_policy: if head.position == 0 {
                    DeliverPolicy::All
                } else {
                    DeliverPolicy::ByStartSequence {
                        start_sequence: head.position + 1,
                    }
                },
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(60),
                description: Some("tepai standby".to_owned()),
                ..Default::default()
            })
            .await
            .map_err(BusError::nats)?
            .messages()
            .await
            .map_err(BusError::nats)?;
        tracing::info!(head = head.position, "standby follows the stream");
        Ok(Self {
            js,
            store: Arc::new(Mutex::new(store)),
            consumer,
            next: head,
            group: None,
        })
    }

    /// The position of the last event taken in (appended or held back
    /// until its command's events are complete).
    pub fn position(&self) -> Position {
        self.next.position
    }

    /// Takes in what arrives within `wait`; returns how many events.
    pub async fn run_once(&mut self, wait: Duration) -> Result<usize, BusError> {
        let mut ready = Vec::new();
        let mut taken = 0;
        let mut until = tokio::time::Instant::now() + wait;
        while taken < FOLLOW_BATCH {
            let Ok(next) = tokio::time::timeout_at(until, self.consumer.next()).await else {
                break;
            };
            let message = next
                .ok_or_else(|| BusError::Follow("the consumer ended".into()))?
                .map_err(BusError::nats)?;
            let sequence = message.info().map_err(BusError::nats)?.stream_sequence;
            let event = self.take_in(sequence, &message)?;
            ready.extend(self.hold(event));
            taken += 1;
            // Once something arrived, take in only what is already there.
            until = until.min(tokio::time::Instant::now() + Duration::from_millis(20));
        }
        self.append(ready).await?;
        Ok(taken)
    }

    /// Adds `event` to its command's group; returns the previous command's
    /// group when this event starts another.
    fn hold(&mut self, event: NewEvent) -> Option<Group> {
        let same_command = self
            .group
            .as_ref()
            .is_some_and(|g| g.causation_id == event.causation_id);
        let done = if same_command {
            None
        } else {
            self.group.replace(Group {
                causation_id: event.causation_id.clone(),
                recorded_at: event.recorded_at,
                events: Vec::new(),
            })
        };
        if let Some(group) = self.group.as_mut() {
            group.events.push(event);
        }
        done
    }

    /// Checks one message against the chain and turns it into the event
    /// the writer stored.
    fn take_in(
        &mut self,
        sequence: u64,
        message: &async_nats::jetstream::Message,
    ) -> Result<NewEvent, BusError> {
        let expected = self.next.position + 1;
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        let at = format!("stream message {sequence}");
        if sequence != expected {
            return Err(BusError::Follow(format!(
                "{at}: expected sequence {expected} next (the stream must hold position n at sequence n)"
            )));
        }
        let envelope = pb::EventEnvelope::decode(message.payload.as_ref())
            .map_err(|e| BusError::Follow(format!("{at} is not an EventEnvelope: {e}")))?;
        let position_header = header(HEADER_POSITION).and_then(|v| v.parse::<u64>().ok());
        if envelope.global_position != expected || position_header != Some(expected) {
            return Err(BusError::Follow(format!(
                "{at} holds position {} where {expected} belongs",
                envelope.global_position
            )));
        }
        let hash = header(HEADER_HASH)
            .ok_or_else(|| BusError::Follow(format!("{at} has no {HEADER_HASH} header")))
            .and_then(|text| {
                chain::hash_from_hex(&text)
                    .map_err(|e| BusError::Follow(format!("{at}: {HEADER_HASH}: {e}")))
            })?;
        let event_type = header(HEADER_EVENT_TYPE)
            .ok_or_else(|| BusError::Follow(format!("{at} has no {HEADER_EVENT_TYPE} header")))?;
        let schema_version = header(HEADER_SCHEMA_VERSION)
            .and_then(|v| v.parse().ok())
            .unwrap_or(wire::EVENT_SCHEMA_VERSION);
        let event_id = uuid::Uuid::try_parse(&envelope.event_id)
            .map_err(|e| BusError::Follow(format!("{at}: event id: {e}")))?;
        // The stored payload is the envelope with only the event set.
        let payload = pb::EventEnvelope {
            event: envelope.event.clone(),
            ..Default::default()
        }
        .encode_to_vec();
        let event = NewEvent {
            position: expected,
            event_id,
            stream_id: envelope.stream_id,
            stream_version: envelope.stream_version,
            event_type,
            schema_version,
            payload,
            correlation_id: envelope.correlation_id,
            causation_id: envelope.causation_id,
            actor: envelope.actor,
            recorded_at: envelope.recorded_at,
        };
        if chain::link_hash(&self.next.hash, &event.fields()) != hash {
            return Err(BusError::Follow(format!(
                "{at}: the hash does not match the event and its predecessor; the stream is \
                 not the history this store continues"
            )));
        }
        self.next = Head {
            position: expected,
            hash,
        };
        Ok(event)
    }

    /// Appends complete commands with their records, in one transaction.
    async fn append(&mut self, groups: Vec<Group>) -> Result<(), BusError> {
        if groups.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        blocking(move || {
            let mut store = store
                .lock()
                .map_err(|_| BusError::Follow("store lock poisoned".into()))?;
            let mut events = Vec::new();
            let mut records = Vec::new();
            for group in groups {
                if let Ok(command_id) = uuid::Uuid::try_parse(&group.causation_id) {
                    let written = group
                        .events
                        .iter()
                        .map(|e| pb::WrittenEvent {
                            stream_id: e.stream_id.clone(),
                            stream_version: e.stream_version,
                            global_position: e.position,
                            event_id: e.event_id.hyphenated().to_string(),
                        })
                        .collect();
                    let result = wire::accepted(command_id.hyphenated().to_string(), written);
                    records.push(CommandRecord {
                        command_id,
                        result: result.encode_to_vec(),
                        recorded_at: group.recorded_at,
                    });
                }
                events.extend(group.events);
            }
            store.append(&events, &records)?;
            Ok(())
        })
        .await
    }

    /// Follows until the store holds everything up to the stream's last
    /// sequence as it is now, including the last command's events, and
    /// returns that position. For a node taking over: it answers nothing
    /// before it has the whole history.
    pub async fn catch_up(&mut self) -> Result<Position, BusError> {
        let last = stream_last_sequence(&self.js).await?;
        while self.next.position < last {
            self.run_once(Duration::from_millis(500)).await?;
        }
        let held: Vec<Group> = self.group.take().into_iter().collect();
        self.append(held).await?;
        Ok(self.next.position)
    }

    /// The store, for the writer, once caught up.
    pub fn into_store(self) -> Result<EventStore, BusError> {
        Arc::try_unwrap(self.store)
            .map_err(|_| BusError::Follow("the store is still in use".into()))?
            .into_inner()
            .map_err(|_| BusError::Follow("store lock poisoned".into()))
    }
}
