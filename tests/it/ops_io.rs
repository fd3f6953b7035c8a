//! `tepai ops inspect`, `export` and `import`, run as the binary against
//! stores written by a real processor.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use tepai::store::{EventStore, Head, StoreOptions, StoreReader};
use tepai::wire::pb;

use crate::support::*;

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }
}

fn tepai(data_dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tepai"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        // A command that refuses its input may exit before reading all of
        // it; the broken pipe is then its answer, not the test's failure.
        match child.stdin.take().unwrap().write_all(bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        }
    }
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Every JSON value in `text`, pretty or one per line.
fn json_values(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect()
}

/// A store written through the processor, and what it answered.
struct Source {
    dir: tempfile::TempDir,
    commissioner: String,
    /// Every command sent, with its answer, in order.
    sent: Vec<(pb::CommandEnvelope, pb::CommandResult)>,
    /// The retirement: one command, three events (retired + two posts ended).
    retire: (pb::CommandEnvelope, pb::CommandResult),
}

fn source_store() -> Source {
    let dir = tempfile::tempdir().unwrap();
    let mut processor = open_processor(dir.path());
    let (commissioner, other, hohhot_ws, baotou_ws) = (id(), id(), id(), id());
    let mut sent = Vec::new();
    let commands = vec![
        register(&commissioner, "陈立新", HOHHOT),
        register(&other, "李娜", BAOTOU),
        establish(&hohhot_ws, "呼和浩特乳业工作站", HOHHOT, 5),
        establish(&baotou_ws, "包钢新材料工作站", BAOTOU, 5),
        appoint(&id(), &commissioner, &hohhot_ws, HOHHOT, 20),
        appoint(&id(), &commissioner, &baotou_ws, BAOTOU, 20),
        appoint(&id(), &other, &baotou_ws, BAOTOU, 10),
    ];
    for command in commands {
        let envelope = envelope(command);
        let result = processor.process(decoded(envelope.clone()), NOW_MS);
        accepted(&result);
        sent.push((envelope, result));
    }
    let retire_envelope = envelope(retire(&commissioner, "2025-06-30"));
    let result = processor.process(decoded(retire_envelope.clone()), NOW_MS + 1);
    assert_eq!(accepted(&result).len(), 3);
    sent.push((retire_envelope.clone(), result.clone()));
    Source {
        dir,
        commissioner,
        sent,
        retire: (retire_envelope, result),
    }
}

fn head_of(dir: &Path) -> Head {
    StoreReader::open(&store_path(dir)).unwrap().head().unwrap()
}

fn command_rows(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(store_path(dir)).unwrap();
    conn.query_row("SELECT count(*) FROM commands", [], |r| r.get(0))
        .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn inspect_by_stream_prints_every_event_of_the_stream_decoded_with_its_metadata() {
    let source = source_store();
    let stream = format!("commissioner-{}", source.commissioner);

    let run = tepai(
        source.dir.path(),
        &["ops", "inspect", "--stream", &stream],
        None,
    );

    assert_eq!(run.code, 0, "{}", run.stderr);
    let events = json_values(&run.text());
    assert_eq!(events.len(), 2);
    let stored = StoreReader::open(&store_path(source.dir.path()))
        .unwrap()
        .read_stream(&stream)
        .unwrap();
    let registered = &events[0];
    assert_eq!(registered["position"], 1);
    assert_eq!(registered["stream_id"], stream.as_str());
    assert_eq!(registered["stream_version"], 1);
    assert_eq!(registered["event_type"], "CommissionerRegistered");
    assert_eq!(registered["schema_version"], 1);
    assert_eq!(registered["event_id"], stored[0].event_id.to_string());
    assert_eq!(registered["hash"], hex(&stored[0].hash));
    assert_eq!(registered["recorded_at"], NOW_MS);
    assert_eq!(
        registered["recorded_at_rfc3339"],
        "2025-03-01T00:00:00.000+08:00"
    );
    assert_eq!(registered["causation_id"], source.sent[0].0.command_id);
    assert_eq!(registered["actor"], "test");
    let body = &registered["event"]["commissioner_registered"];
    assert_eq!(body["name"], "陈立新");
    assert_eq!(body["home_city"], HOHHOT);
    let retired = &events[1];
    assert_eq!(retired["stream_version"], 2);
    assert_eq!(
        retired["event"]["commissioner_retired"]["effective_date"],
        "2025-06-30"
    );
}

#[test]
fn inspect_by_position_range_prints_one_line_per_event_in_order() {
    let source = source_store();

    let run = tepai(
        source.dir.path(),
        &[
            "ops",
            "inspect",
            "--position",
            "3",
            "--to",
            "5",
            "--output",
            "ndjson",
        ],
        None,
    );

    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = run.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let positions: Vec<u64> = lines
        .iter()
        .map(|l| l["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [3, 4, 5]);
    assert!(lines[0]["event"]["workstation_established"].is_object());
    assert_eq!(lines[2]["event"]["post_appointed"]["hours_per_month"], 20);
}

#[test]
fn inspect_by_command_prints_its_answer_and_the_events_it_wrote() {
    let source = source_store();
    let (envelope, result) = &source.retire;

    let run = tepai(
        source.dir.path(),
        &["ops", "inspect", "--command", &envelope.command_id],
        None,
    );

    assert_eq!(run.code, 0, "{}", run.stderr);
    let shown = json_values(&run.text());
    assert_eq!(shown.len(), 1);
    let shown = &shown[0];
    assert_eq!(shown["command_id"], envelope.command_id);
    let answer: pb::CommandResult = serde_json::from_value(shown["result"].clone()).unwrap();
    assert_eq!(&answer, result);
    let events = shown["events"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["CommissionerRetired", "PostEnded", "PostEnded"]);
    for (event, written) in events.iter().zip(accepted(result)) {
        assert_eq!(event["causation_id"], envelope.command_id);
        assert_eq!(event["position"], written.global_position);
        assert_eq!(event["event_id"], written.event_id);
    }
    assert!(events[1]["event"]["post_ended"].is_object());
}

#[test]
fn inspect_of_what_does_not_exist_exits_2_with_a_message() {
    let source = source_store();
    let unknown_command = id();
    let cases: [&[&str]; 5] = [
        &["--stream", "commissioner-nobody"],
        &["--position", "999"],
        &["--command", &unknown_command],
        &["--command", "not-a-uuid"],
        &["--position", "1", "--to", "200000"],
    ];
    for case in cases {
        let mut args = vec!["ops", "inspect"];
        args.extend_from_slice(case);

        let run = tepai(source.dir.path(), &args, None);

        assert_eq!(run.code, 2, "{case:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{case:?}");
        assert!(run.stderr.contains("error:"), "{case:?}: {}", run.stderr);
    }
}

#[test]
fn export_import_export_is_byte_identical_and_the_imported_store_answers_resent_commands() {
    let source = source_store();
    let target = tempfile::tempdir().unwrap();
    let second = target.path().join("second.ndjson");
    let data = target.path().join("data");

    // Export to stdout, import from stdin, export again to a file.
    let first = tepai(source.dir.path(), &["ops", "export"], None);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let imported = tepai(&data, &["ops", "import"], Some(&first.stdout));
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let again = tepai(
        &data,
        &["ops", "export", "--file", second.to_str().unwrap()],
        None,
    );
    assert_eq!(again.code, 0, "{}", again.stderr);

    assert_eq!(std::fs::read(&second).unwrap(), first.stdout);
    assert_eq!(first.text().lines().count(), 10);
    let source_head = head_of(source.dir.path());
    let store = EventStore::open(&store_path(&data), StoreOptions::default()).unwrap();
    let report = store.verify_chain().unwrap();
    assert!(report.is_clean(), "{:?}", report.first_fault);
    assert_eq!(report.head, source_head);
    assert!(imported.text().contains("imported 10 events"));
    assert!(imported.text().contains(&hex(&source_head.hash)));
    drop(store);

    let mut processor = open_processor(&data);
    for (envelope, answer) in &source.sent {
        let resent = processor.process(decoded(envelope.clone()), NOW_MS + 60_000);
        assert_eq!(&resent, answer);
    }
    assert_eq!(processor.head(), source_head.position);
    assert_eq!(command_rows(&data), source.sent.len() as i64);
}

#[test]
fn import_into_a_store_that_holds_events_is_refused_and_changes_nothing() {
    let source = source_store();
    let export = tepai(source.dir.path(), &["ops", "export"], None);
    let head = head_of(source.dir.path());
    let rows = command_rows(source.dir.path());

    let run = tepai(source.dir.path(), &["ops", "import"], Some(&export.stdout));

    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("already holds events up to position 10"),
        "{}",
        run.stderr
    );
    assert_eq!(head_of(source.dir.path()), head);
    assert_eq!(command_rows(source.dir.path()), rows);
}

#[test]
fn an_altered_payload_byte_is_refused_at_its_line_and_nothing_of_its_batch_is_written() {
    let source = source_store();
    let export = tepai(source.dir.path(), &["ops", "export"], None);
    let mut lines: Vec<Value> = export
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Changing the first base64 digit changes the payload's first byte.
    let payload = lines[4]["payload"].as_str().unwrap().to_owned();
    let altered = if payload.starts_with('A') { "B" } else { "A" };
    lines[4]["payload"] = Value::from(format!("{altered}{}", &payload[1..]));
    let file: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let target = tempfile::tempdir().unwrap();

    let run = tepai(target.path(), &["ops", "import"], Some(file.as_bytes()));

    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("line 5 (position 5)") && run.stderr.contains("hash does not match"),
        "{}",
        run.stderr
    );
    assert_eq!(head_of(target.path()), Head::EMPTY);
    assert_eq!(command_rows(target.path()), 0);
}

#[test]
fn an_export_that_does_not_start_at_position_1_is_refused() {
    let source = source_store();
    let export = tepai(source.dir.path(), &["ops", "export", "--from", "5"], None);
    assert_eq!(export.code, 0, "{}", export.stderr);
    assert!(export.text().starts_with("{\"position\":5,"));
    let target = tempfile::tempdir().unwrap();

    let run = tepai(target.path(), &["ops", "import"], Some(&export.stdout));

    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("starts at position 5, but an import rebuilds the whole chain"),
        "{}",
        run.stderr
    );
    assert_eq!(head_of(target.path()), Head::EMPTY);
}

#[test]
fn every_ops_subcommand_help_shows_an_example() {
    let dir = tempfile::tempdir().unwrap();
    for subcommand in ["inspect", "export", "import"] {
        let run = tepai(dir.path(), &["ops", subcommand, "--help"], None);

        assert_eq!(run.code, 0, "{subcommand}: {}", run.stderr);
        let help = run.text();
        assert!(
            help.contains("Example: ") && help.contains(&format!("tepai ops {subcommand} ")),
            "{subcommand}: {help}"
        );
    }
}
