//! Commands over NATS and events on JetStream, through a real nats-server
//! and the real command node.

use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use tepai::app::{self, NodeConfig, Roles};
use tepai::config::{NatsOptions, NodeOptions};
use tepai::domain::Policy;
use tepai::wire::pb;
use tokio_util::sync::CancellationToken;

use crate::nats_server::NatsServer;
use crate::support::*;

pub struct Node {
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), tepai::app::AppError>>,
    pub http: std::net::SocketAddr,
}

pub async fn start_node(nats: &NatsServer, data_dir: &std::path::Path) -> Node {
    start_roles(nats, data_dir, Roles::ALL).await
}

pub async fn start_roles(nats: &NatsServer, data_dir: &std::path::Path, roles: Roles) -> Node {
    start_config(config_for(nats, data_dir), roles).await
}

/// The test node's configuration: `data_dir`, HTTP on a free port, `nats`,
/// the default policies, authorization off.
pub fn config_for(nats: &NatsServer, data_dir: &std::path::Path) -> NodeConfig {
    NodeConfig {
        node: NodeOptions {
            data_dir: data_dir.to_owned(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
        },
        nats: NatsOptions::plain(nats.url()),
        policy: Policy::default(),
        authorization: false,
        limits: Default::default(),
        cluster: Default::default(),
        assessment: Default::default(),
    }
}

/// Starts `roles` of a node with `config`, once it answers.
pub async fn start_config(config: NodeConfig, roles: Roles) -> Node {
    let shutdown = CancellationToken::new();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(app::run(config, roles, shutdown.clone(), Some(started_tx)));
    let started = tokio::time::timeout(Duration::from_secs(10), started_rx)
        .await
        .expect("node did not start in 10 s")
        .expect("node failed to start");
    let http = started
        .http_addr
        .unwrap_or_else(|| "127.0.0.1:9".parse().unwrap());
    Node {
        shutdown,
        task,
        http,
    }
}

impl Node {
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

pub async fn send(
    client: &async_nats::Client,
    envelope: &pb::CommandEnvelope,
) -> pb::CommandResult {
    let reply = client
        .request("tepai.cmd.submit", envelope.encode_to_vec().into())
        .await
        .unwrap();
    pb::CommandResult::decode(reply.payload).unwrap()
}

/// Every event in the stream, in stream order, with its headers.
pub async fn stream_events(
    client: &async_nats::Client,
    expected: usize,
) -> Vec<async_nats::jetstream::Message> {
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("TEPAI_EVENTS").await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < expected {
        match tokio::time::timeout_at(deadline, messages.next()).await {
            Ok(Some(Ok(m))) => out.push(m),
            _ => break,
        }
    }
    // Nothing more should arrive.
    if let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(300), messages.next()).await
    {
        out.push(m);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_over_nats_reach_jetstream_once_in_order_with_headers() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();

    let (c, w, p) = (id(), id(), id());
    let mut results = Vec::new();
    for command in [
        register(&c, "马林", BAOTOU),
        establish(&w, "金宇生物工作站", HOHHOT, 5),
        appoint(&p, &c, &w, HOHHOT, 20),
        retire(&c, "2025-06-30"),
    ] {
        let e = envelope(command);
        let result = send(&client, &e).await;
        assert_eq!(result.command_id, e.command_id);
        results.push((e, result));
    }
    let resent = send(&client, &results[0].0).await;
    assert_eq!(resent, results[0].1);
    let garbage = send_raw(&client, b"\xff\xff not protobuf").await;
    assert_eq!(rejected(&garbage).0, pb::RejectCode::InvalidArgument);
    let empty = send_raw(&client, b"").await;
    assert_eq!(rejected(&empty).0, pb::RejectCode::InvalidArgument);
    let oversized: &'static [u8] = Box::leak(vec![b'x'; 70 * 1024].into_boxed_slice());
    let too_big = send_raw(&client, oversized).await;
    assert_eq!(
        (rejected(&too_big).0, rejected(&too_big).1),
        (pb::RejectCode::InvalidArgument, "REQUEST_TOO_LARGE")
    );

    let written: Vec<pb::WrittenEvent> = results
        .iter()
        .flat_map(|(_, r)| accepted(r).to_vec())
        .collect();
    assert_eq!(written.len(), 5);
    let messages = stream_events(&client, written.len()).await;
    assert_eq!(
        messages.len(),
        written.len(),
        "the stream holds each event exactly once"
    );
    for (i, (message, written)) in messages.iter().zip(&written).enumerate() {
        let envelope = pb::EventEnvelope::decode(message.payload.clone()).unwrap();
        assert_eq!(envelope.global_position, i as u64 + 1);
        assert_eq!(envelope.event_id, written.event_id);
        assert_eq!(envelope.stream_id, written.stream_id);
        assert!(envelope.event.is_some());
        let headers = message.headers.as_ref().unwrap();
        assert_eq!(
            headers.get("Nats-Msg-Id").unwrap().as_str(),
            written.event_id
        );
        assert_eq!(
            headers.get("Tepai-Position").unwrap().as_str(),
            (i + 1).to_string()
        );
        let (category, entity) = written.stream_id.split_once('-').unwrap();
        assert_eq!(
            message.subject.as_str(),
            format!("tepai.evt.{category}.{entity}")
        );
    }
    node.stop().await;
}

pub async fn send_raw(client: &async_nats::Client, bytes: &'static [u8]) -> pb::CommandResult {
    let reply = client
        .request("tepai.cmd.submit", bytes.into())
        .await
        .unwrap();
    pb::CommandResult::decode(reply.payload).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_service_is_discoverable_with_stats() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    send(&client, &envelope(register(&id(), "马林", HOHHOT))).await;

    let reply = client
        .request("$SRV.STATS.tepai-commands", "".into())
        .await
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    let endpoint = &stats["endpoints"][0];
    assert_eq!(endpoint["subject"], "tepai.cmd.submit");
    assert_eq!(endpoint["num_requests"], 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_while_commands_flow_loses_and_duplicates_nothing() {
    let mut nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();

    // Four producers, each resending by command id until answered (for a
    // minute at most). Each restart falls between commands acknowledged
    // before it and after it while the producers run: it happens under
    // load, and the node carries on through it.
    let acked: Acked = Default::default();
    let stop = CancellationToken::new();
    let running = producers(&client, 4, &stop, &acked);
    for _ in 0..2 {
        let before = acked.lock().unwrap().len();
        await_acks(&acked, before + 30).await;
        nats.restart();
    }
    let before = acked.lock().unwrap().len();
    await_acks(&acked, before + 30).await;
    stop.cancel();
    for producer in running {
        producer.await.unwrap();
    }

    let answered = acked.lock().unwrap().clone();
    let mut written: Vec<pb::WrittenEvent> = answered
        .iter()
        .flat_map(|(_, answer)| accepted(answer).to_vec())
        .collect();
    written.sort_by_key(|w| w.global_position);
    let positions: Vec<u64> = written.iter().map(|w| w.global_position).collect();
    assert_eq!(
        positions,
        (1..=answered.len() as u64).collect::<Vec<_>>(),
        "each command written once, gap-free"
    );

    // Stream: every event once, in order.
    let messages = stream_events(&client, written.len()).await;
    let in_stream: Vec<String> = messages
        .iter()
        .map(|m| {
            pb::EventEnvelope::decode(m.payload.clone())
                .unwrap()
                .event_id
        })
        .collect();
    let ids: Vec<String> = written.iter().map(|w| w.event_id.clone()).collect();
    assert_eq!(in_stream, ids);

    // Views: resumed by themselves, at the head.
    wait_for_views(&client, written.len() as u64).await;
    node.stop().await;

    // Store: the same events, chain intact, each answer as given.
    assert_eq!(assert_store_exactly_once(data.path(), &answered), ids);
}
