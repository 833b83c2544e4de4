//! The pdadmin text format: for each command an echo line `pdadmin> <command>`, the list
//! items if any, then the message line `<ID>   <text>`, with ` (0x%08x)` after warnings and
//! errors, as IBM's message pages print them.

use std::io::{self, Write};

use super::ResultWriter;
use super::escape::escape;
use crate::command::{Action, token::quote};
use crate::exec::{CommandResult, Item, Status};

pub struct PdadminWriter<W: Write> {
    out: W,
}

impl<W: Write> PdadminWriter<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

/// Renders one result as pdadmin text lines (each ending in `\n`).
pub fn render(r: &CommandResult, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "pdadmin> {}", escape(&r.command_text()))?;
    render_items(r, out)?;
    if let Some(a) = &r.outcome.answer {
        // An appliance's answer: its pdadmin text, line by line, as it printed it.
        for line in a.text.lines() {
            writeln!(out, "{}", escape(line))?;
        }
        return Ok(());
    }
    // `server list` prints the names alone, as pdadmin does.
    if r.action == Action::ServerList && r.status() == Status::Ok {
        return Ok(());
    }
    render_message(r, "", out)
}

/// Renders one result as the appliance's REST API answers it (`serve`): no echo line, the
/// items, then the message line always — prefixed `Error: ` for a failed command, as pdadmin
/// prints errors — so that a target reads the same status, message ID and code from it as
/// the run that made it.
pub fn render_answer(r: &CommandResult, out: &mut impl Write) -> io::Result<()> {
    render_items(r, out)?;
    let prefix = if r.status() == Status::Error {
        "Error: "
    } else {
        ""
    };
    render_message(r, prefix, out)
}

/// The message line: `ID   text`, and the status code after warnings and errors.
fn render_message(r: &CommandResult, prefix: &str, out: &mut impl Write) -> io::Result<()> {
    let m = r.outcome.message;
    write!(out, "{prefix}{}   {}", m.id, escape(&r.outcome.text()))?;
    if let Some(looked_up) = r.outcome.looked_up {
        write!(out, " ({})", looked_up.code_hex())?;
    } else if r.status() != Status::Ok {
        write!(out, " ({})", m.code_hex())?;
    }
    writeln!(out)
}

/// A list's items, one per line.
fn render_items(r: &CommandResult, out: &mut impl Write) -> io::Result<()> {
    if let Some(items) = &r.outcome.items {
        for item in items {
            match item {
                Item::Named(n) => writeln!(out, "{}", escape(&n.name))?,
                Item::Session(s) => writeln!(
                    out,
                    "{}  user={}  replica_set={}  server={}  created={}  last_access={}",
                    escape(&s.id),
                    escape(&quote(&s.user)),
                    escape(&s.replica_set),
                    escape(&s.server),
                    s.created,
                    s.last_access
                )?,
            }
        }
    }
    Ok(())
}

impl<W: Write> ResultWriter for PdadminWriter<W> {
    fn write(&mut self, r: &CommandResult) -> io::Result<()> {
        render(r, &mut self.out)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
