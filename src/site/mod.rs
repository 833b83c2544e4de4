//! A site: one deployment as a directory of files (contract §2, §9): `topology.yaml`, a
//! registry (`registry.yaml` or `registry.jsonl`) and, unless a store URL says otherwise
//! (contract §11), the session snapshot `sessions.jsonl` or `sessions.bin`.

pub(crate) mod atomic;
pub mod binary;
mod binary_io;
pub mod description;
pub mod error;
pub mod lock;
pub mod registry;
pub mod registry_cache;
pub mod registry_source;
pub mod snapshot;
pub mod topology;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use atomic::{
    RenamesHeld, Staged, hold_renames, remove_pending_temp_files, replaced_a_file,
    sync_deferred_dirs,
};
pub use description::SiteDescription;
pub use error::{Located, SiteError};
pub use registry::Registry;
pub use registry_source::{RegistryKind, RegistryOptions, RegistrySource};
pub use topology::{SnapshotFormat, Topology};

use crate::store::redis::Names;
use crate::store::{MemoryStore, RedisStore, SessionStore, StoreUrl};

/// A `sessions.jsonl` at least this large gets a binary cache (`sessions.bin` naming it):
/// smaller ones load in well under a second anyway, and a sample site stays as it is.
pub const CACHE_MIN_BYTES: u64 = 64 << 20;

/// The environment variable naming the site when neither `--site` nor a policy does.
pub const SITE_ENV: &str = "SMSREFRESH_SITE";

/// The environment variable naming the session store when `--store` does not.
pub const STORE_ENV: &str = "SMSREFRESH_STORE";

/// Which store to open and how patiently (`--store`, `--store-timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// `--store URL`; `None`: `SMSREFRESH_STORE`, then `store:`, then the site's files.
    pub url: Option<String>,
    /// How long a networked store's redirections, failovers and lost connections are
    /// retried before a command fails.
    pub timeout: Duration,
    /// A dry run: a networked store is only read; changes stay in this process.
    pub read_only: bool,
    /// A `--shard` run: a networked store removes the id-index entries of the sessions the
    /// run ends when the run finishes, not as it goes, so shards started together place a
    /// `session ID` command the same way ([`crate::store::SessionStore::finish_run`]).
    pub sharded: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            url: None,
            timeout: Duration::from_secs(10),
            read_only: false,
            sharded: false,
        }
    }
}

impl StoreOptions {
    pub fn url(url: Option<&str>) -> Self {
        Self {
            url: url.map(str::to_string),
            ..Self::default()
        }
    }
}

/// The names a Redis store records sessions by.
pub fn names_of(topology: &Topology) -> Names {
    Names::new(
        topology.realms.iter().map(|r| r.name.clone()).collect(),
        topology
            .replica_sets
            .iter()
            .map(|rs| (rs.name.clone(), rs.realm))
            .collect(),
        topology.servers.iter().map(|s| s.name.clone()).collect(),
    )
}

/// A loaded site: topology and registry from its files, sessions behind a [`SessionStore`].
pub struct Site {
    pub dir: PathBuf,
    pub topology: Topology,
    pub registry: Registry,
    /// Where the registry was read: a file's path or a directory's URL.
    pub registry_from: String,
    pub store: Box<dyn SessionStore>,
    /// How long each part of the load took.
    pub load_times: LoadTimes,
    /// The target commands are sent to, if any (contract §14): then `store` is empty, since
    /// the sessions live in the appliance.
    pub target: Option<crate::target::TargetConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadTimes {
    pub topology: Duration,
    pub registry: Duration,
    pub sessions: Duration,
}

/// Picks the site directory: the explicit one, else `SMSREFRESH_SITE`, else the current
/// folder when it is a site.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf, SiteError> {
    pick(explicit, None).map(|(dir, _)| dir)
}

/// Picks the site directory (contract §13): `--site` (`explicit`), then `SMSREFRESH_SITE`,
/// then a policy's `site:`, then the current folder when it holds a `topology.yaml`. When
/// the policy's `site:` is overridden, the second value says so, for standard error.
pub fn pick(
    explicit: Option<&Path>,
    policy_site: Option<&Path>,
) -> Result<(PathBuf, Option<String>), SiteError> {
    let env = std::env::var_os(SITE_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let (dir, by) = match (explicit, env, policy_site) {
        (Some(d), _, _) => (d.to_path_buf(), "--site"),
        (None, Some(d), _) => (d, SITE_ENV),
        (None, None, Some(d)) => (d.to_path_buf(), "the policy"),
        (None, None, None) if is_topology(Path::new("topology.yaml")) => {
            (PathBuf::from("."), "the current folder")
        }
        (None, None, None) => return Err(SiteError::NoSite),
    };
    if !is_topology(&dir.join("topology.yaml")) {
        return Err(SiteError::NotASite(dir));
    }
    let note = policy_site.filter(|p| *p != dir).map(|p| {
        format!(
            "the site is {} (from {by}), not the policy's `site:` {}",
            dir.display(),
            p.display()
        )
    });
    Ok((dir, note))
}

/// Whether `path` can be a site's `topology.yaml`: anything readable that is not a folder (a
/// file, a link to one, a named pipe a secrets tool writes it through — read once per run).
fn is_topology(path: &Path) -> bool {
    path.exists() && !path.is_dir()
}

/// The store a site's sessions live in (contract §11): `explicit` (`--store`), else
/// `SMSREFRESH_STORE`, else `store:` in topology.yaml, else the site's files.
pub fn choose_store(explicit: Option<&str>, topology: &Topology) -> Result<StoreUrl, SiteError> {
    let env = std::env::var(STORE_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    match explicit
        .map(str::to_string)
        .or(env)
        .or_else(|| topology.store.clone())
    {
        None => Ok(StoreUrl::Files),
        Some(url) => Ok(StoreUrl::parse(&url)?),
    }
}

impl Site {
    pub fn sessions_path(dir: &Path) -> PathBuf {
        dir.join("sessions.jsonl")
    }

    pub fn binary_path(dir: &Path) -> PathBuf {
        dir.join("sessions.bin")
    }

    /// The file that holds the site's sessions, as `snapshot:` says.
    pub fn snapshot_path(&self) -> PathBuf {
        match self.topology.snapshot {
            SnapshotFormat::Jsonl => Self::sessions_path(&self.dir),
            SnapshotFormat::Binary => Self::binary_path(&self.dir),
        }
    }

    /// Loads a site directory with every check of contract §9, its sessions from the store
    /// that `topology.yaml` or `SMSREFRESH_STORE` names (by default, its files).
    pub fn load(dir: &Path) -> Result<Self, SiteError> {
        Self::load_with_store(dir, &StoreOptions::default())
    }

    /// As [`Site::load`], with `store` (`--store URL`) taking precedence.
    pub fn load_with_store(dir: &Path, store: &StoreOptions) -> Result<Self, SiteError> {
        Self::load_with(dir, store, &RegistryOptions::default())
    }

    /// As [`Site::load`], with `store` (`--store URL`) and `registry` (`--registry PATH`)
    /// taking precedence over the site's own choices.
    pub fn load_with(
        dir: &Path,
        store: &StoreOptions,
        registry: &RegistryOptions,
    ) -> Result<Self, SiteError> {
        let described = SiteDescription::resolve(dir, store, registry)?;
        Self::open(described, store, registry.progress.as_ref())
    }

    /// Loads what a description names: the registry, then the sessions from its store
    /// (`store` says how patiently, and whether a networked store is only read).
    pub fn open(
        described: SiteDescription,
        store: &StoreOptions,
        progress: Option<&std::sync::Arc<dyn crate::directory::ReadProgress>>,
    ) -> Result<Self, SiteError> {
        let SiteDescription {
            dir,
            topology,
            registry: source,
            store: url,
            target,
            took,
        } = described;
        // The registry and the sessions load at once (issue 24): each leaves a core idle
        // part of the time. A registry that fails is still the first error reported.
        let (registry, registry_took, store, sessions_took) = std::thread::scope(|scope| {
            let registry = scope.spawn(|| {
                let t = Instant::now();
                (source.load(progress), t.elapsed())
            });
            let t = Instant::now();
            let store = Self::open_store(&dir, &topology, url, target.is_some(), store);
            let sessions_took = t.elapsed();
            let (registry, registry_took) = registry
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            Ok::<_, SiteError>((registry?, registry_took, store?, sessions_took))
        })?;
        Ok(Self {
            dir,
            topology,
            registry,
            registry_from: source.describe(),
            store,
            load_times: LoadTimes {
                topology: took,
                registry: registry_took,
                sessions: sessions_took,
            },
            target,
        })
    }

    /// The store a description names, opened (`store` says how patiently, and whether a
    /// networked store is only read).
    fn open_store(
        dir: &Path,
        topology: &Topology,
        url: StoreUrl,
        has_target: bool,
        store: &StoreOptions,
    ) -> Result<Box<dyn SessionStore>, SiteError> {
        Ok(match url {
            // With a target the session files are neither read nor written.
            _ if has_target => Box::new(MemoryStore::default()),
            StoreUrl::Files => Box::new(Self::load_files(dir, topology)?),
            StoreUrl::Redis(url) => {
                let redis = RedisStore::open(&url, names_of(topology), store.timeout)?
                    .require_imported()?;
                Box::new(if store.read_only {
                    redis.read_only()
                } else if store.sharded {
                    redis.hold_ended_ids()
                } else {
                    redis
                })
            }
        })
    }

    /// The site-files store: the snapshot that `snapshot:` names, loaded into memory. A
    /// large `sessions.jsonl` is read from its binary cache while the cache names it as it
    /// is, and a cache is made when there is none (docs/decisions.md, "Sites").
    fn load_files(dir: &Path, topology: &Topology) -> Result<MemoryStore, SiteError> {
        let store = MemoryStore::default();
        // The site says which file is its snapshot; the other, if present, is ignored.
        match topology.snapshot {
            SnapshotFormat::Jsonl => {
                let sessions = Self::sessions_path(dir);
                let bin = Self::binary_path(dir);
                let source = binary::Source::of(&sessions);
                let cached = source.is_some_and(|s| binary::source_of(&bin) == Some(s));
                // A cache that fails to load is only a cache: the file itself is read.
                if cached && binary::load(&bin, topology, &store).is_ok() {
                    return Ok(store);
                }
                if source.is_some() {
                    return Self::load_jsonl_and_cache(dir, topology);
                }
            }
            SnapshotFormat::Binary => {
                let bin = Self::binary_path(dir);
                if bin.exists() {
                    binary::load(&bin, topology, &store)?;
                } else if Self::sessions_path(dir).exists() {
                    return Err(SiteError::at(
                        &bin,
                        None,
                        None,
                        "topology.yaml says `snapshot: binary` but there is no sessions.bin; \
                         create it with `smsrefresh convert --site DIR --to binary`",
                    ));
                }
            }
        }
        Ok(store)
    }

    /// Loads `sessions.jsonl`, then writes its binary cache when it is large enough to be
    /// worth one (best effort: a site that cannot be written is still read).
    fn load_jsonl_and_cache(dir: &Path, topology: &Topology) -> Result<MemoryStore, SiteError> {
        let store = MemoryStore::default();
        let sessions = Self::sessions_path(dir);
        let before = binary::Source::of(&sessions);
        snapshot::load(&sessions, topology, &store)?;
        if let Some(src) = before.filter(|s| s.len >= CACHE_MIN_BYTES) {
            // Named by what was read, so a file replaced meanwhile never matches it.
            let _ = binary::save_with_source(&Self::binary_path(dir), topology, &store, src);
        }
        Ok(store)
    }

    /// Keeps what a run changed: with the site-files store, replaces the snapshot atomically
    /// in the site's form; a store that keeps each change as it is applied, or a run that
    /// changed nothing, leaves the files alone.
    pub fn save(&self) -> Result<(), SiteError> {
        if self.store.saved_by_site() && self.store.changed() {
            self.save_as(self.topology.snapshot)
        } else {
            Ok(())
        }
    }

    /// Writes the sessions in a given form (`convert`); a large `sessions.jsonl` gets its
    /// binary cache too, so the next load is fast.
    pub fn save_as(&self, format: SnapshotFormat) -> Result<(), SiteError> {
        match format {
            SnapshotFormat::Jsonl => {
                let path = Self::sessions_path(&self.dir);
                snapshot::save(&path, &self.topology, &*self.store)?;
                match binary::Source::of(&path).filter(|s| s.len >= CACHE_MIN_BYTES) {
                    Some(src) => binary::save_with_source(
                        &Self::binary_path(&self.dir),
                        &self.topology,
                        &*self.store,
                        src,
                    ),
                    None => Ok(()),
                }
            }
            SnapshotFormat::Binary => {
                binary::save(&Self::binary_path(&self.dir), &self.topology, &*self.store)
            }
        }
    }

    /// Converts the site to `format`: writes that snapshot, then records the choice in
    /// topology.yaml (the `snapshot:` line is replaced or added; nothing else changes).
    pub fn convert(&mut self, format: SnapshotFormat) -> Result<(), SiteError> {
        self.save_as(format)?;
        let path = self.dir.join("topology.yaml");
        let text = std::fs::read_to_string(&path).map_err(|e| SiteError::io(&path, e))?;
        let value = match format {
            SnapshotFormat::Jsonl => "jsonl",
            SnapshotFormat::Binary => "binary",
        };
        let mut found = false;
        let mut lines: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("snapshot:") {
                    found = true;
                    format!("snapshot: {value}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        if !found {
            lines.push(format!("snapshot: {value}                      # which file holds the sessions: jsonl or binary"));
        }
        atomic::write(&path, |out| {
            out.write_all((lines.join("\n") + "\n").as_bytes())
        })?;
        self.topology.snapshot = format;
        Ok(())
    }
}
