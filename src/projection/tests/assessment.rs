//! The annual assessment: every figure, per commissioner and per
//! workstation, the city filter, cross-city minutes, demands counted once
//! and in the year of their resolution, as-of, paging and bad parameters.

use crate::domain::{AssessmentPolicy, Satisfaction};

use super::*;

pub(super) fn dispatched(n: u128, post: PostId) -> Event {
    Event::DemandDispatched {
        demand_id: dm(n),
        post_id: post,
    }
}

pub(super) fn resolved(n: u128, satisfaction: u8, on: &str) -> Event {
    Event::DemandResolved {
        demand_id: dm(n),
        outcome: text("served"),
        satisfaction: Satisfaction::parse("satisfaction", u32::from(satisfaction)).unwrap(),
        resolved_on: date(on),
    }
}

/// `history()` (26 events: commissioners 1 and 3 of Hohhot, 2 of Baotou;
/// workstation 1 in Hohhot, 2 in Baotou; service records 1 to 4 in 2025),
/// then:
/// ```text
/// 27 demand 1 (Hohhot) submitted       33 demand 2 (Baotou) submitted
/// 28 post 6: commissioner 1 at ws 1    34 demand 2 dispatched to post 4 (c3)
///    for Hohhot, 2025-06-01..12-31     35 demand 2 resolved, 5, 2025-07-01
/// 29 demand 1 dispatched to post 1     36 demand 3 (Hohhot) submitted
/// 30 demand 1 dispatched to post 6     37 demand 3 dispatched to post 3 (c2)
/// 31 30 minutes via post 6, 06-10      38 demand 3 resolved, 3, 2026-01-10
/// 32 demand 1 resolved, 4, 2025-06-20
/// ```
fn with_year() -> Fixture {
    with_year_and(Vec::new())
}

/// [`with_year`]'s history, then `more`.
pub(super) fn with_year_and(more: Vec<Event>) -> Fixture {
    let mut events = history();
    events.extend([
        submitted(1, CityCode::HOHHOT),
        appoint(
            p(6),
            c(1),
            w(1),
            CityCode::HOHHOT,
            10,
            "2025-06-01",
            "2025-12-31",
        ),
        dispatched(1, p(1)),
        dispatched(1, p(6)),
        service(s(11), p(6), "2025-06-10", 30, CityCode::HOHHOT),
        resolved(1, 4, "2025-06-20"),
        submitted(2, CityCode::BAOTOU),
        dispatched(2, p(4)),
        resolved(2, 5, "2025-07-01"),
        submitted(3, CityCode::HOHHOT),
        dispatched(3, p(3)),
        resolved(3, 3, "2026-01-10"),
    ]);
    events.extend(more);
    let mut f = fixture();
    f.projection.apply_batch(&envelopes(&events)).unwrap();
    f
}

fn year(year: u32) -> pb::AssessmentQuery {
    pb::AssessmentQuery {
        year,
        ..Default::default()
    }
}

fn workstations(year: u32) -> pb::AssessmentQuery {
    pb::AssessmentQuery {
        subject: pb::AssessmentSubject::Workstations as i32,
        ..self::year(year)
    }
}

fn ask(f: &Fixture, q: &pb::AssessmentQuery) -> pb::AssessmentPage {
    f.views
        .assessment(q, today(), &AssessmentPolicy::default())
        .unwrap()
}

/// A row's figures in a line: subject, posts held, service days, records,
/// minutes, cross-city minutes, demands resolved, satisfaction total.
type Line = (String, u32, u32, u32, u64, u64, u32, u32);

fn lines(page: &pb::AssessmentPage) -> Vec<Line> {
    page.rows
        .iter()
        .map(|r| {
            (
                r.subject_id.clone(),
                r.posts_held,
                r.service_days,
                r.service_records,
                r.service_minutes,
                r.cross_city_minutes,
                r.demands_resolved,
                r.satisfaction_total,
            )
        })
        .collect()
}

fn line(id: impl ToString, figures: (u32, u32, u32, u64, u64, u32, u32)) -> Line {
    let (posts, days, records, minutes, cross, demands, satisfaction) = figures;
    (
        id.to_string(),
        posts,
        days,
        records,
        minutes,
        cross,
        demands,
        satisfaction,
    )
}

#[test]
fn each_commissioner_of_the_year_gets_every_figure_ranked_by_points() {
    let f = with_year();
    let page = ask(&f, &year(2025));
    assert_eq!(
        lines(&page),
        [
            // Posts 1, 2 and 6; service on 03-10 (Baotou, 120), 03-12
            // (60), 04-20 (Baotou, 45), 06-10 (30); demand 1 through two
            // of their posts counts once.
            line(c(1), (3, 4, 4, 255, 165, 1, 4)),
            // Post 4 only, no service; demand 2.
            line(c(3), (1, 0, 0, 0, 0, 1, 5)),
            // Post 3 (post 5 ended before it started); 90 minutes for
            // Hohhot, outside Baotou; demand 3 resolved in 2026.
            line(c(2), (1, 1, 1, 90, 90, 0, 0)),
        ]
    );
    let first = &page.rows[0];
    assert_eq!(first.name, "Wang Min (王敏)");
    assert_eq!(first.city, HOHHOT);
    assert_eq!(first.average_satisfaction, 4.0);
    // 4 days × 5 + 1 demand × 20 + 4 satisfaction × 4: too few days to pass.
    let scored: Vec<_> = page.rows.iter().map(|r| (r.points, r.grade())).collect();
    assert_eq!(
        scored,
        [
            (56, pb::Grade::Fail),
            (40, pb::Grade::Fail),
            (5, pb::Grade::Fail),
        ]
    );
    assert_eq!((page.year, page.city.as_str()), (2025, ""));
    assert_eq!(page.as_of_position, 38);
    assert!(page.next_page_token.is_empty());
}

#[test]
fn the_policy_decides_points_grades_and_so_the_ranking() {
    let f = with_year();
    let policy = AssessmentPolicy {
        per_service_day: 10,
        per_resolved_demand: 10,
        per_satisfaction_point: 1,
        excellent: 60,
        good: 30,
        pass: 10,
        pass_service_days: 1,
        ..AssessmentPolicy::default()
    };
    let page = f.views.assessment(&year(2025), today(), &policy).unwrap();
    let scored: Vec<_> = page
        .rows
        .iter()
        .map(|r| (r.subject_id.clone(), r.points, r.grade()))
        .collect();
    assert_eq!(
        scored,
        [
            (c(1).to_string(), 54, pb::Grade::Good),
            // 15 points but no service day: the floor fails it.
            (c(3).to_string(), 15, pb::Grade::Fail),
            (c(2).to_string(), 10, pb::Grade::Pass),
        ]
    );
}

#[test]
fn a_workstation_counts_the_posts_it_runs_and_minutes_outside_its_host_city() {
    let f = with_year();
    let page = ask(&f, &workstations(2025));
    assert_eq!(
        lines(&page),
        [
            // Posts 1, 3, 4, 6; service 03-12, 04-02, 04-20 (Baotou, 45),
            // 06-10; demands 1 (posts 1 and 6, once) and 2 (post 4).
            line(w(1), (4, 4, 4, 225, 45, 2, 9)),
            // Post 2; 120 minutes for Baotou, its own city.
            line(w(2), (1, 1, 1, 120, 0, 0, 0)),
        ]
    );
    assert_eq!(page.rows[0].name, "Saihan Dairy Station");
    assert_eq!(page.rows[0].city, HOHHOT);
    assert_eq!(page.rows[0].average_satisfaction, 4.5);
}

#[test]
fn a_city_counts_only_its_posts_the_service_it_received_and_its_demands() {
    let f = with_year();
    let in_city = |city: &str| pb::AssessmentQuery {
        city: city.into(),
        ..year(2025)
    };
    let baotou = ask(&f, &in_city(BAOTOU));
    assert_eq!(baotou.city, BAOTOU);
    assert_eq!(
        lines(&baotou),
        [
            // Demand 2 (Baotou) through post 4, which serves Baotou.
            line(c(3), (1, 0, 0, 0, 0, 1, 5)),
            // Post 2 and the 120 + 45 minutes for Baotou, all cross-city.
            line(c(1), (1, 2, 2, 165, 165, 0, 0)),
        ]
    );
    let hohhot = ask(&f, &in_city(HOHHOT));
    assert_eq!(
        lines(&hohhot),
        [
            line(c(1), (2, 2, 2, 90, 0, 1, 4)),
            line(c(2), (1, 1, 1, 90, 90, 0, 0)),
        ]
    );
}

#[test]
fn a_year_counts_only_what_fell_in_it() {
    let f = with_year();
    // Every post ended in 2025; demand 3's resolution in 2026 finds no row
    // to count for, as a row needs a post or service in the year.
    assert!(ask(&f, &year(2026)).rows.is_empty());
    assert!(ask(&f, &year(2024)).rows.is_empty());
    // 0 is the year of today (2025-04-15).
    assert_eq!(ask(&f, &year(0)), ask(&f, &year(2025)));
}

#[test]
fn the_assessment_as_of_a_position_is_the_year_as_it_stood() {
    let f = with_year();
    let at = |position| pb::AssessmentQuery {
        as_of_position: position,
        ..year(2025)
    };
    // Before the demands and post 6.
    assert_eq!(
        lines(&ask(&f, &at(26))),
        [
            line(c(1), (2, 3, 3, 225, 165, 0, 0)),
            line(c(2), (1, 1, 1, 90, 90, 0, 0)),
            line(c(3), (1, 0, 0, 0, 0, 0, 0)),
        ]
    );
    // Demand 1 dispatched and served, not yet resolved.
    let before_resolution = ask(&f, &at(31));
    assert_eq!(before_resolution.rows[0].service_days, 4);
    assert_eq!(before_resolution.rows[0].demands_resolved, 0);
    assert_eq!(before_resolution.as_of_position, 31);
}

#[test]
fn one_subjects_row_is_the_same_as_in_the_full_ranking() {
    let f = with_year();
    let all = ask(&f, &year(2025));
    let only = |q: pb::AssessmentQuery| ask(&f, &q).rows;
    let c3 = pb::AssessmentQuery {
        commissioner_id: c(3).to_string(),
        ..year(2025)
    };
    assert_eq!(only(c3), [all.rows[1].clone()]);
    let w2 = pb::AssessmentQuery {
        workstation_id: w(2).to_string(),
        ..workstations(2025)
    };
    assert_eq!(only(w2), [ask(&f, &workstations(2025)).rows[1].clone()]);
    let unknown = pb::AssessmentQuery {
        commissioner_id: c(99).to_string(),
        ..year(2025)
    };
    assert!(only(unknown).is_empty());
}

#[test]
fn pages_follow_the_ranking_at_the_first_pages_position() {
    let mut f = with_year();
    let first = ask(
        &f,
        &pb::AssessmentQuery {
            page_size: 2,
            ..year(2025)
        },
    );
    assert_eq!(first.rows.len(), 2);
    assert!(!first.next_page_token.is_empty());
    // More service for commissioner 2 would move them up; the token keeps
    // the ranking of position 38.
    let more = service(s(12), p(3), "2025-05-02", 600, CityCode::HOHHOT);
    f.projection.apply_batch(&[envelope(39, &more)]).unwrap();
    let next = pb::AssessmentQuery {
        page_size: 2,
        page_token: first.next_page_token.clone(),
        ..year(2025)
    };
    let second = ask(&f, &next);
    assert_eq!(lines(&second), [line(c(2), (1, 1, 1, 90, 90, 0, 0))]);
    assert_eq!(second.as_of_position, 38);
    assert!(second.next_page_token.is_empty());
    let latest = ask(&f, &year(2025));
    assert_eq!(latest.rows[2].service_days, 2);
}

#[test]
fn bad_parameters_are_refused_naming_the_field() {
    let f = with_year();
    let token = ask(
        &f,
        &pb::AssessmentQuery {
            page_size: 1,
            ..year(2025)
        },
    )
    .next_page_token;
    let cases = [
        (year(1989), "year"),
        (year(2200), "year"),
        (
            pb::AssessmentQuery {
                subject: 7,
                ..year(2025)
            },
            "subject",
        ),
        (
            pb::AssessmentQuery {
                city: "15010".into(),
                ..year(2025)
            },
            "city",
        ),
        (
            pb::AssessmentQuery {
                commissioner_id: "not-a-uuid".into(),
                ..year(2025)
            },
            "commissioner_id",
        ),
        (
            pb::AssessmentQuery {
                workstation_id: w(1).to_string(),
                ..year(2025)
            },
            "workstation_id",
        ),
        (
            pb::AssessmentQuery {
                commissioner_id: c(1).to_string(),
                ..workstations(2025)
            },
            "commissioner_id",
        ),
        (
            pb::AssessmentQuery {
                page_size: 501,
                ..year(2025)
            },
            "page_size",
        ),
        (
            pb::AssessmentQuery {
                page_token: "zz".into(),
                ..year(2025)
            },
            "page_token",
        ),
        (
            pb::AssessmentQuery {
                page_token: token.clone(),
                as_of_position: 30,
                ..year(2025)
            },
            "page_token",
        ),
        // A commissioner's token does not page workstations.
        (
            pb::AssessmentQuery {
                page_token: token,
                ..workstations(2025)
            },
            "page_token",
        ),
        (
            pb::AssessmentQuery {
                as_of_position: 39,
                ..year(2025)
            },
            "as_of_position",
        ),
    ];
    for (q, field) in cases {
        let error = f
            .views
            .assessment(&q, today(), &AssessmentPolicy::default())
            .expect_err(field);
        match error {
            QueryError::InvalidArgument { field: named, .. } => {
                assert_eq!(named, field, "{q:?}")
            }
            other => panic!("{q:?}: {other:?}"),
        }
    }
}
