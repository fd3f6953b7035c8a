//! `tepai query`: asks the query service for a view over NATS
//! (`tepai.query.<view>`, protobuf) and prints it as aligned tables, as
//! proto3 JSON, or (the assessment) as CSV. Error replies follow the NATS micro Service API: headers
//! `Nats-Service-Error` and `Nats-Service-Error-Code`, empty body.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{bail, Context};
use async_nats::service::{NATS_SERVICE_ERROR, NATS_SERVICE_ERROR_CODE};

use super::{city_label, city_short, print_json, request, unanswered, Table};
use crate::bus::{
    self, QUERY_ASSESSMENT_SUBJECT, QUERY_ASSIGNMENTS_SUBJECT, QUERY_CANDIDATES_SUBJECT,
    QUERY_CITY_MATRIX_SUBJECT, QUERY_COMMISSIONER_SUBJECT, QUERY_DEMANDS_SUBJECT,
    QUERY_DEMAND_SUBJECT, QUERY_STATUS_SUBJECT, QUERY_WORKSTATION_SUBJECT,
};
use crate::config::NatsOptions;
use crate::wire::pb;

/// Exit code when the service answered "no" (bad argument, not found).
const EXIT_REFUSED: u8 = 2;

/// `tepai query`: ask the query service for a view.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// Where the query service listens.
    #[command(flatten)]
    pub nats: NatsOptions,
    /// How to print the answer.
    #[arg(long, global = true, value_enum, default_value_t)]
    pub output: QueryOutput,
    /// The view to ask for.
    #[command(subcommand)]
    pub view: View,
}

/// The views of SPEC.md. Dates are `YYYY-MM-DD` (default: today, UTC+8);
/// `--as-of-position N` answers as the views stood after event N.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum View {
    /// Posts with their status on a date, filtered and paged.
    Assignments(AssignmentsArgs),
    /// A commissioner with their posts and totals on a date.
    Commissioner {
        /// The commissioner's id.
        #[arg(value_name = "ID")]
        commissioner_id: String,
        /// Date of the totals and statuses.
        #[arg(long)]
        on_date: Option<String>,
        /// Answer as of this global position.
        #[arg(long)]
        as_of_position: Option<u64>,
    },
    /// A workstation with its posts and totals on a date.
    Workstation {
        /// The workstation's id.
        #[arg(value_name = "ID")]
        workstation_id: String,
        /// Date of the totals and statuses.
        #[arg(long)]
        on_date: Option<String>,
        /// Answer as of this global position.
        #[arg(long)]
        as_of_position: Option<u64>,
    },
    /// Home city × serving city: active posts, their hours, service minutes.
    CityMatrix {
        /// Date for active posts.
        #[arg(long)]
        on_date: Option<String>,
        /// First day of the service-minutes range [default: the 1st of
        /// --on-date's month].
        #[arg(long)]
        from_date: Option<String>,
        /// Last day of the service-minutes range [default: --on-date].
        #[arg(long)]
        to_date: Option<String>,
        /// Answer as of this global position.
        #[arg(long)]
        as_of_position: Option<u64>,
    },
    /// The demands board (需求对接), filtered by city and status.
    Demands {
        /// Only demands of this city (code).
        #[arg(long)]
        city: Option<String>,
        /// Only demands in this status.
        #[arg(long, value_enum)]
        status: Option<DemandState>,
        /// Position and paging.
        #[command(flatten)]
        page: PageArgs,
    },
    /// A demand with its description, outcome and posts.
    Demand {
        /// The demand's id.
        #[arg(value_name = "ID")]
        demand_id: String,
        /// Answer as of this global position.
        #[arg(long)]
        as_of_position: Option<u64>,
    },
    /// Who could take a demand (--demand-id) or a post of the given
    /// expertise, city, hours and period, and at which workstations.
    Candidates(CandidatesArgs),
    /// The annual assessment (年度考核): figures, points and grades per
    /// commissioner or workstation for a year, ranked by points.
    Assessment(AssessmentArgs),
    /// The last global position and each projection's checkpoint and lag.
    Status,
}

/// How `tepai query` prints an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryOutput {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The proto3 JSON mapping of the reply (protobuf field names), for
    /// scripts and `jq`.
    Json,
    /// RFC 4180 CSV with the protobuf field names as the header, every row
    /// (the assessment only).
    Csv,
}

/// Which rows the assessment rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AssessmentSubject {
    /// One row per commissioner.
    Commissioners,
    /// One row per workstation.
    Workstations,
}

/// Parameters of the assessment; every one is optional.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct AssessmentArgs {
    /// The calendar year [default: this year, UTC+8].
    #[arg(long)]
    pub year: Option<u32>,
    /// Rate commissioners or workstations [default: commissioners].
    #[arg(long, value_enum)]
    pub subject: Option<AssessmentSubject>,
    /// Only the service delivered to this city (code), its posts and its
    /// demands.
    #[arg(long)]
    pub city: Option<String>,
    /// Only this commissioner's row.
    #[arg(long)]
    pub commissioner_id: Option<String>,
    /// Only this workstation's row (with --subject workstations).
    #[arg(long)]
    pub workstation_id: Option<String>,
    /// Position and paging.
    #[command(flatten)]
    pub page: PageArgs,
    /// Follow next_page_token to the last page and print every row
    /// (always so with --output csv).
    #[arg(long)]
    pub all: bool,
}

impl From<&AssessmentArgs> for pb::AssessmentQuery {
    fn from(args: &AssessmentArgs) -> Self {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let subject = match args.subject {
            None => pb::AssessmentSubject::Unspecified,
            Some(AssessmentSubject::Commissioners) => pb::AssessmentSubject::Commissioners,
            Some(AssessmentSubject::Workstations) => pb::AssessmentSubject::Workstations,
        };
        pb::AssessmentQuery {
            year: args.year.unwrap_or(0),
            subject: subject as i32,
            city: text(&args.city),
            commissioner_id: text(&args.commissioner_id),
            workstation_id: text(&args.workstation_id),
            as_of_position: args.page.as_of_position(),
            page_size: args.page.page_size(),
            page_token: args.page.page_token(),
        }
    }
}

/// A demand's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemandState {
    /// No post serves it yet.
    Open,
    /// At least one post serves it.
    Dispatched,
    /// Served and closed.
    Resolved,
    /// Closed without service.
    Withdrawn,
}

impl From<DemandState> for pb::DemandStatus {
    fn from(status: DemandState) -> Self {
        match status {
            DemandState::Open => pb::DemandStatus::DemandOpen,
            DemandState::Dispatched => pb::DemandStatus::DemandDispatched,
            DemandState::Resolved => pb::DemandStatus::DemandResolved,
            DemandState::Withdrawn => pb::DemandStatus::DemandWithdrawn,
        }
    }
}

/// The criteria of the candidates view: a demand, or the rest.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CandidatesArgs {
    /// The demand whose criteria to use (then give none of the others).
    #[arg(long)]
    pub demand_id: Option<String>,
    /// A wanted expertise tag (repeat the flag for several).
    #[arg(long = "expertise")]
    pub expertise: Vec<String>,
    /// The city to be served (code).
    #[arg(long)]
    pub city: Option<String>,
    /// Hours per month of the post.
    #[arg(long)]
    pub hours_per_month: Option<u32>,
    /// First day of the period (YYYY-MM-DD).
    #[arg(long)]
    pub start_date: Option<String>,
    /// Last day of the period (YYYY-MM-DD).
    #[arg(long)]
    pub end_date: Option<String>,
    /// Position and paging.
    #[command(flatten)]
    pub page: PageArgs,
}

impl From<&CandidatesArgs> for pb::CandidatesQuery {
    fn from(args: &CandidatesArgs) -> Self {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        pb::CandidatesQuery {
            demand_id: text(&args.demand_id),
            expertise: args.expertise.clone(),
            city: text(&args.city),
            hours_per_month: args.hours_per_month.unwrap_or(0),
            start_date: text(&args.start_date),
            end_date: text(&args.end_date),
            as_of_position: args.page.as_of_position(),
            page_size: args.page.page_size(),
            page_token: args.page.page_token(),
        }
    }
}

/// Filters of the assignments view; every one is optional.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct AssignmentsArgs {
    /// Date the statuses are computed for.
    #[arg(long)]
    pub on_date: Option<String>,
    /// Only this commissioner's posts.
    #[arg(long)]
    pub commissioner_id: Option<String>,
    /// Only this workstation's posts.
    #[arg(long)]
    pub workstation_id: Option<String>,
    /// Only commissioners from this city (code).
    #[arg(long)]
    pub home_city: Option<String>,
    /// Only posts serving this city (code).
    #[arg(long)]
    pub serving_city: Option<String>,
    /// Only posts serving a city other than the commissioner's home.
    #[arg(long)]
    pub cross_city_only: bool,
    /// Only posts with this status on the date.
    #[arg(long, value_enum)]
    pub status: Option<PostStatus>,
    /// Position and paging.
    #[command(flatten)]
    pub page: PageArgs,
    /// Follow next_page_token to the last page and print every row.
    #[arg(long)]
    pub all: bool,
}

/// The position a listing is read at and its paging; every one optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct PageArgs {
    /// Answer as of this global position.
    #[arg(long)]
    pub as_of_position: Option<u64>,
    /// Rows per page [default: the service's].
    #[arg(long)]
    pub page_size: Option<u32>,
    /// Continue from a previous page's next_page_token.
    #[arg(long)]
    pub page_token: Option<String>,
}

impl PageArgs {
    /// As the query field: 0 for the latest.
    fn as_of_position(&self) -> u64 {
        self.as_of_position.unwrap_or(0)
    }

    /// As the query field: 0 for the service's default.
    fn page_size(&self) -> u32 {
        self.page_size.unwrap_or(0)
    }

    /// As the query field: empty for the first page.
    fn page_token(&self) -> String {
        self.page_token.clone().unwrap_or_default()
    }
}

/// A post's status on the asked date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PostStatus {
    /// Before its start date.
    Scheduled,
    /// Inside its term and not ended.
    Active,
    /// Ended by a command.
    Ended,
    /// Its term ran out.
    Expired,
}

impl From<PostStatus> for pb::AssignmentStatus {
    fn from(status: PostStatus) -> Self {
        match status {
            PostStatus::Scheduled => pb::AssignmentStatus::Scheduled,
            PostStatus::Active => pb::AssignmentStatus::Active,
            PostStatus::Ended => pb::AssignmentStatus::Ended,
            PostStatus::Expired => pb::AssignmentStatus::Expired,
        }
    }
}

impl From<&AssignmentsArgs> for pb::AssignmentsQuery {
    fn from(args: &AssignmentsArgs) -> Self {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        pb::AssignmentsQuery {
            on_date: text(&args.on_date),
            commissioner_id: text(&args.commissioner_id),
            workstation_id: text(&args.workstation_id),
            home_city: text(&args.home_city),
            serving_city: text(&args.serving_city),
            cross_city_only: args.cross_city_only,
            status: args
                .status
                .map_or(0, |s| pb::AssignmentStatus::from(s) as i32),
            as_of_position: args.page.as_of_position(),
            page_size: args.page.page_size(),
            page_token: args.page.page_token(),
        }
    }
}

/// An error reply of the query service.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceError {
    /// HTTP-like: 400 invalid argument, 404 not found, 503 unavailable.
    code: u16,
    message: String,
}

impl ServiceError {
    /// Bad arguments and unknown ids are answers ("no"), exit 2; anything
    /// else means the service could not answer, exit 1.
    fn exit_code(&self) -> u8 {
        if matches!(self.code, 400 | 404) {
            EXIT_REFUSED
        } else {
            1
        }
    }
}

/// Asks the view and prints it; 0 answered, 2 refused (400/404), 1 else.
pub async fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let client = bus::connect(&args.nats, "tepai-query")
        .await
        .context("the query service is not reachable")?;
    let answer = match &args.view {
        View::Assignments(filters) => assignments(&client, filters, args.output).await?,
        View::Commissioner {
            commissioner_id,
            on_date,
            as_of_position,
        } => {
            let query = pb::CommissionerQuery {
                commissioner_id: commissioner_id.clone(),
                on_date: on_date.clone().unwrap_or_default(),
                as_of_position: as_of_position.unwrap_or(0),
            };
            ask::<_, pb::CommissionerDetail>(&client, QUERY_COMMISSIONER_SUBJECT, &query)
                .await?
                .map(|detail| show(&detail, args.output, format_commissioner))
        }
        View::Workstation {
            workstation_id,
            on_date,
            as_of_position,
        } => {
            let query = pb::WorkstationQuery {
                workstation_id: workstation_id.clone(),
                on_date: on_date.clone().unwrap_or_default(),
                as_of_position: as_of_position.unwrap_or(0),
            };
            ask::<_, pb::WorkstationDetail>(&client, QUERY_WORKSTATION_SUBJECT, &query)
                .await?
                .map(|detail| show(&detail, args.output, format_workstation))
        }
        View::CityMatrix {
            on_date,
            from_date,
            to_date,
            as_of_position,
        } => {
            let query = pb::CityMatrixQuery {
                on_date: on_date.clone().unwrap_or_default(),
                from_date: from_date.clone().unwrap_or_default(),
                to_date: to_date.clone().unwrap_or_default(),
                as_of_position: as_of_position.unwrap_or(0),
            };
            ask::<_, pb::CityMatrix>(&client, QUERY_CITY_MATRIX_SUBJECT, &query)
                .await?
                .map(|matrix| show(&matrix, args.output, format_city_matrix))
        }
        View::Demands { city, status, page } => {
            let query = pb::DemandsQuery {
                city: city.clone().unwrap_or_default(),
                status: status.map_or(0, |s| pb::DemandStatus::from(s) as i32),
                as_of_position: page.as_of_position(),
                page_size: page.page_size(),
                page_token: page.page_token(),
            };
            ask::<_, pb::DemandsPage>(&client, QUERY_DEMANDS_SUBJECT, &query)
                .await?
                .map(|page| {
                    show_or_csv(&page, args.output, format_demands, |p| {
                        Some(crate::query::csv::demands(&p.demands))
                    })
                })
        }
        View::Demand {
            demand_id,
            as_of_position,
        } => {
            let query = pb::DemandQuery {
                demand_id: demand_id.clone(),
                as_of_position: as_of_position.unwrap_or(0),
            };
            ask::<_, pb::DemandDetail>(&client, QUERY_DEMAND_SUBJECT, &query)
                .await?
                .map(|detail| {
                    show_or_csv(&detail, args.output, format_demand, |d| {
                        Some(crate::query::csv::demands(&[summary_of(d)]))
                    })
                })
        }
        View::Candidates(criteria) => {
            let query = pb::CandidatesQuery::from(criteria);
            ask::<_, pb::CandidatesPage>(&client, QUERY_CANDIDATES_SUBJECT, &query)
                .await?
                .map(|page| {
                    show_or_csv(&page, args.output, format_candidates, |p| {
                        Some(crate::query::csv::candidates(&p.candidates))
                    })
                })
        }
        View::Assessment(filters) => assessment(&client, filters, args.output).await?,
        View::Status => ask::<_, pb::Status>(&client, QUERY_STATUS_SUBJECT, &pb::StatusQuery {})
            .await?
            .map(|status| show(&status, args.output, format_status)),
    };
    match answer {
        Ok(printed) => printed.map(|()| ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("error {}: {}", error.code, error.message);
            Ok(ExitCode::from(error.exit_code()))
        }
    }
}

/// Asks for assignments; with `--all`, follows the pages and prints them
/// as one.
async fn assignments(
    client: &async_nats::Client,
    filters: &AssignmentsArgs,
    output: QueryOutput,
) -> anyhow::Result<Result<anyhow::Result<()>, ServiceError>> {
    let mut query = pb::AssignmentsQuery::from(filters);
    let first = ask::<_, pb::AssignmentsPage>(client, QUERY_ASSIGNMENTS_SUBJECT, &query).await?;
    let mut page = match first {
        Ok(page) => page,
        Err(error) => return Ok(Err(error)),
    };
    if filters.all {
        query.as_of_position = page.as_of_position;
        let token = std::mem::take(&mut page.next_page_token);
        let ask_after = |token: String| {
            let query = pb::AssignmentsQuery {
                page_token: token,
                ..query.clone()
            };
            async move { ask(client, QUERY_ASSIGNMENTS_SUBJECT, &query).await }
        };
        let merge = |page: &mut pb::AssignmentsPage, next: pb::AssignmentsPage| {
            page.assignments.extend(next.assignments);
            next.next_page_token
        };
        if let Err(error) =
            follow_pages(&mut page, &query.page_token, token, ask_after, merge).await?
        {
            return Ok(Err(error));
        }
    }
    Ok(Ok(show(&page, output, format_assignments_table)))
}

/// Asks for the assessment; with `--all` or `--output csv`, follows the
/// pages and prints them as one.
async fn assessment(
    client: &async_nats::Client,
    filters: &AssessmentArgs,
    output: QueryOutput,
) -> anyhow::Result<Result<anyhow::Result<()>, ServiceError>> {
    let mut query = pb::AssessmentQuery::from(filters);
    let first = ask::<_, pb::AssessmentPage>(client, QUERY_ASSESSMENT_SUBJECT, &query).await?;
    let mut page = match first {
        Ok(page) => page,
        Err(error) => return Ok(Err(error)),
    };
    if filters.all || output == QueryOutput::Csv {
        query.as_of_position = page.as_of_position;
        let token = std::mem::take(&mut page.next_page_token);
        let ask_after = |token: String| {
            let query = pb::AssessmentQuery {
                page_token: token,
                ..query.clone()
            };
            async move { ask(client, QUERY_ASSESSMENT_SUBJECT, &query).await }
        };
        let merge = |page: &mut pb::AssessmentPage, next: pb::AssessmentPage| {
            page.rows.extend(next.rows);
            next.next_page_token
        };
        if let Err(error) =
            follow_pages(&mut page, &query.page_token, token, ask_after, merge).await?
        {
            return Ok(Err(error));
        }
    }
    if output == QueryOutput::Csv {
        print!("{}", crate::query::csv::assessment(&page.rows));
        return Ok(Ok(Ok(())));
    }
    Ok(Ok(show(&page, output, format_assessment)))
}

/// Follows `token` to the last page, adding each page to `page` with
/// `merge` (which returns the page's next token). `ask_after` asks for the
/// page after a token, as of the first page's position, so events arriving
/// meanwhile cannot shift rows between pages. `asked` is the token the
/// first page was asked with: a service handing it back would loop.
async fn follow_pages<R, F, Fut>(
    page: &mut R,
    asked: &str,
    mut token: String,
    mut ask_after: F,
    merge: impl Fn(&mut R, R) -> String,
) -> anyhow::Result<Result<(), ServiceError>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Result<R, ServiceError>>>,
{
    let mut previous = asked.to_owned();
    while !token.is_empty() {
        if token == previous {
            bail!("the query service returned the same page token twice; stopping");
        }
        match ask_after(token.clone()).await? {
            Ok(next) => {
                previous = std::mem::replace(&mut token, merge(page, next));
            }
            Err(error) => return Ok(Err(error)),
        }
    }
    Ok(Ok(()))
}

/// Prints a reply as JSON, or as the text `table` makes of it.
fn show<T: serde::Serialize>(
    value: &T,
    output: QueryOutput,
    table: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    show_or_csv(value, output, table, |_| None)
}

/// As [`show`], with the CSV `csv` makes of the reply, where it has one.
fn show_or_csv<T: serde::Serialize>(
    value: &T,
    output: QueryOutput,
    table: impl FnOnce(&T) -> String,
    csv: impl FnOnce(&T) -> Option<String>,
) -> anyhow::Result<()> {
    match output {
        QueryOutput::Table => {
            print!("{}", table(value));
            Ok(())
        }
        QueryOutput::Json => print_json(value),
        QueryOutput::Csv => match csv(value) {
            Some(text) => {
                print!("{text}");
                Ok(())
            }
            None => bail!(
                "--output csv: only the demands, a demand, the candidates and the assessment print CSV"
            ),
        },
    }
}

/// Sends `query` on `subject`; the outer error is "no usable answer", the
/// inner one the service's error reply.
async fn ask<Q: prost::Message, R: prost::Message + Default>(
    client: &async_nats::Client,
    subject: &'static str,
    query: &Q,
) -> anyhow::Result<Result<R, ServiceError>> {
    let reply = match request(client, subject, query.encode_to_vec()).await {
        Ok(reply) => reply,
        Err(error) => match unanswered(error.kind(), subject) {
            Some(reason) => bail!(
                "the query service is not reachable: {reason}. \
                 Is `tepai serve query` (or `tepai up`) running?"
            ),
            None => return Err(error).with_context(|| format!("asking {subject}")),
        },
    };
    if let Some(error) = service_error(reply.headers.as_ref()) {
        return Ok(Err(error));
    }
    R::decode(reply.payload)
        .map(Ok)
        .with_context(|| format!("the answer on {subject} is not the expected message"))
}

/// The error a micro-service reply carries in its headers, if any.
fn service_error(headers: Option<&async_nats::HeaderMap>) -> Option<ServiceError> {
    let headers = headers?;
    let code = headers.get(NATS_SERVICE_ERROR_CODE);
    let message = headers.get(NATS_SERVICE_ERROR);
    if code.is_none() && message.is_none() {
        return None;
    }
    Some(ServiceError {
        // A code that is not a number is still an error, just not one of
        // the known answers: 0 exits 1.
        code: code
            .and_then(|c| c.as_str().trim().parse().ok())
            .unwrap_or(0),
        message: message.map_or_else(|| "(no message)".to_owned(), |m| m.as_str().to_owned()),
    })
}

/// Prints an assignments page as a table, with a line saying how many rows
/// and how to get the next page.
pub fn print_assignments_table(page: &pb::AssignmentsPage) {
    print!("{}", format_assignments_table(page));
}

/// The table [`print_assignments_table`] prints.
pub fn format_assignments_table(page: &pb::AssignmentsPage) -> String {
    let mut out = posts_table(&page.assignments);
    footer(
        &mut out,
        page.assignments.len(),
        "post",
        page.as_of_position,
        &page.next_page_token,
        " (or --all)",
    );
    out
}

/// One row per post. The post column shows the id's last 8 characters:
/// UUID v7 ids made in the same minute, and the demo's fixed ids, share
/// their first 8, so the end is what tells posts apart.
fn posts_table(posts: &[pb::Assignment]) -> String {
    let mut table = Table::new(&[
        "post",
        "commissioner",
        "home",
        "workstation",
        "serving",
        "cross",
        "role",
        "h/mo",
        "start",
        "end",
        "status",
    ])
    .right(&[7]);
    for post in posts {
        let short_id = post
            .post_id
            .get(post.post_id.len().saturating_sub(8)..)
            .unwrap_or(&post.post_id);
        table.row(vec![
            short_id.to_owned(),
            post.commissioner_name.clone(),
            city_short(&post.home_city),
            post.workstation_name.clone(),
            city_short(&post.serving_city),
            if post.cross_city { "yes" } else { "no" }.to_owned(),
            post.role.clone(),
            post.hours_per_month.to_string(),
            post.start_date.clone(),
            post.end_date.clone(),
            assignment_status(post.status),
        ]);
    }
    table.render()
}

/// The demands board as a table.
pub fn format_demands(page: &pb::DemandsPage) -> String {
    let mut table = Table::new(&[
        "demand",
        "title",
        "enterprise",
        "city",
        "status",
        "posts",
        "minutes",
        "满意度",
    ])
    .right(&[5, 6, 7]);
    for d in &page.demands {
        table.row(vec![
            short(&d.demand_id),
            d.title.clone(),
            d.enterprise.clone(),
            city_short(&d.city),
            demand_status(d.status),
            d.post_ids.len().to_string(),
            d.service_minutes.to_string(),
            satisfaction(d.satisfaction),
        ]);
    }
    let mut out = table.render();
    footer(
        &mut out,
        page.demands.len(),
        "demand",
        page.as_of_position,
        &page.next_page_token,
        "",
    );
    out
}

/// A demand's detail: its fields, then its posts.
pub fn format_demand(d: &pb::DemandDetail) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({})", d.title, d.demand_id);
    let _ = writeln!(out, "  enterprise   {}", d.enterprise);
    let _ = writeln!(out, "  city         {}", city_label(&d.city));
    let _ = writeln!(out, "  expertise    {}", d.expertise.join(", "));
    let _ = writeln!(
        out,
        "  wanted       {} h/month, {} to {}",
        d.hours_per_month, d.start_date, d.end_date
    );
    let _ = writeln!(out, "  status       {}", demand_status(d.status));
    let _ = writeln!(out, "  service      {} minutes", d.service_minutes);
    if !d.resolved_on.is_empty() {
        let _ = writeln!(
            out,
            "  resolved     {}, satisfaction {}: {}",
            d.resolved_on,
            satisfaction(d.satisfaction),
            d.outcome
        );
    }
    if !d.withdrawal_reason.is_empty() {
        let _ = writeln!(out, "  withdrawn    {}", d.withdrawal_reason);
    }
    if !d.description.is_empty() {
        let _ = writeln!(out, "  description  {}", d.description);
    }
    let _ = writeln!(out, "as of position {}", d.as_of_position);
    if !d.posts.is_empty() {
        out.push('\n');
        out.push_str(&posts_table(&d.posts));
    }
    out
}

/// The candidates, ranked, with the workstations each can take the post at.
pub fn format_candidates(page: &pb::CandidatesPage) -> String {
    let mut table = Table::new(&[
        "#",
        "commissioner",
        "home",
        "cross",
        "matched",
        "peak posts",
        "peak h/mo",
        "spare h/mo",
        "满意度",
        "workstations (free seats)",
    ])
    .right(&[0, 5, 6, 7, 8]);
    for (rank, c) in (1..).zip(&page.candidates) {
        let seats: Vec<String> = c
            .workstations
            .iter()
            .map(|w| format!("{} ({})", w.name, w.free_seats))
            .collect();
        table.row(vec![
            rank.to_string(),
            c.name.clone(),
            city_short(&c.home_city),
            if c.cross_city { "yes" } else { "no" }.to_owned(),
            c.matched_expertise.join(", "),
            c.peak_posts.to_string(),
            c.peak_hours_per_month.to_string(),
            c.spare_hours_per_month.to_string(),
            if c.demands_resolved == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}", c.average_satisfaction)
            },
            if seats.is_empty() {
                "none with a free seat".to_owned()
            } else {
                seats.join(", ")
            },
        ]);
    }
    let mut out = table.render();
    footer(
        &mut out,
        page.candidates.len(),
        "candidate",
        page.as_of_position,
        &page.next_page_token,
        "",
    );
    out
}

/// The line under a page: how many `noun`s, as of which position, and how
/// to ask for the next page (`also` names another way).
fn footer(out: &mut String, rows: usize, noun: &str, position: u64, token: &str, also: &str) {
    let plural = if rows == 1 { "" } else { "s" };
    let _ = write!(out, "{rows} {noun}{plural}, as of position {position}");
    if token.is_empty() {
        out.push('\n');
    } else {
        let _ = writeln!(out, "; more with --page-token {token}{also}");
    }
}

/// The summary fields of a demand's detail, for its one CSV line.
fn summary_of(d: &pb::DemandDetail) -> pb::DemandSummary {
    pb::DemandSummary {
        demand_id: d.demand_id.clone(),
        title: d.title.clone(),
        enterprise: d.enterprise.clone(),
        city: d.city.clone(),
        expertise: d.expertise.clone(),
        hours_per_month: d.hours_per_month,
        start_date: d.start_date.clone(),
        end_date: d.end_date.clone(),
        status: d.status,
        post_ids: d.post_ids.clone(),
        service_minutes: d.service_minutes,
        satisfaction: d.satisfaction,
    }
}

/// The last 8 characters of an id: see [`posts_table`].
fn short(id: &str) -> String {
    id.get(id.len().saturating_sub(8)..)
        .unwrap_or(id)
        .to_owned()
}

fn demand_status(value: i32) -> String {
    match pb::DemandStatus::try_from(value) {
        Ok(pb::DemandStatus::DemandOpen) => "open".to_owned(),
        Ok(pb::DemandStatus::DemandDispatched) => "dispatched".to_owned(),
        Ok(pb::DemandStatus::DemandResolved) => "resolved".to_owned(),
        Ok(pb::DemandStatus::DemandWithdrawn) => "withdrawn".to_owned(),
        _ => value.to_string(),
    }
}

fn satisfaction(score: u32) -> String {
    if score == 0 {
        "-".to_owned()
    } else {
        format!("{score}/5")
    }
}

fn assignment_status(value: i32) -> String {
    match pb::AssignmentStatus::try_from(value) {
        Ok(pb::AssignmentStatus::Unspecified) => "-".to_owned(),
        Ok(status) => status.as_str_name().to_lowercase(),
        Err(_) => value.to_string(),
    }
}

/// An enum's protobuf name in lower case without its prefix:
/// `COMMISSIONER_ACTIVE` → `active`, `RESEARCH_INSTITUTE` → `research-institute`.
fn enum_word(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_lowercase()
        .replace('_', "-")
}

fn format_commissioner(c: &pb::CommissionerDetail) -> String {
    let kind = pb::CommissionerKind::try_from(c.kind)
        .map_or_else(|_| c.kind.to_string(), |k| enum_word(k.as_str_name(), ""));
    let status = pb::CommissionerStatus::try_from(c.status).map_or_else(
        |_| c.status.to_string(),
        |s| enum_word(s.as_str_name(), "COMMISSIONER_"),
    );
    let mut out = format!("{} ({})\n", c.name, c.commissioner_id);
    let fields = [
        ("home city", city_label(&c.home_city)),
        ("employer", format!("{} ({kind})", c.employer)),
        ("expertise", c.expertise.join(", ")),
        ("status", status),
        (
            "on date",
            format!(
                "{}: {} active posts, {} hours/month, {} service minutes",
                c.on_date, c.active_posts, c.active_hours_per_month, c.service_minutes
            ),
        ),
        ("as of", format!("position {}", c.as_of_position)),
    ];
    for (label, value) in fields {
        let _ = writeln!(out, "  {label:<10}  {value}");
    }
    out.push('\n');
    out.push_str(&posts_table(&c.posts));
    out
}

fn format_workstation(w: &pb::WorkstationDetail) -> String {
    let status = pb::WorkstationStatus::try_from(w.status).map_or_else(
        |_| w.status.to_string(),
        |s| enum_word(s.as_str_name(), "WORKSTATION_"),
    );
    let served: Vec<String> = w.served_cities.iter().map(|c| city_label(c)).collect();
    let mut out = format!("{} ({})\n", w.name, w.workstation_id);
    let fields = [
        (
            "host",
            format!("{}, {}", w.host_org, city_label(&w.host_city)),
        ),
        ("serves", served.join(", ")),
        ("fields", w.fields.join(", ")),
        ("status", status),
        (
            "on date",
            format!(
                "{}: {} of {} posts running, {} hours/month, {} service minutes",
                w.on_date, w.active_posts, w.capacity, w.active_hours_per_month, w.service_minutes
            ),
        ),
        ("as of", format!("position {}", w.as_of_position)),
    ];
    for (label, value) in fields {
        let _ = writeln!(out, "  {label:<10}  {value}");
    }
    out.push('\n');
    out.push_str(&posts_table(&w.posts));
    out
}

/// The grade as a clerk reads it: 优秀, 良好, 合格, 不合格.
fn grade_label(value: i32) -> String {
    match pb::Grade::try_from(value) {
        Ok(pb::Grade::Excellent) => "优秀".to_owned(),
        Ok(pb::Grade::Good) => "良好".to_owned(),
        Ok(pb::Grade::Pass) => "合格".to_owned(),
        Ok(pb::Grade::Fail) => "不合格".to_owned(),
        Ok(pb::Grade::Unspecified) => "-".to_owned(),
        Err(_) => value.to_string(),
    }
}

/// The assessment as a ranked table, with a line saying what it covers.
pub fn format_assessment(page: &pb::AssessmentPage) -> String {
    let city = if page.city.is_empty() {
        "all cities".to_owned()
    } else {
        city_label(&page.city)
    };
    let mut out = format!(
        "{} 年度考核, service in {city}, as of position {}\n",
        page.year, page.as_of_position
    );
    let mut table = Table::new(&[
        "name",
        "city",
        "posts",
        "days",
        "records",
        "minutes",
        "cross-city",
        "demands",
        "satisfaction",
        "points",
        "grade",
    ])
    .right(&[2, 3, 4, 5, 6, 7, 8, 9]);
    for r in &page.rows {
        let satisfaction = if r.demands_resolved == 0 {
            "-".to_owned()
        } else {
            format!("{:.2}", r.average_satisfaction)
        };
        table.row(vec![
            r.name.clone(),
            city_short(&r.city),
            r.posts_held.to_string(),
            r.service_days.to_string(),
            r.service_records.to_string(),
            r.service_minutes.to_string(),
            r.cross_city_minutes.to_string(),
            r.demands_resolved.to_string(),
            satisfaction,
            r.points.to_string(),
            grade_label(r.grade),
        ]);
    }
    out.push_str(&table.render());
    let rows = page.rows.len();
    let _ = write!(out, "{rows} row{}", if rows == 1 { "" } else { "s" });
    if page.next_page_token.is_empty() {
        out.push('\n');
    } else {
        let _ = writeln!(
            out,
            "; more with --page-token {} (or --all)",
            page.next_page_token
        );
    }
    out
}

fn format_status(status: &pb::Status) -> String {
    let mut out = format!(
        "last position   {}\nrelay position  {}\n\n",
        status.last_position, status.relay_position
    );
    let mut table = Table::new(&["projection", "checkpoint", "lag"]).right(&[1, 2]);
    for projection in &status.projections {
        table.row(vec![
            projection.name.clone(),
            projection.checkpoint.to_string(),
            projection.lag.to_string(),
        ]);
    }
    out.push_str(&table.render());
    out
}

/// Prints the city matrix as a grid: a row per home city, a column per
/// serving city, each cell `posts/hours/minutes`.
pub fn print_city_matrix(m: &pb::CityMatrix) {
    print!("{}", format_city_matrix(m));
}

/// The grid [`print_city_matrix`] prints, with a line summing the
/// off-diagonal cells: the talent the cities share.
pub fn format_city_matrix(m: &pb::CityMatrix) -> String {
    let cells: BTreeMap<(&str, &str), &pb::CityMatrixCell> = m
        .cells
        .iter()
        .map(|c| ((c.home_city.as_str(), c.serving_city.as_str()), c))
        .collect();
    // Rows and columns over the same cities, so the diagonal is a diagonal.
    let cities: BTreeSet<&str> = cells.keys().flat_map(|(h, s)| [*h, *s]).collect();
    let mut out = format!(
        "posts active on {} / their hours per month / service minutes {}..{}, as of position {}\n",
        m.on_date, m.from_date, m.to_date, m.as_of_position
    );
    let mut header = vec!["home \\ serving".to_owned()];
    header.extend(cities.iter().map(|c| city_label(c)));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(&header).right(&(1..=cities.len()).collect::<Vec<_>>());
    for home in &cities {
        let mut row = vec![city_label(home)];
        for serving in &cities {
            row.push(match cells.get(&(*home, *serving)) {
                Some(c) => format!(
                    "{}/{}/{}",
                    c.active_posts, c.hours_per_month, c.service_minutes
                ),
                None => "0/0/0".to_owned(),
            });
        }
        table.row(row);
    }
    out.push_str(&table.render());
    let (posts, hours, minutes) = m
        .cells
        .iter()
        .filter(|c| c.home_city != c.serving_city)
        .fold((0u64, 0u64, 0u64), |(p, h, s), c| {
            (
                p + u64::from(c.active_posts),
                h + u64::from(c.hours_per_month),
                s + c.service_minutes,
            )
        });
    let _ = writeln!(
        out,
        "cross-city: {posts} posts, {hours} hours/month, {minutes} service minutes"
    );
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        query: QueryArgs,
    }

    fn parse(argv: &[&str]) -> Result<QueryArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("query").chain(argv.iter().copied())).map(|c| c.query)
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn assignment_filters_become_the_query() {
        let args = parse(&[
            "assignments",
            "--on-date",
            "2026-11-20",
            "--home-city",
            "150100",
            "--serving-city",
            "150200",
            "--cross-city-only",
            "--status",
            "active",
            "--as-of-position",
            "57",
            "--page-size",
            "20",
            "--page-token",
            "abc",
            "--output",
            "json",
        ])
        .unwrap();
        assert_eq!(args.output, QueryOutput::Json);
        let View::Assignments(filters) = &args.view else {
            panic!("{:?}", args.view);
        };
        assert_eq!(
            pb::AssignmentsQuery::from(filters),
            pb::AssignmentsQuery {
                on_date: "2026-11-20".into(),
                commissioner_id: String::new(),
                workstation_id: String::new(),
                home_city: "150100".into(),
                serving_city: "150200".into(),
                cross_city_only: true,
                status: pb::AssignmentStatus::Active as i32,
                as_of_position: 57,
                page_size: 20,
                page_token: "abc".into(),
            }
        );
        let plain = parse(&["assignments"]).unwrap();
        let View::Assignments(filters) = &plain.view else {
            panic!("{:?}", plain.view);
        };
        assert_eq!(
            pb::AssignmentsQuery::from(filters),
            pb::AssignmentsQuery::default()
        );
    }

    #[test]
    fn assessment_parameters_become_the_query() {
        let args = parse(&[
            "assessment",
            "--year",
            "2026",
            "--subject",
            "workstations",
            "--city",
            "150200",
            "--workstation-id",
            "7e9a1000-0002-4000-8000-000000000001",
            "--as-of-position",
            "57",
            "--page-size",
            "20",
            "--output",
            "csv",
        ])
        .unwrap();
        assert_eq!(args.output, QueryOutput::Csv);
        let View::Assessment(filters) = &args.view else {
            panic!("{:?}", args.view);
        };
        assert_eq!(
            pb::AssessmentQuery::from(filters),
            pb::AssessmentQuery {
                year: 2026,
                subject: pb::AssessmentSubject::Workstations as i32,
                city: "150200".into(),
                commissioner_id: String::new(),
                workstation_id: "7e9a1000-0002-4000-8000-000000000001".into(),
                as_of_position: 57,
                page_size: 20,
                page_token: String::new(),
            }
        );
        let View::Assessment(plain) = parse(&["assessment"]).unwrap().view else {
            panic!("not the assessment");
        };
        assert_eq!(
            pb::AssessmentQuery::from(&plain),
            pb::AssessmentQuery::default()
        );
        assert!(parse(&["assessment", "--subject", "cities"]).is_err());
    }

    #[test]
    fn the_assessment_prints_ranked_rows_with_grades_in_chinese() {
        let row = |name: &str, points, grade: pb::Grade, demands, total| pb::AssessmentRow {
            subject_id: String::new(),
            name: name.into(),
            city: "150100".into(),
            service_days: 12,
            service_records: 14,
            service_minutes: 960,
            cross_city_minutes: 240,
            demands_resolved: demands,
            average_satisfaction: if demands == 0 {
                0.0
            } else {
                f64::from(total) / f64::from(demands)
            },
            posts_held: 2,
            points,
            grade: grade as i32,
            satisfaction_total: total,
        };
        let page = pb::AssessmentPage {
            rows: vec![
                row("陈立新", 100, pb::Grade::Pass, 1, 5),
                row("Zhao Min", 60, pb::Grade::Pass, 0, 0),
                row("王敏", 5, pb::Grade::Fail, 0, 0),
            ],
            year: 2026,
            city: "150200".into(),
            next_page_token: "t2".into(),
            as_of_position: 57,
        };
        let expected = "\
2026 年度考核, service in 150200 包头, as of position 57
name      city      posts  days  records  minutes  cross-city  demands  satisfaction  points  grade
陈立新    呼和浩特      2    12       14      960         240        1          5.00     100  合格
Zhao Min  呼和浩特      2    12       14      960         240        0             -      60  合格
王敏      呼和浩特      2    12       14      960         240        0             -       5  不合格
3 rows; more with --page-token t2 (or --all)
";
        assert_eq!(format_assessment(&page), expected);
    }

    #[test]
    fn detail_views_take_the_id_as_an_argument() {
        let args = parse(&[
            "commissioner",
            "7e9a1000-0001-4000-8000-000000000001",
            "--on-date",
            "2026-11-20",
        ])
        .unwrap();
        assert_eq!(
            args.view,
            View::Commissioner {
                commissioner_id: "7e9a1000-0001-4000-8000-000000000001".into(),
                on_date: Some("2026-11-20".into()),
                as_of_position: None,
            }
        );
        assert!(parse(&["workstation"]).is_err(), "the id is required");
        assert!(parse(&["assignments", "--status", "running"]).is_err());
        assert_eq!(parse(&["status"]).unwrap().view, View::Status);
    }

    fn assignment(n: u8, name: &str, home: &str, serving: &str, hours: u32) -> pb::Assignment {
        pb::Assignment {
            post_id: format!("7e9a1000-0003-4000-8000-0000000000{n:02}"),
            commissioner_id: String::new(),
            commissioner_name: name.into(),
            home_city: home.into(),
            workstation_id: String::new(),
            workstation_name: "包钢集团特派员工作站".into(),
            host_city: "150200".into(),
            serving_city: serving.into(),
            cross_city: home != serving,
            role: "顾问".into(),
            hours_per_month: hours,
            start_date: "2026-03-01".into(),
            end_date: "2027-02-28".into(),
            status: pb::AssignmentStatus::Active as i32,
        }
    }

    #[test]
    fn assignments_print_as_aligned_columns_with_cjk_names() {
        let page = pb::AssignmentsPage {
            assignments: vec![
                assignment(2, "陈立新", "150100", "150200", 20),
                assignment(7, "Zhao Min", "150200", "150200", 30),
            ],
            next_page_token: "t2".into(),
            as_of_position: 57,
        };
        let text = format_assignments_table(&page);
        let expected = "\
post      commissioner  home      workstation           serving  cross  role  h/mo  start       end         status
00000002  陈立新        呼和浩特  包钢集团特派员工作站  包头     yes    顾问    20  2026-03-01  2027-02-28  active
00000007  Zhao Min      包头      包钢集团特派员工作站  包头     no     顾问    30  2026-03-01  2027-02-28  active
2 posts, as of position 57; more with --page-token t2 (or --all)
";
        assert_eq!(text, expected);
    }

    fn cell(home: &str, serving: &str, posts: u32, hours: u32, minutes: u64) -> pb::CityMatrixCell {
        pb::CityMatrixCell {
            home_city: home.into(),
            serving_city: serving.into(),
            active_posts: posts,
            hours_per_month: hours,
            service_minutes: minutes,
        }
    }

    #[test]
    fn the_city_matrix_is_a_grid_of_home_by_serving_city() {
        let matrix = pb::CityMatrix {
            cells: vec![
                cell("150100", "150100", 3, 100, 360),
                cell("150100", "150200", 2, 44, 440),
                cell("150200", "150100", 2, 40, 420),
                cell("150200", "150200", 2, 70, 180),
            ],
            on_date: "2026-11-20".into(),
            from_date: "2026-11-01".into(),
            to_date: "2026-11-20".into(),
            as_of_position: 57,
        };
        let expected = "\
posts active on 2026-11-20 / their hours per month / service minutes 2026-11-01..2026-11-20, as of position 57
home \\ serving   150100 呼和浩特  150200 包头
150100 呼和浩特        3/100/360     2/44/440
150200 包头             2/40/420     2/70/180
cross-city: 4 posts, 84 hours/month, 860 service minutes
";
        assert_eq!(format_city_matrix(&matrix), expected);
    }

    #[test]
    fn a_missing_cell_of_the_grid_is_zero() {
        let matrix = pb::CityMatrix {
            cells: vec![
                cell("150100", "150600", 1, 10, 0),
                cell("150900", "150100", 1, 8, 30),
            ],
            ..Default::default()
        };
        let text = format_city_matrix(&matrix);
        let rows: Vec<&str> = text.lines().skip(1).collect();
        assert!(rows[0].contains("150100 呼和浩特") && rows[0].contains("150600 鄂尔多斯"));
        assert!(rows[0].contains("150900 乌兰察布"));
        assert_eq!(rows.len(), 5, "header, three cities, total:\n{text}");
        assert!(rows[1].starts_with("150100 呼和浩特") && rows[1].contains("1/10/0"));
        assert_eq!(rows[1].matches("0/0/0").count(), 2, "{}", rows[1]);
        assert_eq!(
            rows[4],
            "cross-city: 2 posts, 18 hours/month, 30 service minutes"
        );
    }

    #[test]
    fn error_replies_carry_their_code_and_message_in_headers() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(NATS_SERVICE_ERROR, "commissioner 7e9a… not found");
        headers.insert(NATS_SERVICE_ERROR_CODE, "404");
        let error = service_error(Some(&headers)).unwrap();
        assert_eq!(error.code, 404);
        assert_eq!(error.message, "commissioner 7e9a… not found");
        assert_eq!(error.exit_code(), 2);

        let cases = [("400", 2), ("404", 2), ("503", 1), ("teapot", 1)];
        for (code, exit) in cases {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(NATS_SERVICE_ERROR, "x");
            headers.insert(NATS_SERVICE_ERROR_CODE, code);
            assert_eq!(
                service_error(Some(&headers)).unwrap().exit_code(),
                exit,
                "{code}"
            );
        }
        assert_eq!(service_error(None), None);
        assert_eq!(service_error(Some(&async_nats::HeaderMap::new())), None);
    }
}
