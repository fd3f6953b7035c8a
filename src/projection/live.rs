//! Which generation of the views is live. A rebuild, possibly in another
//! process (`tepai ops rebuild`), swaps `views/CURRENT`; the query node
//! follows the pointer so that its projector and readers move to the new
//! file, and removes the generations no longer live.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ViewsDir;

/// How often the pointer is read. Polled, since it changes rarely and
/// polling needs no platform-specific file notification.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// Watches which generation of `views` is live until `stop`; the receiver
/// holds the live file's path and changes when a rebuild swaps it.
pub fn follow(
    views: ViewsDir,
    stop: CancellationToken,
) -> std::io::Result<watch::Receiver<PathBuf>> {
    let (tx, rx) = watch::channel(views.current()?);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
            match views.current() {
                Ok(path) if *tx.borrow() != path => {
                    tracing::info!(path = %path.display(), "a rebuild made new views live");
                    let old = tx.send_replace(path.clone());
                    // Readers still on the old file keep it open; unlinking
                    // does not disturb them.
                    if let Err(error) = views.remove_others(&[path.as_path()]) {
                        tracing::warn!(%error, old = %old.display(), "could not remove old views");
                    }
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot read which views are live"),
            }
        }
    });
    Ok(rx)
}
