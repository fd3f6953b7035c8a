//! The pure domain: commands, events, the state decisions need, and the
//! rules. `decide(&state, &policy, &command, today)` returns the events a
//! command causes or the rule it breaks; `evolve(&mut state, &event)`
//! applies one event.
//!
//! Architecture invariant: nothing here does IO or knows the wire format.
//! No tokio, rusqlite, async-nats or prost; a test reads these files and
//! fails if one of them is named. Time arrives as an argument.

mod assessment;
mod authorize;
mod command;
mod decide;
mod event;
mod load;
mod policy;
mod rejection;
mod state;
#[cfg(test)]
mod tests;
mod types;

pub use assessment::{score, AssessmentPolicy, Figures, Grade, PolicyError};
pub use authorize::{authorize, Actor, Unauthorized, ADMIN, BUREAU_PREFIX};
pub use command::*;
pub use decide::{decide, period_within};
pub use event::Event;
pub use load::{commissioner_load, overlaps, workstation_load, CommissionerLoad};
pub use policy::Policy;
pub use rejection::{RejectCode, Rejection};
pub use state::{
    evolve, Commissioner, CommissionerStatus, Demand, DemandStatus, Post, State, Workstation,
    WorkstationStatus,
};
pub use types::{
    excerpt, limits, parse_date, parse_date_or, parse_tags, parse_wanted_tags, Capacity, CityCode,
    CommissionerId, Date, DemandId, FieldError, HoursPerMonth, Lines, Minutes, PostId,
    Satisfaction, ServiceId, StreamId, Text, WorkstationId, MAX_DATE, MIN_DATE,
};

/// The date in the region (UTC+8, no daylight saving) at `unix_ms`.
pub fn region_date(unix_ms: i64) -> Date {
    const UTC_PLUS_8_MS: i64 = 8 * 3600 * 1000;
    let days = (unix_ms + UTC_PLUS_8_MS).div_euclid(86_400_000);
    chrono::DateTime::from_timestamp(days * 86_400, 0)
        .map(|t| t.date_naive())
        .unwrap_or(MIN_DATE)
}
