//! The command service: a NATS micro service (discoverable through
//! `$SRV.PING/INFO/STATS`, with per-endpoint stats) answering
//! `tepai.cmd.submit` with a `CommandResult` for every `CommandEnvelope`.
//! Requests are handled concurrently so the writer can group-commit them.
//!
//! With authorization on it answers `tepai.cmd.<actor>.submit` instead, and
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

use super::{BusError, SUBMIT_SUBJECT};
use crate::domain::RejectCode;
use crate::limits::Limits;
use crate::processor::writer::{invalid_request, WriterHandle};
use crate::wire::{self, pb, MAX_ACTOR_LEN};

/// Name under which the service registers.
pub const SERVICE_NAME: &str = "tepai-commands";

/// What the service subscribes to with authorization on: one subject per
/// actor.
pub const ACTOR_SUBMIT_SUBJECTS: &str = "tepai.cmd.*.submit";

/// The subject `actor` submits on with authorization on.
pub fn actor_submit_subject(actor: &str) -> String {
    format!("tepai.cmd.{actor}.submit")
}

/// The actor token of a `tepai.cmd.<actor>.submit` subject, when it is one
/// tepai accepts as an actor: 1 to 64 of A-Z, a-z, 0-9, '-', '_'.
pub fn actor_of_subject(subject: &str) -> Option<&str> {
    let actor = subject
        .strip_prefix("tepai.cmd.")?
        .strip_suffix(".submit")?;
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
        let Some(pb::command_result::Outcome::Accepted(accepted)) = &result.outcome else {
            return result;
        };
        let Some(last) = accepted.events.iter().map(|e| e.global_position).max() else {
            return result;
        };
        let mut acked = self.acked.clone();
        let held = tokio::time::timeout(self.timeout, async {
            acked.wait_for(|p| *p >= last).await.is_ok()
        })
        .await;
        match held {
            Ok(true) => result,
            _ => wire::rejected(
                result.command_id.clone(),
                RejectCode::Unavailable,
                "STREAM_ACK_TIMEOUT",
                format!(
                    "stored at position {last}, but JetStream did not acknowledge it within \
                     {} ms; resend with the same command_id for its answer",
                    self.timeout.as_millis()
                ),
            ),
        }
    }
}

/// Registers the service and its endpoint, then returns the future that
/// serves commands until `shutdown` (then stops taking requests and waits
/// for those in flight to be answered). Registration is done when this
/// returns, so a caller can announce readiness before spawning the future.
/// With `authorization`, the endpoint is [`ACTOR_SUBMIT_SUBJECTS`] and each
/// envelope's actor is replaced by its subject's. At most
/// `limits.max_commands_in_flight` are decided at once: beyond it the service
/// stops reading from NATS until one finishes, so memory stays bounded.
/// With `stream_ack`, an accepted command is answered only once JetStream
/// holds its events. With `lease` (failover), a command that arrives once
/// the writer's lease is over, on this node's clock, is answered
/// UNAVAILABLE without being decided: a writer woken from a pause must not
/// decide what was queued for it meanwhile.
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
    let subject = if authorization {
        ACTOR_SUBMIT_SUBJECTS
    } else {
        SUBMIT_SUBJECT
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
    super::await_registration(&client, &service).await?;
    tracing::info!(
        subject,
        authorization,
        await_stream_ack = stream_ack.is_some(),
        "command service ready"
    );
    Ok(async move {
        let in_flight = Arc::new(Semaphore::new(limits.max_commands_in_flight));
        let tasks = TaskTracker::new();
        loop {
            let request = tokio::select! {
                _ = shutdown.cancelled() => break,
                request = endpoint.next() => match request {
                    Some(request) => request,
                    None => break,
                },
            };
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let writer = writer.clone();
            let stream_ack = stream_ack.clone();
            let lease_over = lease
                .as_ref()
                .is_some_and(|until| tokio::time::Instant::now() >= *until.borrow());
            tasks.spawn(async move {
            let bytes = request.message.payload.as_ref();
            let result = match wire::decode_envelope_within(bytes, limits.max_envelope_bytes) {
                Ok(envelope) if lease_over => not_the_writer(&envelope.command_id),
                Ok(mut envelope) if authorization => {
                    match actor_of_subject(request.message.subject.as_str()) {
                        Some(actor) => {
                            envelope.actor = actor.to_owned();
                            writer.submit(envelope).await
                        }
                        None => invalid_actor(&envelope.command_id, &request.message.subject),
                    }
                }
                Ok(envelope) => writer.submit(envelope).await,
                Err(error) => {
                    tracing::debug!(%error, "undecodable command");
                    invalid_request(bytes, &error)
                }
            };
            let result = match &stream_ack {
                Some(stream_ack) => stream_ack.settle(result).await,
                None => result,
            };
            if let Err(error) = request.respond(Ok(result.encode_to_vec().into())).await {
                tracing::warn!(%error, command_id = %result.command_id, "could not send the answer");
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
        for subject in [
            "tepai.cmd.submit",
            "tepai.cmd..submit",
            "tepai.cmd.a.b.submit",
            "tepai.cmd.a!.submit",
            "tepai.query.admin.submit",
            &format!("tepai.cmd.{}.submit", "a".repeat(65)),
        ] {
            assert_eq!(actor_of_subject(subject), None, "{subject}");
        }
    }
}
