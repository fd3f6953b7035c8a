//! Tests of the pure domain: a given/when/then harness, builders with
//! sensible defaults, and one file per aggregate plus random-sequence
//! properties.
//!
//! `given(events)` folds events with `evolve`; `.when(command)` runs `decide`
//! on [`TODAY`] (or the day set with `.on(..)`) under the default policy (or
//! the one set with `.under(..)`); `.then_events(..)` and
//! `.then_rejects(code, rule)` check the outcome.

mod authorize;
mod commissioner;
mod demand;
mod post;
mod properties;
mod service;
mod workstation;

use uuid::Uuid;

use crate::domain::{
    decide, evolve, AppointPost, Capacity, ChangeWorkstationCapacity, CityCode, CloseWorkstation,
    Command, CommissionerId, CommissionerKind, Date, DemandId, DispatchDemand, EndPost,
    EstablishWorkstation, Event, ExtendPostTerm, ExtendWorkstationService, HoursPerMonth, Minutes,
    Policy, PostId, RecordService, RegisterCommissioner, ReinstateCommissioner, RejectCode,
    Rejection, ResolveDemand, RetireCommissioner, Satisfaction, ServiceId, State, SubmitDemand,
    SuspendCommissioner, Text, UpdateCommissionerProfile, WithdrawDemand,
    WithdrawWorkstationService, WorkstationId,
};
use RejectCode::{AlreadyExists, InvalidArgument, NotFound, RuleViolated};

pub(crate) const HOHHOT: CityCode = CityCode::HOHHOT;
pub(crate) const BAOTOU: CityCode = CityCode::BAOTOU;
pub(crate) const ORDOS: CityCode = CityCode::ORDOS;

/// The day every `when` runs on unless told otherwise.
pub(crate) const TODAY: &str = "2025-03-01";

/// A date from `YYYY-MM-DD`.
pub(crate) fn d(s: &str) -> Date {
    s.parse().expect("a valid test date")
}

/// Free text.
pub(crate) fn text(s: &str) -> Text {
    Text::note("test", s).expect("valid test text")
}

pub(crate) fn cid(n: u128) -> CommissionerId {
    CommissionerId(Uuid::from_u128(0xC000 + n))
}

pub(crate) fn wid(n: u128) -> WorkstationId {
    WorkstationId(Uuid::from_u128(0xA000 + n))
}

pub(crate) fn pid(n: u128) -> PostId {
    PostId(Uuid::from_u128(0xB000 + n))
}

pub(crate) fn sid(n: u128) -> ServiceId {
    ServiceId(Uuid::from_u128(0xD000 + n))
}

pub(crate) fn did(n: u128) -> DemandId {
    DemandId(Uuid::from_u128(0xE000 + n))
}

pub(crate) fn capacity(n: u32) -> Capacity {
    Capacity::parse("capacity", n).expect("a valid capacity")
}

pub(crate) fn hours(n: u32) -> HoursPerMonth {
    HoursPerMonth::parse("hours_per_month", n).expect("valid hours")
}

/// The default name of commissioner `n`, quoted in rejections.
pub(crate) fn commissioner_name(n: u128) -> &'static str {
    ["张涛", "李娜", "王强", "赵敏"][(n as usize).saturating_sub(1) % 4]
}

/// The default name of workstation `n`, quoted in rejections.
pub(crate) fn workstation_name(n: u128) -> &'static str {
    [
        "乳业科技特派员工作站",
        "稀土科技特派员工作站",
        "马铃薯科技特派员工作站",
    ][(n as usize).saturating_sub(1) % 3]
}

// ---------------------------------------------------------------- harness

/// A state built from events, waiting for a command.
pub(crate) struct Given {
    state: State,
    policy: Policy,
    today: Date,
}

/// Folds `events` with `evolve` from the empty state.
pub(crate) fn given(events: impl IntoIterator<Item = Event>) -> Given {
    let mut state = State::default();
    for event in events {
        evolve(&mut state, &event);
    }
    Given {
        state,
        policy: Policy::default(),
        today: d(TODAY),
    }
}

impl Given {
    /// Decides under `policy` instead of the default.
    pub(crate) fn under(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Decides on `today` instead of [`TODAY`].
    pub(crate) fn on(mut self, today: &str) -> Self {
        self.today = d(today);
        self
    }

    /// Runs `decide`.
    pub(crate) fn when(self, command: impl Into<Command>) -> Then {
        let command = command.into();
        let result = decide(&self.state, &self.policy, &command, self.today);
        Then {
            state: self.state,
            command,
            result,
        }
    }
}

/// The outcome of a decision.
pub(crate) struct Then {
    state: State,
    command: Command,
    result: Result<Vec<Event>, Rejection>,
}

impl Then {
    /// Asserts the command was accepted with exactly `expected`, and returns
    /// the state with them applied.
    #[track_caller]
    pub(crate) fn then_events(self, expected: impl IntoIterator<Item = Event>) -> State {
        let expected: Vec<Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "events of {:?}", self.command);
                let mut state = self.state;
                for event in &events {
                    evolve(&mut state, event);
                }
                state
            }
            Err(r) => panic!(
                "{} was rejected ({}: {r}), expected {expected:?}",
                self.command.name(),
                r.rule()
            ),
        }
    }

    /// Asserts the command was rejected under `rule` with `code`, and
    /// returns the rejection for a look at its message.
    #[track_caller]
    pub(crate) fn then_rejects(self, code: RejectCode, rule: &str) -> Rejection {
        match self.result {
            Ok(events) => panic!(
                "{} was accepted with {events:?}, expected {rule}",
                self.command.name()
            ),
            Err(r) => {
                assert_eq!(
                    (r.rule(), r.code()),
                    (rule, code),
                    "rejection of {} was: {r}",
                    self.command.name()
                );
                r
            }
        }
    }

    /// Asserts the command was accepted, whatever the events.
    #[track_caller]
    pub(crate) fn then_accepts(self) -> Vec<Event> {
        match self.result {
            Ok(events) => events,
            Err(r) => panic!("{} was rejected ({}: {r})", self.command.name(), r.rule()),
        }
    }
}

macro_rules! into_command {
    ($($name:ident),* $(,)?) => {$(
        impl From<$name> for Command {
            fn from(c: $name) -> Self {
                Command::$name(c)
            }
        }
    )*};
}

into_command!(
    RegisterCommissioner,
    UpdateCommissionerProfile,
    SuspendCommissioner,
    ReinstateCommissioner,
    RetireCommissioner,
    EstablishWorkstation,
    ExtendWorkstationService,
    WithdrawWorkstationService,
    ChangeWorkstationCapacity,
    CloseWorkstation,
    AppointPost,
    ExtendPostTerm,
    EndPost,
    RecordService,
    SubmitDemand,
    DispatchDemand,
    ResolveDemand,
    WithdrawDemand,
);

/// A policy whose region also holds Ordos and Ulanqab.
pub(crate) fn wider_region() -> Policy {
    let mut policy = Policy::default();
    policy.region.extend([CityCode::ORDOS, CityCode::ULANQAB]);
    policy
}

// ---------------------------------------------------------- commissioners

/// A commissioner with defaults: named after `n`, living in Hohhot,
/// employed by a university.
#[derive(Clone)]
pub(crate) struct CommissionerSpec {
    id: CommissionerId,
    name: &'static str,
    home_city: CityCode,
}

pub(crate) fn commissioner(n: u128) -> CommissionerSpec {
    CommissionerSpec {
        id: cid(n),
        name: commissioner_name(n),
        home_city: HOHHOT,
    }
}

impl CommissionerSpec {
    pub(crate) fn living_in(mut self, city: CityCode) -> Self {
        self.home_city = city;
        self
    }

    pub(crate) fn register(&self) -> RegisterCommissioner {
        RegisterCommissioner {
            commissioner_id: self.id,
            name: text(self.name),
            home_city: self.home_city,
            employer: text("内蒙古农业大学"),
            kind: CommissionerKind::University,
            expertise: vec![text("乳业"), text("饲草")],
        }
    }

    pub(crate) fn registered(&self) -> Event {
        let c = self.register();
        Event::CommissionerRegistered {
            commissioner_id: c.commissioner_id,
            name: c.name,
            home_city: c.home_city,
            employer: c.employer,
            kind: c.kind,
            expertise: c.expertise,
        }
    }
}

/// Commissioner `n` with the defaults, registered.
pub(crate) fn registered(n: u128) -> Event {
    commissioner(n).registered()
}

pub(crate) fn suspended(n: u128) -> Event {
    Event::CommissionerSuspended {
        commissioner_id: cid(n),
        reason: text("investigation"),
    }
}

pub(crate) fn retired(n: u128, effective_date: &str) -> Event {
    Event::CommissionerRetired {
        commissioner_id: cid(n),
        effective_date: d(effective_date),
    }
}

/// A profile update that changes nothing yet.
pub(crate) fn update_profile(n: u128) -> UpdateCommissionerProfile {
    UpdateCommissionerProfile {
        commissioner_id: cid(n),
        name: None,
        employer: None,
        expertise: None,
    }
}

pub(crate) fn suspend(n: u128) -> SuspendCommissioner {
    SuspendCommissioner {
        commissioner_id: cid(n),
        reason: text("investigation"),
    }
}

pub(crate) fn reinstate(n: u128) -> ReinstateCommissioner {
    ReinstateCommissioner {
        commissioner_id: cid(n),
        reason: text("cleared"),
    }
}

pub(crate) fn retire(n: u128, effective_date: &str) -> RetireCommissioner {
    RetireCommissioner {
        commissioner_id: cid(n),
        effective_date: Some(d(effective_date)),
    }
}

// ----------------------------------------------------------- workstations

/// A workstation with defaults: named after `n`, in Hohhot, capacity 10.
#[derive(Clone)]
pub(crate) struct WorkstationSpec {
    id: WorkstationId,
    name: &'static str,
    host_city: CityCode,
    capacity: u32,
}

pub(crate) fn workstation(n: u128) -> WorkstationSpec {
    WorkstationSpec {
        id: wid(n),
        name: workstation_name(n),
        host_city: HOHHOT,
        capacity: 10,
    }
}

impl WorkstationSpec {
    pub(crate) fn in_city(mut self, city: CityCode) -> Self {
        self.host_city = city;
        self
    }

    pub(crate) fn capacity(mut self, n: u32) -> Self {
        self.capacity = n;
        self
    }

    pub(crate) fn establish(&self) -> EstablishWorkstation {
        EstablishWorkstation {
            workstation_id: self.id,
            name: text(self.name),
            host_org: text("伊利集团"),
            host_city: self.host_city,
            capacity: capacity(self.capacity),
            fields: vec![text("乳业")],
        }
    }

    pub(crate) fn established(&self) -> Event {
        let c = self.establish();
        Event::WorkstationEstablished {
            workstation_id: c.workstation_id,
            name: c.name,
            host_org: c.host_org,
            host_city: c.host_city,
            capacity: c.capacity,
            fields: c.fields,
        }
    }
}

/// Workstation `n` with the defaults, established.
pub(crate) fn established(n: u128) -> Event {
    workstation(n).established()
}

pub(crate) fn service_extended(n: u128, city: CityCode) -> Event {
    Event::WorkstationServiceExtended {
        workstation_id: wid(n),
        city,
    }
}

pub(crate) fn service_withdrawn(n: u128, city: CityCode, effective_date: &str) -> Event {
    Event::WorkstationServiceWithdrawn {
        workstation_id: wid(n),
        city,
        effective_date: d(effective_date),
    }
}

pub(crate) fn closed(n: u128, effective_date: &str) -> Event {
    Event::WorkstationClosed {
        workstation_id: wid(n),
        effective_date: d(effective_date),
    }
}

pub(crate) fn extend_service(n: u128, city: CityCode) -> ExtendWorkstationService {
    ExtendWorkstationService {
        workstation_id: wid(n),
        city,
    }
}

/// Withdraws `city` on `effective_date`, refusing while posts serve it.
pub(crate) fn withdraw(
    n: u128,
    city: CityCode,
    effective_date: &str,
) -> WithdrawWorkstationService {
    WithdrawWorkstationService {
        workstation_id: wid(n),
        city,
        end_posts: false,
        effective_date: Some(d(effective_date)),
    }
}

/// Withdraws `city` on `effective_date`, ending the posts serving it.
pub(crate) fn withdraw_ending_posts(
    n: u128,
    city: CityCode,
    effective_date: &str,
) -> WithdrawWorkstationService {
    WithdrawWorkstationService {
        end_posts: true,
        ..withdraw(n, city, effective_date)
    }
}

pub(crate) fn change_capacity(n: u128, to: u32) -> ChangeWorkstationCapacity {
    ChangeWorkstationCapacity {
        workstation_id: wid(n),
        capacity: capacity(to),
    }
}

pub(crate) fn close(n: u128, effective_date: &str) -> CloseWorkstation {
    CloseWorkstation {
        workstation_id: wid(n),
        effective_date: Some(d(effective_date)),
    }
}

// ------------------------------------------------------------------ posts

/// A post with defaults: commissioner 1 at workstation 1 serving Hohhot,
/// 20 hours a month, for 2025.
#[derive(Clone)]
pub(crate) struct PostSpec {
    id: PostId,
    commissioner: u128,
    workstation: u128,
    serving_city: CityCode,
    hours: u32,
    start: Date,
    end: Date,
    demand: Option<u128>,
}

pub(crate) fn post(n: u128) -> PostSpec {
    PostSpec {
        id: pid(n),
        commissioner: 1,
        workstation: 1,
        serving_city: HOHHOT,
        hours: 20,
        start: d("2025-01-01"),
        end: d("2025-12-31"),
        demand: None,
    }
}

impl PostSpec {
    pub(crate) fn of(mut self, commissioner: u128) -> Self {
        self.commissioner = commissioner;
        self
    }

    pub(crate) fn at(mut self, workstation: u128) -> Self {
        self.workstation = workstation;
        self
    }

    pub(crate) fn serving(mut self, city: CityCode) -> Self {
        self.serving_city = city;
        self
    }

    pub(crate) fn hours(mut self, n: u32) -> Self {
        self.hours = n;
        self
    }

    pub(crate) fn term(mut self, start: &str, end: &str) -> Self {
        self.start = d(start);
        self.end = d(end);
        self
    }

    /// Appointed for demand `n`, dispatched in the same commit.
    pub(crate) fn for_demand(mut self, n: u128) -> Self {
        self.demand = Some(n);
        self
    }

    pub(crate) fn appoint(&self) -> AppointPost {
        AppointPost {
            post_id: self.id,
            commissioner_id: cid(self.commissioner),
            workstation_id: wid(self.workstation),
            serving_city: self.serving_city,
            role: text("技术顾问"),
            hours_per_month: hours(self.hours),
            start_date: self.start,
            end_date: self.end,
            demand_id: self.demand.map(did),
        }
    }

    pub(crate) fn appointed(&self) -> Event {
        let c = self.appoint();
        Event::PostAppointed {
            post_id: c.post_id,
            commissioner_id: c.commissioner_id,
            workstation_id: c.workstation_id,
            serving_city: c.serving_city,
            role: c.role,
            hours_per_month: c.hours_per_month,
            start_date: c.start_date,
            end_date: c.end_date,
        }
    }
}

pub(crate) fn post_ended(n: u128, end_date: &str, reason: &str) -> Event {
    Event::PostEnded {
        post_id: pid(n),
        end_date: d(end_date),
        reason: text(reason),
    }
}

pub(crate) fn term_extended(n: u128, end_date: &str, previous_end_date: &str) -> Event {
    Event::PostTermExtended {
        post_id: pid(n),
        end_date: d(end_date),
        previous_end_date: d(previous_end_date),
    }
}

pub(crate) fn extend_term(n: u128, end_date: &str) -> ExtendPostTerm {
    ExtendPostTerm {
        post_id: pid(n),
        end_date: d(end_date),
    }
}

pub(crate) fn end_post(n: u128, end_date: &str) -> EndPost {
    EndPost {
        post_id: pid(n),
        end_date: d(end_date),
        reason: text("project finished"),
    }
}

// --------------------------------------------------------------- services

/// A service record with defaults: 90 minutes through post 1 on
/// 2025-02-10 for an enterprise in Hohhot.
#[derive(Clone)]
pub(crate) struct ServiceSpec {
    id: ServiceId,
    post: u128,
    date: Date,
    beneficiary_city: CityCode,
    demand: Option<u128>,
}

pub(crate) fn service(n: u128) -> ServiceSpec {
    ServiceSpec {
        id: sid(n),
        post: 1,
        date: d("2025-02-10"),
        beneficiary_city: HOHHOT,
        demand: None,
    }
}

impl ServiceSpec {
    pub(crate) fn through(mut self, post: u128) -> Self {
        self.post = post;
        self
    }

    pub(crate) fn on(mut self, date: &str) -> Self {
        self.date = d(date);
        self
    }

    pub(crate) fn for_city(mut self, city: CityCode) -> Self {
        self.beneficiary_city = city;
        self
    }

    /// For demand `n`.
    pub(crate) fn for_demand(mut self, n: u128) -> Self {
        self.demand = Some(n);
        self
    }

    pub(crate) fn record(&self) -> RecordService {
        RecordService {
            service_id: self.id,
            post_id: pid(self.post),
            date: self.date,
            minutes: Minutes::parse("minutes", 90).expect("valid minutes"),
            beneficiary: text("蒙牛乳业"),
            beneficiary_city: self.beneficiary_city,
            summary: text("青贮饲料配方指导"),
            demand_id: self.demand.map(did),
        }
    }

    pub(crate) fn recorded(&self) -> Event {
        let c = self.record();
        Event::ServiceRecorded {
            service_id: c.service_id,
            post_id: c.post_id,
            date: c.date,
            minutes: c.minutes,
            beneficiary: c.beneficiary,
            beneficiary_city: c.beneficiary_city,
            summary: c.summary,
            demand_id: c.demand_id,
        }
    }
}

// ---------------------------------------------------------------- demands

/// A demand with defaults: 伊利集团 in Hohhot wants 乳业 or 奶牛育种, 20
/// hours a month, for 2025.
#[derive(Clone)]
pub(crate) struct DemandSpec {
    id: DemandId,
    city: CityCode,
    expertise: Vec<&'static str>,
    start: Date,
    end: Date,
}

pub(crate) fn demand(n: u128) -> DemandSpec {
    DemandSpec {
        id: did(n),
        city: HOHHOT,
        expertise: vec!["奶牛育种", "乳业"],
        start: d("2025-01-01"),
        end: d("2025-12-31"),
    }
}

/// The default title of demand `n`, quoted in rejections.
pub(crate) fn demand_title(n: u128) -> String {
    format!("需求{n}：乳品工艺改进")
}

impl DemandSpec {
    pub(crate) fn in_city(mut self, city: CityCode) -> Self {
        self.city = city;
        self
    }

    pub(crate) fn wanting(mut self, tags: &[&'static str]) -> Self {
        self.expertise = tags.to_vec();
        self
    }

    pub(crate) fn period(mut self, start: &str, end: &str) -> Self {
        self.start = d(start);
        self.end = d(end);
        self
    }

    pub(crate) fn submit(&self) -> SubmitDemand {
        let n = self.id.0.as_u128() - 0xE000;
        SubmitDemand {
            demand_id: self.id,
            title: text(&demand_title(n)),
            enterprise: text("伊利集团"),
            city: self.city,
            expertise: self.expertise.iter().map(|t| text(t)).collect(),
            hours_per_month: hours(20),
            start_date: self.start,
            end_date: self.end,
            description: text("提高乳品发酵稳定性"),
        }
    }

    pub(crate) fn submitted(&self) -> Event {
        let c = self.submit();
        Event::DemandSubmitted {
            demand_id: c.demand_id,
            title: c.title,
            enterprise: c.enterprise,
            city: c.city,
            expertise: c.expertise,
            hours_per_month: c.hours_per_month,
            start_date: c.start_date,
            end_date: c.end_date,
            description: c.description,
        }
    }
}

pub(crate) fn dispatch(demand: u128, post: u128) -> DispatchDemand {
    DispatchDemand {
        demand_id: did(demand),
        post_id: pid(post),
    }
}

pub(crate) fn dispatched(demand: u128, post: u128) -> Event {
    Event::DemandDispatched {
        demand_id: did(demand),
        post_id: pid(post),
    }
}

pub(crate) fn satisfaction(n: u32) -> Satisfaction {
    Satisfaction::parse("satisfaction", n).expect("a valid satisfaction")
}

pub(crate) fn resolve(demand: u128, on: Option<&str>) -> ResolveDemand {
    ResolveDemand {
        demand_id: did(demand),
        outcome: text("发酵稳定性提高"),
        satisfaction: satisfaction(5),
        resolved_on: on.map(d),
    }
}

pub(crate) fn resolved(demand: u128, on: &str) -> Event {
    Event::DemandResolved {
        demand_id: did(demand),
        outcome: text("发酵稳定性提高"),
        satisfaction: satisfaction(5),
        resolved_on: d(on),
    }
}

pub(crate) fn withdraw_demand(demand: u128) -> WithdrawDemand {
    WithdrawDemand {
        demand_id: did(demand),
        reason: text("企业自行解决"),
    }
}

pub(crate) fn demand_withdrawn(demand: u128) -> Event {
    Event::DemandWithdrawn {
        demand_id: did(demand),
        reason: text("企业自行解决"),
    }
}

/// The usual background: commissioners 1 (张涛, Hohhot), 2 (李娜, Baotou)
/// and 3 (王强, Hohhot); workstation 1 in Hohhot also serving Baotou,
/// workstation 2 in Baotou and workstation 3 in Hohhot, each of capacity 10.
pub(crate) fn world() -> Vec<Event> {
    vec![
        registered(1),
        commissioner(2).living_in(BAOTOU).registered(),
        registered(3),
        established(1),
        service_extended(1, BAOTOU),
        workstation(2).in_city(BAOTOU).established(),
        established(3),
    ]
}

/// `world()` with workstation 1's capacity set to `n`.
pub(crate) fn world_with_capacity(n: u32) -> Vec<Event> {
    let mut events = world();
    events[3] = workstation(1).capacity(n).established();
    events
}

/// `world()` followed by `more`.
pub(crate) fn world_and(more: impl IntoIterator<Item = Event>) -> Vec<Event> {
    let mut events = world();
    events.extend(more);
    events
}
