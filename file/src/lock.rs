//! The single-writer lock: an advisory lock on `<dir>/LOCK`, held for as long as the store is open.
//!
//! The operating system releases it when its holder exits, however it exits, so a crashed process never
//! leaves the store locked. The holder writes its process id into the file so that the error a second
//! opener gets can name it. The lock is per open file, so a second `FileEventStore` on the same directory in
//! the same process is refused too: two stores would each assign the same positions.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use composable_rust_core::EventStoreError;
use fs4::fs_std::FileExt;

/// The name of the lock file in a store's directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of the store in `dir`, or says who holds it.
    ///
    /// # Errors
    /// [`EventStoreError::InUse`] when another process (or another store in this one) holds it;
    /// [`EventStoreError::Backend`] when the lock file cannot be opened or locked.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, EventStoreError> {
        let path = dir.join(LOCK_FILE);
        let failed = |e: std::io::Error| EventStoreError::backend(format!("lock {}", path.display()), e);
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(failed)?;
        if !file.try_lock_exclusive().map_err(failed)? {
            return Err(EventStoreError::InUse { location: dir.display().to_string(), holder: holder(&mut file) });
        }
        let pid = std::process::id();
        file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{pid}")).map_err(failed)?;
        Ok(Self { _file: file })
    }
}

/// Who holds the lock, from the process id its holder wrote.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let pid = file.take(32).read_to_string(&mut text).ok().and_then(|_| text.trim().parse::<u32>().ok());
    match pid {
        Some(pid) if pid == std::process::id() => format!("this process (pid {pid}), by another FileEventStore"),
        Some(pid) => format!("another process (pid {pid})"),
        None => "another process".to_owned(),
    }
}
