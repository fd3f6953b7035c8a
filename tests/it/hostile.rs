//! Hostile input through a real node (real nats-server, SQLite files):
//! every text field either refuses a value with INVALID_ARGUMENT naming the
//! field and the limit, writing nothing, or stores it and hands it back
//! byte for byte over NATS and HTTP. Payloads past tepai's limit and past
//! nats-server's max_payload, and HTTP parameters and path ids of every
//! odd shape, get a typed answer: never a panic, never a 500.

use std::io::{Read, Write};

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use prost::Message;
use tepai::limits::Limits;
use tepai::projection::{QueryError, ViewsDir};
use tepai::query::{self, QueryService, StatusSources};
use tepai::wire::pb::{self, command_envelope::Command as C};
use tower::ServiceExt;

use crate::bus::{send, start_node};
use crate::http_client;
use crate::nats_server::NatsServer;
use crate::support::*;

/// Values a name may hold that look like trouble but are just text:
/// Mongolian script needs its variation selectors and joiners, and a
/// value is never part of SQL text, so none of them is refused.
const VERBATIM: [&str; 5] = [
    "'); DROP TABLE events;--",
    "\u{202E}站作工\u{200B}\u{200C}\u{200D}\u{FEFF}",
    "👩‍🔬🧪 科技特派员 🐄🇨🇳",
    "ᠪᠠᠭᠠᠲᠤᠷ\u{180B}\u{202F}ᠤᠨ",
    "%s%n{0}${jndi:ldap://x}<script>",
];

fn register_with(commissioner_id: &str, text: &str, tags: Vec<String>) -> C {
    C::RegisterCommissioner(pb::RegisterCommissioner {
        commissioner_id: commissioner_id.into(),
        name: text.into(),
        home_city: HOHHOT.into(),
        employer: text.into(),
        kind: pb::CommissionerKind::Individual as i32,
        expertise: tags,
    })
}

async fn last_position(client: &async_nats::Client) -> u64 {
    let reply = client
        .request(
            tepai::bus::QUERY_STATUS_SUBJECT,
            pb::StatusQuery {}.encode_to_vec().into(),
        )
        .await
        .unwrap();
    pb::Status::decode(reply.payload).unwrap().last_position
}

/// Refusals: (command, field, what the message must say).
fn refused_cases() -> Vec<(C, &'static str, String)> {
    let long = |n: usize| "长".repeat(n);
    let suspend = |reason: String| {
        C::SuspendCommissioner(pb::SuspendCommissioner {
            commissioner_id: id(),
            reason,
        })
    };
    vec![
        (
            register_with(&id(), &long(201), vec![]),
            "name",
            "is 201 characters long; the limit is 200".into(),
        ),
        (
            register_with(&id(), &"x".repeat(20_000), vec![]),
            "name",
            "the limit is 200".into(),
        ),
        (
            register_with(&id(), "张\u{0}博", vec![]),
            "name",
            "control character U+0000".into(),
        ),
        (
            register_with(&id(), "张\u{1B}[2J博", vec![]),
            "name",
            "control character U+001B".into(),
        ),
        (
            register_with(&id(), "张涛\n", vec![]),
            "name",
            "control character U+000A".into(),
        ),
        (
            register_with(&id(), "张\u{85}博", vec![]),
            "name",
            "control character U+0085".into(),
        ),
        (
            register_with(&id(), "   ", vec![]),
            "name",
            "is required".into(),
        ),
        (
            register_with(&id(), "张涛", vec!["t".repeat(65)]),
            "expertise",
            "the limit is 64".into(),
        ),
        (
            register_with(&id(), "张涛", vec!["稀土".into(); 33]),
            "expertise",
            "has 33 tags; the limit is 32".into(),
        ),
        (
            register_with(&id(), "张涛", vec![String::new()]),
            "expertise",
            "is required".into(),
        ),
        (
            register_with("'); DROP TABLE events;--", "张涛", vec![]),
            "commissioner_id",
            "is not a UUID".into(),
        ),
        (
            suspend("理".repeat(2001)),
            "reason",
            "the limit is 2000".into(),
        ),
        (
            suspend("a\u{7}b".into()),
            "reason",
            "control character U+0007".into(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_refused_naming_the_field_or_returned_verbatim() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();

    // Refused: INVALID_ARGUMENT naming the field and the limit; nothing written.
    for (command, field, says) in refused_cases() {
        let result = send(&client, &envelope(command)).await;
        let (code, rule, message) = rejected(&result);
        assert_eq!(code, pb::RejectCode::InvalidArgument, "{rule}: {message}");
        assert!(
            message.starts_with(field) && message.contains(&says),
            "{message}"
        );
    }
    // 100,000 characters: the envelope is past 64 KiB before any field is read.
    let huge = envelope(register_with(&id(), &"x".repeat(100_000), vec![]));
    let result = send(&client, &huge).await;
    let (code, rule, message) = rejected(&result);
    assert_eq!(
        (code, rule),
        (pb::RejectCode::InvalidArgument, "REQUEST_TOO_LARGE")
    );
    assert!(message.contains("the limit is 65536"), "{message}");
    // Invalid UTF-8 in a protobuf string field: refused, naming the field.
    let mut bytes = envelope(register_with(&id(), "NAME", vec![])).encode_to_vec();
    let at = bytes.windows(4).position(|w| w == b"NAME").unwrap();
    bytes[at..at + 4].copy_from_slice(&[0xFF, 0xFE, 0xC0, 0x80]);
    let reply = client
        .request("tepai.cmd.submit", bytes.into())
        .await
        .unwrap();
    let result = pb::CommandResult::decode(reply.payload).unwrap();
    let (code, rule, message) = rejected(&result);
    assert_eq!((code, rule), (pb::RejectCode::InvalidArgument, "MALFORMED"));
    assert!(
        message.contains("RegisterCommissioner.name") && message.contains("UTF-8"),
        "{message}"
    );
    assert_eq!(last_position(&client).await, 0, "a refusal wrote something");

    // Accepted: stored and returned byte for byte, over NATS and HTTP.
    let mut stored = Vec::new();
    for text in VERBATIM
        .iter()
        .map(|t| t.to_string())
        .chain(["长".repeat(200)])
    {
        let commissioner_id = id();
        let result = send(
            &client,
            &envelope(register_with(
                &commissioner_id,
                &text,
                vec![text.chars().take(64).collect()],
            )),
        )
        .await;
        assert_eq!(accepted(&result).len(), 1, "{text:?}");
        stored.push((commissioner_id, text));
    }
    let head = stored.len() as u64;
    wait_for_views(&client, head).await;
    for (commissioner_id, text) in &stored {
        let tag: String = text.chars().take(64).collect();
        let reply = client
            .request(
                tepai::bus::QUERY_COMMISSIONER_SUBJECT,
                pb::CommissionerQuery {
                    commissioner_id: commissioner_id.clone(),
                    ..Default::default()
                }
                .encode_to_vec()
                .into(),
            )
            .await
            .unwrap();
        let detail = pb::CommissionerDetail::decode(reply.payload).unwrap();
        assert_eq!(detail.name.as_bytes(), text.as_bytes());
        assert_eq!(detail.employer.as_bytes(), text.as_bytes());
        assert_eq!(detail.expertise, vec![tag.clone()]);
        let http =
            http_client::get(node.http, &format!("/v1/commissioners/{commissioner_id}")).await;
        assert_eq!(http.status, 200, "{}", http.body);
        let json = http.json();
        assert_eq!(json["name"].as_str().unwrap().as_bytes(), text.as_bytes());
        assert_eq!(json["employer"].as_str().unwrap(), text);
        assert_eq!(json["expertise"][0].as_str().unwrap(), tag);
    }
    node.stop().await;
}

/// A raw NATS connection that publishes `size` bytes to the command
/// subject and returns what the server said.
fn raw_publish(port: u16, size: usize) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut info = [0u8; 4096];
    let _ = stream.read(&mut info).unwrap();
    let mut message =
        format!("CONNECT {{\"verbose\":false}}\r\nPUB tepai.cmd.submit {size}\r\n").into_bytes();
    message.extend(std::iter::repeat_n(b'x', size));
    message.extend_from_slice(b"\r\n");
    // The server may cut the connection before taking it all.
    let _ = stream.write_all(&message);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_past_tepais_limit_and_past_max_payload_leave_the_node_answering() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let max_payload = client.server_info().max_payload;
    assert!(max_payload > Limits::default().max_envelope_bytes);

    // Past tepai's limit, within the server's: refused by tepai, unread.
    for size in [Limits::default().max_envelope_bytes + 1, max_payload] {
        let reply = client
            .request("tepai.cmd.submit", vec![0x0A; size].into())
            .await
            .unwrap();
        let result = pb::CommandResult::decode(reply.payload).unwrap();
        let (code, rule, message) = rejected(&result);
        assert_eq!(
            (code, rule),
            (pb::RejectCode::InvalidArgument, "REQUEST_TOO_LARGE")
        );
        assert!(message.contains(&size.to_string()), "{message}");
    }
    // Past the server's max_payload: the client refuses to send it, and a
    // raw publisher is cut off by the server; tepai never sees either.
    let too_big = client
        .request("tepai.cmd.submit", vec![0u8; max_payload + 1].into())
        .await;
    assert!(too_big.is_err());
    let port = nats.port;
    let said = tokio::task::spawn_blocking(move || raw_publish(port, max_payload + 1))
        .await
        .unwrap();
    assert!(said.contains("Maximum Payload"), "{said}");

    assert_eq!(last_position(&client).await, 0);
    let result = send(&client, &envelope(register(&id(), "张涛", HOHHOT))).await;
    assert_eq!(accepted(&result).len(), 1);
    node.stop().await;
}

/// Percent-encodes everything but unreserved characters.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn odd_value() -> BoxedStrategy<String> {
    prop_oneof![
        2 => proptest::collection::vec(any::<char>(), 0..24).prop_map(|c| encode(&String::from_iter(c))),
        2 => prop::sample::select(vec![
            "", "-1", "0", "+7", "1e3", "18446744073709551616", "4294967296", "99999999999999999999999",
            "2025-02-30", "2025-13-01", "0000-00-00", "9999-12-31", "2025-03-01T00:00Z", "today",
            "true", "TRUE", "yes", "150100", "150600", "015010", "%", "%G1", "%FF%FE", "%00", "%E4%B8",
            "00000000-0000-0000-0000-000000000000", "7e9a1000-0001-4000-8000-000000000001",
            "3a3030303030303030", "ff", "zz", "%27%29%3B%20DROP%20TABLE%20events%3B--",
        ]).prop_map(str::to_owned),
        1 => (1usize..400).prop_map(|n| "9".repeat(n)),
    ]
    .boxed()
}

fn odd_query() -> BoxedStrategy<String> {
    let key = prop_oneof![
        4 => prop::sample::select(vec![
            "on_date", "from_date", "to_date", "as_of_position", "page_size", "page_token",
            "status", "home_city", "serving_city", "commissioner_id", "workstation_id",
            "cross_city_only",
        ]).prop_map(str::to_owned),
        1 => proptest::collection::vec(any::<char>(), 0..8).prop_map(|c| encode(&String::from_iter(c))),
    ];
    proptest::collection::vec((key, odd_value()), 0..5)
        .prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        })
        .boxed()
}

fn odd_target() -> BoxedStrategy<String> {
    (
        prop::sample::select(vec![
            "/v1/assignments",
            "/v1/city-matrix",
            "/v1/commissioners/",
            "/v1/workstations/",
            "/v1/status",
            "/v1/",
            "/v1/assignments/extra",
        ]),
        odd_value(),
        odd_query(),
    )
        .prop_map(|(path, id, query)| {
            let path = if path.ends_with('/') {
                format!("{path}{id}")
            } else {
                path.to_owned()
            };
            format!("{path}?{query}")
        })
        .boxed()
}

/// Asserts an HTTP error answer: 400 or 404 (405 for other methods),
/// JSON with a code and a message.
fn assert_error_answer(target: &str, status: u16, body: &[u8]) {
    if status == 200 {
        return;
    }
    assert!(
        matches!(status, 400 | 404),
        "{target}: {status} {}",
        String::from_utf8_lossy(body)
    );
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{target}: not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    assert!(
        json["code"].is_string() && json["message"].is_string(),
        "{target}: {json}"
    );
}

#[test]
fn http_parameters_and_nats_queries_of_any_shape_never_get_a_500() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let (node, commissioner) = runtime.block_on(async {
        let node = start_node(&nats, data.path()).await;
        let client = async_nats::connect(nats.url()).await.unwrap();
        let commissioner = id();
        send(&client, &envelope(register(&commissioner, "张涛", HOHHOT))).await;
        wait_for_views(&client, 1).await;
        (node, commissioner)
    });

    // Over a real socket, the shapes a router never sees in-process.
    let fixed = [
        "/v1/assignments?page_size=1&page_size=2".to_owned(),
        "/v1/assignments?page_size=501".to_owned(),
        "/v1/assignments?page_size=-5".to_owned(),
        "/v1/assignments?as_of_position=-1".to_owned(),
        "/v1/assignments?page_token=%FF%FE".to_owned(),
        format!("/v1/assignments?on_date={}", "9".repeat(10_000)),
        "/v1/commissioners/%FF%FE".to_owned(),
        format!("/v1/commissioners/{}", "a".repeat(5_000)),
        format!("/v1/commissioners/{commissioner}?on_date=2025-02-29"),
        format!("/v1/commissioners/{commissioner}?on_date=2024-02-29&on_date=2024-03-01"),
        "/v1/workstations/..%2F..%2Fetc%2Fpasswd".to_owned(),
        "/v1/city-matrix?from_date=2025-03-01&to_date=2025-01-01".to_owned(),
        "/v1/city-matrix?%=%&&==".to_owned(),
        "/%2e%2e/%2e%2e/".to_owned(),
    ];
    runtime.block_on(async {
        for target in &fixed {
            let response = http_client::get(node.http, target).await;
            assert_ne!(response.status, 200, "{target}: {}", response.body);
            assert_error_answer(target, response.status, response.body.as_bytes());
        }
    });

    // In-process, many more: the real router over the node's views.
    let views = ViewsDir::new(data.path()).current().unwrap();
    let queries = QueryService::new(
        tokio::sync::watch::channel(views).1,
        tepai::domain::Policy::default(),
        StatusSources {
            store_head: None,
            relay: None,
            projector: tokio::sync::watch::channel(Default::default()).1,
        },
        Limits {
            max_page_size: 100,
            ..Limits::default()
        },
        Default::default(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 400,
        ..Config::default()
    });
    // Statuses seen, so the run shows it reached both answers and errors.
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    runner
        .run(&odd_target(), |target| {
            let Ok(request) = Request::get(target.as_str()).body(Body::empty()) else {
                return Ok(()); // hyper refuses it before any router
            };
            let router = query::http::router(queries.clone(), None);
            let (status, body) = runtime.block_on(async {
                let response = router.oneshot(request).await.unwrap();
                let status = response.status().as_u16();
                let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .unwrap();
                (status, body)
            });
            assert_error_answer(&target, status, &body);
            *seen.borrow_mut().entry(status).or_default() += 1;
            Ok(())
        })
        .unwrap();
    let seen = seen.into_inner();
    assert!(seen.values().sum::<u32>() > 300, "{seen:?}");
    assert!(
        seen.contains_key(&200) && seen.contains_key(&400),
        "{seen:?}"
    );
    let page = runtime.block_on(async {
        let router = query::http::router(queries.clone(), None);
        let request = Request::get("/v1/assignments?page_size=101")
            .body(Body::empty())
            .unwrap();
        router.oneshot(request).await.unwrap()
    });
    assert_eq!(page.status(), 400, "the configured page limit holds");
    let (status, body) = runtime.block_on(async {
        let router = query::http::router(queries.clone(), None);
        let request = Request::post("/v1/assignments")
            .body(Body::from(vec![b'x'; 1 << 16]))
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap(),
        )
    });
    assert_eq!(status, 405);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["code"], "METHOD_NOT_ALLOWED");

    // Query requests over NATS decoded by the service: any bytes.
    runner
        .run(
            &(
                0usize..query::nats::VIEWS.len(),
                proptest::collection::vec(any::<u8>(), 0..256),
            ),
            |(view, bytes)| {
                let view = query::nats::VIEWS[view];
                let answer = runtime.block_on(query::nats::answer(&queries, view, &bytes));
                if let Err(error) = answer {
                    assert!(!matches!(error, QueryError::Storage(_)), "{view}: {error}");
                    assert!(!error.to_string().is_empty());
                }
                Ok(())
            },
        )
        .unwrap();
    let oversize = vec![0u8; Limits::default().max_query_bytes + 1];
    let refused = runtime.block_on(query::nats::answer(&queries, "assignments", &oversize));
    assert!(matches!(
        refused,
        Err(QueryError::InvalidArgument {
            field: "request",
            ..
        })
    ));
    drop(queries);
    runtime.block_on(node.stop());
}
