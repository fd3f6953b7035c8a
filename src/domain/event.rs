//! Events: what happened, in the past tense. The only input of `evolve` and
//! the only thing stored. An event carries what its readers need without
//! history (a profile update carries the whole new profile).

use super::command::CommissionerKind;
use super::types::{
    Capacity, CityCode, CommissionerId, Date, DemandId, HoursPerMonth, Minutes, PostId,
    Satisfaction, ServiceId, StreamId, Text, WorkstationId,
};

/// Every event tepai records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // The fields mean what the command fields of the same name mean.
pub enum Event {
    /// A commissioner joined.
    CommissionerRegistered {
        commissioner_id: CommissionerId,
        name: Text,
        home_city: CityCode,
        employer: Text,
        kind: CommissionerKind,
        expertise: Vec<Text>,
    },
    /// A commissioner's profile changed; holds the whole new profile.
    CommissionerProfileUpdated {
        commissioner_id: CommissionerId,
        name: Text,
        employer: Text,
        expertise: Vec<Text>,
    },
    /// A commissioner was suspended.
    CommissionerSuspended {
        commissioner_id: CommissionerId,
        reason: Text,
    },
    /// A suspended commissioner was reinstated.
    CommissionerReinstated {
        commissioner_id: CommissionerId,
        reason: Text,
    },
    /// A commissioner retired; their posts end in the same commit.
    CommissionerRetired {
        commissioner_id: CommissionerId,
        effective_date: Date,
    },
    /// A workstation opened, serving its host city.
    WorkstationEstablished {
        workstation_id: WorkstationId,
        name: Text,
        host_org: Text,
        host_city: CityCode,
        capacity: Capacity,
        fields: Vec<Text>,
    },
    /// A workstation began serving another city.
    WorkstationServiceExtended {
        workstation_id: WorkstationId,
        city: CityCode,
    },
    /// A workstation stopped serving a city.
    WorkstationServiceWithdrawn {
        workstation_id: WorkstationId,
        city: CityCode,
        effective_date: Date,
    },
    /// A workstation's capacity changed.
    WorkstationCapacityChanged {
        workstation_id: WorkstationId,
        capacity: Capacity,
        previous_capacity: Capacity,
    },
    /// A workstation closed; its posts end in the same commit.
    WorkstationClosed {
        workstation_id: WorkstationId,
        effective_date: Date,
    },
    /// A commissioner was appointed to a post.
    PostAppointed {
        post_id: PostId,
        commissioner_id: CommissionerId,
        workstation_id: WorkstationId,
        serving_city: CityCode,
        role: Text,
        hours_per_month: HoursPerMonth,
        start_date: Date,
        end_date: Date,
    },
    /// A post's last day moved later.
    PostTermExtended {
        post_id: PostId,
        end_date: Date,
        previous_end_date: Date,
    },
    /// A post ended; `end_date` is its last day of service.
    PostEnded {
        post_id: PostId,
        end_date: Date,
        reason: Text,
    },
    /// Service was delivered through a post.
    ServiceRecorded {
        service_id: ServiceId,
        post_id: PostId,
        date: Date,
        minutes: Minutes,
        beneficiary: Text,
        beneficiary_city: CityCode,
        summary: Text,
        /// The demand the service was for, if any.
        demand_id: Option<DemandId>,
    },
    /// An enterprise's demand was published.
    DemandSubmitted {
        demand_id: DemandId,
        title: Text,
        enterprise: Text,
        city: CityCode,
        expertise: Vec<Text>,
        hours_per_month: HoursPerMonth,
        start_date: Date,
        end_date: Date,
        description: Text,
    },
    /// A demand was dispatched to a post that serves it.
    DemandDispatched {
        demand_id: DemandId,
        post_id: PostId,
    },
    /// A dispatched demand was resolved; final.
    DemandResolved {
        demand_id: DemandId,
        outcome: Text,
        satisfaction: Satisfaction,
        resolved_on: Date,
    },
    /// A demand was withdrawn; final.
    DemandWithdrawn { demand_id: DemandId, reason: Text },
}

impl Event {
    /// The stream the event belongs to.
    pub fn stream(&self) -> StreamId {
        match self {
            Event::CommissionerRegistered {
                commissioner_id, ..
            }
            | Event::CommissionerProfileUpdated {
                commissioner_id, ..
            }
            | Event::CommissionerSuspended {
                commissioner_id, ..
            }
            | Event::CommissionerReinstated {
                commissioner_id, ..
            }
            | Event::CommissionerRetired {
                commissioner_id, ..
            } => commissioner_id.stream(),
            Event::WorkstationEstablished { workstation_id, .. }
            | Event::WorkstationServiceExtended { workstation_id, .. }
            | Event::WorkstationServiceWithdrawn { workstation_id, .. }
            | Event::WorkstationCapacityChanged { workstation_id, .. }
            | Event::WorkstationClosed { workstation_id, .. } => workstation_id.stream(),
            Event::PostAppointed { post_id, .. }
            | Event::PostTermExtended { post_id, .. }
            | Event::PostEnded { post_id, .. }
            | Event::ServiceRecorded { post_id, .. } => post_id.stream(),
            Event::DemandSubmitted { demand_id, .. }
            | Event::DemandDispatched { demand_id, .. }
            | Event::DemandResolved { demand_id, .. }
            | Event::DemandWithdrawn { demand_id, .. } => demand_id.stream(),
        }
    }

    /// The event's type name, stored beside its payload.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::CommissionerRegistered { .. } => "CommissionerRegistered",
            Event::CommissionerProfileUpdated { .. } => "CommissionerProfileUpdated",
            Event::CommissionerSuspended { .. } => "CommissionerSuspended",
            Event::CommissionerReinstated { .. } => "CommissionerReinstated",
            Event::CommissionerRetired { .. } => "CommissionerRetired",
            Event::WorkstationEstablished { .. } => "WorkstationEstablished",
            Event::WorkstationServiceExtended { .. } => "WorkstationServiceExtended",
            Event::WorkstationServiceWithdrawn { .. } => "WorkstationServiceWithdrawn",
            Event::WorkstationCapacityChanged { .. } => "WorkstationCapacityChanged",
            Event::WorkstationClosed { .. } => "WorkstationClosed",
            Event::PostAppointed { .. } => "PostAppointed",
            Event::PostTermExtended { .. } => "PostTermExtended",
            Event::PostEnded { .. } => "PostEnded",
            Event::ServiceRecorded { .. } => "ServiceRecorded",
            Event::DemandSubmitted { .. } => "DemandSubmitted",
            Event::DemandDispatched { .. } => "DemandDispatched",
            Event::DemandResolved { .. } => "DemandResolved",
            Event::DemandWithdrawn { .. } => "DemandWithdrawn",
        }
    }
}
