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
}
