//! Codec speed and size for a realistic order event: bincode vs JSON, encode and decode.
//!
//! Run: `cargo bench -p composable-rust-benches --bench codec -- --warm-up-time 1 --measurement-time 3`.
//! The encoded sizes are printed before the measurements.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use chrono::{DateTime, TimeZone, Utc};
use composable_rust_core::{CodecId, Event, GlobalPosition, Metadata, RecordedEvent, StreamId, Version};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use std::hint::black_box;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Customer {
    id: uuid::Uuid,
    name: String,
    email: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LineItem {
    sku: String,
    name: String,
    quantity: u32,
    unit_price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum OrderEvent {
    Placed {
        order_id: uuid::Uuid,
        customer: Customer,
        items: Vec<LineItem>,
        currency: String,
        placed_at: DateTime<Utc>,
    },
    Cancelled {
        reason: String,
    },
}

impl Event for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Placed { .. } => "OrderPlaced.v1",
            Self::Cancelled { .. } => "OrderCancelled.v1",
        }
    }
}

fn order_placed() -> OrderEvent {
    let item = |sku: &str, name: &str, quantity, unit_price_cents| LineItem {
        sku: sku.to_owned(),
        name: name.to_owned(),
        quantity,
        unit_price_cents,
    };
    OrderEvent::Placed {
        order_id: uuid::Uuid::from_u128(0x6f1c_2a4e_93b0_4d8c_a1f2_77e0_5b3c_9d12),
        customer: Customer {
            id: uuid::Uuid::from_u128(0x0e5f_11aa_42c7_4f3b_8d6e_29b1_c4a0_7e55),
            name: "Ada Lovelace".to_owned(),
            email: "ada.lovelace@example.com".to_owned(),
        },
        items: vec![
            item("SKU-10042", "Mechanical keyboard", 1, 12_900),
            item("SKU-20017", "USB-C cable, 2 m", 3, 1_450),
            item("SKU-31500", "Laptop stand", 1, 4_999),
        ],
        currency: "EUR".to_owned(),
        placed_at: Utc.with_ymd_and_hms(2026, 3, 14, 15, 9, 26).single().unwrap_or_default(),
    }
}

fn recorded(codec: CodecId, payload: Vec<u8>) -> RecordedEvent {
    RecordedEvent {
        id: composable_rust_core::EventId::generate(),
        stream_id: StreamId::for_entity("order", 42).unwrap_or_else(|e| panic!("{e}")),
        version: Version::FIRST,
        position: GlobalPosition::new(1),
        event_type: "OrderPlaced.v1".into(),
        codec,
        payload: payload.into(),
        metadata: Metadata::default(),
        recorded_at: Utc::now(),
        tags: Vec::new(),
    }
}

fn codecs(c: &mut Criterion) {
    let event = order_placed();
    let mut group = c.benchmark_group("codec/order_placed");
    group.throughput(Throughput::Elements(1));
    for codec in [CodecId::Bincode, CodecId::Json] {
        let bytes = codec.encode(&event).unwrap_or_else(|e| panic!("{e}"));
        println!("codec/order_placed/{codec}: {} bytes", bytes.len());
        group.bench_with_input(BenchmarkId::new("encode", codec), &event, |b, event| {
            b.iter(|| codec.encode(black_box(event)));
        });
        let stored = recorded(codec, bytes);
        group.bench_with_input(BenchmarkId::new("decode", codec), &stored, |b, stored| {
            b.iter(|| black_box(stored).decode::<OrderEvent>());
        });
    }
    group.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
