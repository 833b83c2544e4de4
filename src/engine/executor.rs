//! The parallel engine: executes a chunk of jobs so that the results equal executing them
//! one by one in input order (contract §7), while the store works on many users at once.
//!
//! A chunk is cut at its whole-store reads (`session list`, `replica set show`) into
//! segments. Inside a segment every command is prepared in parallel (the checks that need
//! no session), the store operations of all of them go to the store as one batch, which
//! applies them in order per user (different users commute), and the outcomes are finished
//! in parallel. A whole-store read then runs alone, seeing exactly the earlier commands'
//! changes.
//!
//! `--fail-fast` and `execution.rate` run the jobs one by one instead: the first must stop
//! exactly at the first failure, the second paces commands anyway.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::{Engine, Interrupt};
use crate::exec::{CommandResult, Context, Outcome, Status, Step};
use crate::input::{Job, JobKind};
use crate::message as msg;
use crate::store::Op;

/// How a run executes its jobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchConfig {
    /// Worker threads; 0 = one per core.
    pub jobs: usize,
    pub fail_fast: bool,
    /// Commands per second; 0 = unlimited.
    pub rate: f64,
}

/// Executes chunks of jobs against an engine.
pub struct Executor<'e> {
    engine: &'e Engine,
    pool: rayon::ThreadPool,
    config: BatchConfig,
    started: Instant,
    executed: u64,
    /// Set after the first failure under `--fail-fast`.
    stopped: bool,
    /// Checked before each command when they run one by one (a paced run can take long).
    interrupt: Interrupt,
}

/// Executes one job on its own (the one-at-a-time path: `exec`, `shell`, `--fail-fast`).
pub(super) fn run_alone(engine: &Engine, source: &Arc<str>, job: &Job) -> CommandResult {
    match &job.kind {
        JobKind::Command(cmd) => {
            let outcome = engine.context().execute(cmd);
            engine.result(source, job.line, cmd.clone(), outcome)
        }
        JobKind::Invalid { message, detail } => {
            engine.invalid(source, job.line, &job.raw, Outcome::new(message, &[detail]))
        }
    }
}

impl<'e> Executor<'e> {
    pub fn new(
        engine: &'e Engine,
        config: BatchConfig,
    ) -> Result<Self, rayon::ThreadPoolBuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.jobs)
            .build()?;
        Ok(Self {
            engine,
            pool,
            config,
            started: Instant::now(),
            executed: 0,
            stopped: false,
            interrupt: Interrupt::default(),
        })
    }

    /// Stops starting commands once `interrupt` is requested: [`Executor::run_chunk`] then
    /// returns the results of the commands that ran, fewer than it was given.
    pub fn with_interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = interrupt;
        self
    }

    /// The worker threads in use.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Executes `jobs` and returns their results in the same order (only those of a prefix
    /// of them when an interrupt stops a run that goes one by one).
    pub fn run_chunk(&mut self, source: &Arc<str>, jobs: &[Job]) -> Vec<CommandResult> {
        if self.config.fail_fast || self.config.rate > 0.0 {
            return self.run_sequential(source, jobs);
        }
        let ctx = self.engine.context();
        let mut steps: Vec<Step<'_>> = self.pool.install(|| {
            jobs.par_iter()
                .map(|j| match &j.kind {
                    JobKind::Command(cmd) => ctx.prepare(cmd),
                    JobKind::Invalid { message, detail } => {
                        Step::Done(Outcome::new(message, &[detail]))
                    }
                })
                .collect()
        });
        let mut results = Vec::with_capacity(jobs.len());
        let mut start = 0;
        while start < jobs.len() {
            let end = steps[start..]
                .iter()
                .position(|s| matches!(s, Step::WholeStore))
                .map_or(jobs.len(), |i| start + i);
            self.run_segment(
                &ctx,
                source,
                &jobs[start..end],
                &mut steps[start..end],
                &mut results,
            );
            if end < jobs.len() {
                results.push(run_alone(self.engine, source, &jobs[end]));
            }
            start = end + 1;
        }
        self.executed += jobs.len() as u64;
        results
    }

    /// Applies a segment's store operations as one batch and finishes every job of it.
    fn run_segment<'a>(
        &self,
        ctx: &Context<'a>,
        source: &Arc<str>,
        jobs: &[Job],
        steps: &mut [Step<'a>],
        results: &mut Vec<CommandResult>,
    ) {
        let mut ops: Vec<Op<'a>> = Vec::new();
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(steps.len());
        for step in steps.iter_mut() {
            let from = ops.len();
            if let Step::Store { ops: own, .. } = step {
                ops.extend(own.drain(..));
            }
            ranges.push(from..ops.len());
        }
        let engine = self.engine;
        self.pool.install(|| {
            let applied = if ops.is_empty() {
                Vec::new()
            } else {
                ctx.store.apply(&ctx.clock, &ops, ctx)
            };
            let finished = steps
                .par_iter_mut()
                .zip(jobs.par_iter())
                .zip(ranges.into_par_iter())
                .map(|((step, job), range)| {
                    let step = std::mem::replace(step, Step::WholeStore);
                    let outcome = match step {
                        Step::Done(o) => o,
                        Step::Store { finish, .. } => ctx.finish(&finish, &applied[range]),
                        // Segments hold no whole-store reads; were one here, it would
                        // still see exactly the earlier commands' changes.
                        Step::WholeStore => match &job.kind {
                            JobKind::Command(cmd) => ctx.read_whole_store(cmd),
                            JobKind::Invalid { message, detail } => {
                                Outcome::new(message, &[detail])
                            }
                        },
                    };
                    match &job.kind {
                        JobKind::Command(cmd) => {
                            engine.result(source, job.line, cmd.clone(), outcome)
                        }
                        JobKind::Invalid { .. } => {
                            engine.invalid(source, job.line, &job.raw, outcome)
                        }
                    }
                });
            results.par_extend(finished);
        });
    }

    fn not_run(&self, source: &Arc<str>, job: &Job) -> CommandResult {
        let outcome = Outcome::new(&msg::NOT_RUN, &[]);
        match &job.kind {
            JobKind::Command(cmd) => self.engine.result(source, job.line, cmd.clone(), outcome),
            JobKind::Invalid { .. } => self.engine.invalid(source, job.line, &job.raw, outcome),
        }
    }

    fn run_sequential(&mut self, source: &Arc<str>, jobs: &[Job]) -> Vec<CommandResult> {
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            if self.interrupt.requested().is_some() {
                break;
            }
            if self.stopped {
                out.push(self.not_run(source, job));
                continue;
            }
            if self.config.rate > 0.0 {
                let due =
                    self.started + Duration::from_secs_f64(self.executed as f64 / self.config.rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            let r = run_alone(self.engine, source, job);
            self.executed += 1;
            self.stopped = self.config.fail_fast && r.status() == Status::Error;
            out.push(r);
        }
        out
    }
}
