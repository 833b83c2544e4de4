//! What each subcommand does with its validated configuration: open outputs, call the
//! library, print the summary, and choose the exit code.

use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;

use anyhow::{Context as _, Result};

use smsrefresh::command::parse;
use smsrefresh::command::parse::parse_tokens;
use smsrefresh::command::token::Token;
use smsrefresh::exec::Status;
use smsrefresh::message;
use smsrefresh::output::writer;
use smsrefresh::run::{self, Engine, Summary};
use smsrefresh::site::lock::SiteLock;

use crate::cli::{Cli, Cmd, ExecArgs};

/// Standard output that treats a closed pipe (`smsrefresh … | head`) as the reader having
/// seen enough: later writes are dropped and the run still finishes and saves.
pub struct PipeSafe<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> PipeSafe<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            closed: false,
        }
    }
}

impl<W: Write> Write for PipeSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.inner.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

pub fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Cmd::Run(args) => {
            let cfg = args.validate()?;
            let finished = match &args.output {
                Some(path) => {
                    let file = File::create(path)
                        .with_context(|| format!("{}: cannot create", path.display()))?;
                    run::run(&cfg, &mut io::BufWriter::new(file))?
                }
                None => run::run(&cfg, &mut PipeSafe::new(io::stdout().lock()))?,
            };
            let summary = finished.summary;
            // The process exits next: let the OS reclaim the site instead of freeing millions
            // of sessions one by one (seconds on a large site).
            std::mem::forget(finished.engine);
            for w in &summary.warnings {
                eprintln!("smsrefresh: warning: {w}");
            }
            if !args.quiet {
                print_summary(&summary);
            }
            Ok(summary.exit_code() as u8)
        }
        Cmd::Exec(args) => exec(&args),
        Cmd::Shell(args) => crate::shell::shell(&args.site.validate()?),
        Cmd::Errtext { code } => {
            let mut out = PipeSafe::new(io::stdout().lock());
            match message::lookup(&code) {
                Some(m) => {
                    writeln!(out, "{}   {} ({})", m.id, m.text, m.code_hex())?;
                    Ok(0)
                }
                None => {
                    let m = &message::UNKNOWN_CODE;
                    writeln!(out, "{}   {} ({})", m.id, m.render(&[&code]), m.code_hex())?;
                    Ok(1)
                }
            }
        }
        Cmd::Gen(args) => {
            let cfg = args.validate()?;
            let s = smsrefresh::synthetic::generate(&cfg)
                .with_context(|| format!("writing {}", cfg.out.display()))?;
            eprintln!(
                "smsrefresh: wrote {} users and {} sessions to {}",
                s.users,
                s.sessions,
                cfg.out.display()
            );
            Ok(0)
        }
    }
}

fn exec(args: &ExecArgs) -> Result<u8> {
    let cfg = args.site.validate()?;
    let _lock = if cfg.save {
        Some(SiteLock::acquire(&cfg.site, cfg.lock_timeout)?)
    } else {
        None
    };
    let engine = Engine::load(&cfg.site, cfg.now, cfg.dry_run)?;
    print_warnings(&engine);
    // One argument is a whole command line; several are the shell's words, already unquoted.
    let (raw, parsed) = match args.command.as_slice() {
        [line] => (line.clone(), parse(line)),
        words => (
            words.join(" "),
            parse_tokens(
                words
                    .iter()
                    .map(|w| Token {
                        text: w.clone(),
                        quoted: false,
                    })
                    .collect(),
            ),
        ),
    };
    let source: Arc<str> = Arc::from("exec");
    let result = engine.execute(&source, 1, &raw, parsed);
    let mut out = PipeSafe::new(io::stdout().lock());
    let mut w = writer(args.format.into(), &mut out);
    w.write(&result)?;
    w.finish()?;
    drop(w);
    if cfg.save {
        engine.site.save()?;
    }
    // As for `run`: the process exits next, so skip freeing the site piece by piece.
    std::mem::forget(engine);
    Ok(u8::from(result.status() == Status::Error))
}

/// Configuration warnings on standard error.
pub fn print_warnings(engine: &Engine) {
    for w in engine.warnings() {
        eprintln!("smsrefresh: warning: {w}");
    }
}

/// The end-of-run summary on standard error.
pub fn print_summary(s: &Summary) {
    let secs = s.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        s.commands() as f64 / secs
    } else {
        0.0
    };
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "smsrefresh: {} commands: {} ok, {} warning, {} error; {} sessions refreshed, {} terminated; \
         {:.3} s (load {:.3} s, execute {:.3} s, save {:.3} s), {:.0} commands/s",
        s.commands(),
        s.ok,
        s.warning,
        s.error,
        s.refreshed,
        s.terminated,
        secs,
        s.load.as_secs_f64(),
        s.execute.as_secs_f64(),
        s.save.as_secs_f64(),
        rate
    );
}
