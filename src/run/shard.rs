//! `--shard K/N` (contract §11): which commands of the input this process runs, so that N
//! processes, on one machine or N, together make one run.
//!
//! A command belongs to the shard of its user: `stable_hash(folded user) mod N`, plus one
//! (the hash is FNV-1a 64 over the UTF-8 bytes of the fully case-folded name, then a
//! finaliser; `crate::hash`). So every realm of a user, the `sms` forms and the plain
//! WebSEAL forms fall together. `session ID` commands go to the shard of the session's user
//! (from the store's index; an id it does not know goes to shard 1). Commands that name no
//! user — lists, `errtext`, lines that do not parse — go to shard 1.

use std::fmt;

use crate::command::{Command, Task};
use crate::ids::UserKey;
use crate::input::{Job, JobKind};
use crate::store::SessionStore;

/// Shard `k` of `n` (1 ≤ k ≤ n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// What a command's shard depends on.
enum Key<'a> {
    User(&'a str),
    Session(&'a str),
    First,
}

fn key(job: &Job) -> Key<'_> {
    let JobKind::Command(cmd) = &job.kind else {
        return Key::First;
    };
    let Command::Task { task, .. } = &**cmd else {
        return Key::First;
    };
    match task {
        Task::SmsRefreshAll { user, .. }
        | Task::SmsTerminateAll { user, .. }
        | Task::RefreshAll { user }
        | Task::TerminateAll { user } => Key::User(user),
        Task::SmsRefreshSession { id, .. }
        | Task::SmsTerminateSession { id, .. }
        | Task::TerminateSession { id } => Key::Session(id),
        _ => Key::First,
    }
}

impl Shard {
    /// Parses `K/N`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}`: expected K/N with 1 <= K <= N (for example 2/3)");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let k: u64 = k.trim().parse().map_err(|_| bad())?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Self { k, n })
    }

    /// The shard (1-based) of a user.
    pub fn of_user(n: u64, user: &UserKey) -> u64 {
        user.stable_hash() % n + 1
    }

    /// Keeps the jobs of this shard, in order. When the store cannot say whose a session
    /// is, the `session ID` command goes to shard 1, which reports the store's error.
    pub fn retain(&self, jobs: &mut Vec<Job>, store: &dyn SessionStore) {
        if self.n == 1 {
            return;
        }
        let ids: Vec<&str> = jobs
            .iter()
            .filter_map(|j| match key(j) {
                Key::Session(id) => Some(id),
                _ => None,
            })
            .collect();
        let owners = store.owners(&ids).unwrap_or_else(|_| vec![None; ids.len()]);
        let mut owners = owners.into_iter();
        let keep: Vec<bool> = jobs
            .iter()
            .map(|j| {
                let shard = match key(j) {
                    Key::User(u) => Self::of_user(self.n, &UserKey::of(u)),
                    Key::Session(_) => owners
                        .next()
                        .flatten()
                        .map_or(1, |u| Self::of_user(self.n, &u)),
                    Key::First => 1,
                };
                shard == self.k
            })
            .collect();
        let mut keep = keep.into_iter();
        jobs.retain(|_| keep.next().unwrap_or(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { k: 2, n: 3 }));
        for bad in ["0/3", "4/3", "1/0", "x/2", "2", "1/-1"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_user_falls_in_one_shard_whatever_its_case() {
        let a = Shard::of_user(7, &UserKey::of("JohnQ"));
        assert_eq!(a, Shard::of_user(7, &UserKey::of("johnq")));
        assert!((1..=7).contains(&a));
    }
}
