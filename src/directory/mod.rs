//! The registry from a real directory (contract §12): an LDIF export or a live LDAP server,
//! read the same way into users with their groups and attributes.
//!
//! [`Directory`] is the boundary: one call reads every user, so a live directory pages
//! through its entries (RFC 2696) in a few round trips. `directory.yaml` ([`config`]) says how
//! to reach the server and how users, groups and attributes are read; [`ldif`] reads files,
//! [`ldap`] live servers, [`users`] turns either's entries into [`DirectoryUser`]s with one
//! meaning, so a file and the server it was exported from give the same answers.

pub mod config;
pub mod dn;
pub mod entry;
pub mod filter;
pub mod ldap;
pub mod ldif;
pub mod users;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use config::{Connection, DirectoryConfig, Mapping};

use crate::credential::Credential;
use crate::located::Located;
use entry::{Entry, Wanted};

/// One user as a directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The first value of the name attribute, as stored.
    pub name: String,
    /// The credential a fresh login would get: `AZN_CRED_PRINCIPAL_NAME` (the name),
    /// `AZN_CRED_GROUPS` (in ascending byte order, without duplicates), then the mapped
    /// attributes in mapping order (several values make a list).
    pub credential: Credential,
}

/// Why a directory could not be read. Every variant stops the run before anything changes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// A file (LDIF, `directory.yaml`) is wrong at a place.
    #[error("{0}")]
    Invalid(Located),
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: io::Error },
    /// A live directory could not be reached or refused: its URL (which never holds a
    /// password) and the LDAP result.
    #[error("{url}: {message}")]
    Ldap { url: String, message: String },
}

impl DirectoryError {
    pub fn io(path: &Path, cause: io::Error) -> Self {
        DirectoryError::Io {
            path: path.to_path_buf(),
            cause,
        }
    }
}

/// Told how a long directory read goes, for a progress display.
pub trait ReadProgress: Send + Sync {
    /// `read` entries so far.
    fn entries(&self, read: u64);
    /// The read is over (successfully or not).
    fn done(&self);
}

/// The registry boundary for directories: where users, their groups and attributes come
/// from. One call reads them all.
pub trait Directory {
    /// What the directory is, for messages: a file's path or a server's URL.
    fn describe(&self) -> String;

    /// Every user, in case-folded name order.
    fn read_users(
        &self,
        progress: Option<&Arc<dyn ReadProgress>>,
    ) -> Result<Vec<DirectoryUser>, DirectoryError>;
}

/// An LDIF file read with a mapping.
#[derive(Debug, Clone)]
pub struct LdifFile {
    pub path: PathBuf,
    pub mapping: Mapping,
}

/// A live directory as `directory.yaml` describes it.
#[derive(Debug, Clone)]
pub struct LiveDirectory {
    /// The `directory.yaml` it was described in.
    pub file: PathBuf,
    pub connection: Connection,
    pub mapping: Mapping,
}

impl LdifFile {
    /// Parses bytes already read: the entries that are users and groups, as the mapping
    /// selects them (base and filter), and the users they make.
    pub fn parse(&self, bytes: &[u8]) -> Result<Vec<DirectoryUser>, DirectoryError> {
        use rayon::prelude::*;
        let m = &self.mapping;
        let at = |line: Option<u64>, key: Option<&str>, message: String| {
            DirectoryError::Invalid(Located::new(
                &self.path,
                line,
                key.map(str::to_string),
                message,
            ))
        };
        for (key, f) in [
            ("users.filter", &m.users.filter),
            ("groups.filter", &m.groups.filter),
        ] {
            f.check_for_files().map_err(|e| at(None, Some(key), e))?;
        }
        let mut wanted = m.user_types().types().to_vec();
        wanted.extend_from_slice(m.group_types().types());
        let entries = ldif::parse(bytes, &Wanted::new(wanted))
            .map_err(|e| at(Some(e.line), None, e.message))?;
        let dns = dns(&entries).map_err(|e| at(e.line, None, e.message))?;
        let placed: Vec<users::Placed<'_, '_>> = entries.iter().zip(&dns).collect();
        for (key, base, text, from) in [
            (
                "users.base",
                &m.users.base,
                &m.users.base_text,
                &m.users.base_from,
            ),
            (
                "groups.base",
                &m.groups.base,
                &m.groups.base_text,
                &m.groups.base_from,
            ),
        ] {
            if !placed.iter().any(|(_, dn)| dn.is_under(base)) {
                let set_at = from
                    .as_ref()
                    .map(|f| format!(" (`{key}` is set at {f})"))
                    .unwrap_or_default();
                return Err(at(
                    None,
                    Some(key),
                    format!("no entry of the file is at or under `{text}`{set_at}"),
                ));
            }
        }
        let select = |base: &dn::Dn, filter: &filter::Filter| -> Vec<users::Placed<'_, '_>> {
            placed
                .par_iter()
                .filter(|(e, dn)| dn.is_under(base) && filter.matches(*e))
                .copied()
                .collect()
        };
        let users = select(&m.users.base, &m.users.filter);
        let groups = select(&m.groups.base, &m.groups.filter);
        let built = users::build(&users, &groups, m).map_err(|e| at(e.line, None, e.message));
        drop((users, groups, placed));
        free((entries, Vec::new()), (dns, Vec::new()));
        built
    }
}

/// Frees entries and DNs on both cores: a hundred thousand of each take a while.
fn free<'a>(entries: (Vec<Entry<'a>>, Vec<Entry<'a>>), dns: (Vec<dn::Dn>, Vec<dn::Dn>)) {
    use rayon::prelude::*;
    rayon::join(
        || {
            entries.0.into_par_iter().for_each(drop);
            entries.1.into_par_iter().for_each(drop);
        },
        || {
            dns.0.into_par_iter().for_each(drop);
            dns.1.into_par_iter().for_each(drop);
        },
    );
}

/// The canonical DNs of entries.
fn dns(entries: &[Entry<'_>]) -> Result<Vec<dn::Dn>, users::EntryError> {
    use rayon::prelude::*;
    entries.par_iter().map(users::dn_of).collect()
}

impl Directory for LdifFile {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn read_users(
        &self,
        progress: Option<&Arc<dyn ReadProgress>>,
    ) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let bytes = std::fs::read(&self.path).map_err(|e| DirectoryError::io(&self.path, e))?;
        let users = self.parse(&bytes);
        if let Some(p) = progress {
            p.done();
        }
        users
    }
}

impl Directory for LiveDirectory {
    fn describe(&self) -> String {
        self.connection.url.clone()
    }

    fn read_users(
        &self,
        progress: Option<&Arc<dyn ReadProgress>>,
    ) -> Result<Vec<DirectoryUser>, DirectoryError> {
        let read = ldap::read(&self.connection, &self.mapping, progress);
        if let Some(p) = progress {
            p.done();
        }
        let (users, groups) = read?;
        let failed = |e: users::EntryError| DirectoryError::Ldap {
            url: self.connection.url.clone(),
            message: e.message,
        };
        let (user_dns, group_dns) = (dns(&users).map_err(failed)?, dns(&groups).map_err(failed)?);
        let built = {
            let u: Vec<users::Placed<'_, '_>> = users.iter().zip(&user_dns).collect();
            let g: Vec<users::Placed<'_, '_>> = groups.iter().zip(&group_dns).collect();
            users::build(&u, &g, &self.mapping).map_err(failed)
        };
        free((users, groups), (user_dns, group_dns));
        built
    }
}
