//! The demand aggregate (需求对接): submit, dispatch, resolve, withdraw; a
//! post appointed for a demand; service recorded for one.

use super::*;

/// `world()` with demand 1 submitted (Hohhot, wants 乳业; commissioner 1
/// has it) and post 1 (commissioner 1 at workstation 1, serving Hohhot).
fn with_demand_and_post() -> Vec<Event> {
    world_and([demand(1).submitted(), post(1).appointed()])
}

#[test]
fn a_demand_in_the_region_is_submitted() {
    given(world())
        .when(demand(1).submit())
        .then_events([demand(1).submitted()]);
}

#[test]
fn a_demand_id_cannot_be_submitted_twice() {
    given(world_and([demand(1).submitted()]))
        .when(demand(1).in_city(BAOTOU).submit())
        .then_rejects(AlreadyExists, "ALREADY_EXISTS");
}

#[test]
fn a_demand_outside_the_region_or_with_a_bad_period_is_an_invalid_argument() {
    let cases = [
        (demand(1).in_city(ORDOS), "CITY_OUTSIDE_REGION"),
        (
            demand(1).period("2025-06-01", "2025-05-31"),
            "TERM_REVERSED",
        ),
        (
            demand(1).period("2025-01-01", "2028-01-01"),
            "TERM_TOO_LONG",
        ),
    ];
    for (spec, rule) in cases {
        given(world())
            .when(spec.submit())
            .then_rejects(InvalidArgument, rule);
    }
    // Exactly three years is allowed.
    given(world())
        .when(demand(1).period("2025-01-01", "2027-12-31").submit())
        .then_accepts();
}

#[test]
fn a_demand_is_dispatched_to_a_post_serving_its_city_held_by_a_commissioner_with_a_wanted_tag() {
    let state = given(with_demand_and_post())
        .when(dispatch(1, 1))
        .then_events([dispatched(1, 1)]);
    let demand = state.demand(did(1)).expect("the demand");
    assert_eq!(demand.status, crate::domain::DemandStatus::Dispatched);
    assert_eq!(demand.posts, vec![pid(1)]);
}

#[test]
fn a_demand_may_have_several_posts_and_a_post_may_serve_several_demands() {
    given(world_and([
        demand(1).submitted(),
        demand(2).submitted(),
        post(1).appointed(),
        post(2).of(3).appointed(),
        dispatched(1, 1),
        dispatched(2, 1),
    ]))
    .when(dispatch(1, 2))
    .then_events([dispatched(1, 2)]);
}

#[test]
fn dispatching_the_same_post_twice_is_refused_naming_the_demand_and_the_post() {
    let r = given(world_and([
        demand(1).submitted(),
        post(1).appointed(),
        dispatched(1, 1),
    ]))
    .when(dispatch(1, 1))
    .then_rejects(RuleViolated, "ALREADY_DISPATCHED");
    let message = r.to_string();
    assert!(message.contains(&demand_title(1)), "{message}");
    assert!(message.contains(&pid(1).to_string()), "{message}");
}

#[test]
fn a_post_serving_another_city_cannot_take_the_demand() {
    let r = given(world_and([
        demand(1).in_city(BAOTOU).submitted(),
        post(1).appointed(),
    ]))
    .when(dispatch(1, 1))
    .then_rejects(RuleViolated, "POST_SERVES_ANOTHER_CITY");
    assert_eq!(
        r.to_string(),
        format!(
            "post {} serves city 150100, but demand {} ({}) is in city 150200",
            pid(1),
            demand_title(1),
            did(1)
        )
    );
}

#[test]
fn a_commissioner_without_any_wanted_tag_is_an_expertise_mismatch() {
    let r = given(world_and([
        demand(1).wanting(&["稀土冶金", "稀土永磁"]).submitted(),
        post(1).appointed(),
    ]))
    .when(dispatch(1, 1))
    .then_rejects(RuleViolated, "EXPERTISE_MISMATCH");
    let message = r.to_string();
    for needle in ["张涛", "稀土冶金, 稀土永磁", "乳业, 饲草", &demand_title(1)] {
        assert!(message.contains(needle), "{needle} missing in: {message}");
    }
}

#[test]
fn a_post_whose_term_misses_the_wanted_period_is_refused_with_both_periods() {
    let r = given(world_and([
        demand(1).period("2026-01-01", "2026-06-30").submitted(),
        post(1).appointed(),
    ]))
    .when(dispatch(1, 1))
    .then_rejects(RuleViolated, "POST_OUTSIDE_PERIOD");
    let message = r.to_string();
    for needle in ["2025-01-01", "2025-12-31", "2026-01-01", "2026-06-30"] {
        assert!(message.contains(needle), "{needle} missing in: {message}");
    }
    // A single overlapping day is enough.
    given(world_and([
        demand(1).period("2025-12-31", "2026-06-30").submitted(),
        post(1).appointed(),
    ]))
    .when(dispatch(1, 1))
    .then_events([dispatched(1, 1)]);
}

#[test]
fn an_ended_post_or_an_inactive_commissioner_cannot_take_a_demand() {
    given(world_and([
        demand(1).submitted(),
        post(1).appointed(),
        post_ended(1, "2025-02-28", "done"),
    ]))
    .when(dispatch(1, 1))
    .then_rejects(RuleViolated, "POST_ALREADY_ENDED");
    given(world_and([
        demand(1).submitted(),
        post(1).appointed(),
        suspended(1),
    ]))
    .when(dispatch(1, 1))
    .then_rejects(RuleViolated, "COMMISSIONER_NOT_ACTIVE");
}

#[test]
fn dispatching_an_unknown_demand_or_post_is_not_found() {
    given(world_and([post(1).appointed()]))
        .when(dispatch(1, 1))
        .then_rejects(NotFound, "NOT_FOUND");
    given(world_and([demand(1).submitted()]))
        .when(dispatch(1, 1))
        .then_rejects(NotFound, "NOT_FOUND");
}

#[test]
fn appointing_a_post_for_a_demand_writes_the_post_and_the_dispatch_in_one_commit() {
    given(world_and([demand(1).submitted()]))
        .when(post(1).for_demand(1).appoint())
        .then_events([post(1).appointed(), dispatched(1, 1)]);
}

#[test]
fn appointing_for_a_demand_the_post_cannot_serve_writes_nothing() {
    // The post itself would be fine; the dispatch is not, so neither is written.
    let r = given(world_and([demand(1).wanting(&["稀土冶金"]).submitted()]))
        .when(post(1).for_demand(1).appoint())
        .then_rejects(RuleViolated, "EXPERTISE_MISMATCH");
    assert!(r.to_string().contains(&pid(1).to_string()));
    given(world())
        .when(post(1).for_demand(9).appoint())
        .then_rejects(NotFound, "NOT_FOUND");
}

#[test]
fn only_a_dispatched_demand_is_resolved_and_it_defaults_to_today() {
    given(with_demand_and_post())
        .when(resolve(1, None))
        .then_rejects(RuleViolated, "DEMAND_NOT_DISPATCHED");
    given(world_and([
        demand(1).submitted(),
        post(1).appointed(),
        dispatched(1, 1),
    ]))
    .when(resolve(1, None))
    .then_events([resolved(1, TODAY)]);
}

#[test]
fn a_demand_cannot_be_resolved_on_a_day_to_come() {
    given(world_and([
        demand(1).submitted(),
        post(1).appointed(),
        dispatched(1, 1),
    ]))
    .when(resolve(1, Some("2025-03-02")))
    .then_rejects(InvalidArgument, "RESOLVED_IN_FUTURE");
}

#[test]
fn resolved_and_withdrawn_demands_are_final() {
    let resolved_history = world_and([
        demand(1).submitted(),
        post(1).appointed(),
        post(2).of(3).appointed(),
        dispatched(1, 1),
        resolved(1, "2025-02-20"),
    ]);
    let withdrawn_history = world_and([
        demand(1).submitted(),
        post(1).appointed(),
        post(2).of(3).appointed(),
        demand_withdrawn(1),
    ]);
    for history in [resolved_history, withdrawn_history] {
        let commands: [Command; 3] = [
            dispatch(1, 2).into(),
            resolve(1, None).into(),
            withdraw_demand(1).into(),
        ];
        for command in commands {
            given(history.clone())
                .when(command)
                .then_rejects(RuleViolated, "DEMAND_CLOSED");
        }
    }
}

#[test]
fn an_open_or_dispatched_demand_without_service_can_be_withdrawn() {
    given(world_and([demand(1).submitted()]))
        .when(withdraw_demand(1))
        .then_events([demand_withdrawn(1)]);
    given(world_and([
        demand(1).submitted(),
        post(1).appointed(),
        dispatched(1, 1),
    ]))
    .when(withdraw_demand(1))
    .then_events([demand_withdrawn(1)]);
}

#[test]
fn a_demand_with_service_recorded_for_it_is_resolved_not_withdrawn() {
    given(world_and([
        demand(1).submitted(),
        post(1).appointed(),
        dispatched(1, 1),
        service(1).for_demand(1).recorded(),
    ]))
    .when(withdraw_demand(1))
    .then_rejects(RuleViolated, "DEMAND_HAS_SERVICE");
}

#[test]
fn service_for_a_demand_needs_it_dispatched_to_that_post_and_not_withdrawn() {
    given(world_and([
        demand(1).submitted(),
        post(1).appointed(),
        dispatched(1, 1),
    ]))
    .when(service(1).for_demand(1).record())
    .then_events([service(1).for_demand(1).recorded()]);

    let r = given(with_demand_and_post())
        .when(service(1).for_demand(1).record())
        .then_rejects(RuleViolated, "NOT_DISPATCHED_TO_POST");
    assert!(r.to_string().contains(&demand_title(1)));

    given(world_and([
        demand(1).submitted(),
        post(1).appointed(),
        dispatched(1, 1),
        demand_withdrawn(1),
    ]))
    .when(service(1).for_demand(1).record())
    .then_rejects(RuleViolated, "DEMAND_CLOSED");

    given(world_and([post(1).appointed()]))
        .when(service(1).for_demand(1).record())
        .then_rejects(NotFound, "NOT_FOUND");
}

#[test]
fn a_resolved_demand_still_takes_late_records_of_its_service() {
    given(world_and([
        demand(1).submitted(),
        post(1).appointed(),
        dispatched(1, 1),
        resolved(1, "2025-02-20"),
    ]))
    .when(service(1).for_demand(1).record())
    .then_accepts();
}
