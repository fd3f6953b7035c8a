//! The binary under faults: tepai killed with SIGKILL and restarted while
//! producers keep sending, then stopped with SIGTERM. Every acknowledged
//! command must be in the store, the stream and the views exactly once.

use std::collections::HashSet;
use std::process::Command;

use prost::Message;
use tepai::store::StoreReader;
use tepai::wire::pb;

use crate::nats_server::NatsServer;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_mid_stream_lose_and_duplicate_nothing() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut tepai = TepaiProcess::up(&nats.url(), data.path());
    let client = async_nats::connect(nats.url()).await.unwrap();

    let station = id();
    let mut results = vec![
        send_until_answered(
            &client,
            &envelope(establish(&station, "包钢工作站", BAOTOU, 500)),
        )
        .await,
    ];
    let mut appointments = 0;
    for round in 0..3 {
        for _ in 0..40 {
            let commissioner = id();
            for command in [
                register(&commissioner, "赵敏", BAOTOU),
                appoint(&id(), &commissioner, &station, BAOTOU, 10),
            ] {
                results.push(send_until_answered(&client, &envelope(command)).await);
            }
            appointments += 1;
        }
        if round < 2 {
            // SIGKILL, then a new process on the same data.
            drop(tepai);
            tepai = TepaiProcess::up(&nats.url(), data.path());
        }
    }

    let written: Vec<pb::WrittenEvent> =
        results.iter().flat_map(|r| accepted(r).to_vec()).collect();
    let head = written.iter().map(|w| w.global_position).max().unwrap();
    assert_eq!(
        written.len() as u64,
        head,
        "positions are gap-free across restarts"
    );

    // Views caught up, then a graceful stop exits 0.
    wait_for_views(&client, head).await;
    let page_request = pb::AssignmentsQuery {
        on_date: "2025-06-01".into(),
        page_size: 500,
        ..Default::default()
    };
    let reply = client
        .request(
            tepai::bus::QUERY_ASSIGNMENTS_SUBJECT,
            page_request.encode_to_vec().into(),
        )
        .await
        .unwrap();
    let page = pb::AssignmentsPage::decode(reply.payload).unwrap();
    assert_eq!(page.assignments.len(), appointments);

    let status = Command::new("kill")
        .args(["-TERM", &tepai.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tepai.0.wait().unwrap();
    assert!(
        exit.success(),
        "SIGTERM must end in a clean exit, got {exit:?}"
    );

    // Store: chain intact, every acknowledged event there once.
    let reader = StoreReader::open(&store_path(data.path())).unwrap();
    let report = reader.verify_chain().unwrap();
    assert!(report.is_clean());
    assert_eq!(report.head.position, head);
    let stored: Vec<String> = reader
        .read_from(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|e| e.event_id.to_string())
        .collect();
    let acknowledged: Vec<String> = {
        let mut w = written.clone();
        w.sort_by_key(|w| w.global_position);
        w.into_iter().map(|w| w.event_id).collect()
    };
    assert_eq!(stored, acknowledged);

    // Stream: the same events, once each, in order.
    let in_stream: Vec<String> = crate::bus::stream_events(&client, acknowledged.len())
        .await
        .iter()
        .map(|m| {
            pb::EventEnvelope::decode(m.payload.clone())
                .unwrap()
                .event_id
        })
        .collect();
    assert_eq!(in_stream, acknowledged);
    assert_eq!(
        in_stream.iter().collect::<HashSet<_>>().len(),
        in_stream.len()
    );
}
