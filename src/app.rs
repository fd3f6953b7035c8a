//! The composition root: opens the store, starts the writer, the command
//! service and the relay, and stops them in order on shutdown.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{self, command_service, relay::Relay};
use crate::config::{NatsOptions, NodeOptions};
use crate::domain::Policy;
use crate::processor::writer::{CommandWriter, WriterOptions};
use crate::processor::{Processor, ProcessorError};
use crate::store::{EventStore, StoreError, StoreOptions};

/// Why the node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The data directory is unusable.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// Which.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed to open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The processor could not load the history.
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    /// A part of the node crashed.
    #[error("{0} stopped unexpectedly")]
    Crashed(&'static str),
}

/// Everything a command node needs.
#[derive(Debug, Clone)]
pub struct CommandNodeConfig {
    /// Data directory and HTTP address.
    pub node: NodeOptions,
    /// How to reach NATS.
    pub nats: NatsOptions,
    /// The rules' limits and region.
    pub policy: Policy,
}

/// Runs the command side (writer, command service, relay) until
/// `shutdown`, then drains in-flight commands, flushes the relay and
/// returns. `ready` is cancelled once the node answers commands.
pub async fn run_command_node(
    config: CommandNodeConfig,
    shutdown: CancellationToken,
    ready: CancellationToken,
) -> Result<(), AppError> {
    let data_dir = &config.node.data_dir;
    std::fs::create_dir_all(data_dir).map_err(|source| AppError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    let store_path = config.node.store_path();
    let processor = tokio::task::spawn_blocking({
        let store_path = store_path.clone();
        let policy = config.policy.clone();
        move || -> Result<Processor, AppError> {
            let store = EventStore::open(&store_path, StoreOptions::default())?;
            Ok(Processor::open(store, policy)?)
        }
    })
    .await
    .map_err(|_| AppError::Crashed("store loader"))??;
    tracing::info!(head = processor.head(), store = %store_path.display(), "event store open");

    let writer = CommandWriter::spawn(processor, WriterOptions::default()).map_err(|source| {
        AppError::DataDir {
            path: data_dir.display().to_string(),
            source,
        }
    })?;
    let client = bus::connect(&config.nats, "tepai-command").await?;
    let js = async_nats::jetstream::new(client.clone());
    let relay = Relay::open(js, &store_path, &config.node.relay_path()).await?;

    let service_stop = CancellationToken::new();
    let relay_stop = CancellationToken::new();
    let service = tokio::spawn(command_service::serve(
        client.clone(),
        writer.handle(),
        service_stop.clone(),
    ));
    let relay_task = tokio::spawn(relay.run(Some(writer.handle().committed()), relay_stop.clone()));
    // The service registers its endpoint before answering; give it a moment
    // so `ready` means "requests are being taken".
    client.flush().await.map_err(bus::BusError::nats)?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    ready.cancel();

    shutdown.cancelled().await;
    tracing::info!("shutting down: draining commands");
    service_stop.cancel();
    let service_result = service.await;
    // Every handle but the writer's own is gone now; join drains the queue.
    let joined = tokio::task::spawn_blocking(move || writer.join()).await;
    relay_stop.cancel();
    let relay_result = relay_task.await;
    // The server may be gone already; don't wait for it forever.
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    match (service_result, joined, relay_result) {
        (Ok(Ok(())), Ok(Ok(_)), Ok(())) => Ok(()),
        (Ok(Err(error)), _, _) => Err(error.into()),
        (Err(_), _, _) => Err(AppError::Crashed("command service")),
        (_, _, Err(_)) => Err(AppError::Crashed("relay")),
        (_, _, _) => Err(AppError::Crashed("command writer")),
    }
}
