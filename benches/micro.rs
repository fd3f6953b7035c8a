//! Micro-benchmarks of tepai's hot paths, one criterion binary.
//!
//! What each group measures, and why it is worth a number:
//!
//! - `decide/*`: one pure decision against a region-sized state (1,000
//!   commissioners, 100 workstations, 2,000 posts). An appointment sweeps
//!   the commissioner's and the workstation's posts, so it is the dearest
//!   rule; a registration is the cheapest.
//! - `wire/*`: protobuf at the boundary: a command envelope decoded and
//!   validated, an event payload encoded and decoded.
//! - `store/append_batch/*`: one group commit of 1,000 events on a file
//!   with `synchronous=FULL`. `tepai` is `EventStore::append` with the
//!   1,000 command records that go with them; `raw_sqlite` is the baseline,
//!   a rusqlite insert of the same event rows into a plain table with the
//!   same keys; `raw_sqlite_with_commands` adds the records to it. Their
//!   ratio is the price of the hash chain, the CHECKs and the command log.
//!   `tepai_events_only` and `tepai_sync_normal` split that price, and
//!   `store/link_hash` is the hashing alone.
//! - `processor/process_batch`: 256 registrations through the whole
//!   command path: idempotency look-up, decision, encoding, one commit.
//! - `projection/apply_batch`: 1,000 events of a realistic mix applied to
//!   the views in one transaction.
//! - `projection/apply_batch_live`: the same mix in batches of 32 events,
//!   the size the live projector commits under `tepai bench --spawn` (a
//!   mean of 35 events per fetch), so its per-event cost compares with a
//!   rebuild's (`benches/rebuild.rs`).
//!
//! Files live under cargo's `CARGO_TARGET_TMPDIR`, not `/tmp`, which is a
//! tmpfs on many machines and would make every fsync free. A file is
//! replaced by a fresh one after [`RESTART_AFTER`] rows, so each figure is
//! taken on a store of 0–100k events whatever the iteration count.
//!
//! `cargo bench --bench micro` runs them (about 80 s once built);
//! `cargo bench --bench micro -- --test` (and `cargo test --all-targets`)
//! runs each once. BENCHMARKS.md has the method and the results.

// Benches are not tests, so clippy.toml's allow-unwrap-in-tests misses them;
// a failed setup should stop the run loudly. criterion_group! makes pub fns.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use prost::Message;
use rusqlite::{params, Connection, TransactionBehavior};
use tempfile::TempDir;
use uuid::Uuid;

use tepai::domain::{
    decide, evolve, region_date, AppointPost, Capacity, CityCode, Command, CommissionerId,
    CommissionerKind, Date, Event, HoursPerMonth, Minutes, Policy, PostId, RegisterCommissioner,
    ServiceId, State, StreamId, Text, WorkstationId,
};
use tepai::processor::Processor;
use tepai::projection::Projection;
use tepai::store::{
    chain, CommandRecord, Durability, EventStore, NewEvent, StoreOptions, StoredEvent,
};
use tepai::wire::pb::command_envelope::Command as PbCommand;
use tepai::wire::{self, pb, Envelope};

/// 2025-03-01 00:00 in UTC+8, as unix ms: "now" for every bench.
const NOW_MS: i64 = 1_740_758_400_000;
/// Events in one store or projection batch.
const EVENTS_PER_BATCH: usize = 1_000;
/// Events in one live projector batch: the mean fetch of a
/// `tepai bench --spawn` run (`tepai_projection_batch_size`) was 35.
const LIVE_EVENTS_PER_BATCH: usize = 32;
/// Commands in one processor batch.
const COMMANDS_PER_BATCH: usize = 256;
/// Rows after which a store or views file is replaced by a fresh one.
const RESTART_AFTER: u64 = 100_000;
/// Workstations in the decision state and at the start of every history.
const WORKSTATIONS: usize = 100;
/// Commissioners in the decision state; each holds two posts.
const COMMISSIONERS: usize = 1_000;

fn date(value: &str) -> Date {
    value.parse().unwrap()
}

fn other_city(city: CityCode) -> CityCode {
    if city == CityCode::HOHHOT {
        CityCode::BAOTOU
    } else {
        CityCode::HOHHOT
    }
}

fn city_of(i: usize) -> CityCode {
    if i.is_multiple_of(2) {
        CityCode::HOHHOT
    } else {
        CityCode::BAOTOU
    }
}

fn workstation_established(id: WorkstationId, i: usize) -> Event {
    Event::WorkstationEstablished {
        workstation_id: id,
        name: Text::trusted(format!("科技特派员工作站 {i}")),
        host_org: Text::trusted("内蒙古金宇生物技术有限公司"),
        host_city: city_of(i),
        capacity: Capacity::parse("capacity", 50).unwrap(),
        fields: vec![Text::trusted("生物医药"), Text::trusted("乳业")],
    }
}

fn commissioner_registered(id: CommissionerId, i: usize) -> Event {
    Event::CommissionerRegistered {
        commissioner_id: id,
        name: Text::trusted(format!("特派员{i}")),
        home_city: city_of(i),
        employer: Text::trusted("内蒙古农业大学"),
        kind: CommissionerKind::University,
        expertise: vec![Text::trusted("乳业"), Text::trusted("草原生态")],
    }
}

fn post_appointed(
    post_id: PostId,
    commissioner_id: CommissionerId,
    workstation_id: WorkstationId,
    serving_city: CityCode,
) -> Event {
    Event::PostAppointed {
        post_id,
        commissioner_id,
        workstation_id,
        serving_city,
        role: Text::trusted("技术顾问"),
        hours_per_month: HoursPerMonth::parse("hours_per_month", 20).unwrap(),
        start_date: date("2025-01-01"),
        end_date: date("2025-12-31"),
    }
}

fn service_recorded(post_id: PostId, city: CityCode) -> Event {
    Event::ServiceRecorded {
        service_id: ServiceId(Uuid::now_v7()),
        post_id,
        date: date("2025-02-15"),
        minutes: Minutes::parse("minutes", 120).unwrap(),
        beneficiary: Text::trusted("土默特左旗奶牛养殖合作社"),
        beneficiary_city: city,
        summary: Text::trusted("指导青贮饲料配比与犊牛饲养管理，现场培训养殖户十二人。"),
        demand_id: None,
    }
}

// ---- decide ------------------------------------------------------------

/// The decision state of a region in full swing, and the command subjects.
struct Region {
    state: State,
    /// Holds two posts, so appointing a third sweeps real intervals.
    commissioner: CommissionerId,
    /// Runs 20 posts of its 50.
    workstation: WorkstationId,
}

/// Folds 100 workstations (each serving both cities), 1,000 commissioners
/// and two posts each (20 per workstation) through `evolve`.
fn region() -> Region {
    let mut state = State::default();
    let workstations: Vec<WorkstationId> = (0..WORKSTATIONS)
        .map(|i| {
            let id = WorkstationId(Uuid::now_v7());
            evolve(&mut state, &workstation_established(id, i));
            let city = other_city(city_of(i));
            evolve(
                &mut state,
                &Event::WorkstationServiceExtended {
                    workstation_id: id,
                    city,
                },
            );
            id
        })
        .collect();
    let commissioners: Vec<CommissionerId> = (0..COMMISSIONERS)
        .map(|i| {
            let id = CommissionerId(Uuid::now_v7());
            evolve(&mut state, &commissioner_registered(id, i));
            for w in [2 * i, 2 * i + 1] {
                let workstation = workstations[w % WORKSTATIONS];
                let post = post_appointed(PostId(Uuid::now_v7()), id, workstation, city_of(i));
                evolve(&mut state, &post);
            }
            id
        })
        .collect();
    // Commissioner 0 holds posts at workstations 0 and 1; workstation 2
    // runs the posts of commissioners 1, 51, 101, ...
    Region {
        state,
        commissioner: commissioners[0],
        workstation: workstations[2],
    }
}

fn bench_decide(c: &mut Criterion) {
    let region = region();
    let policy = Policy::default();
    let today = region_date(NOW_MS);
    let appoint = Command::AppointPost(AppointPost {
        post_id: PostId(Uuid::now_v7()),
        commissioner_id: region.commissioner,
        workstation_id: region.workstation,
        serving_city: CityCode::BAOTOU,
        role: Text::trusted("技术顾问"),
        hours_per_month: HoursPerMonth::parse("hours_per_month", 20).unwrap(),
        start_date: date("2025-03-01"),
        end_date: date("2026-02-28"),
        demand_id: None,
    });
    let register = Command::RegisterCommissioner(RegisterCommissioner {
        commissioner_id: CommissionerId(Uuid::now_v7()),
        name: Text::trusted("乌云其木格"),
        home_city: CityCode::HOHHOT,
        employer: Text::trusted("内蒙古大学"),
        kind: CommissionerKind::University,
        expertise: vec![Text::trusted("乳业")],
    });
    // Measure the accepting path: a rejection would skip the work.
    for command in [&appoint, &register] {
        decide(&region.state, &policy, command, today).unwrap();
    }

    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    group.bench_function("appoint_post", |b| {
        b.iter(|| {
            decide(
                black_box(&region.state),
                &policy,
                black_box(&appoint),
                today,
            )
        })
    });
    group.bench_function("register_commissioner", |b| {
        b.iter(|| {
            decide(
                black_box(&region.state),
                &policy,
                black_box(&register),
                today,
            )
        })
    });
    group.finish();
}

// ---- wire --------------------------------------------------------------

fn bench_wire(c: &mut Criterion) {
    let envelope = pb::CommandEnvelope {
        command_id: Uuid::now_v7().to_string(),
        expected_version: None,
        actor: "bench".into(),
        correlation_id: String::new(),
        command: Some(PbCommand::AppointPost(pb::AppointPost {
            post_id: Uuid::now_v7().to_string(),
            commissioner_id: Uuid::now_v7().to_string(),
            workstation_id: Uuid::now_v7().to_string(),
            serving_city: "150200".into(),
            role: "技术顾问".into(),
            hours_per_month: 20,
            start_date: "2025-03-01".into(),
            end_date: "2026-02-28".into(),
            demand_id: String::new(),
        })),
    }
    .encode_to_vec();
    wire::decode_envelope(&envelope).unwrap();
    let event = post_appointed(
        PostId(Uuid::now_v7()),
        CommissionerId(Uuid::now_v7()),
        WorkstationId(Uuid::now_v7()),
        CityCode::BAOTOU,
    );
    let payload = wire::encode_event_payload(&event);
    assert_eq!(wire::decode_event_payload(&payload).unwrap(), event);

    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_envelope", |b| {
        b.iter(|| wire::decode_envelope(black_box(&envelope)))
    });
    group.bench_function("encode_event_payload", |b| {
        b.iter(|| wire::encode_event_payload(black_box(&event)))
    });
    group.bench_function("decode_event_payload", |b| {
        b.iter(|| wire::decode_event_payload(black_box(&payload)))
    });
    group.finish();
}

// ---- a history to write ------------------------------------------------

/// Writes a consistent history: 100 workstations, then per ten events two
/// registrations, three appointments and five service records, on random
/// existing commissioners, workstations and posts. Tracks positions and
/// stream versions, so its rows satisfy the store's keys and the views'
/// consistency checks.
struct History {
    workstations: Vec<(WorkstationId, CityCode)>,
    commissioners: Vec<CommissionerId>,
    posts: Vec<(PostId, CityCode)>,
    versions: HashMap<StreamId, u64>,
    next_position: u64,
    /// Events of the mix emitted (after the workstations).
    emitted: u64,
    /// xorshift64 state: deterministic choices, no dependency.
    rng: u64,
}

/// One history batch: the events and the command record of each.
struct Batch {
    events: Vec<NewEvent>,
    commands: Vec<CommandRecord>,
}

impl History {
    fn new() -> Self {
        Self {
            workstations: Vec::new(),
            commissioners: Vec::new(),
            posts: Vec::new(),
            versions: HashMap::new(),
            next_position: 1,
            emitted: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn pick(&mut self, len: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % len as u64) as usize
    }

    fn next_event(&mut self) -> Event {
        if self.workstations.len() < WORKSTATIONS {
            let i = self.workstations.len();
            let id = WorkstationId(Uuid::now_v7());
            self.workstations.push((id, city_of(i)));
            return workstation_established(id, i);
        }
        let slot = self.emitted % 10;
        self.emitted += 1;
        match slot {
            0 | 1 => {
                let id = CommissionerId(Uuid::now_v7());
                self.commissioners.push(id);
                commissioner_registered(id, self.commissioners.len())
            }
            2..=4 => {
                let i = self.pick(self.commissioners.len());
                let commissioner = self.commissioners[i];
                let w = self.pick(self.workstations.len());
                let (workstation, city) = self.workstations[w];
                let id = PostId(Uuid::now_v7());
                self.posts.push((id, city));
                post_appointed(id, commissioner, workstation, city)
            }
            _ => {
                let p = self.pick(self.posts.len());
                let (post, city) = self.posts[p];
                service_recorded(post, city)
            }
        }
    }

    /// The next `n` events as the processor would hand them to the store:
    /// v7 event ids, payloads from `encode_event_payload`, one command per
    /// event with its encoded result.
    fn next_batch(&mut self, n: usize) -> Batch {
        let mut batch = Batch {
            events: Vec::with_capacity(n),
            commands: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let event = self.next_event();
            let stream = event.stream();
            let version = self.versions.entry(stream).or_insert(0);
            *version += 1;
            let command_id = Uuid::now_v7();
            let new_event = NewEvent {
                position: self.next_position,
                event_id: Uuid::now_v7(),
                stream_id: stream.to_string(),
                stream_version: *version,
                event_type: event.type_name().to_owned(),
                schema_version: wire::EVENT_SCHEMA_VERSION,
                payload: wire::encode_event_payload(&event),
                correlation_id: command_id.hyphenated().to_string(),
                causation_id: command_id.hyphenated().to_string(),
                actor: "bench".into(),
                recorded_at: NOW_MS,
            };
            let result = wire::accepted(
                command_id.hyphenated().to_string(),
                vec![pb::WrittenEvent {
                    stream_id: new_event.stream_id.clone(),
                    stream_version: new_event.stream_version,
                    global_position: new_event.position,
                    event_id: new_event.event_id.hyphenated().to_string(),
                }],
            );
            batch.commands.push(CommandRecord {
                command_id,
                result: result.encode_to_vec(),
                recorded_at: NOW_MS,
            });
            batch.events.push(new_event);
            self.next_position += 1;
        }
        batch
    }
}

/// The envelopes the relay would publish for `events`.
fn published(events: &[NewEvent]) -> Vec<pb::EventEnvelope> {
    events
        .iter()
        .map(|e| {
            let stored = StoredEvent {
                position: e.position,
                event_id: e.event_id,
                stream_id: e.stream_id.clone(),
                stream_version: e.stream_version,
                event_type: e.event_type.clone(),
                schema_version: e.schema_version,
                payload: e.payload.clone(),
                correlation_id: e.correlation_id.clone(),
                causation_id: e.causation_id.clone(),
                actor: e.actor.clone(),
                recorded_at: e.recorded_at,
                hash: chain::GENESIS,
            };
            wire::event_envelope(&stored).unwrap()
        })
        .collect()
}

/// A bench target on a file of its own, replaced by a fresh one (outside
/// the timed section) once [`RESTART_AFTER`] rows went into it.
struct Fresh<T, F: FnMut(&Path) -> T> {
    open: F,
    // Field order: the target closes its connection before its dir goes.
    target: T,
    _dir: TempDir,
    rows: u64,
}

fn scratch_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("tepai-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

impl<T, F: FnMut(&Path) -> T> Fresh<T, F> {
    fn new(mut open: F) -> Self {
        let dir = scratch_dir();
        let target = open(dir.path());
        Self {
            open,
            target,
            _dir: dir,
            rows: 0,
        }
    }

    /// The target, about to take `rows` more rows.
    fn take(&mut self, rows: u64) -> &mut T {
        if self.rows + rows > RESTART_AFTER {
            let dir = scratch_dir();
            self.target = (self.open)(dir.path());
            self._dir = dir;
            self.rows = 0;
        }
        self.rows += rows;
        &mut self.target
    }
}

/// Times `work` on each of `iters` batches, leaving their making untimed.
fn time_batches<T>(iters: u64, mut make: impl FnMut() -> T, mut work: impl FnMut(T)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = make();
        let started = Instant::now();
        work(input);
        total += started.elapsed();
    }
    total
}

// ---- store -------------------------------------------------------------

/// The baseline: the store's columns and keys, no CHECKs, no triggers, no
/// hash chain, set up as the store is (WAL, `synchronous=FULL`).
const RAW_SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    event_id       BLOB    NOT NULL UNIQUE,
    stream_id      TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        BLOB    NOT NULL,
    correlation_id TEXT    NOT NULL,
    causation_id   TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    hash           BLOB    NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE TABLE commands (
    command_id  BLOB    PRIMARY KEY,
    result      BLOB    NOT NULL,
    recorded_at INTEGER NOT NULL
) WITHOUT ROWID;
";

struct RawStore {
    conn: Connection,
    history: History,
}

impl RawStore {
    fn open(dir: &Path) -> Self {
        let conn = Connection::open(dir.join("raw.db")).unwrap();
        conn.execute_batch(RAW_SCHEMA).unwrap();
        Self {
            conn,
            history: History::new(),
        }
    }
}

/// Inserts the events (and the command records when asked) in one
/// transaction. The hash column gets the event id twice: same width, no
/// hashing.
fn raw_insert(conn: &mut Connection, batch: &Batch, with_commands: bool) {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (position, event_id, stream_id, stream_version, \
                     event_type, schema_version, payload, correlation_id, causation_id, actor, \
                     recorded_at, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .unwrap();
        for e in &batch.events {
            let id = e.event_id.as_bytes();
            let mut hash = [0u8; 32];
            hash[..16].copy_from_slice(id);
            hash[16..].copy_from_slice(id);
            insert
                .execute(params![
                    e.position as i64,
                    id.as_slice(),
                    e.stream_id,
                    e.stream_version as i64,
                    e.event_type,
                    e.schema_version,
                    e.payload,
                    e.correlation_id,
                    e.causation_id,
                    e.actor,
                    e.recorded_at,
                    hash.as_slice(),
                ])
                .unwrap();
        }
        if with_commands {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO commands (command_id, result, recorded_at) VALUES (?1, ?2, ?3)",
                )
                .unwrap();
            for c in &batch.commands {
                insert
                    .execute(params![
                        c.command_id.as_bytes().as_slice(),
                        c.result,
                        c.recorded_at
                    ])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

/// Opens a fresh store in a scratch dir, with the history to append.
type OpenStore = fn(&Path) -> (EventStore, History);

fn open_store(dir: &Path) -> (EventStore, History) {
    let store = EventStore::open(&dir.join("events.db"), StoreOptions::default()).unwrap();
    (store, History::new())
}

fn open_store_unsynced(dir: &Path) -> (EventStore, History) {
    let options = StoreOptions {
        durability: Durability::Normal,
        ..StoreOptions::default()
    };
    let store = EventStore::open(&dir.join("events.db"), options).unwrap();
    (store, History::new())
}

fn bench_store(c: &mut Criterion) {
    let rows = EVENTS_PER_BATCH as u64;
    let mut group = c.benchmark_group("store/append_batch");
    group
        .throughput(Throughput::Elements(rows))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));

    // tepai as it runs; without the command log's records (their share);
    // at `synchronous=NORMAL`, which in WAL mode syncs only at checkpoints
    // (the fsync's share).
    let variants: [(&str, OpenStore, bool); 3] = [
        ("tepai", open_store, true),
        ("tepai_events_only", open_store, false),
        ("tepai_sync_normal", open_store_unsynced, true),
    ];
    for (name, open, with_commands) in variants {
        let mut fresh = Fresh::new(open);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let (store, history) = fresh.take(iters * rows);
                time_batches(
                    iters,
                    || history.next_batch(EVENTS_PER_BATCH),
                    |batch| {
                        let commands = if with_commands {
                            &batch.commands[..]
                        } else {
                            &[]
                        };
                        store.append(&batch.events, commands).unwrap();
                    },
                )
            })
        });
    }

    for (name, with_commands) in [("raw_sqlite", false), ("raw_sqlite_with_commands", true)] {
        let mut raw = Fresh::new(RawStore::open);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let raw = raw.take(iters * rows);
                time_batches(
                    iters,
                    || raw.history.next_batch(EVENTS_PER_BATCH),
                    |batch| raw_insert(&mut raw.conn, &batch, with_commands),
                )
            })
        });
    }
    group.finish();

    // The hash chain's share: what `append` hashes, without SQLite.
    let batch = History::new().next_batch(EVENTS_PER_BATCH);
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(rows)).sample_size(50);
    group.bench_function("link_hash", |b| {
        b.iter(|| {
            batch.events.iter().fold(chain::GENESIS, |previous, event| {
                chain::link_hash(&previous, &black_box(event).fields())
            })
        })
    });
    group.finish();
}

// ---- processor ---------------------------------------------------------

/// `n` registrations with fresh ids, decoded as the command service would.
fn registrations(n: usize) -> Vec<Envelope> {
    (0..n)
        .map(|i| {
            let envelope = pb::CommandEnvelope {
                command_id: Uuid::now_v7().to_string(),
                expected_version: None,
                actor: "bench".into(),
                correlation_id: String::new(),
                command: Some(PbCommand::RegisterCommissioner(pb::RegisterCommissioner {
                    commissioner_id: Uuid::now_v7().to_string(),
                    name: format!("特派员{i}"),
                    home_city: city_of(i).to_string(),
                    employer: "内蒙古农业大学".into(),
                    kind: pb::CommissionerKind::University as i32,
                    expertise: vec!["乳业".into(), "草原生态".into()],
                })),
            };
            Envelope::try_from(envelope).unwrap()
        })
        .collect()
}

fn open_processor(dir: &Path) -> Processor {
    let store = EventStore::open(&dir.join("events.db"), StoreOptions::default()).unwrap();
    Processor::open(store, Policy::default()).unwrap()
}

fn bench_processor(c: &mut Criterion) {
    let commands = COMMANDS_PER_BATCH as u64;
    let mut processor = Fresh::new(open_processor);
    // Measure the accepting path.
    for result in processor
        .take(commands)
        .process_batch(registrations(COMMANDS_PER_BATCH), NOW_MS)
    {
        assert!(matches!(
            result.outcome,
            Some(pb::command_result::Outcome::Accepted(_))
        ));
    }

    let mut group = c.benchmark_group("processor");
    group
        .throughput(Throughput::Elements(commands))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    group.bench_function("process_batch", |b| {
        b.iter_custom(|iters| {
            let processor = processor.take(iters * commands);
            time_batches(
                iters,
                || registrations(COMMANDS_PER_BATCH),
                |batch| {
                    black_box(processor.process_batch(batch, NOW_MS));
                },
            )
        })
    });
    group.finish();
}

// ---- projection --------------------------------------------------------

/// A views file that already holds the workstations and a first batch of
/// the mix, so every timed batch finds entities to refer to.
fn open_projection(dir: &Path) -> (Projection, History) {
    let mut projection = Projection::open(&dir.join("views.db")).unwrap();
    let mut history = History::new();
    let seed = history.next_batch(EVENTS_PER_BATCH);
    projection.apply_batch(&published(&seed.events)).unwrap();
    (projection, history)
}

fn bench_projection(c: &mut Criterion) {
    let rows = EVENTS_PER_BATCH as u64;
    let mut views = Fresh::new(open_projection);
    let mut group = c.benchmark_group("projection");
    group
        .throughput(Throughput::Elements(rows))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    group.bench_function("apply_batch", |b| {
        b.iter_custom(|iters| {
            let (projection, history) = views.take(iters * rows);
            time_batches(
                iters,
                || published(&history.next_batch(EVENTS_PER_BATCH).events),
                |batch| {
                    let outcome = projection.apply_batch(&batch).unwrap();
                    assert_eq!(outcome.applied, EVENTS_PER_BATCH);
                },
            )
        })
    });
    let live_rows = LIVE_EVENTS_PER_BATCH as u64;
    group.throughput(Throughput::Elements(live_rows));
    group.bench_function("apply_batch_live", |b| {
        b.iter_custom(|iters| {
            let (projection, history) = views.take(iters * live_rows);
            time_batches(
                iters,
                || published(&history.next_batch(LIVE_EVENTS_PER_BATCH).events),
                |batch| {
                    let outcome = projection.apply_batch(&batch).unwrap();
                    assert_eq!(outcome.applied, LIVE_EVENTS_PER_BATCH);
                },
            )
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_decide, bench_wire, bench_store, bench_processor, bench_projection
}
criterion_main!(benches);
