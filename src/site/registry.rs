//! The user registry: each user's groups and attributes, from `registry.yaml` or
//! `registry.jsonl` (contract §9), or from a directory (contract §12, [`crate::directory`]).
//! One registry serves every realm, as in ISVA.

use std::hash::BuildHasher;
use std::io::Write;
use std::path::Path;

use compact_str::CompactString;
use hashbrown::HashTable;
use rayon::prelude::*;
use serde::Deserialize;

use super::error::{Located, SiteError};
use crate::credential::{self, Credential, CredentialBuilder};
use crate::directory::DirectoryUser;
use crate::fold::fold;
use crate::located::locate;
use crate::ordered::OrderedMap;

/// One registry user: the name and the credential a fresh login would get (principal,
/// groups in registry order without duplicates, then the attributes), built once at load
/// and shared by every refresh of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// The user as spelled in the registry.
    pub name: CompactString,
    base: Credential,
}

impl UserEntry {
    /// An entry as a cache kept it (its credential already built from name and groups).
    pub(super) fn from_parts(name: &str, credential: Credential) -> Self {
        Self {
            name: name.into(),
            base: credential,
        }
    }

    /// The credential a fresh login would get.
    pub fn credential(&self) -> &Credential {
        &self.base
    }

    /// The user's groups, in registry order.
    pub fn groups(&self) -> Vec<&'static str> {
        self.base.groups()
    }

    /// Whether the user is a member of `group` (names match exactly).
    pub fn in_group(&self, group: &str) -> bool {
        self.groups().contains(&group)
    }
}

/// A loaded registry, in file order, indexed by folded user name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    users: Vec<UserEntry>,
    /// Entry numbers by the hash of the folded name ([`name_hash`]). The names are not
    /// copied into the index: at a million users a map keyed by them cost ~70 MB.
    index: HashTable<u32>,
}

/// The index's hash of a folded user name.
fn name_hash(folded: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0x7265_6769).hash_one(folded.as_bytes())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYaml {
    users: OrderedMap<RawUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    attributes: Credential,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    user: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    attributes: Credential,
}

fn check_user(name: &str, groups: &[String], attributes: &Credential) -> Result<UserEntry, String> {
    if name.is_empty() {
        return Err("the user name is empty".into());
    }
    for reserved in [credential::PRINCIPAL_NAME, credential::GROUPS] {
        if attributes.get(reserved).is_some() {
            return Err(format!(
                "attributes may not set {reserved}; it is built from the user name and groups"
            ));
        }
    }
    let mut unique: Vec<&str> = Vec::with_capacity(groups.len());
    for g in groups {
        if !unique.contains(&g.as_str()) {
            unique.push(g);
        }
    }
    let mut b =
        CredentialBuilder::with_capacity(attributes.len() + 2, 64 + attributes.bytes().len());
    b.push_str(credential::PRINCIPAL_NAME, name)
        .map_err(|e| e.to_string())?;
    b.push_list(credential::GROUPS, unique)
        .map_err(|e| e.to_string())?;
    for a in attributes.iter() {
        b.push_raw(&a);
    }
    Ok(UserEntry {
        name: name.into(),
        base: b.build(),
    })
}

impl Registry {
    /// Builds a registry from entries; a user given twice (in any case) is reported with the
    /// index of both entries.
    fn from_entries(users: Vec<UserEntry>) -> Result<Self, (usize, usize, String)> {
        let mut index: HashTable<u32> = HashTable::with_capacity(users.len());
        let rehash = |j: &u32| name_hash(&fold(&users[*j as usize].name));
        for (i, u) in users.iter().enumerate() {
            let folded = fold(&u.name);
            let h = name_hash(&folded);
            match index.entry(h, |j| fold(&users[*j as usize].name) == folded, rehash) {
                hashbrown::hash_table::Entry::Occupied(prev) => {
                    return Err((*prev.get() as usize, i, u.name.to_string()));
                }
                hashbrown::hash_table::Entry::Vacant(slot) => {
                    slot.insert(i as u32);
                }
            }
        }
        Ok(Self { users, index })
    }

    pub fn load_yaml(path: &Path) -> Result<Self, SiteError> {
        let text = std::fs::read_to_string(path).map_err(|e| SiteError::io(path, e))?;
        Self::parse_yaml(path, &text)
    }

    /// Checks a `registry.yaml` text; `path` is only used in messages.
    pub fn parse_yaml(path: &Path, text: &str) -> Result<Self, SiteError> {
        crate::yaml_depth::check(text)
            .map_err(|(line, m)| SiteError::at(path, Some(line), None, m))?;
        let raw: RawYaml = serde_yaml::from_str(text)
            .map_err(|e| SiteError::Invalid(Located::from_yaml(path, &e)))?;
        let mut users = Vec::with_capacity(raw.users.0.len());
        for (name, u) in raw.users.0 {
            let entry = check_user(&name, &u.groups, &u.attributes).map_err(|m| {
                SiteError::at(
                    path,
                    locate(text, &["users", &name]),
                    Some(format!("users.{name}")),
                    m,
                )
            })?;
            users.push(entry);
        }
        Self::from_entries(users).map_err(|(_, _, name)| {
            SiteError::at(
                path,
                locate(text, &["users", &name]),
                Some(format!("users.{name}")),
                "the user is given twice (user names ignore case)",
            )
        })
    }

    pub fn load_jsonl(path: &Path) -> Result<Self, SiteError> {
        let bytes = std::fs::read(path).map_err(|e| SiteError::io(path, e))?;
        Self::parse_jsonl(path, &bytes)
    }

    /// Checks `registry.jsonl` bytes; `path` is only used in messages.
    pub fn parse_jsonl(path: &Path, bytes: &[u8]) -> Result<Self, SiteError> {
        let lines: Vec<(usize, &[u8])> = bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
            .collect();
        let users = lines
            .par_iter()
            .map(|(i, line)| {
                let at = |m: String| SiteError::at(path, Some(*i as u64 + 1), None, m);
                let raw: RawLine = serde_json::from_slice(line).map_err(|e| at(e.to_string()))?;
                check_user(&raw.user, &raw.groups, &raw.attributes).map_err(at)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_entries(users).map_err(|(a, b, _)| {
            SiteError::at(
                path,
                Some(lines[b].0 as u64 + 1),
                None,
                format!(
                    "the user is given twice (user names ignore case); first on line {}",
                    lines[a].0 + 1
                ),
            )
        })
    }

    /// A registry from a directory's users (LDIF or live LDAP); `path` names the file that
    /// describes it in messages.
    pub fn from_directory(path: &Path, users: Vec<DirectoryUser>) -> Result<Self, SiteError> {
        let mut entries = Vec::with_capacity(users.len());
        for u in users {
            if u.name.is_empty() {
                return Err(SiteError::at(path, None, None, "a user's name is empty"));
            }
            entries.push(UserEntry {
                name: u.name.into(),
                base: u.credential,
            });
        }
        Self::from_entries(entries).map_err(|(_, _, name)| {
            SiteError::at(
                path,
                None,
                None,
                format!("the user `{name}` is given twice (user names ignore case)"),
            )
        })
    }

    /// A registry from a cache's entries; `None` when two entries name one user (a cache
    /// made here never does).
    pub(super) fn from_cache(users: Vec<UserEntry>) -> Option<Self> {
        Self::from_entries(users).ok()
    }

    /// Writes the registry as `registry.jsonl`, sorted by user (case-folded, then as
    /// spelled): the form `registry export` keeps for a later `group_changes` policy.
    pub fn write_jsonl(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut order: Vec<(CompactString, &UserEntry)> =
            self.users.iter().map(|u| (fold(&u.name), u)).collect();
        order.sort_unstable_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
        let mut line = String::new();
        for (_, u) in order {
            line.clear();
            line.push_str("{\"user\":");
            line.push_str(&json(&u.name.as_str()));
            line.push_str(",\"groups\":");
            line.push_str(&json(&u.groups()));
            line.push_str(",\"attributes\":{");
            let mut first = true;
            for a in u.credential().iter() {
                let name = a.name_str();
                if name == credential::PRINCIPAL_NAME || name == credential::GROUPS {
                    continue;
                }
                if !first {
                    line.push(',');
                }
                first = false;
                line.push_str(&json(&name));
                line.push(':');
                line.push_str(&json(&a.value().to_owned()));
            }
            line.push_str("}}\n");
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    pub fn get(&self, user: &str) -> Option<&UserEntry> {
        let folded = fold(user);
        self.index
            .find(name_hash(&folded), |i| {
                fold(&self.users[*i as usize].name) == folded
            })
            .map(|i| &self.users[*i as usize])
    }

    pub fn users(&self) -> &[UserEntry] {
        &self.users
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// A value as JSON text (strings and lists of strings never fail to serialise).
fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        (dir, path)
    }

    #[test]
    fn yaml_registry() {
        let (_d, p) = write(
            "registry.yaml",
            "users:\n  johnq: {groups: [staff, hr, staff], attributes: {emailAddress: j@x, level: 1}}\n  \"Mary Jones\": {groups: []}\n",
        );
        let r = Registry::load_yaml(&p).unwrap();
        let j = r.get("JOHNQ").unwrap();
        assert_eq!(j.groups(), ["staff", "hr"]);
        let c = j.credential();
        assert_eq!(
            c.get("azn_cred_principal_name"),
            Some(crate::credential::AttrValue::One("johnq".into()))
        );
        assert_eq!(c.groups(), ["staff", "hr"]);
        assert_eq!(
            c.get("level"),
            Some(crate::credential::AttrValue::One("1".into()))
        );
        assert!(r.get("mary jones").is_some());
    }

    #[test]
    fn yaml_errors() {
        let (_d, p) = write(
            "registry.yaml",
            "users:\n  a: {groups: [x]}\n  A: {groups: [y]}\n",
        );
        let e = Registry::load_yaml(&p).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "registry.yaml:3: users.A: the user is given twice (user names ignore case)"
            ),
            "{e}"
        );
        let (_d, p) = write("registry.yaml", "users:\n  a: {groups: x}\n");
        let e = Registry::load_yaml(&p).unwrap_err().to_string();
        assert!(
            e.contains("registry.yaml:2: users.a.groups: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn jsonl_registry_and_errors() {
        let (_d, p) = write(
            "registry.jsonl",
            "{\"user\":\"zoë\",\"groups\":[\"a\"]}\n\n{\"user\":\"b\"}\n",
        );
        let r = Registry::load_jsonl(&p).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.get("ZOË").is_some());
        let (_d, p) = write(
            "registry.jsonl",
            "{\"user\":\"a\"}\n{\"user\":\"b\",\"grups\":[]}\n",
        );
        let e = Registry::load_jsonl(&p).unwrap_err().to_string();
        assert!(e.contains("registry.jsonl:2: unknown field `grups`"), "{e}");
        let (_d, p) = write("registry.jsonl", "{\"user\":\"a\"}\n{\"user\":\"A\"}\n");
        let e = Registry::load_jsonl(&p).unwrap_err().to_string();
        assert!(e.contains("registry.jsonl:2: the user is given twice (user names ignore case); first on line 1"), "{e}");
        let (_d, p) = write(
            "registry.jsonl",
            "{\"user\":\"a\",\"attributes\":{\"AZN_CRED_GROUPS\":[]}}\n",
        );
        assert!(
            Registry::load_jsonl(&p)
                .unwrap_err()
                .to_string()
                .contains("may not set AZN_CRED_GROUPS")
        );
    }
}
