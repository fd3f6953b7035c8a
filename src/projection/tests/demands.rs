//! The demands board and a demand's detail: statuses, the service recorded
//! for a demand, paging, positions and bad parameters.

use crate::domain::{DemandId, Satisfaction};

use super::*;

/// `history()` (26 events), then: 27 demand 1 (Hohhot) and 28 demand 2
/// (Baotou) submitted, 29 demand 1 dispatched to post 1, 30 service of 40
/// minutes through post 1 for demand 1 and 31 one of 20 not for it, 32
/// demand 3 (Hohhot) submitted, 33 demand 1 resolved, 34 demand 2
/// withdrawn.
fn with_demands() -> Fixture {
    let mut events = history();
    events.extend([
        submitted(1, CityCode::HOHHOT),
        submitted(2, CityCode::BAOTOU),
        Event::DemandDispatched {
            demand_id: dm(1),
            post_id: p(1),
        },
        for_demand(
            service(s(11), p(1), "2025-04-10", 40, CityCode::HOHHOT),
            dm(1),
        ),
        service(s(12), p(1), "2025-04-11", 20, CityCode::HOHHOT),
        submitted(3, CityCode::HOHHOT),
        Event::DemandResolved {
            demand_id: dm(1),
            outcome: text("stable"),
            satisfaction: Satisfaction::parse("satisfaction", 4).unwrap(),
            resolved_on: date("2025-04-20"),
        },
        Event::DemandWithdrawn {
            demand_id: dm(2),
            reason: text("solved in house"),
        },
    ]);
    let mut f = fixture();
    f.projection.apply_batch(&envelopes(&events)).unwrap();
    f
}

/// `service` recorded for demand `id`.
fn for_demand(mut service: Event, id: DemandId) -> Event {
    if let Event::ServiceRecorded { demand_id, .. } = &mut service {
        *demand_id = Some(id);
    }
    service
}

fn board(f: &Fixture, q: pb::DemandsQuery) -> Vec<(String, pb::DemandStatus)> {
    f.views
        .demands(&q)
        .unwrap()
        .demands
        .iter()
        .map(|d| (d.title.clone(), d.status()))
        .collect()
}

#[test]
fn the_board_shows_each_demands_status_and_filters_by_city_and_status() {
    use pb::DemandStatus::*;
    let f = with_demands();
    let all = pb::DemandsQuery::default();
    assert_eq!(
        board(&f, all.clone()),
        [
            ("demand 1".to_owned(), DemandResolved),
            ("demand 2".to_owned(), DemandWithdrawn),
            ("demand 3".to_owned(), DemandOpen),
        ]
    );
    let hohhot = pb::DemandsQuery {
        city: HOHHOT.into(),
        ..all.clone()
    };
    assert_eq!(
        board(&f, hohhot)
            .iter()
            .map(|d| d.0.as_str())
            .collect::<Vec<_>>(),
        ["demand 1", "demand 3"]
    );
    let open = pb::DemandsQuery {
        status: DemandOpen as i32,
        ..all
    };
    assert_eq!(board(&f, open), [("demand 3".to_owned(), DemandOpen)]);
}

#[test]
fn a_demand_counts_only_the_service_recorded_for_it() {
    let f = with_demands();
    let page = f.views.demands(&pb::DemandsQuery::default()).unwrap();
    let first = &page.demands[0];
    assert_eq!(first.post_ids, posts(&[1]));
    assert_eq!((first.service_minutes, first.satisfaction), (40, 4));
    assert_eq!(page.as_of_position, 34);
}

#[test]
fn the_board_as_of_a_position_shows_the_demands_as_they_stood() {
    use pb::DemandStatus::*;
    let f = with_demands();
    let at = |position| pb::DemandsQuery {
        as_of_position: position,
        ..Default::default()
    };
    assert!(board(&f, at(26)).is_empty());
    assert_eq!(
        board(&f, at(29)),
        [
            ("demand 1".to_owned(), DemandDispatched),
            ("demand 2".to_owned(), DemandOpen),
        ]
    );
    let before_service = f.views.demands(&at(29)).unwrap();
    assert_eq!(before_service.demands[0].service_minutes, 0);
}

#[test]
fn pages_of_the_board_join_up_and_pin_their_position() {
    let f = with_demands();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = f
            .views
            .demands(&pb::DemandsQuery {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .unwrap();
        seen.extend(page.demands.iter().map(|d| d.demand_id.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let want: Vec<String> = (1..=3).map(|n| dm(n).to_string()).collect();
    assert_eq!(seen, want);
}

#[test]
fn a_demands_detail_has_its_text_outcome_and_posts() {
    let f = with_demands();
    let detail = f
        .views
        .demand(
            &pb::DemandQuery {
                demand_id: dm(1).to_string(),
                as_of_position: 0,
            },
            today(),
        )
        .unwrap();
    assert_eq!(detail.description, "fermentation");
    assert_eq!(
        (detail.outcome.as_str(), detail.resolved_on.as_str()),
        ("stable", "2025-04-20")
    );
    let post_ids: Vec<String> = detail.posts.iter().map(|a| a.post_id.clone()).collect();
    assert_eq!(post_ids, posts(&[1]));
    assert_eq!(detail.posts[0].status(), pb::AssignmentStatus::Active);
    assert_eq!(detail.service_minutes, 40);

    let withdrawn = f
        .views
        .demand(
            &pb::DemandQuery {
                demand_id: dm(2).to_string(),
                as_of_position: 0,
            },
            today(),
        )
        .unwrap();
    assert_eq!(withdrawn.withdrawal_reason, "solved in house");
    assert!(withdrawn.resolved_on.is_empty());
}

#[test]
fn bad_demand_queries_name_the_parameter_and_unknown_demands_are_not_found() {
    let f = with_demands();
    let field = |result: Result<pb::DemandsPage, QueryError>| match result {
        Err(QueryError::InvalidArgument { field, .. }) => field,
        other => panic!("expected an invalid argument, got {other:?}"),
    };
    let bad = [
        (
            pb::DemandsQuery {
                city: "15010".into(),
                ..Default::default()
            },
            "city",
        ),
        (
            pb::DemandsQuery {
                status: 99,
                ..Default::default()
            },
            "status",
        ),
        (
            pb::DemandsQuery {
                page_token: "zz".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::DemandsQuery {
                as_of_position: 35,
                ..Default::default()
            },
            "as_of_position",
        ),
    ];
    for (q, want) in bad {
        assert_eq!(field(f.views.demands(&q)), want);
    }
    let unknown = f.views.demand(
        &pb::DemandQuery {
            demand_id: dm(9).to_string(),
            as_of_position: 0,
        },
        today(),
    );
    assert!(
        matches!(unknown, Err(QueryError::NotFound(_))),
        "{unknown:?}"
    );
    let before = f.views.demand(
        &pb::DemandQuery {
            demand_id: dm(3).to_string(),
            as_of_position: 31,
        },
        today(),
    );
    assert!(matches!(before, Err(QueryError::NotFound(_))), "{before:?}");
}
