//! The `smsrefresh` binary: everything it does beyond calling the library lives in
//! [`cli`]; this file only chooses the allocator and hands over.

mod cli;

use std::process::ExitCode;

/// mimalloc: per-thread heaps with cheap cross-thread frees and small size classes. On the
/// refresh workload (millions of small credential and result allocations made by worker
/// threads and freed by others) it is markedly faster and leaner than glibc's allocator; see
/// docs/performance.md for the measurements. Built with `no_thp`: asking for transparent huge
/// pages made a 1M-user load keep ~95 MB more resident and stall on compaction when memory
/// was fragmented; the cost is a longer per-command tail on very large stores (docs/decisions.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::main()
}
