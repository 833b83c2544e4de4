//! The in-memory, partitioned session store: the site-files store while a run holds it.
//!
//! Sessions live in a power-of-two number of partitions, each a slab of sessions plus a user
//! index `(realm, folded user) -> slots`, behind one `parking_lot::RwLock`. The partition is
//! chosen by a stable hash (FNV-1a, then a finaliser) of (realm, folded user), so a user's
//! sessions in a realm share one lock and one refresh is atomic for that user. A second,
//! id-sharded index maps session ids to their slot so that `refresh session ID` never scans.
//!
//! A batch ([`SessionStore::apply`]) is grouped by partition; each group runs in batch order
//! under one lock acquisition, and the groups run in parallel on the caller's rayon pool.
//!
//! Lock order: a partition lock may be held while taking an id-shard lock, never the reverse,
//! and no thread holds two partition locks.

mod partition;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;
use rayon::prelude::*;

use self::partition::{Key, Locked, Map, Partition};
use super::{Applied, Done, Op, Refresher, SessionStore, StoreError};
use crate::hash::stable_hash;
use crate::ids::{RealmId, ReplicaSetId, UserKey};
use crate::session::{Clock, Session};

/// One shard of the id index: session id -> where the session sits.
type IdShard = RwLock<Map<Arc<str>, Loc>>;

/// The default partition count: enough that 2–16 workers rarely meet on one lock.
pub const DEFAULT_PARTITIONS: usize = 64;

/// Batches up to this size run on the calling thread, one lock per operation: grouping
/// costs more than it saves for a handful of commands.
const SMALL_BATCH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    partition: u32,
    slot: u32,
}

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
    ids: Box<[Padded<IdShard>]>,
    shift: u32,
    /// Set by the first operation that changes a session (loading does not count).
    changed: AtomicBool,
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
            changed: AtomicBool::new(false),
        }
    }

    /// How many partitions (locks) the store has.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    fn index(&self, hash: u64) -> usize {
        if self.shift == 64 {
            0
        } else {
            (hash >> self.shift) as usize
        }
    }

    /// The partition holding a user's (folded name) sessions in a realm.
    pub fn partition_of(&self, realm: RealmId, user_key: &str) -> usize {
        self.index(stable_hash(&[&realm.0.to_le_bytes(), user_key.as_bytes()]))
    }

    fn id_shard(&self, id: &str) -> &IdShard {
        &self.ids[self.index(stable_hash(&[id.as_bytes()]))].0
    }

    fn locate(&self, id: &str) -> Option<Loc> {
        self.id_shard(id).read().get(id).copied()
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
        part.slots
            .get(loc.slot as usize)?
            .as_ref()
            .filter(|s| &*s.id == id && clock.is_live(s))
            .cloned()
    }

    /// Every session held, live or expired.
    pub fn session_count(&self) -> usize {
        self.ids.iter().map(|s| s.0.read().len()).sum()
    }

    /// Gives back the slack of the session slabs (they grow by doubling while loading).
    pub fn shrink(&self) {
        for p in &self.partitions {
            let mut part = p.0.write();
            part.slots.shrink_to_fit();
            part.free.shrink_to_fit();
        }
    }

    /// Prepares room for about `sessions` more sessions (a loader that knows the count calls
    /// it first, so tables are sized once instead of growing by rehashing).
    pub fn reserve(&self, sessions: usize) {
        let n = self.partitions.len();
        // Hashing spreads sessions evenly; a little headroom covers the variance.
        let per = sessions / n + sessions / n / 8 + 16;
        for p in &self.partitions {
            let mut part = p.0.write();
            part.slots.reserve(per);
            // About three sessions per user.
            part.users.reserve(per / 3 + 1);
        }
        for shard in &self.ids {
            shard.0.write().reserve(per);
        }
    }

    /// Adds a session; its id must be new. Sessions of one user with equal credentials end
    /// up sharing one allocation.
    pub fn insert(&self, mut session: Session) -> Result<(), DuplicateId> {
        let key: Key = (session.realm, UserKey::of(&session.user));
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
        if let Some(list) = part.users.get(&key) {
            let shared = list
                .iter()
                .filter_map(|slot| part.slots[*slot as usize].as_ref())
                .find(|other| other.credential == session.credential);
            if let Some(other) = shared {
                session.credential = other.credential.clone();
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
                u32::try_from(part.slots.len() - 1).expect("under 2^32 sessions a partition")
            }
        };
        part.users.entry(key).or_default().push(slot);
        ids.insert(
            id,
            Loc {
                partition: u32::try_from(p).expect("partition index fits u32"),
                slot,
            },
        );
        Ok(())
    }

    /// Checks the store's internal agreement (for tests and diagnostics): every session is in
    /// its user's slot list and in the id index at its place, every listed slot holds a
    /// session of that user, and the id index has no other entry. Returns the session count.
    pub fn check_invariants(&self) -> Result<usize, String> {
        let mut sessions = 0usize;
        for (pi, p) in self.partitions.iter().enumerate() {
            let part = p.0.read();
            sessions += self.check_partition(pi, &part)?;
        }
        let ids: usize = self.ids.iter().map(|s| s.0.read().len()).sum();
        if ids != sessions {
            return Err(format!("{ids} id entries for {sessions} sessions"));
        }
        Ok(sessions)
    }

    fn check_partition(&self, pi: usize, part: &Partition) -> Result<usize, String> {
        let mut sessions = 0;
        for (si, s) in part.slots.iter().enumerate() {
            let Some(s) = s else { continue };
            sessions += 1;
            let key = (s.realm, UserKey::of(&s.user));
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
                    Some(s) if (s.realm, UserKey::of(&s.user)) == *key => {}
                    _ => {
                        return Err(format!(
                            "user {key:?} lists slot {slot}, which is not theirs"
                        ));
                    }
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
                let s = part.slots.get(loc.slot as usize)?.as_ref()?;
                Some(UserKey::of(&s.user))
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
                let part = self.partitions[self.partition_of(key.0, &key.1)].0.read();
                part.user_slots(key, super::Scope::Realm, clock).len()
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
            for s in part.slots.iter().flatten() {
                if realm.is_none_or(|r| s.realm == r) && clock.is_live(s) {
                    f(s);
                }
            }
        }
        Ok(())
    }

    fn live_in_replica_set(&self, clock: &Clock, set: ReplicaSetId) -> Result<usize, StoreError> {
        let mut n = 0;
        for p in &self.partitions {
            let part = p.0.read();
            n += part
                .slots
                .iter()
                .flatten()
                .filter(|s| s.replica_set == set && clock.is_live(s))
                .count();
        }
        Ok(n)
    }

    fn purge_expired(&self, clock: &Clock, realm: RealmId) -> Result<usize, StoreError> {
        let mut n = 0;
        for p in 0..self.partitions.len() {
            let mut locked = self.lock(p);
            let doomed: Vec<(u32, Key)> = locked
                .part
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    s.as_ref()
                        .filter(|s| s.realm == realm && !clock.is_live(s))
                        .map(|s| (i as u32, (s.realm, UserKey::of(&s.user))))
                })
                .collect();
            for (slot, key) in doomed {
                n += usize::from(locked.remove_slot(&key, slot).is_some());
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
        let mut order: Vec<(u64, u32, u32)> = Vec::with_capacity(self.session_count());
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
        s.insert(session(1, "a1", "Alice", 0, 0)).unwrap();
        s.insert(session(2, "a2", "alice", 0, 1)).unwrap();
        s.insert(session(3, "a3", "ALICE", 1, 2)).unwrap();
        s.insert(session(4, "b1", "bob", 0, 0)).unwrap();
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
        s.insert(session(5, "n1", "nobody", 0, 0)).unwrap();
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
        s.insert(session(10, "c1", "carol", 0, 0)).unwrap();
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
                s.insert(session(
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
        s.insert(session(0, "z0", "zed", 0, 0)).unwrap();
        let mut ids = Vec::new();
        s.export(&mut |x| ids.push(x.id.to_string())).unwrap();
        assert_eq!(ids, ["z0", "a1", "a3", "b1"]);
    }
}
