//! tepai on a three-server NATS cluster with the events stream replicated
//! three times: two command nodes with failover, two query nodes with their
//! own consumers, producers resending by command id. Under load the writer,
//! a NATS server and a query node die (SIGKILL) in turn while commands and
//! queries go on; after a restart of everything every acknowledged command
//! is in the stream and the views once, and every node verifies clean.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use tepai::bus::lease;
use tepai::wire::pb;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::http_client;
use crate::nats_cluster::{reserved_port, NatsCluster};
use crate::support::*;

/// A tepai process; SIGKILLed if the test ends early.
struct Proc(Option<Child>);

impl Proc {
    /// SIGKILL.
    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the exit must be clean.
    fn stop(&mut self) {
        let mut child = self.0.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert!(exit.success(), "a node's SIGTERM ended in {exit:?}");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The nodes' logs; their tails are printed when the test fails.
struct Logs(Vec<PathBuf>);

impl Drop for Logs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in &self.0 {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- {}, last lines ---", log.display());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// A node's data dir and, for a query node, its HTTP address.
struct NodeDir {
    data: PathBuf,
    http: Option<SocketAddr>,
}

/// `tepai serve <role>` on the replicated stream, with `extra` arguments,
/// logging at info level to `log`.
fn spawn(role: &str, nats_url: &str, node: &NodeDir, log: &Path, extra: &[&str]) -> Proc {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tepai"));
    command
        .args([
            "serve",
            role,
            "--nats-url",
            nats_url,
            "--stream-replicas",
            "3",
        ])
        .args(["--stream-ack-timeout-ms", "2000"])
        .args(extra)
        .arg("--data-dir")
        .arg(&node.data)
        .env("RUST_LOG", "info");
    if let Some(http) = node.http {
        command.args(["--http-addr", &http.to_string()]);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Proc(Some(
        command.stdout(Stdio::null()).stderr(log).spawn().unwrap(),
    ))
}

/// The `/v1/status` of a query node, once it answers HTTP (up to 20 s).
async fn http_status(http: SocketAddr) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(http).is_err() {
        assert!(
            Instant::now() < deadline,
            "query node {http} never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    http_client::get(http, "/v1/status").await.json()
}

/// A 64-bit number of the JSON status, which writes them as strings.
fn number(value: &serde_json::Value) -> Option<u64> {
    value.as_str().and_then(|s| s.parse().ok())
}

/// Waits (up to 30 s) until the query node on `http` has applied
/// `position`, and returns its status then.
async fn await_views(http: SocketAddr, position: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = http_status(http).await;
        if number(&status["projections"][0]["checkpoint"]) == Some(position) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "query node {http} stuck at {status}, want {position}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A status query over NATS, resent after a timeout (a request may have
/// gone to a node just killed); up to 20 s.
async fn query_status(client: &async_nats::Client) -> pb::Status {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(2),
            client.request(
                tepai::bus::QUERY_STATUS_SUBJECT,
                pb::StatusQuery {}.encode_to_vec().into(),
            ),
        )
        .await;
        if let Ok(Ok(reply)) = attempt {
            if let Ok(status) = pb::Status::decode(reply.payload) {
                return status;
            }
        }
        assert!(Instant::now() < deadline, "status query never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many instances of the query service answer `$SRV.PING`.
async fn query_instances(client: &async_nats::Client) -> usize {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply("$SRV.PING.tepai-queries", inbox, bytes::Bytes::new())
        .await
        .unwrap();
    let mut ids = HashSet::new();
    while let Ok(Some(reply)) =
        tokio::time::timeout(Duration::from_millis(500), replies.next()).await
    {
        let ping: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        ids.insert(ping["id"].as_str().unwrap_or_default().to_owned());
    }
    ids.len()
}

fn view_digests(data: &Path) -> Vec<tepai::projection::digest::TableDigest> {
    let live = tepai::projection::ViewsDir::new(data)
        .live()
        .unwrap()
        .unwrap();
    let conn =
        rusqlite::Connection::open_with_flags(&live, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    tepai::projection::digest::digests(&conn).unwrap()
}

/// The node holding the writer's lease.
async fn lease_holder(js: &async_nats::jetstream::Context) -> String {
    let bucket = lease::open_bucket(js, 3).await.unwrap();
    let value = bucket.get(lease::LEASE_KEY).await.unwrap().unwrap();
    serde_json::from_slice::<lease::LeaseValue>(&value)
        .unwrap()
        .holder
}

/// Waits (up to 30 s) until the command node on `data` follows the stream
/// as a standby: its store is there and holds the stream's events but for
/// the last command's (a standby appends a command once the next one
/// shows it complete; every command here writes one event).
async fn await_standing_by(js: &async_nats::jetstream::Context, data: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = tepai::bus::follower::stream_last_sequence(js).await;
        let head = tepai::store::StoreReader::open(&store_path(data))
            .and_then(|r| r.head())
            .map(|h| h.position);
        if let (Ok(last), Ok(head)) = (&last, &head) {
            if head + 1 >= *last {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never stood by: store at {head:?}, stream at {last:?}",
            data.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 30 s) until the store in `data` holds `position` events.
async fn await_store(data: &Path, position: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let head = tepai::store::StoreReader::open(&store_path(data))
            .and_then(|r| r.head())
            .map(|h| h.position);
        if matches!(head, Ok(p) if p == position) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} stuck at {head:?}, want {position}",
            data.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A store a command node moved aside when it came back diverged from the
/// stream (an event it committed but JetStream never took) holds no event
/// of an acknowledged command beyond what the stream holds.
fn assert_diverged_unacknowledged(
    data: &Path,
    in_stream: &HashSet<String>,
    acked: &[(String, pb::CommandResult)],
) {
    let acknowledged: HashSet<&str> = acked
        .iter()
        .flat_map(|(_, answer)| accepted(answer).iter().map(|e| e.event_id.as_str()))
        .collect();
    for entry in std::fs::read_dir(data).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("events.db.diverged-")
            || name.contains("-wal")
            || name.contains("-shm")
        {
            continue;
        }
        let events = tepai::store::StoreReader::open(&path)
            .unwrap()
            .read_from(0, usize::MAX)
            .unwrap();
        for event in events {
            let id = event.event_id.to_string();
            assert!(
                in_stream.contains(&id) || !acknowledged.contains(id.as_str()),
                "{name} holds acknowledged event {id} the stream lacks"
            );
        }
        eprintln!("{} moved aside: {name}", data.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_cluster_loses_its_writer_a_nats_server_and_a_query_node_and_verifies_clean() {
    let mut cluster = NatsCluster::start();
    let urls = cluster.urls();
    let dir = tempfile::tempdir().unwrap();
    let logs = Logs(
        ["a", "b", "queries"]
            .map(|n| dir.path().join(format!("{n}.log")))
            .to_vec(),
    );
    let node = |name: &str, http: bool| NodeDir {
        data: dir.path().join(name),
        http: http.then(|| SocketAddr::from(([127, 0, 0, 1], reserved_port()))),
    };
    let names = ["a", "b"];
    let command_dirs = names.map(|n| node(n, false));
    let query_dirs = [node("q1", true), node("q2", true)];
    let spawn_command = |i: usize| {
        let extra = ["--failover", "--lease-ms", "1500", "--node-id", names[i]];
        spawn("command", &urls, &command_dirs[i], &logs.0[i], &extra)
    };
    let spawn_query = |q: &NodeDir| spawn("query", &urls, q, &logs.0[2], &[]);
    // The test's own client avoids server 0, which dies.
    let client = tepai::bus::connect(
        &tepai::config::NatsOptions::plain(format!("{},{}", cluster.url(1), cluster.url(2))),
        "test",
    )
    .await
    .unwrap();
    let js = async_nats::jetstream::new(client.clone());
    // a writes (it makes the stream); b then stands by, following it.
    let mut commands = vec![spawn_command(0)];
    first_accepted(&client).await;
    commands.push(spawn_command(1));
    await_standing_by(&js, &command_dirs[1].data).await;
    let mut queries: Vec<Proc> = query_dirs.iter().map(spawn_query).collect();
    for q in &query_dirs {
        http_status(q.http.unwrap()).await;
    }
    let acked = Acked::default();
    let stop = CancellationToken::new();
    let running = producers(&client, 4, &stop, &acked);
    await_acks(&acked, 20).await;

    let stream = js.get_stream("TEPAI_EVENTS").await.unwrap();
    assert_eq!(stream.cached_info().config.num_replicas, 3);
    // Each query node its own durable consumer, which JetStream (2.9)
    // removes once its node has been gone for an hour. (The command nodes'
    // followers read through ephemeral consumers.)
    let consumers: Vec<_> = stream
        .consumers()
        .map(|c| c.unwrap())
        .filter(|c| std::future::ready(c.config.durable_name.is_some()))
        .collect::<Vec<_>>()
        .await;
    assert_eq!(consumers.len(), 2, "{consumers:?}");
    for consumer in &consumers {
        assert!(
            consumer.name.starts_with("tepai-views-"),
            "{}",
            consumer.name
        );
        assert_eq!(
            consumer.config.inactive_threshold,
            tepai::bus::projector::CONSUMER_INACTIVE_THRESHOLD
        );
    }
    assert_eq!(query_instances(&client).await, 2, "both query nodes serve");

    // The writer dies under load: the standby takes the lease and serves.
    let holder = lease_holder(&js).await;
    let writer = names.iter().position(|n| *n == holder).unwrap();
    commands[writer].kill();
    let failover = first_accepted(&client).await;
    eprintln!("failover on three servers, replicas 3: {failover:?}");
    assert_eq!(lease_holder(&js).await, names[1 - writer]);
    let now = acked.lock().unwrap().len();
    await_acks(&acked, now + 20).await;

    // A NATS server dies: commands and queries go on.
    cluster.kill(0);
    query_status(&client).await;
    let now = acked.lock().unwrap().len();
    await_acks(&acked, now + 20).await;
    query_status(&client).await;
    cluster.restart(0);

    // A query node dies: the other answers.
    queries[0].kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while query_instances(&client).await != 1 {
        assert!(
            Instant::now() < deadline,
            "the dead query node still listed"
        );
    }
    for _ in 0..10 {
        query_status(&client).await;
    }
    let now = acked.lock().unwrap().len();
    await_acks(&acked, now + 20).await;
    stop.cancel();
    for producer in running {
        producer.await.unwrap();
    }

    // Everything stops and starts again, NATS included: the writer first,
    // then the node killed earlier, which stands by; the dead query node
    // catches up.
    commands[1 - writer].stop();
    queries[1].stop();
    cluster.restart_all();
    let mut commands = vec![spawn_command(1 - writer)];
    first_accepted(&client).await;
    commands.push(spawn_command(writer));
    await_standing_by(&js, &command_dirs[writer].data).await;
    let mut queries: Vec<Proc> = query_dirs.iter().map(spawn_query).collect();
    let mut acked = acked.lock().unwrap().clone();
    for _ in 0..5 {
        let envelope = envelope(register(&id(), "李娜", BAOTOU));
        let answer = send_until_answered(&client, &envelope).await;
        assert_eq!(accepted_events(&answer), 1, "{answer:?}");
        acked.push((envelope.command_id, answer));
    }
    // Both query nodes apply it all, the one killed too.
    let head = tepai::bus::follower::stream_last_sequence(&js)
        .await
        .unwrap();
    for q in &query_dirs {
        await_views(q.http.unwrap(), head).await;
    }
    // Every acknowledged command once in the stream, the writer's store
    // and the views.
    assert_history(
        &client,
        &command_dirs[1 - writer].data,
        &query_dirs[0].data,
        &acked,
    )
    .await;
    // The standby holds every command but the last: it appends a
    // command's events once the next one shows them complete. (Every
    // command here writes one event.)
    await_store(&command_dirs[writer].data, head - 1).await;
    for command in &mut commands {
        command.stop();
    }
    for query in &mut queries {
        query.stop();
    }
    // Both query nodes' views alike.
    let digests = view_digests(&query_dirs[0].data);
    assert_eq!(view_digests(&query_dirs[1].data), digests);
    let in_stream: HashSet<String> = stream_event_ids(&client, head as usize)
        .await
        .into_iter()
        .collect();
    for c in &command_dirs {
        assert_diverged_unacknowledged(&c.data, &in_stream, &acked);
    }
    for data in command_dirs.iter().chain(&query_dirs).map(|n| &n.data) {
        let data = data.to_str().unwrap().to_owned();
        let (urls, dir) = (urls.clone(), data.clone());
        let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
            run_tepai(&["ops", "verify", "--nats-url", &urls, "--data-dir", &dir])
        })
        .await
        .unwrap();
        assert_eq!(code, 0, "ops verify on {data}:\n{stdout}{stderr}");
    }
}
