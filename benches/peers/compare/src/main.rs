//! Peer comparison (issue 19): composable-rust's PostgreSQL store against postgres-es and esrs, with pgbench
//! as the server's ceiling, on one PostgreSQL server in one run, printed as a markdown table of ratios.
//!
//! Every write run gets a fresh database; each cell is the median of `--runs` short runs, the sides taking
//! turns in a rotating order so that a burst of load elsewhere does not fall on one side only. README.md says
//! what each workload and column is.

mod cqrs;
mod db;
mod event;
mod ours;
mod pgbench;
mod prima;
mod store;
mod table;

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Barrier;

use crate::db::Server;
use crate::event::ItemAdded;
use crate::store::{Side, Store};
use crate::table::{Aim, Row, print_runs, print_table, thousands};

/// What went wrong, in words a person running the benchmark can act on.
#[derive(Debug)]
pub(crate) struct BenchError(String);

impl BenchError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sizes of the run; see [`USAGE`].
#[derive(Debug, Clone)]
struct Config {
    url: String,
    seconds: u64,
    runs: u32,
    replay_events: u64,
    size_events: u64,
}

const USAGE: &str = "usage: peer-compare [--seconds N] [--runs N] [--replay-events N] [--size-events N]
  --seconds N        length of each run (default 3)
  --runs N           runs per cell; the table shows their median (default 3)
  --replay-events N  events in the replayed stream and in the global log read (default 10000)
  --size-events N    events written before measuring bytes per event, 100 per stream (default 100000)
DATABASE_URL names the server (default postgres://postgres@127.0.0.1:5432/postgres); the user must be allowed \
to create databases. pgbench and psql connect to the same host, port and user (a password from ~/.pgpass or \
PGPASSWORD). Databases named peers19_* are created and dropped.";

impl Config {
    fn from_args() -> Result<Self, BenchError> {
        let mut config = Self {
            url: std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            seconds: 3,
            runs: 3,
            replay_events: 10_000,
            size_events: 100_000,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(BenchError::new(USAGE));
            }
            let value = args.next().ok_or_else(|| BenchError::new(format!("{flag} needs a value\n{USAGE}")))?;
            let number = value.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                BenchError::new(format!("{flag} takes a positive whole number, not `{value}`\n{USAGE}"))
            })?;
            match flag.as_str() {
                "--seconds" => config.seconds = number,
                "--runs" => config.runs = u32::try_from(number).map_err(|_| BenchError::new("--runs is too big"))?,
                "--replay-events" => config.replay_events = number,
                "--size-events" => config.size_events = number.div_ceil(SIZE_BATCH) * SIZE_BATCH,
                _ => return Err(BenchError::new(format!("unknown flag {flag}\n{USAGE}"))),
            }
        }
        Ok(config)
    }

    fn duration(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }
}

/// Events per append when filling a store to measure its size, and per stream.
const SIZE_BATCH: u64 = 100;

/// Events per append when loading the replayed stream.
const LOAD_BATCH: usize = 1_000;

/// `uptime`, or /proc/loadavg where there is no `uptime`.
fn load_average() -> String {
    command_output("uptime", &[])
        .or_else(|| std::fs::read_to_string("/proc/loadavg").ok().map(|l| format!("loadavg {}", l.trim())))
        .unwrap_or_else(|| "load average unknown".into())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The CPU model and the number of cores this process may use.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "CPU unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{model}, {cores} cores")
}

/// One timed write run on a fresh database: `writers` tasks, each on its own new stream, append batches of
/// `batch` events until the time is up; returns events per second.
async fn write_run(
    server: &Server,
    side: Side,
    writers: u64,
    batch: usize,
    config: &Config,
) -> Result<f64, BenchError> {
    let database = format!("peers19_{}_write", side.tag());
    let store = Store::open(side, server.fresh(&database).await?).await?;
    let outcome = timed_appends(&store, writers, batch, config.duration()).await;
    store.close().await;
    server.drop(&database).await;
    outcome
}

/// Each writer first appends once untimed (so the pool has its connections and each its prepared statements),
/// then all start together and append until `duration` has passed.
async fn timed_appends(store: &Store, writers: u64, batch: usize, duration: Duration) -> Result<f64, BenchError> {
    let start = Arc::new(Barrier::new(usize::try_from(writers).unwrap_or(usize::MAX).saturating_add(1)));
    let mut tasks = Vec::new();
    for order in 0..writers {
        let mut writer = store.writer(order)?;
        let start = Arc::clone(&start);
        tasks.push(tokio::spawn(async move {
            let warm_up = writer.append(ItemAdded::batch(order, 0, batch)).await;
            start.wait().await;
            warm_up?;
            let deadline = Instant::now() + duration;
            let mut written = 0u64;
            while Instant::now() < deadline {
                writer.append(ItemAdded::batch(order, batch as u64 + written, batch)).await?;
                written += batch as u64;
            }
            Ok::<_, BenchError>(written)
        }));
    }
    start.wait().await;
    let started = Instant::now();
    let mut written = 0;
    for task in tasks {
        written += task.await.map_err(|e| BenchError::new(format!("a writer task died: {e}")))??;
    }
    Ok(per_second(written, started.elapsed()))
}

#[allow(clippy::cast_precision_loss, reason = "event counts are far below 2^52")]
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

#[allow(clippy::cast_precision_loss, reason = "sizes are far below 2^52")]
fn per_event(bytes: u64, events: u64) -> f64 {
    bytes as f64 / events.max(1) as f64
}

/// Runs `read` again and again for `duration`; each call must return `expected` events. Returns events per
/// second.
async fn timed_reads<F, Fut>(duration: Duration, expected: u64, mut read: F) -> Result<f64, BenchError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, BenchError>>,
{
    let started = Instant::now();
    let mut total = 0;
    loop {
        let read = read().await?;
        if read != expected {
            return Err(BenchError::new(format!("read {read} events where {expected} were written")));
        }
        total += read;
        if started.elapsed() >= duration {
            return Ok(per_second(total, started.elapsed()));
        }
    }
}

/// The write workloads: title, writers, events per append, and the pgbench script and clients that match.
const WRITES: [(&str, u64, usize, &str, u32); 4] = [
    ("1 event per append, 1 writer", 1, 1, "single", 1),
    ("1 event per append, 8 writers", 8, 1, "single", 8),
    ("100-event batches, 1 writer", 1, 100, "unnest100", 1),
    ("1000-event batches, 1 writer", 1, 1000, "unnest1000", 1),
];

async fn writes(server: &Server, config: &Config, payload: &[u8], rows: &mut Vec<Row>) {
    for (title, writers, batch, script, clients) in WRITES {
        println!("{title}");
        let mut row = Row::new(title, Aim::OfCeiling(0.9));
        for run in 0..config.runs {
            for side in Side::rotated(&Side::ALL, run) {
                if row.failed(side) {
                    continue;
                }
                let outcome = if side == Side::Pgbench {
                    pgbench::rows_per_second(server, script, clients, config.seconds, payload).await
                } else {
                    write_run(server, side, writers, batch, config).await
                };
                row.record(side, outcome);
            }
        }
        rows.push(row);
    }
}

/// Opens `side` on a fresh database and loads one stream of `events` events, then a warm-up read.
async fn loaded(server: &Server, side: Side, events: u64) -> Result<Store, BenchError> {
    let store = Store::open(side, server.fresh(&format!("peers19_{}_read", side.tag())).await?).await?;
    let mut writer = store.writer(0)?;
    let mut written = 0;
    while written < events {
        let count = usize::try_from((events - written).min(LOAD_BATCH as u64)).unwrap_or(LOAD_BATCH);
        writer.append(ItemAdded::batch(0, written, count)).await?;
        written += count as u64;
    }
    store.vacuum_analyze().await?;
    store.replay(0).await?;
    store.read_global(events).await?;
    Ok(store)
}

async fn reads(server: &Server, config: &Config, rows: &mut Vec<Row>) {
    let events = config.replay_events;
    let mut replay =
        Row::new(format!("replay of a {}-event stream, decoded", thousands(events as f64)), Aim::AtLeast(1.5e6));
    let mut global = Row::new("global log, pages of 1000, decoded", Aim::AtLeast(1.2e6));
    println!("{} / {}: loading", replay.workload, global.workload);
    let mut stores = Vec::new();
    for side in Side::STORES {
        match loaded(server, side, events).await {
            Ok(store) => stores.push((side, store)),
            Err(e) => {
                replay.record(side, Err(BenchError::new(e.to_string())));
                global.record(side, Err(e));
            }
        }
    }
    for run in 0..config.runs {
        let sides: Vec<Side> = stores.iter().map(|(side, _)| *side).collect();
        for side in Side::rotated(&sides, run) {
            let Some((_, store)) = stores.iter().find(|(s, _)| *s == side) else { continue };
            for (row, is_replay) in [(&mut replay, true), (&mut global, false)] {
                if row.failed(side) {
                    continue;
                }
                let outcome = timed_reads(config.duration(), events, move || async move {
                    if is_replay { store.replay(0).await } else { store.read_global(events).await }
                })
                .await;
                row.record(side, outcome);
            }
        }
    }
    for (side, store) in stores {
        store.close().await;
        server.drop(&format!("peers19_{}_read", side.tag())).await;
    }
    rows.push(replay);
    rows.push(global);
}

/// Fills `side` with `events` events, 100 per stream and append, and returns its bytes per event.
async fn size_of(server: &Server, side: Side, events: u64) -> Result<f64, BenchError> {
    let database = format!("peers19_{}_size", side.tag());
    let store = Store::open(side, server.fresh(&database).await?).await?;
    let outcome = async {
        for order in 0..events / SIZE_BATCH {
            store.writer(order)?.append(ItemAdded::batch(order, 0, SIZE_BATCH as usize)).await?;
        }
        let (bytes, rows) = store.table_size().await?;
        if rows != events {
            return Err(BenchError::new(format!("the table holds {rows} events where {events} were written")));
        }
        Ok(per_event(bytes, rows))
    }
    .await;
    store.close().await;
    server.drop(&database).await;
    outcome
}

async fn sizes(server: &Server, config: &Config, rows: &mut Vec<Row>) {
    let mut row = Row::new(
        format!("bytes per event, table + indexes ({} events)", thousands(config.size_events as f64)),
        Aim::AtMost(220.0),
    );
    println!("{}", row.workload);
    for side in Side::STORES {
        row.record(side, size_of(server, side, config.size_events).await);
    }
    rows.push(row);
}

async fn run(config: Config) -> Result<(), BenchError> {
    let server = Server::new(&config.url)?;
    let version = server.version().await?;
    let load_at_start = load_average();
    let payload = composable_rust_core::CodecId::Bincode
        .encode(&ItemAdded::sample(0, 0))
        .map_err(|e| BenchError::new(format!("encoding the event: {e}")))?;
    let json = serde_json::to_vec(&ItemAdded::sample(0, 0)).map_err(|e| BenchError::new(e.to_string()))?;
    let command: Vec<String> = std::env::args().skip(1).collect();
    let mut header = vec![
        format!("date: {}", command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default()),
        format!(
            "command: `benches/peers/compare/run.sh{}`",
            command.iter().map(|a| format!(" {a}")).collect::<String>()
        ),
        format!("machine: {}", machine()),
        format!("server: {version}"),
        format!(
            "event: `ItemAdded`, {} bytes in bincode (composable-rust, and pgbench's rows), {} bytes of JSON \
             (postgres-es, esrs); no metadata (NULL columns for composable-rust and pgbench)",
            payload.len(),
            json.len()
        ),
        format!(
            "{} runs of {} s per cell, median; a pool of {} per store; a fresh database per write run",
            config.runs,
            config.seconds,
            db::POOL_SIZE
        ),
        format!("load average at start: {load_at_start}"),
    ];
    for line in &header {
        println!("{line}");
    }
    let mut rows = Vec::new();
    writes(&server, &config, &payload, &mut rows).await;
    reads(&server, &config, &mut rows).await;
    sizes(&server, &config, &mut rows).await;
    header.push(format!("load average at end: {}", load_average()));

    println!();
    for line in &header {
        println!("- {line}");
    }
    print_table(&rows);
    print_runs(&rows);
    Ok(())
}

fn main() -> ExitCode {
    let config = match Config::from_args() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
