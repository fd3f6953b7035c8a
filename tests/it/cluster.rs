//! tepai on a three-server NATS cluster with the events stream replicated
//! three times: one command node, query nodes with their own consumers,
//! producers resending by command id. NATS servers and query nodes die
//! (SIGKILL) while commands and queries go on; a late query node catches
//! up; after a restart of everything every node verifies clean.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use tepai::wire::pb;
use tokio::time::Instant;

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

/// The nodes' shared log; its tail is printed when the test fails.
struct Log(PathBuf);

impl Drop for Log {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.0).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("--- nodes' log, last lines ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A node's data dir and, for a query node, its HTTP address.
struct NodeDir {
    data: PathBuf,
    http: Option<SocketAddr>,
}

fn spawn(role: &str, nats_url: &str, node: &NodeDir, log: &Path) -> Proc {
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
        .args(["--stream-ack-timeout-ms", "2000", "--data-dir"])
        .arg(&node.data);
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

/// Sends `envelope` until it is answered other than UNAVAILABLE, resending
/// the same command id after a timeout: the producer's side of
/// exactly-once.
async fn send_until_answered(
    client: &async_nats::Client,
    envelope: &pb::CommandEnvelope,
) -> pb::CommandResult {
    let bytes: bytes::Bytes = envelope.encode_to_vec().into();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(4),
            client.request("tepai.cmd.submit", bytes.clone()),
        )
        .await;
        if let Ok(Ok(reply)) = attempt {
            let result = pb::CommandResult::decode(reply.payload).unwrap();
            let unavailable = matches!(&result.outcome, Some(pb::command_result::Outcome::Rejected(r)) if r.code() == pb::RejectCode::Unavailable);
            if !unavailable {
                return result;
            }
        }
        assert!(Instant::now() < deadline, "command never answered");
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
                "tepai.query.status",
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

/// Producers sending one registration after another, each resent until
/// answered, until `stop`; every answer goes into `answers`.
fn producers(
    client: &async_nats::Client,
    count: usize,
    stop: &Arc<AtomicBool>,
    answers: &Answers,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|_| {
            let (client, stop, answers) = (client.clone(), stop.clone(), answers.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let command = register(&id(), "王磊", HOHHOT);
                    let result = send_until_answered(&client, &envelope(command)).await;
                    answers.lock().unwrap().push(result);
                }
            })
        })
        .collect()
}

type Answers = Arc<Mutex<Vec<pb::CommandResult>>>;

/// Waits (up to 30 s) until `more` answers beyond those there now.
async fn await_progress(answers: &Answers, more: usize, what: &str) {
    let from = answers.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while answers.lock().unwrap().len() < from + more {
        assert!(Instant::now() < deadline, "commands stalled {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_cluster_loses_a_nats_server_and_a_query_node_and_verifies_clean() {
    let mut cluster = NatsCluster::start();
    let urls = cluster.urls();
    let dir = tempfile::tempdir().unwrap();
    let log = Log(dir.path().join("nodes.log"));
    let node = |name: &str, http: bool| NodeDir {
        data: dir.path().join(name),
        http: http.then(|| SocketAddr::from(([127, 0, 0, 1], reserved_port()))),
    };
    let command_dir = node("command", false);
    let query_dirs = [node("q1", true), node("q2", true), node("q3", true)];
    // The command node talks to server 0, which dies: an acknowledged
    // command must outlive the server that took it. It finds the others
    // from the cluster's gossip.
    let command_url = cluster.url(0);
    let mut command = spawn("command", &command_url, &command_dir, &log.0);
    // The test's own client avoids server 0.
    let client = tepai::bus::connect(
        &tepai::config::NatsOptions::plain(format!("{},{}", cluster.url(1), cluster.url(2))),
        "test",
    )
    .await
    .unwrap();
    let js = async_nats::jetstream::new(client.clone());
    // The command node owns the stream: the query nodes start once it is
    // made, as in the compose set-up.
    let deadline = Instant::now() + Duration::from_secs(20);
    while js.get_stream("TEPAI_EVENTS").await.is_err() {
        assert!(Instant::now() < deadline, "the command node made no stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut queries: Vec<Proc> = query_dirs[..2]
        .iter()
        .map(|q| spawn("query", &urls, q, &log.0))
        .collect();
    for q in &query_dirs[..2] {
        http_status(q.http.unwrap()).await;
    }
    let answers = Answers::default();
    let stop = Arc::new(AtomicBool::new(false));
    let running = producers(&client, 4, &stop, &answers);
    await_progress(&answers, 20, "before any fault").await;

    let stream = js.get_stream("TEPAI_EVENTS").await.unwrap();
    assert_eq!(stream.cached_info().config.num_replicas, 3);
    // Each query node its own durable consumer, which JetStream (2.9)
    // removes once its node has been gone for an hour.
    let consumers: Vec<_> = stream
        .consumers()
        .map(|c| c.unwrap())
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

    // A NATS server dies: commands and queries go on.
    cluster.kill(0);
    query_status(&client).await;
    await_progress(&answers, 20, "with a NATS server down").await;
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
    await_progress(&answers, 20, "with a query node down").await;

    stop.store(true, Ordering::Relaxed);
    for producer in running {
        producer.await.unwrap();
    }
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let mut positions: Vec<u64> = answers
        .iter()
        .flat_map(|r| accepted(r).iter().map(|w| w.global_position))
        .collect();
    positions.sort_unstable();
    let head = positions.len() as u64;
    assert_eq!(
        positions,
        (1..=head).collect::<Vec<_>>(),
        "every command accepted once, positions gap-free"
    );

    // A query node started late catches up from the stream alone.
    queries.push(spawn("query", &urls, &query_dirs[2], &log.0));
    let late = await_views(query_dirs[2].http.unwrap(), head).await;
    assert_eq!(number(&late["projections"][0]["lag"]), Some(0), "{late}");
    await_views(query_dirs[1].http.unwrap(), head).await;
    assert_eq!(
        view_digests(&query_dirs[1].data),
        view_digests(&query_dirs[2].data)
    );

    // Everything stops and starts again, NATS included; the dead query
    // node catches up, and every node verifies clean.
    command.stop();
    for query in &mut queries[1..] {
        query.stop();
    }
    cluster.restart_all();
    let mut command = spawn("command", &command_url, &command_dir, &log.0);
    let mut queries: Vec<Proc> = query_dirs
        .iter()
        .map(|q| spawn("query", &urls, q, &log.0))
        .collect();
    for _ in 0..5 {
        let result = send_until_answered(&client, &envelope(register(&id(), "李娜", BAOTOU))).await;
        assert!(!accepted(&result).is_empty());
    }
    let head = head + 5;
    for q in &query_dirs {
        await_views(q.http.unwrap(), head).await;
    }
    command.stop();
    for query in &mut queries {
        query.stop();
    }
    let digests = view_digests(&query_dirs[0].data);
    for q in &query_dirs[1..] {
        assert_eq!(view_digests(&q.data), digests);
    }
    for data in std::iter::once(&command_dir.data).chain(query_dirs.iter().map(|q| &q.data)) {
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
