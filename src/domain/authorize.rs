//! Who may send which command. With authorization on, the command service
//! names the actor from the NATS subject a command came on
//! (`tepai.cmd.<actor>.submit`); `authorize` then says whether that actor
//! may act on the command's target, before `decide` looks at the rules.
//!
//! The rule: `admin` may do everything. A city's bureau (`bureau-150100`,
//! `bureau-150200`, …) acts on the commissioners homed in its city and on
//! the workstations hosted in its city; a post, and the service recorded
//! through it, belong to the workstation's host city, whatever city the post
//! serves or the commissioner comes from. A demand belongs to its city's
//! bureau; appointing a post for a demand needs both the post's (the host
//! city) and the demand's, so across cities it is two acts: the host city
//! appoints, the demand's city dispatches. Every other actor may do
//! nothing.
//!
//! A target that does not exist is left to `decide`, which answers
//! `NOT_FOUND`: a bureau learns no more than that, and an unknown actor is
//! refused before any target is looked at.

use std::fmt;

use super::command::Command;
use super::rejection::Rejection;
use super::state::State;
use super::types::CityCode;

/// The prefix of a city bureau's actor token, followed by its city code.
pub const BUREAU_PREFIX: &str = "bureau-";
/// The actor token of the administrator.
pub const ADMIN: &str = "admin";

/// Who sends a command, as its actor token names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// `admin`: may do everything.
    Admin,
    /// `bureau-<city code>`: the science and technology bureau of a city.
    Bureau(CityCode),
    /// Any other token: may do nothing.
    Other(String),
}

impl Actor {
    /// Classifies an actor token. Never fails: a token that is neither
    /// `admin` nor a bureau of a well-formed city code is [`Actor::Other`].
    pub fn parse(token: &str) -> Actor {
        if token == ADMIN {
            return Actor::Admin;
        }
        token
            .strip_prefix(BUREAU_PREFIX)
            .and_then(|code| CityCode::parse("actor", code).ok())
            .map_or_else(|| Actor::Other(token.to_owned()), Actor::Bureau)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Admin => f.write_str(ADMIN),
            Actor::Bureau(city) => write!(f, "{BUREAU_PREFIX}{city}"),
            Actor::Other(token) => f.write_str(token),
        }
    }
}

/// Why an actor may not send a command. Each variant is a stable rule name
/// under the public code `UNAUTHORIZED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthorized {
    /// The actor is neither `admin` nor a city's bureau.
    #[error("{actor} may not {action}: only admin and a city's bureau (bureau-<city code>) may send commands")]
    UnknownActor {
        /// The actor token.
        actor: String,
        /// What was attempted.
        action: &'static str,
    },
    /// A bureau acting on a commissioner homed in another city.
    #[error("{actor} may not {action}: commissioner {name} is homed in city {city}, so only {BUREAU_PREFIX}{city} or admin may")]
    CommissionerOfAnotherCity {
        /// The bureau.
        actor: String,
        /// What was attempted.
        action: &'static str,
        /// Commissioner's name.
        name: String,
        /// The commissioner's home city.
        city: CityCode,
    },
    /// A bureau acting on a demand of another city.
    #[error("{actor} may not {action}: demand {title} is in city {city}, so only {BUREAU_PREFIX}{city} or admin may")]
    DemandOfAnotherCity {
        /// The bureau.
        actor: String,
        /// What was attempted.
        action: &'static str,
        /// The demand's title.
        title: String,
        /// The demand's city.
        city: CityCode,
    },
    /// A bureau acting on a workstation (or a post there) hosted in another
    /// city.
    #[error("{actor} may not {action}: workstation {name} is hosted in city {city}, so only {BUREAU_PREFIX}{city} or admin may")]
    WorkstationOfAnotherCity {
        /// The bureau.
        actor: String,
        /// What was attempted.
        action: &'static str,
        /// Workstation's name.
        name: String,
        /// The workstation's host city.
        city: CityCode,
    },
}

impl Unauthorized {
    /// A stable machine name of the broken rule.
    pub fn rule(&self) -> &'static str {
        match self {
            Unauthorized::UnknownActor { .. } => "UNKNOWN_ACTOR",
            Unauthorized::CommissionerOfAnotherCity { .. } => "COMMISSIONER_OF_ANOTHER_CITY",
            Unauthorized::WorkstationOfAnotherCity { .. } => "WORKSTATION_OF_ANOTHER_CITY",
            Unauthorized::DemandOfAnotherCity { .. } => "DEMAND_OF_ANOTHER_CITY",
        }
    }
}

/// The city whose bureau owns a command's target, with the target's name.
enum Owner {
    Commissioner { name: String, city: CityCode },
    Workstation { name: String, city: CityCode },
    Demand { title: String, city: CityCode },
}

impl Owner {
    fn city(&self) -> CityCode {
        match self {
            Owner::Commissioner { city, .. }
            | Owner::Workstation { city, .. }
            | Owner::Demand { city, .. } => *city,
        }
    }
}

/// What a command does, in a clerk's words.
fn action(command: &Command) -> &'static str {
    match command {
        Command::RegisterCommissioner(_) => "register a commissioner",
        Command::UpdateCommissionerProfile(_) => "update a commissioner's profile",
        Command::SuspendCommissioner(_) => "suspend a commissioner",
        Command::ReinstateCommissioner(_) => "reinstate a commissioner",
        Command::RetireCommissioner(_) => "retire a commissioner",
        Command::EstablishWorkstation(_) => "establish a workstation",
        Command::ExtendWorkstationService(_) => "extend a workstation's service",
        Command::WithdrawWorkstationService(_) => "withdraw a workstation's service",
        Command::ChangeWorkstationCapacity(_) => "change a workstation's capacity",
        Command::CloseWorkstation(_) => "close a workstation",
        Command::AppointPost(_) => "appoint a post",
        Command::ExtendPostTerm(_) => "extend a post's term",
        Command::EndPost(_) => "end a post",
        Command::RecordService(_) => "record service",
        Command::SubmitDemand(_) => "submit a demand",
        Command::DispatchDemand(_) => "dispatch a demand",
        Command::ResolveDemand(_) => "resolve a demand",
        Command::WithdrawDemand(_) => "withdraw a demand",
    }
}

/// Whose the targets are: commands about a commissioner belong to its home
/// city; commands about a workstation, a post or a service record to the
/// workstation's host city; commands about a demand to the demand's city.
/// A post appointed for a demand has two owners. A target `state` does not
/// know has none.
fn owners(state: &State, command: &Command) -> [Option<Owner>; 2] {
    let commissioner = |id| {
        state.commissioner(id).map(|c| Owner::Commissioner {
            name: c.name.to_string(),
            city: c.home_city,
        })
    };
    let workstation = |id| {
        state.workstation(id).map(|w| Owner::Workstation {
            name: w.name.to_string(),
            city: w.host_city,
        })
    };
    let post = |id| state.post(id).and_then(|p| workstation(p.workstation));
    let demand = |id| {
        state.demand(id).map(|d| Owner::Demand {
            title: d.title.to_string(),
            city: d.city,
        })
    };
    let owner = match command {
        Command::RegisterCommissioner(c) => Some(Owner::Commissioner {
            name: c.name.to_string(),
            city: c.home_city,
        }),
        Command::UpdateCommissionerProfile(c) => commissioner(c.commissioner_id),
        Command::SuspendCommissioner(c) => commissioner(c.commissioner_id),
        Command::ReinstateCommissioner(c) => commissioner(c.commissioner_id),
        Command::RetireCommissioner(c) => commissioner(c.commissioner_id),
        Command::EstablishWorkstation(c) => Some(Owner::Workstation {
            name: c.name.to_string(),
            city: c.host_city,
        }),
        Command::ExtendWorkstationService(c) => workstation(c.workstation_id),
        Command::WithdrawWorkstationService(c) => workstation(c.workstation_id),
        Command::ChangeWorkstationCapacity(c) => workstation(c.workstation_id),
        Command::CloseWorkstation(c) => workstation(c.workstation_id),
        Command::AppointPost(c) => {
            return [workstation(c.workstation_id), c.demand_id.and_then(demand)];
        }
        Command::ExtendPostTerm(c) => post(c.post_id),
        Command::EndPost(c) => post(c.post_id),
        Command::RecordService(c) => post(c.post_id),
        Command::SubmitDemand(c) => Some(Owner::Demand {
            title: c.title.to_string(),
            city: c.city,
        }),
        Command::DispatchDemand(c) => demand(c.demand_id),
        Command::ResolveDemand(c) => demand(c.demand_id),
        Command::WithdrawDemand(c) => demand(c.demand_id),
    };
    [owner, None]
}

/// Says whether `actor` may send `command` against `state`; the refusal
/// names who, what and why, under the code `UNAUTHORIZED`.
pub fn authorize(state: &State, actor: &Actor, command: &Command) -> Result<(), Rejection> {
    let bureau_city = match actor {
        Actor::Admin => return Ok(()),
        Actor::Bureau(city) => *city,
        Actor::Other(token) => {
            return Err(Rejection::Unauthorized(Unauthorized::UnknownActor {
                actor: token.clone(),
                action: action(command),
            }))
        }
    };
    let Some(owner) = owners(state, command)
        .into_iter()
        .flatten()
        .find(|owner| owner.city() != bureau_city)
    else {
        return Ok(());
    };
    let actor = actor.to_string();
    let action = action(command);
    Err(Rejection::Unauthorized(match owner {
        Owner::Commissioner { name, city } => Unauthorized::CommissionerOfAnotherCity {
            actor,
            action,
            name,
            city,
        },
        Owner::Workstation { name, city } => Unauthorized::WorkstationOfAnotherCity {
            actor,
            action,
            name,
            city,
        },
        Owner::Demand { title, city } => Unauthorized::DemandOfAnotherCity {
            actor,
            action,
            title,
            city,
        },
    }))
}
