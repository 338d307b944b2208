//! Writing the index: a guard that holds the writer lock, the operations not yet handed to
//! tantivy, what this process knows of the index while it holds the lock, and the ledger,
//! appended to at each commit.

use super::docs::{self, LineDoc, Shared};
use super::ops::{hash_of, Fresh, Ops, Queued, TantivyWriter};
use super::schema::{keys, term};
use super::{Batch, Index, Reader};
use crate::anchor::{AnchorStore, Anchoring, Signer};
use crate::derive::Basis;
use crate::error::{Error, Result};
use crate::formats::TrailEvent;
use crate::ledger::{Head, Ingested, Ledger, Settled};
use crate::model::{CommandRecord, SessionSource, SessionTrail};
use crate::names::Names;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, BTreeSet};
use tantivy::query::{BooleanQuery, Occur, Query};
use tantivy::schema::TantivyDocument;

/// Memory the index writer may use, shared by its [`WRITER_THREADS`]: a thread writes a segment
/// when its share is full, or at a commit. 256 MiB makes two large segments of about equal size
/// for the 1 GiB benchmark corpus (and no merge), which the two search threads share evenly;
/// 64 MiB on one thread made eight, and queries about a millisecond slower.
const WRITER_HEAP: usize = 256 << 20;

/// Indexing threads of the writer (one segment each at a time).
const WRITER_THREADS: usize = 2;

/// A segment with fewer documents than the largest's share of this is merged at the end of a
/// command-line ingest (see [`Writer::finish_compacted`]).
const SMALL_SEGMENT_SHARE: u32 = 8;

/// The writer that only merges indexes nothing: tantivy's smallest memory budget.
const MERGE_WRITER_HEAP: usize = 15_000_000;

/// What an ingest changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sessions whose commands were (re)built.
    pub sessions: usize,
    /// Command records written for them.
    pub commands: usize,
    /// Abandoned lines written for them.
    pub abandoned: usize,
    /// Each session written, with its commands and abandoned lines as last written: a session
    /// written again (its CloudTrail after its transcript) is one session here.
    pub latest: std::collections::BTreeMap<String, (usize, usize)>,
}

impl Changes {
    /// Take in what a later write changed: counts add up, a session's latest counts replace
    /// its earlier ones.
    pub fn absorb(&mut self, later: Changes) {
        self.sessions += later.sessions;
        self.commands += later.commands;
        self.abandoned += later.abandoned;
        self.latest.extend(later.latest);
    }

    /// Distinct sessions, and their commands and abandoned lines, as they now stand.
    pub fn distinct(&self) -> (usize, usize, usize) {
        let (c, a) = self
            .latest
            .values()
            .fold((0, 0), |(c, a), (x, y)| (c + x, a + y));
        (self.latest.len(), c, a)
    }
}

/// The one writer of an index, holding its lock until [`Writer::finish`] or drop: another
/// process that asks for a writer meanwhile gets [`Error::Locked`].
///
/// Facts are added with [`Writer::add`]; searches (through [`Writer::reader`]) see them, and the
/// ledger lists their sources, after [`Writer::commit`].
pub struct Writer {
    /// The committed index, reloaded at each commit.
    reader: Reader,
    writer: TantivyWriter,
    /// The ledger, appended to before each commit; the commit records its head.
    ledger: Ledger,
    /// The ledger's head as of the last commit.
    committed: Option<Head>,
    /// What settling the ledger cut when the lock was taken.
    settled: Settled,
    /// Where each commit's ledger head is anchored.
    anchoring: Option<Anchoring>,
    /// What was added since the last commit: the sources, for the ledger at the commit.
    staged: Vec<Ingested>,
    /// Anything was added since the last commit.
    dirty: bool,
    known: Known,
}

/// What this process knows of the index while it holds the lock (no other process changes it
/// meanwhile), and the operations not yet handed to the writer.
struct Known {
    /// Bytes of documents handed to the writer and not yet indexed (see [`Ops`]).
    backlog: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// CloudTrail of sessions looked up or written by this process: a session's transcript
    /// usually arrives in a later commit than its CloudTrail file, and reading the trail back
    /// from the compressed document store each time would cost more than the session's own
    /// indexing.
    trails: FxHashMap<String, Option<SessionTrail>>,
    /// Instance Name tags, once read (kept up to date by this process while it writes).
    names: Option<Names>,
    /// What the CloudTrail digests in the index vouch for, once read (kept up to date by this
    /// process while it writes).
    vouched: Option<crate::ingest::Vouched>,
    /// Sessions whose source documents were added since the last commit: a search does not see
    /// them yet, so a later fact about one of them commits first.
    unseen: FxHashSet<String>,
    /// Hashes of the keys of documents added since the last commit (see [`Ops::delete_key`]).
    touched: FxHashSet<u64>,
    /// What the committed index holds, when this process knows without reading it.
    fresh: Option<Fresh>,
    /// Operations not yet handed to the writer, and the bytes of their documents: a block is
    /// handed over when full or at the commit, not at the end of each [`Writer::add`] (each
    /// hand-over wakes the indexing thread).
    pending: (Vec<tantivy::indexer::UserOperation<Queued>>, usize),
}

impl Writer {
    /// Take the index's writer lock (failing with [`Error::Locked`] while another process
    /// writes), then read what the index holds.
    pub(super) fn new(index: &Index) -> Result<Writer> {
        let writer = index
            .inner
            .writer_with_num_threads(WRITER_THREADS, WRITER_HEAP)
            .map_err(|e| match e {
                e if super::readonly::is_read_only(&e) => Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ReadOnlyFilesystem,
                    format!("the index at {} cannot be written", index.path.display()),
                )),
                tantivy::TantivyError::LockFailure(..) => {
                    Error::Locked(index.path.display().to_string())
                }
                e => Error::Index(e),
            })?;
        // Read after the lock is taken: what another process wrote before is seen.
        let reader = index.reader()?;
        let fresh = (reader.searcher().num_docs() == 0).then(Fresh::default);
        // An ingest that ended between writing the ledger and committing left entries the index
        // never committed, or a torn line.
        let committed = reader.ledger_head()?;
        let mut ledger = Ledger::of_index(&index.path);
        let settled = ledger.settle(committed.as_ref())?;
        Ok(Writer {
            reader,
            writer,
            ledger,
            committed,
            settled,
            anchoring: None,
            staged: Vec::new(),
            dirty: false,
            known: Known::new(Default::default(), fresh),
        })
    }

    /// The committed index, as of the last commit.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// What was cut from the ledger when this writer took the index: what an interrupted
    /// ingest had written for a commit that did not happen.
    pub fn settled(&self) -> &Settled {
        &self.settled
    }

    /// The ledger's head as of the last commit.
    pub fn ledger_head(&self) -> Option<&Head> {
        self.committed.as_ref()
    }

    /// Anchor the ledger's head to `store` after every commit from now on (signed by
    /// `signer`, when given). The heads already there must agree with the ledger: an index
    /// whose ledger does not is not written to ([`Error::Anchor`]).
    pub fn anchor_to(
        &mut self,
        store: Box<dyn AnchorStore>,
        signer: Option<Box<dyn Signer>>,
    ) -> Result<()> {
        let mut entries = self.ledger.read()?.entries;
        if let Some(h) = &self.committed {
            entries.retain(|e| e.n <= h.entries);
        }
        self.anchoring = Some(Anchoring::start(store, signer, &entries).map_err(Error::Anchor)?);
        Ok(())
    }

    /// Merge facts into the index and rebuild the commands of every session they touch, and
    /// commit.
    pub fn ingest(&mut self, batch: Batch) -> Result<Changes> {
        let changes = self.add(batch)?;
        self.commit()?;
        Ok(changes)
    }

    /// Merge facts into the index and rebuild the commands of every session they touch, without
    /// committing: searches see them, and the ledger lists their sources, after
    /// [`Writer::commit`]. Memory stays within the writer's budget however much is added
    /// between commits.
    ///
    /// A fact about a session whose source was added since the last commit (a second source of
    /// it, or its CloudTrail arriving after its transcript), or an instance renamed, needs to
    /// read what was added back: that commits first.
    ///
    /// On an error, nothing added since the last commit is kept.
    pub fn add(&mut self, batch: Batch) -> Result<Changes> {
        if self.known.names.is_none() {
            self.known.names = Some(self.reader.instance_names()?);
        }
        let renames = self
            .known
            .names
            .as_ref()
            .is_some_and(|names| names.would_change(&batch.instances, &batch.tags));
        let reads_unseen = batch
            .sources
            .iter()
            .map(|s| &s.meta.session_id)
            .chain(batch.trail.iter().map(|e| &e.session_id))
            .chain(batch.records.iter().map(|r| &r.session_id))
            .any(|sid| self.known.unseen.contains(sid))
            // A digest may concern any session: what was added is found by a search first.
            || (!batch.digests.is_empty() && !self.known.unseen.is_empty());
        // The sessions of a renamed instance are found in the committed index, once commands
        // may name it.
        if (renames && self.dirty && !self.known.no_commands_yet()) || reads_unseen {
            self.commit()?;
        }
        self.dirty = true;
        match self.known.ingest(&self.reader, &self.writer, batch) {
            Ok((changes, ledger)) => {
                if let Some(f) = &mut self.known.fresh {
                    f.commands |= changes.sessions > 0;
                }
                self.staged.extend(ledger);
                Ok(changes)
            }
            Err(e) => {
                self.abandon()?;
                Err(e)
            }
        }
    }

    /// Discard what was added since the last commit, and what this process learnt from it
    /// (what the committed index holds is read from it again), and cut the ledger back to the
    /// committed head.
    fn abandon(&mut self) -> Result<()> {
        let rolled_back = self.writer.rollback();
        self.staged.clear();
        self.dirty = false;
        self.known = Known::new(self.known.backlog.clone(), None);
        rolled_back?;
        self.ledger.settle(self.committed.as_ref())?;
        Ok(())
    }

    /// Make what was added since the last commit durable and visible, and list its sources in
    /// the ledger.
    ///
    /// The ledger is written first and the commit records its head, so the two never
    /// disagree for long: whatever interrupts the commit, the entries it wrote are past the
    /// committed head, and the next writer cuts them ([`Ledger::settle`]). On an error here
    /// nothing added since the last commit is kept.
    pub fn commit(&mut self) -> Result<()> {
        match self.commit_or_fail() {
            Ok(()) => Ok(()),
            Err(e) => {
                // What cannot be undone now is undone by the next writer.
                let _ = self.abandon();
                Err(e)
            }
        }
    }

    fn commit_or_fail(&mut self) -> Result<()> {
        let (ops, _) = std::mem::take(&mut self.known.pending);
        if !ops.is_empty() {
            self.writer.run(ops)?;
        }
        let added = self.ledger.append(&self.staged)?;
        let head = self.ledger.head()?;
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&super::schema::commit_payload(&head));
        prepared.commit()?;
        self.committed = Some(head.clone());
        self.staged.clear();
        if let Some(a) = &mut self.anchoring {
            a.anchor(&head, &added).map_err(|why| {
                Error::Anchor(format!(
                    "anchoring the ledger head at {}: {why}",
                    a.location()
                ))
            })?;
        }
        self.reader.reload()?;
        self.known.unseen.clear();
        let touched = std::mem::take(&mut self.known.touched);
        if let Some(f) = &mut self.known.fresh {
            f.keys.extend(touched);
        }
        self.dirty = false;
        Ok(())
    }

    /// Commit what was added since the last commit, let the segment merges the commits started
    /// finish (fewer, larger segments make every later query faster), and release the writer
    /// lock.
    pub fn finish(mut self) -> Result<()> {
        if self.dirty {
            self.commit()?;
        }
        self.writer.wait_merging_threads()?;
        Ok(())
    }

    /// [`Writer::finish`], after merging the segments much smaller than the largest into one.
    ///
    /// A query visits each segment on its own (its files mapped, its dictionaries opened), and
    /// each commit of an ingest leaves one small segment per indexing thread, too few for
    /// tantivy's merge policy to merge. The command-line ingest ends with this; the Lambda,
    /// which commits every invocation, leaves merging to that policy. Returns how many
    /// segments were merged (0 or at least 2).
    pub fn finish_compacted(self) -> Result<usize> {
        let index = self.reader.index().inner.clone();
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

    /// Remove a session's records and sources from the index (a retention purge); the ledger
    /// keeps what was ingested, so `verify` reports the removal.
    pub fn forget_session(&mut self, session_id: &str) -> Result<()> {
        // What was added before goes first: its documents of the session are forgotten too.
        if self.dirty {
            self.commit()?;
        }
        let f = self.reader.index().f;
        self.writer
            .delete_term(term(f.key, &keys::commands(session_id)));
        for m in self.reader.source_metas_of(session_id)? {
            self.writer.delete_term(term(
                f.key,
                &keys::source(session_id, &m.source, m.version_id.as_deref()),
            ));
        }
        self.commit()
    }
}

impl Known {
    /// Nothing known yet but what the committed index holds (`fresh`), counting the writer's
    /// backlog in `backlog`.
    fn new(backlog: std::sync::Arc<std::sync::atomic::AtomicUsize>, fresh: Option<Fresh>) -> Known {
        Known {
            backlog,
            trails: FxHashMap::default(),
            names: None,
            vouched: None,
            unseen: FxHashSet::default(),
            touched: FxHashSet::default(),
            fresh,
            pending: (Vec::new(), 0),
        }
    }

    /// A session's CloudTrail, read into the cache of this process if it is not there yet.
    fn trail_of(&mut self, reader: &Reader, sid: &str) -> Result<Option<&SessionTrail>> {
        if !self.trails.contains_key(sid) {
            let t = if self.never_added(sid) {
                None
            } else {
                reader.trail(sid)?
            };
            self.trails.insert(sid.to_string(), t);
        }
        Ok(self.trails.get(sid).and_then(Option::as_ref))
    }

    fn sources_of(&self, reader: &Reader, sid: &str) -> Result<Vec<SessionSource>> {
        if self.never_added(sid) {
            return Ok(Vec::new());
        }
        reader.sources_of(sid)
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

    /// Hand `batch` to `writer` as documents, and the command documents of every session it
    /// touches rebuilt: what changed, and the sources to list in the ledger at the commit.
    fn ingest(
        &mut self,
        reader: &Reader,
        writer: &TantivyWriter,
        batch: Batch,
    ) -> Result<(Changes, Vec<Ingested>)> {
        let f = reader.index().f;
        let mut ops = Ops {
            writer,
            backlog: self.backlog.clone(),
            ops: std::mem::take(&mut self.pending.0),
            bytes: self.pending.1,
            searcher: reader.searcher(),
            touched: std::mem::take(&mut self.touched),
            committed: self.fresh.as_mut().map(|f| std::mem::take(&mut f.keys)),
            probe: term(f.key, ""),
        };
        let mut affected: BTreeSet<String> = BTreeSet::new();

        // Inventory.
        let mut names = match self.names.take() {
            Some(n) => n,
            None => reader.instance_names()?,
        };
        let renamed = names.apply(&batch.instances, &batch.tags);
        for id in &renamed {
            let Some(i) = names.get(id) else { continue };
            let key = keys::instance(id);
            ops.delete(term(f.key, &key))?;
            let (d, bytes) = docs::instance(f, key, id, i)?;
            ops.add(d, bytes)?;
        }
        if !renamed.is_empty() && !self.no_commands_yet() {
            // The sessions of the renamed instances' sources and trails, in one pass over the
            // `sid` fast field: reading their documents would cost as much as ingesting them
            // again, and each pass reads the field's dictionary.
            let kinds = BooleanQuery::new_multiterms_query(vec![
                term(f.kind, "source"),
                term(f.kind, "trail"),
            ]);
            let ids = BooleanQuery::new_multiterms_query(
                renamed
                    .iter()
                    .map(|id| term(f.instance, &id.to_ascii_lowercase()))
                    .collect(),
            );
            let q = BooleanQuery::new(vec![
                (Occur::Must, Box::new(kinds) as Box<dyn Query>),
                (Occur::Must, Box::new(ids)),
            ]);
            let sessions = reader
                .searcher()
                .search(&q, &super::collect::CountBy("sid"))?;
            affected.extend(sessions.into_keys());
        }

        // CloudTrail digests: what they vouch for, and the sessions whose CloudTrail came from
        // a file a signed one lists (their records now say whether it is validated).
        let mut vouched = match self.vouched.take() {
            Some(v) => v,
            None => reader.vouched()?,
        };
        let mut listed = crate::ingest::Vouched::default();
        for d in &batch.digests {
            let key = keys::digest(&d.name, d.version_id.as_deref());
            ops.delete_key(term(f.key, &key))?;
            let (doc, bytes) = docs::digest(f, key, d)?;
            ops.add(doc, bytes)?;
            // A digest ingested again vouches for nothing new: no session is derived again.
            if vouched.add(d) {
                listed.add(d);
            }
        }
        if !listed.is_empty() && !self.no_commands_yet() {
            let from_listed = |t: &SessionTrail| {
                t.events
                    .iter()
                    .any(|e| e.file_sha256.as_deref().is_some_and(|h| listed.vouches(h)))
            };
            for (sid, t) in reader.trails()? {
                if from_listed(&t) {
                    affected.insert(sid);
                }
            }
            for (sid, t) in &self.trails {
                if t.as_ref().is_some_and(from_listed) {
                    affected.insert(sid.clone());
                }
            }
        }

        // CloudTrail.
        let mut by_sid: BTreeMap<String, Vec<TrailEvent>> = BTreeMap::new();
        for e in batch.trail {
            by_sid.entry(e.session_id.clone()).or_default().push(e);
        }
        for (sid, events) in by_sid {
            let mut t = self
                .trail_of(reader, &sid)?
                .cloned()
                .unwrap_or_else(|| SessionTrail {
                    session_id: sid.clone(),
                    events: Vec::new(),
                });
            if t.merge(events) {
                self.adding(&sid);
                let key = keys::trail(&sid);
                ops.delete_key(term(f.key, &key))?;
                let (d, bytes) = docs::trail(f, key, &t)?;
                ops.add(d, bytes)?;
                affected.insert(sid.clone());
            }
            self.trails.insert(sid, Some(t));
        }

        // Files refused as transcripts: the session's coverage names them.
        for u in batch.unreadable {
            let key = keys::unreadable(&u.session_id, &u.source);
            ops.delete_key(term(f.key, &key))?;
            let (d, bytes) = docs::unreadable(f, key, &u)?;
            ops.add(d, bytes)?;
        }

        // Transcripts.
        let mut new_sources: BTreeMap<String, Vec<SessionSource>> = BTreeMap::new();
        for s in batch.sources {
            let sid = s.meta.session_id.clone();
            let key = keys::source(&sid, &s.meta.source, s.meta.version_id.as_deref());
            ops.delete_key(term(f.key, &key))?;
            let (d, bytes) = docs::source(f, key, &s)?;
            ops.add(d, bytes)?;
            affected.insert(sid.clone());
            self.adding(&sid);
            self.unseen.insert(sid.clone());
            new_sources.entry(sid).or_default().push(s);
        }

        // Rebuild the commands of every affected session.
        let mut changes = Changes::default();
        for sid in &affected {
            let mut sources = self.sources_of(reader, sid)?;
            if let Some(fresh) = new_sources.remove(sid) {
                let same = |a: &SessionSource, b: &SessionSource| {
                    (&a.meta.source, &a.meta.version_id) == (&b.meta.source, &b.meta.version_id)
                };
                sources.retain(|old| !fresh.iter().any(|n| same(n, old)));
                sources.extend(fresh);
            }
            // A session without a transcript has no commands to rebuild; commands it has came
            // as records derived elsewhere, which carry their own attribution and stay.
            let trail = self.trail_of(reader, sid)?;
            let Some((chosen, basis)) = Basis::of(
                sid,
                sources.iter().map(|s| &s.meta),
                trail,
                &names,
                &vouched,
            ) else {
                // No transcript, but CloudTrail names the command it was started with: that
                // command is its record, unless records derived elsewhere are there already.
                let started = trail.and_then(|t| Basis::of_trail(sid, t, &names, &vouched));
                if let Some(basis) = started {
                    if self.never_added(sid) || reader.session_records(sid, false)?.is_empty() {
                        let shared = [basis];
                        let lines: Vec<LineDoc<'_>> = started_doc(&shared[0], "").collect();
                        self.adding(sid);
                        self.unseen.insert(sid.clone());
                        write_session(&mut ops, reader, sid, &shared, &lines, &mut changes)?;
                    }
                }
                continue;
            };
            let best = &sources[chosen];
            let shared = [basis];
            // The command the session was started with: what the transcript shows before any
            // line is its output, kept in its own document (no line of the source holds it).
            let lines: Vec<LineDoc<'_>> = started_doc(&shared[0], &best.meta.preamble)
                .chain(best.lines.iter().map(|l| LineDoc {
                    line: l.into(),
                    output: &l.output,
                    keep_output: false,
                    shared: 0,
                }))
                .collect();
            write_session(&mut ops, reader, sid, &shared, &lines, &mut changes)?;
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
                for old in reader.session_records(&sid, true)? {
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
            write_session(&mut ops, reader, &sid, &shared, &lines, &mut changes)?;
        }
        self.names = Some(names);
        self.vouched = Some(vouched);
        self.touched = ops.touched;
        if let (Some(f), Some(keys)) = (&mut self.fresh, ops.committed) {
            f.keys = keys;
        }
        self.pending = (ops.ops, ops.bytes);
        Ok((changes, batch.ledger))
    }
}

/// The command document of the command a session was started with, if CloudTrail names one:
/// its output, `output`, kept in its own document (no line of a source holds it).
fn started_doc<'a>(basis: &'a Basis, output: &'a str) -> impl Iterator<Item = LineDoc<'a>> {
    basis.started_line().into_iter().map(move |line| LineDoc {
        line,
        output,
        keep_output: true,
        shared: 0,
    })
}

/// Replace a session's command documents (and its `session` document) with `lines`, whose
/// shared parts are `shared`.
fn write_session(
    ops: &mut Ops<'_>,
    reader: &Reader,
    sid: &str,
    shared: &[Shared],
    lines: &[LineDoc<'_>],
    changes: &mut Changes,
) -> Result<()> {
    let f = reader.index().f;
    ops.delete_key(term(f.key, &keys::commands(sid)))?;
    if lines.is_empty() {
        changes.latest.remove(sid);
        return Ok(());
    }
    changes.sessions += 1;
    let abandoned = lines.iter().filter(|l| l.line.abandoned).count();
    changes.abandoned += abandoned;
    changes.commands += lines.len() - abandoned;
    changes
        .latest
        .insert(sid.to_string(), (lines.len() - abandoned, abandoned));
    docs::session(f, sid, shared, lines, &mut |d, bytes| ops.add(d, bytes))
}
