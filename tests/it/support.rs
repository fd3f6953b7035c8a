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
        demand_id: String::new(),
    })
}

/// A demand in `city` for the expertise [`register`] gives, over 2025.
pub fn submit_demand(demand_id: &str, city: &str) -> C {
    C::SubmitDemand(pb::SubmitDemand {
        demand_id: demand_id.into(),
        title: "乳品工艺改进".into(),
        enterprise: "伊利集团".into(),
        city: city.into(),
        expertise: vec!["乳业".into()],
        hours_per_month: 10,
        start_date: "2025-01-01".into(),
        end_date: "2025-12-31".into(),
        description: String::new(),
    })
}

/// An hour of service through `post_id` for `demand_id`, in Hohhot.
pub fn service_for(post_id: &str, demand_id: &str) -> C {
    C::RecordService(pb::RecordService {
        service_id: id(),
        post_id: post_id.into(),
        date: "2025-06-02".into(),
        minutes: 60,
        beneficiary: "伊利集团".into(),
        beneficiary_city: HOHHOT.into(),
        summary: String::new(),
        demand_id: demand_id.into(),
    })
}

/// Resolves `demand_id` with satisfaction 4.
pub fn resolve(demand_id: &str) -> C {
    C::ResolveDemand(pb::ResolveDemand {
        demand_id: demand_id.into(),
        outcome: "完成".into(),
        satisfaction: 4,
        resolved_on: "2025-06-30".into(),
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
                tepai::bus::QUERY_STATUS_SUBJECT,
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

/// A `tepai` child process (`up` or `serve <role>`); SIGKILLed on drop, so
/// a failed test leaves no orphan behind.
pub struct TepaiProcess(pub std::process::Child);

impl TepaiProcess {
    /// Starts `tepai <role…> --nats-url <url> --http-addr 127.0.0.1:0
    /// --data-dir <dir>`; `role` is e.g. `&["up"]` or `&["serve", "query"]`.
    pub fn spawn(role: &[&str], nats_url: &str, dir: &Path) -> Self {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_tepai"))
            .args(role)
            .args(["--nats-url", nats_url, "--http-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }

    /// `tepai up` on `dir`.
    pub fn up(nats_url: &str, dir: &Path) -> Self {
        Self::spawn(&["up"], nats_url, dir)
    }

    /// SIGKILL: no destructor, no flush, no clean close.
    pub fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for TepaiProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// True when the node answered `UNAVAILABLE`: nothing was written and the
/// producer should resend the same command id.
pub fn is_unavailable(result: &pb::CommandResult) -> bool {
    matches!(&result.outcome,
        Some(pb::command_result::Outcome::Rejected(r)) if r.code() == pb::RejectCode::Unavailable)
}

/// Sends `envelope` until it is answered, resending the same command id
/// after a timeout, no responders or `UNAVAILABLE`: the producer's side of
/// exactly-once. Gives up after a minute.
pub async fn send_until_answered(
    client: &async_nats::Client,
    envelope: &pb::CommandEnvelope,
) -> pb::CommandResult {
    send_counting_failures(client, envelope, &std::sync::atomic::AtomicUsize::new(0)).await
}

/// [`send_until_answered`], adding to `failures` each attempt that timed
/// out, found no responder or was answered `UNAVAILABLE`.
pub async fn send_counting_failures(
    client: &async_nats::Client,
    envelope: &pb::CommandEnvelope,
    failures: &std::sync::atomic::AtomicUsize,
) -> pb::CommandResult {
    use prost::Message;
    let bytes: bytes::Bytes = envelope.encode_to_vec().into();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let attempt = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            client.request("tepai.cmd.submit", bytes.clone()),
        )
        .await;
        if let Ok(Ok(reply)) = attempt {
            let result = pb::CommandResult::decode(reply.payload).unwrap();
            if !is_unavailable(&result) {
                return result;
            }
        }
        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(
            tokio::time::Instant::now() < deadline,
            "command {} never answered",
            envelope.command_id
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Checks the store after faults: the chain is clean; every acknowledged
/// command is in the command log with the answer the producer got; and
/// every command in the log has exactly the events its result lists, by
/// causation id (all or nothing). Returns the store's event ids in order.
pub fn assert_store_exactly_once(
    dir: &Path,
    acknowledged: &[(String, pb::CommandResult)],
) -> Vec<String> {
    use prost::Message;
    use std::collections::{HashMap, HashSet};
    let reader = tepai::store::StoreReader::open(&store_path(dir)).unwrap();
    let report = reader.verify_chain().unwrap();
    assert!(report.is_clean(), "{:?}", report.first_fault);
    let events = reader.read_from(0, usize::MAX).unwrap();
    assert_eq!(report.events, events.len() as u64);
    let mut by_command: HashMap<String, Vec<u64>> = HashMap::new();
    for event in &events {
        by_command
            .entry(event.causation_id.clone())
            .or_default()
            .push(event.position);
    }
    let written = |result: &pb::CommandResult| -> Vec<u64> {
        match &result.outcome {
            Some(pb::command_result::Outcome::Accepted(a)) => {
                a.events.iter().map(|e| e.global_position).collect()
            }
            _ => Vec::new(),
        }
    };
    let mut seen = HashSet::new();
    for (command_id, answer) in acknowledged {
        assert!(seen.insert(command_id), "acknowledged twice: {command_id}");
        let uuid = Uuid::parse_str(command_id).unwrap();
        let stored = reader.command_result(&uuid).unwrap().unwrap_or_else(|| {
            panic!("acknowledged command {command_id} is not in the command log")
        });
        let stored = pb::CommandResult::decode(stored.as_slice()).unwrap();
        assert_eq!(&stored, answer, "{command_id}: stored answer differs");
    }
    // Every event belongs to a logged command listing exactly the events
    // the store holds for it: nothing half-written.
    for (command_id, positions) in &by_command {
        let uuid = Uuid::parse_str(command_id).unwrap();
        let stored = reader
            .command_result(&uuid)
            .unwrap()
            .unwrap_or_else(|| panic!("events of {command_id} without its command"));
        let stored = pb::CommandResult::decode(stored.as_slice()).unwrap();
        assert_eq!(&written(&stored), positions, "{command_id}");
    }
    for (command_id, answer) in acknowledged {
        let positions = by_command.get(command_id).cloned().unwrap_or_default();
        assert_eq!(written(answer), positions, "{command_id}");
    }
    events.iter().map(|e| e.event_id.to_string()).collect()
}

/// The event ids the stream holds, in stream order; asserts none repeats.
pub async fn stream_event_ids(client: &async_nats::Client, expected: usize) -> Vec<String> {
    use prost::Message;
    let ids: Vec<String> = crate::bus::stream_events(client, expected)
        .await
        .iter()
        .map(|m| {
            pb::EventEnvelope::decode(m.payload.clone())
                .unwrap()
                .event_id
        })
        .collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "the stream holds an event twice");
    ids
}

/// Runs `tepai ops verify` on `dir` and asserts it is clean.
pub fn assert_verify_clean(dir: &Path, nats_url: &str, extra: &[&str]) {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["ops", "verify", "--data-dir", dir, "--nats-url", nats_url];
    args.extend_from_slice(extra);
    let (code, out, err) = run_tepai(&args);
    assert_eq!(code, 0, "ops verify failed:\n{out}\n{err}");
}

/// A random number, from the standard library's per-process hash keys.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NOW_MS as u64);
    hasher.finish()
}

/// How many events `result` accepted; none for a rejection.
pub fn accepted_events(result: &pb::CommandResult) -> usize {
    match &result.outcome {
        Some(pb::command_result::Outcome::Accepted(a)) => a.events.len(),
        _ => 0,
    }
}

/// The commands answered, with their answers, by command id.
pub type Acked = std::sync::Arc<std::sync::Mutex<Vec<(String, pb::CommandResult)>>>;

/// Producers registering commissioners one after another, each command
/// resent with the same id until answered, until `stop`.
pub fn producers(
    client: &async_nats::Client,
    count: usize,
    stop: &tokio_util::sync::CancellationToken,
    acked: &Acked,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|_| {
            let (client, stop, acked) = (client.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    let envelope = envelope(register(&id(), "王磊", "150100"));
                    let answer = send_until_answered(&client, &envelope).await;
                    assert_eq!(accepted_events(&answer), 1, "{answer:?}");
                    acked.lock().unwrap().push((envelope.command_id, answer));
                }
            })
        })
        .collect()
}

/// Waits (up to 30 s) until at least `at_least` commands are answered.
pub async fn await_acks(acked: &Acked, at_least: usize) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while acked.lock().unwrap().len() < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "commands stalled at {}",
            acked.lock().unwrap().len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Sends fresh commands until one is accepted; returns how long it took.
pub async fn first_accepted(client: &async_nats::Client) -> std::time::Duration {
    use prost::Message;
    let started = tokio::time::Instant::now();
    let deadline = started + std::time::Duration::from_secs(30);
    loop {
        let envelope = envelope(register(&id(), "探针", "150100"));
        let attempt = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            client.request("tepai.cmd.submit", envelope.encode_to_vec().into()),
        )
        .await;
        if let Ok(Ok(reply)) = attempt {
            if accepted_events(&pb::CommandResult::decode(reply.payload).unwrap()) == 1 {
                return started.elapsed();
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no writer answered");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Every acknowledged command's event is in the stream exactly once, the
/// stream is the surviving writer's store, and the views applied it all.
pub async fn assert_history(
    client: &async_nats::Client,
    writer: &std::path::Path,
    views: &std::path::Path,
    acked: &[(String, pb::CommandResult)],
) {
    let js = async_nats::jetstream::new(client.clone());
    let last = tepai::bus::follower::stream_last_sequence(&js)
        .await
        .unwrap();
    let in_stream = stream_event_ids(client, last as usize).await;
    assert_eq!(in_stream.len() as u64, last);
    let in_store = assert_store_exactly_once(writer, acked);
    assert_eq!(in_store, in_stream, "the stream is not the writer's store");
    let in_stream: std::collections::HashSet<_> = in_stream.into_iter().collect();
    for (command_id, answer) in acked {
        let Some(pb::command_result::Outcome::Accepted(a)) = &answer.outcome else {
            panic!("{command_id} was not accepted");
        };
        for event in &a.events {
            assert!(
                in_stream.contains(&event.event_id),
                "{command_id}'s event is not in the stream"
            );
        }
    }
    wait_for_views(client, last).await;
    let live = tepai::projection::ViewsDir::new(views)
        .live()
        .unwrap()
        .unwrap();
    let conn = rusqlite::Connection::open(&live).unwrap();
    for (command_id, answer) in acked {
        let Some(pb::command_result::Outcome::Accepted(a)) = &answer.outcome else {
            unreachable!();
        };
        let commissioner = &a.events[0].stream_id;
        let id = commissioner.trim_start_matches("commissioner-");
        let rows: i64 = conn
            .query_row(
                "SELECT count(*) FROM commissioners WHERE commissioner_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            rows, 1,
            "{command_id}: {commissioner} in the views {rows} times"
        );
    }
}

/// The node holding the writer's lease, as its key in NATS KV names it;
/// `None` before anyone took it or once it was released.
pub async fn lease_holder(js: &async_nats::jetstream::Context) -> Option<String> {
    use tepai::bus::lease;
    let bucket = js.get_key_value(lease::LEASE_BUCKET).await.ok()?;
    let value = bucket.get(lease::LEASE_KEY).await.ok()??;
    let holder = serde_json::from_slice::<lease::LeaseValue>(&value)
        .ok()?
        .holder;
    (!holder.is_empty()).then_some(holder)
}

/// The head position of the store in the data dir `dir`; 0 while it does
/// not exist or cannot be read (a node creating it or moving it aside).
pub fn store_head(dir: &Path) -> u64 {
    tepai::store::StoreReader::open(&store_path(dir))
        .and_then(|r| r.head())
        .map_or(0, |h| h.position)
}
