//! Progress (indicatif) on standard error across the whole run: a spinner while the site
//! loads and the plan resolves, then a bar of input bytes read with the commands done, their
//! rate and an ETA from the bytes left (advanced once per chunk, so it costs nothing per
//! command), then a spinner while the site saves; and a spinner with the entries read while
//! a live directory is searched.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use smsrefresh::directory::ReadProgress;
use smsrefresh::run::{Phase, Progress};

use super::args::ProgressArg;

pub struct Bar {
    bar: ProgressBar,
    /// Drawing to a log, not a terminal: keep the last frame.
    log: bool,
    commands: std::sync::atomic::AtomicU64,
    /// When execution began: the rate is over the execution, not the load.
    executing_since: std::sync::OnceLock<std::time::Instant>,
    /// With a target: requests in flight and retried so far, shown beside the commands sent.
    remote: parking_lot::Mutex<Option<(u64, u64)>>,
}

/// Where progress is drawn: standard error when it is a terminal, plain lines once a second
/// for `always` off a terminal (a log file), nowhere otherwise.
fn draw_target(mode: ProgressArg) -> Option<(ProgressDrawTarget, bool)> {
    let terminal = std::io::stderr().is_terminal();
    match mode {
        ProgressArg::Never => None,
        ProgressArg::Auto if !terminal => None,
        _ if terminal => Some((ProgressDrawTarget::stderr(), terminal)),
        _ => Some((
            ProgressDrawTarget::term_like_with_hz(Box::new(LogLines::default()), 1),
            terminal,
        )),
    }
}

/// Entries read from a live directory, shown from the first report on.
struct DirectorySpinner {
    bar: ProgressBar,
    log: bool,
}

impl ReadProgress for DirectorySpinner {
    fn entries(&self, read: u64) {
        if self.bar.is_hidden() || self.bar.position() == 0 {
            self.bar
                .enable_steady_tick(std::time::Duration::from_millis(200));
        }
        self.bar.set_position(read.max(1));
        self.bar
            .set_message(format!("reading the directory: {read} entries"));
    }

    fn done(&self) {
        if self.log && self.bar.position() > 0 {
            self.bar.finish();
        } else {
            self.bar.finish_and_clear();
        }
    }
}

/// A spinner for a long directory read, or `None` when progress should not show.
pub fn directory_spinner(mode: ProgressArg) -> Option<std::sync::Arc<dyn ReadProgress>> {
    let (target, terminal) = draw_target(mode)?;
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    Some(std::sync::Arc::new(DirectorySpinner {
        bar,
        log: !terminal,
    }))
}

impl Bar {
    /// A bar, or `None` when it should not show (`never`, or `auto` off a terminal).
    pub fn new(mode: ProgressArg) -> Option<Self> {
        let (target, terminal) = draw_target(mode)?;
        let bar = ProgressBar::with_draw_target(Some(0), target);
        Some(Self {
            bar,
            log: !terminal,
            commands: 0.into(),
            executing_since: std::sync::OnceLock::new(),
            remote: parking_lot::Mutex::new(None),
        })
    }
}

/// A "terminal" that appends each frame as a line: no cursor movement, no escapes.
#[derive(Debug, Default)]
struct LogLines {
    line: std::sync::Mutex<String>,
}

impl LogLines {
    fn emit(&self) -> std::io::Result<()> {
        use std::io::Write;
        let mut line = self
            .line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !line.trim().is_empty() {
            writeln!(std::io::stderr(), "{}", line.trim_end())?;
        }
        line.clear();
        Ok(())
    }
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        100
    }

    fn height(&self) -> u16 {
        10
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)?;
        self.emit()
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        if s != "\r" {
            self.line
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push_str(s);
        }
        Ok(())
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        self.emit()
    }
}

/// The spinner of the phases that have no measure of work: what is happening, and for how long.
fn spinner(what: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!("{{spinner}} [{{elapsed_precise}}] {what} {{msg}}"))
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Progress for Bar {
    fn phase(&self, phase: Phase) {
        let tick = std::time::Duration::from_millis(if self.log { 1000 } else { 120 });
        match phase {
            Phase::Load => {
                self.bar.set_style(spinner("loading the site"));
                self.bar.enable_steady_tick(tick);
            }
            Phase::Plan => self.bar.set_style(spinner("resolving the policy")),
            Phase::Execute => {
                self.bar.disable_steady_tick();
                self.bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] executing {wide_bar} {bytes}/{total_bytes} {msg} ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            }
            Phase::Save => {
                self.bar.set_style(spinner("saving the site"));
                let done = self.commands.load(std::sync::atomic::Ordering::Relaxed);
                self.bar.set_message(format!("after {done} commands"));
                self.bar.enable_steady_tick(tick);
            }
        }
        // Each phase shows at once, however short.
        self.bar.tick();
    }

    fn begin(&self, total_bytes: u64) {
        self.bar.set_length(total_bytes);
        // The ETA is the bytes left at the execution's own rate, not the load's.
        self.bar.reset_eta();
        let _ = self.executing_since.set(std::time::Instant::now());
    }

    fn advance(&self, commands: u64, bytes_so_far: u64) {
        use std::sync::atomic::Ordering;
        let done = self.commands.fetch_add(commands, Ordering::Relaxed) + commands;
        let secs = self
            .executing_since
            .get()
            .map_or_else(|| self.bar.elapsed(), std::time::Instant::elapsed)
            .as_secs_f64()
            .max(1e-3);
        if bytes_so_far > self.bar.length().unwrap_or(0) {
            self.bar.set_length(bytes_so_far);
        }
        // The message first: the position's draw then shows both.
        let rate = done as f64 / secs;
        self.bar.set_message(match *self.remote.lock() {
            Some((in_flight, retried)) => format!(
                "{done} commands sent, {in_flight} in flight, {retried} retried, {rate:.0}/s"
            ),
            None => format!("{done} commands, {rate:.0}/s"),
        });
        self.bar.set_position(bytes_so_far);
    }

    fn remote(&self, in_flight: u64, retried: u64) {
        *self.remote.lock() = Some((in_flight, retried));
    }

    fn end(&self) {
        self.bar.disable_steady_tick();
        if self.log {
            self.bar.finish();
        } else {
            self.bar.finish_and_clear();
        }
    }
}
