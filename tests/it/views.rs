//! Views over NATS and HTTP, fed by the projector from JetStream.

use prost::Message;
use tepai::app::Roles;
use tepai::wire::pb;

use crate::bus::{send, start_node, start_roles};
use crate::http_client;
use crate::nats_server::NatsServer;
use crate::support::*;

async fn query<Q: Message, R: Message + Default>(
    client: &async_nats::Client,
    view: &str,
    q: &Q,
) -> Result<R, (String, String)> {
    let reply = client
        .request(
            format!("{}.{view}", tepai::bus::QUERY_PREFIX),
            q.encode_to_vec().into(),
        )
        .await
        .unwrap();
    if let Some(headers) = &reply.headers {
        if let Some(code) = headers.get("Nats-Service-Error-Code") {
            let message = headers
                .get("Nats-Service-Error")
                .map(|v| v.to_string())
                .unwrap_or_default();
            return Err((code.to_string(), message));
        }
    }
    Ok(R::decode(reply.payload).unwrap())
}

/// Waits until the views have applied `position`, then returns the status.
async fn status_at(client: &async_nats::Client, position: u64) -> pb::Status {
    wait_for_views(client, position).await;
    query(client, "status", &pb::StatusQuery {}).await.unwrap()
}

struct World {
    hohhot_commissioner: String,
    baotou_commissioner: String,
    hohhot_station: String,
    cross_post: String,
    head: u64,
}

async fn load_world(client: &async_nats::Client) -> World {
    let (ch, cb, wh, p1, p2) = (id(), id(), id(), id(), id());
    let mut head = 0;
    for command in [
        register(&ch, "张涛", HOHHOT),
        register(&cb, "李强", BAOTOU),
        establish(&wh, "金宇生物工作站", HOHHOT, 5),
        appoint(&p1, &ch, &wh, HOHHOT, 30),
        appoint(&p2, &cb, &wh, HOHHOT, 20),
    ] {
        let result = send(client, &envelope(command)).await;
        head = accepted(&result).last().unwrap().global_position;
    }
    World {
        hohhot_commissioner: ch,
        baotou_commissioner: cb,
        hohhot_station: wh,
        cross_post: p2,
        head,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_answer_over_nats_and_http_after_the_events_arrive() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let world = load_world(&client).await;

    let status = status_at(&client, world.head).await;
    assert_eq!(
        (status.last_position, status.relay_position),
        (world.head, world.head)
    );
    assert_eq!(status.projections[0].lag, 0);

    let page: pb::AssignmentsPage = query(
        &client,
        "assignments",
        &pb::AssignmentsQuery {
            on_date: "2025-06-01".into(),
            cross_city_only: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.assignments.len(), 1);
    let a = &page.assignments[0];
    assert_eq!(
        (a.post_id.as_str(), a.commissioner_name.as_str()),
        (world.cross_post.as_str(), "李强")
    );
    assert_eq!(
        (a.home_city.as_str(), a.serving_city.as_str(), a.cross_city),
        (BAOTOU, HOHHOT, true)
    );
    assert_eq!(a.status(), pb::AssignmentStatus::Active);

    let http = http_client::get(
        node.http,
        "/v1/assignments?on_date=2025-06-01&status=active",
    )
    .await;
    assert_eq!(http.status, 200, "{}", http.body);
    let json = http.json();
    assert_eq!(json["assignments"].as_array().unwrap().len(), 2);
    assert!(json["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["status"] == "ACTIVE"));

    let detail = http_client::get(
        node.http,
        &format!(
            "/v1/commissioners/{}?on_date=2025-06-01",
            world.hohhot_commissioner
        ),
    )
    .await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.json()["active_hours_per_month"], 30);
    let station = http_client::get(
        node.http,
        &format!(
            "/v1/workstations/{}?on_date=2025-06-01",
            world.hohhot_station
        ),
    )
    .await;
    assert_eq!(station.json()["active_posts"], 2);

    let matrix: pb::CityMatrix = query(
        &client,
        "city_matrix",
        &pb::CityMatrixQuery {
            on_date: "2025-06-01".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let cell = |home: &str, serving: &str| {
        matrix
            .cells
            .iter()
            .find(|c| c.home_city == home && c.serving_city == serving)
            .cloned()
    };
    assert_eq!(
        cell(HOHHOT, HOHHOT).map(|c| (c.active_posts, c.hours_per_month)),
        Some((1, 30))
    );
    assert_eq!(
        cell(BAOTOU, HOHHOT).map(|c| (c.active_posts, c.hours_per_month)),
        Some((1, 20))
    );

    // As of the position before the cross-city post, it was not there.
    let before: pb::AssignmentsPage = query(
        &client,
        "assignments",
        &pb::AssignmentsQuery {
            on_date: "2025-06-01".into(),
            as_of_position: world.head - 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(before.assignments.len(), 1);
    assert_eq!(before.as_of_position, world.head - 1);
    let _ = &world.baotou_commissioner;
    let metrics = http_client::get(node.http, "/metrics").await;
    for name in [
        "tepai_commands_total{",
        "tepai_commit_batch_size",
        "tepai_relay_position",
        "tepai_query_seconds",
    ] {
        assert!(metrics.body.contains(name), "{name} missing from /metrics");
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_parameters_get_a_clear_error_never_a_500() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();

    let cases = [
        ("/v1/assignments?on_date=2025-13-01", 400, "on_date"),
        ("/v1/assignments?status=sleeping", 400, "status"),
        ("/v1/assignments?home_city=150600", 400, "home_city"),
        ("/v1/assignments?page_size=100000", 400, "page_size"),
        ("/v1/assignments?page_size=-1", 400, "page_size"),
        ("/v1/assignments?as_of_position=999", 400, "as_of_position"),
        ("/v1/assignments?colour=blue", 400, "unknown parameter"),
        ("/v1/assignments?page_token=zz", 400, "page_token"),
        ("/v1/commissioners/not-a-uuid", 400, "commissioner_id"),
        (
            "/v1/commissioners/0190a5e4-0000-7000-8000-000000000001",
            404,
            "",
        ),
        ("/v1/city-matrix?from_date=2025-02-30", 400, "from_date"),
        ("/v1/nowhere", 404, "no such path"),
    ];
    for (path, status, mentions) in cases {
        let response = http_client::get(node.http, path).await;
        assert_eq!(response.status, status, "{path}: {}", response.body);
        let json = response.json();
        assert!(json["code"].is_string(), "{path}: {}", response.body);
        assert!(
            json["message"].as_str().unwrap().contains(mentions),
            "{path}: {}",
            response.body
        );
    }
    let error = query::<_, pb::AssignmentsPage>(
        &client,
        "assignments",
        &pb::AssignmentsQuery {
            on_date: "yesterday".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(error.0, "400");
    assert!(error.1.contains("on_date"), "{}", error.1);
    let reply = client
        .request(
            tepai::bus::QUERY_ASSIGNMENTS_SUBJECT,
            vec![0xff, 0xff, 0xff].into(),
        )
        .await
        .unwrap();
    assert_eq!(
        reply
            .headers
            .unwrap()
            .get("Nats-Service-Error-Code")
            .unwrap()
            .as_str(),
        "400"
    );
    let health = http_client::get(node.http, "/healthz").await;
    assert_eq!(health.status, 200);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_query_node_catches_up_from_the_stream_alone() {
    let nats = NatsServer::start();
    let command_dir = tempfile::tempdir().unwrap();
    let query_dir = tempfile::tempdir().unwrap();
    let command_node = start_roles(
        &nats,
        command_dir.path(),
        Roles {
            command: true,
            query: false,
        },
    )
    .await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let world = load_world(&client).await;

    let query_node = start_roles(
        &nats,
        query_dir.path(),
        Roles {
            command: false,
            query: true,
        },
    )
    .await;
    let status = status_at(&client, world.head).await;
    assert_eq!(status.projections[0].checkpoint, world.head);
    assert!(
        !query_dir.path().join("events.db").exists(),
        "a query node keeps no event store"
    );
    let page = http_client::get(query_node.http, "/v1/assignments?on_date=2025-06-01")
        .await
        .json();
    assert_eq!(page["assignments"].as_array().unwrap().len(), 2);
    let metrics = http_client::get(query_node.http, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("tepai_projection_checkpoint"),
        "{}",
        metrics.body
    );
    query_node.stop().await;
    command_node.stop().await;
}
