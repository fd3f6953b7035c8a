//! The annual assessment against a real node: a demand submitted,
//! appointed with a post, served and resolved, service across the city
//! border, then the year asked over NATS and HTTP (JSON and CSV) under a
//! policy given to the node; a bad policy file stops the binary naming the
//! key.

use prost::Message;
use tepai::app::{NodeConfig, Roles};
use tepai::domain::AssessmentPolicy;
use tepai::wire::pb::{self, command_envelope::Command as C};

use crate::bus::{config_for, send, start_config, Node};
use crate::http_client;
use crate::nats_server::NatsServer;
use crate::support::*;

/// Small numbers, so a few commands reach every grade: 3 service days to
/// pass; 10 a day, 20 a demand, 4 a satisfaction point.
fn policy() -> AssessmentPolicy {
    AssessmentPolicy {
        per_service_day: 10,
        per_resolved_demand: 20,
        per_satisfaction_point: 4,
        excellent: 60,
        good: 40,
        pass: 20,
        pass_service_days: 3,
        ..AssessmentPolicy::default()
    }
}

async fn start_with_policy(nats: &NatsServer, data_dir: &std::path::Path) -> Node {
    let config = NodeConfig {
        assessment: policy(),
        ..config_for(nats, data_dir)
    };
    start_config(config, Roles::ALL).await
}

fn service(service_id: &str, post_id: &str, date: &str, minutes: u32, demand_id: &str) -> C {
    C::RecordService(pb::RecordService {
        service_id: service_id.into(),
        post_id: post_id.into(),
        date: date.into(),
        minutes,
        beneficiary: "金宇生物".into(),
        beneficiary_city: HOHHOT.into(),
        summary: "工艺验证".into(),
        demand_id: demand_id.into(),
    })
}

struct Year {
    hohhot_commissioner: String,
    baotou_commissioner: String,
    station: String,
    head: u64,
}

/// 张涛 (Hohhot) takes a post for a Hohhot demand, serves it one day and
/// it is resolved with 5; 李强 (Baotou) serves in Hohhot on three days
/// (four records), all across the border. One station in Hohhot runs both.
async fn load_year(client: &async_nats::Client) -> Year {
    let (ch, cb, ws, p1, p2, demand) = (id(), id(), id(), id(), id(), id());
    let mut with_demand = appoint(&p1, &ch, &ws, HOHHOT, 30);
    if let C::AppointPost(post) = &mut with_demand {
        post.demand_id = demand.clone();
    }
    let mut head = 0;
    for command in [
        register(&ch, "张涛", HOHHOT),
        register(&cb, "李强", BAOTOU),
        establish(&ws, "金宇生物\"疫苗\",工作站", HOHHOT, 5),
        C::SubmitDemand(pb::SubmitDemand {
            demand_id: demand.clone(),
            title: "兽用疫苗工艺放大".into(),
            enterprise: "金宇生物".into(),
            city: HOHHOT.into(),
            expertise: vec!["乳业".into()],
            hours_per_month: 10,
            start_date: "2025-01-01".into(),
            end_date: "2025-12-31".into(),
            description: "发酵工艺".into(),
        }),
        with_demand,
        appoint(&p2, &cb, &ws, HOHHOT, 20),
        service(&id(), &p2, "2025-03-03", 90, ""),
        service(&id(), &p2, "2025-03-04", 90, ""),
        service(&id(), &p2, "2025-03-05", 90, ""),
        service(&id(), &p2, "2025-03-05", 90, ""),
        service(&id(), &p1, "2025-04-01", 60, &demand),
        C::ResolveDemand(pb::ResolveDemand {
            demand_id: demand.clone(),
            outcome: "批签发通过".into(),
            satisfaction: 5,
            resolved_on: "2025-06-30".into(),
        }),
    ] {
        let result = send(client, &envelope(command)).await;
        head = accepted(&result).last().unwrap().global_position;
    }
    Year {
        hohhot_commissioner: ch,
        baotou_commissioner: cb,
        station: ws,
        head,
    }
}

async fn ask(
    client: &async_nats::Client,
    q: &pb::AssessmentQuery,
) -> Result<pb::AssessmentPage, (String, String)> {
    let reply = client
        .request(
            tepai::bus::QUERY_ASSESSMENT_SUBJECT,
            q.encode_to_vec().into(),
        )
        .await
        .unwrap();
    if let Some(code) = reply
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Service-Error-Code"))
    {
        let message = reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Service-Error"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        return Err((code.to_string(), message));
    }
    Ok(pb::AssessmentPage::decode(reply.payload).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_years_assessment_answers_over_nats_and_http_under_the_nodes_policy() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_with_policy(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let year = load_year(&client).await;
    wait_for_views(&client, year.head).await;

    // Over NATS: 张涛 10 (a day) + 20 (the demand) + 20 (5 × 4) = 50
    // points, but one day of three; 李强 3 days, 30 points, a pass.
    let page = ask(
        &client,
        &pb::AssessmentQuery {
            year: 2025,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let rows: Vec<_> = page
        .rows
        .iter()
        .map(|r| {
            (
                r.subject_id.as_str(),
                r.posts_held,
                r.service_days,
                r.service_records,
                r.service_minutes,
                r.cross_city_minutes,
                r.demands_resolved,
                r.satisfaction_total,
                r.points,
                r.grade(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                year.hohhot_commissioner.as_str(),
                1,
                1,
                1,
                60,
                0,
                1,
                5,
                50,
                pb::Grade::Fail
            ),
            (
                year.baotou_commissioner.as_str(),
                1,
                3,
                4,
                360,
                360,
                0,
                0,
                30,
                pb::Grade::Pass
            ),
        ]
    );
    assert_eq!(page.as_of_position, year.head);
    let outside = pb::AssessmentQuery {
        city: "150300".into(),
        ..Default::default()
    };
    let (code, message) = ask(&client, &outside).await.unwrap_err();
    assert_eq!(code, "400");
    assert!(message.starts_with("city:"), "{message}");

    // The CLI: the table shows grades in Chinese; CSV has every row.
    let url = nats.url();
    let cli = |output: &'static str| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            run_tepai(&[
                "query",
                "--nats-url",
                &url,
                "assessment",
                "--year",
                "2025",
                "--page-size",
                "1",
                "--output",
                output,
            ])
        })
    };
    let (code, table, stderr) = cli("table").await.unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        table.contains("张涛") && table.contains("不合格"),
        "{table}"
    );
    assert!(!table.contains("李强"), "one row a page:\n{table}");
    let (code, csv, stderr) = cli("csv").await.unwrap();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.contains(",李强,150200,3,4,360,360,0,0.00,1,30,PASS,0\r\n"),
        "{csv}"
    );

    // HTTP JSON: the same figures under the protobuf field names.
    let json = http_client::get(node.http, "/v1/assessment?year=2025&page_size=1").await;
    assert_eq!(json.status, 200, "{}", json.body);
    let json = json.json();
    assert_eq!(json["rows"].as_array().unwrap().len(), 1);
    assert_eq!(json["rows"][0]["name"], "张涛");
    assert_eq!(json["rows"][0]["grade"], "FAIL");
    assert_eq!(json["rows"][0]["average_satisfaction"], 5.0);
    let token = json["next_page_token"].as_str().unwrap();
    let second = http_client::get(
        node.http,
        &format!("/v1/assessment?year=2025&page_size=1&page_token={token}"),
    )
    .await
    .json();
    assert_eq!(second["rows"][0]["name"], "李强");
    assert_eq!(second["rows"][0]["grade"], "PASS");

    // HTTP CSV: every workstation row, the name quoted as RFC 4180 wants.
    let http_client::Response { head, body, .. } = http_client::get(
        node.http,
        "/v1/assessment.csv?year=2025&subject=workstations",
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: text/csv; charset=utf-8"),
        "{head}"
    );
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "subject_id,name,city,service_days,service_records,service_minutes,cross_city_minutes,\
         demands_resolved,average_satisfaction,posts_held,points,grade,satisfaction_total"
    );
    // 4 days × 10 + 20 + 5 × 4 = 80: 优秀.
    assert_eq!(
        lines[1],
        format!(
            "{},\"金宇生物\"\"疫苗\"\",工作站\",{HOHHOT},4,5,420,0,1,5.00,2,80,EXCELLENT,5",
            year.station
        )
    );
    assert_eq!(lines[2..], [""]);

    // Bad parameters: a 400 naming each.
    let cases = [
        ("/v1/assessment?year=1989", "year"),
        ("/v1/assessment?year=twenty", "year"),
        ("/v1/assessment?subject=cities", "subject"),
        ("/v1/assessment?city=15010", "city"),
        ("/v1/assessment?workstation_id=x", "workstation_id"),
        ("/v1/assessment?page_token=zz", "page_token"),
        ("/v1/assessment.csv?page_size=10", "query"),
        ("/v1/assessment.csv?subject=both", "subject"),
    ];
    for (target, field) in cases {
        let response = http_client::get(node.http, target).await;
        assert_eq!(response.status, 400, "{target}: {}", response.body);
        let json = response.json();
        assert_eq!(json["code"], "INVALID_ARGUMENT", "{target}");
        let message = json["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{target}: {message}"
        );
    }
    node.stop().await;
}

#[test]
fn a_bad_policy_file_stops_the_node_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, "[grades]\ngood = 300\n").unwrap();
    let data = dir.path().join("data");
    let (flag, by_env) = (
        vec!["--assessment-policy", file.to_str().unwrap()],
        vec![("TEPAI_ASSESSMENT_POLICY", file.to_str().unwrap())],
    );
    for (args, env) in [(flag, vec![]), (vec![], by_env)] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tepai"))
            .args(["serve", "query", "--nats-url", "nats://127.0.0.1:9"])
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .envs(env)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "assessment policy {}: grades.good: 300 must be below grades.excellent (240)",
                file.display()
            )),
            "{stderr}"
        );
    }
}
