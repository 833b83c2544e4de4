//! The topology's names as the Redis store needs them: records name realms, replica sets
//! and servers by name (ids are positions in one process's topology), so every engine that
//! shares a store, whatever its topology order, reads the same sessions.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::fold::fold;
use crate::ids::{RealmId, ReplicaSetId, ServerId};

type Map<V> = HashMap<String, V, RandomState>;

/// Names and ids of a site's realms, replica sets and servers, in topology order.
#[derive(Debug, Clone, Default)]
pub struct Names {
    realms: Vec<String>,
    replica_sets: Vec<(String, RealmId)>,
    servers: Vec<String>,
    realm_index: Map<RealmId>,
    replica_set_index: Map<ReplicaSetId>,
    server_index: Map<ServerId>,
}

/// A name as written and as folded.
fn spellings(name: &str) -> impl Iterator<Item = String> {
    [name.to_string(), fold(name).to_string()].into_iter()
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
                .flat_map(|(i, n)| spellings(n).map(move |k| (k, RealmId(id16(i)))))
                .collect(),
            replica_set_index: replica_sets
                .iter()
                .enumerate()
                .flat_map(|(i, (n, _))| spellings(n).map(move |k| (k, ReplicaSetId(id16(i)))))
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

    /// Names compare case-insensitively; records spell them as the topology does, so the
    /// exact spelling is tried before folding.
    pub fn realm(&self, name: &str) -> Option<RealmId> {
        let exact = self.realm_index.get(name).copied();
        exact.or_else(|| self.realm_index.get(fold(name).as_str()).copied())
    }

    /// The replica set, when it exists and belongs to `realm`.
    pub fn replica_set_in(&self, name: &str, realm: RealmId) -> Option<ReplicaSetId> {
        let exact = self.replica_set_index.get(name).copied();
        let id = exact.or_else(|| self.replica_set_index.get(fold(name).as_str()).copied())?;
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
