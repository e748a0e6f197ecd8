//! esrs's side (0.18, Prima's event sourcing library): a `PgStore` built by `PgStoreBuilder` (which creates its
//! table), `persist` with the aggregate's state, `by_aggregate_id` and `stream_events` decoding every event into
//! the user's type.

use std::convert::Infallible;

use esrs::store::EventStore;
use esrs::store::postgres::{PgStore, PgStoreBuilder};
use esrs::{Aggregate, AggregateState};
use futures::TryStreamExt;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

use crate::BenchError;
use crate::db;
use crate::event::ItemAdded;

/// The aggregate the events belong to; the benchmark never handles a command.
#[derive(Debug)]
pub(crate) struct Order;

impl Aggregate for Order {
    const NAME: &'static str = "orders";
    type State = u64;
    type Command = ();
    type Event = ItemAdded;
    type Error = Infallible;

    fn handle_command(_state: &u64, _command: ()) -> Result<Vec<ItemAdded>, Infallible> {
        Ok(Vec::new())
    }

    fn apply_event(state: u64, _payload: ItemAdded) -> u64 {
        state + 1
    }
}

fn failed(operation: &str, error: &impl std::fmt::Display) -> BenchError {
    BenchError::new(format!("esrs: {operation} failed: {error}"))
}

/// The aggregate id of order `order`.
fn id(order: u64) -> Uuid {
    Uuid::from_u64_pair(0, order)
}

/// esrs's store on its own database.
#[derive(Clone)]
pub(crate) struct Esrs {
    store: PgStore<Order>,
    pool: PgPool,
}

impl std::fmt::Debug for Esrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Esrs").finish_non_exhaustive()
    }
}

impl Esrs {
    /// Opens a pool of 10 on the database of `options`; the builder creates esrs's table.
    pub(crate) async fn open(options: PgConnectOptions) -> Result<Self, BenchError> {
        let pool = db::pool(options).await?;
        let store =
            PgStoreBuilder::new(pool.clone()).try_build().await.map_err(|e| failed("creating the table", &e))?;
        Ok(Self { store, pool })
    }

    /// A writer of order `order`, which must be new.
    pub(crate) fn writer(&self, order: u64) -> EsrsWriter {
        EsrsWriter { store: self.store.clone(), state: AggregateState::with_id(id(order)) }
    }

    /// Reads order `order`'s events and decodes every one; returns how many.
    pub(crate) async fn replay(&self, order: u64) -> Result<u64, BenchError> {
        let events = self.store.by_aggregate_id(id(order)).await.map_err(|e| failed("by_aggregate_id", &e))?;
        let count = events.len() as u64;
        std::hint::black_box(events);
        Ok(count)
    }

    /// Reads every event of the table (`stream_events`: one query, no pages), decoding each; returns how many.
    pub(crate) async fn read_global(&self) -> Result<u64, BenchError> {
        let mut events = self.store.stream_events(&self.pool);
        let mut count = 0;
        while let Some(event) = events.try_next().await.map_err(|e| failed("stream_events", &e))? {
            std::hint::black_box(event);
            count += 1;
        }
        Ok(count)
    }

    /// Bytes and rows of the events table with its indexes.
    pub(crate) async fn table_size(&self) -> Result<(u64, u64), BenchError> {
        db::table_size(&self.pool, self.store.table_name()).await
    }

    /// The pool the store runs on.
    pub(crate) fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// Closes the pool.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// Appends to one aggregate, keeping its state (and so its sequence number) between calls.
pub(crate) struct EsrsWriter {
    store: PgStore<Order>,
    state: AggregateState<u64>,
}

impl std::fmt::Debug for EsrsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsrsWriter").finish_non_exhaustive()
    }
}

impl EsrsWriter {
    /// Persists `events` in one call: one transaction.
    pub(crate) async fn append(&mut self, events: Vec<ItemAdded>) -> Result<(), BenchError> {
        self.store.persist(&mut self.state, events).await.map(|_| ()).map_err(|e| failed("persist", &e))
    }
}
