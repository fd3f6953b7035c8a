//! `tepai ops status`: where every part of a node stands — the store's
//! head, the relay, the views and their lag, the JetStream stream, and
//! which command node holds the writer's lease.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream;

use crate::bus::lease;
use crate::bus::relay::{last_position_in_stream, Checkpoint};
use crate::bus::EVENTS_STREAM;
use crate::config::{NatsOptions, NodeOptions};
use crate::projection::Views;
use crate::store::StoreReader;

/// Show positions, checkpoints, lag, the stream's state and the lease holder.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tepai ops status
  tepai ops status --json --data-dir /var/lib/tepai")]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The node's data directory.
    #[command(flatten)]
    pub node: NodeOptions,
    /// How to reach NATS.
    #[command(flatten)]
    pub nats: NatsOptions,
}

/// Runs `tepai ops status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let mut report = Report::default();
    let store = args.node.store_path();
    if store.exists() {
        match StoreReader::open(&store).and_then(|r| r.head()) {
            Ok(head) => report.store_head = Some(head.position),
            Err(error) => report.problems.push(format!("event store: {error}")),
        }
        match Checkpoint::saved(&args.node.relay_path()) {
            Ok(position) => report.relay_position = position,
            Err(error) => report.problems.push(format!("relay checkpoint: {error}")),
        }
    }
    let views = args.node.views_dir();
    if views.path().exists() {
        match views
            .current()
            .map_err(anyhow::Error::from)
            .and_then(|p| Ok(Views::open(&p)?.checkpoint()?))
        {
            Ok(checkpoint) => report.views_checkpoint = Some(checkpoint),
            Err(error) => report.problems.push(format!("views: {error:#}")),
        }
    }
    match crate::bus::connect(&args.nats, "tepai-ops").await {
        Ok(client) => {
            let js = jetstream::new(client);
            match stream_state(&js).await {
                Ok(state) => report.stream = Some(state),
                Err(error) => report
                    .problems
                    .push(format!("stream {EVENTS_STREAM}: {error:#}")),
            }
            match writer_lease(&js).await {
                Ok(lease) => report.writer_lease = Some(lease),
                Err(error) => report.problems.push(format!("writer lease: {error:#}")),
            }
        }
        // Both the stream and the lease need NATS: one problem line says
        // it is out of reach.
        Err(error) => report
            .problems
            .push(format!("stream {EVENTS_STREAM}: {error:#}")),
    }
    let last = report
        .store_head
        .or(report.stream.as_ref().map(|s| s.last_position));
    report.views_lag = match (last, report.views_checkpoint) {
        (Some(last), Some(checkpoint)) => Some(last.saturating_sub(checkpoint)),
        _ => None,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("store head        {}", show(report.store_head));
        println!("relay position    {}", show(report.relay_position));
        println!(
            "views checkpoint  {}  (lag {})",
            show(report.views_checkpoint),
            show(report.views_lag)
        );
        match &report.stream {
            Some(s) => {
                println!(
                    "stream            {} messages, sequences {}..={}, last position {}",
                    s.messages, s.first_sequence, s.last_sequence, s.last_position
                );
                println!(
                    "stream replicas   {} ({} current, leader {})",
                    s.replicas,
                    s.current_replicas,
                    s.leader.as_deref().unwrap_or("-")
                );
            }
            None => println!("stream            -"),
        }
        println!(
            "writer lease      {}",
            show_lease(report.writer_lease.as_ref())
        );
        for problem in &report.problems {
            println!("problem           {problem}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How long status waits for the lease's key.
const LEASE_READ_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Default, serde::Serialize)]
struct StreamState {
    messages: u64,
    first_sequence: u64,
    last_sequence: u64,
    last_position: u64,
    /// Copies JetStream keeps of the stream.
    replicas: usize,
    /// The server leading the stream, on a cluster.
    leader: Option<String>,
    /// Copies up to date with the leader, the leader's own included.
    current_replicas: usize,
}

/// The writer's lease; `holder` is `None` when no node holds it (none
/// runs with `--failover`, or the last holder released it).
#[derive(Debug, Default, serde::Serialize)]
struct WriterLease {
    holder: Option<String>,
    /// The holder's lease period.
    period_ms: Option<u64>,
    /// Since the holder last took or renewed the lease, by this machine's
    /// clock against the NATS server's.
    since_renewal_ms: Option<u64>,
}

#[derive(Debug, Default, serde::Serialize)]
struct Report {
    store_head: Option<u64>,
    relay_position: Option<u64>,
    views_checkpoint: Option<u64>,
    views_lag: Option<u64>,
    stream: Option<StreamState>,
    writer_lease: Option<WriterLease>,
    problems: Vec<String>,
}

async fn writer_lease(js: &jetstream::Context) -> anyhow::Result<WriterLease> {
    // A NATS user that may not read the bucket (`tepai-query` in nats.conf)
    // gets no answer at all rather than a refusal: wait briefly, not for
    // the client's whole request timeout.
    let held = tokio::time::timeout(LEASE_READ_TIMEOUT, lease::holder(js))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no answer within {} s; this NATS user may lack read access to the bucket {}",
                LEASE_READ_TIMEOUT.as_secs(),
                lease::LEASE_BUCKET
            )
        })??;
    let Some(held) = held else {
        return Ok(WriterLease::default());
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Ok(WriterLease {
        holder: Some(held.holder),
        period_ms: Some(held.period_ms),
        // Clocks that disagree can put the renewal in the future: say 0.
        since_renewal_ms: Some(u64::try_from(now_ms - held.renewed_at_ms).unwrap_or(0)),
    })
}

fn show_lease(lease: Option<&WriterLease>) -> String {
    match lease {
        None => "-".to_owned(),
        Some(WriterLease {
            holder: Some(holder),
            period_ms,
            since_renewal_ms,
        }) => format!(
            "{holder}, renewed {} ms ago (period {} ms)",
            show(*since_renewal_ms),
            show(*period_ms)
        ),
        Some(_) => "none".to_owned(),
    }
}

async fn stream_state(js: &jetstream::Context) -> anyhow::Result<StreamState> {
    let mut stream = js.get_stream(EVENTS_STREAM).await?;
    let info = stream.info().await?.clone();
    let state = info.state;
    let (leader, current_replicas) = match &info.cluster {
        Some(cluster) => (
            cluster.leader.clone(),
            usize::from(cluster.leader.is_some())
                + cluster.replicas.iter().filter(|p| p.current).count(),
        ),
        None => (None, 1),
    };
    Ok(StreamState {
        replicas: info.config.num_replicas,
        leader,
        current_replicas,
        messages: state.messages,
        first_sequence: state.first_sequence,
        last_sequence: state.last_sequence,
        last_position: last_position_in_stream(js).await?,
    })
}

fn show(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}
