//! The query service on NATS: a micro service `tepai-queries` with one
//! endpoint per view under `tepai.query`. Requests and replies are
//! protobuf; errors are micro-service errors (`Nats-Service-Error` and
//! `Nats-Service-Error-Code` = 400, 404 or 503).

use std::sync::Arc;

use async_nats::service::{self, ServiceExt};
use futures::StreamExt;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{error_code, QueryService};
use crate::bus::{BusError, QUERY_PREFIX};
use crate::projection::QueryError;
use crate::wire::pb;

/// Name under which the service registers.
pub const SERVICE_NAME: &str = "tepai-queries";
/// The views, as endpoint names under [`QUERY_PREFIX`].
pub const VIEWS: [&str; 9] = [
    "assignments",
    "commissioner",
    "workstation",
    "city_matrix",
    "demands",
    "demand",
    "candidates",
    "assessment",
    "status",
];

/// The encoded answer of `view` to the request `body`, as the NATS
/// endpoint gives it. Public so tests and fuzz targets drive the same
/// path as a request over NATS.
pub async fn answer(
    service: &Arc<QueryService>,
    view: &str,
    body: &[u8],
) -> Result<Vec<u8>, QueryError> {
    let max = service.limits().max_query_bytes;
    Ok(match view {
        "assignments" => service
            .assignments(decode(body, max)?)
            .await?
            .encode_to_vec(),
        "commissioner" => service
            .commissioner(decode(body, max)?)
            .await?
            .encode_to_vec(),
        "workstation" => service
            .workstation(decode(body, max)?)
            .await?
            .encode_to_vec(),
        "city_matrix" => service
            .city_matrix(decode(body, max)?)
            .await?
            .encode_to_vec(),
        "demands" => service.demands(decode(body, max)?).await?.encode_to_vec(),
        "demand" => service.demand(decode(body, max)?).await?.encode_to_vec(),
        "candidates" => service
            .candidates(decode(body, max)?)
            .await?
            .encode_to_vec(),
        "assessment" => service
            .assessment(decode(body, max)?)
            .await?
            .encode_to_vec(),
        _ => {
            decode::<pb::StatusQuery>(body, max)?;
            service.status().encode_to_vec()
        }
    })
}

/// Registers the service and its endpoints, then returns the future that
/// serves queries until `shutdown`.
pub async fn start(
    client: async_nats::Client,
    queries: Arc<QueryService>,
    shutdown: CancellationToken,
) -> Result<impl std::future::Future<Output = Result<(), BusError>>, BusError> {
    let service = client
        .service_builder()
        .description("tepai: who serves where — assignments, details, city matrix, demands, assessment, status")
        .start(SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(BusError::nats)?;
    let group = service.group(QUERY_PREFIX);
    let mut endpoints = Vec::new();
    for view in VIEWS {
        let endpoint = group.endpoint(view).await.map_err(BusError::nats)?;
        endpoints.push(endpoint.map(move |request| (view, request)));
    }
    let mut requests = futures::stream::select_all(endpoints);
    crate::bus::await_registration(&client, &service).await?;
    tracing::info!("query service ready on {QUERY_PREFIX}.<view>");
    Ok(async move {
        let tasks = TaskTracker::new();
        loop {
            let (view, request) = tokio::select! {
                _ = shutdown.cancelled() => break,
                next = requests.next() => match next {
                    Some(next) => next,
                    None => break,
                },
            };
            // Waiting here leaves further requests with NATS, so tasks and
            // SQLite connections stay bounded.
            let permit = queries.permit().await;
            let queries = queries.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let reply = answer(&queries, view, request.message.payload.as_ref())
                    .await
                    .map(Into::into)
                    .map_err(|error| service::error::Error {
                        status: error.to_string(),
                        code: usize::from(error_code(&error).0),
                    });
                if let Err(error) = request.respond(reply).await {
                    tracing::debug!(%error, view, "could not send a query answer");
                }
            });
        }
        tasks.close();
        tasks.wait().await;
        service.stop().await.map_err(BusError::nats)?;
        Ok(())
    })
}

/// Decodes a query request of at most `max_bytes`.
fn decode<M: Message + Default>(bytes: &[u8], max_bytes: usize) -> Result<M, QueryError> {
    if bytes.len() > max_bytes {
        return Err(QueryError::InvalidArgument {
            field: "request",
            message: format!("{} bytes; the limit is {max_bytes}", bytes.len()),
        });
    }
    M::decode(bytes).map_err(|e| QueryError::InvalidArgument {
        field: "request",
        message: format!("not a valid query message: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::VIEWS;
    use crate::bus::{
        QUERY_ASSESSMENT_SUBJECT, QUERY_ASSIGNMENTS_SUBJECT, QUERY_CANDIDATES_SUBJECT,
        QUERY_CITY_MATRIX_SUBJECT, QUERY_COMMISSIONER_SUBJECT, QUERY_DEMANDS_SUBJECT,
        QUERY_DEMAND_SUBJECT, QUERY_PREFIX, QUERY_STATUS_SUBJECT, QUERY_WORKSTATION_SUBJECT,
    };

    /// The service's endpoints, under its group, are the subjects the
    /// clients ask on.
    #[test]
    fn every_view_is_served_on_the_subject_clients_ask_on() {
        let served = VIEWS.map(|view| format!("{QUERY_PREFIX}.{view}"));
        assert_eq!(
            served,
            [
                QUERY_ASSIGNMENTS_SUBJECT,
                QUERY_COMMISSIONER_SUBJECT,
                QUERY_WORKSTATION_SUBJECT,
                QUERY_CITY_MATRIX_SUBJECT,
                QUERY_DEMANDS_SUBJECT,
                QUERY_DEMAND_SUBJECT,
                QUERY_CANDIDATES_SUBJECT,
                QUERY_ASSESSMENT_SUBJECT,
                QUERY_STATUS_SUBJECT,
            ]
        );
    }
}
