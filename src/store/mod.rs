//! The session-store boundary: the one way the engine, `exec`, policies and the outputs reach
//! sessions.
//!
//! [`SessionStore`] is fallible (a networked store can be unreachable) and batch-shaped: the
//! engine hands it many users' operations at once ([`SessionStore::apply`]), so a store on
//! the other side of a network can pipeline them while the in-memory one fans them out over
//! its partitions. Nothing crosses it that only makes sense in one process: no locks, no
//! partitions, no pointers; how a store keeps sessions is its own business.
//!
//! Its unit of atomicity is one user in one realm: all of that user's sessions change in one
//! step, so no reader sees half a user refreshed, and operations on one user apply in the
//! order given (operations on different users commute).

mod error;
pub mod memory;
mod op;
pub mod redis;
pub mod url;

pub use self::redis::RedisStore;
pub use error::StoreError;
pub use memory::MemoryStore;
pub use op::{Done, Op, Refresher, Scope, Within};
pub use url::StoreUrl;

use crate::ids::{RealmId, ReplicaSetId, UserKey};
use crate::session::{Clock, Session};

/// One result per operation of a batch, in the batch's order.
pub type Applied = Vec<Result<Done, StoreError>>;

/// Where a site's sessions live (contract §11): the site's own files held in memory, or a
/// networked store.
pub trait SessionStore: Send + Sync {
    /// Where the store is, for messages (a URL with any password replaced by `***`).
    fn location(&self) -> String;

    /// Applies `ops` as if one after the other, in order, at `clock.now`; a refresh merges
    /// each session's credential with `refresher`. Each operation's result stands alone: one
    /// that fails (the store became unreachable) changed nothing, and the others still ran.
    fn apply(&self, clock: &Clock, ops: &[Op<'_>], refresher: &dyn Refresher) -> Applied;

    /// The live sessions of each (realm, user) in `users`, in the same order.
    fn count_live(
        &self,
        clock: &Clock,
        users: &[(RealmId, UserKey)],
    ) -> Result<Vec<usize>, StoreError>;

    /// The case-folded user of each session id, as far as the store knows (a networked
    /// store may still know the user of a session that a `--shard` run still running has
    /// ended); `None` for an id it does not know. `--shard` places `session ID` commands by
    /// it.
    fn owners(&self, ids: &[&str]) -> Result<Vec<Option<UserKey>>, StoreError>;

    /// Calls `f` with every live session (of `realm`, when given), in no particular order.
    fn scan(
        &self,
        clock: &Clock,
        realm: Option<RealmId>,
        f: &mut dyn FnMut(&Session),
    ) -> Result<(), StoreError>;

    /// The live sessions in a replica set.
    fn live_in_replica_set(&self, clock: &Clock, set: ReplicaSetId) -> Result<usize, StoreError>;

    /// Removes the expired sessions of `realm`; returns how many.
    fn purge_expired(&self, clock: &Clock, realm: RealmId) -> Result<usize, StoreError>;

    /// Every session held, live or expired.
    fn len(&self) -> Result<usize, StoreError>;

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Calls `f` with every session, live or expired, in snapshot order (the order they were
    /// loaded or added in).
    fn export(&self, f: &mut dyn FnMut(&Session)) -> Result<(), StoreError>;

    /// Calls `f` with every session, live or expired, in the order the store holds them —
    /// for a writer that records each session's `seq` (the binary snapshot), so that a
    /// store laid out by user is written, and read back, in its own layout.
    fn export_as_held(&self, f: &mut dyn FnMut(&Session)) -> Result<(), StoreError> {
        self.export(f)
    }

    /// True when changes live in this process until the site is saved (the site-files
    /// store); false when every change is kept by the store as it is applied.
    fn saved_by_site(&self) -> bool;

    /// Called once when a run has executed everything it will (or was stopped by a
    /// signal): finishes what the store put off until then. The Redis store removes the
    /// id-index entries of the sessions a `--shard` run ended here.
    fn finish_run(&self) {}

    /// Whether anything changed since the store was loaded: a run that changed nothing
    /// leaves the site's files alone. A store that cannot tell says true.
    fn changed(&self) -> bool {
        true
    }
}
