//! Result rendering: pdadmin text, JSON Lines and CSV (contract §7), behind one trait so
//! that the run loop does not care which it writes.

pub(crate) mod csv;
pub(crate) mod escape;
pub(crate) mod jsonl;
pub mod pdadmin;

use std::io::{self, Write};

use crate::exec::CommandResult;

/// The output format of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Pdadmin,
    Jsonl,
    Csv,
}

/// Renders results into `out` in `format` (CSV without its header). Pure and independent
/// per slice, so the batch engine renders chunks in parallel and writes them in order.
pub fn render(format: Format, results: &[CommandResult], out: &mut Vec<u8>) {
    match format {
        Format::Pdadmin => {
            for r in results {
                let _ = pdadmin::render(r, out);
            }
        }
        Format::Jsonl => {
            for r in results {
                let _ = jsonl::render(r, out);
            }
        }
        Format::Csv => csv::render(results, out),
    }
}

/// The line that opens a dry run's pdadmin output (contract §13).
pub const DRY_RUN_LINE: &[u8] = b"# dry run: nothing was changed\n";

/// What comes before the first result: the CSV header (which has a `dry_run` column), or a
/// dry run's marker line in pdadmin text. JSON Lines results say `dry_run` each.
pub fn header(format: Format, dry_run: bool) -> &'static [u8] {
    match format {
        Format::Csv => csv::HEADER_LINE,
        Format::Pdadmin if dry_run => DRY_RUN_LINE,
        _ => b"",
    }
}

/// Writes results, one command at a time, in input order.
pub trait ResultWriter {
    fn write(&mut self, result: &CommandResult) -> io::Result<()>;
    /// Flushes what is buffered.
    fn finish(&mut self) -> io::Result<()>;
}

/// A writer for `format` over `out`.
pub fn writer<'a, W: Write + 'a>(format: Format, out: W) -> Box<dyn ResultWriter + 'a> {
    match format {
        Format::Pdadmin => Box::new(pdadmin::PdadminWriter::new(out)),
        Format::Jsonl => Box::new(jsonl::JsonlWriter::new(out)),
        Format::Csv => Box::new(csv::CsvWriter::new(out)),
    }
}
