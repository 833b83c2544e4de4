//! The binary's side of smsrefresh: the command line ([`args`], clap types that stay here
//! and are converted once into the library's validated configurations), what each
//! subcommand does with them ([`dispatch`]), the interactive shell, the progress bar, the
//! audit report, the benchmark, and what goes to the terminal. The exit code is decided
//! here: 0 ok, 1 a command failed, 2 the run could not start.

mod args;
mod bench;
mod dispatch;
mod docs;
mod open;
mod progress;
mod registry;
mod report;
mod serve;
mod shell;
mod signals;
mod store;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

/// Keeps `value` until the process exits instead of dropping it. A loaded site holds
/// millions of small allocations (sessions, credentials, index entries) that take seconds to
/// free one by one; the operating system reclaims the whole address space at exit at once.
/// Each subcommand calls this once, as its last use of what it loaded, just before it
/// returns its exit code. Nothing is left unwritten by it: files are flushed and closed by
/// their own owners before.
pub fn free_at_exit<T>(value: T) {
    std::mem::forget(value);
}

/// Parses the command line, runs it, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let outcome = dispatch::dispatch(cli);
    // What the subcommand saved is made durable before the process exits (a run defers its
    // site folder's fsync until its results are in place too).
    smsrefresh::site::sync_deferred_dirs();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("smsrefresh: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
