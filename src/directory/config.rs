//! `directory.yaml` (contract §12): how to reach a live directory (`url:` and the rest) and
//! how to read users and groups from it or from an LDIF file (the mapping).
//!
//! Every key is checked when the file is read — unknown keys, filters that do not parse,
//! durations, URLs — so a mistake stops the run before anything changes, with the file, line
//! and key. A password is never written in the file: it comes from an environment variable
//! or a file, read only when the connection is made.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::DirectoryError;
use super::dn::Dn;
use super::entry::Wanted;
use super::filter::Filter;
use crate::located::{Located, locate};
use crate::ordered::OrderedMap;

/// The attributes a fresh credential is built from; a mapping may not produce them.
const RESERVED: [&str; 2] = ["AZN_CRED_PRINCIPAL_NAME", "AZN_CRED_GROUPS"];

/// Which entries are users and what their name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMapping {
    /// The root DN when not given: every entry of a file.
    pub base: Dn,
    pub base_text: String,
    /// Where `base` was set (`directory.yaml:LINE`), for messages; `None` for the default.
    pub base_from: Option<String>,
    pub filter: Filter,
    /// The attribute type whose first value is the user name (lower case).
    pub name: String,
}

/// Where a user's groups come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// Group entries list their members' DNs in these attributes (lower case).
    Members(Vec<String>),
    /// User entries list their groups' DNs in this attribute (lower case), e.g. `memberOf`.
    From(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMapping {
    pub base: Dn,
    pub base_text: String,
    /// Where `base` was set (`directory.yaml:LINE`), for messages; `None` for the default.
    pub base_from: Option<String>,
    pub filter: Filter,
    /// The attribute type whose first value is the group name (lower case).
    pub name: String,
    pub membership: Membership,
}

/// How users, groups and attributes are read: the same for a file and a live directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub users: UserMapping,
    pub groups: GroupMapping,
    /// (credential attribute name, LDAP attribute type in lower case), in file order.
    pub attributes: Vec<(String, String)>,
}

impl Default for Mapping {
    /// The defaults of contract §12, with the whole file as the base.
    fn default() -> Self {
        let parse = |f: &str| Filter::parse(f).unwrap_or(Filter::And(Vec::new()));
        Self {
            users: UserMapping {
                base: Dn::root(),
                base_text: String::new(),
                base_from: None,
                filter: parse(DEFAULT_USER_FILTER),
                name: "uid".into(),
            },
            groups: GroupMapping {
                base: Dn::root(),
                base_text: String::new(),
                base_from: None,
                filter: parse(DEFAULT_GROUP_FILTER),
                name: "cn".into(),
                membership: Membership::Members(vec!["member".into(), "uniquemember".into()]),
            },
            attributes: vec![("emailAddress".into(), "mail".into())],
        }
    }
}

const DEFAULT_USER_FILTER: &str = "(objectClass=inetOrgPerson)";
const DEFAULT_GROUP_FILTER: &str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))";

impl Mapping {
    /// The attribute types to keep from user entries.
    pub fn user_types(&self) -> Wanted {
        let mut t = vec![self.users.name.clone()];
        self.users.filter.attribute_types(&mut t);
        t.extend(self.attributes.iter().map(|(_, ldap)| ldap.clone()));
        if let Membership::From(a) = &self.groups.membership {
            t.push(a.clone());
        }
        Wanted::new(t)
    }

    /// The attribute types to keep from group entries.
    pub fn group_types(&self) -> Wanted {
        let mut t = vec![self.groups.name.clone()];
        self.groups.filter.attribute_types(&mut t);
        if let Membership::Members(m) = &self.groups.membership {
            t.extend(m.iter().cloned());
        }
        Wanted::new(t)
    }
}

/// Where a bind password comes from.
pub type PasswordSource = crate::secret::Secret;

/// How to reach a live directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub url: String,
    pub start_tls: bool,
    /// `None`: an anonymous bind.
    pub bind: Option<(String, PasswordSource)>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub page_size: u32,
}

/// A checked `directory.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryConfig {
    pub file: PathBuf,
    /// `None` when the file has no `url:`: only a mapping, for an LDIF file beside it.
    pub connection: Option<Connection>,
    pub mapping: Mapping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<String>,
    #[serde(default)]
    start_tls: bool,
    bind_dn: Option<String>,
    bind_password_env: Option<String>,
    bind_password_file: Option<PathBuf>,
    /// Refused with its own message: a password is never written in the file.
    bind_password: Option<serde::de::IgnoredAny>,
    ca_file: Option<PathBuf>,
    timeout: Option<String>,
    page_size: Option<u32>,
    #[serde(default)]
    users: RawUsers,
    #[serde(default)]
    groups: RawGroups,
    attributes: Option<OrderedMap<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUsers {
    base: Option<String>,
    filter: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGroups {
    base: Option<String>,
    filter: Option<String>,
    name: Option<String>,
    member: Option<OneOrMany>,
    from: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A base DN, as written, and where (`FILE:LINE`) when the file gave it.
type Base = (Dn, String, Option<String>);

/// Checks pieces of the file against its text, for errors with a line.
struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Checker<'_> {
    fn at(&self, key: &[&str], message: impl Into<String>) -> DirectoryError {
        DirectoryError::Invalid(Located::new(
            self.file,
            locate(self.text, key).or_else(|| locate(self.text, &key[..1])),
            Some(key.join(".")),
            message,
        ))
    }

    fn filter(
        &self,
        key: &[&str],
        text: Option<&str>,
        default: &str,
    ) -> Result<Filter, DirectoryError> {
        Filter::parse(text.unwrap_or(default))
            .map_err(|m| self.at(key, format!("the filter does not parse: {m}")))
    }

    /// A base DN, its text, and where the file set it.
    fn base(&self, key: &[&str], text: Option<&str>) -> Result<Base, DirectoryError> {
        let from = text.map(|_| match locate(self.text, key) {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        });
        let text = text.unwrap_or("").trim();
        Dn::parse(text)
            .map(|dn| (dn, text.to_string(), from))
            .map_err(|e| self.at(key, format!("`{text}` is not a DN: {e}")))
    }

    fn attribute(
        &self,
        key: &[&str],
        text: Option<&str>,
        default: &str,
    ) -> Result<String, DirectoryError> {
        let t = text.unwrap_or(default).trim();
        let ok = t.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
        if ok {
            Ok(t.to_ascii_lowercase())
        } else {
            Err(self.at(key, format!("`{t}` is not an attribute type")))
        }
    }
}

/// Reads and checks `directory.yaml`.
pub fn load(path: &Path) -> Result<DirectoryConfig, DirectoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| DirectoryError::io(path, e))?;
    parse(path, &text)
}

/// Checks a `directory.yaml` text; `path` names it in messages and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<DirectoryConfig, DirectoryError> {
    crate::yaml_depth::check(text)
        .map_err(|(line, m)| DirectoryError::Invalid(Located::new(path, Some(line), None, m)))?;
    let raw: Raw = if text.trim().is_empty() {
        serde_yaml::from_str("{}")
    } else {
        serde_yaml::from_str(text)
    }
    .map_err(|e| DirectoryError::Invalid(Located::from_yaml(path, &e)))?;
    let c = Checker { file: path, text };
    if raw.bind_password.is_some() {
        return Err(c.at(
            &["bind_password"],
            "a password is never written in directory.yaml: name an environment variable (bind_password_env) or a file (bind_password_file)",
        ));
    }
    let mapping = mapping(&c, &raw)?;
    let connection = match &raw.url {
        Some(url) => Some(connection(&c, &raw, url)?),
        None => {
            for (set, key) in [
                (raw.bind_dn.is_some(), "bind_dn"),
                (raw.bind_password_env.is_some(), "bind_password_env"),
                (raw.bind_password_file.is_some(), "bind_password_file"),
                (raw.start_tls, "start_tls"),
                (raw.ca_file.is_some(), "ca_file"),
            ] {
                if set {
                    return Err(c.at(
                        &[key],
                        "needs `url:` (without it the file is only a mapping for an LDIF file)",
                    ));
                }
            }
            None
        }
    };
    Ok(DirectoryConfig {
        file: path.to_path_buf(),
        connection,
        mapping,
    })
}

fn mapping(c: &Checker<'_>, raw: &Raw) -> Result<Mapping, DirectoryError> {
    let (ubase, ubase_text, ubase_from) = c.base(&["users", "base"], raw.users.base.as_deref())?;
    let (gbase, gbase_text, gbase_from) =
        c.base(&["groups", "base"], raw.groups.base.as_deref())?;
    Ok(Mapping {
        users: UserMapping {
            base: ubase,
            base_text: ubase_text,
            base_from: ubase_from,
            filter: c.filter(
                &["users", "filter"],
                raw.users.filter.as_deref(),
                DEFAULT_USER_FILTER,
            )?,
            name: c.attribute(&["users", "name"], raw.users.name.as_deref(), "uid")?,
        },
        groups: GroupMapping {
            base: gbase,
            base_text: gbase_text,
            base_from: gbase_from,
            filter: c.filter(
                &["groups", "filter"],
                raw.groups.filter.as_deref(),
                DEFAULT_GROUP_FILTER,
            )?,
            name: c.attribute(&["groups", "name"], raw.groups.name.as_deref(), "cn")?,
            membership: membership(c, raw)?,
        },
        attributes: attributes(c, raw)?,
    })
}

/// `groups.member` or `groups.from`: where a user's groups are listed.
fn membership(c: &Checker<'_>, raw: &Raw) -> Result<Membership, DirectoryError> {
    Ok(match (&raw.groups.member, &raw.groups.from) {
        (Some(_), Some(_)) => {
            return Err(c.at(
                &["groups", "from"],
                "give either `member:` (group entries list their members) or `from:` (user entries list their groups), not both",
            ));
        }
        (_, Some(from)) => Membership::From(c.attribute(&["groups", "from"], Some(from), "")?),
        (Some(m), None) => {
            let list = match m {
                OneOrMany::One(s) => vec![s.clone()],
                OneOrMany::Many(v) => v.clone(),
            };
            if list.is_empty() {
                return Err(c.at(&["groups", "member"], "name at least one member attribute"));
            }
            Membership::Members(
                list.iter()
                    .map(|a| c.attribute(&["groups", "member"], Some(a), ""))
                    .collect::<Result<_, _>>()?,
            )
        }
        (None, None) => Mapping::default().groups.membership,
    })
}

/// `attributes:`: credential attribute names and the LDAP types they come from, in order.
fn attributes(c: &Checker<'_>, raw: &Raw) -> Result<Vec<(String, String)>, DirectoryError> {
    let Some(map) = &raw.attributes else {
        return Ok(Mapping::default().attributes);
    };
    let mut out: Vec<(String, String)> = Vec::with_capacity(map.0.len());
    for (name, ldap) in &map.0 {
        let key = ["attributes", name.as_str()];
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(c.at(
                &key,
                format!("{name} is built from the user name and groups; it cannot be mapped"),
            ));
        }
        if name.trim().is_empty() {
            return Err(c.at(&["attributes"], "an attribute name is empty"));
        }
        if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(c.at(
                &key,
                format!("`{name}` is mapped twice (credential attribute names ignore case)"),
            ));
        }
        out.push((name.clone(), c.attribute(&key, Some(ldap), "")?));
    }
    Ok(out)
}

fn connection(c: &Checker<'_>, raw: &Raw, url: &str) -> Result<Connection, DirectoryError> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let tls = lower.starts_with("ldaps://");
    if !tls && !lower.starts_with("ldap://") {
        return Err(c.at(
            &["url"],
            format!("`{url}` is not an ldap:// or ldaps:// URL"),
        ));
    }
    if tls && raw.start_tls {
        return Err(c.at(
            &["start_tls"],
            "StartTLS is for ldap:// URLs; an ldaps:// connection is TLS from the start",
        ));
    }
    for (key, base) in [("users", &raw.users.base), ("groups", &raw.groups.base)] {
        if base.as_deref().is_none_or(|b| b.trim().is_empty()) {
            return Err(c.at(
                &[key, "base"],
                "a live directory needs the base DN to search under",
            ));
        }
    }
    let dir = c.file.parent().unwrap_or(Path::new("."));
    let password = match (&raw.bind_password_env, &raw.bind_password_file) {
        (Some(_), Some(_)) => {
            return Err(c.at(
                &["bind_password_file"],
                "give bind_password_env or bind_password_file, not both",
            ));
        }
        (Some(v), None) => Some(PasswordSource::Env(v.clone())),
        (None, Some(f)) => Some(PasswordSource::File(dir.join(f))),
        (None, None) => None,
    };
    let bind = match (&raw.bind_dn, password) {
        (Some(dn), Some(p)) => {
            Dn::parse(dn).map_err(|e| c.at(&["bind_dn"], format!("`{dn}` is not a DN: {e}")))?;
            Some((dn.clone(), p))
        }
        (Some(_), None) => {
            return Err(c.at(
                &["bind_dn"],
                "a bind needs bind_password_env or bind_password_file",
            ));
        }
        (None, Some(_)) => {
            return Err(c.at(&["bind_dn"], "a password is given but no bind_dn"));
        }
        (None, None) => None,
    };
    let timeout = match &raw.timeout {
        None => Duration::from_secs(10),
        Some(t) => crate::time::parse_flag_duration(t).map_err(|m| c.at(&["timeout"], m))?,
    };
    if timeout.is_zero() {
        return Err(c.at(&["timeout"], "the timeout must be longer than zero"));
    }
    let page_size = raw.page_size.unwrap_or(500);
    if page_size == 0 || page_size > i32::MAX as u32 {
        return Err(c.at(
            &["page_size"],
            "the page size must be between 1 and 2147483647",
        ));
    }
    Ok(Connection {
        url: url.to_string(),
        start_tls: raw.start_tls,
        bind,
        ca_file: raw.ca_file.as_ref().map(|f| dir.join(f)),
        timeout,
        page_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<DirectoryConfig, String> {
        parse(Path::new("/site/directory.yaml"), text).map_err(|e| e.to_string())
    }

    const FULL: &str = "url: ldap://127.0.0.1:3389\nbind_dn: cn=admin,dc=example,dc=com\nbind_password_env: SMSREFRESH_LDAP_PASSWORD\nca_file: ca.pem\ntimeout: 5s\npage_size: 200\nusers:\n  base: ou=people,dc=example,dc=com\n  filter: (objectClass=inetOrgPerson)\n  name: uid\ngroups:\n  base: ou=groups,dc=example,dc=com\n  member: [member, uniqueMember]\nattributes:\n  emailAddress: mail\n  phone: telephoneNumber\n";

    #[test]
    fn reads_a_full_file() {
        let c = cfg(FULL).unwrap();
        let conn = c.connection.unwrap();
        assert_eq!(conn.timeout, Duration::from_secs(5));
        assert_eq!(conn.page_size, 200);
        assert_eq!(conn.ca_file, Some(PathBuf::from("/site/ca.pem")));
        assert_eq!(
            conn.bind,
            Some((
                "cn=admin,dc=example,dc=com".into(),
                PasswordSource::Env("SMSREFRESH_LDAP_PASSWORD".into())
            ))
        );
        assert_eq!(
            c.mapping.attributes[1],
            ("phone".into(), "telephonenumber".into())
        );
        assert_eq!(
            c.mapping.groups.membership,
            Membership::Members(vec!["member".into(), "uniquemember".into()])
        );
        assert!(c.mapping.user_types().keeps("telephoneNumber"));
    }

    #[test]
    fn a_mapping_alone_and_the_defaults() {
        let c = cfg("users: {name: cn}\ngroups: {from: memberOf}\n").unwrap();
        assert!(c.connection.is_none());
        assert_eq!(c.mapping.users.name, "cn");
        assert_eq!(
            c.mapping.groups.membership,
            Membership::From("memberof".into())
        );
        assert_eq!(cfg("").unwrap().mapping, Mapping::default());
        assert!(
            cfg("attributes: {}\n")
                .unwrap()
                .mapping
                .attributes
                .is_empty()
        );
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = cfg("url: ldap://h\nbind_password: hunter2\n").unwrap_err();
        assert!(
            e.starts_with("/site/directory.yaml:2: bind_password: a password is never written"),
            "{e}"
        );
        assert!(!e.contains("hunter2"));
        let e = cfg("users:\n  base: o=x\n  filter: (uid=a\n").unwrap_err();
        assert!(
            e.starts_with("/site/directory.yaml:3: users.filter: the filter does not parse"),
            "{e}"
        );
        let e = cfg("url: http://h\n").unwrap_err();
        assert!(e.contains(":1: url: `http://h` is not an ldap://"), "{e}");
        let e = cfg("url: ldap://h\nusers: {base: o=x}\n").unwrap_err();
        assert!(
            e.contains("groups.base: a live directory needs the base DN"),
            "{e}"
        );
        let e = cfg("url: ldap://h\nusers: {base: o=x}\ngroups: {base: o=x}\ntimeout: -1s\n")
            .unwrap_err();
        assert!(e.contains(":4: timeout:"), "{e}");
        let e = cfg("users: {bse: o=x}\n").unwrap_err();
        assert!(e.contains("unknown field `bse`"), "{e}");
        let e = cfg("attributes: {AZN_CRED_GROUPS: memberOf}\n").unwrap_err();
        assert!(e.contains("attributes.AZN_CRED_GROUPS"), "{e}");
        let e = cfg("groups: {member: member, from: memberOf}\n").unwrap_err();
        assert!(e.contains("not both"), "{e}");
        let e = cfg("bind_dn: cn=a\n").unwrap_err();
        assert!(e.contains("needs `url:`"), "{e}");
        let e = cfg("users: {base: 'uid'}\n").unwrap_err();
        assert!(e.contains("users.base: `uid` is not a DN"), "{e}");
    }
}
