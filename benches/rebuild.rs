//! Rebuild and open at scale: builds a store of about 1,000,000 events
//! (100,000 commissioners, 1,000 workstations, 300,000 posts, term
//! extensions and service records) through the real processor, then
//! measures, in the same run:
//! - opening it: the processor replays every event into memory, checking
//!   the hash chain, and the process's peak RSS afterwards;
//! - rebuilding every view from it into a fresh file;
//! - the baseline: a raw SQLite scan of the same events table.
//!
//! The three run in rounds, in alternating order (raw, open, rebuild, then
//! rebuild, open, raw, …), and every round's results are checked: the scan
//! and the open reach the head, the rebuilt views hold the expected rows
//! and digest the same as the first round's. It prints the median and the
//! range of each.
//!
//! `cargo bench --bench rebuild` (set `TEPAI_BENCH_COMMISSIONERS` for
//! another size, events ≈ 10 × commissioners; `TEPAI_BENCH_ROUNDS` for
//! other than 4 rounds). Under `cargo test` it makes a small store and runs
//! two rounds, so CI keeps it working.

// A benchmark binary: a failed unwrap is a failed run, and it has no API.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use tepai::domain::Policy;
use tepai::ops::progress::Progress;
use tepai::processor::Processor;
use tepai::store::{Durability, EventStore, StoreOptions};
use tepai::wire::pb::{self, command_envelope::Command as C};
use tepai::wire::Envelope;

/// 2025-12-31 in UTC+8: every term and service date below is in the past.
const NOW_MS: i64 = 1_767_139_200_000;
const WORKSTATIONS: usize = 1000;

fn uid(kind: u64, n: u64) -> String {
    format!("00000000-{kind:04x}-7000-8000-{n:012x}")
}

fn envelope(n: &mut u64, command: C) -> Envelope {
    *n += 1;
    Envelope::try_from(pb::CommandEnvelope {
        command_id: uid(9, *n),
        expected_version: None,
        actor: "bench".into(),
        correlation_id: String::new(),
        command: Some(command),
    })
    .unwrap()
}

fn commands_for(c: u64, n: &mut u64) -> Vec<Envelope> {
    let commissioner = uid(1, c);
    let mut out = vec![envelope(
        n,
        C::RegisterCommissioner(pb::RegisterCommissioner {
            commissioner_id: commissioner.clone(),
            name: format!("特派员{c}"),
            home_city: if c.is_multiple_of(2) {
                "150100"
            } else {
                "150200"
            }
            .into(),
            employer: "内蒙古大学".into(),
            kind: pb::CommissionerKind::University as i32,
            expertise: vec!["乳业".into()],
        }),
    )];
    for k in 0..3u64 {
        let post = uid(3, c * 3 + k);
        let workstation = uid(2, (c * 3 + k) % WORKSTATIONS as u64);
        out.push(envelope(
            n,
            C::AppointPost(pb::AppointPost {
                post_id: post.clone(),
                commissioner_id: commissioner.clone(),
                workstation_id: workstation,
                serving_city: if k == 2 { "150200" } else { "150100" }.into(),
                role: "技术顾问".into(),
                hours_per_month: 20,
                start_date: "2025-01-01".into(),
                end_date: "2025-06-30".into(),
                demand_id: String::new(),
            }),
        ));
        if k == 0 {
            out.push(envelope(
                n,
                C::ExtendPostTerm(pb::ExtendPostTerm {
                    post_id: post.clone(),
                    end_date: "2025-12-31".into(),
                }),
            ));
        }
        for s in 0..2u64 {
            if k == 2 && s == 1 {
                continue;
            }
            out.push(envelope(
                n,
                C::RecordService(pb::RecordService {
                    service_id: uid(4, (c * 3 + k) * 2 + s),
                    post_id: post.clone(),
                    date: format!("2025-0{}-15", 3 + s),
                    minutes: 120,
                    beneficiary: "包头稀土企业".into(),
                    beneficiary_city: "150100".into(),
                    summary: "工艺诊断".into(),
                    demand_id: String::new(),
                }),
            ));
        }
    }
    out
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

const MEASURE_ENV: &str = "TEPAI_BENCH_MEASURE_STORE";
/// Passed to the measuring process: how many commissioners the store holds.
const COMMISSIONERS_ENV: &str = "TEPAI_BENCH_COMMISSIONERS";
/// How many rounds of the three measures to run.
const ROUNDS_ENV: &str = "TEPAI_BENCH_ROUNDS";

fn main() {
    // The measuring half runs in a fresh process, so its peak RSS is that of
    // opening the store, not of generating it.
    if let Ok(store) = std::env::var(MEASURE_ENV) {
        measure(std::path::Path::new(&store));
        return;
    }
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // gets a small smoke run instead of the full million events.
    let full = std::env::args().any(|a| a == "--bench");
    let commissioners: u64 = std::env::var(COMMISSIONERS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 100_000 } else { 500 });
    let rounds: usize = std::env::var(ROUNDS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 4 } else { 2 });
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("events.db");
    generate(&store_path, commissioners);
    println!("store: {commissioners} commissioners, {WORKSTATIONS} workstations");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .env(MEASURE_ENV, &store_path)
        .env(COMMISSIONERS_ENV, commissioners.to_string())
        .env(ROUNDS_ENV, rounds.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn generate(store_path: &std::path::Path, commissioners: u64) {
    let started = Instant::now();
    {
        // Generation is not what is measured: skip the fsync per batch.
        let store = EventStore::open(
            store_path,
            StoreOptions {
                durability: Durability::Normal,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let mut processor = Processor::open(store, Policy::default()).unwrap();
        let mut n = 0;
        let mut setup = Vec::new();
        for w in 0..WORKSTATIONS as u64 {
            setup.push(envelope(
                &mut n,
                C::EstablishWorkstation(pb::EstablishWorkstation {
                    workstation_id: uid(2, w),
                    name: format!("工作站{w}"),
                    host_org: "企业".into(),
                    host_city: "150100".into(),
                    capacity: 500,
                    fields: vec![],
                }),
            ));
            setup.push(envelope(
                &mut n,
                C::ExtendWorkstationService(pb::ExtendWorkstationService {
                    workstation_id: uid(2, w),
                    city: "150200".into(),
                }),
            ));
        }
        processor.process_batch(setup, NOW_MS);
        let mut batch = Vec::new();
        for c in 0..commissioners {
            batch.extend(commands_for(c, &mut n));
            if batch.len() >= 2000 {
                for result in processor.process_batch(std::mem::take(&mut batch), NOW_MS) {
                    assert!(
                        matches!(
                            result.outcome,
                            Some(pb::command_result::Outcome::Accepted(_))
                        ),
                        "{result:?}"
                    );
                }
            }
        }
        processor.process_batch(batch, NOW_MS);
        eprintln!(
            "generated {} events in {:.1}s",
            processor.head(),
            started.elapsed().as_secs_f64()
        );
    }
}

/// One round's timings, in seconds.
#[derive(Clone, Copy)]
struct Round {
    raw: f64,
    open: f64,
    rebuild: f64,
}

/// The three measures of a round.
#[derive(Clone, Copy)]
enum Measure {
    Raw,
    Open,
    Rebuild,
}

fn measure(store_path: &std::path::Path) {
    let dir = tempfile::tempdir().unwrap();
    let rounds: usize = std::env::var(ROUNDS_ENV)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        .max(1);
    let commissioners: u64 = std::env::var(COMMISSIONERS_ENV).unwrap().parse().unwrap();

    // The head every measure must reach, and what a raw scan reads.
    let expected = {
        let store = tepai::store::StoreReader::open(store_path).unwrap();
        store.head().unwrap().position
    };
    // One row per version of an entity: a post's term extension and a
    // workstation's service across the border each add one.
    let expected_rows = [
        ("checkpoint", 1),
        // One expertise tag per registration.
        ("commissioner_tags", commissioners),
        ("commissioners", commissioners),
        // The generated history has no demands.
        ("demand_services", 0),
        ("demands", 0),
        ("posts", 4 * commissioners),
        ("served_demands", 0),
        ("services", 5 * commissioners),
        ("workstations", 2 * WORKSTATIONS as u64),
    ];
    let mut payload_bytes = None;
    let mut views = None;
    let mut rss = (0.0, 0.0);
    let mut results = Vec::new();

    for round in 0..rounds {
        // Alternate the order, A B C C B A …, so neither a warming cache
        // nor a filling disk favours one measure.
        let mut order = [Measure::Raw, Measure::Open, Measure::Rebuild];
        if round % 2 == 1 {
            order.reverse();
        }
        let mut timings = Round {
            raw: 0.0,
            open: 0.0,
            rebuild: 0.0,
        };
        for step in order {
            match step {
                Measure::Raw => {
                    let (secs, rows, bytes) = raw_scan(store_path);
                    assert_eq!(rows, expected, "round {round}: the raw scan read {rows}");
                    assert_eq!(
                        *payload_bytes.get_or_insert(bytes),
                        bytes,
                        "round {round}: the raw scan read other payloads"
                    );
                    timings.raw = secs;
                }
                Measure::Open => {
                    // The first round opens before any rebuild, so its
                    // peak RSS is that of the raw scan, then of the open.
                    let before = peak_rss_mb();
                    let started = Instant::now();
                    let store = EventStore::open(store_path, StoreOptions::default()).unwrap();
                    let processor = Processor::open(store, Policy::default()).unwrap();
                    timings.open = started.elapsed().as_secs_f64();
                    if round == 0 {
                        rss = (before, peak_rss_mb());
                    }
                    assert_eq!(processor.head(), expected, "round {round}: opened");
                }
                Measure::Rebuild => {
                    let target = dir.path().join(format!("views-{round}.db"));
                    let started = Instant::now();
                    let mut progress = Progress::new("rebuild", expected);
                    let checkpoint =
                        tepai::ops::rebuild::from_store(store_path, &target, None, &mut progress)
                            .unwrap();
                    timings.rebuild = started.elapsed().as_secs_f64();
                    assert_eq!(checkpoint, expected, "round {round}: rebuilt");
                    let conn = rusqlite::Connection::open(&target).unwrap();
                    let digests = tepai::projection::digest::digests(&conn).unwrap();
                    drop(conn);
                    let rows: Vec<(&str, u64)> =
                        digests.iter().map(|d| (d.table.as_str(), d.rows)).collect();
                    assert_eq!(rows, expected_rows, "round {round}: rows of the views");
                    let first = views.get_or_insert_with(|| digests.clone());
                    assert!(
                        *first == digests,
                        "round {round}: the rebuilt views differ from round 0's"
                    );
                    // One rebuilt file at a time on disk.
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
                    }
                }
            }
        }
        results.push(timings);
    }

    let rows = expected;
    let bytes = payload_bytes.unwrap_or(0);
    let (raw, open, rebuild) = (
        summary(&results, |r| r.raw),
        summary(&results, |r| r.open),
        summary(&results, |r| r.rebuild),
    );
    let rate = |secs: f64| rows as f64 / secs;
    println!(
        "events: {rows} (payloads {:.0} bytes on average); {rounds} rounds, order alternating, \
         every round's results checked",
        bytes as f64 / rows as f64
    );
    println!(
        "{:<44} {:>9} {:>17} {:>14} {:>8}",
        "measure (median of the rounds)", "seconds", "min–max", "events/s", "× raw"
    );
    for (name, (median, min, max)) in [
        ("raw SQLite scan of the events table", raw),
        ("open: replay into memory, chain checked", open),
        ("rebuild every view into a new file", rebuild),
    ] {
        println!(
            "{name:<44} {median:>9.2} {:>17} {:>14.0} {:>8.2}",
            format!("{min:.2}–{max:.2}"),
            rate(median),
            raw.0 / median
        );
    }
    println!(
        "peak RSS of this process: {:.0} MB after the raw scan, {:.0} MB after opening the store (state in memory)",
        rss.0, rss.1
    );
}

/// A raw scan of the events table: its seconds, rows and payload bytes.
fn raw_scan(store_path: &std::path::Path) -> (f64, u64, usize) {
    let started = Instant::now();
    let conn = rusqlite::Connection::open(store_path).unwrap();
    let mut rows = 0u64;
    let mut bytes = 0usize;
    let mut statement = conn
        .prepare("SELECT position, event_id, stream_id, stream_version, event_type, schema_version, payload, correlation_id, causation_id, actor, recorded_at, hash FROM events ORDER BY position")
        .unwrap();
    let mut cursor = statement.query([]).unwrap();
    while let Some(row) = cursor.next().unwrap() {
        rows += 1;
        bytes += row.get_ref(6).unwrap().as_blob().unwrap().len();
    }
    (started.elapsed().as_secs_f64(), rows, bytes)
}

/// Median, minimum and maximum of one measure over the rounds.
fn summary(results: &[Round], pick: impl Fn(&Round) -> f64) -> (f64, f64, f64) {
    let mut secs: Vec<f64> = results.iter().map(pick).collect();
    secs.sort_by(f64::total_cmp);
    let middle = secs.len() / 2;
    let median = if secs.len().is_multiple_of(2) {
        (secs[middle - 1] + secs[middle]) / 2.0
    } else {
        secs[middle]
    };
    (median, secs[0], secs[secs.len() - 1])
}
