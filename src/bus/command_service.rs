//! The command service: a NATS micro service (discoverable through
//! `$SRV.PING/INFO/STATS`, with per-endpoint stats) answering
//! `tepai.cmd.submit` with a `CommandResult` for every `CommandEnvelope`.
//! Requests are handled concurrently so the writer can group-commit them.
//! A second endpoint, `submit_batch` on `tepai.cmd.submit_batch`, answers a
//! `CommandBatch` with a `CommandBatchResult`: one result per command, in
//! order, the whole batch committed as one group (SPEC Part 2, "Bulk
//! submission").
//!
//! With authorization on it answers `tepai.cmd.<actor>.submit` and
//! `tepai.cmd.<actor>.submit_batch` instead, and
//! the actor is the subject's token, whatever the envelope says: NATS
//! permissions decide who may publish on which subject, so the subject is
//! the only name of the sender tepai can trust.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{BusError, SUBMIT_BATCH_SUBJECT, SUBMIT_SUBJECT};
use crate::domain::RejectCode;
use crate::limits::{Limits, MAX_BATCH_COMMANDS};
use crate::processor::writer::{invalid_request, WriterHandle};
use crate::wire::{self, pb, MAX_ACTOR_LEN};

/// Name under which the service registers.
pub const SERVICE_NAME: &str = "tepai-commands";

/// What the service subscribes to with authorization on: one subject per
/// actor.
pub const ACTOR_SUBMIT_SUBJECTS: &str = "tepai.cmd.*.submit";

/// What the service's batch endpoint subscribes to with authorization on.
pub const ACTOR_SUBMIT_BATCH_SUBJECTS: &str = "tepai.cmd.*.submit_batch";

/// The subject `actor` submits on with authorization on.
pub fn actor_submit_subject(actor: &str) -> String {
    format!("tepai.cmd.{actor}.submit")
}

/// The subject `actor` submits batches on with authorization on.
pub fn actor_submit_batch_subject(actor: &str) -> String {
    format!("tepai.cmd.{actor}.submit_batch")
}

/// The actor token of a `tepai.cmd.<actor>.submit` or
/// `tepai.cmd.<actor>.submit_batch` subject, when it is one tepai accepts
/// as an actor: 1 to 64 of A-Z, a-z, 0-9, '-', '_'.
pub fn actor_of_subject(subject: &str) -> Option<&str> {
    let rest = subject.strip_prefix("tepai.cmd.")?;
    let actor = rest
        .strip_suffix(".submit_batch")
        .or_else(|| rest.strip_suffix(".submit"))?;
    let plain = !actor.is_empty()
        && actor.len() <= MAX_ACTOR_LEN
        && actor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    plain.then_some(actor)
}

/// Answering an accepted command only once JetStream has acknowledged its
/// last event (docs/cluster.md): on a cluster, a quorum of servers holds
/// it, so the answer outlives the loss of the server that took it.
#[derive(Debug, Clone)]
pub struct StreamAck {
    /// The last position JetStream has acknowledged: the relay's.
    pub acked: watch::Receiver<u64>,
    /// How long an answer waits for it before it is UNAVAILABLE.
    pub timeout: Duration,
}

impl StreamAck {
    /// `result` once JetStream holds its events, or UNAVAILABLE when it
    /// does not within the timeout. The command is stored either way, so a
    /// resend with the same id gets the first answer, waited for again.
    async fn settle(&self, result: pb::CommandResult) -> pb::CommandResult {
        let Some(last) = last_position(&result) else {
            return result;
        };
        if self.holds(last).await {
            result
        } else {
            self.timed_out(&result, last)
        }
    }

    /// [`StreamAck::settle`] for a batch's results, waiting once, for the
    /// batch's highest position: the relay publishes in order, so once it
    /// is acknowledged every earlier one is.
    async fn settle_batch(&self, results: Vec<pb::CommandResult>) -> Vec<pb::CommandResult> {
        let Some(last) = results.iter().filter_map(last_position).max() else {
            return results;
        };
        if self.holds(last).await {
            return results;
        }
        results
            .into_iter()
            .map(|result| match last_position(&result) {
                Some(position) => self.timed_out(&result, position),
                None => result,
            })
            .collect()
    }

    /// Whether JetStream acknowledges `last` within the timeout.
    async fn holds(&self, last: u64) -> bool {
        let mut acked = self.acked.clone();
        tokio::time::timeout(self.timeout, async {
            acked.wait_for(|p| *p >= last).await.is_ok()
        })
        .await
        .unwrap_or(false)
    }

    fn timed_out(&self, result: &pb::CommandResult, last: u64) -> pb::CommandResult {
        wire::rejected(
            result.command_id.clone(),
            RejectCode::Unavailable,
            "STREAM_ACK_TIMEOUT",
            format!(
                "stored at position {last}, but JetStream did not acknowledge it within \
                 {} ms; resend with the same command_id for its answer",
                self.timeout.as_millis()
            ),
        )
    }
}

/// The position of an accepted command's last event; `None` for a
/// rejection or a command that wrote nothing.
fn last_position(result: &pb::CommandResult) -> Option<u64> {
    let Some(pb::command_result::Outcome::Accepted(accepted)) = &result.outcome else {
        return None;
    };
    accepted.events.iter().map(|e| e.global_position).max()
}

/// Registers the service and its two endpoints, then returns the future
/// that serves commands until `shutdown` (then stops taking requests and
/// waits for those in flight to be answered). Registration is done when
/// this returns, so a caller can announce readiness before spawning the
/// future. With `authorization`, the endpoints are [`ACTOR_SUBMIT_SUBJECTS`]
/// and [`ACTOR_SUBMIT_BATCH_SUBJECTS`] and each envelope's actor is
/// replaced by its subject's. At most `limits.max_commands_in_flight` are
/// decided at once, a batch counting as the most commands a batch may hold
/// (its count is unknown until it is decoded): beyond it the service stops
/// reading from NATS until one finishes, so memory stays bounded. With
/// `stream_ack`, an accepted command is answered only once JetStream holds
/// its events. With `lease` (failover), a command that arrives once the
/// writer's lease is over, on this node's clock, is answered UNAVAILABLE
/// without being decided: a writer woken from a pause must not decide what
/// was queued for it meanwhile. Fails when `limits.max_batch_bytes` is
/// above the server's `max_payload`: such a batch could never arrive.
pub async fn start(
    client: async_nats::Client,
    writer: WriterHandle,
    authorization: bool,
    limits: Limits,
    stream_ack: Option<StreamAck>,
    lease: Option<watch::Receiver<tokio::time::Instant>>,
    shutdown: CancellationToken,
) -> Result<impl std::future::Future<Output = Result<(), BusError>>, BusError> {
    use async_nats::service::ServiceExt;
    let max_payload = client.server_info().max_payload;
    if limits.max_batch_bytes > max_payload {
        return Err(BusError::BatchLimit {
            limit: limits.max_batch_bytes,
            max_payload,
        });
    }
    let (subject, batch_subject) = if authorization {
        (ACTOR_SUBMIT_SUBJECTS, ACTOR_SUBMIT_BATCH_SUBJECTS)
    } else {
        (SUBMIT_SUBJECT, SUBMIT_BATCH_SUBJECT)
    };
    let service = client
        .service_builder()
        .description("tepai: decides commands about commissioners, workstations and posts")
        .start(SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(BusError::nats)?;
    let mut endpoint = service
        .endpoint_builder()
        .name("submit")
        .add(subject)
        .await
        .map_err(BusError::nats)?;
    let mut batch_endpoint = service
        .endpoint_builder()
        .name("submit_batch")
        .add(batch_subject)
        .await
        .map_err(BusError::nats)?;
    super::await_registration(&client, &service).await?;
    tracing::info!(
        subject,
        batch_subject,
        authorization,
        await_stream_ack = stream_ack.is_some(),
        "command service ready"
    );
    let context = Arc::new(Context {
        writer,
        authorization,
        limits,
        stream_ack,
    });
    Ok(async move {
        let in_flight = Arc::new(Semaphore::new(limits.max_commands_in_flight));
        // Never more than the semaphore holds, or a batch would wait forever.
        let batch_permits =
            u32::try_from(MAX_BATCH_COMMANDS.min(limits.max_commands_in_flight)).unwrap_or(1);
        let tasks = TaskTracker::new();
        loop {
            let (request, is_batch) = tokio::select! {
                _ = shutdown.cancelled() => break,
                request = endpoint.next() => match request {
                    Some(request) => (request, false),
                    None => break,
                },
                request = batch_endpoint.next() => match request {
                    Some(request) => (request, true),
                    None => break,
                },
            };
            let permits = if is_batch { batch_permits } else { 1 };
            let Ok(permit) = in_flight.clone().acquire_many_owned(permits).await else {
                break;
            };
            let context = context.clone();
            let lease_over = lease
                .as_ref()
                .is_some_and(|until| tokio::time::Instant::now() >= *until.borrow());
            tasks.spawn(async move {
                let answer = if is_batch {
                    context.answer_batch(&request, lease_over).await
                } else {
                    context.answer_one(&request, lease_over).await
                };
                if let Err(error) = request.respond(Ok(answer.into())).await {
                    tracing::warn!(%error, subject = %request.message.subject, "could not send the answer");
                }
                drop(permit);
            });
        }
        tasks.close();
        tasks.wait().await;
        service.stop().await.map_err(BusError::nats)?;
        Ok(())
    })
}

/// What every request's task needs.
struct Context {
    writer: WriterHandle,
    authorization: bool,
    limits: Limits,
    stream_ack: Option<StreamAck>,
}

impl Context {
    /// The encoded `CommandResult` for a `CommandEnvelope` request.
    async fn answer_one(
        &self,
        request: &async_nats::service::Request,
        lease_over: bool,
    ) -> Vec<u8> {
        let bytes = request.message.payload.as_ref();
        let result = match wire::decode_envelope_within(bytes, self.limits.max_envelope_bytes) {
            Ok(envelope) if lease_over => not_the_writer(&envelope.command_id),
            Ok(mut envelope) if self.authorization => {
                match actor_of_subject(request.message.subject.as_str()) {
                    Some(actor) => {
                        envelope.actor = actor.to_owned();
                        self.writer.submit(envelope).await
                    }
                    None => invalid_actor(&envelope.command_id, &request.message.subject),
                }
            }
            Ok(envelope) => self.writer.submit(envelope).await,
            Err(error) => {
                tracing::debug!(%error, "undecodable command");
                invalid_request(bytes, &error)
            }
        };
        let result = match &self.stream_ack {
            Some(stream_ack) => stream_ack.settle(result).await,
            None => result,
        };
        result.encode_to_vec()
    }

    /// The encoded `CommandBatchResult` for a `CommandBatch` request: the
    /// commands that validate go to the writer as one job; the others are
    /// answered in their places without being decided.
    async fn answer_batch(
        &self,
        request: &async_nats::service::Request,
        lease_over: bool,
    ) -> Vec<u8> {
        let bytes = request.message.payload.as_ref();
        let items = match wire::decode_batch_within(
            bytes,
            self.limits.max_batch_bytes,
            self.limits.max_envelope_bytes,
        ) {
            Ok(items) => items,
            Err(error) => {
                tracing::debug!(%error, "batch refused");
                return wire::batch_refused(&error).encode_to_vec();
            }
        };
        let subject = request.message.subject.as_str();
        let actor = if self.authorization {
            actor_of_subject(subject)
        } else {
            None
        };
        let mut results: Vec<Option<pb::CommandResult>> = Vec::with_capacity(items.len());
        let mut to_decide = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Err(invalid) => results.push(Some(invalid)),
                Ok(envelope) if lease_over => {
                    results.push(Some(not_the_writer(&envelope.command_id)))
                }
                Ok(envelope) if self.authorization && actor.is_none() => {
                    results.push(Some(invalid_actor(&envelope.command_id, subject)));
                }
                Ok(mut envelope) => {
                    if let Some(actor) = actor {
                        envelope.actor = actor.to_owned();
                    }
                    results.push(None);
                    to_decide.push(envelope);
                }
            }
        }
        let mut decided = if to_decide.is_empty() {
            Vec::new()
        } else {
            self.writer.submit_batch(to_decide).await
        }
        .into_iter();
        let results: Vec<pb::CommandResult> = results
            .into_iter()
            .map(|slot| {
                slot.or_else(|| decided.next()).unwrap_or_else(|| {
                    wire::rejected(
                        String::new(),
                        RejectCode::Unavailable,
                        "UNAVAILABLE",
                        "the writer gave no answer; resend the batch",
                    )
                })
            })
            .collect();
        let results = match &self.stream_ack {
            Some(stream_ack) => stream_ack.settle_batch(results).await,
            None => results,
        };
        pb::CommandBatchResult {
            results,
            rejected: None,
        }
        .encode_to_vec()
    }
}

/// The answer to a command that reached a writer whose lease is over;
/// nothing is decided or stored, and a resend finds the new writer.
fn not_the_writer(command_id: &uuid::Uuid) -> pb::CommandResult {
    wire::rejected(
        command_id.hyphenated().to_string(),
        RejectCode::Unavailable,
        "NOT_THE_WRITER",
        "this command node's writer's lease is over; resend with the same command_id".to_owned(),
    )
}

/// The answer to a command on a subject whose actor token tepai does not
/// accept; nothing is decided or stored.
fn invalid_actor(command_id: &uuid::Uuid, subject: &str) -> pb::CommandResult {
    wire::rejected(
        command_id.hyphenated().to_string(),
        RejectCode::Unauthorized,
        "INVALID_ACTOR",
        format!(
            "the subject {} names no actor tepai accepts: submit on tepai.cmd.<actor>.submit, \
             the actor 1 to {MAX_ACTOR_LEN} of A-Z, a-z, 0-9, '-', '_'",
            crate::domain::excerpt(subject)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted_at(position: u64) -> pb::CommandResult {
        pb::CommandResult {
            command_id: "c".into(),
            outcome: Some(pb::command_result::Outcome::Accepted(pb::Accepted {
                events: vec![pb::WrittenEvent {
                    global_position: position,
                    ..Default::default()
                }],
            })),
        }
    }

    fn code(result: &pb::CommandResult) -> Option<pb::RejectCode> {
        match &result.outcome {
            Some(pb::command_result::Outcome::Rejected(r)) => Some(r.code()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn an_accepted_command_waits_for_the_stream_and_is_unavailable_without_it() {
        let (acked, rx) = watch::channel(3);
        let stream_ack = StreamAck {
            acked: rx,
            timeout: Duration::from_millis(50),
        };
        assert_eq!(
            code(&stream_ack.settle(accepted_at(5)).await),
            Some(pb::RejectCode::Unavailable),
            "position 5 is not acknowledged while the stream holds 3"
        );
        let waiting = tokio::spawn({
            let stream_ack = StreamAck {
                timeout: Duration::from_secs(30),
                ..stream_ack.clone()
            };
            async move { stream_ack.settle(accepted_at(5)).await }
        });
        acked.send_replace(5);
        assert_eq!(waiting.await.unwrap(), accepted_at(5));
        // Rejections wrote nothing: answered at once.
        let rejection = invalid_actor(&uuid::Uuid::nil(), "x");
        acked.send_replace(0);
        assert_eq!(stream_ack.settle(rejection.clone()).await, rejection);
    }

    #[tokio::test]
    async fn a_batch_waits_once_for_its_highest_position_and_only_its_acceptances_time_out() {
        let (acked, rx) = watch::channel(6);
        let stream_ack = StreamAck {
            acked: rx,
            timeout: Duration::from_millis(50),
        };
        let rejection = invalid_actor(&uuid::Uuid::nil(), "x");
        let batch = vec![accepted_at(5), rejection.clone(), accepted_at(7)];
        let settled = stream_ack.settle_batch(batch.clone()).await;
        let codes: Vec<_> = settled.iter().map(code).collect();
        assert_eq!(
            codes,
            [
                Some(pb::RejectCode::Unavailable),
                Some(pb::RejectCode::Unauthorized),
                Some(pb::RejectCode::Unavailable)
            ],
            "7 is not acknowledged, so the batch's answer is not either"
        );
        acked.send_replace(7);
        assert_eq!(stream_ack.settle_batch(batch.clone()).await, batch);
    }

    #[test]
    fn the_actor_is_the_one_token_between_cmd_and_submit() {
        assert_eq!(
            actor_of_subject("tepai.cmd.bureau-150200.submit"),
            Some("bureau-150200")
        );
        assert_eq!(
            actor_of_subject(&actor_submit_subject("admin")),
            Some("admin")
        );
        assert_eq!(
            actor_of_subject(&actor_submit_batch_subject("bureau-150100")),
            Some("bureau-150100")
        );
        for subject in [
            "tepai.cmd.submit",
            "tepai.cmd.submit_batch",
            "tepai.cmd..submit",
            "tepai.cmd..submit_batch",
            "tepai.cmd.a.submit_batchx",
            "tepai.cmd.a.b.submit",
            "tepai.cmd.a!.submit",
            "tepai.query.admin.submit",
            &format!("tepai.cmd.{}.submit", "a".repeat(65)),
        ] {
            assert_eq!(actor_of_subject(subject), None, "{subject}");
        }
    }
}
