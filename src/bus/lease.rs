//! The writer's lease: which command node may write, kept in one key of a
//! NATS KV bucket and taken and renewed by compare-and-set on the key's
//! revision, so two nodes can never both think they took it.
//!
//! nats-server 2.9 has no per-key TTL, and the nodes' clocks need not
//! agree: a lease lapses when a claimant has seen the key's revision stay
//! the same for longer than the lease period, measured on its own clock.
//! The holder renews well within the period and stops writing once a
//! period has passed since the start of its last successful renewal; that
//! instant comes before any claimant's (which saw the renewal after it was
//! written), so the two never overlap in time. Fencing on the stream
//! ([`super::relay`]) covers a holder that is paused past that point.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::BusError;

/// The bucket holding the lease.
pub const LEASE_BUCKET: &str = "tepai_writer";
/// The key of the lease in [`LEASE_BUCKET`].
pub const LEASE_KEY: &str = "lease";

/// What the lease's key holds. The period is the holder's, for operators
/// and for claimants that were configured with a shorter one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseValue {
    /// The node id of the holder; empty once released.
    pub holder: String,
    /// The holder's lease period, in milliseconds.
    pub period_ms: u64,
}

impl LeaseValue {
    fn encode(&self) -> bytes::Bytes {
        serde_json::to_vec(self).unwrap_or_default().into()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Opens the lease bucket, creating it with `replicas` copies if missing.
/// The bucket's stream is made here with the KV conventions rather than
/// by the client's `create_key_value`, which first asks for account
/// information in a form nats-server 2.9 does not answer.
pub async fn open_bucket(js: &jetstream::Context, replicas: usize) -> Result<kv::Store, BusError> {
    if let Ok(store) = js.get_key_value(LEASE_BUCKET).await {
        return Ok(store);
    }
    let made = js
        .get_or_create_stream(jetstream::stream::Config {
            name: format!("KV_{LEASE_BUCKET}"),
            description: Some("which tepai command node writes".to_owned()),
            subjects: vec![format!("$KV.{LEASE_BUCKET}.>")],
            max_messages_per_subject: 1,
            discard: jetstream::stream::DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        })
        .await;
    if let Err(error) = made {
        // Another node may have made it meanwhile; else this is the error.
        return js
            .get_key_value(LEASE_BUCKET)
            .await
            .map_err(|_| BusError::nats(error));
    }
    js.get_key_value(LEASE_BUCKET).await.map_err(BusError::nats)
}

/// The lease's holder as its key last showed it, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The holder's node id.
    pub holder: String,
    /// The holder's lease period, in milliseconds.
    pub period_ms: u64,
    /// When the holder last took or renewed the lease: the NATS server's
    /// time of that write, in Unix milliseconds.
    pub renewed_at_ms: i64,
}

/// Who holds the writer's lease, read without creating or writing
/// anything: `None` when the bucket or the key does not exist (no node
/// runs with `--failover`) or the last holder released the lease. A
/// holder that stopped renewing is still named; its `renewed_at_ms` tells.
pub async fn holder(js: &jetstream::Context) -> Result<Option<LeaseHolder>, BusError> {
    if let Err(error) = js.get_stream(format!("KV_{LEASE_BUCKET}")).await {
        return match error.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(inner)
                if inner.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(None)
            }
            _ => Err(BusError::nats(error)),
        };
    }
    let kv = js
        .get_key_value(LEASE_BUCKET)
        .await
        .map_err(BusError::nats)?;
    let Some(entry) = kv.entry(LEASE_KEY).await.map_err(BusError::nats)? else {
        return Ok(None);
    };
    if entry.operation != kv::Operation::Put {
        return Ok(None);
    }
    let value = LeaseValue::decode(&entry.value).ok_or_else(|| {
        BusError::Nats(format!(
            "the key {LEASE_KEY} of {LEASE_BUCKET} holds no lease: {:?}",
            String::from_utf8_lossy(&entry.value)
        ))
    })?;
    if value.holder.is_empty() {
        return Ok(None);
    }
    let renewed_at_ms = entry.created.unix_timestamp_nanos() / 1_000_000;
    Ok(Some(LeaseHolder {
        holder: value.holder,
        period_ms: value.period_ms,
        renewed_at_ms: i64::try_from(renewed_at_ms).unwrap_or(i64::MAX),
    }))
}

/// One node trying to take the lease, remembering what it last saw of
/// the key and since when (on its own clock).
#[derive(Debug)]
pub struct Claimant {
    kv: kv::Store,
    holder: String,
    period: Duration,
    seen: Option<(u64, Instant)>,
}

/// What a claim found.
#[derive(Debug)]
pub enum Claim {
    /// The lease is this node's now.
    Taken(Box<Lease>),
    /// Another node holds it (or held it too recently to tell).
    Held {
        /// The holder named in the key, if any.
        holder: Option<String>,
    },
}

impl Claimant {
    /// A claimant named `holder` with a lease period of `period`.
    pub fn new(kv: kv::Store, holder: impl Into<String>, period: Duration) -> Self {
        Self {
            kv,
            holder: holder.into(),
            period,
            seen: None,
        }
    }

    /// Takes the lease if it is free, released, or has lapsed; otherwise
    /// notes what it saw so a later call can tell whether it lapsed.
    pub async fn try_take(&mut self) -> Result<Claim, BusError> {
        let entry = self.kv.entry(LEASE_KEY).await.map_err(BusError::nats)?;
        let value = LeaseValue {
            holder: self.holder.clone(),
            period_ms: u64::try_from(self.period.as_millis()).unwrap_or(u64::MAX),
        };
        let Some(entry) = entry else {
            // Never taken: whoever creates the key first has it.
            let sent = Instant::now();
            return match self.kv.create(LEASE_KEY, value.encode()).await {
                Ok(revision) => Ok(Claim::Taken(Box::new(self.lease(revision, sent)))),
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                    Ok(Claim::Held { holder: None })
                }
                Err(error) => Err(BusError::nats(error)),
            };
        };
        let current = LeaseValue::decode(&entry.value);
        let released = entry.operation != kv::Operation::Put
            || current.as_ref().is_some_and(|v| v.holder.is_empty());
        // The longer of the two periods, so a claimant configured shorter
        // than the holder cannot cut its lease short.
        let period = current.as_ref().map_or(self.period, |v| {
            self.period.max(Duration::from_millis(v.period_ms))
        });
        let lapsed = match self.seen {
            Some((revision, since)) if revision == entry.revision => since.elapsed() > period,
            _ => {
                self.seen = Some((entry.revision, Instant::now()));
                false
            }
        };
        if !(released || lapsed) {
            return Ok(Claim::Held {
                holder: current.map(|v| v.holder),
            });
        }
        let sent = Instant::now();
        match self
            .kv
            .update(LEASE_KEY, value.encode(), entry.revision)
            .await
        {
            Ok(revision) => Ok(Claim::Taken(Box::new(self.lease(revision, sent)))),
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                self.seen = None;
                Ok(Claim::Held { holder: None })
            }
            Err(error) => Err(BusError::nats(error)),
        }
    }

    fn lease(&self, revision: u64, sent: Instant) -> Lease {
        let (valid_until, _) = watch::channel(sent + self.period);
        Lease {
            kv: self.kv.clone(),
            holder: self.holder.clone(),
            period: self.period,
            revision,
            valid_until,
        }
    }
}

/// The lease, held.
#[derive(Debug)]
pub struct Lease {
    kv: kv::Store,
    holder: String,
    period: Duration,
    revision: u64,
    valid_until: watch::Sender<Instant>,
}

/// Why the lease was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Another node wrote the key: it holds the lease now.
    Taken,
    /// No renewal succeeded within the period.
    Lapsed,
}

impl Lease {
    /// The key's revision this holder wrote last.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Until when, on this node's clock, the lease surely holds; moved on
    /// by each renewal. Read without waiting for the task that renews, so
    /// a writer woken from a pause sees at once that its lease is over.
    pub fn valid_until(&self) -> watch::Receiver<Instant> {
        self.valid_until.subscribe()
    }

    /// Renews once, by compare-and-set on the revision last written.
    pub async fn renew(&mut self) -> Result<(), RenewError> {
        let sent = Instant::now();
        let value = LeaseValue {
            holder: self.holder.clone(),
            period_ms: u64::try_from(self.period.as_millis()).unwrap_or(u64::MAX),
        };
        match self
            .kv
            .update(LEASE_KEY, value.encode(), self.revision)
            .await
        {
            Ok(revision) => {
                self.revision = revision;
                self.valid_until.send_replace(sent + self.period);
                Ok(())
            }
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Err(RenewError::Taken)
            }
            Err(error) => Err(RenewError::Failed(error.to_string())),
        }
    }

    /// Renews every third of the period until `stop` (then releases the
    /// lease, so a standby need not wait for it to lapse) or until the
    /// lease is lost, which it returns.
    pub async fn keep(mut self, stop: CancellationToken) -> Option<Lost> {
        let every = self.period / 3;
        loop {
            let deadline = tokio::time::sleep_until(*self.valid_until.borrow());
            tokio::select! {
                _ = stop.cancelled() => {
                    self.release().await;
                    return None;
                }
                _ = deadline => return Some(Lost::Lapsed),
                _ = tokio::time::sleep(every) => {}
            }
            let valid_until = *self.valid_until.borrow();
            match tokio::time::timeout_at(valid_until, self.renew()).await {
                Err(_) => return Some(Lost::Lapsed),
                Ok(Ok(())) => {}
                Ok(Err(RenewError::Taken)) => return Some(Lost::Taken),
                Ok(Err(RenewError::Failed(error))) => {
                    tracing::warn!(%error, "could not renew the writer's lease; trying again");
                }
            }
        }
    }

    /// Gives the lease up, if it is still this node's.
    pub async fn release(self) {
        let value = LeaseValue {
            holder: String::new(),
            period_ms: 0,
        };
        if let Err(error) = self
            .kv
            .update(LEASE_KEY, value.encode(), self.revision)
            .await
        {
            tracing::warn!(%error, "could not release the writer's lease; it lapses by itself");
        }
    }
}

/// Why a renewal failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenewError {
    /// Another node wrote the key since this holder's last renewal.
    #[error("another node took the writer's lease")]
    Taken,
    /// NATS did not answer or refused for another reason.
    #[error("renewing the writer's lease failed: {0}")]
    Failed(String),
}
