//! Reading the index: the documents of a session or kind, and searches over commands.

use super::collect::CountBy;
use super::docs::{Shared, SourceMetaOnly, Stored, WhoKey};
use super::earliest;
use super::schema::{keys, order_key, pair_part, term, Fields, PAIR_SEP};
use super::Index;
use crate::error::{Error, Result};
use crate::model::{CommandRecord, SessionSource, SessionTrail, SourceMeta};
use crate::names::{InstanceNames, Names};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use tantivy::collector::DocSetCollector;
use tantivy::query::{
    BooleanQuery, EmptyQuery, EnableScoring, Occur, Query, QueryParser, RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, TantivyDocument, Value};
use tantivy::{DocAddress, Executor, ReloadPolicy, Searcher, Term};

/// Records loaded at once from at least this many documents are loaded on two threads (see
/// [`Reader::load_records`]).
const LOAD_ON_TWO_THREADS: usize = 8;

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
    /// One session, by its id.
    pub session: Option<String>,
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

/// The committed state of an index, searched: what every read-only command holds. It sees what
/// was committed when it was made or last reloaded.
#[derive(Clone)]
pub struct Reader {
    index: Index,
    reader: tantivy::IndexReader,
}

impl Reader {
    pub(super) fn new(index: &Index) -> Result<Reader> {
        let reader = index
            .inner
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Reader {
            index: index.clone(),
            reader,
        })
    }

    /// The ledger's head as of the last commit: `None` for an index last committed before
    /// heads were recorded, or with nothing committed.
    pub fn ledger_head(&self) -> Result<Option<crate::ledger::Head>> {
        let metas = self.index.inner.load_metas()?;
        Ok(super::schema::committed_head(metas.payload.as_deref()))
    }

    /// See what was committed since.
    pub(super) fn reload(&self) -> Result<()> {
        Ok(self.reader.reload()?)
    }

    pub(super) fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    pub(super) fn index(&self) -> &Index {
        &self.index
    }

    fn f(&self) -> Fields {
        self.index.f
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
                    .get_first(self.f().body)
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
                    term(self.f().kind, kind),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(term(field, value), IndexRecordOption::Basic)),
            ),
        ])
    }

    /// The documents of one kind.
    pub(super) fn of_kind<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Result<Vec<T>> {
        self.bodies(&TermQuery::new(
            term(self.f().kind, kind),
            IndexRecordOption::Basic,
        ))
    }

    /// What CloudTrail said of a session, as the index holds it.
    pub(super) fn trail(&self, sid: &str) -> Result<Option<SessionTrail>> {
        Ok(self
            .bodies(&self.kind_and("trail", self.f().key, &keys::trail(sid)))?
            .into_iter()
            .next())
    }

    /// A session's transcript sources, with their lines.
    pub(super) fn sources_of(&self, sid: &str) -> Result<Vec<SessionSource>> {
        let mut sources: Vec<SessionSource> = self.bodies(&self.sources_query(sid))?;
        sources.retain(|s| s.meta.session_id == sid);
        Ok(sources)
    }

    /// The facts of a session's transcript sources, without their lines.
    pub(super) fn source_metas_of(&self, sid: &str) -> Result<Vec<SourceMeta>> {
        let metas: Vec<SourceMetaOnly> = self.bodies(&self.sources_query(sid))?;
        Ok(metas
            .into_iter()
            .map(|s| s.meta)
            .filter(|m| m.session_id == sid)
            .collect())
    }

    /// Every CloudTrail document, by session.
    pub(super) fn trails(&self) -> Result<BTreeMap<String, SessionTrail>> {
        Ok(self
            .of_kind::<SessionTrail>("trail")?
            .into_iter()
            .map(|t| (t.session_id.clone(), t))
            .collect())
    }

    /// The facts of every transcript source, without their lines.
    pub(super) fn source_metas(&self) -> Result<Vec<SourceMeta>> {
        Ok(self
            .of_kind::<SourceMetaOnly>("source")?
            .into_iter()
            .map(|s| s.meta)
            .collect())
    }

    /// The source documents of a session, by the range of their keys (and of any session
    /// whose id continues with `\0`, which callers drop by the session id in the body).
    fn sources_query(&self, sid: &str) -> RangeQuery {
        RangeQuery::new(
            Bound::Included(term(self.f().key, &keys::sources_from(sid))),
            Bound::Excluded(term(self.f().key, &keys::sources_until(sid))),
        )
    }

    /// What the EC2 API answered about instances' names, as it was recorded (it is not a
    /// source the ledger lists, so `verify` takes it from here).
    pub fn names_from_ec2(&self) -> Result<Vec<InstanceNames>> {
        let list: Vec<InstanceNames> = self.of_kind("instance")?;
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

    /// What the CloudTrail digests in the index vouch for.
    pub fn vouched(&self) -> Result<crate::ingest::Vouched> {
        let mut v = crate::ingest::Vouched::default();
        for d in self.digests()? {
            v.add(&d);
        }
        Ok(v)
    }

    /// The CloudTrail digests in the index, as ingested.
    pub fn digests(&self) -> Result<Vec<crate::ingest::DigestFact>> {
        self.of_kind("digest")
    }

    /// The names of instances, as the index holds them (inventories, tags, lookups).
    pub(super) fn instance_names(&self) -> Result<Names> {
        let list: Vec<InstanceNames> = self.of_kind("instance")?;
        Ok(Names::from_list(list))
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

    /// [`Reader::load_records`] on one thread.
    fn load_part(
        &self,
        searcher: &Searcher,
        addrs: &[DocAddress],
        with_output: bool,
    ) -> Result<Vec<CommandRecord>> {
        let f = self.f();
        let mut sessions: BTreeMap<String, Vec<Shared>> = BTreeMap::new();
        let mut outputs: BTreeMap<(String, Option<String>, String), BTreeMap<u32, String>> =
            BTreeMap::new();
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
                let k = (
                    rec.evidence.source.clone(),
                    rec.evidence.version_id.clone(),
                    sid.clone(),
                );
                if !outputs.contains_key(&k) {
                    let key = keys::source(&k.2, &k.0, k.1.as_deref());
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
        records.sort_by_cached_key(|r| (r.who.session_time(), r.session_id.clone(), r.seq));
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
        let f = self.f();
        let term_query = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(term(field, value), IndexRecordOption::Basic))
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
            let mut parser = QueryParser::for_index(&self.index.inner, fields);
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
        if let Some(sid) = &filter.session {
            // A session's command and abandoned-line documents share its key.
            clauses.push((Occur::Must, term_query(f.key, &keys::commands(sid))));
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

    /// Instances that sessions in the index ran on and that nothing names yet (no inventory, no
    /// tag history, never looked up), each with the region of a session on it when CloudTrail
    /// says: what to ask the EC2 API about.
    pub fn instances_to_name(&self) -> Result<BTreeMap<String, Option<String>>> {
        let names = self.instance_names()?;
        let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
        for t in self.trails()?.values() {
            if let Some(s) = t.start() {
                if let Some(id) = &s.target {
                    let region = out.entry(id.clone()).or_default();
                    if region.is_none() {
                        region.clone_from(&s.region);
                    }
                }
            }
        }
        for m in self.source_metas()? {
            if let Some(id) = m.instance_id {
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
        self.of_kind("source")
    }

    /// The command and abandoned-line records of one session.
    pub fn records_of(&self, session_id: &str) -> Result<Vec<CommandRecord>> {
        self.session_records(session_id, false)
    }

    /// [`Reader::records_of`], with their output when asked.
    pub(super) fn session_records(
        &self,
        session_id: &str,
        with_output: bool,
    ) -> Result<Vec<CommandRecord>> {
        let searcher = self.reader.searcher();
        let mut addrs: Vec<DocAddress> = Vec::new();
        for kind in ["command", "abandoned"] {
            let q = self.kind_and(kind, self.f().key, &keys::commands(session_id));
            addrs.extend(Self::small_set(&searcher, &q)?);
        }
        addrs.sort();
        self.load_records(&searcher, addrs, with_output)
    }
}
