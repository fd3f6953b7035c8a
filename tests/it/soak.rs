//! A bounded soak: mixed commands from several producers while the node
//! and the NATS server are SIGKILLed in turn, then every count reconciles
//! and `tepai ops verify` is clean. 30 s by default; `TEPAI_SOAK_SECS=600`
//! runs it longer.

use std::time::Duration;

use tepai::wire::pb::{self, command_envelope::Command as C};
use tokio_util::sync::CancellationToken;

use crate::faults::{assert_exactly_once_everywhere, random_pause, send_acked, Acks};
use crate::nats_server::NatsServer;
use crate::support::*;

/// One commissioner's life: registered, appointed (every seventh over the
/// monthly hours limit, so rejected, and the rest of the chain with it),
/// term extended, a service recorded, and every fifth retired.
fn chain(n: u64, station: &str) -> Vec<C> {
    let commissioner = id();
    let post = id();
    let hours = if n % 7 == 6 { 90 } else { 20 };
    let mut commands = vec![
        register(
            &commissioner,
            "特派员",
            if n.is_multiple_of(2) { HOHHOT } else { BAOTOU },
        ),
        appoint(&post, &commissioner, station, HOHHOT, hours),
        C::ExtendPostTerm(pb::ExtendPostTerm {
            post_id: post.clone(),
            end_date: "2026-06-30".into(),
        }),
        C::RecordService(pb::RecordService {
            service_id: id(),
            post_id: post,
            date: "2025-06-01".into(),
            minutes: 180,
            beneficiary: "土默特左旗农牧业合作社".into(),
            beneficiary_city: HOHHOT.into(),
            summary: "玉米良种选育现场指导".into(),
            demand_id: String::new(),
        }),
    ];
    if n % 5 == 4 {
        commands.push(retire(&commissioner, "2025-09-30"));
    }
    commands
}

fn soak_duration() -> Duration {
    let secs = std::env::var("TEPAI_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

fn rejected_count(acks: &Acks) -> usize {
    acks.list
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, r)| matches!(r.outcome, Some(pb::command_result::Outcome::Rejected(_))))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_under_repeated_faults_reconciles_every_count() {
    let mut nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut node = TepaiProcess::up(&nats.url(), data.path());
    let client = async_nats::connect(nats.url()).await.unwrap();
    let acks = Acks::default();
    let stop = CancellationToken::new();

    // Each producer opens a workstation of its own every 200 chains, so
    // capacity never runs out and rejections are the rules' own.
    let mut producers = Vec::new();
    for p in 0..4u64 {
        let (client, acks, stop) = (client.clone(), acks.clone(), stop.clone());
        producers.push(tokio::spawn(async move {
            let mut station = String::new();
            let mut n = p;
            while !stop.is_cancelled() {
                if (n / 4).is_multiple_of(200) {
                    station = id();
                    let opened =
                        send_acked(&client, &acks, establish(&station, "工作站", HOHHOT, 500))
                            .await;
                    accepted(&opened);
                }
                for command in chain(n, &station) {
                    send_acked(&client, &acks, command).await;
                }
                n += 4;
            }
        }));
    }

    let until = tokio::time::Instant::now() + soak_duration();
    let (mut node_kills, mut nats_kills) = (0, 0);
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(3)).await;
        random_pause(2000).await;
        if (node_kills + nats_kills) % 2 == 0 {
            node.kill();
            node = TepaiProcess::up(&nats.url(), data.path());
            node_kills += 1;
        } else {
            nats.restart();
            nats_kills += 1;
        }
    }
    stop.cancel();
    for producer in producers {
        producer.await.unwrap();
    }

    let head = assert_exactly_once_everywhere(&client, data.path(), &nats.url(), &acks).await;

    // Commands acknowledged = results stored: nothing in the log that no
    // producer was told about, nothing told that is not in the log (the
    // per-id check is in assert_exactly_once_everywhere).
    let acknowledged = acks.list.lock().unwrap().len() as u64;
    let log = rusqlite::Connection::open_with_flags(
        store_path(data.path()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let logged: u64 = log
        .query_row("SELECT count(*) FROM commands", [], |r| r.get(0))
        .unwrap();
    let stored_events: u64 = log
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(acknowledged, logged);
    // Events in store = in stream = applied in the views.
    assert_eq!(stored_events, head);
    let js = async_nats::jetstream::new(client.clone());
    let in_stream = js
        .get_stream("TEPAI_EVENTS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages;
    assert_eq!(in_stream, head);
    wait_for_views(&client, head).await;
    assert!(node_kills >= 1 && nats_kills >= 1);
    assert!(rejected_count(&acks) > 0, "the mix includes rejections");
    eprintln!(
        "soak: {acknowledged} commands acknowledged and logged ({} rejected), \
         {head} events in store, stream and views; {node_kills} node kills, \
         {nats_kills} NATS kills, {} failed attempts resent",
        rejected_count(&acks),
        acks.failed_attempts
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    drop(node);
}
