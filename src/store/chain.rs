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
//!
//! Outside the store a hash travels as 64 lower-case hex digits: in the
//! stream's `Tepai-Hash` header, in exports and in every message that names
//! one. [`hash_to_hex`] and [`hash_from_hex`] are that spelling.

use data_encoding::{HEXLOWER, HEXLOWER_PERMISSIVE};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::{
    decode_event, get_array, get_u64, ChainFault, ChainReport, FaultKind, Head, Position,
    StoreError, SELECT_ALL,
};

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

/// A hash as 64 lower-case hex digits, the way every hash is shown and published.
pub fn hash_to_hex(hash: &[u8; 32]) -> String {
    HEXLOWER.encode(hash)
}

/// Parses 64 hex digits (either case) into a hash; `Err` says what is wrong.
pub fn hash_from_hex(text: &str) -> Result<[u8; 32], String> {
    if text.len() != 64 {
        return Err(format!("{} characters", text.len()));
    }
    let mut out = [0u8; 32];
    HEXLOWER_PERMISSIVE
        .decode_mut(text.as_bytes(), &mut out)
        .map_err(|partial| {
            // The length is right, so the only error left is a digit.
            let byte = text
                .as_bytes()
                .get(partial.error.position)
                .copied()
                .unwrap_or(b'?');
            format!("{:?} is not a hex digit", char::from(byte))
        })?;
    Ok(out)
}

/// Walks every event row in position order, checking that positions are
/// dense and every hash links: the work behind both `verify_chain`s.
pub(super) fn walk_chain(conn: &Connection) -> Result<ChainReport, StoreError> {
    let mut stmt = conn.prepare_cached(SELECT_ALL)?;
    let mut rows = stmt.query([])?;
    let mut report = ChainReport {
        events: 0,
        head: Head::EMPTY,
        first_fault: None,
    };
    let mut expected: Position = 1;
    let mut prev_hash = GENESIS;
    while let Some(row) = rows.next()? {
        // The rowid is always an integer, so the position is readable even
        // when the rest of the row is not.
        let position = get_u64(row, 0, "position")?;
        report.events += 1;
        // Fall back to zeros for an unreadable hash: the row is reported as
        // malformed anyway and only the first fault is kept.
        let stored_hash: [u8; 32] = get_array(row, 11, "hash").unwrap_or(GENESIS);
        let fault = if position != expected {
            Some(FaultKind::Gap { expected })
        } else {
            match decode_event(row) {
                Err(err) => Some(FaultKind::Malformed(err.to_string())),
                Ok(event) if link_hash(&prev_hash, &event.fields()) != event.hash => {
                    Some(FaultKind::HashMismatch)
                }
                Ok(_) => None,
            }
        };
        if let (Some(problem), None) = (fault, &report.first_fault) {
            tracing::warn!(position, %problem, "event chain fault");
            report.first_fault = Some(ChainFault { position, problem });
        }
        // Keep walking from the stored values so the count and head cover the
        // whole table; later faults are consequences of the first one.
        expected = position + 1;
        prev_hash = stored_hash;
        report.head = Head {
            position,
            hash: stored_hash,
        };
    }
    Ok(report)
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
