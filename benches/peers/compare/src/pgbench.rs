//! The ceiling: `benches/pgbench/run.sh` (pgbench -M prepared on composable-rust's own table, every migration
//! applied, a fresh database per call) with rows shaped like the benchmark's: the same 45-byte payload, NULL
//! metadata.

use std::process::Command;

use crate::BenchError;
use crate::db::Server;

/// The pgbench runner of the main repository, found from this project's directory.
const RUN_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pgbench/run.sh");

/// One pgbench run: `script` (`single`, `unnest100` or `unnest1000`) with `clients` for `seconds`, inserting
/// `payload`; returns rows per second.
pub(crate) async fn rows_per_second(
    server: &Server,
    script: &'static str,
    clients: u32,
    seconds: u64,
    payload: &[u8],
) -> Result<f64, BenchError> {
    let (host, port, user) = server.host_port_user();
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    let mut command = Command::new("bash");
    command
        .arg(RUN_SH)
        .arg(seconds.to_string())
        .env("PGBENCH_PAYLOAD", hex)
        .env("PGBENCH_METADATA", "0")
        .env("PGBENCH_RUNS", format!("{script} {clients}"))
        .env("PGHOST", host)
        .env("PGPORT", port.to_string())
        .env("PGUSER", user);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| BenchError::new(format!("the pgbench task died: {e}")))?
        .map_err(|e| BenchError::new(format!("cannot run {RUN_SH}: {e} (bash, psql and pgbench must be installed)")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(BenchError::new(format!(
            "pgbench: {RUN_SH} failed ({}):\n{}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    parse_rows_per_second(&stdout)
        .ok_or_else(|| BenchError::new(format!("pgbench: no `rows/s=` figure in the output of {RUN_SH}:\n{stdout}")))
}

/// The `rows/s=` figure of run.sh's first result line.
fn parse_rows_per_second(output: &str) -> Option<f64> {
    output.lines().find_map(|line| line.split_once("rows/s=")).and_then(|(_, rate)| rate.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::parse_rows_per_second;

    #[test]
    fn the_rate_is_read_from_run_sh_result_line() {
        let out = "single      clients=8  tps=   17014.2  rows/s=       17014\n";
        assert_eq!(parse_rows_per_second(out), Some(17014.0));
        assert_eq!(parse_rows_per_second("unnest100   clients=1  tps=1551.7  rows/s=155173\n"), Some(155_173.0));
        assert_eq!(parse_rows_per_second("pgbench: error\n"), None);
    }
}
