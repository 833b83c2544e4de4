//! One partition of the in-memory store — its sessions as fixed-size slots, its users, and
//! every operation on them under the partition's write lock ([`Locked`]).
//!
//! Why slots and not `Session`s: a `Session` owns its id and user name; three million of
//! them cost ~450 bytes each, half of it allocations the kernel must zero at load. A slot is
//! one 64-byte record of numbers: the id lives in the id index's arena (`ids.rs`), the user
//! once per (realm, user) in the user table, the credential shared by the user's sessions.
//! A user's slots are chained through the slots (`next`), so a user costs one table entry.
//! A session's own spelling of its user is kept aside only where it differs from the folded
//! key (rare: names are usually written one way).

use std::collections::HashMap;

use compact_str::CompactString;
use hashbrown::HashTable;
use parking_lot::RwLockWriteGuard;
use smallvec::SmallVec;

use super::MemoryStore;
use super::ids::Loc;
use crate::credential::Credential;
use crate::ids::{RealmId, ReplicaSetId, ServerId, UserKey};
use crate::session::{Clock, Session};
use crate::store::{Done, Op, Refresher, Scope, Within};

pub(super) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub(super) type Key = (RealmId, UserKey);

/// The end of a user's chain of slots, and the user of a free slot.
pub(super) const NONE: u32 = u32::MAX;
/// `last_refresh` of a session never refreshed.
const NEVER: i64 = i64::MIN;

/// One session, less what is kept elsewhere (id, user name): 64 bytes.
pub(super) struct Slot {
    /// The session's `seq` (48 bits) and its id's shard in the id index (16 bits).
    seq_shard: u64,
    pub(super) created: i64,
    pub(super) last_access: i64,
    last_refresh: i64,
    /// `None` for a free slot.
    pub(super) credential: Option<Credential>,
    /// The id's offset in its shard of the id index.
    pub(super) id_offset: u32,
    /// The user's index in the user table; [`NONE`] for a free slot.
    pub(super) user: u32,
    /// The user's next slot; [`NONE`] at the end.
    next: u32,
    pub(super) replica_set: ReplicaSetId,
    pub(super) server: ServerId,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

/// The largest `seq` a slot keeps; loaders number sessions from 1 (or by line), so a larger
/// one never occurs, and would only lose its place in the export order.
const MAX_SEQ: u64 = (1 << 48) - 1;

impl Slot {
    pub(super) fn seq(&self) -> u64 {
        self.seq_shard >> 16
    }

    pub(super) fn id_shard(&self) -> u16 {
        (self.seq_shard & 0xffff) as u16
    }
}

/// A (realm, user) with sessions here.
pub(super) struct User {
    pub(super) realm: RealmId,
    pub(super) key: UserKey,
    /// The user's first slot; [`NONE`] for a free entry.
    head: u32,
}

/// A new session, borrowed from whoever built it (a loader, a test).
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    pub seq: u64,
    pub id: &'a str,
    pub user: &'a str,
    pub realm: RealmId,
    pub replica_set: ReplicaSetId,
    pub server: ServerId,
    pub created: i64,
    pub last_access: i64,
    pub last_refresh: Option<i64>,
    pub credential: &'a Credential,
}

impl<'a> From<&'a Session> for NewSession<'a> {
    fn from(s: &'a Session) -> Self {
        Self {
            seq: s.seq,
            id: &s.id,
            user: &s.user,
            realm: s.realm,
            replica_set: s.replica_set,
            server: s.server,
            created: s.created,
            last_access: s.last_access,
            last_refresh: s.last_refresh,
            credential: &s.credential,
        }
    }
}

/// The user table's hash of a (realm, user) whose partition hash is `h`: the partition took
/// the top bits, which the table uses as tags, so it sees them rotated away.
pub(super) fn table_hash(h: u64) -> u64 {
    h.rotate_left(29)
}

/// The sessions and users of one partition.
#[derive(Default)]
pub(super) struct Partition {
    pub(super) slots: Vec<Slot>,
    free: Vec<u32>,
    pub(super) users: Vec<User>,
    free_users: Vec<u32>,
    /// User index: (realm, user) -> index in `users`, by [`table_hash`].
    index: HashTable<u32>,
    /// The user as a session spells it, where that is not the folded key.
    spelled: Map<u32, CompactString>,
}

pub(super) type Slots = SmallVec<[u32; 4]>;

impl Partition {
    pub(super) fn reserve(&mut self, sessions: usize, users: usize) {
        self.slots.reserve(sessions);
        self.users.reserve(users);
        let users_now = &self.users;
        self.index
            .reserve(users, |i| user_hash(&users_now[*i as usize]));
    }

    /// The user table index of (realm, user), whose partition hash is `h`.
    pub(super) fn user_index(&self, realm: RealmId, user: &str, h: u64) -> Option<u32> {
        self.index
            .find(table_hash(h), |i| {
                let u = &self.users[*i as usize];
                u.realm == realm && u.key.as_str() == user
            })
            .copied()
    }

    pub(super) fn is_free(&self, slot: u32) -> bool {
        self.slots.get(slot as usize).is_none_or(|s| s.user == NONE)
    }

    /// A user's slots, in chain order.
    pub(super) fn chain(&self, user: u32) -> impl Iterator<Item = u32> + '_ {
        let mut at = self.users.get(user as usize).map_or(NONE, |u| u.head);
        std::iter::from_fn(move || {
            (at != NONE).then(|| {
                let slot = at;
                at = self.slots[slot as usize].next;
                slot
            })
        })
    }

    /// The live slots of user `user` (a table index) within `scope`.
    fn live_slots(&self, user: Option<u32>, scope: Scope<'_>, clock: &Clock) -> Slots {
        let Some(user) = user else {
            return Slots::new();
        };
        self.chain(user)
            .filter(|slot| {
                let s = &self.slots[*slot as usize];
                scope.admits_set(s.replica_set) && clock.is_live_at(s.created, s.last_access)
            })
            .collect()
    }

    /// The live slots of a user within `scope`; `h` is the user's partition hash.
    pub(super) fn user_slots(&self, key: &Key, h: u64, scope: Scope<'_>, clock: &Clock) -> Slots {
        self.live_slots(self.user_index(key.0, &key.1, h), scope, clock)
    }

    /// Reads what `ops` will touch — each user's table entry, first slot and credentials,
    /// and the fresh credential — so that a group's operations then find it in cache. The
    /// reads of different users do not depend on each other: run in a loop this small, the
    /// processor overlaps their cache misses, which the operations themselves, each a merge
    /// long, cannot. Returns a value made of what was read, for `black_box`.
    pub(super) fn warm<'o>(&self, ops: impl Iterator<Item = &'o Op<'o>>) -> u64 {
        let mut acc = 0u64;
        for op in ops {
            let (realm, user, fresh) = match op {
                Op::RefreshUser {
                    realm, user, fresh, ..
                } => (*realm, user, Some(*fresh)),
                Op::TerminateUser { realm, user, .. } => (*realm, user, None),
                _ => continue,
            };
            let h = MemoryStore::user_hash(realm, user);
            if let Some(head) = self
                .user_index(realm, user, h)
                .and_then(|u| self.users.get(u as usize))
                .and_then(|u| self.slots.get(u.head as usize))
            {
                acc ^= head.created as u64;
                if let Some(c) = &head.credential {
                    acc ^= u64::from(c.bytes().first().copied().unwrap_or(0));
                }
            }
            if let Some(f) = fresh {
                acc ^= u64::from(f.bytes().first().copied().unwrap_or(0));
            }
        }
        acc
    }

    /// The user as session `slot` spells it.
    pub(super) fn spelled(&self, slot: u32) -> &str {
        match self.spelled.get(&slot) {
            Some(s) => s,
            None => self.slot_user(slot).map_or("", |u| u.key.as_str()),
        }
    }

    pub(super) fn slot_user(&self, slot: u32) -> Option<&User> {
        let s = self.slots.get(slot as usize)?;
        self.users.get(s.user as usize).filter(|_| s.user != NONE)
    }

    /// Adds a session of user `key` (partition hash `h`) whose id is already in the id index
    /// at (`id_shard`, `id_offset`); returns its slot. The session shares a credential with
    /// another of the user's sessions when they are equal.
    pub(super) fn add(
        &mut self,
        s: &NewSession<'_>,
        key: Key,
        h: u64,
        id: (u16, u32),
        slot: u32,
    ) -> u32 {
        let user = match self.user_index(key.0, &key.1, h) {
            Some(u) => u,
            None => self.add_user(key, h),
        };
        let head = self.users[user as usize].head;
        let shared = self
            .chain(user)
            .filter_map(|x| self.slots[x as usize].credential.as_ref())
            .find(|c| **c == *s.credential)
            .cloned();
        let record = Slot {
            seq_shard: (s.seq.min(MAX_SEQ) << 16) | u64::from(id.0),
            created: s.created,
            last_access: s.last_access,
            last_refresh: s.last_refresh.unwrap_or(NEVER),
            credential: Some(shared.unwrap_or_else(|| s.credential.clone())),
            id_offset: id.1,
            user,
            next: head,
            replica_set: s.replica_set,
            server: s.server,
        };
        if (slot as usize) < self.slots.len() {
            self.slots[slot as usize] = record;
        } else {
            self.slots.push(record);
        }
        self.users[user as usize].head = slot;
        if s.user != self.users[user as usize].key.as_str() {
            self.spelled.insert(slot, s.user.into());
        }
        slot
    }

    /// The slot the next [`Partition::add`] fills.
    pub(super) fn next_slot(&self) -> u32 {
        match self.free.last() {
            Some(slot) => *slot,
            None => u32::try_from(self.slots.len()).expect("under 2^32 sessions a partition"),
        }
    }

    /// Takes the slot [`Partition::next_slot`] named.
    pub(super) fn take_next_slot(&mut self) {
        self.free.pop();
    }

    fn add_user(&mut self, key: Key, h: u64) -> u32 {
        let user = User {
            realm: key.0,
            key: key.1,
            head: NONE,
        };
        let i = match self.free_users.pop() {
            Some(i) => {
                self.users[i as usize] = user;
                i
            }
            None => {
                self.users.push(user);
                u32::try_from(self.users.len() - 1).expect("under 2^32 users a partition")
            }
        };
        let users = &self.users;
        self.index
            .insert_unique(table_hash(h), i, |j| user_hash(&users[*j as usize]));
        i
    }

    /// Frees `slot`; returns its id's place in the id index. A user left with no session
    /// leaves the table.
    pub(super) fn free_slot(&mut self, slot: u32) -> Option<(u16, u32)> {
        let s = self.slots.get(slot as usize).filter(|s| s.user != NONE)?;
        let (user, next, id) = (s.user, s.next, (s.id_shard(), s.id_offset));
        // Unlink from the user's chain.
        if self.users[user as usize].head == slot {
            self.users[user as usize].head = next;
        } else {
            let prev = self
                .chain(user)
                .find(|x| self.slots[*x as usize].next == slot);
            if let Some(prev) = prev {
                self.slots[prev as usize].next = next;
            }
        }
        let s = &mut self.slots[slot as usize];
        s.user = NONE;
        s.next = NONE;
        s.credential = None;
        self.spelled.remove(&slot);
        self.free.push(slot);
        if self.users[user as usize].head == NONE {
            let u = &self.users[user as usize];
            let h = table_hash(MemoryStore::user_hash(u.realm, &u.key));
            if let Ok(e) = self.index.find_entry(h, |i| *i == user) {
                e.remove();
            }
            self.users[user as usize].key = UserKey::default();
            self.free_users.push(user);
        }
        Some(id)
    }

    /// Every user entry in use with its index (for the store's self-check).
    pub(super) fn indexed_users(&self) -> impl Iterator<Item = u32> + '_ {
        self.index.iter().copied()
    }

    /// Whether `slot` is live at `clock`.
    pub(super) fn live(&self, slot: u32, clock: &Clock) -> bool {
        let s = &self.slots[slot as usize];
        s.user != NONE && clock.is_live_at(s.created, s.last_access)
    }

    /// The session in `slot` as a [`Session`], its id written by `id`.
    pub(super) fn session(&self, slot: u32, id: &str) -> Option<Session> {
        let s = self.slots.get(slot as usize)?;
        let u = self.slot_user(slot)?;
        Some(Session {
            seq: s.seq(),
            id: id.into(),
            user: self.spelled(slot).into(),
            realm: u.realm,
            replica_set: s.replica_set,
            server: s.server,
            created: s.created,
            last_access: s.last_access,
            last_refresh: (s.last_refresh != NEVER).then_some(s.last_refresh),
            credential: s.credential.clone()?,
        })
    }
}

fn user_hash(u: &User) -> u64 {
    table_hash(MemoryStore::user_hash(u.realm, &u.key))
}

/// One partition under its write lock.
pub(super) struct Locked<'a> {
    pub(super) store: &'a MemoryStore,
    pub(super) index: usize,
    pub(super) part: RwLockWriteGuard<'a, Partition>,
}

/// New credentials for one user's sessions, remembered per old credential, so that sessions
/// that shared one credential share the merged one (and each merge runs once).
struct Merged<'a> {
    refresher: &'a dyn Refresher,
    fresh: &'a Credential,
    memo: SmallVec<[(Credential, Credential); 2]>,
}

impl Merged<'_> {
    fn of(&mut self, old: &Credential) -> Credential {
        if let Some((_, new)) = self.memo.iter().find(|(o, _)| Credential::ptr_eq(o, old)) {
            return new.clone();
        }
        let new = self.refresher.merge(old, self.fresh);
        self.memo.push((old.clone(), new.clone()));
        new
    }
}

impl Locked<'_> {
    /// Applies one operation of a batch; it concerns this partition.
    pub(super) fn apply(&mut self, op: &Op<'_>, clock: &Clock, refresher: &dyn Refresher) -> Done {
        match op {
            Op::RefreshUser {
                realm,
                user,
                scope,
                fresh,
            } => {
                let h = MemoryStore::user_hash(*realm, user);
                let part = &mut *self.part;
                let slots = part.live_slots(part.user_index(*realm, user, h), *scope, clock);
                let mut merged = Merged {
                    refresher,
                    fresh,
                    memo: SmallVec::new(),
                };
                for slot in &slots {
                    let s = &mut part.slots[*slot as usize];
                    if let Some(new) = s.credential.as_ref().map(|old| merged.of(old)) {
                        s.credential = Some(new);
                        s.last_refresh = clock.now;
                    }
                }
                Done::Sessions(slots.len())
            }
            Op::TerminateUser { realm, user, scope } => {
                let h = MemoryStore::user_hash(*realm, user);
                let part = &*self.part;
                let slots = part.live_slots(part.user_index(*realm, user, h), *scope, clock);
                for slot in &slots {
                    self.remove_slot(*slot);
                }
                Done::Sessions(slots.len())
            }
            Op::RefreshSession { id, within } => {
                self.refresh_session(id, *within, clock, refresher)
            }
            Op::TerminateSession { id, within } => match self.live_slot(id, *within, clock) {
                None => Done::NoSession,
                Some(slot) => {
                    self.remove_slot(slot);
                    Done::Sessions(1)
                }
            },
        }
    }

    fn refresh_session(
        &mut self,
        id: &str,
        within: Within<'_>,
        clock: &Clock,
        refresher: &dyn Refresher,
    ) -> Done {
        let Some(slot) = self.live_slot(id, within, clock) else {
            return Done::NoSession;
        };
        let Some(fresh) = refresher.fresh(self.part.spelled(slot)) else {
            return Done::UnknownUser;
        };
        let s = &mut self.part.slots[slot as usize];
        if let Some(new) = s.credential.as_ref().map(|old| refresher.merge(old, fresh)) {
            s.credential = Some(new);
            s.last_refresh = clock.now;
        }
        Done::Sessions(1)
    }

    /// The slot of the live session `id`, when it is `within`.
    fn live_slot(&self, id: &str, within: Within<'_>, clock: &Clock) -> Option<u32> {
        let loc: Loc = self.store.locate(id)?;
        debug_assert_eq!(loc.partition as usize, self.index, "{id} is elsewhere");
        if loc.partition as usize != self.index || !self.part.live(loc.slot, clock) {
            return None;
        }
        let s = &self.part.slots[loc.slot as usize];
        let realm = self.part.slot_user(loc.slot)?.realm;
        within.admits_at(realm, s.replica_set).then_some(loc.slot)
    }

    /// Removes the session in `slot`, from the partition and from the id index.
    pub(super) fn remove_slot(&mut self, slot: u32) -> bool {
        match self.part.free_slot(slot) {
            Some((shard, offset)) => {
                self.store.forget_id(shard, offset);
                true
            }
            None => false,
        }
    }
}
