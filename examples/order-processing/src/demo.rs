//! `demo`: a guided tour that ends with a restart in a new process.
//!
//! The first process places, changes and cancels orders through the [`Store`](composable_rust::Store),
//! tries invalid commands, prints the orders it holds in memory, writes them to `before-restart.json` and
//! starts itself again (`std::env::current_exe()`, hidden subcommand `demo-restart`). The new process has
//! nothing in memory: it rebuilds each order from the event store, prints what it rebuilt next to the state
//! before the restart, and exits 0 only if they match.

use std::path::Path;

use composable_rust::Version;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::{KnownOrder, Outcome};
use crate::cli::StoreArgs;
use crate::domain::{ItemRequest, Order, OrderCommand, OrderId};
use crate::output::{self, Align, Table};
use crate::run::{Access, Defaults, Exit, Failure, SQLITE_FILE, Session, check_folder, describe_change, new_order_id};

/// The snapshot interval `demo` uses unless `--snapshot-every` is given, so that its longest order
/// (6 events) is loaded from a snapshot after the restart.
pub(crate) const DEMO_SNAPSHOT_EVERY: u64 = 5;

/// What `demo` hands to the restarted process: the orders as they were before the restart.
#[derive(Debug, Serialize, Deserialize)]
struct BeforeRestart {
    /// `SQLite file ...` or `PostgreSQL at ...`.
    store: String,
    orders: Vec<ExpectedOrder>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExpectedOrder {
    id: OrderId,
    version: u64,
    order: Order,
}

/// The file in the demo folder that carries the state before the restart to the new process.
const BEFORE_RESTART_FILE: &str = "before-restart.json";

/// The demo's own store: `orders.db` in `sqlite_dir` unless `--database-url` is given; `--config` is not read.
fn demo_defaults(sqlite_dir: &Path) -> Defaults<'_> {
    Defaults { sqlite_dir, snapshot_every: DEMO_SNAPSHOT_EVERY, read_config_file: false, access: Access::ReadWrite }
}

/// Runs `demo` against the store `args` selects (a fresh SQLite file in `<data-dir>/demo` by default).
pub(crate) async fn demo(args: &StoreArgs) -> Result<Exit, Failure> {
    let demo_dir = args.data_dir.join("demo");
    if args.database_url.is_none() {
        check_folder(&args.data_dir, "--data-dir")?;
        // A fresh store for every run: remove what an earlier demo left (only the files it writes).
        for name in [SQLITE_FILE, "orders.db-wal", "orders.db-shm", BEFORE_RESTART_FILE] {
            let path = demo_dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Failure::store(&format!("remove {} from an earlier demo", path.display()), &e)),
            }
        }
    }
    let session = Session::open(args, demo_defaults(&demo_dir)).await?;
    let result = demo_steps(&session, args, &demo_dir).await;
    session.close().await;
    result
}

async fn demo_steps(session: &Session, args: &StoreArgs, demo_dir: &Path) -> Result<Exit, Failure> {
    let fresh = if session.is_sqlite { "a fresh " } else { "new orders in " };
    outln!("Demo: writing to {fresh}{} (a snapshot every {}).", session.description, session.snapshot_policy_text());
    outln!();

    let run = async |id: &OrderId, command: OrderCommand| -> Result<Outcome, Failure> {
        let outcome = session.execute(id, command, Uuid::new_v4()).await?;
        match &outcome {
            Outcome::Accepted { order, events, .. } => {
                for event in events {
                    outln!("   {}", describe_change(id, event, order));
                }
            }
            Outcome::Rejected(rejection) => outln!("   rejected: order {id}: {rejection} (nothing was written)"),
            Outcome::Failed(error) => {
                return Err(Failure { exit: Exit::StoreError, message: format!("order {id}: {error}") });
            }
        }
        Ok(outcome)
    };

    let (ada, grace, linus) = (new_order_id()?, new_order_id()?, new_order_id()?);
    outln!("1. Place three orders");
    let place = |customer: &str, items: &[(&str, i64, i64)]| OrderCommand::Place {
        customer: customer.to_owned(),
        items: items.iter().map(|&(sku, quantity, cents)| ItemRequest::new(sku, quantity, cents)).collect(),
    };
    run(&ada, place("Ada Lovelace", &[("notebook", 2, 1250), ("pencil", 12, 80)])).await?;
    run(&grace, place("Grace Hopper", &[("compiler-manual", 1, 4999)])).await?;
    run(&linus, place("Linus Torvalds", &[("keyboard", 1, 8900), ("penguin-plush", 3, 1500)])).await?;

    outln!("2. Ada adds five items, one command each (her 5th event triggers a snapshot)");
    for (sku, quantity, cents) in
        [("eraser", 2, 150), ("ruler", 1, 399), ("ink", 3, 725), ("stapler", 1, 1899), ("paper-clips", 100, 2)]
    {
        run(&ada, OrderCommand::AddItem { item: ItemRequest::new(sku, quantity, cents) }).await?;
    }

    outln!("3. Ship Grace's order, cancel Linus's");
    run(&grace, OrderCommand::Ship { tracking_number: "1Z999AA10123456784".into() }).await?;
    run(&linus, OrderCommand::Cancel { reason: "customer changed their mind".into() }).await?;

    outln!("4. Try two invalid commands");
    let invalid = [
        (&linus, OrderCommand::Ship { tracking_number: "1Z000".into() }),
        (&ada, OrderCommand::AddItem { item: ItemRequest::new("free-lunch", 1, 0) }),
    ];
    for (id, command) in invalid {
        if !matches!(run(id, command).await?, Outcome::Rejected(_)) {
            return Err(Failure { exit: Exit::Mismatch, message: "an invalid command was accepted".to_owned() });
        }
    }

    // The state before the restart is what this process's store holds, in the order the orders were placed.
    let before: Vec<ExpectedOrder> = session.app.state(|state| {
        [&ada, &grace, &linus]
            .into_iter()
            .filter_map(|id| state.order(id).map(|known| (id, known)))
            .map(|(id, known)| ExpectedOrder { id: id.clone(), version: known.version.get(), order: known.order })
            .collect()
    });
    outln!("5. The orders in this process's memory, before the restart");
    let mut table = Table::new(&[("ORDER", Align::Left), ("CUSTOMER", Align::Left), ("STATE", Align::Left)]);
    for expected in &before {
        table.row([expected.id.to_string(), expected.order.customer.clone(), summary(expected)]);
    }
    out!("{}", table.render("   "));

    // Hand the state to the next process in a file, then start it.
    let file = demo_dir.join(BEFORE_RESTART_FILE);
    let json = serde_json::to_vec_pretty(&BeforeRestart { store: session.description.clone(), orders: before })
        .map_err(|e| Failure::store("encode the state before the restart", &e))?;
    std::fs::create_dir_all(demo_dir)
        .and_then(|()| std::fs::write(&file, json))
        .map_err(|e| Failure::store(&format!("write {}", file.display()), &e))?;

    outln!(
        "6. Restart: this process (pid {}) starts a new one that rebuilds every order from {}",
        std::process::id(),
        session.description
    );
    let exe = std::env::current_exe().map_err(|e| Failure::store("find this program's executable", &e))?;
    let mut child = tokio::process::Command::new(exe);
    child
        .arg("demo-restart")
        .arg("--expect")
        .arg(&file)
        .arg("--snapshot-every")
        .arg(session.snapshot_every.to_string());
    match &args.database_url {
        // The URL may hold a password: pass it in the environment, not on the command line.
        Some(url) => child.env("DATABASE_URL", url),
        None => child.env_remove("DATABASE_URL").arg("--data-dir").arg(demo_dir),
    };
    let status = child.status().await.map_err(|e| Failure::store("start the restarted process", &e))?;
    outln!();
    match status.code() {
        Some(0) => {
            outln!("Done. The new process rebuilt every order exactly as it was before the restart.");
            outln!("The events are in {}; try:", session.description);
            let flags = backend_flags(args, demo_dir);
            outln!("   cargo run -p order-processing --{flags} list");
            outln!("   cargo run -p order-processing --{flags} history {ada}");
            match args.database_url.as_deref() {
                Some(_) if flags.is_empty() => outln!("   (with DATABASE_URL set as it is now: it chose the database)"),
                Some(url) if password_of(url).is_some() => outln!("   (with the database password in place of ***)"),
                _ => {}
            }
            Ok(Exit::Done)
        }
        _ => Err(Failure {
            exit: Exit::Mismatch,
            message: format!("the restarted process reported a difference or failed ({status})"),
        }),
    }
}

/// The options that point another command at the store the demo used, as a shell would need them: the
/// URL when it was given with --database-url (its password masked), nothing when `DATABASE_URL` gave it
/// (the next command reads the same variable), or `--data-dir` of the demo's folder.
fn backend_flags(args: &StoreArgs, demo_dir: &Path) -> String {
    match args.database_url.as_deref() {
        Some(url) if std::env::var("DATABASE_URL").is_ok_and(|env| env == url) => String::new(),
        Some(url) => {
            let shown = match password_of(url) {
                Some(password) => url.replacen(&format!(":{password}@"), ":***@", 1),
                None => url.to_owned(),
            };
            format!(" --database-url {}", shell_word(&shown))
        }
        None => format!(" --data-dir {}", shell_word(&demo_dir.display().to_string())),
    }
}

/// The password in `scheme://user:password@host/...`, if there is one.
fn password_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let (credentials, _) = rest.split_once('@')?;
    let (_, password) = credentials.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// `text` as one word for a POSIX shell: as it is when it is safe, else in single quotes.
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn summary(expected: &ExpectedOrder) -> String {
    output::order_summary(&KnownOrder { order: expected.order.clone(), version: Version::new(expected.version) })
}

/// `demo-restart`: the new process. Rebuilds the orders listed in `expect` and compares.
pub(crate) async fn demo_restart(args: &StoreArgs, expect: &Path) -> Result<Exit, Failure> {
    let text = std::fs::read(expect).map_err(|e| Failure::store(&format!("read {}", expect.display()), &e))?;
    let before: BeforeRestart = serde_json::from_slice(&text).map_err(|e| Failure {
        exit: Exit::Usage,
        message: format!("{} is not a file written by `demo`: {e}", expect.display()),
    })?;
    let session = Session::open(args, demo_defaults(&args.data_dir)).await?;
    let result = demo_compare(&session, &before).await;
    session.close().await;
    result
}

async fn demo_compare(session: &Session, before: &BeforeRestart) -> Result<Exit, Failure> {
    outln!(
        "   [pid {}] opened {} and rebuilt {} from their events:",
        std::process::id(),
        session.description,
        output::plural(before.orders.len() as u64, "order")
    );
    let mut table = Table::new(&[
        ("ORDER", Align::Left),
        ("BEFORE RESTART", Align::Left),
        ("REBUILT", Align::Left),
        ("SNAPSHOT", Align::Left),
        ("REPLAYED", Align::Right),
        ("SAME", Align::Left),
    ]);
    let mut differing = Vec::new();
    for expected in &before.orders {
        let loaded =
            session.repository.load(expected.id.stream_id()).await.map_err(|e| Failure::load(&expected.id, &e))?;
        let rebuilt = KnownOrder { order: loaded.state.clone(), version: loaded.version };
        let was = KnownOrder { order: expected.order.clone(), version: Version::new(expected.version) };
        let differences = output::differences(&was, &rebuilt);
        table.row([
            expected.id.to_string(),
            output::order_summary(&was),
            output::order_summary(&rebuilt),
            loaded.metrics.snapshot_version.map_or_else(|| "none".to_owned(), |v| format!("at v{v}")),
            output::count(loaded.metrics.events_replayed),
            if differences.is_empty() { "yes".to_owned() } else { "NO".to_owned() },
        ]);
        if !differences.is_empty() {
            differing.push((expected.id.clone(), differences));
        }
    }
    out!("{}", table.render("   "));
    if differing.is_empty() {
        outln!("   All {} orders match.", before.orders.len());
        return Ok(Exit::Done);
    }
    for (id, differences) in differing {
        outln!("   order {id} differs (before restart -> rebuilt):");
        for difference in differences {
            outln!("     {difference}");
        }
    }
    Ok(Exit::Mismatch)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn args(database_url: Option<&str>) -> StoreArgs {
        StoreArgs {
            data_dir: PathBuf::from("./order-data"),
            database_url: database_url.map(str::to_owned),
            config: None,
            snapshot_every: None,
            correlation_id: None,
        }
    }

    #[test]
    fn the_closing_hint_repeats_the_backend_options_the_demo_ran_with() {
        let dir = Path::new("./order-data/demo");
        assert_eq!(backend_flags(&args(None), dir), " --data-dir ./order-data/demo");
        assert_eq!(backend_flags(&args(None), Path::new("/tmp/my data/demo")), " --data-dir '/tmp/my data/demo'");
        let url = "postgres://orders@db.internal:5432/orders";
        assert_eq!(backend_flags(&args(Some(url)), dir), format!(" --database-url {url}"));
        let secret = "postgres://orders:s3cret@db.internal:5432/orders";
        assert_eq!(
            backend_flags(&args(Some(secret)), dir),
            " --database-url 'postgres://orders:***@db.internal:5432/orders'",
            "quoted: the shell would expand the stars"
        );
    }
}
