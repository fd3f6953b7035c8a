//! The load itself: a setup phase that establishes the workstations,
//! producers that run command chains over fresh ids, and a watcher that
//! polls `tepai.query.status` to see when the relay and the views catch up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use async_nats::{Client, RequestErrorKind};
use prost::Message;
use tokio::sync::watch;

use crate::bus::{QUERY_STATUS_SUBJECT, SUBMIT_BATCH_SUBJECT, SUBMIT_SUBJECT};
use crate::cli::REQUEST_TIMEOUT;
use crate::wire::pb::{self, command_envelope::Command as C};

/// How often the watcher asks for the status.
const POLL_EVERY: Duration = Duration::from_millis(2);
/// One accepted command in this many has its visibility timed: enough
/// samples for a p99, few enough that the bookkeeping costs nothing.
const VISIBILITY_SAMPLE_EVERY: u64 = 20;
/// One appointment chain in this many asks for 90 hours/month, over the
/// 80-hour limit, so the run exercises rejections too.
const OVER_LIMIT_EVERY: u64 = 10;
/// Posts per workstation the load aims for, below the capacity of 500 so
/// that only the hours rule rejects (see [`workstations_for`]).
const POSTS_PER_WORKSTATION: u64 = 400;
/// Capacity of each workstation.
const CAPACITY: u32 = 500;
/// How long a batch may wait for its answer: a full one is a commit of a
/// thousand commands, behind the other producers' batches.
const BATCH_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many error messages are kept for the report.
const ERROR_EXAMPLES: usize = 5;

const HOHHOT: &str = "150100";
const BAOTOU: &str = "150200";

/// Asks the query service for the status.
pub(super) async fn status(client: &Client, timeout: Duration) -> anyhow::Result<pb::Status> {
    let request = async_nats::Request::new()
        .payload(pb::StatusQuery {}.encode_to_vec().into())
        .timeout(Some(timeout));
    let reply = client
        .send_request(QUERY_STATUS_SUBJECT, request)
        .await
        .with_context(|| format!("asking {QUERY_STATUS_SUBJECT}"))?;
    pb::Status::decode(reply.payload).context("decoding the status")
}

/// The views' checkpoint in a status (the first projection's).
pub(super) fn views_checkpoint(status: &pb::Status) -> u64 {
    status.projections.first().map_or(0, |p| p.checkpoint)
}

/// A workstation the producers appoint posts at.
#[derive(Debug, Clone)]
pub(super) struct Station {
    id: String,
    city: &'static str,
}

/// How many workstations a run of `commands` needs. Every post runs
/// through 2025, so all of a workstation's posts overlap and count against
/// its capacity on the same days; a chain is about four commands, so
/// `commands / 4` posts spread at [`POSTS_PER_WORKSTATION`] each.
pub(super) fn workstations_for(commands: u64) -> u64 {
    (commands / 4).div_ceil(POSTS_PER_WORKSTATION).max(4)
}

fn envelope(command: C, correlation: &str) -> pb::CommandEnvelope {
    pb::CommandEnvelope {
        command_id: uuid::Uuid::now_v7().to_string(),
        expected_version: None,
        actor: "bench".into(),
        correlation_id: correlation.into(),
        command: Some(command),
    }
}

/// Establishes `count` workstations, alternating between Hohhot and
/// Baotou. Any refusal fails the run: the load would be meaningless.
pub(super) async fn establish_workstations(
    client: &Client,
    count: u64,
    correlation: &str,
) -> anyhow::Result<Vec<Station>> {
    let mut stations = Vec::new();
    for n in 0..count {
        let station = Station {
            id: uuid::Uuid::now_v7().to_string(),
            city: if n % 2 == 0 { HOHHOT } else { BAOTOU },
        };
        let command = C::EstablishWorkstation(pb::EstablishWorkstation {
            workstation_id: station.id.clone(),
            name: format!("压测工作站 {n}"),
            host_org: "内蒙古科技大学".into(),
            host_city: station.city.into(),
            capacity: CAPACITY,
            fields: vec!["智能制造".into()],
        });
        let bytes = envelope(command, correlation).encode_to_vec();
        let reply = client
            .send_request(
                SUBMIT_SUBJECT,
                async_nats::Request::new()
                    .payload(bytes.into())
                    .timeout(Some(REQUEST_TIMEOUT)),
            )
            .await
            .context("establishing a workstation")?;
        let result = pb::CommandResult::decode(reply.payload).context("decoding the answer")?;
        if let Some(pb::command_result::Outcome::Rejected(r)) = result.outcome {
            bail!(
                "establishing a workstation was refused: {} {}: {}",
                r.code().as_str_name(),
                r.rule,
                r.message
            );
        }
        stations.push(station);
    }
    Ok(stations)
}

/// Whether chain `n` asks for hours over the limit.
fn over_limit(n: u64) -> bool {
    n % OVER_LIMIT_EVERY == OVER_LIMIT_EVERY - 1
}

/// The commands of chain `n`: register a commissioner, appoint them to a
/// post (over the hours limit for one chain in [`OVER_LIMIT_EVERY`]),
/// extend its term, record a service inside it. Every id is fresh.
fn chain(n: u64, stations: &[Station]) -> Vec<C> {
    let index = usize::try_from(n % stations.len().max(1) as u64).unwrap_or(0);
    let Some(station) = stations.get(index) else {
        return Vec::new();
    };
    let commissioner_id = uuid::Uuid::now_v7().to_string();
    let post_id = uuid::Uuid::now_v7().to_string();
    let over_limit = over_limit(n);
    vec![
        C::RegisterCommissioner(pb::RegisterCommissioner {
            commissioner_id: commissioner_id.clone(),
            name: format!("特派员{n}"),
            // Half live in the other city: cross-city posts for the views.
            home_city: if n % 4 < 2 { HOHHOT } else { BAOTOU }.into(),
            employer: "内蒙古农业大学".into(),
            kind: pb::CommissionerKind::University as i32,
            expertise: vec!["种业".into(), "草原生态".into()],
        }),
        C::AppointPost(pb::AppointPost {
            post_id: post_id.clone(),
            commissioner_id,
            workstation_id: station.id.clone(),
            serving_city: station.city.into(),
            role: "技术顾问".into(),
            hours_per_month: if over_limit { 90 } else { 20 },
            start_date: "2025-01-01".into(),
            end_date: "2025-12-31".into(),
            demand_id: String::new(),
        }),
        C::ExtendPostTerm(pb::ExtendPostTerm {
            post_id: post_id.clone(),
            end_date: "2026-06-30".into(),
        }),
        C::RecordService(pb::RecordService {
            service_id: uuid::Uuid::now_v7().to_string(),
            post_id,
            date: "2025-06-01".into(),
            minutes: 180,
            beneficiary: "土默特左旗农牧业合作社".into(),
            beneficiary_city: station.city.into(),
            summary: "玉米良种选育与测土配方施肥现场指导".into(),
            demand_id: String::new(),
        }),
    ]
}

/// What the producers share.
#[derive(Debug)]
pub(super) struct Shared {
    /// The next chain number; numbers pick the workstation and which
    /// chains go over the limit, evenly across producers.
    chains: AtomicU64,
    /// Accepted commands so far, for sampling visibility.
    accepted: AtomicU64,
    stations: Vec<Station>,
    correlation: String,
}

impl Shared {
    /// State for producers appointing at `stations`.
    pub(super) fn new(stations: Vec<Station>, correlation: String) -> Self {
        Self {
            chains: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            stations,
            correlation,
        }
    }
}

/// Sends one request of `bytes` on `subject`, counting its bytes and the
/// run's first send in `tally`; the reply, when it was sent and when it
/// was answered.
async fn send(
    client: &async_nats::Client,
    tally: &mut Tally,
    subject: &'static str,
    bytes: Vec<u8>,
    timeout: std::time::Duration,
) -> (
    Result<async_nats::Message, async_nats::RequestError>,
    Instant,
    Instant,
) {
    tally.request_bytes += bytes.len() as u64;
    let request = async_nats::Request::new()
        .payload(bytes.into())
        .timeout(Some(timeout));
    let sent_at = Instant::now();
    tally.first_send.get_or_insert(sent_at);
    let reply = client.send_request(subject, request).await;
    (reply, sent_at, Instant::now())
}

/// What one producer (or, merged, all of them) saw.
#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Send to answer, in µs, of every answered command.
    pub latencies_us: Vec<u64>,
    /// Commands sent.
    pub sent: u64,
    /// Commands answered (accepted or rejected, UNAVAILABLE included).
    pub answered: u64,
    /// Commands accepted.
    pub accepted: u64,
    /// Events the accepted commands wrote.
    pub events: u64,
    /// Encoded envelope bytes sent.
    pub envelope_bytes: u64,
    /// Requests sent: one per command, or one per batch.
    pub requests: u64,
    /// Requests answered.
    pub requests_answered: u64,
    /// Encoded request bytes sent (envelopes, or whole batches).
    pub request_bytes: u64,
    /// Rejections by code (`RULE_VIOLATED`, ...), UNAVAILABLE excluded.
    pub rejected_by_code: BTreeMap<String, u64>,
    /// Rejections by rule (`HOURS_OVER_LIMIT`, ...).
    pub rejected_by_rule: BTreeMap<String, u64>,
    /// Failures: UNAVAILABLE, timeouts, no responders, broken replies.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The first few failures in words.
    pub error_examples: Vec<String>,
    /// When the first command went out.
    pub first_send: Option<Instant>,
    /// When the first command was accepted.
    pub first_ack: Option<Instant>,
    /// When the last answer came.
    pub last_answer: Option<Instant>,
    /// (global position of the command's last event, ack instant) of every
    /// [`VISIBILITY_SAMPLE_EVERY`]th accepted command.
    pub visibility: Vec<(u64, Instant)>,
    /// Highest global position acknowledged.
    pub max_position: u64,
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (key, count) in from {
        *into.entry(key).or_default() += count;
    }
}

impl Tally {
    /// Adds `other` into `self`.
    pub(super) fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.sent += other.sent;
        self.answered += other.answered;
        self.accepted += other.accepted;
        self.events += other.events;
        self.envelope_bytes += other.envelope_bytes;
        self.requests += other.requests;
        self.requests_answered += other.requests_answered;
        self.request_bytes += other.request_bytes;
        add_counts(&mut self.rejected_by_code, other.rejected_by_code);
        add_counts(&mut self.rejected_by_rule, other.rejected_by_rule);
        add_counts(&mut self.errors_by_kind, other.errors_by_kind);
        for example in other.error_examples {
            if self.error_examples.len() < ERROR_EXAMPLES {
                self.error_examples.push(example);
            }
        }
        self.first_send = earliest(self.first_send, other.first_send);
        self.first_ack = earliest(self.first_ack, other.first_ack);
        self.last_answer = self.last_answer.max(other.last_answer);
        self.visibility.extend(other.visibility);
        self.max_position = self.max_position.max(other.max_position);
    }

    fn error(&mut self, kind: &str, message: String) {
        *self.errors_by_kind.entry(kind.to_owned()).or_default() += 1;
        if self.error_examples.len() < ERROR_EXAMPLES {
            self.error_examples.push(message);
        }
    }

    /// Failures of every kind.
    pub(super) fn errors(&self) -> u64 {
        self.errors_by_kind.values().sum()
    }
}

/// When a paced producer sends: its first slot and the gap between slots.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    /// The first send.
    pub first: tokio::time::Instant,
    /// Between sends.
    pub every: Duration,
}

/// Runs chains until `budget` commands are sent, each command after the
/// previous one's answer (a chain's commands depend on each other). A
/// rejected or failed command ends its chain: what follows would only be
/// refused for want of the post.
pub(super) async fn produce(
    client: Client,
    shared: Arc<Shared>,
    budget: u64,
    pace: Option<Pace>,
) -> Tally {
    let mut tally = Tally::default();
    let mut slot = pace.map(|p| p.first);
    while tally.sent < budget {
        let n = shared.chains.fetch_add(1, Ordering::Relaxed);
        for command in chain(n, &shared.stations) {
            if tally.sent >= budget {
                break;
            }
            // Paced, the latency counts from the slot the command was due
            // in, as in `produce_batches`: counted from the send, a stall
            // that made this producer late would vanish from its figures
            // (coordinated omission), and so would the timer's lateness.
            let due = match (slot, pace) {
                (Some(at), Some(pace)) => {
                    tokio::time::sleep_until(at).await;
                    slot = Some(at + pace.every);
                    Some(at.into_std())
                }
                _ => None,
            };
            let bytes = envelope(command, &shared.correlation).encode_to_vec();
            tally.sent += 1;
            tally.requests += 1;
            tally.envelope_bytes += bytes.len() as u64;
            let (reply, sent_at, answered_at) =
                send(&client, &mut tally, SUBMIT_SUBJECT, bytes, REQUEST_TIMEOUT).await;
            let since = due.unwrap_or(sent_at);
            if !record(&mut tally, &shared, reply, since, answered_at) {
                break;
            }
        }
    }
    tally
}

/// Counts one answer, its latency from `since` (its slot when paced, else
/// its send); `true` when the command was accepted.
fn record(
    tally: &mut Tally,
    shared: &Shared,
    reply: Result<async_nats::Message, async_nats::RequestError>,
    since: Instant,
    answered_at: Instant,
) -> bool {
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => {
            let kind = match error.kind() {
                RequestErrorKind::TimedOut => "TIMEOUT",
                RequestErrorKind::NoResponders => "NO_RESPONDERS",
                _ => "REQUEST_FAILED",
            };
            tally.error(kind, format!("{kind}: {error}"));
            return false;
        }
    };
    let result = match pb::CommandResult::decode(reply.payload) {
        Ok(result) => result,
        Err(error) => {
            tally.error("BAD_REPLY", format!("undecodable CommandResult: {error}"));
            return false;
        }
    };
    tally.requests_answered += 1;
    tally.last_answer = Some(answered_at);
    let micros = answered_at.saturating_duration_since(since).as_micros();
    tally
        .latencies_us
        .push(u64::try_from(micros).unwrap_or(u64::MAX));
    match count_outcome(tally, result, answered_at) {
        Some(last) => {
            let nth = shared.accepted.fetch_add(1, Ordering::Relaxed);
            if nth.is_multiple_of(VISIBILITY_SAMPLE_EVERY) && last > 0 {
                tally.visibility.push((last, answered_at));
            }
            true
        }
        None => false,
    }
}

/// Counts one command's answer: accepted (its events), rejected by code and
/// rule, or a failure (UNAVAILABLE, no outcome). Returns the position of
/// an accepted command's last event.
fn count_outcome(
    tally: &mut Tally,
    result: pb::CommandResult,
    answered_at: Instant,
) -> Option<u64> {
    tally.answered += 1;
    match result.outcome {
        Some(pb::command_result::Outcome::Accepted(accepted)) => {
            tally.accepted += 1;
            tally.events += accepted.events.len() as u64;
            tally.first_ack.get_or_insert(answered_at);
            let last = accepted
                .events
                .iter()
                .map(|e| e.global_position)
                .max()
                .unwrap_or(0);
            tally.max_position = tally.max_position.max(last);
            Some(last)
        }
        Some(pb::command_result::Outcome::Rejected(rejected)) => {
            let code = rejected.code();
            if code == pb::RejectCode::Unavailable {
                tally.error(
                    "UNAVAILABLE",
                    format!("UNAVAILABLE {}: {}", rejected.rule, rejected.message),
                );
            } else {
                *tally
                    .rejected_by_code
                    .entry(code.as_str_name().to_owned())
                    .or_default() += 1;
                *tally.rejected_by_rule.entry(rejected.rule).or_default() += 1;
            }
            None
        }
        None => {
            tally.error("BAD_REPLY", "a CommandResult without outcome".into());
            None
        }
    }
}

/// The commands of the next batch: chains (a chain's commands see each
/// other within the batch) until `size`; the chain the size cuts loses its
/// tail, so no chain depends on an earlier batch. An over-limit chain stops
/// after its refused appointment, as a single-command producer's does, so
/// the only rejections are the hours rule's.
fn next_batch(shared: &Shared, size: u64) -> Vec<pb::CommandEnvelope> {
    let mut batch = Vec::new();
    while (batch.len() as u64) < size {
        let n = shared.chains.fetch_add(1, Ordering::Relaxed);
        let mut commands = chain(n, &shared.stations);
        if over_limit(n) {
            commands.truncate(2);
        }
        for command in commands {
            if batch.len() as u64 >= size {
                break;
            }
            batch.push(envelope(command, &shared.correlation));
        }
    }
    batch
}

/// Sends batches of `size` commands until `budget` commands are sent, each
/// after the previous one's answer. With `pace`, one batch per slot, and
/// the latency counts from the slot, not the send, so a producer that fell
/// behind its schedule shows the wait (no coordinated omission).
pub(super) async fn produce_batches(
    client: Client,
    shared: Arc<Shared>,
    budget: u64,
    size: u64,
    pace: Option<Pace>,
) -> Tally {
    let mut tally = Tally::default();
    let mut slot = pace.map(|p| p.first);
    while tally.sent < budget {
        let due = match (slot, pace) {
            (Some(at), Some(pace)) => {
                tokio::time::sleep_until(at).await;
                slot = Some(at + pace.every);
                Some(at.into_std())
            }
            _ => None,
        };
        let commands = next_batch(&shared, size.min(budget - tally.sent));
        let count = commands.len() as u64;
        tally.envelope_bytes += commands.iter().map(|c| c.encoded_len() as u64).sum::<u64>();
        let bytes = pb::CommandBatch { commands }.encode_to_vec();
        tally.sent += count;
        tally.requests += 1;
        let (reply, sent_at, answered_at) = send(
            &client,
            &mut tally,
            SUBMIT_BATCH_SUBJECT,
            bytes,
            BATCH_TIMEOUT,
        )
        .await;
        record_batch(
            &mut tally,
            reply,
            due.unwrap_or(sent_at),
            answered_at,
            count,
        );
    }
    tally
}

/// Counts one batch's answer: each command's outcome, the batch's latency
/// and its last position as a visibility sample.
fn record_batch(
    tally: &mut Tally,
    reply: Result<async_nats::Message, async_nats::RequestError>,
    since: Instant,
    answered_at: Instant,
    count: u64,
) {
    let answer = match reply {
        Ok(reply) => match pb::CommandBatchResult::decode(reply.payload) {
            Ok(answer) => answer,
            Err(error) => {
                tally.error(
                    "BAD_REPLY",
                    format!("undecodable CommandBatchResult: {error}"),
                );
                return;
            }
        },
        Err(error) => {
            let kind = match error.kind() {
                RequestErrorKind::TimedOut => "TIMEOUT",
                RequestErrorKind::NoResponders => "NO_RESPONDERS",
                _ => "REQUEST_FAILED",
            };
            tally.error(kind, format!("{kind}: a batch of {count}: {error}"));
            return;
        }
    };
    tally.requests_answered += 1;
    tally.last_answer = Some(answered_at);
    let micros = answered_at.saturating_duration_since(since).as_micros();
    tally
        .latencies_us
        .push(u64::try_from(micros).unwrap_or(u64::MAX));
    if let Some(refused) = answer.rejected {
        // The whole batch refused: every command of it, by that code.
        for _ in 0..count {
            let result = pb::CommandResult {
                command_id: String::new(),
                outcome: Some(pb::command_result::Outcome::Rejected(refused.clone())),
            };
            count_outcome(tally, result, answered_at);
        }
        return;
    }
    let last = answer
        .results
        .into_iter()
        .filter_map(|result| count_outcome(tally, result, answered_at))
        .max();
    if let Some(last) = last.filter(|p| *p > 0) {
        tally.visibility.push((last, answered_at));
    }
}

/// One look at the status, kept when something moved.
#[derive(Debug, Clone, Copy)]
pub(super) struct Observation {
    /// When the answer came.
    pub at: Instant,
    /// What the relay has had acknowledged by JetStream.
    pub relay: u64,
    /// The views' checkpoint.
    pub views: u64,
}

/// What the watcher saw.
#[derive(Debug, Default)]
pub(super) struct Watched {
    /// Observations in time order; `relay` and `views` never go down.
    pub observations: Vec<Observation>,
    /// Polls that got no answer.
    pub failed_polls: u64,
}

impl Watched {
    /// When `relay` first reached `position`.
    pub(super) fn relay_reached(&self, position: u64) -> Option<Instant> {
        let i = self.observations.partition_point(|o| o.relay < position);
        self.observations.get(i).map(|o| o.at)
    }

    /// When the views first reached `position`.
    pub(super) fn views_reached(&self, position: u64) -> Option<Instant> {
        let i = self.observations.partition_point(|o| o.views < position);
        self.observations.get(i).map(|o| o.at)
    }
}

/// Polls the status every [`POLL_EVERY`] until the relay and the views
/// have both reached the head sent on `target`, or `give_up` after it was
/// sent, or the sender is dropped without one.
pub(super) async fn watch_progress(
    client: Client,
    mut target: watch::Receiver<Option<u64>>,
    give_up: Duration,
) -> Watched {
    let mut watched = Watched::default();
    let mut ticks = tokio::time::interval(POLL_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut relay, mut views) = (0, 0);
    let mut deadline = None;
    loop {
        ticks.tick().await;
        match status(&client, Duration::from_secs(1)).await {
            Ok(status) => {
                let seen_relay = status.relay_position.max(relay);
                let seen_views = views_checkpoint(&status).max(views);
                if watched.observations.is_empty() || (seen_relay, seen_views) != (relay, views) {
                    (relay, views) = (seen_relay, seen_views);
                    watched.observations.push(Observation {
                        at: Instant::now(),
                        relay,
                        views,
                    });
                }
            }
            Err(_) => watched.failed_polls += 1,
        }
        let head = *target.borrow_and_update();
        match head {
            Some(head) => {
                if relay >= head && views >= head {
                    break;
                }
                let deadline = *deadline.get_or_insert_with(|| Instant::now() + give_up);
                if Instant::now() > deadline {
                    break;
                }
            }
            None if target.has_changed().is_err() => break,
            None => {}
        }
    }
    watched
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stations() -> Vec<Station> {
        (0..4)
            .map(|n| Station {
                id: format!("ws{n}"),
                city: if n % 2 == 0 { HOHHOT } else { BAOTOU },
            })
            .collect()
    }

    #[test]
    fn one_chain_in_ten_asks_for_hours_over_the_limit() {
        let over = (0..100)
            .filter(|n| {
                matches!(&chain(*n, &stations())[1], C::AppointPost(a) if a.hours_per_month > 80)
            })
            .count();
        assert_eq!(over, 10);
    }

    #[test]
    fn a_chain_serves_its_workstation_s_city() {
        let chain = chain(3, &stations());
        let (C::AppointPost(a), C::RecordService(s)) = (&chain[1], &chain[3]) else {
            panic!("unexpected chain {chain:?}");
        };
        assert_eq!(
            (a.workstation_id.as_str(), a.serving_city.as_str()),
            ("ws3", BAOTOU)
        );
        assert_eq!(s.beneficiary_city, BAOTOU);
    }

    #[test]
    fn a_batch_holds_whole_chains_and_cuts_the_over_limit_ones_short() {
        let shared = Shared::new(stations(), "c".into());
        // Chains of four commands; chain 9 (over the limit) of two; a
        // chain cut by the size loses its tail rather than straddling two
        // batches (chain 7 in the first, chain 10 in the second).
        let first = next_batch(&shared, 30);
        let second = next_batch(&shared, 8);
        assert_eq!((first.len(), second.len()), (30, 8));
        let over: Vec<_> = first
            .iter()
            .chain(&second)
            .filter(|e| matches!(&e.command, Some(C::AppointPost(a)) if a.hours_per_month > 80))
            .collect();
        assert_eq!(over.len(), 1);
        assert!(matches!(
            second.last().and_then(|e| e.command.as_ref()),
            Some(C::AppointPost(_))
        ));
    }

    #[test]
    fn workstations_keep_posts_under_capacity() {
        assert_eq!(workstations_for(400), 4);
        let n = workstations_for(20_000);
        assert!(20_000 / 4 / n < u64::from(CAPACITY));
    }

    #[test]
    fn the_watcher_finds_the_first_observation_at_a_position() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let watched = Watched {
            observations: vec![
                Observation {
                    at: at(0),
                    relay: 0,
                    views: 0,
                },
                Observation {
                    at: at(2),
                    relay: 10,
                    views: 4,
                },
                Observation {
                    at: at(4),
                    relay: 12,
                    views: 12,
                },
            ],
            failed_polls: 0,
        };
        assert_eq!(watched.views_reached(5), Some(at(4)));
        assert_eq!(watched.relay_reached(5), Some(at(2)));
        assert_eq!(watched.views_reached(13), None);
    }
}
