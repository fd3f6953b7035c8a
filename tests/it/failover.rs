//! Command-node failover: the writer's lease in NATS KV, the standby's
//! follower.

use std::time::Duration;

use prost::Message;
use tepai::app::Roles;
use tepai::bus::follower::{self, Follower};
use tepai::bus::lease::{self, Claim, Claimant, Lost, RenewError};
use tepai::bus::{relay, BusError};
use tepai::wire::pb;
use tokio_util::sync::CancellationToken;

use crate::bus::start_roles;
use crate::nats_server::NatsServer;
use crate::support::*;

/// The lease period of the lease tests. Their holders renew many times
/// per period and claimants look as often, so a renewal would have to be
/// held up for seconds, not the few hundred milliseconds a loaded machine
/// adds, before a lease lapsed in error.
const PERIOD: Duration = Duration::from_secs(3);

async fn bucket(server: &NatsServer) -> async_nats::jetstream::kv::Store {
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    lease::open_bucket(&js, 1).await.unwrap()
}

#[tokio::test]
async fn the_lease_has_one_holder_and_passes_on_only_once_it_lapses() {
    let server = NatsServer::start();
    let kv = bucket(&server).await;
    let mut a = Claimant::new(kv.clone(), "a", PERIOD);
    let mut b = Claimant::new(kv.clone(), "b", PERIOD);

    let Claim::Taken(mut held) = a.try_take().await.unwrap() else {
        panic!("a free lease was not taken");
    };
    // While a renews, b never gets it, however long it watches: here for
    // longer than a period.
    let watching = tokio::time::Instant::now();
    while watching.elapsed() < PERIOD * 3 / 2 {
        match b.try_take().await.unwrap() {
            Claim::Held { holder } => assert_eq!(holder.as_deref(), Some("a")),
            Claim::Taken(_) => panic!("b took a lease a was renewing"),
        }
        held.renew().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // a stops renewing: b takes it once it has seen it unchanged for a period.
    let deadline = tokio::time::Instant::now() + PERIOD + Duration::from_secs(20);
    let taken = loop {
        match b.try_take().await.unwrap() {
            Claim::Taken(lease) => break lease,
            Claim::Held { .. } => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "b never took the lapsed lease"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(taken.revision() > held.revision());
    // a's next renewal is refused: it is deposed.
    assert_eq!(held.renew().await, Err(RenewError::Taken));
    // And a cannot take it back while b holds it.
    assert!(matches!(a.try_take().await.unwrap(), Claim::Held { .. }));
}

#[tokio::test]
async fn racing_claimants_on_a_free_lease_yield_one_holder() {
    let server = NatsServer::start();
    let kv = bucket(&server).await;
    let mut claims = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let mut claimant = Claimant::new(kv.clone(), name, Duration::from_secs(5));
        claims.push(tokio::spawn(
            async move { claimant.try_take().await.unwrap() },
        ));
    }
    let mut taken = 0;
    for claim in claims {
        if matches!(claim.await.unwrap(), Claim::Taken(_)) {
            taken += 1;
        }
    }
    assert_eq!(taken, 1);
}

#[tokio::test]
async fn a_kept_lease_is_released_on_stop_and_reports_being_taken() {
    let server = NatsServer::start();
    let kv = bucket(&server).await;
    let mut a = Claimant::new(kv.clone(), "a", PERIOD);
    let mut b = Claimant::new(kv.clone(), "b", PERIOD);
    let Claim::Taken(held) = a.try_take().await.unwrap() else {
        panic!("a free lease was not taken");
    };
    let stop = CancellationToken::new();
    let kept = tokio::spawn(held.keep(stop.clone()));
    // Kept, it is renewed: b watching for longer than a period never
    // sees it lapse.
    let watching = tokio::time::Instant::now();
    while watching.elapsed() < PERIOD * 3 / 2 {
        assert!(matches!(b.try_take().await.unwrap(), Claim::Held { .. }));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    assert_eq!(kept.await.unwrap(), None);
    // Released: b takes it at its first look, without waiting a period.
    let Claim::Taken(held) = b.try_take().await.unwrap() else {
        panic!("a released lease was not taken at once");
    };
    let kept = tokio::spawn(held.keep(CancellationToken::new()));
    // Someone overwrites the key (an operator, a split brain): b hears it.
    kv.put(lease::LEASE_KEY, "{}".into()).await.unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(10), kept)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lost, Some(Lost::Taken));
}

/// Commands that write one, several (a retirement ends posts) and no
/// events (a rejection), through a command node; asserts some wrote events.
/// A command node alone on `server`, with a client and its JetStream.
async fn command_node(
    server: &NatsServer,
    dir: &std::path::Path,
) -> (
    crate::bus::Node,
    async_nats::Client,
    async_nats::jetstream::Context,
) {
    let node = start_roles(
        server,
        dir,
        Roles {
            command: true,
            query: false,
        },
    )
    .await;
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    (node, client, js)
}

async fn some_history(client: &async_nats::Client) -> Vec<(String, pb::CommandResult)> {
    let station = id();
    let people: Vec<String> = (0..4).map(|_| id()).collect();
    let mut commands = vec![establish(&station, "Station", "150100", 5)];
    for person in &people {
        commands.push(register(person, "Name", "150100"));
        commands.push(appoint(&id(), person, &station, "150100", 10));
    }
    commands.push(retire(&people[0], "2025-06-01"));
    commands.push(register(&people[1], "Again", "150100"));
    let mut answers = Vec::new();
    for command in commands {
        let envelope = envelope(command);
        let answer = send_until_answered(client, &envelope).await;
        answers.push((envelope.command_id.clone(), answer));
    }
    let written: usize = answers.iter().map(|(_, a)| accepted_events(a)).sum();
    assert!(written >= 9, "the history wrote {written} events");
    assert!(answers.iter().any(|(_, a)| accepted_events(a) > 1));
    answers
}

#[tokio::test]
async fn a_standby_copies_the_writers_chain_and_command_log() {
    let server = NatsServer::start();
    let writer_dir = tempfile::tempdir().unwrap();
    let standby_dir = tempfile::tempdir().unwrap();
    let (node, client, js) = command_node(&server, writer_dir.path()).await;
    let first = some_history(&client).await;

    // The standby starts part way and follows what comes after.
    let mut follower = Follower::open(js.clone(), &store_path(standby_dir.path()))
        .await
        .unwrap();
    let second = some_history(&client).await;
    let writer_head = tepai::store::StoreReader::open(&store_path(writer_dir.path()))
        .unwrap()
        .head()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        while follower.position() < writer_head.position {
            follower.run_once(Duration::from_millis(200)).await.unwrap();
        }
    })
    .await
    .expect("the standby did not follow");
    assert_eq!(follower.catch_up().await.unwrap(), writer_head.position);
    drop(follower.into_store().unwrap());
    node.stop().await;

    // Same chain, link by link, and every command that wrote events
    // answers a resend as the writer did.
    let copy = tepai::store::StoreReader::open(&store_path(standby_dir.path())).unwrap();
    assert_eq!(copy.head().unwrap(), writer_head);
    assert!(copy.verify_chain().unwrap().is_clean());
    let original = tepai::store::StoreReader::open(&store_path(writer_dir.path())).unwrap();
    assert_eq!(
        copy.read_from(0, usize::MAX).unwrap(),
        original.read_from(0, usize::MAX).unwrap()
    );
    for (command_id, answer) in first.iter().chain(&second) {
        let id = uuid::Uuid::parse_str(command_id).unwrap();
        let stored = copy.command_result(&id).unwrap();
        if accepted_events(answer) == 0 {
            assert_eq!(stored, None, "a rejection writes no event to follow");
        } else {
            let stored = pb::CommandResult::decode(stored.unwrap().as_slice()).unwrap();
            assert_eq!(&stored, answer, "{command_id}");
        }
    }
}

#[tokio::test]
async fn a_standby_refuses_a_store_or_a_stream_that_is_not_the_writers_history() {
    let server = NatsServer::start();
    let writer_dir = tempfile::tempdir().unwrap();
    let (node, client, js) = command_node(&server, writer_dir.path()).await;
    some_history(&client).await;
    node.stop().await;

    // A store with a history of its own (a deposed writer's unpublished
    // tail, here a whole other history) is refused, then moved aside.
    let other = tempfile::tempdir().unwrap();
    {
        let mut processor = open_processor(other.path());
        for _ in 0..30 {
            processor.process(decoded(envelope(register(&id(), "N", "150100"))), NOW_MS);
        }
    }
    let path = store_path(other.path());
    let refused = Follower::open(js.clone(), &path).await.unwrap_err();
    assert!(matches!(refused, BusError::Diverged { .. }), "{refused}");
    let aside = follower::quarantine(&path, 1).unwrap();
    assert!(aside.exists() && !path.exists());
    let mut fresh = Follower::open(js.clone(), &path).await.unwrap();
    assert!(fresh.catch_up().await.unwrap() > 0);

    // A message whose hash is not the chain's is refused.
    let mut follower = fresh;
    let mut headers = async_nats::HeaderMap::new();
    let next = follower.position() + 1;
    headers.insert("Tepai-Position", next.to_string().as_str());
    headers.insert("Tepai-Event-Type", "CommissionerRegistered");
    headers.insert("Tepai-Hash", "00".repeat(32).as_str());
    let forged = pb::EventEnvelope {
        event_id: uuid::Uuid::new_v4().to_string(),
        global_position: next,
        stream_id: "commissioner-F".into(),
        stream_version: 1,
        causation_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    js.publish_with_headers(
        "tepai.evt.commissioner.F",
        headers,
        forged.encode_to_vec().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let refused = follower.run_once(Duration::from_secs(5)).await.unwrap_err();
    assert!(
        matches!(refused, BusError::Follow(ref why) if why.contains("hash")),
        "{refused}"
    );
}

/// Waits (up to 30 s) until the store in the data dir `dir` holds at
/// least `position` events.
async fn await_store_at_least(dir: &std::path::Path, position: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let head = store_head(dir);
        if head >= position {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} stuck at {head}, want {position}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `tepai serve <role>` process logging to its own file; SIGKILLed on
/// drop. Its log is printed when the test fails.
struct Node {
    child: Option<std::process::Child>,
    log: std::path::PathBuf,
}

impl Node {
    fn spawn(role: &str, nats_url: &str, dir: &std::path::Path, name: &str) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_tepai"))
            .args(["serve", role, "--nats-url", nats_url, "--node-id", name])
            .args([
                "--failover",
                "--lease-ms",
                "1500",
                "--stream-ack-timeout-ms",
                "2000",
            ])
            .args(["--http-addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join(name))
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Self {
            child: Some(child),
            log,
        }
    }

    fn pid(&self) -> String {
        self.child.as_ref().unwrap().id().to_string()
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.pid()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.child.as_ref().is_some() {
            // A paused node must run again to die cleanly.
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &self.pid()])
                .status();
        }
        self.kill();
        if std::thread::panicking() {
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("--- {} ---", self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_writer_under_load_hands_over_to_the_standby_exactly_once() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut a = Node::spawn("command", &server.url(), dir.path(), "a");
    first_accepted(&client).await;
    let b = Node::spawn("command", &server.url(), dir.path(), "b");
    let query = Node::spawn("query", &server.url(), dir.path(), "q");
    let acked: Acked = Default::default();
    let stop = CancellationToken::new();
    let running = producers(&client, 4, &stop, &acked);
    await_acks(&acked, 100).await;
    // b stands by, following: its store holds what a wrote. (It appends a
    // command once the next one shows it complete, so not the last one.)
    await_store_at_least(&dir.path().join("b"), 50).await;
    a.kill();
    let failover = first_accepted(&client).await;
    eprintln!(
        "failover: SIGKILL of the writer to the standby's first accepted answer: {failover:?}"
    );
    let now = acked.lock().unwrap().len();
    await_acks(&acked, now + 100).await;
    stop.cancel();
    for producer in running {
        producer.await.unwrap();
    }
    let js = async_nats::jetstream::new(client.clone());
    assert_eq!(lease_holder(&js).await.as_deref(), Some("b"));
    let acked = acked.lock().unwrap().clone();
    assert_history(
        &client,
        &dir.path().join("b"),
        &dir.path().join("q"),
        &acked,
    )
    .await;
    drop(query);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_writer_is_deposed_and_fenced_and_adds_nothing_to_the_stream() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let a = Node::spawn("command", &server.url(), dir.path(), "a");
    first_accepted(&client).await;
    let b = Node::spawn("command", &server.url(), dir.path(), "b");
    let query = Node::spawn("query", &server.url(), dir.path(), "q");
    let acked: Acked = Default::default();
    let stop = CancellationToken::new();
    let running = producers(&client, 4, &stop, &acked);
    await_acks(&acked, 50).await;

    // Paused past its lease, with commands queued for it: b takes over.
    let js = async_nats::jetstream::new(client.clone());
    a.signal("-STOP");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while lease_holder(&js).await.as_deref() != Some("b") {
        assert!(tokio::time::Instant::now() < deadline, "b never took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let now = acked.lock().unwrap().len();
    await_acks(&acked, now + 20).await;

    // Woken, a finds itself deposed: it stops writing and stands by,
    // following what b wrote into a store of its own.
    a.signal("-CONT");
    let written_by_b = tepai::bus::follower::stream_last_sequence(&js)
        .await
        .unwrap();
    await_store_at_least(&dir.path().join("a"), written_by_b).await;
    let read = |node: &str| {
        tepai::store::StoreReader::open(&store_path(&dir.path().join(node)))
            .unwrap()
            .read_from(0, written_by_b as usize)
            .unwrap()
    };
    assert_eq!(read("a"), read("b"), "a does not follow b's history");
    let now = acked.lock().unwrap().len();
    await_acks(&acked, now + 20).await;
    stop.cancel();
    for producer in running {
        producer.await.unwrap();
    }
    // Nothing of a's after b took over reached the stream: it is b's store.
    let acked = acked.lock().unwrap().clone();
    assert_history(
        &client,
        &dir.path().join("b"),
        &dir.path().join("q"),
        &acked,
    )
    .await;
    drop((a, b, query));
}

#[tokio::test]
async fn a_publish_on_a_stale_idea_of_the_stream_is_refused() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (node, client, js) = command_node(&server, dir.path()).await;
    some_history(&client).await;
    node.stop().await;
    let reader = tepai::store::StoreReader::open(&store_path(dir.path())).unwrap();
    let events = reader.read_from(0, usize::MAX).unwrap();
    // A resend of what the stream holds is a duplicate, not a refusal.
    assert_eq!(relay::publish_fenced(&js, &events[..3]).await.unwrap(), 3);
    // Another event where the stream already has one: refused, not added.
    let last = events.len() as u64;
    let mut other = events.last().unwrap().clone();
    other.event_id = uuid::Uuid::new_v4();
    let refused = relay::publish_fenced(&js, &[other]).await.unwrap_err();
    assert!(
        matches!(refused, BusError::StreamMoved { position } if position == last),
        "{refused}"
    );
    assert_eq!(follower::stream_last_sequence(&js).await.unwrap(), last);
}
