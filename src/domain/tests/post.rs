//! The post aggregate: appoint, extend the term, end; and the load rules
//! ("on every day of the term").

use super::*;

#[test]
fn an_active_commissioner_can_be_appointed_at_an_open_workstation() {
    given(world())
        .when(post(1).hours(40).term("2025-04-01", "2026-03-31").appoint())
        .then_events([Event::PostAppointed {
            post_id: pid(1),
            commissioner_id: cid(1),
            workstation_id: wid(1),
            serving_city: HOHHOT,
            role: text("技术顾问"),
            hours_per_month: hours(40),
            start_date: d("2025-04-01"),
            end_date: d("2026-03-31"),
        }]);
}

#[test]
fn a_commissioner_can_serve_across_the_border_through_a_workstation_serving_both_cities() {
    // 李娜 lives in Baotou and serves Hohhot; 张涛 lives in Hohhot and serves Baotou.
    given(world_and([post(1).of(2).serving(HOHHOT).appointed()]))
        .when(post(2).of(1).serving(BAOTOU).appoint())
        .then_events([post(2).of(1).serving(BAOTOU).appointed()]);
}

#[test]
fn a_term_of_one_day_and_a_term_of_exactly_three_years_are_allowed() {
    for (start, end) in [("2025-05-01", "2025-05-01"), ("2025-01-01", "2027-12-31")] {
        given(world())
            .when(post(1).term(start, end).appoint())
            .then_events([post(1).term(start, end).appointed()]);
    }
}

#[test]
fn a_post_id_cannot_be_appointed_twice() {
    given(world_and([post(1).appointed()]))
        .when(post(1).of(2).at(2).serving(BAOTOU).appoint())
        .then_rejects(AlreadyExists, "ALREADY_EXISTS");
}

#[test]
fn a_serving_city_outside_the_region_is_an_invalid_argument() {
    let r = given(world())
        .when(post(1).serving(ORDOS).appoint())
        .then_rejects(InvalidArgument, "CITY_OUTSIDE_REGION");
    assert_eq!(
        r.to_string(),
        "serving_city: city 150600 is not in the region (150100, 150200)"
    );
}

#[test]
fn a_term_cannot_end_before_it_starts() {
    let r = given(world())
        .when(post(1).term("2025-01-01", "2024-12-31").appoint())
        .then_rejects(InvalidArgument, "TERM_REVERSED");
    assert_eq!(
        r.to_string(),
        "the term ends on 2024-12-31, before it starts on 2025-01-01"
    );
}

#[test]
fn a_term_cannot_last_more_than_three_years() {
    let r = given(world())
        .when(post(1).term("2025-01-01", "2028-01-01").appoint())
        .then_rejects(InvalidArgument, "TERM_TOO_LONG");
    assert_eq!(
        r.to_string(),
        "the term 2025-01-01 to 2028-01-01 is longer than 36 months; it may last until 2027-12-31"
    );
}

#[test]
fn the_term_limit_of_a_non_default_policy_is_honoured() {
    let policy = Policy {
        max_term_months: 12,
        ..Policy::default()
    };
    given(world())
        .under(policy.clone())
        .when(post(1).term("2025-01-01", "2025-12-31").appoint())
        .then_accepts();
    let r = given(world())
        .under(policy)
        .when(post(1).term("2025-01-01", "2026-01-01").appoint())
        .then_rejects(InvalidArgument, "TERM_TOO_LONG");
    assert!(r
        .to_string()
        .contains("longer than 12 months; it may last until 2025-12-31"));
}

#[test]
fn a_suspended_commissioner_cannot_be_appointed() {
    let r = given(world_and([suspended(1)]))
        .when(post(1).appoint())
        .then_rejects(RuleViolated, "COMMISSIONER_NOT_ACTIVE");
    assert_eq!(
        r.to_string(),
        "commissioner 张涛 is suspended; only an active commissioner can be appointed"
    );
}

#[test]
fn a_retired_commissioner_cannot_be_appointed() {
    given(world_and([retired(1, "2025-01-31")]))
        .when(post(1).term("2024-01-01", "2024-12-31").appoint())
        .then_rejects(RuleViolated, "COMMISSIONER_NOT_ACTIVE");
}

#[test]
fn a_post_must_serve_a_city_its_workstation_serves() {
    let r = given(world())
        .when(post(1).at(2).serving(HOHHOT).appoint())
        .then_rejects(RuleViolated, "CITY_NOT_SERVED");
    assert_eq!(
        r.to_string(),
        "workstation 稀土科技特派员工作站 does not serve city 150100; it serves 150200"
    );
}

#[test]
fn a_withdrawn_city_takes_no_new_posts() {
    given(world_and([service_withdrawn(1, BAOTOU, "2025-01-31")]))
        .when(
            post(1)
                .serving(BAOTOU)
                .term("2025-06-01", "2025-12-31")
                .appoint(),
        )
        .then_rejects(RuleViolated, "CITY_NOT_SERVED");
}

/// Each load rule with the history that fills it and the post one too many,
/// all on 2025: (rule, history, new post, message).
fn one_too_many() -> Vec<(&'static str, Vec<Event>, PostSpec, String)> {
    vec![
        (
            "POST_LIMIT_EXCEEDED",
            world_and([
                post(1).appointed(),
                post(2).serving(BAOTOU).appointed(),
                post(3).at(2).serving(BAOTOU).appointed(),
            ]),
            post(4).at(3).hours(1).term("2025-06-01", "2025-06-30"),
            "commissioner 张涛 would hold 4 posts on 2025-06-01; the limit is 3".into(),
        ),
        (
            "HOURS_OVER_LIMIT",
            world_and([post(1).hours(60).appointed()]),
            post(2)
                .at(2)
                .serving(BAOTOU)
                .hours(36)
                .term("2025-03-01", "2025-06-30"),
            "commissioner 张涛 would hold 96 hours/month on 2025-03-01; the limit is 80".into(),
        ),
        (
            "CAPACITY_EXCEEDED",
            world_with_capacity(2)
                .into_iter()
                .chain([
                    post(1).appointed(),
                    post(2).of(2).serving(BAOTOU).appointed(),
                ])
                .collect(),
            post(3).of(3).term("2025-12-31", "2026-12-31"),
            "workstation 乳业科技特派员工作站 would run 3 posts on 2025-12-31; its capacity is 2"
                .into(),
        ),
        (
            "DUPLICATE_POST",
            world_and([post(1).hours(10).appointed()]),
            post(2).hours(10).term("2025-07-01", "2026-06-30"),
            format!(
                "commissioner 张涛 already holds post {} at workstation 乳业科技特派员工作站 \
                 for city 150100 on 2025-07-01; terms of such posts may not overlap",
                pid(1)
            ),
        ),
    ]
}

#[test]
fn a_new_post_over_a_load_limit_is_refused_naming_the_rule_the_day_and_the_numbers() {
    for (rule, history, new_post, message) in one_too_many() {
        let r = given(history)
            .when(new_post.appoint())
            .then_rejects(RuleViolated, rule);
        assert_eq!(r.to_string(), message);
    }
}

#[test]
fn a_post_over_the_hour_limit_on_its_own_is_refused() {
    let r = given(world())
        .when(post(1).hours(81).appoint())
        .then_rejects(RuleViolated, "HOURS_OVER_LIMIT");
    assert_eq!(
        r.to_string(),
        "commissioner 张涛 would hold 81 hours/month on 2025-01-01; the limit is 80"
    );
}

#[test]
fn exactly_the_limits_are_allowed() {
    given(world_and([
        post(1).hours(30).appointed(),
        post(2).serving(BAOTOU).hours(30).appointed(),
    ]))
    .when(post(3).at(2).serving(BAOTOU).hours(20).appoint())
    .then_accepts();
    given(
        world_with_capacity(2)
            .into_iter()
            .chain([post(1).appointed()]),
    )
    .when(post(2).of(2).appoint())
    .then_accepts();
}

#[test]
fn the_limits_of_a_non_default_policy_are_honoured() {
    let strict = Policy {
        max_posts_per_commissioner: 1,
        max_hours_per_month: 30,
        ..Policy::default()
    };
    let r = given(world_and([post(1).hours(10).appointed()]))
        .under(strict.clone())
        .when(post(2).at(2).serving(BAOTOU).hours(10).appoint())
        .then_rejects(RuleViolated, "POST_LIMIT_EXCEEDED");
    assert_eq!(
        r.to_string(),
        "commissioner 张涛 would hold 2 posts on 2025-01-01; the limit is 1"
    );
    let r = given(world())
        .under(strict)
        .when(post(1).hours(31).appoint())
        .then_rejects(RuleViolated, "HOURS_OVER_LIMIT");
    assert_eq!(
        r.to_string(),
        "commissioner 张涛 would hold 31 hours/month on 2025-01-01; the limit is 30"
    );

    let lenient = Policy {
        max_posts_per_commissioner: 5,
        max_hours_per_month: 120,
        ..Policy::default()
    };
    given(world_and([
        post(1).hours(60).appointed(),
        post(2).serving(BAOTOU).appointed(),
        post(3).at(2).serving(BAOTOU).appointed(),
    ]))
    .under(lenient)
    .when(post(4).at(3).appoint())
    .then_accepts();
}

#[test]
fn a_post_next_year_does_not_block_a_post_this_year() {
    given(world_and([post(1)
        .at(2)
        .serving(BAOTOU)
        .hours(60)
        .term("2026-01-01", "2026-12-31")
        .appointed()]))
    .when(post(2).hours(40).appoint())
    .then_accepts();
}

#[test]
fn a_post_next_year_blocks_a_post_overlapping_next_year() {
    let r = given(world_and([post(1)
        .at(2)
        .serving(BAOTOU)
        .hours(60)
        .term("2026-01-01", "2026-12-31")
        .appointed()]))
    .when(post(2).hours(40).term("2025-07-01", "2026-03-31").appoint())
    .then_rejects(RuleViolated, "HOURS_OVER_LIMIT");
    assert_eq!(
        r.to_string(),
        "commissioner 张涛 would hold 100 hours/month on 2026-01-01; the limit is 80"
    );
}

#[test]
fn the_rejection_names_the_first_day_over_the_limit() {
    let r = given(world_and([
        post(1)
            .at(2)
            .serving(BAOTOU)
            .hours(20)
            .term("2025-01-01", "2025-12-31")
            .appointed(),
        post(2)
            .at(3)
            .hours(20)
            .term("2025-09-15", "2025-10-15")
            .appointed(),
        post(3)
            .serving(BAOTOU)
            .hours(20)
            .term("2025-10-01", "2025-11-30")
            .appointed(),
    ]))
    .when(post(4).hours(10).appoint())
    .then_rejects(RuleViolated, "POST_LIMIT_EXCEEDED");
    assert_eq!(
        r.to_string(),
        "commissioner 张涛 would hold 4 posts on 2025-10-01; the limit is 3"
    );
}

/// For each load rule: a history in which post `ending` ends on `last_day`,
/// and a new post starting 2025-07-01 that would break the rule if the two
/// overlapped.
struct BackToBack {
    rule: &'static str,
    history: Vec<Event>,
    ending: u128,
    next: PostSpec,
}

fn back_to_back(last_day: &str) -> Vec<BackToBack> {
    let first_half = |spec: PostSpec| spec.term("2025-01-01", last_day).appointed();
    let second_half = |spec: PostSpec| spec.term("2025-07-01", "2025-12-31");
    vec![
        BackToBack {
            rule: "POST_LIMIT_EXCEEDED",
            history: world_and([
                post(1).appointed(),
                post(2).serving(BAOTOU).appointed(),
                first_half(post(3).at(2).serving(BAOTOU)),
            ]),
            ending: 3,
            next: second_half(post(4).at(3)),
        },
        BackToBack {
            rule: "HOURS_OVER_LIMIT",
            history: world_and([first_half(post(1).hours(60))]),
            ending: 1,
            next: second_half(post(2).at(2).serving(BAOTOU).hours(40)),
        },
        BackToBack {
            rule: "CAPACITY_EXCEEDED",
            history: world_with_capacity(1)
                .into_iter()
                .chain([first_half(post(1))])
                .collect(),
            ending: 1,
            next: second_half(post(2).of(2)),
        },
        BackToBack {
            rule: "DUPLICATE_POST",
            history: world_and([first_half(post(1))]),
            ending: 1,
            next: second_half(post(2)),
        },
    ]
}

#[test]
fn a_term_ending_the_day_before_another_starts_does_not_overlap_it() {
    for case in back_to_back("2025-06-30") {
        given(case.history)
            .when(case.next.appoint())
            .then_events([case.next.appointed()]);
    }
}

#[test]
fn a_term_ending_on_the_day_another_starts_overlaps_it() {
    for case in back_to_back("2025-07-01") {
        let r = given(case.history)
            .when(case.next.appoint())
            .then_rejects(RuleViolated, case.rule);
        assert!(r.to_string().contains("on 2025-07-01"), "{r}");
    }
}

#[test]
fn an_extension_is_refused_where_a_load_rule_breaks_on_the_added_days() {
    for case in back_to_back("2025-06-30") {
        let history = case.history.into_iter().chain([case.next.appointed()]);
        let r = given(history)
            .when(extend_term(case.ending, "2025-07-01"))
            .then_rejects(RuleViolated, case.rule);
        assert!(r.to_string().contains("on 2025-07-01"), "{r}");
    }
}

#[test]
fn an_ended_post_counts_only_until_its_last_day() {
    let history = world_and([
        post(1).hours(60).appointed(),
        post_ended(1, "2025-06-30", "project finished"),
    ]);
    given(history.clone())
        .when(post(2).hours(40).term("2025-07-01", "2025-12-31").appoint())
        .then_accepts();
    let r = given(history)
        .when(
            post(2)
                .at(2)
                .serving(BAOTOU)
                .hours(40)
                .term("2025-06-01", "2025-12-31")
                .appoint(),
        )
        .then_rejects(RuleViolated, "HOURS_OVER_LIMIT");
    assert!(
        r.to_string().contains("100 hours/month on 2025-06-01"),
        "{r}"
    );
}

#[test]
fn a_post_ended_before_it_started_never_counts() {
    given(world_with_capacity(1).into_iter().chain([
        post(1).term("2026-01-01", "2026-12-31").appointed(),
        post_ended(1, "2025-12-31", "cancelled"),
    ]))
    .when(post(2).of(2).term("2026-01-01", "2026-12-31").appoint())
    .then_accepts();
}

#[test]
fn a_term_can_be_extended() {
    let state = given(world_and([post(1).appointed()]))
        .when(extend_term(1, "2026-06-30"))
        .then_events([term_extended(1, "2026-06-30", "2025-12-31")]);
    assert_eq!(state.post(pid(1)).unwrap().end, d("2026-06-30"));
}

#[test]
fn an_extension_checks_only_the_days_it_adds() {
    // Both posts were appointed under a laxer policy: together they exceed
    // 80 hours in the first half of 2025, which the extension does not add.
    given(world_and([
        post(1)
            .hours(60)
            .term("2025-01-01", "2025-06-30")
            .appointed(),
        post(2)
            .at(2)
            .serving(BAOTOU)
            .hours(60)
            .term("2025-01-01", "2025-06-30")
            .appointed(),
    ]))
    .when(extend_term(1, "2025-12-31"))
    .then_events([term_extended(1, "2025-12-31", "2025-06-30")]);
}

#[test]
fn an_extension_into_a_future_post_is_checked_on_the_days_they_share() {
    let history = world_and([
        post(1)
            .hours(50)
            .term("2025-01-01", "2025-06-30")
            .appointed(),
        post(2)
            .at(2)
            .serving(BAOTOU)
            .hours(40)
            .term("2025-10-01", "2025-12-31")
            .appointed(),
    ]);
    given(history.clone())
        .when(extend_term(1, "2025-09-30"))
        .then_accepts();
    let r = given(history)
        .when(extend_term(1, "2025-10-31"))
        .then_rejects(RuleViolated, "HOURS_OVER_LIMIT");
    assert_eq!(
        r.to_string(),
        "commissioner 张涛 would hold 90 hours/month on 2025-10-01; the limit is 80"
    );
}

#[test]
fn an_extension_must_move_the_end_later() {
    for requested in ["2025-12-31", "2025-06-30"] {
        let r = given(world_and([post(1).appointed()]))
            .when(extend_term(1, requested))
            .then_rejects(InvalidArgument, "EXTENSION_NOT_LATER");
        assert_eq!(
            r.to_string(),
            format!(
                "post {} already runs until 2025-12-31; the new end {requested} must be later",
                pid(1)
            )
        );
    }
}

#[test]
fn an_extension_cannot_make_the_term_longer_than_three_years() {
    let r = given(world_and([post(1).appointed()]))
        .when(extend_term(1, "2028-01-01"))
        .then_rejects(InvalidArgument, "TERM_TOO_LONG");
    assert!(
        r.to_string().contains("it may last until 2027-12-31"),
        "{r}"
    );
}

#[test]
fn an_ended_post_can_be_neither_extended_nor_ended_again() {
    let commands: Vec<Command> = vec![
        extend_term(1, "2026-06-30").into(),
        end_post(1, "2025-05-31").into(),
    ];
    for command in commands {
        let r = given(world_and([
            post(1).appointed(),
            post_ended(1, "2025-06-30", "project finished"),
        ]))
        .when(command)
        .then_rejects(RuleViolated, "POST_ALREADY_ENDED");
        assert_eq!(
            r.to_string(),
            format!("post {} was ended (its last day is 2025-06-30)", pid(1))
        );
    }
}

#[test]
fn an_extension_needs_an_active_commissioner_an_open_workstation_and_a_served_city() {
    // Each post ran out before its commissioner retired, its workstation
    // closed or its city was withdrawn, so none of those ended it.
    let expired = |spec: PostSpec| spec.term("2024-01-01", "2024-12-31").appointed();
    let cases = [
        (
            vec![suspended(1)],
            post(1),
            "COMMISSIONER_NOT_ACTIVE",
            "commissioner 张涛 is suspended; only an active commissioner can have a term extended",
        ),
        (
            vec![retired(1, "2025-01-31")],
            post(1),
            "COMMISSIONER_NOT_ACTIVE",
            "commissioner 张涛 is retired; only an active commissioner can have a term extended",
        ),
        (
            vec![closed(1, "2025-01-31")],
            post(1),
            "WORKSTATION_NOT_OPEN",
            "workstation 乳业科技特派员工作站 is closed; only an open workstation can extend a term",
        ),
        (
            vec![service_withdrawn(1, BAOTOU, "2025-01-31")],
            post(1).serving(BAOTOU),
            "CITY_NOT_SERVED",
            "workstation 乳业科技特派员工作站 does not serve city 150200; it serves 150100",
        ),
    ];
    for (later, spec, rule, message) in cases {
        let history = world_and([expired(spec)].into_iter().chain(later));
        let r = given(history)
            .when(extend_term(1, "2025-12-31"))
            .then_rejects(RuleViolated, rule);
        assert_eq!(r.to_string(), message);
    }
}

#[test]
fn a_post_can_be_ended_early() {
    let state = given(world_and([post(1).appointed()]))
        .when(end_post(1, "2025-06-30"))
        .then_events([post_ended(1, "2025-06-30", "project finished")]);
    let p = state.post(pid(1)).unwrap();
    assert!(p.covers(d("2025-06-30")) && !p.covers(d("2025-07-01")));
}

#[test]
fn a_post_can_be_ended_on_its_last_day_or_before_it_starts() {
    for end in ["2025-12-31", "2024-12-31"] {
        given(world_and([post(1).appointed()]))
            .when(end_post(1, end))
            .then_events([post_ended(1, end, "project finished")]);
    }
}

#[test]
fn a_post_cannot_be_ended_after_its_term() {
    let r = given(world_and([post(1).appointed()]))
        .when(end_post(1, "2026-01-01"))
        .then_rejects(InvalidArgument, "END_AFTER_TERM");
    assert_eq!(
        r.to_string(),
        format!(
            "post {} runs only until 2025-12-31; it cannot end later, on 2026-01-01",
            pid(1)
        )
    );
}

#[test]
fn every_command_on_an_unknown_post_is_not_found() {
    let commands: Vec<Command> = vec![
        extend_term(9, "2026-06-30").into(),
        end_post(9, "2025-06-30").into(),
        service(1).through(9).record().into(),
    ];
    for command in commands {
        let r = given(world_and([post(1).appointed()]))
            .when(command)
            .then_rejects(NotFound, "NOT_FOUND");
        assert_eq!(r, Rejection::NotFound(pid(9).stream()));
    }
}
