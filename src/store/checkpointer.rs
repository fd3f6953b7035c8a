//! The store's WAL checkpointer: copies the WAL back into the database a
//! moment after commits, off the writer thread, so the writer's commits
//! never wait for a checkpoint and the WAL does not grow without bound.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

/// How long after a commit the WAL is checkpointed: commits arriving
/// meanwhile share one checkpoint.
const AFTER_COMMIT: Duration = Duration::from_millis(200);

/// Checkpoints the store at `store_path` after commits (`committed`
/// changes); it stops when the writer, the sender of `committed`, does.
pub fn spawn(store_path: PathBuf, mut committed: watch::Receiver<u64>) {
    tokio::spawn(async move {
        while committed.changed().await.is_ok() {
            tokio::time::sleep(AFTER_COMMIT).await;
            let path = store_path.clone();
            match tokio::task::spawn_blocking(move || super::checkpoint(&path)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(%error, "WAL checkpoint failed; retrying later"),
                Err(_) => break,
            }
        }
    });
}
