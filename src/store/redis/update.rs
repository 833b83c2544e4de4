//! The atomic step of the Redis store: read some users' records, compute each one's new
//! record in Rust, and write it back with the compare-and-set function only if nobody
//! changed it meanwhile — retrying those that lost the race (contract §11: two engines, or
//! an engine and a login, never lose an update or resurrect a terminated session).
//!
//! A write whose connection broke before its reply may or may not have happened; the next
//! read tells, since every write stores a new nonce: the nonce this write chose (or, for a
//! delete, no record) means it did.
//!
//! A write that ended sessions (a termination, a purge) is followed by the removal of their
//! entries from the id index (contract §11: nothing grows forever). The record changes first:
//! an index entry whose session is gone is harmless (every lookup checks the record), while
//! a session without its entry could not be found by id.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use redis::Value;

use super::RedisStore;
use super::nodes::{Keyed, Reply};
use super::record::{self, NONCE};
use crate::hash::stable_hash;
use crate::session::Session;
use crate::store::{SessionStore, StoreError};

/// Rounds of read-compute-write before a user that keeps changing is given up.
const ROUNDS: usize = 64;

/// Records per part of a large update (see [`RedisStore::update`]).
const PART: usize = 512;

/// Parts of a large update in flight at once (the store's thread pool).
pub(super) const IN_FLIGHT: usize = 8;

/// What computing one record gave.
pub struct Change<T> {
    /// The operation's results for this record.
    pub value: T,
    /// The record's sessions afterwards, when they changed (empty: delete the record).
    pub sessions: Option<Vec<Session>>,
}

/// One record's step of a round.
enum Step<T> {
    Done(Result<T, StoreError>),
    /// A lost write that did happen: its value, and the ids it ended.
    Happened(T, Vec<Arc<str>>),
    Write(Keyed, Attempt<T>),
}

/// A write sent whose outcome is not known yet.
struct Attempt<T> {
    nonce: Option<[u8; NONCE]>,
    change: Change<T>,
    /// The ids of the sessions this write removes from the record.
    ended: Vec<Arc<str>>,
}

impl<T> Attempt<T> {
    fn happened(&self, stored: Option<&[u8]>) -> bool {
        match (self.nonce, stored) {
            (None, None) => true,
            (Some(n), Some(b)) => record::nonce_of(b) == Some(n),
            _ => false,
        }
    }
}

/// A nonce no other write (of this or any process) is likely to pick.
pub(super) fn fresh_nonce() -> [u8; NONCE] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let h = stable_hash(&[
        &std::process::id().to_le_bytes(),
        &nanos.to_le_bytes(),
        &COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes(),
    ]);
    h.to_le_bytes()
}

/// The ids of the sessions of `before` that `after` no longer holds.
fn ended(before: &[Session], after: &[Session]) -> Vec<Arc<str>> {
    let kept: std::collections::HashSet<&str> = after.iter().map(|s| &*s.id).collect();
    before
        .iter()
        .filter(|s| !kept.contains(&*s.id))
        .map(|s| s.id.clone())
        .collect()
}

fn stored_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        _ => None,
    }
}

impl RedisStore {
    /// Reads records by key; `Ok(None)` where there is none.
    pub(super) fn read_records<K: AsRef<str>>(
        &self,
        keys: &[K],
    ) -> Vec<Result<Option<Vec<u8>>, StoreError>> {
        if let Some(overlay) = &self.overlay {
            let mut read = self.read_stored(keys);
            let overlay = overlay.lock();
            for (key, r) in keys.iter().zip(&mut read) {
                if let Some(v) = overlay.get(key.as_ref()) {
                    *r = Ok(v.clone());
                }
            }
            return read;
        }
        self.read_stored(keys)
    }

    fn read_stored<K: AsRef<str>>(&self, keys: &[K]) -> Vec<Result<Option<Vec<u8>>, StoreError>> {
        let cmds: Vec<Keyed> = keys.iter().map(|k| Keyed::new("GET", k.as_ref())).collect();
        self.nodes
            .run(&cmds, true, false)
            .into_iter()
            .map(|r| r.value().map(stored_bytes).map_err(|w| self.unavailable(w)))
            .collect()
    }

    /// One record's step of a round: its result is known, or a write is to be sent.
    fn step<T>(
        &self,
        key: &str,
        stored: Result<Option<Vec<u8>>, StoreError>,
        lost: Option<Attempt<T>>,
        compute: impl FnOnce(Vec<Session>) -> Change<T>,
    ) -> Step<T> {
        let stored = match stored {
            Ok(s) => s,
            Err(e) => return Step::Done(Err(e)),
        };
        if let Some(a) = lost
            && a.happened(stored.as_deref())
        {
            return Step::Happened(a.change.value, a.ended);
        }
        let sessions = match stored.as_deref().map(|b| record::decode(b, &self.names, 0)) {
            None => Vec::new(),
            Some(Ok(s)) => s,
            Some(Err(bad)) => return Step::Done(Err(self.unreadable(key, &bad.0))),
        };
        let held = sessions.len();
        let change = compute(sessions);
        let Some(after) = &change.sessions else {
            return Step::Done(Ok(change.value));
        };
        if let Some(overlay) = &self.overlay {
            let bytes =
                (!after.is_empty()).then(|| record::encode(fresh_nonce(), after, &self.names));
            overlay.lock().insert(key.to_string(), bytes);
            return Step::Done(Ok(change.value));
        }
        let (nonce, bytes) = if after.is_empty() {
            (None, Vec::new())
        } else {
            let n = fresh_nonce();
            (Some(n), record::encode(n, after, &self.names))
        };
        let expected = stored.as_deref().and_then(record::nonce_of);
        let expected: &[u8] = expected.as_ref().map_or(&[], |n| n.as_slice());
        let mut cas = redis::cmd("FCALL");
        cas.arg("smsrefresh_cas_1")
            .arg(1)
            .arg(key)
            .arg(expected)
            .arg(bytes);
        let write = Keyed::routed(key, cas);
        // Only a write that leaves fewer sessions ends any (the engine's operations remove
        // sessions or change them in place): read the ids again for those alone.
        let ended = if after.len() < held {
            let before = stored.as_deref().map(|b| record::decode(b, &self.names, 0));
            ended(&before.and_then(Result::ok).unwrap_or_default(), after)
        } else {
            Vec::new()
        };
        Step::Write(
            write,
            Attempt {
                nonce,
                change,
                ended,
            },
        )
    }

    /// Removes the index entries of ended sessions (one `HDEL` per bucket). A failure leaves
    /// entries whose sessions are gone, which every lookup already treats as unknown ids;
    /// the commands that ended them did happen, so their results stand.
    pub(super) fn unindex(&self, ended: &[Arc<str>]) {
        let mut by_bucket: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        for id in ended {
            if let Some(field) = self.codes.field(id) {
                by_bucket
                    .entry(self.layout.bucket(id))
                    .or_default()
                    .push(field);
            }
        }
        let cmds: Vec<Keyed> = by_bucket
            .into_iter()
            .map(|(bucket, ids)| {
                ids.into_iter()
                    .fold(Keyed::new("HDEL", &bucket), Keyed::arg)
            })
            .collect();
        let _ = self.nodes.run(&cmds, true, false);
    }

    /// Changes each record of `keys` atomically with `compute(i, sessions)`, which must not
    /// depend on anything but its arguments (it may run again after a lost race). Returns
    /// each record's value, or why it could not be changed (then nothing changed, or — when
    /// no replica acknowledged — the change reached only the primary).
    pub(super) fn update<T: Send>(
        &self,
        keys: &[String],
        compute: &(dyn Fn(usize, Vec<Session>) -> Change<T> + Sync),
    ) -> Vec<Result<T, StoreError>> {
        if keys.len() <= PART {
            return self.update_part(keys, compute);
        }
        // Parts in flight at once on the store's own threads: most of a part's time is a
        // round trip, so more parts than cores keep both the client and Redis busy.
        let parts: Vec<Vec<Result<T, StoreError>>> = self.in_flight.install(|| {
            keys.par_chunks(PART)
                .enumerate()
                .map(|(p, part)| self.update_part(part, &|i, s| compute(p * PART + i, s)))
                .collect()
        });
        parts.into_iter().flatten().collect()
    }

    fn update_part<T: Send>(
        &self,
        keys: &[String],
        compute: &(dyn Fn(usize, Vec<Session>) -> Change<T> + Sync),
    ) -> Vec<Result<T, StoreError>> {
        let mut out: Vec<Option<Result<T, StoreError>>> = (0..keys.len()).map(|_| None).collect();
        let mut lost: Vec<Option<Attempt<T>>> = (0..keys.len()).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..keys.len()).collect();
        let mut ended: Vec<Arc<str>> = Vec::new();
        for _ in 0..ROUNDS {
            if pending.is_empty() {
                break;
            }
            let wanted: Vec<&str> = pending.iter().map(|&i| keys[i].as_str()).collect();
            let read = self.read_records(&wanted);
            let mut writes: Vec<Keyed> = Vec::new();
            let mut attempts: Vec<(usize, Attempt<T>)> = Vec::new();
            for (&i, stored) in pending.iter().zip(read) {
                match self.step(&keys[i], stored, lost[i].take(), |s| compute(i, s)) {
                    Step::Done(r) => out[i] = Some(r),
                    Step::Happened(value, ids) => {
                        out[i] = Some(Ok(value));
                        ended.extend(ids);
                    }
                    Step::Write(w, a) => {
                        writes.push(w);
                        attempts.push((i, a));
                    }
                }
            }
            let replies = self.nodes.run(&writes, false, true);
            let mut next = Vec::new();
            for ((i, attempt), reply) in attempts.into_iter().zip(replies) {
                match reply {
                    Reply::Ok(Value::Int(1)) => {
                        out[i] = Some(Ok(attempt.change.value));
                        ended.extend(attempt.ended);
                    }
                    // Somebody changed the record since it was read: read it again.
                    Reply::Ok(Value::Int(0)) => next.push(i),
                    Reply::Lost(_) => {
                        lost[i] = Some(attempt);
                        next.push(i);
                    }
                    Reply::Unreplicated(why) | Reply::Failed(why) => {
                        out[i] = Some(Err(self.unavailable(why)));
                    }
                    Reply::Ok(other) => {
                        out[i] = Some(Err(self.unavailable(format!(
                            "unexpected reply from the compare-and-set function: {other:?}"
                        ))));
                    }
                }
            }
            pending = next;
        }
        if !ended.is_empty() {
            match &self.held {
                Some(held) => held.lock().extend(ended),
                None => self.unindex(&ended),
            }
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(StoreError::Conflict {
                        location: self.location(),
                        reason: format!("the record changed {ROUNDS} times while this ran"),
                    })
                })
            })
            .collect()
    }
}
