//! The identifiers every layer shares: realm, replica set and server ids (indices in
//! topology order) and the case-folded user name that keys a user's sessions.
//!
//! They sit at the bottom of the library so that the store, the site and the executor agree
//! on them without importing one another.

use std::fmt;
use std::ops::Deref;

use compact_str::CompactString;

use crate::fold::fold;

/// Index of a realm in topology order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealmId(pub u16);

/// Index of a replica set in topology order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplicaSetId(pub u16);

/// Index of a server in topology order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(pub u16);

/// A user name after full Unicode case folding (contract §10): the key of a user's sessions.
/// Names of up to 24 bytes are held inline, so building one usually allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct UserKey(CompactString);

impl UserKey {
    /// The key of a user name as written anywhere (a command, a session, the registry).
    pub fn of(name: &str) -> Self {
        Self(fold(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A hash of the folded name that is the same on every machine and every run (FNV-1a
    /// with a finaliser, `crate::hash`): for choices that must agree across processes.
    pub fn stable_hash(&self) -> u64 {
        crate::hash::stable_hash(&[self.0.as_bytes()])
    }
}

impl Deref for UserKey {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_names() {
        assert_eq!(UserKey::of("Mary Jones"), UserKey::of("MARY jones"));
        assert_eq!(UserKey::of("ZOË"), UserKey::of("zoë"));
        assert_ne!(UserKey::of("mary"), UserKey::of("marie"));
        assert_eq!(UserKey::of("JohnQ").as_str(), "johnq");
    }
}
