//! The `tepai` binary: parses the command line and runs the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use prost::Message;
use tokio_util::sync::CancellationToken;

use tepai::app::{self, NodeConfig, Roles};
use tepai::config::{NatsOptions, NodeOptions, PolicyOptions};
use tepai::telemetry::{self, LogFormat};
use tepai::wire::pb;

/// tepai (特派): the system of record for science and technology
/// commissioners in the Hohhot–Baotou region.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Log line format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "TEPAI_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every part in one process; starts a local nats-server when none
    /// answers on a loopback URL.
    ///
    /// Example: tepai up --demo
    Up {
        /// Load the demo data set through the command path and print it.
        #[arg(long)]
        demo: bool,
        #[command(flatten)]
        node: NodeOptions,
        #[command(flatten)]
        nats: NatsOptions,
        #[command(flatten)]
        policy: PolicyOptions,
    },
    /// Run one role, for deployment apart: `command` (writer, command
    /// service, relay; owns the event store) or `query` (views fed from
    /// JetStream, NATS and HTTP queries; needs only NATS).
    ///
    /// Example: tepai serve query --http-addr 0.0.0.0:8080
    Serve {
        /// Which role.
        role: Role,
        #[command(flatten)]
        node: NodeOptions,
        #[command(flatten)]
        nats: NatsOptions,
        #[command(flatten)]
        policy: PolicyOptions,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Role {
    /// Writer, command service and relay.
    Command,
    /// Projector and query service.
    Query,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Cancels `token` on SIGINT or SIGTERM.
fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
                token.cancel();
                return;
            }
        }
        let _ = ctrl_c.await;
        token.cancel();
    });
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up {
            demo,
            node,
            nats,
            policy,
        } => run_node(Roles::ALL, demo, node, nats, policy).await,
        Command::Serve {
            role,
            node,
            nats,
            policy,
        } => {
            let roles = Roles {
                command: matches!(role, Role::Command),
                query: matches!(role, Role::Query),
            };
            run_node(roles, false, node, nats, policy).await
        }
    }
}

async fn run_node(
    roles: Roles,
    demo: bool,
    node: NodeOptions,
    nats: NatsOptions,
    policy: PolicyOptions,
) -> anyhow::Result<()> {
    let policy = policy.policy().map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&node.data_dir)
        .with_context(|| format!("creating {}", node.data_dir.display()))?;
    // Only `up` may start a server of its own: a deployed role must find
    // the cluster it was pointed at.
    let _local_nats = if roles == Roles::ALL {
        tepai::local_nats::ensure(&nats.nats_url, &node.data_dir)?
    } else {
        None
    };
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let config = NodeConfig {
        node,
        nats: nats.clone(),
        policy,
    };
    let node_task = tokio::spawn(app::run(config, roles, shutdown.clone(), Some(started_tx)));
    let started = tokio::select! {
        started = started_rx => started.ok(),
        _ = shutdown.cancelled() => None,
    };
    if let Some(started) = started {
        if demo {
            if let Err(error) = load_demo(&nats).await {
                tracing::error!(%error, "demo data set could not be loaded");
            }
        }
        match started.http_addr {
            Some(addr) => {
                tracing::info!("tepai is up; HTTP on http://{addr}/v1/assignments; Ctrl-C stops it")
            }
            None => tracing::info!("tepai is up; Ctrl-C stops it"),
        }
    }
    node_task.await.context("the node task panicked")??;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn load_demo(nats: &NatsOptions) -> anyhow::Result<()> {
    let client = tepai::bus::connect(nats, "tepai-demo").await?;
    println!("Loading the demo data set through tepai.cmd.submit:");
    for (envelope, note) in tepai::demo::commands() {
        let reply = client
            .request(tepai::bus::SUBMIT_SUBJECT, envelope.encode_to_vec().into())
            .await
            .context("sending a demo command")?;
        let result = pb::CommandResult::decode(reply.payload).context("decoding the answer")?;
        match result.outcome {
            Some(pb::command_result::Outcome::Accepted(a)) => {
                let positions: Vec<String> = a
                    .events
                    .iter()
                    .map(|e| e.global_position.to_string())
                    .collect();
                println!("  accepted  {note} (positions {})", positions.join(", "));
            }
            Some(pb::command_result::Outcome::Rejected(r)) => {
                println!(
                    "  rejected  {note}\n            {} {}: {}",
                    r.code().as_str_name(),
                    r.rule,
                    r.message
                );
            }
            None => println!("  no outcome for {note}"),
        }
    }
    Ok(())
}
