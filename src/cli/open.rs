//! Opening the site that `exec` and `shell` act on: its description resolved once, `--no-save`
//! refused where it cannot be kept, the lock taken when the command saves, and the site
//! loaded.

use anyhow::Result;

use smsrefresh::engine::Engine;
use smsrefresh::site::SiteDescription;
use smsrefresh::site::lock::SiteLock;

use super::args::SiteConfig;

/// The site of `exec` and `shell`, described once, locked when they save, and loaded.
pub fn open_engine(cfg: &SiteConfig) -> Result<(Option<SiteLock>, Engine)> {
    let described = SiteDescription::resolve_with_target(
        &cfg.site,
        &cfg.store,
        &cfg.registry,
        cfg.target.as_deref(),
    )?;
    if !cfg.save && !cfg.dry_run {
        described.check_no_save()?;
    }
    Ok(Engine::open(
        described,
        (&cfg.store, &cfg.registry),
        cfg.now,
        cfg.dry_run,
        cfg.save.then_some(cfg.lock_timeout),
    )?)
}
