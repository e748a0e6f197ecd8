//! `rebuild`: load orders both through their snapshot and by full replay, and compare.

use std::time::Duration;

use composable_rust::aggregate::Loaded;

use super::{Exit, Failure, Session};
use crate::app::KnownOrder;
use crate::domain::{Order, OrderId};
use crate::output::{self, Align, Table};

impl Session {
    /// Loads `id` both ways: through the latest snapshot, and by replaying every event.
    pub(super) async fn rebuild_one(&self, id: &OrderId) -> Result<Rebuilt, Failure> {
        let with_snapshot = self.repository.load(id.stream_id()).await.map_err(|e| Failure::load(id, &e))?;
        let full = self.repository.load_without_snapshot(id.stream_id()).await.map_err(|e| Failure::load(id, &e))?;
        Ok(Rebuilt { id: id.clone(), with_snapshot, full })
    }

    pub(super) async fn rebuild(&self, all: bool) -> Result<Exit, Failure> {
        const SHOWN: usize = 50;
        let ids = self.order_ids().await?;
        outln!(
            "Rebuilding {} from {}: once from the latest snapshot plus the events after it, once from every event.",
            output::plural(ids.len() as u64, "order"),
            self.description
        );
        let mut table = Table::new(&[
            ("ORDER", Align::Left),
            ("VERSION", Align::Right),
            ("SNAPSHOT", Align::Right),
            ("REPLAYED", Align::Right),
            ("FULL REPLAY", Align::Right),
            ("SAME", Align::Left),
        ]);
        let mut totals = RebuildTotals::default();
        let mut differing = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            let rebuilt = self.rebuild_one(id).await?;
            let differences = rebuilt.differences();
            totals.add(&rebuilt);
            if all || index < SHOWN || !differences.is_empty() {
                table.row(rebuilt.row(&differences));
            }
            if !differences.is_empty() {
                differing.push((id.clone(), differences));
            }
        }
        if !table.is_empty() {
            out!("{}", table.render("  "));
        }
        if !all && ids.len() > SHOWN {
            outln!("  ... and {} more (pass --all to list every order)", ids.len() - SHOWN);
        }
        outln!("{}", totals.summary());
        if differing.is_empty() {
            outln!("Every order rebuilt from its snapshot equals the order rebuilt from all its events.");
            return Ok(Exit::Done);
        }
        for (id, differences) in &differing {
            eprintln!("order {id} differs (snapshot path -> full replay):");
            for difference in differences {
                eprintln!("  {difference}");
            }
        }
        eprintln!(
            "{} differ: a snapshot does not match its events. Delete the snapshots and run rebuild again.",
            output::plural(differing.len() as u64, "order")
        );
        Ok(Exit::Mismatch)
    }
}

/// An order loaded both ways.
pub(super) struct Rebuilt {
    id: OrderId,
    with_snapshot: Loaded<Order>,
    full: Loaded<Order>,
}

impl Rebuilt {
    pub(super) fn differences(&self) -> Vec<String> {
        let known = |loaded: &Loaded<Order>| KnownOrder { order: loaded.state.clone(), version: loaded.version };
        output::differences(&known(&self.with_snapshot), &known(&self.full))
    }

    fn row(&self, differences: &[String]) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.with_snapshot.version.to_string(),
            self.with_snapshot.metrics.snapshot_version.map_or_else(|| "none".to_owned(), |v| format!("v{v}")),
            output::count(self.with_snapshot.metrics.events_replayed),
            output::count(self.full.metrics.events_replayed),
            if differences.is_empty() { "yes".to_owned() } else { "NO".to_owned() },
        ]
    }
}

/// Sums over many [`Rebuilt`] orders.
#[derive(Default)]
pub(super) struct RebuildTotals {
    orders: u64,
    from_snapshot: u64,
    replayed_after_snapshot: u64,
    replayed_full: u64,
    elapsed_snapshot: Duration,
    elapsed_full: Duration,
}

impl RebuildTotals {
    pub(super) fn add(&mut self, rebuilt: &Rebuilt) {
        self.orders += 1;
        self.from_snapshot += u64::from(rebuilt.with_snapshot.metrics.snapshot_version.is_some());
        self.replayed_after_snapshot += rebuilt.with_snapshot.metrics.events_replayed;
        self.replayed_full += rebuilt.full.metrics.events_replayed;
        self.elapsed_snapshot += rebuilt.with_snapshot.metrics.elapsed;
        self.elapsed_full += rebuilt.full.metrics.elapsed;
    }

    pub(super) fn summary(&self) -> String {
        format!(
            "{} ({} from a snapshot): {} replayed in {} with snapshots, {} replayed in {} without.",
            output::plural(self.orders, "order"),
            output::count(self.from_snapshot),
            output::plural(self.replayed_after_snapshot, "event"),
            output::duration(self.elapsed_snapshot),
            output::plural(self.replayed_full, "event"),
            output::duration(self.elapsed_full),
        )
    }
}
