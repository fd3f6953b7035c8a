//! `tepai bench` through the binary: a short spawned run with baselines,
//! its JSON checked for every figure the load tool promises.

use serde_json::Value;

use crate::support::run_tepai;

/// `tepai bench --spawn --producers 4 --commands 400 --json` and `more`:
/// its JSON report, once it exited 0.
fn spawned_report(more: &[&str]) -> Value {
    let mut args = vec![
        "bench",
        "--spawn",
        "--producers",
        "4",
        "--commands",
        "400",
        "--json",
    ];
    args.extend_from_slice(more);
    let (code, stdout, stderr) = run_tepai(&args);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn number(report: &Value, path: &str) -> f64 {
    report
        .pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} is missing or not a number in {report:#}"))
}

#[test]
fn a_short_spawned_run_reports_every_figure_and_its_baselines() {
    let report = spawned_report(&[]);
    let n = |path: &str| number(&report, path);

    assert_eq!(n("/sent"), 400.0);
    assert_eq!(n("/errors"), 0.0, "{report:#}");
    assert!(n("/accepted") > 0.0);
    assert_eq!(n("/accepted") + n("/rejected"), n("/answered"));
    assert!(
        n("/rejected_by_code/RULE_VIOLATED") > 0.0,
        "the over-limit appointments were refused: {report:#}"
    );
    assert_eq!(
        n("/rejected_by_rule/HOURS_OVER_LIMIT"),
        n("/rejected"),
        "only the hours rule refuses: {report:#}"
    );

    assert!(n("/commands_per_s") > 0.0);
    assert!(n("/accepted_events_per_s") > 0.0);
    let p50 = n("/ack_latency/p50_us");
    assert!(p50 > 0.0);
    assert!(n("/ack_latency/p99_us") >= p50);
    assert!(n("/ack_latency/p999_us") >= n("/ack_latency/p99_us"));
    assert!(n("/visible_latency/samples") > 0.0, "{report:#}");
    assert!(n("/visible_latency/p99_us") >= n("/visible_latency/p50_us"));
    assert_eq!(n("/visible_unmeasured"), 0.0);

    // The relay and the views reached the final head.
    assert!(n("/head_after") > n("/head_before"));
    assert_eq!(n("/events_in_run"), n("/head_after") - n("/head_before"));
    assert_eq!(n("/events_in_run"), n("/events_written"));
    assert_eq!(report["relay"]["caught_up"], true);
    assert_eq!(report["views"]["caught_up"], true);
    assert!(n("/relay/events_per_s") > 0.0);
    assert!(n("/views/events_per_s") > 0.0);
    assert!(n("/end_to_end_commands_per_s") > 0.0);

    assert!(n("/node/cpu_s") >= 0.0);
    assert!(n("/node/peak_rss_kib") > 0.0);
    assert!(n("/nats_server/peak_rss_kib") > 0.0, "{report:#}");
    assert_eq!(report["node_stopped_cleanly"], true);

    assert_eq!(report["baselines"]["failed"], serde_json::json!({}));
    for baseline in ["sqlite", "jetstream", "echo"] {
        assert!(n(&format!("/baselines/{baseline}/per_s")) > 0.0);
        assert!(n(&format!("/baselines/{baseline}/ratio")) > 0.0);
    }
    assert_eq!(n("/baselines/sqlite/count"), n("/events_written"));
    assert_eq!(n("/baselines/echo/count"), 400.0);
    assert!(n("/baselines/event_payload_bytes") > 0.0);
}

#[test]
fn a_batched_run_counts_commands_and_requests_apart_and_compares_like_with_like() {
    let report = spawned_report(&["--batch", "50"]);
    let n = |path: &str| number(&report, path);

    assert_eq!(n("/batch"), 50.0);
    assert_eq!(n("/sent"), 400.0);
    assert_eq!(n("/requests"), 8.0, "400 commands in batches of 50");
    assert_eq!(n("/requests_answered"), 8.0);
    assert_eq!(n("/errors"), 0.0, "{report:#}");
    assert_eq!(n("/accepted") + n("/rejected"), n("/answered"));
    assert_eq!(n("/answered"), 400.0);
    assert_eq!(
        n("/rejected_by_rule/HOURS_OVER_LIMIT"),
        n("/rejected"),
        "only the hours rule refuses, counted apart: {report:#}"
    );
    assert!(n("/rejected") > 0.0);
    assert_eq!(n("/events_in_run"), n("/events_written"));
    assert_eq!(report["views"]["caught_up"], true);

    // Like with like: as many raw messages as events, as many raw round
    // trips as batches, of the batches' size.
    assert_eq!(n("/baselines/jetstream/count"), n("/events_written"));
    assert_eq!(
        n("/baselines/jetstream/tepai_per_s"),
        n("/end_to_end_events_per_s")
    );
    assert_eq!(n("/baselines/echo/count"), 8.0);
    assert_eq!(n("/baselines/echo/tepai_per_s"), n("/requests_per_s"));
    assert!(n("/baselines/request_bytes") > 40.0 * n("/baselines/envelope_bytes"));
}
