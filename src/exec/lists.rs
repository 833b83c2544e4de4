//! The commands that list: the topology's servers, realms and replica sets, `errtext`, and
//! the two reads of the whole store (`session list`, `replica set show`).

use wildmatch::WildMatchPattern;

use super::{Context, Item, NamedItem, Outcome, SessionItem, Status, fail};
use crate::command::{Command, Task};
use crate::message as msg;
use crate::session::Session;
use crate::time::format_timestamp;

/// `session list` patterns: `*` is the only wildcard (as dscadmin documents), compared
/// case-insensitively.
type UserPattern = WildMatchPattern<'*', '\u{0}'>;

fn listed(items: Vec<Item>) -> Outcome {
    let n = items.len();
    Outcome {
        items: Some(items),
        total: Some(n as u64),
        ..Outcome::new(&msg::LISTED, &[&n.to_string()])
    }
    .sessions(n)
}

/// `errtext CODE`: `ok` for a known code or message ID, an error otherwise.
pub(super) fn errtext(code: &str) -> Outcome {
    match msg::lookup(code) {
        Some(m) => Outcome {
            looked_up: Some(m),
            ..Outcome::new(m, &[])
        }
        .with_text(m.text)
        .with_status(Status::Ok),
        None => fail(&msg::UNKNOWN_CODE, &[code]),
    }
}

impl Context<'_> {
    pub(super) fn server_list(&self) -> Outcome {
        listed(
            self.topology
                .servers
                .iter()
                .map(|s| Item::Named(NamedItem::new(&s.name)))
                .collect(),
        )
    }

    /// `realm list`, `realm show R`, `replica set list [-realm R]`.
    pub(super) fn topology_list(&self, task: &Task) -> Result<Outcome, Outcome> {
        let t = self.topology;
        let named = |name: &str| Item::Named(NamedItem::new(name));
        Ok(listed(match task {
            Task::SmsRealmList => t.realms.iter().map(|r| named(&r.name)).collect(),
            Task::SmsRealmShow { realm } => {
                let rid = self.realm(realm)?;
                t.realm_def(rid)
                    .replica_sets
                    .iter()
                    .map(|rs| named(&t.replica_set_def(*rs).name))
                    .collect()
            }
            Task::SmsReplicaSetList { realm } => {
                let filter = realm.as_deref().map(|r| self.realm(r)).transpose()?;
                t.replica_sets
                    .iter()
                    .filter(|rs| filter.is_none_or(|f| rs.realm == f))
                    .map(|rs| {
                        Item::Named(NamedItem {
                            name: rs.name.clone(),
                            realm: Some(t.realm_def(rs.realm).name.clone()),
                        })
                    })
                    .collect()
            }
            _ => Vec::new(),
        }))
    }

    /// A command that reads the whole store, run when every earlier command has been
    /// applied. A store failure is its error result.
    pub fn read_whole_store(&self, cmd: &Command) -> Outcome {
        let r = match cmd {
            Command::Task {
                task:
                    Task::SmsSessionList {
                        realm,
                        pattern,
                        max,
                    },
                ..
            } => self.session_list(realm, pattern, *max),
            Command::Task {
                task: Task::SmsReplicaSetShow { replica_set },
                ..
            } => self.replica_set_show(replica_set),
            // Only the two reads above are prepared as `Step::WholeStore`.
            other => Err(fail(
                &msg::SYNTAX_ERROR,
                &[&format!("`{other}` is not a read of the whole store")],
            )),
        };
        r.unwrap_or_else(|e| e)
    }

    fn store_failed(e: &crate::store::StoreError) -> Outcome {
        fail(&msg::STORE_UNAVAILABLE, &[&e.to_string()])
    }

    fn replica_set_show(&self, name: &str) -> Result<Outcome, Outcome> {
        let t = self.topology;
        let rs = t
            .replica_set(name)
            .ok_or_else(|| fail(&msg::UNKNOWN_REPLICA_SET, &[name]))?;
        let def = t.replica_set_def(rs);
        let live = self
            .store
            .live_in_replica_set(&self.clock, rs)
            .map_err(|e| Self::store_failed(&e))?;
        let items: Vec<Item> = def
            .servers
            .iter()
            .map(|s| Item::Named(NamedItem::new(&t.server_def(*s).name)))
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

    /// The matching live sessions ordered by `created`, then id (contract §10 "Order of
    /// sessions"), at most `max` of them shown.
    fn session_list(&self, realm: &str, pattern: &str, max: u64) -> Result<Outcome, Outcome> {
        let rid = self.realm(realm)?;
        let matcher = UserPattern::new_case_insensitive(pattern);
        let mut hits: Vec<Session> = Vec::new();
        self.store
            .scan(&self.clock, Some(rid), &mut |s| {
                if matcher.matches(&s.user) {
                    hits.push(s.clone());
                }
            })
            .map_err(|e| Self::store_failed(&e))?;
        let total = hits.len();
        hits.sort_unstable_by(|a, b| (a.created, &*a.id).cmp(&(b.created, &*b.id)));
        let shown = usize::try_from(max).unwrap_or(usize::MAX).min(total);
        let t = self.topology;
        let items: Vec<Item> = hits
            .into_iter()
            .take(shown)
            .map(|s| {
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
        Ok(Outcome {
            items: Some(items),
            total: Some(total as u64),
            ..Outcome::new(&msg::LIST_SHOWN, &[&shown.to_string(), &total.to_string()])
        }
        .sessions(shown))
    }
}
