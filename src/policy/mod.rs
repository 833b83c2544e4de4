//! YAML policies, version 1 (contract §6.3): reading and checking them.
//!
//! A policy names its targets (users, CSV lists, groups, a user pattern, every user, or the
//! users whose groups changed between two registries), an optional per-session filter,
//! exclusions, what to do with users no longer in the registry, refresh rules, safety limits
//! and execution settings. [`plan`] resolves a checked policy against a site into the
//! pdadmin commands it stands for.

pub(crate) mod plan;

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::located::locate;
use crate::ordered::OrderedMap;
use crate::rules::{RefreshRules, RuleAction};
use crate::site::topology::compile_rules;
use crate::site::{Located, Registry, RegistrySource, SiteError};
use crate::time::parse_duration;

pub use plan::{Plan, PlanError, resolve};

/// What a policy does to its targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyAction {
    #[default]
    Refresh,
    Terminate,
}

/// The shape of a duration the strict parser accepts (each number small enough that its unit
/// stays within 100 years; the parser also checks the sum).
const DURATION: &str = r"^(?:[0-9]{1,10}s|[0-9]{1,8}m|[0-9]{1,6}h|[0-9]{1,5}d|[0-9]{1,4}w)+$";

/// The policy format as a JSON Schema (draft 2020-12), generated from the types the policy
/// is read into: for editors and for checking policies before they reach a site.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(RawPolicy);
    serde_json::to_value(&schema).unwrap_or_default()
}

/// `credential_refresh`: a list of one-key maps.
fn rules_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let action = generator.subschema_for::<RuleAction>();
    schemars::json_schema!({
        "type": ["array", "null"],
        "items": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": action
        }
    })
}

/// What happens to a target user who is not in the registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MissingUser {
    /// Plan the refresh anyway: its result is `HPDMG0754W`.
    #[default]
    Error,
    /// Leave the user out of the plan (counted in the summary and report).
    Skip,
    /// Plan `terminate all_sessions` for the user instead.
    Terminate,
}

/// A smsrefresh policy, version 1 (docs/formats.md, "Policies"). The tool checks more than
/// this schema can: realms, servers, groups and files against the site.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "smsrefresh policy")]
struct RawPolicy {
    /// The policy format: 1.
    #[schemars(range(min = 1, max = 1))]
    version: u32,
    /// Letters, digits, `.`, `_` and `-`.
    #[schemars(pattern(r"^[A-Za-z0-9._-]+$"))]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    site: Option<PathBuf>,
    #[serde(default)]
    action: PolicyAction,
    #[serde(default)]
    realm: Option<String>,
    #[serde(default)]
    server: Option<String>,
    targets: RawTargets,
    #[serde(default)]
    sessions: Option<RawSessions>,
    #[serde(default)]
    exclude: RawExclude,
    #[serde(default)]
    missing_user: MissingUser,
    /// Refresh rules replacing the site's: one-key maps `pattern: preserve|refresh`, first
    /// match wins.
    #[serde(default)]
    #[schemars(schema_with = "rules_schema")]
    credential_refresh: Option<Vec<OrderedMap<RuleAction>>>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    execution: Execution,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawTargets {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    csv: Vec<PathBuf>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    user_pattern: Option<String>,
    #[serde(default)]
    all_users: bool,
    #[serde(default)]
    group_changes: Option<RawGroupChanges>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawGroupChanges {
    before: PathBuf,
    #[serde(default)]
    after: Option<PathBuf>,
    #[serde(default)]
    groups: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawSessions {
    /// A duration such as `45s`, `30m`, `8h`, `2d` or `1h30m` (at most 100 years).
    #[serde(default)]
    #[schemars(pattern(DURATION))]
    idle_longer_than: Option<String>,
    /// A duration, as `idle_longer_than`.
    #[serde(default)]
    #[schemars(pattern(DURATION))]
    older_than: Option<String>,
    #[serde(default)]
    auth_method: Option<String>,
    #[serde(default)]
    replica_set: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawExclude {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// Safety rails, checked before anything changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_users: Option<u64>,
    pub max_sessions: Option<u64>,
}

/// `execution:` settings; the command line overrides them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// Worker threads, 0 = one per core.
    #[serde(default)]
    pub jobs: usize,
    /// Commands per second, 0 = unlimited (else between one a day and 10⁶).
    #[serde(default)]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub rate: f64,
    #[serde(default)]
    pub fail_fast: bool,
    #[serde(default)]
    pub dry_run: bool,
}

/// The per-session filter: when given, the policy acts per session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Seconds; measured from `last_access`, strictly greater.
    pub idle_longer_than: Option<u64>,
    /// Seconds; measured from `created`, strictly greater.
    pub older_than: Option<u64>,
    pub auth_method: Option<String>,
    pub replica_set: Option<String>,
}

/// The `group_changes:` selector. Its registries (`.yaml`, `.jsonl` or `.ldif`) are read
/// when the plan is resolved, since an LDIF file is read with the site's mapping.
#[derive(Debug, Clone)]
pub struct GroupChanges {
    pub before: PathBuf,
    /// `None`: the site's registry.
    pub after: Option<PathBuf>,
    pub groups: Option<Vec<String>>,
}

impl GroupChanges {
    /// Reads `before` and `after` as a registry of the site in `site`.
    pub fn load(&self, site: &Path) -> Result<(Registry, Option<Registry>), PolicyError> {
        let read = |p: &Path| RegistrySource::file(p, None, site)?.load(None);
        Ok((
            read(&self.before)?,
            self.after.as_deref().map(read).transpose()?,
        ))
    }
}

/// A CSV target list, read at plan time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvTarget {
    pub path: PathBuf,
}

/// A checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub file: PathBuf,
    /// The policy file's bytes, for the audit hash.
    pub bytes: Vec<u8>,
    pub name: String,
    pub description: Option<String>,
    /// The site named by the policy, resolved against the policy's directory.
    pub site: Option<PathBuf>,
    pub action: PolicyAction,
    pub realm: Option<String>,
    pub server: Option<String>,
    pub users: Vec<String>,
    pub csv: Vec<CsvTarget>,
    pub groups: Vec<String>,
    pub user_pattern: Option<String>,
    pub all_users: bool,
    pub group_changes: Option<GroupChanges>,
    pub sessions: Option<SessionFilter>,
    pub exclude_users: Vec<String>,
    pub exclude_groups: Vec<String>,
    pub missing_user: MissingUser,
    /// `Some` replaces the site's rules for this run.
    pub rules: Option<RefreshRules>,
    pub limits: Limits,
    pub execution: Execution,
    /// Where each key path sits in the file, for later errors.
    text: String,
}

/// A policy problem: file, line and key where known.
pub type PolicyError = SiteError;

impl Policy {
    /// Reads and checks a policy file (everything that needs no site).
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let bytes = std::fs::read(path).map_err(|e| SiteError::io(path, e))?;
        Self::parse(path, bytes)
    }

    /// Checks policy bytes; `path` names the file in messages and anchors relative paths.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self, PolicyError> {
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| SiteError::at(path, None, None, "the policy is not valid UTF-8"))?;
        crate::yaml_depth::check(&text)
            .map_err(|(line, m)| SiteError::at(path, Some(line), None, m))?;
        let raw: RawPolicy = serde_yaml::from_str(&text)
            .map_err(|e| SiteError::Invalid(Located::from_yaml(path, &e)))?;
        let place = Place {
            path,
            text: &text,
            dir: path.parent().unwrap_or(Path::new(".")),
        };
        place.check_header(&raw)?;
        place.check_targets(&raw)?;
        let csv = place.csv_files(&raw.targets)?;
        let group_changes = raw
            .targets
            .group_changes
            .as_ref()
            .map(|g| place.group_changes(g))
            .transpose()?;
        let sessions = raw
            .sessions
            .as_ref()
            .map(|s| place.session_filter(s))
            .transpose()?;
        let rules = raw
            .credential_refresh
            .as_ref()
            .map(|items| {
                compile_rules(items).map_err(|(i, m)| {
                    place.at(&["credential_refresh"], format!("rule {}: {m}", i + 1))
                })
            })
            .transpose()?;
        let e = raw.execution;
        // 0 is unlimited; otherwise between one command a day and a million a second.
        if !(e.rate == 0.0 || (e.rate.is_finite() && (1.0 / 86_400.0..=1e6).contains(&e.rate))) {
            return Err(place.at(
                &["execution", "rate"],
                format!(
                    "{}: expected commands per second between 0.0000116 (one a day) and 1000000, or 0 for unlimited",
                    e.rate
                ),
            ));
        }
        Ok(Self {
            file: path.to_path_buf(),
            bytes,
            name: raw.name,
            description: raw.description,
            site: raw.site.map(|s| place.dir.join(s)),
            action: raw.action,
            realm: raw.realm,
            server: raw.server,
            users: raw.targets.users,
            csv,
            groups: raw.targets.groups,
            user_pattern: raw.targets.user_pattern,
            all_users: raw.targets.all_users,
            group_changes,
            sessions,
            exclude_users: raw.exclude.users,
            exclude_groups: raw.exclude.groups,
            missing_user: raw.missing_user,
            rules,
            limits: raw.limits,
            execution: e,
            text,
        })
    }

    /// An error at a key path of this policy.
    pub fn error_at(&self, keys: &[&str], message: impl Into<String>) -> PolicyError {
        SiteError::at(
            &self.file,
            locate(&self.text, keys),
            Some(keys.join(".")),
            message,
        )
    }

    /// Warnings about the policy's own rules (`AZN_*` preserved).
    pub fn rule_warnings(&self) -> Vec<String> {
        self.rules.as_ref().map_or_else(Vec::new, |r| {
            r.azn_warnings().into_iter().map(str::to_owned).collect()
        })
    }
}

/// The policy file being checked: errors name its line and key; relative paths start in
/// its folder.
struct Place<'a> {
    path: &'a Path,
    text: &'a str,
    dir: &'a Path,
}

impl Place<'_> {
    fn at(&self, keys: &[&str], message: String) -> PolicyError {
        SiteError::at(
            self.path,
            locate(self.text, keys),
            Some(keys.join(".")),
            message,
        )
    }

    fn check_header(&self, raw: &RawPolicy) -> Result<(), PolicyError> {
        if raw.version != 1 {
            return Err(self.at(
                &["version"],
                format!("version {} is not supported; expected 1", raw.version),
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if raw.name.is_empty() || !raw.name.chars().all(allowed) {
            return Err(self.at(
                &["name"],
                format!("`{}`: expected letters, digits, '.', '_' or '-'", raw.name),
            ));
        }
        Ok(())
    }

    fn check_targets(&self, raw: &RawPolicy) -> Result<(), PolicyError> {
        let t = &raw.targets;
        let by_name = !t.users.is_empty()
            || !t.groups.is_empty()
            || t.user_pattern.is_some()
            || t.all_users
            || t.group_changes.is_some();
        if !by_name && t.csv.is_empty() {
            return Err(self.at(&["targets"], "no target: give at least one of users, csv, groups, user_pattern, all_users, group_changes".into()));
        }
        if let Some(i) = t.users.iter().position(String::is_empty) {
            return Err(self.at(&["targets", "users"], format!("user {} is empty", i + 1)));
        }
        if by_name && raw.realm.is_none() {
            return Err(self.at(
                &["realm"],
                "these targets need a realm: set `realm:`".into(),
            ));
        }
        Ok(())
    }

    fn csv_files(&self, t: &RawTargets) -> Result<Vec<CsvTarget>, PolicyError> {
        t.csv
            .iter()
            .map(|p| {
                let full = self.dir.join(p);
                if full.is_file() {
                    Ok(CsvTarget { path: full })
                } else {
                    Err(self.at(
                        &["targets", "csv"],
                        format!("{}: no such file", full.display()),
                    ))
                }
            })
            .collect()
    }

    fn registry(&self, p: &Path, key: &str) -> Result<PathBuf, PolicyError> {
        let full = self.dir.join(p);
        let keys = ["targets", "group_changes", key];
        if !full.is_file() {
            return Err(self.at(&keys, format!("{}: no such file", full.display())));
        }
        match full.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml" | "jsonl" | "ldif") => Ok(full),
            _ => Err(self.at(
                &keys,
                format!(
                    "{}: a registry is a .yaml, .jsonl or .ldif file",
                    full.display()
                ),
            )),
        }
    }

    fn group_changes(&self, g: &RawGroupChanges) -> Result<GroupChanges, PolicyError> {
        Ok(GroupChanges {
            before: self.registry(&g.before, "before")?,
            after: g
                .after
                .as_ref()
                .map(|a| self.registry(a, "after"))
                .transpose()?,
            groups: g.groups.clone(),
        })
    }

    fn session_filter(&self, s: &RawSessions) -> Result<SessionFilter, PolicyError> {
        let dur = |v: &Option<String>, key: &str| {
            v.as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|m| self.at(&["sessions", key], m))
        };
        Ok(SessionFilter {
            idle_longer_than: dur(&s.idle_longer_than, "idle_longer_than")?,
            older_than: dur(&s.older_than, "older_than")?,
            auth_method: s.auth_method.clone(),
            replica_set: s.replica_set.clone(),
        })
    }
}
