//! Peer benchmark (issue 20): composable-rust's DCB append path against disintegrate's, on the same
//! PostgreSQL server in one run, printed as ratios.
//!
//! Each workload runs on both sides in alternating order (composable-rust first in odd rounds,
//! disintegrate first in even ones), each round on a fresh database, and the table keeps each side's best
//! round: on a shared machine the least disturbed round is the closest to what the code can do. See
//! README.md for the command and what each workload is.

mod cr;
mod db;
mod dis;
mod events;

use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cr::ComposableRust;
use crate::db::Server;
use crate::dis::Disintegrate;

/// What went wrong, in words a person running the benchmark can act on.
#[derive(Debug)]
pub(crate) struct BenchError(String);

impl BenchError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// A composable-rust store error with its whole chain of causes.
    pub(crate) fn from_store(operation: &str, error: &composable_rust_core::EventStoreError) -> Self {
        Self(format!("composable-rust: {operation} failed: {}", composable_rust_core::error_chain(error)))
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The outcome of one enrolment attempt, with the conflicts it retried through.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Enrolment {
    /// The student got a seat.
    Enrolled { conflicts: u32 },
    /// The course was full.
    Full { conflicts: u32 },
}

/// One side of the comparison: the same operations, each in the store's own idiom.
pub(crate) trait Side: Clone + Send + Sync + 'static {
    /// The name in the table.
    const NAME: &'static str;
    /// Appends `UsernameRegistered` for `p{i}` with no condition: the ceiling.
    fn plain_append(&self, i: u64) -> impl Future<Output = Result<(), BenchError>> + Send;
    /// Registers username `u{i}` if no event is tagged with it; returns the conflicts retried.
    fn register(&self, i: u64) -> impl Future<Output = Result<u32, BenchError>> + Send;
    /// Opens `course` with `capacity` seats, unconditionally (setup).
    fn define_course(&self, course: &str, capacity: u32) -> impl Future<Output = Result<(), BenchError>> + Send;
    /// Enrols student `s{student}` in `course` if a seat is left, retrying on conflict.
    fn enroll(&self, course: &str, student: u64) -> impl Future<Output = Result<Enrolment, BenchError>> + Send;
    /// Appends `count` `Deposited` events numbered from `first`, spread over `accounts` accounts (setup).
    fn load(
        &self,
        batch: u64,
        first: u64,
        count: u64,
        accounts: u64,
    ) -> impl Future<Output = Result<(), BenchError>> + Send;
    /// Reads every event of account `a{account}` by query, decoded; returns how many.
    fn read_account(&self, account: u64) -> impl Future<Output = Result<usize, BenchError>> + Send;
}

/// Sizes of the run; see README.md for the flags.
#[derive(Debug, Clone)]
struct Config {
    url: String,
    ops: u64,
    writers: u64,
    capacity: u32,
    events: u64,
    per_account: u64,
    reads: u64,
    rounds: u32,
    keep: bool,
}

impl Config {
    fn from_args() -> Result<Self, BenchError> {
        let mut config = Self {
            url: std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            ops: 2_000,
            writers: 8,
            capacity: 200,
            events: 100_000,
            per_account: 20,
            reads: 200,
            rounds: 2,
            keep: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(BenchError::new(USAGE));
            }
            if flag == "--keep" {
                config.keep = true;
                continue;
            }
            let value = args.next().ok_or_else(|| BenchError::new(format!("{flag} needs a value\n{USAGE}")))?;
            let number = || {
                value.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    BenchError::new(format!("{flag} takes a positive whole number, not `{value}`\n{USAGE}"))
                })
            };
            match flag.as_str() {
                "--ops" => config.ops = number()?,
                "--writers" => config.writers = number()?,
                "--capacity" => {
                    config.capacity = u32::try_from(number()?).map_err(|_| BenchError::new("--capacity is too big"))?;
                }
                "--events" => config.events = number()?,
                "--per-account" => config.per_account = number()?,
                "--reads" => config.reads = number()?,
                "--rounds" => {
                    config.rounds = u32::try_from(number()?).map_err(|_| BenchError::new("--rounds is too big"))?;
                }
                _ => return Err(BenchError::new(format!("unknown flag {flag}\n{USAGE}"))),
            }
        }
        Ok(config)
    }

    fn accounts(&self) -> u64 {
        (self.events / self.per_account).max(1)
    }
}

const USAGE: &str = "usage: peer-disintegrate [--ops N] [--writers N] [--capacity N] [--events N] \
[--per-account N] [--reads N] [--rounds N] [--keep]
  --ops N          decisions per round in workloads 1 and 2 and the plain append (default 2000)
  --writers N      concurrent writers in workloads 2 and 3 (default 8)
  --capacity N     seats of the contended course in workload 3 (default 200)
  --events N       events in workload 4's log (default 100000)
  --per-account N  events per account tag in workload 4 (default 20)
  --reads N        reads by tag per side in workload 4 (default 200)
  --rounds N       rounds per side of workloads 1 to 3 (default 2)
  --keep           leave workload 4's loaded databases in place, to inspect them
DATABASE_URL names the server (default postgres://postgres@127.0.0.1:5432/postgres); the user must be \
allowed to create databases. The databases peer_cr and peer_dis are dropped and recreated.";

/// A measurement of one side: a rate (higher is better) or a latency (lower is better).
#[derive(Debug, Clone, Copy)]
enum Measure {
    PerSecond(f64),
    /// Median and 95th percentile, in milliseconds; compared by the median.
    Millis {
        median: f64,
        p95: f64,
    },
}

impl Measure {
    /// The better of two rounds.
    fn best(self, other: Self) -> Self {
        match (self, other) {
            (Self::PerSecond(a), Self::PerSecond(b)) => Self::PerSecond(a.max(b)),
            (a @ Self::Millis { median: m, .. }, b @ Self::Millis { median: n, .. }) => {
                if m <= n {
                    a
                } else {
                    b
                }
            }
            (first, _) => first,
        }
    }

    /// How many times faster composable-rust is than disintegrate (above 1: composable-rust is faster).
    fn speedup(cr: Self, dis: Self) -> Option<f64> {
        match (cr, dis) {
            (Self::PerSecond(a), Self::PerSecond(b)) if b > 0.0 => Some(a / b),
            (Self::Millis { median: a, .. }, Self::Millis { median: b, .. }) if a > 0.0 => Some(b / a),
            _ => None,
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PerSecond(rate) => write!(f, "{rate:.0}/s"),
            Self::Millis { median, .. } => write!(f, "{median:.2} ms"),
        }
    }
}

/// One row of the table, filled as the rounds come in.
#[derive(Debug)]
struct Row {
    workload: String,
    cr: Result<Option<Measure>, String>,
    dis: Result<Option<Measure>, String>,
    conflicts: [u64; 2],
}

impl Row {
    fn new(workload: impl Into<String>) -> Self {
        Self { workload: workload.into(), cr: Ok(None), dis: Ok(None), conflicts: [0, 0] }
    }

    fn record(&mut self, side: &str, outcome: Result<(Measure, u64), BenchError>) {
        let (slot, conflicts) = if side == ComposableRust::NAME {
            (&mut self.cr, &mut self.conflicts[0])
        } else {
            (&mut self.dis, &mut self.conflicts[1])
        };
        match outcome {
            Ok((measure, retried)) => {
                match measure {
                    Measure::PerSecond(_) => println!("  {side:<16} {measure:>12}  ({retried} conflicts retried)"),
                    Measure::Millis { p95, .. } => println!("  {side:<16} median {measure:>10}, p95 {p95:.2} ms"),
                }
                *conflicts += retried;
                if let Ok(best) = slot {
                    *best = Some(best.map_or(measure, |b| b.best(measure)));
                }
            }
            Err(e) => {
                println!("  {side:<16} failed: {e}");
                *slot = Err(e.to_string());
            }
        }
    }
}

fn cell(value: &Result<Option<Measure>, String>) -> String {
    match value {
        Ok(Some(measure)) => measure.to_string(),
        Ok(None) => "-".into(),
        Err(_) => "failed".into(),
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| {:<52} | {:>15} | {:>15} | {:>22} | {:>17} |",
        "workload", "composable-rust", "disintegrate", "ratio (cr speed / dis)", "conflicts cr/dis"
    );
    println!("|{:-<54}|{:->17}|{:->17}|{:->24}|{:->19}|", "", "", "", "", "");
    for row in rows {
        let ratio = match (&row.cr, &row.dis) {
            (Ok(Some(cr)), Ok(Some(dis))) => Measure::speedup(*cr, *dis).map_or("-".into(), |r| format!("{r:.2}x")),
            _ => "-".into(),
        };
        println!(
            "| {:<52} | {:>15} | {:>15} | {:>22} | {:>17} |",
            row.workload,
            cell(&row.cr),
            cell(&row.dis),
            ratio,
            format!("{}/{}", row.conflicts[0], row.conflicts[1])
        );
    }
    for row in rows {
        for (side, value) in [(ComposableRust::NAME, &row.cr), (Disintegrate::NAME, &row.dis)] {
            if let Err(e) = value {
                println!("{}: {side} failed: {e}", row.workload);
            }
        }
    }
}

fn load_average() -> String {
    std::process::Command::new("uptime")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_owned())
        .or_else(|| std::fs::read_to_string("/proc/loadavg").ok().map(|l| format!("loadavg {}", l.trim())))
        .unwrap_or_else(|| "load average unknown".into())
}

/// Runs `work(i)` for `i` in `0..ops` on `writers` concurrent tasks, each taking the next `i`; returns the
/// rate and the conflicts retried.
async fn run_writers<S, F, Fut>(side: &S, ops: u64, writers: u64, work: F) -> Result<(Measure, u64), BenchError>
where
    S: Side,
    F: Fn(S, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<u32, BenchError>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (side, next, work) = (side.clone(), Arc::clone(&next), work.clone());
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    return Ok::<_, BenchError>(conflicts);
                }
                conflicts += u64::from(work(side.clone(), i).await?);
            }
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.map_err(|e| BenchError::new(format!("a writer task died: {e}")))??;
    }
    Ok((per_second(ops, started.elapsed()), conflicts))
}

#[allow(clippy::cast_precision_loss, reason = "event counts are far below 2^52")]
fn per_second(count: u64, elapsed: Duration) -> Measure {
    Measure::PerSecond(count as f64 / elapsed.as_secs_f64().max(f64::EPSILON))
}

/// Workload 3: `writers` students race for the seats of one course until it is full.
async fn contended<S: Side>(side: &S, writers: u64, capacity: u32) -> Result<(Measure, u64), BenchError> {
    const COURSE: &str = "c1";
    side.define_course(COURSE, capacity).await?;
    let next_student = Arc::new(AtomicU64::new(0));
    let enrolled = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (side, next_student, enrolled) = (side.clone(), Arc::clone(&next_student), Arc::clone(&enrolled));
        tasks.push(tokio::spawn(async move {
            let mut retried = 0u64;
            loop {
                let student = next_student.fetch_add(1, Ordering::Relaxed);
                match side.enroll(COURSE, student).await? {
                    Enrolment::Enrolled { conflicts } => {
                        retried += u64::from(conflicts);
                        enrolled.fetch_add(1, Ordering::Relaxed);
                    }
                    Enrolment::Full { conflicts } => return Ok::<_, BenchError>(retried + u64::from(conflicts)),
                }
            }
        }));
    }
    let mut retried = 0;
    for task in tasks {
        retried += task.await.map_err(|e| BenchError::new(format!("a writer task died: {e}")))??;
    }
    let elapsed = started.elapsed();
    let enrolled = enrolled.load(Ordering::Relaxed);
    if enrolled != capacity {
        return Err(BenchError::new(format!(
            "{enrolled} students enrolled in a course of {capacity} seats: the store let a stale decision commit"
        )));
    }
    Ok((per_second(u64::from(capacity), elapsed), retried))
}

/// One round of a workload on one side, on a fresh database.
#[derive(Debug, Clone, Copy)]
enum Workload {
    Plain,
    Register { writers: u64 },
    Enrol,
}

async fn open_side(server: &Server, name: &str) -> Result<(sqlx::PgPool, Sides), BenchError> {
    let database = database_of(name);
    let pool = server.fresh(database).await?;
    let side = if name == ComposableRust::NAME {
        Sides::Cr(ComposableRust::open(pool.clone()).await?)
    } else {
        Sides::Dis(Disintegrate::open(pool.clone()).await?)
    };
    Ok((pool, side))
}

fn database_of(name: &str) -> &'static str {
    if name == ComposableRust::NAME { "peer_cr" } else { "peer_dis" }
}

/// Either side, opened.
enum Sides {
    Cr(ComposableRust),
    Dis(Disintegrate),
}

async fn run_round<S: Side>(side: &S, workload: Workload, config: &Config) -> Result<(Measure, u64), BenchError> {
    match workload {
        Workload::Plain => {
            run_writers(side, config.ops, 1, |side: S, i| async move { side.plain_append(i).await.map(|()| 0) }).await
        }
        Workload::Register { writers } => {
            run_writers(side, config.ops, writers, |side: S, i| async move { side.register(i).await }).await
        }
        Workload::Enrol => contended(side, config.writers, config.capacity).await,
    }
}

async fn round(server: &Server, name: &str, workload: Workload, config: &Config) -> Result<(Measure, u64), BenchError> {
    let (pool, side) = open_side(server, name).await?;
    let outcome = match &side {
        Sides::Cr(side) => run_round(side, workload, config).await,
        Sides::Dis(side) => run_round(side, workload, config).await,
    };
    server.drop(database_of(name), pool).await;
    outcome
}

/// Workload 4: loads both logs, then reads the same accounts on both, alternating which goes first.
async fn read_by_query(server: &Server, config: &Config, row: &mut Row) -> Result<(), BenchError> {
    const BATCH: u64 = 1_000;
    let accounts = config.accounts();
    let cr_pool = server.fresh("peer_cr").await?;
    let cr = ComposableRust::open(cr_pool.clone()).await?;
    let dis_pool = server.fresh("peer_dis").await?;
    let dis = Disintegrate::open(dis_pool.clone()).await?;
    let started = Instant::now();
    for batch in 0..config.events.div_ceil(BATCH) {
        let first = batch * BATCH;
        let count = BATCH.min(config.events - first);
        cr.load(batch, first, count, accounts).await?;
        dis.load(batch, first, count, accounts).await?;
    }
    db::analyze(&cr_pool).await?;
    db::analyze(&dis_pool).await?;
    println!("  loaded {} events on each side in {:.1} s", config.events, started.elapsed().as_secs_f64());

    let mut latencies = [Vec::new(), Vec::new()];
    let mut failures: [Option<BenchError>; 2] = [None, None];
    let mut account = 7u64;
    for r in 0..config.reads {
        // A fixed pseudo-random walk over the accounts, the same on both sides.
        account = account.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407) % accounts;
        let expected = config.events / accounts + u64::from(account < config.events % accounts);
        let order: [usize; 2] = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            if failures[which].is_some() {
                continue;
            }
            let started = Instant::now();
            let found = if which == 0 { cr.read_account(account).await } else { dis.read_account(account).await };
            latencies[which].push(started.elapsed());
            failures[which] = match found {
                Ok(found) if found as u64 == expected => None,
                Ok(found) => {
                    Some(BenchError::new(format!("account a{account}: read {found} events, {expected} were loaded")))
                }
                Err(e) => Some(e),
            };
        }
    }
    for (which, name) in [(0, ComposableRust::NAME), (1, Disintegrate::NAME)] {
        if let Some(e) = failures[which].take() {
            row.record(name, Err(e));
            continue;
        }
        let mut sorted = latencies[which].clone();
        sorted.sort();
        let median = sorted[sorted.len() / 2];
        let p95 = sorted[(sorted.len() * 95 / 100).min(sorted.len() - 1)];
        row.record(name, Ok((Measure::Millis { median: millis(median), p95: millis(p95) }, 0)));
    }
    if config.keep {
        println!("  kept the databases peer_cr and peer_dis");
    } else {
        server.drop("peer_cr", cr_pool).await;
        server.drop("peer_dis", dis_pool).await;
    }
    Ok(())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

async fn run(config: Config) -> Result<(), BenchError> {
    let server = Server::new(&config.url)?;
    println!("load at start: {}", load_average());
    println!("config: {}", Shown(&config));
    let workloads = [
        ("plain append, no condition (ceiling), 1 writer".to_owned(), Workload::Plain),
        ("1. register username (unique), 1 writer".to_owned(), Workload::Register { writers: 1 }),
        (
            format!("2. register username (unique), {} writers", config.writers),
            Workload::Register { writers: config.writers },
        ),
        (format!("3. enrol, {} writers, 1 course of {}", config.writers, config.capacity), Workload::Enrol),
    ];
    let mut rows = Vec::new();
    for (title, workload) in workloads {
        println!("{title}");
        let mut row = Row::new(title);
        for r in 0..config.rounds {
            let order = if r % 2 == 0 {
                [ComposableRust::NAME, Disintegrate::NAME]
            } else {
                [Disintegrate::NAME, ComposableRust::NAME]
            };
            for name in order {
                let failed_before = if name == ComposableRust::NAME { row.cr.is_err() } else { row.dis.is_err() };
                if !failed_before {
                    row.record(name, round(&server, name, workload, &config).await);
                }
            }
        }
        rows.push(row);
    }
    let title = format!("4. read one tag ({} events) of {} events, median", config.per_account, config.events);
    println!("{title}");
    let mut row = Row::new(title);
    if let Err(e) = read_by_query(&server, &config, &mut row).await {
        println!("  failed: {e}");
        let message = e.to_string();
        if message.starts_with("disintegrate") {
            row.dis = Err(message);
        } else {
            row.cr = Err(message);
        }
    }
    rows.push(row);
    print_table(&rows);
    println!("rates: committed decisions (or appends) per second, best of {} rounds; latency: median", config.rounds);
    println!("load at end: {}", load_average());
    Ok(())
}

/// The configuration without the URL's password, if it has one.
struct Shown<'a>(&'a Config);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        let server = c.url.rsplit_once('@').map_or(c.url.as_str(), |(_, host)| host);
        write!(
            f,
            "server {server}, ops {}, writers {}, capacity {}, events {}, per account {}, reads {}, rounds {}",
            c.ops, c.writers, c.capacity, c.events, c.per_account, c.reads, c.rounds
        )
    }
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
