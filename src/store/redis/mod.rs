//! The Redis session store (contract §11): one `redis-server` or a Redis Cluster, shared by
//! any number of engines on any number of machines.
//!
//! Each (realm, user) is one record (`record.rs`) under a key whose hash tag is that user
//! (`keys.rs`), so one compare-and-set function call changes all of a user's sessions at
//! once (`update.rs`); a bucketed index maps session ids to their user. Every change is
//! kept by Redis as it is applied: nothing is saved at the end of a run. Batches are
//! pipelined per node (`nodes.rs`).

mod add;
mod apply;
mod codes;
mod keys;
mod names;
mod nodes;
mod record;
mod target;
mod update;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use add::Added;
pub use keys::{DEFAULT_BUCKETS, LAYOUT};
pub use names::Names;
pub use target::{DEFAULT_PREFIX, PASSWORD_ENV};

use self::codes::Codes;
use self::keys::Layout;
use self::nodes::{Keyed, Nodes};
use self::target::Target;
use super::{Applied, Op, Refresher, SessionStore, StoreError, url};
use crate::ids::{RealmId, ReplicaSetId, UserKey};
use crate::session::{Clock, Session};

/// Keys asked for per `SCAN` step.
const SCAN_COUNT: usize = 1000;

/// Records a dry run changed, by key (`None`: removed): kept here, never written, so the
/// run's later commands see them and Redis does not.
type Overlay = parking_lot::Mutex<HashMap<String, Option<Vec<u8>>>>;

/// A site's sessions in Redis.
pub struct RedisStore {
    nodes: Nodes,
    layout: Layout,
    names: Names,
    /// Set for a dry run (contract §11: `--dry-run` reads only).
    overlay: Option<Overlay>,
    /// Threads that keep several parts of a large batch in flight (`update.rs`): kept for
    /// the store's life, so their allocator heaps stay warm.
    in_flight: rayon::ThreadPool,
    /// For a `--shard` run: the ids of the sessions it ended, whose index entries are
    /// removed when the run finishes ([`SessionStore::finish_run`]). Until then, a shard
    /// started a little later still finds the user of a session another shard ended, and
    /// places that line where every other shard placed it.
    held: Option<parking_lot::Mutex<Vec<Arc<str>>>>,
    /// Whether a `store import` wrote this prefix's `meta` key (its `layout`): a store without
    /// it holds no site (an empty one still has its `meta`).
    imported: bool,
    /// The codes of realms and session-id prefixes (`codes.rs`), as read from `meta`.
    codes: Codes,
    /// Why this store cannot be used as it is: it holds another layout's keys, which only
    /// `store import --replace` may remove.
    foreign: Option<StoreError>,
}

/// What `store stats` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub sessions: u64,
    pub users: u64,
    /// Sessions per realm name.
    pub realms: Vec<(String, u64)>,
    /// Sessions per server name.
    pub servers: Vec<(String, u64)>,
    /// Bytes of the records themselves.
    pub record_bytes: u64,
    /// `used_memory` of every primary, summed.
    pub used_memory: u64,
    pub nodes: usize,
}

impl RedisStore {
    /// Connects to the store of `url` (contract §11 failures: exit 2 at the start) and reads
    /// its layout.
    pub fn open(url: &str, names: Names, timeout: Duration) -> Result<Self, StoreError> {
        let target = Target::parse(url, timeout)?;
        let prefix = target.prefix.clone();
        let nodes = Nodes::connect(target)?;
        let mut store = Self {
            nodes,
            layout: Layout {
                prefix,
                buckets: DEFAULT_BUCKETS,
            },
            names,
            overlay: None,
            in_flight: rayon::ThreadPoolBuilder::new()
                .num_threads(update::IN_FLIGHT)
                .thread_name(|i| format!("redis-{i}"))
                .build()
                .map_err(|e| StoreError::Unavailable {
                    location: url::redact(url),
                    reason: format!("starting threads: {e}"),
                })?,
            imported: false,
            held: None,
            codes: Codes::default(),
            foreign: None,
        };
        let meta = store.read_meta()?.unwrap_or_default();
        store.codes = Codes::from_meta(&meta);
        // Codes without a layout are an import that did not finish: nothing is imported.
        if meta.contains_key("layout") {
            store.imported = true;
            let layout = meta.get("layout").and_then(|v| v.parse::<u32>().ok());
            if layout != Some(LAYOUT) {
                // Only `store import --replace` may go on: it removes the old layout's keys.
                store.foreign = Some(store.unavailable(format!(
                    "`{}` says layout {}, and this smsrefresh reads layout {LAYOUT}: export the sessions with the smsrefresh that imported them, then `store import --replace` them with this one",
                    store.layout.meta(),
                    meta.get("layout").map_or("(none)", String::as_str)
                )));
            }
            if let Some(b) = meta.get("buckets").and_then(|v| v.parse().ok()) {
                store.layout.buckets = b;
            }
        }
        Ok(store)
    }

    fn read_meta(&self) -> Result<Option<HashMap<String, String>>, StoreError> {
        let key = self.layout.meta();
        let cmd = Keyed::new("HGETALL", &key);
        let Some(reply) = self.nodes.run(&[cmd], true, false).pop() else {
            return Ok(None);
        };
        let v = reply.value().map_err(|w| self.unavailable(w))?;
        let pairs: HashMap<String, String> =
            redis::from_redis_value(v).map_err(|e| self.unavailable(e.to_string()))?;
        Ok((!pairs.is_empty()).then_some(pairs))
    }

    /// The store, when a site was imported under its database and prefix; otherwise the
    /// error that says so (contract §11): a mistyped prefix or database must not look like a
    /// store without sessions.
    pub fn require_imported(mut self) -> Result<Self, StoreError> {
        if let Some(e) = self.foreign.take() {
            return Err(e);
        }
        if self.imported {
            return Ok(self);
        }
        Err(StoreError::NotImported {
            location: self.location(),
            prefix: self.layout.prefix.clone(),
        })
    }

    /// Whether a site was imported under this database and prefix.
    pub fn is_imported(&self) -> bool {
        self.imported
    }

    /// From now on nothing is written to Redis: changes stay in this process (a dry run).
    pub fn read_only(mut self) -> Self {
        self.overlay = Some(Overlay::default());
        self
    }

    /// From now on the index entries of ended sessions are removed when the run finishes
    /// (a `--shard` run), not as each write ends them.
    pub fn hold_ended_ids(mut self) -> Self {
        self.held = Some(parking_lot::Mutex::default());
        self
    }

    pub fn prefix(&self) -> &str {
        &self.layout.prefix
    }

    /// A realm's code as its records' keys spell it; `-` for a realm with no code, whose
    /// records cannot exist (no key has `-`), so reading one finds none.
    fn realm_code(&self, realm: RealmId) -> String {
        self.codes
            .realm(self.names.realm_name(realm))
            .map_or_else(|| "-".to_string(), |c| c.to_string())
    }

    /// The tag of a (realm, folded user): its record's hash tag and its index entries' value.
    fn tag(&self, realm: RealmId, user_key: &str) -> String {
        keys::tag(&self.realm_code(realm), user_key)
    }

    /// Gives codes (`codes.rs`) to the realms and session-id prefixes that have none yet:
    /// each from the counter in `meta`, set only if nobody set it first, then read back.
    fn assign_codes<'a>(
        &mut self,
        realms: impl Iterator<Item = &'a str>,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        let missing = self.codes.missing(realms, ids);
        if missing.is_empty() {
            return Ok(());
        }
        let meta = self.layout.meta();
        let counters: Vec<Keyed> = missing
            .iter()
            .map(|_| Keyed::new("HINCRBY", &meta).arg(codes::COUNTER).arg(1))
            .collect();
        let mut sets = Vec::with_capacity(missing.len());
        for (field, reply) in missing.iter().zip(self.nodes.run(&counters, true, true)) {
            let code = reply.value().map_err(|w| self.unavailable(w))?;
            let code: i64 =
                redis::from_redis_value(code).map_err(|e| self.unavailable(e.to_string()))?;
            sets.push(Keyed::new("HSETNX", &meta).arg(field).arg(code));
        }
        self.run_all(&sets)?;
        self.codes = Codes::from_meta(&self.read_meta()?.unwrap_or_default());
        Ok(())
    }

    fn unavailable(&self, reason: impl Into<String>) -> StoreError {
        self.nodes.target.unavailable(reason)
    }

    fn unreadable(&self, key: &str, why: &str) -> StoreError {
        StoreError::NotFound {
            location: self.location(),
            what: format!("a readable record at `{key}` ({why})"),
        }
    }

    /// Calls `f` with the sessions of every record (of `realm`, when given), record by
    /// record, node by node.
    fn each_record(
        &self,
        realm: Option<RealmId>,
        f: &mut dyn FnMut(&str, usize, Vec<Session>),
    ) -> Result<(), StoreError> {
        let pattern = self
            .layout
            .record_pattern(realm.map(|r| self.realm_code(r)).as_deref());
        self.each_key(&pattern, &mut |keys| {
            for (key, stored) in keys.iter().zip(self.read_records(keys)) {
                if let Some(bytes) = stored? {
                    let sessions = record::decode(&bytes, &self.names, 0)
                        .map_err(|bad| self.unreadable(key, &bad.0))?;
                    f(key, bytes.len(), sessions);
                }
            }
            Ok(())
        })
    }

    /// Calls `f` with every key that matches `pattern`, a `SCAN` step at a time, on every
    /// primary.
    fn each_key(
        &self,
        pattern: &str,
        f: &mut dyn FnMut(&[String]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let map = self.nodes.map();
        for node in &map.nodes {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = self
                    .nodes
                    .with_connection(&node.addr, &node.info, |con| {
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(SCAN_COUNT)
                            .query(con)
                    })
                    .map_err(|e| self.unavailable(format!("{}: {e}", node.addr)))?;
                if !keys.is_empty() {
                    f(&keys)?;
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Whether any key of this store's prefix exists.
    pub fn holds_anything(&self) -> Result<bool, StoreError> {
        let mut found = false;
        self.each_key(&self.layout.all_pattern(), &mut |_| {
            found = true;
            Ok(())
        })?;
        Ok(found)
    }

    /// Removes every key of this store's prefix (its codes too: an import after it gives
    /// them out afresh).
    pub fn clear(&mut self) -> Result<u64, StoreError> {
        self.codes = Codes::default();
        self.imported = false;
        self.foreign = None;
        let mut removed = 0u64;
        self.each_key(&self.layout.all_pattern(), &mut |keys| {
            let cmds: Vec<Keyed> = keys.iter().map(|k| Keyed::new("UNLINK", k)).collect();
            self.run_all(&cmds)?;
            removed += keys.len() as u64;
            Ok(())
        })?;
        Ok(removed)
    }

    /// Writes `sessions` (a site's, in its order) as records and index entries. The store
    /// must hold nothing under the prefix (see [`RedisStore::holds_anything`]).
    pub fn import(&mut self, sessions: &[Session]) -> Result<(), StoreError> {
        let buckets = u32::try_from((sessions.len() / 64).next_power_of_two())
            .unwrap_or(u32::MAX)
            .max(1024);
        self.layout.buckets = buckets;
        let names = self.names.clone();
        self.assign_codes(
            names.realm_ids().map(|r| names.realm_name(r)),
            sessions.iter().map(|s| &*s.id),
        )?;
        let mut users: Vec<(String, Vec<Session>)> = Vec::new();
        let mut by_tag: HashMap<String, usize> = HashMap::new();
        for s in sessions {
            let tag = self.tag(s.realm, &UserKey::of(&s.user));
            let at = *by_tag.entry(tag.clone()).or_insert_with(|| {
                users.push((tag, Vec::new()));
                users.len() - 1
            });
            users[at].1.push(s.clone());
        }
        let mut cmds: Vec<Keyed> = Vec::with_capacity(users.len() + buckets as usize + 1);
        let mut index: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for (tag, list) in &users {
            let key = self.layout.record(tag);
            let bytes = record::encode(update::fresh_nonce(), list, &self.names);
            cmds.push(Keyed::new("SET", &key).arg(bytes));
            for s in list {
                let field = self.codes.field(&s.id).unwrap_or_default();
                index
                    .entry(self.layout.bucket(&s.id))
                    .or_default()
                    .push((field, tag.clone()));
            }
        }
        for (bucket, entries) in &index {
            let mut cmd = Keyed::new("HSET", bucket);
            for (field, tag) in entries {
                cmd = cmd.arg(field).arg(tag);
            }
            cmds.push(cmd);
        }
        let meta = self.layout.meta();
        cmds.push(
            Keyed::new("HSET", &meta)
                .arg("layout")
                .arg(LAYOUT)
                .arg("buckets")
                .arg(buckets),
        );
        self.run_all(&cmds)
    }

    /// Runs idempotent writes; the first that failed is the error.
    fn run_all(&self, cmds: &[Keyed]) -> Result<(), StoreError> {
        for r in self.nodes.run(cmds, true, true) {
            r.value().map_err(|w| self.unavailable(w))?;
        }
        Ok(())
    }

    /// Counts for `store stats`.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let mut st = Stats::default();
        let mut realms: HashMap<String, u64> = HashMap::new();
        let mut servers: HashMap<String, u64> = HashMap::new();
        self.each_record(None, &mut |_, bytes, sessions| {
            st.users += 1;
            st.record_bytes += bytes as u64;
            st.sessions += sessions.len() as u64;
            for s in &sessions {
                *realms
                    .entry(self.names.realm_name(s.realm).to_string())
                    .or_default() += 1;
                *servers
                    .entry(self.names.server_name(s.server).to_string())
                    .or_default() += 1;
            }
        })?;
        let map = self.nodes.map();
        st.nodes = map.nodes.len();
        for node in &map.nodes {
            let info: String = self
                .nodes
                .with_connection(&node.addr, &node.info, |con| {
                    redis::cmd("INFO").arg("memory").query(con)
                })
                .map_err(|e| self.unavailable(format!("{}: {e}", node.addr)))?;
            st.used_memory += info
                .lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        st.realms = realms.into_iter().collect();
        st.realms.sort();
        st.servers = servers.into_iter().collect();
        st.servers.sort();
        Ok(st)
    }
}

impl SessionStore for RedisStore {
    fn location(&self) -> String {
        self.nodes.target.location.clone()
    }

    fn apply(&self, clock: &Clock, ops: &[Op<'_>], refresher: &dyn Refresher) -> Applied {
        self.apply_batch(clock, ops, refresher)
    }

    fn owners(&self, ids: &[&str]) -> Result<Vec<Option<UserKey>>, StoreError> {
        self.tags_of(ids)
            .into_iter()
            .map(|t| {
                Ok(t?
                    .and_then(|t| keys::untag(&t))
                    .map(|(_, user)| UserKey::of(&user)))
            })
            .collect()
    }

    fn count_live(
        &self,
        clock: &Clock,
        users: &[(RealmId, UserKey)],
    ) -> Result<Vec<usize>, StoreError> {
        let keys: Vec<String> = users
            .iter()
            .map(|(r, u)| self.layout.record(&self.tag(*r, u)))
            .collect();
        keys.iter()
            .zip(self.read_records(&keys))
            .map(|(key, stored)| match stored? {
                None => Ok(0),
                Some(b) => record::decode(&b, &self.names, 0)
                    .map(|s| apply::live(&s, clock))
                    .map_err(|bad| self.unreadable(key, &bad.0)),
            })
            .collect()
    }

    fn scan(
        &self,
        clock: &Clock,
        realm: Option<RealmId>,
        f: &mut dyn FnMut(&Session),
    ) -> Result<(), StoreError> {
        self.each_record(realm, &mut |_, _, sessions| {
            for s in sessions.iter().filter(|s| clock.is_live(s)) {
                f(s);
            }
        })
    }

    fn live_in_replica_set(&self, clock: &Clock, set: ReplicaSetId) -> Result<usize, StoreError> {
        let mut n = 0;
        self.each_record(None, &mut |_, _, sessions| {
            n += sessions
                .iter()
                .filter(|s| s.replica_set == set && clock.is_live(s))
                .count();
        })?;
        Ok(n)
    }

    fn purge_expired(&self, clock: &Clock, realm: RealmId) -> Result<usize, StoreError> {
        let mut keys = Vec::new();
        self.each_record(Some(realm), &mut |key, _, sessions| {
            if apply::live(&sessions, clock) < sessions.len() {
                keys.push(key.to_string());
            }
        })?;
        let purged = self.update(&keys, &|_, mut sessions| {
            let before = sessions.len();
            sessions.retain(|s| clock.is_live(s));
            let n = before - sessions.len();
            update::Change {
                value: n,
                sessions: (n > 0).then_some(sessions),
            }
        });
        purged.into_iter().sum()
    }

    fn len(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        self.each_record(None, &mut |_, _, sessions| n += sessions.len())?;
        Ok(n)
    }

    fn export(&self, f: &mut dyn FnMut(&Session)) -> Result<(), StoreError> {
        let mut seq = 0;
        self.each_record(None, &mut |_, _, mut sessions| {
            for s in &mut sessions {
                s.seq = seq;
                seq += 1;
                f(s);
            }
        })
    }

    fn saved_by_site(&self) -> bool {
        false
    }

    fn finish_run(&self) {
        if let Some(held) = &self.held {
            let ended = std::mem::take(&mut *held.lock());
            self.unindex(&ended);
        }
    }
}
