//! `CommandEnvelope` bytes to a domain [`Command`] with its metadata.

use prost::Message;
use uuid::Uuid;

use super::pb::command_envelope::Command as PbCommand;
use super::{malformed, pb, DecodeError, MAX_ENVELOPE_BYTES};
use crate::domain::{self, parse_date, Command, CommissionerKind, FieldError, Lines, Text};

/// Longest actor name.
pub const MAX_ACTOR_LEN: usize = 64;
/// Longest correlation id.
pub const MAX_CORRELATION_LEN: usize = 128;

/// A decoded, validated command envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The producer's idempotency key.
    pub command_id: Uuid,
    /// Version the target stream must be at, when the producer cares.
    pub expected_version: Option<u64>,
    /// Who asks; `anonymous` when the envelope names no one.
    pub actor: String,
    /// Ties the command's events to the producer's wider operation; the
    /// command id when the envelope has none.
    pub correlation_id: String,
    /// What to do.
    pub command: Command,
}

/// Decodes and validates envelope bytes of at most [`MAX_ENVELOPE_BYTES`].
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    decode_envelope_within(bytes, MAX_ENVELOPE_BYTES)
}

/// Decodes and validates envelope bytes of at most `max_bytes`: the
/// configured [`crate::limits::Limits::max_envelope_bytes`].
pub fn decode_envelope_within(bytes: &[u8], max_bytes: usize) -> Result<Envelope, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: max_bytes,
        });
    }
    let envelope =
        pb::CommandEnvelope::decode(bytes).map_err(|e| malformed("CommandEnvelope", e))?;
    Envelope::try_from(envelope)
}

impl TryFrom<pb::CommandEnvelope> for Envelope {
    type Error = DecodeError;

    fn try_from(envelope: pb::CommandEnvelope) -> Result<Self, DecodeError> {
        // Any UUID is a fine idempotency key; the id types share its parser.
        let command_id = domain::ServiceId::parse("command_id", &envelope.command_id)?.0;
        let actor = if envelope.actor.is_empty() {
            "anonymous".to_owned()
        } else {
            parse_actor(&envelope.actor)?
        };
        let correlation_id = if envelope.correlation_id.is_empty() {
            command_id.hyphenated().to_string()
        } else {
            Text::parse(
                "correlation_id",
                &envelope.correlation_id,
                MAX_CORRELATION_LEN,
                Lines::Single,
                true,
            )?
            .as_str()
            .to_owned()
        };
        let command = envelope
            .command
            .ok_or(DecodeError::MissingOneof("command"))
            .and_then(command_from_pb)?;
        Ok(Envelope {
            command_id,
            expected_version: envelope.expected_version,
            actor,
            correlation_id,
            command,
        })
    }
}

/// Actors become NATS subject tokens and log fields: keep them plain.
fn parse_actor(value: &str) -> Result<String, FieldError> {
    let ok = value.len() <= MAX_ACTOR_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(FieldError::new(
            "actor",
            format!("must be at most {MAX_ACTOR_LEN} of A-Z, a-z, 0-9, '-', '_', '.'"),
        ))
    }
}

fn kind_from_pb(value: i32) -> Result<CommissionerKind, DecodeError> {
    match pb::CommissionerKind::try_from(value) {
        Ok(pb::CommissionerKind::Enterprise) => Ok(CommissionerKind::Enterprise),
        Ok(pb::CommissionerKind::University) => Ok(CommissionerKind::University),
        Ok(pb::CommissionerKind::ResearchInstitute) => Ok(CommissionerKind::ResearchInstitute),
        Ok(pb::CommissionerKind::Individual) => Ok(CommissionerKind::Individual),
        Ok(pb::CommissionerKind::Unspecified) => Err(FieldError::new(
            "kind",
            "is required (ENTERPRISE, UNIVERSITY, RESEARCH_INSTITUTE or INDIVIDUAL)",
        )
        .into()),
        Err(_) => Err(DecodeError::UnknownEnum {
            field: "kind",
            value,
        }),
    }
}

/// Empty means "the day the command is processed".
fn optional_date(field: &'static str, value: &str) -> Result<Option<domain::Date>, FieldError> {
    if value.is_empty() {
        Ok(None)
    } else {
        parse_date(field, value).map(Some)
    }
}

fn reason(value: &str) -> Result<Text, FieldError> {
    Text::note("reason", value)
}

/// An optional demand id: empty means none.
fn optional_demand(value: &str) -> Result<Option<domain::DemandId>, FieldError> {
    if value.is_empty() {
        Ok(None)
    } else {
        domain::DemandId::parse("demand_id", value).map(Some)
    }
}

fn command_from_pb(command: PbCommand) -> Result<Command, DecodeError> {
    use domain::*;
    Ok(match command {
        PbCommand::RegisterCommissioner(c) => Command::RegisterCommissioner(RegisterCommissioner {
            commissioner_id: CommissionerId::parse("commissioner_id", &c.commissioner_id)?,
            name: Text::name("name", &c.name)?,
            home_city: CityCode::parse("home_city", &c.home_city)?,
            employer: Text::name("employer", &c.employer)?,
            kind: kind_from_pb(c.kind)?,
            expertise: parse_tags("expertise", &c.expertise)?,
        }),
        PbCommand::UpdateCommissionerProfile(c) => {
            Command::UpdateCommissionerProfile(UpdateCommissionerProfile {
                commissioner_id: CommissionerId::parse("commissioner_id", &c.commissioner_id)?,
                name: c
                    .name
                    .as_deref()
                    .map(|v| Text::name("name", v))
                    .transpose()?,
                employer: c
                    .employer
                    .as_deref()
                    .map(|v| Text::name("employer", v))
                    .transpose()?,
                expertise: c
                    .expertise
                    .map(|t| parse_tags("expertise", &t.values))
                    .transpose()?,
            })
        }
        PbCommand::SuspendCommissioner(c) => Command::SuspendCommissioner(SuspendCommissioner {
            commissioner_id: CommissionerId::parse("commissioner_id", &c.commissioner_id)?,
            reason: reason(&c.reason)?,
        }),
        PbCommand::ReinstateCommissioner(c) => {
            Command::ReinstateCommissioner(ReinstateCommissioner {
                commissioner_id: CommissionerId::parse("commissioner_id", &c.commissioner_id)?,
                reason: reason(&c.reason)?,
            })
        }
        PbCommand::RetireCommissioner(c) => Command::RetireCommissioner(RetireCommissioner {
            commissioner_id: CommissionerId::parse("commissioner_id", &c.commissioner_id)?,
            effective_date: optional_date("effective_date", &c.effective_date)?,
        }),
        PbCommand::EstablishWorkstation(c) => Command::EstablishWorkstation(EstablishWorkstation {
            workstation_id: WorkstationId::parse("workstation_id", &c.workstation_id)?,
            name: Text::name("name", &c.name)?,
            host_org: Text::name("host_org", &c.host_org)?,
            host_city: CityCode::parse("host_city", &c.host_city)?,
            capacity: Capacity::parse("capacity", c.capacity)?,
            fields: parse_tags("fields", &c.fields)?,
        }),
        PbCommand::ExtendWorkstationService(c) => {
            Command::ExtendWorkstationService(ExtendWorkstationService {
                workstation_id: WorkstationId::parse("workstation_id", &c.workstation_id)?,
                city: CityCode::parse("city", &c.city)?,
            })
        }
        PbCommand::WithdrawWorkstationService(c) => {
            Command::WithdrawWorkstationService(WithdrawWorkstationService {
                workstation_id: WorkstationId::parse("workstation_id", &c.workstation_id)?,
                city: CityCode::parse("city", &c.city)?,
                end_posts: c.end_posts,
                effective_date: optional_date("effective_date", &c.effective_date)?,
            })
        }
        PbCommand::ChangeWorkstationCapacity(c) => {
            Command::ChangeWorkstationCapacity(ChangeWorkstationCapacity {
                workstation_id: WorkstationId::parse("workstation_id", &c.workstation_id)?,
                capacity: Capacity::parse("capacity", c.capacity)?,
            })
        }
        PbCommand::CloseWorkstation(c) => Command::CloseWorkstation(CloseWorkstation {
            workstation_id: WorkstationId::parse("workstation_id", &c.workstation_id)?,
            effective_date: optional_date("effective_date", &c.effective_date)?,
        }),
        PbCommand::AppointPost(c) => Command::AppointPost(AppointPost {
            post_id: PostId::parse("post_id", &c.post_id)?,
            commissioner_id: CommissionerId::parse("commissioner_id", &c.commissioner_id)?,
            workstation_id: WorkstationId::parse("workstation_id", &c.workstation_id)?,
            serving_city: CityCode::parse("serving_city", &c.serving_city)?,
            role: Text::name("role", &c.role)?,
            hours_per_month: HoursPerMonth::parse("hours_per_month", c.hours_per_month)?,
            start_date: parse_date("start_date", &c.start_date)?,
            end_date: parse_date("end_date", &c.end_date)?,
            demand_id: optional_demand(&c.demand_id)?,
        }),
        PbCommand::ExtendPostTerm(c) => Command::ExtendPostTerm(ExtendPostTerm {
            post_id: PostId::parse("post_id", &c.post_id)?,
            end_date: parse_date("end_date", &c.end_date)?,
        }),
        PbCommand::EndPost(c) => Command::EndPost(EndPost {
            post_id: PostId::parse("post_id", &c.post_id)?,
            end_date: parse_date("end_date", &c.end_date)?,
            reason: reason(&c.reason)?,
        }),
        PbCommand::RecordService(c) => Command::RecordService(RecordService {
            service_id: ServiceId::parse("service_id", &c.service_id)?,
            post_id: PostId::parse("post_id", &c.post_id)?,
            date: parse_date("date", &c.date)?,
            minutes: Minutes::parse("minutes", c.minutes)?,
            beneficiary: Text::name("beneficiary", &c.beneficiary)?,
            beneficiary_city: CityCode::parse("beneficiary_city", &c.beneficiary_city)?,
            summary: Text::parse("summary", &c.summary, limits::NOTE, Lines::Multi, false)?,
            demand_id: optional_demand(&c.demand_id)?,
        }),
        PbCommand::SubmitDemand(c) => Command::SubmitDemand(SubmitDemand {
            demand_id: DemandId::parse("demand_id", &c.demand_id)?,
            title: Text::name("title", &c.title)?,
            enterprise: Text::name("enterprise", &c.enterprise)?,
            city: CityCode::parse("city", &c.city)?,
            expertise: parse_wanted_tags("expertise", &c.expertise)?,
            hours_per_month: HoursPerMonth::parse("hours_per_month", c.hours_per_month)?,
            start_date: parse_date("start_date", &c.start_date)?,
            end_date: parse_date("end_date", &c.end_date)?,
            description: Text::parse(
                "description",
                &c.description,
                limits::NOTE,
                Lines::Multi,
                false,
            )?,
        }),
        PbCommand::DispatchDemand(c) => Command::DispatchDemand(DispatchDemand {
            demand_id: DemandId::parse("demand_id", &c.demand_id)?,
            post_id: PostId::parse("post_id", &c.post_id)?,
        }),
        PbCommand::ResolveDemand(c) => Command::ResolveDemand(ResolveDemand {
            demand_id: DemandId::parse("demand_id", &c.demand_id)?,
            outcome: Text::parse("outcome", &c.outcome, limits::NOTE, Lines::Multi, false)?,
            satisfaction: Satisfaction::parse("satisfaction", c.satisfaction)?,
            resolved_on: optional_date("resolved_on", &c.resolved_on)?,
        }),
        PbCommand::WithdrawDemand(c) => Command::WithdrawDemand(WithdrawDemand {
            demand_id: DemandId::parse("demand_id", &c.demand_id)?,
            reason: reason(&c.reason)?,
        }),
    })
}
