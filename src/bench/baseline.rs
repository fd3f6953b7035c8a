//! The baselines: what the parts tepai is built on do alone, on the same
//! machine and server, with the same counts and sizes, so that tepai's
//! figures read as a fraction of what is possible.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use async_nats::jetstream::{self, stream};
use async_nats::Client;
use futures::StreamExt;
use prost::Message;
use rusqlite::{params, Connection};

use crate::bus::EVENTS_STREAM;
use crate::wire::pb;

/// The stream of the raw JetStream baseline; deleted afterwards.
const RAW_STREAM: &str = "BENCH_RAW";
/// Acks the raw publisher keeps in flight.
const ACKS_IN_FLIGHT: usize = 1000;
/// Rows per transaction in the raw SQLite baseline.
const ROWS_PER_TRANSACTION: u64 = 1000;
/// The echo responder's subject.
const ECHO_SUBJECT: &str = "bench.echo";
/// Events read back to learn their sizes.
const SIZE_SAMPLES: u64 = 200;

/// How fast a baseline went.
#[derive(Debug, Clone, Copy)]
pub(super) struct Measured {
    /// Rows, messages or requests.
    pub count: u64,
    /// From the first to the last.
    pub seconds: f64,
}

impl Measured {
    /// Count per second.
    pub(super) fn per_second(&self) -> f64 {
        self.count as f64 / self.seconds.max(f64::EPSILON)
    }
}

/// Average sizes of the run's events, read back from `TEPAI_EVENTS`.
#[derive(Debug, Clone, Copy)]
pub(super) struct EventSizes {
    /// The stored payload (the event body): what the raw SQLite rows carry.
    pub payload_bytes: usize,
    /// The message the relay published (the full `EventEnvelope`): what the
    /// raw JetStream messages carry.
    pub message_bytes: usize,
}

/// Reads up to [`SIZE_SAMPLES`] of the last `events` messages of the
/// events stream, spread evenly.
pub(super) async fn event_sizes(client: &Client, events: u64) -> anyhow::Result<EventSizes> {
    let js = jetstream::new(client.clone());
    let mut stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .context("opening the events stream")?;
    let last = stream
        .info()
        .await
        .context("events stream info")?
        .state
        .last_sequence;
    let first = last.saturating_sub(events.saturating_sub(1)).max(1);
    let step = ((last + 1 - first) / SIZE_SAMPLES).max(1);
    let (mut samples, mut payload, mut message) = (0, 0, 0);
    for sequence in (first..=last).step_by(usize::try_from(step).unwrap_or(1)) {
        let Ok(raw) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let Ok(envelope) = pb::EventEnvelope::decode(raw.payload.clone()) else {
            continue;
        };
        message += raw.payload.len();
        // The store keeps the envelope with only the event set.
        payload += pb::EventEnvelope {
            event: envelope.event,
            ..Default::default()
        }
        .encoded_len();
        samples += 1;
    }
    if samples == 0 {
        bail!("no event of the run could be read back from {EVENTS_STREAM}");
    }
    Ok(EventSizes {
        payload_bytes: payload / samples,
        message_bytes: message / samples,
    })
}

/// Inserts `rows` event-shaped rows into a fresh WAL database with
/// `synchronous=FULL`, [`ROWS_PER_TRANSACTION`] per transaction. Blocking.
pub(super) fn sqlite_rows(rows: u64, payload_bytes: usize) -> anyhow::Result<Measured> {
    let dir = tempfile::tempdir().context("temp directory for raw SQLite")?;
    let mut conn = Connection::open(dir.path().join("raw.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE events (
             position       INTEGER PRIMARY KEY,
             event_id       BLOB    NOT NULL UNIQUE,
             stream_id      TEXT    NOT NULL,
             stream_version INTEGER NOT NULL,
             event_type     TEXT    NOT NULL,
             payload        BLOB    NOT NULL,
             UNIQUE (stream_id, stream_version)
         );",
    )?;
    // Ids made up front: the figure is SQLite's, not uuid's. Three events
    // per stream, as a post gets (appointed, extended, service recorded).
    let streams: Vec<String> = (0..rows.div_ceil(3))
        .map(|_| format!("post-{}", uuid::Uuid::now_v7()))
        .collect();
    let event_ids: Vec<[u8; 16]> = (0..rows)
        .map(|_| *uuid::Uuid::now_v7().as_bytes())
        .collect();
    let payload: Vec<u8> = (0..payload_bytes).map(|i| (i * 31 % 251) as u8).collect();
    let started = Instant::now();
    let mut position = 0;
    while position < rows {
        let end = (position + ROWS_PER_TRANSACTION).min(rows);
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (position, event_id, stream_id, stream_version, event_type, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for row in position..end {
                let index = usize::try_from(row)?;
                let stream = streams.get(index / 3).context("stream id")?;
                let event_id = event_ids.get(index).context("event id")?;
                insert.execute(params![
                    i64::try_from(row + 1)?,
                    &event_id[..],
                    stream,
                    i64::try_from(row % 3 + 1)?,
                    "PostAppointed",
                    &payload,
                ])?;
            }
        }
        tx.commit()?;
        position = end;
    }
    Ok(Measured {
        count: rows,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Publishes `messages` messages of `payload_bytes` to a file-backed
/// stream of their own with up to [`ACKS_IN_FLIGHT`] acks outstanding, as
/// the relay does; the stream is deleted afterwards.
pub(super) async fn jetstream_publish(
    client: &Client,
    messages: u64,
    payload_bytes: usize,
) -> anyhow::Result<Measured> {
    let js = jetstream::new(client.clone());
    // A run killed halfway may have left it.
    let _ = js.delete_stream(RAW_STREAM).await;
    js.create_stream(stream::Config {
        name: RAW_STREAM.to_owned(),
        subjects: vec!["bench.raw.>".to_owned()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .context("creating the BENCH_RAW stream")?;
    let published = publish_pipelined(&js, messages, payload_bytes).await;
    let deleted = js.delete_stream(RAW_STREAM).await;
    let published = published?;
    deleted.context("deleting the BENCH_RAW stream")?;
    Ok(published)
}

async fn publish_pipelined(
    js: &jetstream::Context,
    messages: u64,
    payload_bytes: usize,
) -> anyhow::Result<Measured> {
    // Subjects shaped like the relay's `tepai.evt.post.<id>`, one per three
    // messages, so the server tracks as many subjects as for tepai.
    let subjects: Vec<String> = (0..messages.div_ceil(3))
        .map(|_| format!("bench.raw.post.{}", uuid::Uuid::now_v7()))
        .collect();
    let payload = bytes::Bytes::from(vec![b'x'; payload_bytes]);
    let mut acks: VecDeque<jetstream::context::PublishAckFuture> =
        VecDeque::with_capacity(ACKS_IN_FLIGHT);
    let started = Instant::now();
    for n in 0..messages {
        let subject = subjects
            .get(usize::try_from(n / 3)?)
            .context("subject")?
            .clone();
        if acks.len() >= ACKS_IN_FLIGHT {
            if let Some(ack) = acks.pop_front() {
                ack.await.context("a BENCH_RAW ack")?;
            }
        }
        let ack = js
            .publish(subject, payload.clone())
            .await
            .context("publishing to BENCH_RAW")?;
        acks.push_back(ack);
    }
    for ack in acks {
        ack.await.context("a BENCH_RAW ack")?;
    }
    Ok(Measured {
        count: messages,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `producers` tasks over `clients` doing `requests` requests in all,
/// each waiting for its answer, against a responder that echoes the
/// payload: NATS request/reply with nothing behind it.
pub(super) async fn echo(
    responder: Client,
    clients: &[Client],
    producers: u64,
    requests: u64,
    payload_bytes: usize,
) -> anyhow::Result<Measured> {
    let mut subscriber = responder
        .subscribe(ECHO_SUBJECT)
        .await
        .context("subscribing to bench.echo")?;
    let serve = responder.clone();
    let echo = tokio::spawn(async move {
        while let Some(message) = subscriber.next().await {
            if let Some(reply) = message.reply {
                let _ = serve.publish(reply, message.payload).await;
            }
        }
    });
    let result = echo_requests(clients, producers, requests, payload_bytes).await;
    echo.abort();
    result
}

async fn echo_requests(
    clients: &[Client],
    producers: u64,
    requests: u64,
    payload_bytes: usize,
) -> anyhow::Result<Measured> {
    let Some(first) = clients.first() else {
        bail!("no connection for the echo baseline");
    };
    // The subscription is live once one request through it comes back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while first
        .request(ECHO_SUBJECT, bytes::Bytes::from_static(b"ping"))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("the echo responder did not answer");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let payload = bytes::Bytes::from(vec![b'x'; payload_bytes]);
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let client = clients
            .get(usize::try_from(p)? % clients.len())
            .context("client")?
            .clone();
        let share = super::share(requests, producers, p);
        let payload = payload.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                if client.request(ECHO_SUBJECT, payload.clone()).await.is_err() {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.context("an echo producer panicked")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let failed = failures.load(std::sync::atomic::Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} echo requests failed");
    }
    Ok(Measured {
        count: requests,
        seconds,
    })
}
