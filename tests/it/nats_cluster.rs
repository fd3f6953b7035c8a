//! Three real nats-servers clustered on loopback, each with JetStream, its
//! own store dir and server name; killed on drop. Never the shared server
//! on 4222. Only what nats-server 2.9 offers (Debian's 2.9.10).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nats_server::binary;

/// Name of the test cluster (the servers' `cluster_name`).
pub const CLUSTER_NAME: &str = "tepai-test";

struct Member {
    child: Option<Child>,
    name: String,
    port: u16,
    cluster_port: u16,
    monitor_port: u16,
    store_dir: tempfile::TempDir,
}

/// A free loopback port below the usual ephemeral range (32768 and up), so
/// that while a process is down for a restart, no other test's port-0 bind
/// can be handed its port. Never the same port twice in this test binary:
/// a port whose server is down for a restart is free to bind, but still
/// taken.
pub fn reserved_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let candidate = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", candidate)).is_ok()
            && HANDED_OUT.lock().unwrap().insert(candidate)
        {
            return candidate;
        }
    }
}

impl Member {
    /// The server's own log, kept beside its store for a failing test.
    fn log(&self) -> std::path::PathBuf {
        self.store_dir.path().join("server.log")
    }
}

pub struct NatsCluster {
    members: Vec<Member>,
}

impl NatsCluster {
    /// Starts three servers routed to each other and returns once every
    /// one of them knows the JetStream meta leader.
    pub fn start() -> Self {
        let mut ports = std::collections::BTreeSet::new();
        while ports.len() < 9 {
            ports.insert(reserved_port());
        }
        let mut ports = ports.into_iter();
        let members = (0..3)
            .map(|i| Member {
                child: None,
                name: format!("n{i}"),
                port: ports.next().unwrap(),
                cluster_port: ports.next().unwrap(),
                monitor_port: ports.next().unwrap(),
                store_dir: tempfile::tempdir().unwrap(),
            })
            .collect();
        let mut cluster = Self { members };
        for i in 0..3 {
            cluster.spawn(i);
        }
        for i in 0..3 {
            cluster.await_meta_leader(i);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let routes = self
            .members
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, m)| format!("nats://127.0.0.1:{}", m.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let member = &mut self.members[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(member.log())
            .unwrap();
        let child = Command::new(binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &member.port.to_string(),
                "-n",
                &member.name,
                "-m",
                &member.monitor_port.to_string(),
                "--cluster_name",
                CLUSTER_NAME,
                "--cluster",
                &format!("nats://127.0.0.1:{}", member.cluster_port),
                "--routes",
                &routes,
                "-js",
                "-sd",
            ])
            .arg(member.store_dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        member.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", member.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server {} did not start on {}:\n{}",
                member.name,
                member.port,
                std::fs::read_to_string(member.log()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to 30 s) until server `i` reports a JetStream meta leader
    /// in its `/jsz` monitoring page: before that, JetStream API calls on
    /// it fail with "JetStream system temporarily unavailable".
    fn await_meta_leader(&self, i: usize) {
        let member = &self.members[i];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leader = monitor_get(member.monitor_port, "/jsz")
                .and_then(|body| serde_json::from_str::<serde_json::Value>(&body).ok())
                .and_then(|jsz| {
                    jsz.pointer("/meta_cluster/leader")
                        .and_then(|l| l.as_str())
                        .map(str::to_owned)
                })
                .filter(|leader| !leader.is_empty());
            if leader.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server {} never saw a JetStream meta leader",
                member.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The client URL of server `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.members[i].port)
    }

    /// Every server's client URL, comma-separated: what a client is given
    /// so that it can reconnect to another server when one dies.
    pub fn urls(&self) -> String {
        (0..self.members.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills every server, then starts them all again on their ports and
    /// store dirs: one alone cannot elect a meta leader, so they come back
    /// together.
    pub fn restart_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        for i in 0..self.members.len() {
            self.spawn(i);
        }
        for i in 0..self.members.len() {
            self.await_meta_leader(i);
        }
    }

    /// Kills server `i` with SIGKILL; its store dir stays for `restart`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again (killing it first if it runs) on the same
    /// ports and store dir, and waits until it has rejoined the meta group.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.await_meta_leader(i);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// The body of a GET on a server's monitoring port, or None while it does
/// not answer; blocking, like the rest of the harness.
fn monitor_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: nats\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_owned())
}

/// The cluster on its own: it forms, a replicated stream survives losing
/// one server, and a restarted server rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_form_a_jetstream_cluster_that_survives_losing_one() {
    use async_nats::jetstream::{self, stream};
    let mut cluster = NatsCluster::start();
    // Through tepai's own connect, which takes the comma-separated list.
    let client = tepai::bus::connect(&tepai::config::NatsOptions::plain(cluster.urls()), "test")
        .await
        .unwrap();
    let js = jetstream::new(client.clone());
    let info = js
        .create_stream(stream::Config {
            name: "HARNESS".into(),
            subjects: vec!["harness.>".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .cached_info()
        .clone();
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(
        info.cluster.as_ref().map(|c| c.replicas.len()),
        Some(2),
        "a leader and two replicas"
    );

    js.publish("harness.a", "one".into())
        .await
        .unwrap()
        .await
        .unwrap();
    // Whichever server it is, losing one of three keeps a quorum.
    cluster.kill(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let ack = loop {
        let attempt = async {
            // Retried with the same message id, as the relay does, so an
            // attempt that timed out but was stored is not stored twice.
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", "two");
            js.publish_with_headers("harness.a", headers, "two".into())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(Duration::from_secs(3), attempt).await {
            Ok(Ok(ack)) => break ack,
            _ => assert!(
                Instant::now() < deadline,
                "no quorum after losing one server"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ack.sequence, 2, "{ack:?}");

    cluster.restart(0);
    let direct = async_nats::connect(cluster.url(0)).await.unwrap();
    let mut stream = jetstream::new(direct).get_stream("HARNESS").await.unwrap();
    // Right after the restart the returning replica may still answer with
    // what it had; it catches up from the others.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = stream.info().await.unwrap().state.clone();
        if state.messages == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "stream never healed: {state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
