//! `tepai ops inspect`: print events of a stream, a position range or a
//! command as readable JSON, with all their metadata and the payload
//! decoded. Reads through a read-only connection, so it is safe next to a
//! running node.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use prost::Message as _;
use uuid::Uuid;

use super::read::{decode_for_display, is_broken_pipe, open_reader, scan_range, EventJson};
use crate::config::NodeOptions;
use crate::store::chain::hash_to_hex;
use crate::store::{Position, StoreReader, StoredEvent};
use crate::wire::pb::{self, event_envelope::Event as PbEvent};

/// Most events one `--position … --to …` prints; beyond that, `export` is
/// the tool (it streams to a file and reports progress).
pub const MAX_RANGE: u64 = 100_000;

/// `tepai ops inspect`: print events as JSON.
#[derive(Debug, Clone, clap::Args)]
#[command(
    group(clap::ArgGroup::new("target").required(true).multiple(false)),
    after_help = "Example: tepai ops inspect --stream commissioner-0190f3a2-6c1e-7d2a-9b1e-2f4c5d6e7f80\n\
         \x20        tepai ops inspect --position 120 --to 140 --output ndjson | jq .event\n\
         \x20        tepai ops inspect --command 0190f3a2-0000-7000-8000-000000000001"
)]
pub struct InspectArgs {
    /// Where the store is.
    #[command(flatten)]
    pub node: NodeOptions,
    /// Every event of this stream (`commissioner-<id>`, `workstation-<id>`,
    /// `post-<id>`), in stream order.
    #[arg(long, group = "target", value_name = "ID")]
    pub stream: Option<String>,
    /// The event at this global position (the first of a range with --to).
    #[arg(long, group = "target", value_name = "N")]
    pub position: Option<Position>,
    /// Last position of the range, inclusive; at most 100000 events.
    #[arg(long, requires = "position", value_name = "M")]
    pub to: Option<Position>,
    /// The stored answer to this command id and the events it wrote.
    #[arg(long, group = "target", value_name = "ID")]
    pub command: Option<String>,
    /// How to print.
    #[arg(long, value_enum, default_value_t)]
    pub output: InspectOutput,
}

/// How inspect prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InspectOutput {
    /// One indented JSON object per event, for reading.
    #[default]
    Json,
    /// One JSON object per line, for `jq -c` and `grep`.
    Ndjson,
}

/// Prints what `args` asks for; exit 2 when it does not exist.
pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let mut out = BufWriter::new(io::stdout().lock());
    let printed = print(&args, &mut out).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match printed {
        // `tepai ops inspect … | head` is a normal way to look: stop quietly.
        Err(error) if is_broken_pipe(&error) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

/// Exit code when the stream, position or command asked for does not
/// exist, or the range asked for is not one inspect prints (as clap's usage errors).
const EXIT_NOTHING_TO_SHOW: u8 = 2;

/// The region's clock (UTC+8), so times read as the operators' local time.
const REGION_OFFSET_SECONDS: i32 = 8 * 3600;

/// An event as inspect shows it.
#[derive(serde::Serialize)]
struct InspectedEvent {
    position: Position,
    event_id: String,
    stream_id: String,
    stream_version: u64,
    event_type: String,
    schema_version: u32,
    /// Unix milliseconds, as stored and published.
    recorded_at: i64,
    /// The same instant for people, in the region's time zone.
    recorded_at_rfc3339: String,
    correlation_id: String,
    causation_id: String,
    actor: String,
    hash: String,
    #[serde(serialize_with = "serialize_event")]
    event: Option<PbEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_error: Option<String>,
}

impl InspectedEvent {
    fn new(stored: StoredEvent) -> Self {
        let (event, event_error) = match decode_for_display(&stored.payload) {
            Ok(event) => (Some(event), None),
            Err(error) => (None, Some(error)),
        };
        Self {
            position: stored.position,
            event_id: stored.event_id.hyphenated().to_string(),
            recorded_at_rfc3339: rfc3339(stored.recorded_at),
            recorded_at: stored.recorded_at,
            hash: hash_to_hex(&stored.hash),
            stream_id: stored.stream_id,
            stream_version: stored.stream_version,
            event_type: stored.event_type,
            schema_version: stored.schema_version,
            correlation_id: stored.correlation_id,
            causation_id: stored.causation_id,
            actor: stored.actor,
            event,
            event_error,
        }
    }
}

fn serialize_event<S: serde::Serializer>(
    event: &Option<PbEvent>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&event.as_ref().map(EventJson), serializer)
}

/// What `--command` prints: the answer and the events behind it.
#[derive(serde::Serialize)]
struct InspectedCommand {
    command_id: String,
    result: pb::CommandResult,
    events: Vec<InspectedEvent>,
}

fn print(args: &InspectArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let reader = open_reader(&args.node)?;
    let format = args.output;
    if let Some(stream) = &args.stream {
        let events = reader.read_stream(stream)?;
        if events.is_empty() {
            return refuse(&format!(
                "no stream {stream} in the store (stream ids look like commissioner-<id>, \
                 workstation-<id>, post-<id>)"
            ));
        }
        for event in events {
            write_value(out, format, &InspectedEvent::new(event))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(first) = args.position {
        let last = args.to.unwrap_or(first);
        if first == 0 {
            return refuse("--position 0: positions count from 1");
        }
        if last < first {
            return refuse(&format!("--to {last} is before --position {first}"));
        }
        let count = last - first + 1;
        if count > MAX_RANGE {
            return refuse(&format!(
                "--position {first} --to {last} asks for {count} events; inspect prints at \
                 most {MAX_RANGE} at once (use `tepai ops export --from {first} --to {last}` \
                 for more)"
            ));
        }
        let head = reader.head()?.position;
        if first > head {
            return refuse(&format!(
                "no event at position {first}: the store ends at position {head}"
            ));
        }
        if last > head {
            eprintln!("note: the store ends at position {head}; printing up to there");
        }
        scan_range(&reader, first, last, |event| {
            write_value(out, format, &InspectedEvent::new(event))
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(command) = &args.command {
        let Ok(command_id) = Uuid::try_parse(command) else {
            return refuse(&format!("--command {command}: a command id is a UUID"));
        };
        let Some(bytes) = reader.command_result(&command_id)? else {
            return refuse(&format!(
                "no command {command_id} in the command log (it was never received, or the \
                 store was imported and the command was rejected)"
            ));
        };
        let result = pb::CommandResult::decode(bytes.as_slice())
            .with_context(|| format!("the stored result of command {command_id} is unreadable"))?;
        let events = command_events(&reader, &command_id, &result)?;
        let shown = InspectedCommand {
            command_id: command_id.hyphenated().to_string(),
            result,
            events,
        };
        write_value(out, format, &shown)?;
        return Ok(ExitCode::SUCCESS);
    }
    // clap's required group makes this unreachable; say so rather than panic.
    bail!("name one of --stream, --position or --command")
}

/// The events whose causation id is `command_id`. The accepted result names
/// their positions, and a command's events are contiguous, so this reads
/// one short range instead of scanning the store.
fn command_events(
    reader: &StoreReader,
    command_id: &Uuid,
    result: &pb::CommandResult,
) -> anyhow::Result<Vec<InspectedEvent>> {
    let Some(pb::command_result::Outcome::Accepted(accepted)) = &result.outcome else {
        return Ok(Vec::new());
    };
    let positions = accepted.events.iter().map(|e| e.global_position);
    let (Some(first), Some(last)) = (positions.clone().min(), positions.max()) else {
        return Ok(Vec::new());
    };
    if last - first >= MAX_RANGE {
        bail!("the stored result of command {command_id} spans positions {first}..={last}, more than a command writes");
    }
    let causation = command_id.hyphenated().to_string();
    let mut events = Vec::new();
    scan_range(reader, first, last, |event| {
        if event.causation_id == causation {
            events.push(InspectedEvent::new(event));
        }
        Ok(())
    })?;
    Ok(events)
}

fn write_value(
    out: &mut impl Write,
    format: InspectOutput,
    value: &impl serde::Serialize,
) -> anyhow::Result<()> {
    match format {
        InspectOutput::Json => serde_json::to_writer_pretty(&mut *out, value),
        InspectOutput::Ndjson => serde_json::to_writer(&mut *out, value),
    }
    // Into io::Error so a closed stdout is recognised as a broken pipe.
    .map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Exit 2 with `message`: there is nothing to show for what was asked.
fn refuse(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(EXIT_NOTHING_TO_SHOW))
}

/// `recorded_at` as RFC 3339 with milliseconds, in UTC+8.
fn rfc3339(unix_ms: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(REGION_OFFSET_SECONDS);
    match (chrono::DateTime::from_timestamp_millis(unix_ms), offset) {
        (Some(utc), Some(offset)) => utc
            .with_timezone(&offset)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
        // Out of chrono's range: only a corrupt row gets here; the ms stay.
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_at_reads_in_the_regions_time_zone() {
        assert_eq!(rfc3339(1_740_758_400_000), "2025-03-01T00:00:00.000+08:00");
        assert_eq!(rfc3339(i64::MAX), "");
    }
}
