//! A first run that works: when nothing answers at a loopback NATS URL and
//! `nats-server` is installed, start one as a child process with JetStream
//! under the data directory, and stop it when tepai exits.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why no NATS server could be found or started.
#[derive(Debug, thiserror::Error)]
pub enum LocalNatsError {
    /// Nothing answers and tepai may not or cannot start a server.
    #[error("nothing answers at {url}, and {why}. Start one (`apt-get install nats-server`, then `nats-server -js`; or `docker compose up nats`) or point TEPAI_NATS_URL at yours")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// Why tepai did not start one itself.
        why: String,
    },
    /// The child did not come up.
    #[error("started nats-server, but it did not accept connections on {0} within 10 s")]
    DidNotStart(SocketAddr),
}

/// A nats-server started by tepai; killed on drop.
#[derive(Debug)]
pub struct LocalNats {
    child: Child,
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn address_of(url: &str) -> Option<SocketAddr> {
    let first = url.split(',').next()?.trim();
    let host_port = first.split_once("://").map_or(first, |(_, rest)| rest);
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, hp)| hp);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:4222")
    };
    host_port.to_socket_addrs().ok()?.next()
}

/// Returns `None` when a server answers at `url`; otherwise starts one (for
/// a loopback URL, when `nats-server` is on the PATH) and returns it.
pub fn ensure(url: &str, data_dir: &Path) -> Result<Option<LocalNats>, LocalNatsError> {
    let unreachable = |why: &str| LocalNatsError::Unreachable {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let Some(address) = address_of(url) else {
        return Ok(None);
    };
    if TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok() {
        return Ok(None);
    }
    if !address.ip().is_loopback() {
        return Err(unreachable("it is not on this machine"));
    }
    let binary = [
        "nats-server",
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
    ]
    .into_iter()
    .find(|b| Command::new(b).arg("--version").output().is_ok())
    .ok_or_else(|| unreachable("nats-server is not installed"))?;
    let store = data_dir.join("nats");
    std::fs::create_dir_all(&store)
        .map_err(|e| unreachable(&format!("{}: {e}", store.display())))?;
    let mut command = Command::new(binary);
    // Its own process group: a Ctrl-C in the terminal must reach tepai
    // only, so tepai can drain over a live server and then stop it.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command
        .args([
            "-a",
            &address.ip().to_string(),
            "-p",
            &address.port().to_string(),
            "-js",
            "-sd",
        ])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| unreachable(&format!("nats-server could not be started: {e}")))?;
    let local = LocalNats { child };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(LocalNatsError::DidNotStart(address));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!(%address, store = %store.display(), "started a local nats-server with JetStream; it stops when tepai does");
    Ok(Some(local))
}
