//! `CommandBatch` bytes to envelopes, and the answer to a batch refused as
//! a whole. A batch's limits are checked before any command in it is
//! looked at; past them nothing is decided. Within the limits each command
//! is validated on its own, as if sent alone: a bad one is answered
//! `INVALID_ARGUMENT` in its place and the others go on.

use prost::Message;

use super::{malformed, pb, DecodeError, Envelope};
use crate::domain::RejectCode;
use crate::limits::MAX_BATCH_COMMANDS;

/// One command of a decoded batch: an envelope to decide, or the answer to
/// a command that cannot be decided (it does not validate).
pub type BatchItem = Result<Envelope, pb::CommandResult>;

/// Decodes a `CommandBatch` of at most `max_batch_bytes` and
/// [`MAX_BATCH_COMMANDS`] commands. An `Err` refuses the whole batch; an
/// `Ok` holds one item per command, in order, each envelope bounded by
/// `max_envelope_bytes` like a single submit.
pub fn decode_batch_within(
    bytes: &[u8],
    max_batch_bytes: usize,
    max_envelope_bytes: usize,
) -> Result<Vec<BatchItem>, DecodeError> {
    if bytes.len() > max_batch_bytes {
        return Err(DecodeError::BatchTooLarge {
            size: bytes.len(),
            limit: max_batch_bytes,
        });
    }
    let batch = pb::CommandBatch::decode(bytes).map_err(|e| malformed("CommandBatch", e))?;
    if batch.commands.len() > MAX_BATCH_COMMANDS {
        return Err(DecodeError::BatchTooManyCommands {
            count: batch.commands.len(),
            limit: MAX_BATCH_COMMANDS,
        });
    }
    Ok(batch
        .commands
        .into_iter()
        .map(|envelope| {
            let size = envelope.encoded_len();
            if size > max_envelope_bytes {
                let error = DecodeError::TooLarge {
                    size,
                    limit: max_envelope_bytes,
                };
                return Err(invalid_command(envelope.command_id, &error));
            }
            let command_id = envelope.command_id.clone();
            Envelope::try_from(envelope).map_err(|error| invalid_command(command_id, &error))
        })
        .collect())
}

/// The answer to a batch refused as a whole: no results, and why.
pub fn batch_refused(error: &DecodeError) -> pb::CommandBatchResult {
    pb::CommandBatchResult {
        results: Vec::new(),
        rejected: Some(pb::Rejected {
            code: pb::RejectCode::from(RejectCode::InvalidArgument) as i32,
            message: error.to_string(),
            rule: error.rule().to_owned(),
        }),
    }
}

/// The answer to one command of a batch that does not validate. Echoes its
/// id when it could be one (at most a UUID's 36 characters), so the
/// producer can match it; the position in the results matches it anyway.
fn invalid_command(mut command_id: String, error: &DecodeError) -> pb::CommandResult {
    if command_id.len() > 36 {
        command_id.clear();
    }
    super::rejected(
        command_id,
        RejectCode::InvalidArgument,
        error.rule(),
        error.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(command_id: &str) -> pb::CommandEnvelope {
        pb::CommandEnvelope {
            command_id: command_id.into(),
            command: Some(pb::command_envelope::Command::SuspendCommissioner(
                pb::SuspendCommissioner {
                    commissioner_id: "0190a7a8-0000-7000-8000-000000000001".into(),
                    reason: "r".into(),
                },
            )),
            ..Default::default()
        }
    }

    fn rule(result: &pb::CommandResult) -> &str {
        match &result.outcome {
            Some(pb::command_result::Outcome::Rejected(r)) => &r.rule,
            _ => "",
        }
    }

    #[test]
    fn each_command_is_validated_on_its_own_in_order() {
        let good = "0190a7a8-0000-7000-8000-0000000000aa";
        let batch = pb::CommandBatch {
            commands: vec![envelope(good), envelope("not-a-uuid"), envelope(good)],
        };
        let items = decode_batch_within(&batch.encode_to_vec(), 1 << 20, 64 << 10)
            .expect("within the limits");
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok() && items[2].is_ok());
        let bad = items[1].as_ref().expect_err("a bad id");
        assert_eq!(rule(bad), "INVALID_FIELD");
        assert_eq!(bad.command_id, "not-a-uuid");
    }

    #[test]
    fn past_a_limit_the_whole_batch_is_refused_naming_it() {
        let id = "0190a7a8-0000-7000-8000-0000000000aa";
        let many = pb::CommandBatch {
            commands: vec![envelope(id); MAX_BATCH_COMMANDS + 1],
        }
        .encode_to_vec();
        let error = decode_batch_within(&many, 1 << 30, 64 << 10).expect_err("too many");
        assert_eq!(
            error.to_string(),
            "a batch holds at most 1000 commands; this one holds 1001"
        );
        let error = decode_batch_within(&many, 1000, 64 << 10).expect_err("too many bytes");
        assert_eq!(error.rule(), "BATCH_TOO_LARGE");
        assert!(error.to_string().contains("at most 1000 bytes"), "{error}");
        let refused = batch_refused(&decode_batch_within(&[0xff], 1000, 1000).expect_err("bad"));
        assert!(refused.results.is_empty());
        assert_eq!(
            refused.rejected.map(|r| (r.code(), r.rule)),
            Some((pb::RejectCode::InvalidArgument, "MALFORMED".to_owned()))
        );
    }

    #[test]
    fn a_command_past_the_envelope_limit_is_refused_alone() {
        let mut big = envelope("0190a7a8-0000-7000-8000-0000000000aa");
        big.correlation_id = "x".repeat(2000);
        let batch = pb::CommandBatch {
            commands: vec![big, envelope("0190a7a8-0000-7000-8000-0000000000bb")],
        };
        let items = decode_batch_within(&batch.encode_to_vec(), 1 << 20, 1024).expect("fits");
        assert_eq!(
            rule(items[0].as_ref().expect_err("too large")),
            "REQUEST_TOO_LARGE"
        );
        assert!(items[1].is_ok());
    }
}
