//! Single-event appends to an in-memory store in a loop, for counting with callgrind what metrics and
//! tracing add to each append (instruction counts stay repeatable on a noisy machine, unlike time):
//!
//! ```text
//! cargo build --release -p composable-rust-benches --example metrics_profile
//! for variant in bare instrumented prometheus; do
//!   for n in 0 20000; do
//!     valgrind --tool=callgrind --callgrind-out-file=/tmp/cg-$variant-$n.out \
//!       target/release/examples/metrics_profile $variant $n 2>&1 | grep 'Collected'
//!   done
//! done
//! ```
//!
//! `VARIANT` is `bare` (the store alone), `instrumented` (wrapped in `InstrumentedStore`, no recorder) or
//! `prometheus` (wrapped, with `metrics-exporter-prometheus`'s recorder installed). Runs 1,000 appends of
//! warm-up, then `n` (default 20,000), on a current-thread runtime, one stream with exact expected versions.
//! Instructions per append: (total for `n`, minus total for 0) / `n`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use composable_rust_core::{CodecId, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId, Version};
use composable_rust_runtime::InstrumentedStore;
use composable_rust_testing::InMemoryEventStore;
use metrics_exporter_prometheus::PrometheusBuilder;

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "bare".to_owned());
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let bare: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let store = match variant.as_str() {
        "bare" => bare,
        "instrumented" => InstrumentedStore::shared(bare, "in-memory"),
        "prometheus" => {
            PrometheusBuilder::new().install_recorder().expect("install the Prometheus recorder");
            InstrumentedStore::shared(bare, "in-memory")
        }
        other => panic!("unknown variant {other:?}: bare, instrumented or prometheus"),
    };
    let payload = CodecId::Bincode.encode(&("SKU-00000001", 3_u32, 1999_i64)).unwrap();
    let metadata = Metadata::correlated(uuid::Uuid::new_v4()).with_actor("user-42");
    let event = NewEvent::new("ItemAdded.v1", CodecId::Bincode, payload, metadata);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let stream = StreamId::new("order-1").unwrap();
        let mut version = Version::INITIAL;
        for _ in 0..1_000 + n {
            let fresh = vec![event.clone().with_id(EventId::generate())];
            version = store.append(&stream, ExpectedVersion::Exact(version), fresh).await.unwrap().stream_version;
        }
    });
}
