//! One partition of the in-memory store, and every operation on it, applied under the
//! partition's write lock ([`Locked`]).

use std::collections::HashMap;

use parking_lot::RwLockWriteGuard;
use smallvec::SmallVec;

use super::MemoryStore;
use crate::credential::Credential;
use crate::ids::{RealmId, UserKey};
use crate::session::{Clock, Session};
use crate::store::{Done, Op, Refresher, Scope, Within};

pub(super) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub(super) type Key = (RealmId, UserKey);

/// A slab of sessions plus the user index `(realm, folded user) -> slots`.
#[derive(Default)]
pub(super) struct Partition {
    pub(super) slots: Vec<Option<Session>>,
    pub(super) free: Vec<u32>,
    /// A user's slots: inline for up to four sessions (no allocation for most users).
    pub(super) users: Map<Key, SmallVec<[u32; 4]>>,
}

impl Partition {
    /// The live slots of a user within `scope`.
    pub(super) fn user_slots(&self, key: &Key, scope: Scope<'_>, clock: &Clock) -> Slots {
        self.users.get(key).map_or_else(SmallVec::new, |list| {
            list.iter()
                .copied()
                .filter(|slot| {
                    self.slots[*slot as usize]
                        .as_ref()
                        .is_some_and(|s| scope.admits(s) && clock.is_live(s))
                })
                .collect()
        })
    }
}

pub(super) type Slots = SmallVec<[u32; 4]>;

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
                let key = (*realm, user.clone());
                let slots = self.part.user_slots(&key, *scope, clock);
                let mut merged = Merged {
                    refresher,
                    fresh,
                    memo: SmallVec::new(),
                };
                for slot in &slots {
                    if let Some(s) = self.part.slots[*slot as usize].as_mut() {
                        s.credential = merged.of(&s.credential);
                        s.last_refresh = Some(clock.now);
                    }
                }
                Done::Sessions(slots.len())
            }
            Op::TerminateUser { realm, user, scope } => {
                let key = (*realm, user.clone());
                let slots = self.part.user_slots(&key, *scope, clock);
                for slot in &slots {
                    self.remove_slot(&key, *slot);
                }
                Done::Sessions(slots.len())
            }
            Op::RefreshSession { id, within } => {
                self.refresh_session(id, *within, clock, refresher)
            }
            Op::TerminateSession { id, within } => match self.live_slot(id, *within, clock) {
                None => Done::NoSession,
                Some((slot, key)) => {
                    self.remove_slot(&key, slot);
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
        let Some((slot, _)) = self.live_slot(id, within, clock) else {
            return Done::NoSession;
        };
        let Some(s) = self.part.slots[slot as usize].as_mut() else {
            return Done::NoSession;
        };
        let Some(fresh) = refresher.fresh(&s.user) else {
            return Done::UnknownUser;
        };
        s.credential = refresher.merge(&s.credential, fresh);
        s.last_refresh = Some(clock.now);
        Done::Sessions(1)
    }

    /// The slot and user key of the live session `id`, when it is `within`.
    fn live_slot(&self, id: &str, within: Within<'_>, clock: &Clock) -> Option<(u32, Key)> {
        let loc = self.store.locate(id)?;
        debug_assert_eq!(loc.partition as usize, self.index, "{id} is elsewhere");
        if loc.partition as usize != self.index {
            return None;
        }
        let s = self.part.slots.get(loc.slot as usize)?.as_ref()?;
        (&*s.id == id && clock.is_live(s) && within.admits(s))
            .then(|| (loc.slot, (s.realm, UserKey::of(&s.user))))
    }

    pub(super) fn remove_slot(&mut self, key: &Key, slot: u32) -> Option<Session> {
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
}
