//! The in-memory, partitioned session store: the site-files store while a run holds it.
//!
//! Sessions live in a power-of-two number of partitions, each behind one
//! `parking_lot::RwLock`: fixed-size slots, a user table `(realm, folded user) -> chain of
//! slots`, and the sessions' credentials, shared by a user's equal ones (`partition.rs`). The
//! partition is chosen by a stable hash (FNV-1a, then a finaliser) of (realm, folded user), so
//! a user's sessions in a realm share one lock and one refresh is atomic for that user. The
//! session ids live in a second, id-sharded index that owns their bytes (`ids.rs`), so that
//! `refresh session ID` never scans and an id is stored once.
//!
//! A batch ([`SessionStore::apply`]) is grouped by partition; each group runs in batch order
//! under one lock acquisition, and the groups run in parallel on the caller's rayon pool.
//!
//! Lock order: a partition lock may be held while taking id-shard locks, never the reverse,
//! and no thread holds two partition locks for writing.

mod ids;
mod partition;

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{RwLock, RwLockReadGuard};
use rayon::prelude::*;

use self::ids::{IdShard, Loc, id_hash, shard_of};
pub use self::partition::NewSession;
use self::partition::{Key, Locked, Partition, Slot};
use super::{Applied, Done, Op, Refresher, SessionStore, StoreError};
use crate::hash::stable_hash;
use crate::ids::{RealmId, ReplicaSetId, UserKey};
use crate::session::{Clock, Session};

/// The default partition count: enough that 2–16 workers rarely meet on one lock.
pub const DEFAULT_PARTITIONS: usize = 64;

/// At most this many partitions (an id's shard is kept in 16 bits).
const MAX_PARTITIONS: usize = 1 << 16;

/// Batches up to this size run on the calling thread, one lock per operation: grouping
/// costs more than it saves for a handful of commands.
const SMALL_BATCH: usize = 32;

/// A session id that is already in the store; `existing_seq` is the other session's `seq`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("duplicate session id")]
pub struct DuplicateId {
    pub existing_seq: u64,
}

/// Keeps partitions on separate cache lines so two workers do not share one.
#[repr(align(128))]
struct Padded<T>(T);

/// The in-memory [`SessionStore`].
pub struct MemoryStore {
    partitions: Box<[Padded<RwLock<Partition>>]>,
    ids: Box<[Padded<RwLock<IdShard>>]>,
    /// log2 of the partition (and id shard) count.
    bits: u32,
    /// Set by the first operation that changes a session (loading does not count).
    changed: AtomicBool,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_partitions(DEFAULT_PARTITIONS)
    }
}

/// Every id shard read-locked: what turns a slot's id reference back into text.
struct IdView<'a>(Vec<RwLockReadGuard<'a, IdShard>>);

impl IdView<'_> {
    /// The session in `slot` of `part` as a [`Session`]; `id` is scratch for its id's text.
    fn session(&self, part: &Partition, slot: u32, id: &mut String) -> Option<Session> {
        let s = part.slots.get(slot as usize)?;
        id.clear();
        self.0.get(s.id_shard() as usize)?.write_id(s.id_offset, id);
        part.session(slot, id)
    }
}

impl MemoryStore {
    /// A store with `n` partitions, rounded up to a power of two (at most 65,536).
    pub fn with_partitions(n: usize) -> Self {
        let n = n.clamp(1, MAX_PARTITIONS).next_power_of_two();
        Self {
            partitions: (0..n)
                .map(|_| Padded(RwLock::new(Partition::default())))
                .collect(),
            ids: (0..n)
                .map(|_| Padded(RwLock::new(IdShard::default())))
                .collect(),
            bits: n.trailing_zeros(),
            changed: AtomicBool::new(false),
        }
    }

    /// How many partitions (locks) the store has.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// The stable hash of a user (folded name) in a realm: picks the partition.
    pub(crate) fn user_hash(realm: RealmId, user_key: &str) -> u64 {
        stable_hash(&[&realm.0.to_le_bytes(), user_key.as_bytes()])
    }

    fn index(&self, hash: u64) -> usize {
        if self.bits == 0 {
            0
        } else {
            (hash >> (64 - self.bits)) as usize
        }
    }

    /// The partition holding a user's (folded name) sessions in a realm.
    pub fn partition_of(&self, realm: RealmId, user_key: &str) -> usize {
        self.index(Self::user_hash(realm, user_key))
    }

    fn locate(&self, id: &str) -> Option<Loc> {
        let h = id_hash(id);
        self.ids[shard_of(h, self.bits)].0.read().find(id, h)
    }

    fn forget_id(&self, shard: u16, offset: u32) {
        if let Some(s) = self.ids.get(shard as usize) {
            s.0.write().remove(offset);
        }
    }

    fn id_view(&self) -> IdView<'_> {
        IdView(self.ids.iter().map(|s| s.0.read()).collect())
    }

    /// Whether the session in `slot` of `part` has the id `id` (a slot can be reused between
    /// finding an id and locking its partition).
    fn slot_has_id(&self, part: &Partition, slot: u32, id: &str) -> bool {
        if part.is_free(slot) {
            return false;
        }
        let s = &part.slots[slot as usize];
        self.ids[s.id_shard() as usize]
            .0
            .read()
            .holds(s.id_offset, id)
    }

    /// The partition an operation concerns; `None` for a session id the store lacks.
    fn partition_of_op(&self, op: &Op<'_>) -> Option<usize> {
        match op {
            Op::RefreshUser { realm, user, .. } | Op::TerminateUser { realm, user, .. } => {
                Some(self.partition_of(*realm, user))
            }
            Op::RefreshSession { id, .. } | Op::TerminateSession { id, .. } => {
                self.locate(id).map(|l| l.partition as usize)
            }
        }
    }

    fn lock(&self, partition: usize) -> Locked<'_> {
        Locked {
            store: self,
            index: partition,
            part: self.partitions[partition].0.write(),
        }
    }

    /// A copy of the live session with this id.
    pub fn get(&self, id: &str, clock: &Clock) -> Option<Session> {
        let loc = self.locate(id)?;
        let part = self.partitions[loc.partition as usize].0.read();
        (self.slot_has_id(&part, loc.slot, id) && part.live(loc.slot, clock))
            .then(|| part.session(loc.slot, id))
            .flatten()
    }

    /// Every session held, live or expired.
    pub fn session_count(&self) -> usize {
        self.ids.iter().map(|s| s.0.read().len()).sum()
    }

    /// Prepares room for about `sessions` more sessions (a loader that knows the count calls
    /// it first, so tables are sized once instead of growing by rehashing). Room never used
    /// is never touched, so it costs address space, not memory: nothing is shrunk after a
    /// load (shrinking the slots copied them, and raised the peak by their size).
    pub fn reserve(&self, sessions: usize) {
        let n = self.partitions.len();
        // Hashing spreads sessions evenly; a little headroom covers the variance.
        let per = sessions / n + sessions / n / 8 + 16;
        for p in &self.partitions {
            // About two to three sessions per user.
            p.0.write().reserve(per, per / 2 + 1);
        }
        for shard in &self.ids {
            // An id takes ~12 bytes of arena once its prefix is shared.
            shard.0.write().reserve(per, 12);
        }
    }

    /// Adds a session; its id must be new. Sessions of one user with equal credentials end
    /// up sharing one allocation.
    pub fn insert(&self, session: &Session) -> Result<(), DuplicateId> {
        self.insert_new(&NewSession::from(session))
    }

    /// Adds a session given by reference (what loaders use: nothing is built only to be
    /// taken apart); its id must be new.
    pub fn insert_new(&self, s: &NewSession<'_>) -> Result<(), DuplicateId> {
        let ih = id_hash(s.id);
        self.place(s, ih, |shard, loc| shard.insert(s.id, ih, loc))
            .map_err(|other| DuplicateId {
                existing_seq: self.seq_at(other),
            })
    }

    /// Places a session in its user's partition, its id recorded by `record` (which gives
    /// the id's offset in its shard, or the place of the session that already has the id,
    /// and then nothing is placed). `ih` is the id's hash.
    fn place(
        &self,
        s: &NewSession<'_>,
        ih: u64,
        record: impl FnOnce(&mut IdShard, Loc) -> Result<u32, Loc>,
    ) -> Result<(), Loc> {
        let key: Key = (s.realm, UserKey::of(s.user));
        let h = Self::user_hash(key.0, &key.1);
        let p = self.index(h);
        let mut part = self.partitions[p].0.write();
        let shard_i = shard_of(ih, self.bits);
        let slot = part.next_slot();
        let loc = Loc {
            partition: u32::try_from(p).expect("partition index fits u32"),
            slot,
        };
        let offset = record(&mut self.ids[shard_i].0.write(), loc)?;
        part.take_next_slot();
        let shard = u16::try_from(shard_i).expect("at most 2^16 id shards");
        part.add(s, key, h, (shard, offset), slot);
        Ok(())
    }

    /// Starts a bulk load: sessions added through it have their ids indexed only by
    /// [`BulkLoad::finish`], each id shard at once, in parallel.
    pub fn bulk_load(&self) -> BulkLoad<'_> {
        BulkLoad {
            store: self,
            starts: self.ids.iter().map(|s| s.0.read().end()).collect(),
        }
    }

    /// The `seq` of the session at `loc`, 0 if there is none.
    fn seq_at(&self, loc: Loc) -> u64 {
        let part = self.partitions[loc.partition as usize].0.read();
        part.slots
            .get(loc.slot as usize)
            .filter(|_| !part.is_free(loc.slot))
            .map_or(0, Slot::seq)
    }

    /// Checks the store's internal agreement (for tests and diagnostics): every session is in
    /// its user's chain and in the id index at its place, every chained slot holds a session
    /// of that user, and the id index has no other entry. Returns the session count.
    pub fn check_invariants(&self) -> Result<usize, String> {
        let mut sessions = 0usize;
        for (pi, p) in self.partitions.iter().enumerate() {
            let part = p.0.read();
            sessions += self.check_partition(pi, &part)?;
        }
        let mut ids = 0usize;
        for shard in &self.ids {
            let shard = shard.0.read();
            for (offset, loc) in shard.locs() {
                ids += 1;
                let part = self.partitions[loc.partition as usize].0.read();
                let s = part
                    .slots
                    .get(loc.slot as usize)
                    .filter(|_| !part.is_free(loc.slot));
                if s.is_none_or(|s| s.id_offset != offset) {
                    return Err(format!("id entry {loc:?} has no session"));
                }
            }
        }
        if ids != sessions {
            return Err(format!("{ids} id entries for {sessions} sessions"));
        }
        Ok(sessions)
    }

    fn check_partition(&self, pi: usize, part: &Partition) -> Result<usize, String> {
        let mut sessions = 0;
        let mut id = String::new();
        for si in 0..part.slots.len() as u32 {
            if part.is_free(si) {
                continue;
            }
            sessions += 1;
            let s = &part.slots[si as usize];
            id.clear();
            self.ids[s.id_shard() as usize]
                .0
                .read()
                .write_id(s.id_offset, &mut id);
            let Some(user) = part.slot_user(si) else {
                return Err(format!("session {id} has no user"));
            };
            let h = Self::user_hash(user.realm, &user.key);
            if self.index(h) != pi {
                return Err(format!("session {id} is in partition {pi}, not its user's"));
            }
            if part.user_index(user.realm, &user.key, h) != Some(s.user) {
                return Err(format!("session {id}'s user is not in the user index"));
            }
            if !part.chain(s.user).any(|x| x == si) {
                return Err(format!("session {id} is missing from its user's chain"));
            }
            match self.locate(&id) {
                Some(loc) if loc.partition as usize == pi && loc.slot == si => {}
                other => return Err(format!("session {id} has id entry {other:?}")),
            }
        }
        for user in part.indexed_users() {
            for slot in part.chain(user) {
                if part.is_free(slot) || part.slots[slot as usize].user != user {
                    return Err(format!(
                        "user {user} chains slot {slot}, which is not theirs"
                    ));
                }
            }
        }
        Ok(sessions)
    }

    fn apply_grouped(&self, clock: &Clock, ops: &[Op<'_>], refresher: &dyn Refresher) -> Applied {
        let mut groups: Vec<Vec<u32>> = vec![Vec::new(); self.partitions.len()];
        let mut out: Vec<Result<Done, StoreError>> = vec![Ok(Done::NoSession); ops.len()];
        for (i, op) in ops.iter().enumerate() {
            if let Some(p) = self.partition_of_op(op) {
                groups[p].push(u32::try_from(i).expect("batches stay under 2^32 operations"));
            }
        }
        let done: Vec<Vec<(u32, Done)>> = groups
            .par_iter()
            .enumerate()
            .filter(|(_, g)| !g.is_empty())
            .map(|(p, idxs)| {
                let mut locked = self.lock(p);
                std::hint::black_box(locked.part.warm(idxs.iter().map(|i| &ops[*i as usize])));
                idxs.iter()
                    .map(|i| (*i, locked.apply(&ops[*i as usize], clock, refresher)))
                    .collect()
            })
            .collect();
        for (i, d) in done.into_iter().flatten() {
            out[i as usize] = Ok(d);
        }
        out
    }
}

/// Two sessions of a bulk load with one id: `seq` is the later of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the session id `{id}` is in sessions {existing_seq} and {seq}")]
pub struct DuplicateIds {
    pub id: String,
    pub seq: u64,
    pub existing_seq: u64,
}

/// A load of many sessions (see [`MemoryStore::bulk_load`]). Until [`BulkLoad::finish`]
/// succeeds the store cannot find its new sessions by id; a load that fails drops the store.
#[must_use = "a bulk load's ids are indexed only by `finish`"]
pub struct BulkLoad<'a> {
    store: &'a MemoryStore,
    /// Where each id shard's new records begin.
    starts: Vec<u32>,
}

impl BulkLoad<'_> {
    /// Adds a session (safe to call from many threads at once). A duplicate id is found by
    /// `finish`.
    pub fn insert(&self, s: &NewSession<'_>) {
        // Appending never refuses: duplicates are `finish`'s.
        let _ = self
            .store
            .place(s, id_hash(s.id), |shard, loc| Ok(shard.append(s.id, loc)));
    }

    /// Indexes the loaded ids, shard by shard in parallel. A session whose id another
    /// already has is taken out again, as [`MemoryStore::insert`] refuses it, and of several
    /// duplicates the one whose later session comes first is reported.
    pub fn finish(mut self) -> Result<(), DuplicateIds> {
        self.index().map_or(Ok(()), Err)
    }

    fn index(&mut self) -> Option<DuplicateIds> {
        let store = self.store;
        let starts = std::mem::take(&mut self.starts);
        if starts.is_empty() {
            return None;
        }
        let clashes: Vec<(Loc, Loc)> = store
            .ids
            .par_iter()
            .zip(starts.par_iter())
            .flat_map_iter(|(shard, start)| shard.0.write().index_from(*start))
            .collect();
        let mut found: Option<DuplicateIds> = None;
        for (_, extra) in clashes {
            let (shard, offset) = {
                let part = store.partitions[extra.partition as usize].0.read();
                let s = &part.slots[extra.slot as usize];
                (s.id_shard(), s.id_offset)
            };
            let mut id = String::new();
            store.ids[shard as usize].0.read().write_id(offset, &mut id);
            // The session the index holds for this id now (an earlier clash may have
            // changed it): the earlier of the two stays, as loading in order would keep it.
            let Some(held) = store.locate(&id) else {
                continue;
            };
            let (held_seq, extra_seq) = (store.seq_at(held), store.seq_at(extra));
            let (seq, existing_seq) = (held_seq.max(extra_seq), held_seq.min(extra_seq));
            let gone = if extra_seq < held_seq {
                let held_offset = {
                    let part = store.partitions[held.partition as usize].0.read();
                    part.slots[held.slot as usize].id_offset
                };
                store.ids[shard as usize]
                    .0
                    .write()
                    .repoint(held_offset, offset);
                held
            } else {
                extra
            };
            // The record of the session that goes is no longer indexed: only its slot goes.
            store.partitions[gone.partition as usize]
                .0
                .write()
                .free_slot(gone.slot);
            if found.as_ref().is_none_or(|f| seq < f.seq) {
                found = Some(DuplicateIds {
                    id,
                    seq,
                    existing_seq,
                });
            }
        }
        found
    }
}

/// A load dropped before `finish` (its loader failed) still leaves a store whose every
/// session can be found by id.
impl Drop for BulkLoad<'_> {
    fn drop(&mut self) {
        let _ = self.index();
    }
}

impl SessionStore for MemoryStore {
    fn location(&self) -> String {
        "file:".to_string()
    }

    fn owners(&self, ids: &[&str]) -> Result<Vec<Option<UserKey>>, StoreError> {
        Ok(ids
            .iter()
            .map(|id| {
                let loc = self.locate(id)?;
                let part = self.partitions[loc.partition as usize].0.read();
                if !self.slot_has_id(&part, loc.slot, id) {
                    return None;
                }
                part.slot_user(loc.slot).map(|u| u.key.clone())
            })
            .collect())
    }

    fn apply(&self, clock: &Clock, ops: &[Op<'_>], refresher: &dyn Refresher) -> Applied {
        let applied: Applied = if ops.len() > SMALL_BATCH {
            self.apply_grouped(clock, ops, refresher)
        } else {
            ops.iter()
                .map(|op| {
                    Ok(match self.partition_of_op(op) {
                        Some(p) => self.lock(p).apply(op, clock, refresher),
                        None => Done::NoSession,
                    })
                })
                .collect()
        };
        if !self.changed.load(Ordering::Relaxed)
            && applied
                .iter()
                .any(|r| matches!(r, Ok(Done::Sessions(n)) if *n > 0))
        {
            self.changed.store(true, Ordering::Relaxed);
        }
        applied
    }

    fn count_live(
        &self,
        clock: &Clock,
        users: &[(RealmId, UserKey)],
    ) -> Result<Vec<usize>, StoreError> {
        Ok(users
            .iter()
            .map(|key| {
                let h = Self::user_hash(key.0, &key.1);
                let part = self.partitions[self.index(h)].0.read();
                part.user_slots(key, h, super::Scope::Realm, clock).len()
            })
            .collect())
    }

    fn scan(
        &self,
        clock: &Clock,
        realm: Option<RealmId>,
        f: &mut dyn FnMut(&Session),
    ) -> Result<(), StoreError> {
        for p in &self.partitions {
            let part = p.0.read();
            let view = self.id_view();
            let mut id = String::new();
            for slot in 0..part.slots.len() as u32 {
                let admitted = part.live(slot, clock)
                    && realm.is_none_or(|r| part.slot_user(slot).is_some_and(|u| u.realm == r));
                if let Some(session) = admitted
                    .then(|| view.session(&part, slot, &mut id))
                    .flatten()
                {
                    f(&session);
                }
            }
        }
        Ok(())
    }

    fn live_in_replica_set(&self, clock: &Clock, set: ReplicaSetId) -> Result<usize, StoreError> {
        let mut n = 0;
        for p in &self.partitions {
            let part = p.0.read();
            n += (0..part.slots.len() as u32)
                .filter(|slot| {
                    part.live(*slot, clock) && part.slots[*slot as usize].replica_set == set
                })
                .count();
        }
        Ok(n)
    }

    fn purge_expired(&self, clock: &Clock, realm: RealmId) -> Result<usize, StoreError> {
        let mut n = 0;
        for p in 0..self.partitions.len() {
            let mut locked = self.lock(p);
            let part = &*locked.part;
            let doomed: Vec<u32> = (0..part.slots.len() as u32)
                .filter(|slot| {
                    !part.is_free(*slot)
                        && !part.live(*slot, clock)
                        && part.slot_user(*slot).is_some_and(|u| u.realm == realm)
                })
                .collect();
            for slot in doomed {
                n += usize::from(locked.remove_slot(slot));
            }
        }
        if n > 0 {
            self.changed.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }

    fn len(&self) -> Result<usize, StoreError> {
        Ok(self.session_count())
    }

    fn export(&self, f: &mut dyn FnMut(&Session)) -> Result<(), StoreError> {
        let guards: Vec<_> = self.partitions.iter().map(|p| p.0.read()).collect();
        let view = self.id_view();
        let mut order: Vec<(u64, u32, u32)> = Vec::with_capacity(self.session_count());
        for (pi, part) in guards.iter().enumerate() {
            for (si, s) in part.slots.iter().enumerate() {
                if !part.is_free(si as u32) {
                    order.push((s.seq(), pi as u32, si as u32));
                }
            }
        }
        order.sort_unstable();
        let mut id = String::new();
        for (_, pi, si) in order {
            if let Some(session) = view.session(&guards[pi as usize], si, &mut id) {
                f(&session);
            }
        }
        Ok(())
    }

    fn export_as_held(&self, f: &mut dyn FnMut(&Session)) -> Result<(), StoreError> {
        let mut id = String::new();
        for p in &self.partitions {
            let part = p.0.read();
            let view = self.id_view();
            for slot in 0..part.slots.len() as u32 {
                if part.is_free(slot) {
                    continue;
                }
                if let Some(session) = view.session(&part, slot, &mut id) {
                    f(&session);
                }
            }
        }
        Ok(())
    }

    fn saved_by_site(&self) -> bool {
        true
    }

    fn changed(&self) -> bool {
        self.changed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Credential, CredentialBuilder};
    use crate::ids::ServerId;
    use crate::store::{Scope, Within};

    fn cred(groups: &[&str]) -> Credential {
        let mut b = CredentialBuilder::default();
        b.push_list("AZN_CRED_GROUPS", groups.iter().copied())
            .unwrap();
        b.build()
    }

    fn session(seq: u64, id: &str, user: &str, realm: u16, rs: u16) -> Session {
        Session {
            seq,
            id: id.into(),
            user: user.into(),
            realm: RealmId(realm),
            replica_set: ReplicaSetId(rs),
            server: ServerId(0),
            created: 1000,
            last_access: 1000,
            last_refresh: None,
            credential: cred(&["old"]),
        }
    }

    const CLOCK: Clock = Clock {
        now: 2000,
        timeout: 0,
        inactive_timeout: 0,
    };

    fn store() -> MemoryStore {
        let s = MemoryStore::with_partitions(8);
        s.insert(&session(1, "a1", "Alice", 0, 0)).unwrap();
        s.insert(&session(2, "a2", "alice", 0, 1)).unwrap();
        s.insert(&session(3, "a3", "ALICE", 1, 2)).unwrap();
        s.insert(&session(4, "b1", "bob", 0, 0)).unwrap();
        s
    }

    /// Every fresh credential is `new`; `nobody` is not in the registry.
    struct NewGroups(Credential);

    impl Refresher for NewGroups {
        fn fresh(&self, user: &str) -> Option<&Credential> {
            (user != "nobody").then_some(&self.0)
        }
        fn merge(&self, _old: &Credential, fresh: &Credential) -> Credential {
            fresh.clone()
        }
    }

    fn one(s: &MemoryStore, clock: &Clock, op: Op<'_>) -> Done {
        let r = NewGroups(cred(&["new"]));
        s.apply(clock, &[op], &r).pop().unwrap().unwrap()
    }

    fn refresh<'a>(realm: u16, user: &str, scope: Scope<'a>, fresh: &'a Credential) -> Op<'a> {
        Op::RefreshUser {
            realm: RealmId(realm),
            user: UserKey::of(user),
            scope,
            fresh,
        }
    }

    #[test]
    fn a_bulk_load_indexes_its_ids_at_the_end_and_names_the_first_duplicate() {
        let s = store();
        let loading = s.bulk_load();
        let fresh: Vec<Session> = (0..2000u64)
            .map(|i| session(10 + i, &format!("n{i}"), &format!("u{}", i % 700), 0, 0))
            .collect();
        fresh.par_iter().for_each(|x| loading.insert(&x.into()));
        assert!(s.locate("n5").is_none(), "not findable before finish");
        loading.finish().unwrap();
        assert_eq!(s.check_invariants(), Ok(2004));
        assert_eq!(s.get("n1999", &CLOCK).map(|x| x.seq), Some(2009));
        assert_eq!(s.get("a3", &CLOCK).map(|x| x.seq), Some(3));

        // Duplicates among the new ids and with an id already held: the one whose later
        // session comes first is named, by both numbers, whatever the insertion order.
        let s = store();
        let loading = s.bulk_load();
        let dups = [
            session(40, "x", "carol", 0, 0),
            session(30, "b1", "dave", 0, 0),
            session(20, "y", "erin", 1, 2),
            session(12, "x", "frank", 0, 0),
            session(50, "y", "gina", 0, 0),
        ];
        dups.par_iter().for_each(|x| loading.insert(&x.into()));
        assert_eq!(
            loading.finish(),
            Err(DuplicateIds {
                id: "b1".into(),
                seq: 30,
                existing_seq: 4,
            })
        );
        // The earlier session of each id stays, as inserting in order would keep it.
        assert_eq!(s.check_invariants(), Ok(6));
        let seq = |id: &str| s.get(id, &CLOCK).map(|x| x.seq);
        assert_eq!(
            (seq("b1"), seq("x"), seq("y")),
            (Some(4), Some(12), Some(20))
        );

        // A load abandoned half way (its loader failed) leaves every session findable.
        let s = store();
        let loading = s.bulk_load();
        loading.insert(&(&session(9, "z", "zed", 0, 0)).into());
        loading.insert(&(&session(10, "a1", "zed", 0, 0)).into());
        drop(loading);
        assert_eq!(s.check_invariants(), Ok(5));
        assert_eq!(s.get("z", &CLOCK).map(|x| x.seq), Some(9));
    }

    #[test]
    fn export_as_held_gives_every_session_once_with_its_number() {
        let s = store();
        one(
            &s,
            &CLOCK,
            Op::TerminateSession {
                id: "a2",
                within: Within::Realm(RealmId(0)),
            },
        );
        let mut held = Vec::new();
        s.export_as_held(&mut |x| held.push((x.seq, x.id.to_string())))
            .unwrap();
        held.sort();
        let mut ordered = Vec::new();
        s.export(&mut |x| ordered.push((x.seq, x.id.to_string())))
            .unwrap();
        assert_eq!(held, ordered);
        assert_eq!(held.len(), 3);
    }

    #[test]
    fn partition_choice_is_stable() {
        let s = MemoryStore::with_partitions(64);
        // Golden values: changing the partition function changes snapshots' locality and
        // per-partition statistics, so it must be deliberate.
        assert_eq!(s.partition_of(RealmId(0), "johnq"), 48);
        assert_eq!(s.partition_of(RealmId(1), "johnq"), 15);
        let spread: std::collections::HashSet<_> = (0..1000)
            .map(|i| s.partition_of(RealmId(0), &format!("user{i}")))
            .collect();
        assert_eq!(spread.len(), 64);
        assert_eq!(
            MemoryStore::with_partitions(1).partition_of(RealmId(3), "x"),
            0
        );
        assert_eq!(MemoryStore::with_partitions(100).partition_count(), 128);
    }

    #[test]
    fn duplicate_ids_are_rejected_with_the_other_seq() {
        let s = store();
        assert_eq!(
            s.insert(&session(9, "a2", "zed", 1, 2)),
            Err(DuplicateId { existing_seq: 2 })
        );
        assert_eq!(s.session_count(), 4);
    }

    #[test]
    fn sessions_of_one_user_share_a_credential() {
        let s = store();
        let (a1, a2) = (s.get("a1", &CLOCK).unwrap(), s.get("a2", &CLOCK).unwrap());
        assert!(Credential::ptr_eq(&a1.credential, &a2.credential));
        // And still share the merged one after a refresh.
        let new = cred(&["new"]);
        one(&s, &CLOCK, refresh(0, "alice", Scope::Realm, &new));
        let (a1, a2) = (s.get("a1", &CLOCK).unwrap(), s.get("a2", &CLOCK).unwrap());
        assert!(Credential::ptr_eq(&a1.credential, &a2.credential));
    }

    #[test]
    fn refresh_user_touches_only_that_user_in_that_realm_and_scope() {
        let s = store();
        let new = cred(&["new"]);
        let n = one(&s, &CLOCK, refresh(0, "ALICE", Scope::Realm, &new));
        assert_eq!(n, Done::Sessions(2));
        for id in ["a1", "a2"] {
            let x = s.get(id, &CLOCK).unwrap();
            assert_eq!(x.credential.groups(), ["new"]);
            assert_eq!(x.last_refresh, Some(2000));
        }
        for id in ["a3", "b1"] {
            assert_eq!(
                s.get(id, &CLOCK).unwrap().credential.groups(),
                ["old"],
                "{id}"
            );
        }
        static RS1: [ReplicaSetId; 1] = [ReplicaSetId(1)];
        let n = one(
            &s,
            &CLOCK,
            refresh(0, "bob", Scope::ReplicaSets(&RS1), &new),
        );
        assert_eq!(n, Done::Sessions(0));
        let counts = s
            .count_live(&CLOCK, &[(RealmId(0), UserKey::of("alice"))])
            .unwrap();
        assert_eq!(counts, [2]);
    }

    #[test]
    fn session_operations_check_where_the_session_is() {
        let s = store();
        let wrong_realm = Op::RefreshSession {
            id: "a3",
            within: Within::Realm(RealmId(0)),
        };
        assert_eq!(one(&s, &CLOCK, wrong_realm), Done::NoSession);
        let right = Op::RefreshSession {
            id: "a3",
            within: Within::Realm(RealmId(1)),
        };
        assert_eq!(one(&s, &CLOCK, right), Done::Sessions(1));
        s.insert(&session(5, "n1", "nobody", 0, 0)).unwrap();
        let unknown = Op::RefreshSession {
            id: "n1",
            within: Within::Realm(RealmId(0)),
        };
        assert_eq!(one(&s, &CLOCK, unknown), Done::UnknownUser);
        assert_eq!(s.get("n1", &CLOCK).unwrap().last_refresh, None);
    }

    #[test]
    fn terminate_user_and_session_update_both_indexes() {
        let s = store();
        let t = Op::TerminateUser {
            realm: RealmId(0),
            user: UserKey::of("alice"),
            scope: Scope::Realm,
        };
        assert_eq!(one(&s, &CLOCK, t), Done::Sessions(2));
        assert!(s.get("a1", &CLOCK).is_none());
        assert_eq!(s.session_count(), 2);
        let b1 = || Op::TerminateSession {
            id: "b1",
            within: Within::Realm(RealmId(0)),
        };
        assert_eq!(one(&s, &CLOCK, b1()), Done::Sessions(1));
        assert_eq!(one(&s, &CLOCK, b1()), Done::NoSession);
        assert_eq!(s.session_count(), 1);
        // Freed slots are reused and the id index follows.
        s.insert(&session(10, "c1", "carol", 0, 0)).unwrap();
        assert_eq!(s.get("c1", &CLOCK).unwrap().user, "carol");
        assert_eq!(s.check_invariants(), Ok(2));
    }

    #[test]
    fn a_large_batch_equals_the_same_operations_one_by_one() {
        let (a, b) = (
            MemoryStore::with_partitions(8),
            MemoryStore::with_partitions(8),
        );
        for s in [&a, &b] {
            for i in 0..200u64 {
                let user = format!("u{}", i % 50);
                s.insert(&session(
                    i,
                    &format!("s{i}"),
                    &user,
                    (i % 2) as u16,
                    (i % 2) as u16,
                ))
                .unwrap();
            }
        }
        let new = cred(&["new"]);
        let ids: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
        let mut ops = Vec::new();
        for i in 0..300usize {
            let user = UserKey::of(&format!("U{}", i % 60));
            let realm = RealmId((i % 2) as u16);
            ops.push(match i % 4 {
                0 => Op::RefreshUser {
                    realm,
                    user,
                    scope: Scope::Realm,
                    fresh: &new,
                },
                1 => Op::TerminateUser {
                    realm,
                    user,
                    scope: Scope::Realm,
                },
                2 => Op::RefreshSession {
                    id: &ids[i % 200],
                    within: Within::Realm(realm),
                },
                _ => Op::TerminateSession {
                    id: &ids[(i * 7) % 200],
                    within: Within::Realm(realm),
                },
            });
        }
        let r = NewGroups(new.clone());
        let batch = a.apply(&CLOCK, &ops, &r);
        let single: Applied = ops
            .iter()
            .flat_map(|op| b.apply(&CLOCK, std::slice::from_ref(op), &r))
            .collect();
        assert_eq!(batch, single);
        let dump = |s: &MemoryStore| {
            let mut v = Vec::new();
            s.export(&mut |x| v.push(x.clone())).unwrap();
            v
        };
        assert_eq!(dump(&a), dump(&b));
        assert!(a.check_invariants().is_ok());
    }

    #[test]
    fn expired_sessions_are_invisible_and_purgeable() {
        let s = store();
        let strict = Clock {
            now: 2000,
            timeout: 999,
            inactive_timeout: 0,
        };
        assert!(s.get("a1", &strict).is_none());
        let new = cred(&["new"]);
        let n = one(&s, &strict, refresh(0, "alice", Scope::Realm, &new));
        assert_eq!(n, Done::Sessions(0));
        let edge = Clock {
            now: 2000,
            timeout: 1000,
            inactive_timeout: 0,
        };
        assert!(
            s.get("a1", &edge).is_some(),
            "expiry is strictly greater than the limit"
        );
        assert_eq!(s.purge_expired(&strict, RealmId(1)), Ok(1));
        assert_eq!(s.purge_expired(&strict, RealmId(0)), Ok(3));
        assert_eq!(s.session_count(), 0);
    }

    #[test]
    fn export_follows_seq() {
        let s = store();
        let t = Op::TerminateSession {
            id: "a2",
            within: Within::Realm(RealmId(0)),
        };
        one(&s, &CLOCK, t);
        s.insert(&session(0, "z0", "zed", 0, 0)).unwrap();
        let mut ids = Vec::new();
        s.export(&mut |x| ids.push(x.id.to_string())).unwrap();
        assert_eq!(ids, ["z0", "a1", "a3", "b1"]);
    }

    /// One step of the model test.
    #[derive(Debug, Clone)]
    enum Step {
        Insert {
            id: usize,
            user: usize,
            realm: u16,
            rs: u16,
            age: i64,
        },
        RefreshUser {
            user: usize,
            realm: u16,
            only_rs1: bool,
        },
        TerminateUser {
            user: usize,
            realm: u16,
            only_rs1: bool,
        },
        RefreshSession {
            id: usize,
            realm: u16,
        },
        TerminateSession {
            id: usize,
            realm: u16,
        },
        Purge {
            realm: u16,
        },
    }

    /// Ids with shared prefixes, a near-miss of a prefix, and none at all.
    fn model_id(i: usize) -> String {
        match i % 4 {
            0 => format!("ZGVmYXVsdC13ZWJzZWFsZA_{i:04}"),
            1 => format!("c2VydmVyMg_{i}"),
            2 => format!("ZGVmYXVsdC13ZWJzZWFsZA{i}"),
            _ => format!("s{i}"),
        }
    }

    /// Users spelled in several cases, one of them not in the registry.
    const MODEL_USERS: [&str; 6] = ["alice", "Alice", "BOB", "bob", "Zoë", "nobody"];

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (0..40usize, 0..6usize, 0..2u16, 0..3u16, 0..1500i64)
                .prop_map(|(id, user, realm, rs, age)| Step::Insert { id, user, realm, rs, age }),
            1 => (0..6usize, 0..2u16, any::<bool>())
                .prop_map(|(user, realm, only_rs1)| Step::RefreshUser { user, realm, only_rs1 }),
            1 => (0..6usize, 0..2u16, any::<bool>())
                .prop_map(|(user, realm, only_rs1)| Step::TerminateUser { user, realm, only_rs1 }),
            1 => (0..40usize, 0..2u16).prop_map(|(id, realm)| Step::RefreshSession { id, realm }),
            1 => (0..40usize, 0..2u16).prop_map(|(id, realm)| Step::TerminateSession { id, realm }),
            1 => (0..2u16).prop_map(|realm| Step::Purge { realm }),
        ]
    }

    proptest::proptest! {
        /// The store against a list of sessions: every step's result, then every session.
        #[test]
        fn the_store_behaves_like_a_list_of_sessions(
            steps in proptest::collection::vec(step(), 1..120),
            batch in proptest::bool::ANY,
        ) {
            static RS1: [ReplicaSetId; 1] = [ReplicaSetId(1)];
            let clock = Clock { now: 2000, timeout: 1000, inactive_timeout: 0 };
            let new = cred(&["new"]);
            let r = NewGroups(new.clone());
            let store = MemoryStore::with_partitions(4);
            let mut model: Vec<Session> = Vec::new();
            let live = |s: &Session| clock.is_live(s);
            for (seq, st) in steps.into_iter().enumerate() {
                let seq = seq as u64 + 1;
                match st {
                    Step::Insert { id, user, realm, rs, age } => {
                        let mut s = session(seq, &model_id(id), MODEL_USERS[user], realm, rs);
                        s.created = 2000 - age;
                        s.last_access = s.created;
                        let expected = model.iter().find(|m| *m.id == *s.id)
                            .map(|m| DuplicateId { existing_seq: m.seq });
                        proptest::prop_assert_eq!(store.insert(&s).err(), expected.clone());
                        if expected.is_none() {
                            model.push(s);
                        }
                    }
                    Step::RefreshUser { user, realm, only_rs1 } | Step::TerminateUser { user, realm, only_rs1 } => {
                        let terminate = matches!(st, Step::TerminateUser { .. });
                        let scope = if only_rs1 { Scope::ReplicaSets(&RS1) } else { Scope::Realm };
                        let key = UserKey::of(MODEL_USERS[user]);
                        let hit = |m: &Session| m.realm == RealmId(realm)
                            && UserKey::of(&m.user) == key && scope.admits(m) && live(m);
                        let n = model.iter().filter(|m| hit(m)).count();
                        let op = if terminate {
                            model.retain(|m| !hit(m));
                            Op::TerminateUser { realm: RealmId(realm), user: key, scope }
                        } else {
                            for m in model.iter_mut().filter(|m| hit(m)) {
                                m.credential = new.clone();
                                m.last_refresh = Some(clock.now);
                            }
                            Op::RefreshUser { realm: RealmId(realm), user: key, scope, fresh: &new }
                        };
                        let got = if batch {
                            let mut ops = vec![op.clone(); 1];
                            // A large batch takes the grouped path; the extra operations
                            // act on a realm no session has.
                            ops.extend((0..40).map(|_| Op::TerminateUser {
                                realm: RealmId(9), user: UserKey::of("x"), scope: Scope::Realm,
                            }));
                            store.apply(&clock, &ops, &r).remove(0)
                        } else {
                            store.apply(&clock, &[op], &r).remove(0)
                        };
                        proptest::prop_assert_eq!(got, Ok(Done::Sessions(n)));
                    }
                    Step::RefreshSession { id, realm } | Step::TerminateSession { id, realm } => {
                        let terminate = matches!(st, Step::TerminateSession { .. });
                        let id = model_id(id);
                        let within = Within::Realm(RealmId(realm));
                        let at = model.iter().position(|m| *m.id == *id && live(m) && within.admits(m));
                        let expected = match at {
                            None => Done::NoSession,
                            Some(i) if terminate => { model.remove(i); Done::Sessions(1) }
                            Some(i) if UserKey::of(&model[i].user).as_str() == "nobody" => Done::UnknownUser,
                            Some(i) => {
                                model[i].credential = new.clone();
                                model[i].last_refresh = Some(clock.now);
                                Done::Sessions(1)
                            }
                        };
                        let op = if terminate {
                            Op::TerminateSession { id: &id, within }
                        } else {
                            Op::RefreshSession { id: &id, within }
                        };
                        proptest::prop_assert_eq!(store.apply(&clock, &[op], &r).remove(0), Ok(expected));
                    }
                    Step::Purge { realm } => {
                        let before = model.len();
                        model.retain(|m| m.realm != RealmId(realm) || live(m));
                        proptest::prop_assert_eq!(store.purge_expired(&clock, RealmId(realm)), Ok(before - model.len()));
                    }
                }
                proptest::prop_assert_eq!(store.check_invariants(), Ok(model.len()));
            }
            let mut exported = Vec::new();
            store.export(&mut |s| exported.push(s.clone())).unwrap();
            model.sort_by_key(|m| m.seq);
            proptest::prop_assert_eq!(exported, model.clone());
            for m in &model {
                let expected = live(m).then(|| m.clone());
                proptest::prop_assert_eq!(store.get(&m.id, &clock), expected);
                proptest::prop_assert_eq!(store.owners(&[&m.id]).unwrap(), vec![Some(UserKey::of(&m.user))]);
            }
        }

        /// A bulk load, from any number of threads, ends as inserting in `seq` order would:
        /// the same sessions, the first duplicate reported.
        #[test]
        fn a_bulk_load_ends_as_inserting_in_order(
            sessions in proptest::collection::vec((0..40usize, 0..6usize, 0..2u16), 0..150),
            held in 0..4usize,
        ) {
            let list: Vec<Session> = sessions
                .iter()
                .enumerate()
                .map(|(i, (id, user, realm))| {
                    session(i as u64 + 1, &model_id(*id), MODEL_USERS[*user], *realm, *realm)
                })
                .collect();
            let (before, rest) = list.split_at(held.min(list.len()));
            let in_order = MemoryStore::with_partitions(4);
            let bulk = MemoryStore::with_partitions(4);
            let mut first: Option<(u64, u64)> = None;
            for s in before {
                in_order.insert(s).ok();
                bulk.insert(s).ok();
            }
            for s in rest {
                if let Err(d) = in_order.insert(s) {
                    first.get_or_insert((s.seq, d.existing_seq));
                }
            }
            let loading = bulk.bulk_load();
            rest.par_iter().for_each(|s| loading.insert(&s.into()));
            let got = loading.finish().err().map(|d| (d.seq, d.existing_seq));
            proptest::prop_assert_eq!(got, first);
            proptest::prop_assert_eq!(bulk.check_invariants(), in_order.check_invariants());
            let dump = |s: &MemoryStore| {
                let mut v = Vec::new();
                s.export(&mut |x| v.push(x.clone())).unwrap();
                v
            };
            proptest::prop_assert_eq!(dump(&bulk), dump(&in_order));
        }
    }
}
