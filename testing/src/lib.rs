//! Test tools for composable-rust (placeholder while they are being written).
