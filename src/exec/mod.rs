//! Executing pdadmin commands against a loaded site (contract §3, §4, §10), in three steps
//! that let the engine batch the store's work:
//!
//! 1. [`Context::prepare`] makes every check that needs no session, in the order §10 fixes
//!    (the server exists, then the realm, then, for a user's refresh, the user is in the
//!    registry) and turns the command into a [`Step`]: an outcome already decided, store
//!    operations, or a read of the whole store;
//! 2. the store applies the operations of many commands at once ([`SessionStore::apply`]);
//! 3. [`Context::finish`] turns what the store did into the command's outcome (the session
//!    id's checks come from the store: unknown id, then user missing from the registry, then
//!    no live sessions).
//!
//! [`Context::execute`] does all three for one command alone.

mod finish;
mod lists;
pub(crate) mod result;

use smallvec::SmallVec;

pub use finish::Finish;
pub use result::{
    Answer, CommandResult, CommandText, Item, NamedItem, Outcome, SessionItem, Status,
};

use crate::command::{Command, Task};
use crate::credential::Credential;
use crate::ids::{ServerId, UserKey};
use crate::message::{self as msg, Message};
use crate::rules::RefreshRules;
use crate::session::Clock;
use crate::site::{Registry, Topology};
use crate::store::{Op, Refresher, Scope, SessionStore, Within};

/// Everything a command runs against.
pub struct Context<'a> {
    pub topology: &'a Topology,
    pub registry: &'a Registry,
    pub store: &'a dyn SessionStore,
    pub rules: &'a RefreshRules,
    pub clock: Clock,
}

/// A command after the checks that need no session.
#[derive(Debug)]
pub enum Step<'a> {
    /// The outcome is decided (a list of the topology, `errtext`, or an early failure).
    Done(Outcome),
    /// The store's operations, then how their results become the outcome.
    Store {
        ops: SmallVec<[Op<'a>; 1]>,
        finish: Finish<'a>,
    },
    /// A read of the whole store (`session list`, `replica set show`): it must see every
    /// earlier command's changes and none of the later ones'.
    WholeStore,
}

pub(crate) fn fail(m: &'static Message, args: &[&str]) -> Outcome {
    Outcome::new(m, args)
}

/// The registry side of a refresh: the store asks it for users' fresh credentials.
impl Refresher for Context<'_> {
    fn fresh(&self, user: &str) -> Option<&Credential> {
        self.registry
            .get(user)
            .map(super::site::registry::UserEntry::credential)
    }

    fn merge(&self, old: &Credential, fresh: &Credential) -> Credential {
        self.rules.merge(old, fresh)
    }
}

impl<'a> Context<'a> {
    /// Executes one command on its own: prepare, apply, finish.
    pub fn execute(&self, cmd: &'a Command) -> Outcome {
        match self.prepare(cmd) {
            Step::Done(outcome) => outcome,
            Step::WholeStore => self.read_whole_store(cmd),
            Step::Store { ops, finish } => {
                let applied = self.store.apply(&self.clock, &ops, self);
                self.finish(&finish, &applied)
            }
        }
    }

    /// The checks that need no session, and what is left for the store.
    pub fn prepare(&self, cmd: &'a Command) -> Step<'a> {
        match cmd {
            Command::ServerList => Step::Done(self.server_list()),
            Command::Errtext { code } => Step::Done(lists::errtext(code)),
            Command::Task { server, task } => match self.topology.server(server) {
                None => Step::Done(fail(&msg::UNKNOWN_SERVER, &[server])),
                Some(id) => self.task(server, id, task).unwrap_or_else(Step::Done),
            },
        }
    }

    fn realm(&self, name: &str) -> Result<crate::ids::RealmId, Outcome> {
        self.topology
            .realm(name)
            .ok_or_else(|| fail(&msg::UNKNOWN_REALM, &[name]))
    }

    fn fresh_for(&self, user: &str) -> Result<&'a Credential, Outcome> {
        self.registry
            .get(user)
            .map(super::site::registry::UserEntry::credential)
            .ok_or_else(|| fail(&msg::ENTRY_NOT_FOUND, &[]).with_status(Status::Error))
    }

    fn task(
        &self,
        server_name: &'a str,
        server: ServerId,
        task: &'a Task,
    ) -> Result<Step<'a>, Outcome> {
        let store = |op: Op<'a>, finish: Finish<'a>| Step::Store {
            ops: SmallVec::from_elem(op, 1),
            finish,
        };
        Ok(match task {
            Task::SmsRefreshAll { user, realm } => {
                let rid = self.realm(realm)?;
                let fresh = self.fresh_for(user)?;
                let op = Op::RefreshUser {
                    realm: rid,
                    user: UserKey::of(user),
                    scope: Scope::Realm,
                    fresh,
                };
                store(op, Finish::RefreshAll { user, realm })
            }
            Task::SmsTerminateAll { user, realm } => {
                let rid = self.realm(realm)?;
                let op = Op::TerminateUser {
                    realm: rid,
                    user: UserKey::of(user),
                    scope: Scope::Realm,
                };
                store(op, Finish::TerminateAll { user, realm })
            }
            Task::SmsRefreshSession { id, realm } => {
                let within = Within::Realm(self.realm(realm)?);
                store(
                    Op::RefreshSession { id, within },
                    Finish::RefreshSession { id, realm },
                )
            }
            Task::SmsTerminateSession { id, realm } => {
                let within = Within::Realm(self.realm(realm)?);
                store(
                    Op::TerminateSession { id, within },
                    Finish::TerminateSession { id, realm },
                )
            }
            Task::SmsSessionList { realm, .. } => {
                self.realm(realm)?;
                Step::WholeStore
            }
            Task::SmsReplicaSetShow { replica_set } => {
                if self.topology.replica_set(replica_set).is_none() {
                    return Err(fail(&msg::UNKNOWN_REPLICA_SET, &[replica_set]));
                }
                Step::WholeStore
            }
            Task::SmsRealmList | Task::SmsRealmShow { .. } | Task::SmsReplicaSetList { .. } => {
                Step::Done(self.topology_list(task)?)
            }
            Task::RefreshAll { user } => self.webseal_all(server_name, server, user, true)?,
            Task::TerminateAll { user } => self.webseal_all(server_name, server, user, false)?,
            Task::TerminateSession { id } => {
                let sets = &self.topology.server_def(server).replica_sets;
                let op = Op::TerminateSession {
                    id,
                    within: Within::ReplicaSets(sets),
                };
                store(
                    op,
                    Finish::WebsealTerminateSession {
                        id,
                        server: server_name,
                    },
                )
            }
        })
    }

    /// The plain WebSEAL forms (`refresh|terminate all_sessions USER`): one operation per
    /// realm whose replica sets `server` serves, limited to those sets. A refresh first
    /// needs the user in the registry.
    fn webseal_all(
        &self,
        server_name: &'a str,
        server: ServerId,
        user: &'a str,
        refresh: bool,
    ) -> Result<Step<'a>, Outcome> {
        let fresh = if refresh {
            Some(self.fresh_for(user)?)
        } else {
            None
        };
        let key = UserKey::of(user);
        let ops = self
            .topology
            .server_def(server)
            .realms
            .iter()
            .map(|(realm, sets)| {
                let (realm, user, scope) = (*realm, key.clone(), Scope::ReplicaSets(sets));
                match fresh {
                    Some(fresh) => Op::RefreshUser {
                        realm,
                        user,
                        scope,
                        fresh,
                    },
                    None => Op::TerminateUser { realm, user, scope },
                }
            })
            .collect();
        let finish = if refresh {
            Finish::WebsealRefresh {
                user,
                server: server_name,
            }
        } else {
            Finish::WebsealTerminate {
                user,
                server: server_name,
            }
        };
        Ok(Step::Store { ops, finish })
    }
}
