//! What a run did: counts per status, message ID and action, and the time of each phase.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::command::Action;
use crate::exec::{CommandResult, Status};

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
    /// Where the registry was read: a file's path or a directory's URL.
    pub registry: String,
    pub plan: Duration,
    /// Reading and parsing the inputs into commands.
    pub read: Duration,
    pub execute: Duration,
    /// Rendering and writing the results.
    pub write: Duration,
    /// The wall time of reading, executing and writing together: they overlap, so this is
    /// less than their sum by what ran at once.
    pub streamed: Duration,
    pub save: Duration,
    /// Making the results durable and putting them in place (`-o FILE`: its fsync and
    /// rename), after the run.
    pub publish: Duration,
    pub elapsed: Duration,
    pub threads: usize,
    /// A dry run: nothing was changed.
    pub dry_run: bool,
    /// Set when a signal stopped the run before its end.
    pub interrupted: Option<super::Interrupted>,
    /// Configuration warnings (catalog lines), for standard error.
    pub warnings: Vec<String>,
    /// The session store, its password replaced by `***` (`file:` for the site's files).
    pub store: String,
    /// How the run's changes were kept.
    pub changes: Changes,
    /// `--shard K/N`, and the input lines this shard left to the others.
    pub shard: Option<(super::Shard, u64)>,
    /// Commands went to a target (`store` is then its URL).
    pub target: bool,
    /// A target's retries, by cause (`connection`, `timeout`, `http 503`, …).
    pub retries: BTreeMap<String, u64>,
}

/// How a run's changes were kept (contract §11: the report and the summary say so).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Changes {
    /// The site's files: the snapshot is replaced at the end.
    #[default]
    SavedAtTheEnd,
    /// A networked store: each change was kept as its command ran.
    KeptAsTheyRan,
    /// A target: the appliance made each change as its command was sent.
    SentToTarget,
    /// `--no-save`: the changes were made in this process and dropped.
    Dropped,
    /// `--dry-run`: nothing was changed.
    None,
}

impl Changes {
    /// Words for the summary and the report.
    pub fn describe(self) -> &'static str {
        match self {
            Changes::SavedAtTheEnd => "saved to the site's files at the end of the run",
            Changes::KeptAsTheyRan => "kept in the store as each command ran",
            Changes::SentToTarget => "made by the target as each command was sent",
            Changes::Dropped => "not kept (--no-save)",
            Changes::None => "none (dry run)",
        }
    }
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
        *self.messages.entry(r.outcome.counted_id()).or_default() += 1;
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
