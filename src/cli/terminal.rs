//! What the binary writes to the terminal besides results: standard output that survives a
//! closed pipe, configuration warnings and the end-of-run summary on standard error.

use std::io::{self, Write};

use smsrefresh::engine::Engine;
use smsrefresh::run::Summary;

/// Standard output that treats a closed pipe (`smsrefresh … | head`) as the reader having
/// seen enough: later writes are dropped and the run still finishes and saves.
pub struct PipeSafe<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> PipeSafe<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            closed: false,
        }
    }
}

impl<W: Write> Write for PipeSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.inner.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

/// Configuration warnings on standard error.
pub fn print_warnings(engine: &Engine) {
    for w in engine.warnings() {
        eprintln!("smsrefresh: warning: {w}");
    }
}

/// The end-of-run summary on standard error.
pub fn print_summary(s: &Summary) {
    let secs = s.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        s.commands() as f64 / secs
    } else {
        0.0
    };
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "{}smsrefresh: {} commands: {} ok, {} warning, {} error; {} sessions refreshed, {} terminated; \
         {:.3} s (load {:.3} s [registry {:.3} s, sessions {:.3} s], plan {:.3} s, \
         read {:.3} s + execute {:.3} s + write {:.3} s overlapping in {:.3} s, save {:.3} s, publish {:.3} s), \
         {:.0} commands/s, {} threads",
        if s.dry_run {
            "dry run: nothing was changed; "
        } else {
            ""
        },
        s.commands(),
        s.ok,
        s.warning,
        s.error,
        s.refreshed,
        s.terminated,
        secs,
        s.load.as_secs_f64(),
        s.load_parts.registry.as_secs_f64(),
        s.load_parts.sessions.as_secs_f64(),
        s.plan.as_secs_f64(),
        s.read.as_secs_f64(),
        s.execute.as_secs_f64(),
        s.write.as_secs_f64(),
        s.streamed.as_secs_f64(),
        s.save.as_secs_f64(),
        s.publish.as_secs_f64(),
        rate,
        s.threads
    );
    if s.store != "file:" {
        let _ = writeln!(
            err,
            "smsrefresh: store {}: changes {}",
            s.store,
            s.changes.describe()
        );
    }
    if let Some((shard, others)) = s.shard {
        let _ = writeln!(
            err,
            "smsrefresh: shard {shard}: {} lines ran here, {others} lines left to the other shards; merge the shards' --format jsonl results by `line`",
            s.commands()
        );
    }
    if s.purged > 0 {
        let _ = writeln!(
            err,
            "smsrefresh: the sweep purged {} expired sessions",
            s.purged
        );
    }
    if !s.skipped.is_empty() || s.excluded > 0 {
        let _ = writeln!(
            err,
            "smsrefresh: policy left out {} excluded users and {} users not in the registry",
            s.excluded,
            s.skipped.len()
        );
    }
}
