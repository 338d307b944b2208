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

mod body;
mod earliest;

use crate::derive::{Basis, LineRef};
use crate::error::{Error, Result};
use crate::formats::TrailEvent;
pub use crate::ingest::Batch;
use crate::model::{self, CommandRecord, SessionSource, SessionTrail};
use crate::names::{InstanceNames, Names};
use rustc_hash::{FxHashMap, FxHashSet};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use tantivy::collector::{Collector, DocSetCollector, SegmentCollector};
use tantivy::query::{
    BooleanQuery, EmptyQuery, EnableScoring, Occur, Query, QueryParser, RangeQuery, TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TantivyDocument, TextFieldIndexing, TextOptions, Value, FAST,
    STORED,
};
use tantivy::{
    doc, DocAddress, DocId, Executor, Index, IndexReader, IndexWriter, ReloadPolicy, Score,
    Searcher, SegmentOrdinal, SegmentReader, Term,
};

/// Memory the index writer may use, shared by its [`WRITER_THREADS`]: a thread writes a segment
/// when its share is full, or at a commit. 256 MiB makes two large segments of about equal size
/// for the 1 GiB benchmark corpus (and no merge), which the two search threads share evenly;
/// 64 MiB on one thread made eight, and queries about a millisecond slower.
const WRITER_HEAP: usize = 256 << 20;

/// Indexing threads of the writer (one segment each at a time).
const WRITER_THREADS: usize = 2;

/// A segment with fewer documents than the largest's share of this is merged at the end of a
/// command-line ingest (see [`Store::finish_compacted`]).
const SMALL_SEGMENT_SHARE: u32 = 8;

/// Records loaded at once from at least this many documents are loaded on two threads (see
/// [`Store::load_records`]).
const LOAD_ON_TWO_THREADS: usize = 8;

/// The writer that only merges indexes nothing: tantivy's smallest memory budget.
const MERGE_WRITER_HEAP: usize = 15_000_000;

#[derive(Clone, Copy)]
struct Fields {
    kind: Field,
    /// What a document replaces when it is written again (see [`keys`]).
    key: Field,
    /// The session of a source or trail document, for counting by session (a fast
    /// field only: a session's documents are found by their keys).
    sid: Field,
    command: Field,
    output: Field,
    program: Field,
    /// The instance id of a source, trail or inventory document (commands have `ran_on`).
    instance: Field,
    run_as: Field,
    /// Who ran a command: principal ARN and name as one term (see [`pair_term`]).
    principal: Field,
    /// Where a command ran: instance id and Name as one term (see [`pair_term`]).
    ran_on: Field,
    /// Session order of a command: its session's start (seconds) and its seq, as one number.
    order: Field,
    /// The day of `order`: a narrow column that tells which matches may be the first (see
    /// [`earliest`]).
    day: Field,
    /// A command's session and who it belongs to ([`WhoKey`] as JSON), for counting by session.
    who: Field,
    body: Field,
}

/// The keys of documents, one term each; a document written again replaces the documents of
/// its key.
///
/// Keys are short, and start with the session they belong to: every session adds a few keys no
/// other document has, and a term dictionary costs per byte a term does not share with its
/// neighbours.
mod keys {
    /// `tag`, a NUL, then `rest` (with room for a source's suffix).
    fn key(tag: &str, rest: &str) -> String {
        let mut k = String::with_capacity(tag.len() + 1 + rest.len() + 17);
        k.push_str(tag);
        k.push('\u{0}');
        k.push_str(rest);
        k
    }

    /// The command, abandoned-line and session documents of a session.
    pub(super) fn commands(sid: &str) -> String {
        key("c", sid)
    }

    /// The CloudTrail document of a session.
    pub(super) fn trail(sid: &str) -> String {
        key("t", sid)
    }

    /// The document of a file refused as a transcript of a session.
    pub(super) fn unreadable(sid: &str, source: &str) -> String {
        let mut k = key("u", sid);
        k.push('\u{0}');
        k.push_str(&crate::model::sha256_hex(source.as_bytes())[..16]);
        k
    }

    /// The document of one source of a session: the session, then the first 64 bits of the
    /// SHA-256 of the source's name (two sources of one session would need 2^32 sources to
    /// share them by chance).
    pub(super) fn source(sid: &str, source: &str) -> String {
        let mut k = sources_from(sid);
        k.push_str(&crate::model::sha256_hex(source.as_bytes())[..16]);
        k
    }

    /// Every key of a source of `sid` is at or after this, and before [`sources_until`].
    pub(super) fn sources_from(sid: &str) -> String {
        let mut k = key("s", sid);
        k.push('\u{0}');
        k
    }

    /// See [`sources_from`].
    pub(super) fn sources_until(sid: &str) -> String {
        let mut k = key("s", sid);
        k.push('\u{1}');
        k
    }

    /// The inventory document of an instance.
    pub(super) fn instance(id: &str) -> String {
        key("i", id)
    }
}

/// An exact-match field. No field norms: results are ordered by session, never scored.
fn keyword() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic),
    )
}

/// A full-text field, with positions for phrase queries.
fn text() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        kind: b.add_text_field("kind", keyword() | STORED),
        key: b.add_text_field("key", keyword()),
        sid: b.add_text_field("sid", TextOptions::default().set_fast("raw")),
        command: b.add_text_field("command", text()),
        output: b.add_text_field("output", text()),
        program: b.add_text_field("program", keyword()),
        instance: b.add_text_field("instance", keyword()),
        run_as: b.add_text_field("run_as", keyword()),
        principal: b.add_text_field("principal", keyword()),
        ran_on: b.add_text_field("ran_on", keyword()),
        order: b.add_u64_field("order", FAST),
        day: b.add_u64_field("day", FAST),
        who: b.add_text_field("who", TextOptions::default().set_fast("raw")),
        body: b.add_text_field("body", STORED),
    };
    (b.build(), f)
}

/// What a session's records share, stored once in its `session` document.
type Shared = Basis;

/// What a command document stores of its record: the line's own facts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Stored<'a> {
    /// Its session.
    sid: Cow<'a, str>,
    seq: u32,
    command: Cow<'a, str>,
    run_as: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cwd: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    abandoned: bool,
    byte_start: u64,
    byte_end: u64,
    /// Index of its [`Shared`] part among the session's (one, unless records came from elsewhere).
    #[serde(default, skip_serializing_if = "is_zero")]
    shared: usize,
    /// Output, for records that no source document of the index holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<Cow<'a, str>>,
    /// Why the line deserves a closer look.
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    suspicious: Cow<'a, [String]>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Stored<'_> {
    fn record(self, session_id: &str, shared: &Shared) -> CommandRecord {
        let mut r = shared.record(
            session_id,
            LineRef {
                seq: self.seq,
                command: &self.command,
                run_as: &self.run_as,
                cwd: self.cwd.as_deref(),
                abandoned: self.abandoned,
                byte_start: self.byte_start,
                byte_end: self.byte_end,
                suspicious: &self.suspicious,
            },
        );
        r.output = self.output.map(Cow::into_owned);
        r
    }
}

/// The `who` fast field of a command: its session and what `who` shows of it.
///
/// Stored as JSON in this field order, so that the column's dictionary sorts by instance, then
/// principal: the sessions of one instance (the usual question) sit in a few dictionary blocks,
/// and a `who --instance` reads only those.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct WhoKey {
    /// Instance Name tag, or id.
    pub instance: Option<String>,
    /// IAM principal ARN.
    pub principal_arn: Option<String>,
    /// User name, role session name or Identity Center user.
    pub principal: Option<String>,
    /// The session.
    pub session_id: String,
    /// Session start.
    pub session_start: Option<String>,
    /// Session end.
    pub session_end: Option<String>,
    /// Its sources disagree (the records' `conflicts`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conflict: bool,
}

impl WhoKey {
    fn of(session_id: &str, who: &model::Attribution) -> WhoKey {
        WhoKey {
            session_id: session_id.to_string(),
            principal_arn: who.principal_arn.clone(),
            principal: who.principal.clone(),
            instance: who
                .instance_name
                .clone()
                .or_else(|| who.instance_id.clone()),
            session_start: who.session_start.clone(),
            session_end: who.session_end.clone(),
            conflict: !who.conflicts.is_empty(),
        }
    }
}

/// A document on its way to the indexing thread, counted in the writer's backlog until that
/// thread takes it.
struct Queued {
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

type Writer = IndexWriter<Queued>;

/// Index operations, handed to the writer in blocks (one hand-over per block rather than per
/// document). The writer's queue holds blocks, however large: the documents handed over and
/// not yet taken by the indexing thread are counted, and [`Ops::flush`] waits while they
/// exceed [`Ops::BACKLOG`], so that memory stays bounded when reading runs ahead of indexing.
///
/// A delete costs the writer memory until the commit and work at the commit in every segment,
/// so a key that cannot be in the index is not deleted (see [`Ops::delete_key`]).
struct Ops<'w> {
    writer: &'w Writer,
    backlog: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ops: Vec<tantivy::indexer::UserOperation<Queued>>,
    /// Bytes of the documents in `ops`.
    bytes: usize,
    /// The committed index.
    searcher: Searcher,
    /// Hashes of the keys of documents added since the last commit.
    touched: FxHashSet<u64>,
    /// Hashes of the keys of the committed documents, when this process added all of them
    /// (see [`Fresh`]).
    committed: Option<FxHashSet<u64>>,
    /// A key no document has (see [`Ops::flush`]).
    probe: Term,
}

/// What the committed index holds, known without reading it: when the index had no documents
/// as this process took the writer (a first ingest into a new folder), every committed
/// document is one this process added, and a lookup of anything else can be skipped. (Keys and
/// sessions are remembered by hash: two of one hash only cost a lookup that finds nothing.)
#[derive(Default)]
struct Fresh {
    /// Hashes of the keys of the committed documents.
    keys: FxHashSet<u64>,
    /// Hashes of the sessions of which a source or CloudTrail was added (committed or not).
    sessions: FxHashSet<u64>,
    /// Command documents were added (committed or not). Until then no document names an
    /// instance, so a renamed instance needs no session rebuilt.
    commands: bool,
}

/// The hash [`Ops`] and [`Fresh`] remember keys and sessions by.
fn hash_of(bytes: &[u8]) -> u64 {
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
    fn add(&mut self, doc: TantivyDocument, bytes: usize) -> Result<()> {
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

    fn delete(&mut self, t: Term) -> Result<()> {
        self.ops.push(tantivy::indexer::UserOperation::Delete(t));
        self.flush_if_full()
    }

    /// Delete the documents of `key` before documents of that key are added: unless documents
    /// of that key were added since the last commit or the committed index has the key (in a
    /// segment's term dictionary, or in [`Fresh`] when it knows), there are none to delete.
    /// (Keys are remembered by hash: two keys of one hash only cost a delete that finds
    /// nothing.)
    fn delete_key(&mut self, key: Term) -> Result<()> {
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

    fn flush(&mut self) -> Result<()> {
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

/// One input line to write as a command document, borrowed from where it is held.
struct LineDoc<'a> {
    /// The line's own facts.
    line: LineRef<'a>,
    /// Its output text.
    output: &'a str,
    /// Its own document keeps the output (no source document holds it).
    keep_output: bool,
    /// Which of the session's [`Shared`] parts it has.
    shared: usize,
}

/// Counts matching documents by the value of a string fast field (`who`, `sid`), per segment by
/// term ordinal.
struct CountBy(&'static str);

struct SegmentCountBy {
    column: Option<tantivy::columnar::StrColumn>,
    counts: std::collections::HashMap<u64, usize>,
}

impl Collector for CountBy {
    type Fruit = BTreeMap<String, usize>;
    type Child = SegmentCountBy;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentCountBy> {
        Ok(SegmentCountBy {
            column: reader.fast_fields().str(self.0)?,
            counts: std::collections::HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<std::result::Result<BTreeMap<String, usize>, String>>,
    ) -> tantivy::Result<BTreeMap<String, usize>> {
        let mut all = BTreeMap::new();
        for fruit in fruits {
            for (k, n) in fruit.map_err(tantivy::TantivyError::InternalError)? {
                *all.entry(k).or_insert(0) += n;
            }
        }
        Ok(all)
    }
}

impl SegmentCollector for SegmentCountBy {
    /// The counts by key, or why the column's dictionary could not be read.
    type Fruit = std::result::Result<BTreeMap<String, usize>, String>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(c) = &self.column {
            for ord in c.term_ords(doc) {
                *self.counts.entry(ord).or_insert(0) += 1;
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        let mut out = BTreeMap::new();
        let Some(c) = self.column else {
            return Ok(out);
        };
        // One pass through the dictionary, in ordinal order.
        let mut counts: Vec<(u64, usize)> = self.counts.into_iter().collect();
        counts.sort_unstable();
        let ords: Vec<u64> = counts.iter().map(|&(o, _)| o).collect();
        let mut n = counts.iter().map(|&(_, n)| n);
        c.dictionary()
            .sorted_ords_to_term_cb(&ords, |term| {
                if let Some(n) = n.next() {
                    out.insert(String::from_utf8_lossy(term).into_owned(), n);
                }
            })
            .map_err(|e| format!("reading the who column's dictionary: {e}"))?;
        Ok(out)
    }
}

/// Stored documents are mostly JSON text that repeats itself across a session: zstd over
/// 128 KiB blocks keeps them at a fraction of lz4's size, and a search decompresses only the
/// blocks of the few documents it returns. Level 1: on these blocks it compresses as small as
/// the default level 3 (40.3 against 41.0 MB of doc store for the 256 MiB benchmark corpus), in
/// less time.
fn index_settings() -> tantivy::IndexSettings {
    tantivy::IndexSettings {
        docstore_compression: tantivy::store::Compressor::Zstd(tantivy::store::ZstdCompressor {
            compression_level: Some(1),
        }),
        docstore_blocksize: 128 * 1024,
        ..tantivy::IndexSettings::default()
    }
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Full-text query over commands (tantivy query syntax).
    pub query: Option<String>,
    /// Search the output text too.
    pub in_output: bool,
    /// Principal name or ARN.
    pub user: Option<String>,
    /// Instance id or Name tag.
    pub instance: Option<String>,
    /// Run-as user.
    pub run_as: Option<String>,
    /// A program the command ran.
    pub program: Option<String>,
    /// Sessions started at or after (unix seconds): a session's time is its start, or its end
    /// when nothing recorded the start; a session of unknown time is in no range.
    pub since: Option<i64>,
    /// Sessions started before (unix seconds), as `since`.
    pub until: Option<i64>,
    /// Abandoned lines instead of commands.
    pub abandoned: bool,
    /// Include output text in the records.
    pub with_output: bool,
    /// At most this many records (the first in session order).
    pub limit: Option<usize>,
}

/// What an ingest changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sessions whose commands were (re)built.
    pub sessions: usize,
    /// Command records written for them.
    pub commands: usize,
    /// Abandoned lines written for them.
    pub abandoned: usize,
}

/// The index on disk.
pub struct Store {
    index: Index,
    reader: IndexReader,
    f: Fields,
    path: PathBuf,
    /// The writer, once this store has written: kept across commits so that its background
    /// merges go on, and held (with its lock) until [`Store::finish`] or drop.
    writer: Option<Writer>,
    /// Bytes of documents handed to the writer and not yet indexed (see [`Ops`]).
    backlog: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// CloudTrail of sessions looked up or written by this process (the writer lock guarantees
    /// no other process changes them meanwhile): a session's transcript usually arrives in a
    /// later commit than its CloudTrail file, and reading the trail back from the compressed
    /// document store each time would cost more than the session's own indexing.
    trails: FxHashMap<String, Option<SessionTrail>>,
    /// The ledger, appended to after each commit while the writer (and its lock) is held.
    ledger: Option<crate::ledger::Ledger>,
    /// Instance Name tags, once read (kept up to date by this process while it writes).
    names: Option<Names>,
    /// What was added since the last commit: the sources, for the ledger at the commit.
    staged: Vec<crate::ledger::Ingested>,
    /// Sessions whose source documents were added since the last commit: a search does not see
    /// them yet, so a later fact about one of them commits first.
    unseen: FxHashSet<String>,
    /// Hashes of the keys of documents added since the last commit (see [`Ops::delete_key`]).
    touched: FxHashSet<u64>,
    /// What the committed index holds, when this process knows without reading it.
    fresh: Option<Fresh>,
    /// Operations not yet handed to the writer, and the bytes of their documents: a block is
    /// handed over when full or at the commit, not at the end of each [`Store::add`] (each hand-over
    /// wakes the indexing thread).
    pending: (Vec<tantivy::indexer::UserOperation<Queued>>, usize),
    /// Anything was added since the last commit.
    dirty: bool,
}

impl Store {
    /// Open the index at `path`, creating it (and the folder) if needed.
    pub fn open_or_create(path: &Path) -> Result<Store> {
        std::fs::create_dir_all(path)?;
        let (schema, f) = schema();
        let dir = tantivy::directory::MmapDirectory::open(path)
            .map_err(|e| Error::Io(std::io::Error::other(format!("{}: {e}", path.display()))))?;
        let index = Index::builder()
            .schema(schema)
            .settings(index_settings())
            .open_or_create(dir)
            .map_err(|e| match e {
                tantivy::TantivyError::SchemaError(_) => {
                    Error::OldIndex(path.display().to_string())
                }
                e => Error::Index(e),
            })?;
        Self::with_index(index, f, path)
    }

    /// Open an existing index.
    pub fn open(path: &Path) -> Result<Store> {
        if !path.join("meta.json").exists() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no index at {} (run `ssm-audit ingest` first)",
                    path.display()
                ),
            )));
        }
        let index = Index::open_in_dir(path)?;
        let (schema, f) = schema();
        if index.schema() != schema {
            return Err(Error::OldIndex(path.display().to_string()));
        }
        Self::with_index(index, f, path)
    }

    fn with_index(mut index: Index, f: Fields, path: &Path) -> Result<Store> {
        // Searches visit segments on two threads (an ingested index ends with a few large ones).
        index.set_multithread_executor(2)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Store {
            index,
            reader,
            f,
            path: path.to_path_buf(),
            writer: None,
            backlog: Default::default(),
            trails: FxHashMap::default(),
            ledger: None,
            names: None,
            staged: Vec::new(),
            unseen: FxHashSet::default(),
            touched: FxHashSet::default(),
            fresh: None,
            pending: (Vec::new(), 0),
            dirty: false,
        })
    }

    /// The writer (made on first use), taken out while a commit is prepared.
    fn take_writer(&mut self) -> Result<Writer> {
        if let Some(w) = self.writer.take() {
            return Ok(w);
        }
        // Without the lock, another process may have written: read the index and the ledger
        // again.
        self.ledger = None;
        self.names = None;
        self.reader.reload()?;
        self.fresh = (self.reader.searcher().num_docs() == 0).then(Fresh::default);
        self.index
            .writer_with_num_threads(WRITER_THREADS, WRITER_HEAP)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => {
                    Error::Locked(self.path.display().to_string())
                }
                e => Error::Index(e),
            })
    }

    /// Take the writer (and its lock) now: fails with [`Error::Locked`] while another process
    /// writes the index.
    pub fn lock_for_writing(&mut self) -> Result<()> {
        let w = self.take_writer()?;
        self.writer = Some(w);
        Ok(())
    }

    /// Commit what was added since the last commit, let the segment merges the commits started
    /// finish (fewer, larger segments make every later query faster), and release the writer
    /// lock.
    pub fn finish(mut self) -> Result<()> {
        if self.dirty {
            self.commit()?;
        }
        if let Some(w) = self.writer.take() {
            w.wait_merging_threads()?;
        }
        Ok(())
    }

    /// [`Store::finish`], after merging the segments much smaller than the largest into one.
    ///
    /// A query visits each segment on its own (its files mapped, its dictionaries opened), and
    /// each commit of an ingest leaves one small segment per indexing thread, too few for
    /// tantivy's merge policy to merge. The command-line ingest ends with this; the Lambda,
    /// which commits every invocation, leaves merging to that policy. Returns how many
    /// segments were merged (0 or at least 2).
    pub fn finish_compacted(self) -> Result<usize> {
        let index = self.index.clone();
        // `finish` lets the merges the commits started end, so the list below is final, and
        // releases the writer lock; if another process takes the lock meanwhile, it writes,
        // and this merge is left to it.
        self.finish()?;
        let Ok(mut writer) = index.writer_with_num_threads::<TantivyDocument>(1, MERGE_WRITER_HEAP)
        else {
            return Ok(0);
        };
        // Only ids outlive this block: a segment's files are kept while anything holds its
        // meta, so held metas would leave the merged segments on disk.
        let small: Vec<tantivy::index::SegmentId> = {
            let metas = index.searchable_segment_metas()?;
            let largest = metas.iter().map(|m| m.max_doc()).max().unwrap_or(0);
            metas
                .iter()
                .filter(|m| m.max_doc() < largest / SMALL_SEGMENT_SHARE)
                .map(|m| m.id())
                .collect()
        };
        let merged = if small.len() >= 2 {
            writer.merge(&small).wait()?;
            small.len()
        } else {
            0
        };
        writer.wait_merging_threads()?;
        Ok(merged)
    }

    fn term(&self, field: Field, text: &str) -> Term {
        Term::from_field_text(field, text)
    }

    /// The addresses of the few documents of one session or kind, found on this thread:
    /// handing each of these small lookups to the search threads costs more in wake-ups than
    /// the lookup itself.
    fn small_set(searcher: &Searcher, query: &dyn Query) -> Result<Vec<DocAddress>> {
        Ok(searcher
            .search_with_executor(
                query,
                &DocSetCollector,
                &Executor::single_thread(),
                EnableScoring::disabled_from_searcher(searcher),
            )?
            .into_iter()
            .collect())
    }

    /// The few documents of one session or kind, in index order.
    fn docs(&self, query: &dyn Query) -> Result<Vec<TantivyDocument>> {
        let searcher = self.reader.searcher();
        let mut addrs = Self::small_set(&searcher, query)?;
        addrs.sort();
        addrs
            .into_iter()
            .map(|a| searcher.doc::<TantivyDocument>(a).map_err(Error::from))
            .collect()
    }

    fn bodies<T: serde::de::DeserializeOwned>(&self, query: &dyn Query) -> Result<Vec<T>> {
        self.docs(query)?
            .iter()
            .map(|d| {
                let body = d
                    .get_first(self.f.body)
                    .and_then(|v| v.as_str())
                    .unwrap_or("{}");
                serde_json::from_str(body).map_err(Error::from)
            })
            .collect()
    }

    fn kind_and(&self, kind: &str, field: Field, value: &str) -> BooleanQuery {
        BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    self.term(self.f.kind, kind),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    self.term(field, value),
                    IndexRecordOption::Basic,
                )),
            ),
        ])
    }

    /// A session's CloudTrail, read into the cache of this process if it is not there yet.
    fn trail_of(&mut self, sid: &str) -> Result<Option<&SessionTrail>> {
        if !self.trails.contains_key(sid) {
            let t: Option<SessionTrail> = if self.never_added(sid) {
                None
            } else {
                self.bodies(&self.kind_and("trail", self.f.key, &keys::trail(sid)))?
                    .into_iter()
                    .next()
            };
            self.trails.insert(sid.to_string(), t);
        }
        Ok(self.trails.get(sid).and_then(Option::as_ref))
    }

    fn sources_of(&self, sid: &str) -> Result<Vec<SessionSource>> {
        if self.never_added(sid) {
            return Ok(Vec::new());
        }
        let mut sources: Vec<SessionSource> = self.bodies(&self.sources_query(sid))?;
        sources.retain(|s| s.meta.session_id == sid);
        Ok(sources)
    }

    /// The source documents of a session, by the range of their keys (and of any session
    /// whose id continues with `\0`, which callers drop by the session id in the body).
    fn sources_query(&self, sid: &str) -> RangeQuery {
        RangeQuery::new(
            Bound::Included(self.term(self.f.key, &keys::sources_from(sid))),
            Bound::Excluded(self.term(self.f.key, &keys::sources_until(sid))),
        )
    }

    /// The committed index is known to hold no source or CloudTrail of this session.
    fn never_added(&self, sid: &str) -> bool {
        self.fresh
            .as_ref()
            .is_some_and(|f| !f.sessions.contains(&hash_of(sid.as_bytes())))
    }

    /// A first ingest that has written no command yet: no document names an instance.
    fn no_commands_yet(&self) -> bool {
        self.fresh.as_ref().is_some_and(|f| !f.commands)
    }

    /// A source or CloudTrail of this session is being added.
    fn adding(&mut self, sid: &str) {
        if let Some(f) = &mut self.fresh {
            f.sessions.insert(hash_of(sid.as_bytes()));
        }
    }

    /// What the EC2 API answered about instances' names, as it was recorded (it is not a
    /// source the ledger lists, so `verify` takes it from here).
    pub fn names_from_ec2(&self) -> Result<Vec<InstanceNames>> {
        let q = TermQuery::new(self.term(self.f.kind, "instance"), IndexRecordOption::Basic);
        let list: Vec<InstanceNames> = self.bodies(&q)?;
        Ok(list
            .into_iter()
            .filter_map(|n| {
                let at = n.looked_up.clone()?;
                let mut asked = InstanceNames::new(&n.instance_id);
                let name = (n.origin == crate::names::NameOrigin::Ec2)
                    .then_some(n.name.as_deref())
                    .flatten();
                asked.looked_up(name, n.region.as_deref(), at);
                Some(asked)
            })
            .collect())
    }

    fn instance_names(&self) -> Result<Names> {
        let q = TermQuery::new(self.term(self.f.kind, "instance"), IndexRecordOption::Basic);
        let list: Vec<InstanceNames> = self.bodies(&q)?;
        Ok(Names::from_list(list))
    }

    /// Merge facts into the index and rebuild the commands of every session they touch, and
    /// commit.
    pub fn ingest(&mut self, batch: Batch) -> Result<Changes> {
        let changes = self.add(batch)?;
        self.commit()?;
        Ok(changes)
    }

    /// Merge facts into the index and rebuild the commands of every session they touch, without
    /// committing: searches see them, and the ledger lists their sources, after [`Store::commit`].
    /// Memory stays within the writer's budget however much is added between commits.
    ///
    /// A fact about a session whose source was added since the last commit (a second source of
    /// it, or its CloudTrail arriving after its transcript), or an instance renamed, needs to
    /// read what was added back: that commits first.
    ///
    /// On an error, nothing added since the last commit is kept.
    pub fn add(&mut self, batch: Batch) -> Result<Changes> {
        self.lock_for_writing()?;
        if self.names.is_none() {
            self.names = Some(self.instance_names()?);
        }
        let renames = self
            .names
            .as_ref()
            .is_some_and(|names| names.would_change(&batch.instances, &batch.tags));
        let reads_unseen = batch
            .sources
            .iter()
            .map(|s| &s.meta.session_id)
            .chain(batch.trail.iter().map(|e| &e.session_id))
            .chain(batch.records.iter().map(|r| &r.session_id))
            .any(|sid| self.unseen.contains(sid));
        // The sessions of a renamed instance are found in the committed index, once commands
        // may name it.
        if (renames && self.dirty && !self.no_commands_yet()) || reads_unseen {
            self.commit()?;
        }
        let mut writer = self.take_writer()?;
        self.dirty = true;
        match self.ingest_with(&writer, batch) {
            Ok((changes, ledger)) => {
                if let Some(f) = &mut self.fresh {
                    f.commands |= changes.sessions > 0;
                }
                self.writer = Some(writer);
                self.staged.extend(ledger);
                Ok(changes)
            }
            Err(e) => {
                // Discard what was added since the last commit, and what this process learnt
                // from it.
                let rolled_back = writer.rollback();
                self.writer = Some(writer);
                self.staged.clear();
                self.unseen.clear();
                self.touched.clear();
                // What the committed index holds is read from it again.
                self.fresh = None;
                self.pending = (Vec::new(), 0);
                self.dirty = false;
                self.trails.clear();
                self.names = None;
                rolled_back?;
                Err(e)
            }
        }
    }

    /// Make what was added since the last commit durable and visible, and list its sources in
    /// the ledger.
    pub fn commit(&mut self) -> Result<()> {
        let mut writer = self.take_writer()?;
        let (ops, _) = std::mem::take(&mut self.pending);
        let committed = if ops.is_empty() {
            writer.commit()
        } else {
            writer.run(ops).and_then(|_| writer.commit())
        };
        self.writer = Some(writer);
        committed?;
        self.reader.reload()?;
        self.unseen.clear();
        let touched = std::mem::take(&mut self.touched);
        if let Some(f) = &mut self.fresh {
            f.keys.extend(touched);
        }
        self.dirty = false;
        let staged = std::mem::take(&mut self.staged);
        self.ledger
            .get_or_insert_with(|| crate::ledger::Ledger::of_index(&self.path))
            .append(&staged)?;
        Ok(())
    }

    fn ingest_with(
        &mut self,
        writer: &Writer,
        batch: Batch,
    ) -> Result<(Changes, Vec<crate::ledger::Ingested>)> {
        let mut ops = Ops {
            writer,
            backlog: self.backlog.clone(),
            ops: std::mem::take(&mut self.pending.0),
            bytes: self.pending.1,
            searcher: self.reader.searcher(),
            touched: std::mem::take(&mut self.touched),
            committed: self.fresh.as_mut().map(|f| std::mem::take(&mut f.keys)),
            probe: self.term(self.f.key, ""),
        };
        let mut affected: BTreeSet<String> = BTreeSet::new();

        // Inventory.
        let mut names = match self.names.take() {
            Some(n) => n,
            None => self.instance_names()?,
        };
        let renamed = names.apply(&batch.instances, &batch.tags);
        for id in &renamed {
            let Some(i) = names.get(id) else { continue };
            let key = keys::instance(id);
            ops.delete(self.term(self.f.key, &key))?;
            let body = serde_json::to_string(i)?;
            let bytes = body.len() + 2 * key.len();
            ops.add(
                doc!(
                    self.f.kind => "instance",
                    self.f.key => key,
                    self.f.instance => id.to_ascii_lowercase(),
                    self.f.body => body,
                ),
                bytes,
            )?;
        }
        if !renamed.is_empty() && !self.no_commands_yet() {
            // The sessions of the renamed instances' sources and trails, in one pass over the
            // `sid` fast field: reading their documents would cost as much as ingesting them
            // again, and each pass reads the field's dictionary.
            let kinds = BooleanQuery::new_multiterms_query(vec![
                self.term(self.f.kind, "source"),
                self.term(self.f.kind, "trail"),
            ]);
            let ids = BooleanQuery::new_multiterms_query(
                renamed
                    .iter()
                    .map(|id| self.term(self.f.instance, &id.to_ascii_lowercase()))
                    .collect(),
            );
            let q = BooleanQuery::new(vec![
                (Occur::Must, Box::new(kinds) as Box<dyn Query>),
                (Occur::Must, Box::new(ids)),
            ]);
            let sessions = self.reader.searcher().search(&q, &CountBy("sid"))?;
            affected.extend(sessions.into_keys());
        }

        // CloudTrail.
        let mut by_sid: BTreeMap<String, Vec<TrailEvent>> = BTreeMap::new();
        for e in batch.trail {
            by_sid.entry(e.session_id.clone()).or_default().push(e);
        }
        for (sid, events) in by_sid {
            let mut t = self
                .trail_of(&sid)?
                .cloned()
                .unwrap_or_else(|| SessionTrail {
                    session_id: sid.clone(),
                    events: Vec::new(),
                });
            if t.merge(events) {
                self.adding(&sid);
                let key = keys::trail(&sid);
                ops.delete_key(self.term(self.f.key, &key))?;
                let body = serde_json::to_string(&t)?;
                let bytes = body.len() + 2 * key.len();
                let mut d = doc!(
                    self.f.kind => "trail",
                    self.f.key => key,
                    self.f.sid => sid.clone(),
                    self.f.body => body,
                );
                if let Some(target) = t.start().and_then(|s| s.target.as_ref()) {
                    d.add_text(self.f.instance, target.to_ascii_lowercase());
                }
                ops.add(d, bytes)?;
                affected.insert(sid.clone());
            }
            self.trails.insert(sid, Some(t));
        }

        // Files refused as transcripts: the session's coverage names them.
        for u in batch.unreadable {
            let key = keys::unreadable(&u.session_id, &u.source);
            ops.delete_key(self.term(self.f.key, &key))?;
            let body = serde_json::to_string(&u)?;
            let bytes = body.len() + 2 * key.len();
            ops.add(
                doc!(
                    self.f.kind => "unreadable",
                    self.f.key => key,
                    self.f.sid => u.session_id.clone(),
                    self.f.body => body,
                ),
                bytes,
            )?;
        }

        // Transcripts.
        let mut new_sources: BTreeMap<String, Vec<SessionSource>> = BTreeMap::new();
        for s in batch.sources {
            let key = keys::source(&s.meta.session_id, &s.meta.source);
            ops.delete_key(self.term(self.f.key, &key))?;
            let body = body::source(&s)?;
            let bytes = body.len() + 2 * key.len();
            let mut d = doc!(
                self.f.kind => "source",
                self.f.key => key,
                self.f.sid => s.meta.session_id.clone(),
                self.f.body => body,
            );
            if let Some(i) = &s.meta.instance_id {
                d.add_text(self.f.instance, i.to_ascii_lowercase());
            }
            ops.add(d, bytes)?;
            affected.insert(s.meta.session_id.clone());
            self.adding(&s.meta.session_id);
            self.unseen.insert(s.meta.session_id.clone());
            new_sources
                .entry(s.meta.session_id.clone())
                .or_default()
                .push(s);
        }

        // Rebuild the commands of every affected session.
        let mut changes = Changes::default();
        for sid in &affected {
            let mut sources = self.sources_of(sid)?;
            if let Some(fresh) = new_sources.remove(sid) {
                sources.retain(|old| !fresh.iter().any(|n| n.meta.source == old.meta.source));
                sources.extend(fresh);
            }
            // A session without a transcript has no commands to rebuild; commands it has came
            // as records derived elsewhere, which carry their own attribution and stay.
            let trail = self.trail_of(sid)?;
            let Some((chosen, basis)) =
                Basis::of(sid, sources.iter().map(|s| &s.meta), trail, &names)
            else {
                continue;
            };
            let best = &sources[chosen];
            let shared = [basis];
            let lines: Vec<LineDoc<'_>> = best
                .lines
                .iter()
                .map(|l| LineDoc {
                    line: l.into(),
                    output: &l.output,
                    keep_output: false,
                    shared: 0,
                })
                .collect();
            self.write_session(&mut ops, sid, &shared, &lines, &mut changes)?;
        }
        // Records derived elsewhere replace the lines of the same number in their sessions: the
        // Lambda writes a session's commands and its abandoned lines as two objects.
        let mut by_session: BTreeMap<String, Vec<CommandRecord>> = BTreeMap::new();
        for r in batch.records {
            by_session.entry(r.session_id.clone()).or_default().push(r);
        }
        for (sid, mut recs) in by_session {
            let fresh: BTreeSet<u32> = recs.iter().map(|r| r.seq).collect();
            if !self.never_added(&sid) {
                for old in self.session_records(&sid, true)? {
                    if !fresh.contains(&old.seq) {
                        recs.push(old);
                    }
                }
            }
            self.adding(&sid);
            self.unseen.insert(sid.clone());
            recs.sort_by_key(|r| r.seq);
            recs.dedup_by_key(|r| r.seq);
            let mut shared: Vec<Shared> = Vec::new();
            let mut lines = Vec::new();
            for r in &recs {
                let part = Basis::of_record(r);
                let index = match shared.iter().position(|s| s == &part) {
                    Some(i) => i,
                    None => {
                        shared.push(part);
                        shared.len() - 1
                    }
                };
                lines.push(LineDoc {
                    line: r.into(),
                    output: r.output.as_deref().unwrap_or(""),
                    // No source document holds their output: their own documents keep it.
                    keep_output: true,
                    shared: index,
                });
            }
            self.write_session(&mut ops, &sid, &shared, &lines, &mut changes)?;
        }
        self.names = Some(names);
        self.touched = ops.touched;
        if let (Some(f), Some(keys)) = (&mut self.fresh, ops.committed) {
            f.keys = keys;
        }
        self.pending = (ops.ops, ops.bytes);
        Ok((changes, batch.ledger))
    }

    /// Replace a session's command documents (and its `session` document) with `lines`, whose
    /// shared parts are `shared`.
    fn write_session(
        &self,
        ops: &mut Ops<'_>,
        sid: &str,
        shared: &[Shared],
        lines: &[LineDoc<'_>],
        changes: &mut Changes,
    ) -> Result<()> {
        let f = self.f;
        let key = keys::commands(sid);
        ops.delete_key(self.term(f.key, &key))?;
        if lines.is_empty() {
            return Ok(());
        }
        changes.sessions += 1;
        // What is the same for every command of a shared part, worked out once.
        struct Facts {
            who: String,
            principal: Option<String>,
            ran_on: Option<String>,
            order_start: Option<i64>,
        }
        let facts = shared
            .iter()
            .map(|s| {
                let w = &s.who;
                Ok(Facts {
                    who: serde_json::to_string(&WhoKey::of(sid, w))?,
                    principal: pair_term(&w.principal_arn, &w.principal),
                    ran_on: pair_term(&w.instance_id, &w.instance_name),
                    order_start: w
                        .session_start
                        .as_deref()
                        .or(w.session_end.as_deref())
                        .and_then(parse_time),
                })
            })
            .collect::<Result<Vec<Facts>>>()?;
        for doc in lines {
            let l = &doc.line;
            if l.abandoned {
                changes.abandoned += 1;
            } else {
                changes.commands += 1;
            }
            let fx = &facts[doc.shared];
            let stored = Stored {
                sid: Cow::Borrowed(sid),
                seq: l.seq,
                command: Cow::Borrowed(l.command),
                run_as: Cow::Borrowed(l.run_as),
                cwd: l.cwd.map(Cow::Borrowed),
                abandoned: l.abandoned,
                byte_start: l.byte_start,
                byte_end: l.byte_end,
                shared: doc.shared,
                output: doc.keep_output.then_some(Cow::Borrowed(doc.output)),
                suspicious: Cow::Borrowed(l.suspicious),
            };
            let body = body::stored(&stored)?;
            let bytes =
                key.len() + l.command.len() + doc.output.len() + fx.who.len() + body.len() + 256;
            // Sized once for what it will hold (a document's values are copied into one buffer).
            let mut d = TantivyDocument::with_capacity(bytes);
            d.add_text(f.kind, if l.abandoned { "abandoned" } else { "command" });
            d.add_text(f.key, &key);
            d.add_text(f.command, l.command);
            d.add_text(f.output, doc.output);
            d.add_text(f.run_as, l.run_as);
            d.add_text(f.who, &fx.who);
            if !l.abandoned {
                crate::shellwords::each_program(l.command, &mut |p| d.add_text(f.program, p));
            }
            if let Some(p) = &fx.principal {
                d.add_text(f.principal, p);
            }
            if let Some(i) = &fx.ran_on {
                d.add_text(f.ran_on, i);
            }
            let order = order_key(fx.order_start, l.seq);
            d.add_u64(f.order, order);
            d.add_u64(f.day, earliest::day_of(order));
            d.add_text(f.body, body);
            ops.add(d, bytes)?;
        }
        let body = serde_json::to_string(shared)?;
        let bytes = body.len() + 2 * key.len();
        ops.add(
            doc!(
                f.kind => "session",
                f.key => key,
                f.body => body,
            ),
            bytes,
        )?;
        Ok(())
    }

    /// The records of command documents, completed with their sessions' shared parts (and
    /// their output from the source documents, when asked for), in the order of `addrs`.
    ///
    /// Each document costs the decompression of its block of the document store (128 KiB,
    /// about a tenth of a millisecond): beyond a few, two threads share them.
    fn load_records(
        &self,
        searcher: &Searcher,
        addrs: Vec<DocAddress>,
        with_output: bool,
    ) -> Result<Vec<CommandRecord>> {
        if addrs.len() < LOAD_ON_TWO_THREADS {
            return self.load_part(searcher, &addrs, with_output);
        }
        let (first, second) = addrs.split_at(addrs.len() / 2);
        let (first, second) = std::thread::scope(|s| {
            let other = s.spawn(|| self.load_part(searcher, second, with_output));
            (self.load_part(searcher, first, with_output), other.join())
        });
        let mut out = first?;
        match second {
            Ok(second) => out.extend(second?),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        Ok(out)
    }

    /// [`Store::load_records`] on one thread.
    fn load_part(
        &self,
        searcher: &Searcher,
        addrs: &[DocAddress],
        with_output: bool,
    ) -> Result<Vec<CommandRecord>> {
        let f = self.f;
        let mut sessions: BTreeMap<String, Vec<Shared>> = BTreeMap::new();
        let mut outputs: BTreeMap<(String, String), BTreeMap<u32, String>> = BTreeMap::new();
        let mut out = Vec::new();
        for &a in addrs {
            let d: TantivyDocument = searcher.doc(a)?;
            let body = d.get_first(f.body).and_then(|v| v.as_str()).unwrap_or("{}");
            let stored: Stored = serde_json::from_str(body)?;
            let sid = stored.sid.to_string();
            if !sessions.contains_key(&sid) {
                let key = keys::commands(&sid);
                let shared: Vec<Shared> = self
                    .bodies(&self.kind_and("session", f.key, &key))?
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                sessions.insert(sid.clone(), shared);
            }
            let Some(shared) = sessions.get(&sid).and_then(|s| s.get(stored.shared)) else {
                return Err(Error::Corrupt {
                    kind: "index",
                    reason: format!("session {sid} has commands but no session document"),
                });
            };
            let mut rec = stored.record(&sid, shared);
            if with_output && rec.output.is_none() {
                let k = (rec.evidence.source.clone(), sid.clone());
                if !outputs.contains_key(&k) {
                    let key = keys::source(&k.1, &k.0);
                    let lines: BTreeMap<u32, String> = self
                        .bodies::<SessionSource>(&self.kind_and("source", f.key, &key))?
                        .into_iter()
                        .flat_map(|s| s.lines)
                        .map(|l| (l.seq, l.output))
                        .collect();
                    outputs.insert(k.clone(), lines);
                }
                rec.output = outputs.get(&k).and_then(|o| o.get(&rec.seq)).cloned();
            }
            if !with_output {
                rec.output = None;
            }
            out.push(rec);
        }
        Ok(out)
    }

    /// Matching commands counted by session, with who each session belongs to, from the `who`
    /// fast field alone.
    pub fn who(&self, filter: &Filter) -> Result<Vec<(WhoKey, usize)>> {
        let searcher = self.reader.searcher();
        let query = self.filter_query(&searcher, filter)?;
        let counts = searcher.search(&query, &CountBy("who"))?;
        counts
            .into_iter()
            .map(|(k, n)| Ok((serde_json::from_str(&k)?, n)))
            .collect()
    }

    /// Commands matching a filter, in session order (session start, session id, seq).
    pub fn search(&self, filter: &Filter) -> Result<Vec<CommandRecord>> {
        let searcher = self.reader.searcher();
        let query = self.filter_query(&searcher, filter)?;
        let addrs: Vec<DocAddress> = match filter.limit {
            // The first N in session order (and any tied with the last), without loading the
            // rest.
            Some(n) => {
                let scoring = EnableScoring::disabled_from_searcher(&searcher);
                let (query, exact): (Box<dyn Query>, _) = match earliest::loosened(&query) {
                    Some(loose) => (loose, Some(query.weight(scoring)?)),
                    None => (Box::new(query), None),
                };
                searcher
                    .search(&query, &earliest::Earliest::new(n, exact))?
                    .into_iter()
                    .map(|(_, a)| a)
                    .collect()
            }
            None => {
                let mut all: Vec<DocAddress> = searcher
                    .search(&query, &DocSetCollector)?
                    .into_iter()
                    .collect();
                all.sort();
                all
            }
        };
        let mut records = self.load_records(&searcher, addrs, filter.with_output)?;
        records.sort_by(|a, b| {
            let ka = (
                a.who
                    .session_start
                    .as_deref()
                    .or(a.who.session_end.as_deref()),
                &a.session_id,
                a.seq,
            );
            let kb = (
                b.who
                    .session_start
                    .as_deref()
                    .or(b.who.session_end.as_deref()),
                &b.session_id,
                b.seq,
            );
            ka.cmp(&kb)
        });
        if let Some(n) = filter.limit {
            records.truncate(n.max(1));
        }
        Ok(records)
    }

    /// The terms of a [`pair_term`] field of which either part is `want` (case aside): read
    /// from the segments' term dictionaries, which hold one term per distinct principal or
    /// instance (hundreds, where commands are millions).
    fn pairs_naming(
        &self,
        searcher: &Searcher,
        field: Field,
        want: &str,
    ) -> Result<BTreeSet<String>> {
        let want = pair_part(want);
        let mut found = BTreeSet::new();
        for segment in searcher.segment_readers() {
            let index = segment.inverted_index(field)?;
            let mut stream = index.terms().stream()?;
            while stream.advance() {
                let Ok(term) = std::str::from_utf8(stream.key()) else {
                    continue;
                };
                if term
                    .split(PAIR_SEP)
                    .any(|part| !part.is_empty() && part == want)
                {
                    found.insert(term.to_string());
                }
            }
        }
        Ok(found)
    }

    /// The query of a filter. Who and where are matched against the distinct terms of their
    /// fields first (see the module's comment), so this reads the index.
    fn filter_query(&self, searcher: &Searcher, filter: &Filter) -> Result<BooleanQuery> {
        let f = self.f;
        let term_query = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                self.term(field, value),
                IndexRecordOption::Basic,
            ))
        };
        let kind = if filter.abandoned {
            "abandoned"
        } else {
            "command"
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, term_query(f.kind, kind))];
        if let Some(q) = filter.query.as_deref().filter(|q| !q.trim().is_empty()) {
            let mut fields = vec![f.command];
            if filter.in_output {
                fields.push(f.output);
            }
            let mut parser = QueryParser::for_index(&self.index, fields);
            parser.set_conjunction_by_default();
            clauses.push((Occur::Must, parser.parse_query(q)?));
        }
        for (field, want) in [(f.principal, &filter.user), (f.ran_on, &filter.instance)] {
            let Some(want) = want else { continue };
            // Usually one term, its postings read lazily (a term set would fill a bit set per
            // segment with every command of that principal or instance first).
            let terms = self.pairs_naming(searcher, field, want)?;
            let q: Box<dyn Query> = if terms.is_empty() {
                Box::new(EmptyQuery)
            } else {
                Box::new(BooleanQuery::new(
                    terms
                        .iter()
                        .map(|t| (Occur::Should, term_query(field, t)))
                        .collect(),
                ))
            };
            clauses.push((Occur::Must, q));
        }
        if let Some(r) = &filter.run_as {
            clauses.push((Occur::Must, term_query(f.run_as, r)));
        }
        if let Some(p) = &filter.program {
            clauses.push((Occur::Must, term_query(f.program, p)));
        }
        if filter.since.is_some() || filter.until.is_some() {
            // By the session's time in the `order` field; 0 there is a session of unknown time,
            // which no time range admits.
            let secs = |t: i64| order_key(Some(t.max(1)), 0);
            let lo = Bound::Included(Term::from_field_u64(
                f.order,
                secs(filter.since.unwrap_or(1)),
            ));
            let hi = filter.until.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_u64(f.order, secs(t)))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        Ok(BooleanQuery::new(clauses))
    }

    /// Every session the index knows of, from CloudTrail or a transcript, and which of the two
    /// it has: sessions CloudTrail saw with no transcript (port forwarding, lost logs), and
    /// transcripts with no CloudTrail record.
    pub fn coverage(&self) -> Result<Vec<SessionCoverage>> {
        let names = self.instance_names()?;
        let q = TermQuery::new(self.term(self.f.kind, "trail"), IndexRecordOption::Basic);
        let trails: BTreeMap<String, SessionTrail> = self
            .bodies::<SessionTrail>(&q)?
            .into_iter()
            .map(|t| (t.session_id.clone(), t))
            .collect();
        let q = TermQuery::new(self.term(self.f.kind, "source"), IndexRecordOption::Basic);
        let mut metas: BTreeMap<String, Vec<model::SourceMeta>> = BTreeMap::new();
        for s in self.bodies::<SourceMetaOnly>(&q)? {
            metas
                .entry(s.meta.session_id.clone())
                .or_default()
                .push(s.meta);
        }
        let q = TermQuery::new(
            self.term(self.f.kind, "unreadable"),
            IndexRecordOption::Basic,
        );
        let mut refused: BTreeMap<String, Vec<model::Unreadable>> = BTreeMap::new();
        for u in self.bodies::<model::Unreadable>(&q)? {
            refused.entry(u.session_id.clone()).or_default().push(u);
        }
        let ids: BTreeSet<&String> = trails
            .keys()
            .chain(metas.keys())
            .chain(refused.keys())
            .filter(|s| !s.is_empty())
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        // Calls refused before any session began (a denied StartSession names none): one row
        // each, as an attempt on its target.
        for e in trails.get("").map_or(&[][..], |t| &t.events[..]) {
            let mut who = model::Attribution {
                principal_arn: e.principal_arn.clone(),
                principal: e.principal.clone(),
                principal_type: e.principal_type.clone(),
                mfa: e.mfa,
                source_ip: e.source_ip.clone(),
                instance_id: e.target.clone(),
                session_start: Some(e.event_time.clone()),
                attribution: "cloudtrail".into(),
                ..Default::default()
            };
            if let Some(i) = &who.instance_id {
                (who.instance_name, who.instance_name_from) = names.at(i, Some(&e.event_time));
            }
            out.push(SessionCoverage {
                session_id: String::new(),
                document: e.document_name.clone(),
                who,
                cloudtrail: false,
                transcripts: Vec::new(),
                denied: vec![e.clone()],
                unreadable: Vec::new(),
            });
        }
        for sid in ids {
            let trail = trails.get(sid);
            let sources = metas.get(sid).map(Vec::as_slice).unwrap_or_default();
            // Who, as the session's records say it: the one derivation.
            let who = match Basis::of(sid, sources, trail, &names) {
                Some((_, basis)) => basis.who,
                None => model::attribute(sid, None, trail, &names),
            };
            let start = trail.and_then(SessionTrail::start);
            out.push(SessionCoverage {
                session_id: sid.clone(),
                document: start.and_then(|s| s.document_name.clone()),
                who,
                cloudtrail: start.is_some(),
                transcripts: sources.iter().map(|m| m.source.clone()).collect(),
                denied: trail
                    .map(|t| {
                        t.events
                            .iter()
                            .filter(|e| !e.succeeded())
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default(),
                unreadable: refused.get(sid.as_str()).cloned().unwrap_or_default(),
            });
        }
        out.sort_by(|a, b| {
            (a.who.session_start.as_deref(), &a.session_id)
                .cmp(&(b.who.session_start.as_deref(), &b.session_id))
        });
        Ok(out)
    }

    /// Instances that sessions in the index ran on and that nothing names yet (no inventory, no
    /// tag history, never looked up), each with the region of a session on it when CloudTrail
    /// says: what to ask the EC2 API about.
    pub fn instances_to_name(&self) -> Result<BTreeMap<String, Option<String>>> {
        let names = self.instance_names()?;
        let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
        let q = TermQuery::new(self.term(self.f.kind, "trail"), IndexRecordOption::Basic);
        for t in self.bodies::<SessionTrail>(&q)? {
            if let Some(s) = t.start() {
                if let Some(id) = &s.target {
                    let region = out.entry(id.clone()).or_default();
                    if region.is_none() {
                        region.clone_from(&s.region);
                    }
                }
            }
        }
        let q = TermQuery::new(self.term(self.f.kind, "source"), IndexRecordOption::Basic);
        for s in self.bodies::<SourceMetaOnly>(&q)? {
            if let Some(id) = s.meta.instance_id {
                out.entry(id).or_default();
            }
        }
        out.retain(|id, region| {
            names
                .get(id)
                .is_none_or(|n| n.wants_lookup(region.as_deref()) && n.history.is_empty())
        });
        Ok(out)
    }

    /// Every transcript source in the index, with its lines.
    pub fn sources(&self) -> Result<Vec<SessionSource>> {
        self.bodies(&TermQuery::new(
            self.term(self.f.kind, "source"),
            IndexRecordOption::Basic,
        ))
    }

    /// The command and abandoned-line records of one session.
    pub fn records_of(&self, session_id: &str) -> Result<Vec<CommandRecord>> {
        self.session_records(session_id, false)
    }

    /// [`Store::records_of`], with their output when asked.
    fn session_records(&self, session_id: &str, with_output: bool) -> Result<Vec<CommandRecord>> {
        let searcher = self.reader.searcher();
        let mut addrs: Vec<DocAddress> = Vec::new();
        for kind in ["command", "abandoned"] {
            let q = self.kind_and(kind, self.f.key, &keys::commands(session_id));
            addrs.extend(Self::small_set(&searcher, &q)?);
        }
        addrs.sort();
        self.load_records(&searcher, addrs, with_output)
    }

    /// Remove a session's records and sources from the index (a retention purge); the ledger
    /// keeps what was ingested, so `verify` reports the removal.
    pub fn forget_session(&mut self, session_id: &str) -> Result<()> {
        // What was added before goes first: its documents of the session are forgotten too.
        if self.dirty {
            self.commit()?;
        }
        let writer = self.take_writer()?;
        writer.delete_term(self.term(self.f.key, &keys::commands(session_id)));
        for s in self.bodies::<SourceMetaOnly>(&self.sources_query(session_id))? {
            if s.meta.session_id == session_id {
                writer
                    .delete_term(self.term(self.f.key, &keys::source(session_id, &s.meta.source)));
            }
        }
        self.writer = Some(writer);
        self.commit()
    }
}

/// One session's coverage: what CloudTrail and the transcripts say of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionCoverage {
    /// The session.
    pub session_id: String,
    /// Who, where, when.
    #[serde(flatten)]
    pub who: model::Attribution,
    /// The document it was started with (`AWS-StartPortForwardingSession` writes no transcript).
    pub document: Option<String>,
    /// CloudTrail recorded its StartSession.
    pub cloudtrail: bool,
    /// The transcripts indexed for it.
    pub transcripts: Vec<String>,
    /// Calls on it that failed or were denied (`errorCode`): they started, resumed or ended
    /// nothing, and who tried is listed here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<TrailEvent>,
    /// Files named as its transcript that are not terminal output, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<model::Unreadable>,
}

impl SessionCoverage {
    /// Is it this principal's (name or ARN), on this instance (id or Name), started in
    /// `[since, until)` (unix seconds)? Each `None` admits all.
    pub fn matches(
        &self,
        user: Option<&str>,
        instance: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
    ) -> bool {
        let w = &self.who;
        let is = |v: &Option<String>, want: &str| {
            v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(want))
        };
        let start = w
            .session_start
            .as_deref()
            .or(w.session_end.as_deref())
            .and_then(parse_time);
        user.is_none_or(|u| is(&w.principal, u) || is(&w.principal_arn, u))
            && instance.is_none_or(|i| is(&w.instance_id, i) || is(&w.instance_name, i))
            && since.is_none_or(|s| start.is_some_and(|t| t >= s))
            && until.is_none_or(|e| start.is_some_and(|t| t < e))
    }

    /// `covered`, `no transcript`, `no cloudtrail`, or `denied` (only failed or denied calls:
    /// no session began).
    pub fn status(&self) -> &'static str {
        match (self.cloudtrail, self.transcripts.is_empty()) {
            (true, false) => "covered",
            (true, true) => "no transcript",
            (false, true) if !self.denied.is_empty() => "denied",
            _ => "no cloudtrail",
        }
    }

    /// What an auditor must look at besides the status: `conflict` (its sources disagree:
    /// see `conflicts`), `denied` (failed or denied calls on it: see `denied`).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.who.conflicts.is_empty() {
            out.push("conflict");
        }
        if !self.denied.is_empty() {
            out.push("denied");
        }
        if !self.who.participants.is_empty() {
            out.push("participants");
        }
        if !self.unreadable.is_empty() {
            out.push("unreadable");
        }
        out
    }
}

/// A source document read for its facts only (its lines are ignored).
#[derive(serde::Deserialize)]
struct SourceMetaOnly {
    #[serde(flatten)]
    meta: model::SourceMeta,
}

/// Between the two parts of a [`pair_term`].
const PAIR_SEP: char = '\u{1}';

/// A part of a [`pair_term`], as it is compared: lowercase, without the separator.
fn pair_part(s: &str) -> String {
    s.to_lowercase().replace(PAIR_SEP, "\u{fffd}")
}

/// Two names of one thing (principal ARN and name, instance id and Name) as one term: each
/// lowercase, empty when unknown, joined by [`PAIR_SEP`]; `None` when both are unknown.
fn pair_term(a: &Option<String>, b: &Option<String>) -> Option<String> {
    if a.is_none() && b.is_none() {
        return None;
    }
    let part = |p: &Option<String>| p.as_deref().map(pair_part).unwrap_or_default();
    Some(format!("{}{PAIR_SEP}{}", part(a), part(b)))
}

/// Bits of an [`order_key`] under its seconds.
const SEQ_BITS: u32 = 24;

/// The number that sorts commands in session order: start seconds, then seq. Sessions that
/// started in the same second share these numbers (their ids set them apart).
fn order_key(start: Option<i64>, seq: u32) -> u64 {
    let secs = start.unwrap_or(0).max(0) as u64;
    (secs << SEQ_BITS) | u64::from(seq.min((1 << SEQ_BITS) - 1))
}

/// RFC 3339 (or `YYYY-MM-DD`) to unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc().timestamp());
    }
    None
}
