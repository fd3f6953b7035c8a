//! Tests for the views, all against real SQLite files in temp dirs, fed a
//! realistic history of two cities.
//!
//! `mod.rs` holds the shared helpers: builders of events, `history()` with
//! its statuses by date, a [`Fixture`] of a projection and its views, and
//! [`snapshot`] of every view as of a position. One file per concern.

mod as_of;
mod assessment;
mod assignments;
mod batches;
mod candidates;
mod city_matrix;
mod demands;
mod details;
mod digest;
mod invalid_arguments;
mod properties;
mod rebuild;

use std::path::PathBuf;

use tempfile::TempDir;
use uuid::Uuid;

use super::{ApplyOutcome, Projection, ProjectionError, QueryError, Views};
use crate::domain::{
    parse_date, Capacity, CityCode, CommissionerId, CommissionerKind, Date, Event, HoursPerMonth,
    Minutes, PostId, ServiceId, Text, WorkstationId,
};
use crate::wire::{self, pb};

const HOHHOT: &str = "150100";
const BAOTOU: &str = "150200";

fn date(s: &str) -> Date {
    parse_date("date", s).unwrap()
}

fn c(n: u128) -> CommissionerId {
    CommissionerId(Uuid::from_u128(0xc000 + n))
}
fn w(n: u128) -> WorkstationId {
    WorkstationId(Uuid::from_u128(0xa000 + n))
}
fn p(n: u128) -> PostId {
    PostId(Uuid::from_u128(0xb000 + n))
}
fn s(n: u128) -> ServiceId {
    ServiceId(Uuid::from_u128(0xd000 + n))
}
fn text(s: &str) -> Text {
    Text::trusted(s)
}
fn texts(values: &[&str]) -> Vec<Text> {
    values.iter().map(|v| text(v)).collect()
}

fn register(id: CommissionerId, name: &str, home: CityCode, kind: CommissionerKind) -> Event {
    Event::CommissionerRegistered {
        commissioner_id: id,
        name: text(name),
        home_city: home,
        employer: text("Inner Mongolia University"),
        kind,
        expertise: texts(&["dairy", "genomics"]),
    }
}

fn establish(id: WorkstationId, name: &str, host: CityCode, capacity: u32) -> Event {
    Event::WorkstationEstablished {
        workstation_id: id,
        name: text(name),
        host_org: text("Host organisation"),
        host_city: host,
        capacity: Capacity::parse("capacity", capacity).unwrap(),
        fields: texts(&["agriculture"]),
    }
}

#[allow(clippy::too_many_arguments)]
fn appoint(
    post: PostId,
    commissioner: CommissionerId,
    workstation: WorkstationId,
    serving: CityCode,
    hours: u32,
    start: &str,
    end: &str,
) -> Event {
    Event::PostAppointed {
        post_id: post,
        commissioner_id: commissioner,
        workstation_id: workstation,
        serving_city: serving,
        role: text("adviser"),
        hours_per_month: HoursPerMonth::parse("hours", hours).unwrap(),
        start_date: date(start),
        end_date: date(end),
    }
}

fn end_post(post: PostId, end: &str) -> Event {
    Event::PostEnded {
        post_id: post,
        end_date: date(end),
        reason: text("done"),
    }
}

fn service(id: ServiceId, post: PostId, on: &str, minutes: u32, city: CityCode) -> Event {
    Event::ServiceRecorded {
        service_id: id,
        post_id: post,
        date: date(on),
        minutes: Minutes::parse("minutes", minutes).unwrap(),
        beneficiary: text("Beneficiary Co."),
        beneficiary_city: city,
        summary: text("site visit"),
        demand_id: None,
    }
}

/// Two cities, cross-city posts both ways, an extension, ended posts (one
/// before it ever started), a retirement and service records.
///
/// Statuses of the posts on a few dates (S scheduled, A active, E ended,
/// X expired):
/// ```text
///             P1 P2 P3 P4 P5
/// 2024-12-31  S  S  S  S  S
/// 2025-04-15  A  A  A  S  S
/// 2025-06-15  A  E  A  A  S   P3 only because of its extension
/// 2025-07-16  A  E  A  E  S
/// 2025-08-20  A  E  A  E  S   P5 ended (08-31) before its start (09-01)
/// 2025-09-15  A  E  A  E  E   so it never runs
/// 2025-10-01  A  E  X  E  E
/// 2026-01-01  X  E  X  E  E
/// ```
fn history() -> Vec<Event> {
    use CityCode as City;
    vec![
        /* 1 */ register(c(1), "Wang Min", City::HOHHOT, CommissionerKind::University),
        /* 2 */ register(c(2), "Li Na", City::BAOTOU, CommissionerKind::Enterprise),
        /* 3 */
        register(
            c(3),
            "Zhao Lei",
            City::HOHHOT,
            CommissionerKind::ResearchInstitute,
        ),
        /* 4 */ establish(w(1), "Saihan Dairy Station", City::HOHHOT, 5),
        /* 5 */ establish(w(2), "Kundulun Rare Earth Station", City::BAOTOU, 3),
        /* 6 */
        Event::WorkstationServiceExtended {
            workstation_id: w(1),
            city: City::BAOTOU,
        },
        /* 7 */
        appoint(
            p(1),
            c(1),
            w(1),
            City::HOHHOT,
            20,
            "2025-01-01",
            "2025-12-31",
        ),
        /* 8 */
        appoint(
            p(2),
            c(1),
            w(2),
            City::BAOTOU,
            30,
            "2025-03-01",
            "2025-08-31",
        ),
        /* 9 */
        appoint(
            p(3),
            c(2),
            w(1),
            City::HOHHOT,
            10,
            "2025-02-01",
            "2025-06-30",
        ),
        /* 10 */
        appoint(
            p(4),
            c(3),
            w(1),
            City::BAOTOU,
            15,
            "2025-06-01",
            "2026-05-31",
        ),
        /* 11 */
        Event::CommissionerProfileUpdated {
            commissioner_id: c(1),
            name: text("Wang Min (王敏)"),
            employer: text("Inner Mongolia Agricultural University"),
            expertise: texts(&["dairy", "genomics", "feed"]),
        },
        /* 12 */ service(s(1), p(2), "2025-03-10", 120, City::BAOTOU),
        /* 13 */ service(s(2), p(1), "2025-03-12", 60, City::HOHHOT),
        /* 14 */
        Event::PostTermExtended {
            post_id: p(3),
            end_date: date("2025-09-30"),
            previous_end_date: date("2025-06-30"),
        },
        /* 15 */ service(s(3), p(3), "2025-04-02", 90, City::HOHHOT),
        /* 16 */
        Event::CommissionerSuspended {
            commissioner_id: c(2),
            reason: text("audit"),
        },
        /* 17 */
        Event::CommissionerReinstated {
            commissioner_id: c(2),
            reason: text("cleared"),
        },
        /* 18 */
        Event::CommissionerRetired {
            commissioner_id: c(3),
            effective_date: date("2025-07-15"),
        },
        /* 19 */ end_post(p(4), "2025-07-15"),
        /* 20 */
        Event::WorkstationCapacityChanged {
            workstation_id: w(2),
            capacity: Capacity::parse("capacity", 4).unwrap(),
            previous_capacity: Capacity::parse("capacity", 3).unwrap(),
        },
        /* 21 */ end_post(p(2), "2025-05-31"),
        /* 22 */
        appoint(
            p(5),
            c(2),
            w(2),
            City::BAOTOU,
            12,
            "2025-09-01",
            "2025-12-31",
        ),
        /* 23 */ service(s(4), p(1), "2025-04-20", 45, City::BAOTOU),
        /* 24 */
        Event::WorkstationServiceWithdrawn {
            workstation_id: w(1),
            city: City::BAOTOU,
            effective_date: date("2025-08-01"),
        },
        /* 25 */
        Event::WorkstationClosed {
            workstation_id: w(2),
            effective_date: date("2025-08-31"),
        },
        /* 26 */ end_post(p(5), "2025-08-31"),
    ]
}

/// Demand `n`'s id.
fn dm(n: u128) -> crate::domain::DemandId {
    crate::domain::DemandId(Uuid::from_u128(0xe000 + n))
}

/// Demand `n` submitted in `city`: wants dairy, 10 hours a month, in 2025.
fn submitted(n: u128, city: CityCode) -> Event {
    Event::DemandSubmitted {
        demand_id: dm(n),
        title: text(&format!("demand {n}")),
        enterprise: text("Yili"),
        city,
        expertise: texts(&["dairy"]),
        hours_per_month: HoursPerMonth::parse("hours", 10).unwrap(),
        start_date: date("2025-01-01"),
        end_date: date("2025-12-31"),
        description: text("fermentation"),
    }
}

fn envelope(position: u64, event: &Event) -> pb::EventEnvelope {
    pb::EventEnvelope {
        event_id: Uuid::from_u128(u128::from(position)).to_string(),
        global_position: position,
        stream_id: event.stream().to_string(),
        recorded_at: 1_750_000_000_000,
        event: Some(wire::event_to_pb(event)),
        ..Default::default()
    }
}

/// Envelopes for `events`, at positions 1..=n.
fn envelopes(events: &[Event]) -> Vec<pb::EventEnvelope> {
    (1..).zip(events).map(|(i, e)| envelope(i, e)).collect()
}

struct Fixture {
    _dir: TempDir,
    path: PathBuf,
    projection: Projection,
    views: Views,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("views").join("views.db");
    let projection = Projection::open(&path).unwrap();
    let views = Views::open(&path).unwrap();
    Fixture {
        _dir: dir,
        path,
        projection,
        views,
    }
}

/// A fixture that has applied the first `k` events of `history()`.
fn fed(k: usize) -> Fixture {
    let mut f = fixture();
    f.projection
        .apply_batch(&envelopes(&history())[..k])
        .unwrap();
    f
}

fn today() -> Date {
    date("2025-04-15")
}

fn query(on: &str) -> pb::AssignmentsQuery {
    pb::AssignmentsQuery {
        on_date: on.to_owned(),
        ..Default::default()
    }
}

fn ids(page: &pb::AssignmentsPage) -> Vec<String> {
    page.assignments.iter().map(|a| a.post_id.clone()).collect()
}

fn posts(ns: &[u128]) -> Vec<String> {
    ns.iter().map(|n| p(*n).to_string()).collect()
}

/// Every view, asked at `as_of`, on a spread of dates, unknown ids included.
#[derive(Debug, PartialEq)]
struct Snapshot {
    assignments: Vec<pb::AssignmentsPage>,
    commissioners: Vec<Result<pb::CommissionerDetail, QueryError>>,
    workstations: Vec<Result<pb::WorkstationDetail, QueryError>>,
    matrices: Vec<pb::CityMatrix>,
}

fn snapshot(views: &Views, as_of: u64) -> Snapshot {
    let dates = ["2025-02-15", "2025-06-15", "2025-08-20", "2026-01-01"];
    let assignments = dates
        .iter()
        .map(|on| {
            let q = pb::AssignmentsQuery {
                as_of_position: as_of,
                ..query(on)
            };
            views.assignments(&q, today()).unwrap()
        })
        .collect();
    let commissioners = [c(1), c(2), c(3), c(99)]
        .iter()
        .flat_map(|id| dates.iter().map(move |on| (id, on)))
        .map(|(id, on)| {
            let q = pb::CommissionerQuery {
                commissioner_id: id.to_string(),
                on_date: (*on).to_owned(),
                as_of_position: as_of,
            };
            views.commissioner(&q, today())
        })
        .collect();
    let workstations = [w(1), w(2), w(99)]
        .iter()
        .flat_map(|id| dates.iter().map(move |on| (id, on)))
        .map(|(id, on)| {
            let q = pb::WorkstationQuery {
                workstation_id: id.to_string(),
                on_date: (*on).to_owned(),
                as_of_position: as_of,
            };
            views.workstation(&q, today())
        })
        .collect();
    let matrices = dates
        .iter()
        .map(|on| {
            let q = pb::CityMatrixQuery {
                on_date: (*on).to_owned(),
                from_date: "2025-01-01".into(),
                as_of_position: as_of,
                ..Default::default()
            };
            views.city_matrix(&q, today()).unwrap()
        })
        .collect();
    Snapshot {
        assignments,
        commissioners,
        workstations,
        matrices,
    }
}

/// The per-table digests of the views at `path`.
fn digests_of(path: &std::path::Path) -> Vec<super::digest::TableDigest> {
    let conn = rusqlite::Connection::open(path).unwrap();
    super::digest::digests(&conn).unwrap()
}
