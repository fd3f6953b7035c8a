//! Shared helpers: temp stores and envelope builders.

use std::path::{Path, PathBuf};

use tepai::domain::Policy;
use tepai::processor::Processor;
use tepai::store::{EventStore, StoreOptions};
use tepai::wire::pb::{self, command_envelope::Command as C};
use tepai::wire::Envelope;
use uuid::Uuid;

pub const HOHHOT: &str = "150100";
pub const BAOTOU: &str = "150200";

/// 2025-03-01 00:00 in UTC+8, as unix ms: "now" for deterministic tests.
pub const NOW_MS: i64 = 1_740_758_400_000;

pub fn store_path(dir: &Path) -> PathBuf {
    dir.join("events.db")
}

pub fn open_processor(dir: &Path) -> Processor {
    let store = EventStore::open(&store_path(dir), StoreOptions::default()).unwrap();
    Processor::open(store, Policy::default()).unwrap()
}

pub fn id() -> String {
    Uuid::now_v7().to_string()
}

pub fn envelope(command: C) -> pb::CommandEnvelope {
    pb::CommandEnvelope {
        command_id: id(),
        expected_version: None,
        actor: "test".into(),
        correlation_id: String::new(),
        command: Some(command),
    }
}

pub fn decoded(envelope: pb::CommandEnvelope) -> Envelope {
    Envelope::try_from(envelope).unwrap()
}

pub fn register(commissioner_id: &str, name: &str, home_city: &str) -> C {
    C::RegisterCommissioner(pb::RegisterCommissioner {
        commissioner_id: commissioner_id.into(),
        name: name.into(),
        home_city: home_city.into(),
        employer: "内蒙古大学".into(),
        kind: pb::CommissionerKind::University as i32,
        expertise: vec!["乳业".into()],
    })
}

pub fn establish(workstation_id: &str, name: &str, host_city: &str, capacity: u32) -> C {
    C::EstablishWorkstation(pb::EstablishWorkstation {
        workstation_id: workstation_id.into(),
        name: name.into(),
        host_org: "金宇生物".into(),
        host_city: host_city.into(),
        capacity,
        fields: vec!["生物医药".into()],
    })
}

pub fn appoint(
    post_id: &str,
    commissioner_id: &str,
    workstation_id: &str,
    city: &str,
    hours: u32,
) -> C {
    C::AppointPost(pb::AppointPost {
        post_id: post_id.into(),
        commissioner_id: commissioner_id.into(),
        workstation_id: workstation_id.into(),
        serving_city: city.into(),
        role: "技术顾问".into(),
        hours_per_month: hours,
        start_date: "2025-01-01".into(),
        end_date: "2025-12-31".into(),
    })
}

pub fn retire(commissioner_id: &str, effective_date: &str) -> C {
    C::RetireCommissioner(pb::RetireCommissioner {
        commissioner_id: commissioner_id.into(),
        effective_date: effective_date.into(),
    })
}

pub fn accepted(result: &pb::CommandResult) -> &[pb::WrittenEvent] {
    match &result.outcome {
        Some(pb::command_result::Outcome::Accepted(a)) => &a.events,
        other => panic!("expected accepted, got {other:?}"),
    }
}

pub fn rejected(result: &pb::CommandResult) -> (pb::RejectCode, &str, &str) {
    match &result.outcome {
        Some(pb::command_result::Outcome::Rejected(r)) => {
            (r.code(), r.rule.as_str(), r.message.as_str())
        }
        other => panic!("expected rejected, got {other:?}"),
    }
}

/// Runs the `tepai` binary; returns its exit code, stdout and stderr.
pub fn run_tepai(args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tepai"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits (up to 20 s) until the views report `position` applied, asking
/// `tepai.query.status`; a node restarting meanwhile is retried.
pub async fn wait_for_views(client: &async_nats::Client, position: u64) {
    use prost::Message;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let reply = client
            .request(
                "tepai.query.status",
                pb::StatusQuery {}.encode_to_vec().into(),
            )
            .await;
        let checkpoint = reply
            .ok()
            .and_then(|r| pb::Status::decode(r.payload).ok())
            .and_then(|s| s.projections.first().map(|p| p.checkpoint));
        if checkpoint == Some(position) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "views stuck at {checkpoint:?}, want {position}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
