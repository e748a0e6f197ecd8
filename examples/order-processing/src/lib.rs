//! The order-processing example: an `order-processing` command-line program whose orders survive restarts.
//!
//! Read it in this order:
//! - [`domain`]: the pure part. [`Order`] is an [`Aggregate`](composable_rust::Aggregate):
//!   commands, events (`OrderPlaced.v1`, ...), the state and the rules, with no I/O.
//! - [`app`]: the wiring. A reducer whose actions are commands and their outcomes returns an
//!   `Effect::EventStore` that runs the command through the runtime's `Repository`; a `Store` executes it.
//! - [`cli`], [`run`] (with the `demo` module) and `main.rs`: parse the arguments, open the event store
//!   (an SQLite file by default, or PostgreSQL), run, print for humans, and exit with a code that says what
//!   happened.

pub mod app;
pub mod cli;
mod demo;
pub mod domain;
pub mod output;
mod report;
pub mod run;

pub use domain::{Cents, ItemRequest, LineItem, Order, OrderCommand, OrderEvent, OrderId, OrderStatus, Rejection};
