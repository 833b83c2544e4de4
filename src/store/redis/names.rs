//! The topology's names as the Redis store needs them: records name realms, replica sets
//! and servers by name (ids are positions in one process's topology), so every engine that
//! shares a store, whatever its topology order, reads the same sessions.

use std::collections::HashMap;

use crate::fold::fold;
use crate::ids::{RealmId, ReplicaSetId, ServerId};

/// Names and ids of a site's realms, replica sets and servers, in topology order.
#[derive(Debug, Clone, Default)]
pub struct Names {
    realms: Vec<String>,
    replica_sets: Vec<(String, RealmId)>,
    servers: Vec<String>,
    realm_index: HashMap<String, RealmId>,
    replica_set_index: HashMap<String, ReplicaSetId>,
    server_index: HashMap<String, ServerId>,
}

impl Names {
    /// `realms` and `servers` in id order; each replica set with the realm it belongs to.
    pub fn new(
        realms: Vec<String>,
        replica_sets: Vec<(String, RealmId)>,
        servers: Vec<String>,
    ) -> Self {
        let id16 = |i: usize| u16::try_from(i).unwrap_or(u16::MAX);
        Self {
            realm_index: realms
                .iter()
                .enumerate()
                .map(|(i, n)| (fold(n).to_string(), RealmId(id16(i))))
                .collect(),
            replica_set_index: replica_sets
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (fold(n).to_string(), ReplicaSetId(id16(i))))
                .collect(),
            server_index: servers
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), ServerId(id16(i))))
                .collect(),
            realms,
            replica_sets,
            servers,
        }
    }

    pub fn realm_name(&self, id: RealmId) -> &str {
        self.realms
            .get(usize::from(id.0))
            .map_or("", String::as_str)
    }

    pub fn replica_set_name(&self, id: ReplicaSetId) -> &str {
        self.replica_sets
            .get(usize::from(id.0))
            .map_or("", |(n, _)| n.as_str())
    }

    pub fn server_name(&self, id: ServerId) -> &str {
        self.servers
            .get(usize::from(id.0))
            .map_or("", String::as_str)
    }

    pub fn realm(&self, name: &str) -> Option<RealmId> {
        self.realm_index.get(fold(name).as_str()).copied()
    }

    /// The replica set, when it exists and belongs to `realm`.
    pub fn replica_set_in(&self, name: &str, realm: RealmId) -> Option<ReplicaSetId> {
        let id = *self.replica_set_index.get(fold(name).as_str())?;
        (self.replica_sets[usize::from(id.0)].1 == realm).then_some(id)
    }

    pub fn server(&self, name: &str) -> Option<ServerId> {
        self.server_index.get(name).copied()
    }

    /// Every realm, in topology order.
    pub fn realm_ids(&self) -> impl Iterator<Item = RealmId> + '_ {
        (0..self.realms.len()).map(|i| RealmId(u16::try_from(i).unwrap_or(u16::MAX)))
    }
}
