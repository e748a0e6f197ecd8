//! The event every side stores: one `ItemAdded`, 45 bytes in bincode (composable-rust) and 106 bytes of JSON
//! (postgres-es and esrs store JSON), whatever its numbers, so every row of a side has the same size.

use serde::{Deserialize, Serialize};

/// An item added to an order: the user's event type every side decodes into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ItemAdded {
    order_id: String,
    sku: String,
    qty: u32,
    price: u64,
    currency: String,
    note: String,
}

impl ItemAdded {
    /// The `seq`th event of order `order`; ids are zero-padded, so the encoded size never changes.
    pub(crate) fn sample(order: u64, seq: u64) -> Self {
        Self {
            order_id: format!("order-{:07}", order % 10_000_000),
            sku: format!("SKU-{:08}", seq % 100_000_000),
            qty: 3,
            price: 1999,
            currency: "EUR".to_owned(),
            note: "gift wrap".to_owned(),
        }
    }

    /// `count` events of order `order`, numbered from `first`.
    pub(crate) fn batch(order: u64, first: u64, count: usize) -> Vec<Self> {
        (first..).take(count).map(|seq| Self::sample(order, seq)).collect()
    }
}

#[cfg(test)]
mod tests {
    use composable_rust_core::CodecId;

    use super::ItemAdded;

    #[test]
    fn the_event_is_45_bytes_in_bincode_and_106_in_json_whatever_its_numbers() {
        for (order, seq) in [(0, 0), (42, 1234), (9_999_999, 99_999_999), (u64::MAX, u64::MAX)] {
            let event = ItemAdded::sample(order, seq);
            let bincode = CodecId::Bincode.encode(&event).map(|b| b.len()).map_err(|e| e.to_string());
            let json = serde_json::to_vec(&event).map(|b| b.len()).map_err(|e| e.to_string());
            assert_eq!(bincode, Ok(45), "bincode size of {event:?}");
            assert_eq!(json, Ok(106), "JSON size of {event:?}");
        }
    }
}
