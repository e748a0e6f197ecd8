//! One invocation of the program: open the event store, run the subcommand, print for humans, and say
//! how the process should exit.
//!
//! Commands that change an order go through the [`Store`] and the [`OrderApp`] reducer: the store runs
//! the reducer's event store requests (load, append, save snapshot) and feeds the answers back. Commands
//! that only read (`show`, `list`, `history`, `rebuild`) and the `load` generator use the [`Repository`]
//! and the [`EventStore`] directly. Each subcommand has its file here (`change` for the four that change an
//! order); `demo` lives in the `demo` module.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use composable_rust::aggregate::{AggregateEnvironment, LoadError, Loaded};
use composable_rust::config::{Backend, ConfigError, EventStoreConfig};
use composable_rust::error_chain;
use composable_rust::event_store::StreamRange;
use composable_rust::postgres::{PostgresConfig, PostgresError};
use composable_rust::{Aggregate, EventStore, EventStoreError, StreamId, Version};
use composable_rust::{Repository, SnapshotPolicy, Store};
use uuid::Uuid;

use crate::app::{AppState, OrderApp, Outcome};
use crate::cli::{Cli, Command, StoreArgs};
use crate::domain::{Order, OrderCommand, OrderId};
use crate::output;

mod change;
mod history;
mod list;
mod load;
mod rebuild;
mod show;

pub(crate) use change::{describe_change, new_order_id};

/// How the process ends. The numbers are part of the command-line interface (see `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the command did what was asked.
    Done,
    /// 1: the order rules refused the command; nothing was written.
    Rejected,
    /// 2: the command line was wrong (clap reports these itself).
    Usage,
    /// 3: the event store failed (cannot open, connect, read or write).
    StoreError,
    /// 4: a rebuilt order differs from the state it was compared with.
    Mismatch,
    /// 5: there is no such order, or no such version or time of it (`show --at-version`, `--as-of`).
    NotFound,
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
            Self::NotFound => 5,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}

/// A command that could not finish: what to print on stderr (nothing when empty), and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) exit: Exit,
    pub(crate) message: String,
}

impl Failure {
    /// Writing to stdout failed. A reader that went away (`history a1 | head -1`) is not an error: the
    /// command ends quietly with exit 0, as `cat` and `grep` do.
    pub(crate) fn stdout(error: &std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            Self { exit: Exit::Done, message: String::new() }
        } else {
            Self { exit: Exit::StoreError, message: format!("could not write the output: {error}") }
        }
    }

    /// There is no order `id` in the store described by `store`.
    pub(crate) fn no_such_order(id: &OrderId, store: &str) -> Self {
        Self {
            exit: Exit::NotFound,
            message: format!("there is no order {id} in {store}; `order-processing list` shows the orders"),
        }
    }

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
///
/// With `--metrics-addr`, the metrics endpoint is up before the command starts and stays up after it ends,
/// until stdin ends (see `metrics_endpoint`).
pub async fn run(cli: Cli) -> Exit {
    let Some(addr) = cli.metrics_addr else {
        return run_command(cli).await;
    };
    if let Err(failure) = crate::metrics_endpoint::serve(addr) {
        eprintln!("error: {}", failure.message);
        return failure.exit;
    }
    let exit = run_command(cli).await;
    crate::metrics_endpoint::hold(addr).await;
    exit
}

async fn run_command(cli: Cli) -> Exit {
    let args = cli.store_args();
    let result = match cli.command {
        Command::Demo { .. } => crate::demo::demo(&args).await,
        Command::DemoRestart { expect, .. } => crate::demo::demo_restart(&args, &expect).await,
        Command::Report { rebuild, .. } => crate::report::report(&args, rebuild).await,
        command => match Session::open(
            &args,
            Defaults {
                sqlite_dir: &args.data_dir,
                snapshot_every: SnapshotPolicy::DEFAULT_INTERVAL,
                read_config_file: true,
                access: Access::of(&command),
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
            if !failure.message.is_empty() {
                eprintln!("error: {}", failure.message);
            }
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
    /// Whether the command may create the store.
    pub(crate) access: Access,
}

/// Whether a command may create the event store it is pointed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// `show`, `list`, `history`, `rebuild`, `report`: a store that does not exist is an error, and nothing
    /// is created (a mistyped --data-dir must not leave an empty store behind).
    ReadOnly,
    /// The commands that write events: the store is created on first use.
    ReadWrite,
}

impl Access {
    /// How `command` uses the store.
    pub(crate) fn of(command: &Command) -> Self {
        match command {
            Command::Show { .. }
            | Command::List { .. }
            | Command::History { .. }
            | Command::Rebuild { .. }
            | Command::Report { .. } => Self::ReadOnly,
            Command::Place { .. }
            | Command::AddItem { .. }
            | Command::Cancel { .. }
            | Command::Ship { .. }
            | Command::Load(_)
            | Command::Demo { .. }
            | Command::DemoRestart { .. } => Self::ReadWrite,
        }
    }
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
        None => {
            let mut config = EventStoreConfig::default();
            config.snapshot_every = defaults.snapshot_every;
            config
        }
    };
    if config_file.is_none() || config.sqlite.path.is_none() {
        config.sqlite.path = Some(defaults.sqlite_dir.join(SQLITE_FILE));
    }
    if let Some(url) = &args.database_url {
        check_postgres_url(url)?;
        config.backend = Backend::Postgres;
        config.postgres.url = Some(url.clone());
    }
    if let Some(n) = args.snapshot_every {
        config.snapshot_every = n;
    }
    Ok(config)
}

/// Where `--database-url` came from, to name it in messages.
fn url_source(url: &str) -> &'static str {
    if std::env::var("DATABASE_URL").is_ok_and(|env| env == url) {
        "DATABASE_URL (from the environment)"
    } else {
        "--database-url"
    }
}

/// Refuses a URL of another database by its scheme, before anything is opened (the URL itself is never
/// printed: it may hold a password).
fn check_postgres_url(url: &str) -> Result<(), Failure> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(());
    }
    let source = url_source(url);
    let what = match url.split_once("://") {
        Some((scheme, _)) if !scheme.is_empty() => format!("a {scheme}:// URL"),
        _ => "not a URL".to_owned(),
    };
    let unset = if source == "--database-url" { "leave out --database-url" } else { "unset DATABASE_URL" };
    Err(Failure {
        exit: Exit::Usage,
        message: format!(
            "{source} is {what}, but order-processing stores events in PostgreSQL (a postgres:// or postgresql:// \
             URL) or in SQLite: for SQLite, {unset} and use --data-dir"
        ),
    })
}

/// Checks where an SQLite store would go before it is opened: a folder that is a file is named as such,
/// and a read-only command refuses a store that does not exist instead of creating an empty one.
pub(crate) fn check_sqlite_location(
    args: &StoreArgs,
    config: &EventStoreConfig,
    access: Access,
) -> Result<(), Failure> {
    let path = config.sqlite.path_or_default();
    let from_config = config.sqlite.path.as_deref() != Some(args.data_dir.join(SQLITE_FILE).as_path());
    let option = match (&args.config, from_config) {
        (Some(file), true) => format!("sqlite.path in {}", file.display()),
        _ => "--data-dir".to_owned(),
    };
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    check_folder(folder, &option)?;
    if access == Access::ReadOnly && !path.exists() {
        let missing = if folder.exists() {
            format!(
                "{} has no file {}",
                folder.display(),
                path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            )
        } else {
            format!("the folder {} does not exist", folder.display())
        };
        return Err(Failure {
            exit: Exit::StoreError,
            message: format!(
                "there is no event store at {} ({missing}); nothing was created. Point {option} at the store \
                 (`order-processing place` creates one), or use --database-url for PostgreSQL",
                path.display()
            ),
        });
    }
    Ok(())
}

/// Refuses a folder that is a file, or lies under one (the nearest part of the path that exists must be a
/// folder); `option` names where the path came from.
pub(crate) fn check_folder(folder: &Path, option: &str) -> Result<(), Failure> {
    match folder.ancestors().find(|part| part.exists()) {
        Some(file) if !file.is_dir() => Err(Failure {
            exit: Exit::Usage,
            message: format!(
                "{} is a file, not a folder: point {option} at a folder (it is created if it does not exist)",
                file.display()
            ),
        }),
        _ => Ok(()),
    }
}

impl Session {
    /// Opens the event store [`store_config`] chooses, running its migrations.
    pub(crate) async fn open(args: &StoreArgs, defaults: Defaults<'_>) -> Result<Self, Failure> {
        let config = store_config(args, defaults)?;
        match config.backend {
            // A malformed URL is a usage error, told before anything is opened.
            Backend::Postgres => check_url_parses(&config)?,
            Backend::Sqlite => check_sqlite_location(args, &config, defaults.access)?,
            Backend::InMemory | Backend::File => {}
        }
        let description = config.location();
        let store = composable_rust::config::open(&config).await.map_err(|e| open_failure(&description, &e))?;
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
            Command::Place { customer, items, id, .. } => {
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
                    outcome => self.report(&id, &outcome),
                }
            }
            Command::AddItem { order, item, .. } => {
                let outcome = self.execute(&order, OrderCommand::AddItem { item }, self.correlation_id).await?;
                self.report(&order, &outcome)
            }
            Command::Cancel { order, reason, .. } => {
                let outcome = self.execute(&order, OrderCommand::Cancel { reason }, self.correlation_id).await?;
                self.report(&order, &outcome)
            }
            Command::Ship { order, tracking_number, .. } => {
                let outcome = self.execute(&order, OrderCommand::Ship { tracking_number }, self.correlation_id).await?;
                self.report(&order, &outcome)
            }
            Command::Show { order, at, .. } => self.show(&order, at).await,
            Command::List { status, .. } => self.list(status).await,
            Command::History { order, .. } => self.history(&order).await,
            Command::Rebuild { all, .. } => self.rebuild(all).await,
            Command::Load(args) => self.load(&args).await,
            Command::Demo { .. } | Command::DemoRestart { .. } | Command::Report { .. } => {
                Err(Failure { exit: Exit::Usage, message: "demo and report run in sessions of their own".to_owned() })
            }
        }
    }

    /// Loads an order (snapshot plus replay); an order without events is "not found" (exit 1).
    async fn load_existing(&self, id: &OrderId) -> Result<Loaded<Order>, Failure> {
        let loaded = self.repository.load(id.stream_id()).await.map_err(|e| Failure::load(id, &e))?;
        if loaded.version == Version::INITIAL {
            return Err(Failure::no_such_order(id, &self.description));
        }
        Ok(loaded)
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

    pub(crate) fn snapshot_policy_text(&self) -> String {
        match self.snapshot_every {
            0 => "never".to_owned(),
            n => output::plural(n, "event"),
        }
    }
}

/// Refuses a PostgreSQL URL that does not parse, naming where it came from.
pub(crate) fn check_url_parses(config: &EventStoreConfig) -> Result<(), Failure> {
    let url = config.postgres.url.as_deref().unwrap_or_default();
    PostgresConfig::from_url(url).map(drop).map_err(|e| Failure {
        exit: Exit::Usage,
        message: format!("invalid {}: {}", url_source(url), error_chain(&e)),
    })
}

/// The event store could not be opened: says why in the terms of this program's options.
///
/// The library's PostgreSQL errors name its own settings (`PostgresConfig::max_connections`); a user of
/// this program sets them with --database-url, `DATABASE_URL` or the `--config` file instead.
pub(crate) fn open_failure(description: &str, error: &(dyn std::error::Error + 'static)) -> Failure {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(EventStoreError::NotFound { what, .. }) = current.downcast_ref::<EventStoreError>() {
            return Failure {
                exit: Exit::StoreError,
                message: format!(
                    "could not open {description}: {what} does not exist; nothing was created. Check the database \
                     name at the end of --database-url (or DATABASE_URL), or create the database first (createdb)"
                ),
            };
        }
        if let Some(postgres) = current.downcast_ref::<PostgresError>() {
            if let Some(message) = postgres_advice(postgres) {
                return Failure { exit: Exit::StoreError, message: format!("could not open {description}: {message}") };
            }
        }
        cause = current.source();
    }
    Failure::store(&format!("open the event store ({description})"), error)
}

/// What to do about a PostgreSQL error, in terms of this program's options; `None` when the library's
/// message already says it.
fn postgres_advice(error: &PostgresError) -> Option<String> {
    match error {
        PostgresError::Unreachable { server, .. } => Some(format!(
            "nothing answered at {server}: is the server running there? check --database-url (or DATABASE_URL)"
        )),
        PostgresError::AcquireTimeout { server, timeout } => Some(format!(
            "no connection to {server} within {} s: the server is unreachable or slow; check that it runs, or \
             raise acquire_timeout_secs under [event_store.postgres] in the --config file",
            timeout.as_secs()
        )),
        PostgresError::StatementTimeout { .. } => Some(
            "a statement ran longer than the statement timeout and was cancelled: raise statement_timeout_secs \
             under [event_store.postgres] in the --config file"
                .to_owned(),
        ),
        _ => None,
    }
}
