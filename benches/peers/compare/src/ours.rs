//! composable-rust's side: `PostgresEventStore` as a user opens it (`connect_with`, a pool of 10, the bincode
//! codec), appending with exact expected versions and decoding every event it reads.

use composable_rust_core::backend::{EventLog, StoreLifecycle};
use composable_rust_core::{
    CodecId, EventStoreError, ExpectedVersion, GlobalPosition, LogFilter, Metadata, NewEvent, RecordedEvent, StreamId,
    StreamRange, Version,
};
use composable_rust_postgres::{PostgresConfig, PostgresEventStore};
use futures::TryStreamExt;
use sqlx::postgres::PgConnectOptions;

use crate::BenchError;
use crate::db::{self, POOL_SIZE};
use crate::event::ItemAdded;

/// Events per `read_all` page.
const PAGE: usize = 1_000;

/// composable-rust's PostgreSQL store on its own database.
#[derive(Debug, Clone)]
pub(crate) struct Ours {
    store: PostgresEventStore,
}

fn failed(operation: &str, error: &EventStoreError) -> BenchError {
    BenchError::new(format!("composable-rust: {operation} failed: {}", composable_rust_core::error_chain(error)))
}

fn stream(order: u64) -> Result<StreamId, BenchError> {
    StreamId::new(format!("order-{order}")).map_err(|e| BenchError::new(format!("stream id: {e}")))
}

fn decode(event: &RecordedEvent) -> Result<ItemAdded, BenchError> {
    event.decode().map_err(|e| BenchError::new(format!("composable-rust: decoding {}: {e}", event.event_type)))
}

impl Ours {
    /// Connects to the database of `options` with the default configuration and a pool of 10, and creates the
    /// schema.
    pub(crate) async fn open(options: PgConnectOptions) -> Result<Self, BenchError> {
        let mut config = PostgresConfig::from_options(options);
        config.max_connections = POOL_SIZE;
        let store = PostgresEventStore::connect_with(config).await.map_err(|e| failed("connecting", &e))?;
        store.migrate().await.map_err(|e| failed("creating the schema", &e))?;
        Ok(Self { store })
    }

    /// A writer of order `order`'s stream, which must be new.
    pub(crate) fn writer(&self, order: u64) -> Result<OursWriter, BenchError> {
        Ok(OursWriter { store: self.store.clone(), stream: stream(order)?, version: Version::INITIAL })
    }

    /// Reads order `order`'s stream and decodes every event; returns how many.
    pub(crate) async fn replay(&self, order: u64) -> Result<u64, BenchError> {
        let stream = stream(order)?;
        let mut events = self.store.read_stream(&stream, StreamRange::all());
        let mut count = 0;
        while let Some(event) = events.try_next().await.map_err(|e| failed("read_stream", &e))? {
            std::hint::black_box(decode(&event)?);
            count += 1;
        }
        Ok(count)
    }

    /// Reads the global log from the start in pages of 1000 until `total` events are read, decoding each.
    pub(crate) async fn read_global(&self, total: u64) -> Result<u64, BenchError> {
        let (mut after, mut count) = (GlobalPosition::START, 0);
        while count < total {
            let page = self.store.read_all(after, &LogFilter::all(), PAGE).await.map_err(|e| failed("read_all", &e))?;
            let Some(last) = page.last() else {
                return Err(BenchError::new(format!("composable-rust: the global log ended after {count} events")));
            };
            after = last.position;
            for event in &page {
                std::hint::black_box(decode(event)?);
            }
            count += page.len() as u64;
        }
        Ok(count)
    }

    /// Bytes and rows of the `events` table with its indexes.
    pub(crate) async fn table_size(&self) -> Result<(u64, u64), BenchError> {
        db::table_size(self.store.pool(), "events").await
    }

    /// The pool the store runs on.
    pub(crate) fn pool(&self) -> &sqlx::PgPool {
        self.store.pool()
    }

    /// Closes the pool.
    pub(crate) async fn close(&self) {
        let _ = self.store.close().await;
    }
}

/// Appends to one stream, with the expected version of the aggregate path: `NoStream`, then `Exact`.
#[derive(Debug)]
pub(crate) struct OursWriter {
    store: PostgresEventStore,
    stream: StreamId,
    version: Version,
}

impl OursWriter {
    /// Encodes `events` with bincode and appends them in one call.
    pub(crate) async fn append(&mut self, events: Vec<ItemAdded>) -> Result<(), BenchError> {
        let events = events
            .iter()
            .map(|event| {
                let payload = CodecId::Bincode.encode(event).map_err(|e| BenchError::new(format!("encoding: {e}")))?;
                Ok(NewEvent::new("ItemAdded.v1", CodecId::Bincode, payload, Metadata::default()))
            })
            .collect::<Result<Vec<_>, BenchError>>()?;
        let expected = if self.version == Version::INITIAL {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(self.version)
        };
        let written = self.store.append(&self.stream, expected, events).await.map_err(|e| failed("append", &e))?;
        self.version = written.stream_version;
        Ok(())
    }
}
