//! The session model (contract §2) and the liveness rule (§3: `timeout`, `inactive_timeout`).

use std::sync::Arc;

use compact_str::CompactString;

use crate::credential::Credential;
use crate::ids::{RealmId, ReplicaSetId, ServerId};

/// One WebSEAL user session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Position in the snapshot; snapshots are written in this order, so a load and a save
    /// keep the file's order.
    pub seq: u64,
    /// Shared with the store's id index: one allocation per session id.
    pub id: Arc<str>,
    /// The user as spelled in the snapshot.
    pub user: CompactString,
    pub realm: RealmId,
    pub replica_set: ReplicaSetId,
    pub server: ServerId,
    /// Unix seconds.
    pub created: i64,
    pub last_access: i64,
    /// When the credential was last refreshed by this tool (our extension).
    pub last_refresh: Option<i64>,
    pub credential: Credential,
}

/// "Now" and the site's session limits: which sessions are live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub now: i64,
    /// Lifetime limit in seconds, 0 = none.
    pub timeout: u64,
    /// Inactivity limit in seconds, 0 = none.
    pub inactive_timeout: u64,
}

impl Clock {
    /// A session is expired once its age, or its idle time, is strictly greater than a
    /// non-zero limit (the same "strictly greater" the contract uses for policy durations).
    pub fn is_live(&self, s: &Session) -> bool {
        self.is_live_at(s.created, s.last_access)
    }

    /// [`Clock::is_live`] of a session created at `created` and last used at `last_access`
    /// (for stores that keep sessions as columns, not as [`Session`]s).
    pub fn is_live_at(&self, created: i64, last_access: i64) -> bool {
        let over =
            |since: i64, limit: u64| limit != 0 && self.now.saturating_sub(since) > limit as i64;
        !over(created, self.timeout) && !over(last_access, self.inactive_timeout)
    }
}
