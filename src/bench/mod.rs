//! `tepai bench`: the load tool. Producers send command chains over
//! `tepai.cmd.submit` (register a commissioner, appoint a post, extend
//! its term, record a service; one appointment in ten over the hours
//! limit), a watcher polls `tepai.query.status` to time the relay and the
//! views, and three baselines measured in the same run (raw SQLite inserts,
//! raw JetStream publishes, raw NATS request/reply) say how close tepai
//! comes to the parts it is built on.
//!
//! With `--spawn` the bench starts its own node (`tepai up` on a free
//! port, with its own nats-server) and reads both processes' CPU and peak
//! memory from `/proc`.
//!
//! With `--batch N` the producers send batches of N commands on
//! `tepai.cmd.submit_batch` instead, and the report's ratios stay like
//! with like: events against raw JetStream messages, requests (batches)
//! against raw request/reply of the same size ([`report::like_for_like`]).
//!
//! Producers are closed-loop: each waits for an answer before its next
//! command, since a chain's commands depend on each other. With `--rate`
//! a producer that falls behind its schedule sends at once, and each
//! latency counts from the slot its request was due in, not from the
//! send, so a stall that made a producer late shows in its figures (no
//! coordinated omission).

mod baseline;
mod load;
mod node;
mod report;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use async_nats::Client;
use tokio::sync::watch;

use crate::bus;
use crate::config::NatsOptions;
use load::{Pace, Shared, Tally};
use node::{SpawnedNode, Usage};
use report::{Baseline, Baselines, Latency, ProcessFigures, Report, Stage};

/// Producers sharing one NATS connection: enough connections that one
/// client's read loop is not the bottleneck, few enough to stay realistic.
const PRODUCERS_PER_CONNECTION: u64 = 16;
/// How long the relay and the views may take to reach the head after the
/// last answer before the run reports them as behind.
const CATCH_UP_WITHIN: Duration = Duration::from_secs(120);
/// How long the setup's events may take to reach the views.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);

/// `tepai bench`: load a node with command chains and measure it.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent producers, each sending one command at a time.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub producers: u64,
    /// Commands in all, across the producers.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub commands: u64,
    /// Commands per second across all producers, each producer paced
    /// evenly; 0 sends as fast as the answers come.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Send batches of this many commands on tepai.cmd.submit_batch (at
    /// most 1000), each after the previous one's answer; 0 sends one
    /// command per request. With --rate, a producer sends one batch per
    /// slot and the batch's latency counts from its slot.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub batch: u64,
    /// Start a node of its own (`tepai up` with its own nats-server in a
    /// temp directory) and stop it afterwards; the NATS options are then
    /// ignored.
    #[arg(long)]
    pub spawn: bool,
    /// Print one JSON object with every figure instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Skip the raw SQLite, JetStream and NATS request/reply baselines.
    #[arg(long)]
    pub skip_baselines: bool,
    /// The node to load, when not `--spawn`.
    #[command(flatten)]
    pub nats: NatsOptions,
}

/// Runs the bench and prints its report. Exits 0 unless the run itself
/// failed (no node, setup refused); failed commands are reported, not
/// fatal.
pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let spawned = if args.spawn {
        Some(SpawnedNode::start().await?)
    } else {
        None
    };
    let nats = spawned
        .as_ref()
        .map_or_else(|| args.nats.clone(), SpawnedNode::nats_options);
    let node_pid = spawned.as_ref().and_then(SpawnedNode::pid);
    let measured = measure(&args, &nats, node_pid).await;
    let stopped = match spawned {
        Some(node) => Some(
            tokio::task::spawn_blocking(move || node.stop())
                .await
                .context("stopping the node")?,
        ),
        None => None,
    };
    let mut report = measured?;
    report.nats_url = nats.nats_url;
    report.spawned = args.spawn;
    report.node_stopped_cleanly = match stopped {
        Some(Ok(clean)) => Some(clean),
        Some(Err(error)) => {
            eprintln!("warning: {error:#}");
            Some(false)
        }
        None => None,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}

/// Producer `index`'s part of `total` split over `parts`.
pub(crate) fn share(total: u64, parts: u64, index: u64) -> u64 {
    total / parts + u64::from(index < total % parts)
}

fn seconds_between(from: Option<Instant>, to: Option<Instant>) -> Option<f64> {
    Some(to?.saturating_duration_since(from?).as_secs_f64())
}

fn per_second(count: u64, seconds: Option<f64>) -> Option<f64> {
    seconds.map(|s| count as f64 / s.max(f64::EPSILON))
}

/// CPU and memory of the node, its nats-server and this process.
#[derive(Debug, Clone, Copy, Default)]
struct Usages {
    node: Option<Usage>,
    nats: Option<Usage>,
    own: Option<Usage>,
}

impl Usages {
    fn read(node: Option<u32>, nats: Option<u32>) -> Self {
        Self {
            node: node.and_then(|pid| node::usage(&pid.to_string())),
            nats: nats.and_then(|pid| node::usage(&pid.to_string())),
            own: node::usage("self"),
        }
    }
}

fn spent(before: Option<Usage>, after: Option<Usage>) -> Option<ProcessFigures> {
    let (before, after) = (before?, after?);
    Some(ProcessFigures {
        cpu_s: after.cpu_s - before.cpu_s,
        peak_rss_kib: after.peak_rss_kib,
    })
}

/// Waits until the relay and the views hold everything written so far and
/// returns that head, so the load starts on a quiet node.
async fn settle(client: &Client) -> anyhow::Result<u64> {
    let deadline = Instant::now() + SETTLE_WITHIN;
    loop {
        let status = load::status(client, Duration::from_secs(5)).await?;
        let head = status.last_position;
        if status.relay_position >= head && load::views_checkpoint(&status) >= head {
            return Ok(head);
        }
        if Instant::now() > deadline {
            bail!(
                "the views did not reach head {head} within {}s before the load",
                SETTLE_WITHIN.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn measure(
    args: &BenchArgs,
    nats: &NatsOptions,
    node_pid: Option<u32>,
) -> anyhow::Result<Report> {
    let mut clients = Vec::new();
    for i in 0..args.producers.div_ceil(PRODUCERS_PER_CONNECTION) {
        clients.push(bus::connect(nats, &format!("tepai-bench-{i}")).await?);
    }
    let control = bus::connect(nats, "tepai-bench-control").await?;
    let correlation = format!("bench-{}", uuid::Uuid::now_v7());
    let workstations = load::workstations_for(args.commands);
    let stations = load::establish_workstations(&control, workstations, &correlation).await?;
    let head_before = settle(&control).await?;

    let nats_pid = node_pid.and_then(node::nats_server_of);
    let before = Usages::read(node_pid, nats_pid);
    // Its own connection, so polls do not queue behind the producers'.
    let watcher_client = bus::connect(nats, "tepai-bench-watcher").await?;
    let (target, target_rx) = watch::channel(None);
    let watcher = tokio::spawn(load::watch_progress(
        watcher_client,
        target_rx,
        CATCH_UP_WITHIN,
    ));

    let shared = Arc::new(Shared::new(stations, correlation));
    let start = tokio::time::Instant::now();
    let mut producers = Vec::new();
    for p in 0..args.producers {
        let pace = (args.rate > 0).then(|| {
            let per_request = args.batch.max(1) as f64;
            let every =
                Duration::from_secs_f64(args.producers as f64 * per_request / args.rate as f64);
            Pace {
                // Staggered so the producers' sends interleave evenly.
                first: start + every.mul_f64(p as f64 / args.producers as f64),
                every,
            }
        });
        let client = clients
            .get(usize::try_from(p)? % clients.len().max(1))
            .context("no NATS connection")?
            .clone();
        let budget = share(args.commands, args.producers, p);
        producers.push(if args.batch > 0 {
            tokio::spawn(load::produce_batches(
                client,
                shared.clone(),
                budget,
                args.batch,
                pace,
            ))
        } else {
            tokio::spawn(load::produce(client, shared.clone(), budget, pace))
        });
    }
    let mut tally = Tally::default();
    for producer in producers {
        tally.merge(producer.await.context("a producer panicked")?);
    }

    let status = load::status(&control, Duration::from_secs(10)).await?;
    let head_after = status
        .last_position
        .max(tally.max_position)
        .max(head_before);
    let _ = target.send(Some(head_after));
    let watched = watcher.await.context("the watcher panicked")?;
    let after = Usages::read(node_pid, nats_pid);

    let wall_s = seconds_between(tally.first_send, tally.last_answer).unwrap_or(0.0);
    let over_wall = |count: u64| count as f64 / wall_s.max(f64::EPSILON);
    let events_in_run = head_after - head_before;
    let stage = |reached: Option<Instant>| {
        let seconds = seconds_between(tally.first_ack, reached);
        Stage {
            caught_up: reached.is_some(),
            seconds,
            events_per_s: per_second(events_in_run, seconds),
        }
    };
    let mut visible = Vec::new();
    let mut visible_unmeasured = 0;
    for (position, acked) in &tally.visibility {
        match watched.views_reached(*position) {
            Some(seen) => visible.push(
                u64::try_from(seen.saturating_duration_since(*acked).as_micros())
                    .unwrap_or(u64::MAX),
            ),
            None => visible_unmeasured += 1,
        }
    }
    let views_reached = watched.views_reached(head_after);
    let end_to_end_s = seconds_between(tally.first_send, views_reached);
    let errors = tally.errors();
    let rejected = tally.rejected_by_code.values().sum();
    let rates = report::like_for_like(report::Counts {
        events: events_in_run,
        end_to_end_s,
        requests_answered: tally.requests_answered,
        wall_s,
    });
    let mut report = Report {
        producers: args.producers,
        commands: args.commands,
        rate: args.rate,
        batch: args.batch,
        requests: tally.requests,
        requests_answered: tally.requests_answered,
        requests_per_s: rates.requests_per_s,
        workstations,
        sent: tally.sent,
        answered: tally.answered,
        accepted: tally.accepted,
        rejected,
        errors,
        wall_s,
        commands_per_s: over_wall(tally.answered),
        accepted_per_s: over_wall(tally.accepted),
        events_written: tally.events,
        accepted_events_per_s: over_wall(tally.events),
        ack_latency: Latency::of(std::mem::take(&mut tally.latencies_us)),
        visible_latency: Latency::of(visible),
        visible_unmeasured,
        failed_status_polls: watched.failed_polls,
        head_before,
        head_after,
        events_in_run,
        relay: stage(watched.relay_reached(head_after)),
        views: stage(views_reached),
        end_to_end_s,
        end_to_end_commands_per_s: per_second(tally.answered, end_to_end_s),
        end_to_end_events_per_s: rates.events_end_to_end_per_s,
        node: spent(before.node, after.node),
        nats_server: spent(before.nats, after.nats),
        load_generator: spent(before.own, after.own),
        ..Default::default()
    };
    let envelope_bytes =
        usize::try_from(tally.envelope_bytes / tally.sent.max(1)).unwrap_or(usize::MAX);
    let request_bytes =
        usize::try_from(tally.request_bytes / tally.requests.max(1)).unwrap_or(usize::MAX);
    report.rejected_by_code = std::mem::take(&mut tally.rejected_by_code);
    report.rejected_by_rule = std::mem::take(&mut tally.rejected_by_rule);
    report.errors_by_kind = std::mem::take(&mut tally.errors_by_kind);
    report.error_examples = std::mem::take(&mut tally.error_examples);
    if !args.skip_baselines {
        report.baselines = Some(
            baselines(
                &report,
                &control,
                nats,
                &clients,
                Requests {
                    count: tally.requests,
                    bytes: request_bytes,
                    envelope_bytes,
                },
            )
            .await,
        );
    }
    Ok(report)
}

/// The run's requests, for the echo baseline to repeat.
struct Requests {
    /// How many were sent.
    count: u64,
    /// Their average size.
    bytes: usize,
    /// The average command envelope's size.
    envelope_bytes: usize,
}

/// Measures the three baselines with the run's counts and sizes. A
/// baseline that fails is reported as such; the others still run.
async fn baselines(
    report: &Report,
    control: &Client,
    nats: &NatsOptions,
    clients: &[Client],
    requests: Requests,
) -> Baselines {
    let envelope_bytes = requests.envelope_bytes;
    let mut out = Baselines {
        envelope_bytes,
        request_bytes: requests.bytes,
        ..Default::default()
    };
    let events = report.events_written;
    if events == 0 {
        out.failed
            .insert("all".into(), "tepai wrote no events to compare with".into());
        return out;
    }
    match baseline::event_sizes(control, report.events_in_run.max(1)).await {
        Ok(sizes) => {
            out.event_payload_bytes = sizes.payload_bytes;
            out.event_message_bytes = sizes.message_bytes;
        }
        Err(error) => {
            // Commands and their events are close in size; better a near
            // guess than no baseline.
            out.failed.insert(
                "event sizes".into(),
                format!("{error:#}; using the envelope size"),
            );
            out.event_payload_bytes = envelope_bytes;
            out.event_message_bytes = envelope_bytes;
        }
    }

    let payload = out.event_payload_bytes;
    let sqlite = tokio::task::spawn_blocking(move || baseline::sqlite_rows(events, payload))
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
    match sqlite {
        Ok(m) => out.sqlite = Some(Baseline::against(m, Some(report.accepted_events_per_s))),
        Err(error) => {
            out.failed.insert("sqlite".into(), format!("{error:#}"));
        }
    }

    match baseline::jetstream_publish(control, events, out.event_message_bytes).await {
        Ok(m) => {
            out.jetstream = Some(Baseline::against(m, report.end_to_end_events_per_s));
        }
        Err(error) => {
            out.failed.insert("jetstream".into(), format!("{error:#}"));
        }
    }

    let echo = match bus::connect(nats, "tepai-bench-echo").await {
        Ok(responder) => {
            baseline::echo(
                responder,
                clients,
                report.producers,
                requests.count,
                requests.bytes,
            )
            .await
        }
        Err(error) => Err(error.into()),
    };
    match echo {
        Ok(m) => out.echo = Some(Baseline::against(m, Some(report.requests_per_s))),
        Err(error) => {
            out.failed.insert("echo".into(), format!("{error:#}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_total() {
        for (total, parts) in [(20_000, 64), (400, 4), (3, 8), (1, 1)] {
            let sum: u64 = (0..parts).map(|p| share(total, parts, p)).sum();
            assert_eq!(sum, total);
        }
    }
}
