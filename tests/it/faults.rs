//! Faults under load, one test each: the node SIGKILLed (a), the NATS
//! server SIGKILLed (b), the projection killed mid-batch (c), a full disk
//! and a read-only data dir (d), redeliveries, duplicates and out-of-order
//! messages on the bus (e). Producers resend the same command id until they
//! get an answer; afterwards every acknowledged command must be in the
//! store, the stream and the views exactly once, and nothing half-written.
//!
//! (d) mounts a small tmpfs and so needs root or CAP_SYS_ADMIN; set
//! `TEPAI_TEST_SKIP_MOUNT=1` to skip it where mounting is not allowed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use prost::Message;
use tepai::bus::projector::ProjectorProgress;
use tepai::bus::relay::{ensure_stream, publish_events, subject_of};
use tepai::config::NodeOptions;
use tepai::store::{StoreReader, StoredEvent};
use tepai::wire::pb;
use tokio_util::sync::CancellationToken;

use crate::nats_server::NatsServer;
use crate::support::*;

/// What producers were told, command id and answer, in answer order, and
/// how many of their attempts failed (timeout, no responders, UNAVAILABLE).
#[derive(Default)]
pub struct Answers {
    pub list: Mutex<Vec<(String, pb::CommandResult)>>,
    pub failed_attempts: AtomicUsize,
}

/// Shared by a test's producers.
pub type Acks = Arc<Answers>;

/// Sends until answered and records the answer.
pub async fn send_acked(
    client: &async_nats::Client,
    acks: &Acks,
    command: pb::command_envelope::Command,
) -> pb::CommandResult {
    let envelope = envelope(command);
    let result = send_counting_failures(client, &envelope, &acks.failed_attempts).await;
    acks.list
        .lock()
        .unwrap()
        .push((envelope.command_id.clone(), result.clone()));
    result
}

/// A workstation with room for every producer's appointments.
pub async fn setup_station(client: &async_nats::Client, acks: &Acks) -> String {
    let station = id();
    let result = send_acked(client, acks, establish(&station, "包钢工作站", HOHHOT, 500)).await;
    accepted(&result);
    station
}

/// `count` producers, each registering a commissioner, submitting a demand,
/// appointing the commissioner for it (the post and the dispatch in one
/// command), recording service for it, resolving it and (every third
/// round) retiring the commissioner — a retirement ends the post too, so
/// one command writes events to two streams — until `stop`.
pub fn spawn_producers(
    count: usize,
    client: &async_nats::Client,
    station: &str,
    acks: &Acks,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|_| {
            let (client, station, acks, stop) = (
                client.clone(),
                station.to_owned(),
                acks.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut round = 0u64;
                while !stop.is_cancelled() {
                    round += 1;
                    let (commissioner, demand, post) = (id(), id(), id());
                    send_acked(&client, &acks, register(&commissioner, "赵敏", BAOTOU)).await;
                    send_acked(&client, &acks, submit_demand(&demand, HOHHOT)).await;
                    // The post and the demand's dispatch: one command, two
                    // streams; then service for the demand, and its end.
                    let mut for_demand = appoint(&post, &commissioner, &station, HOHHOT, 10);
                    if let pb::command_envelope::Command::AppointPost(a) = &mut for_demand {
                        a.demand_id = demand.clone();
                    }
                    send_acked(&client, &acks, for_demand).await;
                    send_acked(&client, &acks, service_for(&post, &demand)).await;
                    send_acked(&client, &acks, resolve(&demand)).await;
                    if round.is_multiple_of(3) {
                        send_acked(&client, &acks, retire(&commissioner, "2025-06-30")).await;
                    }
                }
            })
        })
        .collect()
}

/// Accepted commands that wrote more than one event (a retirement ending
/// a post): the all-or-nothing check needs some.
pub fn multi_event_commands(acks: &Acks) -> usize {
    acks.list.lock()
        .unwrap()
        .iter()
        .filter(|(_, r)| {
            matches!(&r.outcome, Some(pb::command_result::Outcome::Accepted(a)) if a.events.len() > 1)
        })
        .count()
}

/// Waits (up to a minute) until `more` answers beyond the current ones.
pub async fn wait_for_more_acks(acks: &Acks, more: usize) {
    let want = acks.list.lock().unwrap().len() + more;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acks.list.lock().unwrap().len() < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "producers stalled before {want} answers"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A random pause of up to `max_ms`.
pub async fn random_pause(max_ms: u64) {
    tokio::time::sleep(Duration::from_millis(random_u64() % max_ms.max(1))).await;
}

/// The checks every fault ends with: the store holds each acknowledged
/// command once and nothing half-written; the stream holds the store's
/// events once each, in order; the views applied all of them and equal a
/// rebuild (`tepai ops verify` clean). Returns the store's head.
pub async fn assert_exactly_once_everywhere(
    client: &async_nats::Client,
    dir: &Path,
    nats_url: &str,
    acks: &Acks,
) -> u64 {
    let acknowledged = acks.list.lock().unwrap().clone();
    let stored = assert_store_exactly_once(dir, &acknowledged);
    let head = stored.len() as u64;
    assert_eq!(stream_event_ids(client, stored.len()).await, stored);
    wait_for_views(client, head).await;
    assert_verify_clean(dir, nats_url, &[]);
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_sigkilled_under_load_keeps_every_acknowledged_command_exactly_once() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut node = TepaiProcess::up(&nats.url(), data.path());
    let client = async_nats::connect(nats.url()).await.unwrap();
    let acks = Acks::default();
    let station = setup_station(&client, &acks).await;
    let stop = CancellationToken::new();
    let producers = spawn_producers(4, &client, &station, &acks, &stop);

    for _ in 0..4 {
        wait_for_more_acks(&acks, 40).await;
        // Mid-load: commands are queued, being committed and answered.
        random_pause(30).await;
        node.kill();
        node = TepaiProcess::up(&nats.url(), data.path());
    }
    wait_for_more_acks(&acks, 40).await;
    stop.cancel();
    for producer in producers {
        producer.await.unwrap();
    }

    assert!(multi_event_commands(&acks) > 0);
    assert!(
        acks.failed_attempts.load(Ordering::Relaxed) > 0,
        "no producer noticed the kills"
    );
    assert_exactly_once_everywhere(&client, data.path(), &nats.url(), &acks).await;
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_server_sigkilled_under_load_loses_nothing_and_the_node_resumes_alone() {
    let mut nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut node = TepaiProcess::up(&nats.url(), data.path());
    let client = async_nats::connect(nats.url()).await.unwrap();
    let acks = Acks::default();
    let station = setup_station(&client, &acks).await;
    let stop = CancellationToken::new();
    let producers = spawn_producers(4, &client, &station, &acks, &stop);

    for _ in 0..3 {
        wait_for_more_acks(&acks, 40).await;
        random_pause(30).await;
        nats.restart();
    }
    wait_for_more_acks(&acks, 40).await;
    stop.cancel();
    for producer in producers {
        producer.await.unwrap();
    }

    assert!(multi_event_commands(&acks) > 0);
    // Producers got UNAVAILABLE or timed out, and resent.
    assert!(
        acks.failed_attempts.load(Ordering::Relaxed) > 0,
        "no producer noticed the NATS restarts"
    );
    // The same process throughout: relay and projector resumed by themselves.
    assert!(
        node.0.try_wait().unwrap().is_none(),
        "the node exited when NATS went away"
    );
    assert_exactly_once_everywhere(&client, data.path(), &nats.url(), &acks).await;
}

/// The checkpoint of the live views in `dir`, 0 before there are any.
fn views_checkpoint(dir: &Path) -> u64 {
    let views = NodeOptions {
        data_dir: dir.to_owned(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
    }
    .views_dir();
    let Ok(Some(path)) = views.live() else {
        return 0;
    };
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row("SELECT position FROM checkpoint", [], |r| r.get(0))
        .unwrap_or(0)
}

async fn messages_in_stream(client: &async_nats::Client) -> u64 {
    let js = jetstream::new(client.clone());
    match js.get_stream("TEPAI_EVENTS").await {
        Ok(mut stream) => stream.info().await.unwrap().state.messages,
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_killed_mid_batch_ends_exactly_as_if_it_had_not_been() {
    let nats = NatsServer::start();
    let command_dir = tempfile::tempdir().unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();

    // A store of several projector batches, written directly, then relayed.
    let mut processor = open_processor(command_dir.path());
    let station = id();
    let mut batch = vec![decoded(envelope(establish(
        &station,
        "久泰工作站",
        HOHHOT,
        500,
    )))];
    for i in 0..8000 {
        let commissioner = id();
        batch.push(decoded(envelope(register(&commissioner, "张涛", BAOTOU))));
        if i < 400 {
            batch.push(decoded(envelope(appoint(
                &id(),
                &commissioner,
                &station,
                HOHHOT,
                10,
            ))));
        }
        if batch.len() >= 500 {
            processor.process_batch(std::mem::take(&mut batch), NOW_MS);
        }
    }
    processor.process_batch(batch, NOW_MS);
    let head = processor.head();
    drop(processor);
    assert!(head > 3 * tepai::bus::projector::PROJECTOR_BATCH as u64);
    let relay = TepaiProcess::spawn(&["serve", "command"], &nats.url(), command_dir.path());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while messages_in_stream(&client).await < head {
        assert!(tokio::time::Instant::now() < deadline, "relay stalled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relay.kill();

    // A query node SIGKILLed again and again while it projects, each time
    // soon after a batch committed, so mostly inside the next one. How many
    // kills land before the head depends on the machine's speed, so the
    // views are built afresh until at least two did.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let query_dir = loop {
        let query_dir = tempfile::tempdir().unwrap();
        let mut kills_mid_way = 0;
        let mut last = 0;
        while last < head {
            let node = TepaiProcess::spawn(&["serve", "query"], &nats.url(), query_dir.path());
            loop {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "views stuck at {last}"
                );
                let now = views_checkpoint(query_dir.path());
                if now > last || now == head {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            random_pause(10).await;
            node.kill();
            let now = views_checkpoint(query_dir.path());
            assert!(now >= last, "the views went back from {last} to {now}");
            if now < head {
                kills_mid_way += 1;
            }
            last = now;
        }
        eprintln!("projection: {kills_mid_way} kills before the head {head}");
        if kills_mid_way >= 2 {
            break query_dir;
        }
    };

    // Views equal a rebuild from the stream; the stream equals the store.
    assert_verify_clean(query_dir.path(), &nats.url(), &[]);
    assert_verify_clean(command_dir.path(), &nats.url(), &["--no-views"]);
    let node = TepaiProcess::spawn(&["serve", "query"], &nats.url(), query_dir.path());
    wait_for_views(&client, head).await;
    node.kill();
}

/// A tmpfs mounted for one test; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "16m") on a new temp dir; `None` when
    /// mounting is not allowed and `TEPAI_TEST_SKIP_MOUNT=1` says to skip.
    fn mount(size: &str) -> Option<(tempfile::TempDir, Self)> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status();
        if status.is_ok_and(|s| s.success()) {
            let mounted = Self(dir.path().to_owned());
            return Some((dir, mounted));
        }
        if std::env::var("TEPAI_TEST_SKIP_MOUNT").as_deref() == Ok("1") {
            eprintln!("skipped: cannot mount a tmpfs (TEPAI_TEST_SKIP_MOUNT=1)");
            return None;
        }
        panic!(
            "this test mounts a small tmpfs to fill the disk and needs root or \
             CAP_SYS_ADMIN; set TEPAI_TEST_SKIP_MOUNT=1 to skip it"
        );
    }

    fn remount(&self, mode: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a child still dying must not keep the mount behind.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Writes zeros into `path` until the file system is full.
fn fill_disk(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

fn rejection_message(result: &pb::CommandResult) -> String {
    match &result.outcome {
        Some(pb::command_result::Outcome::Rejected(r)) => r.message.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_or_read_only_data_dir_answers_unavailable_and_heals_without_restart() {
    let Some((_mount_dir, tmpfs)) = Tmpfs::mount("24m") else {
        return;
    };
    let nats = NatsServer::start();
    let data = tmpfs.0.join("data");
    let node = TepaiProcess::up(&nats.url(), &data);
    let client = async_nats::connect(nats.url()).await.unwrap();
    let acks = Acks::default();
    let station = setup_station(&client, &acks).await;
    for _ in 0..20 {
        send_acked(&client, &acks, register(&id(), "王芳", HOHHOT)).await;
    }

    // Fill the disk, then send until the store runs out of room.
    let filler = tmpfs.0.join("filler");
    fill_disk(&filler);
    let mut refused = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while refused.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "commits never failed on a full disk"
        );
        let commissioner = id();
        for command in [
            register(&commissioner, "李雷", BAOTOU),
            appoint(&id(), &commissioner, &station, HOHHOT, 10),
        ] {
            let envelope = envelope(command);
            let reply = client
                .request("tepai.cmd.submit", envelope.encode_to_vec().into())
                .await
                .unwrap();
            let result = pb::CommandResult::decode(reply.payload).unwrap();
            if is_unavailable(&result) {
                refused.push((envelope, result));
            } else {
                acks.list
                    .lock()
                    .unwrap()
                    .push((envelope.command_id.clone(), result));
            }
        }
    }
    let message = rejection_message(&refused[0].1);
    assert!(
        message.contains("disk is full") && message.contains("retry with the same command_id"),
        "unclear message: {message}"
    );
    // Refused commands wrote nothing; the store is consistent meanwhile.
    let reader = StoreReader::open(&store_path(&data)).unwrap();
    for (envelope, _) in &refused {
        let uuid = uuid::Uuid::parse_str(&envelope.command_id).unwrap();
        assert_eq!(reader.command_result(&uuid).unwrap(), None);
    }
    drop(reader);
    assert_store_exactly_once(&data, &acks.list.lock().unwrap().clone());

    // Space returns: the same process accepts the same command ids.
    std::fs::remove_file(&filler).unwrap();
    for (envelope, _) in &refused {
        // Accepted, not "already registered": the failed batch's events
        // did not stay in the writer's memory.
        let result = send_until_answered(&client, envelope).await;
        accepted(&result);
        acks.list
            .lock()
            .unwrap()
            .push((envelope.command_id.clone(), result));
    }
    send_acked(&client, &acks, register(&id(), "韩梅梅", HOHHOT)).await;
    let mut node = node;
    assert!(node.0.try_wait().unwrap().is_none(), "the node exited");
    assert_exactly_once_everywhere(&client, &data, &nats.url(), &acks).await;

    // Read-only: Linux refuses to remount while SQLite holds the files open
    // for writing, so the node is killed first; on a read-only data dir it
    // must refuse to start with a clear message, not run refusing commands.
    node.kill();
    tmpfs.remount("ro");
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut refused_start = TepaiProcess(
        std::process::Command::new(env!("CARGO_BIN_EXE_tepai"))
            .args([
                "up",
                "--nats-url",
                &nats.url(),
                "--http-addr",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(&data)
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = refused_start.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a node on a read-only data dir must stop, not run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stderr = std::fs::read_to_string(log.path()).unwrap();
    assert!(!exit.success());
    assert!(stderr.contains("read-only"), "unclear error: {stderr}");
    tmpfs.remount("rw");
    let node = TepaiProcess::up(&nats.url(), &data);
    send_acked(&client, &acks, register(&id(), "李华", BAOTOU)).await;
    assert_exactly_once_everywhere(&client, &data, &nats.url(), &acks).await;
    drop(node);
}

/// Publishes `event` again under a new message id, as a publisher beyond
/// JetStream's duplicate window would: the stream stores it twice.
async fn publish_copy(js: &jetstream::Context, event: &StoredEvent) {
    let envelope = tepai::wire::event_envelope(event).unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id().as_str());
    headers.insert("Tepai-Position", event.position.to_string().as_str());
    let ack = js
        .publish_with_headers(
            subject_of(&event.stream_id),
            headers,
            envelope.encode_to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(!ack.duplicate);
}

async fn publish(js: &jetstream::Context, events: &[StoredEvent], positions: &[u64]) {
    let chosen: Vec<StoredEvent> = positions
        .iter()
        .map(|p| events[usize::try_from(*p).unwrap() - 1].clone())
        .collect();
    publish_events(js, &chosen).await.unwrap();
}

/// Waits (up to 20 s) until the projector's progress satisfies `want`.
async fn wait_progress(
    progress: &tokio::sync::watch::Receiver<ProjectorProgress>,
    want: impl Fn(&ProjectorProgress) -> bool,
) -> ProjectorProgress {
    let mut waiting = progress.clone();
    let reached = tokio::time::timeout(Duration::from_secs(20), waiting.wait_for(|p| want(p)))
        .await
        .map(|r| *r.unwrap());
    reached.unwrap_or_else(|_| panic!("projector stuck at {:?}", *progress.borrow()))
}

fn digests(dir: &Path) -> Vec<tepai::projection::digest::TableDigest> {
    let path = NodeOptions {
        data_dir: dir.to_owned(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
    }
    .views_dir()
    .live()
    .unwrap()
    .unwrap();
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    tepai::projection::digest::digests(&conn).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_duplicates_and_out_of_order_messages_leave_the_views_unchanged() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = crate::bus::start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    let acks = Acks::default();
    let station = setup_station(&client, &acks).await;
    for _ in 0..12 {
        let commissioner = id();
        send_acked(&client, &acks, register(&commissioner, "赵敏", BAOTOU)).await;
        send_acked(
            &client,
            &acks,
            appoint(&id(), &commissioner, &station, HOHHOT, 10),
        )
        .await;
    }
    let events = StoreReader::open(&store_path(data.path()))
        .unwrap()
        .read_from(0, usize::MAX)
        .unwrap();
    let head = events.len() as u64;
    wait_for_views(&client, head).await;

    // Within the duplicate window JetStream drops every resend.
    let in_stream = messages_in_stream(&client).await;
    assert_eq!(publish_events(&js, &events).await.unwrap(), events.len());
    assert_eq!(messages_in_stream(&client).await, in_stream);

    // Beyond it (a new message id) the stream holds copies; views skip them.
    publish_copy(&js, &events[2]).await;
    publish_copy(&js, &events[0]).await;
    assert_eq!(messages_in_stream(&client).await, in_stream + 2);

    // Redeliveries: the node's durable consumer starts over from the first
    // message.
    let node_id = std::fs::read_to_string(data.path().join("node-id")).unwrap();
    let consumer = format!("tepai-views-{}", node_id.trim());
    let stream = js.get_stream("TEPAI_EVENTS").await.unwrap();
    stream.delete_consumer(&consumer).await.unwrap();
    stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some(consumer.clone()),
            ack_policy: jetstream::consumer::AckPolicy::All,
            ack_wait: Duration::from_secs(1),
            ..Default::default()
        })
        .await
        .unwrap();
    // New commands still get through, after the redelivered ones.
    let commissioner = id();
    send_acked(&client, &acks, register(&commissioner, "韩梅梅", BAOTOU)).await;
    let head = head + 1;
    wait_for_views(&client, head).await;
    assert_verify_clean(data.path(), &nats.url(), &["--no-stream"]);
    let after = digests(data.path());
    node.stop().await;

    // Out of order, on a second server: a projector fed 1..=5, 7..=10
    // reports the gap at 6 and applies nothing past it; once 6 arrives it
    // goes on; 12 before 11 and a copy of 3 change nothing.
    let events = StoreReader::open(&store_path(data.path()))
        .unwrap()
        .read_from(0, usize::MAX)
        .unwrap();
    let other = NatsServer::start();
    let other_client = async_nats::connect(other.url()).await.unwrap();
    let other_js = jetstream::new(other_client.clone());
    ensure_stream(&other_js, Some(1)).await.unwrap();
    publish(&other_js, &events, &[1, 2, 3, 4, 5, 7, 8, 9, 10]).await;
    let views = tempfile::tempdir().unwrap();
    let live = NodeOptions {
        data_dir: views.path().to_owned(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
    }
    .views_dir()
    .current()
    .unwrap();
    let (_live_tx, live_rx) = tokio::sync::watch::channel(live);
    let projector =
        tepai::bus::projector::Projector::open(other_js.clone(), live_rx, "tepai-views", 1)
            .await
            .unwrap();
    let progress = projector.progress();
    let stop = CancellationToken::new();
    let running = tokio::spawn(projector.run(stop.clone()));
    let at_gap = wait_progress(&progress, |p| p.gap.is_some()).await;
    assert_eq!(at_gap.gap, Some((6, 7)));
    assert_eq!(at_gap.checkpoint, 5);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(progress.borrow().checkpoint, 5, "applied past a gap");

    publish(&other_js, &events, &[6]).await;
    wait_progress(&progress, |p| p.checkpoint == 10 && p.gap.is_none()).await;
    publish(&other_js, &events, &[12, 11]).await;
    publish_copy(&other_js, &events[2]).await;
    let rest: Vec<u64> = (13..=head).collect();
    publish(&other_js, &events, &rest).await;
    wait_progress(&progress, |p| p.checkpoint == head).await;
    stop.cancel();
    running.await.unwrap();

    // Both views, fed differently, hold the same rows.
    assert_eq!(digests(views.path()), after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_round_failing_over_a_hole_in_the_stream_fills_the_hole() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut processor = open_processor(data.path());
    for _ in 0..20 {
        accepted(&processor.process(decoded(envelope(register(&id(), "张涛", BAOTOU))), NOW_MS));
    }
    drop(processor);
    let events = StoreReader::open(&store_path(data.path()))
        .unwrap()
        .read_from(0, usize::MAX)
        .unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    ensure_stream(&js, Some(1)).await.unwrap();
    publish(&js, &events, &[1, 2, 3, 4, 5]).await;
    let relay = tepai::bus::relay::Relay::open(
        js.clone(),
        &store_path(data.path()),
        &data.path().join("relay.db"),
        1,
    )
    .await
    .unwrap();
    assert_eq!(relay.position(), 5);

    // What a dropped connection can leave behind: 6 and 7 lost in its
    // write buffer, 8..=10 still queued and sent after the reconnect, their
    // acks lost with the old connection.
    publish(&js, &events, &[8, 9, 10]).await;
    // And the relay's next round fails: for a moment no stream takes the
    // events' subjects (the relay's error path restores the stream).
    let mut config = js
        .get_stream("TEPAI_EVENTS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    config.subjects = vec!["elsewhere.>".into()];
    js.update_stream(config).await.unwrap();

    let stop = CancellationToken::new();
    let running = tokio::spawn(relay.run(None, stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while messages_in_stream(&client).await < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay skipped the hole: {} messages",
            messages_in_stream(&client).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    running.await.unwrap();
    let mut positions: Vec<u64> = crate::bus::stream_events(&client, 20)
        .await
        .iter()
        .map(|m| {
            pb::EventEnvelope::decode(m.payload.clone())
                .unwrap()
                .global_position
        })
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=20).collect::<Vec<u64>>());
}

/// Sends `batch` until every command in it is decided (no timeout, no
/// responders, no UNAVAILABLE), resending the same command ids; checks that
/// each answer matches any decided answer an earlier attempt gave; records
/// the final answers in `acks`. Returns whether the batch had been
/// committed by an attempt whose answer never came: the answer that did
/// come lists events created before that attempt was sent (their ids are
/// UUID v7, stamped when the writer decided them).
async fn send_batch_until_decided(
    client: &async_nats::Client,
    acks: &Acks,
    batch: &[pb::CommandEnvelope],
) -> bool {
    let bytes: bytes::Bytes = pb::CommandBatch {
        commands: batch.to_vec(),
    }
    .encode_to_vec()
    .into();
    let mut seen: std::collections::HashMap<String, pb::CommandResult> = Default::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut attempts = 0;
    loop {
        let sent_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        attempts += 1;
        let attempt = tokio::time::timeout(
            Duration::from_secs(2),
            client.request(tepai::bus::SUBMIT_BATCH_SUBJECT, bytes.clone()),
        )
        .await;
        if let Ok(Ok(reply)) = attempt {
            let answer = pb::CommandBatchResult::decode(reply.payload).unwrap();
            let decided_earlier = attempts > 1
                && answer
                    .results
                    .iter()
                    .flat_map(|r| match &r.outcome {
                        Some(pb::command_result::Outcome::Accepted(a)) => a.events.clone(),
                        _ => Vec::new(),
                    })
                    .any(|e| {
                        let (secs, nanos) = uuid::Uuid::parse_str(&e.event_id)
                            .unwrap()
                            .get_timestamp()
                            .unwrap()
                            .to_unix();
                        secs * 1000 + u64::from(nanos / 1_000_000) < sent_ms
                    });
            assert_eq!(answer.results.len(), batch.len(), "{:?}", answer.rejected);
            for (sent, result) in batch.iter().zip(&answer.results) {
                assert_eq!(result.command_id, sent.command_id);
                if is_unavailable(result) {
                    continue;
                }
                if let Some(before) = seen.insert(sent.command_id.clone(), result.clone()) {
                    assert_eq!(
                        &before, result,
                        "a resend changed {}'s answer",
                        sent.command_id
                    );
                }
            }
            if seen.len() == batch.len() {
                let mut list = acks.list.lock().unwrap();
                for sent in batch {
                    list.push((sent.command_id.clone(), seen[&sent.command_id].clone()));
                }
                return decided_earlier;
            }
        }
        acks.failed_attempts.fetch_add(1, Ordering::Relaxed);
        assert!(
            tokio::time::Instant::now() < deadline,
            "a batch never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A batch of 31 commands that depend on each other: a workstation, then
/// ten times a commissioner, a post for them there and their retirement
/// (which ends the post: two events from one command).
fn dependent_batch() -> Vec<pb::CommandEnvelope> {
    let station = id();
    let mut batch = vec![envelope(establish(&station, "伊泰工作站", HOHHOT, 20))];
    for _ in 0..10 {
        let (commissioner, post) = (id(), id());
        batch.push(envelope(register(&commissioner, "周婷", BAOTOU)));
        batch.push(envelope(appoint(
            &post,
            &commissioner,
            &station,
            HOHHOT,
            10,
        )));
        batch.push(envelope(retire(&commissioner, "2025-06-30")));
    }
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_resent_after_a_sigkill_store_each_command_once_with_the_same_answers() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut node = TepaiProcess::up(&nats.url(), data.path());
    let client = async_nats::connect(nats.url()).await.unwrap();
    let acks = Acks::default();
    // Answered once the node is up, so every later failure is a kill's.
    accepted(&send_acked(&client, &acks, register(&id(), "探针", HOHHOT)).await);
    let stop = CancellationToken::new();
    let half_answered = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..3)
        .map(|_| {
            let (client, acks, stop) = (client.clone(), acks.clone(), stop.clone());
            let half_answered = half_answered.clone();
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    if send_batch_until_decided(&client, &acks, &dependent_batch()).await {
                        half_answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    // At least three kills, and more (up to ten) until one has fallen
    // between a batch's commit and its answer: the case this test is for.
    let mut kills = 0;
    loop {
        wait_for_more_acks(&acks, 62).await;
        let seen = half_answered.load(Ordering::Relaxed) > 0;
        if (kills >= 3 && seen) || kills == 10 {
            break;
        }
        // Batches are queued, being committed and being answered.
        random_pause(30).await;
        node.kill();
        node = TepaiProcess::up(&nats.url(), data.path());
        kills += 1;
    }
    stop.cancel();
    for producer in producers {
        producer.await.unwrap();
    }

    assert!(
        acks.failed_attempts.load(Ordering::Relaxed) > 0,
        "no batch was cut by the kills"
    );
    assert!(
        half_answered.load(Ordering::Relaxed) > 0,
        "in {kills} kills, none fell between a batch's commit and its answer"
    );
    // Every command was accepted, in its batch's order, seeing the ones
    // before it: one event each, two for each retirement.
    let answered = acks.list.lock().unwrap().clone();
    assert!(answered.iter().all(|(_, r)| accepted_events(r) > 0));
    assert!(multi_event_commands(&acks) > 0);
    assert_exactly_once_everywhere(&client, data.path(), &nats.url(), &acks).await;
    drop(node);
}
