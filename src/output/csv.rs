//! CSV results: the JSON Lines fields as columns, with a header. List items are not
//! expanded (the `total` column counts them); cells that a spreadsheet would read as a
//! formula are neutralised with a leading `'`.

use std::io::{self, Write};

use super::ResultWriter;
use super::escape::neutralise_formula;
use super::jsonl::JsonResult;
use crate::exec::CommandResult;

const HEADER: [&str; 16] = [
    "line",
    "source",
    "command",
    "action",
    "server",
    "realm",
    "user",
    "session_id",
    "status",
    "message_id",
    "code",
    "message",
    "sessions",
    "dry_run",
    "total",
    "errtext_code",
];

pub struct CsvWriter<W: Write> {
    out: csv::Writer<W>,
    header_done: bool,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out),
            header_done: false,
        }
    }
}

impl<W: Write> ResultWriter for CsvWriter<W> {
    fn write(&mut self, r: &CommandResult) -> io::Result<()> {
        if !self.header_done {
            self.out.write_record(HEADER)?;
            self.header_done = true;
        }
        let j = JsonResult::of(r);
        let line = j.line.to_string();
        let sessions = j.sessions.to_string();
        let total = j.total.map(|t| t.to_string()).unwrap_or_default();
        let code = j.code.unwrap_or_default();
        let errtext_code = j.errtext_code.unwrap_or_default();
        let cells: [&str; 16] = [
            &line,
            j.source,
            j.command,
            j.action,
            j.server.unwrap_or(""),
            j.realm.unwrap_or(""),
            j.user.unwrap_or(""),
            j.session_id.unwrap_or(""),
            j.status.as_str(),
            j.message_id,
            &code,
            j.message,
            &sessions,
            if j.dry_run { "true" } else { "false" },
            &total,
            &errtext_code,
        ];
        self.out
            .write_record(cells.iter().map(|c| neutralise_formula(c).into_owned()))?;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if !self.header_done {
            self.out.write_record(HEADER)?;
            self.header_done = true;
        }
        self.out.flush()
    }
}
