//! The tantivy index: commands, and the facts they were derived from.
//!
//! One index holds every kind of document, so that one commit changes them together:
//! - `source`: what one transcript source said about a session (its replayed lines);
//! - `trail`: what CloudTrail said about a session;
//! - `instance`: an instance's Name tag;
//! - `command` / `abandoned`: the records derived from the three above, one per input line;
//! - `session`: what those records share (who, where, when, the source's digest), once per
//!   session, deleted and rewritten with them.
//!
//! Who ran a command is one term of its `principal` field (ARN and name), and where is one
//! term of its `ran_on` field (instance id and Name): a filter by principal or instance first
//! reads the few distinct terms of that field and then matches those that name it. A filter by
//! time reads the `order` fast field. Indexing costs per term, so a command carries as few as
//! that allows.
//!
//! A line's text and output are stored once, in its source document; a command document stores
//! only what search shows of its line. Who-counts read a fast field and load no documents.
//!
//! A session's command documents are rebuilt whenever any of its facts change, so files can
//! arrive in any order and ingesting the same files again changes nothing.
//!
//! As in tantivy, opening ([`Index`]), reading ([`Reader`]) and writing ([`Writer`]) are apart:
//! a read-only command holds a reader and never any write state; the writer holds the lock, the
//! operations not yet committed and the ledger. Which source a session's records come from, and
//! what its sources disagree about, is [`crate::derive`]'s to say, not the index's.

mod body;
mod collect;
mod coverage;
mod docs;
mod earliest;
mod ops;
mod reader;
mod readonly;
mod schema;
mod writer;

pub use self::coverage::SessionCoverage;
pub use self::docs::WhoKey;
pub use self::reader::{Filter, Reader};
pub use self::writer::{Changes, Writer};
use crate::error::{Error, Result};
pub use crate::ingest::Batch;
use schema::{index_settings, schema, Fields};
use std::path::{Path, PathBuf};

/// An index on disk: its schema and where it is. Searches go through a [`Reader`]; writes
/// through the one [`Writer`].
#[derive(Clone)]
pub struct Index {
    inner: tantivy::Index,
    f: Fields,
    path: PathBuf,
}

impl Index {
    /// Open the index at `path`, creating it (and the folder) if needed.
    pub fn open_or_create(path: &Path) -> Result<Index> {
        std::fs::create_dir_all(path)?;
        let (schema, f) = schema();
        let dir = Self::directory(path)?;
        let inner = tantivy::Index::builder()
            .schema(schema)
            .settings(index_settings())
            .open_or_create(dir)
            .map_err(|e| match e {
                tantivy::TantivyError::SchemaError(_) => {
                    Error::OldIndex(path.display().to_string())
                }
                e => Error::Index(e),
            })?;
        Self::with(inner, f, path)
    }

    /// Open an existing index.
    pub fn open(path: &Path) -> Result<Index> {
        if !path.join("meta.json").exists() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no index at {} (run `ssm-audit ingest` first)",
                    path.display()
                ),
            )));
        }
        let inner = tantivy::Index::open(Self::directory(path)?)?;
        let (schema, f) = schema();
        if inner.schema() != schema {
            return Err(Error::OldIndex(path.display().to_string()));
        }
        Self::with(inner, f, path)
    }

    fn directory(path: &Path) -> Result<tantivy::directory::MmapDirectory> {
        tantivy::directory::MmapDirectory::open(path)
            .map_err(|e| Error::Io(std::io::Error::other(format!("{}: {e}", path.display()))))
    }

    /// This index, read without tantivy's lock: for a folder no process can write.
    fn read_only(&self) -> Result<Index> {
        let dir = readonly::ReadOnly(Self::directory(&self.path)?);
        let inner = tantivy::Index::open(dir)?;
        Self::with(inner, self.f, &self.path)
    }

    fn with(mut inner: tantivy::Index, f: Fields, path: &Path) -> Result<Index> {
        // Searches visit segments on two threads (an ingested index ends with a few large ones).
        inner.set_multithread_executor(2)?;
        Ok(Index {
            inner,
            f,
            path: path.to_path_buf(),
        })
    }

    /// Where the index is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader of what is committed now. A folder that cannot be written (a read-only mount,
    /// a WORM copy) is read without tantivy's lock file.
    pub fn reader(&self) -> Result<Reader> {
        match Reader::new(self) {
            Err(Error::Index(e)) if readonly::is_read_only(&e) => Reader::new(&self.read_only()?),
            r => r,
        }
    }

    /// The writer, with the index's lock: fails with [`Error::Locked`] while another process
    /// writes the index.
    pub fn writer(&self) -> Result<Writer> {
        Writer::new(self)
    }
}
