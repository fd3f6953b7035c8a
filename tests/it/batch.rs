//! Bulk submission (`tepai.cmd.submit_batch`) through a real nats-server
//! and the real command node: order, idempotency per command, the limits,
//! malformed batches, and `tepai send --file` through the binary.

use prost::Message;
use tepai::app::Roles;
use tepai::wire::pb;

use crate::bus::{config_for, start_config, start_node, stream_events};
use crate::nats_server::NatsServer;
use crate::support::*;

/// Sends `commands` as one batch on `tepai.cmd.submit_batch`.
pub async fn send_batch(
    client: &async_nats::Client,
    commands: &[pb::CommandEnvelope],
) -> pb::CommandBatchResult {
    let batch = pb::CommandBatch {
        commands: commands.to_vec(),
    };
    send_batch_bytes(client, batch.encode_to_vec()).await
}

/// Sends raw bytes on `tepai.cmd.submit_batch`.
pub async fn send_batch_bytes(
    client: &async_nats::Client,
    bytes: Vec<u8>,
) -> pb::CommandBatchResult {
    let reply = client
        .request(tepai::bus::SUBMIT_BATCH_SUBJECT, bytes.into())
        .await
        .unwrap();
    pb::CommandBatchResult::decode(reply.payload).unwrap()
}

/// The whole-batch refusal's (code, rule, message).
fn refused(result: &pb::CommandBatchResult) -> (pb::RejectCode, &str, &str) {
    assert!(
        result.results.is_empty(),
        "a refused batch answers no command"
    );
    let r = result.rejected.as_ref().expect("refused as a whole");
    (r.code(), r.rule.as_str(), r.message.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_answered_in_order_each_command_seeing_the_ones_before_and_none_undone() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();

    let (c, w, p) = (id(), id(), id());
    let mut bad_id = envelope(register(&id(), "坏", HOHHOT));
    bad_id.command_id = "not-a-uuid".into();
    let commands = vec![
        envelope(register(&c, "马林", BAOTOU)),
        envelope(establish(&w, "金宇生物工作站", HOHHOT, 5)),
        // Sees the two before it in the same batch.
        envelope(appoint(&p, &c, &w, HOHHOT, 20)),
        // Refused by a rule: the post exists already (from this batch).
        envelope(appoint(&p, &c, &w, HOHHOT, 20)),
        bad_id,
        envelope(retire(&c, "2025-06-30")),
    ];
    let answer = send_batch(&client, &commands).await;
    assert_eq!(answer.rejected, None);
    assert_eq!(
        answer.results.len(),
        commands.len(),
        "one result per command"
    );
    for (command, result) in commands.iter().zip(&answer.results) {
        assert_eq!(result.command_id, command.command_id, "in the order sent");
    }
    let positions = |i: usize| -> Vec<u64> {
        accepted(&answer.results[i])
            .iter()
            .map(|e| e.global_position)
            .collect()
    };
    assert_eq!(positions(0), [1]);
    assert_eq!(positions(1), [2]);
    assert_eq!(positions(2), [3]);
    assert_eq!(
        rejected(&answer.results[3]).0,
        pb::RejectCode::AlreadyExists
    );
    assert_eq!(
        rejected(&answer.results[4]).0,
        pb::RejectCode::InvalidArgument
    );
    // Retiring ends the post appointed earlier in the batch: the rejection
    // between them undid nothing.
    assert_eq!(positions(5).len(), 2, "{:?}", answer.results[5]);

    // Resent whole: the same answers, nothing written twice.
    let again = send_batch(&client, &commands).await;
    assert_eq!(again, answer);
    assert_eq!(store_head(data.path()), 5);
    assert_eq!(stream_events(&client, 5).await.len(), 5);
    // A command of the batch resent alone gets its answer from the batch.
    let alone = crate::bus::send(&client, &commands[2]).await;
    assert_eq!(alone, answer.results[2]);

    // The batch endpoint has its own stats.
    let reply = client
        .request("$SRV.STATS.tepai-commands", "".into())
        .await
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    let batch_endpoint = stats["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "submit_batch")
        .expect("a submit_batch endpoint");
    assert_eq!(batch_endpoint["subject"], "tepai.cmd.submit_batch");
    assert_eq!(batch_endpoint["num_requests"], 2);
    wait_for_views(&client, 5).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_past_a_limit_or_malformed_is_refused_whole_naming_why_and_writes_nothing() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut config = config_for(&nats, data.path());
    config.limits.max_batch_bytes = 64 * 1024;
    let node = start_config(config, Roles::ALL).await;
    let client = async_nats::connect(nats.url()).await.unwrap();

    let large: Vec<_> = (0..700)
        .map(|_| envelope(register(&id(), "王磊", HOHHOT)))
        .collect();
    let size = pb::CommandBatch {
        commands: large.clone(),
    }
    .encoded_len();
    assert!(size > 64 * 1024, "{size}");
    assert_eq!(
        refused(&send_batch(&client, &large).await),
        (
            pb::RejectCode::InvalidArgument,
            "BATCH_TOO_LARGE",
            format!("a batch is at most 65536 bytes (--max-batch-bytes); this one is {size}")
                .as_str()
        )
    );

    // Within the bytes, past the count; the limit is checked before any
    // command is looked at, so empty envelopes do.
    let tiny: Vec<_> = (0..1001)
        .map(|_| pb::CommandEnvelope {
            command_id: id(),
            ..Default::default()
        })
        .collect();
    let bytes = pb::CommandBatch { commands: tiny }.encode_to_vec();
    assert!(bytes.len() < 64 * 1024, "{}", bytes.len());
    assert_eq!(
        refused(&send_batch_bytes(&client, bytes).await),
        (
            pb::RejectCode::InvalidArgument,
            "BATCH_TOO_MANY_COMMANDS",
            "a batch holds at most 1000 commands; this one holds 1001"
        )
    );

    let malformed = send_batch_bytes(&client, b"\xff\xff not protobuf".to_vec()).await;
    let (code, rule, _) = refused(&malformed);
    assert_eq!((code, rule), (pb::RejectCode::InvalidArgument, "MALFORMED"));

    // An empty batch is a batch of none: answered with no results.
    let empty = send_batch_bytes(&client, Vec::new()).await;
    assert_eq!(empty, pb::CommandBatchResult::default());

    assert_eq!(store_head(data.path()), 0, "nothing was decided");
    // The node goes on: the first command it decides writes position 1.
    let first = send_batch(&client, &[envelope(register(&id(), "王磊", HOHHOT))]).await;
    assert_eq!(accepted(&first.results[0])[0].global_position, 1);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_to_start_with_a_batch_limit_above_the_servers_max_payload() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut config = config_for(&nats, data.path());
    config.limits.max_batch_bytes = 2 * 1024 * 1024;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let outcome = tepai::app::run(config, Roles::ALL, shutdown, None).await;
    let error = outcome.expect_err("refused").to_string();
    assert!(
        error.contains(
            "--max-batch-bytes is 2097152 bytes, above the NATS server's max_payload of 1048576"
        ),
        "{error}"
    );
}
