//! Who may send what (`authorize`): `given(events).by(actor).when(command)`
//! then `.then_allowed()` or `.then_unauthorized(rule)`; and a property
//! checking the rule against an independent model of who owns what.

use proptest::prelude::*;

use super::*;
use crate::domain::{authorize, Actor};

const HOHHOT_BUREAU: &str = "bureau-150100";
const BAOTOU_BUREAU: &str = "bureau-150200";

/// A state waiting for an actor and a command.
pub(crate) struct By {
    state: State,
    actor: Actor,
}

impl Given {
    /// Names who sends the next command.
    pub(crate) fn by(self, actor: &str) -> By {
        By {
            state: self.state,
            actor: Actor::parse(actor),
        }
    }
}

/// The outcome of an authorization.
pub(crate) struct AuthThen {
    command: Command,
    actor: Actor,
    result: Result<(), Rejection>,
}

impl By {
    /// Runs `authorize`.
    pub(crate) fn when(self, command: impl Into<Command>) -> AuthThen {
        let command = command.into();
        let result = authorize(&self.state, &self.actor, &command);
        AuthThen {
            command,
            actor: self.actor,
            result,
        }
    }
}

impl AuthThen {
    #[track_caller]
    pub(crate) fn then_allowed(self) {
        if let Err(r) = self.result {
            panic!(
                "{} by {} was refused ({}: {r})",
                self.command.name(),
                self.actor,
                r.rule()
            );
        }
    }

    /// Asserts the refusal is `UNAUTHORIZED` under `rule`; returns it for a
    /// look at the message.
    #[track_caller]
    pub(crate) fn then_unauthorized(self, rule: &str) -> Rejection {
        match self.result {
            Ok(()) => panic!(
                "{} by {} was allowed, expected {rule}",
                self.command.name(),
                self.actor
            ),
            Err(r) => {
                assert_eq!((r.rule(), r.code()), (rule, RejectCode::Unauthorized));
                r
            }
        }
    }
}

/// `world()` (commissioners 1 and 3 of Hohhot, 2 of Baotou; workstations 1
/// and 3 in Hohhot, 1 also serving Baotou, 2 in Baotou) with post 1
/// (commissioner 2 of Baotou at workstation 1 of Hohhot, serving Baotou).
fn world_with_cross_city_post() -> Vec<Event> {
    world_and([post(1).of(2).at(1).serving(BAOTOU).appointed()])
}

/// Every command of the contract, each about a target of `world_with_cross_city_post`
/// owned by Hohhot: commissioner 1, workstation 1, post 1.
fn every_command_on_hohhot_targets() -> Vec<Command> {
    vec![
        commissioner(5).register().into(),
        update_profile(1).into(),
        suspend(1).into(),
        reinstate(1).into(),
        retire(1, "2025-06-30").into(),
        workstation(5).establish().into(),
        extend_service(3, BAOTOU).into(),
        withdraw(1, BAOTOU, "2025-06-30").into(),
        change_capacity(1, 8).into(),
        close(1, "2025-06-30").into(),
        post(2).of(2).at(1).serving(BAOTOU).appoint().into(),
        extend_term(1, "2026-06-30").into(),
        end_post(1, "2025-06-30").into(),
        service(1).through(1).for_city(BAOTOU).record().into(),
    ]
}

#[test]
fn admin_may_send_every_command() {
    for command in every_command_on_hohhot_targets() {
        given(world_with_cross_city_post())
            .by("admin")
            .when(command)
            .then_allowed();
    }
}

#[test]
fn a_bureau_may_send_every_command_about_its_own_city() {
    for command in every_command_on_hohhot_targets() {
        given(world_with_cross_city_post())
            .by(HOHHOT_BUREAU)
            .when(command)
            .then_allowed();
    }
}

#[test]
fn a_bureau_may_send_no_command_about_another_city() {
    for command in every_command_on_hohhot_targets() {
        let rule = match &command {
            Command::RegisterCommissioner(_)
            | Command::UpdateCommissionerProfile(_)
            | Command::SuspendCommissioner(_)
            | Command::ReinstateCommissioner(_)
            | Command::RetireCommissioner(_) => "COMMISSIONER_OF_ANOTHER_CITY",
            _ => "WORKSTATION_OF_ANOTHER_CITY",
        };
        given(world_with_cross_city_post())
            .by(BAOTOU_BUREAU)
            .when(command)
            .then_unauthorized(rule);
    }
}

#[test]
fn an_actor_that_is_neither_admin_nor_a_bureau_may_send_nothing() {
    for actor in ["anonymous", "hr-portal", "bureau-", "bureau-15010", "Admin"] {
        for command in every_command_on_hohhot_targets() {
            given(world_with_cross_city_post())
                .by(actor)
                .when(command)
                .then_unauthorized("UNKNOWN_ACTOR");
        }
    }
}

#[test]
fn the_baotou_bureau_cannot_appoint_at_a_hohhot_workstation_even_a_baotou_commissioner() {
    let r = given(world())
        .by(BAOTOU_BUREAU)
        .when(post(1).of(2).at(1).serving(BAOTOU).appoint())
        .then_unauthorized("WORKSTATION_OF_ANOTHER_CITY");
    assert_eq!(
        r.to_string(),
        "bureau-150200 may not appoint a post: workstation 乳业科技特派员工作站 is hosted in \
         city 150100, so only bureau-150100 or admin may"
    );
}

#[test]
fn the_host_city_bureau_appoints_a_commissioner_of_another_city() {
    given(world())
        .by(BAOTOU_BUREAU)
        .when(post(1).of(1).at(2).serving(BAOTOU).appoint())
        .then_allowed();
}

#[test]
fn a_post_is_ended_by_the_workstation_host_city_not_the_commissioner_home_city() {
    let r = given(world_with_cross_city_post())
        .by(BAOTOU_BUREAU)
        .when(end_post(1, "2025-06-30"))
        .then_unauthorized("WORKSTATION_OF_ANOTHER_CITY");
    assert_eq!(
        r.to_string(),
        "bureau-150200 may not end a post: workstation 乳业科技特派员工作站 is hosted in \
         city 150100, so only bureau-150100 or admin may"
    );
}

#[test]
fn a_bureau_cannot_register_a_commissioner_homed_in_another_city() {
    let r = given(world())
        .by(HOHHOT_BUREAU)
        .when(commissioner(5).living_in(BAOTOU).register())
        .then_unauthorized("COMMISSIONER_OF_ANOTHER_CITY");
    assert_eq!(
        r.to_string(),
        "bureau-150100 may not register a commissioner: commissioner 张涛 is homed in city \
         150200, so only bureau-150200 or admin may"
    );
}

#[test]
fn an_unknown_actor_is_told_who_may_send_commands() {
    let r = given(world())
        .by("hr-portal")
        .when(suspend(1))
        .then_unauthorized("UNKNOWN_ACTOR");
    assert_eq!(
        r.to_string(),
        "hr-portal may not suspend a commissioner: only admin and a city's bureau \
         (bureau-<city code>) may send commands"
    );
}

#[test]
fn a_target_that_does_not_exist_is_left_to_decide() {
    for command in [
        Command::from(suspend(9)),
        extend_service(9, BAOTOU).into(),
        post(9).of(1).at(9).appoint().into(),
        end_post(9, "2025-06-30").into(),
        service(9).through(9).record().into(),
    ] {
        given(world())
            .by(BAOTOU_BUREAU)
            .when(command)
            .then_allowed();
    }
}

#[test]
fn actor_tokens_parse_and_print_back() {
    assert_eq!(Actor::parse("admin"), Actor::Admin);
    assert_eq!(Actor::parse("bureau-150200"), Actor::Bureau(BAOTOU));
    assert_eq!(
        Actor::parse("bureau-015020"),
        Actor::Other("bureau-015020".into())
    );
    for token in ["admin", "bureau-150600", "dashboard"] {
        assert_eq!(Actor::parse(token).to_string(), token);
    }
}

// ------------------------------------------------------------- property

const CITIES: [CityCode; 3] = [HOHHOT, BAOTOU, ORDOS];

/// A small world: home cities of commissioners 1..=4, host cities of
/// workstations 1..=3, and posts 1.. as (commissioner, workstation).
#[derive(Debug, Clone)]
struct World {
    homes: Vec<CityCode>,
    hosts: Vec<CityCode>,
    posts: Vec<(u128, u128)>,
}

impl World {
    fn events(&self) -> Vec<Event> {
        let mut events = Vec::new();
        for (n, home) in (1..).zip(&self.homes) {
            events.push(commissioner(n).living_in(*home).registered());
        }
        for (n, host) in (1..).zip(&self.hosts) {
            events.push(workstation(n).in_city(*host).established());
        }
        for (n, (c, w)) in (1..).zip(&self.posts) {
            events.push(post(n).of(*c).at(*w).appointed());
        }
        events
    }

    /// The model: which city owns the target of `command`, or `None` when
    /// it names an id the world does not hold.
    fn owner(&self, target: &Target) -> Option<CityCode> {
        let at = |list: &[CityCode], n: u128| list.get(usize::try_from(n).ok()? - 1).copied();
        match *target {
            Target::NewCommissioner(city) | Target::NewWorkstation(city) => Some(city),
            Target::Commissioner(n) => at(&self.homes, n),
            Target::Workstation(n) => at(&self.hosts, n),
            Target::Post(n) => {
                let (_, w) = *self.posts.get(usize::try_from(n).ok()? - 1)?;
                at(&self.hosts, w)
            }
        }
    }
}

/// What a random command is about.
#[derive(Debug, Clone)]
enum Target {
    NewCommissioner(CityCode),
    NewWorkstation(CityCode),
    Commissioner(u128),
    Workstation(u128),
    Post(u128),
}

/// A command about `target`; `kind` picks among the commands on it.
fn command_on(target: &Target, kind: usize) -> Command {
    match *target {
        Target::NewCommissioner(city) => commissioner(9).living_in(city).register().into(),
        Target::NewWorkstation(city) => workstation(9).in_city(city).establish().into(),
        Target::Commissioner(n) => [
            Command::from(update_profile(n)),
            suspend(n).into(),
            reinstate(n).into(),
            retire(n, "2025-06-30").into(),
        ][kind % 4]
            .clone(),
        Target::Workstation(n) => [
            Command::from(extend_service(n, BAOTOU)),
            withdraw(n, BAOTOU, "2025-06-30").into(),
            change_capacity(n, 4).into(),
            close(n, "2025-06-30").into(),
            post(9).of(1).at(n).appoint().into(),
        ][kind % 5]
            .clone(),
        Target::Post(n) => [
            Command::from(extend_term(n, "2026-06-30")),
            end_post(n, "2025-06-30").into(),
            service(9).through(n).record().into(),
        ][kind % 3]
            .clone(),
    }
}

fn world_strategy() -> impl Strategy<Value = World> {
    let city = || proptest::sample::select(CITIES.to_vec());
    (
        prop::collection::vec(city(), 4),
        prop::collection::vec(city(), 3),
        prop::collection::vec((1u128..=4, 1u128..=3), 0..5),
    )
        .prop_map(|(homes, hosts, posts)| World {
            homes,
            hosts,
            posts,
        })
}

fn target_strategy() -> impl Strategy<Value = Target> {
    let city = || proptest::sample::select(CITIES.to_vec());
    prop_oneof![
        city().prop_map(Target::NewCommissioner),
        city().prop_map(Target::NewWorkstation),
        (1u128..=5).prop_map(Target::Commissioner),
        (1u128..=4).prop_map(Target::Workstation),
        (1u128..=6).prop_map(Target::Post),
    ]
}

fn actor_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("admin".to_owned()),
        proptest::sample::select(CITIES.to_vec()).prop_map(|c| format!("bureau-{c}")),
        "[a-z-]{1,12}",
    ]
}

proptest! {
    /// Admin is never refused; any other non-bureau always is; a bureau is
    /// allowed exactly when the model says its city owns the target (or the
    /// target does not exist, for `decide` to answer).
    #[test]
    fn authorization_follows_who_owns_the_target(
        world in world_strategy(),
        target in target_strategy(),
        kind in 0usize..5,
        token in actor_strategy(),
    ) {
        let command = command_on(&target, kind);
        let actor = Actor::parse(&token);
        let result = given(world.events()).by(&token).when(command).result;
        let allowed = match actor {
            Actor::Admin => true,
            Actor::Other(_) => false,
            Actor::Bureau(city) => world.owner(&target).is_none_or(|owner| owner == city),
        };
        prop_assert_eq!(result.is_ok(), allowed, "{} by {}: {:?}", kind, token, result);
        if let Err(r) = result {
            prop_assert_eq!(r.code(), RejectCode::Unauthorized);
        }
    }
}

#[test]
fn a_demand_belongs_to_its_citys_bureau() {
    let history = || world_and([demand(1).in_city(BAOTOU).submitted()]);
    given(world())
        .by(BAOTOU_BUREAU)
        .when(demand(1).in_city(BAOTOU).submit())
        .then_allowed();
    let r = given(world())
        .by(HOHHOT_BUREAU)
        .when(demand(1).in_city(BAOTOU).submit())
        .then_unauthorized("DEMAND_OF_ANOTHER_CITY");
    assert_eq!(
        r.to_string(),
        format!(
            "bureau-150100 may not submit a demand: demand {} is in city 150200, so only bureau-150200 or admin may",
            demand_title(1)
        )
    );
    let commands: [Command; 3] = [
        dispatch(1, 1).into(),
        resolve(1, None).into(),
        withdraw_demand(1).into(),
    ];
    for command in commands {
        given(history())
            .by(BAOTOU_BUREAU)
            .when(command.clone())
            .then_allowed();
        given(history())
            .by(HOHHOT_BUREAU)
            .when(command)
            .then_unauthorized("DEMAND_OF_ANOTHER_CITY");
    }
}

#[test]
fn appointing_for_a_demand_needs_the_host_city_and_the_demands_city() {
    // Workstation 1 stands in Hohhot and serves Baotou; the demand is Baotou's.
    let history = || world_and([demand(1).in_city(BAOTOU).submitted()]);
    let appoint = || post(1).serving(BAOTOU).for_demand(1).appoint();
    given(history())
        .by(HOHHOT_BUREAU)
        .when(appoint())
        .then_unauthorized("DEMAND_OF_ANOTHER_CITY");
    given(history())
        .by(BAOTOU_BUREAU)
        .when(appoint())
        .then_unauthorized("WORKSTATION_OF_ANOTHER_CITY");
    given(history()).by("admin").when(appoint()).then_allowed();
    // Two acts instead: the host city appoints, the demand's city dispatches.
    given(history())
        .by(HOHHOT_BUREAU)
        .when(post(1).serving(BAOTOU).appoint())
        .then_allowed();
    given(world_and([
        demand(1).in_city(BAOTOU).submitted(),
        post(1).serving(BAOTOU).appointed(),
    ]))
    .by(BAOTOU_BUREAU)
    .when(dispatch(1, 1))
    .then_allowed();
}
