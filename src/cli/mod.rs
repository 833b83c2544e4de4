//! The binary's side of smsrefresh: the command line ([`args`], clap types that stay here
//! and are converted once into the library's validated configurations), what each
//! subcommand does with them ([`dispatch`]), the interactive shell, the progress bar, the
//! audit report, the benchmark, and what goes to the terminal. The exit code is decided
//! here: 0 ok, 1 a command failed, 2 the run could not start.

mod args;
mod bench;
mod dispatch;
mod docs;
mod progress;
mod registry;
mod report;
mod shell;
mod signals;
mod store;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

/// Parses the command line, runs it, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match dispatch::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("smsrefresh: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
