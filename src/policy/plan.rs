//! Resolving a policy against a loaded site into a [`Plan`]: a deterministic list of pdadmin
//! commands, with the limits checked before anything changes.
//!
//! Order: targets in the order the selectors are listed in the contract (users, csv, groups,
//! user_pattern, all_users, group_changes), each in its own order (list order, file order,
//! registry order, user name order), de-duplicated by (user, realm) keeping the first.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::BufReader;

use compact_str::CompactString;
use wildmatch::WildMatch;

use super::{MissingUser, Policy, PolicyAction, PolicyError};
use crate::command::{Command, Task};
use crate::fold::fold;
use crate::ids::{RealmId, UserKey};
use crate::input::{CsvDefaults, CsvSource, JobKind};
use crate::session::{Clock, Session};
use crate::site::registry::Registry;
use crate::site::{Site, SiteError, Topology};
use crate::store::{SessionStore, StoreError};

/// A resolved policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub commands: Vec<Command>,
    /// Distinct planned (user, realm) pairs.
    pub users: u64,
    /// Live sessions the plan would touch.
    pub sessions: u64,
    /// Users left out because they are not in the registry (`missing_user: skip`).
    pub skipped: Vec<String>,
    /// Users left out by `exclude:`.
    pub excluded: u64,
}

/// Why a policy does not resolve: a problem in it, or a limit exceeded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A policy that needs session data, run against a target (contract §14).
    #[error(
        "{file}: {key}: a target has no session data here (its sessions live in the appliance), so a policy cannot {what}; nothing was run"
    )]
    NoSessionData {
        file: String,
        key: &'static str,
        what: &'static str,
    },
    #[error("{file}: limits.{limit}: the plan has {planned} {what}, over the limit of {value} by {}", planned - value)]
    Limit {
        file: String,
        limit: &'static str,
        what: &'static str,
        value: u64,
        planned: u64,
    },
}

struct Target {
    user: String,
    realm: String,
    server: Option<String>,
}

/// A policy's `group_changes:` with its registries read.
struct Changes<'p> {
    before: Registry,
    /// `None`: the site's registry.
    after: Option<Registry>,
    groups: Option<&'p [String]>,
}

/// Checks everything a policy names against the site: realm, server, groups, replica set.
fn check_names(
    p: &Policy,
    topology: &Topology,
    registry: &Registry,
    changes: Option<&Changes<'_>>,
) -> Result<(), PolicyError> {
    if let Some(r) = &p.realm
        && topology.realm(r).is_none()
    {
        return Err(p.error_at(
            &["realm"],
            format!("the realm `{r}` is not in the site's topology"),
        ));
    }
    if let Some(s) = &p.server
        && topology.server(s).is_none()
    {
        return Err(p.error_at(
            &["server"],
            format!("the server `{s}` is not in the site's topology"),
        ));
    }
    let known: HashSet<&str> = registry
        .users()
        .iter()
        .flat_map(super::super::site::registry::UserEntry::groups)
        .collect();
    let check_groups = |groups: &[String], keys: &[&str]| match groups
        .iter()
        .find(|g| !known.contains(g.as_str()))
    {
        Some(g) => Err(p.error_at(
            keys,
            format!("the group `{g}` has no member in the registry"),
        )),
        None => Ok(()),
    };
    check_groups(&p.groups, &["targets", "groups"])?;
    check_groups(&p.exclude_groups, &["exclude", "groups"])?;
    if let Some(gc) = changes
        && let Some(groups) = gc.groups
    {
        let before: HashSet<&str> = gc
            .before
            .users()
            .iter()
            .flat_map(super::super::site::registry::UserEntry::groups)
            .collect();
        if let Some(g) = groups
            .iter()
            .find(|g| !known.contains(g.as_str()) && !before.contains(g.as_str()))
        {
            return Err(p.error_at(
                &["targets", "group_changes", "groups"],
                format!("the group `{g}` is in neither registry"),
            ));
        }
    }
    if let Some(rs) = p.sessions.as_ref().and_then(|s| s.replica_set.as_ref())
        && topology.replica_set(rs).is_none()
    {
        return Err(p.error_at(
            &["sessions", "replica_set"],
            format!("the replica set `{rs}` is not in the site's topology"),
        ));
    }
    Ok(())
}

/// Users with live sessions in `realm` whose name matches `pattern` (`None`: every user), in
/// case-folded name order, spelled as the registry spells them (else as a session does).
fn live_users(
    store: &dyn SessionStore,
    registry: &Registry,
    realm: RealmId,
    pattern: Option<&str>,
    clock: &Clock,
) -> Result<Vec<String>, StoreError> {
    let matcher = pattern.map(WildMatch::new_case_insensitive);
    let mut found: HashMap<CompactString, String> = HashMap::new();
    store.scan(clock, Some(realm), &mut |s| {
        if matcher.as_ref().is_none_or(|m| m.matches(&s.user)) {
            let key = fold(&s.user);
            match found.get_mut(&key) {
                Some(name) if s.user.as_str() < name.as_str() => *name = s.user.to_string(),
                Some(_) => {}
                None => {
                    found.insert(key, s.user.to_string());
                }
            }
        }
    })?;
    let mut users: Vec<(CompactString, String)> = found
        .into_iter()
        .map(|(k, v)| {
            let name = registry.get(&k).map_or(v, |e| e.name.to_string());
            (k, name)
        })
        .collect();
    users.sort();
    Ok(users.into_iter().map(|(_, v)| v).collect())
}

/// Users whose groups differ (as sets) between two registries, touching `groups` if given.
fn changed_users(before: &Registry, after: &Registry, groups: Option<&[String]>) -> Vec<String> {
    fn set(g: Vec<&'static str>) -> HashSet<&'static str> {
        g.into_iter().collect()
    }
    let touches =
        |diff: &HashSet<&str>| groups.is_none_or(|gs| gs.iter().any(|g| diff.contains(g.as_str())));
    let mut out = Vec::new();
    for u in after.users() {
        let now = set(u.groups());
        let was = before
            .get(&u.name)
            .map(|b| set(b.groups()))
            .unwrap_or_default();
        let diff: HashSet<&str> = now.symmetric_difference(&was).copied().collect();
        let changed = before.get(&u.name).is_none() || !diff.is_empty();
        if changed && touches(&diff) {
            out.push(u.name.to_string());
        }
    }
    for u in before.users() {
        if after.get(&u.name).is_none() && touches(&set(u.groups())) {
            out.push(u.name.to_string());
        }
    }
    out
}

fn session_matches(p: &Policy, topology: &Topology, s: &Session, clock: &Clock) -> bool {
    let Some(f) = &p.sessions else { return true };
    let older = |since: i64, limit: Option<u64>| {
        limit.is_none_or(|l| clock.now.saturating_sub(since) > l as i64)
    };
    older(s.last_access, f.idle_longer_than)
        && older(s.created, f.older_than)
        && f.auth_method.as_ref().is_none_or(|m| {
            s.credential.get_str(crate::credential::AUTH_METHOD) == Some(m.as_str())
        })
        && f.replica_set
            .as_ref()
            .is_none_or(|rs| topology.replica_set(rs) == Some(s.replica_set))
}

/// The targets' de-duplication by (user, realm), keeping the first.
#[derive(Default)]
struct Targets {
    list: Vec<Target>,
    seen: HashSet<(CompactString, CompactString)>,
}

impl Targets {
    fn push(&mut self, user: String, realm: String, server: Option<String>) {
        if self.seen.insert((fold(&user), fold(&realm))) {
            self.list.push(Target {
                user,
                realm,
                server,
            });
        }
    }
}

/// Resolves `policy` against a site. `clock` decides which sessions are live and idle.
pub fn resolve(p: &Policy, site: &Site, clock: &Clock) -> Result<Plan, PlanError> {
    let (topology, registry) = (&site.topology, &site.registry);
    let changes = match &p.group_changes {
        Some(gc) => {
            let (before, after) = gc.load(&site.dir)?;
            Some(Changes {
                before,
                after,
                groups: gc.groups.as_deref(),
            })
        }
        None => None,
    };
    check_names(p, topology, registry, changes.as_ref())?;
    if site.target.is_some() {
        refuse_session_filters(p)?;
    }
    let targets = collect_targets(p, site, clock, changes.as_ref())?;
    let (planned, mut plan) = screen(p, registry, targets);
    plan.users = planned.len() as u64;
    if p.sessions.is_some() {
        per_session_commands(p, site, clock, &planned, &mut plan)?;
    } else {
        per_user_commands(p, site, clock, &planned, &mut plan)?;
    }
    check_limits(p, &plan)?;
    Ok(plan)
}

/// With a target, what needs the sessions is refused before anything runs (contract §14).
fn refuse_session_filters(p: &Policy) -> Result<(), PlanError> {
    let refuse = |key, what| {
        Err(PlanError::NoSessionData {
            file: p.file.display().to_string(),
            key,
            what,
        })
    };
    if p.sessions.is_some() {
        return refuse(
            "sessions",
            "filter sessions (idle_longer_than, older_than, …)",
        );
    }
    if p.limits.max_sessions.is_some() {
        return refuse("limits.max_sessions", "count the sessions a plan touches");
    }
    if p.all_users {
        return refuse("targets.all_users", "list the users who have live sessions");
    }
    Ok(())
}

/// The registry's users whose name matches `pattern`, sorted by folded name: what a
/// `user_pattern` selects when the sessions are not here (a target).
fn registry_users(registry: &Registry, pattern: &str) -> Vec<String> {
    let matcher = WildMatch::new_case_insensitive(pattern);
    let mut users: Vec<(CompactString, String)> = registry
        .users()
        .iter()
        .filter(|u| matcher.matches(&u.name))
        .map(|u| (fold(&u.name), u.name.to_string()))
        .collect();
    users.sort();
    users.into_iter().map(|(_, v)| v).collect()
}

/// Every selector's users, in the contract's selector order.
fn collect_targets(
    p: &Policy,
    site: &Site,
    clock: &Clock,
    changes: Option<&Changes<'_>>,
) -> Result<Vec<Target>, PlanError> {
    let (topology, registry, store) = (&site.topology, &site.registry, &*site.store);
    let default_realm = p.realm.clone().unwrap_or_default();
    let mut targets = Targets::default();
    for u in &p.users {
        targets.push(u.clone(), default_realm.clone(), None);
    }
    csv_targets(p, topology, &mut targets)?;
    if !p.groups.is_empty() {
        for u in registry.users() {
            if u.groups().iter().any(|g| p.groups.iter().any(|x| x == g)) {
                targets.push(u.name.to_string(), default_realm.clone(), None);
            }
        }
    }
    let realm_id = p.realm.as_deref().and_then(|r| topology.realm(r));
    if let (Some(pattern), Some(rid)) = (&p.user_pattern, realm_id) {
        let users = if site.target.is_some() {
            registry_users(registry, pattern)
        } else {
            live_users(store, registry, rid, Some(pattern), clock)?
        };
        for u in users {
            targets.push(u, default_realm.clone(), None);
        }
    }
    if let (true, Some(rid)) = (p.all_users, realm_id) {
        for u in live_users(store, registry, rid, None, clock)? {
            targets.push(u, default_realm.clone(), None);
        }
    }
    if let Some(gc) = changes {
        let after = gc.after.as_ref().unwrap_or(registry);
        for u in changed_users(&gc.before, after, gc.groups) {
            targets.push(u, default_realm.clone(), None);
        }
    }
    Ok(targets.list)
}

/// The users of the policy's CSV lists, each row with its own realm and server.
fn csv_targets(p: &Policy, topology: &Topology, targets: &mut Targets) -> Result<(), PlanError> {
    for csv in &p.csv {
        let file = File::open(&csv.path).map_err(|e| SiteError::io(&csv.path, e))?;
        let defaults = CsvDefaults {
            terminate: false,
            server: p.server.clone(),
            realm: p.realm.clone(),
        };
        for job in CsvSource::new(BufReader::new(file), defaults, topology) {
            let job = job.map_err(|e| SiteError::io(&csv.path, e))?;
            match job.kind {
                JobKind::Command(cmd) => {
                    if let Command::Task {
                        server,
                        task: Task::SmsRefreshAll { user, realm },
                    } = &*cmd
                    {
                        targets.push(user.clone(), realm.clone(), Some(server.clone()));
                    }
                }
                JobKind::Invalid { detail, .. } => {
                    return Err(SiteError::at(&csv.path, Some(job.line), None, detail).into());
                }
            }
        }
    }
    Ok(())
}

/// Applies `exclude:`, then `missing_user:`: the planned targets, each with whether it is
/// terminated, and the plan's counts of what was left out.
fn screen(
    p: &Policy,
    registry: &Registry,
    mut targets: Vec<Target>,
) -> (Vec<(Target, bool)>, Plan) {
    let excluded_users: HashSet<CompactString> = p.exclude_users.iter().map(|u| fold(u)).collect();
    let before = targets.len();
    targets.retain(|t| {
        !excluded_users.contains(&fold(&t.user))
            && !registry.get(&t.user).is_some_and(|e| {
                e.groups()
                    .iter()
                    .any(|g| p.exclude_groups.iter().any(|x| x == g))
            })
    });
    let mut plan = Plan {
        excluded: (before - targets.len()) as u64,
        ..Plan::default()
    };
    let mut planned: Vec<(Target, bool)> = Vec::with_capacity(targets.len());
    for t in targets {
        let missing = registry.get(&t.user).is_none();
        let terminate = p.action == PolicyAction::Terminate
            || (missing && p.missing_user == MissingUser::Terminate);
        if missing && p.missing_user == MissingUser::Skip && p.action == PolicyAction::Refresh {
            plan.skipped.push(t.user);
            continue;
        }
        planned.push((t, terminate));
    }
    (planned, plan)
}

/// A target's command, on the server it names, else the policy's, else the realm's default.
fn command_for(p: &Policy, topology: &Topology, t: &Target, task: Task) -> Command {
    let server = t
        .server
        .clone()
        .or_else(|| p.server.clone())
        .unwrap_or_else(|| topology.default_server_name(&t.realm).to_string());
    Command::Task { server, task }
}

/// With `sessions:` filters: one command per matching live session of every planned user,
/// in the order of contract §10 (by `created`, then id).
fn per_session_commands(
    p: &Policy,
    site: &Site,
    clock: &Clock,
    planned: &[(Target, bool)],
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let topology = &site.topology;
    let index: HashMap<(RealmId, UserKey), usize> = planned
        .iter()
        .enumerate()
        .filter_map(|(i, (t, _))| {
            topology
                .realm(&t.realm)
                .map(|r| ((r, UserKey::of(&t.user)), i))
        })
        .collect();
    let mut per_user: Vec<Vec<(i64, String)>> = vec![Vec::new(); planned.len()];
    // One pass over the store: the matching live sessions of every planned user.
    site.store.scan(clock, None, &mut |s| {
        if let Some(i) = index.get(&(s.realm, UserKey::of(&s.user)))
            && session_matches(p, topology, s, clock)
        {
            per_user[*i].push((s.created, s.id.to_string()));
        }
    })?;
    for ((t, terminate), mut ids) in planned.iter().zip(per_user) {
        ids.sort();
        plan.sessions += ids.len() as u64;
        for (_, id) in ids {
            let realm = t.realm.clone();
            let task = if *terminate {
                Task::SmsTerminateSession { id, realm }
            } else {
                Task::SmsRefreshSession { id, realm }
            };
            plan.commands.push(command_for(p, topology, t, task));
        }
    }
    Ok(())
}

/// Without `sessions:` filters: one `refresh|terminate all_sessions` per planned user.
fn per_user_commands(
    p: &Policy,
    site: &Site,
    clock: &Clock,
    planned: &[(Target, bool)],
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let topology = &site.topology;
    let keys: Vec<(RealmId, UserKey)> = planned
        .iter()
        .filter_map(|(t, _)| topology.realm(&t.realm).map(|r| (r, UserKey::of(&t.user))))
        .collect();
    if site.target.is_none() {
        plan.sessions += site.store.count_live(clock, &keys)?.iter().sum::<usize>() as u64;
    }
    for (t, terminate) in planned {
        let (user, realm) = (t.user.clone(), t.realm.clone());
        let task = if *terminate {
            Task::SmsTerminateAll { user, realm }
        } else {
            Task::SmsRefreshAll { user, realm }
        };
        plan.commands.push(command_for(p, topology, t, task));
    }
    Ok(())
}

/// `limits:`: exceeded means strictly greater (contract §10).
fn check_limits(p: &Policy, plan: &Plan) -> Result<(), PlanError> {
    let file = p.file.display().to_string();
    let over = |limit: &'static str, what: &'static str, max: Option<u64>, planned: u64| match max {
        Some(value) if planned > value => Err(PlanError::Limit {
            file: file.clone(),
            limit,
            what,
            value,
            planned,
        }),
        _ => Ok(()),
    };
    over("max_users", "users", p.limits.max_users, plan.users)?;
    over(
        "max_sessions",
        "sessions",
        p.limits.max_sessions,
        plan.sessions,
    )
}
