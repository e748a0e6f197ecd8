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
            let mut message = format!(
                "the TestStore created at {} was dropped with work left over{}\n\n",
                self.created_at,
                self.last_step.map(|at| format!(" after its last step at {at}")).unwrap_or_default(),
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
            message.push_str(
                "\nhint: end the test with `store.finish()`, after asserting what is left with `receive` / \
                 `receive_request`; or build the store with `Exhaustivity::Off` to check only what you assert",
            );
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

/// A line diff of two pretty-printed values: each changed part headed by its path from the root (e.g.
/// `at orders["a1"].last:`), only the changed lines with two lines of context around them (unchanged
/// siblings are folded away), `-` for expected and `+` for actual, and a legend.
pub(super) fn diff(expected: &str, actual: &str) -> String {
    let diff = TextDiff::from_lines(expected, actual);
    let (old_lines, new_lines): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for (i, group) in diff.grouped_ops(2).iter().enumerate() {
        if i > 0 {
            out.push_str("    …\n");
        }
        let path_of = |change: &similar::Change<&str>| match (change.old_index(), change.new_index()) {
            (Some(index), _) => path_at(&old_lines, index),
            (None, Some(index)) => path_at(&new_lines, index),
            (None, None) => None,
        };
        // The path of the hunk's first change heads it; a later change at another path gets its own heading.
        let first_change = group.iter().flat_map(|op| diff.iter_changes(op)).find(|c| c.tag() != ChangeTag::Equal);
        let mut heading = first_change.as_ref().and_then(path_of);
        if let Some(path) = &heading {
            let _ = writeln!(out, "  at {path}:");
        }
        let mut previous = ChangeTag::Equal;
        for op in group {
            for change in diff.iter_changes(op) {
                if change.tag() != ChangeTag::Equal && previous == ChangeTag::Equal {
                    let path = path_of(&change);
                    if path.is_some() && path != heading {
                        let _ = writeln!(out, "  at {}:", path.as_deref().unwrap_or_default());
                        heading = path;
                    }
                }
                previous = change.tag();
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

/// The path from the root to line `index` of a value pretty-printed with `{:#?}`: field names joined with
/// `.`, map keys as `["key"]`, sequence elements as `[n]`; `None` for the root line.
///
/// Pretty `Debug` indents four spaces per level and opens a level at a line ending in `{`, `[` or `(`; the
/// key of a line is the text before its first `: ` outside quotes.
fn path_at(lines: &[&str], index: usize) -> Option<String> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut segments = Vec::new();
    let mut current = index;
    loop {
        let line = *lines.get(current)?;
        let depth = indent(line);
        if depth == 0 {
            break;
        }
        // The opener of this line's level: the nearest line above with less indentation.
        let parent = (0..current).rev().find(|&i| indent(lines[i]) < depth)?;
        let opener = lines[parent].trim_end();
        match key_of(line.trim()) {
            Some(key) if opener.ends_with('{') && key.starts_with('"') => segments.push(format!("[{key}]")),
            Some(key) if opener.ends_with('{') => segments.push(format!(".{key}")),
            _ if opener.ends_with('[') => {
                let position = (parent + 1..current).filter(|&i| indent(lines[i]) == depth).count();
                segments.push(format!("[{position}]"));
            }
            // Inside a tuple (`Some(`, `Ok(`, a tuple struct): the element is named by the tuple's own key.
            _ => {}
        }
        current = parent;
    }
    segments.reverse();
    let path = segments.concat();
    let path = path.strip_prefix('.').unwrap_or(&path).to_owned();
    (!path.is_empty()).then_some(path)
}

/// `name` for `name: value`, `"key"` for `"key": value`; `None` for a line without a key.
fn key_of(line: &str) -> Option<&str> {
    let end = if line.starts_with('"') {
        // A quoted key: skip to its closing quote, past escaped quotes.
        let mut escaped = false;
        let close = line.char_indices().skip(1).find(|&(_, c)| {
            let done = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            done
        })?;
        close.0 + 1
    } else {
        line.find(": ").filter(|&at| line[..at].chars().all(|c| c.is_alphanumeric() || c == '_'))?
    };
    line[end..].starts_with(": ").then(|| &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone)]
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
                "  at age:\n",
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

    #[derive(Debug, Clone)]
    #[allow(dead_code, reason = "read through Debug")]
    struct Order {
        lines: Vec<u32>,
        last: Option<User>,
    }

    #[test]
    fn a_nested_change_is_headed_by_its_path_from_the_root() {
        let user = |age| User { name: "ada", age, tags: vec![] };
        let order = |age, lines| Order { lines, last: Some(user(age)) };
        let expected: std::collections::BTreeMap<&str, Order> =
            [("a0", order(1, vec![1])), ("a1", order(36, vec![1, 2, 3]))].into();
        let mut actual = expected.clone();
        if let Some(order) = actual.get_mut("a1") {
            order.last = Some(user(37));
            order.lines[2] = 4;
        }
        let text = diff(&format!("{expected:#?}"), &format!("{actual:#?}"));
        assert!(text.contains("  at [\"a1\"].lines[2]:\n"), "{text}");
        assert!(text.contains("  at [\"a1\"].last.age:\n"), "{text}");
        assert!(!text.contains("\"a0\""), "an unchanged sibling is folded away:\n{text}");
    }

    #[test]
    fn count_agrees_in_number() {
        assert_eq!(count(1, "effect is", "effects are"), "1 effect is");
        assert_eq!(count(3, "effect is", "effects are"), "3 effects are");
    }
}
