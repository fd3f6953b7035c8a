//! The `tepai` binary: parses the command line and runs the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use tepai::app::{self, NodeConfig, Roles};
use tepai::config::{
    AssessmentOptions, AuthOptions, ClusterOptions, NatsOptions, NodeOptions, PolicyOptions,
};
use tepai::limits::Limits;
use tepai::telemetry::{self, LogFormat};

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
        args: NodeArgs,
    },
    /// Send one command to the command service and print its answer, or
    /// (--file) many from NDJSON in batches.
    ///
    /// Example: tepai send register-commissioner --commissioner-id 0190f3a2-6c1e-7d2a-9b1e-2f4c5d6e7f80
    ///   --name 陈立新 --home-city 150100 --employer 内蒙古工业大学 --kind university
    #[command(after_help = tepai::cli::send::SEND_EXAMPLES)]
    Send(tepai::cli::send::SendArgs),
    /// Ask the query service for a view.
    ///
    /// Example: tepai query assignments --cross-city-only --all
    Query(tepai::cli::query::QueryArgs),
    /// The replay tool: status, rebuild, verify, inspect, export, import,
    /// republish.
    ///
    /// Example: tepai ops verify
    Ops {
        #[command(subcommand)]
        command: tepai::ops::OpsCommand,
    },
    /// Load a node with producers and measure throughput, latencies and
    /// catch-up against raw SQLite, JetStream and NATS baselines.
    ///
    /// Example: tepai bench --spawn --producers 64 --commands 20000
    Bench(tepai::bench::BenchArgs),
    /// Run one role, for deployment apart: `command` (writer, command
    /// service, relay; owns the event store) or `query` (views fed from
    /// JetStream, NATS and HTTP queries; needs only NATS).
    ///
    /// Example: tepai serve query --http-addr 0.0.0.0:8080
    Serve {
        /// Which role.
        role: Role,
        #[command(flatten)]
        args: NodeArgs,
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
    // A client prints its answer on stdout; keep its stderr for trouble.
    let level = match cli.command {
        Command::Send(_) | Command::Query(_) | Command::Ops { .. } | Command::Bench(_) => "warn",
        _ => "info",
    };
    telemetry::init(cli.log_format, level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
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

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Send(args) => tepai::cli::send::run(args).await,
        Command::Query(args) => tepai::cli::query::run(args).await,
        Command::Ops { command } => tepai::ops::run(command).await,
        Command::Bench(args) => tepai::bench::run(args).await,
        Command::Up { demo, args } => run_node(Roles::ALL, demo, args).await,
        Command::Serve { role, args } => {
            let roles = Roles {
                command: matches!(role, Role::Command),
                query: matches!(role, Role::Query),
            };
            run_node(roles, false, args).await
        }
    }
}

/// A node's options, shared by `up` and `serve`.
#[derive(Debug, clap::Args)]
struct NodeArgs {
    #[command(flatten)]
    node: NodeOptions,
    #[command(flatten)]
    nats: NatsOptions,
    #[command(flatten)]
    policy: PolicyOptions,
    #[command(flatten)]
    auth: AuthOptions,
    #[command(flatten)]
    limits: Limits,
    #[command(flatten)]
    cluster: ClusterOptions,
    #[command(flatten)]
    assessment: AssessmentOptions,
}

async fn run_node(roles: Roles, demo: bool, args: NodeArgs) -> anyhow::Result<ExitCode> {
    let NodeArgs {
        node,
        nats,
        policy,
        auth,
        limits,
        cluster,
        assessment,
    } = args;
    let policy = policy.policy().map_err(anyhow::Error::msg)?;
    let assessment = assessment.policy().map_err(anyhow::Error::msg)?;
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
        authorization: auth.authorization,
        limits,
        cluster,
        assessment,
    };
    let node_task = tokio::spawn(app::run(config, roles, shutdown.clone(), Some(started_tx)));
    let started = tokio::select! {
        started = started_rx => started.ok(),
        _ = shutdown.cancelled() => None,
    };
    if let Some(started) = started {
        if demo {
            if let Err(error) = tepai::demo::load(&nats, auth.authorization).await {
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
    Ok(ExitCode::SUCCESS)
}
