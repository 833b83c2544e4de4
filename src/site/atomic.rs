//! Replacing a file atomically: write a temporary file beside it, fsync it, rename it over
//! the target, fsync the directory. A crash at any point leaves either the old file or the
//! new one, never a mix; a temporary file left by a crash is removed by the next run that takes
//! the site lock (only the holder of the lock saves, so no live process owns it).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::error::SiteError;

/// Every temporary file being written now, so that a run stopped at once (a second
/// interrupt) removes them before it exits: no `*.tmp-PID` is left behind.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending(add: Option<&Path>, remove: Option<&Path>) {
    let mut list = PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(p) = remove {
        list.retain(|x| x != p);
    }
    if let Some(p) = add {
        list.push(p.to_path_buf());
    }
}

/// Creates the temporary file `tmp` and records it, as one step: a process stopping at once
/// holds the same lock from its removal of the files to its exit, so no file is created after
/// the removal and left behind.
fn create_pending(tmp: &Path) -> io::Result<File> {
    let mut list = PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let file = File::create(tmp)?;
    list.push(tmp.to_path_buf());
    Ok(file)
}

/// Set once this process has replaced a file: from then on, a run that is stopped at once
/// would leave results behind what it already saved, so it finishes publishing instead.
static REPLACED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process has already replaced a file (a snapshot, results, a report).
pub fn replaced_a_file() -> bool {
    REPLACED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Held while a file is renamed into place, and by a signal handler deciding whether to stop
/// at once: the decision and a rename never interleave, so a run is never stopped between
/// replacing the site and publishing its results.
static RENAMING: Mutex<()> = Mutex::new(());

/// What a file renamed into place is to the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The site's data or a run's results: once one is replaced, a run that stops at once
    /// would leave the rest behind it.
    Kept,
    /// A binary cache of a file that is unchanged: replacing it changes nothing a user sees
    /// (a cache names the file it was made from and is used only while that file is as it
    /// was), so it never counts as a save.
    Cache,
}

/// Renames `tmp` over `target` and, for kept data, records that a file was replaced, as one
/// step for [`hold_renames`].
fn rename_into_place(tmp: &Path, target: &Path, kind: Kind) -> io::Result<()> {
    let _held = RENAMING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    fs::rename(tmp, target)?;
    if kind == Kind::Kept {
        REPLACED.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    Ok(())
}

/// No file is renamed into place while this is held.
pub struct RenamesHeld {
    _held: std::sync::MutexGuard<'static, ()>,
}

impl RenamesHeld {
    /// Whether this process replaced a file before the hold began.
    pub fn replaced_a_file(&self) -> bool {
        replaced_a_file()
    }
}

/// Stops renames into place until the result is dropped: a process deciding to exit at once
/// holds it, so nothing is saved between its look at [`RenamesHeld::replaced_a_file`] and its
/// exit.
pub fn hold_renames() -> RenamesHeld {
    RenamesHeld {
        _held: RENAMING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    }
}

/// Removes every temporary file being written (for a process about to exit at once). No new
/// one is created while the result is held: hold it until the exit.
pub fn remove_pending_temp_files() -> PendingHeld {
    let list = PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for p in list.iter() {
        let _ = fs::remove_file(p);
    }
    PendingHeld { _held: list }
}

/// No temporary file is created while this is held.
pub struct PendingHeld {
    _held: std::sync::MutexGuard<'static, Vec<PathBuf>>,
}

/// The temporary name beside `path`: `DIR/.NAME.tmp-PID`.
fn temp_beside(path: &Path) -> (PathBuf, PathBuf, String) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path
        .file_name()
        .map_or_else(|| "snapshot".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.tmp-");
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    (dir, tmp, prefix)
}

/// A file written beside its target and renamed over it only by [`Staged::commit`]: until
/// then the target keeps its old content, and a dropped (or interrupted) one is removed.
/// A target that is not a regular file (`/dev/null`, a pipe, a terminal) is written
/// directly: it cannot be replaced, and must not be.
pub struct Staged {
    target: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
    file: Option<BufWriter<File>>,
    direct: bool,
}

impl Staged {
    /// Starts writing what will replace `target` (through a symbolic link, the file it
    /// names).
    pub fn create(target: &Path) -> Result<Self, SiteError> {
        let target = match fs::symlink_metadata(target) {
            Ok(m) if m.file_type().is_symlink() => {
                fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf())
            }
            _ => target.to_path_buf(),
        };
        let target = target.as_path();
        if fs::metadata(target).is_ok_and(|m| !m.is_file()) {
            let file = fs::OpenOptions::new()
                .write(true)
                .open(target)
                .map_err(|e| SiteError::io(target, e))?;
            return Ok(Self {
                target: target.to_path_buf(),
                tmp: PathBuf::new(),
                dir: PathBuf::new(),
                file: Some(BufWriter::with_capacity(1 << 16, file)),
                direct: true,
            });
        }
        let (dir, tmp, prefix) = temp_beside(target);
        remove_stale(&dir, &prefix);
        let file = create_pending(&tmp).map_err(|e| SiteError::io(&tmp, e))?;
        Ok(Self {
            target: target.to_path_buf(),
            tmp,
            dir,
            file: Some(BufWriter::with_capacity(1 << 16, file)),
            direct: false,
        })
    }

    /// Flushes, syncs and renames the file over its target.
    pub fn commit(mut self) -> Result<(), SiteError> {
        let out = self.file.take().expect("a staged file is committed once");
        if self.direct {
            return out
                .into_inner()
                .map(drop)
                .map_err(|e| SiteError::io(&self.target, e.into_error()));
        }
        let file = out
            .into_inner()
            .map_err(|e| SiteError::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| SiteError::io(&self.tmp, e))?;
        rename_into_place(&self.tmp, &self.target, Kind::Kept)
            .map_err(|e| SiteError::io(&self.target, e))?;
        pending(None, Some(&self.tmp));
        sync_dir(&self.dir);
        sync_deferred_dirs();
        Ok(())
    }
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().map_or(Ok(buf.len()), |f| f.write(buf))
    }

    /// Flushes, and for a file to be renamed, makes its bytes durable now: a run flushes
    /// its results once they are all written, before it saves the site, so that after the
    /// site's rename only the results' own rename is left — the moment a SIGKILL could find
    /// the site saved and its results not yet in place shrinks to two renames.
    fn flush(&mut self) -> io::Result<()> {
        let Some(out) = self.file.as_mut() else {
            return Ok(());
        };
        out.flush()?;
        if self.direct {
            return Ok(());
        }
        out.get_ref().sync_data()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.file.take().is_some() && !self.direct {
            let _ = fs::remove_file(&self.tmp);
            pending(None, Some(&self.tmp));
        }
    }
}

/// The environment variable that injects a crash half-way through a save (a test hook for
/// crash safety: `SMSREFRESH_FAULT=abort-mid-save`). Only builds with debug assertions (the
/// tests') or the `fault-injection` feature read it: a release build never aborts on it.
pub const FAULT_ENV: &str = "SMSREFRESH_FAULT";

/// Where an injected crash happens, if one is asked for.
pub struct CrashPoint(Option<usize>);

impl CrashPoint {
    /// Half-way through `total` items, when the fault hook is set.
    pub fn new(total: usize) -> Self {
        if !cfg!(any(debug_assertions, feature = "fault-injection")) {
            return Self(None);
        }
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

/// Replaces `path` (the site's data) with what `body` writes.
pub fn write(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), SiteError> {
    write_as(path, body, Kind::Kept)
}

/// Replaces the binary cache at `path` with what `body` writes: as [`write`], but it is no
/// save, so a second signal after it still stops the run at once.
pub fn write_cache(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), SiteError> {
    write_as(path, body, Kind::Cache)
}

fn write_as(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    kind: Kind,
) -> Result<(), SiteError> {
    let (dir, tmp, prefix) = temp_beside(path);
    let dir = dir.as_path();
    remove_stale(dir, &prefix);
    let result = (|| {
        let file = create_pending(&tmp).map_err(|e| SiteError::io(&tmp, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        body(&mut out).map_err(|e| SiteError::io(&tmp, e))?;
        let file = out
            .into_inner()
            .map_err(|e| SiteError::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| SiteError::io(&tmp, e))?;
        rename_into_place(&tmp, path, kind).map_err(|e| SiteError::io(path, e))?;
        match kind {
            // The site's own files: its folder is made durable once the run's results are
            // renamed too, so that a SIGKILL between the two renames is a matter of two
            // system calls, not of a directory fsync on a busy disk.
            Kind::Kept => defer_sync(dir),
            Kind::Cache => sync_dir(dir),
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    pending(None, Some(&tmp));
    result
}

/// Removes the temporary files a killed run left in a site folder (`.NAME.tmp-PID`). Called
/// by the holder of the site lock, so no live process is writing them.
pub fn remove_stale_temp_files(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.contains(".tmp-") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
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

/// Folders whose renames are not yet made durable (see [`write`]).
static UNSYNCED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn defer_sync(dir: &Path) {
    let mut list = UNSYNCED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !list.iter().any(|d| d == dir) {
        list.push(dir.to_path_buf());
    }
}

/// Makes every rename into place so far durable: called after a run's results are renamed
/// (by [`Staged::commit`]) and once more before the process exits.
pub fn sync_deferred_dirs() {
    let dirs = std::mem::take(
        &mut *UNSYNCED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for d in &dirs {
        sync_dir(d);
    }
}

/// Makes a rename durable. Failure is ignored: some filesystems cannot fsync a directory,
/// and the rename itself has already happened.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
