//! The producer and query CLIs, run as the binary against a real node.

use crate::bus::start_node;
use crate::nats_server::NatsServer;
use crate::support::*;

fn tepai(args: &[&str]) -> (i32, String, String) {
    run_tepai(args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_query_through_the_binary() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let url = nats.url();
    let (c, w, p) = (id(), id(), id());

    let commands: Vec<Vec<&str>> = vec![
        vec![
            "register-commissioner",
            "--commissioner-id",
            &c,
            "--name",
            "陈立新",
            "--home-city",
            "150100",
            "--employer",
            "内蒙古工业大学",
            "--kind",
            "university",
            "--expertise",
            "新材料",
        ],
        vec![
            "establish-workstation",
            "--workstation-id",
            &w,
            "--name",
            "包钢工作站",
            "--host-org",
            "包钢集团",
            "--host-city",
            "150200",
            "--capacity",
            "3",
        ],
        vec![
            "extend-workstation-service",
            "--workstation-id",
            &w,
            "--city",
            "150100",
        ],
        vec![
            "appoint-post",
            "--post-id",
            &p,
            "--commissioner-id",
            &c,
            "--workstation-id",
            &w,
            "--serving-city",
            "150200",
            "--role",
            "顾问",
            "--hours-per-month",
            "20",
            "--start-date",
            "2025-01-01",
            "--end-date",
            "2025-12-31",
        ],
    ];
    let command_id = id();
    for (i, command) in commands.iter().enumerate() {
        let mut args = vec!["send", "--nats-url", &url];
        if i == 0 {
            args.extend(["--command-id", &command_id]);
        }
        args.extend(command.iter().copied());
        let (code, out, err) = tepai(&args);
        assert_eq!(code, 0, "{command:?}: {out}{err}");
        assert!(out.contains("accepted"), "{out}");
    }
    // Resending the first command id returns its first answer.
    let mut again = vec![
        "send",
        "--nats-url",
        &url,
        "--command-id",
        &command_id,
        "--output",
        "json",
    ];
    again.extend(commands[0].iter().copied());
    let (code, out, _) = tepai(&again);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["accepted"]["events"][0]["global_position"], "1");

    // A rejection exits 2 with the rule and the numbers.
    let (code, out, _) = tepai(&[
        "send",
        "--nats-url",
        &url,
        "appoint-post",
        "--post-id",
        &id(),
        "--commissioner-id",
        &c,
        "--workstation-id",
        &w,
        "--serving-city",
        "150100",
        "--role",
        "顾问",
        "--hours-per-month",
        "70",
        "--start-date",
        "2025-06-01",
        "--end-date",
        "2025-06-30",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("HOURS_OVER_LIMIT") && out.contains("90 hours/month"),
        "{out}"
    );

    // Wait for the views, then read them through the CLI.
    let mut page = serde_json::Value::Null;
    for _ in 0..100 {
        let (code, out, err) = tepai(&[
            "query",
            "--nats-url",
            &url,
            "--output",
            "json",
            "assignments",
            "--on-date",
            "2025-06-01",
        ]);
        assert_eq!(code, 0, "{err}");
        page = serde_json::from_str(&out).unwrap();
        if page["assignments"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(page["assignments"][0]["post_id"], p.as_str());
    assert_eq!(page["assignments"][0]["cross_city"], true);
    let (code, out, _) = tepai(&[
        "query",
        "--nats-url",
        &url,
        "city-matrix",
        "--on-date",
        "2025-06-01",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("包头") && out.contains("1/20/0"), "{out}");
    let (code, _, err) = tepai(&["query", "--nats-url", &url, "commissioner", "not-a-uuid"]);
    assert_eq!(code, 2);
    assert!(err.contains("400") || err.contains("INVALID"), "{err}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut node = std::process::Command::new(env!("CARGO_BIN_EXE_tepai"))
        .args([
            "up",
            "--nats-url",
            &nats.url(),
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once a command is accepted the node has logged its start-up lines.
    let client = async_nats::connect(nats.url()).await.unwrap();
    first_accepted(&client).await;
    node.kill().unwrap();
    let output = node.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INFO"), "no log lines: {stderr}");
    assert!(
        !stderr.contains("\x1b["),
        "colour codes in a pipe: {stderr:?}"
    );
}
