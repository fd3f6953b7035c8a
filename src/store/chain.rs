//! The integrity chain that links every event to its predecessor.
//!
//! `hash_n = SHA-256(hash_{n-1} || canonical(event_n))`, with 32 zero bytes as
//! the predecessor of the first event. Because each hash covers the previous
//! one, changing any stored column of any event breaks every later link, and
//! `verify_chain` can name the first position where the chain stops holding.
//!
//! The canonical encoding covers every stored column except `hash`, in column
//! order:
//!
//! | field            | encoding                          |
//! |------------------|-----------------------------------|
//! | `position`       | u64, big-endian                   |
//! | `event_id`       | 16 raw bytes                      |
//! | `stream_id`      | u32 BE length, then UTF-8 bytes   |
//! | `stream_version` | u64, big-endian                   |
//! | `event_type`     | u32 BE length, then UTF-8 bytes   |
//! | `schema_version` | u32, big-endian                   |
//! | `payload`        | u32 BE length, then bytes         |
//! | `correlation_id` | u32 BE length, then UTF-8 bytes   |
//! | `causation_id`   | u32 BE length, then UTF-8 bytes   |
//! | `actor`          | u32 BE length, then UTF-8 bytes   |
//! | `recorded_at`    | i64, big-endian (two's complement) |
//!
//! Fixed widths and length prefixes make the encoding injective: no two
//! different events can produce the same bytes, so moving bytes from one field
//! to its neighbour changes the hash. This layout is part of the on-disk format;
//! changing it invalidates every existing chain.

use sha2::{Digest, Sha256};

/// The predecessor hash of the very first event, and the head hash of an empty store.
pub const GENESIS: [u8; 32] = [0; 32];

/// Borrowed view of the hashed columns of one event, so that new and stored
/// events are encoded by the same code without copying their payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventFields<'a> {
    /// Global position of the event.
    pub position: u64,
    /// The event id as its 16 raw bytes.
    pub event_id: &'a [u8; 16],
    /// Stream the event belongs to.
    pub stream_id: &'a str,
    /// Version of the event within its stream.
    pub stream_version: u64,
    /// Event type name.
    pub event_type: &'a str,
    /// Schema version of the payload.
    pub schema_version: u32,
    /// Encoded payload.
    pub payload: &'a [u8],
    /// Correlation id.
    pub correlation_id: &'a str,
    /// Causation id.
    pub causation_id: &'a str,
    /// Who caused the event.
    pub actor: &'a str,
    /// Unix time in milliseconds.
    pub recorded_at: i64,
}

/// Returns the canonical byte encoding of `fields` (see the module docs).
pub fn canonical(fields: &EventFields<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        8 + 16
            + 8
            + 4
            + 8
            + 6 * 4
            + fields.stream_id.len()
            + fields.event_type.len()
            + fields.payload.len()
            + fields.correlation_id.len()
            + fields.causation_id.len()
            + fields.actor.len(),
    );
    write_canonical(fields, |bytes| out.extend_from_slice(bytes));
    out
}

/// Computes the chained hash of an event given its predecessor's hash.
pub fn link_hash(prev: &[u8; 32], fields: &EventFields<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    // Feeding the hasher directly avoids building the canonical buffer, which
    // matters when a group commit hashes thousands of events.
    write_canonical(fields, |bytes| hasher.update(bytes));
    hasher.finalize().into()
}

/// Emits the canonical encoding piece by piece to `sink`.
fn write_canonical(fields: &EventFields<'_>, mut sink: impl FnMut(&[u8])) {
    let EventFields {
        position,
        event_id,
        stream_id,
        stream_version,
        event_type,
        schema_version,
        payload,
        correlation_id,
        causation_id,
        actor,
        recorded_at,
    } = *fields;

    sink(&position.to_be_bytes());
    sink(event_id);
    put_prefixed(&mut sink, stream_id.as_bytes());
    sink(&stream_version.to_be_bytes());
    put_prefixed(&mut sink, event_type.as_bytes());
    sink(&schema_version.to_be_bytes());
    put_prefixed(&mut sink, payload);
    put_prefixed(&mut sink, correlation_id.as_bytes());
    put_prefixed(&mut sink, causation_id.as_bytes());
    put_prefixed(&mut sink, actor.as_bytes());
    sink(&recorded_at.to_be_bytes());
}

/// Writes a u32 big-endian length followed by the bytes themselves.
fn put_prefixed(sink: &mut impl FnMut(&[u8]), bytes: &[u8]) {
    // SQLite refuses strings and blobs longer than SQLITE_MAX_LENGTH (at most
    // 2^31 - 1), so an event whose field would not fit a u32 prefix can never
    // be committed; saturating here cannot leave a stored hash over an
    // ambiguous encoding.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    sink(&len.to_be_bytes());
    sink(bytes);
}
