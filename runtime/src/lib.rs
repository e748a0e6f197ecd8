//! The composable-rust Store (placeholder while it is being written).
