//! One service as a process: its event store, an outbox that publishes its events to the bus, and a
//! `Reactor` that turns the bus's deliveries into its commands.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use composable_rust::bus::{
    ConsumerConfig, JetStreamBus, JetStreamConfig, Outbox, Reactions, Reactor, ReactorAction, Reacts,
};
use composable_rust::event_store::{BoxError, LogFilter};
use composable_rust::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::inventory::Stock;
use crate::order::Order;
use crate::payment::Payment;
use crate::saga::Checkout;

/// The four processes of the example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// Orders: confirms and cancels them as the saga asks.
    Order,
    /// Stock: reserves and releases it as the saga asks.
    Inventory,
    /// Payments: charges and refunds as the saga asks.
    Payment,
    /// The checkout saga: reacts to the other three and asks them for the next step.
    Saga,
}

impl Service {
    /// The service's name: its consumer group and the prefix of its outbox's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Inventory => "inventory",
            Self::Payment => "payment",
            Self::Saga => "saga",
        }
    }

    /// The category of the streams it owns, which its outbox publishes.
    #[must_use]
    pub fn publishes(self) -> &'static str {
        match self {
            Self::Order => Order::CATEGORY,
            Self::Inventory => Stock::CATEGORY,
            Self::Payment => Payment::CATEGORY,
            Self::Saga => Checkout::CATEGORY,
        }
    }

    /// The consumer group it reads the bus as: the saga's commands for the three services, the three
    /// services' events for the saga.
    #[must_use]
    pub fn consumer(self, ack_wait: Duration) -> ConsumerConfig {
        let group = ConsumerConfig::group(self.name()).ack_wait(ack_wait).max_in_flight(256);
        match self {
            Self::Order | Self::Inventory | Self::Payment => group.category(Checkout::CATEGORY),
            Self::Saga => group.category(Order::CATEGORY).category(Stock::CATEGORY).category(Payment::CATEGORY),
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a service keeps its events and finds the bus.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `postgres://…` or an SQLite file path (`sqlite:` prefix optional): the service's own event store.
    pub database_url: String,
    /// The NATS server.
    pub nats_url: String,
    /// The bus's subject prefix; every service of one shop uses the same.
    pub prefix: String,
    /// How long a delivery may stay unacknowledged before the bus delivers it again.
    pub ack_wait: Duration,
}

/// Opens the event store at `database_url`: PostgreSQL for `postgres://…` (migrated), else an SQLite file.
///
/// # Errors
/// The backend's error when it cannot be opened.
pub async fn open_store(database_url: &str) -> Result<Arc<dyn EventStore>, EventStoreError> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        let store = PostgresEventStore::connect(database_url).await?;
        store.migrate().await?;
        return Ok(Arc::new(store));
    }
    let path =
        database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:")).unwrap_or(database_url);
    Ok(Arc::new(SqliteEventStore::open(path).await?))
}

/// Runs `service` until `shutdown` resolves, then leaves the bus, lets the commands in hand finish and
/// stops the outbox. Prints `<service> ready` on standard output once it consumes and publishes.
///
/// # Errors
/// When the store or the bus cannot be opened, or the outbox failed.
pub async fn serve(service: Service, settings: &Settings, shutdown: impl Future<Output = ()>) -> Result<(), BoxError> {
    match service {
        Service::Order => run::<Order>(service, settings, shutdown).await,
        Service::Inventory => run::<Stock>(service, settings, shutdown).await,
        Service::Payment => run::<Payment>(service, settings, shutdown).await,
        Service::Saga => run::<Checkout>(service, settings, shutdown).await,
    }
}

async fn run<A>(service: Service, settings: &Settings, shutdown: impl Future<Output = ()>) -> Result<(), BoxError>
where
    A: Reacts + Clone + Serialize + DeserializeOwned,
    A::Command: Clone,
    A::Event: Clone,
{
    let store = open_store(&settings.database_url).await?;
    let bus = JetStreamBus::connect(JetStreamConfig::new(&settings.nats_url, &settings.prefix)).await?;
    let outbox = Outbox::subscription(Arc::clone(&store), bus.clone(), format!("{service}-outbox"))
        .filter(LogFilter::all().category(service.publishes()))
        .spawn();
    let reactor = Reactor::<A>::default().listening(Arc::new(bus), service.consumer(settings.ack_wait));
    let app = Store::builder(reactor, Reactions::default(), AggregateEnvironment::default()).event_store(store).build();
    app.send(ReactorAction::Start);
    // Deadlines that were running when the service last stopped (the saga's payment timer) are armed again.
    app.send(ReactorAction::Resume);
    println!("{service} ready");
    tracing::info!(%service, consumes = ?service.consumer(settings.ack_wait).categories, publishes = service.publishes(), "started");
    shutdown.await;
    app.send(ReactorAction::Stop);
    let _ = tokio::time::timeout(Duration::from_secs(10), app.idle()).await;
    let report = outbox.stop().await?;
    tracing::info!(%service, published = report.handled, "stopped");
    Ok(())
}
