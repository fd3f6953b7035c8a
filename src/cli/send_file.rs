//! `tepai send --file`: many commands from NDJSON, one `CommandEnvelope` in
//! proto3 JSON per line (what `tepai send --json` takes), submitted in
//! batches on `tepai.cmd.submit_batch`. One result per line goes to
//! `--results` (or stdout), in input order, with its line number; a line
//! that is not an envelope is reported there and on stderr, and the rest
//! still goes. Every line must carry its own `command_id`, so running the
//! same file again after an interruption resends the same ids and tepai
//! answers the commands it already decided from its log, writing nothing
//! twice.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal as _, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message as _;

use super::send::SendArgs;
use crate::bus::command_service::{actor_of_subject, actor_submit_batch_subject};
use crate::bus::{self, SUBMIT_BATCH_SUBJECT};
use crate::config::NatsOptions;
use crate::wire::pb;
use crate::wire::MAX_ENVELOPE_BYTES;

/// Exit code when any command was rejected or any line was malformed.
const EXIT_REJECTED: u8 = 2;

/// How long one batch may take to be answered: a full batch waits for its
/// commit (and, on a cluster, JetStream's quorum), and may queue behind
/// other producers' batches.
const BATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest line read; a longer one is reported malformed and skipped. No
/// envelope tepai takes comes near it.
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Reads `source` (a path, or `-` for stdin), sends it in batches and
/// writes the results; 0 when every command was accepted, 2 otherwise.
pub async fn run(args: &SendArgs, source: &str) -> anyhow::Result<ExitCode> {
    let (subject, nats) = route(args)?;
    let (input, length): (Box<dyn Read>, Option<u64>) = if source == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = std::fs::File::open(source).with_context(|| format!("opening {source}"))?;
        let length = file.metadata().ok().map(|m| m.len());
        (Box::new(file), length)
    };
    let output: Box<dyn Write> = match &args.results {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("creating the results file {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let client = bus::connect(&nats, "tepai-send")
        .await
        .context("the command service is not reachable; nothing was sent")?;
    let max_bytes = args.max_batch_bytes.min(client.server_info().max_payload);
    let mut sender = Sender {
        client,
        subject,
        actor: args.actor.clone(),
        correlation_id: args.correlation_id.clone(),
        batch_size: args.batch_size,
        max_bytes,
        pending: Vec::new(),
        pending_bytes: 0,
        slots: Vec::new(),
        output: std::io::BufWriter::new(output),
        tally: Tally::default(),
        progress: progress_bar(length),
    };
    sender.send_all(BufReader::new(input)).await?;
    sender.progress.finish_and_clear();
    eprintln!("{}", sender.tally.summary());
    Ok(ExitCode::from(if sender.tally.all_accepted() {
        0
    } else {
        EXIT_REJECTED
    }))
}

/// What the run ended with, for the summary and the exit code.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Commands accepted (first time or answered again from the log).
    pub accepted: u64,
    /// Commands rejected, by code.
    pub rejected: BTreeMap<String, u64>,
    /// Lines that were not an envelope, never sent.
    pub malformed: u64,
}

impl Tally {
    fn count(&mut self, result: &pb::CommandResult) {
        match &result.outcome {
            Some(pb::command_result::Outcome::Accepted(_)) => self.accepted += 1,
            Some(pb::command_result::Outcome::Rejected(r)) => {
                let code = pb::RejectCode::try_from(r.code)
                    .map_or_else(|_| r.code.to_string(), |c| c.as_str_name().to_owned());
                *self.rejected.entry(code).or_default() += 1;
            }
            None => *self.rejected.entry("NO_OUTCOME".into()).or_default() += 1,
        }
    }

    fn all_accepted(&self) -> bool {
        self.rejected.is_empty() && self.malformed == 0
    }

    /// One line: `12 accepted, 2 rejected (NOT_FOUND 1, UNAVAILABLE 1), 1 malformed`.
    pub fn summary(&self) -> String {
        let rejected: u64 = self.rejected.values().sum();
        let mut line = format!("{} accepted, {rejected} rejected", self.accepted);
        if rejected > 0 {
            let codes: Vec<String> = self
                .rejected
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect();
            line.push_str(&format!(" ({})", codes.join(", ")));
        }
        line.push_str(&format!(", {} malformed", self.malformed));
        if self.rejected.contains_key("UNAVAILABLE") {
            line.push_str("; UNAVAILABLE commands were not decided: run the same file again");
        }
        line
    }
}

/// A line's place in the output, until its batch is answered.
enum Slot {
    /// Sent (or about to be) as the batch's next command.
    Command { line: u64 },
    /// Not an envelope; never sent.
    Malformed { line: u64, why: String },
}

struct Sender {
    client: async_nats::Client,
    subject: String,
    actor: Option<String>,
    correlation_id: Option<String>,
    batch_size: usize,
    max_bytes: usize,
    pending: Vec<pb::CommandEnvelope>,
    pending_bytes: usize,
    /// Every line since the last batch was answered, in order.
    slots: Vec<Slot>,
    output: std::io::BufWriter<Box<dyn Write>>,
    tally: Tally,
    progress: ProgressBar,
}

impl Sender {
    async fn send_all(&mut self, mut input: impl BufRead) -> anyhow::Result<()> {
        let mut line = 0u64;
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            let read = (&mut input)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buffer)
                .context("reading the commands")?;
            if read == 0 {
                break;
            }
            line += 1;
            self.progress.inc(read as u64);
            let parsed = if buffer.len() > MAX_LINE_BYTES && buffer.last() != Some(&b'\n') {
                let skipped = skip_line(&mut input)?;
                self.progress.inc(skipped);
                Err(format!("the line is longer than {MAX_LINE_BYTES} bytes"))
            } else {
                match std::str::from_utf8(&buffer) {
                    Ok(text) if text.trim().is_empty() => continue,
                    Ok(text) => self.envelope(text),
                    Err(_) => Err("the line is not UTF-8".to_owned()),
                }
            };
            match parsed {
                Ok(envelope) => self.push(line, envelope).await?,
                Err(why) => {
                    self.progress
                        .suspend(|| eprintln!("line {line}: malformed: {why}"));
                    self.slots.push(Slot::Malformed { line, why });
                }
            }
        }
        self.flush().await
    }

    /// The line's envelope, with --actor and --correlation-id applied.
    fn envelope(&self, text: &str) -> Result<pb::CommandEnvelope, String> {
        let mut envelope = parse_line(text)?;
        if let Some(actor) = &self.actor {
            envelope.actor.clone_from(actor);
        }
        if let Some(correlation_id) = &self.correlation_id {
            envelope.correlation_id.clone_from(correlation_id);
        }
        let size = envelope.encoded_len();
        if size > MAX_ENVELOPE_BYTES {
            return Err(format!(
                "the envelope is {size} bytes; tepai takes at most {MAX_ENVELOPE_BYTES}"
            ));
        }
        Ok(envelope)
    }

    /// Adds a command to the batch, sending the batch first when the
    /// command would take it past its count or its bytes.
    async fn push(&mut self, line: u64, envelope: pb::CommandEnvelope) -> anyhow::Result<()> {
        let bytes = batch_entry_bytes(&envelope);
        if self.pending.len() >= self.batch_size || self.pending_bytes + bytes > self.max_bytes {
            self.flush().await?;
        }
        self.pending_bytes += bytes;
        self.pending.push(envelope);
        self.slots.push(Slot::Command { line });
        Ok(())
    }

    /// Sends the pending batch and writes the result of every line since
    /// the last one, in order.
    async fn flush(&mut self) -> anyhow::Result<()> {
        let commands = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let results = if commands.is_empty() {
            Vec::new()
        } else {
            self.send(commands).await?
        };
        let mut results = results.into_iter();
        for slot in std::mem::take(&mut self.slots) {
            let record = match slot {
                Slot::Malformed { line, why } => {
                    self.tally.malformed += 1;
                    serde_json::json!({ "line": line, "malformed": why })
                }
                Slot::Command { line } => {
                    let result = results
                        .next()
                        .context("the batch's answer has fewer results than commands")?;
                    self.tally.count(&result);
                    result_record(line, &result)?
                }
            };
            serde_json::to_writer(&mut self.output, &record)?;
            self.output.write_all(b"\n")?;
        }
        self.output.flush().context("writing the results")?;
        self.progress.set_message(self.tally.summary());
        Ok(())
    }

    /// One batch's results, one per command; a batch refused whole gives
    /// each of its commands the refusal.
    async fn send(
        &self,
        commands: Vec<pb::CommandEnvelope>,
    ) -> anyhow::Result<Vec<pb::CommandResult>> {
        let first = commands
            .first()
            .map(|c| c.command_id.clone())
            .unwrap_or_default();
        let ids: Vec<String> = commands.iter().map(|c| c.command_id.clone()).collect();
        let payload = pb::CommandBatch { commands }.encode_to_vec();
        let request = async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(BATCH_TIMEOUT));
        let reply = self
            .client
            .send_request(self.subject.clone(), request)
            .await
            .with_context(|| {
                format!(
                    "the batch starting with command {first} was not answered on {}; the results \
                     written so far stand. Run the same file again: tepai answers a repeated \
                     command id with its first answer and writes nothing twice",
                    self.subject
                )
            })?;
        let answer = pb::CommandBatchResult::decode(reply.payload)
            .context("the command service's answer is not a CommandBatchResult")?;
        if let Some(refused) = answer.rejected {
            return Ok(ids
                .into_iter()
                .map(|command_id| pb::CommandResult {
                    command_id,
                    outcome: Some(pb::command_result::Outcome::Rejected(refused.clone())),
                })
                .collect());
        }
        if answer.results.len() != ids.len() {
            bail!(
                "the command service answered {} results for a batch of {}",
                answer.results.len(),
                ids.len()
            );
        }
        Ok(answer.results)
    }
}

/// A result line: the line number and the `CommandResult` in proto3 JSON.
fn result_record(line: u64, result: &pb::CommandResult) -> anyhow::Result<serde_json::Value> {
    let mut record = serde_json::json!({ "line": line });
    if let (Some(record), serde_json::Value::Object(fields)) =
        (record.as_object_mut(), serde_json::to_value(result)?)
    {
        record.extend(fields);
    }
    Ok(record)
}

/// Bytes a command adds to an encoded `CommandBatch`: its own, its length
/// prefix and its one-byte field tag.
fn batch_entry_bytes(envelope: &pb::CommandEnvelope) -> usize {
    let len = envelope.encoded_len();
    1 + prost::encoding::encoded_len_varint(len as u64) + len
}

/// Reads past the rest of an overlong line; returns the bytes skipped.
fn skip_line(input: &mut impl BufRead) -> anyhow::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let available = input.fill_buf().context("reading the commands")?;
        if available.is_empty() {
            return Ok(skipped);
        }
        let (used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        input.consume(used);
        skipped += used as u64;
        if done {
            return Ok(skipped);
        }
    }
}

/// One line's envelope. It must name a command and its own `command_id`:
/// without one a rerun would send a new command instead of the same one.
pub fn parse_line(text: &str) -> Result<pb::CommandEnvelope, String> {
    let envelope: pb::CommandEnvelope = serde_json::from_str(text)
        .map_err(|e| format!("not a CommandEnvelope in proto3 JSON (protobuf field names): {e}"))?;
    if envelope.command.is_none() {
        return Err("the envelope carries no command".to_owned());
    }
    if envelope.command_id.is_empty() {
        return Err(
            "the envelope has no command_id; every line needs its own, so that running the file \
             again sends the same commands"
                .to_owned(),
        );
    }
    Ok(envelope)
}

/// The batch subject and how to connect for it: with authorization, the
/// actor's own subject and reply inboxes (--actor required, since every
/// command of a batch is its subject's actor's).
fn route(args: &SendArgs) -> anyhow::Result<(String, NatsOptions)> {
    let mut nats = args.nats.clone();
    if !args.authorization {
        return Ok((SUBMIT_BATCH_SUBJECT.to_owned(), nats));
    }
    let Some(actor) = args.actor.as_deref() else {
        bail!(
            "with --authorization and --file, say who you are: --actor (or TEPAI_ACTOR) with the \
             actor your NATS user may submit as, e.g. bureau-150100"
        );
    };
    let subject = actor_submit_batch_subject(actor);
    if actor_of_subject(&subject).is_none() {
        bail!("--actor {actor}: an actor is 1 to 64 of A-Z, a-z, 0-9, '-', '_'");
    }
    if nats.nats_inbox_prefix.is_none() {
        nats.nats_inbox_prefix = Some(format!("_INBOX.{actor}"));
    }
    Ok((subject, nats))
}

/// A bar over the input's bytes on a terminal (a spinner for stdin);
/// hidden otherwise, so pipes and logs get only the summary.
fn progress_bar(length: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match length {
        Some(length) => (
            ProgressBar::new(length),
            "[{bar:40}] {bytes}/{total_bytes} {msg}",
        ),
        None => (ProgressBar::new_spinner(), "{spinner} {bytes} {msg}"),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_needs_a_command_and_its_own_id() {
        let ok = r#"{"command_id":"7e9a1000-0001-4000-8000-000000000001","suspend_commissioner":{"commissioner_id":"7e9a1000-0001-4000-8000-000000000002"}}"#;
        assert_eq!(
            parse_line(ok).map(|e| e.command_id),
            Ok("7e9a1000-0001-4000-8000-000000000001".to_owned())
        );
        let no_id = r#"{"suspend_commissioner":{"commissioner_id":"x"}}"#;
        assert!(parse_line(no_id).unwrap_err().contains("no command_id"));
        let no_command = r#"{"command_id":"7e9a1000-0001-4000-8000-000000000001"}"#;
        assert!(parse_line(no_command).unwrap_err().contains("no command"));
        assert!(parse_line("{not json")
            .unwrap_err()
            .starts_with("not a CommandEnvelope"));
    }

    #[test]
    fn the_summary_counts_rejections_by_code_apart_from_acceptances() {
        let mut tally = Tally::default();
        let accepted = crate::wire::accepted("a".into(), Vec::new());
        let not_found =
            crate::wire::rejected("b".into(), crate::domain::RejectCode::NotFound, "X", "m");
        for result in [&accepted, &accepted, &not_found] {
            tally.count(result);
        }
        tally.malformed = 1;
        assert_eq!(
            tally.summary(),
            "2 accepted, 1 rejected (NOT_FOUND 1), 1 malformed"
        );
        assert!(!tally.all_accepted());
    }

    #[test]
    fn an_overlong_line_is_skipped_to_its_end() {
        let mut input = std::io::Cursor::new(b"xxxxxxxx\nnext\n".to_vec());
        input.set_position(3);
        assert_eq!(skip_line(&mut input).unwrap(), 6);
        let mut rest = String::new();
        input.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "next\n");
    }
}
