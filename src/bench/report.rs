//! The figures of a run: percentiles over sorted samples, the report as
//! JSON, and as a table for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Percentiles of a latency sample, in microseconds (nearest rank).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// How many values the percentiles are over.
    pub samples: usize,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// The value at quantile `q` of `sorted` by nearest rank; 0 when empty.
fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len().max(1)) - 1)
        .copied()
        .unwrap_or(0)
}

impl Latency {
    /// The percentiles of `samples` (µs).
    pub fn of(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        Self {
            samples: samples.len(),
            p50_us: nearest_rank(&samples, 0.50),
            p99_us: nearest_rank(&samples, 0.99),
            p999_us: nearest_rank(&samples, 0.999),
            max_us: samples.last().copied().unwrap_or(0),
        }
    }
}

/// How fast events went through one stage after the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Stage {
    /// Whether the stage reached the final head before the watcher gave up.
    pub caught_up: bool,
    /// From the first ack until the stage reached the final head.
    pub seconds: Option<f64>,
    /// The run's events over those seconds.
    pub events_per_s: Option<f64>,
}

/// CPU and memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProcessFigures {
    /// User plus system CPU seconds spent during the load (setup and
    /// baselines excluded).
    pub cpu_s: f64,
    /// Peak resident set size since the process started, in KiB.
    pub peak_rss_kib: u64,
}

/// One baseline and tepai's figure against it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Baseline {
    /// Rows, messages or requests.
    pub count: u64,
    /// How long they took.
    pub seconds: f64,
    /// Count per second.
    pub per_s: f64,
    /// The tepai figure compared.
    pub tepai_per_s: Option<f64>,
    /// `tepai_per_s / per_s`.
    pub ratio: Option<f64>,
}

impl Baseline {
    /// `measured` against tepai's `tepai_per_s`.
    pub(super) fn against(measured: super::baseline::Measured, tepai_per_s: Option<f64>) -> Self {
        let per_s = measured.per_second();
        Self {
            count: measured.count,
            seconds: measured.seconds,
            per_s,
            tepai_per_s,
            ratio: tepai_per_s.map(|t| t / per_s.max(f64::EPSILON)),
        }
    }
}

/// What a run did, in the units its baselines count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Counts {
    /// Events the run's accepted commands wrote; rejections write none.
    pub events: u64,
    /// From the first send until the views held every event: durable,
    /// in JetStream and applied.
    pub end_to_end_s: Option<f64>,
    /// Requests answered: one per command, or one per batch.
    pub requests_answered: u64,
    /// From the first send to the last answer.
    pub wall_s: f64,
}

/// tepai's rates in its baselines' units, so each ratio compares like with
/// like.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Rates {
    /// Events per second end to end, against raw JetStream async publishes
    /// of as many messages of the events' size: both count messages that
    /// end up in a stream.
    pub events_end_to_end_per_s: Option<f64>,
    /// Requests answered per second, against raw NATS request/reply of as
    /// many requests of the same size: both count round trips. With
    /// batches a request carries many commands, and comparing commands/s
    /// with round trips/s would flatter tepai by the batch size.
    pub requests_per_s: f64,
}

/// The rates of `counts` that the baselines are compared with.
pub(super) fn like_for_like(counts: Counts) -> Rates {
    Rates {
        events_end_to_end_per_s: counts
            .end_to_end_s
            .map(|s| counts.events as f64 / s.max(f64::EPSILON)),
        requests_per_s: counts.requests_answered as f64 / counts.wall_s.max(f64::EPSILON),
    }
}

/// The three baselines.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Baselines {
    /// Average stored event payload, bytes (the SQLite rows carry this).
    pub event_payload_bytes: usize,
    /// Average event message on JetStream, bytes (the raw messages carry
    /// this).
    pub event_message_bytes: usize,
    /// Average command envelope, bytes.
    pub envelope_bytes: usize,
    /// Average request, bytes: an envelope, or a whole batch (the echo
    /// requests carry this).
    pub request_bytes: usize,
    /// Raw SQLite inserts, rows/s, against tepai's accepted events/s.
    pub sqlite: Option<Baseline>,
    /// Raw JetStream async publishes of as many messages as the run wrote
    /// events, msgs/s, against tepai's events/s end to end (to the views).
    pub jetstream: Option<Baseline>,
    /// Raw NATS request/reply of as many requests of the same size as the
    /// run's, req/s, against tepai's requests answered/s.
    pub echo: Option<Baseline>,
    /// Baselines that could not be measured, and why.
    pub failed: BTreeMap<String, String>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The NATS URL the load went to.
    pub nats_url: String,
    /// Whether the node was started by the bench.
    pub spawned: bool,
    /// Concurrent producers.
    pub producers: u64,
    /// Commands asked for.
    pub commands: u64,
    /// Commands/s asked for; 0 = as fast as possible.
    pub rate: u64,
    /// Commands per batch request; 0 = one command per request.
    pub batch: u64,
    /// Requests sent: commands, or batches.
    pub requests: u64,
    /// Requests answered.
    pub requests_answered: u64,
    /// `requests_answered` over `wall_s`.
    pub requests_per_s: f64,
    /// Workstations established in the setup phase.
    pub workstations: u64,
    /// Commands sent.
    pub sent: u64,
    /// Commands answered (accepted or rejected).
    pub answered: u64,
    /// Commands accepted.
    pub accepted: u64,
    /// Commands rejected (UNAVAILABLE counts as an error instead).
    pub rejected: u64,
    /// Rejections by code.
    pub rejected_by_code: BTreeMap<String, u64>,
    /// Rejections by rule.
    pub rejected_by_rule: BTreeMap<String, u64>,
    /// Commands that failed: UNAVAILABLE, timeouts, no responders.
    pub errors: u64,
    /// Failures by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The first few failures in words.
    pub error_examples: Vec<String>,
    /// From the first send to the last answer.
    pub wall_s: f64,
    /// Answered commands over `wall_s`.
    pub commands_per_s: f64,
    /// Accepted commands over `wall_s`.
    pub accepted_per_s: f64,
    /// Events the accepted commands wrote.
    pub events_written: u64,
    /// `events_written` over `wall_s`.
    pub accepted_events_per_s: f64,
    /// Send to answer, every answered command.
    pub ack_latency: Latency,
    /// Ack to visible in the views, every 20th accepted command.
    pub visible_latency: Latency,
    /// Sampled commands the views never showed before the watcher stopped.
    pub visible_unmeasured: u64,
    /// Status polls that got no answer.
    pub failed_status_polls: u64,
    /// Store head before the load (after the setup).
    pub head_before: u64,
    /// Store head after the load.
    pub head_after: u64,
    /// `head_after - head_before`: the events the stages had to carry.
    pub events_in_run: u64,
    /// The relay to JetStream.
    pub relay: Stage,
    /// The projector into the views.
    pub views: Stage,
    /// From the first send until the views reached the final head.
    pub end_to_end_s: Option<f64>,
    /// Answered commands over `end_to_end_s`.
    pub end_to_end_commands_per_s: Option<f64>,
    /// `events_in_run` over `end_to_end_s`.
    pub end_to_end_events_per_s: Option<f64>,
    /// The node, with `--spawn`.
    pub node: Option<ProcessFigures>,
    /// The node's nats-server, with `--spawn`.
    pub nats_server: Option<ProcessFigures>,
    /// This process: the producers, the watcher.
    pub load_generator: Option<ProcessFigures>,
    /// With `--spawn`: whether the node exited 0 after SIGTERM.
    pub node_stopped_cleanly: Option<bool>,
    /// Unless `--skip-baselines`.
    pub baselines: Option<Baselines>,
}

fn rate(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}/s")
    } else {
        format!("{value:.1}/s")
    }
}

fn opt_rate(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), rate)
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn process(figures: Option<ProcessFigures>) -> Option<String> {
    figures.map(|f| {
        format!(
            "{:.2} CPU s, peak RSS {:.1} MiB",
            f.cpu_s,
            f.peak_rss_kib as f64 / 1024.0
        )
    })
}

impl Report {
    /// The report as aligned text.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let pace = if self.rate == 0 {
            "as fast as possible".to_owned()
        } else {
            format!("paced at {}/s", self.rate)
        };
        let batches = if self.batch == 0 {
            String::new()
        } else {
            format!(" in batches of {}", self.batch)
        };
        let _ = writeln!(
            out,
            "tepai bench: {} producers, {} commands{batches} {pace}, {} workstations, {}{}",
            self.producers,
            self.commands,
            self.workstations,
            self.nats_url,
            if self.spawned { " (spawned)" } else { "" },
        );
        let _ = writeln!(
            out,
            "answered {} of {} sent: accepted {}, rejected {} ({}; {}), errors {} ({})",
            self.answered,
            self.sent,
            self.accepted,
            self.rejected,
            counts(&self.rejected_by_code),
            counts(&self.rejected_by_rule),
            self.errors,
            counts(&self.errors_by_kind),
        );
        for example in &self.error_examples {
            let _ = writeln!(out, "  error: {example}");
        }
        let _ = writeln!(
            out,
            "events {} (head {} -> {}), wall {:.2} s\n",
            self.events_in_run, self.head_before, self.head_after, self.wall_s
        );

        let none = || -> Option<&Baseline> { None };
        let baselines = self.baselines.as_ref();
        let sqlite = baselines.and_then(|b| b.sqlite.as_ref());
        let jetstream = baselines.and_then(|b| b.jetstream.as_ref());
        let echo = baselines.and_then(|b| b.echo.as_ref());
        let mut rows: Vec<[String; 4]> = vec![[
            "figure".into(),
            "tepai".into(),
            "baseline".into(),
            "ratio".into(),
        ]];
        let mut row = |name: &str, value: String, baseline: Option<&Baseline>, what: &str| {
            let (base, ratio) = match baseline {
                Some(b) => (
                    format!("{} {what}", rate(b.per_s)),
                    b.ratio.map_or_else(|| "—".into(), |r| format!("{r:.3}")),
                ),
                None => (String::new(), String::new()),
            };
            rows.push([name.into(), value, base, ratio]);
        };
        row(
            "requests answered/s",
            rate(self.requests_per_s),
            echo,
            "raw NATS req/reply",
        );
        row("commands answered/s", rate(self.commands_per_s), none(), "");
        row("accepted commands/s", rate(self.accepted_per_s), none(), "");
        row(
            "accepted events/s",
            rate(self.accepted_events_per_s),
            sqlite,
            "raw SQLite rows",
        );
        row(
            "end-to-end events/s (to views)",
            opt_rate(self.end_to_end_events_per_s),
            jetstream,
            "raw JetStream async publish",
        );
        row(
            "end-to-end commands/s (to views)",
            opt_rate(self.end_to_end_commands_per_s),
            none(),
            "",
        );
        row(
            "relay events/s",
            opt_rate(self.relay.events_per_s),
            none(),
            "",
        );
        row(
            "views events/s",
            opt_rate(self.views.events_per_s),
            none(),
            "",
        );
        let a = self.ack_latency;
        row(
            if self.batch == 0 {
                "ack latency p50 / p99 / p999"
            } else {
                "batch answer p50 / p99 / p999"
            },
            format!("{} / {} / {}", ms(a.p50_us), ms(a.p99_us), ms(a.p999_us)),
            none(),
            "",
        );
        let v = self.visible_latency;
        row(
            "ack -> visible p50 / p99",
            format!("{} / {} (n={})", ms(v.p50_us), ms(v.p99_us), v.samples),
            none(),
            "",
        );
        for (name, figures) in [
            ("node", self.node),
            ("nats-server", self.nats_server),
            ("load generator", self.load_generator),
        ] {
            if let Some(text) = process(figures) {
                row(name, text, none(), "");
            }
        }
        let widths: Vec<usize> = (0..4)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            let line = format!(
                "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if let Some(b) = baselines {
            let _ = writeln!(
                out,
                "\nsizes: event payload {} B, event message {} B, command envelope {} B, request {} B",
                b.event_payload_bytes, b.event_message_bytes, b.envelope_bytes, b.request_bytes
            );
            for (name, why) in &b.failed {
                let _ = writeln!(out, "baseline {name} failed: {why}");
            }
        }
        if self.rate > 0 {
            let _ = writeln!(
                out,
                "\nnote: paced at {}/s, so tepai's throughput is the pace asked for, not a limit; \
                 the ratios mean something only in an unpaced run",
                self.rate
            );
        }
        if !self.relay.caught_up || !self.views.caught_up {
            let _ = writeln!(
                out,
                "\nwarning: the relay or the views did not reach head {} in time",
                self.head_after
            );
        }
        if self.node_stopped_cleanly == Some(false) {
            let _ = writeln!(out, "\nwarning: the node did not exit cleanly on SIGTERM");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let latency = Latency::of((1..=1000).rev().collect());
        assert_eq!(
            (
                latency.p50_us,
                latency.p99_us,
                latency.p999_us,
                latency.max_us
            ),
            (500, 990, 999, 1000)
        );
    }

    fn measured(count: u64, seconds: f64) -> super::super::baseline::Measured {
        super::super::baseline::Measured { count, seconds }
    }

    #[test]
    fn batches_compare_events_with_messages_and_requests_with_round_trips() {
        // 1,000 commands in 10 batches of 100; the accepted ones wrote
        // 1,500 events, in the views 2 s after the first send.
        let rates = like_for_like(Counts {
            events: 1500,
            end_to_end_s: Some(2.0),
            requests_answered: 10,
            wall_s: 1.0,
        });
        assert_eq!(rates.events_end_to_end_per_s, Some(750.0));
        assert_eq!(rates.requests_per_s, 10.0, "round trips, not commands");
        let jetstream = Baseline::against(measured(1500, 1.0), rates.events_end_to_end_per_s);
        assert_eq!(jetstream.ratio, Some(0.5));
        let echo = Baseline::against(measured(10, 0.01), Some(rates.requests_per_s));
        assert_eq!(echo.ratio, Some(0.01));
    }

    #[test]
    fn single_commands_are_one_request_each_and_no_views_means_no_ratio() {
        let rates = like_for_like(Counts {
            events: 0,
            end_to_end_s: None,
            requests_answered: 400,
            wall_s: 2.0,
        });
        assert_eq!(rates.requests_per_s, 200.0);
        assert_eq!(rates.events_end_to_end_per_s, None);
        let jetstream = Baseline::against(measured(400, 0.1), rates.events_end_to_end_per_s);
        assert_eq!(jetstream.ratio, None);
    }

    #[test]
    fn percentiles_of_nothing_are_zero() {
        assert_eq!(Latency::of(Vec::new()), Latency::default());
        assert_eq!(Latency::of(vec![7]).p999_us, 7);
    }

    #[test]
    fn the_table_shows_every_figure() {
        let report = Report {
            commands_per_s: 1234.0,
            baselines: Some(Baselines {
                echo: Some(Baseline {
                    per_s: 4000.0,
                    ratio: Some(0.3087),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let table = report.table();
        assert!(table.contains("requests answered/s"), "{table}");
        assert!(table.contains("4000/s raw NATS req/reply"), "{table}");
        assert!(table.contains("0.309"), "{table}");
    }
}
