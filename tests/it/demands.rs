//! Demands end to end, through the public contract: commands over NATS,
//! the demands and candidates views over NATS and HTTP, bad input on every
//! new field refused by name with nothing written.

use prost::Message;
use tepai::wire::pb;
use tepai::wire::pb::command_envelope::Command as C;

use crate::bus::{send, start_node};
use crate::http_client;
use crate::nats_server::NatsServer;
use crate::support::*;

fn submit(demand_id: &str, city: &str) -> pb::SubmitDemand {
    pb::SubmitDemand {
        demand_id: demand_id.into(),
        title: "稀土冶炼渣回收".into(),
        enterprise: "北方稀土".into(),
        city: city.into(),
        expertise: vec!["乳业".into(), "稀土".into()],
        hours_per_month: 10,
        start_date: "2025-03-01".into(),
        end_date: "2025-10-31".into(),
        description: "回收率低".into(),
    }
}

async fn ask<Q: Message, R: Message + Default>(
    client: &async_nats::Client,
    subject: &str,
    q: &Q,
) -> Result<R, String> {
    let reply = client
        .request(subject.to_owned(), q.encode_to_vec().into())
        .await
        .unwrap();
    if let Some(error) = reply
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Service-Error"))
    {
        return Err(error.to_string());
    }
    Ok(R::decode(reply.payload).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demand_is_submitted_matched_dispatched_served_and_resolved_over_the_contract() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();

    // A Hohhot commissioner (乳业), a Hohhot workstation serving Baotou too.
    let (commissioner, station, post, demand) = (id(), id(), id(), id());
    for command in [
        register(&commissioner, "张涛", HOHHOT),
        establish(&station, "金宇生物工作站", HOHHOT, 5),
        C::ExtendWorkstationService(pb::ExtendWorkstationService {
            workstation_id: station.clone(),
            city: BAOTOU.into(),
        }),
        C::SubmitDemand(submit(&demand, BAOTOU)),
    ] {
        let result = send(&client, &envelope(command)).await;
        assert!(!accepted(&result).is_empty(), "{result:?}");
    }
    let head = accepted(&send(&client, &envelope(C::SubmitDemand(submit(&id(), HOHHOT)))).await)[0]
        .global_position;
    wait_for_views(&client, head).await;

    // The candidates across the border: the Hohhot commissioner, at the
    // workstation serving Baotou.
    let page: pb::CandidatesPage = ask(
        &client,
        tepai::bus::QUERY_CANDIDATES_SUBJECT,
        &pb::CandidatesQuery {
            demand_id: demand.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.candidates.len(), 1, "{page:?}");
    let candidate = &page.candidates[0];
    assert_eq!(
        (candidate.name.as_str(), candidate.cross_city),
        ("张涛", true)
    );
    assert_eq!(candidate.matched_expertise, ["乳业"]);
    assert_eq!(candidate.workstations[0].workstation_id, station);

    // Appointed for the demand in one commit: the post and the dispatch.
    let mut appoint_for = appoint(&post, &commissioner, &station, BAOTOU, 10);
    if let C::AppointPost(a) = &mut appoint_for {
        a.demand_id = demand.clone();
    }
    let result = send(&client, &envelope(appoint_for)).await;
    let streams: Vec<&str> = accepted(&result)
        .iter()
        .map(|e| e.stream_id.as_str())
        .collect();
    assert_eq!(
        streams,
        [format!("post-{post}"), format!("demand-{demand}")],
        "{result:?}"
    );
    let service = send(
        &client,
        &envelope(C::RecordService(pb::RecordService {
            service_id: id(),
            post_id: post.clone(),
            date: "2025-04-02".into(),
            minutes: 90,
            beneficiary: "北方稀土".into(),
            beneficiary_city: BAOTOU.into(),
            summary: "取样".into(),
            demand_id: demand.clone(),
        })),
    )
    .await;
    assert!(!accepted(&service).is_empty(), "{service:?}");
    let resolved = send(
        &client,
        &envelope(C::ResolveDemand(pb::ResolveDemand {
            demand_id: demand.clone(),
            outcome: "方案采纳".into(),
            satisfaction: 4,
            resolved_on: "2025-05-01".into(),
        })),
    )
    .await;
    let head = accepted(&resolved)[0].global_position;
    wait_for_views(&client, head).await;

    let detail: pb::DemandDetail = ask(
        &client,
        tepai::bus::QUERY_DEMAND_SUBJECT,
        &pb::DemandQuery {
            demand_id: demand.clone(),
            as_of_position: 0,
        },
    )
    .await
    .unwrap();
    assert_eq!(detail.status(), pb::DemandStatus::DemandResolved);
    assert_eq!(
        (detail.service_minutes, detail.satisfaction),
        (90, 4),
        "{detail:?}"
    );
    assert_eq!(detail.post_ids, std::slice::from_ref(&post));

    // Over HTTP: the board filtered by city and status, the detail, the
    // demand's candidates, and ad-hoc candidates.
    let board = http_client::get(node.http, "/v1/demands?city=150200&status=resolved").await;
    assert_eq!(board.status, 200, "{}", board.body);
    let demands = board.json()["demands"].as_array().unwrap().clone();
    assert_eq!(demands.len(), 1);
    assert_eq!(demands[0]["demand_id"], demand.as_str());
    assert_eq!(demands[0]["status"], "DEMAND_RESOLVED");
    let one = http_client::get(node.http, &format!("/v1/demands/{demand}")).await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.json()["outcome"], "方案采纳");
    let theirs = http_client::get(node.http, &format!("/v1/demands/{demand}/candidates")).await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    // Serving the demand already, they are still a candidate; the duplicate
    // rule now keeps the workstation off their list.
    let listed = &theirs.json()["candidates"][0];
    assert_eq!(listed["name"], "张涛");
    assert_eq!(listed["workstations"].as_array().map(Vec::len), Some(0));
    let ad_hoc = http_client::get(
        node.http,
        "/v1/candidates?expertise=%E4%B9%B3%E4%B8%9A&city=150100&hours_per_month=10&start_date=2025-06-01&end_date=2025-06-30",
    )
    .await;
    assert_eq!(ad_hoc.status, 200, "{}", ad_hoc.body);
    assert_eq!(ad_hoc.json()["candidates"][0]["cross_city"], false);

    for (path, field) in [
        ("/v1/demands?status=done", "status"),
        ("/v1/demands?city=15", "city"),
        ("/v1/demands?page_size=100000", "page_size"),
        ("/v1/demands/not-a-uuid", "demand_id"),
        ("/v1/candidates?city=150100", "expertise"),
        (
            "/v1/candidates?expertise=x&city=150100&hours_per_month=0&start_date=2025-06-01&end_date=2025-06-30",
            "hours_per_month",
        ),
        (
            "/v1/candidates?expertise=x&city=150100&hours_per_month=5&start_date=2025-06-01&end_date=2025-05-30",
            "end_date",
        ),
        ("/v1/candidates?colour=red", "query"),
    ] {
        let response = http_client::get(node.http, path).await;
        assert_eq!(response.status, 400, "{path}: {}", response.body);
        let message = response.json()["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(field), "{path}: {message}");
    }
    let missing = http_client::get(node.http, &format!("/v1/demands/{}", id())).await;
    assert_eq!(missing.status, 404, "{}", missing.body);

    node.shutdown.cancel();
    node.task.await.unwrap().unwrap();
}

/// Every new field, malformed, is refused `INVALID_ARGUMENT` naming it,
/// and the store does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_new_field_is_refused_by_name_and_writes_nothing() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node(&nats, data.path()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let good = submit(&id(), HOHHOT);
    let head =
        accepted(&send(&client, &envelope(C::SubmitDemand(good.clone()))).await)[0].global_position;

    let with = |change: fn(&mut pb::SubmitDemand)| {
        let mut s = submit(&id(), HOHHOT);
        change(&mut s);
        C::SubmitDemand(s)
    };
    let too_many: Vec<String> = (0..9).map(|i| format!("tag{i}")).collect();
    let mut cases: Vec<(C, &str)> = vec![
        (with(|s| s.demand_id = "d-1".into()), "demand_id"),
        (with(|s| s.title = " ".into()), "title"),
        (with(|s| s.title = "x".repeat(201)), "title"),
        (with(|s| s.enterprise = String::new()), "enterprise"),
        (with(|s| s.city = "15010".into()), "city"),
        (with(|s| s.city = "150600".into()), "city"),
        (with(|s| s.expertise = vec![]), "expertise"),
        (with(|s| s.hours_per_month = 0), "hours_per_month"),
        (with(|s| s.hours_per_month = 745), "hours_per_month"),
        (with(|s| s.start_date = "2025-02-30".into()), "start_date"),
        (with(|s| s.end_date = "tomorrow".into()), "end_date"),
        (with(|s| s.description = "\u{0}".into()), "description"),
        (
            C::DispatchDemand(pb::DispatchDemand {
                demand_id: good.demand_id.clone(),
                post_id: "post".into(),
            }),
            "post_id",
        ),
        (
            C::ResolveDemand(pb::ResolveDemand {
                demand_id: good.demand_id.clone(),
                outcome: String::new(),
                satisfaction: 6,
                resolved_on: String::new(),
            }),
            "satisfaction",
        ),
        (
            C::ResolveDemand(pb::ResolveDemand {
                demand_id: good.demand_id.clone(),
                outcome: String::new(),
                satisfaction: 3,
                resolved_on: "2025-13-01".into(),
            }),
            "resolved_on",
        ),
        (
            C::WithdrawDemand(pb::WithdrawDemand {
                demand_id: String::new(),
                reason: String::new(),
            }),
            "demand_id",
        ),
    ];
    let mut bad_link = appoint(&id(), &id(), &id(), HOHHOT, 10);
    if let C::AppointPost(a) = &mut bad_link {
        a.demand_id = "not-a-demand".into();
    }
    cases.push((bad_link, "demand_id"));
    let mut tagged = submit(&id(), HOHHOT);
    tagged.expertise = too_many;
    cases.push((C::SubmitDemand(tagged), "expertise"));
    let mut reversed = submit(&id(), HOHHOT);
    reversed.end_date = "2025-02-01".into();

    for (command, field) in cases {
        let result = send(&client, &envelope(command)).await;
        let (code, _, message) = rejected(&result);
        assert_eq!(code, pb::RejectCode::InvalidArgument, "{field}: {message}");
        assert!(message.starts_with(field), "{field}: {message}");
    }
    let result = send(&client, &envelope(C::SubmitDemand(reversed))).await;
    let (code, rule, _) = rejected(&result);
    assert_eq!(
        (code, rule),
        (pb::RejectCode::InvalidArgument, "TERM_REVERSED")
    );

    // Nothing was written: the next event still comes right after the head.
    let next = accepted(&send(&client, &envelope(C::SubmitDemand(submit(&id(), HOHHOT)))).await)[0]
        .global_position;
    assert_eq!(next, head + 1);
    node.shutdown.cancel();
    node.task.await.unwrap().unwrap();
}
