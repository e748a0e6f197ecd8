//! Feeds arbitrary bytes to the archive reader and its checks: whatever the input, reading must end with a
//! record stream or an error naming a line, never a panic, and never hold more than the line limit.
#![no_main]

use std::sync::OnceLock;

use composable_rust_archive::{ArchiveError, ArchiveReader, ReadLimits};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(error) => panic!("cannot build a tokio runtime: {error}"),
    })
}

fuzz_target!(|data: &[u8]| {
    // A small limit, so that the fuzzer also meets lines that are too long.
    let limits = ReadLimits { max_line_bytes: 4096 };
    runtime().block_on(async {
        let mut reader = ArchiveReader::new(data, limits, "fuzz input");
        let mut lines = 0u64;
        loop {
            match reader.next_record().await {
                Ok(Some(_)) => lines += 1,
                Ok(None) => {
                    let _ = reader.finish();
                    break;
                }
                Err(error) => {
                    // Every problem with the input names a line at or after the last good one.
                    if let ArchiveError::Invalid { line, .. } = &error {
                        assert!(*line > lines, "error at line {line} after {lines} good lines");
                    }
                    let _ = error.to_string();
                    break;
                }
            }
        }
    });
});
