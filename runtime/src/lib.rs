//! The composable-rust Store (being written).

mod clock;
mod store;
mod repository;
mod snapshot_policy;

pub use repository::{
    Executed, IgnoredSnapshot, LoadError, LoadMetrics, Loaded, Repository, RepositoryConfig, RepositoryError,
    SnapshotIgnoreReason,
};
pub use snapshot_policy::SnapshotPolicy;
