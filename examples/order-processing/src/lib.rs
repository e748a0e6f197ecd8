//! The order-processing example: an `order-processing` command-line program whose orders survive restarts.
//!
//! Read it in this order:
//! - [`domain`]: the pure part. [`Order`] is an [`Aggregate`](composable_rust::Aggregate):
//!   commands, events (`OrderPlaced.v1`, ...), the state and the rules, with no I/O.
//! - [`app`]: the wiring. The reducer [`OrderApp`](app::OrderApp) runs [`Order`] as an
//!   `EventSourced<Order>` reducer: a command becomes a load request, then an append request, and the
//!   answers come back as actions until the command ends as an outcome; a `Store` runs the requests.
//! - [`cli`], [`run`] (with the `demo` module) and `main.rs`: parse the arguments, open the event store
//!   (an SQLite file by default, or PostgreSQL), run, print for humans, and exit with a code that says what
//!   happened.
//! - `metrics_endpoint`: `--metrics-addr`, the framework's metrics served to Prometheus.

/// `println!` for what the program prints on stdout: a failed write returns a [`Failure`](run::Failure)
/// from the enclosing function instead of panicking, and a reader that went away (`| head -1`) ends the
/// command quietly with exit 0.
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` with the behaviour of [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))?
    };
}

pub mod app;
pub mod cli;
mod demo;
pub mod domain;
mod metrics_endpoint;
pub mod output;
mod report;
pub mod run;

pub use domain::{Cents, ItemRequest, LineItem, Order, OrderCommand, OrderEvent, OrderId, OrderStatus, Rejection};
