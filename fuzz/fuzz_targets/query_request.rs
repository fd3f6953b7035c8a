//! Bytes as a query: the first byte picks the front end, the rest is the
//! request. HTTP: a path and query string through the real router, which
//! must answer a status below 500 with a JSON `{code, message}` on error.
//! NATS: a protobuf body for one of the views, which must answer or fail
//! with a typed error. The views are empty; parsing is what is fuzzed.

#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use tepai::projection::{Projection, QueryError};
use tepai::query::{self, QueryService, StatusSources};
use tower::ServiceExt;

struct Harness {
    runtime: tokio::runtime::Runtime,
    queries: Arc<QueryService>,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("views.db");
        Projection::open(&path).expect("views open");
        let status = StatusSources {
            store_head: None,
            relay: None,
            projector: tokio::sync::watch::channel(Default::default()).1,
        };
        let queries = QueryService::new(
            tokio::sync::watch::channel(path).1,
            tepai::domain::Policy::default(),
            status,
            tepai::limits::Limits::default(),
            Default::default(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        Harness {
            runtime,
            queries,
            _dir: dir,
        }
    })
}

fuzz_target!(|bytes: &[u8]| {
    let Some((&selector, rest)) = bytes.split_first() else {
        return;
    };
    let harness = harness();
    if selector < 128 {
        let Ok(target) = std::str::from_utf8(rest) else {
            return;
        };
        let prefix = [
            "/v1/assignments?",
            "/v1/commissioners/",
            "/v1/workstations/",
            "/v1/city-matrix?",
        ][usize::from(selector) % 4];
        // What hyper would refuse before routing never reaches the router.
        let Ok(request) = Request::get(format!("{prefix}{target}")).body(Body::empty()) else {
            return;
        };
        let router = query::http::router(harness.queries.clone(), None);
        let (status, body) = harness.runtime.block_on(async {
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .expect("body");
            (status, body)
        });
        assert!(status.as_u16() < 500, "{status} for {prefix}{target}");
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            assert!(
                text.contains("\"code\"") && text.contains("\"message\""),
                "{text}"
            );
        }
    } else {
        let view = query::nats::VIEWS[usize::from(selector) % query::nats::VIEWS.len()];
        let answer = harness
            .runtime
            .block_on(query::nats::answer(&harness.queries, view, rest));
        if let Err(error) = answer {
            assert!(!matches!(error, QueryError::Storage(_)), "{error}");
        }
    }
});
