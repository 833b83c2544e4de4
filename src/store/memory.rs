//! The in-memory, partitioned session store.
//!
//! Sessions live in a power-of-two number of partitions, each a slab of sessions plus a user
//! index `(realm, folded user) -> slots`, behind one `parking_lot::RwLock`. The partition is
//! chosen by a stable hash (FNV-1a, then a finaliser) of (realm, folded user), so a user's
//! sessions in a realm share one lock and one refresh is atomic for that user. A second,
//! id-sharded index maps session ids to their slot so that `refresh session ID` never scans.
//!
//! Every per-user and per-session operation is written once, on [`Locked`] (a partition
//! under its write lock); the store's own [`SessionOps`] methods lock the right partition and
//! delegate, and the batch engine takes a lock once for a whole group of commands.
//!
//! Lock order: a partition lock may be held while taking an id-shard lock, never the reverse,
//! and no thread holds two partition locks.

use std::collections::HashMap;

use std::sync::Arc;

use compact_str::CompactString;
use parking_lot::{RwLock, RwLockWriteGuard};
use smallvec::SmallVec;

use super::{DuplicateId, Rebuild, Scope, SessionOps, SessionStore};
use crate::fold::fold;
use crate::hash::stable_hash;
use crate::session::{Clock, Session};
use crate::site::topology::RealmId;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// One shard of the id index: session id -> where the session sits.
type IdShard = RwLock<Map<Arc<str>, Loc>>;
type UserKey = (RealmId, CompactString);

/// The default partition count: enough that 2–16 workers rarely meet on one lock.
pub const DEFAULT_PARTITIONS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    partition: u32,
    slot: u32,
}

#[derive(Default)]
struct Partition {
    slots: Vec<Option<Session>>,
    free: Vec<u32>,
    /// A user's slots: inline for up to four sessions (no allocation for most users).
    users: Map<UserKey, SmallVec<[u32; 4]>>,
}

/// Keeps partitions on separate cache lines so two workers do not share one.
#[repr(align(128))]
struct Padded<T>(T);

/// The in-memory [`SessionStore`].
pub struct MemoryStore {
    partitions: Box<[Padded<RwLock<Partition>>]>,
    ids: Box<[Padded<IdShard>]>,
    shift: u32,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_partitions(DEFAULT_PARTITIONS)
    }
}

impl MemoryStore {
    /// A store with `n` partitions, rounded up to a power of two.
    pub fn with_partitions(n: usize) -> Self {
        let n = n.max(1).next_power_of_two();
        Self {
            partitions: (0..n)
                .map(|_| Padded(RwLock::new(Partition::default())))
                .collect(),
            ids: (0..n)
                .map(|_| Padded(RwLock::new(Map::default())))
                .collect(),
            shift: 64 - n.trailing_zeros(),
        }
    }

    fn index(&self, hash: u64) -> usize {
        if self.shift == 64 {
            0
        } else {
            (hash >> self.shift) as usize
        }
    }

    fn id_shard(&self, id: &str) -> &IdShard {
        &self.ids[self.index(stable_hash(&[id.as_bytes()]))].0
    }

    fn locate(&self, id: &str) -> Option<Loc> {
        self.id_shard(id).read().get(id).copied()
    }

    /// Gives back the slack of the session slabs (they grow by doubling while loading).
    pub fn shrink(&self) {
        for p in self.partitions.iter() {
            let mut part = p.0.write();
            part.slots.shrink_to_fit();
            part.free.shrink_to_fit();
        }
    }

    /// Checks the store's internal agreement (for tests and diagnostics): every session is in
    /// its user's slot list and in the id index at its place, every listed slot holds a
    /// session of that user, and the id index has no other entry. Returns the session count.
    pub fn check_invariants(&self) -> Result<usize, String> {
        let mut sessions = 0usize;
        for (pi, p) in self.partitions.iter().enumerate() {
            let part = p.0.read();
            for (si, s) in part.slots.iter().enumerate() {
                let Some(s) = s else { continue };
                sessions += 1;
                let key = (s.realm, fold(&s.user));
                if self.partition_of(key.0, &key.1) != pi {
                    return Err(format!(
                        "session {} is in partition {pi}, not its user's",
                        s.id
                    ));
                }
                if !part
                    .users
                    .get(&key)
                    .is_some_and(|l| l.contains(&(si as u32)))
                {
                    return Err(format!("session {} is missing from its user's list", s.id));
                }
                match self.id_shard(&s.id).read().get(&*s.id) {
                    Some(loc) if loc.partition as usize == pi && loc.slot as usize == si => {}
                    other => return Err(format!("session {} has id entry {other:?}", s.id)),
                }
            }
            for (key, list) in &part.users {
                for slot in list {
                    match part.slots.get(*slot as usize).and_then(Option::as_ref) {
                        Some(s) if (s.realm, fold(&s.user)) == *key => {}
                        _ => {
                            return Err(format!(
                                "user {key:?} lists slot {slot}, which is not theirs"
                            ));
                        }
                    }
                }
            }
        }
        let ids: usize = self.ids.iter().map(|s| s.0.read().len()).sum();
        if ids != sessions {
            return Err(format!("{ids} id entries for {sessions} sessions"));
        }
        Ok(sessions)
    }

    fn lock(&self, partition: usize) -> Locked<'_> {
        Locked {
            store: self,
            index: partition,
            part: self.partitions[partition].0.write(),
        }
    }
}

/// One partition under its write lock: where every session operation is implemented.
pub struct Locked<'a> {
    store: &'a MemoryStore,
    index: usize,
    part: RwLockWriteGuard<'a, Partition>,
}

impl Locked<'_> {
    fn key(realm: RealmId, user_key: &str) -> UserKey {
        (realm, CompactString::from(user_key))
    }

    /// The slot of a session id, when it sits in this partition.
    fn slot_of(&self, id: &str) -> Option<u32> {
        let loc = self.store.locate(id)?;
        debug_assert_eq!(
            loc.partition as usize, self.index,
            "session {id} is in another partition"
        );
        (loc.partition as usize == self.index).then_some(loc.slot)
    }

    fn live(&self, slot: u32, id: &str, clock: &Clock) -> Option<&Session> {
        self.part
            .slots
            .get(slot as usize)?
            .as_ref()
            .filter(|s| &*s.id == id && clock.is_live(s))
    }

    fn remove_slot(&mut self, key: &UserKey, slot: u32) -> Option<Session> {
        let part = &mut *self.part;
        let s = part.slots.get_mut(slot as usize)?.take()?;
        part.free.push(slot);
        if let Some(list) = part.users.get_mut(key) {
            list.retain(|x| *x != slot);
            if list.is_empty() {
                part.users.remove(key);
            }
        }
        self.store.id_shard(&s.id).write().remove(&s.id);
        Some(s)
    }

    fn user_slots(&self, key: &UserKey, scope: Scope<'_>, clock: &Clock) -> SmallVec<[u32; 4]> {
        self.part.users.get(key).map_or_else(SmallVec::new, |list| {
            list.iter()
                .copied()
                .filter(|slot| {
                    self.part.slots[*slot as usize]
                        .as_ref()
                        .is_some_and(|s| scope.admits(s) && clock.is_live(s))
                })
                .collect()
        })
    }
}

fn refresh_one(s: &mut Session, clock: &Clock, rebuild: &mut Rebuild<'_>) {
    s.credential = rebuild(&s.credential);
    s.last_refresh = Some(clock.now);
}

impl SessionOps for Locked<'_> {
    fn count_user(&self, realm: RealmId, user_key: &str, scope: Scope<'_>, clock: &Clock) -> usize {
        self.user_slots(&Self::key(realm, user_key), scope, clock)
            .len()
    }

    fn refresh_user(
        &mut self,
        realm: RealmId,
        user_key: &str,
        scope: Scope<'_>,
        clock: &Clock,
        rebuild: &mut Rebuild<'_>,
    ) -> usize {
        let slots = self.user_slots(&Self::key(realm, user_key), scope, clock);
        for slot in &slots {
            if let Some(s) = self.part.slots[*slot as usize].as_mut() {
                refresh_one(s, clock, rebuild);
            }
        }
        slots.len()
    }

    fn terminate_user(
        &mut self,
        realm: RealmId,
        user_key: &str,
        scope: Scope<'_>,
        clock: &Clock,
    ) -> usize {
        let key = Self::key(realm, user_key);
        let slots = self.user_slots(&key, scope, clock);
        for slot in &slots {
            self.remove_slot(&key, *slot);
        }
        slots.len()
    }

    fn session(&self, id: &str, clock: &Clock) -> Option<Session> {
        self.live(self.slot_of(id)?, id, clock).cloned()
    }

    fn refresh_session(&mut self, id: &str, clock: &Clock, rebuild: &mut Rebuild<'_>) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        if self.live(slot, id, clock).is_none() {
            return false;
        }
        if let Some(s) = self.part.slots[slot as usize].as_mut() {
            refresh_one(s, clock, rebuild);
        }
        true
    }

    fn terminate_session(&mut self, id: &str, clock: &Clock) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        let Some(s) = self.live(slot, id, clock) else {
            return false;
        };
        let key = (s.realm, fold(&s.user));
        self.remove_slot(&key, slot).is_some()
    }
}

/// The store's own operations lock the one partition concerned for each call.
impl SessionOps for &MemoryStore {
    fn count_user(&self, realm: RealmId, user_key: &str, scope: Scope<'_>, clock: &Clock) -> usize {
        let part = self.partitions[self.partition_of(realm, user_key)].0.read();
        part.users
            .get(&(realm, CompactString::from(user_key)))
            .map_or(0, |list| {
                list.iter()
                    .filter_map(|slot| part.slots[*slot as usize].as_ref())
                    .filter(|s| scope.admits(s) && clock.is_live(s))
                    .count()
            })
    }

    fn refresh_user(
        &mut self,
        realm: RealmId,
        user_key: &str,
        scope: Scope<'_>,
        clock: &Clock,
        rebuild: &mut Rebuild<'_>,
    ) -> usize {
        self.lock(self.partition_of(realm, user_key))
            .refresh_user(realm, user_key, scope, clock, rebuild)
    }

    fn terminate_user(
        &mut self,
        realm: RealmId,
        user_key: &str,
        scope: Scope<'_>,
        clock: &Clock,
    ) -> usize {
        self.lock(self.partition_of(realm, user_key))
            .terminate_user(realm, user_key, scope, clock)
    }

    fn session(&self, id: &str, clock: &Clock) -> Option<Session> {
        let loc = self.locate(id)?;
        let part = self.partitions[loc.partition as usize].0.read();
        part.slots
            .get(loc.slot as usize)?
            .as_ref()
            .filter(|s| &*s.id == id && clock.is_live(s))
            .cloned()
    }

    fn refresh_session(&mut self, id: &str, clock: &Clock, rebuild: &mut Rebuild<'_>) -> bool {
        match self.partition_of_session(id) {
            Some(p) => self.lock(p).refresh_session(id, clock, rebuild),
            None => false,
        }
    }

    fn terminate_session(&mut self, id: &str, clock: &Clock) -> bool {
        match self.partition_of_session(id) {
            Some(p) => self.lock(p).terminate_session(id, clock),
            None => false,
        }
    }
}

impl SessionStore for MemoryStore {
    fn len(&self) -> usize {
        self.ids.iter().map(|s| s.0.read().len()).sum()
    }

    fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    fn partition_of(&self, realm: RealmId, user_key: &str) -> usize {
        self.index(stable_hash(&[&realm.0.to_le_bytes(), user_key.as_bytes()]))
    }

    fn partition_of_session(&self, id: &str) -> Option<usize> {
        self.locate(id).map(|l| l.partition as usize)
    }

    fn with_partition(&self, partition: usize, f: &mut dyn FnMut(&mut dyn SessionOps)) {
        let mut locked = self.lock(partition);
        f(&mut locked);
    }

    fn ops(&self) -> Box<dyn SessionOps + '_> {
        Box::new(self)
    }

    fn reserve(&self, sessions: usize) {
        let n = self.partitions.len();
        // Hashing spreads sessions evenly; a little headroom covers the variance.
        let per = sessions / n + sessions / n / 8 + 16;
        for p in self.partitions.iter() {
            let mut part = p.0.write();
            part.slots.reserve(per);
            // About three sessions per user.
            part.users.reserve(per / 3 + 1);
        }
        for shard in self.ids.iter() {
            shard.0.write().reserve(per);
        }
    }

    fn insert(&self, mut session: Session) -> Result<(), DuplicateId> {
        let key = (session.realm, fold(&session.user));
        let p = self.partition_of(key.0, &key.1);
        let mut part = self.partitions[p].0.write();
        let mut ids = self.id_shard(&session.id).write();
        if let Some(loc) = ids.get(&session.id).copied() {
            drop(ids);
            let seq_at = |part: &Partition| {
                part.slots
                    .get(loc.slot as usize)
                    .and_then(Option::as_ref)
                    .map_or(0, |s| s.seq)
            };
            let existing_seq = if loc.partition as usize == p {
                seq_at(&part)
            } else {
                drop(part);
                seq_at(&self.partitions[loc.partition as usize].0.read())
            };
            return Err(DuplicateId { existing_seq });
        }
        // Sessions of one user usually carry equal credentials: share one allocation.
        if let Some(list) = part.users.get(&key) {
            for slot in list {
                if let Some(other) = &part.slots[*slot as usize]
                    && other.credential == session.credential
                {
                    session.credential = other.credential.clone();
                    break;
                }
            }
        }
        let id = session.id.clone();
        let slot = match part.free.pop() {
            Some(slot) => {
                part.slots[slot as usize] = Some(session);
                slot
            }
            None => {
                part.slots.push(Some(session));
                (part.slots.len() - 1) as u32
            }
        };
        part.users.entry(key).or_default().push(slot);
        ids.insert(
            id,
            Loc {
                partition: p as u32,
                slot,
            },
        );
        Ok(())
    }

    fn scan(&self, clock: &Clock, f: &mut dyn FnMut(&Session)) {
        for p in self.partitions.iter() {
            let part = p.0.read();
            for s in part.slots.iter().flatten() {
                if clock.is_live(s) {
                    f(s);
                }
            }
        }
    }

    fn for_each_ordered(&self, f: &mut dyn FnMut(&Session)) {
        let guards: Vec<_> = self.partitions.iter().map(|p| p.0.read()).collect();
        let mut order: Vec<(u64, u32, u32)> = Vec::with_capacity(self.len());
        for (pi, part) in guards.iter().enumerate() {
            for (si, s) in part.slots.iter().enumerate() {
                if let Some(s) = s {
                    order.push((s.seq, pi as u32, si as u32));
                }
            }
        }
        order.sort_unstable();
        for (_, pi, si) in order {
            if let Some(s) = &guards[pi as usize].slots[si as usize] {
                f(s);
            }
        }
    }

    fn purge_expired(&self, clock: &Clock, which: &dyn Fn(&Session) -> bool) -> usize {
        let mut n = 0;
        for p in 0..self.partitions.len() {
            let mut locked = self.lock(p);
            let doomed: Vec<(u32, UserKey)> = locked
                .part
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    s.as_ref()
                        .filter(|s| !clock.is_live(s) && which(s))
                        .map(|s| (i as u32, (s.realm, fold(&s.user))))
                })
                .collect();
            for (slot, key) in doomed {
                n += usize::from(locked.remove_slot(&key, slot).is_some());
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::Credential;
    use crate::site::topology::{ReplicaSetId, ServerId};

    fn cred(groups: &[&str]) -> Credential {
        let mut b = crate::credential::CredentialBuilder::default();
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
        s.insert(session(1, "a1", "Alice", 0, 0)).unwrap();
        s.insert(session(2, "a2", "alice", 0, 1)).unwrap();
        s.insert(session(3, "a3", "ALICE", 1, 2)).unwrap();
        s.insert(session(4, "b1", "bob", 0, 0)).unwrap();
        s
    }

    /// The store's own operations (each call locks what it needs).
    fn ops(s: &MemoryStore) -> &MemoryStore {
        s
    }

    fn new_cred(_: &Credential) -> Credential {
        cred(&["new"])
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
            s.insert(session(9, "a2", "zed", 1, 2)),
            Err(DuplicateId { existing_seq: 2 })
        );
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn sessions_of_one_user_share_a_credential() {
        let s = store();
        let (a1, a2) = (
            ops(&s).session("a1", &CLOCK).unwrap(),
            ops(&s).session("a2", &CLOCK).unwrap(),
        );
        assert!(Credential::ptr_eq(&a1.credential, &a2.credential));
    }

    #[test]
    fn refresh_user_touches_only_that_user_in_that_realm_and_scope() {
        let s = store();
        let n = ops(&s).refresh_user(RealmId(0), "alice", Scope::Realm, &CLOCK, &mut new_cred);
        assert_eq!(n, 2);
        for id in ["a1", "a2"] {
            let x = ops(&s).session(id, &CLOCK).unwrap();
            assert_eq!(x.credential.groups(), ["new"]);
            assert_eq!(x.last_refresh, Some(2000));
        }
        for id in ["a3", "b1"] {
            assert_eq!(
                ops(&s).session(id, &CLOCK).unwrap().credential.groups(),
                ["old"],
                "{id}"
            );
        }
        let n = ops(&s).refresh_user(
            RealmId(0),
            "bob",
            Scope::ReplicaSets(&[ReplicaSetId(1)]),
            &CLOCK,
            &mut new_cred,
        );
        assert_eq!(n, 0);
        assert_eq!(
            ops(&s).count_user(
                RealmId(0),
                "alice",
                Scope::ReplicaSets(&[ReplicaSetId(1)]),
                &CLOCK
            ),
            1
        );
    }

    #[test]
    fn terminate_user_and_session_update_both_indexes() {
        let s = store();
        assert_eq!(
            ops(&s).terminate_user(RealmId(0), "alice", Scope::Realm, &CLOCK),
            2
        );
        assert!(ops(&s).session("a1", &CLOCK).is_none());
        assert_eq!(
            ops(&s).count_user(RealmId(0), "alice", Scope::Realm, &CLOCK),
            0
        );
        assert_eq!(s.len(), 2);
        assert!(ops(&s).terminate_session("b1", &CLOCK));
        assert!(!ops(&s).terminate_session("b1", &CLOCK));
        assert!(!ops(&s).terminate_session("nope", &CLOCK));
        assert_eq!(s.len(), 1);
        // Freed slots are reused and the id index follows.
        s.insert(session(10, "c1", "carol", 0, 0)).unwrap();
        assert_eq!(ops(&s).session("c1", &CLOCK).unwrap().user, "carol");
    }

    #[test]
    fn expired_sessions_are_invisible_and_purgeable() {
        let s = store();
        let strict = Clock {
            now: 2000,
            timeout: 999,
            inactive_timeout: 0,
        };
        assert!(ops(&s).session("a1", &strict).is_none());
        assert_eq!(
            ops(&s).refresh_user(RealmId(0), "alice", Scope::Realm, &strict, &mut new_cred),
            0
        );
        let edge = Clock {
            now: 2000,
            timeout: 1000,
            inactive_timeout: 0,
        };
        assert!(
            ops(&s).session("a1", &edge).is_some(),
            "expiry is strictly greater than the limit"
        );
        assert_eq!(s.purge_expired(&strict, &|x| x.realm == RealmId(1)), 1);
        assert_eq!(s.purge_expired(&strict, &|_| true), 3);
        assert!(s.is_empty());
    }

    #[test]
    fn ordered_iteration_follows_seq() {
        let s = store();
        ops(&s).terminate_session("a2", &CLOCK);
        s.insert(session(0, "z0", "zed", 0, 0)).unwrap();
        let mut ids = Vec::new();
        s.for_each_ordered(&mut |x| ids.push(x.id.to_string()));
        assert_eq!(ids, ["z0", "a1", "a3", "b1"]);
    }
}
