//! Random histories: however they are cut into batches, the views end up
//! with the same rows.

use super::*;

/// One step of a generated history; indices pick among the entities made so
/// far (modulo their number), so every event names something that exists.
#[derive(Debug, Clone)]
enum Step {
    Register(usize),
    Establish(usize),
    ExtendService(usize, usize),
    WithdrawService(usize, usize),
    ChangeCapacity(usize, u32),
    Close(usize),
    Appoint(usize, usize, usize, u32),
    ExtendTerm(usize, u32),
    End(usize, u32),
    Service(usize, u32, u32),
    UpdateProfile(usize),
    Suspend(usize),
    Reinstate(usize),
    Retire(usize),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let i = || 0..64usize;
    prop_oneof![
        3 => i().prop_map(Step::Register),
        2 => i().prop_map(Step::Establish),
        1 => (i(), i()).prop_map(|(a, b)| Step::ExtendService(a, b)),
        1 => (i(), i()).prop_map(|(a, b)| Step::WithdrawService(a, b)),
        1 => (i(), 1..50u32).prop_map(|(a, b)| Step::ChangeCapacity(a, b)),
        1 => i().prop_map(Step::Close),
        5 => (i(), i(), i(), 1..40u32).prop_map(|(a, b, c, d)| Step::Appoint(a, b, c, d)),
        2 => (i(), 1..12u32).prop_map(|(a, b)| Step::ExtendTerm(a, b)),
        2 => (i(), 1..12u32).prop_map(|(a, b)| Step::End(a, b)),
        5 => (i(), 1..28u32, 1..600u32).prop_map(|(a, b, c)| Step::Service(a, b, c)),
        1 => i().prop_map(Step::UpdateProfile),
        1 => i().prop_map(Step::Suspend),
        1 => i().prop_map(Step::Reinstate),
        1 => i().prop_map(Step::Retire),
    ]
}

/// The events of `steps`, skipping a step that names a kind of entity
/// none of which exists yet.
fn generated_history(steps: &[Step]) -> Vec<Event> {
    const CITIES: [CityCode; 4] = [
        CityCode::HOHHOT,
        CityCode::BAOTOU,
        CityCode::ORDOS,
        CityCode::ULANQAB,
    ];
    let city = |i: usize| CITIES[i % CITIES.len()];
    let (mut commissioners, mut workstations, mut posts, mut services) = (0u128, 0u128, 0u128, 0);
    let pick = |i: usize, n: u128| (n > 0).then(|| i as u128 % n + 1);
    let mut events = Vec::new();
    for step in steps {
        let event = match *step {
            Step::Register(home) => {
                commissioners += 1;
                let kind = CommissionerKind::Individual;
                Some(register(c(commissioners), "Name", city(home), kind))
            }
            Step::Establish(host) => {
                workstations += 1;
                Some(establish(w(workstations), "Station", city(host), 5))
            }
            Step::ExtendService(x, to) => {
                pick(x, workstations).map(|x| Event::WorkstationServiceExtended {
                    workstation_id: w(x),
                    city: city(to),
                })
            }
            Step::WithdrawService(x, from) => {
                pick(x, workstations).map(|x| Event::WorkstationServiceWithdrawn {
                    workstation_id: w(x),
                    city: city(from),
                    effective_date: date("2025-06-01"),
                })
            }
            Step::ChangeCapacity(x, capacity) => {
                pick(x, workstations).map(|x| Event::WorkstationCapacityChanged {
                    workstation_id: w(x),
                    capacity: Capacity::parse("capacity", capacity).unwrap(),
                    previous_capacity: Capacity::parse("capacity", 5).unwrap(),
                })
            }
            Step::Close(x) => pick(x, workstations).map(|x| Event::WorkstationClosed {
                workstation_id: w(x),
                effective_date: date("2025-09-30"),
            }),
            Step::Appoint(who, at, serving, hours) => pick(who, commissioners)
                .zip(pick(at, workstations))
                .map(|(who, at)| {
                    posts += 1;
                    let start = format!("2025-{:02}-01", hours % 12 + 1);
                    appoint(
                        p(posts),
                        c(who),
                        w(at),
                        city(serving),
                        hours,
                        &start,
                        "2026-06-30",
                    )
                }),
            Step::ExtendTerm(x, month) => pick(x, posts).map(|x| Event::PostTermExtended {
                post_id: p(x),
                end_date: date(&format!("2026-{month:02}-28")),
                previous_end_date: date("2026-06-30"),
            }),
            Step::End(x, month) => {
                pick(x, posts).map(|x| end_post(p(x), &format!("2025-{month:02}-15")))
            }
            Step::Service(x, day, minutes) => pick(x, posts).map(|x| {
                services += 1;
                let on = format!("2025-05-{day:02}");
                service(s(services), p(x), &on, minutes, city(day as usize))
            }),
            Step::UpdateProfile(x) => {
                pick(x, commissioners).map(|x| Event::CommissionerProfileUpdated {
                    commissioner_id: c(x),
                    name: text("Renamed"),
                    employer: text("Another employer"),
                    expertise: texts(&["feed"]),
                })
            }
            Step::Suspend(x) => pick(x, commissioners).map(|x| Event::CommissionerSuspended {
                commissioner_id: c(x),
                reason: text("audit"),
            }),
            Step::Reinstate(x) => pick(x, commissioners).map(|x| Event::CommissionerReinstated {
                commissioner_id: c(x),
                reason: text("cleared"),
            }),
            Step::Retire(x) => pick(x, commissioners).map(|x| Event::CommissionerRetired {
                commissioner_id: c(x),
                effective_date: date("2025-10-01"),
            }),
        };
        events.extend(event);
    }
    events
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(24))]

    /// However a history is cut into batches, with or without reopening
    /// the views (which empties the cache of current rows) between them,
    /// the views end up with the same rows as when every event is its own
    /// batch, and as when the whole history is one batch, which is how a
    /// rebuild applies it.
    #[test]
    fn batching_never_changes_the_views(
        steps in proptest::collection::vec(step(), 1..80),
        cuts in proptest::collection::vec((1..12usize, proptest::bool::ANY), 1..20),
    ) {
        let all = envelopes(&generated_history(&steps));
        let mut one_by_one = fixture();
        for envelope in &all {
            one_by_one.projection.apply_batch(std::slice::from_ref(envelope)).unwrap();
        }
        let mut whole = fixture();
        whole.projection.apply_batch(&all).unwrap();

        let mut cut = fixture();
        let mut rest = &all[..];
        for (size, reopen) in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            if *reopen {
                cut.projection = Projection::open(&cut.path).unwrap();
            }
            let (batch, after) = rest.split_at((*size).min(rest.len()));
            cut.projection.apply_batch(batch).unwrap();
            rest = after;
        }

        let expected = digests_of(&one_by_one.path);
        proptest::prop_assert_eq!(&digests_of(&whole.path), &expected);
        proptest::prop_assert_eq!(&digests_of(&cut.path), &expected);
    }
}
