//! Bad input never panics, is answered INVALID_ARGUMENT with a reason, and
//! writes nothing: random bytes, truncated envelopes, oversized requests,
//! deep nesting, and values outside their ranges.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use prost::Message;
use tepai::processor::writer::{CommandWriter, WriterHandle, WriterOptions};
use tepai::wire::{self, pb, DecodeError, MAX_ENVELOPE_BYTES};

use crate::support::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn submit(handle: &WriterHandle, bytes: &[u8]) -> pb::CommandResult {
    runtime().block_on(handle.submit_bytes(bytes))
}

fn assert_invalid(result: &pb::CommandResult) {
    let (code, rule, message) = rejected(result);
    assert_eq!(code, pb::RejectCode::InvalidArgument, "{rule}: {message}");
    assert!(!message.is_empty());
}

fn valid_appointment() -> Vec<u8> {
    envelope(appoint(&id(), &id(), &id(), HOHHOT, 20)).encode_to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_decode_into_a_command(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        // Any error is fine; a panic or an accepted envelope is not.
        prop_assert!(wire::decode_envelope(&bytes).is_err());
    }

    #[test]
    fn flipped_bytes_in_a_valid_envelope_never_panic(index in 0usize..200, value in any::<u8>()) {
        let mut bytes = valid_appointment();
        let i = index % bytes.len();
        bytes[i] = value;
        let _ = wire::decode_envelope(&bytes);
    }
}

#[test]
fn random_and_truncated_requests_are_rejected_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let writer =
        CommandWriter::spawn(open_processor(dir.path()), WriterOptions::default()).unwrap();
    let handle = writer.handle();
    let valid = valid_appointment();

    for cut in 0..valid.len() {
        assert_invalid(&submit(&handle, &valid[..cut]));
    }
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..300 {
        let bytes = proptest::collection::vec(any::<u8>(), 1..256)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        assert_invalid(&submit(&handle, &bytes));
    }

    drop(handle);
    let processor = writer.join().unwrap();
    assert_eq!(processor.head(), 0);
    assert_eq!(processor.commits(), 0);
}

#[test]
fn an_oversized_request_is_refused_before_decoding() {
    let big = vec![0u8; MAX_ENVELOPE_BYTES + 1];
    assert_eq!(
        wire::decode_envelope(&big),
        Err(DecodeError::TooLarge {
            size: MAX_ENVELOPE_BYTES + 1,
            limit: MAX_ENVELOPE_BYTES
        })
    );
    assert_eq!(wire::decode_envelope(&[]), Err(DecodeError::Empty));
}

#[test]
fn a_configured_envelope_limit_is_applied_before_decoding() {
    let valid = valid_appointment();
    let limit = valid.len() - 1;
    assert_eq!(
        wire::decode_envelope_within(&valid, limit),
        Err(DecodeError::TooLarge {
            size: valid.len(),
            limit
        })
    );
    assert!(wire::decode_envelope_within(&valid, valid.len()).is_ok());
}

#[test]
fn deeply_nested_groups_do_not_overflow_the_stack() {
    // Field 5, wire type 3 (start group), repeated far past any recursion limit.
    let bytes = vec![0x2B; 60_000];
    assert!(matches!(
        wire::decode_envelope(&bytes),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn values_out_of_range_name_the_field_and_the_reason() {
    let cases: Vec<(pb::command_envelope::Command, &str, &str)> = vec![
        (
            register("not-a-uuid", "张涛", HOHHOT),
            "commissioner_id",
            "is not a UUID",
        ),
        (
            register(&id(), "张涛", "15010"),
            "home_city",
            "is not a city code",
        ),
        (register(&id(), "", HOHHOT), "name", "is required"),
        (
            register(&id(), &"长".repeat(201), HOHHOT),
            "name",
            "the limit is 200",
        ),
        (
            register(&id(), "张\u{0}博", HOHHOT),
            "name",
            "control character",
        ),
        (
            establish(&id(), "站", HOHHOT, 0),
            "capacity",
            "out of range 1–500",
        ),
        (
            establish(&id(), "站", HOHHOT, 501),
            "capacity",
            "out of range 1–500",
        ),
        (
            appoint(&id(), &id(), &id(), HOHHOT, 745),
            "hours_per_month",
            "out of range 1–744",
        ),
        (
            pb::command_envelope::Command::ExtendPostTerm(pb::ExtendPostTerm {
                post_id: id(),
                end_date: "2025-02-30".into(),
            }),
            "end_date",
            "is not a date",
        ),
        (
            pb::command_envelope::Command::RecordService(pb::RecordService {
                service_id: id(),
                post_id: id(),
                date: "2025-03-01".into(),
                minutes: 1441,
                beneficiary: "金宇生物".into(),
                beneficiary_city: HOHHOT.into(),
                summary: String::new(),
                demand_id: String::new(),
            }),
            "minutes",
            "out of range 1–1440",
        ),
    ];
    for (command, field, reason) in cases {
        let error = wire::decode_envelope(&envelope(command).encode_to_vec()).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with(field) && message.contains(reason),
            "{message}"
        );
    }
    let mut missing = envelope(register(&id(), "张涛", HOHHOT));
    missing.command = None;
    assert_eq!(
        wire::decode_envelope(&missing.encode_to_vec()),
        Err(DecodeError::MissingOneof("command"))
    );
    let mut bad_kind = envelope(register(&id(), "张涛", HOHHOT));
    if let Some(pb::command_envelope::Command::RegisterCommissioner(c)) = bad_kind.command.as_mut()
    {
        c.kind = 99;
    }
    assert_eq!(
        wire::decode_envelope(&bad_kind.encode_to_vec()),
        Err(DecodeError::UnknownEnum {
            field: "kind",
            value: 99
        })
    );
}
