//! `tepai ops rebuild`: folds the history into a new generation of the
//! views and makes it live with one atomic swap, while the query service
//! keeps answering from the old one. From the event store, or from
//! JetStream for a query node that has no store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use futures::StreamExt;
use prost::Message;

use super::progress::Progress;
use crate::bus::relay::last_position_in_stream;
use crate::bus::EVENTS_STREAM;
use crate::config::{NatsOptions, NodeOptions};
use crate::projection::Projection;
use crate::store::StoreReader;
use crate::wire::pb;

/// Where a rebuild reads the history from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// The node's event store (a command node, or `tepai up`).
    Store,
    /// The JetStream stream `TEPAI_EVENTS` (a query node).
    Nats,
}

/// Which views to rebuild. They share one file, so each name rebuilds them
/// all; the names are accepted so scripts can say what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ViewName {
    /// Every view.
    All,
    /// The assignments view.
    Assignments,
    /// Commissioner details.
    Commissioner,
    /// Workstation details.
    Workstation,
    /// The city matrix.
    CityMatrix,
}

/// Rebuild the views into a new file and swap it in atomically.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tepai ops rebuild                                  # from the store, swapped in live
  tepai ops rebuild --source nats                    # on a query node
  tepai ops rebuild --to-position 5000 --output audit.db   # the views as they stood after event 5000")]
pub struct RebuildArgs {
    /// Which views (they share one file and are rebuilt together).
    #[arg(long, value_enum, default_value = "all")]
    pub view: ViewName,
    /// Build the views as they stood after this event, into --output (or
    /// views/audit-at-N.db); the live views are not touched.
    #[arg(long)]
    pub to_position: Option<u64>,
    /// Where to write an audit rebuild (with --to-position).
    #[arg(long, requires = "to_position")]
    pub output: Option<PathBuf>,
    /// Where to read the history from.
    #[arg(long, value_enum, default_value = "store")]
    pub source: Source,
    /// The node's data directory.
    #[command(flatten)]
    pub node: NodeOptions,
    /// How to reach NATS.
    #[command(flatten)]
    pub nats: NatsOptions,
}

/// Events per transaction of a rebuild from the store. The views fold a
/// batch in memory and write each row once, in key order, so a large batch
/// is cheaper per event; this many take a few tens of MB.
const STORE_BATCH: usize = 50_000;

/// Folds the store's events after the views' checkpoint, up to `to` (or
/// until the store has nothing newer), into the views at `target`. Returns
/// the checkpoint reached.
pub fn from_store(
    store: &Path,
    target: &Path,
    to: Option<u64>,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let reader = StoreReader::open(store)
        .with_context(|| format!("opening the event store {}", store.display()))?;
    let mut projection = Projection::open_for_rebuild(target)?;
    loop {
        let head = reader.head()?.position;
        let end = to.map_or(head, |to| to.min(head));
        progress.set_total(end);
        let from = projection.checkpoint();
        if from >= end {
            return Ok(projection.finish()?);
        }
        let batch = reader.read_from(
            from,
            STORE_BATCH.min(usize::try_from(end - from).unwrap_or(STORE_BATCH)),
        )?;
        let outcome = projection.apply_payloads(
            batch
                .iter()
                .map(|stored| (stored.position, stored.payload.as_slice())),
        )?;
        progress.advance(outcome.applied as u64);
    }
}

/// Folds the stream's events up to `to` (or its last event) into the views
/// at `target`, for a node without a store.
pub async fn from_nats(
    nats: &NatsOptions,
    target: &Path,
    to: Option<u64>,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let client = crate::bus::connect(nats, "tepai-ops").await?;
    let js = async_nats::jetstream::new(client);
    let last = last_position_in_stream(&js).await?;
    let end = to.map_or(last, |to| to.min(last));
    progress.set_total(end);
    let mut projection = Projection::open_for_rebuild(target)?;
    if projection.checkpoint() >= end {
        return Ok(projection.finish()?);
    }
    let stream = js.get_stream(EVENTS_STREAM).await?;
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: projection.checkpoint() + 1,
            },
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await?;
    while projection.checkpoint() < end {
        let mut fetched = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_secs(2))
            .messages()
            .await?;
        let mut envelopes = Vec::new();
        while let Some(message) = fetched.next().await {
            let message = message.map_err(|e| anyhow::anyhow!("reading the stream: {e}"))?;
            let envelope = pb::EventEnvelope::decode(message.payload.as_ref())?;
            if envelope.global_position <= end {
                envelopes.push(envelope);
            }
        }
        if envelopes.is_empty() {
            bail!(
                "the stream stopped at position {} before {end}",
                projection.checkpoint()
            );
        }
        let outcome = tokio::task::block_in_place(|| projection.apply_batch(&envelopes))?;
        progress.advance(outcome.applied as u64);
    }
    Ok(projection.finish()?)
}

/// Runs `tepai ops rebuild`.
pub async fn run(args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let views = args.node.views_dir();
    let _lock = views.lock_rebuild()?;
    let target = match (args.to_position, &args.output) {
        (Some(_), Some(output)) => output.clone(),
        (Some(n), None) => views.path().join(format!("audit-at-{n}.db")),
        (None, _) => views.next()?,
    };
    if args.to_position.is_some() && target.exists() {
        bail!(
            "{} exists; remove it or pass another --output",
            target.display()
        );
    }
    if args.view != ViewName::All {
        eprintln!("note: the views share one file; all of them are rebuilt");
    }
    let mut progress = Progress::new("rebuild", 0);
    let checkpoint = match args.source {
        Source::Store => {
            let store = args.node.store_path();
            if !store.exists() {
                bail!(
                    "no event store at {}; on a query node use --source nats",
                    store.display()
                );
            }
            let target = target.clone();
            tokio::task::block_in_place(|| {
                from_store(&store, &target, args.to_position, &mut progress)
            })?
        }
        Source::Nats => from_nats(&args.nats, &target, args.to_position, &mut progress).await?,
    };
    progress.finish();
    match args.to_position {
        Some(_) => println!(
            "views as they stood after position {checkpoint} written to {}",
            target.display()
        ),
        None => {
            views.activate(&target)?;
            println!(
                "views rebuilt to position {checkpoint} in {} and made live; a running node switches to them within a second",
                target.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
