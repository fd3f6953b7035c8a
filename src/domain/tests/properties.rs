//! Properties over long random command sequences: every command kind over a
//! small pool of ids, each decided and, when accepted, folded with `evolve`.
//! After every step the load rules are checked day by day by brute force
//! (independently of `load.rs`); at the end the incrementally built state
//! must equal a fresh fold of the accepted events.

use std::collections::{BTreeMap, HashMap};

use chrono::Datelike;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};

use super::*;
use crate::domain::Post;

/// First day commands name; they span about two years from here.
const BASE: &str = "2024-01-01";
const SPAN_DAYS: u32 = 730;
/// `today` starts a year in and moves forward by up to a day per step.
const FIRST_TODAY: u32 = 365;

const COMMISSIONERS: u128 = 4;
const WORKSTATIONS: u128 = 3;
/// Post and service ids drawn at random go up to here.
const MAX_ID: u128 = 40;

/// One command before it meets the state. New post and service ids are
/// mostly the next free one (`None`); commands on posts mostly name an
/// existing post (the `p`th, modulo their number; 0 names an unknown one),
/// with dates relative to its term, so that many of them are accepted.
#[derive(Debug, Clone)]
enum Op {
    Register {
        c: u128,
        home: CityCode,
    },
    Update {
        c: u128,
        name: bool,
        employer: bool,
        expertise: bool,
    },
    Suspend {
        c: u128,
    },
    Reinstate {
        c: u128,
    },
    Retire {
        c: u128,
        effective: Option<u32>,
    },
    Establish {
        w: u128,
        host: CityCode,
        capacity: u32,
    },
    ExtendService {
        w: u128,
        city: CityCode,
    },
    Withdraw {
        w: u128,
        city: CityCode,
        end_posts: bool,
        effective: Option<u32>,
    },
    ChangeCapacity {
        w: u128,
        capacity: u32,
    },
    Close {
        w: u128,
        effective: Option<u32>,
    },
    Appoint {
        p: Option<u128>,
        c: u128,
        w: u128,
        city: CityCode,
        hours: u32,
        start: u32,
        len: i64,
    },
    ExtendTerm {
        p: u128,
        by: i64,
    },
    EndPost {
        p: u128,
        back: i64,
    },
    Record {
        s: Option<u128>,
        p: u128,
        after_start: i64,
        city: CityCode,
    },
}

/// One step: whether the day moves on, then the command.
type Step = (bool, Op);

fn city() -> impl Strategy<Value = CityCode> {
    prop_oneof![9 => Just(HOHHOT), 9 => Just(BAOTOU), 1 => Just(ORDOS)]
}

fn day() -> impl Strategy<Value = u32> {
    0..SPAN_DAYS
}

fn effective() -> impl Strategy<Value = Option<u32>> {
    prop::option::of(day())
}

fn op() -> impl Strategy<Value = Op> {
    let c = || 1..=COMMISSIONERS;
    let w = || 1..=WORKSTATIONS;
    let p = || prop_oneof![20 => 1..=MAX_ID, 1 => Just(0)];
    let new_id = || prop_oneof![6 => Just(None), 1 => (1..=MAX_ID).prop_map(Some)];
    let hours = prop_oneof![3 => 1u32..=25, 1 => 1u32..=80];
    let term_length = prop_oneof![12 => 0i64..400, 1 => -10i64..0, 1 => 1000i64..1200];
    prop_oneof![
        8 => (c(), city()).prop_map(|(c, home)| Op::Register { c, home }),
        4 => (c(), any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(c, name, employer, expertise)| Op::Update { c, name, employer, expertise }),
        2 => c().prop_map(|c| Op::Suspend { c }),
        8 => c().prop_map(|c| Op::Reinstate { c }),
        1 => (c(), effective()).prop_map(|(c, effective)| Op::Retire { c, effective }),
        8 => (w(), city(), 1u32..=4)
            .prop_map(|(w, host, capacity)| Op::Establish { w, host, capacity }),
        8 => (w(), city()).prop_map(|(w, city)| Op::ExtendService { w, city }),
        6 => (w(), city(), any::<bool>(), effective())
            .prop_map(|(w, city, end_posts, effective)| Op::Withdraw { w, city, end_posts, effective }),
        6 => (w(), 1u32..=4).prop_map(|(w, capacity)| Op::ChangeCapacity { w, capacity }),
        1 => (w(), effective()).prop_map(|(w, effective)| Op::Close { w, effective }),
        80 => (new_id(), c(), w(), city(), hours, day(), term_length)
            .prop_map(|(p, c, w, city, hours, start, len)| Op::Appoint { p, c, w, city, hours, start, len }),
        20 => (p(), -5i64..200).prop_map(|(p, by)| Op::ExtendTerm { p, by }),
        12 => (p(), -3i64..300).prop_map(|(p, back)| Op::EndPost { p, back }),
        20 => (new_id(), p(), -5i64..300, city())
            .prop_map(|(s, p, after_start, city)| Op::Record { s, p, after_start, city }),
    ]
}

/// Registers every commissioner and establishes every workstation (a city
/// outside the region now and then leaves one for later), then runs `len`
/// random steps.
fn steps(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Step>> {
    let homes = prop::collection::vec(city(), COMMISSIONERS as usize);
    let hosts = prop::collection::vec((city(), 1u32..=4), WORKSTATIONS as usize);
    let random = prop::collection::vec((any::<bool>(), op()), len);
    (homes, hosts, random).prop_map(|(homes, hosts, random)| {
        let register = (1..).zip(homes).map(|(c, home)| Op::Register { c, home });
        let establish =
            (1..)
                .zip(hosts)
                .map(|(w, (host, capacity))| Op::Establish { w, host, capacity });
        register
            .chain(establish)
            .map(|op| (false, op))
            .chain(random)
            .collect()
    })
}

fn plus(date: Date, days: i64) -> Date {
    date + chrono::Duration::days(days)
}

fn base_plus(days: u32) -> Date {
    plus(d(BASE), i64::from(days))
}

/// The `p`th existing post (modulo their number, in id order) and a date
/// of it; for 0 or when there is none, an unknown post and [`BASE`].
fn existing_post(state: &State, p: u128, date: impl Fn(&Post) -> Date) -> (PostId, Date) {
    let mut posts: Vec<(&PostId, &Post)> = state.posts().collect();
    posts.sort_by_key(|(id, _)| **id);
    if p == 0 || posts.is_empty() {
        return (pid(0), d(BASE));
    }
    let (id, post) = posts[(p as usize) % posts.len()];
    (*id, date(post))
}

/// The command `op` stands for in `state`.
fn command(op: &Op, state: &State) -> Command {
    let at = |off: Option<u32>| off.map(base_plus);
    match *op {
        Op::Register { c, home } => commissioner(c).living_in(home).register().into(),
        Op::Update {
            c,
            name,
            employer,
            expertise,
        } => UpdateCommissionerProfile {
            name: name.then(|| text("新名字")),
            employer: employer.then(|| text("新单位")),
            expertise: expertise.then(|| vec![text("稀土")]),
            ..update_profile(c)
        }
        .into(),
        Op::Suspend { c } => suspend(c).into(),
        Op::Reinstate { c } => reinstate(c).into(),
        Op::Retire { c, effective } => RetireCommissioner {
            commissioner_id: cid(c),
            effective_date: at(effective),
        }
        .into(),
        Op::Establish { w, host, capacity } => workstation(w)
            .in_city(host)
            .capacity(capacity)
            .establish()
            .into(),
        Op::ExtendService { w, city } => extend_service(w, city).into(),
        Op::Withdraw {
            w,
            city,
            end_posts,
            effective,
        } => WithdrawWorkstationService {
            workstation_id: wid(w),
            city,
            end_posts,
            effective_date: at(effective),
        }
        .into(),
        Op::ChangeCapacity { w, capacity } => change_capacity(w, capacity).into(),
        Op::Close { w, effective } => CloseWorkstation {
            workstation_id: wid(w),
            effective_date: at(effective),
        }
        .into(),
        Op::Appoint {
            p,
            c,
            w,
            city,
            hours,
            start,
            len,
        } => {
            let p = p.unwrap_or_else(|| (1..).find(|n| state.post(pid(*n)).is_none()).unwrap_or(0));
            let start = base_plus(start);
            AppointPost {
                start_date: start,
                end_date: plus(start, len),
                ..post(p).of(c).at(w).serving(city).hours(hours).appoint()
            }
            .into()
        }
        Op::ExtendTerm { p, by } => {
            let (post_id, end) = existing_post(state, p, |post| post.end);
            ExtendPostTerm {
                post_id,
                end_date: plus(end, by),
            }
            .into()
        }
        Op::EndPost { p, back } => {
            let (post_id, end) = existing_post(state, p, |post| post.end);
            EndPost {
                post_id,
                end_date: plus(end, -back),
                ..end_post(0, TODAY)
            }
            .into()
        }
        Op::Record {
            s,
            p,
            after_start,
            city,
        } => {
            let (post_id, start) = existing_post(state, p, |post| post.start);
            let s = s.unwrap_or_else(|| (1..).find(|n| !state.has_service(sid(*n))).unwrap_or(0));
            RecordService {
                post_id,
                date: plus(start, after_start),
                ..service(s).for_city(city).record()
            }
            .into()
        }
    }
}

/// The last day `post` serves, computed from its fields alone: the end of
/// its term, or the day it was ended if earlier.
fn last_day(post: &Post) -> Date {
    post.ended_on.map_or(post.end, |last| last.min(post.end))
}

/// A workstation's last capacity change: the day it was made, from which
/// the new capacity holds, and the spans (first and last day numbers) of
/// the workstation's posts at that moment.
///
/// A change checks only the days from then on, so an earlier day may run
/// more posts than the new capacity, but only those already there: a post
/// appointed or extended since was checked against the new capacity. On
/// such a day the workstation runs no more than the larger of the new
/// capacity and what ran that day at the change.
struct CapacityChange {
    from: Date,
    spans: Vec<(i32, i32)>,
}

/// What the run remembers beside the state: each workstation's last
/// capacity change, and the effective dates of retirements and closings.
#[derive(Default)]
struct Model {
    capacity_changed: HashMap<WorkstationId, CapacityChange>,
    retired_on: HashMap<CommissionerId, Date>,
    closed_on: HashMap<WorkstationId, Date>,
}

/// The position of `item` in `list`, added if missing.
fn index_of<T: PartialEq>(list: &mut Vec<T>, item: T) -> usize {
    list.iter().position(|x| *x == item).unwrap_or_else(|| {
        list.push(item);
        list.len() - 1
    })
}

/// Checks the load rules and the duplicate rule on every day from the
/// first day of any post to the last, by brute force: each day, count the
/// posts serving that day per commissioner, workstation and seat.
fn check_every_day(state: &State, policy: &Policy, model: &Model) -> Result<(), TestCaseError> {
    struct Span {
        first: i32,
        last: i32,
        commissioner: usize,
        workstation: usize,
        seat: usize,
        hours: u32,
    }
    let day_number = |date: Date| date.num_days_from_ce();
    let (mut commissioners, mut workstations, mut seats) = (Vec::new(), Vec::new(), Vec::new());
    let spans: Vec<Span> = state
        .posts()
        .map(|(_, p)| Span {
            first: day_number(p.start),
            last: day_number(last_day(p)),
            commissioner: index_of(&mut commissioners, p.commissioner),
            workstation: index_of(&mut workstations, p.workstation),
            seat: index_of(&mut seats, (p.commissioner, p.workstation, p.serving_city)),
            hours: p.hours.get(),
        })
        .collect();
    let limits: Vec<(u32, Option<&CapacityChange>)> = workstations
        .iter()
        .map(|w| {
            let capacity = state.workstation(*w).map_or(0, |w| w.capacity.get());
            (capacity, model.capacity_changed.get(w))
        })
        .collect();
    let first = spans.iter().map(|s| s.first).min().unwrap_or(0);
    let last = spans.iter().map(|s| s.last).max().unwrap_or(-1);

    for day in first..=last {
        let mut posts = vec![0u32; commissioners.len()];
        let mut hours = vec![0u32; commissioners.len()];
        let mut running = vec![0u32; workstations.len()];
        let mut seated = vec![0u32; seats.len()];
        for span in spans.iter().filter(|s| s.first <= day && day <= s.last) {
            posts[span.commissioner] += 1;
            hours[span.commissioner] += span.hours;
            running[span.workstation] += 1;
            seated[span.seat] += 1;
        }
        let date = Date::from_num_days_from_ce_opt(day).unwrap_or(d(BASE));
        for (i, c) in commissioners.iter().enumerate() {
            prop_assert!(
                posts[i] <= policy.max_posts_per_commissioner,
                "commissioner {c} holds {} posts on {date}",
                posts[i]
            );
            prop_assert!(
                hours[i] <= policy.max_hours_per_month,
                "commissioner {c} holds {} hours/month on {date}",
                hours[i]
            );
        }
        for (i, w) in workstations.iter().enumerate() {
            let (capacity, change) = limits[i];
            let allowed = match change {
                Some(change) if day < day_number(change.from) => {
                    let ran = change
                        .spans
                        .iter()
                        .filter(|(first, last)| *first <= day && day <= *last)
                        .count();
                    capacity.max(u32::try_from(ran).unwrap_or(u32::MAX))
                }
                _ => capacity,
            };
            prop_assert!(
                running[i] <= allowed,
                "workstation {w} runs {} posts on {date}; its capacity is {capacity}, \
                 {allowed} allowed that day",
                running[i]
            );
        }
        for (i, seat) in seats.iter().enumerate() {
            prop_assert!(
                seated[i] <= 1,
                "{} posts at seat {seat:?} on {date}",
                seated[i]
            );
        }
    }
    Ok(())
}

/// No post of a retired commissioner or a closed workstation serves after
/// the effective date.
fn check_ended(state: &State, model: &Model) -> Result<(), TestCaseError> {
    for (id, p) in state.posts() {
        if let Some(on) = model.retired_on.get(&p.commissioner) {
            prop_assert!(
                last_day(p) <= *on,
                "post {id} serves after retirement on {on}"
            );
        }
        if let Some(on) = model.closed_on.get(&p.workstation) {
            prop_assert!(last_day(p) <= *on, "post {id} serves after closing on {on}");
        }
    }
    Ok(())
}

/// What a run saw, for the coverage test.
#[derive(Default)]
struct Seen {
    accepted: BTreeMap<&'static str, usize>,
    rejected: BTreeMap<&'static str, usize>,
}

/// Runs `steps` under `policy`, checking the properties after every step.
fn run(steps: &[Step], policy: &Policy, seen: &mut Seen) -> Result<(), TestCaseError> {
    let mut state = State::default();
    let mut model = Model::default();
    let mut history: Vec<Event> = Vec::new();
    let mut today = base_plus(FIRST_TODAY);
    for (advance, op) in steps {
        if *advance {
            today = plus(today, 1);
        }
        let command = command(op, &state);
        // `decide` borrows the state immutably: a rejection cannot change
        // it, so there is nothing to check beyond counting the rule.
        match decide(&state, policy, &command, today) {
            Err(rejection) => {
                *seen.rejected.entry(rejection.rule()).or_default() += 1;
                continue;
            }
            Ok(events) => {
                *seen.accepted.entry(command.name()).or_default() += 1;
                prop_assert!(
                    !events.is_empty(),
                    "{:?} was accepted with no event",
                    command
                );
                prop_assert_eq!(events[0].stream(), command.target());
                for event in &events {
                    evolve(&mut state, event);
                }
                history.extend(events);
            }
        }
        match (&command, history.last()) {
            (Command::ChangeWorkstationCapacity(c), _) => {
                let day_number = |date: Date| date.num_days_from_ce();
                let spans = state
                    .posts()
                    .filter(|(_, p)| p.workstation == c.workstation_id)
                    .map(|(_, p)| (day_number(p.start), day_number(last_day(p))))
                    .collect();
                model
                    .capacity_changed
                    .insert(c.workstation_id, CapacityChange { from: today, spans });
            }
            (Command::RetireCommissioner(c), _) => {
                model
                    .retired_on
                    .insert(c.commissioner_id, c.effective_date.unwrap_or(today));
            }
            (Command::CloseWorkstation(c), _) => {
                model
                    .closed_on
                    .insert(c.workstation_id, c.effective_date.unwrap_or(today));
            }
            (Command::WithdrawWorkstationService(c), _) => {
                let on = c.effective_date.unwrap_or(today);
                for (id, p) in state.posts() {
                    if p.workstation == c.workstation_id && p.serving_city == c.city {
                        prop_assert!(
                            last_day(p) <= on,
                            "post {id} serves a city withdrawn on {on}"
                        );
                    }
                }
            }
            _ => {}
        }
        check_every_day(&state, policy, &model)?;
        check_ended(&state, &model)?;
    }

    let mut refolded = State::default();
    for event in &history {
        evolve(&mut refolded, event);
    }
    prop_assert_eq!(
        refolded,
        state,
        "a fresh fold differs from the incremental state"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_every_rule_on_every_day(steps in steps(200..400)) {
        run(&steps, &Policy::default(), &mut Seen::default())?;
    }

    #[test]
    fn random_command_sequences_keep_the_limits_of_a_strict_policy(steps in steps(200..400)) {
        let policy = Policy {
            max_posts_per_commissioner: 2,
            max_hours_per_month: 40,
            max_term_months: 12,
            ..wider_region()
        };
        run(&steps, &policy, &mut Seen::default())?;
    }
}

/// The generator is only useful if it reaches every command and rule: run
/// a fixed set of sequences and see every command accepted and the load
/// rules refuse at least once.
#[test]
fn the_random_sequences_accept_every_command_and_exercise_the_load_rules() {
    let mut runner = TestRunner::deterministic();
    let strategy = steps(300..301);
    let mut seen = Seen::default();
    for _ in 0..8 {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        run(&steps, &Policy::default(), &mut seen).unwrap();
    }
    let commands = [
        "RegisterCommissioner",
        "UpdateCommissionerProfile",
        "SuspendCommissioner",
        "ReinstateCommissioner",
        "RetireCommissioner",
        "EstablishWorkstation",
        "ExtendWorkstationService",
        "WithdrawWorkstationService",
        "ChangeWorkstationCapacity",
        "CloseWorkstation",
        "AppointPost",
        "ExtendPostTerm",
        "EndPost",
        "RecordService",
    ];
    for name in commands {
        assert!(
            seen.accepted.contains_key(name),
            "{name} never accepted: {:?}",
            seen.accepted
        );
    }
    for rule in [
        "POST_LIMIT_EXCEEDED",
        "HOURS_OVER_LIMIT",
        "CAPACITY_EXCEEDED",
        "DUPLICATE_POST",
        "CAPACITY_BELOW_RUNNING_POSTS",
        "CITY_HAS_POSTS",
    ] {
        assert!(
            seen.rejected.contains_key(rule),
            "{rule} never refused: {:?}",
            seen.rejected
        );
    }
}

proptest! {
    /// `parse_date` reads the digits itself; it must agree with chrono's
    /// format parser on every string of the date's shape, including the
    /// ones naming no day (2026-02-30, month 00) and those out of range.
    #[test]
    fn parse_date_agrees_with_the_format_parser(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}") {
        let ours = crate::domain::parse_date("date", &text).ok();
        let chrono = chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .filter(|d| (crate::domain::MIN_DATE..=crate::domain::MAX_DATE).contains(d));
        prop_assert_eq!(ours, chrono);
    }

    /// Near-valid strings, so that most cases are real dates.
    #[test]
    fn parse_date_agrees_on_plausible_dates(
        y in 1985u32..2205, m in 0u32..14, d in 0u32..33,
    ) {
        let text = format!("{y:04}-{m:02}-{d:02}");
        let ours = crate::domain::parse_date("date", &text).ok();
        let chrono = chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .ok()
            .filter(|d| (crate::domain::MIN_DATE..=crate::domain::MAX_DATE).contains(d));
        prop_assert_eq!(ours, chrono);
    }
}
