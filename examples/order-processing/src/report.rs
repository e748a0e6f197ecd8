//! `report`: orders by status with their revenue, from a read model kept by a subscription.
//!
//! The read model is the table `order_summary` (one row per order: status and revenue in cents) in the
//! event store's own database. The subscription `order-summary` applies each `order-*` event to it in the
//! same transaction that records its checkpoint (`Transactional` around a `SqlProjection`), so every
//! event counts exactly once even if the program dies half way. Each `report` first catches the table up
//! with the events committed since the last run (`Subscription::run_to_end`), then sums it per status;
//! `report --rebuild` clears the table and its checkpoint and replays every order event.

use std::collections::BTreeMap;
use std::sync::Arc;

use composable_rust::config::Backend;
use composable_rust::event::EventDecoder;
use composable_rust::event_store::{BoxError, LogFilter};
use composable_rust::postgres::PostgresEventStore;
use composable_rust::sqlite::{SqlProjection, SqliteEventStore, Transactional, Writes};
use composable_rust::subscription::{CheckpointedHandler, EventHandler, RunReport, Subscription};
use composable_rust::{EventStore, RecordedEvent, async_trait};

use crate::cli::StoreArgs;
use crate::domain::{Cents, Order, OrderEvent, OrderId};
use crate::output::{self, Align, Table};
use crate::run::{
    Access, Defaults, Exit, Failure, check_sqlite_location, check_url_parses, open_failure, store_config,
};

/// The subscription's name: its checkpoint and its lease.
pub(crate) const HANDLER: &str = "order-summary";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS order_summary (
    order_id      TEXT   PRIMARY KEY,
    status        TEXT   NOT NULL,
    revenue_cents BIGINT NOT NULL
)";
// `$n` placeholders: PostgreSQL and SQLite both read them.
const PLACE: &str = "INSERT INTO order_summary (order_id, status, revenue_cents) VALUES ($1, 'placed', $2)";
const ADD_REVENUE: &str = "UPDATE order_summary SET revenue_cents = revenue_cents + $2 WHERE order_id = $1";
const SET_STATUS: &str = "UPDATE order_summary SET status = $2 WHERE order_id = $1";
const CLEAR: &str = "DELETE FROM order_summary";
const BY_STATUS: &str = "SELECT status, COUNT(*), CAST(COALESCE(SUM(revenue_cents), 0) AS BIGINT) \
                         FROM order_summary GROUP BY status ORDER BY status";

/// What one event changes in the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Placed { order: String, revenue: i64 },
    Revenue { order: String, added: i64 },
    Status { order: String, status: &'static str },
}

/// The summary change an order event causes; `None` for events of other streams or types.
fn change_of(decoder: &EventDecoder<OrderEvent>, event: &RecordedEvent) -> Result<Option<Change>, BoxError> {
    let Some(order) = OrderId::from_stream_id(&event.stream_id) else { return Ok(None) };
    let Some(decoded) = decoder.decode(event)? else { return Ok(None) };
    let order = order.as_str().to_owned();
    let cents = |total: Option<Cents>| -> Result<i64, BoxError> {
        let total = total.ok_or("an order total overflows")?;
        Ok(i64::try_from(total.get())?)
    };
    Ok(Some(match decoded {
        OrderEvent::OrderPlaced { items, .. } => {
            let total = items.iter().try_fold(Cents::ZERO, |sum, item| item.total().and_then(|t| sum.checked_add(t)));
            Change::Placed { order, revenue: cents(total)? }
        }
        OrderEvent::OrderItemAdded { item } => Change::Revenue { order, added: cents(item.total())? },
        OrderEvent::OrderCancelled { .. } => Change::Status { order, status: "cancelled" },
        OrderEvent::OrderShipped { .. } => Change::Status { order, status: "shipped" },
    }))
}

fn decoder() -> EventDecoder<OrderEvent> {
    EventDecoder::for_aggregate::<Order>().skip_unknown_types()
}

/// The summary in the event store's database; one implementation for PostgreSQL and SQLite.
struct Summary(EventDecoder<OrderEvent>);

#[async_trait]
impl<DB: sqlx::Database> SqlProjection<DB> for Summary
where
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    async fn apply(&mut self, event: &RecordedEvent, writes: &mut Writes<DB>) -> Result<(), BoxError> {
        let statement = match change_of(&self.0, event)? {
            None => return Ok(()),
            Some(Change::Placed { order, revenue }) => sqlx::query(PLACE).bind(order).bind(revenue),
            Some(Change::Revenue { order, added }) => sqlx::query(ADD_REVENUE).bind(order).bind(added),
            Some(Change::Status { order, status }) => sqlx::query(SET_STATUS).bind(order).bind(status.to_owned()),
        };
        writes.push(statement);
        Ok(())
    }

    async fn reset(&mut self, writes: &mut Writes<DB>) -> Result<(), BoxError> {
        writes.push(sqlx::query(CLEAR));
        Ok(())
    }
}

/// The summary in memory, for the in-memory backend (which starts empty in every process).
#[derive(Default)]
struct MemorySummary {
    orders: BTreeMap<String, (&'static str, i64)>,
}

#[async_trait]
impl EventHandler for MemorySummary {
    async fn handle(&mut self, event: &RecordedEvent) -> Result<(), BoxError> {
        match change_of(&decoder(), event)? {
            None => {}
            Some(Change::Placed { order, revenue }) => {
                self.orders.insert(order, ("placed", revenue));
            }
            Some(Change::Revenue { order, added }) => {
                if let Some(row) = self.orders.get_mut(&order) {
                    row.1 += added;
                }
            }
            Some(Change::Status { order, status }) => {
                if let Some(row) = self.orders.get_mut(&order) {
                    row.0 = status;
                }
            }
        }
        Ok(())
    }

    async fn reset(&mut self) -> Result<(), BoxError> {
        self.orders.clear();
        Ok(())
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusLine {
    /// `placed`, `shipped` or `cancelled`.
    pub(crate) status: String,
    /// How many orders have it.
    pub(crate) orders: i64,
    /// Their revenue in cents.
    pub(crate) revenue_cents: i64,
}

/// Catches the summary up (rebuilding it first when asked) and returns it by status.
async fn summary(args: &StoreArgs, rebuild: bool) -> Result<(Vec<StatusLine>, RunReport, String), Failure> {
    let defaults = Defaults {
        sqlite_dir: &args.data_dir,
        snapshot_every: composable_rust::SnapshotPolicy::DEFAULT_INTERVAL,
        read_config_file: true,
        access: Access::ReadOnly,
    };
    let config = store_config(args, defaults)?;
    match config.backend {
        Backend::Postgres => check_url_parses(&config)?,
        Backend::Sqlite => check_sqlite_location(args, &config, Access::ReadOnly)?,
        Backend::InMemory | Backend::File => {}
    }
    let description = config.location();
    let store_failure = |what: &str, error: &(dyn std::error::Error + 'static)| Failure::store(what, error);
    let filter = LogFilter::all().category("order");
    async fn catch_up<H: CheckpointedHandler + 'static>(
        store: Arc<dyn EventStore>,
        handler: H,
        filter: LogFilter,
        rebuild: bool,
    ) -> Result<RunReport, Failure> {
        let mut subscription = Subscription::checkpointed(store, HANDLER, handler).filter(filter);
        if rebuild {
            subscription = subscription.rebuild();
        }
        subscription.run_to_end().await.map_err(|e| Failure::store("bring the order summary up to date", &e))
    }
    match config.backend {
        Backend::Sqlite => {
            let path = config.sqlite.path.clone().unwrap_or_else(|| args.data_dir.join(crate::run::SQLITE_FILE));
            let store = SqliteEventStore::open(&path).await.map_err(|e| open_failure(&description, &e))?;
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
            let pool = sqlx::SqlitePool::connect_with(options)
                .await
                .map_err(|e| store_failure("open the SQLite file for the summary", &e))?;
            sqlx::query(CREATE).execute(&pool).await.map_err(|e| store_failure("create the order summary", &e))?;
            let handler = Transactional::new(store.clone(), Summary(decoder()));
            let run = catch_up(Arc::new(store.clone()), handler, filter, rebuild).await?;
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(BY_STATUS)
                .fetch_all(&pool)
                .await
                .map_err(|e| store_failure("read the order summary", &e))?;
            pool.close().await;
            let _ = store.close().await;
            Ok((lines(rows), run, description))
        }
        Backend::Postgres => {
            let url = config.postgres.url.clone().unwrap_or_default();
            let store = PostgresEventStore::connect(&url).await.map_err(|e| open_failure(&description, &e))?;
            store.migrate().await.map_err(|e| store_failure("migrate the event store", &e))?;
            sqlx::query(CREATE)
                .execute(store.pool())
                .await
                .map_err(|e| store_failure("create the order summary", &e))?;
            let handler = Transactional::new(store.clone(), Summary(decoder()));
            let run = catch_up(Arc::new(store.clone()), handler, filter, rebuild).await?;
            let rows: Vec<(String, i64, i64)> = sqlx::query_as(BY_STATUS)
                .fetch_all(store.pool())
                .await
                .map_err(|e| store_failure("read the order summary", &e))?;
            Ok((lines(rows), run, description))
        }
        // Stores without SQL keep the summary in memory for the run.
        Backend::InMemory | Backend::File => {
            let store =
                composable_rust::config::open(&config).await.map_err(|e| store_failure("open the event store", &e))?;
            let mut subscription =
                Subscription::new(Arc::clone(&store), HANDLER, MemorySummary::default()).filter(filter);
            let run = subscription
                .run_to_end()
                .await
                .map_err(|e| Failure::store("bring the order summary up to date", &e))?;
            let mut totals: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
            for (status, revenue) in subscription.handler().handler().orders.values() {
                let entry = totals.entry(status).or_default();
                entry.0 += 1;
                entry.1 += revenue;
            }
            let rows = totals.into_iter().map(|(s, (n, r))| (s.to_owned(), n, r)).collect();
            Ok((lines(rows), run, description))
        }
    }
}

fn lines(rows: Vec<(String, i64, i64)>) -> Vec<StatusLine> {
    rows.into_iter().map(|(status, orders, revenue_cents)| StatusLine { status, orders, revenue_cents }).collect()
}

/// Runs `report`: prints orders and revenue per status.
pub(crate) async fn report(args: &StoreArgs, rebuild: bool) -> Result<Exit, Failure> {
    let (lines, run, description) = summary(args, rebuild).await?;
    let mut table = Table::new(&[("STATUS", Align::Left), ("ORDERS", Align::Right), ("REVENUE", Align::Right)]);
    let (mut orders, mut revenue) = (0_i64, 0_i64);
    for line in &lines {
        orders += line.orders;
        revenue += line.revenue_cents;
        table.row([line.status.clone(), line.orders.to_string(), money(line.revenue_cents)]);
    }
    table.row(["total".to_owned(), orders.to_string(), money(revenue)]);
    out!("{}", table.render(""));
    let applied = output::plural(run.handled, "new event");
    let how = if rebuild { "rebuilt from every order event" } else { "brought up to date" };
    outln!("Summary {how} ({applied} applied) in {description}.");
    Ok(Exit::Done)
}

fn money(cents: i64) -> String {
    u64::try_from(cents)
        .map_or_else(|_| format!("-{}", Cents::new(cents.unsigned_abs())), |c| Cents::new(c).to_string())
}
