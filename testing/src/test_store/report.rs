//! The failure messages of a [`TestStore`](super::TestStore): what was expected, what is waiting, a
//! minimal diff with a legend, and a hint.

use std::fmt::{Debug, Write as _};

use composable_rust_core::Reducer;
use similar::{ChangeTag, TextDiff};

use super::TestStore;

impl<R> TestStore<R>
where
    R: Reducer + Send + Sync + 'static,
    R::State: Clone + PartialEq + Debug + Send + 'static,
    R::Action: Clone + PartialEq + Debug + Send + 'static,
    R::Environment: Send + Sync + 'static,
{
    pub(super) fn nothing_received_message(&self, description: &str) -> String {
        let mut message = format!("expected to receive {description}, but no action was received\n\n");
        let held = self.requests.descriptions();
        if !held.is_empty() {
            let _ = writeln!(message, "event store requests waiting to be asserted ({}):", held.len());
            for (i, request) in held.iter().enumerate() {
                let _ = writeln!(message, "  {}. {request}", i + 1);
            }
            message.push_str(
                "\nhint: assert the request with `receive_request` or `receive_append` first; its answer is what \
                 the effect sends back",
            );
            return message;
        }
        let in_flight = self.store.effects_in_flight();
        let sleeps = self.clock.pending_sleeps();
        message.push_str(&match (in_flight, self.clock.time_until_next_sleep()) {
            (_, Some(next)) => format!(
                "hint: {} waiting on the test clock (the next is due in {next:?}); call `advance` to move time",
                count(sleeps, "effect is", "effects are"),
            ),
            (0, None) => "hint: no effect is running, so nothing can send it; check that the reducer returns the \
                          effect, and that it was not cancelled"
                .to_owned(),
            (n, None) => format!(
                "hint: {} still running but sent nothing within {:?}; if it does slow real work, raise the \
                 limit with `TestStoreBuilder::timeout`",
                count(n, "effect is", "effects are"),
                self.timeout,
            ),
        });
        message
    }

    /// What a store dropped without `finish` left undone, if anything.
    pub(super) fn dropped_message(&self) -> Option<String> {
        let pending = self.log.peek_received_debug();
        let requests = self.requests.descriptions();
        let in_flight = self.store.effects_in_flight().saturating_sub(requests.len());
        (!pending.is_empty() || !requests.is_empty() || in_flight > 0).then(|| {
            let mut message = String::from(
                "the TestStore was dropped with work left over; call `finish()` at the end of the test\n\n",
            );
            if !pending.is_empty() {
                let _ = writeln!(message, "unhandled received actions ({}):", pending.len());
                for (i, action) in pending.iter().enumerate() {
                    let _ = writeln!(message, "  {}. {action}", i + 1);
                }
            }
            if !requests.is_empty() {
                let _ = writeln!(message, "unasserted event store requests ({}):", requests.len());
                for (i, request) in requests.iter().enumerate() {
                    let _ = writeln!(message, "  {}. {request}", i + 1);
                }
            }
            if in_flight > 0 {
                let _ = writeln!(message, "{} still running", count(in_flight, "effect is", "effects are"));
            }
            message
        })
    }

    /// What is left undone at the end of a test, if anything.
    pub(super) fn unfinished_message(&self) -> Option<String> {
        let pending = self.log.peek_received();
        let requests = self.requests.descriptions();
        // Effects waiting for an answer are reported as requests, not as running effects.
        let in_flight = self.store.effects_in_flight().saturating_sub(requests.len());
        if pending.is_empty() && requests.is_empty() && in_flight == 0 {
            return None;
        }
        let mut message = String::new();
        if !requests.is_empty() {
            let _ = writeln!(
                message,
                "{} not asserted at the end of the test\n",
                count(requests.len(), "event store request was", "event store requests were")
            );
            let _ = writeln!(message, "unasserted requests ({}):", requests.len());
            for (i, request) in requests.iter().enumerate() {
                let _ = writeln!(message, "  {}. {request}", i + 1);
            }
            message.push_str(
                "\nhint: assert each with `receive_request` or `receive_append`, in the order the reducer made them\n",
            );
        }
        if !pending.is_empty() {
            if !message.is_empty() {
                message.push('\n');
            }
            let _ = writeln!(
                message,
                "{} not asserted at the end of the test\n",
                count(pending.len(), "received action was", "received actions were")
            );
            write_actions(&mut message, "unhandled received actions", pending.iter());
            message.push_str("\nhint: assert them with `receive`, or call `skip_received_actions()`\n");
        }
        if in_flight > 0 {
            if !message.is_empty() {
                message.push('\n');
            }
            let _ = writeln!(
                message,
                "{} still running at the end of the test\n",
                count(in_flight, "effect is", "effects are")
            );
            if let Some(next) = self.clock.time_until_next_sleep() {
                let _ = writeln!(
                    message,
                    "{} waiting on the test clock (the next is due in {next:?})",
                    count(self.clock.pending_sleeps(), "of them is", "of them are")
                );
            }
            message.push_str(
                "hint: `advance` the test clock until delays have fired, and cancel long-living effects \
                 (timers, subscriptions) with `Effect::cancel` before the test ends",
            );
        }
        Some(message.trim_end().to_owned())
    }
}

/// "1 received action" / "2 received actions".
pub(super) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

pub(super) fn write_actions<'a, A: Debug + 'a>(
    out: &mut String,
    title: &str,
    actions: impl ExactSizeIterator<Item = &'a A>,
) {
    let _ = writeln!(out, "{title} ({}):", actions.len());
    for (i, action) in actions.enumerate() {
        let _ = writeln!(out, "  {}. {action:?}", i + 1);
    }
}

/// A line diff of two pretty-printed values: only changed lines with two lines of context around them,
/// `-` for expected and `+` for actual, and a legend.
pub(super) fn diff(expected: &str, actual: &str) -> String {
    let diff = TextDiff::from_lines(expected, actual);
    let mut out = String::new();
    for (i, group) in diff.grouped_ops(2).iter().enumerate() {
        if i > 0 {
            out.push_str("    …\n");
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                    ChangeTag::Equal => ' ',
                };
                let _ = writeln!(out, "  {sign} {}", change.value().trim_end_matches('\n'));
            }
        }
    }
    out.push_str("\n(expected: -, actual: +)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    #[allow(dead_code, reason = "read through Debug")]
    struct User {
        name: &'static str,
        age: u32,
        tags: Vec<&'static str>,
    }

    #[test]
    fn diff_shows_only_changed_lines_with_context_and_a_legend() {
        let expected = User { name: "ada", age: 36, tags: vec!["a", "b", "c", "d", "e", "f"] };
        let actual = User { name: "ada", age: 37, tags: vec!["a", "b", "c", "d", "e", "f"] };
        let text = diff(&format!("{expected:#?}"), &format!("{actual:#?}"));
        assert_eq!(
            text,
            concat!(
                "    User {\n",
                "        name: \"ada\",\n",
                "  -     age: 36,\n",
                "  +     age: 37,\n",
                "        tags: [\n",
                "            \"a\",\n",
                "\n(expected: -, actual: +)\n",
            )
        );
    }

    #[test]
    fn count_agrees_in_number() {
        assert_eq!(count(1, "effect is", "effects are"), "1 effect is");
        assert_eq!(count(3, "effect is", "effects are"), "3 effects are");
    }
}
