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
    // `server list` prints the names alone, as pdadmin does.
    if r.action == Action::ServerList && r.status() == Status::Ok {
        return Ok(());
    }
    let m = r.outcome.message;
    write!(out, "{}   {}", m.id, escape(&r.outcome.text()))?;
    if let Some(looked_up) = r.outcome.looked_up {
        write!(out, " ({})", looked_up.code_hex())?;
    } else if r.status() != Status::Ok {
        write!(out, " ({})", m.code_hex())?;
    }
    writeln!(out)
}

impl<W: Write> ResultWriter for PdadminWriter<W> {
    fn write(&mut self, r: &CommandResult) -> io::Result<()> {
        render(r, &mut self.out)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
