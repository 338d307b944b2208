//! What can go wrong in the Lambda, and whether trying again can help.

use aws_adapters::objects::StoreError;

/// A failure of the pipeline. [`Error::retryable`] says what the handler does with it: a
/// retryable one fails the invocation (Lambda delivers the event again, then to the dead-letter
/// queue); any other is recorded under `quarantine/` and the rest of the batch goes on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Storage failed in a way worth retrying: throttling, a 5xx, a timeout, a refused permission.
    #[error("{0}")]
    Storage(String),
    /// The source object was deleted before it could be read.
    #[error("{0} (deleted before it could be read)")]
    Gone(String),
    /// The source object is bad: empty, corrupt, unrecognised.
    #[error("{0}")]
    BadSource(String),
    /// State under the output prefix does not read: trying again reads the same bytes.
    #[error("corrupt state {key}: {reason}")]
    CorruptState {
        /// The state object's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The tantivy index could not be committed.
    #[error("index: {0}")]
    Index(String),
    /// CloudTrail's public keys could not be had from the CloudTrail API: a digest's signature
    /// cannot be checked yet.
    #[error("CloudTrail public keys: {0}")]
    Keys(String),
}

impl Error {
    /// Can the same event succeed later?
    pub fn retryable(&self) -> bool {
        matches!(self, Error::Storage(_) | Error::Index(_) | Error::Keys(_))
    }

    /// State at `key` that does not read as what it should be.
    pub fn state(key: &str, e: impl std::fmt::Display) -> Error {
        Error::CorruptState {
            key: key.to_string(),
            reason: e.to_string(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_storage_index_and_key_failures_are_retried() {
        assert!(Error::from(StoreError::Transient("SlowDown".into())).retryable());
        assert!(Error::Index("locked".into()).retryable());
        assert!(Error::Keys("ThrottlingException".into()).retryable());
        assert!(!Error::state("state/trail/x.json", "expected value at line 1").retryable());
        assert!(!Error::BadSource("the object is empty".into()).retryable());
        assert!(!Error::Gone("s3://b/k".into()).retryable());
    }
}
