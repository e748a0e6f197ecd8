//! The composable-rust Store (being written).

mod clock;
mod store;
mod repository;
