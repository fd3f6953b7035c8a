//! The query service over HTTP/JSON. Parameters and JSON fields carry the
//! protobuf field names; a bad parameter is a 400 with a JSON error, never
//! a 500 or a stack trace.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use super::{error_code, QueryService};
use crate::projection::QueryError;
use crate::wire::pb;

/// Longest value of one query parameter.
pub const MAX_PARAM_LEN: usize = 256;

#[derive(Clone)]
struct AppState {
    queries: Arc<QueryService>,
    metrics: Option<PrometheusHandle>,
}

struct ApiError(QueryError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = error_code(&self.0);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = serde_json::json!({ "code": code, "message": self.0.to_string() });
        (status, Json(body)).into_response()
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        ApiError(error)
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError(QueryError::InvalidArgument {
        field,
        message: message.into(),
    })
}

/// Query parameters, checked against the names a view accepts.
struct Params(HashMap<String, String>);

impl Params {
    fn new(raw: HashMap<String, String>, allowed: &[&'static str]) -> Result<Self, ApiError> {
        for (key, value) in &raw {
            let Some(field) = allowed.iter().find(|a| **a == key.as_str()) else {
                return Err(invalid(
                    "query",
                    format!(
                        "unknown parameter '{}'; this view takes {}",
                        crate::domain::excerpt(key),
                        allowed.join(", ")
                    ),
                ));
            };
            if value.chars().count() > MAX_PARAM_LEN {
                return Err(invalid(
                    field,
                    format!("is longer than {MAX_PARAM_LEN} characters"),
                ));
            }
        }
        Ok(Self(raw))
    }

    fn text(&self, key: &str) -> String {
        self.0.get(key).cloned().unwrap_or_default()
    }

    fn number<T: std::str::FromStr + Default>(&self, field: &'static str) -> Result<T, ApiError> {
        match self.0.get(field) {
            None => Ok(T::default()),
            Some(v) => v.parse().map_err(|_| {
                invalid(
                    field,
                    format!(
                        "'{}' is not a whole number in range",
                        crate::domain::excerpt(v)
                    ),
                )
            }),
        }
    }

    fn flag(&self, field: &'static str) -> Result<bool, ApiError> {
        match self.0.get(field).map(String::as_str) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(other) => Err(invalid(
                field,
                format!("'{}' is not true or false", crate::domain::excerpt(other)),
            )),
        }
    }
}

fn status_filter(value: &str) -> Result<i32, ApiError> {
    let status = match value.to_ascii_lowercase().as_str() {
        "" => pb::AssignmentStatus::Unspecified,
        "scheduled" => pb::AssignmentStatus::Scheduled,
        "active" => pb::AssignmentStatus::Active,
        "ended" => pb::AssignmentStatus::Ended,
        "expired" => pb::AssignmentStatus::Expired,
        _ => {
            return Err(invalid(
                "status",
                format!(
                    "'{}' is not scheduled, active, ended or expired",
                    crate::domain::excerpt(value)
                ),
            ))
        }
    };
    Ok(status as i32)
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    Json(value).into_response()
}

async fn assignments(
    State(state): State<AppState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = Params::new(
        raw,
        &[
            "on_date",
            "commissioner_id",
            "workstation_id",
            "home_city",
            "serving_city",
            "cross_city_only",
            "status",
            "as_of_position",
            "page_size",
            "page_token",
        ],
    )?;
    let query = pb::AssignmentsQuery {
        on_date: p.text("on_date"),
        commissioner_id: p.text("commissioner_id"),
        workstation_id: p.text("workstation_id"),
        home_city: p.text("home_city"),
        serving_city: p.text("serving_city"),
        cross_city_only: p.flag("cross_city_only")?,
        status: status_filter(&p.text("status"))?,
        as_of_position: p.number("as_of_position")?,
        page_size: p.number("page_size")?,
        page_token: p.text("page_token"),
    };
    Ok(json(&state.queries.assignments(query).await?))
}

async fn commissioner(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = Params::new(raw, &["on_date", "as_of_position"])?;
    let query = pb::CommissionerQuery {
        commissioner_id: id,
        on_date: p.text("on_date"),
        as_of_position: p.number("as_of_position")?,
    };
    Ok(json(&state.queries.commissioner(query).await?))
}

async fn workstation(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = Params::new(raw, &["on_date", "as_of_position"])?;
    let query = pb::WorkstationQuery {
        workstation_id: id,
        on_date: p.text("on_date"),
        as_of_position: p.number("as_of_position")?,
    };
    Ok(json(&state.queries.workstation(query).await?))
}

async fn city_matrix(
    State(state): State<AppState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let p = Params::new(raw, &["on_date", "from_date", "to_date", "as_of_position"])?;
    let query = pb::CityMatrixQuery {
        on_date: p.text("on_date"),
        from_date: p.text("from_date"),
        to_date: p.text("to_date"),
        as_of_position: p.number("as_of_position")?,
    };
    Ok(json(&state.queries.city_matrix(query).await?))
}

async fn status(State(state): State<AppState>) -> Response {
    json(&state.queries.status())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn prometheus_metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => handle.render().into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError(QueryError::NotFound(
        "no such path; see /v1/assignments, /v1/commissioners/{id}, /v1/workstations/{id}, /v1/city-matrix, /v1/status".into(),
    ))
}

/// The router, for serving or for tests.
pub fn router(queries: Arc<QueryService>, metrics: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route("/v1/assignments", get(assignments))
        .route("/v1/commissioners/{id}", get(commissioner))
        .route("/v1/workstations/{id}", get(workstation))
        .route("/v1/city-matrix", get(city_matrix))
        .route("/v1/status", get(status))
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus_metrics))
        .fallback(not_found)
        .with_state(AppState { queries, metrics })
}

/// Binds `addr` and returns the bound address with the server future, so
/// tests can ask for port 0 and learn the port.
pub async fn bind(
    addr: SocketAddr,
    queries: Arc<QueryService>,
    metrics: Option<PrometheusHandle>,
    shutdown: CancellationToken,
) -> std::io::Result<(
    SocketAddr,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(queries, metrics);
    let serve = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    };
    Ok((bound, serve))
}
