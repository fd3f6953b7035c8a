//! The composition root: starts the parts of a node for its roles and
//! stops them in order. The command role is the writer, the command service
//! and the relay; the query role is the projector, the NATS query service
//! and HTTP. `tepai up` runs both in one process.

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::failover::{self, FailoverOptions, Fence, WritingRole};
use crate::bus::projector::{self, Projector, ProjectorProgress};
use crate::bus::{self, command_service, relay::Relay};
use crate::config::{ClusterOptions, NatsOptions, NodeOptions};
use crate::domain::{AssessmentPolicy, Policy};
use crate::limits::Limits;
use crate::processor::writer::{CommandWriter, WriterOptions};
use crate::processor::{Processor, ProcessorError};
use crate::projection;
use crate::query::{self, QueryService, StatusSources};
use crate::store::{checkpointer, EventStore, StoreError, StoreOptions};

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
    /// The HTTP address cannot be bound.
    #[error("HTTP address {addr}: {source}")]
    Http {
        /// Which.
        addr: SocketAddr,
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
    /// A diverged store could not be moved aside (failover).
    #[error(transparent)]
    Quarantine(#[from] failover::QuarantineError),
    /// A part of the node crashed.
    #[error("{0} stopped unexpectedly")]
    Crashed(&'static str),
}

/// Everything a node needs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Data directory and HTTP address.
    pub node: NodeOptions,
    /// How to reach NATS.
    pub nats: NatsOptions,
    /// The rules' limits and region.
    pub policy: Policy,
    /// Whether commands come on per-actor subjects and are authorized
    /// (docs/authorization.md).
    pub authorization: bool,
    /// Request sizes, work in flight, page sizes.
    pub limits: Limits,
    /// Stream replicas, node id, awaiting JetStream's ack (docs/cluster.md).
    pub cluster: ClusterOptions,
    /// Points and grades of the annual assessment (docs/assessment.md).
    pub assessment: AssessmentPolicy,
}

/// Which parts a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Writer, command service, relay.
    pub command: bool,
    /// Projector, query service on NATS and HTTP.
    pub query: bool,
}

impl Roles {
    /// Everything in one process.
    pub const ALL: Roles = Roles {
        command: true,
        query: true,
    };
}

/// What a started node tells its caller.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    /// The bound HTTP address, when the query role runs.
    pub http_addr: Option<SocketAddr>,
}

/// Runs a node with `roles` until `shutdown`, then stops its parts in
/// order: commands drained, relay flushed, views checkpointed. `started`
/// hears once the node answers.
pub async fn run(
    config: NodeConfig,
    roles: Roles,
    shutdown: CancellationToken,
    started: Option<oneshot::Sender<Started>>,
) -> Result<(), AppError> {
    std::fs::create_dir_all(&config.node.data_dir).map_err(data_dir_error(&config))?;
    // Installed before any part records a metric.
    let metrics = crate::telemetry::metrics();
    let client = bus::connect(&config.nats, "tepai").await?;

    let mut command = None;
    let mut failover = None;
    let mut command_status = None;
    if roles.command && config.cluster.failover {
        failover = Some(spawn_failover(&config, &client, &shutdown)?);
    } else if roles.command {
        let (role, status) = start_command_role(&config, &client, &shutdown, None).await?;
        command_status = Some(status);
        command = Some(role);
    }
    let relay_published = command_status.as_ref().and_then(|s| s.relay.clone());
    let query = match roles.query {
        true => Some(start_query_role(&config, &client, &shutdown, command_status, metrics).await?),
        false => None,
    };

    client.flush().await.map_err(bus::BusError::nats)?;
    if let Some(started) = started {
        let _ = started.send(Started {
            http_addr: query.as_ref().map(|q| q.http_addr),
        });
    }

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    let mut result = Ok(());
    if let Some(command) = command {
        result = command.stop().await;
    }
    if let Some(failover) = failover {
        result = failover
            .await
            .unwrap_or(Err(AppError::Crashed("command node")));
    }
    if let Some(query) = query {
        let stopped = query.stop(relay_published).await;
        if result.is_ok() {
            result = stopped;
        }
    }
    // The server may be gone already; don't wait for it forever.
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    result
}

fn data_dir_error(config: &NodeConfig) -> impl Fn(std::io::Error) -> AppError + '_ {
    move |source| AppError::DataDir {
        path: config.node.data_dir.display().to_string(),
        source,
    }
}

/// The running command role: writer, command service, relay.
struct CommandRole {
    writer: CommandWriter,
    service: JoinHandle<Result<(), bus::BusError>>,
    service_stop: CancellationToken,
    relay: JoinHandle<()>,
    relay_stop: CancellationToken,
}

/// Opens the store, loads the history and starts the writer, the
/// command service and the relay (fenced, with failover).
async fn start_command_role(
    config: &NodeConfig,
    client: &async_nats::Client,
    shutdown: &CancellationToken,
    fence: Option<Fence>,
) -> Result<(CommandRole, StatusSources), AppError> {
    let store_path = config.node.store_path();
    let processor = tokio::task::spawn_blocking({
        let store_path = store_path.clone();
        let policy = config.policy.clone();
        let authorization = config.authorization;
        move || -> Result<Processor, AppError> {
            let store = EventStore::open(
                &store_path,
                StoreOptions {
                    background_checkpoint: true,
                    ..StoreOptions::default()
                },
            )?;
            Ok(Processor::open(store, policy)?.with_authorization(authorization))
        }
    })
    .await
    .map_err(|_| AppError::Crashed("store loader"))??;
    tracing::info!(head = processor.head(), store = %store_path.display(), "event store open");
    let writer = CommandWriter::spawn(processor, WriterOptions::default())
        .map_err(data_dir_error(config))?;
    checkpointer::spawn(store_path.clone(), writer.handle().committed());
    let js = async_nats::jetstream::new(client.clone());
    let relay_path = config.node.relay_path();
    let relay = bus::settling("relay", shutdown, || {
        Relay::open(
            js.clone(),
            &store_path,
            &relay_path,
            usize::from(config.cluster.stream_replicas),
        )
    })
    .await?;
    let (relay, lease) = match fence {
        Some(fence) => (relay.fenced(fence.fenced), Some(fence.valid_until)),
        None => (relay, None),
    };
    let sources = StatusSources {
        store_head: Some(writer.handle().committed()),
        relay: Some(relay.published()),
        projector: watch::channel(Default::default()).1,
    };
    let service_stop = CancellationToken::new();
    let relay_stop = CancellationToken::new();
    let stream_ack = config
        .cluster
        .awaits_stream_ack()
        .then(|| command_service::StreamAck {
            acked: relay.published(),
            timeout: Duration::from_millis(config.cluster.stream_ack_timeout_ms),
        });
    let service = tokio::spawn(
        command_service::start(
            client.clone(),
            writer.handle(),
            config.authorization,
            config.limits,
            stream_ack,
            lease,
            service_stop.clone(),
        )
        .await?,
    );
    let relay = tokio::spawn(relay.run(Some(writer.handle().committed()), relay_stop.clone()));
    Ok((
        CommandRole {
            writer,
            service,
            service_stop,
            relay,
            relay_stop,
        },
        sources,
    ))
}

impl WritingRole for CommandRole {
    type Error = AppError;

    /// Stops taking commands, answers those in flight, flushes the relay.
    async fn stop(self) -> Result<(), AppError> {
        self.service_stop.cancel();
        let service = self.service.await;
        // Every handle but the writer's own is gone now; join drains the queue.
        let writer = self.writer;
        let joined = tokio::task::spawn_blocking(move || writer.join()).await;
        self.relay_stop.cancel();
        let relay = self.relay.await;
        match (service, joined, relay) {
            (Ok(Ok(())), Ok(Ok(_)), Ok(())) => Ok(()),
            (Ok(Err(error)), _, _) => Err(error.into()),
            (Err(_), _, _) => Err(AppError::Crashed("command service")),
            (_, _, Err(_)) => Err(AppError::Crashed("relay")),
            (_, _, _) => Err(AppError::Crashed("command writer")),
        }
    }
}

/// Starts the command role under failover (docs/cluster.md): it writes
/// only while this node holds the writer's lease.
fn spawn_failover(
    config: &NodeConfig,
    client: &async_nats::Client,
    shutdown: &CancellationToken,
) -> Result<JoinHandle<Result<(), AppError>>, AppError> {
    let options = FailoverOptions {
        store_path: config.node.store_path(),
        holder: crate::config::node_id(&config.cluster, &config.node.data_dir)
            .map_err(data_dir_error(config))?,
        lease_period: Duration::from_millis(config.cluster.lease_ms),
        replicas: usize::from(config.cluster.stream_replicas),
    };
    let js = async_nats::jetstream::new(client.clone());
    let (config, client, shutdown) = (config.clone(), client.clone(), shutdown.clone());
    Ok(tokio::spawn(failover::run(
        js,
        options,
        shutdown.clone(),
        move |fence| {
            let (config, client, shutdown) = (config.clone(), client.clone(), shutdown.clone());
            async move {
                let (role, _) =
                    start_command_role(&config, &client, &shutdown, Some(fence)).await?;
                Ok(role)
            }
        },
    )))
}

/// The running query role: projector, NATS query service, HTTP.
struct QueryRole {
    http_addr: SocketAddr,
    stop: CancellationToken,
    progress: watch::Receiver<ProjectorProgress>,
    projector: JoinHandle<()>,
    nats: JoinHandle<Result<(), bus::BusError>>,
    http: JoinHandle<std::io::Result<()>>,
}

/// Follows the live views, opens this node's durable consumer and starts
/// the projector and the query services over NATS and HTTP. `command`
/// adds the command role's status when it runs in the same process.
async fn start_query_role(
    config: &NodeConfig,
    client: &async_nats::Client,
    shutdown: &CancellationToken,
    command: Option<StatusSources>,
    metrics: Option<PrometheusHandle>,
) -> Result<QueryRole, AppError> {
    let js = async_nats::jetstream::new(client.clone());
    let stop = CancellationToken::new();
    let live = projection::live::follow(config.node.views_dir(), stop.clone())
        .map_err(data_dir_error(config))?;
    let node_id = crate::config::node_id(&config.cluster, &config.node.data_dir)
        .map_err(data_dir_error(config))?;
    let consumer = format!("tepai-views-{node_id}");
    let projector = bus::settling("projector", shutdown, || {
        Projector::open(
            js.clone(),
            live.clone(),
            &consumer,
            usize::from(config.cluster.stream_replicas),
        )
    })
    .await?;
    projector::log_catch_up(projector.progress(), stop.clone());
    let status = match command {
        Some(command) => StatusSources {
            projector: projector.progress(),
            ..command
        },
        None => StatusSources {
            store_head: None,
            relay: None,
            projector: projector.progress(),
        },
    };
    let progress = projector.progress();
    let queries = QueryService::new(
        live,
        config.policy.clone(),
        status,
        config.limits,
        config.assessment.clone(),
    );
    let projector = tokio::spawn(projector.run(stop.clone()));
    let nats =
        tokio::spawn(query::nats::start(client.clone(), queries.clone(), stop.clone()).await?);
    let (http_addr, serve) =
        query::http::bind(config.node.http_addr, queries, metrics, stop.clone())
            .await
            .map_err(|source| AppError::Http {
                addr: config.node.http_addr,
                source,
            })?;
    tracing::info!(http = %http_addr, "HTTP query service listening");
    Ok(QueryRole {
        http_addr,
        stop,
        progress,
        projector,
        nats,
        http: tokio::spawn(serve),
    })
}

impl QueryRole {
    /// Lets the views take in what the relay flushed (`relay_published`,
    /// when the command role ran in this process), briefly, then stops
    /// the projector and the query services.
    async fn stop(mut self, relay_published: Option<watch::Receiver<u64>>) -> Result<(), AppError> {
        if let Some(relay) = relay_published {
            let flushed = *relay.borrow();
            let caught_up = async {
                while self.progress.borrow().checkpoint < flushed {
                    if self.progress.changed().await.is_err() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), caught_up).await;
        }
        self.stop.cancel();
        match tokio::join!(self.projector, self.nats, self.http) {
            (Ok(()), Ok(Ok(())), Ok(Ok(()))) => Ok(()),
            (_, Ok(Err(error)), _) => Err(error.into()),
            _ => Err(AppError::Crashed("query service")),
        }
    }
}
