//! Crash safety: a child process appending under load is killed with
//! SIGKILL, several times over the same store. What it acknowledged must be
//! there exactly once, nothing half-written, and the chain must verify.
//!
//! The child is this test binary itself, re-run on the ignored test
//! `crash::child_appends_until_killed` with `TEPAI_CRASH_DIR` set.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use prost::Message;
use tepai::processor::writer::{CommandWriter, WriterOptions};
use tepai::store::StoreReader;
use tepai::wire::pb;

use crate::support::*;

const ENV_DIR: &str = "TEPAI_CRASH_DIR";

/// Runs only as the child: registers commissioners and appoints them from
/// several threads, printing `ACK <command_id>` after each durable answer.
#[test]
#[ignore = "runs as the child process of a_store_killed_mid_append_keeps_every_acknowledged_command"]
fn child_appends_until_killed() {
    let Ok(dir) = std::env::var(ENV_DIR) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let writer = CommandWriter::spawn(open_processor(&dir), WriterOptions::default()).unwrap();
    let workstation = id();
    let setup = writer.handle().submit_blocking(decoded(envelope(establish(
        &workstation,
        "久泰新材料工作站",
        HOHHOT,
        500,
    ))));
    accepted(&setup);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let handle = writer.handle();
            let workstation = workstation.clone();
            std::thread::spawn(move || loop {
                let commissioner = id();
                let commands = [
                    register(&commissioner, "张涛", BAOTOU),
                    appoint(&id(), &commissioner, &workstation, HOHHOT, 10),
                    retire(&commissioner, "2025-06-30"),
                ];
                for command in commands {
                    let e = envelope(command);
                    let command_id = e.command_id.clone();
                    let result = handle.submit_blocking(decoded(e));
                    if matches!(
                        result.outcome,
                        Some(pb::command_result::Outcome::Accepted(_))
                    ) {
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {command_id}").unwrap();
                        out.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn run_child_until(dir: &std::path::Path, acks_wanted: usize) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::child_appends_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(ENV_DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acks = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("ACK ") {
            acks.push(id.to_owned());
            if acks.len() >= acks_wanted {
                break;
            }
        }
    }
    // Child::kill sends SIGKILL: no destructor, no flush, no clean close.
    child.kill().unwrap();
    // Lines already written before the kill are acknowledged too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(id) = line.strip_prefix("ACK ") {
            acks.push(id.to_owned());
        }
    }
    child.wait().unwrap();
    acks
}

#[test]
fn a_store_killed_mid_append_keeps_every_acknowledged_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 1..=3 {
        acknowledged.extend(run_child_until(dir.path(), 150 * round));
    }
    assert!(acknowledged.len() >= 450);

    let reader = StoreReader::open(&store_path(dir.path())).unwrap();
    let report = reader.verify_chain().unwrap();
    assert!(report.is_clean(), "{:?}", report.first_fault);

    // Every event belongs to an accepted command whose stored result lists
    // exactly the events the store holds for it: nothing half-written.
    let events = reader.read_from(0, usize::MAX).unwrap();
    assert_eq!(report.events, events.len() as u64);
    let mut by_command: HashMap<String, Vec<u64>> = HashMap::new();
    for event in &events {
        by_command
            .entry(event.causation_id.clone())
            .or_default()
            .push(event.position);
    }
    let mut seen = HashSet::new();
    for command_id in &acknowledged {
        assert!(seen.insert(command_id), "acknowledged twice: {command_id}");
        let uuid = uuid::Uuid::parse_str(command_id).unwrap();
        let stored = reader.command_result(&uuid).unwrap().unwrap_or_else(|| {
            panic!("acknowledged command {command_id} is not in the command log")
        });
        let result = pb::CommandResult::decode(stored.as_slice()).unwrap();
        let written: Vec<u64> = accepted(&result)
            .iter()
            .map(|e| e.global_position)
            .collect();
        assert_eq!(by_command.get(command_id), Some(&written), "{command_id}");
    }
    for (command_id, positions) in &by_command {
        let uuid = uuid::Uuid::parse_str(command_id).unwrap();
        let stored = reader
            .command_result(&uuid)
            .unwrap()
            .expect("event without command");
        let result = pb::CommandResult::decode(stored.as_slice()).unwrap();
        let written: Vec<u64> = accepted(&result)
            .iter()
            .map(|e| e.global_position)
            .collect();
        assert_eq!(&written, positions, "{command_id}");
    }

    // The store reopens and resent acknowledged commands write nothing.
    let mut processor = open_processor(dir.path());
    let head = processor.head();
    let sample = &acknowledged[acknowledged.len() / 2];
    let uuid = uuid::Uuid::parse_str(sample).unwrap();
    let first =
        pb::CommandResult::decode(reader.command_result(&uuid).unwrap().unwrap().as_slice())
            .unwrap();
    let mut resend = envelope(register(&id(), "张涛", BAOTOU));
    resend.command_id = sample.clone();
    assert_eq!(processor.process(decoded(resend), NOW_MS), first);
    assert_eq!(processor.head(), head);
}
