//! Output for humans: aligned tables, money as `$12.34`, durations and counts that read well.
//!
//! Every function returns a `String`, so the formatting is unit-tested without running the program.

use std::fmt::Write as _;
use std::time::Duration;

use composable_rust::Version;

use crate::app::KnownOrder;
use crate::domain::{Order, OrderId};

/// How a table column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers and money.
    Right,
}

/// A table with a header row, columns separated by two spaces, each as wide as its widest cell.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers and alignments.
    #[must_use]
    pub fn new(headers: &[(&'static str, Align)]) -> Self {
        Self { headers: headers.to_vec(), rows: Vec::new() }
    }

    /// Adds a row; missing cells are empty and extra cells are dropped.
    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        let mut cells: Vec<String> = cells.into_iter().take(self.headers.len()).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// Whether the table has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, every line indented by `indent` and ending in a newline.
    #[must_use]
    pub fn render(&self, indent: &str) -> String {
        let header: Vec<String> = self.headers.iter().map(|(h, _)| (*h).to_owned()).collect();
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| std::iter::once(&header).chain(&self.rows).map(|row| row[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::from(indent);
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let width = widths[i];
                match self.headers[i].1 {
                    Align::Left => {
                        let _ = write!(line, "{cell:<width$}");
                    }
                    Align::Right => {
                        let _ = write!(line, "{cell:>width$}");
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `1,234,567`.
#[must_use]
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `1` for one, `n`s otherwise: `plural(3, "event")` is `3 events`.
#[must_use]
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{} {noun}s", count(n)) }
}

/// `850 µs`, `12.3 ms`, `4.56 s`.
#[must_use]
pub fn duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// Writes to stdout (see the `outln!` macro): a closed pipe becomes a quiet exit 0.
pub(crate) fn write_stdout(text: std::fmt::Arguments<'_>) -> Result<(), crate::run::Failure> {
    use std::io::Write as _;
    std::io::stdout().lock().write_fmt(text).map_err(|e| crate::run::Failure::stdout(&e))
}

/// `count / elapsed` per second, as a whole number with separators.
#[must_use]
pub fn rate(n: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return "-".to_owned();
    }
    #[allow(clippy::cast_precision_loss, reason = "a rate needs no more than 52 bits of precision")]
    per_second(n as f64 / secs)
}

/// A rate as a whole number with separators (`1,234`): fractions of an event per second mean nothing to a
/// reader.
#[must_use]
pub fn per_second(rate: f64) -> String {
    if !rate.is_finite() || rate < 0.0 {
        return "-".to_owned();
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "finite and not negative")]
    count(rate.round() as u64)
}

/// One order in full, as `show` prints it.
#[must_use]
pub fn order_details(id: &OrderId, order: &Order, version: Version) -> String {
    let mut out = format!("Order {id}  ({}, version {version})\n", order.status);
    let _ = writeln!(out, "  customer  {}", order.customer);
    if let Some(tracking) = &order.tracking_number {
        let _ = writeln!(out, "  tracking  {tracking}");
    }
    if let Some(reason) = &order.cancel_reason {
        let _ = writeln!(out, "  cancelled {reason}");
    }
    let mut items = Table::new(&[
        ("SKU", Align::Left),
        ("QTY", Align::Right),
        ("UNIT PRICE", Align::Right),
        ("LINE TOTAL", Align::Right),
    ]);
    for item in &order.items {
        let total = item.total().map_or_else(|| "overflow".to_owned(), |t| t.to_string());
        items.row([item.sku.clone(), count(u64::from(item.quantity)), item.unit_price.to_string(), total]);
    }
    items.row([String::new(), String::new(), "total".to_owned(), order.total.to_string()]);
    out.push_str(&items.render("  "));
    out
}

/// A one-line summary of an order: `placed, v7, 3 items, $41.22`.
#[must_use]
pub fn order_summary(known: &KnownOrder) -> String {
    let order = &known.order;
    format!(
        "{}, v{}, {}, {}",
        order.status,
        known.version,
        plural(u64::try_from(order.items.len()).unwrap_or(u64::MAX), "item"),
        order.total
    )
}

/// The fields in which two versions of an order differ, as `field: left -> right` lines; empty when equal.
#[must_use]
pub fn differences(left: &KnownOrder, right: &KnownOrder) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{field}: {a} -> {b}"));
        }
    };
    let (a, b) = (&left.order, &right.order);
    check("version", left.version.to_string(), right.version.to_string());
    check("status", a.status.to_string(), b.status.to_string());
    check("customer", format!("{:?}", a.customer), format!("{:?}", b.customer));
    check("items", format!("{:?}", a.items), format!("{:?}", b.items));
    check("total", a.total.to_string(), b.total.to_string());
    check("tracking number", format!("{:?}", a.tracking_number), format!("{:?}", b.tracking_number));
    check("cancel reason", format!("{:?}", a.cancel_reason), format!("{:?}", b.cancel_reason));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Cents, LineItem, OrderStatus};

    fn order() -> Order {
        Order {
            status: OrderStatus::Shipped,
            customer: "Ada".into(),
            items: vec![
                LineItem { sku: "widget".into(), quantity: 2, unit_price: Cents::new(1250) },
                LineItem { sku: "gadget".into(), quantity: 1, unit_price: Cents::new(99_999) },
            ],
            total: Cents::new(102_499),
            tracking_number: Some("1Z999".into()),
            cancel_reason: None,
        }
    }

    #[test]
    fn tables_align_columns_and_trim_trailing_space() {
        let mut table = Table::new(&[("NAME", Align::Left), ("N", Align::Right), ("NOTE", Align::Left)]);
        table.row(["a".to_owned(), "1".to_owned(), String::new()]);
        table.row(["long name".to_owned(), "1,000".to_owned(), "x".to_owned()]);
        assert_eq!(table.render(""), "NAME           N  NOTE\na              1\nlong name  1,000  x\n");
    }

    #[test]
    fn order_details_show_items_totals_and_tracking() {
        let text = order_details(&OrderId::new("a1").unwrap(), &order(), Version::new(2));
        let expected = "\
Order a1  (shipped, version 2)
  customer  Ada
  tracking  1Z999
  SKU     QTY  UNIT PRICE  LINE TOTAL
  widget    2      $12.50      $25.00
  gadget    1     $999.99     $999.99
                    total   $1,024.99
";
        assert_eq!(text, expected);
    }

    #[test]
    fn differences_name_the_fields_that_differ() {
        let a = KnownOrder { order: order(), version: Version::new(2) };
        let mut b = a.clone();
        assert!(differences(&a, &b).is_empty());
        b.order.status = OrderStatus::Placed;
        b.version = Version::new(1);
        assert_eq!(differences(&a, &b), ["version: 2 -> 1", "status: shipped -> placed"]);
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(plural(1, "event"), "1 event");
        assert_eq!(plural(2_000, "event"), "2,000 events");
        assert_eq!(duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(duration(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(duration(Duration::from_millis(4_560)), "4.56 s");
        assert_eq!(rate(1_000, Duration::from_millis(500)), "2,000");
        assert_eq!(rate(1_000, Duration::from_secs(3)), "333");
        assert_eq!(per_second(445.231_1), "445");
        assert_eq!(per_second(1_234.6), "1,235");
        assert_eq!(per_second(f64::NAN), "-");
    }
}
