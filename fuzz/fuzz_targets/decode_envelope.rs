//! Bytes as a command envelope: decoding never panics, and whatever
//! decodes is decided against a small state holding a commissioner, a
//! workstation and a post (so ids the fuzzer stumbles on can hit them).
//! Accepted events must survive their own encoding unchanged.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tepai::domain::{decide, evolve, Date, Policy, RejectCode, State};
use tepai::processor::writer::invalid_request;
use tepai::wire::{self, pb, pb::command_envelope::Command as C};

const COMMISSIONER: &str = "00000000-0000-4000-8000-000000000001";
const WORKSTATION: &str = "00000000-0000-4000-8000-000000000002";
const POST: &str = "00000000-0000-4000-8000-000000000003";

fn today() -> Date {
    Date::from_ymd_opt(2025, 3, 1).unwrap_or_default()
}

fn seeded() -> &'static (State, Policy) {
    static SEEDED: OnceLock<(State, Policy)> = OnceLock::new();
    SEEDED.get_or_init(|| {
        let policy = Policy::default();
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
        for (n, command) in seeds.into_iter().enumerate() {
            let bytes = pb::CommandEnvelope {
                command_id: format!("00000000-0000-4000-8000-0000000001{n:02}"),
                command: Some(command),
                ..Default::default()
            }
            .encode_to_vec();
            let envelope = wire::decode_envelope(&bytes).expect("seed decodes");
            let events =
                decide(&state, &policy, &envelope.command, today()).expect("seed accepted");
            for event in &events {
                evolve(&mut state, event);
            }
        }
        (state, policy)
    })
}

fuzz_target!(|bytes: &[u8]| {
    let (state, policy) = seeded();
    match wire::decode_envelope(bytes) {
        Err(error) => {
            let answer = invalid_request(bytes, &error);
            match answer.outcome {
                Some(pb::command_result::Outcome::Rejected(r)) => {
                    assert_eq!(r.code(), pb::RejectCode::InvalidArgument);
                    assert!(!r.message.is_empty() && !r.rule.is_empty());
                }
                other => panic!("bad bytes answered {other:?}"),
            }
        }
        Ok(envelope) => match decide(state, policy, &envelope.command, today()) {
            Ok(events) => {
                let mut next = state.clone();
                for event in &events {
                    let payload = wire::encode_event_payload(event);
                    assert_eq!(wire::decode_event_payload(&payload).as_ref(), Ok(event));
                    evolve(&mut next, event);
                }
            }
            Err(rejection) => {
                assert!(!rejection.to_string().is_empty());
                assert!(!rejection.rule().is_empty());
                let _: RejectCode = rejection.code();
            }
        },
    }
});
