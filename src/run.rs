//! A whole run: lock and load the site, resolve the policy, stream every input through the
//! parallel engine in chunks, write one result per command in input order, save the
//! snapshot, and count what happened (contract §5).
//!
//! Per-command failures are results, not errors: the run goes on (unless `fail_fast`) and
//! the summary decides the exit code. A [`RunError`] means the run could not start or could
//! not finish writing. Memory stays bounded whatever the input's length: only one chunk of
//! jobs and results is held at a time.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::batch::{BatchConfig, Executor};
use crate::command::{Action, Command, ParseError};
use crate::exec::{CommandResult, CommandText, Context, Outcome, Status};
use crate::input::{CommandSource, Counting, CsvDefaults, CsvSource, Job};
use crate::message as msg;
use crate::output::{self, Format};
use crate::policy::{Plan, PlanError, Policy, resolve};
use crate::rules::RefreshRules;
use crate::session::Clock;
use crate::site::lock::SiteLock;
use crate::site::{Site, SiteError};
use crate::store::SessionStore;

/// Jobs per chunk: large enough to keep every worker busy, small enough to bound memory.
pub const CHUNK: usize = 16 * 1024;

/// Where a run reads commands from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A pdadmin command file.
    Commands(PathBuf),
    /// A CSV list of user/realm pairs.
    Csv(PathBuf),
    /// Standard input: pdadmin commands, or CSV with `--input-format csv`.
    Stdin { csv: bool },
}

impl Input {
    /// A path ending in `.csv` is a CSV list, anything else a command file, `-` stdin.
    pub fn from_arg(arg: &Path, stdin_csv: bool) -> Self {
        if arg.as_os_str() == "-" {
            Input::Stdin { csv: stdin_csv }
        } else if arg
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            Input::Csv(arg.to_path_buf())
        } else {
            Input::Commands(arg.to_path_buf())
        }
    }

    pub fn name(&self) -> String {
        match self {
            Input::Commands(p) | Input::Csv(p) => p.display().to_string(),
            Input::Stdin { .. } => "-".to_string(),
        }
    }
}

/// A validated run configuration (built once from the command line and the policy).
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub site: PathBuf,
    pub policy: Option<Policy>,
    pub inputs: Vec<Input>,
    pub format: Format,
    /// Report what would happen; change nothing on disk.
    pub dry_run: bool,
    /// Replace the snapshot at the end (false with `--no-save` or `--dry-run`).
    pub save: bool,
    pub batch: BatchConfig,
    /// Defaults for CSV rows.
    pub csv: CsvDefaults,
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
    /// Expired sessions removed by a sweep policy (`action: terminate` with `sessions:`).
    pub purged: u64,
    /// Results per message ID.
    pub messages: BTreeMap<&'static str, u64>,
    /// Users a policy left out: not in the registry (`missing_user: skip`).
    pub skipped: Vec<String>,
    /// Users a policy's `exclude:` left out.
    pub excluded: u64,
    pub load: Duration,
    /// The load, by file.
    pub load_parts: crate::site::LoadTimes,
    pub plan: Duration,
    pub execute: Duration,
    pub write: Duration,
    pub save: Duration,
    pub elapsed: Duration,
    pub threads: usize,
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
        *self.messages.entry(r.outcome.message.id).or_default() += 1;
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

/// Why a run stopped before its end. Every variant means exit 2 unless noted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{path}: {source}")]
    Input { path: String, source: io::Error },
    #[error("writing results: {0}")]
    Output(#[source] io::Error),
    #[error("starting worker threads: {0}")]
    Threads(String),
}

/// Progress reports from a run; the binary draws a bar, tests ignore them.
pub trait Progress: Sync {
    /// The run starts: the input bytes to read (0 when unknown).
    fn begin(&self, _total_bytes: u64) {}
    /// A chunk is done: the commands it held and the input bytes consumed so far.
    fn advance(&self, _commands: u64, _bytes_so_far: u64) {}
    fn end(&self) {}
}

/// No progress reports.
pub struct Silent;

impl Progress for Silent {}

/// A loaded site ready to execute commands.
pub struct Engine {
    pub site: Site,
    pub rules: RefreshRules,
    pub clock: Clock,
    pub dry_run: bool,
}

impl Engine {
    /// Loads `dir` and fixes "now".
    pub fn load(dir: &Path, now: Option<i64>, dry_run: bool) -> Result<Self, SiteError> {
        let site = Site::load(dir)?;
        let limits = site.topology.limits;
        let mut rules = site.topology.rules.clone();
        // Every attribute name is interned by now: decide each once.
        rules.compile();
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

    pub fn context(&self) -> Context<'_> {
        Context {
            topology: &self.site.topology,
            registry: &self.site.registry,
            store: &self.site.store,
            rules: &self.rules,
            clock: self.clock,
        }
    }

    /// Executes one command (or reports why it did not parse), locking per operation.
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
                self.result(source, line, Arc::new(cmd), outcome)
            }
            Err(e) => self.invalid(
                source,
                line,
                raw,
                Outcome::new(&msg::SYNTAX_ERROR, &[&e.message]),
            ),
        }
    }

    /// Executes one job, locking per operation (the one-at-a-time path: `exec`, `shell`,
    /// the bench's sequential baseline).
    pub fn run_job(&self, source: &Arc<str>, job: &crate::input::Job) -> CommandResult {
        match &job.kind {
            crate::input::JobKind::Command(cmd) => {
                let outcome = self.context().execute(&mut *self.site.store.ops(), cmd);
                self.result(source, job.line, cmd.clone(), outcome)
            }
            crate::input::JobKind::Invalid { message, detail } => {
                self.invalid(source, job.line, &job.raw, Outcome::new(message, &[detail]))
            }
        }
    }

    /// Places an outcome in its input.
    pub fn result(
        &self,
        source: &Arc<str>,
        line: u64,
        cmd: Arc<Command>,
        outcome: Outcome,
    ) -> CommandResult {
        CommandResult {
            line,
            source: source.clone(),
            action: cmd.action(),
            command: CommandText::Parsed(cmd),
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
            command: CommandText::Raw(raw.to_string()),
            action: Action::Invalid,
            dry_run: self.dry_run,
            outcome,
        }
    }
}

/// A finished run: its summary, and the loaded site, which the caller may drop or (a
/// process about to exit) leak, since freeing millions of sessions one by one takes seconds
/// that the operating system does at once.
pub struct Finished {
    pub summary: Summary,
    pub engine: Engine,
}

type Reader = Counting<Box<dyn BufRead>>;

fn open(input: &Input, counter: &Arc<AtomicU64>) -> Result<Reader, RunError> {
    let inner: Box<dyn BufRead> = match input {
        Input::Stdin { .. } => Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
        Input::Commands(p) | Input::Csv(p) => Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(p).map_err(|e| RunError::Input {
                path: p.display().to_string(),
                source: e,
            })?,
        )),
    };
    Ok(Counting::new(inner, counter.clone()))
}

fn input_size(input: &Input) -> u64 {
    match input {
        Input::Commands(p) | Input::Csv(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
        Input::Stdin { .. } => 0,
    }
}

/// Streams jobs through the executor in chunks, writing results in order.
struct Pump<'a, 'e> {
    executor: Executor<'e>,
    format: Format,
    out: &'a mut dyn Write,
    summary: &'a mut Summary,
    progress: &'a dyn Progress,
    bytes: Arc<AtomicU64>,
}

impl Pump<'_, '_> {
    fn chunk(&mut self, source: &Arc<str>, jobs: &[Job]) -> Result<(), RunError> {
        let t = Instant::now();
        let results = self.executor.run_chunk(source, jobs);
        self.summary.execute += t.elapsed();
        let t = Instant::now();
        // Render slices in parallel, write them in order.
        let format = self.format;
        let buffers: Vec<Vec<u8>> = {
            use rayon::prelude::*;
            results
                .par_chunks(1024)
                .map(|slice| {
                    let mut buf = Vec::with_capacity(slice.len() * 160);
                    output::render(format, slice, &mut buf);
                    buf
                })
                .collect()
        };
        for b in &buffers {
            self.out.write_all(b).map_err(RunError::Output)?;
        }
        for r in &results {
            self.summary.add(r);
        }
        self.summary.write += t.elapsed();
        self.progress
            .advance(jobs.len() as u64, self.bytes.load(Ordering::Relaxed));
        Ok(())
    }

    fn drain(
        &mut self,
        source: &Arc<str>,
        jobs: impl Iterator<Item = io::Result<Job>>,
    ) -> Result<(), RunError> {
        let mut chunk: Vec<Job> = Vec::with_capacity(CHUNK);
        for job in jobs {
            chunk.push(job.map_err(|e| RunError::Input {
                path: source.to_string(),
                source: e,
            })?);
            if chunk.len() == CHUNK {
                self.chunk(source, &chunk)?;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            self.chunk(source, &chunk)?;
        }
        Ok(())
    }
}

/// Runs `cfg`, writing results to `out`.
pub fn run(
    cfg: &RunConfig,
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<Finished, RunError> {
    let start = Instant::now();
    let bytes = Arc::new(AtomicU64::new(0));
    // Every input must open before anything changes (exit 2 otherwise).
    let mut readers = cfg
        .inputs
        .iter()
        .map(|i| Ok((i.clone(), open(i, &bytes)?)))
        .collect::<Result<Vec<_>, RunError>>()?;
    let _lock = if cfg.save {
        Some(SiteLock::acquire(&cfg.site, cfg.lock_timeout)?)
    } else {
        None
    };
    let mut engine = Engine::load(&cfg.site, cfg.now, cfg.dry_run)?;
    if let Some(mut rules) = cfg.policy.as_ref().and_then(|p| p.rules.clone()) {
        rules.compile();
        engine.rules = rules;
    }
    let mut summary = Summary {
        load: start.elapsed(),
        load_parts: engine.site.load_times,
        warnings: engine.warnings(),
        ..Summary::default()
    };

    // The plan is resolved, and its limits checked, before anything changes.
    let t = Instant::now();
    let plan: Option<Plan> = cfg
        .policy
        .as_ref()
        .map(|p| {
            resolve(
                p,
                &engine.site.topology,
                &engine.site.registry,
                &engine.site.store,
                &engine.clock,
            )
        })
        .transpose()?;
    summary.plan = t.elapsed();
    if let Some(plan) = &plan {
        summary.skipped = plan.skipped.clone();
        summary.excluded = plan.excluded;
    }

    let executor =
        Executor::new(&engine, cfg.batch).map_err(|e| RunError::Threads(e.to_string()))?;
    summary.threads = executor.threads();
    progress.begin(cfg.inputs.iter().map(input_size).sum());
    let mut buffered = io::BufWriter::with_capacity(1 << 16, out);
    buffered
        .write_all(output::header(cfg.format))
        .map_err(RunError::Output)?;
    let mut pump = Pump {
        executor,
        format: cfg.format,
        out: &mut buffered,
        summary: &mut summary,
        progress,
        bytes,
    };
    if let (Some(plan), Some(policy)) = (plan, &cfg.policy) {
        let source: Arc<str> = Arc::from(policy.file.display().to_string().as_str());
        let jobs = plan
            .commands
            .into_iter()
            .enumerate()
            .map(|(i, c)| Ok(Job::command(i as u64 + 1, c)));
        pump.drain(&source, jobs)?;
    }
    for (input, reader) in readers.iter_mut() {
        let source: Arc<str> = Arc::from(input.name().as_str());
        match input {
            Input::Csv(_) | Input::Stdin { csv: true } => {
                pump.drain(
                    &source,
                    CsvSource::new(reader, cfg.csv.clone(), &engine.site.topology),
                )?;
            }
            _ => pump.drain(&source, CommandSource::new(reader))?,
        }
    }
    drop(pump);
    // A sweep policy also clears out the sessions that have already expired: no command can
    // see them, so they would otherwise stay in the snapshot for ever.
    if let Some(p) = cfg
        .policy
        .as_ref()
        .filter(|p| p.action == crate::policy::PolicyAction::Terminate && p.sessions.is_some())
    {
        // Only in the policy's realm: a sweep of one realm leaves the others alone.
        let realm = p
            .realm
            .as_deref()
            .and_then(|r| engine.site.topology.realm(r));
        summary.purged = engine
            .site
            .store
            .purge_expired(&engine.clock, &|s| Some(s.realm) == realm)
            as u64;
    }
    buffered.flush().map_err(RunError::Output)?;
    drop(buffered);
    progress.end();
    if cfg.save && !cfg.dry_run {
        let t = Instant::now();
        engine.site.save()?;
        summary.save = t.elapsed();
    }
    summary.elapsed = start.elapsed();
    Ok(Finished { summary, engine })
}
