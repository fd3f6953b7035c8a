//! The commissioner and workstation details: profile, posts and totals
//! on a date, and entities the views do not know.

use super::*;

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

/// Service by month counts each record in the month of its date, only
/// those recorded by the asked position, for a commissioner and through a
/// workstation's posts.
#[test]
fn details_give_service_by_month_as_of_a_position() {
    let f = fed(26);
    let months = |detail: &[pb::MonthlyService]| {
        detail
            .iter()
            .map(|m| (m.month.clone(), m.minutes, m.records))
            .collect::<Vec<_>>()
    };
    let commissioner = |at: u64| {
        let q = pb::CommissionerQuery {
            commissioner_id: c(1).to_string(),
            on_date: "2025-04-15".into(),
            as_of_position: at,
        };
        months(&f.views.commissioner(&q, today()).unwrap().service_by_month)
    };
    let march = ("2025-03".to_owned(), 120 + 60, 2);
    assert_eq!(commissioner(0), [march.clone(), ("2025-04".into(), 45, 1)]);
    // Service record 4 (2025-04-20) came at position 23.
    assert_eq!(commissioner(22), [march]);
    assert!(commissioner(11).is_empty());

    let q = pb::WorkstationQuery {
        workstation_id: w(1).to_string(),
        on_date: "2025-04-15".into(),
        as_of_position: 0,
    };
    let saihan = f.views.workstation(&q, today()).unwrap();
    assert_eq!(
        months(&saihan.service_by_month),
        [("2025-03".into(), 60, 1), ("2025-04".into(), 90 + 45, 2)]
    );
}
