//! The checkout across processes: the four services run as separate `checkout serve` processes, each
//! with its own PostgreSQL database, connected through the local NATS JetStream. Two of them are killed
//! (SIGKILL) in the middle of the run and restarted; afterwards every order is settled and every command
//! and event exists exactly once: none issued twice, none lost.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checkout::inventory::{Stock, StockCommand};
use checkout::order::{Line, Order, OrderCommand};
use checkout::payment::CARD_LIMIT_CENTS;
use checkout::service::{Service, open_store};
use composable_rust::bus::{JetStreamBus, JetStreamConfig};
use composable_rust::event_store::LogFilter;
use composable_rust::prelude::*;
use composable_rust::testing::postgres_fixture::PostgresTestDatabase;
use composable_rust::{GlobalPosition, RecordedEvent};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

const ORDERS: usize = 40;
const STOCK: u32 = 1_000;

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A `checkout serve` process.
struct Process {
    service: Service,
    database_url: String,
    prefix: String,
    child: Option<Child>,
}

impl Process {
    async fn start(service: Service, database_url: &str, prefix: &str) -> Self {
        let mut process =
            Self { service, database_url: database_url.to_owned(), prefix: prefix.to_owned(), child: None };
        process.restart().await;
        process
    }

    /// Starts the process and waits for its `ready` line.
    async fn restart(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_checkout"))
            .args(["serve", self.service.name(), "--database-url", &self.database_url, "--prefix", &self.prefix])
            .args(["--nats-url", &nats_url(), "--ack-wait-secs", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the checkout binary");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        let expected = format!("{} ready", self.service);
        match ready {
            Ok(Ok(Some(line))) if line == expected => {}
            other => panic!("the {} service did not start: {other:?} (is NATS at {}?)", self.service, nats_url()),
        }
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no acknowledgements, no checkpoint saves.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

async fn all_events(store: &Arc<dyn EventStore>) -> Vec<RecordedEvent> {
    store.read_all(GlobalPosition::START, &LogFilter::all(), 100_000).await.unwrap()
}

async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn amount(n: usize) -> u64 {
    // Every fifth order is over the card limit: declined, its stock released, the order cancelled.
    if n % 5 == 4 { CARD_LIMIT_CENTS + 1 } else { 100 + n as u64 }
}

async fn place(orders: &Repository<Order>, n: usize) {
    let order_id = format!("o{n}");
    let command = OrderCommand::Place {
        order_id: order_id.clone(),
        line: Line { sku: "apple".into(), quantity: 1, amount_cents: amount(n) },
    };
    let key = Uuid::new_v5(&Uuid::NAMESPACE_OID, order_id.as_bytes());
    orders
        .execute_once(&Order::stream_id(&order_id).unwrap(), key, command, Metadata::correlated(Uuid::now_v7()))
        .await
        .unwrap();
}

fn count_types(events: &[RecordedEvent]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry((event.stream_id.to_string(), event.event_type.to_string())).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_services_issue_no_command_twice_and_lose_none() {
    let prefix = format!("checkout{}", &Uuid::new_v4().simple().to_string()[..8]);
    let mut databases = Vec::new();
    for _ in 0..4 {
        databases.push(PostgresTestDatabase::start().await);
    }
    let url = |service: Service| databases[service as usize].url().to_owned();
    let order_store = open_store(&url(Service::Order)).await.unwrap();
    let stock_store = open_store(&url(Service::Inventory)).await.unwrap();
    let payment_store = open_store(&url(Service::Payment)).await.unwrap();
    let saga_store = open_store(&url(Service::Saga)).await.unwrap();
    let orders = Repository::<Order>::new(Arc::clone(&order_store));
    let restock = StockCommand::Restock { sku: "apple".into(), quantity: STOCK };
    Repository::<Stock>::new(Arc::clone(&stock_store))
        .execute(&Stock::stream_id("apple").unwrap(), restock, Metadata::default())
        .await
        .unwrap();
    for n in 0..ORDERS / 2 {
        place(&orders, n).await;
    }

    let mut processes = Vec::new();
    for service in [Service::Order, Service::Inventory, Service::Payment, Service::Saga] {
        processes.push(Process::start(service, &url(service), &prefix).await);
    }
    for n in ORDERS / 2..ORDERS {
        place(&orders, n).await;
    }

    // Mid-run: kill the payment service once it has charged a few, and the saga once it has asked for
    // a few confirmations; restart each at once. What they had not acknowledged comes again.
    wait_for("a few payments", Duration::from_secs(60), async || all_events(&payment_store).await.len() >= 5).await;
    processes[Service::Payment as usize].kill().await;
    processes[Service::Payment as usize].restart().await;
    let confirmations = async || {
        all_events(&saga_store).await.iter().filter(|e| e.event_type == "OrderConfirmationRequested.v1").count() >= 5
    };
    wait_for("a few confirmations", Duration::from_secs(60), confirmations).await;
    processes[Service::Saga as usize].kill().await;
    processes[Service::Saga as usize].restart().await;

    let settled = async || {
        let events = all_events(&order_store).await;
        events.iter().filter(|e| e.event_type == "OrderConfirmed.v1" || e.event_type == "OrderCancelled.v1").count()
            >= ORDERS
    };
    wait_for("every order confirmed or cancelled", Duration::from_secs(90), settled).await;
    // Let redeliveries after the restarts play out before counting: any duplicate would show up now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for process in &mut processes {
        process.kill().await;
    }

    let declined: Vec<usize> = (0..ORDERS).filter(|n| amount(*n) > CARD_LIMIT_CENTS).collect();
    let confirmed = ORDERS - declined.len();
    let orders_by_type = count_types(&all_events(&order_store).await);
    let saga_by_type = count_types(&all_events(&saga_store).await);
    let payments_by_type = count_types(&all_events(&payment_store).await);
    let stock_events = all_events(&stock_store).await;
    for n in 0..ORDERS {
        let (order, checkout, payment) = (format!("order-o{n}"), format!("checkout-o{n}"), format!("payment-o{n}"));
        let once = |counts: &BTreeMap<(String, String), usize>, stream: &str, event_type: &str| {
            assert_eq!(
                counts.get(&(stream.to_owned(), event_type.to_owned())),
                Some(&1),
                "{stream}: {event_type} exactly once"
            );
        };
        once(&orders_by_type, &order, "OrderPlaced.v1");
        once(&saga_by_type, &checkout, "CheckoutStarted.v1");
        once(&saga_by_type, &checkout, "StockReservationRequested.v1");
        once(&saga_by_type, &checkout, "PaymentRequested.v1");
        if declined.contains(&n) {
            once(&orders_by_type, &order, "OrderCancelled.v1");
            once(&payments_by_type, &payment, "PaymentDeclined.v1");
            once(&saga_by_type, &checkout, "StockReleaseRequested.v1");
            once(&saga_by_type, &checkout, "OrderCancellationRequested.v1");
        } else {
            once(&orders_by_type, &order, "OrderConfirmed.v1");
            once(&payments_by_type, &payment, "PaymentCharged.v1");
            once(&saga_by_type, &checkout, "OrderConfirmationRequested.v1");
        }
    }
    let commands: usize = saga_by_type.values().sum();
    assert_eq!(commands, confirmed * 4 + declined.len() * 5, "no other command was issued");
    assert_eq!(orders_by_type.values().sum::<usize>(), ORDERS * 2, "each order placed and settled once");
    assert_eq!(payments_by_type.values().sum::<usize>(), ORDERS, "one payment outcome per order");
    let reserved = stock_events.iter().filter(|e| e.event_type == "StockReserved.v1").count();
    let released = stock_events.iter().filter(|e| e.event_type == "StockReleased.v1").count();
    assert_eq!(
        (reserved, released),
        (ORDERS, declined.len()),
        "each order reserved once, each declined one released once"
    );
    let stock: Stock = Repository::<Stock>::new(Arc::clone(&stock_store))
        .load(&Stock::stream_id("apple").unwrap())
        .await
        .unwrap()
        .state;
    assert_eq!(stock.available as usize, STOCK as usize - confirmed, "the confirmed orders hold their units");

    // On the bus, each event of the four stores once (JetStream de-duplicated the outboxes' republishes).
    let bus = JetStreamBus::connect(JetStreamConfig::new(nats_url(), &prefix)).await.unwrap();
    let total = [&order_store, &stock_store, &payment_store, &saga_store];
    let mut stored = 0;
    for store in total {
        stored += all_events(store).await.len() as u64;
    }
    assert_eq!(bus.stored().await.unwrap(), stored, "every committed event once on the bus");
    bus.delete_stream().await.unwrap();
    for database in databases {
        database.drop_database().await.unwrap();
    }
}
