//! `tepai ops republish`: re-sends a range of stored events to JetStream.
//! Positions the stream already holds are skipped (unless --force), so the
//! stream keeps each event once; resent events keep their event id as
//! `Nats-Msg-Id`, so JetStream drops any it still remembers, and the views
//! skip positions they have applied. A stream deleted on the NATS side is
//! recreated and refilled.

use std::process::ExitCode;

use anyhow::bail;

use crate::bus::relay::{ensure_stream, last_position_in_stream, publish_events};
use crate::config::{NatsOptions, NodeOptions};
use crate::store::StoreReader;

/// Re-send stored events to JetStream.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  tepai ops republish --from 1               # refill a deleted or truncated stream
  tepai ops republish --from 100 --to 200 --force   # resend even what the stream holds")]
pub struct RepublishArgs {
    /// First position to send.
    #[arg(long)]
    pub from: u64,
    /// Last position to send (default: the store's head).
    #[arg(long)]
    pub to: Option<u64>,
    /// Send positions the stream already holds too. JetStream drops them
    /// within its 2-minute duplicate window; later they would be stored
    /// twice (the views would still skip them).
    #[arg(long)]
    pub force: bool,
    /// The node's data directory.
    #[command(flatten)]
    pub node: NodeOptions,
    /// How to reach NATS.
    #[command(flatten)]
    pub nats: NatsOptions,
}

const BATCH: usize = 1000;

/// Runs `tepai ops republish`.
pub async fn run(args: RepublishArgs) -> anyhow::Result<ExitCode> {
    if args.from == 0 {
        bail!("--from: positions start at 1");
    }
    let reader = StoreReader::open(&args.node.store_path())?;
    let head = reader.head()?.position;
    let to = args.to.unwrap_or(head).min(head);
    if args.from > to {
        bail!(
            "nothing to send: the range {}..={to} is empty (the store's head is {head})",
            args.from
        );
    }
    let client = crate::bus::connect(&args.nats, "tepai-ops").await?;
    let js = async_nats::jetstream::new(client.clone());
    ensure_stream(&js, None).await?;
    let in_stream = last_position_in_stream(&js).await?;
    let start = if args.force {
        args.from
    } else {
        args.from.max(in_stream + 1)
    };
    if start > to {
        println!("the stream already holds positions {}..={to} (it ends at {in_stream}); nothing sent (--force resends)", args.from);
        return Ok(ExitCode::SUCCESS);
    }
    let (mut sent, mut duplicates) = (0u64, 0usize);
    let mut after = start - 1;
    while after < to {
        let limit = BATCH.min(usize::try_from(to - after).unwrap_or(BATCH));
        let events = tokio::task::block_in_place(|| reader.read_from(after, limit))?;
        let Some(last) = events.last().map(|e| e.position) else {
            break;
        };
        duplicates += publish_events(&js, &events).await?;
        sent += events.len() as u64;
        after = last;
    }
    client.flush().await?;
    println!(
        "sent positions {start}..={to}: {sent} events, {} newly stored, {duplicates} dropped by JetStream as duplicates",
        sent - duplicates as u64
    );
    if start > args.from {
        println!(
            "skipped {}..={}: the stream already holds them",
            args.from,
            start - 1
        );
    }
    Ok(ExitCode::SUCCESS)
}
