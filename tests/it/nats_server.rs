//! A real nats-server per test: a reserved loopback port (kept across a
//! restart, so no other test can take it meanwhile), temp JetStream dir,
//! killed on drop. Never the shared server on 4222.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nats_cluster::reserved_port;

pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store_dir: tempfile::TempDir,
    config: Option<std::path::PathBuf>,
}

pub fn binary() -> String {
    for candidate in [
        "nats-server",
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
    ] {
        if Command::new(candidate).arg("--version").output().is_ok() {
            return candidate.to_owned();
        }
    }
    panic!(
        "nats-server is not installed. Install it with `apt-get install nats-server` \
         (Debian) or put a nats-server 2.9+ binary on the PATH."
    );
}

impl NatsServer {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a server that also reads `config` (nats-server's config
    /// syntax: authorization, accounts, tls, ...). Port, JetStream and its
    /// store dir still come from the command line, which wins over the file.
    pub fn with_config(config: &str) -> Self {
        Self::start_with(Some(config))
    }

    fn start_with(config: Option<&str>) -> Self {
        let store_dir = tempfile::tempdir().unwrap();
        let config = config.map(|text| {
            let path = store_dir.path().join("nats.conf");
            std::fs::write(&path, text).unwrap();
            path
        });
        let mut server = Self {
            child: None,
            port: reserved_port(),
            store_dir,
            config,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut command = Command::new(binary());
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        let child = command
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store_dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and starts it again on the same port and
    /// store directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
