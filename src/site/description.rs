//! A site's description, resolved once per run: its topology, the registry it reads and the
//! store its sessions live in. Every later step — the lock, the load, whether results stream —
//! takes its answers from this one value instead of reading `topology.yaml` again, so a run
//! never acts on two readings of a file that changed in between.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::SiteError;
use super::registry_source::{RegistryOptions, RegistrySource};
use super::topology::Topology;
use super::{StoreOptions, choose_store};
use crate::store::StoreUrl;
use crate::target::TargetConfig;

/// What a site is made of, before anything heavy is read.
#[derive(Debug, Clone)]
pub struct SiteDescription {
    pub dir: PathBuf,
    pub topology: Topology,
    /// Where the registry is read from: the site's own, or `--registry`.
    pub registry: RegistrySource,
    /// Where the sessions live: `--store`, `SMSREFRESH_STORE`, `store:`, or the site files.
    pub store: StoreUrl,
    /// Where commands run instead of the engine (contract §14): `--target`,
    /// `SMSREFRESH_TARGET` or the site's `target.yaml`; then the session files are neither
    /// read nor written.
    pub target: Option<TargetConfig>,
    /// How long reading the description took (the report's topology time).
    pub took: Duration,
}

impl SiteDescription {
    /// Reads `topology.yaml` once and decides the registry and the store (contract §11, §12
    /// precedence), checking each as far as it can be without a connection.
    pub fn resolve(
        dir: &Path,
        store: &StoreOptions,
        registry: &RegistryOptions,
    ) -> Result<Self, SiteError> {
        let t = Instant::now();
        let topology = Topology::load(&dir.join("topology.yaml"))?;
        let store = choose_store(store.url.as_deref(), &topology)?;
        let registry = RegistrySource::choose(dir, registry)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            topology,
            registry,
            store,
            target: None,
            took: t.elapsed(),
        })
    }

    /// As [`SiteDescription::resolve`], with the target that `explicit` (`--target FILE`),
    /// `SMSREFRESH_TARGET` or the site's `target.yaml` names, checked.
    pub fn resolve_with_target(
        dir: &Path,
        store: &StoreOptions,
        registry: &RegistryOptions,
        explicit: Option<&Path>,
    ) -> Result<Self, SiteError> {
        let mut described = Self::resolve(dir, store, registry)?;
        described.target =
            crate::target::config::choose(explicit, dir).map_err(SiteError::Invalid)?;
        Ok(described)
    }

    /// Refuses `--no-save` where it cannot be kept: a networked store has kept each change
    /// by the time a run ends (contract §11, "Safe to try, hard to mistype").
    pub fn check_no_save(&self) -> Result<(), SiteError> {
        if self.saved_by_site() {
            return Ok(());
        }
        Err(SiteError::NoSaveOnSharedStore {
            store: match &self.target {
                Some(t) => t.url.clone(),
                None => self.store.to_string(),
            },
        })
    }

    /// Whether the sessions are the site's files, held in this process and saved at the end;
    /// otherwise a networked store keeps each change as it is applied.
    pub fn saved_by_site(&self) -> bool {
        self.store == StoreUrl::Files && self.target.is_none()
    }
}
