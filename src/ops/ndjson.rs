//! `tepai ops export` and `tepai ops import`: the event history as NDJSON,
//! one event per line.
//!
//! A line carries every stored column of its event — the hashed ones, the
//! chained `hash` in hex and the raw `payload` in base64 — so an import can
//! rebuild the store byte for byte and prove it did: each line's hash must
//! equal the hash the chain gives the row. The `event` field is the payload
//! decoded to the proto3 JSON mapping, for people and `jq`; import ignores it.
//!
//! Import rebuilds the command log of accepted commands from the events'
//! causation ids, so a command resent after a move still gets its first
//! answer. Rejections wrote no event and are not in the file: a rejected
//! command resent to the imported store is decided afresh.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use data_encoding::{DecodeKind, BASE64};
use prost::Message as _;
use uuid::Uuid;

use super::read::{decode_for_display, is_broken_pipe, open_reader, scan_range, EventJson};
use crate::config::NodeOptions;
use crate::store::chain::{self, hash_from_hex, hash_to_hex};
use crate::store::{
    CommandRecord, EventStore, NewEvent, Position, StoreOptions, StoreReader, StoredEvent,
};
use crate::wire;
use crate::wire::pb;

/// `tepai ops export`: write the event history as NDJSON.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example: tepai ops export --data-dir /var/lib/tepai --file events.ndjson\n\
         \x20        tepai ops export --from 1000 --to 2000 | jq -c .event"
)]
pub struct ExportArgs {
    /// Where the store is.
    #[command(flatten)]
    pub node: NodeOptions,
    /// First position to write (positions count from 1). A file that does
    /// not start at 1 is for reading, not for `import`.
    #[arg(long, default_value_t = 1)]
    pub from: Position,
    /// Last position to write, inclusive. [default: the head]
    #[arg(long)]
    pub to: Option<Position>,
    /// Where to write; `-` is stdout. A file is written beside its final name
    /// and renamed when complete, so a failed export leaves no partial file
    /// that looks whole.
    #[arg(long, value_name = "PATH|-", default_value = "-")]
    pub file: String,
}

/// `tepai ops import`: load an export into an empty store.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example: tepai ops export --data-dir old --file events.ndjson && \\\n\
         \x20        tepai ops import --data-dir new --file events.ndjson"
)]
pub struct ImportArgs {
    /// Where the store is; it must hold no event.
    #[command(flatten)]
    pub node: NodeOptions,
    /// The export to read; `-` is stdin.
    #[arg(long, value_name = "PATH|-", default_value = "-")]
    pub file: String,
}

/// Writes positions `--from..=--to` as NDJSON.
pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    if args.from == 0 {
        bail!("--from 0: positions count from 1");
    }
    if let Some(to) = args.to {
        if to < args.from {
            bail!("--to {to} is before --from {}", args.from);
        }
    }
    let reader = open_reader(&args.node)?;
    let head = reader.head()?.position;
    let last = args.to.map_or(head, |to| to.min(head));

    let written = if args.file == "-" {
        let mut out = BufWriter::new(io::stdout().lock());
        let written = write_export(&reader, args.from, last, &mut out)
            .and_then(|n| out.flush().map(|()| n).map_err(anyhow::Error::from));
        match written {
            Ok(n) => n,
            // `tepai ops export | head` is a normal way to look: stop quietly.
            Err(error) if is_broken_pipe(&error) => return Ok(ExitCode::SUCCESS),
            Err(error) => return Err(error),
        }
    } else {
        export_to_file(&reader, args.from, last, Path::new(&args.file))?
    };
    let destination = if args.file == "-" {
        "stdout"
    } else {
        args.file.as_str()
    };
    if written == 0 {
        eprintln!(
            "exported no events: the store ends at position {head}, the range starts at {}",
            args.from
        );
    } else {
        eprintln!(
            "exported {written} events (positions {}..={}) to {destination}",
            args.from,
            args.from + written - 1
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads an export into an empty store, checking positions and hashes line
/// by line, and prints the count and the head hash.
pub fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    // Open the input first: a mistyped file name must not leave a new,
    // empty store behind.
    let input: Box<dyn BufRead> = if args.file == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(&args.file).with_context(|| format!("opening {}", args.file))?;
        Box::new(BufReader::new(file))
    };
    let path = args.node.store_path();
    let mut store = EventStore::open(&path, StoreOptions::default())
        .with_context(|| format!("opening the event store {}", path.display()))?;
    let head = store.head();
    if head.position != 0 {
        bail!(
            "refusing to import into {}: it already holds events up to position {} \
             (head hash {}); import only into an empty store",
            path.display(),
            head.position,
            hash_to_hex(&head.hash)
        );
    }

    let mut importer = Importer::new(&mut store);
    let outcome = importer.read_all(input);
    let (imported, commands) = (importer.imported, importer.commands);
    let head = store.head();
    if let Err(error) = outcome {
        // The cause first, then what it left behind.
        if head.position == 0 {
            bail!("{error:#}\nnothing was imported");
        }
        bail!(
            "{error:#}\npositions 1..={} from earlier batches were imported and stay in {}; \
             remove that store before importing again",
            head.position,
            path.display()
        );
    }
    if imported == 0 {
        println!("the file holds no events; nothing imported");
    } else {
        println!(
            "imported {imported} events (positions 1..={}) and {commands} command results into {}",
            head.position,
            path.display()
        );
        println!("head hash {}", hash_to_hex(&head.hash));
    }
    Ok(ExitCode::SUCCESS)
}

/// Events per `append` call, i.e. per transaction and fsync: large enough
/// that the fsyncs do not dominate, small enough that a refused line throws
/// away little work.
const BATCH_EVENTS: usize = 5_000;

/// A batch is cut at a command boundary so a command's events and its
/// command record commit together; only a command writing more than this
/// many events (none does) forces a cut inside it.
const MAX_BATCH_EVENTS: usize = 50_000;

/// Progress goes to stderr after every this many events.
const PROGRESS_EVERY: u64 = 100_000;

// ---- export ------------------------------------------------------------

/// One exported line. Field order is part of the format: two exports of the
/// same history are byte-identical.
#[derive(serde::Serialize)]
struct ExportLine<'a> {
    position: Position,
    event_id: String,
    stream_id: &'a str,
    stream_version: u64,
    event_type: &'a str,
    schema_version: u32,
    correlation_id: &'a str,
    causation_id: &'a str,
    actor: &'a str,
    recorded_at: i64,
    hash: String,
    payload: String,
    event: Option<EventJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_error: Option<String>,
}

/// Writes to `PATH.partial`, then renames it to `path`.
fn export_to_file(
    reader: &StoreReader,
    first: Position,
    last: Position,
    path: &Path,
) -> anyhow::Result<u64> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut out = BufWriter::new(file);
    let result = write_export(reader, first, last, &mut out).and_then(|n| {
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
            .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
        Ok(n)
    });
    if result.is_err() {
        // Best effort: the error being reported matters more than the leftover.
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Streams the range through `for_each_from`, so the history is never all
/// in memory; the scan is one statement and so one consistent snapshot.
fn write_export(
    reader: &StoreReader,
    first: Position,
    last: Position,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let mut written: u64 = 0;
    scan_range(reader, first, last, |event| {
        write_export_line(out, &event)?;
        written += 1;
        if written.is_multiple_of(PROGRESS_EVERY) {
            eprintln!("exported {written} events (position {})", event.position);
        }
        Ok(())
    })?;
    Ok(written)
}

fn write_export_line(out: &mut impl Write, event: &StoredEvent) -> io::Result<()> {
    let decoded = decode_for_display(&event.payload);
    let line = ExportLine {
        position: event.position,
        event_id: event.event_id.hyphenated().to_string(),
        stream_id: &event.stream_id,
        stream_version: event.stream_version,
        event_type: &event.event_type,
        schema_version: event.schema_version,
        correlation_id: &event.correlation_id,
        causation_id: &event.causation_id,
        actor: &event.actor,
        recorded_at: event.recorded_at,
        hash: hash_to_hex(&event.hash),
        payload: base64_encode(&event.payload),
        event: decoded.as_ref().ok().map(EventJson),
        event_error: decoded.as_ref().err().cloned(),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

// ---- import ------------------------------------------------------------

/// One imported line: the stored columns. `event` (and anything else) is
/// ignored, so editing it for reading changes nothing.
#[derive(serde::Deserialize)]
struct ImportLine {
    position: Position,
    event_id: String,
    stream_id: String,
    stream_version: u64,
    event_type: String,
    schema_version: u32,
    correlation_id: String,
    causation_id: String,
    actor: String,
    recorded_at: i64,
    hash: String,
    payload: String,
}

/// The events of one command seen so far: they become its command record.
struct CommandGroup {
    /// The causation id as stored: a change of it starts the next group.
    causation_id: String,
    /// The command id, when the causation id is one (the processor always
    /// writes one; anything else gets no command record).
    command_id: Option<Uuid>,
    /// Line and position of the group's first event, for messages.
    first_line: usize,
    first_position: Position,
    /// The processor stamps a command's record and events with one clock.
    recorded_at: i64,
    written: Vec<pb::WrittenEvent>,
}

/// Checks lines and appends them in batches.
struct Importer<'s> {
    store: &'s mut EventStore,
    /// Position the next line must have.
    next_position: Position,
    /// Hash of the last line accepted: the predecessor of the next.
    prev_hash: [u8; 32],
    batch: Vec<NewEvent>,
    records: Vec<CommandRecord>,
    /// Command ids recorded in `records`; earlier batches are in the store.
    batch_commands: HashSet<Uuid>,
    group: Option<CommandGroup>,
    imported: u64,
    commands: u64,
}

impl<'s> Importer<'s> {
    fn new(store: &'s mut EventStore) -> Self {
        Self {
            store,
            next_position: 1,
            prev_hash: chain::GENESIS,
            batch: Vec::with_capacity(BATCH_EVENTS),
            records: Vec::new(),
            batch_commands: HashSet::new(),
            group: None,
            imported: 0,
            commands: 0,
        }
    }

    fn read_all(&mut self, input: impl BufRead) -> anyhow::Result<()> {
        for (index, line) in input.lines().enumerate() {
            let number = index + 1;
            let line = line.with_context(|| format!("reading line {number}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: ImportLine = serde_json::from_str(&line)
                .with_context(|| format!("line {number}: not a line of a tepai export"))?;
            self.accept(number, parsed)?;
        }
        self.close_group()?;
        self.flush()
    }

    fn accept(&mut self, number: usize, line: ImportLine) -> anyhow::Result<()> {
        let position = line.position;
        if position != self.next_position {
            if self.next_position == 1 {
                bail!(
                    "line {number}: the file starts at position {position}, but an import \
                     rebuilds the whole chain and must start at position 1; export without --from"
                );
            }
            bail!(
                "line {number}: position {position} follows position {}; positions must run \
                 1, 2, 3, … without gaps or repeats",
                self.next_position - 1
            );
        }
        let at = || format!("line {number} (position {position})");
        let event_id = Uuid::try_parse(&line.event_id)
            .with_context(|| format!("{}: event_id is not a UUID", at()))?;
        let payload = base64_decode(&line.payload)
            .map_err(|reason| anyhow!("{}: payload is not base64: {reason}", at()))?;
        let hash = hash_from_hex(&line.hash)
            .map_err(|reason| anyhow!("{}: hash is not 64 hex digits: {reason}", at()))?;
        let event = NewEvent {
            position,
            event_id,
            stream_id: line.stream_id,
            stream_version: line.stream_version,
            event_type: line.event_type,
            schema_version: line.schema_version,
            payload,
            correlation_id: line.correlation_id,
            causation_id: line.causation_id,
            actor: line.actor,
            recorded_at: line.recorded_at,
        };
        // The same computation the store makes on append: a match proves
        // the row, and everything before it, is what the source stored.
        if chain::link_hash(&self.prev_hash, &event.fields()) != hash {
            bail!(
                "{}: the hash does not match the event's columns and the previous line's \
                 hash; the line was altered, or the file is not an unchanged tepai export",
                at()
            );
        }
        // A processor must be able to load what is imported.
        wire::decode_event_payload(&event.payload)
            .with_context(|| format!("{}: the payload is not an event tepai can read", at()))?;

        let same_command = self
            .group
            .as_ref()
            .is_some_and(|group| group.causation_id == event.causation_id);
        if !same_command {
            self.close_group()?;
            if self.batch.len() >= BATCH_EVENTS {
                self.flush()?;
            }
            self.group = Some(CommandGroup {
                causation_id: event.causation_id.clone(),
                command_id: Uuid::try_parse(&event.causation_id).ok(),
                first_line: number,
                first_position: position,
                recorded_at: event.recorded_at,
                written: Vec::new(),
            });
        }
        if let Some(group) = self.group.as_mut() {
            group.written.push(pb::WrittenEvent {
                stream_id: event.stream_id.clone(),
                stream_version: event.stream_version,
                global_position: position,
                event_id: event.event_id.hyphenated().to_string(),
            });
        }
        self.batch.push(event);
        self.prev_hash = hash;
        self.next_position += 1;
        if self.batch.len() >= MAX_BATCH_EVENTS {
            self.flush()?;
        }
        Ok(())
    }

    /// Turns the open group into the accepted result its command returned.
    fn close_group(&mut self) -> anyhow::Result<()> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        let Some(command_id) = group.command_id else {
            return Ok(());
        };
        let at = format!(
            "line {} (position {})",
            group.first_line, group.first_position
        );
        if !self.batch_commands.insert(command_id) {
            bail!(
                "{at}: command {command_id} already wrote events earlier in the file; \
                 the events of one command must be contiguous"
            );
        }
        if self.store.command_result(&command_id)?.is_some() {
            bail!(
                "{at}: command {command_id} is already in the command log (from earlier \
                 in the file, or from before the import); the events of one command must \
                 be contiguous"
            );
        }
        let result = wire::accepted(command_id.hyphenated().to_string(), group.written);
        self.records.push(CommandRecord {
            command_id,
            result: result.encode_to_vec(),
            recorded_at: group.recorded_at,
        });
        Ok(())
    }

    /// Appends the batch and its command records in one transaction.
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() && self.records.is_empty() {
            return Ok(());
        }
        let first = self.batch.first().map_or(0, |e| e.position);
        let head = self
            .store
            .append(&self.batch, &self.records)
            .with_context(|| {
                format!(
                    "appending positions {first}..={} (nothing of them was written)",
                    self.next_position - 1
                )
            })?;
        // Each line was checked against the chain already; this catches a
        // store that hashes differently from this build's `chain`.
        if head.hash != self.prev_hash {
            bail!(
                "the store computed hash {} at position {}, the file says {}",
                hash_to_hex(&head.hash),
                head.position,
                hash_to_hex(&self.prev_hash)
            );
        }
        let before = self.imported;
        self.imported += self.batch.len() as u64;
        self.commands += self.records.len() as u64;
        if self.imported / PROGRESS_EVERY > before / PROGRESS_EVERY {
            eprintln!("imported {} events", self.imported);
        }
        self.batch.clear();
        self.records.clear();
        self.batch_commands.clear();
        Ok(())
    }
}

// ---- payload spelling --------------------------------------------------

/// Standard base64 (RFC 4648 §4) with padding.
fn base64_encode(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Strict inverse of [`base64_encode`]: padding required, only at the end,
/// and unused bits zero, so every payload has exactly one spelling.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    // `BASE64` decodes concatenated padded blocks ("Zg==Zg=="), which this
    // encoder never writes: a second spelling of the same bytes.
    let last_block = text.len().saturating_sub(4);
    if text.as_bytes()[..last_block].contains(&b'=') {
        return Err("padding in the wrong place".into());
    }
    BASE64
        .decode(text.as_bytes())
        .map_err(|error| match error.kind {
            DecodeKind::Length => format!("length {} is not a multiple of 4", text.len()),
            DecodeKind::Symbol => {
                let byte = text.as_bytes().get(error.position).copied().unwrap_or(b'?');
                format!("{:?} is not a base64 digit", char::from(byte))
            }
            DecodeKind::Trailing => "non-zero bits after the last byte".into(),
            DecodeKind::Padding => "padding in the wrong place".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).as_deref(), Ok(plain.as_bytes()));
        }
    }

    #[test]
    fn base64_round_trips_every_byte_value() {
        let bytes: Vec<u8> = (0..=255).chain((0..=255).rev()).collect();
        for len in 0..bytes.len() {
            let encoded = base64_encode(&bytes[..len]);
            assert_eq!(base64_decode(&encoded).as_deref(), Ok(&bytes[..len]));
        }
    }

    #[test]
    fn base64_refuses_what_it_would_not_write() {
        let refused = [
            ("Zg=", "length 3 is not a multiple of 4"),
            ("Zg", "length 2 is not a multiple of 4"),
            ("Zm9v\n", "length 5 is not a multiple of 4"),
            ("Z===", "padding in the wrong place"),
            ("Zm=v", "'=' is not a base64 digit"),
            ("Zg==Zg==", "padding in the wrong place"),
            ("Zh==", "non-zero bits after the last byte"),
            ("Zm9*", "'*' is not a base64 digit"),
        ];
        for (bad, reason) in refused {
            assert_eq!(base64_decode(bad), Err(reason.to_owned()), "{bad:?}");
        }
    }
}
