//! Following a shared store: the writes other replicas commit are applied
//! to this replica's in-memory index as the store announces them.

use std::time::Duration;

use super::{Engine, blocking};

/// How long a failed catch-up (the store out of reach) waits before it is
/// tried again.
const RETRY: Duration = Duration::from_millis(500);
/// How long writes must pause before a replica settles its statistics
/// (`Commit::settle`).
const SETTLE: Duration = Duration::from_secs(2);

impl Engine {
    /// Starts the task that keeps the state up with a shared store; `None`
    /// for a store only this process writes.
    pub(super) fn follow(&self) -> Option<tokio::task::JoinHandle<()>> {
        let mut seen = self.store.follow()?;
        let writer = self.writer.clone();
        let commit = self.commit();
        let state = self.state.clone();
        Some(tokio::spawn(async move {
            let mut behind = false;
            loop {
                if !behind {
                    match tokio::time::timeout(SETTLE, seen.changed()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return,
                        Err(_) => {
                            if !commit.settle_due() {
                                continue;
                            }
                            let _writer = writer.clone().lock_owned().await;
                            let commit = commit.clone();
                            if let Ok(Err(err)) | Err(err) = blocking(move || commit.settle()).await
                            {
                                tracing::warn!(%err, "settling with the store failed");
                            }
                            continue;
                        }
                    }
                }
                let newest = *seen.borrow_and_update();
                if super::state::read_lock(&state).generation == newest && !behind {
                    continue;
                }
                // One writer at a time: a write of this replica catches up
                // itself, under the same lock.
                let _writer = writer.clone().lock_owned().await;
                let commit = commit.clone();
                behind = match blocking(move || commit.catch_up()).await {
                    Ok(Ok(())) => false,
                    Ok(Err(err)) | Err(err) => {
                        tracing::warn!(%err, "catching up with the store failed; retrying");
                        tokio::time::sleep(RETRY).await;
                        true
                    }
                };
            }
        }))
    }
}
