//! Service records (RecordService), events of their post's stream.

use super::*;

/// `world()` with post 1 (张涛 at workstation 1 for 2025) appointed.
fn with_post(more: impl IntoIterator<Item = Event>) -> Vec<Event> {
    world_and([post(1).appointed()].into_iter().chain(more))
}

#[test]
fn service_delivered_through_a_running_post_can_be_recorded() {
    let state = given(with_post([]))
        .when(service(1).on("2025-02-10").record())
        .then_events([Event::ServiceRecorded {
            service_id: sid(1),
            post_id: pid(1),
            date: d("2025-02-10"),
            minutes: Minutes::parse("minutes", 90).unwrap(),
            beneficiary: text("蒙牛乳业"),
            beneficiary_city: HOHHOT,
            summary: text("青贮饲料配方指导"),
            demand_id: None,
        }]);
    assert!(state.has_service(sid(1)));
    assert_eq!(state.version(pid(1).stream()), 2);
}

#[test]
fn service_can_be_recorded_today_for_a_beneficiary_in_any_city_the_workstation_serves() {
    for city in [HOHHOT, BAOTOU] {
        given(with_post([]))
            .when(service(1).on(TODAY).for_city(city).record())
            .then_events([service(1).on(TODAY).for_city(city).recorded()]);
    }
}

#[test]
fn service_cannot_be_recorded_for_a_day_that_has_not_come() {
    let r = given(with_post([]))
        .when(service(1).on("2025-03-02").record())
        .then_rejects(InvalidArgument, "SERVICE_IN_FUTURE");
    assert_eq!(
        r.to_string(),
        "service cannot be recorded for 2025-03-02; today is 2025-03-01"
    );
}

#[test]
fn a_service_id_cannot_be_recorded_twice() {
    let r = given(with_post([service(1).on("2025-01-10").recorded()]))
        .when(service(1).on("2025-02-10").record())
        .then_rejects(AlreadyExists, "SERVICE_EXISTS");
    assert_eq!(
        r.to_string(),
        format!("service record {} already exists", sid(1))
    );
}

#[test]
fn a_beneficiary_city_outside_the_region_is_an_invalid_argument() {
    let r = given(with_post([]))
        .when(service(1).for_city(ORDOS).record())
        .then_rejects(InvalidArgument, "CITY_OUTSIDE_REGION");
    assert_eq!(
        r.to_string(),
        "beneficiary_city: city 150600 is not in the region (150100, 150200)"
    );
}

#[test]
fn a_beneficiary_must_be_in_a_city_the_workstation_serves() {
    let r = given(world_and([post(1).at(2).serving(BAOTOU).appointed()]))
        .when(service(1).for_city(HOHHOT).record())
        .then_rejects(RuleViolated, "CITY_NOT_SERVED");
    assert_eq!(
        r.to_string(),
        "workstation 稀土科技特派员工作站 does not serve city 150100; it serves 150200"
    );
}

#[test]
fn only_an_active_commissioner_can_record_service() {
    for (status, later) in [
        ("suspended", suspended(1)),
        ("retired", retired(1, "2025-02-28")),
    ] {
        let r = given(with_post([later]))
            .when(service(1).on("2025-02-10").record())
            .then_rejects(RuleViolated, "COMMISSIONER_NOT_ACTIVE");
        assert_eq!(
            r.to_string(),
            format!(
                "commissioner 张涛 is {status}; only an active commissioner can record service"
            )
        );
    }
}

#[test]
fn service_can_be_recorded_on_the_last_day_of_an_ended_post_but_not_after() {
    let history = with_post([post_ended(1, "2025-02-15", "project finished")]);
    given(history.clone())
        .when(service(1).on("2025-02-15").record())
        .then_accepts();
    let r = given(history)
        .when(service(1).on("2025-02-16").record())
        .then_rejects(RuleViolated, "POST_ALREADY_ENDED");
    assert_eq!(
        r.to_string(),
        format!("post {} was ended (its last day is 2025-02-15)", pid(1))
    );
}

#[test]
fn service_delivered_before_a_workstation_closed_can_still_be_recorded() {
    given(with_post([
        closed(1, "2025-02-15"),
        post_ended(1, "2025-02-15", "workstation closed"),
    ]))
    .when(service(1).on("2025-02-14").record())
    .then_accepts();
}

#[test]
fn service_must_lie_within_the_post_term() {
    let cases = [
        (
            post(1).term("2025-02-01", "2025-12-31"),
            "2025-01-31",
            "2025-02-01",
            "2025-12-31",
        ),
        (
            post(1).term("2024-01-01", "2024-12-31"),
            "2025-01-05",
            "2024-01-01",
            "2024-12-31",
        ),
    ];
    for (spec, date, start, end) in cases {
        let r = given(world_and([spec.appointed()]))
            .when(service(1).on(date).record())
            .then_rejects(RuleViolated, "SERVICE_OUTSIDE_TERM");
        assert_eq!(
            r.to_string(),
            format!(
                "post {} runs from {start} to {end}; service on {date} is outside it",
                pid(1)
            )
        );
    }
}
