//! `place`, `add-item`, `cancel` and `ship`: a command sent through the [`Store`](composable_rust::Store)
//! and the [`OrderApp`](crate::app::OrderApp) reducer, and what it changed, printed.

use uuid::Uuid;

use super::{Exit, Failure, Session};
use crate::app::{AppAction, Outcome};
use crate::domain::{Order, OrderCommand, OrderEvent, OrderId, Rejection};
use crate::output;

impl Session {
    /// Sends the command through the store and waits for its outcome. The wait covers the whole cascade
    /// the command starts (load, append, and the snapshot the policy may ask for), so nothing is still
    /// being written when it returns.
    ///
    /// Commands are sent one at a time: the outcome is the first one recorded after the send.
    pub(crate) async fn execute(
        &self,
        order: &OrderId,
        command: OrderCommand,
        correlation_id: Uuid,
    ) -> Result<Outcome, Failure> {
        let before = self.app.state(|state| state.outcomes.len());
        self.app.send(AppAction::Execute { order: order.clone(), command, correlation_id }).finished().await;
        self.app.state(|state| state.outcomes.get(before).map(|(_, outcome)| outcome.clone())).ok_or_else(|| Failure {
            exit: Exit::StoreError,
            message: format!(
                "the command for order {order} produced no outcome (a bug in order-processing; please report it)"
            ),
        })
    }

    /// Prints what a command did (stdout) or why it did not (stderr).
    pub(super) fn report(&self, id: &OrderId, outcome: &Outcome) -> Result<Exit, Failure> {
        match outcome {
            Outcome::Accepted { order, version, events, snapshot } => {
                for event in events {
                    outln!("{}", describe_change(id, event, order));
                }
                let snapshot = snapshot.map(|v| format!("; snapshot saved at version {v}")).unwrap_or_default();
                outln!(
                    "  order {id} is at version {version}{snapshot}; correlation id {}; stored in {}",
                    self.correlation_id,
                    self.description
                );
                Ok(Exit::Done)
            }
            Outcome::Rejected(rejection) => {
                eprintln!("rejected: order {id}: {rejection}");
                eprintln!("nothing was written.");
                Ok(exit_for(rejection))
            }
            Outcome::Failed(error) => {
                eprintln!("error: order {id}: {error}");
                Ok(Exit::StoreError)
            }
        }
    }
}

/// The exit code of a rejected command: "no such order" has its own, so that a script can tell it from a
/// rule that refused the command.
pub(crate) fn exit_for(rejection: &Rejection) -> Exit {
    match rejection {
        Rejection::UnknownOrder { .. } => Exit::NotFound,
        _ => Exit::Rejected,
    }
}

/// A new short order id (8 hex digits of a random UUID).
pub(crate) fn new_order_id() -> Result<OrderId, Failure> {
    let text: String = Uuid::new_v4().simple().to_string().chars().take(8).collect();
    OrderId::new(text).map_err(|e| Failure { exit: Exit::Usage, message: e.to_string() })
}

/// One line saying what an accepted event changed.
pub(crate) fn describe_change(id: &OrderId, event: &OrderEvent, order: &Order) -> String {
    match event {
        OrderEvent::OrderPlaced { customer, items } => format!(
            "Placed order {id} for {customer}: {}, total {}.",
            output::plural(items.len() as u64, "item"),
            order.total
        ),
        OrderEvent::OrderItemAdded { item } => format!(
            "Added {} x {} at {} to order {id}; the total is now {}.",
            item.quantity, item.sku, item.unit_price, order.total
        ),
        OrderEvent::OrderCancelled { reason } => format!("Cancelled order {id}: {reason}."),
        OrderEvent::OrderShipped { tracking_number } => {
            format!("Shipped order {id} with tracking number {tracking_number}.")
        }
    }
}
