//! `show`: an order now, or as it was at a version or a time.

use chrono::{DateTime, SecondsFormat, Utc};

use composable_rust::Version;
use composable_rust::aggregate::Loaded;
use composable_rust::event_store::LoadUntil;

use super::{Exit, Failure, Session};
use crate::cli::PointInTime;
use crate::domain::{Order, OrderId};
use crate::output;

impl Session {
    /// `show`: the order now, or as it was at a version or a time (`Repository::load_as_of`). A version
    /// past its last event, or a time before its first, is an error (exit 5) that names the bounds.
    pub(super) async fn show(&self, id: &OrderId, at: PointInTime) -> Result<Exit, Failure> {
        let latest = self.load_existing(id).await?;
        let last = latest.version;
        let until = at.until();
        if until == LoadUntil::End {
            out!("{}", output::order_details(id, &latest.state, last));
            outln!("  rebuilt from {}: {}", self.description, describe_load(&latest));
            return Ok(Exit::Done);
        }
        if let LoadUntil::Version(version) = until {
            if version > last {
                return Err(Failure {
                    exit: Exit::NotFound,
                    message: format!(
                        "order {id} has no version {version}: its last event is version {last}; \
                         `order-processing history {id}` lists its events"
                    ),
                });
            }
        }
        let past = self.repository.load_as_of(id.stream_id(), until).await.map_err(|e| Failure::load(id, &e))?;
        let recorded = |version| async move { self.recorded_at(id, version).await.map(rfc3339) };
        let reflects = match until {
            // Versions start at 1, so only a time can come before the first event.
            LoadUntil::RecordedAt(time) if past.version == Version::INITIAL => {
                return Err(Failure {
                    exit: Exit::NotFound,
                    message: format!(
                        "order {id} did not exist yet at {}: its first event was recorded at {}; \
                         `order-processing history {id}` lists its events",
                        rfc3339(time),
                        recorded(Version::FIRST).await?
                    ),
                });
            }
            LoadUntil::RecordedAt(time) => format!(
                "as it was at {}: version {} of {last}, recorded at {}",
                rfc3339(time),
                past.version,
                recorded(past.version).await?
            ),
            _ => format!(
                "as it was at version {} of {last}, recorded at {}",
                past.version,
                recorded(past.version).await?
            ),
        };
        out!("{}", output::order_details(id, &past.state, past.version));
        outln!("  {reflects}");
        outln!("  rebuilt from {}: {}", self.description, describe_load(&past));
        Ok(Exit::Done)
    }
}

/// A time as `show` prints it: RFC 3339 in UTC, with as many fractional digits as it has, so that it can
/// be pasted back into `--as-of`.
fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `snapshot at version 5 + 2 events replayed (1.2 ms)` or `3 events replayed, no snapshot (0.8 ms)`.
fn describe_load(loaded: &Loaded<Order>) -> String {
    let metrics = &loaded.metrics;
    let replayed = output::plural(metrics.events_replayed, "event");
    let ignored = metrics.ignored_snapshot.as_ref().map(|i| format!("; {i}")).unwrap_or_default();
    match metrics.snapshot_version {
        Some(version) => format!(
            "snapshot at version {version} + {replayed} replayed ({}){ignored}",
            output::duration(metrics.elapsed)
        ),
        None => format!("{replayed} replayed, no snapshot ({}){ignored}", output::duration(metrics.elapsed)),
    }
}
