//! Progress of long operator commands: a bar with events/s and ETA on a
//! terminal, plain lines once a second otherwise (logs, CI, pipes).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports progress over a known total of events.
#[derive(Debug)]
pub struct Progress {
    label: &'static str,
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// Starts reporting `label` over `total` events.
    pub fn new(label: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} events, {per_sec}, ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label);
            bar
        });
        let now = Instant::now();
        Self {
            label,
            bar,
            total,
            done: 0,
            started: now,
            last_line: now,
        }
    }

    /// Moves the total, for a source that keeps growing.
    pub fn set_total(&mut self, total: u64) {
        self.total = total.max(self.done);
        if let Some(bar) = &self.bar {
            bar.set_length(self.total);
        }
    }

    /// Counts `n` more events done.
    pub fn advance(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(bar) => bar.set_position(self.done),
            None if self.last_line.elapsed() >= Duration::from_secs(1) => {
                self.last_line = Instant::now();
                eprintln!("{}", self.line());
            }
            None => {}
        }
    }

    /// Events per second so far.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    fn line(&self) -> String {
        let rate = self.rate();
        let left = self.total.saturating_sub(self.done);
        let eta = if rate > 0.0 { left as f64 / rate } else { 0.0 };
        let percent = (self.done * 100).checked_div(self.total).unwrap_or(100);
        format!(
            "{}: {}/{} events ({percent}%), {rate:.0} events/s, ETA {eta:.0}s",
            self.label, self.done, self.total
        )
    }

    /// Ends the report with a summary line.
    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "{}: {} events in {:.1}s ({:.0} events/s)",
            self.label,
            self.done,
            self.started.elapsed().as_secs_f64(),
            self.rate()
        );
    }
}
