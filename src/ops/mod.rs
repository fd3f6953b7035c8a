//! `tepai ops`: the operators' replay tool. Each subcommand is one safe
//! step: it reads, or writes only where it cannot harm a running node
//! (a new views generation swapped in atomically, an empty store, the
//! stream through its deduplication), and refuses anything else with a
//! clear message and a non-zero exit.

pub mod inspect;
pub mod ndjson;
pub mod progress;
pub mod read;
pub mod rebuild;
pub mod republish;
pub mod status;
pub mod verify;

use std::process::ExitCode;

/// The replay tool's subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum OpsCommand {
    /// Store head, relay position, views checkpoint and lag, the stream's
    /// state, who holds the writer's lease.
    Status(status::StatusArgs),
    /// Rebuild the views into a new file and swap it in while queries go on.
    Rebuild(rebuild::RebuildArgs),
    /// Check the integrity chain, the views against a rebuild, the stream
    /// against the store.
    Verify(verify::VerifyArgs),
    /// Re-send stored events to JetStream.
    Republish(republish::RepublishArgs),
    /// Print events, a stream or a command's events as JSON with all metadata.
    Inspect(inspect::InspectArgs),
    /// Write events as NDJSON, raw payloads included.
    Export(ndjson::ExportArgs),
    /// Load an NDJSON export into an empty store, checking the chain.
    Import(ndjson::ImportArgs),
}

/// Runs one subcommand.
pub async fn run(command: OpsCommand) -> anyhow::Result<ExitCode> {
    match command {
        OpsCommand::Status(args) => status::run(args).await,
        OpsCommand::Rebuild(args) => rebuild::run(args).await,
        OpsCommand::Verify(args) => verify::run(args).await,
        OpsCommand::Republish(args) => republish::run(args).await,
        OpsCommand::Inspect(args) => tokio::task::block_in_place(|| inspect::run(args)),
        OpsCommand::Export(args) => tokio::task::block_in_place(|| ndjson::export(args)),
        OpsCommand::Import(args) => tokio::task::block_in_place(|| ndjson::import(args)),
    }
}
