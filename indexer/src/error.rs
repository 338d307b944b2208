//! Errors of the engine.

/// What can go wrong reading a source or the index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are none of the inputs this engine reads.
    #[error("not a recognised input: {0}")]
    Unrecognised(String),
    /// The bytes look like a known input but are damaged.
    #[error("corrupt {kind}: {reason}")]
    Corrupt {
        /// What the input looked like.
        kind: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// JSON that does not parse.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Reading or writing files.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The tantivy index.
    #[cfg(feature = "index")]
    #[error("index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// A search query that does not parse.
    #[cfg(feature = "index")]
    #[error("query: {0}")]
    Query(#[from] tantivy::query::QueryParserError),
    /// The index is being written by another process.
    #[error("the index at {0} is being written by another process (its writer lock is held); wait for it to finish")]
    Locked(String),
    /// The ledger's head could not be anchored, or disagrees with the heads anchored before.
    #[error("{0}")]
    Anchor(String),
    /// The index was made by another version of this tool, with another schema.
    #[error("the index at {0} was made by another version of ssm-audit; move it aside and ingest again into a new one")]
    OldIndex(String),
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;
