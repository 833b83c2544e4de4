//! Which registry a site reads (contract §12): `registry.yaml`, `registry.jsonl`,
//! `registry.ldif` or the live directory of a `directory.yaml` with `url:` — at most one of
//! them in a site folder — or the one `--registry PATH` names instead.
//!
//! An LDIF file is read with the mapping of the `directory.yaml` beside it when there is one
//! (with or without `url:`: a file exported from that directory reads as the directory
//! does). An LDIF file named from elsewhere (`--registry`, a policy's `group_changes`) with
//! no `directory.yaml` beside it is read with the site's mapping — an export of the site's
//! directory kept in another folder reads as the directory does — else with the defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::binary::Source;
use super::error::SiteError;
use super::registry::Registry;
use super::registry_cache;
use crate::directory::{
    self, Directory, DirectoryConfig, LdifFile, LiveDirectory, Mapping, ReadProgress,
};

/// The site file that describes a directory (its mapping, and with `url:` a live server).
pub const DIRECTORY_FILE: &str = "directory.yaml";

/// The four kinds of registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryKind {
    Yaml,
    Jsonl,
    Ldif,
    /// A `directory.yaml` with `url:`.
    Ldap,
}

/// `--registry PATH` and `--registry-kind`, and who hears about a long read.
#[derive(Clone, Default)]
pub struct RegistryOptions {
    /// A registry instead of the site's own: its kind by extension (`.yaml`, `.jsonl`,
    /// `.ldif`), a `directory.yaml` by its name, or as `kind` says.
    pub path: Option<PathBuf>,
    /// `--registry-kind`: what `path` is, whatever its name.
    pub kind: Option<RegistryKind>,
    pub progress: Option<Arc<dyn ReadProgress>>,
}

impl std::fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A registry to read.
#[derive(Debug, Clone)]
pub enum RegistrySource {
    Yaml(PathBuf),
    Jsonl(PathBuf),
    Ldif(LdifFile),
    Ldap(LiveDirectory),
}

/// The mapping of the `directory.yaml` in `dir`, if there is one.
fn mapping_in(dir: &Path) -> Result<Option<Mapping>, SiteError> {
    let path = dir.join(DIRECTORY_FILE);
    if path.is_file() {
        Ok(Some(directory::config::load(&path)?.mapping))
    } else {
        Ok(None)
    }
}

/// The mapping an LDIF file at `path` is read with: the `directory.yaml` beside it, else
/// the site's, else the defaults.
pub fn ldif_mapping(path: &Path, site: &Path) -> Result<Mapping, SiteError> {
    let beside = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Some(m) = mapping_in(beside)? {
        return Ok(m);
    }
    Ok(mapping_in(site)?.unwrap_or_default())
}

fn is_directory_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == DIRECTORY_FILE)
}

impl RegistrySource {
    /// The registry `opts` names, else the site's one.
    pub fn choose(dir: &Path, opts: &RegistryOptions) -> Result<Self, SiteError> {
        match &opts.path {
            Some(path) => Self::file(path, opts.kind, dir),
            None => Self::of_site(dir),
        }
    }

    /// A registry file of `kind`, else of the kind its name says; an LDIF file is read with
    /// the mapping beside it, else `site`'s.
    pub fn file(path: &Path, kind: Option<RegistryKind>, site: &Path) -> Result<Self, SiteError> {
        if !path.is_file() {
            return Err(SiteError::at(path, None, None, "no such registry file"));
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let kind = kind.or(match ext.as_deref() {
            _ if is_directory_file(path) => Some(RegistryKind::Ldap),
            Some("yaml" | "yml") => Some(RegistryKind::Yaml),
            Some("jsonl") => Some(RegistryKind::Jsonl),
            Some("ldif") => Some(RegistryKind::Ldif),
            _ => None,
        });
        match kind {
            Some(RegistryKind::Yaml) => Ok(Self::Yaml(path.to_path_buf())),
            Some(RegistryKind::Jsonl) => Ok(Self::Jsonl(path.to_path_buf())),
            Some(RegistryKind::Ldif) => Ok(Self::Ldif(LdifFile {
                path: path.to_path_buf(),
                mapping: ldif_mapping(path, site)?,
            })),
            Some(RegistryKind::Ldap) => Self::live(path),
            None => Err(SiteError::at(
                path,
                None,
                None,
                "a registry is a .yaml, .jsonl or .ldif file or a directory.yaml (or say which with --registry-kind)",
            )),
        }
    }

    /// A `directory.yaml` that must describe a live directory.
    fn live(path: &Path) -> Result<Self, SiteError> {
        let DirectoryConfig {
            file,
            connection,
            mapping,
        } = directory::config::load(path)?;
        match connection {
            Some(connection) => Ok(Self::Ldap(LiveDirectory {
                file,
                connection,
                mapping,
            })),
            None => Err(SiteError::at(
                path,
                None,
                Some("url".into()),
                "a live directory needs `url:` (without it the file is only a mapping for an LDIF file)",
            )),
        }
    }

    /// The one registry a site folder holds.
    fn of_site(dir: &Path) -> Result<Self, SiteError> {
        let dir_file = dir.join(DIRECTORY_FILE);
        let config = if dir_file.is_file() {
            Some(directory::config::load(&dir_file)?)
        } else {
            None
        };
        let mut found: Vec<PathBuf> = ["registry.yaml", "registry.jsonl", "registry.ldif"]
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| p.is_file())
            .collect();
        if config.as_ref().is_some_and(|c| c.connection.is_some()) {
            found.push(dir_file);
        }
        if let [a, b, ..] = found.as_slice() {
            return Err(SiteError::at(
                a,
                None,
                None,
                format!(
                    "the site has two registries, {} and {}; keep one{}",
                    a.display(),
                    b.display(),
                    if is_directory_file(b) {
                        " (a directory.yaml without url: is only a mapping for registry.ldif)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let Some(one) = found.pop() else {
            return Err(SiteError::at(
                &dir.join("registry.yaml"),
                None,
                None,
                "the site has no registry (registry.yaml, registry.jsonl, registry.ldif, or a directory.yaml with url:)",
            ));
        };
        let mapping = || config.clone().map(|c| c.mapping).unwrap_or_default();
        Ok(match one.extension().and_then(|e| e.to_str()) {
            Some("ldif") => Self::Ldif(LdifFile {
                path: one,
                mapping: mapping(),
            }),
            Some("jsonl") => Self::Jsonl(one),
            _ if is_directory_file(&one) => match config {
                Some(DirectoryConfig {
                    file,
                    connection: Some(connection),
                    mapping,
                }) => Self::Ldap(LiveDirectory {
                    file,
                    connection,
                    mapping,
                }),
                _ => Self::live(&one)?,
            },
            _ => Self::Yaml(one),
        })
    }

    /// What is read, for messages and the report: a path or a URL.
    pub fn describe(&self) -> String {
        match self {
            Self::Yaml(p) | Self::Jsonl(p) => p.display().to_string(),
            Self::Ldif(f) => f.describe(),
            Self::Ldap(d) => d.describe(),
        }
    }

    /// A `registry.jsonl`: from its binary cache while the cache names it as it is; a large
    /// one read from the file gets a cache (best effort) for the next load.
    fn load_jsonl(path: &Path) -> Result<Registry, SiteError> {
        let source = Source::of(path).filter(|s| {
            s.len >= super::CACHE_MIN_BYTES
                && path.file_name().is_some_and(|n| n == "registry.jsonl")
        });
        let Some(source) = source else {
            return Registry::load_jsonl(path);
        };
        let cache = registry_cache::path_of(path);
        if let Some(registry) = registry_cache::load(&cache, source) {
            return Ok(registry);
        }
        let registry = Registry::load_jsonl(path)?;
        let _ = registry_cache::save(&cache, &registry, source);
        Ok(registry)
    }

    /// Reads the registry.
    pub fn load(&self, progress: Option<&Arc<dyn ReadProgress>>) -> Result<Registry, SiteError> {
        match self {
            Self::Yaml(p) => Registry::load_yaml(p),
            Self::Jsonl(p) => Self::load_jsonl(p),
            Self::Ldif(f) => Registry::from_directory(&f.path, f.read_users(progress)?),
            Self::Ldap(d) => Registry::from_directory(&d.file, d.read_users(progress)?),
        }
    }
}
