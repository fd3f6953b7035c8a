//! The command service: a NATS micro service (discoverable through
//! `$SRV.PING/INFO/STATS`, with per-endpoint stats) answering
//! `tepai.cmd.submit` with a `CommandResult` for every `CommandEnvelope`.
//! Requests are handled concurrently so the writer can group-commit them.

use std::sync::Arc;

use futures::StreamExt;
use prost::Message;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{BusError, SUBMIT_SUBJECT};
use crate::processor::writer::{invalid_request, WriterHandle};
use crate::wire;

/// Name under which the service registers.
pub const SERVICE_NAME: &str = "tepai-commands";

/// Most requests being decided at once; beyond it the service stops
/// reading from NATS until one finishes, so memory stays bounded.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Registers the service and its endpoint, then returns the future that
/// serves commands until `shutdown` (then stops taking requests and waits
/// for those in flight to be answered). Registration is done when this
/// returns, so a caller can announce readiness before spawning the future.
pub async fn start(
    client: async_nats::Client,
    writer: WriterHandle,
    shutdown: CancellationToken,
) -> Result<impl std::future::Future<Output = Result<(), BusError>>, BusError> {
    use async_nats::service::ServiceExt;
    let service = client
        .service_builder()
        .description("tepai: decides commands about commissioners, workstations and posts")
        .start(SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(BusError::nats)?;
    let mut endpoint = service
        .endpoint_builder()
        .name("submit")
        .add(SUBMIT_SUBJECT)
        .await
        .map_err(BusError::nats)?;
    super::await_registration(&client, &service).await?;
    tracing::info!(subject = SUBMIT_SUBJECT, "command service ready");
    Ok(async move {
        let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
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
            tasks.spawn(async move {
            let bytes = request.message.payload.as_ref();
            let result = match wire::decode_envelope(bytes) {
                Ok(envelope) => writer.submit(envelope).await,
                Err(error) => {
                    tracing::debug!(%error, "undecodable command");
                    invalid_request(bytes, &error)
                }
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
