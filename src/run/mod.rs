//! A whole run: lock and load the site, resolve the policy, stream every input through the
//! parallel engine in chunks, write one result per command in input order, save the
//! snapshot, and count what happened (contract §5).
//!
//! Per-command failures are results, not errors: the run goes on (unless `fail_fast`) and
//! the summary decides the exit code. A [`RunError`] means the run could not start or could
//! not finish writing. Memory stays bounded whatever the input's length: only one chunk of
//! jobs and results is held at a time.

mod pump;
mod remote;
mod shard;
mod summary;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::engine::Interrupt;
use crate::engine::{BatchConfig, Engine, Executor, Runner};
use crate::input::{CommandSource, CsvDefaults, CsvSource, Job};
use crate::output::{self, Format};
use crate::policy::{Plan, PlanError, Policy, PolicyAction, resolve};
use crate::site::{RegistryOptions, SiteDescription, SiteError, StoreOptions};

pub use self::pump::{Inputs, Reader};
use self::pump::{Pump, input_size};

pub use remote::OneAtATime;
pub use shard::Shard;
pub use summary::{Changes, Summary};

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
    /// `--store URL` (over `SMSREFRESH_STORE` and `store:`) and `--store-timeout`.
    pub store: StoreOptions,
    /// `--registry PATH` and `--registry-kind` (over the site's registry).
    pub registry: RegistryOptions,
    /// `--target FILE` (over `SMSREFRESH_TARGET` and the site's `target.yaml`).
    pub target: Option<PathBuf>,
    /// Set by a signal handler to stop the run early (contract §13).
    pub interrupt: Interrupt,
    /// `--require-input`: an input with no commands stops the run before it starts.
    pub require_input: bool,
    /// `--shard K/N`: run only the commands of shard K of N.
    pub shard: Option<Shard>,
    /// `--retry-failed FILE`: first run again the failed commands of a JSON Lines results
    /// file, each under its original line and source.
    pub retry_failed: Option<PathBuf>,
    pub lock_timeout: Duration,
}

impl RunConfig {
    /// The site this run acts on, resolved once: topology, registry and store.
    pub fn describe(&self) -> Result<SiteDescription, SiteError> {
        SiteDescription::resolve_with_target(
            &self.site,
            &self.store,
            &self.registry,
            self.target.as_deref(),
        )
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
    #[error("{path}: {cause}")]
    Input { path: String, cause: io::Error },
    #[error("writing results: {0}")]
    Output(io::Error),
    #[error("starting worker threads: {0}")]
    Threads(String),
    #[error("{path}: {what}; nothing was run")]
    NotText { path: String, what: String },
    #[error("{path}: the input has no commands (--require-input); nothing was run")]
    NoCommands { path: String },
    #[error(transparent)]
    NotResults(#[from] crate::input::retry::NotResults),
    /// A target that cannot be used: its passwords, its CA, or the preflight (contract §14).
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
}

/// How far an interrupted run got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    pub signal: i32,
    /// Commands that ran (their results are written and their changes saved).
    pub ran: u64,
    /// Commands in the inputs, run or not.
    pub total: u64,
    /// The input and line of the first command that did not run.
    pub resume_at: Option<(String, u64)>,
}

/// Progress reports from a run; the binary draws a bar, tests ignore them.
pub trait Progress: Sync {
    /// The run enters a phase.
    fn phase(&self, _phase: Phase) {}
    /// Execution starts: the input bytes to read (0 when unknown).
    fn begin(&self, _total_bytes: u64) {}
    /// A chunk is done: the commands it held and the input bytes consumed so far.
    fn advance(&self, _commands: u64, _bytes_so_far: u64) {}
    /// With a target: requests in flight now, and retried so far.
    fn remote(&self, _in_flight: u64, _retried: u64) {}
    fn end(&self) {}
}

/// The phases of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Locking and loading the site (topology, registry, sessions).
    Load,
    /// Resolving the policy into its commands.
    Plan,
    /// Running the commands and writing their results.
    Execute,
    /// Replacing the site's snapshot.
    Save,
}

/// No progress reports.
pub struct Silent;

impl Progress for Silent {}

/// A finished run: its summary, and the loaded site, which the caller may drop or (a
/// process about to exit) leak, since freeing millions of sessions one by one takes seconds
/// that the operating system does at once.
pub struct Finished {
    pub summary: Summary,
    pub engine: Engine,
}

/// Runs `cfg` on the site `described` (resolved once by the caller), writing results to
/// `out`: every input opens, the site is locked (unless nothing is saved) and loaded, then
/// [`run_loaded`] does the rest.
pub fn run(
    cfg: &RunConfig,
    described: SiteDescription,
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<Finished, RunError> {
    let start = Instant::now();
    // Every input must open, and be text, before anything changes (exit 2 otherwise).
    let mut inputs = Inputs::open(&cfg.inputs, cfg.require_input)?;
    if let Some(path) = &cfg.retry_failed {
        inputs.retry = Some(crate::input::retry::read_failed(path)?);
    }
    if !cfg.save && !cfg.dry_run {
        described.check_no_save()?;
    }
    let lock = cfg.save.then_some(cfg.lock_timeout);
    progress.phase(Phase::Load);
    let opened = Engine::open(
        described,
        (&cfg.store, &cfg.registry),
        cfg.now,
        cfg.dry_run,
        lock,
    );
    let (_lock, engine) = match opened {
        Ok(o) => o,
        Err(e) => {
            progress.end();
            return Err(e.into());
        }
    };
    run_loaded(cfg, engine, inputs, out, progress, start)
}

/// Runs `cfg` on an engine already loaded (and locked by the caller when it saves): resolve
/// the policy, execute every input in order, purge a sweep's expired sessions, save.
pub fn run_loaded(
    cfg: &RunConfig,
    mut engine: Engine,
    mut inputs: Inputs,
    out: &mut dyn Write,
    progress: &dyn Progress,
    start: Instant,
) -> Result<Finished, RunError> {
    if let Some(rules) = cfg.policy.as_ref().and_then(|p| p.rules.clone()) {
        engine.set_rules(rules);
    }
    let store = &engine.site.store;
    let changes = match (cfg.dry_run, cfg.save, store.saved_by_site()) {
        (true, _, _) => Changes::None,
        _ if engine.site.target.is_some() => Changes::SentToTarget,
        (false, _, false) => Changes::KeptAsTheyRan,
        (false, true, true) => Changes::SavedAtTheEnd,
        (false, false, true) => Changes::Dropped,
    };
    let mut summary = Summary {
        load: start.elapsed(),
        load_parts: engine.site.load_times,
        registry: engine.site.registry_from.clone(),
        warnings: engine.warnings(),
        dry_run: cfg.dry_run,
        store: engine
            .site
            .target
            .as_ref()
            .map_or_else(|| store.location(), |t| t.url.clone()),
        target: engine.site.target.is_some(),
        changes,
        shard: cfg.shard.map(|s| (s, 0)),
        ..Summary::default()
    };
    let result = run_phases(cfg, &engine, &mut inputs, out, progress, &mut summary);
    progress.end();
    result?;
    summary.elapsed = start.elapsed();
    Ok(Finished { summary, engine })
}

/// Plan, execute, sweep and save, each announced to `progress`.
fn run_phases(
    cfg: &RunConfig,
    engine: &Engine,
    inputs: &mut Inputs,
    out: &mut dyn Write,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> Result<(), RunError> {
    // A target answers its preflight before anything is planned or sent.
    let remote = engine
        .site
        .target
        .as_ref()
        .map(remote::connect)
        .transpose()?;
    progress.phase(Phase::Plan);
    let plan = plan(cfg, engine, summary)?;
    if !cfg.interrupt.begin_changes() {
        // A signal stopped the process while it was getting ready; it is exiting now, and
        // nothing may start meanwhile.
        loop {
            std::thread::park();
        }
    }
    progress.phase(Phase::Execute);
    let runner: Box<dyn Runner + Send + '_> = match (&remote, &engine.site.target) {
        (Some(remote), Some(target)) => Box::new(remote::RemoteRunner::new(
            engine,
            remote,
            target,
            (cfg.batch.rate, cfg.dry_run, cfg.batch.fail_fast),
            cfg.interrupt.clone(),
            progress,
        )),
        _ => Box::new(
            Executor::new(engine, cfg.batch)
                .map_err(|e| RunError::Threads(e.to_string()))?
                .with_interrupt(cfg.interrupt.clone()),
        ),
    };
    let executed = execute(cfg, engine, runner, plan, inputs, out, progress, summary);
    if let Some(remote) = &remote {
        summary.retries = remote.client.retries().by_cause;
    }
    let swept = match (executed, summary.interrupted.is_none()) {
        (Ok(()), true) => sweep(cfg, engine).map(|n| summary.purged = n),
        (r, _) => r,
    };
    engine.site.store.finish_run();
    swept?;
    if cfg.save && !cfg.dry_run && engine.site.store.saved_by_site() && engine.site.store.changed()
    {
        progress.phase(Phase::Save);
        let t = Instant::now();
        engine.site.save()?;
        summary.save = t.elapsed();
    }
    Ok(())
}

/// The policy's plan, resolved and its limits checked before anything changes.
fn plan(cfg: &RunConfig, engine: &Engine, summary: &mut Summary) -> Result<Option<Plan>, RunError> {
    let t = Instant::now();
    let plan = cfg
        .policy
        .as_ref()
        .map(|p| resolve(p, &engine.site, &engine.clock))
        .transpose()?;
    summary.plan = t.elapsed();
    if let Some(plan) = &plan {
        summary.skipped.clone_from(&plan.skipped);
        summary.excluded = plan.excluded;
    }
    Ok(plan)
}

/// Streams the plan, then every input, through the executor, writing results in order.
#[allow(clippy::too_many_arguments, reason = "the run's parts, each used once")]
fn execute(
    cfg: &RunConfig,
    engine: &Engine,
    executor: Box<dyn Runner + Send + '_>,
    plan: Option<Plan>,
    inputs: &mut Inputs,
    out: &mut dyn Write,
    progress: &dyn Progress,
    summary: &mut Summary,
) -> Result<(), RunError> {
    summary.threads = executor.threads();
    progress.begin(cfg.inputs.iter().map(input_size).sum());
    let mut buffered = BufWriter::with_capacity(1 << 16, out);
    buffered
        .write_all(output::header(cfg.format, cfg.dry_run))
        .map_err(RunError::Output)?;
    let bytes = inputs.bytes.clone();
    let mut pump = Pump::new(
        executor,
        cfg.format,
        &mut buffered,
        summary,
        progress,
        bytes,
        cfg.interrupt.clone(),
    );
    pump.shard = cfg.shard.map(|s| (s, &*engine.site.store));
    if let Some(failed) = &inputs.retry {
        // One drain per run of lines from one source, so each result keeps its source.
        for group in failed.chunk_by(|a, b| a.source == b.source) {
            let source: Arc<str> = Arc::from(group[0].source.as_str());
            pump.drain(&source, group.iter().map(|f| Ok(f.job())))?;
        }
    }
    if let (Some(plan), Some(policy)) = (plan, &cfg.policy) {
        let source: Arc<str> = Arc::from(policy.file.display().to_string().as_str());
        let jobs = plan
            .commands
            .into_iter()
            .enumerate()
            .map(|(i, c)| Ok(Job::command(i as u64 + 1, c)));
        pump.drain(&source, jobs)?;
    }
    let mut empty = Vec::new();
    for (input, reader) in &mut inputs.readers {
        let source: Arc<str> = Arc::from(input.name().as_str());
        let before = pump.seen;
        match input {
            Input::Csv(_) | Input::Stdin { csv: true } => {
                let rows = CsvSource::new(reader, cfg.csv.clone(), &engine.site.topology);
                pump.drain(&source, rows)?;
            }
            _ => pump.drain(&source, CommandSource::new(reader))?,
        }
        if pump.seen == before {
            if cfg.require_input {
                return Err(RunError::NoCommands { path: input.name() });
            }
            empty.push(format!("{}: the input has no commands", input.name()));
        }
    }
    let (not_run, resume_at) = (pump.not_run, pump.resume_at.take());
    drop(pump);
    summary.warnings.extend(empty);
    if let Some(signal) = cfg.interrupt.requested() {
        let ran = summary.commands();
        summary.interrupted = Some(Interrupted {
            signal,
            ran,
            total: ran + not_run,
            resume_at,
        });
    }
    buffered.flush().map_err(RunError::Output)
}

/// A sweep policy also clears out the sessions that have already expired: no command can see
/// them, so they would otherwise stay in the snapshot for ever. Only in the policy's realm:
/// a sweep of one realm leaves the others alone.
fn sweep(cfg: &RunConfig, engine: &Engine) -> Result<u64, RunError> {
    let Some(p) = cfg
        .policy
        .as_ref()
        .filter(|p| p.action == PolicyAction::Terminate && p.sessions.is_some())
    else {
        return Ok(0);
    };
    let realm = p
        .realm
        .as_deref()
        .and_then(|r| engine.site.topology.realm(r));
    match realm {
        Some(realm) => Ok(engine
            .site
            .store
            .purge_expired(&engine.clock, realm)
            .map_err(SiteError::from)? as u64),
        None => Ok(0),
    }
}
