//! The wire: protobuf types of the public contract (`proto/tepai/v1`) and
//! the conversions between them and the domain. Domain types are not wire
//! types; this module is the only place that knows both. Decoding never
//! panics: bad bytes and bad values become a [`DecodeError`].

mod batch;
mod command;
mod event;
mod result;
#[cfg(test)]
mod tests;

pub use batch::{batch_refused, decode_batch_within, BatchItem};
pub use command::{
    decode_envelope, decode_envelope_within, Envelope, MAX_ACTOR_LEN, MAX_CORRELATION_LEN,
};
pub use event::{
    decode_event_payload, encode_event_payload, event_envelope, event_from_pb, event_to_pb,
    kind_to_pb, EVENT_SCHEMA_VERSION,
};
pub use result::{accepted, rejected, rejection_result};

use crate::domain::FieldError;

/// Generated protobuf types, package `tepai.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/tepai.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/tepai.v1.serde.rs"));
}

/// Largest command envelope [`decode_envelope`] takes: the default of
/// [`crate::limits::Limits::max_envelope_bytes`]. It stops a producer from
/// making the service allocate for garbage.
pub const MAX_ENVELOPE_BYTES: usize = crate::limits::DEFAULT_MAX_ENVELOPE_BYTES;

/// Why bytes or values from the wire could not become domain values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Nothing was sent.
    #[error("the request is empty; send a CommandEnvelope")]
    Empty,
    /// More bytes than the limit (by default [`MAX_ENVELOPE_BYTES`]).
    #[error("the request is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not protobuf of the expected message.
    #[error("the bytes are not a valid {message}: {reason}")]
    Malformed {
        /// Message expected.
        message: &'static str,
        /// What prost said.
        reason: String,
    },
    /// The oneof that says what to do is unset.
    #[error("{0} is missing: the envelope carries no command or event")]
    MissingOneof(&'static str),
    /// An enum value this version does not know.
    #[error("{field}: {value} is not a known value")]
    UnknownEnum {
        /// Field name.
        field: &'static str,
        /// The number sent.
        value: i32,
    },
    /// A field with a bad value.
    #[error("{0}")]
    Field(#[from] FieldError),
    /// A batch of more bytes than the node's `--max-batch-bytes`.
    #[error("a batch is at most {limit} bytes (--max-batch-bytes); this one is {size}")]
    BatchTooLarge {
        /// Bytes received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A batch of more commands than [`crate::limits::MAX_BATCH_COMMANDS`].
    #[error("a batch holds at most {limit} commands; this one holds {count}")]
    BatchTooManyCommands {
        /// Commands received.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

impl DecodeError {
    /// A stable machine name for the `Rejected.rule` field.
    pub fn rule(&self) -> &'static str {
        match self {
            DecodeError::Empty => "EMPTY_REQUEST",
            DecodeError::TooLarge { .. } => "REQUEST_TOO_LARGE",
            DecodeError::Malformed { .. } => "MALFORMED",
            DecodeError::MissingOneof(_) => "MISSING_ONEOF",
            DecodeError::UnknownEnum { .. } => "UNKNOWN_ENUM",
            DecodeError::Field(_) => "INVALID_FIELD",
            DecodeError::BatchTooLarge { .. } => "BATCH_TOO_LARGE",
            DecodeError::BatchTooManyCommands { .. } => "BATCH_TOO_MANY_COMMANDS",
        }
    }
}

fn malformed(message: &'static str, error: prost::DecodeError) -> DecodeError {
    DecodeError::Malformed {
        message,
        reason: error.to_string(),
    }
}
