//! The progress bar (indicatif) on standard error: input bytes read, commands done, their
//! rate and an ETA, advanced once per chunk so that it costs nothing per command.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use smsrefresh::run::Progress;

use crate::cli::ProgressArg;

pub struct Bar {
    bar: ProgressBar,
    commands: std::sync::atomic::AtomicU64,
}

impl Bar {
    /// A bar, or `None` when it should not show (`never`, or `auto` off a terminal).
    pub fn new(mode: ProgressArg) -> Option<Self> {
        let show = match mode {
            ProgressArg::Never => false,
            ProgressArg::Always => true,
            ProgressArg::Auto => std::io::stderr().is_terminal(),
        };
        if !show {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(Self {
            bar,
            commands: 0.into(),
        })
    }
}

impl Progress for Bar {
    fn begin(&self, total_bytes: u64) {
        self.bar.set_length(total_bytes);
    }

    fn advance(&self, commands: u64, bytes_so_far: u64) {
        use std::sync::atomic::Ordering;
        let done = self.commands.fetch_add(commands, Ordering::Relaxed) + commands;
        let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
        if bytes_so_far > self.bar.length().unwrap_or(0) {
            self.bar.set_length(bytes_so_far);
        }
        self.bar.set_position(bytes_so_far);
        self.bar
            .set_message(format!("{done} commands, {:.0}/s", done as f64 / secs));
    }

    fn end(&self) {
        self.bar.finish_and_clear();
    }
}
