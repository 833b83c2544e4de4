//! A batch of operations on the Redis store: session ids resolved through the id index,
//! the operations grouped by user record (in batch order within each), and each record
//! changed in one atomic step (`update.rs`) by the same rules the in-memory store applies.

use std::collections::HashMap;

use smallvec::SmallVec;

use super::RedisStore;
use super::nodes::Keyed;
use super::update::Change;
use crate::credential::Credential;
use crate::session::{Clock, Session};
use crate::store::{Applied, Done, Op, Refresher, StoreError};

/// Applies `ops` to one user's sessions, in order.
fn compute(
    ops: &[&Op<'_>],
    mut sessions: Vec<Session>,
    clock: &Clock,
    refresher: &dyn Refresher,
) -> Change<Vec<Done>> {
    let mut dones = Vec::with_capacity(ops.len());
    let mut changed = false;
    for op in ops {
        let done = match op {
            Op::RefreshUser { scope, fresh, .. } => {
                let mut memo: SmallVec<[(Credential, Credential); 2]> = SmallVec::new();
                let mut n = 0;
                for s in sessions
                    .iter_mut()
                    .filter(|s| scope.admits(s) && clock.is_live(s))
                {
                    let new = match memo
                        .iter()
                        .find(|(o, _)| Credential::ptr_eq(o, &s.credential))
                    {
                        Some((_, new)) => new.clone(),
                        None => {
                            let new = refresher.merge(&s.credential, fresh);
                            memo.push((s.credential.clone(), new.clone()));
                            new
                        }
                    };
                    s.credential = new;
                    s.last_refresh = Some(clock.now);
                    n += 1;
                }
                Done::Sessions(n)
            }
            Op::TerminateUser { scope, .. } => {
                let before = sessions.len();
                sessions.retain(|s| !(scope.admits(s) && clock.is_live(s)));
                Done::Sessions(before - sessions.len())
            }
            Op::RefreshSession { id, within } => {
                match sessions
                    .iter_mut()
                    .find(|s| &*s.id == *id && clock.is_live(s) && within.admits(s))
                {
                    None => Done::NoSession,
                    Some(s) => match refresher.fresh(&s.user) {
                        None => Done::UnknownUser,
                        Some(fresh) => {
                            s.credential = refresher.merge(&s.credential, fresh);
                            s.last_refresh = Some(clock.now);
                            Done::Sessions(1)
                        }
                    },
                }
            }
            Op::TerminateSession { id, within } => {
                match sessions
                    .iter()
                    .position(|s| &*s.id == *id && clock.is_live(s) && within.admits(s))
                {
                    None => Done::NoSession,
                    Some(at) => {
                        sessions.remove(at);
                        Done::Sessions(1)
                    }
                }
            }
        };
        changed |= matches!(done, Done::Sessions(n) if n > 0);
        dones.push(done);
    }
    Change {
        value: dones,
        sessions: changed.then_some(sessions),
    }
}

impl RedisStore {
    /// The record tag of each session id (its user's), from the id index; `None` for an id
    /// the index lacks.
    pub(super) fn tags_of(&self, ids: &[&str]) -> Vec<Result<Option<String>, StoreError>> {
        // An id whose prefix has no code was never imported: no need to ask.
        let fields: Vec<Option<String>> = ids.iter().map(|id| self.codes.field(id)).collect();
        let cmds: Vec<Keyed> = ids
            .iter()
            .zip(&fields)
            .filter_map(|(id, f)| {
                Some(Keyed::new("HGET", &self.layout.bucket(id)).arg(f.as_ref()?))
            })
            .collect();
        let mut replies = self.nodes.run(&cmds, true, false).into_iter();
        fields
            .iter()
            .map(|f| {
                if f.is_none() {
                    return Ok(None);
                }
                match replies.next().map(super::nodes::Reply::value) {
                    Some(Ok(redis::Value::BulkString(b))) => Ok(String::from_utf8(b).ok()),
                    Some(Ok(_)) | None => Ok(None),
                    Some(Err(why)) => Err(self.unavailable(why)),
                }
            })
            .collect()
    }

    pub(super) fn apply_batch(
        &self,
        clock: &Clock,
        ops: &[Op<'_>],
        refresher: &dyn Refresher,
    ) -> Applied {
        let mut results: Vec<Option<Result<Done, StoreError>>> = vec![None; ops.len()];
        let ids: Vec<&str> = ops
            .iter()
            .filter_map(|op| match op {
                Op::RefreshSession { id, .. } | Op::TerminateSession { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        let mut tags = self.tags_of(&ids).into_iter();
        // Record key -> the operations on it, in batch order.
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        for (i, op) in ops.iter().enumerate() {
            let tag = match op {
                Op::RefreshUser { realm, user, .. } | Op::TerminateUser { realm, user, .. } => {
                    self.tag(*realm, user)
                }
                Op::RefreshSession { .. } | Op::TerminateSession { .. } => {
                    match tags.next().unwrap_or(Ok(None)) {
                        Ok(Some(t)) => t,
                        Ok(None) => {
                            results[i] = Some(Ok(Done::NoSession));
                            continue;
                        }
                        Err(e) => {
                            results[i] = Some(Err(e));
                            continue;
                        }
                    }
                }
            };
            let key = self.layout.record(&tag);
            let g = *by_key.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        let keys: Vec<String> = groups.iter().map(|(k, _)| k.clone()).collect();
        let changes = self.update(&keys, &|g, sessions| {
            let mine: Vec<&Op<'_>> = groups[g].1.iter().map(|&i| &ops[i]).collect();
            compute(&mine, sessions, clock, refresher)
        });
        for ((_, members), change) in groups.iter().zip(changes) {
            match change {
                Ok(dones) => {
                    for (&i, d) in members.iter().zip(dones) {
                        results[i] = Some(Ok(d));
                    }
                }
                Err(e) => {
                    for &i in members {
                        results[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Ok(Done::NoSession)))
            .collect()
    }
}

/// Shared by the whole-store reads: the live sessions of a decoded record.
pub(super) fn live(sessions: &[Session], clock: &Clock) -> usize {
    sessions.iter().filter(|s| clock.is_live(s)).count()
}
