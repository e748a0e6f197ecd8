//! `checkout`: run one service of the checkout example, place an order, restock, or show an order.

use std::process::ExitCode;
use std::time::Duration;

use checkout::inventory::{Stock, StockCommand};
use checkout::order::{Line, Order, OrderCommand};
use checkout::service::{Service, Settings, open_store, serve};
use clap::{Parser, Subcommand};
use composable_rust::event_store::BoxError;
use composable_rust::prelude::*;
use uuid::Uuid;

/// The checkout example: order, inventory, payment and the saga as separate processes on NATS JetStream.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one service until Ctrl-C.
    Serve {
        /// Which one.
        service: Service,
        /// This service's own event store: postgres://… or an SQLite file.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// The NATS server with JetStream.
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        /// The bus's subject prefix, shared by the four services.
        #[arg(long, default_value = "shop")]
        prefix: String,
        /// Seconds before an unacknowledged delivery comes again.
        #[arg(long, default_value_t = 30)]
        ack_wait_secs: u64,
    },
    /// Place an order (in the order service's event store).
    Place {
        /// The order service's event store.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// The order's id.
        #[arg(long)]
        order: String,
        /// The product.
        #[arg(long)]
        sku: String,
        /// How many.
        #[arg(long, default_value_t = 1)]
        quantity: u32,
        /// The price of the line, in cents (above 100000 the card is declined).
        #[arg(long)]
        amount_cents: u64,
    },
    /// Add stock of a product (in the inventory service's event store).
    Restock {
        /// The inventory service's event store.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// The product.
        #[arg(long)]
        sku: String,
        /// How many.
        #[arg(long)]
        quantity: u32,
    },
    /// Show an order's status (from the order service's event store).
    Show {
        /// The order service's event store.
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// The order's id.
        #[arg(long)]
        order: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", composable_rust::error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Serve { service, database_url, nats_url, prefix, ack_wait_secs } => {
            let settings = Settings { database_url, nats_url, prefix, ack_wait: Duration::from_secs(ack_wait_secs) };
            serve(service, &settings, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
        }
        Command::Place { database_url, order, sku, quantity, amount_cents } => {
            let orders = Repository::<Order>::new(open_store(&database_url).await?);
            let command = OrderCommand::Place { order_id: order.clone(), line: Line { sku, quantity, amount_cents } };
            // Placing the same order id twice places it once: the command's key is derived from the id.
            let key = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("place/{order}").as_bytes());
            let metadata = Metadata::correlated(Uuid::now_v7()).with_actor("checkout-cli");
            let executed = orders.execute_once(&Order::stream_id(&order)?, key, command, metadata).await?;
            println!("order {order}: {:?}", executed.state.status);
            Ok(())
        }
        Command::Restock { database_url, sku, quantity } => {
            let stock = Repository::<Stock>::new(open_store(&database_url).await?);
            let executed = stock
                .execute(
                    &Stock::stream_id(&sku)?,
                    StockCommand::Restock { sku: sku.clone(), quantity },
                    Metadata::default(),
                )
                .await?;
            println!("stock {sku}: {} available", executed.state.available);
            Ok(())
        }
        Command::Show { database_url, order } => {
            let orders = Repository::<Order>::new(open_store(&database_url).await?);
            let loaded = orders.load(&Order::stream_id(&order)?).await?;
            println!("order {order}: {:?}", loaded.state.status);
            Ok(())
        }
    }
}
