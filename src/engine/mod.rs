//! A loaded site ready to execute commands ([`Engine`]), and the executor that runs jobs
//! through it one chunk at a time ([`Executor`]).
//!
//! Both the batch path and the one-command path (`exec`, `shell`, `--fail-fast`) go through
//! the executor's code, so a command gives the same result whichever way it runs.

mod executor;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::time::Duration;

pub use executor::{BatchConfig, Executor};

use crate::command::{Action, Command, ParseError};
use crate::exec::{CommandResult, CommandText, Context, Outcome};
use crate::input::Job;
use crate::message as msg;
use crate::rules::RefreshRules;
use crate::session::Clock;
use crate::site::lock::SiteLock;
use crate::site::{RegistryOptions, Site, SiteDescription, SiteError, StoreOptions};

/// A request to stop a run early, made by the binary's signal handler: the signal's number.
/// The run then starts no further command, saves what ran, and says how far it got.
///
/// Until the run begins to change anything (it is opening inputs, waiting for the lock,
/// loading the site, resolving its plan), a signal may stop the process at once instead:
/// [`Interrupt::stop_before_changes`] and [`Interrupt::begin_changes`] decide, between the
/// handler and the run, which of the two came first.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<Stop>);

#[derive(Debug, Default)]
struct Stop {
    signal: AtomicI32,
    /// [`PREPARING`], [`CHANGING`] or [`STOPPED`].
    stage: AtomicU8,
}

/// Nothing has been changed yet: stopping at once loses nothing.
const PREPARING: u8 = 0;
/// Commands may be running: a signal lets them finish and the run save.
const CHANGING: u8 = 1;
/// A signal stopped the process before any change: the run must not begin.
const STOPPED: u8 = 2;

impl Interrupt {
    /// Asks the run to stop; the first signal's number is kept.
    pub fn request(&self, signal: i32) {
        let _ = self
            .0
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The signal that asked the run to stop, if one did.
    pub fn requested(&self) -> Option<i32> {
        match self.0.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// For the signal handler: true when nothing has been changed yet, and from now on
    /// nothing will be — the caller then ends the process at once.
    pub fn stop_before_changes(&self) -> bool {
        self.0
            .stage
            .compare_exchange(PREPARING, STOPPED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// For the run, just before its first command: from now on a signal lets the run finish
    /// what it started. False when a signal already stopped the process, which is exiting.
    pub fn begin_changes(&self) -> bool {
        match self
            .0
            .stage
            .compare_exchange(PREPARING, CHANGING, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(stage) => stage == CHANGING,
        }
    }
}

/// Where a run's commands run (a side-effect boundary): the engine's own store
/// ([`Executor`]), or a target that sends each command to an ISVA appliance
/// (`run::remote`). Batch-shaped: a chunk of jobs at a time, results in input order — only
/// those of a prefix of the chunk when an interrupt stopped it.
pub trait Runner {
    fn run_chunk(&mut self, source: &Arc<str>, jobs: &[Job]) -> Vec<CommandResult>;
    /// The threads it works with, for the summary.
    fn threads(&self) -> usize;
    /// Jobs per chunk: large for the engine (every worker busy), small for a target (its
    /// results reach the output as the run goes).
    fn chunk_size(&self) -> usize {
        16 * 1024
    }
    /// Whether each chunk's results are flushed to the output at once.
    fn streams(&self) -> bool {
        false
    }
}

impl Runner for Executor<'_> {
    fn run_chunk(&mut self, source: &Arc<str>, jobs: &[Job]) -> Vec<CommandResult> {
        Executor::run_chunk(self, source, jobs)
    }

    fn threads(&self) -> usize {
        Executor::threads(self)
    }
}

/// A loaded site, the refresh rules of the run, and its "now".
pub struct Engine {
    pub site: Site,
    pub rules: RefreshRules,
    pub clock: Clock,
    pub dry_run: bool,
    /// The target's URL when commands go to one: every result names it (contract §14).
    target: Option<Arc<str>>,
}

impl Engine {
    /// Loads `dir` (sessions from the store it names) and fixes "now".
    pub fn load(dir: &Path, now: Option<i64>, dry_run: bool) -> Result<Self, SiteError> {
        Ok(Self::new(Site::load(dir)?, now, dry_run))
    }

    /// Locks the site when the caller will save (`lock_timeout` given), then loads what
    /// `described` names, with `store` saying how patiently (`--store-timeout`) and
    /// `registry` who hears about a long directory read: how `run`, `exec` and `shell`
    /// start. The lock is held as long as the returned guard lives.
    pub fn open(
        described: SiteDescription,
        (store, registry): (&StoreOptions, &RegistryOptions),
        now: Option<i64>,
        dry_run: bool,
        lock_timeout: Option<Duration>,
    ) -> Result<(Option<SiteLock>, Self), SiteError> {
        // A networked store is shared by design (contract §11): engines on it do not take
        // the site's lock, since they write nothing in the site folder.
        let lock = lock_timeout
            .filter(|_| described.saved_by_site())
            .map(|t| SiteLock::acquire(&described.dir, t))
            .transpose()?;
        let store = StoreOptions {
            read_only: store.read_only || dry_run,
            ..store.clone()
        };
        let site = Site::open(described, &store, registry.progress.as_ref())?;
        Ok((lock, Self::new(site, now, dry_run)))
    }

    /// An engine over a loaded site; `now` in Unix seconds, the wall clock when absent.
    pub fn new(site: Site, now: Option<i64>, dry_run: bool) -> Self {
        let limits = site.topology.limits;
        let mut rules = site.topology.rules.clone();
        // Every attribute name is interned by now: decide each once.
        rules.compile();
        let target = site.target.as_ref().map(|t| Arc::from(t.url.as_str()));
        Self {
            site,
            target,
            rules,
            clock: Clock {
                now: now.unwrap_or_else(crate::time::now),
                timeout: limits.timeout,
                inactive_timeout: limits.inactive_timeout,
            },
            dry_run,
        }
    }

    /// Replaces the site's refresh rules for this run (a policy's `credential_refresh:`).
    pub fn set_rules(&mut self, mut rules: RefreshRules) {
        rules.compile();
        self.rules = rules;
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
            store: &*self.site.store,
            rules: &self.rules,
            clock: self.clock,
        }
    }

    /// Executes one command (or reports why it did not parse) on its own.
    pub fn execute(
        &self,
        source: &Arc<str>,
        line: u64,
        raw: &str,
        parsed: Result<Command, ParseError>,
    ) -> CommandResult {
        let job = match parsed {
            Ok(cmd) => Job::command(line, cmd),
            Err(e) => Job::invalid(line, raw, &msg::SYNTAX_ERROR, &e.message),
        };
        self.run_job(source, &job)
    }

    /// Executes one job on its own: the path of `exec`, `shell` and the bench's
    /// sequential baseline.
    pub fn run_job(&self, source: &Arc<str>, job: &Job) -> CommandResult {
        executor::run_alone(self, source, job)
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
            target: self.target.clone(),
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
            target: self.target.clone(),
            outcome,
        }
    }
}
