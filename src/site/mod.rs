//! A site: one deployment as a directory of files (contract §2, §9): `topology.yaml`, a
//! registry (`registry.yaml` or `registry.jsonl`) and the session snapshot `sessions.jsonl`.

pub mod error;
pub mod locate;
pub mod lock;
pub mod registry;
pub mod snapshot;
pub mod topology;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use error::{Located, SiteError};
pub use registry::Registry;
pub use topology::Topology;

use crate::store::MemoryStore;

/// The environment variable naming the site when neither `--site` nor a policy does.
pub const SITE_ENV: &str = "SMSREFRESH_SITE";

/// A loaded site.
pub struct Site {
    pub dir: PathBuf,
    pub topology: Topology,
    pub registry: Registry,
    pub store: MemoryStore,
    /// How long each part of the load took.
    pub load_times: LoadTimes,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct LoadTimes {
    pub topology: Duration,
    pub registry: Duration,
    pub sessions: Duration,
}

/// Picks the site directory: the explicit one, else `SMSREFRESH_SITE`.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf, SiteError> {
    let dir = match explicit {
        Some(d) => d.to_path_buf(),
        None => match std::env::var_os(SITE_ENV) {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => return Err(SiteError::NoSite),
        },
    };
    if !dir.join("topology.yaml").is_file() {
        return Err(SiteError::NotASite(dir));
    }
    Ok(dir)
}

impl Site {
    pub fn sessions_path(dir: &Path) -> PathBuf {
        dir.join("sessions.jsonl")
    }

    /// Loads a site directory with every check of contract §9.
    pub fn load(dir: &Path) -> Result<Self, SiteError> {
        let t0 = Instant::now();
        let topology = Topology::load(&dir.join("topology.yaml"))?;
        let t1 = Instant::now();
        let yaml = dir.join("registry.yaml");
        let jsonl = dir.join("registry.jsonl");
        let registry = match (yaml.is_file(), jsonl.is_file()) {
            (true, true) => {
                return Err(SiteError::at(
                    &yaml,
                    None,
                    None,
                    "both registry.yaml and registry.jsonl exist; a site keeps one registry",
                ));
            }
            (true, false) => Registry::load_yaml(&yaml)?,
            (false, true) => Registry::load_jsonl(&jsonl)?,
            (false, false) => {
                return Err(SiteError::at(
                    &yaml,
                    None,
                    None,
                    "the site has no registry (registry.yaml or registry.jsonl)",
                ));
            }
        };
        let t2 = Instant::now();
        let store = MemoryStore::default();
        let sessions = Self::sessions_path(dir);
        if sessions.exists() {
            snapshot::load(&sessions, &topology, &store)?;
        }
        let t3 = Instant::now();
        Ok(Self {
            dir: dir.to_path_buf(),
            topology,
            registry,
            store,
            load_times: LoadTimes {
                topology: t1 - t0,
                registry: t2 - t1,
                sessions: t3 - t2,
            },
        })
    }

    /// Replaces the session snapshot atomically.
    pub fn save(&self) -> Result<(), SiteError> {
        snapshot::save(&Self::sessions_path(&self.dir), &self.topology, &self.store)
    }
}
