//! The parallel engine: executes a chunk of jobs so that the results equal executing them
//! one by one in input order (contract §7), while partitions work in parallel.
//!
//! Each command is classified by what state it can touch:
//! - **free**: nothing (it fails on its server or realm, looks up a message, or lists the
//!   topology): runs anywhere;
//! - **one partition**: a user in a realm, or a session id, whose partition is known;
//! - **global**: lists that read every partition, or a plain WebSEAL command that spans
//!   realms.
//!
//! Commands on different partitions commute, so a chunk is cut at its global commands into
//! segments; inside a segment the jobs are grouped by partition, each group runs in input
//! order under one lock acquisition, and the groups run in parallel on a local rayon pool.
//! Session ids are never created by a command, so a session's partition cannot change
//! during a run, and an id absent at the start stays absent.
//!
//! `--fail-fast` and `execution.rate` run the jobs one by one instead: the first must stop
//! exactly at the first failure, the second paces commands anyway.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::command::{Command, Task};
use crate::exec::{CommandResult, Outcome, Status};
use crate::fold::fold;
use crate::input::{Job, JobKind};
use crate::message as msg;
use crate::run::Engine;
use crate::store::{SessionOps, SessionStore};

/// How a run executes its jobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchConfig {
    /// Worker threads; 0 = one per core.
    pub jobs: usize,
    pub fail_fast: bool,
    /// Commands per second; 0 = unlimited.
    pub rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Footprint {
    Free,
    Partition(usize),
    Global,
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
        })
    }

    /// The worker threads in use.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    fn footprint(&self, cmd: &Command) -> Footprint {
        let t = &self.engine.site.topology;
        let store = &self.engine.site.store;
        let Command::Task { server, task } = cmd else {
            return Footprint::Free;
        };
        let Some(server_id) = t.server(server) else {
            return Footprint::Free;
        };
        let user_in_realm = |user: &str, realm: &str| match t.realm(realm) {
            Some(r) => Footprint::Partition(store.partition_of(r, &fold(user))),
            None => Footprint::Free,
        };
        let session = |id: &str| {
            store
                .partition_of_session(id)
                .map_or(Footprint::Free, Footprint::Partition)
        };
        match task {
            Task::SmsRefreshAll { user, realm } | Task::SmsTerminateAll { user, realm } => {
                user_in_realm(user, realm)
            }
            Task::SmsRefreshSession { id, realm } | Task::SmsTerminateSession { id, realm } => {
                if t.realm(realm).is_none() {
                    Footprint::Free
                } else {
                    session(id)
                }
            }
            Task::TerminateSession { id } => session(id),
            Task::RefreshAll { user } | Task::TerminateAll { user } => {
                let realms = self.engine.context().server_realms(server_id);
                match realms.as_slice() {
                    [] => Footprint::Free,
                    [(r, _)] => Footprint::Partition(store.partition_of(*r, &fold(user))),
                    _ => Footprint::Global,
                }
            }
            Task::SmsSessionList { realm, .. } => {
                if t.realm(realm).is_none() {
                    Footprint::Free
                } else {
                    Footprint::Global
                }
            }
            Task::SmsReplicaSetShow { .. } => Footprint::Global,
            Task::SmsRealmList | Task::SmsRealmShow { .. } | Task::SmsReplicaSetList { .. } => {
                Footprint::Free
            }
        }
    }

    fn run_one(&self, source: &Arc<str>, job: &Job, ops: &mut dyn SessionOps) -> CommandResult {
        match &job.kind {
            JobKind::Command(cmd) => {
                let outcome = self.engine.context().execute(ops, cmd);
                self.engine.result(source, job.line, cmd.clone(), outcome)
            }
            JobKind::Invalid { message, detail } => {
                self.engine
                    .invalid(source, job.line, &job.raw, Outcome::new(message, &[detail]))
            }
        }
    }

    fn not_run(&self, source: &Arc<str>, job: &Job) -> CommandResult {
        let outcome = Outcome::new(&msg::NOT_RUN, &[]);
        match &job.kind {
            JobKind::Command(cmd) => self.engine.result(source, job.line, cmd.clone(), outcome),
            JobKind::Invalid { .. } => self.engine.invalid(source, job.line, &job.raw, outcome),
        }
    }

    /// Executes `jobs` and returns their results in the same order.
    pub fn run_chunk(&mut self, source: &Arc<str>, jobs: &[Job]) -> Vec<CommandResult> {
        if self.config.fail_fast || self.config.rate > 0.0 {
            return self.run_sequential(source, jobs);
        }
        let store = &self.engine.site.store;
        let footprints: Vec<Footprint> = self.pool.install(|| {
            jobs.par_iter()
                .map(|j| match &j.kind {
                    JobKind::Command(cmd) => self.footprint(cmd),
                    JobKind::Invalid { .. } => Footprint::Free,
                })
                .collect()
        });
        let mut results: Vec<Option<CommandResult>> = vec![None; jobs.len()];
        let mut start = 0;
        while start < jobs.len() {
            let end = footprints[start..]
                .iter()
                .position(|f| *f == Footprint::Global)
                .map_or(jobs.len(), |i| start + i);
            self.run_segment(source, jobs, &footprints, start..end, &mut results);
            if end < jobs.len() {
                results[end] = Some(self.run_one(source, &jobs[end], &mut *store.ops()));
            }
            start = end + 1;
        }
        self.executed += jobs.len() as u64;
        results
            .into_iter()
            .map(|r| r.expect("every job of a chunk is executed exactly once"))
            .collect()
    }

    fn run_segment(
        &self,
        source: &Arc<str>,
        jobs: &[Job],
        footprints: &[Footprint],
        range: std::ops::Range<usize>,
        results: &mut [Option<CommandResult>],
    ) {
        if range.is_empty() {
            return;
        }
        let store = &self.engine.site.store;
        let mut groups: Vec<Vec<u32>> = vec![Vec::new(); store.partition_count()];
        let mut free: Vec<u32> = Vec::new();
        for i in range {
            match footprints[i] {
                Footprint::Partition(p) => groups[p].push(i as u32),
                _ => free.push(i as u32),
            }
        }
        let groups: Vec<(usize, Vec<u32>)> = groups
            .into_iter()
            .enumerate()
            .filter(|(_, g)| !g.is_empty())
            .collect();
        let done: Vec<Vec<(u32, CommandResult)>> = self.pool.install(|| {
            let mut grouped: Vec<Vec<(u32, CommandResult)>> = groups
                .par_iter()
                .map(|(p, idxs)| {
                    let mut out = Vec::with_capacity(idxs.len());
                    store.with_partition(*p, &mut |ops| {
                        for i in idxs {
                            out.push((*i, self.run_one(source, &jobs[*i as usize], ops)));
                        }
                    });
                    out
                })
                .collect();
            grouped.push(
                free.par_iter()
                    .map(|i| {
                        (
                            *i,
                            self.run_one(source, &jobs[*i as usize], &mut *store.ops()),
                        )
                    })
                    .collect(),
            );
            grouped
        });
        for (i, r) in done.into_iter().flatten() {
            results[i as usize] = Some(r);
        }
    }

    fn run_sequential(&mut self, source: &Arc<str>, jobs: &[Job]) -> Vec<CommandResult> {
        let store = &self.engine.site.store;
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
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
            let r = self.run_one(source, job, &mut *store.ops());
            self.executed += 1;
            self.stopped = self.config.fail_fast && r.status() == Status::Error;
            out.push(r);
        }
        out
    }
}
