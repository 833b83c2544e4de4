//! A whole run: lock and load the site, execute every input's commands in order, write one
//! result per command, save the snapshot, and count what happened (contract §5).
//!
//! Per-command failures are results, not errors: the run goes on (unless `fail_fast`) and
//! the summary decides the exit code. A [`RunError`] means the run could not start or could
//! not finish writing.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::command::reader::{CommandReader, Entry};
use crate::command::{Action, Command, ParseError, parse};
use crate::exec::{CommandResult, Context, Outcome, Status};
use crate::message as msg;
use crate::output::{Format, writer};
use crate::rules::RefreshRules;
use crate::session::Clock;
use crate::site::lock::SiteLock;
use crate::site::{Site, SiteError};
use crate::store::SessionStore;

/// Where a run reads commands from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A pdadmin command file.
    Commands(PathBuf),
    /// pdadmin commands on standard input.
    Stdin,
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::Commands(p) => p.display().to_string(),
            Input::Stdin => "-".to_string(),
        }
    }
}

/// A validated run configuration (built once from the command line).
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub site: PathBuf,
    pub inputs: Vec<Input>,
    pub format: Format,
    /// Report what would happen; change nothing on disk.
    pub dry_run: bool,
    /// Replace the snapshot at the end (false with `--no-save` or `--dry-run`).
    pub save: bool,
    pub fail_fast: bool,
    /// "Now" in Unix seconds; the wall clock when absent.
    pub now: Option<i64>,
    pub lock_timeout: Duration,
}

/// Counts and timings of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub ok: u64,
    pub warning: u64,
    pub error: u64,
    pub refreshed: u64,
    pub terminated: u64,
    pub load: Duration,
    pub execute: Duration,
    pub save: Duration,
    pub elapsed: Duration,
    /// Configuration warnings (catalog lines), for standard error.
    pub warnings: Vec<String>,
}

impl Summary {
    pub fn commands(&self) -> u64 {
        self.ok + self.warning + self.error
    }

    pub fn add(&mut self, r: &CommandResult) {
        match r.status() {
            Status::Ok => self.ok += 1,
            Status::Warning => self.warning += 1,
            Status::Error => self.error += 1,
        }
        if r.status() == Status::Ok {
            match r.action {
                Action::RefreshAllSessions
                | Action::RefreshSession
                | Action::WebsealRefreshAllSessions => {
                    self.refreshed += r.outcome.sessions;
                }
                Action::TerminateAllSessions
                | Action::TerminateSession
                | Action::WebsealTerminateAllSessions
                | Action::WebsealTerminateSession => self.terminated += r.outcome.sessions,
                _ => {}
            }
        }
    }

    /// The exit code of contract §5: 0 when every command succeeded or warned, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.error > 0)
    }
}

/// Why a run stopped before its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error("{path}: {source}")]
    Input { path: String, source: io::Error },
    #[error("writing results: {0}")]
    Output(#[source] io::Error),
}

/// A loaded site ready to execute commands.
pub struct Engine {
    pub site: Site,
    pub rules: RefreshRules,
    pub clock: Clock,
    pub dry_run: bool,
}

impl Engine {
    /// Loads `dir` and fixes "now".
    pub fn load(dir: &std::path::Path, now: Option<i64>, dry_run: bool) -> Result<Self, SiteError> {
        let site = Site::load(dir)?;
        let limits = site.topology.limits;
        let rules = site.topology.rules.clone();
        Ok(Self {
            site,
            rules,
            clock: Clock {
                now: now.unwrap_or_else(crate::time::now),
                timeout: limits.timeout,
                inactive_timeout: limits.inactive_timeout,
            },
            dry_run,
        })
    }

    /// Warnings about the configuration, as catalog message lines: refresh rules that
    /// preserve `AZN_*` attributes.
    pub fn warnings(&self) -> Vec<String> {
        let m = &msg::AZN_PRESERVED;
        self.rules
            .azn_warnings()
            .into_iter()
            .map(|p| format!("{}   {} ({})", m.id, m.render(&[p]), m.code_hex()))
            .collect()
    }

    fn context(&self) -> Context<'_> {
        Context {
            topology: &self.site.topology,
            registry: &self.site.registry,
            store: &self.site.store,
            rules: &self.rules,
            clock: self.clock,
        }
    }

    /// Executes one command (or reports why it did not parse) and places the result.
    pub fn execute(
        &self,
        source: &Arc<str>,
        line: u64,
        raw: &str,
        parsed: Result<Command, ParseError>,
    ) -> CommandResult {
        match parsed {
            Ok(cmd) => {
                let outcome = self.context().execute(&mut *self.site.store.ops(), &cmd);
                self.result(source, line, &cmd, outcome)
            }
            Err(e) => self.invalid(
                source,
                line,
                raw,
                Outcome::new(&msg::SYNTAX_ERROR, &[&e.message]),
            ),
        }
    }

    /// Parses and executes one command line.
    pub fn execute_line(&self, source: &Arc<str>, line: u64, text: &str) -> CommandResult {
        self.execute(source, line, text, parse(text))
    }

    /// A result for a command that was not executed.
    pub fn result(
        &self,
        source: &Arc<str>,
        line: u64,
        cmd: &Command,
        outcome: Outcome,
    ) -> CommandResult {
        CommandResult {
            line,
            source: source.clone(),
            command: cmd.to_string(),
            action: cmd.action(),
            server: cmd.server().map(str::to_owned),
            realm: cmd.realm().map(str::to_owned),
            user: cmd.user().map(str::to_owned),
            session_id: cmd.session_id().map(str::to_owned),
            dry_run: self.dry_run,
            outcome,
        }
    }

    /// A result for a line that is not a command.
    pub fn invalid(
        &self,
        source: &Arc<str>,
        line: u64,
        raw: &str,
        outcome: Outcome,
    ) -> CommandResult {
        CommandResult {
            line,
            source: source.clone(),
            command: raw.to_string(),
            action: Action::Invalid,
            server: None,
            realm: None,
            user: None,
            session_id: None,
            dry_run: self.dry_run,
            outcome,
        }
    }
}

fn open(input: &Input) -> Result<Box<dyn BufRead>, RunError> {
    Ok(match input {
        Input::Stdin => Box::new(BufReader::new(io::stdin())),
        Input::Commands(p) => Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(p).map_err(|e| RunError::Input {
                path: p.display().to_string(),
                source: e,
            })?,
        )),
    })
}

/// A finished run: its summary, and the loaded site, which the caller may drop or (a
/// process about to exit) leak, since freeing millions of sessions one by one takes seconds
/// that the operating system does at once.
pub struct Finished {
    pub summary: Summary,
    pub engine: Engine,
}

/// Runs `cfg`, writing results to `out`.
pub fn run(cfg: &RunConfig, out: &mut dyn Write) -> Result<Finished, RunError> {
    let start = Instant::now();
    // Every input must open before anything changes (exit 2 otherwise).
    let mut readers = cfg
        .inputs
        .iter()
        .map(|i| Ok((i.name(), open(i)?)))
        .collect::<Result<Vec<_>, RunError>>()?;
    let _lock = if cfg.save {
        Some(SiteLock::acquire(&cfg.site, cfg.lock_timeout)?)
    } else {
        None
    };
    let engine = Engine::load(&cfg.site, cfg.now, cfg.dry_run)?;
    let mut summary = Summary {
        load: start.elapsed(),
        warnings: engine.warnings(),
        ..Summary::default()
    };
    let t_exec = Instant::now();
    let mut w = writer(cfg.format, io::BufWriter::with_capacity(1 << 16, out));
    let mut stopped = false;
    for (name, reader) in readers.iter_mut() {
        let source: Arc<str> = Arc::from(name.as_str());
        for entry in CommandReader::new(reader) {
            let entry = entry.map_err(|e| RunError::Input {
                path: name.clone(),
                source: e,
            })?;
            let result = match entry {
                Entry::NotUtf8 { line } => engine.invalid(
                    &source,
                    line,
                    "",
                    Outcome::new(&msg::SYNTAX_ERROR, &["the line is not valid UTF-8"]),
                ),
                Entry::Command { line, text } => {
                    let parsed = parse(&text);
                    if stopped {
                        match parsed {
                            Ok(cmd) => {
                                engine.result(&source, line, &cmd, Outcome::new(&msg::NOT_RUN, &[]))
                            }
                            Err(_) => engine.invalid(
                                &source,
                                line,
                                &text,
                                Outcome::new(&msg::NOT_RUN, &[]),
                            ),
                        }
                    } else {
                        engine.execute(&source, line, &text, parsed)
                    }
                }
            };
            summary.add(&result);
            stopped |= cfg.fail_fast && result.status() == Status::Error;
            w.write(&result).map_err(RunError::Output)?;
        }
    }
    w.finish().map_err(RunError::Output)?;
    drop(w);
    summary.execute = t_exec.elapsed();
    if cfg.save && !cfg.dry_run {
        let t_save = Instant::now();
        engine.site.save()?;
        summary.save = t_save.elapsed();
    }
    summary.elapsed = start.elapsed();
    Ok(Finished { summary, engine })
}
