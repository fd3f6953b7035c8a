//! The workstation aggregate: establish, extend and withdraw service,
//! change capacity, close.

use super::*;

#[test]
fn a_workstation_can_be_established_serving_its_host_city() {
    let state = given([])
        .when(workstation(1).in_city(BAOTOU).capacity(3).establish())
        .then_events([Event::WorkstationEstablished {
            workstation_id: wid(1),
            name: text("乳业科技特派员工作站"),
            host_org: text("伊利集团"),
            host_city: BAOTOU,
            capacity: capacity(3),
            fields: vec![text("乳业")],
        }]);
    let w = state.workstation(wid(1)).unwrap();
    assert_eq!(w.served.iter().copied().collect::<Vec<_>>(), [BAOTOU]);
}

#[test]
fn a_host_city_outside_the_region_is_an_invalid_argument() {
    let r = given([])
        .when(workstation(1).in_city(ORDOS).establish())
        .then_rejects(InvalidArgument, "CITY_OUTSIDE_REGION");
    assert_eq!(
        r.to_string(),
        "host_city: city 150600 is not in the region (150100, 150200)"
    );
}

#[test]
fn a_workstation_id_cannot_be_established_twice() {
    given([established(1)])
        .when(workstation(1).in_city(BAOTOU).establish())
        .then_rejects(AlreadyExists, "ALREADY_EXISTS");
}

#[test]
fn a_workstation_can_extend_its_service_across_the_border() {
    given([established(1)])
        .when(extend_service(1, BAOTOU))
        .then_events([service_extended(1, BAOTOU)]);
}

#[test]
fn a_workstation_can_extend_its_service_to_a_city_the_policy_adds() {
    given([established(1)])
        .under(wider_region())
        .when(extend_service(1, ORDOS))
        .then_events([service_extended(1, ORDOS)]);
}

#[test]
fn service_cannot_be_extended_to_a_city_outside_the_region() {
    let r = given([established(1)])
        .when(extend_service(1, ORDOS))
        .then_rejects(InvalidArgument, "CITY_OUTSIDE_REGION");
    assert_eq!(
        r.to_string(),
        "city: city 150600 is not in the region (150100, 150200)"
    );
}

#[test]
fn service_cannot_be_extended_to_a_city_already_served() {
    for city in [HOHHOT, BAOTOU] {
        let r = given([established(1), service_extended(1, BAOTOU)])
            .when(extend_service(1, city))
            .then_rejects(RuleViolated, "CITY_ALREADY_SERVED");
        assert_eq!(
            r.to_string(),
            format!("workstation 乳业科技特派员工作站 already serves city {city}")
        );
    }
}

#[test]
fn service_can_be_withdrawn_from_a_city_no_post_serves() {
    let state = given(world())
        .when(withdraw(1, BAOTOU, "2025-04-30"))
        .then_events([service_withdrawn(1, BAOTOU, "2025-04-30")]);
    assert!(!state.workstation(wid(1)).unwrap().served.contains(&BAOTOU));
}

#[test]
fn withdrawing_without_an_effective_date_takes_effect_today() {
    given(world())
        .when(WithdrawWorkstationService {
            effective_date: None,
            ..withdraw(1, BAOTOU, TODAY)
        })
        .then_events([service_withdrawn(1, BAOTOU, TODAY)]);
}

#[test]
fn service_can_be_withdrawn_when_the_posts_serving_the_city_end_by_the_effective_date() {
    given(world_and([
        post(1)
            .serving(BAOTOU)
            .term("2025-01-01", "2025-04-30")
            .appointed(),
        post(2).of(2).serving(BAOTOU).appointed(),
        post_ended(2, "2025-04-15", "project finished"),
    ]))
    .when(withdraw(1, BAOTOU, "2025-04-30"))
    .then_events([service_withdrawn(1, BAOTOU, "2025-04-30")]);
}

#[test]
fn withdrawing_without_end_posts_is_refused_while_posts_serve_the_city() {
    let r = given(world_and([
        post(1).serving(BAOTOU).appointed(),
        post(2)
            .of(2)
            .serving(BAOTOU)
            .term("2026-01-01", "2026-12-31")
            .appointed(),
        post(3).serving(HOHHOT).appointed(),
    ]))
    .when(withdraw(1, BAOTOU, "2025-04-30"))
    .then_rejects(RuleViolated, "CITY_HAS_POSTS");
    assert_eq!(
        r.to_string(),
        "workstation 乳业科技特派员工作站 has 2 post(s) serving city 150200 after 2025-04-30; \
         end them first or withdraw with end_posts"
    );
}

#[test]
fn withdrawing_with_end_posts_ends_the_posts_serving_the_city_after_the_effective_date() {
    let running = post(1).serving(BAOTOU);
    let ends_on_the_day = post(2)
        .of(2)
        .serving(BAOTOU)
        .term("2024-06-01", "2025-04-30");
    let host_city = post(3).serving(HOHHOT);
    let future = post(4).serving(BAOTOU).term("2026-01-01", "2026-06-30");
    let other_workstation = post(5).of(2).at(2).serving(BAOTOU);
    let state = given(world_and([
        running.appointed(),
        ends_on_the_day.appointed(),
        host_city.appointed(),
        future.appointed(),
        other_workstation.appointed(),
    ]))
    .when(withdraw_ending_posts(1, BAOTOU, "2025-04-30"))
    .then_events([
        service_withdrawn(1, BAOTOU, "2025-04-30"),
        post_ended(
            1,
            "2025-04-30",
            "workstation withdrew its service from the city",
        ),
        post_ended(
            4,
            "2025-04-30",
            "workstation withdrew its service from the city",
        ),
    ]);
    assert!(!state.post(pid(4)).unwrap().covers(d("2026-01-01")));
    assert_eq!(state.post(pid(5)).unwrap().ended_on, None);
}

#[test]
fn withdrawing_with_end_posts_also_ends_a_post_already_ended_to_a_later_day() {
    given(world_and([
        post(1).serving(BAOTOU).appointed(),
        post_ended(1, "2025-10-31", "project finished"),
    ]))
    .when(withdraw_ending_posts(1, BAOTOU, "2025-04-30"))
    .then_events([
        service_withdrawn(1, BAOTOU, "2025-04-30"),
        post_ended(
            1,
            "2025-04-30",
            "workstation withdrew its service from the city",
        ),
    ]);
}

#[test]
fn the_host_city_cannot_be_withdrawn() {
    let r = given(world())
        .when(withdraw_ending_posts(1, HOHHOT, "2025-04-30"))
        .then_rejects(RuleViolated, "HOST_CITY_NOT_WITHDRAWABLE");
    assert_eq!(
        r.to_string(),
        "workstation 乳业科技特派员工作站 stands in city 150100; its host city cannot be withdrawn \
         (close the workstation instead)"
    );
}

#[test]
fn service_cannot_be_withdrawn_from_a_city_not_served() {
    let r = given(world())
        .when(withdraw(2, HOHHOT, "2025-04-30"))
        .then_rejects(RuleViolated, "CITY_NOT_SERVED");
    assert_eq!(
        r.to_string(),
        "workstation 稀土科技特派员工作站 does not serve city 150100; it serves 150200"
    );
}

#[test]
fn service_cannot_be_withdrawn_from_a_city_outside_the_region() {
    given(world())
        .when(withdraw(1, ORDOS, "2025-04-30"))
        .then_rejects(InvalidArgument, "CITY_OUTSIDE_REGION");
}

#[test]
fn a_capacity_change_records_the_previous_capacity() {
    given(world_and([post(1).appointed(), post(2).of(2).appointed()]))
        .when(change_capacity(1, 2))
        .then_events([Event::WorkstationCapacityChanged {
            workstation_id: wid(1),
            capacity: capacity(2),
            previous_capacity: capacity(10),
        }]);
}

#[test]
fn capacity_cannot_drop_below_the_busiest_day_from_today_on() {
    let r = given(world_and([
        post(1).appointed(),
        post(2).of(2).term("2025-06-01", "2025-12-31").appointed(),
        post(3).term("2026-01-01", "2026-06-30").appointed(),
    ]))
    .when(change_capacity(1, 1))
    .then_rejects(RuleViolated, "CAPACITY_BELOW_RUNNING_POSTS");
    assert_eq!(
        r.to_string(),
        "workstation 乳业科技特派员工作站 runs 2 posts on 2025-06-01; capacity 1 would be below that"
    );
}

#[test]
fn capacity_may_drop_to_the_busiest_day_from_today_on() {
    given(world_and([
        post(1).appointed(),
        post(2).of(2).term("2025-06-01", "2025-12-31").appointed(),
    ]))
    .when(change_capacity(1, 2))
    .then_accepts();
}

#[test]
fn a_capacity_change_ignores_days_before_today() {
    given(world_and([
        post(1).term("2024-01-01", "2024-12-31").appointed(),
        post(2).of(2).term("2024-01-01", "2025-02-28").appointed(),
        post(3).term("2025-01-01", "2025-12-31").appointed(),
    ]))
    .when(change_capacity(1, 1))
    .then_accepts();
}

#[test]
fn a_capacity_change_counts_future_dated_posts_on_the_days_they_cover() {
    let r = given(world_and([
        post(1).term("2026-01-01", "2026-12-31").appointed(),
        post(2).of(2).term("2026-07-01", "2026-12-31").appointed(),
    ]))
    .when(change_capacity(1, 1))
    .then_rejects(RuleViolated, "CAPACITY_BELOW_RUNNING_POSTS");
    assert!(r.to_string().contains("runs 2 posts on 2026-07-01"), "{r}");
}

#[test]
fn a_capacity_change_counts_an_ended_post_only_until_its_last_day() {
    given(world_and([
        post(1).appointed(),
        post(2).of(2).appointed(),
        post_ended(2, "2025-02-28", "moved away"),
    ]))
    .when(change_capacity(1, 1))
    .then_accepts();
}

#[test]
fn closing_a_workstation_ends_every_post_still_running_after_the_effective_date() {
    let running = post(1);
    let ends_on_the_day = post(2)
        .of(2)
        .serving(BAOTOU)
        .term("2024-06-01", "2025-03-31");
    let future = post(3).term("2026-01-01", "2026-06-30");
    let already_over = post(4).of(2).term("2024-01-01", "2024-12-31");
    let ended_early = post(5)
        .of(2)
        .serving(BAOTOU)
        .term("2025-06-01", "2025-12-31");
    let elsewhere = post(6).of(2).at(2).serving(BAOTOU);
    given(world_and([
        running.appointed(),
        ends_on_the_day.appointed(),
        future.appointed(),
        already_over.appointed(),
        ended_early.appointed(),
        post_ended(5, "2025-03-15", "project cancelled"),
        elsewhere.appointed(),
    ]))
    .when(close(1, "2025-03-31"))
    .then_events([
        closed(1, "2025-03-31"),
        post_ended(1, "2025-03-31", "workstation closed"),
        post_ended(3, "2025-03-31", "workstation closed"),
    ]);
}

#[test]
fn closing_without_an_effective_date_ends_the_posts_today() {
    given(world_and([post(1).appointed()]))
        .when(CloseWorkstation {
            workstation_id: wid(1),
            effective_date: None,
        })
        .then_events([closed(1, TODAY), post_ended(1, TODAY, "workstation closed")]);
}

#[test]
fn a_closed_workstation_refuses_every_workstation_command() {
    let commands: Vec<(Command, &str)> = vec![
        (extend_service(1, BAOTOU).into(), "extend its service"),
        (withdraw(1, BAOTOU, "2025-04-30").into(), "withdraw service"),
        (change_capacity(1, 5).into(), "change its capacity"),
        (close(1, "2025-04-30").into(), "be closed"),
        (post(1).appoint().into(), "take posts"),
    ];
    for (command, action) in commands {
        let r = given(world_and([closed(1, "2025-01-31")]))
            .when(command)
            .then_rejects(RuleViolated, "WORKSTATION_NOT_OPEN");
        assert_eq!(
            r.to_string(),
            format!(
                "workstation 乳业科技特派员工作站 is closed; only an open workstation can {action}"
            )
        );
    }
}

#[test]
fn every_command_on_an_unknown_workstation_is_not_found() {
    let commands: Vec<Command> = vec![
        extend_service(9, BAOTOU).into(),
        withdraw(9, BAOTOU, "2025-04-30").into(),
        change_capacity(9, 5).into(),
        close(9, "2025-04-30").into(),
        post(1).at(9).appoint().into(),
    ];
    for command in commands {
        let r = given(world())
            .when(command)
            .then_rejects(NotFound, "NOT_FOUND");
        assert_eq!(r, Rejection::NotFound(wid(9).stream()));
    }
}
