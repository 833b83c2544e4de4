//! SIGINT and SIGTERM during `run` (contract §13). The first asks the run to stop starting
//! commands: the running ones finish, what they changed is saved, exactly their results are
//! written, and the exit status is 130 or 143. A second one stops the process at once,
//! without saving: its temporary files are removed, and since results are only published
//! after the site is saved, no result claims a change that was not kept. Once the site is
//! saved, a second signal only lets the run finish publishing its results. A signal that
//! comes before the first command (while inputs open, the lock is awaited, the site loads or
//! the policy resolves) stops the process at once: nothing has changed yet, and a load can
//! take seconds that a user pressing Ctrl-C should not wait for.

use std::io::Write;

use anyhow::Result;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use smsrefresh::run::Interrupt;

/// The name of a signal this module handles.
pub fn name(signal: i32) -> &'static str {
    if signal == SIGTERM {
        "SIGTERM"
    } else {
        "SIGINT"
    }
}

/// Handles SIGINT and SIGTERM on a thread of their own from now on.
pub fn install(interrupt: Interrupt) -> Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if interrupt.stop_before_changes() {
                    stop_at_once(
                        signal,
                        smsrefresh::site::hold_renames(),
                        "stopped before any command ran; nothing was changed and no result was written",
                    );
                }
                if interrupt.requested().is_none() {
                    interrupt.request(signal);
                    let _ = writeln!(
                        std::io::stderr(),
                        "smsrefresh: {}: finishing the commands that are running, then saving; \
                         a second signal stops at once without saving",
                        name(signal)
                    );
                    continue;
                }
                // No file is renamed into place from this look until the exit: a save that
                // lands between them would leave the site changed without results.
                let held = smsrefresh::site::hold_renames();
                if held.replaced_a_file() {
                    drop(held);
                    // The site is saved already: stopping now would leave results behind
                    // it. Publishing them takes a moment; the run ends right after.
                    let _ = writeln!(
                        std::io::stderr(),
                        "smsrefresh: {}: the site is saved; finishing writing its results",
                        name(signal)
                    );
                    continue;
                }
                stop_at_once(
                    signal,
                    held,
                    "stopped at once; nothing was saved and no result was written",
                );
            }
        })?;
    Ok(())
}

/// Ends the process now: no file is renamed into place from here on (`held`), the temporary
/// files being written (a snapshot, a cache, the results) are removed, and the exit status
/// says which signal it was.
fn stop_at_once(signal: i32, held: smsrefresh::site::RenamesHeld, what: &str) -> ! {
    let _no_new_files = smsrefresh::site::remove_pending_temp_files();
    let _ = writeln!(std::io::stderr(), "smsrefresh: {}: {what}", name(signal));
    // Held until the process is gone: exit never returns, so the guard is never dropped.
    let _held = held;
    std::process::exit(128 + signal);
}
