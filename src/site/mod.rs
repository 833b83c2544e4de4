//! A site: one deployment as a directory of files (contract §2, §9): `topology.yaml`, a
//! registry (`registry.yaml` or `registry.jsonl`) and the session snapshot `sessions.jsonl`.

pub mod atomic;
pub mod binary;
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
pub use topology::{SnapshotFormat, Topology};

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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
        // The site says which file is its snapshot; the other, if present, is ignored.
        match topology.snapshot {
            SnapshotFormat::Jsonl => {
                let sessions = Self::sessions_path(dir);
                if sessions.exists() {
                    snapshot::load(&sessions, &topology, &store)?;
                }
            }
            SnapshotFormat::Binary => {
                let bin = Self::binary_path(dir);
                if bin.exists() {
                    binary::load(&bin, &topology, &store)?;
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
        store.shrink();
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

    /// Replaces the session snapshot atomically, in the site's form.
    pub fn save(&self) -> Result<(), SiteError> {
        self.save_as(self.topology.snapshot)
    }

    /// Writes the sessions in a given form (`convert`).
    pub fn save_as(&self, format: SnapshotFormat) -> Result<(), SiteError> {
        match format {
            SnapshotFormat::Jsonl => {
                snapshot::save(&Self::sessions_path(&self.dir), &self.topology, &self.store)
            }
            SnapshotFormat::Binary => {
                binary::save(&Self::binary_path(&self.dir), &self.topology, &self.store)
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
