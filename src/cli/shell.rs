//! `smsrefresh shell`: a `pdadmin> ` prompt over a loaded site. Commands follow the
//! command-file rules (continuations, comments, `exit` / `quit`); the site is saved once,
//! when the shell ends, and locked while it runs.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::sync::Arc;

use anyhow::Result;

use smsrefresh::exec::Status;
use smsrefresh::input::CommandSource;
use smsrefresh::output::pdadmin;

use super::args::SiteConfig;
use super::terminal::{PipeSafe, print_warnings};

/// Standard input that shows the prompt each time it needs a new line.
struct Prompting<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    prompt: bool,
}

impl<R: BufRead> Read for Prompting<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Prompting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.buf.len() {
            if self.prompt {
                let mut out = io::stdout();
                write!(out, "pdadmin> ")?;
                out.flush()?;
            }
            self.buf.clear();
            self.pos = 0;
            self.inner.read_until(b'\n', &mut self.buf)?;
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
    }
}

/// What `help` (or `?`) prints: the commands the prompt takes, and how lines are read.
const HELP: &str = "\
Commands (keywords and -realm ignore case; quote names with spaces: \"Mary Jones\"):
  server list
  server task SERVER sms session refresh all_sessions USER -realm REALM
  server task SERVER sms session refresh session ID -realm REALM
  server task SERVER sms session terminate all_sessions USER -realm REALM
  server task SERVER sms session terminate session ID -realm REALM
  server task SERVER sms session list -realm REALM PATTERN MAX
  server task SERVER sms realm list | sms realm show REALM
  server task SERVER sms replica set list [-realm REALM] | sms replica set show SET
  server task SERVER refresh all_sessions USER
  server task SERVER terminate all_sessions USER | terminate session ID
  errtext CODE
  help          this list
  exit, quit    end the shell (the site is saved then, unless --no-save or --dry-run)
A line ending in \\ continues on the next; a line starting with # is a comment.
";

/// Whether a line asks for the help text.
fn is_help(line: &str) -> bool {
    let word = line.trim().trim_start_matches("pdadmin>").trim();
    word.eq_ignore_ascii_case("help") || word == "?"
}

pub fn shell(cfg: &SiteConfig) -> Result<u8> {
    let (_lock, engine) = super::open::open_engine(cfg)?;
    let runner = smsrefresh::run::OneAtATime::open(&engine, cfg.rate)?;
    print_warnings(&engine);
    if cfg.dry_run {
        PipeSafe::new(io::stdout().lock()).write_all(smsrefresh::output::DRY_RUN_LINE)?;
    }
    let interactive = io::stdin().is_terminal();
    let input = Prompting {
        inner: io::stdin().lock(),
        buf: Vec::new(),
        pos: 0,
        prompt: interactive,
    };
    let source: Arc<str> = Arc::from("shell");
    let mut failed = false;
    for job in CommandSource::new(input) {
        let job = job?;
        if is_help(&job.raw) {
            let mut out = PipeSafe::new(io::stdout().lock());
            if !interactive {
                writeln!(out, "pdadmin> {}", job.raw.trim())?;
            }
            out.write_all(HELP.as_bytes())?;
            out.flush()?;
            continue;
        }
        let result = runner.run_job(&source, &job);
        failed |= result.status() == Status::Error;
        let mut text = Vec::new();
        pdadmin::render(&result, &mut text)?;
        // At a terminal the user has just typed the command: skip the echo line.
        let body = if interactive {
            text.splitn(2, |b| *b == b'\n').nth(1).unwrap_or(&[])
        } else {
            &text[..]
        };
        let mut out = PipeSafe::new(io::stdout().lock());
        out.write_all(body)?;
        out.flush()?;
    }
    if interactive {
        println!();
    }
    if cfg.save {
        engine.site.save()?;
    }
    drop(runner);
    // The process exits next: skip freeing the site piece by piece.
    crate::cli::free_at_exit(engine);
    Ok(u8::from(failed))
}
