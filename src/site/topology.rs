//! `topology.yaml`: realms, replica sets, servers, session limits and the site's credential
//! refresh rules (contract §9), checked and indexed.
//!
//! Realm names match with full case folding, replica set names case-insensitively (they are
//! DNS names), server names literally, as pdadmin matches `server list`.

use std::collections::HashMap;
use std::path::Path;

use compact_str::CompactString;
use serde::Deserialize;

use super::error::{Located, SiteError};
use crate::fold::fold;
pub use crate::ids::{RealmId, ReplicaSetId, ServerId};
use crate::located::locate;
use crate::ordered::OrderedMap;
use crate::rules::{RefreshRules, RuleAction};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Clone)]
pub struct Realm {
    pub name: String,
    pub replica_sets: Vec<ReplicaSetId>,
}

#[derive(Debug, Clone)]
pub struct ReplicaSet {
    pub name: String,
    pub realm: RealmId,
    /// Servers that join this set, in topology order.
    pub servers: Vec<ServerId>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub replica_sets: Vec<ReplicaSetId>,
    /// The realms whose replica sets this server serves, each with those sets, in topology
    /// order: where the plain WebSEAL forms act.
    pub realms: Vec<(RealmId, Vec<ReplicaSetId>)>,
}

/// The `session:` limits, in seconds; 0 = none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionLimits {
    #[serde(default)]
    pub timeout: u64,
    #[serde(default)]
    pub inactive_timeout: u64,
}

/// Which file holds a site's sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotFormat {
    /// `sessions.jsonl`, the interchange form (the default).
    #[default]
    Jsonl,
    /// `sessions.bin`, the fast binary snapshot.
    Binary,
}

/// A checked topology.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Which snapshot file is the site's (`snapshot:`).
    pub snapshot: SnapshotFormat,
    /// The `store:` URL, as written (absent: the site's files).
    pub store: Option<String>,
    pub realms: Vec<Realm>,
    pub replica_sets: Vec<ReplicaSet>,
    pub servers: Vec<Server>,
    pub limits: SessionLimits,
    /// The site's rules (the defaults when `credential_refresh:` is absent).
    pub rules: RefreshRules,
    realm_index: Map<CompactString, RealmId>,
    replica_set_index: Map<CompactString, ReplicaSetId>,
    server_index: Map<String, ServerId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    realms: OrderedMap<RawRealm>,
    servers: OrderedMap<RawServer>,
    #[serde(default)]
    session: SessionLimits,
    #[serde(default)]
    credential_refresh: Option<Vec<OrderedMap<RuleAction>>>,
    #[serde(default)]
    snapshot: SnapshotFormat,
    /// Where the sessions live (contract §11), when not in the site's files.
    #[serde(default)]
    store: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealm {
    replica_sets: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    replica_sets: Vec<String>,
}

/// Compiles a `credential_refresh:` list (one `pattern: action` mapping per item); shared by
/// the topology and policies. `Err` carries the item index and the message.
pub fn compile_rules(items: &[OrderedMap<RuleAction>]) -> Result<RefreshRules, (usize, String)> {
    let mut pairs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.0.as_slice() {
            [(pattern, action)] => pairs.push((pattern.clone(), *action)),
            _ => {
                return Err((
                    i,
                    "each rule is one `pattern: preserve|refresh` pair".to_string(),
                ));
            }
        }
    }
    RefreshRules::new(pairs.iter().map(|(p, a)| (p.as_str(), *a))).map_err(|e| {
        let i = pairs.iter().position(|(p, _)| *p == e.pattern).unwrap_or(0);
        (i, e.to_string())
    })
}

impl Topology {
    /// Reads and checks `topology.yaml`.
    pub fn load(path: &Path) -> Result<Self, SiteError> {
        let text = std::fs::read_to_string(path).map_err(|e| SiteError::io(path, e))?;
        Self::parse(path, &text)
    }

    /// Checks a topology text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, SiteError> {
        crate::yaml_depth::check(text)
            .map_err(|(line, m)| SiteError::at(path, Some(line), None, m))?;
        let raw: RawTopology = serde_yaml::from_str(text)
            .map_err(|e| SiteError::Invalid(Located::from_yaml(path, &e)))?;
        let at = |keys: &[&str], message: String| {
            SiteError::at(path, locate(text, keys), Some(keys.join(".")), message)
        };
        if raw.realms.0.len() > usize::from(u16::MAX) || raw.servers.0.len() > usize::from(u16::MAX)
        {
            return Err(at(
                &["realms"],
                "too many realms or servers (at most 65535)".into(),
            ));
        }
        for (key, secs) in [
            ("timeout", raw.session.timeout),
            ("inactive_timeout", raw.session.inactive_timeout),
        ] {
            crate::time::check_seconds(secs).map_err(|m| at(&["session", key], m))?;
        }
        if let Some(url) = raw.store.as_deref()
            && crate::store::url::redact(url) != url
        {
            return Err(at(
                &["store"],
                format!(
                    "`{}` holds a password; topology.yaml is no place for one: write the URL without it and give the password in {}",
                    crate::store::url::redact(url),
                    crate::store::redis::PASSWORD_ENV
                ),
            ));
        }
        let mut t = Topology {
            snapshot: raw.snapshot,
            store: raw.store.clone(),
            realms: Vec::new(),
            replica_sets: Vec::new(),
            servers: Vec::new(),
            limits: raw.session,
            rules: RefreshRules::defaults(),
            realm_index: Map::default(),
            replica_set_index: Map::default(),
            server_index: Map::default(),
        };
        t.add_realms(&raw.realms, &at)?;
        if t.replica_sets.len() > usize::from(u16::MAX) {
            return Err(at(
                &["realms"],
                "too many replica sets (at most 65535)".into(),
            ));
        }
        t.add_servers(&raw.servers, &at)?;
        if let Some(items) = &raw.credential_refresh {
            t.rules = compile_rules(items)
                .map_err(|(i, m)| at(&["credential_refresh"], format!("rule {}: {m}", i + 1)))?;
        }
        Ok(t)
    }

    /// The realms and their replica sets, in file order.
    fn add_realms(
        &mut self,
        realms: &OrderedMap<RawRealm>,
        at: &dyn Fn(&[&str], String) -> SiteError,
    ) -> Result<(), SiteError> {
        let t = self;
        for (name, realm) in &realms.0 {
            let id = RealmId(t.realms.len() as u16);
            if name.trim().is_empty() {
                return Err(at(&["realms"], "a realm name is empty".into()));
            }
            if t.realm_index.insert(fold(name), id).is_some() {
                return Err(at(
                    &["realms", name],
                    format!("the realm `{name}` is given twice (realm names ignore case)"),
                ));
            }
            let mut sets = Vec::new();
            for rs in &realm.replica_sets {
                let rs_id = ReplicaSetId(t.replica_sets.len() as u16);
                if let Some(prev) = t.replica_set_index.insert(fold(rs), rs_id) {
                    let owner = &t
                        .realms
                        .get(usize::from(t.replica_sets[usize::from(prev.0)].realm.0));
                    let owner = owner.map_or(name.as_str(), |r| r.name.as_str());
                    return Err(at(
                        &["realms", name, "replica_sets"],
                        format!(
                            "the replica set `{rs}` is already in realm `{owner}`; a replica set belongs to one realm"
                        ),
                    ));
                }
                t.replica_sets.push(ReplicaSet {
                    name: rs.clone(),
                    realm: id,
                    servers: Vec::new(),
                });
                sets.push(rs_id);
            }
            t.realms.push(Realm {
                name: name.clone(),
                replica_sets: sets,
            });
        }
        Ok(())
    }

    /// The servers and the replica sets each joins, in file order.
    fn add_servers(
        &mut self,
        servers: &OrderedMap<RawServer>,
        at: &dyn Fn(&[&str], String) -> SiteError,
    ) -> Result<(), SiteError> {
        let t = self;
        for (name, server) in &servers.0 {
            let id = ServerId(t.servers.len() as u16);
            if name.is_empty() {
                return Err(at(&["servers"], "a server name is empty".into()));
            }
            t.server_index.insert(name.clone(), id);
            let mut sets = Vec::new();
            for rs in &server.replica_sets {
                let Some(rs_id) = t.replica_set(rs) else {
                    return Err(at(
                        &["servers", name, "replica_sets"],
                        format!(
                            "the replica set `{rs}` is not in any realm; expected one of the replica sets listed under `realms`"
                        ),
                    ));
                };
                if !sets.contains(&rs_id) {
                    sets.push(rs_id);
                    t.replica_sets[usize::from(rs_id.0)].servers.push(id);
                }
            }
            let mut realms: Vec<(RealmId, Vec<ReplicaSetId>)> = Vec::new();
            for rs in &sets {
                let realm = t.replica_sets[usize::from(rs.0)].realm;
                match realms.iter_mut().find(|(r, _)| *r == realm) {
                    Some((_, list)) => list.push(*rs),
                    None => realms.push((realm, vec![*rs])),
                }
            }
            t.servers.push(Server {
                name: name.clone(),
                replica_sets: sets,
                realms,
            });
        }
        Ok(())
    }

    pub fn realm(&self, name: &str) -> Option<RealmId> {
        self.realm_index.get(&fold(name)).copied()
    }

    pub fn replica_set(&self, name: &str) -> Option<ReplicaSetId> {
        self.replica_set_index.get(&fold(name)).copied()
    }

    pub fn server(&self, name: &str) -> Option<ServerId> {
        self.server_index.get(name).copied()
    }

    pub fn realm_def(&self, id: RealmId) -> &Realm {
        &self.realms[usize::from(id.0)]
    }

    pub fn replica_set_def(&self, id: ReplicaSetId) -> &ReplicaSet {
        &self.replica_sets[usize::from(id.0)]
    }

    pub fn server_def(&self, id: ServerId) -> &Server {
        &self.servers[usize::from(id.0)]
    }

    /// The first server, in topology order, that serves a replica set of `realm` (the CSV
    /// default server).
    pub fn default_server(&self, realm: RealmId) -> Option<ServerId> {
        self.servers
            .iter()
            .position(|s| {
                s.replica_sets
                    .iter()
                    .any(|rs| self.replica_set_def(*rs).realm == realm)
            })
            .map(|i| ServerId(i as u16))
    }

    /// The server a command on `realm` runs on when nothing names one (contract §6.1): the
    /// first server in topology order that serves the realm; for an unknown realm the first
    /// server, so that the command then fails on its realm, as it should.
    pub fn default_server_name(&self, realm: &str) -> &str {
        self.realm(realm)
            .and_then(|r| self.default_server(r))
            .map(|s| self.server_def(s))
            .or_else(|| self.servers.first())
            .map_or("", |s| s.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "realms:\n  ibm.com: {replica_sets: [www.ibm.com, sales.ibm.com]}\n  Example.org: {replica_sets: [www.example.org]}\nservers:\n  default-webseald-cruz: {replica_sets: [www.ibm.com]}\n  web2-webseald-cruz:\n    replica_sets: [sales.ibm.com, www.example.org]\nsession: {timeout: 3600, inactive_timeout: 600}\n";

    fn parse(text: &str) -> Result<Topology, String> {
        Topology::parse(Path::new("topology.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn loads_and_indexes() {
        let t = parse(GOOD).unwrap();
        assert_eq!(t.realms.len(), 2);
        assert_eq!(t.realm("IBM.COM"), Some(RealmId(0)));
        assert_eq!(t.realm("example.org"), Some(RealmId(1)));
        assert_eq!(t.server("default-webseald-cruz"), Some(ServerId(0)));
        assert_eq!(t.server("DEFAULT-webseald-cruz"), None);
        assert_eq!(t.replica_set_def(ReplicaSetId(1)).servers, [ServerId(1)]);
        assert_eq!(t.default_server(RealmId(1)), Some(ServerId(1)));
        assert_eq!(t.limits.timeout, 3600);
        assert_eq!(t.rules.rules().len(), 2);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let bad = GOOD.replace(
            "[sales.ibm.com, www.example.org]",
            "[sales.ibm.com, nowhere]",
        );
        assert_eq!(
            parse(&bad).unwrap_err(),
            "topology.yaml:7: servers.web2-webseald-cruz.replica_sets: the replica set `nowhere` is not in any realm; expected one of the replica sets listed under `realms`"
        );
        let unknown = GOOD.replace("session: {", "session: {idle: 1, ");
        let e = parse(&unknown).unwrap_err();
        assert!(
            e.starts_with("topology.yaml:8: session: unknown field `idle`"),
            "{e}"
        );
        let twice = GOOD.replace("Example.org", "IBM.com");
        assert!(parse(&twice).unwrap_err().contains("given twice"));
        let shared = GOOD.replace("[www.example.org]", "[www.ibm.com]");
        assert!(
            parse(&shared)
                .unwrap_err()
                .contains("already in realm `ibm.com`")
        );
    }

    #[test]
    fn credential_refresh_rules() {
        let t = parse(&format!(
            "{GOOD}credential_refresh:\n  - tagvalue_x: refresh\n"
        ))
        .unwrap();
        assert_eq!(t.rules.rules().len(), 1);
        let t = parse(&format!("{GOOD}credential_refresh: []\n")).unwrap();
        assert!(t.rules.rules().is_empty());
        let e = parse(&format!(
            "{GOOD}credential_refresh:\n  - {{a: refresh, b: preserve}}\n"
        ))
        .unwrap_err();
        assert!(e.contains("credential_refresh: rule 1"), "{e}");
        let e = parse(&format!("{GOOD}credential_refresh:\n  - a: keep\n")).unwrap_err();
        assert!(e.contains("unknown variant `keep`"), "{e}");
    }
}
