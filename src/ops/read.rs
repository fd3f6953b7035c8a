//! Reading the store for people: the read-only opening, the range scan,
//! the payload decoded for display and its JSON form, shared by
//! `tepai ops export` and `tepai ops inspect`.

use std::io;

use anyhow::{bail, Context};
use prost::Message as _;
use serde::ser::SerializeMap as _;

use crate::config::NodeOptions;
use crate::store::{Position, StoreError, StoreReader, StoredEvent};
use crate::wire::pb::{self, event_envelope::Event as PbEvent};

/// Opens the store of `node` read-only, saying where it looked when there is none.
pub fn open_reader(node: &NodeOptions) -> anyhow::Result<StoreReader> {
    let path = node.store_path();
    if !path.exists() {
        bail!(
            "no event store at {} (set --data-dir or TEPAI_DATA_DIR)",
            path.display()
        );
    }
    StoreReader::open(&path).with_context(|| format!("opening {}", path.display()))
}

/// Calls `f` with every event in `first..=last`, in order, streaming.
pub fn scan_range(
    reader: &StoreReader,
    first: Position,
    last: Position,
    mut f: impl FnMut(StoredEvent) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    /// Why the scan stopped before the end of the table.
    enum Stop {
        Done,
        Failed(anyhow::Error),
    }
    impl From<StoreError> for Stop {
        fn from(error: StoreError) -> Self {
            Stop::Failed(error.into())
        }
    }
    if first > last {
        return Ok(());
    }
    let scanned = reader.for_each_from(first.saturating_sub(1), |event| {
        if event.position > last {
            return Err(Stop::Done);
        }
        f(event).map_err(Stop::Failed)
    });
    match scanned {
        Ok(()) | Err(Stop::Done) => Ok(()),
        Err(Stop::Failed(error)) => Err(error),
    }
}

/// True when writing stopped because the reader of stdout went away.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The payload's event oneof, for display; `Err` says why it is unreadable.
/// Decoded as protobuf only, not validated, so an operator sees what is
/// stored even when the domain would refuse it.
pub fn decode_for_display(payload: &[u8]) -> Result<PbEvent, String> {
    pb::EventEnvelope::decode(payload)
        .map_err(|e| format!("not an EventEnvelope: {e}"))?
        .event
        .ok_or_else(|| "the payload carries no event".to_owned())
}

/// An event oneof in the proto3 JSON mapping: `{"post_appointed": {…}}`.
///
/// The generated serializer only exists for the whole envelope, which
/// (with `emit_fields`) would also print empty metadata; this names the one
/// field that is set. A new event variant fails to compile here until it is
/// named, so the names cannot fall behind the contract.
pub struct EventJson<'a>(pub &'a PbEvent);

impl serde::Serialize for EventJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        macro_rules! one_field {
            ($($variant:ident => $name:literal),* $(,)?) => {
                match self.0 {
                    $(PbEvent::$variant(inner) => {
                        let mut map = serializer.serialize_map(Some(1))?;
                        map.serialize_entry($name, inner)?;
                        map.end()
                    })*
                }
            };
        }
        one_field!(
            CommissionerRegistered => "commissioner_registered",
            CommissionerProfileUpdated => "commissioner_profile_updated",
            CommissionerSuspended => "commissioner_suspended",
            CommissionerReinstated => "commissioner_reinstated",
            CommissionerRetired => "commissioner_retired",
            WorkstationEstablished => "workstation_established",
            WorkstationServiceExtended => "workstation_service_extended",
            WorkstationServiceWithdrawn => "workstation_service_withdrawn",
            WorkstationCapacityChanged => "workstation_capacity_changed",
            WorkstationClosed => "workstation_closed",
            PostAppointed => "post_appointed",
            PostTermExtended => "post_term_extended",
            PostEnded => "post_ended",
            ServiceRecorded => "service_recorded",
            DemandSubmitted => "demand_submitted",
            DemandDispatched => "demand_dispatched",
            DemandResolved => "demand_resolved",
            DemandWithdrawn => "demand_withdrawn",
        )
    }
}
