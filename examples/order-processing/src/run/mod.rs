//! One invocation of the program: open the event store, run the subcommand, print for humans, and say
//! how the process should exit.
//!
//! Commands that change an order go through the [`Store`] and the [`OrderApp`] reducer: the store runs
//! the reducer's event store requests (load, append, save snapshot) and feeds the answers back. Commands
//! that only read (`show`, `list`, `history`, `rebuild`) and the `load` generator use the [`Repository`]
//! and the [`EventStore`] directly. `demo` lives in the `demo` module.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};

use composable_rust::config::{Backend, ConfigError, EventStoreConfig};
use composable_rust::error_chain;
use composable_rust::postgres::PostgresConfig;
use composable_rust::{Aggregate, EventDecoder, EventStore, LoadUntil, Metadata, StreamId, StreamRange, Version};
use composable_rust::{AggregateEnvironment, LoadError, Loaded, Repository, SnapshotPolicy, Store};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use uuid::Uuid;

use crate::app::{AppAction, AppState, KnownOrder, OrderApp, Outcome};
use crate::cli::{Cli, Command, LoadArgs, PointInTime, StatusFilter, StoreArgs};
use crate::domain::{ItemRequest, Order, OrderCommand, OrderEvent, OrderId};
use crate::output::{self, Align, Table};

/// How the process ends. The numbers are part of the command-line interface (see `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the command did what was asked.
    Done,
    /// 1: the order rules refused the command, or the order (or the version or time `show` asks for)
    /// does not exist; nothing was written.
    Rejected,
    /// 2: the command line was wrong (clap reports these itself).
    Usage,
    /// 3: the event store failed (cannot open, connect, read or write).
    StoreError,
    /// 4: a rebuilt order differs from the state it was compared with.
    Mismatch,
}

impl Exit {
    /// The process exit code.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Done => 0,
            Self::Rejected => 1,
            Self::Usage => 2,
            Self::StoreError => 3,
            Self::Mismatch => 4,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}

/// A command that could not finish: what to print on stderr, and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn store(what: &str, error: &(dyn std::error::Error + 'static)) -> Self {
        Self { exit: Exit::StoreError, message: format!("could not {what}: {}", error_chain(error)) }
    }

    pub(crate) fn load(id: &OrderId, error: &LoadError) -> Self {
        Self::store(&format!("load order {id}"), error)
    }
}

/// The file name of the SQLite event store inside `--data-dir`.
pub const SQLITE_FILE: &str = "orders.db";

/// Runs the parsed command line and returns how the process should exit. Prints as it goes.
pub async fn run(cli: Cli) -> Exit {
    let result = match cli.command {
        Command::Demo => crate::demo::demo(&cli.store).await,
        Command::DemoRestart { expect } => crate::demo::demo_restart(&cli.store, &expect).await,
        Command::Report { rebuild } => crate::report::report(&cli.store, rebuild).await,
        command => match Session::open(
            &cli.store,
            Defaults {
                sqlite_dir: &cli.store.data_dir,
                snapshot_every: SnapshotPolicy::DEFAULT_INTERVAL,
                read_config_file: true,
            },
        )
        .await
        {
            Ok(session) => {
                let result = session.run(command).await;
                session.close().await;
                result
            }
            Err(failure) => Err(failure),
        },
    };
    match result {
        Ok(exit) => exit,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            failure.exit
        }
    }
}

/// An open event store with everything the commands need.
pub(crate) struct Session {
    store: Arc<dyn EventStore>,
    /// Whether the events live in an SQLite file (a demo then starts from a fresh one).
    pub(crate) is_sqlite: bool,
    /// `SQLite file ./order-data/orders.db` or `PostgreSQL at host:port/db`, for messages.
    pub(crate) description: String,
    pub(crate) repository: Repository<Order>,
    pub(crate) app: Store<OrderApp>,
    correlation_id: Uuid,
    pub(crate) snapshot_every: u64,
}

/// Where a session's events live when the command line does not say otherwise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults<'a> {
    /// The folder of the SQLite file `orders.db`.
    pub(crate) sqlite_dir: &'a Path,
    /// Events between snapshots.
    pub(crate) snapshot_every: u64,
    /// Whether `--config` is read (the demo always works on a fresh store of its own).
    pub(crate) read_config_file: bool,
}

/// The event store configuration an invocation asks for, from most to least specific: `--database-url`
/// (or `DATABASE_URL`) and `--snapshot-every`; the `--config` file with its `COMPOSABLE_*` environment
/// overrides; the SQLite file `orders.db` in the data folder.
pub(crate) fn store_config(args: &StoreArgs, defaults: Defaults<'_>) -> Result<EventStoreConfig, Failure> {
    let usage = |e: ConfigError| Failure { exit: Exit::Usage, message: error_chain(&e) };
    let config_file = args.config.as_deref().filter(|_| defaults.read_config_file);
    let mut config = match config_file {
        Some(path) => {
            EventStoreConfig::from_file(path).and_then(EventStoreConfig::with_env_overrides).map_err(usage)?
        }
        None => EventStoreConfig { snapshot_every: defaults.snapshot_every, ..EventStoreConfig::default() },
    };
    if config_file.is_none() || config.sqlite.path.is_none() {
        config.sqlite.path = Some(defaults.sqlite_dir.join(SQLITE_FILE));
    }
    if let Some(url) = &args.database_url {
        config.backend = Backend::Postgres;
        config.postgres.url = Some(url.clone());
    }
    if let Some(n) = args.snapshot_every {
        config.snapshot_every = n;
    }
    Ok(config)
}

impl Session {
    /// Opens the event store [`store_config`] chooses, running its migrations.
    pub(crate) async fn open(args: &StoreArgs, defaults: Defaults<'_>) -> Result<Self, Failure> {
        let config = store_config(args, defaults)?;
        let description = match config.backend {
            Backend::Postgres => {
                let url = config.postgres.url.as_deref().unwrap_or_default();
                let server = PostgresConfig::from_url(url).map_err(|e| Failure {
                    exit: Exit::Usage,
                    message: format!("invalid --database-url: {}", error_chain(&e)),
                })?;
                format!("PostgreSQL at {}", server.server())
            }
            Backend::Sqlite => {
                format!("SQLite file {}", config.sqlite.path.as_deref().unwrap_or(Path::new(SQLITE_FILE)).display())
            }
            Backend::InMemory => "memory (lost when the program ends)".to_owned(),
        };
        let store = composable_rust::config::open(&config)
            .await
            .map_err(|e| Failure::store(&format!("open the event store ({description})"), &e))?;
        let repository = Repository::<Order>::with_config(Arc::clone(&store), config.repository_config());
        let app = OrderApp::new(config.repository_config());
        let app = Store::builder(app, AppState::default(), AggregateEnvironment::default())
            .event_store(Arc::clone(&store))
            .build();
        let correlation_id = args.correlation_id.unwrap_or_else(Uuid::new_v4);
        Ok(Self {
            store,
            is_sqlite: config.backend == Backend::Sqlite,
            description,
            repository,
            app,
            correlation_id,
            snapshot_every: config.snapshot_every,
        })
    }

    pub(crate) async fn close(self) {
        // Snapshots of `Repository::execute` (the `load` generator) are written in the background; a
        // short-lived process must not exit before they land. The store's own snapshots are part of each send.
        self.repository.flush_snapshots().await;
        self.app.shutdown();
        // Every append is already committed; a failed close only leaves SQLite's -wal file beside the database.
        if let Err(error) = self.store.close().await {
            eprintln!("warning: could not close {} cleanly: {}", self.description, error_chain(&error));
        }
    }

    async fn run(&self, command: Command) -> Result<Exit, Failure> {
        match command {
            Command::Place { customer, items, id } => {
                let (id, generated) = match id {
                    Some(id) => (id, false),
                    None => (new_order_id()?, true),
                };
                let outcome = self.execute(&id, OrderCommand::Place { customer, items }, self.correlation_id).await?;
                match outcome {
                    // The id was made up for an order that now does not exist: do not name it.
                    Outcome::Rejected(rejection) if generated => {
                        eprintln!("rejected: {rejection}");
                        eprintln!("nothing was written.");
                        Ok(Exit::Rejected)
                    }
                    outcome => Ok(self.report(&id, &outcome)),
                }
            }
            Command::AddItem { order, item } => {
                let outcome = self.execute(&order, OrderCommand::AddItem { item }, self.correlation_id).await?;
                Ok(self.report(&order, &outcome))
            }
            Command::Cancel { order, reason } => {
                let outcome = self.execute(&order, OrderCommand::Cancel { reason }, self.correlation_id).await?;
                Ok(self.report(&order, &outcome))
            }
            Command::Ship { order, tracking_number } => {
                let outcome = self.execute(&order, OrderCommand::Ship { tracking_number }, self.correlation_id).await?;
                Ok(self.report(&order, &outcome))
            }
            Command::Show { order, at } => self.show(&order, at).await,
            Command::List { status } => self.list(status).await,
            Command::History { order } => self.history(&order).await,
            Command::Rebuild { all } => self.rebuild(all).await,
            Command::Load(args) => self.load(args).await,
            Command::Demo | Command::DemoRestart { .. } | Command::Report { .. } => {
                Err(Failure { exit: Exit::Usage, message: "demo and report run in sessions of their own".to_owned() })
            }
        }
    }

    /// Sends the command through the store and waits for its outcome. The wait covers the whole cascade
    /// the command starts (load, append, and the snapshot the policy may ask for), so nothing is still
    /// being written when it returns.
    ///
    /// Commands are sent one at a time: the outcome is the first one recorded after the send.
    pub(crate) async fn execute(
        &self,
        order: &OrderId,
        command: OrderCommand,
        correlation_id: Uuid,
    ) -> Result<Outcome, Failure> {
        let before = self.app.state(|state| state.outcomes.len());
        self.app.send(AppAction::Execute { order: order.clone(), command, correlation_id }).finished().await;
        self.app.state(|state| state.outcomes.get(before).map(|(_, outcome)| outcome.clone())).ok_or_else(|| Failure {
            exit: Exit::StoreError,
            message: format!(
                "the command for order {order} produced no outcome (a bug in order-processing; please report it)"
            ),
        })
    }

    /// Prints what a command did (stdout) or why it did not (stderr).
    fn report(&self, id: &OrderId, outcome: &Outcome) -> Exit {
        match outcome {
            Outcome::Accepted { order, version, events, snapshot } => {
                for event in events {
                    println!("{}", describe_change(id, event, order));
                }
                let snapshot = snapshot.map(|v| format!("; snapshot saved at version {v}")).unwrap_or_default();
                println!(
                    "  order {id} is at version {version}{snapshot}; correlation id {}; stored in {}",
                    self.correlation_id, self.description
                );
                Exit::Done
            }
            Outcome::Rejected(rejection) => {
                eprintln!("rejected: order {id}: {rejection}");
                eprintln!("nothing was written.");
                Exit::Rejected
            }
            Outcome::Failed(error) => {
                eprintln!("error: order {id}: {error}");
                Exit::StoreError
            }
        }
    }

    /// Loads an order (snapshot plus replay); an order without events is "not found" (exit 1).
    async fn load_existing(&self, id: &OrderId) -> Result<Loaded<Order>, Failure> {
        let loaded = self.repository.load(id.stream_id()).await.map_err(|e| Failure::load(id, &e))?;
        if loaded.version == Version::INITIAL {
            return Err(Failure {
                exit: Exit::Rejected,
                message: format!(
                    "there is no order {id} in {}; `order-processing list` shows the orders",
                    self.description
                ),
            });
        }
        Ok(loaded)
    }

    /// `show`: the order now, or as it was at a version or a time (`Repository::load_as_of`). A version
    /// past its last event, or a time before its first, is an error (exit 1) that names the bounds.
    async fn show(&self, id: &OrderId, at: PointInTime) -> Result<Exit, Failure> {
        let latest = self.load_existing(id).await?;
        let last = latest.version;
        let until = at.until();
        if until == LoadUntil::End {
            print!("{}", output::order_details(id, &latest.state, last));
            println!("  rebuilt from {}: {}", self.description, describe_load(&latest));
            return Ok(Exit::Done);
        }
        if let LoadUntil::Version(version) = until {
            if version > last {
                return Err(Failure {
                    exit: Exit::Rejected,
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
                    exit: Exit::Rejected,
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
        print!("{}", output::order_details(id, &past.state, past.version));
        println!("  {reflects}");
        println!("  rebuilt from {}: {}", self.description, describe_load(&past));
        Ok(Exit::Done)
    }

    /// When the event `version` of order `id` was recorded.
    async fn recorded_at(&self, id: &OrderId, version: Version) -> Result<DateTime<Utc>, Failure> {
        let what = || format!("read event {version} of order {id}");
        let events = self
            .store
            .load_stream(id.stream_id(), StreamRange::between(version, version))
            .await
            .map_err(|e| Failure::store(&what(), &e))?;
        events.first().map(|event| event.recorded_at).ok_or_else(|| Failure {
            exit: Exit::StoreError,
            message: format!("could not {}: the event store has no such event although it loaded it", what()),
        })
    }

    async fn list(&self, status: Option<StatusFilter>) -> Result<Exit, Failure> {
        let mut table = Table::new(&[
            ("ORDER", Align::Left),
            ("STATUS", Align::Left),
            ("CUSTOMER", Align::Left),
            ("ITEMS", Align::Right),
            ("TOTAL", Align::Right),
            ("EVENTS", Align::Right),
        ]);
        let mut shown = 0_u64;
        for id in self.order_ids().await? {
            let loaded = self.repository.load(id.stream_id()).await.map_err(|e| Failure::load(&id, &e))?;
            let order = &loaded.state;
            if status.is_some_and(|filter| !filter.matches(order.status)) {
                continue;
            }
            shown += 1;
            table.row([
                id.to_string(),
                order.status.to_string(),
                order.customer.clone(),
                output::count(order.items.len() as u64),
                order.total.to_string(),
                loaded.version.to_string(),
            ]);
        }
        let which = status.map(|s| format!("{} ", format!("{s:?}").to_lowercase())).unwrap_or_default();
        if table.is_empty() {
            println!("No {which}orders in {}.", self.description);
        } else {
            print!("{}", table.render(""));
            println!("{} in {}", output::plural(shown, &format!("{which}order")), self.description);
        }
        Ok(Exit::Done)
    }

    async fn history(&self, id: &OrderId) -> Result<Exit, Failure> {
        let decoder = EventDecoder::for_aggregate::<Order>();
        let recorded = self
            .store
            .load_stream(id.stream_id(), StreamRange::all())
            .await
            .map_err(|e| Failure::store(&format!("read the events of order {id}"), &e))?;
        if recorded.is_empty() {
            return Err(Failure {
                exit: Exit::Rejected,
                message: format!(
                    "there is no order {id} in {}; `order-processing list` shows the orders",
                    self.description
                ),
            });
        }
        let mut table = Table::new(&[
            ("VERSION", Align::Right),
            ("EVENT ID", Align::Left),
            ("RECORDED AT (UTC)", Align::Left),
            ("TYPE", Align::Left),
            ("CORRELATION ID", Align::Left),
            ("WHAT HAPPENED", Align::Left),
        ]);
        let mut order = Order::default();
        for event in &recorded {
            let decoded =
                decoder.decode(event).map_err(|e| Failure::store(&format!("decode the events of order {id}"), &e))?;
            let details = match decoded {
                Some(decoded) => {
                    order.apply(&decoded);
                    decoded.describe()
                }
                None => "(an event type this build skips)".to_owned(),
            };
            table.row([
                event.version.to_string(),
                event.id.to_string(),
                event.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                event.event_type.to_string(),
                event.metadata.correlation_id.map(|c| c.to_string()).unwrap_or_else(|| "-".to_owned()),
                details,
            ]);
        }
        println!(
            "History of order {id} (stream {}, {}, in {}):",
            id.stream_id(),
            output::plural(recorded.len() as u64, "event"),
            self.description
        );
        print!("{}", table.render(""));
        println!("Now {}, total {}.", order.status, order.total);
        Ok(Exit::Done)
    }

    /// Every order id in the store, in stream id order.
    async fn order_ids(&self) -> Result<Vec<OrderId>, Failure> {
        const PAGE: usize = 500;
        let prefix = format!("{}{}", Order::CATEGORY, StreamId::CATEGORY_SEPARATOR);
        let mut ids = Vec::new();
        let mut after: Option<StreamId> = None;
        loop {
            let page = self
                .store
                .list_streams(&prefix, after.as_ref(), PAGE)
                .await
                .map_err(|e| Failure::store("list the orders", &e))?;
            ids.extend(page.iter().filter_map(|info| OrderId::from_stream_id(&info.stream_id)));
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.stream_id.clone()),
                _ => return Ok(ids),
            }
        }
    }

    /// Loads `id` both ways: through the latest snapshot, and by replaying every event.
    async fn rebuild_one(&self, id: &OrderId) -> Result<Rebuilt, Failure> {
        let with_snapshot = self.repository.load(id.stream_id()).await.map_err(|e| Failure::load(id, &e))?;
        let full = self.repository.load_without_snapshot(id.stream_id()).await.map_err(|e| Failure::load(id, &e))?;
        Ok(Rebuilt { id: id.clone(), with_snapshot, full })
    }

    async fn rebuild(&self, all: bool) -> Result<Exit, Failure> {
        const SHOWN: usize = 50;
        let ids = self.order_ids().await?;
        println!(
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
            print!("{}", table.render("  "));
        }
        if !all && ids.len() > SHOWN {
            println!("  ... and {} more (pass --all to list every order)", ids.len() - SHOWN);
        }
        println!("{}", totals.summary());
        if differing.is_empty() {
            println!("Every order rebuilt from its snapshot equals the order rebuilt from all its events.");
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

    async fn load(&self, args: LoadArgs) -> Result<Exit, Failure> {
        let LoadArgs { orders, events, concurrency } = args;
        let total_events = u64::from(orders) * u64::from(events);
        let run = Uuid::new_v4().simple().to_string().chars().take(6).collect::<String>();
        println!(
            "Writing {} with {} each ({} in all) to {}, {} orders at a time; snapshot every {}.",
            output::plural(u64::from(orders), "order"),
            output::plural(u64::from(events), "event"),
            output::plural(total_events, "event"),
            self.description,
            concurrency,
            self.snapshot_policy_text()
        );
        println!(
            "Each event is one command: load the order (snapshot + replay), decide, append with its expected version."
        );
        let progress = ProgressBar::new(total_events);
        progress.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} events  {per_sec}  eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let started = Instant::now();
        let mut ids = Vec::with_capacity(orders as usize);
        let mut writers = futures::stream::iter(0..orders)
            .map(|n| self.load_one(&run, n, events, &progress))
            .buffer_unordered(concurrency as usize);
        while let Some(result) = writers.next().await {
            ids.push(result?);
        }
        drop(writers);
        self.repository.flush_snapshots().await;
        let elapsed = started.elapsed();
        progress.finish_and_clear();
        println!(
            "Wrote {} in {}: {} events/s.",
            output::plural(total_events, "event"),
            output::duration(elapsed),
            output::rate(total_events, elapsed)
        );
        ids.sort();
        let mut totals = RebuildTotals::default();
        for id in &ids {
            let rebuilt = self.rebuild_one(id).await?;
            if !rebuilt.differences().is_empty() {
                eprintln!("order {id}: the snapshot path and the full replay differ; run `order-processing rebuild`");
                return Ok(Exit::Mismatch);
            }
            totals.add(&rebuilt);
        }
        println!("Loading them back: {}", totals.summary());
        Ok(Exit::Done)
    }

    /// Writes one generated order: placed, items added, and for two orders in three a final shipment or
    /// cancellation. Returns its id.
    async fn load_one(&self, run: &str, n: u32, events: u32, progress: &ProgressBar) -> Result<OrderId, Failure> {
        let id = OrderId::new(format!("load-{run}-{n:06}"))
            .map_err(|e| Failure { exit: Exit::Usage, message: e.to_string() })?;
        for event in 1..=events {
            let price = 100 + i64::from((n * 31 + event * 17) % 9_900);
            let item = ItemRequest::new(format!("sku-{}", event % 50), 1 + i64::from(event % 5), price);
            let command = match (event, n % 3) {
                (1, _) => OrderCommand::Place { customer: format!("customer {n}"), items: vec![item] },
                (last, 0) if last == events => OrderCommand::Ship { tracking_number: format!("TRK{n:08}") },
                (last, 1) if last == events => OrderCommand::Cancel { reason: "generated by load".into() },
                _ => OrderCommand::AddItem { item },
            };
            let metadata = Metadata::correlated(self.correlation_id).with_actor(crate::app::ACTOR);
            self.repository.execute(id.stream_id(), command, metadata).await.map_err(|e| match e.domain() {
                Some(rejection) => Failure {
                    exit: Exit::Rejected,
                    message: format!("order {id}: {rejection} (is it left from an earlier load?)"),
                },
                None => Failure::store(&format!("write order {id}"), &e),
            })?;
            progress.inc(1);
        }
        Ok(id)
    }

    pub(crate) fn snapshot_policy_text(&self) -> String {
        match self.snapshot_every {
            0 => "never".to_owned(),
            n => output::plural(n, "event"),
        }
    }
}

/// A new short order id (8 hex digits of a random UUID).
pub(crate) fn new_order_id() -> Result<OrderId, Failure> {
    let text: String = Uuid::new_v4().simple().to_string().chars().take(8).collect();
    OrderId::new(text).map_err(|e| Failure { exit: Exit::Usage, message: e.to_string() })
}

/// One line saying what an accepted event changed.
pub(crate) fn describe_change(id: &OrderId, event: &OrderEvent, order: &Order) -> String {
    match event {
        OrderEvent::OrderPlaced { customer, items } => format!(
            "Placed order {id} for {customer}: {}, total {}.",
            output::plural(items.len() as u64, "item"),
            order.total
        ),
        OrderEvent::OrderItemAdded { item } => format!(
            "Added {} x {} at {} to order {id}; the total is now {}.",
            item.quantity, item.sku, item.unit_price, order.total
        ),
        OrderEvent::OrderCancelled { reason } => format!("Cancelled order {id}: {reason}."),
        OrderEvent::OrderShipped { tracking_number } => {
            format!("Shipped order {id} with tracking number {tracking_number}.")
        }
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

/// An order loaded both ways.
struct Rebuilt {
    id: OrderId,
    with_snapshot: Loaded<Order>,
    full: Loaded<Order>,
}

impl Rebuilt {
    fn differences(&self) -> Vec<String> {
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
struct RebuildTotals {
    orders: u64,
    from_snapshot: u64,
    replayed_after_snapshot: u64,
    replayed_full: u64,
    elapsed_snapshot: Duration,
    elapsed_full: Duration,
}

impl RebuildTotals {
    fn add(&mut self, rebuilt: &Rebuilt) {
        self.orders += 1;
        self.from_snapshot += u64::from(rebuilt.with_snapshot.metrics.snapshot_version.is_some());
        self.replayed_after_snapshot += rebuilt.with_snapshot.metrics.events_replayed;
        self.replayed_full += rebuilt.full.metrics.events_replayed;
        self.elapsed_snapshot += rebuilt.with_snapshot.metrics.elapsed;
        self.elapsed_full += rebuilt.full.metrics.elapsed;
    }

    fn summary(&self) -> String {
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
