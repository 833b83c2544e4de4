//! The session store boundary.
//!
//! [`SessionStore`] is the side-effect boundary of the engine: everything that reads or
//! changes sessions goes through it, so that a second backend (Redis, say) can follow the
//! in-memory [`MemoryStore`]. Its unit of atomicity is one user in one realm: all of a
//! user's sessions in a realm live in one partition behind one lock, so a refresh or
//! terminate of a user is seen whole or not at all.

mod memory;

pub use memory::{Locked, MemoryStore};

use crate::credential::Credential;
use crate::session::{Clock, Session};
use crate::site::topology::{RealmId, ReplicaSetId};

/// Which of a user's sessions in a realm a command acts on.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every session of the realm (the `sms` commands).
    Realm,
    /// Only sessions in these replica sets (the plain WebSEAL forms: the sets a server serves).
    ReplicaSets(&'a [ReplicaSetId]),
}

impl Scope<'_> {
    pub fn admits(&self, s: &Session) -> bool {
        match self {
            Scope::Realm => true,
            Scope::ReplicaSets(sets) => sets.contains(&s.replica_set),
        }
    }
}

/// A session id that is already in the store; `existing_seq` is the other session's `seq`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("duplicate session id")]
pub struct DuplicateId {
    pub existing_seq: u64,
}

/// Builds a session's new credential from its old one. Called under the partition lock, once
/// per session; implementations may memoise on the old credential's pointer.
pub type Rebuild<'a> = dyn FnMut(&Credential) -> Credential + 'a;

/// Per-user and per-session operations: on the whole store (each call locks what it needs)
/// or on one partition already locked by [`SessionStore::with_partition`].
pub trait SessionOps {
    /// The number of live sessions of a user (folded name) in a realm, within `scope`.
    fn count_user(&self, realm: RealmId, user_key: &str, scope: Scope<'_>, clock: &Clock) -> usize;

    /// Refreshes every live session of a user in a realm within `scope`, atomically for that
    /// user, setting `last_refresh` to `clock.now`. Returns how many were refreshed.
    fn refresh_user(
        &mut self,
        realm: RealmId,
        user_key: &str,
        scope: Scope<'_>,
        clock: &Clock,
        rebuild: &mut Rebuild<'_>,
    ) -> usize;

    /// Removes every live session of a user in a realm within `scope`. Returns the count.
    fn terminate_user(
        &mut self,
        realm: RealmId,
        user_key: &str,
        scope: Scope<'_>,
        clock: &Clock,
    ) -> usize;

    /// A copy of the live session with this id.
    fn session(&self, id: &str, clock: &Clock) -> Option<Session>;

    /// Refreshes one live session; false when there is none with this id.
    fn refresh_session(&mut self, id: &str, clock: &Clock, rebuild: &mut Rebuild<'_>) -> bool;

    /// Removes one live session; false when there is none with this id.
    fn terminate_session(&mut self, id: &str, clock: &Clock) -> bool;
}

/// A store of sessions, partitioned by (realm, user).
pub trait SessionStore: Send + Sync {
    /// Every session held, live or expired.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many partitions (locks) the store has.
    fn partition_count(&self) -> usize;

    /// The partition holding a user's (folded name) sessions in a realm.
    fn partition_of(&self, realm: RealmId, user_key: &str) -> usize;

    /// The partition holding a session, if the id exists (live or expired).
    fn partition_of_session(&self, id: &str) -> Option<usize>;

    /// Runs `f` with one partition locked: every operation `f` makes must concern that
    /// partition's users and sessions. The batch engine takes each lock once per group.
    fn with_partition(&self, partition: usize, f: &mut dyn FnMut(&mut dyn SessionOps));

    /// Operations on the whole store, each call locking what it needs.
    fn ops(&self) -> Box<dyn SessionOps + '_>;

    /// Adds a session; its id must be new.
    fn insert(&self, session: Session) -> Result<(), DuplicateId>;

    /// Prepares room for about `sessions` more sessions (a loader that knows the count calls
    /// it first, so tables are sized once instead of growing by rehashing).
    fn reserve(&self, _sessions: usize) {}

    /// Calls `f` with every live session, in no particular order.
    fn scan(&self, clock: &Clock, f: &mut dyn FnMut(&Session));

    /// Calls `f` with every session, live or expired, in `seq` order (for snapshots).
    fn for_each_ordered(&self, f: &mut dyn FnMut(&Session));

    /// Removes the expired sessions that `keep_out` selects; returns how many.
    fn purge_expired(&self, clock: &Clock, which: &dyn Fn(&Session) -> bool) -> usize;
}
