//! The query service: answers the views over NATS (`tepai.query.<view>`,
//! protobuf) and HTTP/JSON, from SQLite connections kept off the async
//! threads.

pub mod console;
pub mod csv;
pub mod http;
pub mod nats;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::bus::projector::ProjectorProgress;
use crate::domain::{region_date, AssessmentPolicy, CityCode, Date, Policy};
use crate::limits::Limits;
use crate::projection::{QueryError, Views};
use crate::wire::pb;

/// Where the status view learns the positions of the other parts. A query
/// node on its own knows only its projector; `tepai up` knows them all.
#[derive(Debug, Clone)]
pub struct StatusSources {
    /// The event store's committed head, when the writer runs here.
    pub store_head: Option<watch::Receiver<u64>>,
    /// The relay's acknowledged position, when the relay runs here.
    pub relay: Option<watch::Receiver<u64>>,
    /// The projector feeding this node's views.
    pub projector: watch::Receiver<ProjectorProgress>,
}

/// Read-only connections to the live views, reused across requests. Each
/// remembers its generation; after a rebuild swaps generations, old
/// connections are dropped as they come back and new ones open the new file.
#[derive(Debug)]
struct ViewsPool {
    live: watch::Receiver<PathBuf>,
    idle: Mutex<Vec<(PathBuf, Views)>>,
}

impl ViewsPool {
    fn with<R>(&self, f: impl FnOnce(&Views) -> Result<R, QueryError>) -> Result<R, QueryError> {
        let live = self.live.borrow().clone();
        let pooled = self.idle.lock().ok().and_then(|mut idle| {
            idle.retain(|(path, _)| *path == live);
            idle.pop()
        });
        let (path, views) = match pooled {
            Some(pooled) => pooled,
            None => {
                let views = Views::open(&live).map_err(|e| QueryError::Storage(e.to_string()))?;
                (live, views)
            }
        };
        let result = f(&views);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push((path, views));
        }
        result
    }
}

/// Answers queries; shared by the NATS and HTTP front ends.
#[derive(Debug)]
pub struct QueryService {
    pool: ViewsPool,
    /// The region and the limits `decide` applies, which the candidates
    /// view applies too.
    policy: Policy,
    status: StatusSources,
    limits: Limits,
    /// Points and grades of the assessment view.
    assessment: Arc<AssessmentPolicy>,
    /// One permit per query being answered, NATS and HTTP together, so
    /// SQLite connections and blocking threads stay bounded.
    in_flight: Arc<Semaphore>,
}

fn today() -> Date {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    region_date(now)
}

impl QueryService {
    /// A service over the live views file that `live` names (created by
    /// the projector), for the region and limits of `policy`, within
    /// `limits`, grading the assessment under `assessment`.
    pub fn new(
        live: watch::Receiver<PathBuf>,
        policy: Policy,
        status: StatusSources,
        limits: Limits,
        assessment: AssessmentPolicy,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool: ViewsPool {
                live,
                idle: Mutex::new(Vec::new()),
            },
            policy,
            status,
            in_flight: Arc::new(Semaphore::new(limits.max_queries_in_flight)),
            limits,
            assessment: Arc::new(assessment),
        })
    }

    /// The limits the service answers within.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Waits for room to answer one more query. `None` only if the
    /// semaphore were closed, which it never is.
    async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().acquire_owned().await.ok()
    }

    /// Room to answer one more query now, or `None` when
    /// [`Limits::max_queries_in_flight`] are being answered.
    fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
    }

    fn check_city(&self, field: &'static str, value: &str) -> Result<(), QueryError> {
        if value.is_empty() {
            return Ok(());
        }
        let city = CityCode::parse(field, value)?;
        if self.policy.region.contains(&city) {
            Ok(())
        } else {
            Err(QueryError::InvalidArgument {
                field,
                message: format!("city {city} is not in the region"),
            })
        }
    }

    /// Refuses a page larger than the configured limit.
    fn check_page_size(&self, asked: u32) -> Result<(), QueryError> {
        let max_page_size = self.limits.max_page_size;
        if asked > max_page_size {
            return Err(QueryError::InvalidArgument {
                field: "page_size",
                message: format!("{asked} is more than the limit of {max_page_size}"),
            });
        }
        Ok(())
    }

    async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        view: &'static str,
        f: impl FnOnce(&Views, Date) -> Result<R, QueryError> + Send + 'static,
    ) -> Result<R, QueryError> {
        let started = Instant::now();
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || this.pool.with(|views| f(views, today())))
            .await
            .map_err(|e| QueryError::Storage(format!("query task failed: {e}")))?;
        metrics::histogram!("tepai_query_seconds", "view" => view)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// The assignments view.
    pub async fn assignments(
        self: &Arc<Self>,
        q: pb::AssignmentsQuery,
    ) -> Result<pb::AssignmentsPage, QueryError> {
        self.check_city("home_city", &q.home_city)?;
        self.check_city("serving_city", &q.serving_city)?;
        self.check_page_size(q.page_size)?;
        self.run("assignments", move |views, today| {
            views.assignments(&q, today)
        })
        .await
    }

    /// A commissioner's detail.
    pub async fn commissioner(
        self: &Arc<Self>,
        q: pb::CommissionerQuery,
    ) -> Result<pb::CommissionerDetail, QueryError> {
        self.run("commissioner", move |views, today| {
            views.commissioner(&q, today)
        })
        .await
    }

    /// A workstation's detail.
    pub async fn workstation(
        self: &Arc<Self>,
        q: pb::WorkstationQuery,
    ) -> Result<pb::WorkstationDetail, QueryError> {
        self.run("workstation", move |views, today| {
            views.workstation(&q, today)
        })
        .await
    }

    /// The city matrix.
    pub async fn city_matrix(
        self: &Arc<Self>,
        q: pb::CityMatrixQuery,
    ) -> Result<pb::CityMatrix, QueryError> {
        self.run("city_matrix", move |views, today| {
            views.city_matrix(&q, today)
        })
        .await
    }

    /// The demands board.
    pub async fn demands(
        self: &Arc<Self>,
        q: pb::DemandsQuery,
    ) -> Result<pb::DemandsPage, QueryError> {
        self.check_city("city", &q.city)?;
        self.check_page_size(q.page_size)?;
        self.run("demands", move |views, _| views.demands(&q)).await
    }

    /// The candidates for a demand or for ad-hoc criteria.
    pub async fn candidates(
        self: &Arc<Self>,
        q: pb::CandidatesQuery,
    ) -> Result<pb::CandidatesPage, QueryError> {
        self.check_page_size(q.page_size)?;
        let policy = self.policy.clone();
        self.run("candidates", move |views, _| views.candidates(&q, &policy))
            .await
    }

    /// A demand's detail.
    pub async fn demand(
        self: &Arc<Self>,
        q: pb::DemandQuery,
    ) -> Result<pb::DemandDetail, QueryError> {
        self.run("demand", move |views, today| views.demand(&q, today))
            .await
    }

    /// The annual assessment.
    pub async fn assessment(
        self: &Arc<Self>,
        q: pb::AssessmentQuery,
    ) -> Result<pb::AssessmentPage, QueryError> {
        self.check_city("city", &q.city)?;
        self.check_page_size(q.page_size)?;
        let policy = self.assessment.clone();
        self.run("assessment", move |views, today| {
            views.assessment(&q, today, &policy)
        })
        .await
    }

    /// Every row of the annual assessment at once, for the CSV export.
    pub async fn assessment_all(
        self: &Arc<Self>,
        q: pb::AssessmentQuery,
    ) -> Result<pb::AssessmentPage, QueryError> {
        self.check_city("city", &q.city)?;
        let policy = self.assessment.clone();
        self.run("assessment_all", move |views, today| {
            views.assessment_all(&q, today, &policy)
        })
        .await
    }

    /// Positions of the store, the relay and the views, and the views' lag.
    pub fn status(&self) -> pb::Status {
        let progress = *self.status.projector.borrow();
        // Whatever the views read came out of the stream, so JetStream had
        // acknowledged it even if the relay has not yet noted the ack.
        let relay_position = self
            .status
            .relay
            .as_ref()
            .map_or(progress.stream_last, |r| *r.borrow())
            .max(progress.checkpoint);
        let last_position = self
            .status
            .store_head
            .as_ref()
            .map_or(relay_position.max(progress.stream_last), |h| *h.borrow());
        let lag = last_position.saturating_sub(progress.checkpoint);
        pb::Status {
            last_position,
            relay_position,
            projections: vec![pb::ProjectionStatus {
                name: "views".to_owned(),
                checkpoint: progress.checkpoint,
                lag,
            }],
        }
    }
}

/// The HTTP status and NATS error code of a query error.
pub fn error_code(error: &QueryError) -> (u16, &'static str) {
    match error {
        QueryError::InvalidArgument { .. } => (400, "INVALID_ARGUMENT"),
        QueryError::NotFound(_) => (404, "NOT_FOUND"),
        QueryError::Storage(_) => (503, "UNAVAILABLE"),
    }
}
