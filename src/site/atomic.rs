//! Replacing a file atomically: write a temporary file beside it, fsync it, rename it over
//! the target, fsync the directory. A crash at any point leaves either the old file or the
//! new one, never a mix; a temporary file left by a crash is removed by the next save (only
//! the holder of the site lock saves, so no live process owns it).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::error::SiteError;

/// The environment variable that injects a crash half-way through a save (a test hook for
/// crash safety: `SMSREFRESH_FAULT=abort-mid-save`).
pub const FAULT_ENV: &str = "SMSREFRESH_FAULT";

/// Where an injected crash happens, if one is asked for.
pub struct CrashPoint(Option<usize>);

impl CrashPoint {
    /// Half-way through `total` items, when the fault hook is set.
    pub fn new(total: usize) -> Self {
        Self(match std::env::var(FAULT_ENV).as_deref() {
            Ok("abort-mid-save") => Some(total / 2),
            _ => None,
        })
    }

    /// Aborts the process (after flushing what was written) at the chosen item.
    pub fn check(&self, written: usize, out: &mut dyn Write) {
        if self.0 == Some(written) {
            let _ = out.flush();
            std::process::abort();
        }
    }
}

/// Replaces `path` with what `body` writes.
pub fn write(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), SiteError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "snapshot".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.tmp-");
    remove_stale(dir, &prefix);
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| SiteError::io(&tmp, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        body(&mut out).map_err(|e| SiteError::io(&tmp, e))?;
        let file = out
            .into_inner()
            .map_err(|e| SiteError::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| SiteError::io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| SiteError::io(path, e))?;
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn remove_stale(dir: &Path, prefix: &str) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Makes a rename durable. Failure is ignored: some filesystems cannot fsync a directory,
/// and the rename itself has already happened.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
