//! The `smsrefresh` binary: parse the command line, hand the validated configuration to the
//! library, print the summary, map the outcome to an exit code (0 ok, 1 a command failed,
//! 2 the run could not start).

mod app;
mod cli;
mod progress;
mod shell;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: per-thread heaps with cheap cross-thread frees and small size classes. On the
/// refresh workload (millions of small credential and result allocations made by worker
/// threads and freed by others) it is markedly faster and leaner than glibc's allocator; see
/// docs/performance.md for the measurements.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match app::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("smsrefresh: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
