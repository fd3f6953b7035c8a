//! Authorization on NATS, through a real nats-server running the repo's own
//! `nats.conf`: a command node (as `tepai-command`) and a query node (as
//! `tepai-query`) with authorization on, and producers connecting as the
//! users the file defines.

use std::time::Duration;

use prost::Message;
use tepai::app::{self, NodeConfig, Roles};
use tepai::config::{NatsOptions, NodeOptions};
use tepai::domain::Policy;
use tepai::store::StoreReader;
use tepai::wire::pb;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::bus::Node;
use crate::nats_server::NatsServer;
use crate::support::*;

/// The file docker-compose mounts: the one under test.
pub const NATS_CONF: &str = include_str!("../../nats.conf");

/// How `user` of `nats.conf` connects (its development password is
/// `<user>-dev`); producers get their own inbox prefix, as the file wants.
pub fn user(nats: &NatsServer, name: &str) -> NatsOptions {
    let mut options = NatsOptions::plain(nats.url());
    options.nats_user = Some(name.to_owned());
    options.nats_password = Some(format!("{name}-dev"));
    if !name.starts_with("tepai-") {
        options.nats_inbox_prefix = Some(format!("_INBOX.{name}"));
    }
    options
}

/// Starts `roles` of a node connecting with `nats`.
pub async fn start_node_with(
    nats: NatsOptions,
    data_dir: &std::path::Path,
    roles: Roles,
    authorization: bool,
) -> Node {
    let config = NodeConfig {
        node: NodeOptions {
            data_dir: data_dir.to_owned(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
        },
        nats,
        policy: Policy::default(),
        authorization,
        limits: Default::default(),
        cluster: Default::default(),
        assessment: Default::default(),
    };
    let shutdown = CancellationToken::new();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(app::run(config, roles, shutdown.clone(), Some(started_tx)));
    let started = match tokio::time::timeout(Duration::from_secs(20), started_rx)
        .await
        .expect("node did not start in 20 s")
    {
        Ok(started) => started,
        Err(_) => panic!("node failed to start: {:?}", task.await),
    };
    Node {
        shutdown,
        task,
        http: started
            .http_addr
            .unwrap_or_else(|| "127.0.0.1:9".parse().unwrap()),
    }
}

/// A server with `nats.conf`, a command node and a query node apart, each
/// as its own user, like docker-compose runs them.
struct Deployment {
    nats: NatsServer,
    command_dir: tempfile::TempDir,
    command: Node,
    query: Node,
    _query_dir: tempfile::TempDir,
}

impl Deployment {
    async fn start() -> Self {
        let nats = NatsServer::with_config(NATS_CONF);
        let command_dir = tempfile::tempdir().unwrap();
        let query_dir = tempfile::tempdir().unwrap();
        let command = start_node_with(
            user(&nats, "tepai-command"),
            command_dir.path(),
            Roles {
                command: true,
                query: false,
            },
            true,
        )
        .await;
        let query = start_node_with(
            user(&nats, "tepai-query"),
            query_dir.path(),
            Roles {
                command: false,
                query: true,
            },
            true,
        )
        .await;
        Self {
            nats,
            command_dir,
            command,
            query,
            _query_dir: query_dir,
        }
    }

    async fn stop(self) {
        self.query.stop().await;
        self.command.stop().await;
    }

    /// Every event in the store: (stream id, actor).
    fn stored_actors(&self) -> Vec<(String, String)> {
        let reader = StoreReader::open(&store_path(self.command_dir.path())).unwrap();
        reader
            .read_from(0, 1000)
            .unwrap()
            .into_iter()
            .map(|e| (e.stream_id, e.actor))
            .collect()
    }
}

/// A producer connected as `name`, and the errors the server sends it.
struct Producer {
    name: String,
    client: async_nats::Client,
    server_errors: mpsc::UnboundedReceiver<String>,
}

impl Producer {
    async fn connect(nats: &NatsServer, name: &str) -> Self {
        let (tx, server_errors) = mpsc::unbounded_channel();
        let options = user(nats, name);
        let client = async_nats::ConnectOptions::with_user_and_password(
            name.to_owned(),
            format!("{name}-dev"),
        )
        .custom_inbox_prefix(options.nats_inbox_prefix.unwrap())
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    let _ = tx.send(error.to_string());
                }
            }
        })
        .connect(nats.url())
        .await
        .unwrap();
        Self {
            name: name.to_owned(),
            client,
            server_errors,
        }
    }

    /// Submits on the producer's own actor subject.
    async fn submit(&self, envelope: &pb::CommandEnvelope) -> pb::CommandResult {
        self.submit_on(&format!("tepai.cmd.{}.submit", self.name), envelope)
            .await
            .unwrap()
    }

    async fn submit_on(
        &self,
        subject: &str,
        envelope: &pb::CommandEnvelope,
    ) -> Result<pb::CommandResult, async_nats::RequestError> {
        let request = async_nats::Request::new()
            .payload(envelope.encode_to_vec().into())
            .timeout(Some(Duration::from_secs(3)));
        let reply = self
            .client
            .send_request(subject.to_owned(), request)
            .await?;
        Ok(pb::CommandResult::decode(reply.payload).unwrap())
    }

    async fn submit_batch_on(
        &self,
        subject: &str,
        commands: &[pb::CommandEnvelope],
    ) -> Result<pb::CommandBatchResult, async_nats::RequestError> {
        let batch = pb::CommandBatch {
            commands: commands.to_vec(),
        };
        let request = async_nats::Request::new()
            .payload(batch.encode_to_vec().into())
            .timeout(Some(Duration::from_secs(3)));
        let reply = self
            .client
            .send_request(subject.to_owned(), request)
            .await?;
        Ok(pb::CommandBatchResult::decode(reply.payload).unwrap())
    }

    /// Waits (up to 10 s) for the server to report a permissions violation
    /// on `subject`.
    async fn expect_violation(&mut self, subject: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let error = tokio::time::timeout_at(deadline, self.server_errors.recv())
                .await
                .unwrap_or_else(|_| panic!("no permissions violation reported for {subject}"))
                .unwrap();
            let error = error.to_lowercase();
            if error.contains("permissions violation") && error.contains(subject) {
                return;
            }
        }
    }
}

/// Registers commissioners of both cities and establishes a workstation in
/// each, as admin. Returns (Hohhot commissioner, Baotou commissioner,
/// Hohhot workstation, Baotou workstation).
async fn seed(admin: &Producer) -> (String, String, String, String) {
    let (ch, cb, wh, wb) = (id(), id(), id(), id());
    for command in [
        register(&ch, "王强", HOHHOT),
        register(&cb, "高娜", BAOTOU),
        establish(&wh, "金宇生物工作站", HOHHOT, 5),
        establish(&wb, "北方稀土工作站", BAOTOU, 5),
    ] {
        accepted(&admin.submit(&envelope(command)).await);
    }
    (ch, cb, wh, wb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_refuses_a_bureau_publishing_on_another_bureaus_subject() {
    let deployment = Deployment::start().await;
    let mut baotou = Producer::connect(&deployment.nats, "bureau-150200").await;

    let e = envelope(register(&id(), "王强", HOHHOT));
    let hohhot_subject = "tepai.cmd.bureau-150100.submit";
    let refused = baotou.submit_on(hohhot_subject, &e).await;
    assert!(refused.is_err(), "answered: {refused:?}");
    baotou.expect_violation(hohhot_subject).await;
    // Nor may a bureau speak on the shared subject or as admin.
    for subject in ["tepai.cmd.submit", "tepai.cmd.admin.submit"] {
        assert!(baotou.submit_on(subject, &e).await.is_err());
        baotou.expect_violation(subject).await;
    }

    // Nothing was decided: the Hohhot bureau's command with the same id is
    // decided afresh and writes the first event.
    let hohhot = Producer::connect(&deployment.nats, "bureau-150100").await;
    let written = hohhot.submit(&e).await;
    assert_eq!(accepted(&written)[0].global_position, 1);
    deployment.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bureau_acts_on_its_own_city_only_and_the_subject_names_the_actor() {
    let deployment = Deployment::start().await;
    let admin = Producer::connect(&deployment.nats, "admin").await;
    let baotou = Producer::connect(&deployment.nats, "bureau-150200").await;
    let (ch, cb, wh, wb) = seed(&admin).await;

    // Appointing at a Hohhot workstation: refused by the domain rule, even
    // for a Baotou commissioner, and stored like any rule's refusal.
    let at_hohhot = envelope(appoint(&id(), &cb, &wh, BAOTOU, 10));
    let refused = baotou.submit(&at_hohhot).await;
    let (code, rule, message) = rejected(&refused);
    assert_eq!(
        (code, rule),
        (pb::RejectCode::Unauthorized, "WORKSTATION_OF_ANOTHER_CITY")
    );
    assert!(
        message.starts_with("bureau-150200 may not appoint a post: workstation 金宇生物工作站"),
        "{message}"
    );
    assert_eq!(baotou.submit(&at_hohhot).await, refused, "resend");

    // An envelope claiming to be admin is still the bureau of its subject.
    let mut claiming_admin = envelope(appoint(&id(), &cb, &wh, BAOTOU, 10));
    claiming_admin.actor = "admin".into();
    let answer = baotou.submit(&claiming_admin).await;
    let (code, rule, _) = rejected(&answer);
    assert_eq!(
        (code, rule),
        (pb::RejectCode::Unauthorized, "WORKSTATION_OF_ANOTHER_CITY")
    );

    // At its own workstation, a Hohhot commissioner included, it works.
    let mut own = envelope(appoint(&id(), &ch, &wb, BAOTOU, 10));
    own.actor = "admin".into();
    let written = accepted(&baotou.submit(&own).await).to_vec();
    assert_eq!(written.len(), 1);
    // Its own commissioner too; not the other city's.
    accepted(&baotou.submit(&envelope(retire(&cb, "2025-12-31"))).await);
    let answer = baotou.submit(&envelope(retire(&ch, "2025-12-31"))).await;
    let (code, rule, _) = rejected(&answer);
    assert_eq!(
        (code, rule),
        (pb::RejectCode::Unauthorized, "COMMISSIONER_OF_ANOTHER_CITY")
    );

    // Admin may do what the bureau may not.
    accepted(
        &admin
            .submit(&envelope(appoint(&id(), &ch, &wh, HOHHOT, 10)))
            .await,
    );

    // The events record the subject's actor, never the envelope's.
    let actors = deployment.stored_actors();
    assert_eq!(actors.len(), 7, "{actors:?}");
    assert!(actors[..4].iter().all(|(_, actor)| actor == "admin"));
    assert_eq!(
        actors[4],
        (written[0].stream_id.clone(), "bureau-150200".to_owned())
    );
    assert_eq!(actors[5].1, "bureau-150200");
    assert_eq!(actors[6].1, "admin");
    deployment.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_reads_the_views_and_can_write_nothing() {
    let deployment = Deployment::start().await;
    let admin = Producer::connect(&deployment.nats, "admin").await;
    seed(&admin).await;
    let mut dashboard = Producer::connect(&deployment.nats, "dashboard").await;

    wait_for_views(&dashboard.client, 4).await;
    let reply = dashboard
        .client
        .request(
            tepai::bus::QUERY_ASSIGNMENTS_SUBJECT,
            pb::AssignmentsQuery::default().encode_to_vec().into(),
        )
        .await
        .unwrap();
    pb::AssignmentsPage::decode(reply.payload).unwrap();

    let e = envelope(register(&id(), "李娜", HOHHOT));
    for subject in [
        "tepai.cmd.dashboard.submit",
        "tepai.cmd.admin.submit",
        "tepai.cmd.submit",
    ] {
        assert!(dashboard.submit_on(subject, &e).await.is_err());
        dashboard.expect_violation(subject).await;
    }
    // Nor can it put anything into the events stream.
    let forged = "tepai.evt.commissioner.forged";
    dashboard
        .client
        .publish(forged, e.encode_to_vec().into())
        .await
        .unwrap();
    dashboard.client.flush().await.unwrap();
    dashboard.expect_violation(forged).await;

    // The store and the stream hold only the seed.
    assert_eq!(deployment.stored_actors().len(), 4);
    let owner = async_nats::ConnectOptions::with_user_and_password(
        "tepai-command".into(),
        "tepai-command-dev".into(),
    )
    .connect(deployment.nats.url())
    .await
    .unwrap();
    let mut stream = async_nats::jetstream::new(owner)
        .get_stream("TEPAI_EVENTS")
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 4);
    deployment.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tepai_send_with_authorization_submits_as_its_nats_user() {
    let deployment = Deployment::start().await;
    let admin = Producer::connect(&deployment.nats, "admin").await;
    let (_, _, _, wb) = seed(&admin).await;
    let url = deployment.nats.url();
    let send = move |user: &'static str, actor: &'static str, wb: String| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let password = format!("{user}-dev");
            run_tepai(&[
                "send",
                "--nats-url",
                &url,
                "--nats-user",
                user,
                "--nats-password",
                &password,
                "--authorization",
                "--actor",
                actor,
                "change-workstation-capacity",
                "--workstation-id",
                &wb,
                "--capacity",
                "7",
            ])
        })
    };
    let (code, out, err) = send("bureau-150200", "bureau-150200", wb.clone())
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("accepted"), "{out}");
    let (code, out, err) = send("bureau-150100", "bureau-150100", wb.clone())
        .await
        .unwrap();
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("UNAUTHORIZED WORKSTATION_OF_ANOTHER_CITY"),
        "{out}"
    );
    // Claiming another actor than its user is refused by NATS.
    let (code, out, err) = send("bureau-150100", "bureau-150200", wb).await.unwrap();
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("may not publish"), "{err}");
    assert_eq!(deployment.stored_actors().len(), 5);
    deployment.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authorization_on_only_actor_subjects_are_served_and_only_known_actors_act() {
    // No permissions here: what the command service itself does.
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let node = start_node_with(
        NatsOptions::plain(nats.url()),
        data.path(),
        Roles {
            command: true,
            query: false,
        },
        true,
    )
    .await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let request = |subject: &'static str, e: &pb::CommandEnvelope| {
        let client = client.clone();
        let payload = e.encode_to_vec();
        async move {
            client
                .request(subject, payload.into())
                .await
                .map(|reply| pb::CommandResult::decode(reply.payload).unwrap())
        }
    };
    let e = envelope(register(&id(), "王强", HOHHOT));

    let shared = request("tepai.cmd.submit", &e).await.unwrap_err();
    assert_eq!(shared.kind(), async_nats::RequestErrorKind::NoResponders);
    let answer = request("tepai.cmd.hr!portal.submit", &e).await.unwrap();
    let (code, rule, _) = rejected(&answer);
    assert_eq!(
        (code, rule),
        (pb::RejectCode::Unauthorized, "INVALID_ACTOR")
    );
    // That decided nothing: the same command id is decided for the bureau.
    let answer = request("tepai.cmd.bureau-150100.submit", &e).await.unwrap();
    assert_eq!(accepted(&answer)[0].global_position, 1);

    let other = envelope(register(&id(), "李娜", HOHHOT));
    let answer = request("tepai.cmd.hr-portal.submit", &other).await.unwrap();
    let (code, rule, message) = rejected(&answer);
    assert_eq!(
        (code, rule),
        (pb::RejectCode::Unauthorized, "UNKNOWN_ACTOR")
    );
    assert!(
        message.starts_with("hr-portal may not register a commissioner"),
        "{message}"
    );
    // That refusal is in the command log: its command id keeps the answer.
    let again = request("tepai.cmd.bureau-150100.submit", &other)
        .await
        .unwrap();
    assert_eq!(again, answer);
    node.stop().await;
}

/// A demand belongs to its city's bureau; appointing for a demand across
/// the border is two acts: the host city appoints, the demand's city
/// dispatches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demand_is_its_citys_and_a_cross_border_dispatch_takes_both_bureaus() {
    use tepai::wire::pb::command_envelope::Command as C;
    let refusal = |result: pb::CommandResult| {
        let (code, rule, _) = rejected(&result);
        (code, rule.to_owned())
    };
    let deployment = Deployment::start().await;
    let admin = Producer::connect(&deployment.nats, "admin").await;
    let hohhot = Producer::connect(&deployment.nats, "bureau-150100").await;
    let baotou = Producer::connect(&deployment.nats, "bureau-150200").await;
    let (ch, _, wh, _) = seed(&admin).await;
    accepted(
        &admin
            .submit(&envelope(C::ExtendWorkstationService(
                pb::ExtendWorkstationService {
                    workstation_id: wh.clone(),
                    city: BAOTOU.into(),
                },
            )))
            .await,
    );
    let demand = id();
    let submit = C::SubmitDemand(pb::SubmitDemand {
        demand_id: demand.clone(),
        title: "稀土冶炼渣回收".into(),
        enterprise: "北方稀土".into(),
        city: BAOTOU.into(),
        expertise: vec!["乳业".into()],
        hours_per_month: 10,
        start_date: "2025-01-01".into(),
        end_date: "2025-12-31".into(),
        description: String::new(),
    });
    assert_eq!(
        refusal(hohhot.submit(&envelope(submit.clone())).await),
        (
            pb::RejectCode::Unauthorized,
            "DEMAND_OF_ANOTHER_CITY".to_owned()
        )
    );
    // A refusal is stored under its command id: Baotou sends its own.
    accepted(&baotou.submit(&envelope(submit)).await);

    // Hohhot's workstation, Baotou's demand: neither bureau alone.
    let post = id();
    let mut for_demand = appoint(&post, &ch, &wh, BAOTOU, 10);
    if let C::AppointPost(a) = &mut for_demand {
        a.demand_id = demand.clone();
    }
    assert_eq!(
        refusal(hohhot.submit(&envelope(for_demand.clone())).await),
        (
            pb::RejectCode::Unauthorized,
            "DEMAND_OF_ANOTHER_CITY".to_owned()
        )
    );
    assert_eq!(
        refusal(baotou.submit(&envelope(for_demand)).await),
        (
            pb::RejectCode::Unauthorized,
            "WORKSTATION_OF_ANOTHER_CITY".to_owned()
        )
    );
    // Two acts: Hohhot appoints, Baotou dispatches.
    accepted(
        &hohhot
            .submit(&envelope(appoint(&post, &ch, &wh, BAOTOU, 10)))
            .await,
    );
    let dispatch = C::DispatchDemand(pb::DispatchDemand {
        demand_id: demand.clone(),
        post_id: post.clone(),
    });
    assert_eq!(
        refusal(hohhot.submit(&envelope(dispatch.clone())).await),
        (
            pb::RejectCode::Unauthorized,
            "DEMAND_OF_ANOTHER_CITY".to_owned()
        )
    );
    let written = accepted(&baotou.submit(&envelope(dispatch)).await).to_vec();
    assert_eq!(written[0].stream_id, format!("demand-{demand}"));
    deployment.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bureau_batches_on_its_own_subject_only_and_its_actor_overrides_every_envelope() {
    let deployment = Deployment::start().await;
    let admin = Producer::connect(&deployment.nats, "admin").await;
    let mut baotou = Producer::connect(&deployment.nats, "bureau-150200").await;
    let (ch, cb, _wh, _wb) = seed(&admin).await;

    // Another bureau's batch subject, the shared one and admin's: NATS
    // refuses the publish and nothing is decided.
    let commands = vec![envelope(retire(&cb, "2025-12-31"))];
    for subject in [
        "tepai.cmd.bureau-150100.submit_batch",
        "tepai.cmd.submit_batch",
        "tepai.cmd.admin.submit_batch",
    ] {
        let refused = baotou.submit_batch_on(subject, &commands).await;
        assert!(refused.is_err(), "{subject} answered: {refused:?}");
        baotou.expect_violation(subject).await;
    }
    assert_eq!(deployment.stored_actors().len(), 4);

    // On its own subject each command is the bureau's, whatever the
    // envelope claims: its own commissioner may be retired, the other
    // city's not, even by an envelope naming admin.
    let mut claiming_admin = envelope(retire(&ch, "2025-12-31"));
    claiming_admin.actor = "admin".into();
    let commands = vec![commands[0].clone(), claiming_admin];
    let answer = baotou
        .submit_batch_on("tepai.cmd.bureau-150200.submit_batch", &commands)
        .await
        .unwrap();
    assert_eq!(answer.results.len(), 2);
    accepted(&answer.results[0]);
    let (code, rule, _) = rejected(&answer.results[1]);
    assert_eq!(
        (code, rule),
        (pb::RejectCode::Unauthorized, "COMMISSIONER_OF_ANOTHER_CITY")
    );
    let actors = deployment.stored_actors();
    assert_eq!(actors.len(), 5, "{actors:?}");
    assert_eq!(actors[4].1, "bureau-150200");

    // `tepai send --file` as the bureau: its own batch subject and inbox.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("baotou.ndjson");
    let line = serde_json::to_string(&envelope(register(&id(), "其其格", BAOTOU))).unwrap();
    std::fs::write(&file, line + "\n").unwrap();
    let url = deployment.nats.url();
    let (code, stdout, stderr) = run_tepai(&[
        "send",
        "--authorization",
        "--actor",
        "bureau-150200",
        "--nats-url",
        &url,
        "--nats-user",
        "bureau-150200",
        "--nats-password",
        "bureau-150200-dev",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(r#""accepted""#), "{stdout}");
    let actors = deployment.stored_actors();
    assert_eq!(actors.len(), 6, "{actors:?}");
    assert_eq!(actors[5].1, "bureau-150200");
    deployment.stop().await;
}
