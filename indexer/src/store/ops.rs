//! What the writer is handed: documents and deletes in blocks, with the memory they hold
//! counted, and what the committed index is known to hold without reading it.

use crate::error::Result;
use rustc_hash::FxHashSet;
use tantivy::schema::TantivyDocument;
use tantivy::{IndexWriter, Searcher, Term};

/// A document on its way to the indexing thread, counted in the writer's backlog until that
/// thread takes it.
pub(super) struct Queued {
    doc: TantivyDocument,
    bytes: usize,
    backlog: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.backlog
            .fetch_sub(self.bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

impl tantivy::Document for Queued {
    type Value<'a> = <TantivyDocument as tantivy::Document>::Value<'a>;
    type FieldsValuesIter<'a> = <TantivyDocument as tantivy::Document>::FieldsValuesIter<'a>;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        self.doc.iter_fields_and_values()
    }
}

pub(super) type TantivyWriter = IndexWriter<Queued>;

/// Index operations, handed to the writer in blocks (one hand-over per block rather than per
/// document). The writer's queue holds blocks, however large: the documents handed over and
/// not yet taken by the indexing thread are counted, and [`Ops::flush`] waits while they
/// exceed [`Ops::BACKLOG`], so that memory stays bounded when reading runs ahead of indexing.
///
/// A delete costs the writer memory until the commit and work at the commit in every segment,
/// so a key that cannot be in the index is not deleted (see [`Ops::delete_key`]).
pub(super) struct Ops<'w> {
    pub(super) writer: &'w TantivyWriter,
    pub(super) backlog: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub(super) ops: Vec<tantivy::indexer::UserOperation<Queued>>,
    /// Bytes of the documents in `ops`.
    pub(super) bytes: usize,
    /// The committed index.
    pub(super) searcher: Searcher,
    /// Hashes of the keys of documents added since the last commit.
    pub(super) touched: FxHashSet<u64>,
    /// Hashes of the keys of the committed documents, when this process added all of them
    /// (see [`Fresh`]).
    pub(super) committed: Option<FxHashSet<u64>>,
    /// A key no document has (see [`Ops::flush`]).
    pub(super) probe: Term,
}

/// What the committed index holds, known without reading it: when the index had no documents
/// as this process took the writer (a first ingest into a new folder), every committed
/// document is one this process added, and a lookup of anything else can be skipped. (Keys and
/// sessions are remembered by hash: two of one hash only cost a lookup that finds nothing.)
#[derive(Default)]
pub(super) struct Fresh {
    /// Hashes of the keys of the committed documents.
    pub(super) keys: FxHashSet<u64>,
    /// Hashes of the sessions of which a source or CloudTrail was added (committed or not).
    pub(super) sessions: FxHashSet<u64>,
    /// Command documents were added (committed or not). Until then no document names an
    /// instance, so a renamed instance needs no session rebuilt.
    pub(super) commands: bool,
}

/// The hash [`Ops`] and [`Fresh`] remember keys and sessions by.
pub(super) fn hash_of(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(bytes)
}

impl Ops<'_> {
    /// Operations per block.
    const BLOCK: usize = 4096;
    /// Bytes of documents per block.
    const BLOCK_BYTES: usize = 4 << 20;
    /// Bytes of documents handed over and not yet indexed before [`Ops::flush`] waits.
    const BACKLOG: usize = 64 << 20;

    /// Add a document of about `bytes` bytes of values.
    pub(super) fn add(&mut self, doc: TantivyDocument, bytes: usize) -> Result<()> {
        self.backlog
            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
        self.bytes += bytes;
        self.ops.push(tantivy::indexer::UserOperation::Add(Queued {
            doc,
            bytes,
            backlog: self.backlog.clone(),
        }));
        self.flush_if_full()
    }

    pub(super) fn delete(&mut self, t: Term) -> Result<()> {
        self.ops.push(tantivy::indexer::UserOperation::Delete(t));
        self.flush_if_full()
    }

    /// Delete the documents of `key` before documents of that key are added: unless documents
    /// of that key were added since the last commit or the committed index has the key (in a
    /// segment's term dictionary, or in [`Fresh`] when it knows), there are none to delete.
    /// (Keys are remembered by hash: two keys of one hash only cost a delete that finds
    /// nothing.)
    pub(super) fn delete_key(&mut self, key: Term) -> Result<()> {
        let hash = hash_of(key.serialized_value_bytes());
        if self.touched.insert(hash) {
            let mut committed = false;
            if let Some(keys) = &self.committed {
                committed = keys.contains(&hash);
            } else {
                for r in self.searcher.segment_readers() {
                    if r.inverted_index(key.field())?
                        .get_term_info(&key)?
                        .is_some()
                    {
                        committed = true;
                        break;
                    }
                }
            }
            if !committed {
                return Ok(());
            }
        }
        self.delete(key)
    }

    fn flush_if_full(&mut self) -> Result<()> {
        if self.ops.len() >= Self::BLOCK || self.bytes >= Self::BLOCK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    pub(super) fn flush(&mut self) -> Result<()> {
        if !self.ops.is_empty() {
            self.writer.run(std::mem::take(&mut self.ops))?;
            self.bytes = 0;
        }
        let mut waited = 0u32;
        while self.backlog.load(std::sync::atomic::Ordering::Relaxed) > Self::BACKLOG {
            std::thread::sleep(std::time::Duration::from_millis(1));
            waited += 1;
            // An indexing thread that failed (a full disk) takes no more documents, and those
            // queued are never released: ask the writer every quarter second whether it still
            // runs (a delete of the empty key, which no document has; the writer refuses any
            // operation once a thread has failed).
            if waited.is_multiple_of(250) {
                self.writer
                    .run([tantivy::indexer::UserOperation::Delete(self.probe.clone())])?;
            }
        }
        Ok(())
    }
}
