//! CSV results: the JSON Lines fields as columns, with a header. List items are not
//! expanded (the `total` column counts them); cells that a spreadsheet would read as a
//! formula are neutralised with a leading `'`, and control characters are escaped as in
//! the pdadmin text.

use std::io::{self, Write};

use super::ResultWriter;
use super::escape::{escape, neutralise_formula};
use super::jsonl::JsonResult;
use crate::exec::CommandResult;

/// The header line.
pub const HEADER_LINE: &[u8] = b"line,source,command,action,server,realm,user,session_id,status,message_id,code,message,sessions,dry_run,total,errtext_code\n";

/// Renders result rows (no header) into `out`.
pub fn render(results: &[CommandResult], out: &mut Vec<u8>) {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    for r in results {
        let j = JsonResult::of(r);
        let line = j.line.to_string();
        let sessions = j.sessions.map(|n| n.to_string()).unwrap_or_default();
        let total = j.total.map(|t| t.to_string()).unwrap_or_default();
        let code = j.code.unwrap_or_default();
        let errtext_code = j.errtext_code.unwrap_or_default();
        let cells: [&str; 16] = [
            &line,
            j.source,
            &j.command,
            j.action,
            j.server.unwrap_or(""),
            j.realm.unwrap_or(""),
            j.user.unwrap_or(""),
            j.session_id.unwrap_or(""),
            j.status.as_str(),
            j.message_id.unwrap_or(""),
            &code,
            &j.message,
            &sessions,
            if j.dry_run { "true" } else { "false" },
            &total,
            &errtext_code,
        ];
        // Writing into a Vec cannot fail.
        let _ = w.write_record(
            cells
                .iter()
                .map(|c| neutralise_formula(&escape(c)).into_owned()),
        );
    }
    let _ = w.flush();
}

pub struct CsvWriter<W: Write> {
    out: W,
    header_done: bool,
    buf: Vec<u8>,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            header_done: false,
            buf: Vec::new(),
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_done {
            self.out.write_all(HEADER_LINE)?;
            self.header_done = true;
        }
        Ok(())
    }
}

impl<W: Write> ResultWriter for CsvWriter<W> {
    fn write(&mut self, r: &CommandResult) -> io::Result<()> {
        self.header()?;
        self.buf.clear();
        render(std::slice::from_ref(r), &mut self.buf);
        self.out.write_all(&self.buf)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.header()?;
        self.out.flush()
    }
}
