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

/// One NDJSON line: `command` in an envelope with its own id, as proto3 JSON.
fn ndjson(command: pb::command_envelope::Command) -> String {
    serde_json::to_string(&envelope(command)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_file_sends_in_batches_reports_bad_lines_and_can_simply_be_run_again() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let work = tempfile::tempdir().unwrap();
    let (c, w, p) = (id(), id(), id());
    let appoint_line = ndjson(appoint(&p, &c, &w, HOHHOT, 20));
    let lines = [
        ndjson(register(&c, "马林", HOHHOT)),
        ndjson(establish(&w, "金宇生物工作站", HOHHOT, 5)),
        "{not json".to_owned(),
        appoint_line.clone(),
        String::new(),
        // The same post again under a new command id: refused by a rule.
        ndjson(appoint(&p, &c, &w, HOHHOT, 20)),
        r#"{"suspend_commissioner":{"commissioner_id":"0190a7a8-0000-7000-8000-000000000001"}}"#
            .to_owned(),
        ndjson(retire(&c, "2025-06-30")),
    ];
    let input = work.path().join("commands.ndjson");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let results = work.path().join("results.ndjson");
    let args = [
        "send",
        "--nats-url",
        &nats.url(),
        "--file",
        input.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--batch-size",
        "2",
    ];

    let (code, _, stderr) = run_tepai(&args);
    assert_eq!(code, 2, "a rejection and malformed lines: {stderr}");
    assert!(
        stderr.contains("line 3: malformed: not a CommandEnvelope"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 7: malformed: the envelope has no command_id"),
        "{stderr}"
    );
    assert!(
        stderr.contains("4 accepted, 1 rejected (ALREADY_EXISTS 1), 2 malformed"),
        "{stderr}"
    );
    let first = std::fs::read_to_string(&results).unwrap();
    let records: Vec<serde_json::Value> = first
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let numbers: Vec<u64> = records
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        [1, 2, 3, 4, 6, 7, 8],
        "one per non-blank line, in order"
    );
    let appoint: pb::CommandEnvelope = serde_json::from_str(&appoint_line).unwrap();
    assert_eq!(records[3]["command_id"], appoint.command_id.as_str());
    assert_eq!(
        records[3]["accepted"]["events"][0]["global_position"], "3",
        "uint64 is a string in proto3 JSON"
    );
    assert_eq!(records[4]["rejected"]["code"], "ALREADY_EXISTS");
    assert!(records[2]["malformed"].is_string());
    assert_eq!(store_head(data.path()), 5);

    // Run again, as after an interruption: the same answers, nothing new.
    let (code, _, stderr) = run_tepai(&args);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(std::fs::read_to_string(&results).unwrap(), first);
    assert_eq!(store_head(data.path()), 5);

    // From stdin, all good: exit 0, results on stdout.
    let good = ndjson(register(&id(), "高娜", BAOTOU)) + "\n";
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tepai"))
        .args(["send", "--nats-url", &nats.url(), "--file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(good.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let record: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(record["line"], 1);
    assert_eq!(record["accepted"]["events"][0]["global_position"], "6");
    node.stop().await;
}
