//! `tepai ops status`: where every part of a node stands — the store's
//! head, the relay, the views and their lag, and the JetStream stream.

use std::process::ExitCode;

use crate::bus::relay::{last_position_in_stream, Checkpoint};
use crate::bus::EVENTS_STREAM;
use crate::config::{NatsOptions, NodeOptions};
use crate::projection::Views;
use crate::store::StoreReader;

/// Show positions, checkpoints, lag and the stream's state.
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

#[derive(Debug, Default, serde::Serialize)]
struct Report {
    store_head: Option<u64>,
    relay_position: Option<u64>,
    views_checkpoint: Option<u64>,
    views_lag: Option<u64>,
    stream: Option<StreamState>,
    problems: Vec<String>,
}

async fn stream_state(nats: &NatsOptions) -> anyhow::Result<StreamState> {
    let client = crate::bus::connect(nats, "tepai-ops").await?;
    let js = async_nats::jetstream::new(client);
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
        last_position: last_position_in_stream(&js).await?,
    })
}

fn show(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
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
    match stream_state(&args.nats).await {
        Ok(state) => report.stream = Some(state),
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
        for problem in &report.problems {
            println!("problem           {problem}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
