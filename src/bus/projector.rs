//! The projector: a durable JetStream consumer that feeds the SQLite views.
//! Each fetched batch is applied in one transaction with its checkpoint,
//! then acknowledged; redeliveries are skipped by position, and a gap in
//! positions stops it with an error instead of being skipped.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use prost::Message;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::relay::ensure_stream;
use super::{BusError, EVENTS_STREAM};
use crate::projection::{Projection, ProjectionError};
use crate::wire::pb;

/// Most events applied in one transaction.
pub const PROJECTOR_BATCH: usize = 1000;

/// How long a node's durable consumer outlives its last pull.
pub const CONSUMER_INACTIVE_THRESHOLD: Duration = Duration::from_secs(3600);

/// Where the projector stands, for the status view and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectorProgress {
    /// Last position applied to the views.
    pub checkpoint: u64,
    /// Last position known to be in the stream.
    pub stream_last: u64,
    /// A gap seen and not yet healed: (expected, got).
    pub gap: Option<(u64, u64)>,
}

/// Feeds the views from `TEPAI_EVENTS`.
pub struct Projector {
    js: jetstream::Context,
    consumer_name: String,
    consumer: PullConsumer,
    /// The live views file; a rebuild points it at a new generation.
    live: watch::Receiver<PathBuf>,
    projection: Arc<Mutex<Projection>>,
    progress: watch::Sender<ProjectorProgress>,
}

/// Views this far behind the stream are catching up, not just following.
const CATCH_UP_LAG: u64 = 1000;

/// Logs the views' progress while they catch up with the stream (a new
/// query node starts from nothing), at most every two seconds, and once
/// when they have caught up.
pub fn log_catch_up(mut progress: watch::Receiver<ProjectorProgress>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut catching_up = false;
        let mut logged: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                changed = progress.changed() => if changed.is_err() { break },
            }
            let p = *progress.borrow_and_update();
            let lag = p.stream_last.saturating_sub(p.checkpoint);
            if lag >= CATCH_UP_LAG && logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(2))
            {
                tracing::info!(
                    checkpoint = p.checkpoint,
                    stream_last = p.stream_last,
                    lag,
                    "views catching up with the stream"
                );
                catching_up = true;
                logged = Some(tokio::time::Instant::now());
            } else if lag == 0 && catching_up {
                tracing::info!(checkpoint = p.checkpoint, "views caught up with the stream");
                catching_up = false;
            }
        }
    });
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("consumer", &self.consumer_name)
            .field("progress", &*self.progress.borrow())
            .finish_non_exhaustive()
    }
}

fn projection_error(error: ProjectionError) -> BusError {
    BusError::Nats(format!("views: {error}"))
}

/// Creates the durable consumer afresh so it delivers from `after + 1`.
/// The views' checkpoint, not the consumer's ack floor, is the truth: a
/// consumer left with unacknowledged deliveries (the node was killed
/// mid-batch) would otherwise hand out later events first and hold the
/// missing ones back until their ack wait ran out. The relay keeps stream
/// sequence equal to global position, so the start sequence is the
/// position; a mismatch shows up as a gap, never a skip.
async fn consumer_from(
    js: &jetstream::Context,
    name: &str,
    after: u64,
) -> Result<PullConsumer, BusError> {
    let stream = js.get_stream(EVENTS_STREAM).await.map_err(BusError::nats)?;
    if stream.get_consumer::<pull::Config>(name).await.is_ok() {
        stream.delete_consumer(name).await.map_err(BusError::nats)?;
    }
    let deliver_policy = if after == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        }
    };
    stream
        .create_consumer(pull::Config {
            durable_name: Some(name.to_owned()),
            description: Some("tepai views".to_owned()),
            ack_policy: AckPolicy::All,
            deliver_policy,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 20_000,
            // Each node has its own consumer; one whose node is gone for
            // good is removed by JetStream after this long without pulls.
            // A node back after longer loses nothing: it recreates its
            // consumer from its views' checkpoint at every start.
            inactive_threshold: CONSUMER_INACTIVE_THRESHOLD,
            ..Default::default()
        })
        .await
        .map_err(BusError::nats)
}

impl Projector {
    /// Opens the live views `live` names and the durable consumer
    /// `consumer_name` (one per node: a query node has its own). A stream
    /// it has to create gets `replicas` copies.
    pub async fn open(
        js: jetstream::Context,
        live: watch::Receiver<PathBuf>,
        consumer_name: &str,
        replicas: usize,
    ) -> Result<Self, BusError> {
        // The command node owns the stream's configuration; a query node
        // creates the stream only when it starts first, so its NATS user
        // needs no right to change an existing stream.
        if js.get_stream(EVENTS_STREAM).await.is_err() {
            ensure_stream(&js, Some(replicas)).await?;
        }
        let path = live.borrow().clone();
        let projection = Projection::open(&path).map_err(projection_error)?;
        let checkpoint = projection.checkpoint();
        let consumer = consumer_from(&js, consumer_name, checkpoint).await?;
        tracing::info!(checkpoint, consumer = consumer_name, "projector resumes");
        let (progress, _) = watch::channel(ProjectorProgress {
            checkpoint,
            stream_last: checkpoint,
            gap: None,
        });
        Ok(Self {
            js,
            consumer_name: consumer_name.to_owned(),
            consumer,
            live,
            projection: Arc::new(Mutex::new(projection)),
            progress,
        })
    }

    /// Follows the projector's progress.
    pub fn progress(&self) -> watch::Receiver<ProjectorProgress> {
        self.progress.subscribe()
    }

    /// Fetches what is waiting (up to a batch, up to 250 ms) and applies it.
    /// Returns how many events were applied.
    pub async fn run_once(&mut self) -> Result<usize, BusError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(PROJECTOR_BATCH)
            .expires(Duration::from_millis(250))
            .messages()
            .await
            .map_err(BusError::nats)?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            messages.push(message.map_err(BusError::nats)?);
        }
        let Some(last) = messages.last() else {
            return Ok(0);
        };
        let pending = last.info().map(|i| i.pending).unwrap_or(0);

        let mut envelopes = Vec::with_capacity(messages.len());
        for message in &messages {
            let envelope = pb::EventEnvelope::decode(message.payload.as_ref()).map_err(|e| {
                let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
                BusError::Nats(format!(
                    "stream message {sequence} is not an EventEnvelope: {e}"
                ))
            })?;
            envelopes.push(envelope);
        }
        // A batch may hold positions out of order or twice (a republished
        // event, a message resent after a reconnect): in position order the
        // views apply each once, and only a position truly missing from the
        // batch is a gap.
        envelopes.sort_by_key(|e| e.global_position);
        let projection = self.projection.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut projection = projection
                .lock()
                .map_err(|_| BusError::Nats("projection lock poisoned".into()))?;
            match projection.apply_batch(&envelopes) {
                Err(ProjectionError::Gap { expected, got }) => {
                    // The batch is all or nothing; what precedes the gap is
                    // sound, so apply it and let the views stand right at
                    // the gap rather than a whole batch before it.
                    let sound: Vec<_> = envelopes
                        .into_iter()
                        .take_while(|e| e.global_position < expected)
                        .collect();
                    projection.apply_batch(&sound).map_err(projection_error)?;
                    Err(BusError::Gap { expected, got })
                }
                other => other.map_err(projection_error),
            }
        })
        .await
        .map_err(|e| BusError::Nats(format!("projection task failed: {e}")));

        match outcome.and_then(|r| r) {
            Ok(outcome) => {
                last.ack_with(AckKind::Ack).await.map_err(BusError::nats)?;
                let stream_last = outcome.checkpoint + pending;
                self.progress.send_replace(ProjectorProgress {
                    checkpoint: outcome.checkpoint,
                    stream_last,
                    gap: None,
                });
                metrics::gauge!("tepai_projection_checkpoint").set(outcome.checkpoint as f64);
                metrics::gauge!("tepai_projection_lag").set(pending as f64);
                metrics::histogram!("tepai_projection_batch_size").record(outcome.applied as f64);
                Ok(outcome.applied)
            }
            Err(BusError::Gap { expected, got }) => {
                tracing::error!(expected, got, "gap in the event stream; the views stop here until it is filled (tepai ops republish)");
                // Reported until healed; `run` asks again from the missing
                // position, which heals a drifted consumer and keeps
                // reporting a stream that really lacks the events.
                let checkpoint = self
                    .projection
                    .lock()
                    .map_err(|_| BusError::Nats("projection lock poisoned".into()))?
                    .checkpoint();
                self.progress.send_modify(|p| {
                    p.checkpoint = checkpoint;
                    p.gap = Some((expected, got));
                });
                Err(BusError::Gap { expected, got })
            }
            Err(other) => Err(other),
        }
    }

    /// Moves to the generation a rebuild made live: opens it, and restarts
    /// the consumer from its checkpoint. The old generation stays readable
    /// for queries already running on it.
    async fn follow_rebuild(&mut self) -> Result<(), BusError> {
        let path = self.live.borrow_and_update().clone();
        let projection = Projection::open(&path).map_err(projection_error)?;
        let checkpoint = projection.checkpoint();
        self.consumer = consumer_from(&self.js, &self.consumer_name, checkpoint).await?;
        *self
            .projection
            .lock()
            .map_err(|_| BusError::Nats("projection lock poisoned".into()))? = projection;
        self.progress.send_modify(|p| {
            p.checkpoint = checkpoint;
            p.gap = None;
        });
        tracing::info!(path = %path.display(), checkpoint, "views switched to a rebuilt generation");
        Ok(())
    }

    /// Runs until `shutdown`, retrying with a backoff after errors.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.live.has_changed().unwrap_or(false) {
                if let Err(error) = self.follow_rebuild().await {
                    tracing::error!(%error, "cannot switch to the rebuilt views; staying on the old ones");
                }
            }
            let round = tokio::select! {
                _ = shutdown.cancelled() => break,
                round = self.run_once() => round,
            };
            match round {
                Ok(_) => backoff = Duration::from_millis(100),
                Err(error) => {
                    tracing::warn!(%error, "projector round failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    // After a server restart the consumer may hold
                    // deliveries that will never be acknowledged: start it
                    // again from the views' checkpoint.
                    let checkpoint = self.progress.borrow().checkpoint;
                    if let Ok(consumer) =
                        consumer_from(&self.js, &self.consumer_name, checkpoint).await
                    {
                        self.consumer = consumer;
                    }
                }
            }
        }
        tracing::info!(
            checkpoint = self.progress.borrow().checkpoint,
            "projector stopped"
        );
    }
}
