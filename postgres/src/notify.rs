//! Commit notifications: `NOTIFY` after appends, `LISTEN` for subscriptions.
//!
//! The append path never waits for a notification: after an append's statement has committed,
//! [`Notifier::committed`] starts (at most) one background `SELECT pg_notify(..)` on a pooled connection,
//! and coalesces the appends that commit while it is in flight, or within a millisecond after it, into one
//! more. A trigger would be simpler
//! but runs inside the append's transaction, where PostgreSQL serialises the commits of every transaction
//! that notified (a database-wide lock in `PreCommit_Notify`), which would undo group commit.
//!
//! Listeners use a dedicated connection per subscription and never read the payload: a notification
//! only wakes the subscription, which then reads the log after its checkpoint. After (re)connecting and
//! `LISTEN`ing, the listener signals once, so a commit between the subscription's last read and the
//! `LISTEN` is not left waiting for the poll interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

/// The channel appends notify on.
pub(crate) const CHANNEL: &str = "composable_rust_events";

/// A statement of its own, run after the append returned. It commits synchronously: an asynchronous commit
/// (`set_config('synchronous_commit', 'off', true)`) was measured to delay about 1% of notifications until
/// the subscribers' poll (p99 latency 0.5 s instead of 1.4 ms), and the synchronous one cost no measurable
/// append throughput (its WAL flush joins the appends' group commit); see docs/performance.md.
const NOTIFY: &str = "SELECT pg_notify($1, '')";

/// The least time between two notifications. Commits within it share the next one, so a busy store sends at
/// most 1,000 a second whatever its append rate (each is a commit of its own on the server), and a wake-up
/// waits at most this long behind the commit it announces.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

const IDLE: u8 = 0;
const IN_FLIGHT: u8 = 1;
const AGAIN: u8 = 2;

/// Sends `NOTIFY` after commits, outside the append's critical path, with at most one in flight.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    state: AtomicU8,
}

impl Notifier {
    /// Records that an append committed; notifies listeners in the background.
    pub(crate) fn committed(self: &Arc<Self>, pool: &PgPool) {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let next = match current {
                IDLE => IN_FLIGHT,
                IN_FLIGHT => AGAIN,
                _ => return,
            };
            match self.state.compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) if next == IN_FLIGHT => break,
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.state.store(IDLE, Ordering::Release);
            return;
        };
        let this = Arc::clone(self);
        let pool = pool.clone();
        runtime.spawn(async move {
            loop {
                let sent = tokio::time::Instant::now();
                if let Err(error) = sqlx::query(NOTIFY).bind(CHANNEL).execute(&pool).await {
                    // Subscriptions poll as well; a lost notification costs latency, not events.
                    tracing::debug!(%error, "could not send the commit notification");
                }
                if this.state.compare_exchange(IN_FLIGHT, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    return;
                }
                // Commits arrived meanwhile: one more notification for all of them, no sooner than
                // MIN_INTERVAL after the last (later commits keep joining it while this sleeps).
                tokio::time::sleep_until(sent + MIN_INTERVAL).await;
                this.state.store(IN_FLIGHT, Ordering::Release);
            }
        });
    }
}

/// A stream that yields after commits; `None` outside a tokio runtime.
pub(crate) fn listen(options: PgConnectOptions) -> Option<BoxStream<'static, ()>> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    // Capacity 1: a pending signal already stands for every commit after it.
    let (signals, received) = tokio::sync::mpsc::channel::<()>(1);
    runtime.spawn(forward(options, signals));
    Some(
        futures::stream::unfold(received, |mut received| async move { received.recv().await.map(|()| ((), received)) })
            .boxed(),
    )
}

/// Listens and forwards signals until the stream is dropped, reconnecting with backoff.
async fn forward(options: PgConnectOptions, signals: tokio::sync::mpsc::Sender<()>) {
    let mut backoff = Duration::from_millis(100);
    // One connection of its own: the listener must not take one from the store's pool for good.
    let pool = PgPoolOptions::new().max_connections(1).min_connections(0).connect_lazy_with(options);
    loop {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let result = tokio::select! {
            () = signals.closed() => return,
            result = listener => result,
        };
        match result {
            Ok(mut listener) => {
                backoff = Duration::from_millis(100);
                let _ = signals.try_send(());
                loop {
                    let received = tokio::select! {
                        () = signals.closed() => return,
                        received = listener.try_recv() => received,
                    };
                    match received {
                        // Lost the connection: notifications may have been missed, so wake up; the next
                        // `try_recv` reconnects and listens again.
                        Ok(Some(_)) | Ok(None) => {
                            let _ = signals.try_send(());
                        }
                        Err(error) => {
                            tracing::warn!(%error, "commit notifications interrupted; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, retry_in = ?backoff, "cannot listen for commit notifications"),
        }
        let _ = signals.try_send(());
        tokio::select! {
            () = signals.closed() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
