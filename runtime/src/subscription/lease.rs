//! Keeping the lease while a subscription works: renewals run alongside the work, not between pages, so
//! that a page slower than the lease's lifetime does not let a standby take over under a live instance.

use std::future::Future;
use std::time::Duration;

use composable_rust_core::{EventStoreError, HandlerLease};

/// Runs `work` while renewing `lease` every `every` ([`HandlerLease::confirm`]).
///
/// Returns the work's output, or the renewal's error as soon as a renewal fails (the lease was lost or
/// cannot be checked). In that case `work` is dropped where it stands, in the middle of a page if need be
/// (a transaction in flight rolls back), so that an instance that lost its lease handles nothing more.
pub(super) async fn while_renewing<T>(
    lease: &mut HandlerLease,
    every: Duration,
    work: impl Future<Output = T>,
) -> Result<T, EventStoreError> {
    // Both run in this task: the renewal must not wait for the work (a long page) to yield control of a
    // separate task, and the work keeps its borrows. The lease was taken (or renewed) just before, so the
    // first renewal is one interval away.
    let renewals = async {
        loop {
            tokio::time::sleep(every).await;
            if let Err(lost) = lease.confirm().await {
                return lost;
            }
        }
    };
    tokio::select! {
        // A page that finishes as a renewal fails still counts: its checkpoint is written.
        biased;
        output = work => Ok(output),
        lost = renewals => Err(lost),
    }
}
