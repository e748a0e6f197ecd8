//! The event store conformance suite, run against `FileEventStore` in a fresh temporary directory per
//! case (removed when the case ends): once with the default settings, once with segments so small that
//! most commits close one, so rotation and compression run under every case.

use composable_rust_file::{Durability, FileConfig, FileEventStore};
use composable_rust_testing::conformance::StoreUnderTest;

async fn open(config: FileConfig) -> StoreUnderTest {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("could not create a temporary folder: {error}"),
    };
    match FileEventStore::open_with(dir.path().join("events"), config).await {
        Ok(store) => StoreUnderTest::new(store).with_guard(dir),
        Err(error) => panic!("could not open the file event store: {error}"),
    }
}

async fn default_settings() -> StoreUnderTest {
    open(FileConfig::default()).await
}

composable_rust_testing::event_store_conformance_tests!(default_settings);

mod small_segments {
    use super::*;

    async fn small_segments() -> StoreUnderTest {
        let mut config = FileConfig::default();
        config.segment_size = 2048;
        config.durability = Durability::Normal;
        open(config).await
    }

    composable_rust_testing::event_store_conformance_tests!(small_segments);
}
