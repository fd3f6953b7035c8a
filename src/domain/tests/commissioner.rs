//! The commissioner aggregate: register, update, suspend, reinstate, retire.

use super::*;

#[test]
fn a_commissioner_can_be_registered_in_a_city_of_the_region() {
    given([])
        .when(commissioner(1).living_in(BAOTOU).register())
        .then_events([Event::CommissionerRegistered {
            commissioner_id: cid(1),
            name: text("张涛"),
            home_city: BAOTOU,
            employer: text("内蒙古农业大学"),
            kind: CommissionerKind::University,
            expertise: vec![text("乳业"), text("饲草")],
        }]);
}

#[test]
fn a_commissioner_can_be_registered_in_a_city_the_policy_adds_to_the_region() {
    given([])
        .under(wider_region())
        .when(commissioner(1).living_in(ORDOS).register())
        .then_events([commissioner(1).living_in(ORDOS).registered()]);
}

#[test]
fn a_home_city_outside_the_region_is_an_invalid_argument() {
    for city in ["150600", "150900", "110000"] {
        let city = CityCode::parse("home_city", city).unwrap();
        let r = given([])
            .when(commissioner(1).living_in(city).register())
            .then_rejects(InvalidArgument, "CITY_OUTSIDE_REGION");
        assert_eq!(
            r.to_string(),
            format!("home_city: city {city} is not in the region (150100, 150200)")
        );
    }
}

#[test]
fn a_commissioner_id_cannot_be_registered_twice() {
    let r = given([registered(1)])
        .when(commissioner(1).living_in(BAOTOU).register())
        .then_rejects(AlreadyExists, "ALREADY_EXISTS");
    assert_eq!(r, Rejection::AlreadyExists(cid(1).stream()));
}

#[test]
fn a_profile_update_carries_the_whole_new_profile() {
    given([registered(1)])
        .when(UpdateCommissionerProfile {
            employer: Some(text("内蒙古大学")),
            ..update_profile(1)
        })
        .then_events([Event::CommissionerProfileUpdated {
            commissioner_id: cid(1),
            name: text("张涛"),
            employer: text("内蒙古大学"),
            expertise: vec![text("乳业"), text("饲草")],
        }]);
}

#[test]
fn a_profile_update_can_replace_every_field_and_clear_the_expertise() {
    given([registered(1)])
        .when(UpdateCommissionerProfile {
            name: Some(text("张涛文")),
            employer: Some(text("包头稀土研究院")),
            expertise: Some(vec![]),
            ..update_profile(1)
        })
        .then_events([Event::CommissionerProfileUpdated {
            commissioner_id: cid(1),
            name: text("张涛文"),
            employer: text("包头稀土研究院"),
            expertise: vec![],
        }]);
}

#[test]
fn a_suspended_commissioner_can_still_update_their_profile() {
    given([registered(1), suspended(1)])
        .when(UpdateCommissionerProfile {
            name: Some(text("张涛文")),
            ..update_profile(1)
        })
        .then_accepts();
}

#[test]
fn a_profile_update_naming_no_field_is_an_invalid_argument() {
    given([registered(1)])
        .when(update_profile(1))
        .then_rejects(InvalidArgument, "NOTHING_TO_UPDATE");
}

#[test]
fn a_retired_commissioner_cannot_update_their_profile() {
    let r = given([registered(1), retired(1, "2025-01-31")])
        .when(UpdateCommissionerProfile {
            name: Some(text("张涛文")),
            ..update_profile(1)
        })
        .then_rejects(RuleViolated, "COMMISSIONER_NOT_ACTIVE");
    assert_eq!(
        r.to_string(),
        "commissioner 张涛 is retired; only an active commissioner can change their profile"
    );
}

#[test]
fn an_active_commissioner_can_be_suspended() {
    given([registered(1)])
        .when(suspend(1))
        .then_events([suspended(1)]);
}

#[test]
fn only_an_active_commissioner_can_be_suspended() {
    for (status, history) in [
        ("suspended", vec![registered(1), suspended(1)]),
        ("retired", vec![registered(1), retired(1, "2025-01-31")]),
    ] {
        let r = given(history)
            .when(suspend(1))
            .then_rejects(RuleViolated, "COMMISSIONER_NOT_ACTIVE");
        assert_eq!(
            r.to_string(),
            format!("commissioner 张涛 is {status}; only an active commissioner can be suspended")
        );
    }
}

#[test]
fn a_suspended_commissioner_can_be_reinstated() {
    given([registered(1), suspended(1)])
        .when(reinstate(1))
        .then_events([Event::CommissionerReinstated {
            commissioner_id: cid(1),
            reason: text("cleared"),
        }]);
}

#[test]
fn only_a_suspended_commissioner_can_be_reinstated() {
    for (status, history) in [
        ("active", vec![registered(1)]),
        (
            "retired",
            vec![registered(1), suspended(1), retired(1, "2025-01-31")],
        ),
    ] {
        let r = given(history)
            .when(reinstate(1))
            .then_rejects(RuleViolated, "COMMISSIONER_NOT_SUSPENDED");
        assert_eq!(
            r.to_string(),
            format!(
                "commissioner 张涛 is {status}, not suspended; only a suspended commissioner can be reinstated"
            )
        );
    }
}

#[test]
fn a_reinstated_commissioner_can_be_appointed_again() {
    given(world_and([
        suspended(1),
        Event::CommissionerReinstated {
            commissioner_id: cid(1),
            reason: text("cleared"),
        },
    ]))
    .when(post(1).appoint())
    .then_events([post(1).appointed()]);
}

#[test]
fn retiring_a_commissioner_ends_every_post_still_running_after_the_effective_date() {
    let running = post(1).term("2025-01-01", "2025-12-31");
    let ends_on_the_day = post(2)
        .at(2)
        .serving(BAOTOU)
        .term("2024-06-01", "2025-03-31");
    let already_over = post(3).serving(BAOTOU).term("2024-01-01", "2024-12-31");
    let future = post(4)
        .at(2)
        .serving(BAOTOU)
        .term("2026-01-01", "2026-06-30");
    let ended_early = post(5).term("2024-01-01", "2024-12-31");
    let someone_else = post(6).of(2).term("2025-01-01", "2025-12-31");
    given(world_and([
        running.appointed(),
        ends_on_the_day.appointed(),
        already_over.appointed(),
        future.appointed(),
        ended_early.appointed(),
        post_ended(5, "2024-06-30", "moved away"),
        someone_else.appointed(),
    ]))
    .when(retire(1, "2025-03-31"))
    .then_events([
        retired(1, "2025-03-31"),
        post_ended(1, "2025-03-31", "commissioner retired"),
        post_ended(4, "2025-03-31", "commissioner retired"),
    ]);
}

#[test]
fn retiring_without_an_effective_date_ends_the_posts_today() {
    given(world_and([post(1).appointed()]))
        .on("2025-05-20")
        .when(RetireCommissioner {
            commissioner_id: cid(1),
            effective_date: None,
        })
        .then_events([
            retired(1, "2025-05-20"),
            post_ended(1, "2025-05-20", "commissioner retired"),
        ]);
}

#[test]
fn retiring_also_ends_a_post_already_ended_to_a_later_day() {
    // The post was ended early, but on a day after the retirement: it would
    // otherwise keep running for a retired commissioner.
    let state = given(world_and([
        post(1).appointed(),
        post_ended(1, "2025-09-30", "project finished"),
    ]))
    .when(retire(1, "2025-03-31"))
    .then_events([
        retired(1, "2025-03-31"),
        post_ended(1, "2025-03-31", "commissioner retired"),
    ]);
    assert_eq!(state.post(pid(1)).unwrap().last_day(), d("2025-03-31"));
}

#[test]
fn a_suspended_commissioner_can_retire() {
    given(world_and([suspended(1)]))
        .when(retire(1, "2025-03-31"))
        .then_events([retired(1, "2025-03-31")]);
}

#[test]
fn a_retired_commissioner_cannot_retire_again() {
    let r = given([registered(1), retired(1, "2025-01-31")])
        .when(retire(1, "2025-03-31"))
        .then_rejects(RuleViolated, "COMMISSIONER_NOT_ACTIVE");
    assert_eq!(
        r.to_string(),
        "commissioner 张涛 is retired; only an active commissioner can retire"
    );
}

#[test]
fn every_command_on_an_unknown_commissioner_is_not_found() {
    let commands: Vec<Command> = vec![
        UpdateCommissionerProfile {
            name: Some(text("x")),
            ..update_profile(9)
        }
        .into(),
        suspend(9).into(),
        reinstate(9).into(),
        retire(9, "2025-03-31").into(),
        post(1).of(9).appoint().into(),
    ];
    for command in commands {
        let r = given(world())
            .when(command)
            .then_rejects(NotFound, "NOT_FOUND");
        assert_eq!(
            r.to_string(),
            format!("commissioner-{} does not exist", cid(9))
        );
    }
}
