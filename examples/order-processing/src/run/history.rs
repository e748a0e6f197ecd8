//! `history`: every event of an order, with its version, time, id and metadata.

use composable_rust::Aggregate;
use composable_rust::event::EventDecoder;
use composable_rust::event_store::StreamRange;

use super::{Exit, Failure, Session};
use crate::domain::{Order, OrderId};
use crate::output::{self, Align, Table};

impl Session {
    pub(super) async fn history(&self, id: &OrderId) -> Result<Exit, Failure> {
        let decoder = EventDecoder::for_aggregate::<Order>();
        let recorded = self
            .store
            .load_stream(id.stream_id(), StreamRange::all())
            .await
            .map_err(|e| Failure::store(&format!("read the events of order {id}"), &e))?;
        if recorded.is_empty() {
            return Err(Failure::no_such_order(id, &self.description));
        }
        let mut table = Table::new(&[
            ("VERSION", Align::Right),
            ("EVENT ID", Align::Left),
            ("RECORDED AT (UTC)", Align::Left),
            ("TYPE", Align::Left),
            ("CORRELATION ID", Align::Left),
            ("WHAT HAPPENED", Align::Left),
        ]);
        let mut order = Order::default();
        for event in &recorded {
            let decoded =
                decoder.decode(event).map_err(|e| Failure::store(&format!("decode the events of order {id}"), &e))?;
            let details = match decoded {
                Some(decoded) => {
                    order.apply(&decoded);
                    decoded.describe()
                }
                None => "(an event type this build skips)".to_owned(),
            };
            table.row([
                event.version.to_string(),
                event.id.to_string(),
                event.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                event.event_type.to_string(),
                event.metadata.correlation_id.map(|c| c.to_string()).unwrap_or_else(|| "-".to_owned()),
                details,
            ]);
        }
        outln!(
            "History of order {id} (stream {}, {}, in {}):",
            id.stream_id(),
            output::plural(recorded.len() as u64, "event"),
            self.description
        );
        out!("{}", table.render(""));
        outln!("Now {}, total {}.", order.status, order.total);
        Ok(Exit::Done)
    }
}
