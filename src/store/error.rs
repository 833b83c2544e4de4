//! Why a store operation failed. The engine turns each into an error result for the
//! commands it touched; the run goes on.

/// A store failure: the store is unreachable, a concurrent change won, or something the
/// operation needs is gone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached or did not answer in time; nothing was changed.
    #[error("the session store {location} is unavailable: {reason}")]
    Unavailable { location: String, reason: String },
    /// A concurrent change kept winning; nothing was changed.
    #[error("the session store {location} kept changing under this operation: {reason}")]
    Conflict { location: String, reason: String },
    /// Something the operation needs is not in the store.
    #[error("not in the session store {location}: {what}")]
    NotFound { location: String, what: String },
    /// The store URL itself is wrong (an unknown parameter, a prefix that cannot be one).
    #[error("the store URL {location} is wrong: {reason}")]
    BadUrl { location: String, reason: String },
    /// TLS cannot verify the store: its certificate does not verify, or the CA given to
    /// verify it with cannot be used. There is no switch that turns verification off.
    #[error("the session store {location} cannot be trusted: {reason}")]
    Untrusted { location: String, reason: String },
    /// No site was imported under the URL's database and prefix.
    #[error(
        "nothing is imported in the session store {location} under the prefix `{prefix}`; nothing was run. A mistyped database number or `?prefix=` looks just like this: check the URL, or copy the site's sessions there first with `smsrefresh store import --site DIR --store URL`"
    )]
    NotImported { location: String, prefix: String },
}
