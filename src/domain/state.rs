//! The state decisions need, kept in memory, and `evolve`, which applies one
//! event to it. Folding every stored event through `evolve` from
//! `State::default()` rebuilds it exactly.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::command::CommissionerKind;
use super::event::Event;
use super::types::{
    Capacity, CityCode, CommissionerId, Date, DemandId, HoursPerMonth, PostId, ServiceId, StreamId,
    Text, WorkstationId,
};

/// A commissioner's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommissionerStatus {
    /// May be appointed and record service.
    Active,
    /// Temporarily barred from new posts and service records.
    Suspended,
    /// Gone for good; their posts were ended.
    Retired,
}

impl CommissionerStatus {
    /// Lower-case name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            CommissionerStatus::Active => "active",
            CommissionerStatus::Suspended => "suspended",
            CommissionerStatus::Retired => "retired",
        }
    }
}

/// What decisions know of a commissioner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commissioner {
    /// Full name, quoted in rejections.
    pub name: Text,
    /// Home city; a post serving another city is cross-city.
    pub home_city: CityCode,
    /// Employer, kept so a partial profile update can emit the whole profile.
    pub employer: Text,
    /// Kind of employer.
    pub kind: CommissionerKind,
    /// Expertise tags, kept for the same reason as `employer`.
    pub expertise: Vec<Text>,
    /// Standing.
    pub status: CommissionerStatus,
    /// Events in the commissioner's stream.
    pub version: u64,
    /// Every post ever appointed, in appointment order.
    pub posts: Vec<PostId>,
}

/// A workstation's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkstationStatus {
    /// Takes posts.
    Open,
    /// Closed for good; its posts were ended.
    Closed,
}

/// What decisions know of a workstation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workstation {
    /// Name, quoted in rejections.
    pub name: Text,
    /// City it stands in; always served.
    pub host_city: CityCode,
    /// Posts it may run on any one day.
    pub capacity: Capacity,
    /// Cities it serves (the host city and any it extended to).
    pub served: BTreeSet<CityCode>,
    /// Standing.
    pub status: WorkstationStatus,
    /// Events in the workstation's stream.
    pub version: u64,
    /// Every post ever appointed here, in appointment order.
    pub posts: Vec<PostId>,
}

impl Workstation {
    /// Served cities as a readable list.
    pub fn served_list(&self) -> String {
        self.served
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What decisions know of a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// Who serves.
    pub commissioner: CommissionerId,
    /// Where.
    pub workstation: WorkstationId,
    /// City served.
    pub serving_city: CityCode,
    /// Hours per month.
    pub hours: HoursPerMonth,
    /// First day of the term.
    pub start: Date,
    /// Last day of the term.
    pub end: Date,
    /// Last day of service when ended by a command.
    pub ended_on: Option<Date>,
    /// Events in the post's stream (its service records included).
    pub version: u64,
}

impl Post {
    /// The last day the post serves: its term's end or the day it was ended.
    pub fn last_day(&self) -> Date {
        match self.ended_on {
            Some(ended) => ended.min(self.end),
            None => self.end,
        }
    }

    /// Whether the post serves on `day`.
    pub fn covers(&self, day: Date) -> bool {
        self.start <= day && day <= self.last_day()
    }

    /// Whether a command ended it.
    pub fn is_ended(&self) -> bool {
        self.ended_on.is_some()
    }
}

/// Where a demand stands. Resolved and withdrawn are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemandStatus {
    /// Published, no post serves it yet.
    Open,
    /// At least one post serves it.
    Dispatched,
    /// Served, with an outcome and the enterprise's satisfaction.
    Resolved,
    /// Taken back before any service was recorded for it.
    Withdrawn,
}

impl DemandStatus {
    /// Lower-case name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DemandStatus::Open => "open",
            DemandStatus::Dispatched => "dispatched",
            DemandStatus::Resolved => "resolved",
            DemandStatus::Withdrawn => "withdrawn",
        }
    }

    /// Whether the demand can change no more.
    pub fn is_final(self) -> bool {
        matches!(self, DemandStatus::Resolved | DemandStatus::Withdrawn)
    }
}

/// What decisions know of a demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    /// Title, quoted in rejections.
    pub title: Text,
    /// City where the need is; only posts serving it can be dispatched.
    pub city: CityCode,
    /// Expertise wanted; a commissioner with any one of them matches.
    pub expertise: Vec<Text>,
    /// First day of the wanted period.
    pub start: Date,
    /// Last day of the wanted period.
    pub end: Date,
    /// Standing.
    pub status: DemandStatus,
    /// Posts dispatched to it, in dispatch order.
    pub posts: Vec<PostId>,
    /// Whether service was recorded for it (it can then only be resolved).
    pub served: bool,
    /// Events in the demand's stream.
    pub version: u64,
}

/// Everything decisions read. Grows with history; holds no IO.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    commissioners: HashMap<CommissionerId, Commissioner>,
    workstations: HashMap<WorkstationId, Workstation>,
    posts: HashMap<PostId, Post>,
    services: HashSet<ServiceId>,
    demands: HashMap<DemandId, Demand>,
}

impl State {
    /// A commissioner by id.
    pub fn commissioner(&self, id: CommissionerId) -> Option<&Commissioner> {
        self.commissioners.get(&id)
    }

    /// A workstation by id.
    pub fn workstation(&self, id: WorkstationId) -> Option<&Workstation> {
        self.workstations.get(&id)
    }

    /// A post by id.
    pub fn post(&self, id: PostId) -> Option<&Post> {
        self.posts.get(&id)
    }

    /// A demand by id.
    pub fn demand(&self, id: DemandId) -> Option<&Demand> {
        self.demands.get(&id)
    }

    /// Whether a service record id is taken.
    pub fn has_service(&self, id: ServiceId) -> bool {
        self.services.contains(&id)
    }

    /// All commissioners, in no particular order.
    pub fn commissioners(&self) -> impl Iterator<Item = (&CommissionerId, &Commissioner)> {
        self.commissioners.iter()
    }

    /// All workstations, in no particular order.
    pub fn workstations(&self) -> impl Iterator<Item = (&WorkstationId, &Workstation)> {
        self.workstations.iter()
    }

    /// All posts, in no particular order.
    pub fn posts(&self) -> impl Iterator<Item = (&PostId, &Post)> {
        self.posts.iter()
    }

    /// Events in a stream so far; 0 when it does not exist.
    pub fn version(&self, stream: StreamId) -> u64 {
        match stream {
            StreamId::CommissionerId(id) => self.commissioners.get(&id).map_or(0, |c| c.version),
            StreamId::WorkstationId(id) => self.workstations.get(&id).map_or(0, |w| w.version),
            StreamId::PostId(id) => self.posts.get(&id).map_or(0, |p| p.version),
            StreamId::DemandId(id) => self.demands.get(&id).map_or(0, |d| d.version),
        }
    }

    fn bump(&mut self, stream: StreamId) {
        let version = match stream {
            StreamId::CommissionerId(id) => self.commissioners.get_mut(&id).map(|c| &mut c.version),
            StreamId::WorkstationId(id) => self.workstations.get_mut(&id).map(|w| &mut w.version),
            StreamId::PostId(id) => self.posts.get_mut(&id).map(|p| &mut p.version),
            StreamId::DemandId(id) => self.demands.get_mut(&id).map(|d| &mut d.version),
        };
        if let Some(version) = version {
            *version += 1;
        }
    }
}

/// Applies one event. Events come from `decide`, so they refer to entities
/// that exist; one that does not (a damaged history) changes nothing rather
/// than panicking.
pub fn evolve(state: &mut State, event: &Event) {
    match event {
        Event::CommissionerRegistered {
            commissioner_id,
            name,
            home_city,
            employer,
            kind,
            expertise,
        } => {
            state.commissioners.insert(
                *commissioner_id,
                Commissioner {
                    name: name.clone(),
                    home_city: *home_city,
                    employer: employer.clone(),
                    kind: *kind,
                    expertise: expertise.clone(),
                    status: CommissionerStatus::Active,
                    version: 0,
                    posts: Vec::new(),
                },
            );
        }
        Event::CommissionerProfileUpdated {
            commissioner_id,
            name,
            employer,
            expertise,
        } => {
            if let Some(c) = state.commissioners.get_mut(commissioner_id) {
                c.name = name.clone();
                c.employer = employer.clone();
                c.expertise = expertise.clone();
            }
        }
        Event::CommissionerSuspended {
            commissioner_id, ..
        } => set_commissioner_status(state, *commissioner_id, CommissionerStatus::Suspended),
        Event::CommissionerReinstated {
            commissioner_id, ..
        } => set_commissioner_status(state, *commissioner_id, CommissionerStatus::Active),
        Event::CommissionerRetired {
            commissioner_id, ..
        } => set_commissioner_status(state, *commissioner_id, CommissionerStatus::Retired),
        Event::WorkstationEstablished {
            workstation_id,
            name,
            host_city,
            capacity,
            ..
        } => {
            state.workstations.insert(
                *workstation_id,
                Workstation {
                    name: name.clone(),
                    host_city: *host_city,
                    capacity: *capacity,
                    served: BTreeSet::from([*host_city]),
                    status: WorkstationStatus::Open,
                    version: 0,
                    posts: Vec::new(),
                },
            );
        }
        Event::WorkstationServiceExtended {
            workstation_id,
            city,
        } => {
            if let Some(w) = state.workstations.get_mut(workstation_id) {
                w.served.insert(*city);
            }
        }
        Event::WorkstationServiceWithdrawn {
            workstation_id,
            city,
            ..
        } => {
            if let Some(w) = state.workstations.get_mut(workstation_id) {
                w.served.remove(city);
            }
        }
        Event::WorkstationCapacityChanged {
            workstation_id,
            capacity,
            ..
        } => {
            if let Some(w) = state.workstations.get_mut(workstation_id) {
                w.capacity = *capacity;
            }
        }
        Event::WorkstationClosed { workstation_id, .. } => {
            if let Some(w) = state.workstations.get_mut(workstation_id) {
                w.status = WorkstationStatus::Closed;
            }
        }
        Event::PostAppointed {
            post_id,
            commissioner_id,
            workstation_id,
            serving_city,
            hours_per_month,
            start_date,
            end_date,
            ..
        } => {
            state.posts.insert(
                *post_id,
                Post {
                    commissioner: *commissioner_id,
                    workstation: *workstation_id,
                    serving_city: *serving_city,
                    hours: *hours_per_month,
                    start: *start_date,
                    end: *end_date,
                    ended_on: None,
                    version: 0,
                },
            );
            if let Some(c) = state.commissioners.get_mut(commissioner_id) {
                c.posts.push(*post_id);
            }
            if let Some(w) = state.workstations.get_mut(workstation_id) {
                w.posts.push(*post_id);
            }
        }
        Event::PostTermExtended {
            post_id, end_date, ..
        } => {
            if let Some(p) = state.posts.get_mut(post_id) {
                p.end = *end_date;
            }
        }
        Event::PostEnded {
            post_id, end_date, ..
        } => {
            if let Some(p) = state.posts.get_mut(post_id) {
                p.ended_on = Some(*end_date);
            }
        }
        Event::ServiceRecorded {
            service_id,
            demand_id,
            ..
        } => {
            state.services.insert(*service_id);
            if let Some(d) = demand_id.and_then(|id| state.demands.get_mut(&id)) {
                d.served = true;
            }
        }
        Event::DemandSubmitted {
            demand_id,
            title,
            city,
            expertise,
            start_date,
            end_date,
            ..
        } => {
            state.demands.insert(
                *demand_id,
                Demand {
                    title: title.clone(),
                    city: *city,
                    expertise: expertise.clone(),
                    start: *start_date,
                    end: *end_date,
                    status: DemandStatus::Open,
                    posts: Vec::new(),
                    served: false,
                    version: 0,
                },
            );
        }
        Event::DemandDispatched { demand_id, post_id } => {
            if let Some(d) = state.demands.get_mut(demand_id) {
                d.posts.push(*post_id);
                if d.status == DemandStatus::Open {
                    d.status = DemandStatus::Dispatched;
                }
            }
        }
        Event::DemandResolved { demand_id, .. } => {
            if let Some(d) = state.demands.get_mut(demand_id) {
                d.status = DemandStatus::Resolved;
            }
        }
        Event::DemandWithdrawn { demand_id, .. } => {
            if let Some(d) = state.demands.get_mut(demand_id) {
                d.status = DemandStatus::Withdrawn;
            }
        }
    }
    state.bump(event.stream());
}

fn set_commissioner_status(state: &mut State, id: CommissionerId, status: CommissionerStatus) {
    if let Some(c) = state.commissioners.get_mut(&id) {
        c.status = status;
    }
}
