//! `list`: every order with its status and total, optionally of one status.

use super::{Exit, Failure, Session};
use crate::cli::StatusFilter;
use crate::output::{self, Align, Table};

impl Session {
    pub(super) async fn list(&self, status: Option<StatusFilter>) -> Result<Exit, Failure> {
        let mut table = Table::new(&[
            ("ORDER", Align::Left),
            ("STATUS", Align::Left),
            ("CUSTOMER", Align::Left),
            ("ITEMS", Align::Right),
            ("TOTAL", Align::Right),
            ("EVENTS", Align::Right),
        ]);
        let mut shown = 0_u64;
        for id in self.order_ids().await? {
            let loaded = self.repository.load(id.stream_id()).await.map_err(|e| Failure::load(&id, &e))?;
            let order = &loaded.state;
            if status.is_some_and(|filter| !filter.matches(order.status)) {
                continue;
            }
            shown += 1;
            table.row([
                id.to_string(),
                order.status.to_string(),
                order.customer.clone(),
                output::count(order.items.len() as u64),
                order.total.to_string(),
                loaded.version.to_string(),
            ]);
        }
        let which = status.map(|s| format!("{} ", format!("{s:?}").to_lowercase())).unwrap_or_default();
        if table.is_empty() {
            outln!("No {which}orders in {}.", self.description);
        } else {
            out!("{}", table.render(""));
            outln!("{} in {}", output::plural(shown, &format!("{which}order")), self.description);
        }
        Ok(Exit::Done)
    }
}
