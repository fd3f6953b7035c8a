//! NATS: the command service producers talk to, and the relay that
//! publishes committed events to JetStream (the transactional outbox).

pub mod command_service;
pub mod failover;
pub mod follower;
pub mod lease;
pub mod projector;
pub mod relay;

use std::time::Duration;

use crate::config::NatsOptions;

/// Subject producers submit commands on.
pub const SUBMIT_SUBJECT: &str = "tepai.cmd.submit";
/// Subject producers submit batches of commands on (`CommandBatch`).
pub const SUBMIT_BATCH_SUBJECT: &str = "tepai.cmd.submit_batch";
/// Subject group of the query service: each view answers on
/// `tepai.query.<view>`, one endpoint per name in `query::nats::VIEWS`.
pub const QUERY_PREFIX: &str = "tepai.query";
/// Subject of the assignments listing.
pub const QUERY_ASSIGNMENTS_SUBJECT: &str = "tepai.query.assignments";
/// Subject of a commissioner's details.
pub const QUERY_COMMISSIONER_SUBJECT: &str = "tepai.query.commissioner";
/// Subject of a workstation's details.
pub const QUERY_WORKSTATION_SUBJECT: &str = "tepai.query.workstation";
/// Subject of the city matrix.
pub const QUERY_CITY_MATRIX_SUBJECT: &str = "tepai.query.city_matrix";
/// Subject of the demands board.
pub const QUERY_DEMANDS_SUBJECT: &str = "tepai.query.demands";
/// Subject of a demand's detail.
pub const QUERY_DEMAND_SUBJECT: &str = "tepai.query.demand";
/// Subject of the candidates for a demand or for criteria.
pub const QUERY_CANDIDATES_SUBJECT: &str = "tepai.query.candidates";
/// Subject of the annual assessment.
pub const QUERY_ASSESSMENT_SUBJECT: &str = "tepai.query.assessment";
/// Subject of the status: the last position, the relay's and each
/// projection's.
pub const QUERY_STATUS_SUBJECT: &str = "tepai.query.status";
/// JetStream stream holding every event.
pub const EVENTS_STREAM: &str = "TEPAI_EVENTS";
/// Subjects of the events stream.
pub const EVENTS_SUBJECTS: &str = "tepai.evt.>";
/// Header carrying an event's type name.
pub const HEADER_EVENT_TYPE: &str = "Tepai-Event-Type";
/// Header carrying an event's global position.
pub const HEADER_POSITION: &str = "Tepai-Position";
/// Header carrying an event's chained hash (hex), so a standby can check
/// the history it follows link by link.
pub const HEADER_HASH: &str = "Tepai-Hash";
/// Header carrying an event's schema version.
pub const HEADER_SCHEMA_VERSION: &str = "Tepai-Schema-Version";

/// Why a bus part could not run.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Could not connect or authenticate.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// A NATS or JetStream call failed.
    #[error("NATS: {0}")]
    Nats(String),
    /// The event store failed.
    #[error("event store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The views saw a gap in positions: events are missing upstream.
    #[error("gap in the event stream: expected position {expected}, got {got}")]
    Gap {
        /// The position that had to come next.
        expected: u64,
        /// The position that came.
        got: u64,
    },
    /// JetStream refused a publish made on the condition that the stream
    /// ended just before it (`Nats-Expected-Last-Sequence`): something
    /// else is in the stream at `position`, or a message before it is
    /// missing.
    #[error("the stream does not end just before position {position}")]
    StreamMoved {
        /// The position whose publish was refused.
        position: u64,
    },
    /// Another writer put events in the stream this node does not have:
    /// it is no longer the writer (docs/cluster.md, fencing).
    #[error("fenced: the stream holds events at or before position {position} that this node did not write")]
    Fenced {
        /// The first position at which the stream and this node differ, or
        /// the stream's last when this node's store ends before it.
        position: u64,
    },
    /// The stream holds something a standby cannot follow.
    #[error("cannot follow the stream: {0}")]
    Follow(String),
    /// This node's store holds a history the stream does not.
    #[error("the event store diverges from the stream: the store ends at position {store_head}, the stream at {stream_last}{detail}")]
    Diverged {
        /// The store's last position.
        store_head: u64,
        /// The stream's last sequence.
        stream_last: u64,
        /// Where they differ, when known.
        detail: String,
    },
    /// The batch limit is above what the NATS server delivers.
    #[error("--max-batch-bytes is {limit} bytes, above the NATS server's max_payload of {max_payload}: no such batch could arrive; lower it or raise max_payload")]
    BatchLimit {
        /// `--max-batch-bytes`.
        limit: usize,
        /// The server's `max_payload`.
        max_payload: usize,
    },
    /// A local checkpoint file failed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] rusqlite::Error),
}

impl BusError {
    pub(crate) fn nats(error: impl std::fmt::Display) -> Self {
        BusError::Nats(error.to_string())
    }
}

/// Attempts at opening a part that talks to JetStream.
const OPEN_ATTEMPTS: u32 = 6;

/// Opens a part that needs JetStream, trying again after a NATS error: a
/// cluster that has just restarted may leave an API call unanswered while
/// it elects its streams' and consumers' leaders. Other errors, the last
/// attempt's, or a shutdown end it.
pub async fn settling<T, F, Fut>(
    what: &'static str,
    shutdown: &tokio_util::sync::CancellationToken,
    mut open: F,
) -> Result<T, BusError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BusError>>,
{
    let mut delay = std::time::Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match open().await {
            Ok(part) => return Ok(part),
            Err(error @ BusError::Nats(_)) if attempt < OPEN_ATTEMPTS => {
                tracing::warn!(%error, what, attempt, "JetStream not ready; trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(error),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Returns once the server has taken this connection's subscriptions for
/// the service `name`: a flush only empties the client's buffer, while a
/// round trip to this instance's own `$SRV.PING.<name>.<id>` proves the
/// server has processed everything sent before it (it handles one
/// connection's messages in order). Without it, a request right after start
/// can find no responders.
pub async fn await_registration(
    client: &async_nats::Client,
    service: &async_nats::service::Service,
) -> Result<(), BusError> {
    let info = service.info().await;
    client
        .request(
            format!("$SRV.PING.{}.{}", info.name, info.id),
            bytes::Bytes::new(),
        )
        .await
        .map(|_| ())
        .map_err(BusError::nats)
}

/// Connects with the configured credentials, token or TLS. Secrets are
/// passed to the client and never logged.
pub async fn connect(options: &NatsOptions, name: &str) -> Result<async_nats::Client, BusError> {
    let fail = |reason: String| BusError::Connect {
        url: options.nats_url.clone(),
        reason,
    };
    let mut connect = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(10)));
    if let Some(path) = &options.nats_creds {
        connect = connect
            .credentials_file(path)
            .await
            .map_err(|e| fail(format!("credentials file {}: {e}", path.display())))?;
    }
    if let Some(token) = &options.nats_token {
        connect = connect.token(token.clone());
    }
    if let (Some(user), Some(password)) = (&options.nats_user, &options.nats_password) {
        connect = connect.user_and_password(user.clone(), password.clone());
    }
    if let Some(ca) = &options.nats_tls_ca {
        connect = connect.require_tls(true).add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&options.nats_tls_cert, &options.nats_tls_key) {
        connect = connect.add_client_certificate(cert.clone(), key.clone());
    }
    if let Some(prefix) = &options.nats_inbox_prefix {
        connect = connect.custom_inbox_prefix(prefix.clone());
    }
    // The client takes a list, not a comma-separated string.
    let servers = options
        .nats_url
        .split(',')
        .map(|url| url.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    connect
        .connect(servers)
        .await
        .map_err(|e| fail(e.to_string()))
}
