//! The query service over HTTP/JSON. Parameters and JSON fields carry the
//! protobuf field names. Every error is JSON `{"code", "message"}`: a bad
//! path id or parameter (unknown, repeated, too long, malformed) is a 400,
//! an unknown path a 404, another method a 405, a full house a 503 —
//! never a 500 or a stack trace.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use super::{error_code, QueryService};
use crate::domain::excerpt;
use crate::limits::MAX_HTTP_PARAM_CHARS;
use crate::projection::QueryError;
use crate::wire::pb;

#[derive(Clone)]
struct AppState {
    queries: Arc<QueryService>,
    metrics: Option<PrometheusHandle>,
}

struct ApiError(QueryError);

fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({ "code": code, "message": message });
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = error_code(&self.0);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        error_response(status, code, self.0.to_string())
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

/// The query string as name/value pairs in order, so a repeated name is
/// seen rather than silently overwritten. Percent-decoding is lossy
/// (invalid UTF-8 becomes U+FFFD), so any query string extracts; the
/// values are judged by [`Params::new`] and the views.
struct Pairs(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Pairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| invalid("query", excerpt(&rejection.body_text())))?;
        Ok(Pairs(pairs))
    }
}

/// The `{id}` of a detail path, percent-decoded, bounded like a parameter.
struct Id(String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid("id", "is not percent-encoded UTF-8"))?;
        if id.chars().count() > MAX_HTTP_PARAM_CHARS {
            return Err(invalid(
                "id",
                format!("is longer than {MAX_HTTP_PARAM_CHARS} characters"),
            ));
        }
        Ok(Id(id))
    }
}

/// Query parameters, checked against the names a view accepts.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(Pairs(raw): Pairs, allowed: &[&'static str]) -> Result<Self, ApiError> {
        for (i, (key, value)) in raw.iter().enumerate() {
            let Some(field) = allowed.iter().find(|a| **a == key.as_str()) else {
                return Err(invalid(
                    "query",
                    format!(
                        "unknown parameter '{}'; this view takes {}",
                        excerpt(key),
                        allowed.join(", ")
                    ),
                ));
            };
            if raw[..i].iter().any(|(earlier, _)| earlier == key) {
                return Err(invalid(field, "is given more than once"));
            }
            if value.chars().count() > MAX_HTTP_PARAM_CHARS {
                return Err(invalid(
                    field,
                    format!("is longer than {MAX_HTTP_PARAM_CHARS} characters"),
                ));
            }
        }
        Ok(Self(raw))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, key: &str) -> String {
        self.get(key).unwrap_or_default().to_owned()
    }

    fn number<T: std::str::FromStr + Default>(&self, field: &'static str) -> Result<T, ApiError> {
        match self.get(field) {
            None => Ok(T::default()),
            Some(v) => v.parse().map_err(|_| {
                invalid(
                    field,
                    format!("'{}' is not a whole number in range", excerpt(v)),
                )
            }),
        }
    }

    fn flag(&self, field: &'static str) -> Result<bool, ApiError> {
        match self.get(field) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") | Some("") => Ok(true),
            Some(other) => Err(invalid(
                field,
                format!("'{}' is not true or false", excerpt(other)),
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
                    excerpt(value)
                ),
            ))
        }
    };
    Ok(status as i32)
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    Json(value).into_response()
}

fn assignments_query(raw: Pairs) -> Result<pb::AssignmentsQuery, ApiError> {
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
    Ok(pb::AssignmentsQuery {
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
    })
}

async fn assignments(State(state): State<AppState>, raw: Pairs) -> Result<Response, ApiError> {
    let query = assignments_query(raw)?;
    Ok(json(&state.queries.assignments(query).await?))
}

/// The same page as `/v1/assignments`, as CSV; the next page's token is in
/// the `x-next-page-token` header, so the export stays one bounded page.
async fn assignments_csv(State(state): State<AppState>, raw: Pairs) -> Result<Response, ApiError> {
    let query = assignments_query(raw)?;
    let page = state.queries.assignments(query).await?;
    let next = axum::http::HeaderValue::from_str(&page.next_page_token)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static(""));
    let headers = [
        (
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(super::csv::CSV_CONTENT_TYPE),
        ),
        (
            axum::http::HeaderName::from_static("x-next-page-token"),
            next,
        ),
    ];
    Ok((headers, super::csv::assignments(&page.assignments)).into_response())
}

async fn commissioner(
    State(state): State<AppState>,
    Id(id): Id,
    raw: Pairs,
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
    Id(id): Id,
    raw: Pairs,
) -> Result<Response, ApiError> {
    let p = Params::new(raw, &["on_date", "as_of_position"])?;
    let query = pb::WorkstationQuery {
        workstation_id: id,
        on_date: p.text("on_date"),
        as_of_position: p.number("as_of_position")?,
    };
    Ok(json(&state.queries.workstation(query).await?))
}

async fn city_matrix(State(state): State<AppState>, raw: Pairs) -> Result<Response, ApiError> {
    let p = Params::new(raw, &["on_date", "from_date", "to_date", "as_of_position"])?;
    let query = pb::CityMatrixQuery {
        on_date: p.text("on_date"),
        from_date: p.text("from_date"),
        to_date: p.text("to_date"),
        as_of_position: p.number("as_of_position")?,
    };
    Ok(json(&state.queries.city_matrix(query).await?))
}

fn demand_status_filter(value: &str) -> Result<i32, ApiError> {
    let status = match value.to_ascii_lowercase().as_str() {
        "" => pb::DemandStatus::Unspecified,
        "open" => pb::DemandStatus::DemandOpen,
        "dispatched" => pb::DemandStatus::DemandDispatched,
        "resolved" => pb::DemandStatus::DemandResolved,
        "withdrawn" => pb::DemandStatus::DemandWithdrawn,
        _ => {
            return Err(invalid(
                "status",
                format!(
                    "'{}' is not open, dispatched, resolved or withdrawn",
                    excerpt(value)
                ),
            ))
        }
    };
    Ok(status as i32)
}

async fn demands(State(state): State<AppState>, raw: Pairs) -> Result<Response, ApiError> {
    let p = Params::new(
        raw,
        &[
            "city",
            "status",
            "as_of_position",
            "page_size",
            "page_token",
        ],
    )?;
    let query = pb::DemandsQuery {
        city: p.text("city"),
        status: demand_status_filter(&p.text("status"))?,
        as_of_position: p.number("as_of_position")?,
        page_size: p.number("page_size")?,
        page_token: p.text("page_token"),
    };
    Ok(json(&state.queries.demands(query).await?))
}

async fn demand(
    State(state): State<AppState>,
    Id(id): Id,
    raw: Pairs,
) -> Result<Response, ApiError> {
    let p = Params::new(raw, &["as_of_position"])?;
    let query = pb::DemandQuery {
        demand_id: id,
        as_of_position: p.number("as_of_position")?,
    };
    Ok(json(&state.queries.demand(query).await?))
}

/// The criteria parameters of `/v1/candidates`; a demand's candidates take
/// only the position and paging.
const CANDIDATE_CRITERIA: [&str; 6] = [
    "demand_id",
    "expertise",
    "city",
    "hours_per_month",
    "start_date",
    "end_date",
];
const PAGING: [&str; 3] = ["as_of_position", "page_size", "page_token"];

async fn candidates(State(state): State<AppState>, raw: Pairs) -> Result<Response, ApiError> {
    let allowed: Vec<&'static str> = CANDIDATE_CRITERIA.iter().chain(&PAGING).copied().collect();
    let p = Params::new(raw, &allowed)?;
    let query = pb::CandidatesQuery {
        demand_id: p.text("demand_id"),
        // Several tags as one comma-separated parameter: a name may appear
        // only once in a query string here.
        expertise: p
            .text("expertise")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        city: p.text("city"),
        hours_per_month: p.number("hours_per_month")?,
        start_date: p.text("start_date"),
        end_date: p.text("end_date"),
        as_of_position: p.number("as_of_position")?,
        page_size: p.number("page_size")?,
        page_token: p.text("page_token"),
    };
    Ok(json(&state.queries.candidates(query).await?))
}

async fn demand_candidates(
    State(state): State<AppState>,
    Id(id): Id,
    raw: Pairs,
) -> Result<Response, ApiError> {
    let p = Params::new(raw, &PAGING)?;
    let query = pb::CandidatesQuery {
        demand_id: id,
        as_of_position: p.number("as_of_position")?,
        page_size: p.number("page_size")?,
        page_token: p.text("page_token"),
        ..Default::default()
    };
    Ok(json(&state.queries.candidates(query).await?))
}

/// The parameters of the assessment and its CSV export; the export takes
/// every row, so no paging ones.
const ASSESSMENT_PARAMS: [&str; 6] = [
    "year",
    "subject",
    "city",
    "commissioner_id",
    "workstation_id",
    "as_of_position",
];

fn assessment_query(raw: Pairs, paged: bool) -> Result<pb::AssessmentQuery, ApiError> {
    let mut allowed = ASSESSMENT_PARAMS.to_vec();
    if paged {
        allowed.extend(["page_size", "page_token"]);
    }
    let p = Params::new(raw, &allowed)?;
    let subject = match p.text("subject").to_ascii_lowercase().as_str() {
        "" => pb::AssessmentSubject::Unspecified,
        "commissioners" => pb::AssessmentSubject::Commissioners,
        "workstations" => pb::AssessmentSubject::Workstations,
        other => {
            return Err(invalid(
                "subject",
                format!("'{}' is not commissioners or workstations", excerpt(other)),
            ))
        }
    };
    Ok(pb::AssessmentQuery {
        year: p.number("year")?,
        subject: subject as i32,
        city: p.text("city"),
        commissioner_id: p.text("commissioner_id"),
        workstation_id: p.text("workstation_id"),
        as_of_position: p.number("as_of_position")?,
        page_size: p.number("page_size")?,
        page_token: p.text("page_token"),
    })
}

async fn assessment(State(state): State<AppState>, raw: Pairs) -> Result<Response, ApiError> {
    let query = assessment_query(raw, true)?;
    Ok(json(&state.queries.assessment(query).await?))
}

async fn assessment_csv(State(state): State<AppState>, raw: Pairs) -> Result<Response, ApiError> {
    let query = assessment_query(raw, false)?;
    let page = state.queries.assessment_all(query).await?;
    let headers = [(
        axum::http::header::CONTENT_TYPE,
        super::csv::CSV_CONTENT_TYPE,
    )];
    Ok((headers, super::csv::assessment(&page.rows)).into_response())
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

/// Holds one of the service's query permits for the request, or answers
/// 503 at once when [`crate::limits::Limits::max_queries_in_flight`] are
/// being answered: waiting would only pile up connections.
async fn bounded(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.queries.try_permit() {
        Some(_permit) => next.run(request).await,
        None => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            format!(
                "{} queries are being answered, the limit; retry shortly",
                state.queries.limits().max_queries_in_flight
            ),
        ),
    }
}

async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "the query service answers GET only".into(),
    )
}

async fn not_found() -> ApiError {
    ApiError(QueryError::NotFound(
        "no such path; see / (the console), /v1/assignments, /v1/assignments.csv, /v1/commissioners/{id}, /v1/workstations/{id}, /v1/city-matrix, /v1/demands, /v1/candidates, /v1/assessment, /v1/assessment.csv, /v1/status".into(),
    ))
}

/// The router, for serving or for tests.
pub fn router(queries: Arc<QueryService>, metrics: Option<PrometheusHandle>) -> Router {
    let state = AppState { queries, metrics };
    // Only the views read SQLite; health and metrics stay answerable
    // however busy the views are.
    let views = Router::new()
        .route("/v1/assignments", get(assignments))
        .route("/v1/assignments.csv", get(assignments_csv))
        .route("/v1/commissioners/{id}", get(commissioner))
        .route("/v1/workstations/{id}", get(workstation))
        .route("/v1/city-matrix", get(city_matrix))
        .route("/v1/demands", get(demands))
        .route("/v1/demands/{id}", get(demand))
        .route("/v1/demands/{id}/candidates", get(demand_candidates))
        .route("/v1/candidates", get(candidates))
        .route("/v1/assessment", get(assessment))
        .route("/v1/assessment.csv", get(assessment_csv))
        .route_layer(middleware::from_fn_with_state(state.clone(), bounded));
    Router::new()
        .merge(views)
        .merge(super::console::routes())
        .route("/v1/status", get(status))
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus_metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
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
