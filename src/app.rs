//! The composition root: starts the parts of a node for its roles and
//! stops them in order. The command role is the writer, the command service
//! and the relay; the query role is the projector, the NATS query service
//! and HTTP. `tepai up` runs both in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bus::follower::{self, Follower};
use crate::bus::projector::Projector;
use crate::bus::{self, command_service, lease, relay, relay::Relay};
use crate::config::{ClusterOptions, NatsOptions, NodeOptions};
use crate::domain::Policy;
use crate::limits::Limits;
use crate::processor::writer::{CommandWriter, WriterOptions};
use crate::processor::{Processor, ProcessorError};
use crate::projection::ViewsDir;
use crate::query::{self, QueryService, StatusSources};
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

fn data_dir_error(config: &NodeConfig) -> impl Fn(std::io::Error) -> AppError + '_ {
    move |source| AppError::DataDir {
        path: config.node.data_dir.display().to_string(),
        source,
    }
}

struct CommandRole {
    writer: CommandWriter,
    service: JoinHandle<Result<(), bus::BusError>>,
    service_stop: CancellationToken,
    relay: JoinHandle<()>,
    relay_stop: CancellationToken,
}

async fn start_command_role(
    config: &NodeConfig,
    client: &async_nats::Client,
    shutdown: &CancellationToken,
    fence: Option<(CancellationToken, watch::Receiver<tokio::time::Instant>)>,
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
    spawn_checkpointer(store_path.clone(), writer.handle().committed());
    let js = async_nats::jetstream::new(client.clone());
    let relay_path = config.node.relay_path();
    let relay = settling("relay", shutdown, || {
        Relay::open(
            js.clone(),
            &store_path,
            &relay_path,
            usize::from(config.cluster.stream_replicas),
        )
    })
    .await?;
    let (relay, lease) = match fence {
        Some((fenced, lease)) => (relay.fenced(fenced), Some(lease)),
        None => (relay, None),
    };
    let sources = StatusSources {
        store_head: Some(writer.handle().committed()),
        relay: Some(relay.published()),
        projector: tokio::sync::watch::channel(Default::default()).1,
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

/// Checkpoints the store's WAL off the writer thread, a moment after
/// commits; it stops when the writer does.
fn spawn_checkpointer(store_path: PathBuf, mut committed: watch::Receiver<u64>) {
    tokio::spawn(async move {
        while committed.changed().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let path = store_path.clone();
            match tokio::task::spawn_blocking(move || crate::store::checkpoint(&path)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "WAL checkpoint failed; retrying later"),
                Err(_) => break,
            }
        }
    });
}

impl CommandRole {
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

/// How often a standby looks at the writer's lease.
const LEASE_LOOK_EVERY: Duration = Duration::from_millis(250);

/// The command role with failover (docs/cluster.md): stand by, following
/// the stream into the store, until the writer's lease is free or lapsed;
/// take it, catch up with the stream's last sequence, then write, with the
/// relay fenced, until shutdown, the lease is lost, or the stream shows
/// another writer; then stand by again.
async fn run_failover(
    config: NodeConfig,
    client: async_nats::Client,
    holder: String,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let js = async_nats::jetstream::new(client.clone());
    let replicas = usize::from(config.cluster.stream_replicas);
    settling("stream", &shutdown, || {
        relay::ensure_stream(&js, Some(replicas))
    })
    .await?;
    let kv = settling("lease bucket", &shutdown, || {
        lease::open_bucket(&js, replicas)
    })
    .await?;
    let period = Duration::from_millis(config.cluster.lease_ms);
    let mut claimant = lease::Claimant::new(kv, holder.clone(), period);
    loop {
        let (held, mut follower) = match stand_by(&config, &js, &mut claimant, &shutdown).await {
            Ok(Some(standing)) => standing,
            Ok(None) => return Ok(()),
            // The connection or the stream's leader went away: stand by
            // again from the store.
            Err(AppError::Bus(error @ bus::BusError::Nats(_))) => {
                tracing::warn!(%error, "standby interrupted; starting it again");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            Err(error) => return Err(error),
        };
        let lease_stop = CancellationToken::new();
        let valid_until = held.valid_until();
        let mut kept = tokio::spawn(held.keep(lease_stop.clone()));
        // Answer nothing before the whole history is in the store.
        let caught_up = tokio::select! {
            caught_up = follower.catch_up() => Some(caught_up),
            _ = &mut kept => None,
            _ = shutdown.cancelled() => None,
        };
        drop(follower);
        let position = match caught_up {
            Some(Ok(position)) => position,
            Some(Err(error)) => {
                tracing::warn!(%error, "could not catch up with the stream; standing by");
                lease_stop.cancel();
                let _ = kept.await;
                continue;
            }
            None => {
                lease_stop.cancel();
                let _ = kept.await;
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                continue;
            }
        };
        let fenced = CancellationToken::new();
        let role = match start_command_role(
            &config,
            &client,
            &shutdown,
            Some((fenced.clone(), valid_until)),
        )
        .await
        {
            Ok((role, _)) => role,
            Err(error) => {
                // Hand the lease on rather than let it lapse.
                lease_stop.cancel();
                let _ = kept.await;
                return Err(error);
            }
        };
        tracing::info!(node = %holder, position, "took the writer's lease; this node writes now");
        let why = tokio::select! {
            _ = shutdown.cancelled() => None,
            lost = &mut kept => Some(match lost {
                Ok(Some(lease::Lost::Taken)) => "another node took the writer's lease",
                _ => "the writer's lease lapsed",
            }),
            _ = fenced.cancelled() => Some("the stream holds events this node did not write"),
        };
        if let Some(why) = why {
            tracing::error!(reason = why, "stepping down: no longer the writer");
            // Not one more publish: the relay stops without flushing.
            fenced.cancel();
        }
        if let Err(error) = role.stop().await {
            tracing::warn!(%error, "the command role stopped with an error");
        }
        lease_stop.cancel();
        if !kept.is_finished() {
            let _ = kept.await;
        }
        if why.is_none() {
            return Ok(());
        }
    }
}

/// Follows the stream until this node takes the lease; returns it with
/// the follower, or `None` on shutdown. A store that is not a prefix of
/// the stream (a deposed writer's tail JetStream never acknowledged) is
/// moved aside, kept for an operator, and the node follows from scratch.
async fn stand_by(
    config: &NodeConfig,
    js: &async_nats::jetstream::Context,
    claimant: &mut lease::Claimant,
    shutdown: &CancellationToken,
) -> Result<Option<(lease::Lease, Follower)>, AppError> {
    let store_path = config.node.store_path();
    let mut follower = loop {
        match Follower::open(js.clone(), &store_path).await {
            Ok(follower) => break follower,
            Err(error @ bus::BusError::Diverged { .. }) => {
                let aside =
                    follower::quarantine(&store_path, now_ms()).map_err(data_dir_error(config))?;
                tracing::error!(
                    %error,
                    moved_to = %aside.display(),
                    "the event store diverges from the stream; moved aside, following the stream afresh"
                );
            }
            Err(error @ bus::BusError::Nats(_)) => {
                tracing::warn!(%error, "cannot follow the stream yet; trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(error) => return Err(error.into()),
        }
    };
    tracing::info!("standing by for the writer's lease");
    // A look unanswered (a lease bucket without a leader yet) must not
    // hold the standby up for the client's whole request timeout.
    let look_limit = Duration::from_millis(config.cluster.lease_ms).max(Duration::from_secs(1));
    let mut next_look = tokio::time::Instant::now();
    loop {
        // Events arriving end a follow round early; the lease is still
        // looked at only every LEASE_LOOK_EVERY.
        if tokio::time::Instant::now() < next_look {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                followed = follower.run_once(next_look - tokio::time::Instant::now()) => {
                    followed?;
                }
            }
            continue;
        }
        next_look = tokio::time::Instant::now() + LEASE_LOOK_EVERY;
        match tokio::time::timeout(look_limit, claimant.try_take()).await {
            Ok(Ok(lease::Claim::Taken(held))) => return Ok(Some((*held, follower))),
            Ok(Ok(lease::Claim::Held { .. })) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot read the writer's lease; trying again")
            }
            Err(_) => tracing::warn!("the writer's lease did not answer; trying again"),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Watches which generation of the views is live (a rebuild in another
/// process swaps it) and reports changes; polled, since a pointer file
/// changes rarely and polling needs no platform-specific notify.
fn follow_live_views(
    views: ViewsDir,
    stop: CancellationToken,
) -> std::io::Result<watch::Receiver<PathBuf>> {
    let (tx, rx) = watch::channel(views.current()?);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            match views.current() {
                Ok(path) if *tx.borrow() != path => {
                    tracing::info!(path = %path.display(), "a rebuild made new views live");
                    let old = tx.send_replace(path.clone());
                    // Readers still on the old file keep it open; unlinking
                    // does not disturb them.
                    if let Err(error) = views.remove_others(&[path.as_path()]) {
                        tracing::warn!(%error, old = %old.display(), "could not remove old views");
                    }
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot read which views are live"),
            }
        }
    });
    Ok(rx)
}

/// Attempts at opening a part that talks to JetStream.
const OPEN_ATTEMPTS: u32 = 6;

/// Opens a part that needs JetStream, trying again after a NATS error: a
/// cluster that has just restarted may leave an API call unanswered while
/// it elects its streams' and consumers' leaders. Other errors, the last
/// attempt's, or a shutdown end it.
async fn settling<T, F, Fut>(
    what: &'static str,
    shutdown: &CancellationToken,
    mut open: F,
) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, bus::BusError>>,
{
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match open().await {
            Ok(part) => return Ok(part),
            Err(error @ bus::BusError::Nats(_)) if attempt < OPEN_ATTEMPTS => {
                tracing::warn!(%error, what, attempt, "JetStream not ready; trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(error.into()),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// The file in the data directory that keeps a node's generated id.
const NODE_ID_FILE: &str = "node-id";

/// This node's id: the configured one, else the one kept in the data
/// directory, made (random) on first start. It names the node's JetStream
/// consumer, so it must stay the same across restarts on the same data.
fn node_id(config: &NodeConfig) -> std::io::Result<String> {
    if let Some(id) = &config.cluster.node_id {
        return Ok(id.clone());
    }
    let path = config.node.data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => crate::config::parse_node_id(text.trim()).map_err(|reason| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {reason}", path.display()),
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut id = uuid::Uuid::new_v4().simple().to_string();
            id.truncate(12);
            // Written aside then renamed, so a crash leaves no half an id.
            let fresh = path.with_extension("new");
            std::fs::write(&fresh, format!("{id}\n"))?;
            std::fs::rename(&fresh, &path)?;
            tracing::info!(node_id = %id, "new node id");
            Ok(id)
        }
        Err(error) => Err(error),
    }
}

/// Views this far behind the stream are catching up, not just following.
const CATCH_UP_LAG: u64 = 1000;

/// Logs the views' progress while they catch up with the stream (a new
/// query node starts from nothing), at most every two seconds, and once
/// when they have caught up.
fn log_catch_up(
    mut progress: watch::Receiver<crate::bus::projector::ProjectorProgress>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut catching_up = false;
        let mut logged: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                changed = progress.changed() => if changed.is_err() { break },
            }
            let p = *progress.borrow_and_update();
            let lag = p.stream_last.saturating_sub(p.checkpoint);
            if lag >= CATCH_UP_LAG && logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(2))
            {
                tracing::info!(
                    checkpoint = p.checkpoint,
                    stream_last = p.stream_last,
                    lag,
                    "views catching up with the stream"
                );
                catching_up = true;
                logged = Some(tokio::time::Instant::now());
            } else if lag == 0 && catching_up {
                tracing::info!(checkpoint = p.checkpoint, "views caught up with the stream");
                catching_up = false;
            }
        }
    });
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
    let metrics = crate::telemetry::metrics();
    let client = bus::connect(&config.nats, "tepai").await?;

    let mut sources = None;
    let mut relay_published = None;
    let mut failover = None;
    let command = if roles.command && config.cluster.failover {
        let holder = node_id(&config).map_err(data_dir_error(&config))?;
        failover = Some(tokio::spawn(run_failover(
            config.clone(),
            client.clone(),
            holder,
            shutdown.clone(),
        )));
        None
    } else if roles.command {
        let (role, command_sources) = start_command_role(&config, &client, &shutdown, None).await?;
        relay_published = command_sources.relay.clone();
        sources = Some(command_sources);
        Some(role)
    } else {
        None
    };

    let mut query_parts = None;
    let mut http_addr = None;
    if roles.query {
        let js = async_nats::jetstream::new(client.clone());
        let stop = CancellationToken::new();
        let live = follow_live_views(config.node.views_dir(), stop.clone())
            .map_err(data_dir_error(&config))?;
        let node_id = node_id(&config).map_err(data_dir_error(&config))?;
        let consumer = format!("tepai-views-{node_id}");
        let projector = settling("projector", &shutdown, || {
            Projector::open(
                js.clone(),
                live.clone(),
                &consumer,
                usize::from(config.cluster.stream_replicas),
            )
        })
        .await?;
        log_catch_up(projector.progress(), stop.clone());
        let mut status = sources.take().unwrap_or(StatusSources {
            store_head: None,
            relay: None,
            projector: projector.progress(),
        });
        status.projector = projector.progress();
        let progress = projector.progress();
        let queries = QueryService::new(live, config.policy.region.clone(), status, config.limits);
        let projector_task = tokio::spawn(projector.run(stop.clone()));
        let nats_task =
            tokio::spawn(query::nats::start(client.clone(), queries.clone(), stop.clone()).await?);
        let (bound, serve) =
            query::http::bind(config.node.http_addr, queries, metrics, stop.clone())
                .await
                .map_err(|source| AppError::Http {
                    addr: config.node.http_addr,
                    source,
                })?;
        tracing::info!(http = %bound, "HTTP query service listening");
        http_addr = Some(bound);
        let http_task = tokio::spawn(serve);
        query_parts = Some((stop, progress, projector_task, nats_task, http_task));
    }

    client.flush().await.map_err(bus::BusError::nats)?;
    if let Some(started) = started {
        let _ = started.send(Started { http_addr });
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
    if let Some((stop, mut progress, projector, nats, http)) = query_parts {
        // Let the views take in what the relay just flushed, briefly.
        if let Some(relay) = relay_published {
            let flushed = *relay.borrow();
            let caught_up = async {
                while progress.borrow().checkpoint < flushed {
                    if progress.changed().await.is_err() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), caught_up).await;
        }
        stop.cancel();
        let (projector, nats, http) = tokio::join!(projector, nats, http);
        if result.is_ok() {
            result = match (projector, nats, http) {
                (Ok(()), Ok(Ok(())), Ok(Ok(()))) => Ok(()),
                (_, Ok(Err(error)), _) => Err(error.into()),
                _ => Err(AppError::Crashed("query service")),
            };
        }
    }
    // The server may be gone already; don't wait for it forever.
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    result
}
