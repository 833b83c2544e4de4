//! Executing one pdadmin command against a loaded site (contract §3, §4, §10).
//!
//! Checks run in the order §10 fixes: the command parses, then the server exists, then the
//! realm, then the session id, then the user is in the registry, then there are live
//! sessions (a warning when there are none).

// The helpers below return the final outcome as their `Err`: it is built once and moved
// out, and boxing it would add an allocation per failed command on the hot path.
#![allow(clippy::result_large_err)]

pub mod result;

use wildmatch::WildMatchPattern;

pub use result::{CommandResult, CommandText, Item, NamedItem, Outcome, SessionItem, Status};

use crate::command::{Command, Task};
use crate::credential::Credential;
use crate::fold::fold;
use crate::message::{self as msg, Message};
use crate::rules::RefreshRules;
use crate::session::{Clock, Session};
use crate::site::registry::UserEntry;
use crate::site::topology::{RealmId, ServerId};
use crate::site::{Registry, Topology};
use crate::store::{Scope, SessionOps, SessionStore};
use crate::time::format_timestamp;

/// `session list` patterns: `*` is the only wildcard (as dscadmin documents), compared
/// case-insensitively.
type UserPattern = WildMatchPattern<'*', '\u{0}'>;

/// Everything a command runs against. Session operations go through a [`SessionOps`]
/// given per call: the whole store, or one partition the batch engine has locked.
pub struct Context<'a> {
    pub topology: &'a Topology,
    pub registry: &'a Registry,
    /// For the commands that read every partition (lists, replica set counts).
    pub store: &'a dyn SessionStore,
    pub rules: &'a RefreshRules,
    pub clock: Clock,
}

fn fail(m: &'static Message, args: &[&str]) -> Outcome {
    Outcome::new(m, args)
}

/// Builds merged credentials for one user's sessions, memoising on the old credential so
/// that sessions sharing one credential keep sharing the merged one.
pub fn rebuilder<'a>(
    rules: &'a RefreshRules,
    entry: &'a UserEntry,
) -> impl FnMut(&Credential) -> Credential + 'a {
    let base = entry.credential();
    // One entry covers the usual case (a user's sessions share one credential) without
    // allocating; more distinct credentials spill into the vector.
    let mut last: Option<(Credential, Credential)> = None;
    let mut memo: Vec<(Credential, Credential)> = Vec::new();
    move |old: &Credential| {
        if let Some((o, n)) = &last
            && Credential::ptr_eq(o, old)
        {
            return n.clone();
        }
        if let Some((_, n)) = memo.iter().find(|(o, _)| Credential::ptr_eq(o, old)) {
            return n.clone();
        }
        let new = rules.merge(old, base);
        if let Some(prev) = last.replace((old.clone(), new.clone())) {
            memo.push(prev);
        }
        new
    }
}

impl Context<'_> {
    /// Executes one parsed command with `ops`.
    pub fn execute(&self, ops: &mut dyn SessionOps, cmd: &Command) -> Outcome {
        match cmd {
            Command::ServerList => {
                let items: Vec<Item> = self
                    .topology
                    .servers
                    .iter()
                    .map(|s| Item::Named(NamedItem::new(&s.name)))
                    .collect();
                self.listed(items)
            }
            Command::Errtext { code } => match msg::lookup(code) {
                Some(m) => Outcome {
                    looked_up: Some(m),
                    ..Outcome::new(m, &[])
                }
                .with_text(m.text)
                .with_status(Status::Ok),
                None => fail(&msg::UNKNOWN_CODE, &[code]),
            },
            Command::Task { server, task } => match self.topology.server(server) {
                None => fail(&msg::UNKNOWN_SERVER, &[server]),
                Some(id) => self.task(ops, server, id, task),
            },
        }
    }

    fn listed(&self, items: Vec<Item>) -> Outcome {
        let n = items.len();
        Outcome {
            items: Some(items),
            total: Some(n as u64),
            ..Outcome::new(&msg::LISTED, &[&n.to_string()])
        }
        .sessions(n)
    }

    fn realm(&self, name: &str) -> Result<RealmId, Outcome> {
        self.topology
            .realm(name)
            .ok_or_else(|| fail(&msg::UNKNOWN_REALM, &[name]))
    }

    fn registry_user(&self, user: &str) -> Result<&UserEntry, Outcome> {
        self.registry
            .get(user)
            .ok_or_else(|| fail(&msg::ENTRY_NOT_FOUND, &[]).with_status(Status::Error))
    }

    /// The live session `id`, which must be in `realm`.
    fn session_in_realm(
        &self,
        ops: &dyn SessionOps,
        id: &str,
        realm: RealmId,
        realm_name: &str,
    ) -> Result<Session, Outcome> {
        ops.session(id, &self.clock)
            .filter(|s| s.realm == realm)
            .ok_or_else(|| fail(&msg::SESSION_NOT_FOUND, &[id, realm_name]))
    }

    fn task(
        &self,
        ops: &mut dyn SessionOps,
        server_name: &str,
        server: ServerId,
        task: &Task,
    ) -> Outcome {
        let r = match task {
            Task::SmsRefreshAll { user, realm } => self.refresh_all(ops, user, realm),
            Task::SmsTerminateAll { user, realm } => self.realm(realm).map(|rid| {
                let n = ops.terminate_user(rid, &fold(user), Scope::Realm, &self.clock);
                self.terminated(n, user, realm)
            }),
            Task::SmsRefreshSession { id, realm } => self.refresh_session(ops, id, realm),
            Task::SmsTerminateSession { id, realm } => self.realm(realm).and_then(|rid| {
                self.session_in_realm(ops, id, rid, realm)?;
                let done = ops.terminate_session(id, &self.clock);
                Ok(self.terminated(usize::from(done), "", realm))
            }),
            Task::SmsSessionList {
                realm,
                pattern,
                max,
            } => self
                .realm(realm)
                .map(|rid| self.session_list(rid, pattern, *max)),
            Task::SmsRealmList => Ok(self.listed(
                self.topology
                    .realms
                    .iter()
                    .map(|r| Item::Named(NamedItem::new(&r.name)))
                    .collect(),
            )),
            Task::SmsRealmShow { realm } => self.realm(realm).map(|rid| {
                let sets = &self.topology.realm_def(rid).replica_sets;
                self.listed(
                    sets.iter()
                        .map(|rs| {
                            Item::Named(NamedItem::new(&self.topology.replica_set_def(*rs).name))
                        })
                        .collect(),
                )
            }),
            Task::SmsReplicaSetList { realm } => {
                let filter = realm.as_deref().map(|r| self.realm(r)).transpose();
                filter.map(|filter| {
                    let items = self
                        .topology
                        .replica_sets
                        .iter()
                        .filter(|rs| filter.is_none_or(|f| rs.realm == f))
                        .map(|rs| {
                            Item::Named(NamedItem {
                                name: rs.name.clone(),
                                realm: Some(self.topology.realm_def(rs.realm).name.clone()),
                            })
                        })
                        .collect();
                    self.listed(items)
                })
            }
            Task::SmsReplicaSetShow { replica_set } => match self.topology.replica_set(replica_set)
            {
                None => Err(fail(&msg::UNKNOWN_REPLICA_SET, &[replica_set])),
                Some(rs) => {
                    let def = self.topology.replica_set_def(rs);
                    let mut live = 0usize;
                    self.store.scan(&self.clock, &mut |s| {
                        live += usize::from(s.replica_set == rs)
                    });
                    let items: Vec<Item> = def
                        .servers
                        .iter()
                        .map(|s| Item::Named(NamedItem::new(&self.topology.server_def(*s).name)))
                        .collect();
                    let n = items.len();
                    Ok(Outcome {
                        items: Some(items),
                        total: Some(n as u64),
                        ..Outcome::new(
                            &msg::REPLICA_SET_SHOWN,
                            &[&def.name, &n.to_string(), &live.to_string()],
                        )
                    }
                    .sessions(n))
                }
            },
            Task::RefreshAll { user } => self.webseal_refresh(ops, server_name, server, user),
            Task::TerminateAll { user } => {
                Ok(self.webseal_terminate(ops, server_name, server, user))
            }
            Task::TerminateSession { id } => {
                let sets = &self.topology.server_def(server).replica_sets;
                match ops
                    .session(id, &self.clock)
                    .filter(|s| sets.contains(&s.replica_set))
                {
                    None => Err(fail(&msg::SESSION_NOT_ON_SERVER, &[id, server_name])),
                    Some(_) => {
                        let done = ops.terminate_session(id, &self.clock);
                        Ok(self.terminated(usize::from(done), "", ""))
                    }
                }
            }
        };
        r.unwrap_or_else(|e| e)
    }

    fn terminated(&self, n: usize, user: &str, realm: &str) -> Outcome {
        if n == 0 {
            fail(&msg::NO_LIVE_SESSIONS, &[user, realm])
        } else {
            Outcome::new(&msg::SESSIONS_TERMINATED, &[&n.to_string()]).sessions(n)
        }
    }

    fn refreshed(n: usize) -> Outcome {
        Outcome::new(&msg::CREDENTIAL_UPDATED, &[&n.to_string()]).sessions(n)
    }

    fn refresh_all(
        &self,
        ops: &mut dyn SessionOps,
        user: &str,
        realm: &str,
    ) -> Result<Outcome, Outcome> {
        let rid = self.realm(realm)?;
        let entry = self.registry_user(user)?;
        let mut rebuild = rebuilder(self.rules, entry);
        let n = ops.refresh_user(rid, &fold(user), Scope::Realm, &self.clock, &mut rebuild);
        Ok(if n == 0 {
            fail(&msg::NO_LIVE_SESSIONS, &[user, realm])
        } else {
            Self::refreshed(n)
        })
    }

    fn refresh_session(
        &self,
        ops: &mut dyn SessionOps,
        id: &str,
        realm: &str,
    ) -> Result<Outcome, Outcome> {
        let rid = self.realm(realm)?;
        let session = self.session_in_realm(ops, id, rid, realm)?;
        let entry = self.registry_user(&session.user)?;
        let mut rebuild = rebuilder(self.rules, entry);
        let done = ops.refresh_session(id, &self.clock, &mut rebuild);
        Ok(if done {
            Self::refreshed(1)
        } else {
            fail(&msg::SESSION_NOT_FOUND, &[id, realm])
        })
    }

    /// The realms whose replica sets `server` serves, with those sets.
    pub fn server_realms(
        &self,
        server: ServerId,
    ) -> Vec<(RealmId, Vec<crate::site::topology::ReplicaSetId>)> {
        let mut out: Vec<(RealmId, Vec<_>)> = Vec::new();
        for rs in &self.topology.server_def(server).replica_sets {
            let realm = self.topology.replica_set_def(*rs).realm;
            match out.iter_mut().find(|(r, _)| *r == realm) {
                Some((_, sets)) => sets.push(*rs),
                None => out.push((realm, vec![*rs])),
            }
        }
        out
    }

    fn webseal_refresh(
        &self,
        ops: &mut dyn SessionOps,
        server_name: &str,
        server: ServerId,
        user: &str,
    ) -> Result<Outcome, Outcome> {
        let entry = self.registry_user(user)?;
        let key = fold(user);
        let mut n = 0;
        for (realm, sets) in self.server_realms(server) {
            let mut rebuild = rebuilder(self.rules, entry);
            n += ops.refresh_user(
                realm,
                &key,
                Scope::ReplicaSets(&sets),
                &self.clock,
                &mut rebuild,
            );
        }
        Ok(if n == 0 {
            fail(&msg::NO_SESSIONS_ON_SERVER, &[user, server_name])
        } else {
            Self::refreshed(n)
        })
    }

    fn webseal_terminate(
        &self,
        ops: &mut dyn SessionOps,
        server_name: &str,
        server: ServerId,
        user: &str,
    ) -> Outcome {
        let key = fold(user);
        let n: usize = self
            .server_realms(server)
            .iter()
            .map(|(realm, sets)| {
                ops.terminate_user(*realm, &key, Scope::ReplicaSets(sets), &self.clock)
            })
            .sum();
        if n == 0 {
            fail(&msg::NO_SESSIONS_ON_SERVER, &[user, server_name])
        } else {
            Outcome::new(&msg::SESSIONS_TERMINATED, &[&n.to_string()]).sessions(n)
        }
    }

    fn session_list(&self, realm: RealmId, pattern: &str, max: u64) -> Outcome {
        let matcher = UserPattern::new_case_insensitive(pattern);
        let mut hits: Vec<(compact_str::CompactString, Session)> = Vec::new();
        self.store.scan(&self.clock, &mut |s| {
            if s.realm == realm && matcher.matches(&s.user) {
                hits.push((fold(&s.user), s.clone()));
            }
        });
        let total = hits.len();
        hits.sort_unstable_by(|a, b| (&a.0, &a.1.id).cmp(&(&b.0, &b.1.id)));
        let shown = usize::try_from(max).unwrap_or(usize::MAX).min(total);
        let t = self.topology;
        let items: Vec<Item> = hits
            .into_iter()
            .take(shown)
            .map(|(_, s)| {
                Item::Session(SessionItem {
                    id: s.id.to_string(),
                    user: s.user.to_string(),
                    realm: t.realm_def(s.realm).name.clone(),
                    replica_set: t.replica_set_def(s.replica_set).name.clone(),
                    server: t.server_def(s.server).name.clone(),
                    created: format_timestamp(s.created),
                    last_access: format_timestamp(s.last_access),
                })
            })
            .collect();
        Outcome {
            items: Some(items),
            total: Some(total as u64),
            ..Outcome::new(&msg::LIST_SHOWN, &[&shown.to_string(), &total.to_string()])
        }
        .sessions(shown)
    }
}
