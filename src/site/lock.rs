//! The site lock: an advisory lock on `DIR/.smsrefresh.lock`, held by every run that will
//! save. The kernel releases it when the process dies, so a killed run never leaves the site
//! locked. A second saving run polls for up to `--lock-timeout`, then fails with exit 2.

use std::fs::{File, OpenOptions, TryLockError};
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
                Ok(()) => return Ok(Self { _file: file }),
                Err(TryLockError::WouldBlock) if start.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(SiteError::Locked {
                        path: dir.to_path_buf(),
                        waited_s: timeout.as_secs(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(SiteError::io(&path, e)),
            }
        }
    }
}
