//! Errors from reading and writing site files: each names the file, the line where known,
//! the key path for YAML, and what was expected.

use std::io;
use std::path::{Path, PathBuf};

pub use crate::located::Located;

/// Why a site could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SiteError {
    #[error("{0}")]
    Invalid(Located),
    /// The cause is part of the message (and not an error source too, which would print it
    /// twice in a chain).
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: io::Error },
    #[error(
        "no site given: use --site DIR, the SMSREFRESH_SITE variable or a policy's `site:` key, or run in a site folder (one with a topology.yaml)"
    )]
    NoSite,
    #[error("{}: not a site directory (no topology.yaml)", .0.display())]
    NotASite(PathBuf),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Directory(#[from] crate::directory::DirectoryError),
    #[error(transparent)]
    StoreUrl(#[from] crate::store::url::UrlError),
    /// `--no-save` with a store that keeps each change as it runs (contract §11).
    #[error(
        "--no-save cannot be kept with the session store {store}: it keeps each change as the command runs, so nothing would be left unsaved; nothing was run. Use --dry-run to see what every command would do without changing anything"
    )]
    NoSaveOnSharedStore { store: String },
    #[error("{}: the site is locked by another smsrefresh run ({holder}); waited {waited_s} s, try again when it ends", path.display())]
    Locked {
        path: PathBuf,
        waited_s: f64,
        holder: String,
    },
}

impl SiteError {
    pub fn io(path: &Path, cause: io::Error) -> Self {
        SiteError::Io {
            path: path.to_path_buf(),
            cause,
        }
    }

    pub fn at(
        file: &Path,
        line: Option<u64>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        SiteError::Invalid(Located::new(file, line, key, message))
    }
}
