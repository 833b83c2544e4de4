//! The site lock: an advisory lock on `DIR/.smsrefresh.lock`, held by every run that will
//! save. The kernel releases it when the process dies, so a killed run never leaves the site
//! locked. A second saving run polls for up to `--lock-timeout`, then fails with exit 2.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::SiteError;

/// A held site lock; dropping it releases the lock.
#[derive(Debug)]
pub struct SiteLock {
    _file: File,
}

pub const LOCK_FILE: &str = ".smsrefresh.lock";

impl SiteLock {
    pub fn acquire(dir: &Path, timeout: Duration) -> Result<Self, SiteError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| SiteError::io(&path, e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => {
                    // Say who holds it, for a run that has to wait (best effort: the lock
                    // itself is what counts).
                    let mut file = file;
                    let _ = file.set_len(0).and_then(|()| {
                        file.rewind()?;
                        writeln!(
                            file,
                            "pid {} since {}",
                            std::process::id(),
                            crate::time::format_timestamp(crate::time::now())
                        )
                    });
                    // What a killed run left half-written is ours to remove now.
                    super::atomic::remove_stale_temp_files(dir);
                    return Ok(Self { _file: file });
                }
                Err(TryLockError::WouldBlock) if start.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(SiteError::Locked {
                        path: dir.to_path_buf(),
                        waited_s: timeout.as_secs_f64(),
                        holder: holder(&path),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(SiteError::io(&path, e)),
            }
        }
    }
}

/// Who holds the lock, as its holder wrote it (`pid 1234 since 2026-11-28T02:00:00Z`).
fn holder(path: &Path) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    match read
        .ok()
        .map(|_| text.trim())
        .filter(|t| t.starts_with("pid "))
    {
        Some(t) => t.chars().take(80).collect(),
        None => "a process that did not say which".into(),
    }
}
