//! The replay tool through the binary, against a real node, store, views
//! and stream: status, rebuild under live queries, audit rebuilds, the
//! rebuild lock, verify against each kind of damage, republish.

use std::time::Duration;

use tepai::projection::{Views, ViewsDir};
use tepai::wire::pb;

use crate::bus::{send, start_node, Node};
use crate::http_client;
use crate::nats_server::NatsServer;
use crate::support::*;

/// Registers `n` commissioners at one workstation, each with a post.
/// Returns the head position.
async fn load(client: &async_nats::Client, n: usize) -> u64 {
    let station = id();
    let mut head = accepted(
        &send(
            client,
            &envelope(establish(&station, "包钢工作站", BAOTOU, 500)),
        )
        .await,
    )[0]
    .global_position;
    for _ in 0..n {
        let c = id();
        send(client, &envelope(register(&c, "赵敏", HOHHOT))).await;
        let result = send(client, &envelope(appoint(&id(), &c, &station, BAOTOU, 10))).await;
        head = accepted(&result)[0].global_position;
    }
    // A demand through its whole flow, so every view table has rows.
    let (c, demand, post) = (id(), id(), id());
    send(client, &envelope(register(&c, "赵敏", HOHHOT))).await;
    send(client, &envelope(submit_demand(&demand, BAOTOU))).await;
    let mut for_demand = appoint(&post, &c, &station, BAOTOU, 10);
    if let pb::command_envelope::Command::AppointPost(a) = &mut for_demand {
        a.demand_id = demand.clone();
    }
    accepted(&send(client, &envelope(for_demand)).await);
    let mut service = service_for(&post, &demand);
    if let pb::command_envelope::Command::RecordService(s) = &mut service {
        s.beneficiary_city = BAOTOU.into();
    }
    accepted(&send(client, &envelope(service)).await);
    let result = send(client, &envelope(resolve(&demand))).await;
    head.max(accepted(&result)[0].global_position)
}

async fn messages_in_stream(js: &async_nats::jetstream::Context) -> u64 {
    let mut stream = js.get_stream("TEPAI_EVENTS").await.unwrap();
    stream.info().await.unwrap().state.messages
}

async fn count_posts(node: &Node) -> Result<usize, String> {
    let response = http_client::get(
        node.http,
        "/v1/assignments?on_date=2025-06-01&page_size=500",
    )
    .await;
    if response.status != 200 {
        return Err(format!("{}: {}", response.status, response.body));
    }
    Ok(response.json()["assignments"]
        .as_array()
        .map_or(0, |a| a.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_swaps_the_views_while_queries_keep_answering() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let head = load(&client, 40).await;
    wait_for_views(&client, head).await;
    let views = ViewsDir::new(data.path());
    let before = views.current().unwrap();

    let stop = tokio_util::sync::CancellationToken::new();
    let node = std::sync::Arc::new(node);
    let querier = {
        let (stop, node) = (stop.clone(), node.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.is_cancelled() {
                answers.push(count_posts(&node).await);
            }
            answers
        })
    };
    let dir = data.path().to_str().unwrap().to_owned();
    let url = nats.url();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run_tepai(&["ops", "rebuild", "--data-dir", &dir, "--nats-url", &url])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("to position {head}")), "{out}");
    let after = views.current().unwrap();
    assert_ne!(after, before);
    // The node follows the swap, drops the old file, and keeps applying.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while before.exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !before.exists(),
        "the old generation is removed once the node switched"
    );
    let head = load(&client, 2).await;
    wait_for_views(&client, head).await;
    stop.cancel();
    let answers = querier.await.unwrap();
    assert!(
        answers.len() > 10,
        "queries ran throughout ({} answers)",
        answers.len()
    );
    for answer in &answers {
        assert!(
            matches!(answer, Ok(n) if *n >= 40),
            "a query failed or saw partial views: {answer:?}"
        );
    }
    // 40 + 2 posts, and one appointed for a demand by each load.
    assert_eq!(count_posts(&node).await, Ok(44));
    std::sync::Arc::try_unwrap(node).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_rebuild_stops_at_a_position_and_leaves_the_live_views_alone() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let head = load(&client, 5).await;
    wait_for_views(&client, head).await;
    let live = ViewsDir::new(data.path()).current().unwrap();
    let output = data.path().join("audit.db");
    let (dir, url) = (data.path().to_str().unwrap(), nats.url());

    let (code, out, err) = run_tepai(&[
        "ops",
        "rebuild",
        "--to-position",
        "5",
        "--output",
        output.to_str().unwrap(),
        "--data-dir",
        dir,
        "--nats-url",
        &url,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let audit = Views::open(&output).unwrap();
    assert_eq!(audit.checkpoint().unwrap(), 5);
    let page = audit
        .assignments(
            &pb::AssignmentsQuery {
                on_date: "2025-06-01".into(),
                ..Default::default()
            },
            "2025-06-01".parse().unwrap(),
        )
        .unwrap();
    assert_eq!(
        page.assignments.len(),
        2,
        "after event 5: the station, two commissioners with posts"
    );
    assert_eq!(ViewsDir::new(data.path()).current().unwrap(), live);

    // From JetStream, as a query node would.
    let from_nats = data.path().join("audit-nats.db");
    let (code, out, err) = run_tepai(&[
        "ops",
        "rebuild",
        "--source",
        "nats",
        "--to-position",
        "7",
        "--output",
        from_nats.to_str().unwrap(),
        "--data-dir",
        dir,
        "--nats-url",
        &url,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(Views::open(&from_nats).unwrap().checkpoint().unwrap(), 7);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rebuild_is_refused_while_one_holds_the_views() {
    let data = tempfile::tempdir().unwrap();
    let held = ViewsDir::new(data.path()).lock_rebuild().unwrap();
    let (code, _, err) = run_tepai(&[
        "ops",
        "rebuild",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("another rebuild holds"), "{err}");
    drop(held);
}

fn drop_triggers(store: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(store).unwrap();
    for name in conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
    {
        conn.execute_batch(&format!("DROP TRIGGER {name}")).unwrap();
    }
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_a_healthy_node_and_names_each_kind_of_damage() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let head = load(&client, 6).await;
    wait_for_views(&client, head).await;
    node.stop().await;
    let (dir, url) = (data.path().to_str().unwrap().to_owned(), nats.url());
    let verify = |extra: &[&str]| {
        let mut args = vec!["ops", "verify", "--data-dir", &dir, "--nats-url", &url];
        args.extend_from_slice(extra);
        run_tepai(&args)
    };

    let (code, out, err) = verify(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches(" ok ").count(), 3, "{out}");

    // A view row changed behind the projector's back.
    let live = ViewsDir::new(data.path()).current().unwrap();
    rusqlite::Connection::open(&live)
        .unwrap()
        .execute(
            "UPDATE posts SET role = '篡改' WHERE post_id = (SELECT min(post_id) FROM posts)",
            [],
        )
        .unwrap();
    let (code, out, _) = verify(&["--no-stream"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("view table posts") && out.contains("篡改"),
        "{out}"
    );
    let (code, out, err) = run_tepai(&["ops", "rebuild", "--data-dir", &dir, "--nats-url", &url]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(verify(&[]).0, 0, "a rebuild repairs the views");

    // A demand's row, or the service recorded for it, changed: the demand
    // views are compared with a rebuild too.
    for (tamper, table) in [
        (
            "UPDATE demands SET title = '篡改需求'",
            "view table demands",
        ),
        (
            "UPDATE demand_services SET minutes = minutes + 1",
            "view table demand_services",
        ),
    ] {
        let live = ViewsDir::new(data.path()).current().unwrap();
        let changed = rusqlite::Connection::open(&live)
            .unwrap()
            .execute(tamper, [])
            .unwrap();
        assert!(changed > 0, "{tamper}");
        let (code, out, _) = verify(&["--no-stream"]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(table), "{out}");
        let (code, out, err) =
            run_tepai(&["ops", "rebuild", "--data-dir", &dir, "--nats-url", &url]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(verify(&["--no-stream"]).0, 0, "a rebuild repairs the views");
    }

    // A message deleted from the stream.
    let js = async_nats::jetstream::new(client.clone());
    js.get_stream("TEPAI_EVENTS")
        .await
        .unwrap()
        .delete_message(3)
        .await
        .unwrap();
    let (code, out, _) = verify(&["--no-views"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("stream") && out.contains("FAIL") && out.contains("position 3"),
        "{out}"
    );

    // One byte of a stored payload changed.
    let store = store_path(data.path());
    let conn = drop_triggers(&store);
    let original: Vec<u8> = conn
        .query_row("SELECT payload FROM events WHERE position = 5", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut changed = original.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x01;
    conn.execute(
        "UPDATE events SET payload = ?1 WHERE position = 5",
        [&changed],
    )
    .unwrap();
    let (code, out, _) = verify(&["--no-stream", "--no-views"]);
    assert_eq!(code, 1);
    assert!(out.contains("position 5"), "{out}");
    conn.execute(
        "UPDATE events SET payload = ?1 WHERE position = 5",
        [&original],
    )
    .unwrap();
    assert_eq!(verify(&["--no-stream", "--no-views"]).0, 0);

    // An event row deleted.
    conn.execute("DELETE FROM events WHERE position = 7", [])
        .unwrap();
    let (code, out, _) = verify(&["--no-stream", "--no-views"]);
    assert_eq!(code, 1);
    assert!(out.contains("expected position 7"), "{out}");
}

/// The events stream as it stands: its configuration and every message's
/// subject, headers and payload, in sequence order from 1.
struct StreamCopy {
    config: async_nats::jetstream::stream::Config,
    messages: Vec<(async_nats::Subject, async_nats::HeaderMap, Vec<u8>)>,
}

async fn copy_stream(js: &async_nats::jetstream::Context) -> StreamCopy {
    let mut stream = js.get_stream("TEPAI_EVENTS").await.unwrap();
    let info = stream.info().await.unwrap().clone();
    assert_eq!(info.state.first_sequence, 1);
    let mut messages = Vec::new();
    for sequence in 1..=info.state.last_sequence {
        let message = stream.get_raw_message(sequence).await.unwrap();
        messages.push((message.subject, message.headers, message.payload.to_vec()));
    }
    StreamCopy {
        config: info.config,
        messages,
    }
}

/// Makes the stream hold `copy` with `change` applied to each message,
/// under the same sequences. JetStream cannot edit a stored message, so
/// the stream is deleted, made anew with its old configuration and refilled.
async fn restore_stream(
    js: &async_nats::jetstream::Context,
    copy: &StreamCopy,
    change: impl Fn(u64, &mut async_nats::HeaderMap, &mut Vec<u8>),
) {
    js.delete_stream("TEPAI_EVENTS").await.unwrap();
    js.create_stream(copy.config.clone()).await.unwrap();
    for (sequence, (subject, headers, payload)) in (1..).zip(&copy.messages) {
        let (mut headers, mut payload) = (headers.clone(), payload.clone());
        change(sequence, &mut headers, &mut payload);
        let ack = js
            .publish_with_headers(subject.clone(), headers, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(
            ack.sequence, sequence,
            "the refilled stream keeps sequences"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_stream_message_whose_body_or_hash_differs_from_the_store() {
    use prost::Message;
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let head = load(&client, 3).await;
    wait_for_views(&client, head).await;
    node.stop().await;
    let (dir, url) = (data.path().to_str().unwrap().to_owned(), nats.url());
    let verify = || {
        run_tepai(&[
            "ops",
            "verify",
            "--no-views",
            "--data-dir",
            &dir,
            "--nats-url",
            &url,
        ])
    };
    let js = async_nats::jetstream::new(client.clone());
    let copy = copy_stream(&js).await;

    // A faithful copy passes: what fails below is the change alone.
    restore_stream(&js, &copy, |_, _, _| {}).await;
    let (code, out, err) = verify();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("{head} events, the same events")),
        "{out}"
    );

    // Position 4 registers the second commissioner: the name changes,
    // the id, position and hash header stay.
    restore_stream(&js, &copy, |sequence, _, payload| {
        if sequence == 4 {
            let mut envelope = pb::EventEnvelope::decode(payload.as_slice()).unwrap();
            let Some(pb::event_envelope::Event::CommissionerRegistered(registered)) =
                envelope.event.as_mut()
            else {
                panic!("position 4 is not a registration: {envelope:?}");
            };
            registered.name = "篡改".into();
            *payload = envelope.encode_to_vec();
        }
    })
    .await;
    let (code, out, _) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "stream message 4 (position 4): the payload differs from the store's event; \
             fields that differ: event"
        ),
        "{out}"
    );

    // The bodies as they were, the hash header of position 2 changed.
    restore_stream(&js, &copy, |sequence, headers, _| {
        if sequence == 2 {
            headers.insert("Tepai-Hash", "00".repeat(32).as_str());
        }
    })
    .await;
    let (code, out, _) = verify();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("stream message 2 (position 2) carries Tepai-Hash 0000"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republish_changes_no_view_and_restores_a_deleted_stream() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let head = load(&client, 5).await;
    wait_for_views(&client, head).await;
    let before = http_client::get(node.http, "/v1/assignments?on_date=2025-06-01")
        .await
        .body;
    let (dir, url) = (data.path().to_str().unwrap().to_owned(), nats.url());

    // Within the duplicate window JetStream drops every resent event.
    let (code, out, err) = run_tepai(&[
        "ops",
        "republish",
        "--from",
        "1",
        "--force",
        "--data-dir",
        &dir,
        "--nats-url",
        &url,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("{head} dropped by JetStream as duplicates")),
        "{out}"
    );
    let js = async_nats::jetstream::new(client.clone());
    assert_eq!(messages_in_stream(&js).await, head);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        http_client::get(node.http, "/v1/assignments?on_date=2025-06-01")
            .await
            .body,
        before
    );
    node.stop().await;

    // Deleted on the NATS side: recreated and refilled from the store.
    js.delete_stream("TEPAI_EVENTS").await.unwrap();
    let (code, out, err) = run_tepai(&[
        "ops",
        "republish",
        "--from",
        "1",
        "--data-dir",
        &dir,
        "--nats-url",
        &url,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(messages_in_stream(&js).await, head);
    let (code, out, err) = run_tepai(&["ops", "verify", "--data-dir", &dir, "--nats-url", &url]);
    assert_eq!(code, 0, "{out}{err}");

    let node = start_node(&nats, data.path()).await;
    wait_for_views(&client, head).await;
    assert_eq!(
        http_client::get(node.http, "/v1/assignments?on_date=2025-06-01")
            .await
            .body,
        before
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_the_store_relay_views_stream_and_the_lease_holder() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let head = load(&client, 3).await;
    wait_for_views(&client, head).await;
    let (dir, url) = (data.path().to_str().unwrap().to_owned(), nats.url());
    let (code, out, err) = run_tepai(&[
        "ops",
        "status",
        "--json",
        "--data-dir",
        &dir,
        "--nats-url",
        &url,
    ]);
    assert_eq!(code, 0, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["store_head"], head);
    assert_eq!(status["views_checkpoint"], head);
    assert_eq!(status["views_lag"], 0);
    assert_eq!(status["stream"]["messages"], head);
    assert_eq!(status["stream"]["last_position"], head);
    assert!(status["relay_position"].as_u64().unwrap() <= head);
    assert!(
        status["writer_lease"]["holder"].is_null(),
        "a node without --failover makes no lease: {out}"
    );
    let (code, out, _) = run_tepai(&["ops", "status", "--data-dir", &dir, "--nats-url", &url]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("store head        {head}")), "{out}");
    assert!(out.contains("writer lease      none"), "{out}");

    // A command node with --failover takes the lease: status names it.
    let js = async_nats::jetstream::new(client.clone());
    let kv = tepai::bus::lease::open_bucket(&js, 1).await.unwrap();
    let mut claimant = tepai::bus::lease::Claimant::new(kv, "node-b", Duration::from_secs(30));
    let tepai::bus::lease::Claim::Taken(lease) = claimant.try_take().await.unwrap() else {
        panic!("a free lease was not taken");
    };
    let status_json = || {
        let (code, out, err) = run_tepai(&[
            "ops",
            "status",
            "--json",
            "--data-dir",
            &dir,
            "--nats-url",
            &url,
        ]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let status = status_json();
    assert_eq!(status["writer_lease"]["holder"], "node-b", "{status}");
    assert_eq!(status["writer_lease"]["period_ms"], 30_000, "{status}");
    assert!(
        status["writer_lease"]["since_renewal_ms"].is_u64(),
        "{status}"
    );
    let (_, out, _) = run_tepai(&["ops", "status", "--data-dir", &dir, "--nats-url", &url]);
    assert!(out.contains("writer lease      node-b, renewed "), "{out}");

    // Released on a clean stop: nobody holds it.
    lease.release().await;
    assert!(status_json()["writer_lease"]["holder"].is_null());
    node.stop().await;
}

#[test]
fn an_interrupted_rebuild_leaves_the_live_views_untouched() {
    let data = tempfile::tempdir().unwrap();
    {
        let mut processor = open_processor(data.path());
        for _ in 0..30 {
            let batch = (0..1000)
                .map(|_| decoded(envelope(register(&id(), "赵敏", HOHHOT))))
                .collect();
            processor.process_batch(batch, NOW_MS);
        }
    }
    let dir = data.path().to_str().unwrap();
    let (code, out, err) = run_tepai(&["ops", "rebuild", "--data-dir", dir]);
    assert_eq!(code, 0, "{out}{err}");
    let views = ViewsDir::new(data.path());
    let live = views.current().unwrap();

    let mut rebuild = std::process::Command::new(env!("CARGO_BIN_EXE_tepai"))
        .args(["ops", "rebuild", "--data-dir", dir])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    rebuild.kill().unwrap();
    let status = rebuild.wait().unwrap();
    assert!(
        !status.success(),
        "the rebuild finished before it could be interrupted; give it more events"
    );

    assert_eq!(
        views.current().unwrap(),
        live,
        "the pointer still names the old views"
    );
    assert_eq!(Views::open(&live).unwrap().checkpoint().unwrap(), 30_000);
    let (code, out, err) = run_tepai(&["ops", "rebuild", "--data-dir", dir]);
    assert_eq!(
        code, 0,
        "the lock died with the interrupted process: {out}{err}"
    );
    assert_ne!(views.current().unwrap(), live);
}
