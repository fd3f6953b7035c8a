//! The coordination views at scale: candidates for a demand among 100,000
//! commissioners and 300,000 posts, and a year's assessment of all of
//! them.
//!
//! The views are fed directly through the projection (the same fold the
//! live projector and a rebuild run), from events made here:
//! - 100,000 commissioners, each with 2 of 40 expertise tags, homed
//!   alternately in Hohhot and Baotou;
//! - 2,000 workstations of capacity 200, hosted alternately in the two
//!   cities, every other one also serving the other city;
//! - 300,000 posts, 3 per commissioner, 20 hours a month, with terms of 6
//!   to 24 months starting in 2025–2027 at a workstation that serves the
//!   post's city;
//! - 600,000 service records, 2 per post on days inside its term, for
//!   beneficiaries in either city;
//! - 20,000 demands, each dispatched to one post and resolved in the
//!   post's term.
//!
//! Then it asks for candidates with random criteria (a tag, a city, 10
//! hours a month, a 6-month period in 2026) and prints the latency's
//! median, p99 and maximum, checking that every answer has candidates;
//! then times the 2026 assessment of every commissioner (all rows at once,
//! as the CSV export asks), three times, and of every workstation.
//!
//! `cargo bench --bench coordination` (`TEPAI_BENCH_COMMISSIONERS` for
//! another size, `TEPAI_BENCH_QUERIES` for another number of queries).
//! Under `cargo test` it runs small, so CI keeps it working.

// A benchmark binary: a failed unwrap is a failed run, and it has no API.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use tepai::domain::{
    AssessmentPolicy, Capacity, CityCode, CommissionerId, CommissionerKind, DemandId, Event,
    HoursPerMonth, Minutes, Policy, PostId, Satisfaction, ServiceId, Text, WorkstationId,
};
use tepai::projection::{Projection, Views};
use tepai::wire::{self, pb};
use uuid::Uuid;

const TAGS: usize = 40;
const CITIES: [CityCode; 2] = [CityCode::HOHHOT, CityCode::BAOTOU];

/// A small deterministic generator (xorshift), so every run builds the
/// same views.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn tag(n: usize) -> String {
    format!("专长{n:02}")
}

fn date(days_after_2025: u64) -> tepai::domain::Date {
    tepai::domain::parse_date("date", "2025-01-01").unwrap() + chrono::Days::new(days_after_2025)
}

/// The events of the data set described above, in order.
fn events(commissioners: u64, workstations: u64, rng: &mut Rng) -> Vec<Event> {
    let mut out = Vec::new();
    for w in 0..workstations {
        let host = CITIES[usize::try_from(w % 2).unwrap()];
        out.push(Event::WorkstationEstablished {
            workstation_id: WorkstationId(Uuid::from_u128(0xA000_0000 + u128::from(w))),
            name: Text::trusted(format!("工作站{w}")),
            host_org: Text::trusted("企业"),
            host_city: host,
            capacity: Capacity::parse("capacity", 200).unwrap(),
            fields: vec![],
        });
        if w % 4 < 2 {
            out.push(Event::WorkstationServiceExtended {
                workstation_id: WorkstationId(Uuid::from_u128(0xA000_0000 + u128::from(w))),
                city: CITIES[usize::try_from((w + 1) % 2).unwrap()],
            });
        }
    }
    for c in 0..commissioners {
        let id = CommissionerId(Uuid::from_u128(0xC000_0000 + u128::from(c)));
        let first = usize::try_from(rng.below(TAGS as u64)).unwrap();
        let second = (first + 1 + usize::try_from(rng.below(TAGS as u64 - 1)).unwrap()) % TAGS;
        out.push(Event::CommissionerRegistered {
            commissioner_id: id,
            name: Text::trusted(format!("特派员{c}")),
            home_city: CITIES[usize::try_from(c % 2).unwrap()],
            employer: Text::trusted("内蒙古大学"),
            kind: CommissionerKind::University,
            expertise: vec![Text::trusted(tag(first)), Text::trusted(tag(second))],
        });
        for k in 0..3u64 {
            // A workstation serving the post's city: hosted there, or one
            // of the other city's that serve both (w % 4 < 2).
            let city = rng.below(2);
            let w = loop {
                let w = rng.below(workstations);
                if w % 2 == city || w % 4 < 2 {
                    break w;
                }
            };
            let start = rng.below(3 * 365);
            let months = 6 + rng.below(19);
            let start_date = date(start);
            let end_date = start_date
                .checked_add_months(chrono::Months::new(u32::try_from(months).unwrap()))
                .unwrap()
                .pred_opt()
                .unwrap();
            let n = c * 3 + k;
            let post_id = PostId(Uuid::from_u128(0xB000_0000 + u128::from(n)));
            out.push(Event::PostAppointed {
                post_id,
                commissioner_id: id,
                workstation_id: WorkstationId(Uuid::from_u128(0xA000_0000 + u128::from(w))),
                serving_city: CITIES[usize::try_from(city).unwrap()],
                role: Text::trusted("技术顾问"),
                hours_per_month: HoursPerMonth::parse("hours", 20).unwrap(),
                start_date,
                end_date,
            });
            let term_days = u64::try_from((end_date - start_date).num_days()).unwrap();
            for s in 0..2u64 {
                out.push(Event::ServiceRecorded {
                    service_id: ServiceId(Uuid::from_u128(0xD000_0000 + u128::from(n * 2 + s))),
                    post_id,
                    date: start_date + chrono::Days::new(rng.below(term_days + 1)),
                    minutes: Minutes::parse("minutes", 60 + 30 * u32::try_from(s).unwrap())
                        .unwrap(),
                    beneficiary: Text::trusted("企业"),
                    beneficiary_city: CITIES[usize::try_from(rng.below(2)).unwrap()],
                    summary: Text::trusted("工艺诊断"),
                    demand_id: None,
                });
            }
            // Every 15th post serves a demand of its city, resolved in its term.
            if n % 15 == 0 {
                let demand_id = DemandId(Uuid::from_u128(0xE000_0000 + u128::from(n)));
                out.push(Event::DemandSubmitted {
                    demand_id,
                    title: Text::trusted(format!("需求{n}")),
                    enterprise: Text::trusted("企业"),
                    city: CITIES[usize::try_from(city).unwrap()],
                    expertise: vec![Text::trusted(tag(first))],
                    hours_per_month: HoursPerMonth::parse("hours", 10).unwrap(),
                    start_date,
                    end_date,
                    description: Text::trusted("描述"),
                });
                out.push(Event::DemandDispatched { demand_id, post_id });
                out.push(Event::DemandResolved {
                    demand_id,
                    outcome: Text::trusted("完成"),
                    satisfaction: Satisfaction::parse(
                        "satisfaction",
                        1 + u32::try_from(n % 5).unwrap(),
                    )
                    .unwrap(),
                    resolved_on: start_date + chrono::Days::new(rng.below(term_days + 1)),
                });
            }
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let under_test = std::env::args()
        .any(|a| a == "--bench")
        .then_some(())
        .is_none();
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let commissioners = env(
        "TEPAI_BENCH_COMMISSIONERS",
        if under_test { 2_000 } else { 100_000 },
    );
    let queries = env("TEPAI_BENCH_QUERIES", if under_test { 20 } else { 300 });
    let workstations = (commissioners / 50).max(10);

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let started = Instant::now();
    let all = events(commissioners, workstations, &mut rng);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("views.db");
    let mut projection = Projection::open_for_rebuild(&path).unwrap();
    for (i, chunk) in all.chunks(20_000).enumerate() {
        let first = i * 20_000;
        let batch: Vec<pb::EventEnvelope> = chunk
            .iter()
            .enumerate()
            .map(|(j, event)| pb::EventEnvelope {
                global_position: u64::try_from(first + j + 1).unwrap(),
                event: Some(wire::event_to_pb(event)),
                ..Default::default()
            })
            .collect();
        projection.apply_batch(&batch).unwrap();
    }
    projection.finish().unwrap();
    println!(
        "views: {commissioners} commissioners, {workstations} workstations, {} posts, {} service records ({} events) in {:.1}s",
        commissioners * 3,
        commissioners * 6,
        all.len(),
        started.elapsed().as_secs_f64()
    );

    let views = Views::open(&path).unwrap();
    let policy = Policy::default();
    let mut latencies = Vec::new();
    let mut found = 0usize;
    for _ in 0..queries {
        let start = date(365 + rng.below(180));
        let q = pb::CandidatesQuery {
            expertise: vec![tag(usize::try_from(rng.below(TAGS as u64)).unwrap())],
            city: CITIES[usize::try_from(rng.below(2)).unwrap()].to_string(),
            hours_per_month: 10,
            start_date: start.to_string(),
            end_date: start
                .checked_add_months(chrono::Months::new(6))
                .unwrap()
                .pred_opt()
                .unwrap()
                .to_string(),
            page_size: 50,
            ..Default::default()
        };
        let asked = Instant::now();
        let page = views.candidates(&q, &policy).unwrap();
        latencies.push(asked.elapsed().as_secs_f64() * 1000.0);
        assert!(!page.candidates.is_empty(), "no candidates for {q:?}");
        found += page.candidates.len();
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "candidates, {queries} queries (one tag of {TAGS}, a city, 10 h/month, 6 months): \
         median {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} candidates on the first pages)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
        found
    );

    let policy = AssessmentPolicy::default();
    let today = tepai::domain::parse_date("today", "2026-12-31").unwrap();
    for (subject, label, times) in [
        (pb::AssessmentSubject::Commissioners, "commissioner", 3),
        (pb::AssessmentSubject::Workstations, "workstation", 1),
    ] {
        let q = pb::AssessmentQuery {
            year: 2026,
            subject: subject as i32,
            ..Default::default()
        };
        for _ in 0..times {
            let asked = Instant::now();
            let page = views.assessment_all(&q, today, &policy).unwrap();
            let seconds = asked.elapsed().as_secs_f64();
            assert!(!page.rows.is_empty());
            let graded = page.rows.iter().filter(|r| r.points > 0).count();
            println!(
                "assessment 2026, every {label}: {} rows ({graded} with points) in {seconds:.2} s",
                page.rows.len()
            );
        }
    }
}
