//! Command-node failover (docs/cluster.md): a node stands by, following
//! the stream into its own store, until the writer's lease is free or has
//! lapsed; it takes the lease, catches up with the stream's last sequence,
//! then writes with its relay fenced, until shutdown, the lease is lost,
//! or the stream shows another writer; then it stands by again.
//!
//! This module decides *when* to write. *What* writing means (the writer
//! thread, the command service, the relay) is the composition root's
//! [`WritingRole`], started and stopped from here.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::follower::{self, Follower};
use super::{lease, relay, settling, BusError};

/// What a failover node needs besides NATS.
#[derive(Debug, Clone)]
pub struct FailoverOptions {
    /// The node's event store, which the standby follows into and the
    /// writer appends to.
    pub store_path: PathBuf,
    /// The name this node holds the lease under (its node id).
    pub holder: String,
    /// How long an unrenewed lease stays valid.
    pub lease_period: Duration,
    /// The stream's and the lease bucket's replica count.
    pub replicas: usize,
}

/// Handed to the writing role when this node takes the lease: the relay
/// publishes fenced, and the command service stops deciding once the lease
/// is over on this node's clock.
#[derive(Debug)]
pub struct Fence {
    /// Cancelled by the relay when the stream refuses a fenced publish
    /// (another writer); cancelled here on stepping down.
    pub fenced: CancellationToken,
    /// When the lease ends unless renewed; renewals move it.
    pub valid_until: watch::Receiver<tokio::time::Instant>,
}

/// The part of a command node that runs only while it holds the lease.
pub trait WritingRole: Sized + Send {
    /// Why the role stopped badly.
    type Error: std::fmt::Display + Send;

    /// Stops taking commands, answers those in flight and stops the relay
    /// (which, once fenced, publishes nothing more).
    fn stop(self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A store that diverges from the stream could not be moved aside.
#[derive(Debug, thiserror::Error)]
#[error("moving the diverged event store {path} aside: {source}")]
pub struct QuarantineError {
    /// The store that diverges.
    pub path: PathBuf,
    /// Why it could not be moved.
    pub source: std::io::Error,
}

/// Runs the failover loop until `shutdown`. `start` starts the writing
/// role once this node holds the lease and has caught up; its error ends
/// the loop (after handing the lease on), as does a store this node
/// cannot follow for a reason other than NATS.
pub async fn run<R, S, F, E>(
    js: jetstream::Context,
    options: FailoverOptions,
    shutdown: CancellationToken,
    mut start: S,
) -> Result<(), E>
where
    R: WritingRole,
    S: FnMut(Fence) -> F + Send,
    F: Future<Output = Result<R, E>> + Send,
    E: From<BusError> + From<QuarantineError> + Send,
{
    settling("stream", &shutdown, || {
        relay::ensure_stream(&js, Some(options.replicas))
    })
    .await?;
    let kv = settling("lease bucket", &shutdown, || {
        lease::open_bucket(&js, options.replicas)
    })
    .await?;
    let mut claimant = lease::Claimant::new(kv, options.holder.clone(), options.lease_period);
    loop {
        let (held, mut follower) = match stand_by(&js, &options, &mut claimant, &shutdown).await {
            Ok(Some(standing)) => standing,
            Ok(None) => return Ok(()),
            // The connection or the stream's leader went away: stand by
            // again from the store.
            Err(StandByError::Bus(error @ BusError::Nats(_))) => {
                tracing::warn!(%error, "standby interrupted; starting it again");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            Err(StandByError::Bus(error)) => return Err(error.into()),
            Err(StandByError::Quarantine(error)) => return Err(error.into()),
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
        let role = match start(Fence {
            fenced: fenced.clone(),
            valid_until,
        })
        .await
        {
            Ok(role) => role,
            Err(error) => {
                // Hand the lease on rather than let it lapse.
                lease_stop.cancel();
                let _ = kept.await;
                return Err(error);
            }
        };
        tracing::info!(node = %options.holder, position, "took the writer's lease; this node writes now");
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

/// How often a standby looks at the writer's lease.
const LEASE_LOOK_EVERY: Duration = Duration::from_millis(250);

enum StandByError {
    Bus(BusError),
    Quarantine(QuarantineError),
}

impl From<BusError> for StandByError {
    fn from(error: BusError) -> Self {
        StandByError::Bus(error)
    }
}

/// Follows the stream until this node takes the lease; returns it with
/// the follower, or `None` on shutdown. A store that is not a prefix of
/// the stream (a deposed writer's tail JetStream never acknowledged) is
/// moved aside, kept for an operator, and the node follows from scratch.
async fn stand_by(
    js: &jetstream::Context,
    options: &FailoverOptions,
    claimant: &mut lease::Claimant,
    shutdown: &CancellationToken,
) -> Result<Option<(lease::Lease, Follower)>, StandByError> {
    let store_path = &options.store_path;
    let mut follower = loop {
        match Follower::open(js.clone(), store_path).await {
            Ok(follower) => break follower,
            Err(error @ BusError::Diverged { .. }) => {
                let aside = follower::quarantine(store_path, now_ms()).map_err(|source| {
                    StandByError::Quarantine(QuarantineError {
                        path: store_path.clone(),
                        source,
                    })
                })?;
                tracing::error!(
                    %error,
                    moved_to = %aside.display(),
                    "the event store diverges from the stream; moved aside, following the stream afresh"
                );
            }
            Err(error @ BusError::Nats(_)) => {
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
    let look_limit = options.lease_period.max(Duration::from_secs(1));
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
