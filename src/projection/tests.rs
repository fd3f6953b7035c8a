//! Tests for the views, all against real SQLite files in temp dirs, fed a
//! realistic history of two cities.

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

fn statuses(views: &Views, on: &str) -> Vec<pb::AssignmentStatus> {
    views
        .assignments(&query(on), today())
        .unwrap()
        .assignments
        .iter()
        .map(|a| a.status())
        .collect()
}

#[test]
fn assignments_show_names_cities_cross_flag_and_last_day_of_each_post() {
    let f = fed(26);
    let page = f.views.assignments(&query("2025-06-15"), today()).unwrap();
    assert_eq!(page.as_of_position, 26);
    assert!(page.next_page_token.is_empty());
    let row = |n: u128| {
        page.assignments
            .iter()
            .find(|a| a.post_id == p(n).to_string())
            .unwrap()
            .clone()
    };
    assert_eq!(
        row(2),
        pb::Assignment {
            post_id: p(2).to_string(),
            commissioner_id: c(1).to_string(),
            commissioner_name: "Wang Min (王敏)".to_owned(),
            home_city: HOHHOT.to_owned(),
            workstation_id: w(2).to_string(),
            workstation_name: "Kundulun Rare Earth Station".to_owned(),
            host_city: BAOTOU.to_owned(),
            serving_city: BAOTOU.to_owned(),
            cross_city: true,
            role: "adviser".to_owned(),
            hours_per_month: 30,
            start_date: "2025-03-01".to_owned(),
            end_date: "2025-05-31".to_owned(),
            status: pb::AssignmentStatus::Ended as i32,
        }
    );
    let summary: Vec<(bool, String, String)> = (1..=5)
        .map(|n| {
            let a = row(n);
            (a.cross_city, a.serving_city, a.end_date)
        })
        .collect();
    let expected = [
        (false, HOHHOT, "2025-12-31"),
        (true, BAOTOU, "2025-05-31"),
        (true, HOHHOT, "2025-09-30"),
        (true, BAOTOU, "2025-07-15"),
        (false, BAOTOU, "2025-08-31"),
    ]
    .map(|(x, city, end)| (x, city.to_owned(), end.to_owned()));
    assert_eq!(summary, expected);
    assert_eq!(row(3).commissioner_name, "Li Na");
    assert_eq!(row(3).home_city, BAOTOU);
    assert_eq!(row(4).host_city, HOHHOT);
}

#[test]
fn each_post_has_the_status_of_the_asked_date() {
    use pb::AssignmentStatus::{Active as A, Ended as E, Expired as X, Scheduled as S};
    let f = fed(26);
    let table = [
        ("2024-12-31", [S, S, S, S, S]),
        ("2025-04-15", [A, A, A, S, S]),
        ("2025-06-15", [A, E, A, A, S]),
        ("2025-07-15", [A, E, A, A, S]),
        ("2025-07-16", [A, E, A, E, S]),
        ("2025-08-20", [A, E, A, E, S]),
        ("2025-09-15", [A, E, A, E, E]),
        ("2025-10-01", [A, E, X, E, E]),
        ("2026-01-01", [X, E, X, E, E]),
    ];
    for (on, expected) in table {
        assert_eq!(statuses(&f.views, on), expected, "on {on}");
    }
}

#[test]
fn an_empty_on_date_means_today() {
    use pb::AssignmentStatus::{Active as A, Scheduled as S};
    let f = fed(26);
    assert_eq!(statuses(&f.views, ""), [A, A, A, S, S]);
}

#[test]
fn every_filter_narrows_the_listing() {
    let f = fed(26);
    let on = "2025-06-15";
    let q = |change: fn(&mut pb::AssignmentsQuery)| {
        let mut q = query(on);
        change(&mut q);
        q
    };
    let table: Vec<(&str, pb::AssignmentsQuery, Vec<u128>)> = vec![
        ("none", q(|_| {}), vec![1, 2, 3, 4, 5]),
        (
            "commissioner",
            q(|q| q.commissioner_id = c(1).to_string()),
            vec![1, 2],
        ),
        (
            "workstation",
            q(|q| q.workstation_id = w(1).to_string()),
            vec![1, 3, 4],
        ),
        ("home city", q(|q| q.home_city = BAOTOU.into()), vec![3, 5]),
        (
            "serving city",
            q(|q| q.serving_city = BAOTOU.into()),
            vec![2, 4, 5],
        ),
        ("cross city", q(|q| q.cross_city_only = true), vec![2, 3, 4]),
        (
            "active",
            q(|q| q.status = pb::AssignmentStatus::Active as i32),
            vec![1, 3, 4],
        ),
        (
            "ended",
            q(|q| q.status = pb::AssignmentStatus::Ended as i32),
            vec![2],
        ),
        (
            "scheduled",
            q(|q| q.status = pb::AssignmentStatus::Scheduled as i32),
            vec![5],
        ),
        (
            "expired later",
            q(|q| {
                q.on_date = "2025-10-01".into();
                q.status = pb::AssignmentStatus::Expired as i32;
            }),
            vec![3],
        ),
        (
            "home city and cross city",
            q(|q| {
                q.home_city = HOHHOT.into();
                q.cross_city_only = true;
            }),
            vec![2, 4],
        ),
        (
            "unknown commissioner",
            q(|q| q.commissioner_id = c(99).to_string()),
            vec![],
        ),
    ];
    for (name, q, expected) in table {
        let page = f.views.assignments(&q, today()).unwrap();
        assert_eq!(ids(&page), posts(&expected), "filter {name}");
    }
}

fn many_posts(n: u128) -> Vec<Event> {
    let mut events = vec![
        register(
            c(1),
            "Wang Min",
            CityCode::HOHHOT,
            CommissionerKind::University,
        ),
        establish(w(1), "Saihan Dairy Station", CityCode::HOHHOT, 500),
    ];
    // Appointed out of id order, so the listing's order is not insertion order.
    events.extend((1..=n).rev().map(|i| {
        appoint(
            p(i * 10),
            c(1),
            w(1),
            CityCode::HOHHOT,
            1,
            "2025-01-01",
            "2025-12-31",
        )
    }));
    events
}

#[test]
fn paging_walks_every_post_once_across_three_pages() {
    let mut f = fixture();
    f.projection
        .apply_batch(&envelopes(&many_posts(7)))
        .unwrap();
    let mut q = pb::AssignmentsQuery {
        page_size: 3,
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = f.views.assignments(&q, today()).unwrap();
        sizes.push(page.assignments.len());
        seen.extend(ids(&page));
        if page.next_page_token.is_empty() {
            break;
        }
        q.page_token = page.next_page_token;
    }
    assert_eq!(sizes, [3, 3, 1]);
    let all: Vec<u128> = (1..=7).map(|i| i * 10).collect();
    assert_eq!(seen, posts(&all));
}

#[test]
fn a_page_token_keeps_reading_the_snapshot_of_the_first_page() {
    let mut f = fixture();
    let events = many_posts(7);
    f.projection.apply_batch(&envelopes(&events)).unwrap();
    let first = f
        .views
        .assignments(
            &pb::AssignmentsQuery {
                page_size: 3,
                ..Default::default()
            },
            today(),
        )
        .unwrap();
    // New posts before and after the cursor arrive between the pages.
    let later = [
        appoint(
            p(1),
            c(1),
            w(1),
            CityCode::HOHHOT,
            1,
            "2025-01-01",
            "2025-12-31",
        ),
        appoint(
            p(55),
            c(1),
            w(1),
            CityCode::HOHHOT,
            1,
            "2025-01-01",
            "2025-12-31",
        ),
    ];
    let next: Vec<_> = (10..).zip(&later).map(|(i, e)| envelope(i, e)).collect();
    f.projection.apply_batch(&next).unwrap();

    let rest = f
        .views
        .assignments(
            &pb::AssignmentsQuery {
                page_size: 10,
                page_token: first.next_page_token.clone(),
                ..Default::default()
            },
            today(),
        )
        .unwrap();
    assert_eq!(rest.as_of_position, first.as_of_position);
    assert_eq!(ids(&rest), posts(&[40, 50, 60, 70]));
    let mixed = f.views.assignments(
        &pb::AssignmentsQuery {
            page_token: first.next_page_token,
            as_of_position: 10,
            ..Default::default()
        },
        today(),
    );
    assert!(matches!(
        mixed,
        Err(QueryError::InvalidArgument {
            field: "page_token",
            ..
        })
    ));
}

#[test]
fn page_size_defaults_to_fifty_and_allows_five_hundred() {
    let mut f = fixture();
    f.projection
        .apply_batch(&envelopes(&many_posts(60)))
        .unwrap();
    let default = f
        .views
        .assignments(&pb::AssignmentsQuery::default(), today())
        .unwrap();
    assert_eq!(default.assignments.len(), 50);
    assert!(!default.next_page_token.is_empty());
    let max = f
        .views
        .assignments(
            &pb::AssignmentsQuery {
                page_size: 500,
                ..Default::default()
            },
            today(),
        )
        .unwrap();
    assert_eq!(max.assignments.len(), 60);
    assert!(max.next_page_token.is_empty());
}

#[test]
fn commissioner_detail_has_profile_posts_and_totals_on_the_date() {
    let f = fed(26);
    let q = |id: CommissionerId, on: &str| pb::CommissionerQuery {
        commissioner_id: id.to_string(),
        on_date: on.to_owned(),
        as_of_position: 0,
    };
    let wang = f
        .views
        .commissioner(&q(c(1), "2025-04-15"), today())
        .unwrap();
    assert_eq!(wang.name, "Wang Min (王敏)");
    assert_eq!(wang.employer, "Inner Mongolia Agricultural University");
    assert_eq!(wang.home_city, HOHHOT);
    assert_eq!(wang.kind(), pb::CommissionerKind::University);
    assert_eq!(wang.expertise, ["dairy", "genomics", "feed"]);
    assert_eq!(wang.status(), pb::CommissionerStatus::CommissionerActive);
    assert_eq!(ids_of(&wang.posts), posts(&[1, 2]));
    assert_eq!((wang.active_posts, wang.active_hours_per_month), (2, 50));
    assert_eq!(wang.service_minutes, 120 + 60 + 45);
    assert_eq!(
        (wang.on_date.as_str(), wang.as_of_position),
        ("2025-04-15", 26)
    );

    let zhao = f
        .views
        .commissioner(&q(c(3), "2025-06-15"), today())
        .unwrap();
    assert_eq!(zhao.status(), pb::CommissionerStatus::CommissionerRetired);
    assert_eq!((zhao.active_posts, zhao.active_hours_per_month), (1, 15));
    assert_eq!(zhao.service_minutes, 0);

    let li_suspended = f
        .views
        .commissioner(
            &pb::CommissionerQuery {
                as_of_position: 16,
                ..q(c(2), "")
            },
            today(),
        )
        .unwrap();
    assert_eq!(
        li_suspended.status(),
        pb::CommissionerStatus::CommissionerSuspended
    );
    assert_eq!(li_suspended.on_date, "2025-04-15");
}

fn ids_of(assignments: &[pb::Assignment]) -> Vec<String> {
    assignments.iter().map(|a| a.post_id.clone()).collect()
}

#[test]
fn workstation_detail_has_served_cities_posts_and_totals_on_the_date() {
    let f = fed(26);
    let q = |id: WorkstationId, as_of: u64| pb::WorkstationQuery {
        workstation_id: id.to_string(),
        on_date: "2025-06-15".to_owned(),
        as_of_position: as_of,
    };
    let saihan = f.views.workstation(&q(w(1), 0), today()).unwrap();
    assert_eq!(saihan.name, "Saihan Dairy Station");
    assert_eq!(saihan.host_city, HOHHOT);
    assert_eq!(saihan.host_org, "Host organisation");
    assert_eq!(saihan.fields, ["agriculture"]);
    assert_eq!(saihan.served_cities, [HOHHOT]);
    assert_eq!(saihan.capacity, 5);
    assert_eq!(saihan.status(), pb::WorkstationStatus::WorkstationOpen);
    assert_eq!(ids_of(&saihan.posts), posts(&[1, 3, 4]));
    assert_eq!(
        (saihan.active_posts, saihan.active_hours_per_month),
        (3, 45)
    );
    assert_eq!(saihan.service_minutes, 60 + 90 + 45);

    let before_withdrawal = f.views.workstation(&q(w(1), 23), today()).unwrap();
    assert_eq!(before_withdrawal.served_cities, [HOHHOT, BAOTOU]);

    let kundulun = f.views.workstation(&q(w(2), 0), today()).unwrap();
    assert_eq!(kundulun.status(), pb::WorkstationStatus::WorkstationClosed);
    assert_eq!(kundulun.capacity, 4);
    assert_eq!(ids_of(&kundulun.posts), posts(&[2, 5]));
    assert_eq!(kundulun.active_posts, 0);
    assert_eq!(kundulun.service_minutes, 120);
}

#[test]
fn unknown_or_not_yet_registered_entities_are_not_found() {
    let f = fed(26);
    let unknown = f.views.commissioner(
        &pb::CommissionerQuery {
            commissioner_id: c(99).to_string(),
            ..Default::default()
        },
        today(),
    );
    assert!(matches!(unknown, Err(QueryError::NotFound(_))));
    let too_early = f.views.commissioner(
        &pb::CommissionerQuery {
            commissioner_id: c(3).to_string(),
            as_of_position: 2,
            ..Default::default()
        },
        today(),
    );
    assert!(matches!(too_early, Err(QueryError::NotFound(_))));
    let workstation = f.views.workstation(
        &pb::WorkstationQuery {
            workstation_id: w(99).to_string(),
            ..Default::default()
        },
        today(),
    );
    assert!(matches!(workstation, Err(QueryError::NotFound(_))));
}

fn cell(home: &str, serving: &str, posts: u32, hours: u32, minutes: u64) -> pb::CityMatrixCell {
    pb::CityMatrixCell {
        home_city: home.to_owned(),
        serving_city: serving.to_owned(),
        active_posts: posts,
        hours_per_month: hours,
        service_minutes: minutes,
    }
}

#[test]
fn city_matrix_counts_active_posts_and_minutes_by_home_and_served_city() {
    let f = fed(26);
    let matrix = f
        .views
        .city_matrix(
            &pb::CityMatrixQuery {
                on_date: "2025-04-15".into(),
                from_date: "2025-03-01".into(),
                to_date: "2025-04-30".into(),
                as_of_position: 0,
            },
            today(),
        )
        .unwrap();
    assert_eq!(
        matrix.cells,
        [
            cell(HOHHOT, HOHHOT, 1, 20, 60),
            cell(HOHHOT, BAOTOU, 1, 30, 120 + 45),
            cell(BAOTOU, HOHHOT, 1, 10, 90),
        ]
    );
    assert_eq!(matrix.as_of_position, 26);
}

#[test]
fn city_matrix_defaults_to_today_and_its_month_so_far() {
    let f = fed(26);
    let matrix = f
        .views
        .city_matrix(&pb::CityMatrixQuery::default(), today())
        .unwrap();
    assert_eq!(
        (
            matrix.on_date.as_str(),
            matrix.from_date.as_str(),
            matrix.to_date.as_str()
        ),
        ("2025-04-15", "2025-04-01", "2025-04-15")
    );
    // The 45 minutes of 2025-04-20 are after to_date.
    assert_eq!(
        matrix.cells,
        [
            cell(HOHHOT, HOHHOT, 1, 20, 0),
            cell(HOHHOT, BAOTOU, 1, 30, 0),
            cell(BAOTOU, HOHHOT, 1, 10, 90),
        ]
    );
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

#[test]
fn every_view_as_of_a_position_equals_a_projection_fed_up_to_it() {
    let full = fed(26);
    for k in 1..=26 {
        let partial = fed(k);
        assert_eq!(
            snapshot(&full.views, k as u64),
            snapshot(&partial.views, 0),
            "as of position {k}"
        );
    }
}

#[test]
fn redelivered_batches_are_skipped_and_change_nothing() {
    let all = envelopes(&history());
    let once = fed(26);

    let mut f = fixture();
    let first = f.projection.apply_batch(&all[..10]).unwrap();
    assert_eq!(
        first,
        ApplyOutcome {
            applied: 10,
            skipped: 0,
            checkpoint: 10
        }
    );
    // Overlapping redelivery, then a batch with an in-batch duplicate.
    let overlap = f.projection.apply_batch(&all[5..20]).unwrap();
    assert_eq!((overlap.applied, overlap.skipped), (10, 5));
    let mut tail = all[20..].to_vec();
    tail.insert(2, all[21].clone());
    let dup = f.projection.apply_batch(&tail).unwrap();
    assert_eq!((dup.applied, dup.skipped, dup.checkpoint), (6, 1, 26));
    let again = f.projection.apply_batch(&all).unwrap();
    assert_eq!(
        again,
        ApplyOutcome {
            applied: 0,
            skipped: 26,
            checkpoint: 26
        }
    );
    assert_eq!(f.views.checkpoint().unwrap(), 26);
    assert_eq!(snapshot(&f.views, 0), snapshot(&once.views, 0));
}

#[test]
fn a_gap_is_reported_and_nothing_of_the_batch_is_applied() {
    let all = envelopes(&history());
    let mut f = fed(3);
    let batch = [all[3].clone(), all[4].clone(), all[6].clone()];
    let result = f.projection.apply_batch(&batch);
    assert!(matches!(
        result,
        Err(ProjectionError::Gap {
            expected: 6,
            got: 7
        })
    ));
    assert_eq!(f.projection.checkpoint(), 3);
    assert_eq!(f.views.checkpoint().unwrap(), 3);
    // Position 4 established w(1); it must not be visible.
    let w1 = f.views.workstation(
        &pb::WorkstationQuery {
            workstation_id: w(1).to_string(),
            ..Default::default()
        },
        today(),
    );
    assert!(matches!(w1, Err(QueryError::NotFound(_))));
    let resumed = f.projection.apply_batch(&all[3..]).unwrap();
    assert_eq!(resumed.checkpoint, 26);
}

#[test]
fn an_envelope_without_a_valid_event_is_undecodable_and_stops_the_batch() {
    let all = envelopes(&history());
    let mut f = fed(3);
    let mut missing = all[3].clone();
    missing.event = None;
    let mut bad_id = all[3].clone();
    if let Some(pb::event_envelope::Event::WorkstationEstablished(e)) = &mut bad_id.event {
        e.workstation_id = "not-a-uuid".into();
    }
    for bad in [missing, bad_id] {
        let result = f.projection.apply_batch(&[bad]);
        assert!(
            matches!(
                result,
                Err(ProjectionError::Undecodable { position: 4, .. })
            ),
            "{result:?}"
        );
        assert_eq!(f.projection.checkpoint(), 3);
    }
}

#[test]
fn an_event_about_an_unknown_post_is_inconsistent() {
    let mut f = fed(3);
    let stray = envelope(4, &end_post(p(42), "2025-05-01"));
    let result = f.projection.apply_batch(&[stray]);
    assert!(matches!(
        result,
        Err(ProjectionError::Inconsistent { position: 4, .. })
    ));
    assert_eq!(f.projection.checkpoint(), 3);
}

#[test]
fn the_checkpoint_survives_a_reopen() {
    let all = envelopes(&history());
    let mut f = fed(10);
    drop(f.projection);
    f.projection = Projection::open(&f.path).unwrap();
    assert_eq!(f.projection.checkpoint(), 10);
    let outcome = f.projection.apply_batch(&all).unwrap();
    assert_eq!((outcome.applied, outcome.skipped), (16, 10));
    drop(f.views);
    let views = Views::open(&f.path).unwrap();
    assert_eq!(views.checkpoint().unwrap(), 26);
}

fn invalid_field<T: std::fmt::Debug>(result: Result<T, QueryError>) -> &'static str {
    match result {
        Err(QueryError::InvalidArgument { field, .. }) => field,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn bad_assignment_parameters_are_invalid_arguments_naming_the_field() {
    let f = fed(26);
    let table: Vec<(&str, pb::AssignmentsQuery)> = vec![
        ("on_date", query("2025-13-01")),
        (
            "commissioner_id",
            pb::AssignmentsQuery {
                commissioner_id: "nope".into(),
                ..Default::default()
            },
        ),
        (
            "workstation_id",
            pb::AssignmentsQuery {
                workstation_id: "00000000-0000-0000-0000-000000000000".into(),
                ..Default::default()
            },
        ),
        (
            "home_city",
            pb::AssignmentsQuery {
                home_city: "1501".into(),
                ..Default::default()
            },
        ),
        (
            "serving_city",
            pb::AssignmentsQuery {
                serving_city: "Baotou".into(),
                ..Default::default()
            },
        ),
        (
            "status",
            pb::AssignmentsQuery {
                status: 9,
                ..Default::default()
            },
        ),
        (
            "page_size",
            pb::AssignmentsQuery {
                page_size: 501,
                ..Default::default()
            },
        ),
        (
            "page_token",
            pb::AssignmentsQuery {
                page_token: "zz".into(),
                ..Default::default()
            },
        ),
        (
            "page_token",
            pb::AssignmentsQuery {
                page_token: "3a".into(),
                ..Default::default()
            },
        ),
        (
            "as_of_position",
            pb::AssignmentsQuery {
                as_of_position: 27,
                ..Default::default()
            },
        ),
    ];
    for (field, q) in table {
        assert_eq!(
            invalid_field(f.views.assignments(&q, today())),
            field,
            "{q:?}"
        );
    }
}

#[test]
fn bad_detail_and_matrix_parameters_are_invalid_arguments_naming_the_field() {
    let f = fed(26);
    let commissioner = |id: &str, on: &str| pb::CommissionerQuery {
        commissioner_id: id.into(),
        on_date: on.into(),
        as_of_position: 0,
    };
    let matrix = |from: &str, to: &str| pb::CityMatrixQuery {
        on_date: "2025-04-15".into(),
        from_date: from.into(),
        to_date: to.into(),
        as_of_position: 0,
    };
    let cases = [
        (
            "commissioner_id",
            invalid_field(f.views.commissioner(&commissioner("", ""), today())),
        ),
        (
            "on_date",
            invalid_field(
                f.views
                    .commissioner(&commissioner(&c(1).to_string(), "15/04/2025"), today()),
            ),
        ),
        (
            "workstation_id",
            invalid_field(f.views.workstation(
                &pb::WorkstationQuery {
                    workstation_id: "W1".into(),
                    ..Default::default()
                },
                today(),
            )),
        ),
        (
            "from_date",
            invalid_field(f.views.city_matrix(&matrix("2025-4-1", ""), today())),
        ),
        (
            "to_date",
            invalid_field(f.views.city_matrix(&matrix("", "tomorrow"), today())),
        ),
        (
            "from_date",
            invalid_field(
                f.views
                    .city_matrix(&matrix("2025-05-01", "2025-04-01"), today()),
            ),
        ),
    ];
    for (expected, got) in cases {
        assert_eq!(got, expected);
    }
}

#[test]
fn asking_beyond_the_checkpoint_says_where_the_views_are() {
    let f = fed(26);
    let result = f.views.city_matrix(
        &pb::CityMatrixQuery {
            as_of_position: 30,
            ..Default::default()
        },
        today(),
    );
    match result {
        Err(QueryError::InvalidArgument { field, message }) => {
            assert_eq!(field, "as_of_position");
            assert!(message.contains("views are at position 26"), "{message}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// The per-table digests of the views at `path`.
fn digests_of(path: &std::path::Path) -> Vec<super::digest::TableDigest> {
    let conn = rusqlite::Connection::open(path).unwrap();
    super::digest::digests(&conn).unwrap()
}

fn hex(digest: &super::digest::TableDigest) -> String {
    let bytes: String = digest.digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{} {} {bytes}", digest.table, digest.rows)
}

/// The views of `history()`, pinned as the event-by-event projection wrote
/// them before batches were folded in memory: a change of any row of any
/// version shows here.
#[test]
fn the_views_of_the_history_are_the_rows_they_always_were() {
    let f = fed(history().len());
    let found: Vec<String> = digests_of(&f.path).iter().map(hex).collect();
    assert_eq!(found, PINNED_HISTORY_DIGESTS);
}

const PINNED_HISTORY_DIGESTS: [&str; 5] = [
    "checkpoint 1 513cd4f1258674a91bf0d7096b3767da5af9702dd40fed54b55766895c9d31e1",
    "commissioners 7 248e28975580c4bad2ec6b0d8a0d7fe8d09a5c896d2649915d55f26358217bd3",
    "posts 9 f104574068edf9b264190c7f152f1c442d75ffce997cb3fded176f5f197cace2",
    "services 4 ea3e02819d9c86f1f0922b5912a8695ad780387fedc4f523c190a18dd8ccb6fb",
    "workstations 6 3ad0b80ebeb42f5925c60ae18a2255e02d635a11b18415e79a0da897f4392d89",
];

/// One step of a generated history; indices pick among the entities made so
/// far (modulo their number), so every event names something that exists.
#[derive(Debug, Clone)]
enum Step {
    Register(usize),
    Establish(usize),
    ExtendService(usize, usize),
    WithdrawService(usize, usize),
    ChangeCapacity(usize, u32),
    Close(usize),
    Appoint(usize, usize, usize, u32),
    ExtendTerm(usize, u32),
    End(usize, u32),
    Service(usize, u32, u32),
    UpdateProfile(usize),
    Suspend(usize),
    Reinstate(usize),
    Retire(usize),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let i = || 0..64usize;
    prop_oneof![
        3 => i().prop_map(Step::Register),
        2 => i().prop_map(Step::Establish),
        1 => (i(), i()).prop_map(|(a, b)| Step::ExtendService(a, b)),
        1 => (i(), i()).prop_map(|(a, b)| Step::WithdrawService(a, b)),
        1 => (i(), 1..50u32).prop_map(|(a, b)| Step::ChangeCapacity(a, b)),
        1 => i().prop_map(Step::Close),
        5 => (i(), i(), i(), 1..40u32).prop_map(|(a, b, c, d)| Step::Appoint(a, b, c, d)),
        2 => (i(), 1..12u32).prop_map(|(a, b)| Step::ExtendTerm(a, b)),
        2 => (i(), 1..12u32).prop_map(|(a, b)| Step::End(a, b)),
        5 => (i(), 1..28u32, 1..600u32).prop_map(|(a, b, c)| Step::Service(a, b, c)),
        1 => i().prop_map(Step::UpdateProfile),
        1 => i().prop_map(Step::Suspend),
        1 => i().prop_map(Step::Reinstate),
        1 => i().prop_map(Step::Retire),
    ]
}

/// The events of `steps`, skipping a step that names a kind of entity
/// none of which exists yet.
fn generated_history(steps: &[Step]) -> Vec<Event> {
    const CITIES: [CityCode; 4] = [
        CityCode::HOHHOT,
        CityCode::BAOTOU,
        CityCode::ORDOS,
        CityCode::ULANQAB,
    ];
    let city = |i: usize| CITIES[i % CITIES.len()];
    let (mut commissioners, mut workstations, mut posts, mut services) = (0u128, 0u128, 0u128, 0);
    let pick = |i: usize, n: u128| (n > 0).then(|| i as u128 % n + 1);
    let mut events = Vec::new();
    for step in steps {
        let event = match *step {
            Step::Register(home) => {
                commissioners += 1;
                let kind = CommissionerKind::Individual;
                Some(register(c(commissioners), "Name", city(home), kind))
            }
            Step::Establish(host) => {
                workstations += 1;
                Some(establish(w(workstations), "Station", city(host), 5))
            }
            Step::ExtendService(x, to) => {
                pick(x, workstations).map(|x| Event::WorkstationServiceExtended {
                    workstation_id: w(x),
                    city: city(to),
                })
            }
            Step::WithdrawService(x, from) => {
                pick(x, workstations).map(|x| Event::WorkstationServiceWithdrawn {
                    workstation_id: w(x),
                    city: city(from),
                    effective_date: date("2025-06-01"),
                })
            }
            Step::ChangeCapacity(x, capacity) => {
                pick(x, workstations).map(|x| Event::WorkstationCapacityChanged {
                    workstation_id: w(x),
                    capacity: Capacity::parse("capacity", capacity).unwrap(),
                    previous_capacity: Capacity::parse("capacity", 5).unwrap(),
                })
            }
            Step::Close(x) => pick(x, workstations).map(|x| Event::WorkstationClosed {
                workstation_id: w(x),
                effective_date: date("2025-09-30"),
            }),
            Step::Appoint(who, at, serving, hours) => pick(who, commissioners)
                .zip(pick(at, workstations))
                .map(|(who, at)| {
                    posts += 1;
                    let start = format!("2025-{:02}-01", hours % 12 + 1);
                    appoint(
                        p(posts),
                        c(who),
                        w(at),
                        city(serving),
                        hours,
                        &start,
                        "2026-06-30",
                    )
                }),
            Step::ExtendTerm(x, month) => pick(x, posts).map(|x| Event::PostTermExtended {
                post_id: p(x),
                end_date: date(&format!("2026-{month:02}-28")),
                previous_end_date: date("2026-06-30"),
            }),
            Step::End(x, month) => {
                pick(x, posts).map(|x| end_post(p(x), &format!("2025-{month:02}-15")))
            }
            Step::Service(x, day, minutes) => pick(x, posts).map(|x| {
                services += 1;
                let on = format!("2025-05-{day:02}");
                service(s(services), p(x), &on, minutes, city(day as usize))
            }),
            Step::UpdateProfile(x) => {
                pick(x, commissioners).map(|x| Event::CommissionerProfileUpdated {
                    commissioner_id: c(x),
                    name: text("Renamed"),
                    employer: text("Another employer"),
                    expertise: texts(&["feed"]),
                })
            }
            Step::Suspend(x) => pick(x, commissioners).map(|x| Event::CommissionerSuspended {
                commissioner_id: c(x),
                reason: text("audit"),
            }),
            Step::Reinstate(x) => pick(x, commissioners).map(|x| Event::CommissionerReinstated {
                commissioner_id: c(x),
                reason: text("cleared"),
            }),
            Step::Retire(x) => pick(x, commissioners).map(|x| Event::CommissionerRetired {
                commissioner_id: c(x),
                effective_date: date("2025-10-01"),
            }),
        };
        events.extend(event);
    }
    events
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(24))]

    /// However a history is cut into batches, with or without reopening
    /// the views (which empties the cache of current rows) between them,
    /// the views end up with the same rows as when every event is its own
    /// batch, and as when the whole history is one batch, which is how a
    /// rebuild applies it.
    #[test]
    fn batching_never_changes_the_views(
        steps in proptest::collection::vec(step(), 1..80),
        cuts in proptest::collection::vec((1..12usize, proptest::bool::ANY), 1..20),
    ) {
        let all = envelopes(&generated_history(&steps));
        let mut one_by_one = fixture();
        for envelope in &all {
            one_by_one.projection.apply_batch(std::slice::from_ref(envelope)).unwrap();
        }
        let mut whole = fixture();
        whole.projection.apply_batch(&all).unwrap();

        let mut cut = fixture();
        let mut rest = &all[..];
        for (size, reopen) in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            if *reopen {
                cut.projection = Projection::open(&cut.path).unwrap();
            }
            let (batch, after) = rest.split_at((*size).min(rest.len()));
            cut.projection.apply_batch(batch).unwrap();
            rest = after;
        }

        let expected = digests_of(&one_by_one.path);
        proptest::prop_assert_eq!(&digests_of(&whole.path), &expected);
        proptest::prop_assert_eq!(&digests_of(&cut.path), &expected);
    }
}

fn schema_of(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .unwrap();
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// A rebuild loads without the secondary indexes and creates them at the
/// end, and takes the store's payloads as well as bus envelopes: the
/// finished file has the rows of the live path and the schema of a
/// migrated file, index by index.
#[test]
fn a_rebuild_has_the_rows_and_the_schema_of_the_live_views() {
    let live = fed(history().len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rebuilt.db");
    let mut rebuild = Projection::open_for_rebuild(&path).unwrap();
    let all = envelopes(&history());
    rebuild.apply_batch(&all[..10]).unwrap();
    // The rest as the store keeps it: positions and encoded payloads.
    let payloads: Vec<(u64, Vec<u8>)> = (1..)
        .zip(history())
        .skip(10)
        .map(|(position, event)| (position, wire::encode_event_payload(&event)))
        .collect();
    let outcome = rebuild
        .apply_payloads(payloads.iter().map(|(p, bytes)| (*p, bytes.as_slice())))
        .unwrap();
    assert_eq!(outcome.applied, all.len() - 10);
    assert_eq!(rebuild.finish().unwrap(), all.len() as u64);

    assert_eq!(digests_of(&path), digests_of(&live.path));
    assert_eq!(schema_of(&path), schema_of(&live.path));
}

/// A rebuild that stops before `finish` leaves a file without its
/// secondary indexes; opening it as live views puts them back.
#[test]
fn opening_an_unfinished_rebuild_restores_its_indexes() {
    let live = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rebuilt.db");
    let mut rebuild = Projection::open_for_rebuild(&path).unwrap();
    rebuild.apply_batch(&envelopes(&history())).unwrap();
    drop(rebuild);
    assert_ne!(schema_of(&path), schema_of(&live.path));

    drop(Projection::open(&path).unwrap());
    assert_eq!(schema_of(&path), schema_of(&live.path));
}
