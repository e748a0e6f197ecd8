//! [`FileConfig`]: the tunables of a [`FileEventStore`](crate::FileEventStore), with documented defaults.

use composable_rust_core::Durability;

/// Settings for [`FileEventStore::open_with`](crate::FileEventStore::open_with).
///
/// ```
/// use composable_rust_file::{Durability, FileConfig};
///
/// let mut config = FileConfig::default();
/// config.durability = Durability::Normal;
/// assert_eq!(config.segment_size, 64 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileConfig {
    /// When the open segment reaches this many bytes it is closed (and compressed) and a new one begins;
    /// a commit is never split, so a segment can exceed it by one commit. Default: 64 MiB.
    pub segment_size: u64,
    /// The longest line (one event, encoded) the store writes or reads. An append whose event would be
    /// longer is refused; a longer line in a segment stops the open with an error naming it, so a damaged
    /// file never makes the store read without bound. Default: 16 MiB.
    pub max_line_len: usize,
    /// When commits reach the disk: [`Durability::Full`] (the default) `fdatasync`s the segment after every
    /// commit; [`Durability::Normal`] flushes it when a segment is closed and when the store is closed.
    pub durability: Durability,
}

impl FileConfig {
    /// The default [`FileConfig::segment_size`].
    pub const DEFAULT_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;
    /// The default [`FileConfig::max_line_len`].
    pub const DEFAULT_MAX_LINE_LEN: usize = 16 * 1024 * 1024;
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            segment_size: Self::DEFAULT_SEGMENT_SIZE,
            max_line_len: Self::DEFAULT_MAX_LINE_LEN,
            durability: Durability::Full,
        }
    }
}
