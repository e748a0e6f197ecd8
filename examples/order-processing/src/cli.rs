//! The command line, declared with clap: global options (where the events live, snapshot interval,
//! correlation id) and one subcommand per thing a person can do.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use composable_rust::Version;
use composable_rust::event_store::LoadUntil;
use uuid::Uuid;

use crate::domain::{ItemRequest, OrderId, OrderStatus};

/// Place, cancel and ship orders whose state lives as events in an event store.
///
/// Every invocation is a new process: the orders are rebuilt from their events (and snapshots) each time.
#[derive(Debug, Parser)]
#[command(name = "order-processing", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Where the events live.
    #[command(flatten)]
    pub backend: BackendArgs,

    /// Serve Prometheus metrics over HTTP at this loopback address (e.g. 127.0.0.1:9464) while the command
    /// runs, and after it until stdin ends or a line is entered (press Enter to stop).
    #[arg(long, global = true, value_name = "ADDR", value_parser = parse_metrics_addr)]
    pub metrics_addr: Option<SocketAddr>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes, printed under `--help` (the example's README has the same table).
const EXIT_CODES: &str = "\
Exit codes:
  0  done (also when the reader of the output went away, as with `| head -1`)
  1  rejected by the order rules; nothing was written
  2  usage error
  3  event store error: it cannot be found, opened, read or written
  4  a rebuilt order differs from the stored state
  5  no such order (or no such version or time of it)";

/// The options every subcommand takes: which event store to use. They may go before or after the
/// subcommand.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Folder of the SQLite event store (the file `orders.db` in it), used unless --database-url is given.
    #[arg(long, global = true, value_name = "DIR", default_value = "./order-data")]
    pub data_dir: PathBuf,

    /// Use PostgreSQL at this URL (postgres:// or postgresql://user:password@host:port/database) instead of
    /// SQLite.
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// `--config`: the subcommands that work on the user's store (all but `demo`) can read its settings from a
/// file.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArg {
    /// Read the event store settings from this TOML file (table `[event_store]`: backend, sqlite.path,
    /// postgres.url, snapshot_every, codec); the options on the command line still take precedence.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `--snapshot-every`: for the subcommands that write events.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct SnapshotArg {
    /// Save a snapshot of an order every N events (0: never) [default: 100; 5 for `demo`].
    #[arg(long, value_name = "N")]
    pub snapshot_every: Option<u64>,
}

/// The options of the subcommands that change orders: `--config`, `--snapshot-every` and `--correlation-id`.
#[derive(Debug, Clone, Default, Args)]
pub struct WriteArgs {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The snapshot interval.
    #[command(flatten)]
    pub snapshot: SnapshotArg,
    /// The correlation id stored with the events this invocation writes [default: a new random id].
    #[arg(long, value_name = "UUID")]
    pub correlation_id: Option<Uuid>,
}

/// Everything that chooses and sets up the event store of one invocation, gathered from the options
/// before and after the subcommand.
#[derive(Debug, Clone)]
pub struct StoreArgs {
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// `--database-url` or `DATABASE_URL`.
    pub database_url: Option<String>,
    /// `--config` (for the subcommands that take it).
    pub config: Option<PathBuf>,
    /// `--snapshot-every` (for the subcommands that take it).
    pub snapshot_every: Option<u64>,
    /// `--correlation-id` (for the subcommands that take it).
    pub correlation_id: Option<Uuid>,
}

impl Cli {
    /// The event store options of this invocation, wherever on the command line they were given.
    #[must_use]
    pub fn store_args(&self) -> StoreArgs {
        let BackendArgs { data_dir, database_url } = self.backend.clone();
        let (config, snapshot_every, correlation_id) = match &self.command {
            Command::Place { write, .. }
            | Command::AddItem { write, .. }
            | Command::Cancel { write, .. }
            | Command::Ship { write, .. } => {
                (write.config.config.clone(), write.snapshot.snapshot_every, write.correlation_id)
            }
            Command::Load(load) => {
                (load.write.config.config.clone(), load.write.snapshot.snapshot_every, load.write.correlation_id)
            }
            Command::Show { config, .. }
            | Command::List { config, .. }
            | Command::History { config, .. }
            | Command::Report { config, .. }
            | Command::Rebuild { config, .. } => (config.config.clone(), None, None),
            Command::Demo { snapshot } | Command::DemoRestart { snapshot, .. } => (None, snapshot.snapshot_every, None),
        };
        StoreArgs { data_dir, database_url, config, snapshot_every, correlation_id }
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Place a new order and print its id.
    Place {
        /// Who the order is for.
        #[arg(long)]
        customer: String,
        /// A line item, SKU:QUANTITY:UNIT_PRICE_CENTS (widget:2:1250 is two at $12.50); repeat for more.
        #[arg(long = "item", value_name = "SKU:QTY:CENTS", required = true)]
        items: Vec<ItemRequest>,
        /// Use this order id instead of a generated one.
        #[arg(long)]
        id: Option<OrderId>,
        /// How the events are written.
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Add a line item to a placed order.
    AddItem {
        /// The order.
        order: OrderId,
        /// The line item, SKU:QUANTITY:UNIT_PRICE_CENTS.
        #[arg(long = "item", value_name = "SKU:QTY:CENTS")]
        item: ItemRequest,
        /// How the events are written.
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Cancel a placed order that has not shipped.
    Cancel {
        /// The order.
        order: OrderId,
        /// Why it is cancelled.
        #[arg(long)]
        reason: String,
        /// How the events are written.
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Ship a placed order.
    Ship {
        /// The order.
        order: OrderId,
        /// The carrier's tracking number.
        #[arg(long = "tracking", value_name = "NUMBER")]
        tracking_number: String,
        /// How the events are written.
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Show one order, as it is now or as it was at a version or time of its past.
    Show {
        /// The order.
        order: OrderId,
        /// Which point of its history (default: now).
        #[command(flatten)]
        at: PointInTime,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List orders.
    List {
        /// Only orders with this status.
        #[arg(long, value_enum)]
        status: Option<StatusFilter>,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show every event of an order: version, time, type, correlation id.
    History {
        /// The order.
        order: OrderId,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Orders and revenue by status, from a summary table a subscription keeps up to date.
    Report {
        /// Clear the summary and rebuild it from every order event.
        #[arg(long)]
        rebuild: bool,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Place, ship and cancel a few orders, try an invalid command, then restart and rebuild them (in a
    /// fresh store of its own: `<DIR>/demo/orders.db`, or new orders in the --database-url database).
    Demo {
        /// The snapshot interval.
        #[command(flatten)]
        snapshot: SnapshotArg,
    },
    /// Generate orders with many events each, to try performance.
    Load(LoadArgs),
    /// Rebuild every order from its events, ignoring snapshots, and compare with the snapshot path.
    Rebuild {
        /// Print a line for every order, not only the first 50 and the ones that differ.
        #[arg(long)]
        all: bool,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// The second half of `demo`: rebuild the orders listed in FILE and compare (started by `demo`).
    #[command(hide = true)]
    DemoRestart {
        /// The JSON file `demo` wrote with the orders as they were before the restart.
        #[arg(long, value_name = "FILE")]
        expect: PathBuf,
        /// The snapshot interval.
        #[command(flatten)]
        snapshot: SnapshotArg,
    },
}

/// The options of `load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// How many orders to create.
    #[arg(long, default_value_t = 100)]
    pub orders: u32,
    /// How many events each order gets (an OrderPlaced, then OrderItemAdded, and a final shipment or
    /// cancellation for two orders in three).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub events: u32,
    /// How many orders are written at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// How the events are written.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// The options of `show` that pick a point in an order's past; at most one of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Args)]
#[group(multiple = false)]
pub struct PointInTime {
    /// Show the order as it was after its event number N (1 is the event that placed it).
    #[arg(long, value_name = "N", value_parser = parse_version)]
    pub at_version: Option<Version>,
    /// Show the order as it was at this time: after the events recorded at or before it
    /// (RFC 3339, e.g. 2026-11-26T13:07:54.540Z; `history` shows when each event was recorded).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub as_of: Option<DateTime<Utc>>,
}

impl PointInTime {
    /// How far to load the order: to the end unless a version or a time was given.
    #[must_use]
    pub fn until(self) -> LoadUntil {
        match (self.at_version, self.as_of) {
            (Some(version), _) => LoadUntil::Version(version),
            (None, Some(time)) => LoadUntil::RecordedAt(time),
            (None, None) => LoadUntil::End,
        }
    }
}

/// `--at-version`: a whole number from 1.
fn parse_version(text: &str) -> Result<Version, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("versions start at 1, the event that placed the order".to_owned()),
        Ok(n) => Ok(Version::new(n)),
        Err(_) => Err(format!("{text:?} is not a version number (a whole number from 1)")),
    }
}

/// `--metrics-addr`: a socket address on this machine. The endpoint has no authentication, so the example
/// never serves it beyond the loopback interface.
fn parse_metrics_addr(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr =
        text.parse().map_err(|_| format!("{text:?} is not an address with a port, such as 127.0.0.1:9464"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!(
            "{addr} is not a loopback address: the metrics endpoint has no authentication, so this example serves \
             it on this machine only; use 127.0.0.1:PORT or [::1]:PORT"
        ))
    }
}

/// `--as-of`: an RFC 3339 time with its offset, kept in UTC.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc)).map_err(|_| {
        let example = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        format!("{text:?} is not an RFC 3339 time such as {example} (date, 'T', time and offset)")
    })
}

/// The statuses `list --status` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    /// Placed, not shipped or cancelled.
    Placed,
    /// Shipped.
    Shipped,
    /// Cancelled.
    Cancelled,
}

impl StatusFilter {
    /// Whether an order with `status` passes the filter.
    #[must_use]
    pub fn matches(self, status: OrderStatus) -> bool {
        matches!(
            (self, status),
            (Self::Placed, OrderStatus::Placed)
                | (Self::Shipped, OrderStatus::Shipped)
                | (Self::Cancelled, OrderStatus::Cancelled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn place_parses_repeated_items_and_global_options_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "order-processing",
            "place",
            "--customer",
            "Ada",
            "--item",
            "widget:2:1250",
            "--item",
            "gadget:1:999",
            "--data-dir",
            "/tmp/x",
        ])
        .unwrap();
        assert_eq!(cli.store_args().data_dir, PathBuf::from("/tmp/x"));
        let Command::Place { items, .. } = cli.command else { panic!("expected place") };
        assert_eq!(items, [ItemRequest::new("widget", 2, 1250), ItemRequest::new("gadget", 1, 999)]);
    }

    #[test]
    fn malformed_items_and_ids_are_usage_errors() {
        let err =
            Cli::try_parse_from(["order-processing", "place", "--customer", "A", "--item", "widget:2"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("SKU:QUANTITY:UNIT_PRICE_CENTS"), "{err}");
        let err = Cli::try_parse_from(["order-processing", "show", "no spaces"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    /// The `--help` text of `subcommand`, global options included.
    fn help(subcommand: &str) -> String {
        let mut command = Cli::command();
        command.build();
        command.find_subcommand_mut(subcommand).unwrap().render_long_help().to_string()
    }

    #[test]
    fn each_subcommand_help_shows_only_the_options_that_apply_to_it() {
        let store = ["--data-dir", "--database-url", "DATABASE_URL"];
        // (subcommand, options its help shows, options it must not show)
        let cases: [(&str, &[&str], &[&str]); 11] = [
            ("place", &["--customer", "--config", "--snapshot-every", "--correlation-id"], &["--status"]),
            ("add-item", &["--item", "--config", "--snapshot-every", "--correlation-id"], &["--customer"]),
            ("cancel", &["--reason", "--config", "--snapshot-every", "--correlation-id"], &["--item"]),
            ("ship", &["--tracking", "--config", "--snapshot-every", "--correlation-id"], &["--reason"]),
            ("show", &["--at-version", "--as-of", "--config"], &["--snapshot-every", "--correlation-id"]),
            ("list", &["--status", "--config"], &["--snapshot-every", "--correlation-id", "--at-version"]),
            ("history", &["--config"], &["--snapshot-every", "--correlation-id", "--status"]),
            ("report", &["--rebuild", "--config"], &["--snapshot-every", "--correlation-id"]),
            ("rebuild", &["--all", "--config"], &["--snapshot-every", "--correlation-id"]),
            ("demo", &["--snapshot-every"], &["--config", "--correlation-id"]),
            ("load", &["--orders", "--config", "--snapshot-every", "--correlation-id"], &["--status"]),
        ];
        for (subcommand, shown, hidden) in cases {
            let help = help(subcommand);
            for option in store.iter().chain(shown) {
                assert!(help.contains(option), "`{subcommand} --help` lacks {option}:\n{help}");
            }
            for option in hidden {
                assert!(!help.contains(option), "`{subcommand} --help` shows {option}:\n{help}");
            }
        }
    }

    #[test]
    fn the_store_options_go_before_or_after_the_subcommand_and_the_others_after_it() {
        let before = Cli::try_parse_from(["order-processing", "--data-dir", "/tmp/a", "list"]).unwrap();
        assert_eq!(before.store_args().data_dir, PathBuf::from("/tmp/a"));
        let after = Cli::try_parse_from(["order-processing", "list", "--config", "o.toml", "--data-dir", "/tmp/b"]);
        let args = after.unwrap().store_args();
        assert_eq!((args.data_dir, args.config), (PathBuf::from("/tmp/b"), Some(PathBuf::from("o.toml"))));
        let load = Cli::try_parse_from(["order-processing", "load", "--snapshot-every", "5"]).unwrap();
        assert_eq!(load.store_args().snapshot_every, Some(5));
        // `list` writes nothing: a correlation id there is a mistake, said at once.
        let err = Cli::try_parse_from([
            "order-processing",
            "list",
            "--correlation-id",
            "6f1c2a3b-0000-4000-8000-000000000001",
        ]);
        assert_eq!(err.unwrap_err().exit_code(), 2);
    }

    #[test]
    fn the_help_lists_every_exit_code() {
        let help = Cli::command().render_long_help().to_string();
        for code in ["0  done", "1  rejected", "2  usage", "3  event store", "4  a rebuilt", "5  no such order"] {
            assert!(help.contains(code), "{help}");
        }
    }

    fn show(args: &[&str]) -> Result<PointInTime, clap::Error> {
        let cli = Cli::try_parse_from(["order-processing", "show", "a1"].iter().chain(args))?;
        let Command::Show { at, .. } = cli.command else { panic!("expected show") };
        Ok(at)
    }

    #[test]
    fn show_takes_a_version_or_an_rfc_3339_time_but_not_both() {
        assert_eq!(show(&[]).unwrap().until(), LoadUntil::End);
        assert_eq!(show(&["--at-version", "3"]).unwrap().until(), LoadUntil::Version(Version::new(3)));
        let time = DateTime::parse_from_rfc3339("2026-11-26T13:07:54.540Z").unwrap().with_timezone(&Utc);
        assert_eq!(show(&["--as-of", "2026-11-26T14:07:54.540+01:00"]).unwrap().until(), LoadUntil::RecordedAt(time));

        let both = show(&["--at-version", "1", "--as-of", "2026-11-26T13:07:54Z"]).unwrap_err();
        assert_eq!(both.exit_code(), 2);
        assert!(both.to_string().contains("cannot be used with"), "{both}");
        let zero = show(&["--at-version", "0"]).unwrap_err();
        assert!(zero.to_string().contains("versions start at 1"), "{zero}");
        let vague = show(&["--as-of", "yesterday"]).unwrap_err();
        assert_eq!(vague.exit_code(), 2);
        assert!(vague.to_string().contains("\"yesterday\" is not an RFC 3339 time such as"), "{vague}");
    }

    #[test]
    fn metrics_addr_takes_a_loopback_address_and_refuses_any_other() {
        let cli = Cli::try_parse_from(["order-processing", "list", "--metrics-addr", "127.0.0.1:9464"]).unwrap();
        assert_eq!(cli.metrics_addr, Some(SocketAddr::from(([127, 0, 0, 1], 9464))));
        let err = Cli::try_parse_from(["order-processing", "list", "--metrics-addr", "0.0.0.0:9464"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("not a loopback address"), "{err}");
        let err = Cli::try_parse_from(["order-processing", "--metrics-addr", "9464", "list"]).unwrap_err();
        assert!(err.to_string().contains("not an address with a port"), "{err}");
    }
}
