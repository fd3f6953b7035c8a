//! `tepai ops verify`: checks that the record is whole and that every copy
//! of it agrees — the store's integrity chain and gap-free positions, the
//! live views against a fresh rebuild, and JetStream against the store
//! (each message's position, event id, `Tepai-Hash` and payload).
//! Exits 0 only when everything agrees.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use futures::StreamExt;
use prost::Message;
use rusqlite::{Connection, OpenFlags};

use super::progress::Progress;
use super::rebuild;
use crate::bus::relay::Checkpoint;
use crate::bus::{EVENTS_STREAM, HEADER_HASH};
use crate::config::{NatsOptions, NodeOptions};
use crate::projection::digest;
use crate::store::{chain, StoreReader, StoredEvent};
use crate::wire::{self, pb};

/// Verify the store's chain, the views and the stream.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tepai ops verify                 # everything; exit 0 only when all agree
  tepai ops verify --no-stream     # without NATS
  tepai ops verify --json")]
pub struct VerifyArgs {
    /// Skip comparing JetStream with the store.
    #[arg(long)]
    pub no_stream: bool,
    /// Skip comparing the views with a rebuild.
    #[arg(long)]
    pub no_views: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The node's data directory.
    #[command(flatten)]
    pub node: NodeOptions,
    /// How to reach NATS.
    #[command(flatten)]
    pub nats: NatsOptions,
}

/// Runs `tepai ops verify`.
pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let failed = |check: &'static str, error: anyhow::Error| Check {
        check,
        ok: false,
        detail: format!("cannot check: {error:#}"),
    };
    let mut checks = Vec::new();
    let has_store = args.node.store_path().exists();
    if has_store {
        checks.push(
            tokio::task::block_in_place(|| chain(&args))
                .unwrap_or_else(|e| failed("store chain", e)),
        );
    }
    if !args.no_views {
        checks.push(
            tokio::task::block_in_place(|| views(&args)).unwrap_or_else(|e| failed("views", e)),
        );
    }
    if !args.no_stream && has_store {
        checks.push(stream(&args).await.unwrap_or_else(|e| failed("stream", e)));
    }
    let all_ok = checks.iter().all(|c| c.ok);
    if args.json {
        println!("{}", serde_json::json!({ "ok": all_ok, "checks": checks }));
    } else {
        for c in &checks {
            println!(
                "{:<12} {:<4} {}",
                c.check,
                if c.ok { "ok" } else { "FAIL" },
                c.detail
            );
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Debug, serde::Serialize)]
struct Check {
    check: &'static str,
    ok: bool,
    detail: String,
}

fn chain(args: &VerifyArgs) -> anyhow::Result<Check> {
    let reader = StoreReader::open(&args.node.store_path())?;
    let report = reader.verify_chain()?;
    if let Some(fault) = report.first_fault {
        return Ok(Check {
            check: "store chain",
            ok: false,
            detail: fault.to_string(),
        });
    }
    // A cut tail breaks no link; the relay remembers how far it got.
    if let Some(relayed) = Checkpoint::saved(&args.node.relay_path())? {
        if relayed > report.head.position {
            return Ok(Check {
                check: "store chain",
                ok: false,
                detail: format!(
                    "the store ends at position {} but the relay published up to {relayed}: events {}..={relayed} are missing",
                    report.head.position,
                    report.head.position + 1
                ),
            });
        }
    }
    Ok(Check {
        check: "store chain",
        ok: true,
        detail: format!(
            "{} events, positions 1..={} gap-free, every hash links",
            report.events, report.head.position
        ),
    })
}

fn views(args: &VerifyArgs) -> anyhow::Result<Check> {
    let Some(live_path) = args.node.views_dir().live()? else {
        return Ok(Check {
            check: "views",
            ok: true,
            detail: "no views on this node yet".into(),
        });
    };
    let live = Connection::open_with_flags(&live_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening the live views {}", live_path.display()))?;
    // One read transaction: the checkpoint and the rows are one snapshot,
    // even while the node keeps applying events.
    live.execute_batch("BEGIN")?;
    let checkpoint: u64 = live.query_row("SELECT position FROM checkpoint", [], |r| r.get(0))?;
    let fresh_dir = tempfile::Builder::new()
        .prefix("verify-")
        .tempdir_in(args.node.views_dir().path())?;
    let fresh_path = fresh_dir.path().join("views.db");
    let mut progress = Progress::new("rebuilding for comparison", checkpoint);
    if args.node.store_path().exists() {
        rebuild::from_store(
            &args.node.store_path(),
            &fresh_path,
            Some(checkpoint),
            &mut progress,
        )?;
    } else {
        tokio::runtime::Handle::current().block_on(rebuild::from_nats(
            &args.nats,
            &fresh_path,
            Some(checkpoint),
            &mut progress,
        ))?;
    }
    progress.finish();
    let fresh = Connection::open_with_flags(&fresh_path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (a, b) = (digest::digests(&live)?, digest::digests(&fresh)?);
    for (x, y) in a.iter().zip(&b) {
        if x != y {
            let row = digest::first_difference(&live, &fresh, &x.table)?.unwrap_or_default();
            return Ok(Check {
                check: "views",
                ok: false,
                detail: format!(
                    "view table {} differs from a rebuild at position {checkpoint}: {row}",
                    x.table
                ),
            });
        }
    }
    if a.len() != b.len() {
        return Ok(Check {
            check: "views",
            ok: false,
            detail: "the live views have other tables than a rebuild".into(),
        });
    }
    live.execute_batch("COMMIT")?;
    let rows: u64 = a.iter().map(|t| t.rows).sum();
    Ok(Check {
        check: "views",
        ok: true,
        detail: format!(
            "{} tables, {rows} rows equal a rebuild at position {checkpoint}",
            a.len()
        ),
    })
}

/// One message of the stream, as verify compares it.
struct StreamEvent {
    sequence: u64,
    /// The `Tepai-Hash` header, if the message has one.
    hash: Option<String>,
    payload: bytes::Bytes,
}

/// What differs between a stream message and the store's event at its
/// place, or `None` when they agree: the same position and event id, the
/// store's chained hash in the header, and the payload the relay would
/// publish for that event, byte for byte.
fn difference(message: &StreamEvent, stored: Option<&StoredEvent>) -> Option<String> {
    let sequence = message.sequence;
    let store_has = || {
        stored.map_or("nothing (the store ends earlier)".to_owned(), |e| {
            format!("position {} (event {})", e.position, e.event_id)
        })
    };
    let envelope = match pb::EventEnvelope::decode(message.payload.as_ref()) {
        Ok(envelope) => envelope,
        Err(error) => {
            return Some(format!(
                "stream message {sequence} is not an event ({error}); the store has {} there",
                store_has()
            ))
        }
    };
    let Some(stored) = stored.filter(|e| {
        e.position == envelope.global_position
            && e.event_id.hyphenated().to_string() == envelope.event_id
    }) else {
        return Some(format!(
            "stream message {sequence} holds position {} (event {}); the store has {} there",
            envelope.global_position,
            envelope.event_id,
            store_has()
        ));
    };
    let at = format!("stream message {sequence} (position {})", stored.position);
    match &message.hash {
        None => return Some(format!("{at} has no {HEADER_HASH} header")),
        Some(hash) if chain::hash_from_hex(hash) != Ok(stored.hash) => {
            return Some(format!(
                "{at} carries {HEADER_HASH} {hash}; the store's hash there is {}",
                chain::hash_to_hex(&stored.hash)
            ))
        }
        Some(_) => {}
    }
    let expected = match wire::event_envelope(stored) {
        Ok(expected) => expected,
        Err(error) => {
            return Some(format!(
                "{at}: the store's event there cannot be published: {error}"
            ))
        }
    };
    if expected.encode_to_vec() == message.payload.as_ref() {
        return None;
    }
    let fields = [
        ("stream_id", envelope.stream_id != expected.stream_id),
        (
            "stream_version",
            envelope.stream_version != expected.stream_version,
        ),
        ("recorded_at", envelope.recorded_at != expected.recorded_at),
        (
            "correlation_id",
            envelope.correlation_id != expected.correlation_id,
        ),
        (
            "causation_id",
            envelope.causation_id != expected.causation_id,
        ),
        ("actor", envelope.actor != expected.actor),
        ("event", envelope.event != expected.event),
    ];
    let differing: Vec<&str> = fields
        .iter()
        .filter(|(_, differs)| *differs)
        .map(|(name, _)| *name)
        .collect();
    Some(if differing.is_empty() {
        format!(
            "{at}: the payload's bytes differ from the store's event, though its fields \
             decode the same (fields this build does not know, or another encoding)"
        )
    } else {
        format!(
            "{at}: the payload differs from the store's event; fields that differ: {}",
            differing.join(", ")
        )
    })
}

async fn stream(args: &VerifyArgs) -> anyhow::Result<Check> {
    let reader = StoreReader::open(&args.node.store_path())?;
    let client = crate::bus::connect(&args.nats, "tepai-ops").await?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .context("the stream TEPAI_EVENTS")?;
    let messages = stream.info().await?.state.messages;
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await?;
    let head = reader.head()?.position;
    let mut seen: u64 = 0;
    // What the stream holds past the store's head.
    let mut beyond: Vec<pb::EventEnvelope> = Vec::new();
    while seen < messages {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_secs(2))
            .messages()
            .await?;
        let mut fetched = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| anyhow::anyhow!("reading the stream: {e}"))?;
            fetched.push(StreamEvent {
                sequence: message.info().map(|i| i.stream_sequence).unwrap_or(0),
                hash: message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(HEADER_HASH))
                    .map(|v| v.as_str().to_owned()),
                payload: message.payload.clone(),
            });
        }
        if fetched.is_empty() {
            break;
        }
        let count = fetched.len() as u64;
        let stored = reader.read_from(seen, fetched.len())?;
        for (i, message) in fetched.into_iter().enumerate() {
            if seen + i as u64 >= head {
                beyond.push(
                    pb::EventEnvelope::decode(message.payload.as_ref()).with_context(|| {
                        format!("stream message {} is not an event", message.sequence)
                    })?,
                );
                continue;
            }
            if let Some(detail) = difference(&message, stored.get(i)) {
                return Ok(Check {
                    check: "stream",
                    ok: false,
                    detail,
                });
            }
        }
        seen += count;
    }
    // A standby appends a command's events once the next command's first
    // event shows them complete (or when it takes over), so its store ends
    // before the stream's last command: that is where it should be.
    if let Some(first) = beyond.first() {
        let last_stored = reader.read_from(head.saturating_sub(1), 1)?;
        let one_command = seen == head + beyond.len() as u64
            && beyond.iter().all(|e| e.causation_id == first.causation_id)
            && last_stored
                .first()
                .is_none_or(|e| e.causation_id != first.causation_id);
        if one_command {
            return Ok(Check {
                check: "stream",
                ok: true,
                detail: format!(
                    "{seen} events; the store has the first {head}, the same events with the \
                     same hashes in the same order, and not yet the last command's {} (a standby appends them once the next \
                     command shows them complete)",
                    beyond.len()
                ),
            });
        }
    }
    if seen > head {
        return Ok(Check {
            check: "stream",
            ok: false,
            detail: format!(
                "the stream holds {seen} events, the store {head}: the store lacks positions {}..={seen}, more than one command's",
                head + 1
            ),
        });
    }
    if seen != head {
        return Ok(Check {
            check: "stream",
            ok: false,
            detail: format!(
                "the stream holds {seen} events, the store {head}: positions {}..={head} are missing from the stream (the relay or `tepai ops republish` restores them)",
                seen + 1
            ),
        });
    }
    Ok(Check {
        check: "stream",
        ok: true,
        detail: format!(
            "{seen} events, the same events with the same hashes in the same order as the store"
        ),
    })
}
