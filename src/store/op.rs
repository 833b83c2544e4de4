//! The operations a store applies in batches, their results, and the credential merge the
//! engine lends the store for refreshes.

use crate::credential::Credential;
use crate::ids::{RealmId, ReplicaSetId, UserKey};
use crate::session::Session;

/// Which of a user's sessions in a realm an operation acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every session of the realm (the `sms` commands).
    Realm,
    /// Only sessions in these replica sets (the plain WebSEAL forms: the sets a server serves).
    ReplicaSets(&'a [ReplicaSetId]),
}

impl Scope<'_> {
    pub fn admits(&self, s: &Session) -> bool {
        self.admits_set(s.replica_set)
    }

    /// Whether a session in replica set `set` (of the operation's realm) is in scope.
    pub fn admits_set(&self, set: ReplicaSetId) -> bool {
        match self {
            Scope::Realm => true,
            Scope::ReplicaSets(sets) => sets.contains(&set),
        }
    }
}

/// Where a session named by id must be for an operation to act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within<'a> {
    /// In this realm (`sms session … session ID -realm R`).
    Realm(RealmId),
    /// In one of these replica sets (the plain WebSEAL `terminate session ID`).
    ReplicaSets(&'a [ReplicaSetId]),
}

impl Within<'_> {
    pub fn admits(&self, s: &Session) -> bool {
        self.admits_at(s.realm, s.replica_set)
    }

    /// Whether a session of `realm` in replica set `set` is where the operation looks.
    pub fn admits_at(&self, realm: RealmId, set: ReplicaSetId) -> bool {
        match self {
            Within::Realm(r) => realm == *r,
            Within::ReplicaSets(sets) => sets.contains(&set),
        }
    }
}

/// One operation of a batch.
#[derive(Debug, Clone)]
pub enum Op<'a> {
    /// Refreshes every live session of a user in a realm within `scope`; `fresh` is the
    /// user's credential as the registry builds it.
    RefreshUser {
        realm: RealmId,
        user: UserKey,
        scope: Scope<'a>,
        fresh: &'a Credential,
    },
    /// Removes every live session of a user in a realm within `scope`.
    TerminateUser {
        realm: RealmId,
        user: UserKey,
        scope: Scope<'a>,
    },
    /// Refreshes one live session, which must be `within`; its user's fresh credential
    /// comes from the [`Refresher`].
    RefreshSession { id: &'a str, within: Within<'a> },
    /// Removes one live session, which must be `within`.
    TerminateSession { id: &'a str, within: Within<'a> },
}

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Acted on this many sessions (0: none live in scope; nothing changed).
    Sessions(usize),
    /// No live session with that id where the operation looked; nothing changed.
    NoSession,
    /// The session's user is not in the registry; nothing changed.
    UnknownUser,
}

/// The registry side of a refresh, lent by the engine: the store stays ignorant of
/// registries and refresh rules.
pub trait Refresher: Sync {
    /// The user's credential as the registry builds it; `None` when the user is not there.
    fn fresh(&self, user: &str) -> Option<&Credential>;

    /// A session's new credential: `old` merged with `fresh` by the run's refresh rules.
    fn merge(&self, old: &Credential, fresh: &Credential) -> Credential;
}
