//! The results: a cell per side and workload (one figure per run), its median, the ratios, and the markdown
//! table they print as.

use crate::BenchError;
use crate::store::Side;

/// What a row measures, and the aim for it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Aim {
    /// Events per second; composable-rust at least this fraction of the pgbench ceiling.
    OfCeiling(f64),
    /// Events per second; composable-rust at least this many.
    AtLeast(f64),
    /// Bytes per event; composable-rust at most this many.
    AtMost(f64),
}

/// A side's figures in one row: one per run, or why it failed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Cell {
    pub(crate) runs: Vec<f64>,
    pub(crate) error: Option<String>,
}

impl Cell {
    pub(crate) fn median(&self) -> Option<f64> {
        if self.error.is_some() || self.runs.is_empty() {
            return None;
        }
        let mut sorted = self.runs.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        Some(if sorted.len() % 2 == 1 { sorted[mid] } else { f64::midpoint(sorted[mid - 1], sorted[mid]) })
    }
}

/// One row of the table.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) workload: String,
    pub(crate) aim: Aim,
    pub(crate) cells: [Cell; 4],
}

impl Row {
    pub(crate) fn new(workload: impl Into<String>, aim: Aim) -> Self {
        Self { workload: workload.into(), aim, cells: Default::default() }
    }

    pub(crate) fn failed(&self, side: Side) -> bool {
        self.cells[side.index()].error.is_some()
    }

    pub(crate) fn record(&mut self, side: Side, outcome: Result<f64, BenchError>) {
        let cell = &mut self.cells[side.index()];
        match outcome {
            Ok(value) => {
                println!("  {:<16} {:<20} {}", side.name(), self.aim.show(value), self.workload);
                cell.runs.push(value);
            }
            Err(e) => {
                println!("  {:<16} failed: {e}", side.name());
                cell.error = Some(e.to_string());
            }
        }
    }

    /// composable-rust's median over pgbench's.
    pub(crate) fn of_ceiling(&self) -> Option<f64> {
        let ours = self.cells[Side::Ours.index()].median()?;
        let ceiling = self.cells[Side::Pgbench.index()].median()?;
        (ceiling > 0.0).then(|| ours / ceiling)
    }

    /// composable-rust's median over the best peer's: the faster one, or for sizes the smaller one.
    pub(crate) fn of_best_peer(&self) -> Option<f64> {
        let ours = self.cells[Side::Ours.index()].median()?;
        let peers = [Side::PostgresEs, Side::Esrs].map(|side| self.cells[side.index()].median());
        let best = match self.aim {
            Aim::AtMost(_) => peers.into_iter().flatten().reduce(f64::min)?,
            Aim::OfCeiling(_) | Aim::AtLeast(_) => peers.into_iter().flatten().reduce(f64::max)?,
        };
        (best > 0.0).then(|| ours / best)
    }

    pub(crate) fn aim_cell(&self) -> String {
        let ours = self.cells[Side::Ours.index()].median();
        let (aim, met) = match self.aim {
            Aim::OfCeiling(fraction) => (format!("≥ {fraction} of ceiling"), self.of_ceiling().map(|r| r >= fraction)),
            Aim::AtLeast(rate) => (format!("≥ {}", self.aim.show(rate)), ours.map(|o| o >= rate)),
            Aim::AtMost(bytes) => (format!("≤ {}", self.aim.show(bytes)), ours.map(|o| o <= bytes)),
        };
        match met {
            Some(true) => format!("{aim}: met"),
            Some(false) => format!("{aim}: **not met**"),
            None => aim,
        }
    }
}

impl Aim {
    pub(crate) fn show(self, value: f64) -> String {
        match self {
            Self::OfCeiling(_) | Self::AtLeast(_) => format!("{}/s", thousands(value)),
            Self::AtMost(_) => format!("{value:.0} B"),
        }
    }
}

/// `1234567.8` as `1,234,568`.
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}"))
}

pub(crate) fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| workload | pgbench, same rows | composable-rust | postgres-es | esrs | ours / ceiling | ours / best peer | aim |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for row in rows {
        let cells = Side::ALL.map(|side| {
            let cell = &row.cells[side.index()];
            match (&cell.error, cell.median()) {
                (Some(_), _) => "failed".to_owned(),
                (None, Some(median)) => row.aim.show(median),
                (None, None) => "–".to_owned(),
            }
        });
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.workload,
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            ratio(row.of_ceiling()),
            ratio(row.of_best_peer()),
            row.aim_cell()
        );
    }
    println!();
    for row in rows {
        for side in Side::ALL {
            if let Some(e) = &row.cells[side.index()].error {
                println!("- {}: {} failed: {e}", row.workload, side.name());
            }
        }
    }
}

pub(crate) fn print_runs(rows: &[Row]) {
    println!("Every run (the table shows the medians):");
    println!();
    for row in rows {
        let sides: Vec<String> = Side::ALL
            .into_iter()
            .filter(|side| !row.cells[side.index()].runs.is_empty())
            .map(|side| {
                let runs: Vec<String> = row.cells[side.index()].runs.iter().map(|v| row.aim.show(*v)).collect();
                format!("{} {}", side.name(), runs.join(" / "))
            })
            .collect();
        println!("- {}: {}", row.workload, sides.join("; "));
    }
}

#[cfg(test)]
mod tests {
    use super::{Aim, Cell, Row, thousands};
    use crate::store::Side;

    #[test]
    fn a_median_of_an_even_count_is_the_mean_of_the_middle_two_and_a_failed_cell_has_none() {
        let cell = |runs: &[f64]| Cell { runs: runs.to_vec(), error: None };
        assert_eq!(cell(&[3.0, 1.0, 2.0]).median(), Some(2.0));
        assert_eq!(cell(&[4.0, 1.0, 3.0, 2.0]).median(), Some(2.5));
        assert_eq!(cell(&[]).median(), None);
        assert_eq!(Cell { runs: vec![1.0], error: Some("down".into()) }.median(), None);
    }

    #[test]
    fn ratios_divide_by_the_faster_peer_for_rates_and_the_smaller_for_sizes() {
        let mut rate = Row::new("w", Aim::OfCeiling(0.9));
        for (side, value) in [(Side::Pgbench, 100.0), (Side::Ours, 90.0), (Side::PostgresEs, 30.0), (Side::Esrs, 45.0)]
        {
            rate.cells[side.index()].runs.push(value);
        }
        assert_eq!(rate.of_ceiling(), Some(0.9));
        assert_eq!(rate.of_best_peer(), Some(2.0));
        assert_eq!(rate.aim_cell(), "≥ 0.9 of ceiling: met");

        let mut size = Row::new("s", Aim::AtMost(220.0));
        for (side, value) in [(Side::Ours, 300.0), (Side::PostgresEs, 250.0), (Side::Esrs, 400.0)] {
            size.cells[side.index()].runs.push(value);
        }
        assert_eq!(size.of_ceiling(), None);
        assert_eq!(size.of_best_peer(), Some(1.2));
        assert_eq!(size.aim_cell(), "≤ 220 B: **not met**");
    }

    #[test]
    fn thousands_are_separated_by_commas() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }
}
