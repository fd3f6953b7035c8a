//! Hostile input at the wire: arbitrary bytes, and well-formed envelopes
//! whose fields hold anything at all, go through decoding, validation and
//! `decide` without a panic. Every refusal is a typed answer with a
//! message; whatever is accepted survives its own event encoding unchanged.

use proptest::prelude::*;
use prost::Message;

use super::pb::{self, command_envelope::Command as C};
use super::{decode_envelope, decode_event_payload, encode_event_payload, DecodeError};
use crate::domain::{decide, evolve, Date, Policy, State};
use crate::processor::writer::invalid_request;

const COMMISSIONER: &str = "00000000-0000-4000-8000-000000000001";
const WORKSTATION: &str = "00000000-0000-4000-8000-000000000002";
const POST: &str = "00000000-0000-4000-8000-000000000003";

fn today() -> Date {
    Date::from_ymd_opt(2025, 3, 1).unwrap_or_default()
}

/// A commissioner, a workstation and a post between them, so generated
/// commands that pick the known ids reach the rules, not just NOT_FOUND.
fn seeded() -> State {
    let mut state = State::default();
    let seeds = [
        C::RegisterCommissioner(pb::RegisterCommissioner {
            commissioner_id: COMMISSIONER.into(),
            name: "张涛".into(),
            home_city: "150100".into(),
            employer: "内蒙古大学".into(),
            kind: pb::CommissionerKind::University as i32,
            expertise: vec!["乳业".into()],
        }),
        C::EstablishWorkstation(pb::EstablishWorkstation {
            workstation_id: WORKSTATION.into(),
            name: "金宇工作站".into(),
            host_org: "金宇生物".into(),
            host_city: "150200".into(),
            capacity: 5,
            fields: vec!["生物医药".into()],
        }),
        C::AppointPost(pb::AppointPost {
            post_id: POST.into(),
            commissioner_id: COMMISSIONER.into(),
            workstation_id: WORKSTATION.into(),
            serving_city: "150200".into(),
            role: "技术顾问".into(),
            hours_per_month: 20,
            start_date: "2025-01-01".into(),
            end_date: "2025-12-31".into(),
            demand_id: String::new(),
        }),
    ];
    for command in seeds {
        let bytes = pb::CommandEnvelope {
            command_id: uuid::Uuid::new_v4().to_string(),
            command: Some(command),
            ..Default::default()
        }
        .encode_to_vec();
        let envelope = decode_envelope(&bytes).expect("seed decodes");
        let events =
            decide(&state, &Policy::default(), &envelope.command, today()).expect("seed accepted");
        for event in &events {
            evolve(&mut state, event);
        }
    }
    state
}

/// Text meant to hurt: any characters (control ones included), SQL,
/// bidi overrides and zero-width characters, emoji, and lengths around
/// and far past the limits.
fn hostile_text() -> BoxedStrategy<String> {
    prop_oneof![
        // Plain text too, so enough envelopes get past validation to the rules.
        8 => "[a-zA-Z0-9张涛乳业稀土站 ]{1,30}",
        4 => proptest::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        2 => Just("'); DROP TABLE events;--".to_owned()),
        1 => Just("Robert\"; DELETE FROM views WHERE 1=1; --".to_owned()),
        2 => Just("\u{202E}站作工\u{200B}\u{200D}\u{FEFF}".to_owned()),
        1 => Just("👩‍🔬🧪 科技特派员 🐄".to_owned()),
        1 => Just("a\u{0}b\u{7}\u{1B}[31m\r\n\u{85}".to_owned()),
        1 => Just("\t多行\n文本\n".to_owned()),
        1 => Just(String::new()),
        2 => (prop::sample::select(vec![63usize, 64, 65, 199, 200, 201, 2000, 2001, 20_000]),
              prop::sample::select(vec!['x', '长', '𝕏']))
            .prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
    ]
    .boxed()
}

fn hostile_id() -> BoxedStrategy<String> {
    prop_oneof![
        8 => prop::sample::select(vec![COMMISSIONER, WORKSTATION, POST]).prop_map(str::to_owned),
        5 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        1 => Just("00000000-0000-0000-0000-000000000000".to_owned()),
        1 => Just("0190F3A2-6C1E-7D2A-9B1E-2F4C5D6E7F80".to_owned()),
        1 => Just("0190f3a26c1e7d2a9b1e2f4c5d6e7f80".to_owned()),
        2 => hostile_text(),
    ]
    .boxed()
}

fn hostile_city() -> BoxedStrategy<String> {
    prop_oneof![
        8 => prop::sample::select(vec!["150100", "150200", "150600"]).prop_map(str::to_owned),
        1 => (0u32..1_000_000).prop_map(|n| format!("{n:06}")),
        1 => Just("１５０１００".to_owned()),
        1 => hostile_text(),
    ]
    .boxed()
}

fn hostile_date() -> BoxedStrategy<String> {
    prop_oneof![
        6 => (2024i32..2028, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        3 => (1985i32..2205, 1u32..13, 1u32..32).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        1 => prop::sample::select(vec![
            "1990-01-01", "2199-12-31", "1989-12-31", "2200-01-01", "2025-02-29",
            "2024-02-29", "+2025-01-01", "2025-1-1", "2025-01-01T00:00:00Z", "",
        ]).prop_map(str::to_owned),
        1 => hostile_text(),
    ].boxed()
}

fn hostile_number() -> BoxedStrategy<u32> {
    prop_oneof![3 => 0u32..100, 1 => 0u32..2000, 1 => any::<u32>()].boxed()
}

fn hostile_tags() -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        4 => proptest::collection::vec(hostile_text(), 0..4),
        1 => (0usize..40).prop_map(|n| vec!["标签".to_owned(); n]),
    ]
    .boxed()
}

fn hostile_command() -> BoxedStrategy<C> {
    prop_oneof![
        (
            hostile_id(),
            hostile_text(),
            hostile_city(),
            hostile_text(),
            -2i32..7,
            hostile_tags()
        )
            .prop_map(
                |(commissioner_id, name, home_city, employer, kind, expertise)| {
                    C::RegisterCommissioner(pb::RegisterCommissioner {
                        commissioner_id,
                        name,
                        home_city,
                        employer,
                        kind,
                        expertise,
                    })
                }
            )
            .boxed(),
        (
            hostile_id(),
            proptest::option::of(hostile_text()),
            proptest::option::of(hostile_text()),
            proptest::option::of(hostile_tags())
        )
            .prop_map(|(commissioner_id, name, employer, tags)| {
                C::UpdateCommissionerProfile(pb::UpdateCommissionerProfile {
                    commissioner_id,
                    name,
                    employer,
                    expertise: tags.map(|values| pb::Tags { values }),
                })
            })
            .boxed(),
        (hostile_id(), hostile_text())
            .prop_map(|(commissioner_id, reason)| {
                C::SuspendCommissioner(pb::SuspendCommissioner {
                    commissioner_id,
                    reason,
                })
            })
            .boxed(),
        (hostile_id(), hostile_date())
            .prop_map(|(commissioner_id, effective_date)| {
                C::RetireCommissioner(pb::RetireCommissioner {
                    commissioner_id,
                    effective_date,
                })
            })
            .boxed(),
        (
            hostile_id(),
            hostile_text(),
            hostile_text(),
            hostile_city(),
            hostile_number(),
            hostile_tags()
        )
            .prop_map(
                |(workstation_id, name, host_org, host_city, capacity, fields)| {
                    C::EstablishWorkstation(pb::EstablishWorkstation {
                        workstation_id,
                        name,
                        host_org,
                        host_city,
                        capacity,
                        fields,
                    })
                }
            )
            .boxed(),
        (hostile_id(), hostile_city(), any::<bool>(), hostile_date())
            .prop_map(|(workstation_id, city, end_posts, effective_date)| {
                C::WithdrawWorkstationService(pb::WithdrawWorkstationService {
                    workstation_id,
                    city,
                    end_posts,
                    effective_date,
                })
            })
            .boxed(),
        (
            hostile_id(),
            hostile_id(),
            hostile_id(),
            hostile_city(),
            hostile_text(),
            hostile_number(),
            hostile_date(),
            hostile_date()
        )
            .prop_map(
                |(
                    post_id,
                    commissioner_id,
                    workstation_id,
                    serving_city,
                    role,
                    hours_per_month,
                    start_date,
                    end_date,
                )| {
                    C::AppointPost(pb::AppointPost {
                        post_id,
                        commissioner_id,
                        workstation_id,
                        serving_city,
                        role,
                        hours_per_month,
                        start_date,
                        end_date,
                        demand_id: String::new(),
                    })
                }
            )
            .boxed(),
        (hostile_id(), hostile_date())
            .prop_map(|(post_id, end_date)| {
                C::ExtendPostTerm(pb::ExtendPostTerm { post_id, end_date })
            })
            .boxed(),
        (hostile_id(), hostile_date(), hostile_text())
            .prop_map(|(post_id, end_date, reason)| {
                C::EndPost(pb::EndPost {
                    post_id,
                    end_date,
                    reason,
                })
            })
            .boxed(),
        (
            hostile_id(),
            hostile_id(),
            hostile_date(),
            hostile_number(),
            hostile_text(),
            hostile_city(),
            hostile_text()
        )
            .prop_map(
                |(service_id, post_id, date, minutes, beneficiary, beneficiary_city, summary)| {
                    C::RecordService(pb::RecordService {
                        service_id,
                        post_id,
                        date,
                        minutes,
                        beneficiary,
                        beneficiary_city,
                        summary,
                        demand_id: String::new(),
                    })
                }
            ),
        (
            (hostile_id(), hostile_text(), hostile_text(), hostile_city()),
            (
                hostile_tags(),
                hostile_number(),
                hostile_date(),
                hostile_date()
            ),
            hostile_text()
        )
            .prop_map(
                |(
                    (demand_id, title, enterprise, city),
                    (expertise, hours_per_month, start_date, end_date),
                    description,
                )| {
                    C::SubmitDemand(pb::SubmitDemand {
                        demand_id,
                        title,
                        enterprise,
                        city,
                        expertise,
                        hours_per_month,
                        start_date,
                        end_date,
                        description,
                    })
                }
            ),
        (hostile_id(), hostile_id()).prop_map(|(demand_id, post_id)| {
            C::DispatchDemand(pb::DispatchDemand { demand_id, post_id })
        }),
        (
            hostile_id(),
            hostile_text(),
            hostile_number(),
            hostile_date()
        )
            .prop_map(|(demand_id, outcome, satisfaction, resolved_on)| {
                C::ResolveDemand(pb::ResolveDemand {
                    demand_id,
                    outcome,
                    satisfaction,
                    resolved_on,
                })
            }),
        (hostile_id(), hostile_text()).prop_map(|(demand_id, reason)| {
            C::WithdrawDemand(pb::WithdrawDemand { demand_id, reason })
        }),
    ]
    .boxed()
}

fn hostile_envelope() -> BoxedStrategy<pb::CommandEnvelope> {
    (
        hostile_id(),
        proptest::option::of(any::<u64>()),
        prop_oneof![3 => Just("producer-1".to_owned()), 1 => hostile_text()],
        prop_oneof![3 => Just(String::new()), 1 => hostile_text()],
        proptest::option::of(hostile_command()),
    )
        .prop_map(
            |(command_id, expected_version, actor, correlation_id, command)| pb::CommandEnvelope {
                command_id,
                expected_version,
                actor,
                correlation_id,
                command,
            },
        )
        .boxed()
}

/// What the command service answers for bytes that do not decode: a
/// typed INVALID_ARGUMENT with a rule and a message.
fn assert_invalid_answer(bytes: &[u8], error: &DecodeError) {
    let answer = invalid_request(bytes, error);
    let Some(pb::command_result::Outcome::Rejected(rejected)) = answer.outcome else {
        panic!("bad bytes were not rejected: {answer:?}");
    };
    assert_eq!(rejected.code(), pb::RejectCode::InvalidArgument);
    assert_eq!(rejected.rule, error.rule());
    assert!(!rejected.message.is_empty());
    assert!(answer.command_id.len() <= 36);
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// The bytes did not decode or a field failed validation.
    Undecodable,
    /// Decoded, and refused by a rule with this code.
    Refused(pb::RejectCode),
    /// Decoded and accepted.
    Accepted,
}

/// Decodes, and decides what decodes, checking each answer's shape.
fn decode_and_decide(state: &State, bytes: &[u8]) -> Outcome {
    let envelope = match decode_envelope(bytes) {
        Ok(envelope) => envelope,
        Err(error) => {
            assert_invalid_answer(bytes, &error);
            return Outcome::Undecodable;
        }
    };
    match decide(state, &Policy::default(), &envelope.command, today()) {
        Ok(events) => {
            let mut next = state.clone();
            for event in &events {
                let payload = encode_event_payload(event);
                assert_eq!(decode_event_payload(&payload).as_ref(), Ok(event));
                evolve(&mut next, event);
            }
            Outcome::Accepted
        }
        Err(rejection) => {
            assert!(!rejection.to_string().is_empty());
            assert!(!rejection.rule().is_empty());
            Outcome::Refused(rejection.code().into())
        }
    }
}

/// The generator is worth its cases: over a fixed seed, hostile envelopes
/// end in every outcome (so accepted text is checked too, not only
/// refusals), and none panics.
#[test]
fn well_formed_envelopes_with_hostile_fields_are_decided_or_refused_with_a_reason() {
    let state = seeded();
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<Outcome, u32>::new());
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(
        ProptestConfig {
            cases: 2048,
            ..ProptestConfig::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    runner
        .run(&hostile_envelope(), |envelope| {
            let outcome = decode_and_decide(&state, &envelope.encode_to_vec());
            *seen.borrow_mut().entry(outcome).or_default() += 1;
            Ok(())
        })
        .expect("no case fails");
    let seen = seen.into_inner();
    assert!(seen.contains_key(&Outcome::Undecodable), "{seen:?}");
    assert!(seen.contains_key(&Outcome::Accepted), "{seen:?}");
    assert!(
        seen.keys().any(|o| matches!(o, Outcome::Refused(_))),
        "{seen:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_decode_to_a_typed_error_or_an_envelope(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048)
    ) {
        decode_and_decide(&seeded(), &bytes);
    }

    #[test]
    fn a_truncated_hostile_envelope_is_an_error_or_a_prefix_that_decodes(
        envelope in hostile_envelope(), cut in any::<prop::sample::Index>()
    ) {
        let bytes = envelope.encode_to_vec();
        let cut = cut.index(bytes.len().max(1));
        decode_and_decide(&seeded(), &bytes[..cut]);
    }
}

/// Accepted text comes back from the event encoding byte for byte: SQL,
/// bidi and zero-width characters and emoji are data, not rejected.
#[test]
fn names_with_sql_bidi_zero_width_and_emoji_are_accepted_verbatim() {
    for name in [
        "'); DROP TABLE events;--",
        "\u{202E}站作工\u{200B}\u{200D}\u{FEFF}",
        "👩‍🔬🧪 科技特派员 🐄",
        "ᠪᠠᠭᠠᠲᠤᠷ\u{180B}\u{200D}",
    ] {
        let bytes = pb::CommandEnvelope {
            command_id: uuid::Uuid::new_v4().to_string(),
            command: Some(C::RegisterCommissioner(pb::RegisterCommissioner {
                commissioner_id: uuid::Uuid::new_v4().to_string(),
                name: name.into(),
                home_city: "150100".into(),
                employer: name.into(),
                kind: pb::CommissionerKind::Individual as i32,
                expertise: vec![name.into()],
            })),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            decode_and_decide(&State::default(), &bytes),
            Outcome::Accepted,
            "{name:?}"
        );
        let envelope = decode_envelope(&bytes).expect("decodes");
        let events = decide(
            &State::default(),
            &Policy::default(),
            &envelope.command,
            today(),
        )
        .expect("accepted");
        let pb_event = super::event_to_pb(&events[0]);
        let Some(pb::event_envelope::Event::CommissionerRegistered(registered)) =
            pb::EventEnvelope::decode(encode_event_payload(&events[0]).as_slice())
                .expect("event decodes")
                .event
        else {
            panic!("not a registration: {pb_event:?}");
        };
        assert_eq!(registered.name.as_bytes(), name.as_bytes());
        assert_eq!(registered.employer, name);
        assert_eq!(registered.expertise, vec![name.to_owned()]);
    }
}

/// A length prefix that claims far more than is there, nesting far past
/// prost's recursion limit, and bytes past the limit are typed errors,
/// found without allocating what they claim.
#[test]
fn lying_lengths_deep_nesting_and_oversize_are_typed_errors() {
    // Field 1 (command_id), length-delimited, claiming 2^32 - 1 bytes.
    let mut lying = vec![0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
    lying.extend_from_slice(b"short");
    assert!(matches!(
        decode_envelope(&lying),
        Err(DecodeError::Malformed { .. })
    ));
    // The same inside the oneof (field 10 and on, RegisterCommissioner = 10).
    let mut nested_lie = vec![0x52, 0x06, 0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
    nested_lie.extend_from_slice(b"x");
    assert!(decode_envelope(&nested_lie).is_err());
    // 10,000 nested unknown groups (field 99, start group) and their ends.
    let start = [0x9B, 0x06];
    let end = [0x9C, 0x06];
    let mut groups = start.repeat(10_000);
    groups.extend(end.repeat(10_000));
    assert!(matches!(
        decode_envelope(&groups),
        Err(DecodeError::Malformed { .. })
    ));
    // Nested length-delimited unknown fields, each claiming the rest.
    let mut onion: Vec<u8> = Vec::new();
    for _ in 0..5_000 {
        let mut outer = vec![0xFA, 0x01];
        prost::encoding::encode_varint(onion.len() as u64, &mut outer);
        outer.extend_from_slice(&onion);
        onion = outer;
        if onion.len() > 60_000 {
            break;
        }
    }
    let _ = decode_envelope(&onion);
    let oversize = vec![0x0A; crate::wire::MAX_ENVELOPE_BYTES + 1];
    assert!(matches!(
        decode_envelope(&oversize),
        Err(DecodeError::TooLarge { .. })
    ));
    for bytes in [&lying[..], &nested_lie, &groups, &onion, &oversize] {
        if let Err(error) = decode_envelope(bytes) {
            assert_invalid_answer(bytes, &error);
        }
    }
}
