//! `--spawn`: a node of our own (`tepai up` on a free loopback port, which
//! starts its own nats-server child), and what `/proc` says each process
//! spent.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::config::NatsOptions;

/// How long the node may take to answer `tepai.query.status` after start.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long the node may take to drain and stop after SIGTERM before it is
/// killed.
const STOP_WITHIN: Duration = Duration::from_secs(20);
/// `/proc/<pid>/stat` counts CPU time in clock ticks; Linux's `USER_HZ` is
/// 100 on every architecture tepai runs on (asking `sysconf` would need
/// `unsafe` or a new dependency).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// Variables a `tepai up` child would read that could point it at
/// credentials or TLS our private nats-server does not have.
const INHERITED_NATS_VARS: [&str; 7] = [
    "TEPAI_NATS_CREDS",
    "TEPAI_NATS_TOKEN",
    "TEPAI_NATS_USER",
    "TEPAI_NATS_PASSWORD",
    "TEPAI_NATS_TLS_CA",
    "TEPAI_NATS_TLS_CERT",
    "TEPAI_NATS_TLS_KEY",
];

/// A `tepai up` child with its data in a temp directory. Dropping it stops
/// the node (SIGTERM, then SIGKILL) so an error path leaves no process
/// behind.
#[derive(Debug)]
pub(super) struct SpawnedNode {
    child: Option<Child>,
    url: String,
    log: PathBuf,
    /// Holds the data directory until the node is gone.
    _dir: tempfile::TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("looking for a free port")?;
    Ok(listener.local_addr()?.port())
}

impl SpawnedNode {
    /// Starts `tepai up` and returns once it answers `tepai.query.status`
    /// (the command service registers before the query service, so it is
    /// ready too).
    pub(super) async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tepai-bench-")
            .tempdir()
            .context("creating a temp directory for the node")?;
        let url = format!("nats://127.0.0.1:{}", free_port()?);
        let log = dir.path().join("node.log");
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let exe = std::env::current_exe().context("finding the tepai binary")?;
        let mut command = Command::new(exe);
        command
            .args(["up", "--nats-url", &url, "--http-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            // The load assumes the default region and limits; flags beat
            // whatever the environment sets.
            .args(["--cities", "150100,150200", "--max-posts", "3"])
            .args(["--max-hours", "80", "--max-term-months", "36"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        for var in INHERITED_NATS_VARS {
            command.env_remove(var);
        }
        let child = command.spawn().context("starting `tepai up`")?;
        let mut node = Self {
            child: Some(child),
            url,
            log,
            _dir: dir,
        };
        node.await_ready().await?;
        Ok(node)
    }

    async fn await_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        let options = self.nats_options();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "`tepai up` exited with {status} before it was ready:\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "`tepai up` did not answer tepai.query.status within {}s:\n{}",
                    READY_WITHIN.as_secs(),
                    self.log_tail()
                );
            }
            // The nats-server child takes a moment to listen, and the
            // services a moment more to register.
            if let Ok(client) = crate::bus::connect(&options, "tepai-bench-probe").await {
                if super::load::status(&client, Duration::from_millis(500))
                    .await
                    .is_ok()
                {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How to reach the node's nats-server.
    pub(super) fn nats_options(&self) -> NatsOptions {
        NatsOptions::plain(self.url.clone())
    }

    /// The node's process id.
    pub(super) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last lines of the node's log, for an error message.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops the node as an operator would (SIGTERM: drain, flush, stop its
    /// nats-server) and waits. `Ok(true)` when it exited successfully.
    pub(super) fn stop(mut self) -> anyhow::Result<bool> {
        self.terminate()
    }

    fn terminate(&mut self) -> anyhow::Result<bool> {
        let Some(mut child) = self.child.take() else {
            return Ok(true);
        };
        // std can only SIGKILL, which would orphan the node's nats-server:
        // `kill -TERM` lets the node stop it.
        let nats = nats_server_of(child.id());
        let signalled = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_WITHIN;
        if matches!(signalled, Ok(s) if s.success()) {
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait()? {
                    return Ok(status.success());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        child.kill().context("killing the node")?;
        child.wait()?;
        if let Some(pid) = nats {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        bail!(
            "the node did not stop within {}s of SIGTERM and was killed",
            STOP_WITHIN.as_secs()
        )
    }
}

impl Drop for SpawnedNode {
    fn drop(&mut self) {
        if let Err(error) = self.terminate() {
            eprintln!("warning: {error:#}");
        }
    }
}

/// What a process has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Usage {
    /// User plus system CPU time, in seconds.
    pub cpu_s: f64,
    /// Peak resident set size (`VmHWM`), in KiB.
    pub peak_rss_kib: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `pid` may be `self`.
pub(super) fn usage(pid: &str) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = fields_after_comm(&stat)?;
    // Fields 14 and 15 (utime, stime); the slice starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0);
    Some(Usage {
        cpu_s: (utime + stime) as f64 / CLOCK_TICKS_PER_SECOND,
        peak_rss_kib,
    })
}

/// The fields of a `/proc/<pid>/stat` line after `(comm)`, from field 3
/// (state) on. The command name may hold spaces and parentheses, so split
/// at the last `)`.
fn fields_after_comm(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

/// The nats-server the node at `parent` started, found by its parent pid.
pub(super) fn nats_server_of(parent: u32) -> Option<u32> {
    let parent = parent.to_string();
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let name = entry.ok()?.file_name().into_string().ok()?;
        let pid: u32 = name.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let comm = stat.split_once('(')?.1.rsplit_once(')')?.0;
        let ppid = *fields_after_comm(&stat)?.get(1)?;
        (ppid == parent && comm.starts_with("nats-server")).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_split_after_the_last_parenthesis() {
        let line = "42 (nats (x) server) S 7 42 42 0 -1 4194560 1 0 0 0 250 30 0 0 20 0";
        let fields = fields_after_comm(line).unwrap();
        assert_eq!(fields[0], "S");
        assert_eq!(fields[1], "7");
        assert_eq!((fields[11], fields[12]), ("250", "30"));
    }

    #[test]
    fn this_process_has_a_usage() {
        let own = usage("self").unwrap();
        assert!(own.peak_rss_kib > 0);
    }
}
