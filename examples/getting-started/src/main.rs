//! The bank, run three times over the same `Account`: in memory, in an SQLite file (the zero-configuration
//! default), and on PostgreSQL when `DATABASE_URL` names a server.

use std::sync::Arc;

use composable_rust::Report;
use composable_rust::aggregate::RepositoryError;
use composable_rust::config::{self, Backend, EventStoreConfig};
use composable_rust::memory::InMemoryEventStore;
use composable_rust::prelude::*;
use getting_started::account::{Account, AccountCommand};

#[tokio::main]
async fn main() -> Result<(), Report> {
    // Log lines (a failing effect, a retried append) go to stderr: warnings by default, more with RUST_LOG=debug.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    // 1. In memory: the whole event store contract, nothing kept when the program ends.
    let in_memory = Repository::<Account>::new(Arc::new(InMemoryEventStore::new()));
    a_day_at_the_bank("memory (lost when the process ends)", &in_memory).await?;

    // 2. SQLite with no configuration at all: the file data/events.db under the current directory, created on
    //    first use. Run the program again and the balance grows: it is rebuilt from the file.
    let sqlite = EventStoreConfig::default();
    let store = config::open(&sqlite).await?;
    let on_sqlite = Repository::<Account>::with_config(store, sqlite.repository_config());
    a_day_at_the_bank(&sqlite.location(), &on_sqlite).await?;

    // 3. PostgreSQL, picked by configuration: DATABASE_URL=postgres://... selects it (a config file could too).
    let configured = EventStoreConfig::default().with_env_overrides()?;
    if configured.backend == Backend::Postgres {
        let store = config::open(&configured).await?;
        let on_postgres = Repository::<Account>::with_config(store, configured.repository_config());
        a_day_at_the_bank(&configured.location(), &on_postgres).await?;
    } else {
        println!("\nSet DATABASE_URL=postgres://user@host:5432/database to run on PostgreSQL too.");
    }
    Ok(())
}

/// Opens account 1 on the first run, deposits and withdraws, and shows a command the rules refuse.
async fn a_day_at_the_bank(location: &str, accounts: &Repository<Account>) -> Result<(), Report> {
    println!("\nEvents go to {location}.");
    let id = Account::stream_id(1)?;
    let teller = Metadata::default().with_actor("teller");

    if accounts.load(&id).await?.state.owner.is_none() {
        accounts.execute(&id, AccountCommand::Open { owner: "ada".into() }, teller.clone()).await?;
    }
    accounts.execute(&id, AccountCommand::Deposit { cents: 500 }, teller.clone()).await?;
    let after = accounts.execute(&id, AccountCommand::Withdraw { cents: 200 }, teller.clone()).await?;
    println!("  {id}: balance {} cents after {} events", after.state.balance, after.version);

    // The rules refuse to take out more than the balance; a refusal appends nothing.
    let too_much = AccountCommand::Withdraw { cents: after.state.balance + 1 };
    let refused = accounts.execute(&id, too_much, teller).await;
    if let Err(RepositoryError::Domain(refusal)) = refused {
        println!("  refused: {refusal}");
    } else {
        refused?;
    }
    Ok(())
}
