//! The assignments listing: its rows, the status of each post on a date,
//! the filters, and paging over one snapshot.

use super::*;

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
