//! Running commands on a target (contract §14): a preflight `server list`, then every
//! command as its own request to the appliance, up to `concurrency` in flight, paced by
//! `--rate`, results in input order.
//!
//! Each chunk of jobs is dispatched in input order to the worker threads; a command that
//! names a server the preflight did not list is an error result and is not sent, and a line
//! that is not a command is its own error result. An interrupt stops the dispatch: the
//! requests in flight finish, and the chunk's results are exactly those of the commands that
//! were sent (a prefix). A 401/403 after the preflight stops all sending: every command not
//! sent is an error result `not run`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Interrupt, Progress, RunError};
use crate::engine::{Engine, Runner};
use crate::exec::{Answer, CommandResult, Outcome, Status};
use crate::input::{Job, JobKind};
use crate::message as msg;
use crate::target::{Appliance, IsvaRest, Sent, TargetConfig, TargetError, Verdict, answer};

/// A target that answered the preflight: the client and the servers it lists.
pub struct Remote {
    pub client: IsvaRest,
    pub servers: HashSet<String>,
    pub url: String,
}

/// The server names in `server list`'s text: one per line, no message lines.
fn server_names(text: &str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains(char::is_whitespace))
        .filter(|l| answer::message_ids(l).is_empty())
        .map(str::to_string)
        .collect()
}

/// Connects and runs the preflight `server list` (contract §14): reachability, TLS, the
/// LMI login and the pdadmin login; any failure stops the run before anything runs.
pub fn connect(target: &TargetConfig) -> Result<Remote, RunError> {
    let client = IsvaRest::new(target)?;
    let fail = |reason: String| {
        RunError::Target(TargetError {
            url: target.url.clone(),
            reason: format!("the preflight `server list` failed: {reason}; nothing was run"),
        })
    };
    match client.send("server list") {
        Sent::Answered { status, body } => {
            match answer::read(status, &body, answer::Asked::Command) {
                Some(r) if r.verdict != Verdict::Error && (200..300).contains(&status) => {
                    Ok(Remote {
                        servers: server_names(&r.text),
                        client,
                        url: target.url.clone(),
                    })
                }
                Some(r) => Err(fail(format!(
                    "HTTP {status}: {}",
                    answer::quote(r.text.as_bytes())
                ))),
                None if status == 401 || status == 403 => Err(fail(format!(
                    "HTTP {status}: the LMI refused the user `{}` (lmi_user and its password)",
                    target.lmi_user
                ))),
                None => Err(fail(format!(
                    "HTTP {status}, not the pdadmin API's answer: {}",
                    answer::quote(&body)
                ))),
            }
        }
        Sent::Failed(why) => Err(fail(why)),
        Sent::NotSent => Err(fail("not sent".into())),
    }
}

/// How a command's answer reads.
fn asked(cmd: &crate::command::Command) -> answer::Asked {
    if cmd.action() == crate::command::Action::Errtext {
        answer::Asked::Errtext
    } else {
        answer::Asked::Command
    }
}

/// Sends chunks of jobs to a target.
pub struct RemoteRunner<'e> {
    engine: &'e Engine,
    remote: &'e Remote,
    concurrency: usize,
    /// Commands per second; 0 = unlimited.
    rate: f64,
    dry_run: bool,
    /// `--fail-fast`: after the first error, the commands not yet sent are not run.
    fail_fast: bool,
    failed: std::sync::atomic::AtomicBool,
    interrupt: Interrupt,
    progress: &'e dyn Progress,
    /// Pacing: when the next request may start.
    next: Mutex<Option<Instant>>,
    in_flight: AtomicU64,
}

impl<'e> RemoteRunner<'e> {
    pub fn new(
        engine: &'e Engine,
        remote: &'e Remote,
        target: &TargetConfig,
        (rate, dry_run, fail_fast): (f64, bool, bool),
        interrupt: Interrupt,
        progress: &'e dyn Progress,
    ) -> Self {
        Self {
            engine,
            remote,
            concurrency: target.concurrency,
            rate,
            dry_run,
            fail_fast,
            failed: std::sync::atomic::AtomicBool::new(false),
            interrupt,
            progress,
            next: Mutex::new(None),
            in_flight: AtomicU64::new(0),
        }
    }

    /// Waits for this request's slot under `--rate`.
    fn pace(&self) {
        if self.rate <= 0.0 {
            return;
        }
        let gap = Duration::from_secs_f64(1.0 / self.rate);
        let at = {
            let mut next = self.next.lock();
            let now = Instant::now();
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + gap);
            at
        };
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }

    /// The outcome of one job: local for lines that are not commands and unknown servers,
    /// else the appliance's answer.
    fn outcome(&self, job: &Job) -> Outcome {
        let cmd = match &job.kind {
            JobKind::Invalid { message, detail } => return Outcome::new(message, &[detail]),
            JobKind::Command(cmd) => cmd,
        };
        if let Some(server) = cmd.server()
            && !self.remote.servers.contains(server)
        {
            return Outcome::new(&msg::UNKNOWN_SERVER, &[server]);
        }
        if self.dry_run {
            return Outcome::new(&msg::WOULD_SEND, &[&self.remote.url]);
        }
        if self.failed.load(Ordering::SeqCst) {
            return Outcome::new(&msg::NOT_RUN, &[]);
        }
        self.pace();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let sent = self.remote.client.send(&cmd.to_string());
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        match sent {
            Sent::Answered { status, body } => match answer::read(status, &body, asked(cmd)) {
                Some(r) => Outcome::answered(
                    match r.verdict {
                        Verdict::Ok => Status::Ok,
                        Verdict::Warning => Status::Warning,
                        Verdict::Error => Status::Error,
                    },
                    Answer {
                        message_id: r.message_id,
                        code: r.code,
                        text: r.text,
                    },
                ),
                None => Outcome::new(
                    &msg::TARGET_NOT_API,
                    &[&status.to_string(), &answer::quote(&body)],
                ),
            },
            Sent::Failed(why) => Outcome::new(&msg::TARGET_FAILED, &[&self.remote.url, &why]),
            Sent::NotSent => Outcome::new(&msg::TARGET_NOT_RUN, &[&self.not_sent_reason()]),
        }
    }

    fn not_sent_reason(&self) -> String {
        match self.remote.client.refused() {
            Some(status) => format!(
                "the appliance refused the LMI login mid-run (HTTP {status}); the run stopped sending"
            ),
            None => "the run stopped sending".into(),
        }
    }

    fn result(&self, source: &Arc<str>, job: &Job, outcome: Outcome) -> CommandResult {
        match &job.kind {
            JobKind::Command(cmd) => self.engine.result(source, job.line, cmd.clone(), outcome),
            JobKind::Invalid { .. } => self.engine.invalid(source, job.line, &job.raw, outcome),
        }
    }
}

impl Runner for RemoteRunner<'_> {
    fn run_chunk(&mut self, source: &Arc<str>, jobs: &[Job]) -> Vec<CommandResult> {
        let slots: Vec<Mutex<Option<CommandResult>>> =
            jobs.iter().map(|_| Mutex::new(None)).collect();
        // Jobs are taken in input order; an interrupt stops the taking, so the jobs taken
        // are a prefix of the chunk, and each of them gets its result.
        let taken = AtomicUsize::new(0);
        let this = &*self;
        std::thread::scope(|scope| {
            for _ in 0..this.concurrency.min(jobs.len()) {
                scope.spawn(|| {
                    loop {
                        if this.interrupt.requested().is_some() {
                            return;
                        }
                        let i = taken.fetch_add(1, Ordering::SeqCst);
                        let Some(job) = jobs.get(i) else { return };
                        let outcome = this.outcome(job);
                        if this.fail_fast && outcome.status() == Status::Error {
                            this.failed.store(true, Ordering::SeqCst);
                        }
                        *slots[i].lock() = Some(this.result(source, job, outcome));
                        this.progress.remote(
                            this.in_flight.load(Ordering::Relaxed),
                            this.remote.client.retried(),
                        );
                    }
                });
            }
        });
        slots
            .into_iter()
            .map_while(parking_lot::Mutex::into_inner)
            .collect()
    }

    fn threads(&self) -> usize {
        self.concurrency
    }

    /// A few rounds of requests: results reach the output as the run goes.
    fn chunk_size(&self) -> usize {
        (self.concurrency * 32).max(256)
    }

    fn streams(&self) -> bool {
        true
    }
}

/// Runs jobs one at a time, as `exec` and `shell` do: on the engine, or on the site's target
/// after one preflight.
pub struct OneAtATime<'e> {
    engine: &'e Engine,
    remote: Option<Remote>,
    rate: f64,
}

impl<'e> OneAtATime<'e> {
    /// Connects to the engine's target, if it has one (its preflight fails here, exit 2).
    pub fn open(engine: &'e Engine, rate: Option<f64>) -> Result<Self, RunError> {
        let remote = engine.site.target.as_ref().map(connect).transpose()?;
        Ok(Self {
            engine,
            remote,
            rate: rate.unwrap_or(0.0),
        })
    }

    /// The job's result: executed by the engine, or sent to the target.
    pub fn run_job(&self, source: &Arc<str>, job: &Job) -> CommandResult {
        let (Some(remote), Some(target)) = (&self.remote, &self.engine.site.target) else {
            return self.engine.run_job(source, job);
        };
        let mut runner = RemoteRunner::new(
            self.engine,
            remote,
            target,
            (self.rate, self.engine.dry_run, false),
            Interrupt::default(),
            &super::Silent,
        );
        runner
            .run_chunk(source, std::slice::from_ref(job))
            .pop()
            .unwrap_or_else(|| self.engine.run_job(source, job))
    }
}
