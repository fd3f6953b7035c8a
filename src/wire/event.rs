//! Domain events to and from protobuf. The stored payload of an event is an
//! `EventEnvelope` with only its `event` oneof set; the metadata lives in
//! the store's columns and is added back when the envelope is published.

use prost::Message;

use super::pb::event_envelope::Event as PbEvent;
use super::{malformed, pb, DecodeError};
use crate::domain::{
    parse_date, Capacity, CityCode, CommissionerId, CommissionerKind, Date, DemandId, Event,
    HoursPerMonth, Minutes, PostId, Satisfaction, ServiceId, Text, WorkstationId,
};
use crate::store::StoredEvent;

/// Schema version written with every event. Raise it when an event's meaning
/// changes in a way readers must know about (fields added compatibly do not).
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// The payload stored for an event.
pub fn encode_event_payload(event: &Event) -> Vec<u8> {
    pb::EventEnvelope {
        event: Some(event_to_pb(event)),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Decodes a stored payload back into a domain event.
pub fn decode_event_payload(payload: &[u8]) -> Result<Event, DecodeError> {
    let envelope = pb::EventEnvelope::decode(payload).map_err(|e| malformed("EventEnvelope", e))?;
    envelope
        .event
        .ok_or(DecodeError::MissingOneof("event"))
        .and_then(event_from_pb)
}

/// The full envelope of a stored event, as published on the bus.
pub fn event_envelope(stored: &StoredEvent) -> Result<pb::EventEnvelope, DecodeError> {
    let mut envelope = pb::EventEnvelope::decode(stored.payload.as_slice())
        .map_err(|e| malformed("EventEnvelope", e))?;
    envelope.event_id = stored.event_id.hyphenated().to_string();
    envelope.global_position = stored.position;
    envelope.stream_id = stored.stream_id.clone();
    envelope.stream_version = stored.stream_version;
    envelope.recorded_at = stored.recorded_at;
    envelope.correlation_id = stored.correlation_id.clone();
    envelope.causation_id = stored.causation_id.clone();
    envelope.actor = stored.actor.clone();
    Ok(envelope)
}

/// A domain event as its protobuf oneof.
pub fn event_to_pb(event: &Event) -> PbEvent {
    match event {
        Event::CommissionerRegistered {
            commissioner_id,
            name,
            home_city,
            employer,
            kind,
            expertise,
        } => PbEvent::CommissionerRegistered(pb::CommissionerRegistered {
            commissioner_id: s(commissioner_id),
            name: s(name),
            home_city: s(home_city),
            employer: s(employer),
            kind: kind_to_pb(*kind) as i32,
            expertise: texts(expertise),
        }),
        Event::CommissionerProfileUpdated {
            commissioner_id,
            name,
            employer,
            expertise,
        } => PbEvent::CommissionerProfileUpdated(pb::CommissionerProfileUpdated {
            commissioner_id: s(commissioner_id),
            name: s(name),
            employer: s(employer),
            expertise: texts(expertise),
        }),
        Event::CommissionerSuspended {
            commissioner_id,
            reason,
        } => PbEvent::CommissionerSuspended(pb::CommissionerSuspended {
            commissioner_id: s(commissioner_id),
            reason: s(reason),
        }),
        Event::CommissionerReinstated {
            commissioner_id,
            reason,
        } => PbEvent::CommissionerReinstated(pb::CommissionerReinstated {
            commissioner_id: s(commissioner_id),
            reason: s(reason),
        }),
        Event::CommissionerRetired {
            commissioner_id,
            effective_date,
        } => PbEvent::CommissionerRetired(pb::CommissionerRetired {
            commissioner_id: s(commissioner_id),
            effective_date: s(effective_date),
        }),
        Event::WorkstationEstablished {
            workstation_id,
            name,
            host_org,
            host_city,
            capacity,
            fields,
        } => PbEvent::WorkstationEstablished(pb::WorkstationEstablished {
            workstation_id: s(workstation_id),
            name: s(name),
            host_org: s(host_org),
            host_city: s(host_city),
            capacity: capacity.get(),
            fields: texts(fields),
        }),
        Event::WorkstationServiceExtended {
            workstation_id,
            city,
        } => PbEvent::WorkstationServiceExtended(pb::WorkstationServiceExtended {
            workstation_id: s(workstation_id),
            city: s(city),
        }),
        Event::WorkstationServiceWithdrawn {
            workstation_id,
            city,
            effective_date,
        } => PbEvent::WorkstationServiceWithdrawn(pb::WorkstationServiceWithdrawn {
            workstation_id: s(workstation_id),
            city: s(city),
            effective_date: s(effective_date),
        }),
        Event::WorkstationCapacityChanged {
            workstation_id,
            capacity,
            previous_capacity,
        } => PbEvent::WorkstationCapacityChanged(pb::WorkstationCapacityChanged {
            workstation_id: s(workstation_id),
            capacity: capacity.get(),
            previous_capacity: previous_capacity.get(),
        }),
        Event::WorkstationClosed {
            workstation_id,
            effective_date,
        } => PbEvent::WorkstationClosed(pb::WorkstationClosed {
            workstation_id: s(workstation_id),
            effective_date: s(effective_date),
        }),
        Event::PostAppointed {
            post_id,
            commissioner_id,
            workstation_id,
            serving_city,
            role,
            hours_per_month,
            start_date,
            end_date,
        } => PbEvent::PostAppointed(pb::PostAppointed {
            post_id: s(post_id),
            commissioner_id: s(commissioner_id),
            workstation_id: s(workstation_id),
            serving_city: s(serving_city),
            role: s(role),
            hours_per_month: hours_per_month.get(),
            start_date: s(start_date),
            end_date: s(end_date),
        }),
        Event::PostTermExtended {
            post_id,
            end_date,
            previous_end_date,
        } => PbEvent::PostTermExtended(pb::PostTermExtended {
            post_id: s(post_id),
            end_date: s(end_date),
            previous_end_date: s(previous_end_date),
        }),
        Event::PostEnded {
            post_id,
            end_date,
            reason,
        } => PbEvent::PostEnded(pb::PostEnded {
            post_id: s(post_id),
            end_date: s(end_date),
            reason: s(reason),
        }),
        Event::ServiceRecorded {
            service_id,
            post_id,
            date,
            minutes,
            beneficiary,
            beneficiary_city,
            summary,
            demand_id,
        } => PbEvent::ServiceRecorded(pb::ServiceRecorded {
            service_id: s(service_id),
            post_id: s(post_id),
            date: s(date),
            minutes: minutes.get(),
            beneficiary: s(beneficiary),
            beneficiary_city: s(beneficiary_city),
            summary: s(summary),
            demand_id: demand_id.map(s).unwrap_or_default(),
        }),
        Event::DemandSubmitted {
            demand_id,
            title,
            enterprise,
            city,
            expertise,
            hours_per_month,
            start_date,
            end_date,
            description,
        } => PbEvent::DemandSubmitted(pb::DemandSubmitted {
            demand_id: s(demand_id),
            title: s(title),
            enterprise: s(enterprise),
            city: s(city),
            expertise: texts(expertise),
            hours_per_month: hours_per_month.get(),
            start_date: s(start_date),
            end_date: s(end_date),
            description: s(description),
        }),
        Event::DemandDispatched { demand_id, post_id } => {
            PbEvent::DemandDispatched(pb::DemandDispatched {
                demand_id: s(demand_id),
                post_id: s(post_id),
            })
        }
        Event::DemandResolved {
            demand_id,
            outcome,
            satisfaction,
            resolved_on,
        } => PbEvent::DemandResolved(pb::DemandResolved {
            demand_id: s(demand_id),
            outcome: s(outcome),
            satisfaction: satisfaction.get(),
            resolved_on: s(resolved_on),
        }),
        Event::DemandWithdrawn { demand_id, reason } => {
            PbEvent::DemandWithdrawn(pb::DemandWithdrawn {
                demand_id: s(demand_id),
                reason: s(reason),
            })
        }
    }
}

/// A protobuf event oneof as a domain event. Ids, cities, dates and numbers
/// are checked as strictly as in commands; text is taken as stored.
pub fn event_from_pb(event: PbEvent) -> Result<Event, DecodeError> {
    Ok(match event {
        PbEvent::CommissionerRegistered(e) => Event::CommissionerRegistered {
            commissioner_id: CommissionerId::parse("commissioner_id", &e.commissioner_id)?,
            name: t(e.name),
            home_city: CityCode::parse("home_city", &e.home_city)?,
            employer: t(e.employer),
            kind: kind_from_stored(e.kind)?,
            expertise: ts(e.expertise),
        },
        PbEvent::CommissionerProfileUpdated(e) => Event::CommissionerProfileUpdated {
            commissioner_id: CommissionerId::parse("commissioner_id", &e.commissioner_id)?,
            name: t(e.name),
            employer: t(e.employer),
            expertise: ts(e.expertise),
        },
        PbEvent::CommissionerSuspended(e) => Event::CommissionerSuspended {
            commissioner_id: CommissionerId::parse("commissioner_id", &e.commissioner_id)?,
            reason: t(e.reason),
        },
        PbEvent::CommissionerReinstated(e) => Event::CommissionerReinstated {
            commissioner_id: CommissionerId::parse("commissioner_id", &e.commissioner_id)?,
            reason: t(e.reason),
        },
        PbEvent::CommissionerRetired(e) => Event::CommissionerRetired {
            commissioner_id: CommissionerId::parse("commissioner_id", &e.commissioner_id)?,
            effective_date: d("effective_date", &e.effective_date)?,
        },
        PbEvent::WorkstationEstablished(e) => Event::WorkstationEstablished {
            workstation_id: WorkstationId::parse("workstation_id", &e.workstation_id)?,
            name: t(e.name),
            host_org: t(e.host_org),
            host_city: CityCode::parse("host_city", &e.host_city)?,
            capacity: Capacity::parse("capacity", e.capacity)?,
            fields: ts(e.fields),
        },
        PbEvent::WorkstationServiceExtended(e) => Event::WorkstationServiceExtended {
            workstation_id: WorkstationId::parse("workstation_id", &e.workstation_id)?,
            city: CityCode::parse("city", &e.city)?,
        },
        PbEvent::WorkstationServiceWithdrawn(e) => Event::WorkstationServiceWithdrawn {
            workstation_id: WorkstationId::parse("workstation_id", &e.workstation_id)?,
            city: CityCode::parse("city", &e.city)?,
            effective_date: d("effective_date", &e.effective_date)?,
        },
        PbEvent::WorkstationCapacityChanged(e) => Event::WorkstationCapacityChanged {
            workstation_id: WorkstationId::parse("workstation_id", &e.workstation_id)?,
            capacity: Capacity::parse("capacity", e.capacity)?,
            previous_capacity: Capacity::parse("previous_capacity", e.previous_capacity)?,
        },
        PbEvent::WorkstationClosed(e) => Event::WorkstationClosed {
            workstation_id: WorkstationId::parse("workstation_id", &e.workstation_id)?,
            effective_date: d("effective_date", &e.effective_date)?,
        },
        PbEvent::PostAppointed(e) => Event::PostAppointed {
            post_id: PostId::parse("post_id", &e.post_id)?,
            commissioner_id: CommissionerId::parse("commissioner_id", &e.commissioner_id)?,
            workstation_id: WorkstationId::parse("workstation_id", &e.workstation_id)?,
            serving_city: CityCode::parse("serving_city", &e.serving_city)?,
            role: t(e.role),
            hours_per_month: HoursPerMonth::parse("hours_per_month", e.hours_per_month)?,
            start_date: d("start_date", &e.start_date)?,
            end_date: d("end_date", &e.end_date)?,
        },
        PbEvent::PostTermExtended(e) => Event::PostTermExtended {
            post_id: PostId::parse("post_id", &e.post_id)?,
            end_date: d("end_date", &e.end_date)?,
            previous_end_date: d("previous_end_date", &e.previous_end_date)?,
        },
        PbEvent::PostEnded(e) => Event::PostEnded {
            post_id: PostId::parse("post_id", &e.post_id)?,
            end_date: d("end_date", &e.end_date)?,
            reason: t(e.reason),
        },
        PbEvent::ServiceRecorded(e) => Event::ServiceRecorded {
            service_id: ServiceId::parse("service_id", &e.service_id)?,
            post_id: PostId::parse("post_id", &e.post_id)?,
            date: d("date", &e.date)?,
            minutes: Minutes::parse("minutes", e.minutes)?,
            beneficiary: t(e.beneficiary),
            beneficiary_city: CityCode::parse("beneficiary_city", &e.beneficiary_city)?,
            summary: t(e.summary),
            demand_id: match e.demand_id.as_str() {
                "" => None,
                id => Some(DemandId::parse("demand_id", id)?),
            },
        },
        PbEvent::DemandSubmitted(e) => Event::DemandSubmitted {
            demand_id: DemandId::parse("demand_id", &e.demand_id)?,
            title: t(e.title),
            enterprise: t(e.enterprise),
            city: CityCode::parse("city", &e.city)?,
            expertise: ts(e.expertise),
            hours_per_month: HoursPerMonth::parse("hours_per_month", e.hours_per_month)?,
            start_date: d("start_date", &e.start_date)?,
            end_date: d("end_date", &e.end_date)?,
            description: t(e.description),
        },
        PbEvent::DemandDispatched(e) => Event::DemandDispatched {
            demand_id: DemandId::parse("demand_id", &e.demand_id)?,
            post_id: PostId::parse("post_id", &e.post_id)?,
        },
        PbEvent::DemandResolved(e) => Event::DemandResolved {
            demand_id: DemandId::parse("demand_id", &e.demand_id)?,
            outcome: t(e.outcome),
            satisfaction: Satisfaction::parse("satisfaction", e.satisfaction)?,
            resolved_on: d("resolved_on", &e.resolved_on)?,
        },
        PbEvent::DemandWithdrawn(e) => Event::DemandWithdrawn {
            demand_id: DemandId::parse("demand_id", &e.demand_id)?,
            reason: t(e.reason),
        },
    })
}

/// A commissioner's kind as its protobuf enum: the one mapping, shared by
/// the stored event and the views' `kind` column.
pub fn kind_to_pb(kind: CommissionerKind) -> pb::CommissionerKind {
    match kind {
        CommissionerKind::Enterprise => pb::CommissionerKind::Enterprise,
        CommissionerKind::University => pb::CommissionerKind::University,
        CommissionerKind::ResearchInstitute => pb::CommissionerKind::ResearchInstitute,
        CommissionerKind::Individual => pb::CommissionerKind::Individual,
    }
}

fn s(value: impl ToString) -> String {
    value.to_string()
}

fn texts(values: &[Text]) -> Vec<String> {
    values.iter().map(s).collect()
}

fn kind_from_stored(value: i32) -> Result<CommissionerKind, DecodeError> {
    match pb::CommissionerKind::try_from(value) {
        Ok(pb::CommissionerKind::Enterprise) => Ok(CommissionerKind::Enterprise),
        Ok(pb::CommissionerKind::University) => Ok(CommissionerKind::University),
        Ok(pb::CommissionerKind::ResearchInstitute) => Ok(CommissionerKind::ResearchInstitute),
        Ok(pb::CommissionerKind::Individual) => Ok(CommissionerKind::Individual),
        _ => Err(DecodeError::UnknownEnum {
            field: "kind",
            value,
        }),
    }
}

fn t(value: String) -> Text {
    Text::trusted(value)
}

fn ts(values: Vec<String>) -> Vec<Text> {
    values.into_iter().map(Text::trusted).collect()
}

fn d(field: &'static str, value: &str) -> Result<Date, DecodeError> {
    Ok(parse_date(field, value)?)
}
