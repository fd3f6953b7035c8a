//! The demo data set: workstations at hosts the source article names,
//! commissioners from the region's universities and enterprises, posts
//! across the two cities, service records, and a few commands the rules
//! refuse. Loaded through the real command path; ids are fixed, so loading
//! it twice is answered from the command log and writes nothing.

// The data set reads best as tables of tuples.
#![allow(clippy::type_complexity)]

use prost::Message;

use crate::bus::{self, BusError};
use crate::config::NatsOptions;
use crate::wire::pb::{self, command_envelope::Command as C};

const HOHHOT: &str = "150100";
const BAOTOU: &str = "150200";

/// Loads the demo data set through the command path, printing each answer;
/// prints the assignments and the city matrix; shows the candidates for a
/// demand across the city border, then dispatches, serves and resolves it
/// and prints the demands and each city's assessment of the year. Each print waits until the views have caught
/// up (or ten seconds).
pub async fn load(nats: &NatsOptions, authorization: bool) -> Result<(), BusError> {
    let client = bus::connect(nats, "tepai-demo").await?;
    // With authorization on, the demo speaks as the administrator.
    let subject = if authorization {
        bus::command_service::actor_submit_subject(crate::domain::ADMIN)
    } else {
        bus::SUBMIT_SUBJECT.to_owned()
    };
    println!("Loading the demo data set through {subject}:");
    let head = send_all(&client, &subject, commands()).await?;
    caught_up(&client, head).await?;

    let query = pb::AssignmentsQuery {
        page_size: 500,
        ..Default::default()
    };
    let page: pb::AssignmentsPage = ask(&client, bus::QUERY_ASSIGNMENTS_SUBJECT, &query).await?;
    println!("\nAssignments today:");
    crate::cli::query::print_assignments_table(&page);
    let matrix: pb::CityMatrix = ask(
        &client,
        bus::QUERY_CITY_MATRIX_SUBJECT,
        &pb::CityMatrixQuery::default(),
    )
    .await?;
    println!("\nCity matrix (home city × city served; posts/hours per month/service minutes this month):");
    crate::cli::query::print_city_matrix(&matrix);

    let candidates: pb::CandidatesPage = ask(
        &client,
        bus::QUERY_CANDIDATES_SUBJECT,
        &pb::CandidatesQuery {
            demand_id: demand(1),
            ..Default::default()
        },
    )
    .await?;
    println!("\nCandidates for 北方稀土's demand in Baotou (稀土功能材料 or 新材料, 10 h/month):");
    print!("{}", crate::cli::query::format_candidates(&candidates));

    println!("\nThe demand flow:");
    let head = send_all(&client, &subject, demand_flow()).await?;
    caught_up(&client, head).await?;
    let detail: pb::DemandDetail = ask(
        &client,
        bus::QUERY_DEMAND_SUBJECT,
        &pb::DemandQuery {
            demand_id: demand(1),
            as_of_position: 0,
        },
    )
    .await?;
    println!();
    print!("{}", crate::cli::query::format_demand(&detail));
    let board: pb::DemandsPage = ask(
        &client,
        bus::QUERY_DEMANDS_SUBJECT,
        &pb::DemandsQuery::default(),
    )
    .await?;
    println!("\nDemands (需求对接):");
    print!("{}", crate::cli::query::format_demands(&board));
    for (city, name) in [(HOHHOT, "呼和浩特"), (BAOTOU, "包头")] {
        let year: pb::AssessmentPage = ask(
            &client,
            bus::QUERY_ASSESSMENT_SUBJECT,
            &pb::AssessmentQuery {
                year: 2026,
                subject: pb::AssessmentSubject::Commissioners as i32,
                city: city.into(),
                ..Default::default()
            },
        )
        .await?;
        println!("\nAssessment 2026 (年度考核) of the service {name} received:");
        print!("{}", crate::cli::query::format_assessment(&year));
    }
    println!();
    Ok(())
}

/// Sends each command and prints its answer; returns the highest position
/// written (0 if none).
async fn send_all(
    client: &async_nats::Client,
    subject: &str,
    commands: Vec<(pb::CommandEnvelope, &'static str)>,
) -> Result<u64, BusError> {
    let mut head = 0;
    for (envelope, note) in commands {
        let reply = client
            .request(subject.to_owned(), envelope.encode_to_vec().into())
            .await
            .map_err(BusError::nats)?;
        let result = pb::CommandResult::decode(reply.payload).map_err(BusError::nats)?;
        match result.outcome {
            Some(pb::command_result::Outcome::Accepted(a)) => {
                let positions: Vec<String> = a
                    .events
                    .iter()
                    .map(|e| e.global_position.to_string())
                    .collect();
                head = a
                    .events
                    .iter()
                    .map(|e| e.global_position)
                    .fold(head, u64::max);
                println!("  accepted  {note} (positions {})", positions.join(", "));
            }
            Some(pb::command_result::Outcome::Rejected(r)) => {
                println!(
                    "  rejected  {note}\n            {} {}: {}",
                    r.code().as_str_name(),
                    r.rule,
                    r.message
                );
            }
            None => println!("  no outcome for {note}"),
        }
    }
    Ok(head)
}

/// Waits until the views have applied `head`, or ten seconds.
async fn caught_up(client: &async_nats::Client, head: u64) -> Result<(), BusError> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status: pb::Status =
            ask(client, bus::QUERY_STATUS_SUBJECT, &pb::StatusQuery {}).await?;
        if status.projections.iter().all(|p| p.checkpoint >= head)
            || tokio::time::Instant::now() > deadline
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Asks a view over NATS.
async fn ask<Q: Message, R: Message + Default>(
    client: &async_nats::Client,
    subject: &'static str,
    query: &Q,
) -> Result<R, BusError> {
    let reply = client
        .request(subject, query.encode_to_vec().into())
        .await
        .map_err(BusError::nats)?;
    let refused = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::service::NATS_SERVICE_ERROR));
    if let Some(message) = refused {
        return Err(BusError::Nats(format!("{subject}: {}", message.as_str())));
    }
    R::decode(reply.payload).map_err(BusError::nats)
}

/// A fixed, readable UUID: `kind` picks the family, `n` the member.
fn uid(kind: u16, n: u16) -> String {
    format!("7e9a1000-{kind:04x}-4000-8000-{n:012x}")
}

fn commissioner(n: u16) -> String {
    uid(1, n)
}
fn workstation(n: u16) -> String {
    uid(2, n)
}
fn post(n: u16) -> String {
    uid(3, n)
}
fn service(n: u16) -> String {
    uid(4, n)
}
fn demand(n: u16) -> String {
    uid(5, n)
}

/// The commands of the demo, in order, each with its fixed command id and
/// a line saying what it shows.
pub fn commands() -> Vec<(pb::CommandEnvelope, &'static str)> {
    use pb::CommissionerKind::*;
    let mut out: Vec<(C, &'static str)> = Vec::new();
    let commissioners: [(u16, &str, &str, &str, pb::CommissionerKind, &[&str]); 6] = [
        (
            1,
            "陈立新",
            HOHHOT,
            "内蒙古工业大学",
            University,
            &["煤基固废", "新材料"],
        ),
        (
            2,
            "孙丽娜",
            HOHHOT,
            "内蒙古农业大学",
            University,
            &["种业", "草原生态"],
        ),
        (
            3,
            "王建国",
            HOHHOT,
            "内蒙古大学",
            University,
            &["生物医药", "疫苗"],
        ),
        (
            4,
            "李志强",
            BAOTOU,
            "包头稀土研究院",
            ResearchInstitute,
            &["稀土功能材料"],
        ),
        (
            5,
            "赵敏",
            BAOTOU,
            "内蒙古科技大学",
            University,
            &["冶金", "智能制造"],
        ),
        (
            6,
            "刘晓东",
            HOHHOT,
            "伊利集团",
            Enterprise,
            &["乳业", "食品安全"],
        ),
    ];
    for (n, name, city, employer, kind, expertise) in commissioners {
        out.push((
            C::RegisterCommissioner(pb::RegisterCommissioner {
                commissioner_id: commissioner(n),
                name: name.into(),
                home_city: city.into(),
                employer: employer.into(),
                kind: kind as i32,
                expertise: expertise.iter().map(|s| s.to_string()).collect(),
            }),
            "register a commissioner",
        ));
    }
    let workstations: [(u16, &str, &str, &str, u32, &[&str]); 6] = [
        (
            1,
            "金宇生物特派员工作站",
            "金宇生物技术股份有限公司",
            HOHHOT,
            4,
            &["生物医药"],
        ),
        (
            2,
            "久泰新材料特派员工作站",
            "内蒙古久泰新材料有限公司",
            HOHHOT,
            3,
            &["煤化工", "固废利用"],
        ),
        (
            3,
            "蒙草种业特派员工作站",
            "蒙草生态环境（集团）股份有限公司",
            HOHHOT,
            3,
            &["种业"],
        ),
        (
            4,
            "国家乳业技术创新中心工作站",
            "国家乳业技术创新中心",
            HOHHOT,
            5,
            &["乳业"],
        ),
        (
            5,
            "北方稀土特派员工作站",
            "中国北方稀土（集团）高科技股份有限公司",
            BAOTOU,
            2,
            &["稀土"],
        ),
        (
            6,
            "包钢集团特派员工作站",
            "包头钢铁（集团）有限责任公司",
            BAOTOU,
            3,
            &["冶金"],
        ),
    ];
    for (n, name, host, city, capacity, fields) in workstations {
        out.push((
            C::EstablishWorkstation(pb::EstablishWorkstation {
                workstation_id: workstation(n),
                name: name.into(),
                host_org: host.into(),
                host_city: city.into(),
                capacity,
                fields: fields.iter().map(|s| s.to_string()).collect(),
            }),
            "establish a workstation",
        ));
    }
    for (n, city) in [(2, BAOTOU), (4, BAOTOU), (5, HOHHOT), (6, HOHHOT)] {
        out.push((
            C::ExtendWorkstationService(pb::ExtendWorkstationService {
                workstation_id: workstation(n),
                city: city.into(),
            }),
            "extend a workstation's service across the city border",
        ));
    }
    let posts: [(u16, u16, u16, &str, &str, u32, &str, &str); 10] = [
        (
            1,
            1,
            2,
            HOHHOT,
            "首席技术顾问",
            30,
            "2026-01-01",
            "2027-12-31",
        ),
        (
            2,
            1,
            6,
            BAOTOU,
            "固废利用顾问",
            20,
            "2026-03-01",
            "2027-02-28",
        ),
        (3, 2, 3, HOHHOT, "育种专家", 40, "2026-01-01", "2028-06-30"),
        (
            4,
            3,
            1,
            HOHHOT,
            "疫苗研发顾问",
            40,
            "2025-07-01",
            "2026-06-30",
        ),
        (
            5,
            4,
            5,
            BAOTOU,
            "稀土材料专家",
            40,
            "2026-01-01",
            "2027-12-31",
        ),
        (
            6,
            4,
            2,
            HOHHOT,
            "新材料顾问",
            20,
            "2026-05-01",
            "2027-04-30",
        ),
        (
            7,
            5,
            6,
            BAOTOU,
            "智能制造顾问",
            30,
            "2026-02-01",
            "2028-01-31",
        ),
        (8, 5, 5, HOHHOT, "冶金顾问", 20, "2026-06-01", "2027-05-31"),
        (
            9,
            6,
            4,
            BAOTOU,
            "乳品质量顾问",
            24,
            "2026-01-01",
            "2026-12-31",
        ),
        (
            10,
            3,
            1,
            HOHHOT,
            "疫苗工艺顾问",
            30,
            "2027-03-01",
            "2028-02-29",
        ),
    ];
    for (n, c, w, city, role, hours, start, end) in posts {
        out.push((
            C::AppointPost(pb::AppointPost {
                post_id: post(n),
                commissioner_id: commissioner(c),
                workstation_id: workstation(w),
                serving_city: city.into(),
                role: role.into(),
                hours_per_month: hours,
                start_date: start.into(),
                end_date: end.into(),
                demand_id: String::new(),
            }),
            "appoint a post",
        ));
    }
    out.push((
        C::ExtendPostTerm(pb::ExtendPostTerm {
            post_id: post(9),
            end_date: "2027-06-30".into(),
        }),
        "extend a post's term",
    ));
    let services: [(u16, u16, &str, u32, &str, &str, &str); 6] = [
        (
            1,
            2,
            "2026-11-03",
            240,
            "包头钢铁（集团）有限责任公司",
            BAOTOU,
            "高炉煤气化灰渣提碳工艺诊断",
        ),
        (
            2,
            5,
            "2026-11-05",
            180,
            "中国北方稀土（集团）高科技股份有限公司",
            BAOTOU,
            "稀土永磁材料工艺评审",
        ),
        (
            3,
            6,
            "2026-11-10",
            300,
            "内蒙古久泰新材料有限公司",
            HOHHOT,
            "乙二醇细渣资源化方案",
        ),
        (
            4,
            8,
            "2026-11-12",
            120,
            "金属材料检测中心",
            HOHHOT,
            "冶金废渣检测方法培训",
        ),
        (
            5,
            9,
            "2026-11-18",
            200,
            "包头乳品企业",
            BAOTOU,
            "乳品质量追溯体系",
        ),
        (
            6,
            3,
            "2026-11-20",
            360,
            "蒙草种业中心",
            HOHHOT,
            "全自动种苗生产线调试",
        ),
    ];
    for (n, p, date, minutes, beneficiary, city, summary) in services {
        out.push((
            C::RecordService(pb::RecordService {
                service_id: service(n),
                post_id: post(p),
                date: date.into(),
                minutes,
                beneficiary: beneficiary.into(),
                beneficiary_city: city.into(),
                summary: summary.into(),
                demand_id: String::new(),
            }),
            "record service delivered",
        ));
    }
    // Commands the rules refuse.
    out.push((
        C::AppointPost(pb::AppointPost {
            post_id: post(90),
            commissioner_id: commissioner(1),
            workstation_id: workstation(4),
            serving_city: HOHHOT.into(),
            role: "乳业顾问".into(),
            hours_per_month: 40,
            start_date: "2026-06-01".into(),
            end_date: "2026-12-31".into(),
            demand_id: String::new(),
        }),
        "refused: 陈立新 would hold 90 hours/month",
    ));
    out.push((
        C::AppointPost(pb::AppointPost {
            post_id: post(91),
            commissioner_id: commissioner(6),
            workstation_id: workstation(5),
            serving_city: BAOTOU.into(),
            role: "稀土顾问".into(),
            hours_per_month: 10,
            start_date: "2026-07-01".into(),
            end_date: "2026-12-31".into(),
            demand_id: String::new(),
        }),
        "refused: 北方稀土 runs at its capacity of 2",
    ));
    out.push((
        C::RegisterCommissioner(pb::RegisterCommissioner {
            commissioner_id: commissioner(92),
            name: "周伟".into(),
            home_city: "150600".into(),
            employer: "鄂尔多斯企业".into(),
            kind: Enterprise as i32,
            expertise: vec![],
        }),
        "refused: Ordos is not in the default region",
    ));
    out.push((
        C::WithdrawWorkstationService(pb::WithdrawWorkstationService {
            workstation_id: workstation(2),
            city: BAOTOU.into(),
            end_posts: false,
            effective_date: String::new(),
        }),
        "accepted: no post of 久泰 serves Baotou",
    ));
    // Demands of the article's enterprises (需求对接).
    let demands: [(u16, &str, &str, &str, &[&str], u32, &str, &str, &str); 4] = [
        (
            1,
            "稀土冶炼渣中有价元素回收",
            "中国北方稀土（集团）高科技股份有限公司",
            BAOTOU,
            &["稀土功能材料", "新材料"],
            10,
            "2026-12-01",
            "2027-06-30",
            "冶炼渣中稀土与铌的回收率低，需要工艺诊断与试验方案",
        ),
        (
            2,
            "口蹄疫疫苗悬浮培养工艺优化",
            "金宇生物技术股份有限公司",
            HOHHOT,
            &["疫苗", "生物医药"],
            16,
            "2026-12-01",
            "2027-11-30",
            "提高悬浮培养密度与抗原产量",
        ),
        (
            3,
            "煤基固废制备建材",
            "内蒙古久泰新材料有限公司",
            HOHHOT,
            &["煤基固废"],
            20,
            "2027-01-01",
            "2027-12-31",
            "气化渣、粉煤灰的规模化利用",
        ),
        (
            4,
            "耐旱牧草新品种选育",
            "蒙草生态环境（集团）股份有限公司",
            HOHHOT,
            &["种业", "草原生态"],
            20,
            "2027-03-01",
            "2028-02-29",
            "适应呼包两地干旱草原的乡土草种",
        ),
    ];
    for (n, title, enterprise, city, expertise, hours, start, end, description) in demands {
        out.push((
            C::SubmitDemand(pb::SubmitDemand {
                demand_id: demand(n),
                title: title.into(),
                enterprise: enterprise.into(),
                city: city.into(),
                expertise: expertise.iter().map(|s| s.to_string()).collect(),
                hours_per_month: hours,
                start_date: start.into(),
                end_date: end.into(),
                description: description.into(),
            }),
            "submit an enterprise's demand",
        ));
    }
    envelopes(out, 0)
}

/// The demand flow after the candidates are shown: the Baotou demand is
/// dispatched to a Hohhot commissioner's post across the border, served
/// and resolved; the vaccine demand gets a post appointed for it in the
/// same commit.
pub fn demand_flow() -> Vec<(pb::CommandEnvelope, &'static str)> {
    let out = vec![
        (
            C::DispatchDemand(pb::DispatchDemand {
                demand_id: demand(1),
                post_id: post(2),
            }),
            "dispatch 北方稀土's demand to 陈立新's post serving Baotou",
        ),
        (
            C::RecordService(pb::RecordService {
                service_id: service(7),
                post_id: post(2),
                date: "2026-12-02".into(),
                minutes: 240,
                beneficiary: "中国北方稀土（集团）高科技股份有限公司".into(),
                beneficiary_city: BAOTOU.into(),
                summary: "冶炼渣取样与元素赋存状态分析".into(),
                demand_id: demand(1),
            }),
            "record service for the demand",
        ),
        (
            C::ResolveDemand(pb::ResolveDemand {
                demand_id: demand(1),
                outcome: "提出两段焙烧回收方案，企业采纳试验".into(),
                satisfaction: 5,
                resolved_on: "2026-12-02".into(),
            }),
            "resolve the demand, satisfaction 5",
        ),
        (
            C::AppointPost(pb::AppointPost {
                post_id: post(11),
                commissioner_id: commissioner(3),
                workstation_id: workstation(1),
                serving_city: HOHHOT.into(),
                role: "疫苗工艺顾问".into(),
                hours_per_month: 16,
                start_date: "2026-12-01".into(),
                end_date: "2027-02-28".into(),
                demand_id: demand(2),
            }),
            "appoint a post for 金宇生物's demand, dispatched in the same commit",
        ),
    ];
    envelopes(out, 100)
}

/// Envelopes with fixed command ids, numbered from `first`.
fn envelopes(
    commands: Vec<(C, &'static str)>,
    first: u16,
) -> Vec<(pb::CommandEnvelope, &'static str)> {
    commands
        .into_iter()
        .enumerate()
        .map(|(i, (command, note))| {
            let envelope = pb::CommandEnvelope {
                command_id: uid(
                    9,
                    first.saturating_add(u16::try_from(i).unwrap_or(u16::MAX)),
                ),
                expected_version: None,
                actor: "demo".into(),
                correlation_id: "demo-load".into(),
                command: Some(command),
            };
            (envelope, note)
        })
        .collect()
}
