//! What the `InstrumentedStore`'s tracing spans carry: the stream, versions and counts, never a payload.
//!
//! A test binary of its own: tracing caches whether a callsite is enabled process-wide, and a test in the same
//! binary appending at the same moment with no subscriber could leave the append's callsite disabled for the
//! scoped subscriber this test installs.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "set-up failures should fail the test loudly")]

use std::io::Write;
use std::sync::{Arc, Mutex};

use composable_rust_core::{CodecId, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use composable_rust_runtime::InstrumentedStore;
use composable_rust_testing::InMemoryEventStore;

fn event(kind: &str) -> NewEvent {
    NewEvent::new(kind, CodecId::Json, b"{}".to_vec(), Metadata::default())
}

fn stream(id: &str) -> StreamId {
    StreamId::new(id).unwrap()
}

fn instrumented() -> Arc<dyn EventStore> {
    InstrumentedStore::shared(Arc::new(InMemoryEventStore::new()), "in-memory")
}

/// A writer the tracing subscriber formats into, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_store_operation_has_a_span_with_stream_version_and_count_and_never_the_payload() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let store = instrumented();
            let secret =
                NewEvent::new("Secret.v1", CodecId::Json, br#"{"card":"4111-SECRET"}"#.to_vec(), Metadata::default());
            store.append(&stream("order-1"), ExpectedVersion::NoStream, vec![secret, event("B")]).await.unwrap();
            let events = store.load_stream(&stream("order-1"), composable_rust_core::StreamRange::all()).await.unwrap();
            assert_eq!(events.len(), 2);
            store
                .read_all(composable_rust_core::GlobalPosition::START, &composable_rust_core::LogFilter::all(), 10)
                .await
                .unwrap();
        });
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = |name: &str| {
        text.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("no span {name} in:\n{text}")).to_owned()
    };
    let append = line("event_store.append");
    for field in ["backend=\"in-memory\"", "stream=order-1", "count=2", "version=2"] {
        assert!(append.contains(field), "the append span lacks {field}: {append}");
    }
    assert!(line("event_store.load_stream").contains("count=2"), "{text}");
    assert!(line("event_store.read_log").contains("count=2"), "{text}");
    assert!(!text.contains("SECRET"), "a payload reached the trace:\n{text}");
}
