//! The candidates view and its promise: over random histories, every
//! candidate can be appointed at every workstation listed for them, at no
//! other, and every active commissioner with a wanted tag who was left out
//! is refused everywhere — judged by `decide` itself.

use proptest::prelude::*;

use crate::domain::{
    decide, evolve, AppointPost, Capacity, ChangeWorkstationCapacity, CloseWorkstation, Command,
    EndPost, EstablishWorkstation, ExtendPostTerm, ExtendWorkstationService, Policy,
    RegisterCommissioner, ReinstateCommissioner, RetireCommissioner, State, SuspendCommissioner,
    UpdateCommissionerProfile,
};

use super::*;

const TAGS: [&str; 3] = ["dairy", "rare earth", "seeds"];
const CITIES: [CityCode; 2] = [CityCode::HOHHOT, CityCode::BAOTOU];
const COMMISSIONERS: u128 = 5;
const WORKSTATIONS: u128 = 3;

/// One random step of a history; `decide` judges it, and only what it
/// accepts enters the history.
#[derive(Debug, Clone)]
enum Step {
    Appoint {
        commissioner: u128,
        workstation: u128,
        city: usize,
        hours: u32,
        start: u32,
        months: u32,
    },
    Extend {
        post: u128,
        months: u32,
    },
    End {
        post: u128,
        after_days: u32,
    },
    Retire(u128, u32),
    Suspend(u128),
    Reinstate(u128),
    /// New expertise: indices into `TAGS`.
    Retag(u128, Vec<usize>),
    Capacity(u128, u32),
    Close(u128, u32),
}

/// A day `n` days after 2025-01-01.
fn day(n: u32) -> Date {
    date("2025-01-01") + chrono::Days::new(u64::from(n))
}

fn months_after(start: Date, months: u32) -> Date {
    let end = start
        .checked_add_months(chrono::Months::new(months))
        .unwrap_or(start);
    end.pred_opt().unwrap_or(end)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (1..=COMMISSIONERS, 1..=WORKSTATIONS, 0usize..2, 5u32..=60, 0u32..900, 1u32..=24)
            .prop_map(|(commissioner, workstation, city, hours, start, months)| Step::Appoint {
                commissioner, workstation, city, hours, start, months,
            }),
        1 => (1u128..=12, 1u32..=12).prop_map(|(post, months)| Step::Extend { post, months }),
        1 => (1u128..=12, 0u32..400).prop_map(|(post, after_days)| Step::End { post, after_days }),
        1 => (1..=COMMISSIONERS, 0u32..900).prop_map(|(n, d)| Step::Retire(n, d)),
        1 => (1..=COMMISSIONERS).prop_map(Step::Suspend),
        1 => (1..=COMMISSIONERS).prop_map(Step::Reinstate),
        1 => (1..=COMMISSIONERS, prop::collection::vec(0usize..3, 0..3))
            .prop_map(|(n, tags)| Step::Retag(n, tags)),
        1 => (1..=WORKSTATIONS, 1u32..=4).prop_map(|(n, c)| Step::Capacity(n, c)),
        1 => (1..=WORKSTATIONS, 0u32..900).prop_map(|(n, d)| Step::Close(n, d)),
    ]
}

/// The commissioners (each with a tag subset), the workstations (Hohhot
/// ones serving Baotou too), then the steps' commands.
fn commands(tag_sets: &[Vec<usize>], capacities: &[u32], steps: &[Step]) -> Vec<Command> {
    let mut out: Vec<Command> = Vec::new();
    for (i, tags) in (1..).zip(tag_sets) {
        out.push(Command::RegisterCommissioner(RegisterCommissioner {
            commissioner_id: c(i),
            name: text(&format!("commissioner {i}")),
            home_city: CITIES[usize::try_from(i % 2).unwrap_or(0)],
            employer: text("university"),
            kind: CommissionerKind::University,
            expertise: tags.iter().map(|t| text(TAGS[*t])).collect(),
        }));
    }
    for (i, capacity) in (1..).zip(capacities) {
        let host = CITIES[usize::try_from(i % 2).unwrap_or(0)];
        out.push(Command::EstablishWorkstation(EstablishWorkstation {
            workstation_id: w(i),
            name: text(&format!("workstation {i}")),
            host_org: text("host"),
            host_city: host,
            capacity: Capacity::parse("capacity", *capacity).unwrap(),
            fields: vec![],
        }));
        if host == CityCode::HOHHOT {
            out.push(Command::ExtendWorkstationService(
                ExtendWorkstationService {
                    workstation_id: w(i),
                    city: CityCode::BAOTOU,
                },
            ));
        }
    }
    let mut next_post = 0;
    for s in steps {
        out.push(match *s {
            Step::Retag(n, ref tags) => {
                Command::UpdateCommissionerProfile(UpdateCommissionerProfile {
                    commissioner_id: c(n),
                    name: None,
                    employer: None,
                    expertise: Some(tags.iter().map(|t| text(TAGS[*t])).collect()),
                })
            }
            Step::Reinstate(n) => Command::ReinstateCommissioner(ReinstateCommissioner {
                commissioner_id: c(n),
                reason: text("back"),
            }),
            Step::Appoint {
                commissioner,
                workstation,
                city,
                hours,
                start,
                months,
            } => {
                next_post += 1;
                Command::AppointPost(AppointPost {
                    post_id: p(next_post),
                    commissioner_id: c(commissioner),
                    workstation_id: w(workstation),
                    serving_city: CITIES[city],
                    role: text("adviser"),
                    hours_per_month: HoursPerMonth::parse("hours", hours).unwrap(),
                    start_date: day(start),
                    end_date: months_after(day(start), months),
                    demand_id: None,
                })
            }
            Step::Extend { post, months } => Command::ExtendPostTerm(ExtendPostTerm {
                post_id: p(post),
                end_date: months_after(day(0), 24 + months),
            }),
            Step::End { post, after_days } => Command::EndPost(EndPost {
                post_id: p(post),
                end_date: day(after_days),
                reason: text("done"),
            }),
            Step::Retire(n, d) => Command::RetireCommissioner(RetireCommissioner {
                commissioner_id: c(n),
                effective_date: Some(day(d)),
            }),
            Step::Suspend(n) => Command::SuspendCommissioner(SuspendCommissioner {
                commissioner_id: c(n),
                reason: text("leave"),
            }),
            Step::Capacity(n, capacity) => {
                Command::ChangeWorkstationCapacity(ChangeWorkstationCapacity {
                    workstation_id: w(n),
                    capacity: Capacity::parse("capacity", capacity).unwrap(),
                })
            }
            Step::Close(n, d) => Command::CloseWorkstation(CloseWorkstation {
                workstation_id: w(n),
                effective_date: Some(day(d)),
            }),
        });
    }
    out
}

/// The accepted events of `commands`, decided in order on 2025-01-01, and
/// the state they make.
fn history_of(commands: &[Command], policy: &Policy) -> (Vec<Event>, State) {
    let mut state = State::default();
    let mut events = Vec::new();
    for command in commands {
        if let Ok(accepted) = decide(&state, policy, command, day(0)) {
            for event in accepted {
                evolve(&mut state, &event);
                events.push(event);
            }
        }
    }
    (events, state)
}

/// Appointing commissioner `who` at `at` for the criteria, as `decide`
/// would judge it now.
fn appoint(state: &State, policy: &Policy, who: &str, at: &str, q: &pb::CandidatesQuery) -> bool {
    let parse = |v: &str| Uuid::parse_str(v).unwrap();
    let command = Command::AppointPost(AppointPost {
        post_id: p(999),
        commissioner_id: CommissionerId(parse(who)),
        workstation_id: WorkstationId(parse(at)),
        serving_city: CityCode::parse("city", &q.city).unwrap(),
        role: text("candidate"),
        hours_per_month: HoursPerMonth::parse("hours", q.hours_per_month).unwrap(),
        start_date: date(&q.start_date),
        end_date: date(&q.end_date),
        demand_id: None,
    });
    decide(state, policy, &command, day(0)).is_ok()
}

/// A random world and criteria.
#[derive(Debug, Clone)]
struct Case {
    tag_sets: Vec<Vec<usize>>,
    capacities: Vec<u32>,
    steps: Vec<Step>,
    wanted: Vec<usize>,
    city: usize,
    hours: u32,
    start: u32,
    months: u32,
    /// Also checked as of this share (per cent) of the history's events.
    earlier_percent: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(
            prop::collection::vec(0usize..3, 0..3),
            COMMISSIONERS as usize,
        ),
        prop::collection::vec(1u32..=3, WORKSTATIONS as usize),
        prop::collection::vec(step(), 0..40),
        (
            prop::collection::vec(0usize..3, 1..3),
            0usize..2,
            5u32..=70,
            0u32..800,
            1u32..=18,
        ),
        1usize..100,
    )
        .prop_map(
            |(
                tag_sets,
                capacities,
                steps,
                (wanted, city, hours, start, months),
                earlier_percent,
            )| Case {
                tag_sets,
                capacities,
                steps,
                wanted,
                city,
                hours,
                start,
                months,
                earlier_percent,
            },
        )
}

/// What a case exercised, so the generator is shown to reach every kind
/// of answer.
#[derive(Debug, Default)]
struct Seen {
    seats_taken: u32,
    seats_refused: u32,
    left_out: u32,
}

/// Checks the promise on one case against `decide`: at the head, and as
/// of an earlier position against the state of the events up to it.
fn check(case: &Case, seen: &mut Seen) -> Result<(), TestCaseError> {
    let policy = Policy::default();
    let (events, state) = history_of(
        &commands(&case.tag_sets, &case.capacities, &case.steps),
        &policy,
    );
    let mut f = fixture();
    f.projection.apply_batch(&envelopes(&events)).unwrap();
    check_at(case, seen, &f, &state, 0)?;
    let earlier = events.len() * case.earlier_percent / 100;
    if earlier > 0 {
        let mut then = State::default();
        for event in &events[..earlier] {
            evolve(&mut then, event);
        }
        check_at(case, seen, &f, &then, earlier as u64)?;
    }
    Ok(())
}

/// The promise at `position` (0: the head), where `state` is the state
/// the events up to it make.
fn check_at(
    case: &Case,
    seen: &mut Seen,
    f: &Fixture,
    state: &State,
    position: u64,
) -> Result<(), TestCaseError> {
    let policy = Policy::default();
    let city = CITIES[case.city];
    let wanted: std::collections::BTreeSet<&str> = case.wanted.iter().map(|t| TAGS[*t]).collect();
    let q = pb::CandidatesQuery {
        expertise: wanted.iter().map(|t| (*t).to_owned()).collect(),
        city: city.to_string(),
        hours_per_month: case.hours,
        start_date: day(case.start).to_string(),
        end_date: months_after(day(case.start), case.months).to_string(),
        as_of_position: position,
        page_size: 500,
        ..Default::default()
    };
    let page = f.views.candidates(&q, &policy).unwrap();
    prop_assert!(page.next_page_token.is_empty());

    let open_serving: Vec<String> = state
        .workstations()
        .filter(|(_, ws)| {
            ws.status == crate::domain::WorkstationStatus::Open && ws.served.contains(&city)
        })
        .map(|(id, _)| id.to_string())
        .collect();
    for candidate in &page.candidates {
        let listed: Vec<&str> = candidate
            .workstations
            .iter()
            .map(|o| o.workstation_id.as_str())
            .collect();
        for at in &open_serving {
            let accepted = appoint(state, &policy, &candidate.commissioner_id, at, &q);
            prop_assert_eq!(
                accepted,
                listed.contains(&at.as_str()),
                "candidate {} at {}: decide says {}, the view lists {:?}",
                candidate.name,
                at,
                accepted,
                listed
            );
            if accepted {
                seen.seats_taken += 1;
            } else {
                seen.seats_refused += 1;
            }
        }
    }
    for (id, person) in state.commissioners() {
        let eligible = person.status == crate::domain::CommissionerStatus::Active
            && person.expertise.iter().any(|t| wanted.contains(t.as_str()));
        let listed = page
            .candidates
            .iter()
            .any(|c| c.commissioner_id == id.to_string());
        if !eligible {
            prop_assert!(
                !listed,
                "{} is listed but inactive or without a wanted tag",
                person.name
            );
            continue;
        }
        if !listed {
            seen.left_out += 1;
            for at in &open_serving {
                prop_assert!(
                    !appoint(state, &policy, &id.to_string(), at, &q),
                    "{} was left out, but decide accepts them at {}",
                    person.name,
                    at
                );
            }
        }
    }
    Ok(())
}

/// Over a fixed seed, so the run is the same every time and shown to
/// reach seats taken, seats refused and people left out.
#[test]
fn every_candidate_can_take_every_listed_seat_and_no_one_left_out_could_take_any() {
    let seen = std::cell::RefCell::new(Seen::default());
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(
        ProptestConfig {
            cases: 128,
            ..ProptestConfig::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let result = runner.run(&case(), |case| check(&case, &mut seen.borrow_mut()));
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let seen = seen.into_inner();
    assert!(
        seen.seats_taken > 0 && seen.seats_refused > 0 && seen.left_out > 0,
        "{seen:?}"
    );
}

#[test]
fn candidates_are_ranked_by_matched_tags_then_spare_hours_and_carry_their_peaks() {
    let mut events = history();
    // Commissioner 4 in Baotou knows dairy and feed; nothing held.
    events.push(Event::CommissionerRegistered {
        commissioner_id: c(4),
        name: text("Bao Yu"),
        home_city: CityCode::BAOTOU,
        employer: text("Baotou dairy"),
        kind: CommissionerKind::Enterprise,
        expertise: texts(&["dairy", "feed"]),
    });
    let mut f = fixture();
    f.projection.apply_batch(&envelopes(&events)).unwrap();
    let q = pb::CandidatesQuery {
        expertise: vec!["dairy".into(), "feed".into()],
        city: HOHHOT.into(),
        hours_per_month: 10,
        start_date: "2025-04-01".into(),
        end_date: "2025-04-30".into(),
        ..Default::default()
    };
    let page = f.views.candidates(&q, &Policy::default()).unwrap();
    let names: Vec<&str> = page.candidates.iter().map(|c| c.name.as_str()).collect();
    // Wang Min and Bao Yu match both tags; Bao Yu has more hours spare.
    // Li Na (dairy only) last.
    assert_eq!(names, ["Bao Yu", "Wang Min (王敏)", "Li Na"]);
    let wang = &page.candidates[1];
    assert_eq!(
        (
            wang.peak_posts,
            wang.peak_hours_per_month,
            wang.spare_hours_per_month
        ),
        (2, 50, 30)
    );
    assert!(page.candidates[0].cross_city);
    assert!(!wang.cross_city);
}

#[test]
fn bad_candidate_queries_name_the_parameter() {
    let f = fed(26);
    let good = pb::CandidatesQuery {
        expertise: vec!["dairy".into()],
        city: HOHHOT.into(),
        hours_per_month: 10,
        start_date: "2025-04-01".into(),
        end_date: "2025-04-30".into(),
        ..Default::default()
    };
    let cases = [
        (
            pb::CandidatesQuery {
                expertise: vec![],
                ..good.clone()
            },
            "expertise",
        ),
        (
            pb::CandidatesQuery {
                city: "150600".into(),
                ..good.clone()
            },
            "city",
        ),
        (
            pb::CandidatesQuery {
                hours_per_month: 0,
                ..good.clone()
            },
            "hours_per_month",
        ),
        (
            pb::CandidatesQuery {
                end_date: "2025-03-31".into(),
                ..good.clone()
            },
            "end_date",
        ),
        (
            pb::CandidatesQuery {
                demand_id: Uuid::from_u128(7).to_string(),
                ..good.clone()
            },
            "expertise",
        ),
        (
            pb::CandidatesQuery {
                page_token: "3a".into(),
                ..good.clone()
            },
            "page_token",
        ),
    ];
    for (q, want) in cases {
        match f.views.candidates(&q, &Policy::default()) {
            Err(QueryError::InvalidArgument { field, .. }) => assert_eq!(field, want),
            other => panic!("{want}: expected an invalid argument, got {other:?}"),
        }
    }
    let unknown = pb::CandidatesQuery {
        demand_id: Uuid::from_u128(7).to_string(),
        ..Default::default()
    };
    assert!(matches!(
        f.views.candidates(&unknown, &Policy::default()),
        Err(QueryError::NotFound(_))
    ));
}

/// Average satisfaction counts each resolved demand a commissioner's posts
/// served once, as of the asked position, and breaks a tie in spare hours.
#[test]
fn candidates_carry_the_satisfaction_of_the_demands_they_served_as_of_a_position() {
    use super::assessment::{dispatched, resolved, with_year_and};
    // After `with_year`'s 38 events: demand 4, served by Wang Min (post 1)
    // and Li Na (post 3), resolved with 1 at position 42.
    let f = with_year_and(vec![
        submitted(4, CityCode::HOHHOT),
        dispatched(4, p(1)),
        dispatched(4, p(3)),
        resolved(4, 1, "2025-09-01"),
    ]);
    let at = |position: u64| {
        let q = pb::CandidatesQuery {
            expertise: vec!["genomics".into()],
            city: HOHHOT.into(),
            hours_per_month: 10,
            start_date: "2027-01-01".into(),
            end_date: "2027-06-30".into(),
            as_of_position: position,
            ..Default::default()
        };
        let page = f.views.candidates(&q, &Policy::default()).unwrap();
        page.candidates
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.demands_resolved,
                    c.satisfaction_total,
                    c.average_satisfaction,
                )
            })
            .collect::<Vec<_>>()
    };
    let (wang, li) = ("Wang Min (王敏)".to_owned(), "Li Na".to_owned());
    // Before any demand was resolved, the names break the tie.
    assert_eq!(at(31), [(li.clone(), 0, 0, 0.0), (wang.clone(), 0, 0, 0.0)]);
    // Demand 1 went to two of Wang Min's posts: it counts once.
    assert_eq!(at(32), [(wang.clone(), 1, 4, 4.0), (li.clone(), 0, 0, 0.0)]);
    assert_eq!(at(38), [(wang.clone(), 1, 4, 4.0), (li.clone(), 1, 3, 3.0)]);
    // Zhao Lei (demand 2, 5) retired and is no candidate.
    assert_eq!(at(0), [(wang, 2, 5, 2.5), (li, 2, 4, 2.0)]);
}
