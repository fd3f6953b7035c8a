//! `tepai send`: the producer CLI. Builds one `CommandEnvelope` — from a
//! subcommand whose flags are the protobuf field names, or from a whole
//! envelope in proto3 JSON — sends it on `tepai.cmd.submit` (with
//! `--authorization`, on `tepai.cmd.<actor>.submit`) and prints the
//! `CommandResult`. Exit code 0 accepted, 2 rejected, 1 no answer.
//! `--file` sends many commands in batches instead ([`super::send_file`]).

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::{bail, Context};
use prost::Message as _;

use super::{print_json, request, unanswered, OutputFormat, Table};
use crate::bus::command_service::{actor_of_subject, actor_submit_subject};
use crate::bus::{self, SUBMIT_SUBJECT};
use crate::config::NatsOptions;
use crate::wire::pb::{self, command_envelope::Command as C};
use crate::wire::MAX_ENVELOPE_BYTES;

/// The examples under `tepai send --help`.
pub const SEND_EXAMPLES: &str = "Examples:
  tepai send suspend-commissioner --commissioner-id 0190a7a8-0000-7000-8000-000000000001 --reason 出国访学
  tepai send --json @envelope.json
  tepai send --file roster.ndjson --results roster.results.ndjson

A --file line (one CommandEnvelope in proto3 JSON, with its own command_id):
  {\"command_id\":\"0190a7a8-0000-7000-8000-0000000000aa\",\"suspend_commissioner\":{\"commissioner_id\":\"0190a7a8-0000-7000-8000-000000000001\",\"reason\":\"出国访学\"}}

Interrupted? Run the same --file command again: commands already decided are answered
from tepai's log and nothing is written twice.";

/// Exit code of a rejected command: an answer, but "no".
const EXIT_REJECTED: u8 = 2;

/// `tepai send`: send one command and print the answer.
///
/// Either a subcommand (`tepai send appoint-post --post-id … --start-date …`)
/// or `--json` with a whole envelope. The metadata flags may come before or
/// after the subcommand and win over the envelope's own.
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// Where the command service listens.
    #[command(flatten)]
    pub nats: NatsOptions,
    /// Who asks, recorded on every event the command writes (A-Z, a-z, 0-9,
    /// '-', '_', '.'); tepai says "anonymous" when none is given.
    #[arg(long, global = true, env = "TEPAI_ACTOR")]
    pub actor: Option<String>,
    /// Submit on `tepai.cmd.<actor>.submit`, for a node run with
    /// --authorization: the actor (--actor, else the envelope's) must be the
    /// one your NATS user may publish as. Replies then come on
    /// `_INBOX.<actor>` unless --nats-inbox-prefix says otherwise.
    #[arg(
        long,
        global = true,
        env = "TEPAI_AUTHORIZATION",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub authorization: bool,
    /// Ties the command's events to a wider operation of yours; tepai uses
    /// the command id when none is given.
    #[arg(long, global = true)]
    pub correlation_id: Option<String>,
    /// The idempotency key (a UUID). Resending the same id returns the first
    /// answer and writes nothing, so a retry after a timeout must reuse it.
    /// [default: the --json envelope's, else a fresh UUID v7]
    #[arg(long, global = true)]
    pub command_id: Option<String>,
    /// The version the target stream must be at (0: it must not exist yet);
    /// otherwise the command is rejected with CONFLICT.
    #[arg(long, global = true)]
    pub expected_version: Option<u64>,
    /// A whole CommandEnvelope in proto3 JSON (protobuf field names), inline,
    /// as @FILE, or - for stdin; instead of a subcommand.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub json: Option<String>,
    /// Many commands: NDJSON, one whole CommandEnvelope in proto3 JSON per
    /// line (what --json takes), each with its own command_id; - for stdin.
    /// Sent in batches on tepai.cmd.submit_batch. Safe to run again after an
    /// interruption: tepai answers a command id it has seen with its first
    /// answer and writes nothing twice. Exit code 0 when every command was
    /// accepted, 2 when any was rejected or any line was malformed.
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["json", "command_id", "expected_version"])]
    pub file: Option<String>,
    /// With --file: commands per batch, at most 1000.
    #[arg(
        long,
        default_value_t = 500,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000)
    )]
    pub batch_size: usize,
    /// With --file: the largest batch in bytes. Lower it to the node's
    /// --max-batch-bytes if that is below the default; the NATS server's
    /// max_payload bounds it too.
    #[arg(
        long,
        default_value_t = crate::limits::DEFAULT_MAX_BATCH_BYTES,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(64 * 1024..=64 * 1024 * 1024)
    )]
    pub max_batch_bytes: usize,
    /// With --file: where to write one JSON result per input line, in input
    /// order, each with its "line" number [default: stdout].
    #[arg(long, value_name = "FILE")]
    pub results: Option<std::path::PathBuf>,
    /// How to print the answer.
    #[arg(long, global = true, value_enum, default_value_t)]
    pub output: OutputFormat,
    /// The command to send.
    #[command(subcommand)]
    pub command: Option<SendCommand>,
}

/// What kind of employer a commissioner comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// An enterprise (企业).
    Enterprise,
    /// A university (高校).
    University,
    /// A research institute (科研院所).
    ResearchInstitute,
    /// On their own account.
    Individual,
}

impl From<Kind> for pb::CommissionerKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Enterprise => pb::CommissionerKind::Enterprise,
            Kind::University => pb::CommissionerKind::University,
            Kind::ResearchInstitute => pb::CommissionerKind::ResearchInstitute,
            Kind::Individual => pb::CommissionerKind::Individual,
        }
    }
}

/// One subcommand per command of the contract; the flags are the protobuf
/// field names in kebab case. Values are checked by the command service,
/// not here, so the CLI and every other producer get the same answers.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum SendCommand {
    /// Register a commissioner (科技特派员).
    RegisterCommissioner {
        /// Id chosen by you (UUID).
        #[arg(long)]
        commissioner_id: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// Home city code, e.g. 150100 (Hohhot) or 150200 (Baotou).
        #[arg(long)]
        home_city: String,
        /// Employer: enterprise, university or institute.
        #[arg(long)]
        employer: String,
        /// Kind of employer.
        #[arg(long, value_enum)]
        kind: Kind,
        /// An expertise tag; repeat for more.
        #[arg(long)]
        expertise: Vec<String>,
    },
    /// Change a commissioner's name, employer or expertise; what is not
    /// given stays as it is.
    UpdateCommissionerProfile {
        /// The commissioner.
        #[arg(long)]
        commissioner_id: String,
        /// New full name.
        #[arg(long)]
        name: Option<String>,
        /// New employer.
        #[arg(long)]
        employer: Option<String>,
        /// The new expertise tags, replacing the old; repeat for more.
        #[arg(long, conflicts_with = "clear_expertise")]
        expertise: Vec<String>,
        /// Remove every expertise tag.
        #[arg(long)]
        clear_expertise: bool,
    },
    /// Suspend a commissioner: no new posts or service until reinstated.
    SuspendCommissioner {
        /// The commissioner.
        #[arg(long)]
        commissioner_id: String,
        /// Why, for the record.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a commissioner's suspension.
    ReinstateCommissioner {
        /// The commissioner.
        #[arg(long)]
        commissioner_id: String,
        /// Why, for the record.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Retire a commissioner; their running and scheduled posts end.
    RetireCommissioner {
        /// The commissioner.
        #[arg(long)]
        commissioner_id: String,
        /// Last day of service (YYYY-MM-DD) [default: the day it is processed].
        #[arg(long)]
        effective_date: Option<String>,
    },
    /// Establish a workstation (特派员工作站) serving its host city.
    EstablishWorkstation {
        /// Id chosen by you (UUID).
        #[arg(long)]
        workstation_id: String,
        /// Name of the workstation.
        #[arg(long)]
        name: String,
        /// Host organisation.
        #[arg(long)]
        host_org: String,
        /// Host city code.
        #[arg(long)]
        host_city: String,
        /// Posts that may run at once (1–500).
        #[arg(long)]
        capacity: u32,
        /// A field tag; repeat for more.
        #[arg(long)]
        fields: Vec<String>,
    },
    /// Extend a workstation's service to another city (cross service).
    ExtendWorkstationService {
        /// The workstation.
        #[arg(long)]
        workstation_id: String,
        /// City code to serve.
        #[arg(long)]
        city: String,
    },
    /// Stop a workstation serving a city; refused while posts serve it
    /// unless --end-posts.
    WithdrawWorkstationService {
        /// The workstation.
        #[arg(long)]
        workstation_id: String,
        /// City code to stop serving.
        #[arg(long)]
        city: String,
        /// End the posts serving that city instead of refusing.
        #[arg(long)]
        end_posts: bool,
        /// Last day of those posts (YYYY-MM-DD) [default: today].
        #[arg(long)]
        effective_date: Option<String>,
    },
    /// Change how many posts a workstation may run at once.
    ChangeWorkstationCapacity {
        /// The workstation.
        #[arg(long)]
        workstation_id: String,
        /// New capacity (1–500; not below the posts running).
        #[arg(long)]
        capacity: u32,
    },
    /// Close a workstation; its running and scheduled posts end.
    CloseWorkstation {
        /// The workstation.
        #[arg(long)]
        workstation_id: String,
        /// Last day of service (YYYY-MM-DD) [default: today].
        #[arg(long)]
        effective_date: Option<String>,
    },
    /// Appoint a commissioner to a part-time post (兼职) at a workstation.
    AppointPost {
        /// Id chosen by you (UUID).
        #[arg(long)]
        post_id: String,
        /// The commissioner.
        #[arg(long)]
        commissioner_id: String,
        /// The workstation.
        #[arg(long)]
        workstation_id: String,
        /// City code served, one of the workstation's served cities.
        #[arg(long)]
        serving_city: String,
        /// Role in the post.
        #[arg(long)]
        role: String,
        /// Hours per month (1–744).
        #[arg(long)]
        hours_per_month: u32,
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        start_date: String,
        /// Last day (YYYY-MM-DD), at most 3 years after the start.
        #[arg(long)]
        end_date: String,
        /// A demand to dispatch to the new post in the same commit.
        #[arg(long)]
        demand_id: Option<String>,
    },
    /// Move a post's last day later.
    ExtendPostTerm {
        /// The post.
        #[arg(long)]
        post_id: String,
        /// New last day (YYYY-MM-DD).
        #[arg(long)]
        end_date: String,
    },
    /// End a post.
    EndPost {
        /// The post.
        #[arg(long)]
        post_id: String,
        /// Its last day of service (YYYY-MM-DD).
        #[arg(long)]
        end_date: String,
        /// Why, for the record.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Record service delivered through a post (服务记录).
    RecordService {
        /// Id chosen by you (UUID).
        #[arg(long)]
        service_id: String,
        /// The post it was delivered through.
        #[arg(long)]
        post_id: String,
        /// Day of service (YYYY-MM-DD), within the post's term.
        #[arg(long)]
        date: String,
        /// Minutes of service (1–1440).
        #[arg(long)]
        minutes: u32,
        /// Enterprise or body that benefited.
        #[arg(long)]
        beneficiary: String,
        /// City code of the beneficiary, one of the workstation's served cities.
        #[arg(long)]
        beneficiary_city: String,
        /// What was done.
        #[arg(long)]
        summary: Option<String>,
        /// The demand the service was for (dispatched to the post).
        #[arg(long)]
        demand_id: Option<String>,
    },
    /// Publish an enterprise's technical demand (技术需求) for a city.
    SubmitDemand {
        /// Id chosen by you (UUID).
        #[arg(long)]
        demand_id: String,
        /// What is needed, in a line.
        #[arg(long)]
        title: String,
        /// The enterprise that needs it.
        #[arg(long)]
        enterprise: String,
        /// City code where the need is.
        #[arg(long)]
        city: String,
        /// A wanted expertise tag (1 to 8; repeat the flag).
        #[arg(long = "expertise", required = true)]
        expertise: Vec<String>,
        /// Hours per month wanted (1–744).
        #[arg(long)]
        hours_per_month: u32,
        /// First day wanted (YYYY-MM-DD).
        #[arg(long)]
        start_date: String,
        /// Last day wanted (YYYY-MM-DD), at most 3 years after the start.
        #[arg(long)]
        end_date: String,
        /// The need in detail.
        #[arg(long)]
        description: Option<String>,
    },
    /// Dispatch a demand to a post that will serve it (派单).
    DispatchDemand {
        /// The demand.
        #[arg(long)]
        demand_id: String,
        /// The post.
        #[arg(long)]
        post_id: String,
    },
    /// Resolve a dispatched demand, with the enterprise's satisfaction.
    ResolveDemand {
        /// The demand.
        #[arg(long)]
        demand_id: String,
        /// What came of it.
        #[arg(long)]
        outcome: Option<String>,
        /// The enterprise's satisfaction (1–5).
        #[arg(long)]
        satisfaction: u32,
        /// The day it was resolved (YYYY-MM-DD) [default: today].
        #[arg(long)]
        resolved_on: Option<String>,
    },
    /// Withdraw a demand that no service was recorded for.
    WithdrawDemand {
        /// The demand.
        #[arg(long)]
        demand_id: String,
        /// Why, for the record.
        #[arg(long)]
        reason: Option<String>,
    },
}

impl From<SendCommand> for C {
    // One line per command reads as the table it is.
    #[rustfmt::skip]
    fn from(command: SendCommand) -> Self {
        use SendCommand as S;
        match command {
            S::RegisterCommissioner { commissioner_id, name, home_city, employer, kind, expertise } => {
                let kind = pb::CommissionerKind::from(kind) as i32;
                C::RegisterCommissioner(pb::RegisterCommissioner { commissioner_id, name, home_city, employer, kind, expertise })
            }
            S::UpdateCommissionerProfile { commissioner_id, name, employer, expertise, clear_expertise } => {
                // Absent tags mean "unchanged"; an empty list means "none".
                let expertise = (clear_expertise || !expertise.is_empty()).then_some(pb::Tags { values: expertise });
                C::UpdateCommissionerProfile(pb::UpdateCommissionerProfile { commissioner_id, name, employer, expertise })
            }
            S::SuspendCommissioner { commissioner_id, reason } =>
                C::SuspendCommissioner(pb::SuspendCommissioner { commissioner_id, reason: reason.unwrap_or_default() }),
            S::ReinstateCommissioner { commissioner_id, reason } =>
                C::ReinstateCommissioner(pb::ReinstateCommissioner { commissioner_id, reason: reason.unwrap_or_default() }),
            S::RetireCommissioner { commissioner_id, effective_date } =>
                C::RetireCommissioner(pb::RetireCommissioner { commissioner_id, effective_date: effective_date.unwrap_or_default() }),
            S::EstablishWorkstation { workstation_id, name, host_org, host_city, capacity, fields } =>
                C::EstablishWorkstation(pb::EstablishWorkstation { workstation_id, name, host_org, host_city, capacity, fields }),
            S::ExtendWorkstationService { workstation_id, city } =>
                C::ExtendWorkstationService(pb::ExtendWorkstationService { workstation_id, city }),
            S::WithdrawWorkstationService { workstation_id, city, end_posts, effective_date } => {
                let effective_date = effective_date.unwrap_or_default();
                C::WithdrawWorkstationService(pb::WithdrawWorkstationService { workstation_id, city, end_posts, effective_date })
            }
            S::ChangeWorkstationCapacity { workstation_id, capacity } =>
                C::ChangeWorkstationCapacity(pb::ChangeWorkstationCapacity { workstation_id, capacity }),
            S::CloseWorkstation { workstation_id, effective_date } =>
                C::CloseWorkstation(pb::CloseWorkstation { workstation_id, effective_date: effective_date.unwrap_or_default() }),
            S::AppointPost { post_id, commissioner_id, workstation_id, serving_city, role, hours_per_month, start_date, end_date, demand_id } => {
                let demand_id = demand_id.unwrap_or_default();
                C::AppointPost(pb::AppointPost { post_id, commissioner_id, workstation_id, serving_city, role, hours_per_month, start_date, end_date, demand_id })
            }
            S::ExtendPostTerm { post_id, end_date } =>
                C::ExtendPostTerm(pb::ExtendPostTerm { post_id, end_date }),
            S::EndPost { post_id, end_date, reason } =>
                C::EndPost(pb::EndPost { post_id, end_date, reason: reason.unwrap_or_default() }),
            S::RecordService { service_id, post_id, date, minutes, beneficiary, beneficiary_city, summary, demand_id } => {
                let (summary, demand_id) = (summary.unwrap_or_default(), demand_id.unwrap_or_default());
                C::RecordService(pb::RecordService { service_id, post_id, date, minutes, beneficiary, beneficiary_city, summary, demand_id })
            }
            S::SubmitDemand { demand_id, title, enterprise, city, expertise, hours_per_month, start_date, end_date, description } => {
                let description = description.unwrap_or_default();
                C::SubmitDemand(pb::SubmitDemand { demand_id, title, enterprise, city, expertise, hours_per_month, start_date, end_date, description })
            }
            S::DispatchDemand { demand_id, post_id } =>
                C::DispatchDemand(pb::DispatchDemand { demand_id, post_id }),
            S::ResolveDemand { demand_id, outcome, satisfaction, resolved_on } => {
                let (outcome, resolved_on) = (outcome.unwrap_or_default(), resolved_on.unwrap_or_default());
                C::ResolveDemand(pb::ResolveDemand { demand_id, outcome, satisfaction, resolved_on })
            }
            S::WithdrawDemand { demand_id, reason } =>
                C::WithdrawDemand(pb::WithdrawDemand { demand_id, reason: reason.unwrap_or_default() }),
        }
    }
}

impl SendArgs {
    /// The envelope to send: the subcommand's or `--json`'s command with the
    /// metadata flags applied, and a fresh UUID v7 as command id when
    /// neither names one. Reads the file or stdin `--json` points at.
    pub fn envelope(&self) -> anyhow::Result<pb::CommandEnvelope> {
        let mut envelope = match (&self.command, &self.json) {
            (Some(command), None) => pb::CommandEnvelope {
                command: Some(command.clone().into()),
                ..Default::default()
            },
            (None, Some(source)) => parse_envelope_json(&read_json(source)?)?,
            (Some(_), Some(_)) => bail!(
                "give either a command (a subcommand such as register-commissioner) or --json, not both"
            ),
            (None, None) => bail!(
                "say what to send: a command (see `tepai send --help` for the list) \
                 or --json with a whole CommandEnvelope"
            ),
        };
        if let Some(command_id) = &self.command_id {
            envelope.command_id.clone_from(command_id);
        }
        if envelope.command_id.is_empty() {
            envelope.command_id = uuid::Uuid::now_v7().hyphenated().to_string();
        }
        if let Some(actor) = &self.actor {
            envelope.actor.clone_from(actor);
        }
        if let Some(correlation_id) = &self.correlation_id {
            envelope.correlation_id.clone_from(correlation_id);
        }
        if self.expected_version.is_some() {
            envelope.expected_version = self.expected_version;
        }
        let size = envelope.encoded_len();
        if size > MAX_ENVELOPE_BYTES {
            bail!("the envelope is {size} bytes; tepai takes at most {MAX_ENVELOPE_BYTES}");
        }
        Ok(envelope)
    }
}

/// The text of `--json`: inline, `@FILE`, or `-` for stdin.
fn read_json(source: &str) -> anyhow::Result<String> {
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the envelope from stdin")?;
        return Ok(text);
    }
    if let Some(path) = source.strip_prefix('@') {
        return std::fs::read_to_string(path)
            .with_context(|| format!("reading the envelope from {path}"));
    }
    Ok(source.to_owned())
}

fn parse_envelope_json(text: &str) -> anyhow::Result<pb::CommandEnvelope> {
    let envelope: pb::CommandEnvelope = serde_json::from_str(text)
        .context("--json is not a CommandEnvelope in proto3 JSON (protobuf field names)")?;
    if envelope.command.is_none() {
        bail!(
            "the --json envelope carries no command: add one field such as \
             \"register_commissioner\": {{…}} or \"appoint_post\": {{…}}"
        );
    }
    Ok(envelope)
}

/// The subject to submit `envelope` on, and how to connect for it: with
/// authorization, the actor's own subject and reply inboxes.
fn route(args: &SendArgs, envelope: &pb::CommandEnvelope) -> anyhow::Result<(String, NatsOptions)> {
    let mut nats = args.nats.clone();
    if !args.authorization {
        return Ok((SUBMIT_SUBJECT.to_owned(), nats));
    }
    let actor = envelope.actor.as_str();
    if actor.is_empty() {
        bail!(
            "with --authorization, say who you are: --actor (or TEPAI_ACTOR) with the actor              your NATS user may submit as, e.g. bureau-150100"
        );
    }
    let subject = actor_submit_subject(actor);
    if actor_of_subject(&subject).is_none() {
        bail!("--actor {actor}: an actor is 1 to 64 of A-Z, a-z, 0-9, '-', '_'");
    }
    if nats.nats_inbox_prefix.is_none() {
        nats.nats_inbox_prefix = Some(format!("_INBOX.{actor}"));
    }
    Ok((subject, nats))
}

/// Sends the command (or, with --file, every command of the file) and
/// prints the answer; 0 accepted, 2 rejected.
pub async fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    if let Some(source) = &args.file {
        if args.command.is_some() {
            bail!("give either a command (a subcommand) or --file, not both");
        }
        return super::send_file::run(&args, source).await;
    }
    let envelope = args.envelope()?;
    let command_id = envelope.command_id.clone();
    let (subject, nats) = route(&args, &envelope)?;
    let client = bus::connect(&nats, "tepai-send")
        .await
        .context("the command service is not reachable; nothing was sent")?;
    let reply = match request(&client, &subject, envelope.encode_to_vec()).await {
        Ok(reply) => reply,
        Err(error) => {
            let Some(mut reason) = unanswered(error.kind(), &subject) else {
                return Err(error).with_context(|| {
                    format!("sending command {command_id}; resending with --command-id {command_id} is safe")
                });
            };
            if args.authorization {
                reason.push_str(" (or your NATS user may not publish on it)");
            }
            bail!(
                "the command service is not reachable: {reason}. Is `tepai serve command` \
                 (or `tepai up`) running? The command may or may not have been decided; \
                 resending with --command-id {command_id} is safe: tepai answers a repeated \
                 command id with its first answer and writes nothing"
            );
        }
    };
    let result = pb::CommandResult::decode(reply.payload)
        .context("the command service's answer is not a CommandResult")?;
    match args.output {
        OutputFormat::Table => print!("{}", format_result(&result)),
        OutputFormat::Json => print_json(&result)?,
    }
    exit_code(&result).map(ExitCode::from)
}

/// 0 accepted, 2 rejected; an answer without an outcome is an error.
fn exit_code(result: &pb::CommandResult) -> anyhow::Result<u8> {
    match &result.outcome {
        Some(pb::command_result::Outcome::Accepted(_)) => Ok(0),
        Some(pb::command_result::Outcome::Rejected(_)) => Ok(EXIT_REJECTED),
        None => bail!(
            "the answer to command {} says neither accepted nor rejected",
            result.command_id
        ),
    }
}

/// `accepted` and the events written, or `rejected CODE RULE: message`.
fn format_result(result: &pb::CommandResult) -> String {
    match &result.outcome {
        Some(pb::command_result::Outcome::Accepted(accepted)) => {
            let mut table =
                Table::new(&["stream", "version", "position", "event id"]).right(&[1, 2]);
            for event in &accepted.events {
                table.row(vec![
                    event.stream_id.clone(),
                    event.stream_version.to_string(),
                    event.global_position.to_string(),
                    event.event_id.clone(),
                ]);
            }
            format!("accepted\n{}", table.render())
        }
        Some(pb::command_result::Outcome::Rejected(rejected)) => {
            // An unknown code from a newer server still shows its number.
            let code = pb::RejectCode::try_from(rejected.code).map_or_else(
                |_| rejected.code.to_string(),
                |c| c.as_str_name().to_owned(),
            );
            if rejected.rule.is_empty() {
                format!("rejected {code}: {}\n", rejected.message)
            } else {
                format!("rejected {code} {}: {}\n", rejected.rule, rejected.message)
            }
        }
        None => format!("no outcome for command {}\n", result.command_id),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        send: SendArgs,
    }

    fn parse(argv: &[&str]) -> Result<SendArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("send").chain(argv.iter().copied())).map(|c| c.send)
    }

    const C1: &str = "7e9a1000-0001-4000-8000-000000000001";
    const W1: &str = "7e9a1000-0002-4000-8000-000000000001";
    const P1: &str = "7e9a1000-0003-4000-8000-000000000001";
    const S1: &str = "7e9a1000-0004-4000-8000-000000000001";
    const D1: &str = "7e9a1000-0005-4000-8000-000000000001";

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    #[rustfmt::skip]
    fn every_subcommand_parses_into_its_protobuf_command() {
        let cases: Vec<(Vec<&str>, C)> = vec![
            (
                vec!["register-commissioner", "--commissioner-id", C1, "--name", "陈立新", "--home-city", "150100",
                     "--employer", "内蒙古工业大学", "--kind", "university", "--expertise", "煤基固废", "--expertise", "新材料"],
                C::RegisterCommissioner(pb::RegisterCommissioner {
                    commissioner_id: s(C1), name: s("陈立新"), home_city: s("150100"), employer: s("内蒙古工业大学"),
                    kind: pb::CommissionerKind::University as i32, expertise: vec![s("煤基固废"), s("新材料")],
                }),
            ),
            (
                vec!["register-commissioner", "--commissioner-id", C1, "--name", "李志强", "--home-city", "150200",
                     "--employer", "包头稀土研究院", "--kind", "research-institute"],
                C::RegisterCommissioner(pb::RegisterCommissioner {
                    commissioner_id: s(C1), name: s("李志强"), home_city: s("150200"), employer: s("包头稀土研究院"),
                    kind: pb::CommissionerKind::ResearchInstitute as i32, expertise: vec![],
                }),
            ),
            (
                vec!["update-commissioner-profile", "--commissioner-id", C1, "--employer", "内蒙古大学"],
                C::UpdateCommissionerProfile(pb::UpdateCommissionerProfile {
                    commissioner_id: s(C1), name: None, employer: Some(s("内蒙古大学")), expertise: None,
                }),
            ),
            (
                vec!["update-commissioner-profile", "--commissioner-id", C1, "--name", "张永峰",
                     "--expertise", "稀土", "--expertise", "冶金"],
                C::UpdateCommissionerProfile(pb::UpdateCommissionerProfile {
                    commissioner_id: s(C1), name: Some(s("张永峰")), employer: None,
                    expertise: Some(pb::Tags { values: vec![s("稀土"), s("冶金")] }),
                }),
            ),
            (
                vec!["update-commissioner-profile", "--commissioner-id", C1, "--clear-expertise"],
                C::UpdateCommissionerProfile(pb::UpdateCommissionerProfile {
                    commissioner_id: s(C1), name: None, employer: None, expertise: Some(pb::Tags { values: vec![] }),
                }),
            ),
            (
                vec!["suspend-commissioner", "--commissioner-id", C1, "--reason", "出国访学"],
                C::SuspendCommissioner(pb::SuspendCommissioner { commissioner_id: s(C1), reason: s("出国访学") }),
            ),
            (
                vec!["reinstate-commissioner", "--commissioner-id", C1],
                C::ReinstateCommissioner(pb::ReinstateCommissioner { commissioner_id: s(C1), reason: s("") }),
            ),
            (
                vec!["retire-commissioner", "--commissioner-id", C1, "--effective-date", "2026-12-31"],
                C::RetireCommissioner(pb::RetireCommissioner { commissioner_id: s(C1), effective_date: s("2026-12-31") }),
            ),
            (
                vec!["establish-workstation", "--workstation-id", W1, "--name", "北方稀土特派员工作站",
                     "--host-org", "中国北方稀土（集团）高科技股份有限公司", "--host-city", "150200", "--capacity", "2",
                     "--fields", "稀土"],
                C::EstablishWorkstation(pb::EstablishWorkstation {
                    workstation_id: s(W1), name: s("北方稀土特派员工作站"),
                    host_org: s("中国北方稀土（集团）高科技股份有限公司"), host_city: s("150200"), capacity: 2,
                    fields: vec![s("稀土")],
                }),
            ),
            (
                vec!["extend-workstation-service", "--workstation-id", W1, "--city", "150100"],
                C::ExtendWorkstationService(pb::ExtendWorkstationService { workstation_id: s(W1), city: s("150100") }),
            ),
            (
                vec!["withdraw-workstation-service", "--workstation-id", W1, "--city", "150100", "--end-posts",
                     "--effective-date", "2026-09-30"],
                C::WithdrawWorkstationService(pb::WithdrawWorkstationService {
                    workstation_id: s(W1), city: s("150100"), end_posts: true, effective_date: s("2026-09-30"),
                }),
            ),
            (
                vec!["withdraw-workstation-service", "--workstation-id", W1, "--city", "150100"],
                C::WithdrawWorkstationService(pb::WithdrawWorkstationService {
                    workstation_id: s(W1), city: s("150100"), end_posts: false, effective_date: s(""),
                }),
            ),
            (
                vec!["change-workstation-capacity", "--workstation-id", W1, "--capacity", "5"],
                C::ChangeWorkstationCapacity(pb::ChangeWorkstationCapacity { workstation_id: s(W1), capacity: 5 }),
            ),
            (
                vec!["close-workstation", "--workstation-id", W1],
                C::CloseWorkstation(pb::CloseWorkstation { workstation_id: s(W1), effective_date: s("") }),
            ),
            (
                vec!["appoint-post", "--post-id", P1, "--commissioner-id", C1, "--workstation-id", W1,
                     "--serving-city", "150200", "--role", "稀土材料专家", "--hours-per-month", "40",
                     "--start-date", "2026-01-01", "--end-date", "2027-12-31"],
                C::AppointPost(pb::AppointPost {
                    post_id: s(P1), commissioner_id: s(C1), workstation_id: s(W1), serving_city: s("150200"),
                    role: s("稀土材料专家"), hours_per_month: 40, start_date: s("2026-01-01"), end_date: s("2027-12-31"),
                    demand_id: s(""),
                }),
            ),
            (
                vec!["appoint-post", "--post-id", P1, "--commissioner-id", C1, "--workstation-id", W1,
                     "--serving-city", "150200", "--role", "稀土材料专家", "--hours-per-month", "40",
                     "--start-date", "2026-01-01", "--end-date", "2027-12-31", "--demand-id", D1],
                C::AppointPost(pb::AppointPost {
                    post_id: s(P1), commissioner_id: s(C1), workstation_id: s(W1), serving_city: s("150200"),
                    role: s("稀土材料专家"), hours_per_month: 40, start_date: s("2026-01-01"), end_date: s("2027-12-31"),
                    demand_id: s(D1),
                }),
            ),
            (
                vec!["extend-post-term", "--post-id", P1, "--end-date", "2028-06-30"],
                C::ExtendPostTerm(pb::ExtendPostTerm { post_id: s(P1), end_date: s("2028-06-30") }),
            ),
            (
                vec!["end-post", "--post-id", P1, "--end-date", "2026-10-31", "--reason", "项目结题"],
                C::EndPost(pb::EndPost { post_id: s(P1), end_date: s("2026-10-31"), reason: s("项目结题") }),
            ),
            (
                vec!["record-service", "--service-id", S1, "--post-id", P1, "--date", "2026-11-05", "--minutes", "180",
                     "--beneficiary", "中国北方稀土（集团）高科技股份有限公司", "--beneficiary-city", "150200",
                     "--summary", "稀土永磁材料工艺评审"],
                C::RecordService(pb::RecordService {
                    service_id: s(S1), post_id: s(P1), date: s("2026-11-05"), minutes: 180,
                    beneficiary: s("中国北方稀土（集团）高科技股份有限公司"), beneficiary_city: s("150200"),
                    summary: s("稀土永磁材料工艺评审"), demand_id: s(""),
                }),
            ),
            (
                vec!["record-service", "--service-id", S1, "--post-id", P1, "--date", "2026-11-05", "--minutes", "60",
                     "--beneficiary", "北方稀土", "--beneficiary-city", "150200", "--demand-id", D1],
                C::RecordService(pb::RecordService {
                    service_id: s(S1), post_id: s(P1), date: s("2026-11-05"), minutes: 60,
                    beneficiary: s("北方稀土"), beneficiary_city: s("150200"), summary: s(""), demand_id: s(D1),
                }),
            ),
            (
                vec!["submit-demand", "--demand-id", D1, "--title", "稀土冶金废渣综合利用", "--enterprise", "北方稀土",
                     "--city", "150200", "--expertise", "稀土冶金", "--expertise", "固废", "--hours-per-month", "20",
                     "--start-date", "2027-01-01", "--end-date", "2027-12-31", "--description", "废渣减量"],
                C::SubmitDemand(pb::SubmitDemand {
                    demand_id: s(D1), title: s("稀土冶金废渣综合利用"), enterprise: s("北方稀土"), city: s("150200"),
                    expertise: vec![s("稀土冶金"), s("固废")], hours_per_month: 20, start_date: s("2027-01-01"),
                    end_date: s("2027-12-31"), description: s("废渣减量"),
                }),
            ),
            (
                vec!["dispatch-demand", "--demand-id", D1, "--post-id", P1],
                C::DispatchDemand(pb::DispatchDemand { demand_id: s(D1), post_id: s(P1) }),
            ),
            (
                vec!["resolve-demand", "--demand-id", D1, "--satisfaction", "4", "--outcome", "废渣减量三成",
                     "--resolved-on", "2027-11-30"],
                C::ResolveDemand(pb::ResolveDemand {
                    demand_id: s(D1), outcome: s("废渣减量三成"), satisfaction: 4, resolved_on: s("2027-11-30"),
                }),
            ),
            (
                vec!["withdraw-demand", "--demand-id", D1],
                C::WithdrawDemand(pb::WithdrawDemand { demand_id: s(D1), reason: s("") }),
            ),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for (argv, expected) in cases {
            let args = parse(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            let envelope = args.envelope().unwrap();
            seen.insert(argv[0]);
            assert_eq!(envelope.command, Some(expected), "{argv:?}");
            assert_eq!(envelope.command_id.len(), 36, "a fresh UUID as command id");
        }
        assert_eq!(seen.len(), 18, "one case per command at least");
    }

    #[test]
    fn metadata_flags_go_before_or_after_the_subcommand() {
        let args = parse(&[
            "--actor",
            "hr-portal",
            "extend-post-term",
            "--post-id",
            P1,
            "--end-date",
            "2028-06-30",
            "--command-id",
            "0190a6d4-0000-7000-8000-000000000001",
            "--correlation-id",
            "batch-7",
            "--expected-version",
            "3",
            "--output",
            "json",
        ])
        .unwrap();
        assert_eq!(args.output, OutputFormat::Json);
        let envelope = args.envelope().unwrap();
        assert_eq!(envelope.actor, "hr-portal");
        assert_eq!(envelope.command_id, "0190a6d4-0000-7000-8000-000000000001");
        assert_eq!(envelope.correlation_id, "batch-7");
        assert_eq!(envelope.expected_version, Some(3));
    }

    #[test]
    fn with_authorization_a_command_goes_on_its_actors_subject_with_its_own_inbox() {
        let argv = ["close-workstation", "--workstation-id", W1];
        let routed = |extra: &[&str]| {
            // NATS options come before the subcommand; the rest are global.
            let argv: Vec<&str> = extra.iter().chain(&argv).copied().collect();
            let args = parse(&argv).unwrap();
            let envelope = args.envelope().unwrap();
            route(&args, &envelope).map(|(subject, nats)| (subject, nats.nats_inbox_prefix))
        };
        assert_eq!(
            routed(&["--actor", "bureau-150200"]).unwrap(),
            ("tepai.cmd.submit".to_owned(), None)
        );
        assert_eq!(
            routed(&["--authorization", "--actor", "bureau-150200"]).unwrap(),
            (
                "tepai.cmd.bureau-150200.submit".to_owned(),
                Some("_INBOX.bureau-150200".to_owned())
            )
        );
        let (_, inbox) = routed(&[
            "--nats-inbox-prefix",
            "_INBOX.ops",
            "--authorization",
            "--actor",
            "admin",
        ])
        .unwrap();
        assert_eq!(inbox.as_deref(), Some("_INBOX.ops"));
        let no_actor = routed(&["--authorization"]).unwrap_err().to_string();
        assert!(no_actor.contains("--actor"), "{no_actor}");
        let dotted = routed(&["--authorization", "--actor", "a.b"]).unwrap_err();
        assert!(dotted.to_string().contains("1 to 64"), "{dotted}");
    }

    #[test]
    fn fresh_command_ids_are_uuid_v7_and_differ() {
        let argv = ["close-workstation", "--workstation-id", W1];
        let a = parse(&argv).unwrap().envelope().unwrap().command_id;
        let b = parse(&argv).unwrap().envelope().unwrap().command_id;
        assert_ne!(a, b);
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 7);
    }

    const ENVELOPE_JSON: &str = r#"{
        "command_id": "0190a6d4-0000-7000-8000-0000000000aa",
        "expected_version": "0",
        "actor": "mengkeju",
        "correlation_id": "transfer-42",
        "appoint_post": {
            "post_id": "7e9a1000-0003-4000-8000-000000000001",
            "commissioner_id": "7e9a1000-0001-4000-8000-000000000001",
            "workstation_id": "7e9a1000-0002-4000-8000-000000000001",
            "serving_city": "150200",
            "role": "稀土材料专家",
            "hours_per_month": 40,
            "start_date": "2026-01-01",
            "end_date": "2027-12-31"
        }
    }"#;

    #[test]
    fn a_whole_envelope_in_json_is_sent_as_written() {
        let envelope = parse(&["--json", ENVELOPE_JSON])
            .unwrap()
            .envelope()
            .unwrap();
        assert_eq!(envelope.command_id, "0190a6d4-0000-7000-8000-0000000000aa");
        assert_eq!(envelope.expected_version, Some(0));
        assert_eq!(envelope.actor, "mengkeju");
        assert_eq!(envelope.correlation_id, "transfer-42");
        let Some(C::AppointPost(post)) = envelope.command else {
            panic!("not an appoint_post: {:?}", envelope.command);
        };
        assert_eq!(post.post_id, P1);
        assert_eq!(post.serving_city, "150200");
        assert_eq!(post.role, "稀土材料专家");
        assert_eq!(post.hours_per_month, 40);
        assert_eq!(post.end_date, "2027-12-31");
    }

    #[test]
    fn flags_override_the_json_envelopes_metadata() {
        let envelope = parse(&[
            "--json",
            ENVELOPE_JSON,
            "--actor",
            "ops",
            "--expected-version",
            "7",
        ])
        .unwrap()
        .envelope()
        .unwrap();
        assert_eq!(envelope.actor, "ops");
        assert_eq!(envelope.expected_version, Some(7));
        assert_eq!(envelope.command_id, "0190a6d4-0000-7000-8000-0000000000aa");
        assert_eq!(envelope.correlation_id, "transfer-42");
    }

    #[test]
    fn a_json_envelope_may_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("envelope.json");
        std::fs::write(&path, ENVELOPE_JSON).unwrap();
        let source = format!("@{}", path.display());
        let envelope = parse(&["--json", &source]).unwrap().envelope().unwrap();
        assert!(matches!(envelope.command, Some(C::AppointPost(_))));
    }

    #[test]
    fn a_json_envelope_without_command_id_gets_a_fresh_one() {
        let json = r#"{"end_post": {"post_id": "7e9a1000-0003-4000-8000-000000000001", "end_date": "2026-10-31"}}"#;
        let envelope = parse(&["--json", json]).unwrap().envelope().unwrap();
        assert_eq!(envelope.command_id.len(), 36);
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_sent() {
        let cases: [(&[&str], &str); 5] = [
            (&[], "say what to send"),
            (
                &[
                    "--json",
                    ENVELOPE_JSON,
                    "close-workstation",
                    "--workstation-id",
                    W1,
                ],
                "not both",
            ),
            (&["--json", r#"{"command_id": "x"}"#], "carries no command"),
            (&["--json", "{not json"], "is not a CommandEnvelope"),
            (
                &["--json", "@/nonexistent/envelope.json"],
                "reading the envelope",
            ),
        ];
        for (argv, message) in cases {
            let error = parse(argv).unwrap().envelope().unwrap_err();
            assert!(
                format!("{error:#}").contains(message),
                "{argv:?}: {error:#}"
            );
        }
    }

    #[test]
    fn clap_refuses_missing_required_flags_and_unknown_kinds() {
        let cases: [&[&str]; 4] = [
            &["appoint-post", "--post-id", P1],
            &[
                "register-commissioner",
                "--commissioner-id",
                C1,
                "--name",
                "x",
                "--home-city",
                "150100",
                "--employer",
                "y",
                "--kind",
                "company",
            ],
            &[
                "update-commissioner-profile",
                "--commissioner-id",
                C1,
                "--expertise",
                "a",
                "--clear-expertise",
            ],
            &[
                "change-workstation-capacity",
                "--workstation-id",
                W1,
                "--capacity",
                "-1",
            ],
        ];
        for argv in cases {
            assert!(parse(argv).is_err(), "{argv:?}");
        }
    }

    #[test]
    fn answers_print_as_a_table_line_or_a_rejection_line() {
        let accepted = pb::CommandResult {
            command_id: s("c"),
            outcome: Some(pb::command_result::Outcome::Accepted(pb::Accepted {
                events: vec![
                    pb::WrittenEvent {
                        stream_id: format!("post-{P1}"),
                        stream_version: 1,
                        global_position: 41,
                        event_id: s("e1"),
                    },
                    pb::WrittenEvent {
                        stream_id: format!("post-{P1}"),
                        stream_version: 12,
                        global_position: 142,
                        event_id: s("e2"),
                    },
                ],
            })),
        };
        assert_eq!(
            format_result(&accepted),
            format!(
                "accepted\n\
                 {:<41}  version  position  event id\n\
                 post-{P1}        1        41  e1\n\
                 post-{P1}       12       142  e2\n",
                "stream"
            )
        );
        assert_eq!(exit_code(&accepted).unwrap(), 0);

        let rejected = pb::CommandResult {
            command_id: s("c"),
            outcome: Some(pb::command_result::Outcome::Rejected(pb::Rejected {
                code: pb::RejectCode::RuleViolated as i32,
                rule: s("HOURS_OVER_LIMIT"),
                message: s(
                    "commissioner 陈立新 would hold 90 hours/month on 2026-06-01; the limit is 80",
                ),
            })),
        };
        assert_eq!(
            format_result(&rejected),
            "rejected RULE_VIOLATED HOURS_OVER_LIMIT: commissioner 陈立新 would hold 90 hours/month on 2026-06-01; the limit is 80\n"
        );
        assert_eq!(exit_code(&rejected).unwrap(), 2);

        let empty = pb::CommandResult {
            command_id: s("c"),
            outcome: None,
        };
        assert!(exit_code(&empty).is_err());
    }
}
