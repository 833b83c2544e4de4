//! Errors from reading and writing site files: each names the file, the line where known,
//! the key path for YAML, and what was expected.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A problem at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub key: Option<String>,
    pub message: String,
}

impl Located {
    pub fn new(
        file: &Path,
        line: Option<u64>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            key,
            message: message.into(),
        }
    }

    /// From a serde_yaml error: its position and path, without the trailing "at line N".
    pub fn from_yaml(file: &Path, e: &serde_yaml::Error) -> Self {
        let line = e.location().map(|l| l.line() as u64);
        let text = e.to_string();
        let text = match text.rfind(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        };
        // serde_yaml prefixes the key path: "realms.ibm.com: unknown field ...".
        let (key, message) = match text.split_once(": ") {
            Some((k, m)) if !k.contains(' ') => (Some(k.to_string()), m.to_string()),
            _ => (None, text),
        };
        Self {
            file: file.to_path_buf(),
            line,
            key,
            message,
        }
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

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
    StoreUrl(#[from] crate::store::url::UrlError),
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
