//! postgres-es's side (cqrs-es 0.5): a `PersistedEventStore` over a `PostgresEventRepository`, the event store
//! its `postgres_cqrs` builds, called as its `CqrsFramework` calls it: `commit` with the aggregate's context,
//! `load_events` decoding every event into the user's type. Its table is the one its README documents.

use std::collections::HashMap;
use std::convert::Infallible;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventRepository, PersistedEventStore};
use cqrs_es::{Aggregate, DomainEvent, EventStore};
use postgres_es::PostgresEventRepository;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::BenchError;
use crate::db;
use crate::event::ItemAdded;

/// The events table of postgres-es's README (`db/init.sql`), which the user creates.
const EVENTS_TABLE: &str = "CREATE TABLE events (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint CHECK (sequence >= 0) NOT NULL,
    event_type text NOT NULL,
    event_version text NOT NULL,
    payload json NOT NULL,
    metadata json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
)";

impl DomainEvent for ItemAdded {
    fn event_type(&self) -> String {
        "ItemAdded".to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// The aggregate the events belong to; the benchmark never handles a command.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Order {
    items: u64,
}

impl Aggregate for Order {
    const TYPE: &'static str = "Order";
    type Command = ();
    type Event = ItemAdded;
    type Error = Infallible;
    type Services = ();

    async fn handle(&mut self, _command: (), _services: &(), _sink: &EventSink<Self>) -> Result<(), Infallible> {
        Ok(())
    }

    fn apply(&mut self, _event: ItemAdded) {
        self.items += 1;
    }
}

type Store = PersistedEventStore<PostgresEventRepository, Order>;

fn failed(operation: &str, error: &impl std::fmt::Display) -> BenchError {
    BenchError::new(format!("postgres-es: {operation} failed: {error}"))
}

/// postgres-es's event store on its own database.
pub(crate) struct Cqrs {
    store: Store,
    /// The same repository, for its read of every event of an aggregate type, which the store does not offer.
    repository: PostgresEventRepository,
    pool: PgPool,
}

impl std::fmt::Debug for Cqrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cqrs").finish_non_exhaustive()
    }
}

impl Cqrs {
    /// Opens a pool of 10 on the database of `options` and creates postgres-es's events table.
    pub(crate) async fn open(options: PgConnectOptions) -> Result<Self, BenchError> {
        let pool = db::pool(options).await?;
        sqlx::query(EVENTS_TABLE).execute(&pool).await.map_err(|e| failed("creating the events table", &e))?;
        let store = PersistedEventStore::new_event_store(PostgresEventRepository::new(pool.clone()));
        Ok(Self { store, repository: PostgresEventRepository::new(pool.clone()), pool })
    }

    /// Reads order `order`'s events and decodes every one; returns how many.
    pub(crate) async fn replay(&self, order: u64) -> Result<u64, BenchError> {
        let events = self.store.load_events(&format!("order-{order}")).await.map_err(|e| failed("load_events", &e))?;
        let count = events.len() as u64;
        std::hint::black_box(events);
        Ok(count)
    }

    /// Reads every event of the aggregate type (`stream_all_events`: one query ordered by sequence number, not
    /// a global order, fed through a channel), decoding each; returns how many.
    pub(crate) async fn read_global(&self) -> Result<u64, BenchError> {
        let mut events =
            self.repository.stream_all_events::<Order>().await.map_err(|e| failed("stream_all_events", &e))?;
        let mut count = 0;
        while let Some(event) = events.next::<Order>(&[]).await {
            std::hint::black_box(event.map_err(|e| failed("stream_all_events", &e))?);
            count += 1;
        }
        Ok(count)
    }

    /// Bytes and rows of the `events` table with its primary key.
    pub(crate) async fn table_size(&self) -> Result<(u64, u64), BenchError> {
        db::table_size(&self.pool, "events").await
    }

    /// The pool the store runs on.
    pub(crate) fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// Closes the pool.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Appends `events` to order `order` whose last sequence is `sequence`: one `commit`, one transaction.
    pub(crate) async fn commit(&self, order: u64, sequence: u64, events: Vec<ItemAdded>) -> Result<(), BenchError> {
        let context = EventStoreAggregateContext {
            aggregate_id: format!("order-{order}"),
            aggregate: Order::default(),
            current_sequence: usize::try_from(sequence).map_err(|_| BenchError::new("sequence too large"))?,
            current_snapshot: None,
        };
        self.store.commit(events, context, HashMap::new()).await.map(|_| ()).map_err(|e| failed("commit", &e))
    }
}
