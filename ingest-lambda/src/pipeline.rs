//! From source objects to per-session JSON Lines records, with all state kept in the output
//! bucket, so that any invocation can rebuild any session. See `design.md` beside this file.

use crate::error::Error;
use aws_adapters::ec2::Ec2Names;
use aws_adapters::objects::{ObjectStore, StoreError};
use indexer::derive::{self, Basis};
use indexer::formats::{self, TrailEvent};
use indexer::ingest::{self, Batch, Outcome};
use indexer::kinds::SourceKind;
use indexer::ledger::Ingested;
use indexer::model::{self, Line, SessionSource, SessionTrail, SourceMeta, SourceObject};
use indexer::names::{InstanceNames, Names, TagChange};
use indexer::rules::Rules;
use indexer::stream::{self, LogReader};
use indexer::trail_check::{self, DigestRead, PublicKeys, Signature};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most of an object read whole (CloudTrail files, digests, inventories), compressed or
/// inflated: a gzip CloudTrail file is read as it inflates, record by record, with the caps of
/// `indexer::formats` (`MAX_RECORD_BYTES`, `MAX_KEPT_RECORDS`, `MAX_KEPT_BYTES`); anything else
/// that inflates past this is refused. The function's memory stays within its 512 MB
/// (`scripts/bench-lambda-rss --hostile`).
pub const MAX_WHOLE_BYTES: usize = 64 << 20;

/// What became of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Done {
    /// Read; these sessions were rebuilt.
    Ingested {
        /// `s3-log`, `cloudwatch-stream`, `cloudtrail`, `inventory`.
        kind: SourceKind,
        /// Sessions whose records were rewritten.
        sessions: Vec<String>,
    },
    /// This version of the object was already ingested.
    Duplicate,
    /// Recognised, no audit data.
    Skipped(String),
    /// Bad; a quarantine record was written.
    Quarantined(String),
}

/// Where the records and the state live: `SSM_AUDIT_OUTPUT` (`s3://bucket/prefix`).
#[derive(Clone)]
pub struct Output {
    /// The bucket.
    pub store: Arc<dyn ObjectStore>,
    /// The prefix, without a trailing `/` (may be empty).
    pub prefix: String,
}

impl Output {
    /// The key of `rest` under the prefix.
    pub fn key(&self, rest: &str) -> String {
        if self.prefix.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{rest}", self.prefix)
        }
    }

    /// A JSON state object under the prefix, if it exists.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        rest: &str,
    ) -> Result<Option<T>, Error> {
        let key = self.key(rest);
        match self.store.get(&key).await? {
            Some(b) => Ok(Some(
                serde_json::from_slice(&b).map_err(|e| Error::state(&key, e))?,
            )),
            None => Ok(None),
        }
    }

    /// Write a JSON state object under the prefix.
    async fn put_json<T: Serialize>(&self, rest: &str, value: &T) -> Result<(), Error> {
        let key = self.key(rest);
        let bytes = serde_json::to_vec(value).map_err(|e| Error::state(&key, e))?;
        Ok(self.store.put(&key, bytes).await?)
    }

    /// Every JSON state object under a prefix (under the output prefix), in key order.
    async fn list_json<T: serde::de::DeserializeOwned>(&self, rest: &str) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        for o in self.store.list(&self.key(rest)).await? {
            if let Some(b) = self.store.get(&o.key).await? {
                out.push(serde_json::from_slice(&b).map_err(|e| Error::state(&o.key, e))?);
            }
        }
        Ok(out)
    }
}

/// The state kept for one source of one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SourceState {
    #[serde(flatten)]
    meta: SourceMeta,
    lines_key: String,
    commands: usize,
    abandoned: usize,
}

/// The marker of a source version that was fully ingested.
#[derive(Debug, Serialize, Deserialize)]
struct Seen {
    source: String,
    #[serde(default)]
    version_id: Option<String>,
    kind: Became,
    sessions: Vec<String>,
}

/// What a version of a source became, in its marker.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(untagged)]
enum Became {
    /// Read as this kind of source.
    Read(SourceKind),
    /// Not read.
    Left(Left),
}

/// Why a version of a source was not read.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Left {
    /// It holds no audit data.
    Skipped,
    /// It could not be read (see the quarantine).
    Quarantined,
}

/// Where a session's records are: its `dt=` can change when CloudTrail arrives.
#[derive(Debug, Serialize, Deserialize)]
struct OutputKeys {
    /// The commands: `sessions/dt=…/<session>.jsonl`.
    records: String,
    /// The abandoned lines, when there are any: `abandoned/dt=…/<session>.jsonl`.
    #[serde(default)]
    abandoned: Option<String>,
}

/// A log event of a streamed session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEvent {
    /// Event id.
    pub id: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The message (one JSON object per event when streaming).
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct StreamChunk {
    group: String,
    stream: String,
    events: Vec<StreamEvent>,
}

/// A stable id of one version of one object.
pub fn source_id(url: &str, version: Option<&str>, etag: Option<&str>) -> String {
    // S3 events give the ETag bare, listings and GetObject in quotes: the same version either way.
    let tag = version.or(etag.map(|e| e.trim_matches('"'))).unwrap_or("");
    model::sha256_hex(format!("{url}#{tag}").as_bytes())[..32].to_string()
}

/// The time now, RFC 3339 in UTC.
fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A session id made safe as one key segment.
fn key_safe(sid: &str) -> String {
    sid.chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect::<String>()
        .replace("..", "__")
}

/// Locks by name, for state objects that are read, changed and written back (a session's
/// CloudTrail, an instance's names): sources read at the same time (a backfill) must not lose
/// each other's changes.
#[derive(Default)]
struct KeyLocks(std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl KeyLocks {
    async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.to_string()).or_default().clone()
        };
        m.lock_owned().await
    }
}

/// The engine working against the output bucket.
#[derive(Clone)]
pub struct Pipeline {
    out: Output,
    /// See [`KeyLocks`].
    locks: Arc<KeyLocks>,
    /// With [`Pipeline::deferring`]: the sessions to rebuild once every source is in.
    deferred: Option<Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>>,
    /// The privileged-command rules records name (the built-in ones).
    rules: Arc<Rules>,
    /// Asks EC2 for the names of instances no inventory or CloudTrail record names.
    ec2: Option<Arc<Ec2Names>>,
    /// Asks CloudTrail for the public keys digests are signed with.
    keys: Option<Arc<ApiKeys>>,
}

/// CloudTrail's public keys asked of the CloudTrail API, kept while the function's instance
/// lives: per region, from when they were asked and the keys.
pub struct ApiKeys {
    client: aws_adapters::cloudtrail::Client,
    asked: tokio::sync::Mutex<BTreeMap<String, (String, PublicKeys)>>,
}

impl ApiKeys {
    /// Keys asked through `client`.
    pub fn new(client: aws_adapters::cloudtrail::Client) -> ApiKeys {
        ApiKeys {
            client,
            asked: Default::default(),
        }
    }

    /// The signature of `d`: its region's keys asked for once (again only for an older digest
    /// signed with a key not among them). Keys that cannot be had are a retryable error.
    async fn check(&self, d: &DigestRead) -> Result<Signature, Error> {
        let Some(region) = d.region().filter(|_| d.signature.is_some()) else {
            return Ok(trail_check::check_signature(d, None));
        };
        let start = d.doc.digest_start_time.as_str();
        let mut asked = self.asked.lock().await;
        let again = asked
            .get(region)
            .is_none_or(|(from, keys)| !keys.answer_for(from, d));
        if again {
            let pairs = aws_adapters::cloudtrail::public_keys(&self.client, region, start)
                .await
                .map_err(|why| Error::Keys(format!("{region}: {why}")))?;
            let keys = PublicKeys::from_der(&pairs)
                .map_err(|why| Error::Keys(format!("{region}: {why}")))?;
            asked.insert(region.to_string(), (start.to_string(), keys));
        }
        let (from, keys) = &asked[region];
        Ok(trail_check::check_with(
            d,
            keys,
            &format!("the CloudTrail API lists for {region} from {from}"),
        ))
    }
}

/// A log file a signed digest lists, by its SHA-256: which digest (`state/digests/…`).
#[derive(Debug, Serialize, Deserialize)]
struct Vouch {
    /// The digest's state key (its [`DigestFact`], under the output prefix).
    digest: String,
}

impl Pipeline {
    /// A pipeline writing under `out`.
    pub fn new(out: Output) -> Self {
        Pipeline {
            out,
            locks: Default::default(),
            deferred: None,
            rules: Arc::new(Rules::builtin()),
            ec2: None,
            keys: None,
        }
    }

    /// Check CloudTrail digests' signatures with the public keys the CloudTrail API gives, and
    /// say, in the records of the sessions whose CloudTrail files they list, that their
    /// CloudTrail is validated.
    pub fn with_cloudtrail(mut self, keys: Arc<ApiKeys>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Look up the names of instances through the EC2 API, once per instance.
    pub fn with_ec2(mut self, ec2: Arc<Ec2Names>) -> Self {
        self.ec2 = Some(ec2);
        self
    }

    /// Rebuild no session while sources are read: remember which, for
    /// [`Pipeline::deferred_sessions`] and [`Pipeline::rebuild_now`] once every source is in (a
    /// backfill). The records are then those the last of the Lambda's rebuilds would leave, each
    /// written once.
    pub fn deferring(mut self) -> Self {
        self.deferred = Some(Default::default());
        self
    }

    /// The sessions waiting to be rebuilt (see [`Pipeline::deferring`]), in order.
    pub fn deferred_sessions(&self) -> Vec<String> {
        self.deferred
            .as_ref()
            .map(|d| {
                d.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The output location.
    pub fn output(&self) -> &Output {
        &self.out
    }

    /// Ingest one object version. Permanent failures are quarantined and reported as such.
    pub async fn object(
        &self,
        src: &dyn ObjectStore,
        key: &str,
        version: Option<&str>,
        etag: Option<&str>,
    ) -> Result<Done, Error> {
        let url = src.url(key);
        let id = source_id(&url, version, etag);
        let seen_key = self.out.key(&format!("state/seen/{id}.json"));
        if self.out.store.get(&seen_key).await?.is_some() {
            return Ok(Done::Duplicate);
        }
        let result = self.read_object(src, key, version, &url, &id).await;
        let done = match result {
            Ok(done) => done,
            // Nothing was read: no marker, so that the same bytes uploaded again (the same
            // ETag in a bucket without versions) are read then. The quarantine record says
            // what happened.
            Err(e @ Error::Gone(_)) => {
                let reason = e.to_string();
                self.quarantine(&url, version, &id, &reason).await?;
                return Ok(Done::Quarantined(reason));
            }
            Err(e) if !e.retryable() => {
                let reason = e.to_string();
                self.quarantine(&url, version, &id, &reason).await?;
                Done::Quarantined(reason)
            }
            Err(e) => return Err(e),
        };
        let (kind, sessions) = match &done {
            Done::Ingested { kind, sessions } => (Became::Read(*kind), sessions.clone()),
            Done::Skipped(_) => (Became::Left(Left::Skipped), Vec::new()),
            Done::Quarantined(_) => (Became::Left(Left::Quarantined), Vec::new()),
            Done::Duplicate => return Ok(done),
        };
        let seen = Seen {
            source: url,
            version_id: version.map(String::from),
            kind,
            sessions,
        };
        self.out
            .store
            .put(
                &seen_key,
                serde_json::to_vec(&seen).map_err(|e| Error::state(&seen_key, e))?,
            )
            .await?;
        Ok(done)
    }

    async fn read_object(
        &self,
        src: &dyn ObjectStore,
        key: &str,
        version: Option<&str>,
        url: &str,
        id: &str,
    ) -> Result<Done, Error> {
        let mut chunks = src.open(key, version).await.map_err(|e| match e {
            StoreError::NotFound(m) => Error::Gone(m),
            e => Error::from(e),
        })?;
        let mut head = Vec::new();
        while head.len() < formats::LOG_HEAD_BYTES + 1024 {
            match chunks.next().await? {
                Some(c) => head.extend_from_slice(&c),
                None => break,
            }
        }
        if head.is_empty() {
            return Err(Error::BadSource("the object is empty".into()));
        }
        if stream::is_session_log(&head) {
            if let Some(why) = stream::refusal(&head) {
                return Err(Error::BadSource(why));
            }
            let written = chunks.written();
            return self
                .stream_log(chunks, head, url, version, written, id)
                .await;
        }
        let mut bytes = head;
        while let Some(c) = chunks.next().await? {
            bytes.extend_from_slice(&c);
            if bytes.len() > MAX_WHOLE_BYTES {
                return Err(Error::BadSource(format!(
                    "larger than {} MiB: not read whole (only session logs are read as a stream; no CloudTrail file, digest or inventory is this large)",
                    MAX_WHOLE_BYTES >> 20
                )));
            }
        }
        let object = SourceObject {
            name: url.to_string(),
            version_id: version.map(String::from),
            bytes,
            written: chunks.written(),
            metadata: chunks.metadata(),
        };
        self.read_whole(&object, id).await
    }

    /// Read an object held whole with the reader the command line uses, and merge what it
    /// holds into the state.
    async fn read_whole(&self, object: &SourceObject, id: &str) -> Result<Done, Error> {
        let mut batch = Batch::default();
        // Sources only: a file of command records under the watched prefix proves nothing, and
        // is skipped (`ingest::read_object` never takes records).
        let kind = match ingest::read_object_within(object, MAX_WHOLE_BYTES as u64, &mut batch) {
            // Validation reads the digests beside the CloudTrail files they list, later.
            Outcome::Read {
                kind: SourceKind::CloudtrailDigest,
                ..
            } => return self.digest(object, id, &batch).await,
            Outcome::Read { kind, .. } => kind,
            Outcome::Skipped(why) => return Ok(Done::Skipped(why)),
            Outcome::Failed(e) => return Err(Error::BadSource(e.to_string())),
        };
        let mut sessions = Vec::new();
        for s in &batch.sources {
            sessions.push(self.store_source(&s.meta, &s.lines, id).await?);
        }
        for sid in &sessions {
            self.rebuild(sid).await?;
        }
        // What the object was, for the ledger of an index kept beside the records: listed with
        // every session (CloudTrail) and every instance (names) it speaks of.
        let entry = batch.ledger.last().cloned().map(|e| (id.to_string(), e));
        sessions.extend(self.merge_trail(batch.trail, entry.as_ref()).await?);
        sessions.extend(
            self.merge_names(&batch.instances, &batch.tags, entry.as_ref())
                .await?,
        );
        sessions.sort();
        sessions.dedup();
        Ok(Done::Ingested { kind, sessions })
    }

    /// A CloudTrail digest: when its signature holds, each log file it lists is vouched for
    /// (`state/vouched/<sha256>.json`), and the sessions whose CloudTrail came from one of them
    /// are rebuilt. A digest whose signature fails is refused (quarantined). What it does not
    /// check is `ssm-audit verify`'s: the chain of digests, and files no digest lists.
    async fn digest(&self, object: &SourceObject, id: &str, batch: &Batch) -> Result<Done, Error> {
        let Some(keys) = &self.keys else {
            return Ok(Done::Skipped(
                "a CloudTrail digest file: the function has no CloudTrail client to check its signature with, so the files it lists are not validated".into(),
            ));
        };
        let bytes =
            formats::inflated(&object.bytes).map_err(|e| Error::BadSource(e.to_string()))?;
        let d =
            DigestRead::read(&object.name, &bytes, &object.metadata).map_err(Error::BadSource)?;
        match keys.check(&d).await? {
            Signature::Valid => {}
            Signature::Invalid(why) => {
                return Err(Error::BadSource(format!("CloudTrail digest refused: {why}")))
            }
            Signature::Unchecked(why) => {
                return Ok(Done::Skipped(format!(
                    "a CloudTrail digest whose signature cannot be checked: {why}; the files it lists are not validated"
                )))
            }
        }
        let Some(mut fact) = batch.digests.last().cloned() else {
            return Err(Error::BadSource("not a CloudTrail digest file".into()));
        };
        fact.signed = true;
        let fact_key = format!("state/digests/{id}.json");
        self.out.put_json(&fact_key, &fact).await?;
        let mut sessions = Vec::new();
        for (_, sha) in &fact.listed {
            let sha = sha.to_ascii_lowercase();
            self.out
                .put_json(
                    &format!("state/vouched/{}.json", key_safe(&sha)),
                    &Vouch {
                        digest: fact_key.clone(),
                    },
                )
                .await?;
            // Written before this listing by whoever merged CloudTrail from that file: either
            // that rebuild saw the mark above, or this listing sees its session.
            let from: Vec<String> = self
                .out
                .list_json(&format!("state/trail-files/{}/", key_safe(&sha)))
                .await?;
            sessions.extend(from);
        }
        sessions.sort();
        sessions.dedup();
        let entry = batch.ledger.last().cloned().map(|e| (id.to_string(), e));
        let mut rebuilt = Vec::new();
        for sid in sessions {
            self.rests_on(&format!("session/{}", key_safe(&sid)), entry.as_ref())
                .await?;
            if self.rebuild(&sid).await? {
                rebuilt.push(sid);
            }
        }
        Ok(Done::Ingested {
            kind: SourceKind::CloudtrailDigest,
            sessions: rebuilt,
        })
    }

    /// What signed digests vouch for among the files `trail` came from.
    async fn vouched(
        &self,
        trail: Option<&SessionTrail>,
    ) -> Result<BTreeMap<String, Vouch>, Error> {
        let mut files: Vec<String> = trail
            .into_iter()
            .flat_map(|t| &t.events)
            .filter_map(|e| e.file_sha256.as_deref().map(str::to_ascii_lowercase))
            .collect();
        files.sort();
        files.dedup();
        let mut out = BTreeMap::new();
        for sha in files {
            let v: Option<Vouch> = self
                .out
                .get_json(&format!("state/vouched/{}.json", key_safe(&sha)))
                .await?;
            if let Some(v) = v {
                out.insert(sha, v);
            }
        }
        Ok(out)
    }

    /// Replay a session log as it streams in, writing its lines as they complete.
    async fn stream_log(
        &self,
        mut chunks: Box<dyn aws_adapters::objects::ChunkStream>,
        head: Vec<u8>,
        url: &str,
        version: Option<&str>,
        written: Option<String>,
        id: &str,
    ) -> Result<Done, Error> {
        let mut reader = LogReader::new(url);
        let mut writer: Option<(Box<dyn aws_adapters::objects::ObjectWriter>, String)> = None;
        let mut counts = (0usize, 0usize);
        let mut pending = reader.push(&head);
        loop {
            if !pending.is_empty() {
                let sid = reader
                    .meta()
                    .map(|m| m.session_id.clone())
                    .unwrap_or_default();
                self.write_lines(&mut writer, &sid, id, &pending, &mut counts)
                    .await?;
            }
            match chunks.next().await? {
                Some(c) => pending = reader.push(&c),
                None => break,
            }
        }
        let (summary, last) = reader.finish();
        let sid = summary.meta.session_id.clone();
        self.write_lines(&mut writer, &sid, id, &last, &mut counts)
            .await?;
        let lines_key = match writer {
            Some((w, key)) => {
                w.finish().await?;
                key
            }
            None => {
                let key = self.lines_key(&sid, id);
                self.out.store.put(&key, Vec::new()).await?;
                key
            }
        };
        let meta = SourceMeta::of_log(
            url,
            version.map(String::from),
            written,
            summary.sha256.clone(),
            &summary,
        );
        self.put_source_state(&meta, lines_key, counts, id).await?;
        self.rebuild(&sid).await?;
        Ok(Done::Ingested {
            kind: SourceKind::S3Log,
            sessions: vec![sid],
        })
    }

    fn lines_key(&self, sid: &str, id: &str) -> String {
        self.out
            .key(&format!("state/lines/{}/{id}.jsonl", key_safe(sid)))
    }

    async fn write_lines(
        &self,
        writer: &mut Option<(Box<dyn aws_adapters::objects::ObjectWriter>, String)>,
        sid: &str,
        id: &str,
        lines: &[Line],
        counts: &mut (usize, usize),
    ) -> Result<(), Error> {
        if lines.is_empty() {
            return Ok(());
        }
        if writer.is_none() {
            let key = self.lines_key(sid, id);
            *writer = Some((self.out.store.create(&key).await?, key));
        }
        let (w, _) = writer.as_mut().expect("created above");
        let mut buf = Vec::new();
        for l in lines {
            if l.abandoned {
                counts.1 += 1;
            } else {
                counts.0 += 1;
            }
            serde_json::to_writer(&mut buf, l).map_err(|e| Error::state(sid, e))?;
            buf.push(b'\n');
        }
        w.write(&buf).await?;
        Ok(())
    }

    /// Store a source whose lines are all in memory (streams, small transcripts).
    async fn store_source(
        &self,
        meta: &SourceMeta,
        lines: &[Line],
        id: &str,
    ) -> Result<String, Error> {
        let mut writer = None;
        let mut counts = (0, 0);
        self.write_lines(&mut writer, &meta.session_id, id, lines, &mut counts)
            .await?;
        let key = match writer {
            Some((w, key)) => {
                w.finish().await?;
                key
            }
            None => {
                let key = self.lines_key(&meta.session_id, id);
                self.out.store.put(&key, Vec::new()).await?;
                key
            }
        };
        self.put_source_state(meta, key, counts, id).await?;
        Ok(meta.session_id.clone())
    }

    async fn put_source_state(
        &self,
        meta: &SourceMeta,
        lines_key: String,
        counts: (usize, usize),
        id: &str,
    ) -> Result<(), Error> {
        let sid = key_safe(&meta.session_id);
        if let Some(i) = &meta.instance_id {
            self.mark_instance(i, &meta.session_id).await?;
        }
        let state = SourceState {
            meta: meta.clone(),
            lines_key,
            commands: counts.0,
            abandoned: counts.1,
        };
        self.out
            .store
            .put(
                &self.out.key(&format!("state/sources/{sid}/{id}.json")),
                serde_json::to_vec(&state).map_err(|e| Error::state(&sid, e))?,
            )
            .await?;
        Ok(())
    }

    /// Remember that a session ran on an instance (a new Name tag rebuilds it).
    async fn mark_instance(&self, instance: &str, sid: &str) -> Result<(), Error> {
        let marker = format!("state/by-instance/{}/{}", key_safe(instance), key_safe(sid));
        Ok(self
            .out
            .store
            .put(&self.out.key(&marker), Vec::new())
            .await?)
    }

    /// Remember that `owner` (`session/<id>` or `instance/<id>`) rests on the object `entry`
    /// (its source id and ledger entry): an index's ledger lists it with the owner's records.
    async fn rests_on(&self, owner: &str, entry: Option<&(String, Ingested)>) -> Result<(), Error> {
        let Some((id, e)) = entry else {
            return Ok(());
        };
        self.out
            .put_json(&format!("state/rests-on/{owner}/{id}.json"), e)
            .await
    }

    async fn merge_trail(
        &self,
        events: Vec<TrailEvent>,
        entry: Option<&(String, Ingested)>,
    ) -> Result<Vec<String>, Error> {
        let mut by: BTreeMap<String, Vec<TrailEvent>> = BTreeMap::new();
        for e in events {
            by.entry(e.session_id.clone()).or_default().push(e);
        }
        let mut touched = Vec::new();
        for (sid, events) in by {
            let _held = self.locks.lock(&format!("trail/{sid}")).await;
            let mut t = self.trail(&sid).await?.unwrap_or_else(|| SessionTrail {
                session_id: sid.clone(),
                events: Vec::new(),
            });
            let mut files: Vec<String> = events
                .iter()
                .filter_map(|e| e.file_sha256.as_deref().map(str::to_ascii_lowercase))
                .collect();
            if !t.merge(events) {
                continue;
            }
            // Which sessions each CloudTrail file speaks of, for a digest listing it later;
            // written before the state, so that a retry after a failure writes them again.
            files.sort();
            files.dedup();
            for sha in files {
                self.out
                    .put_json(
                        &format!(
                            "state/trail-files/{}/{}.json",
                            key_safe(&sha),
                            key_safe(&sid)
                        ),
                        &sid,
                    )
                    .await?;
            }
            self.rests_on(&format!("session/{}", key_safe(&sid)), entry)
                .await?;
            self.out
                .put_json(&format!("state/trail/{}.json", key_safe(&sid)), &t)
                .await?;
            if let Some(target) = t.start().and_then(|s| s.target.as_ref()) {
                self.mark_instance(target, &sid).await?;
            }
            if self.rebuild(&sid).await? {
                touched.push(sid);
            }
        }
        Ok(touched)
    }

    /// Take observed names and tag changes into the instances' state, and rebuild the sessions
    /// of every instance whose facts changed.
    async fn merge_names(
        &self,
        observed: &[InstanceNames],
        tags: &[TagChange],
        entry: Option<&(String, Ingested)>,
    ) -> Result<Vec<String>, Error> {
        let mut ids: Vec<&str> = observed
            .iter()
            .map(|o| o.instance_id.as_str())
            .chain(tags.iter().map(|t| t.instance_id.as_str()))
            .collect();
        ids.sort();
        ids.dedup();
        // In key order, so that two merges never wait for each other; let go before the
        // sessions are rebuilt (a rebuild reads the names under the same locks).
        let mut held = Vec::new();
        for id in &ids {
            held.push(self.locks.lock(&format!("instance/{id}")).await);
        }
        let mut known = Vec::new();
        for id in ids {
            let rest = format!("state/instances/{}.json", key_safe(id));
            known.extend(self.out.get_json::<InstanceNames>(&rest).await?);
        }
        let mut names = Names::from_list(known);
        let changed = names.apply(observed, tags);
        for id in &changed {
            if let Some(i) = names.get(id) {
                self.rests_on(&format!("instance/{}", key_safe(id)), entry)
                    .await?;
                let rest = format!("state/instances/{}.json", key_safe(id));
                self.out.put_json(&rest, i).await?;
            }
        }
        drop(held);
        let mut touched = Vec::new();
        for id in changed {
            let prefix = self
                .out
                .key(&format!("state/by-instance/{}/", key_safe(&id)));
            for o in self.out.store.list(&prefix).await? {
                let sid = o.key.rsplit('/').next().unwrap_or_default().to_string();
                if self.rebuild(&sid).await? {
                    touched.push(sid);
                }
            }
        }
        touched.sort();
        touched.dedup();
        Ok(touched)
    }

    /// Store a delivery of streamed events and rebuild the session's streamed transcript.
    pub async fn log_events(
        &self,
        group: &str,
        stream: &str,
        events: Vec<StreamEvent>,
    ) -> Result<Done, Error> {
        if events.is_empty() {
            return Ok(Done::Skipped("no log events".into()));
        }
        let first = events
            .iter()
            .map(|e| e.id.as_str())
            .min()
            .unwrap_or("0")
            .to_string();
        // A delivered event as an event of the stream, the shape every reader takes.
        let of_stream = |e: StreamEvent| formats::StreamEvent {
            log_stream_name: Some(stream.to_string()),
            timestamp: e.timestamp,
            message: e.message,
            event_id: Some(e.id),
        };
        // CloudTrail kept in a log group (a trail's delivery, EventBridge events): each
        // delivery is read alone, as a CloudTrail file is; nothing of it is a session's stream.
        if events.iter().any(|e| formats::is_trail_message(&e.message)) {
            let events: Vec<formats::StreamEvent> = events.into_iter().map(of_stream).collect();
            let url = format!("cloudwatch://{group}/{stream}#{}", key_safe(&first));
            return self
                .event_object(&url, formats::stream_document(&events).0)
                .await;
        }
        let sid = key_safe(stream);
        let chunk = StreamChunk {
            group: group.to_string(),
            stream: stream.to_string(),
            events,
        };
        self.out
            .put_json(
                &format!("state/stream/{sid}/{}.json", key_safe(&first)),
                &chunk,
            )
            .await?;
        // Every delivery so far, as the stream's canonical document: the one a
        // `filter-log-events` file or a `cloudwatch://` read of the same events gives.
        let chunks: Vec<StreamChunk> = self.out.list_json(&format!("state/stream/{sid}/")).await?;
        let events: Vec<formats::StreamEvent> = chunks
            .into_iter()
            .flat_map(|c| c.events)
            .map(of_stream)
            .collect();
        let url = format!("cloudwatch://{group}/{stream}");
        self.event_object(&url, formats::stream_document(&events).0)
            .await
    }

    /// Read what an invocation delivered itself (no object holds it) as a source named `url`;
    /// permanent failures are quarantined as `object` quarantines them.
    pub async fn event_object(&self, url: &str, bytes: Vec<u8>) -> Result<Done, Error> {
        let object = SourceObject {
            name: url.to_string(),
            version_id: None,
            bytes,
            written: None,
            metadata: Default::default(),
        };
        let id = source_id(url, None, None);
        match self.read_whole(&object, &id).await {
            Err(e) if !e.retryable() => {
                let why = e.to_string();
                self.quarantine(url, None, &id, &why).await?;
                Ok(Done::Quarantined(why))
            }
            other => other,
        }
    }

    /// The CloudTrail facts of a session.
    async fn trail(&self, sid: &str) -> Result<Option<SessionTrail>, Error> {
        self.out
            .get_json(&format!("state/trail/{}.json", key_safe(sid)))
            .await
    }

    /// What is known of an instance's name; the EC2 API is asked (in `region`, the session's)
    /// when nothing names the instance and it was never asked. A failed look-up leaves the name
    /// empty, says why in the log and is tried again with the session's next event.
    async fn names(&self, instance: Option<&str>, region: Option<&str>) -> Result<Names, Error> {
        let Some(id) = instance else {
            return Ok(Names::default());
        };
        let rest = format!("state/instances/{}.json", key_safe(id));
        let _held = self.locks.lock(&format!("instance/{id}")).await;
        let mut known: Option<InstanceNames> = self.out.get_json(&rest).await?;
        if let (Some(ec2), true) = (
            &self.ec2,
            known.as_ref().is_none_or(|k| k.wants_lookup(region)),
        ) {
            match ec2.names(region, &[id.to_string()]).await {
                Ok(found) => {
                    let mut k = known.unwrap_or_else(|| InstanceNames::new(id));
                    k.looked_up(found.get(id).map(String::as_str), region, now());
                    self.out.put_json(&rest, &k).await?;
                    known = Some(k);
                }
                Err(reason) => {
                    tracing::warn!(instance = id, reason, "instance name not looked up");
                }
            }
        }
        Ok(Names::from_list(known))
    }

    /// Rewrite a session's records from its state. False when it has no transcript yet. When
    /// deferring, the session is only remembered (and true).
    pub async fn rebuild(&self, session_id: &str) -> Result<bool, Error> {
        if let Some(d) = &self.deferred {
            d.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(session_id.to_string());
            return Ok(true);
        }
        self.rebuild_now(session_id).await
    }

    /// Rewrite a session's records from its state now, deferring or not. False when it has
    /// no records to write (no transcript, and no command CloudTrail names).
    pub async fn rebuild_now(&self, session_id: &str) -> Result<bool, Error> {
        let sid = key_safe(session_id);
        let sources: Vec<SourceState> =
            self.out.list_json(&format!("state/sources/{sid}/")).await?;
        let trail = self.trail(session_id).await?;
        let Some(first) = derive::choose(sources.iter().map(|s| &s.meta)) else {
            return self.rebuild_started(session_id, trail.as_ref()).await;
        };
        let start = trail.as_ref().and_then(|t| t.start());
        // The instance's names are read (and looked up) before the basis is made: the name at
        // the session's time is part of it.
        let instance = start
            .and_then(|s| s.target.clone())
            .or_else(|| sources[first].meta.instance_id.clone());
        let region = start.and_then(|s| s.region.as_deref());
        let names = self.names(instance.as_deref(), region).await?;
        let mut vouched = indexer::derive::Vouched::default();
        for sha in self.vouched(trail.as_ref()).await?.keys() {
            vouched.insert(sha);
        }
        // Every transcript of the session: the basis says where they disagree.
        let Some((chosen, basis)) = Basis::of(
            session_id,
            sources.iter().map(|s| &s.meta),
            trail.as_ref(),
            &names,
            &vouched,
        ) else {
            return Ok(false);
        };
        let best = &sources[chosen];
        let day = basis.who.session_day().unwrap_or_else(|| "unknown".into());
        let out_key = self.out.key(&format!("sessions/dt={day}/{sid}.jsonl"));
        let abandoned_key = self.out.key(&format!("abandoned/dt={day}/{sid}.jsonl"));
        let mut w = self.out.store.create(&out_key).await?;
        // Made when the first abandoned line comes: most sessions have none.
        let mut abandoned: Option<Box<dyn aws_adapters::objects::ObjectWriter>> = None;
        // The command the session was started with, when CloudTrail names one, comes first.
        if let Some(l) = basis.started_line() {
            let mut record = basis.record(session_id, l);
            derive::apply_rules(&mut record, &self.rules);
            let mut buf = serde_json::to_vec(&record).map_err(|e| Error::state(&out_key, e))?;
            buf.push(b'\n');
            w.write(&buf).await?;
        }
        let mut lines = self.out.store.open(&best.lines_key, None).await?;
        let mut rest = Vec::new();
        while let Some(chunk) = lines.next().await? {
            rest.extend_from_slice(&chunk);
            let Some(end) = rest.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let (mut ran, mut typed) = (Vec::new(), Vec::new());
            for l in rest[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let line: Line =
                    serde_json::from_slice(l).map_err(|e| Error::state(&best.lines_key, e))?;
                let mut record = basis.record(session_id, (&line).into());
                derive::apply_rules(&mut record, &self.rules);
                let buf = if record.abandoned {
                    &mut typed
                } else {
                    &mut ran
                };
                serde_json::to_writer(&mut *buf, &record).map_err(|e| Error::state(&out_key, e))?;
                buf.push(b'\n');
            }
            rest.drain(..=end);
            w.write(&ran).await?;
            if !typed.is_empty() {
                if abandoned.is_none() {
                    abandoned = Some(self.out.store.create(&abandoned_key).await?);
                }
                if let Some(a) = &mut abandoned {
                    a.write(&typed).await?;
                }
            }
        }
        w.finish().await?;
        let keys = OutputKeys {
            records: out_key,
            abandoned: match abandoned {
                Some(a) => {
                    a.finish().await?;
                    Some(abandoned_key)
                }
                None => None,
            },
        };
        self.point_output(&sid, keys).await?;
        Ok(true)
    }

    /// Point a session's output at `keys`, and delete the objects it pointed at before that
    /// `keys` no longer names.
    async fn point_output(&self, sid: &str, keys: OutputKeys) -> Result<(), Error> {
        let pointer = format!("state/output/{sid}.json");
        if let Some(old) = self.out.get_json::<OutputKeys>(&pointer).await? {
            if old.records != keys.records {
                self.out.store.delete(&old.records).await?;
            }
            if let Some(a) = old.abandoned.filter(|a| Some(a) != keys.abandoned.as_ref()) {
                self.out.store.delete(&a).await?;
            }
        }
        self.out.put_json(&pointer, &keys).await
    }

    /// A session no transcript was read for: when CloudTrail names the command it was started
    /// with, that command is its one record ([`Basis::of_trail`]). False otherwise.
    async fn rebuild_started(
        &self,
        session_id: &str,
        trail: Option<&SessionTrail>,
    ) -> Result<bool, Error> {
        let Some(start) = trail.and_then(|t| t.start()) else {
            return Ok(false);
        };
        if start.command.is_none() {
            return Ok(false);
        }
        let names = self
            .names(start.target.as_deref(), start.region.as_deref())
            .await?;
        let mut vouched = indexer::derive::Vouched::default();
        for sha in self.vouched(trail).await?.keys() {
            vouched.insert(sha);
        }
        let Some(basis) = trail.and_then(|t| Basis::of_trail(session_id, t, &names, &vouched))
        else {
            return Ok(false);
        };
        let Some(line) = basis.started_line() else {
            return Ok(false);
        };
        let sid = key_safe(session_id);
        let day = basis.who.session_day().unwrap_or_else(|| "unknown".into());
        let out_key = self.out.key(&format!("sessions/dt={day}/{sid}.jsonl"));
        let mut record = basis.record(session_id, line);
        derive::apply_rules(&mut record, &self.rules);
        let mut buf = serde_json::to_vec(&record).map_err(|e| Error::state(&out_key, e))?;
        buf.push(b'\n');
        let mut w = self.out.store.create(&out_key).await?;
        w.write(&buf).await?;
        w.finish().await?;
        let keys = OutputKeys {
            records: out_key,
            abandoned: None,
        };
        self.point_output(&sid, keys).await?;
        Ok(true)
    }

    /// Write the quarantine record of an event that names no readable source.
    pub async fn quarantine_event(
        &self,
        event: &serde_json::Value,
        reason: &str,
    ) -> Result<(), Error> {
        let id = model::sha256_hex(event.to_string().as_bytes())[..32].to_string();
        tracing::warn!(reason, "quarantined an event");
        let record =
            serde_json::json!({"source": "event", "event": event, "reason": reason, "time": now()});
        self.out
            .put_json(&format!("quarantine/events/{id}.json"), &record)
            .await
    }

    /// Write the quarantine record of a bad source.
    async fn quarantine(
        &self,
        url: &str,
        version: Option<&str>,
        id: &str,
        reason: &str,
    ) -> Result<(), Error> {
        tracing::warn!(source = url, reason, "quarantined");
        let record = serde_json::json!({"source": url, "version_id": version, "reason": reason, "time": now()});
        self.out
            .put_json(&format!("quarantine/{id}.json"), &record)
            .await
    }

    /// Every transcript of each session with its CloudTrail facts and instance names, for
    /// committing into a tantivy index.
    pub async fn batch_for(&self, sessions: &[String]) -> Result<indexer::store::Batch, Error> {
        let mut batch = indexer::store::Batch::default();
        let mut digests = std::collections::BTreeSet::new();
        let mut listed = std::collections::BTreeSet::new();
        for session_id in sessions {
            let sid = key_safe(session_id);
            let states: Vec<SourceState> =
                self.out.list_json(&format!("state/sources/{sid}/")).await?;
            let trail = self.trail(session_id).await?;
            let mut instances: Vec<String> = states
                .iter()
                .filter_map(|s| s.meta.instance_id.clone())
                .collect();
            instances.extend(
                trail
                    .as_ref()
                    .and_then(|t| t.start())
                    .and_then(|s| s.target.clone()),
            );
            // Every object its records rest on besides its transcripts: CloudTrail files,
            // digests, inventories, each listed once.
            let mut rests_on: Vec<Ingested> = self
                .out
                .list_json(&format!("state/rests-on/session/{sid}/"))
                .await?;
            for i in &instances {
                rests_on.extend(
                    self.out
                        .list_json::<Ingested>(&format!("state/rests-on/instance/{}/", key_safe(i)))
                        .await?,
                );
            }
            for e in rests_on {
                if listed.insert((e.source.clone(), e.version_id.clone())) {
                    batch.ledger.push(e);
                }
            }
            for i in instances {
                let known: Option<InstanceNames> = self
                    .out
                    .get_json(&format!("state/instances/{}.json", key_safe(&i)))
                    .await?;
                if let Some(mut known) = known {
                    batch.tags.append(&mut known.history);
                    batch.instances.push(known);
                }
            }
            for st in states {
                // The transcript objects its records come from.
                if listed.insert((st.meta.source.clone(), st.meta.version_id.clone())) {
                    batch.ledger.push(Ingested {
                        source: st.meta.source.clone(),
                        version_id: st.meta.version_id.clone(),
                        sha256: st.meta.object_digest().to_string(),
                        size: st.meta.size,
                        kind: st.meta.kind,
                    });
                }
                let raw = self.out.store.get(&st.lines_key).await?.unwrap_or_default();
                let lines = raw
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(serde_json::from_slice::<Line>)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Error::state(&st.lines_key, e))?;
                batch.sources.push(SessionSource {
                    meta: st.meta,
                    lines,
                });
            }
            // The digests that vouch for its CloudTrail files, whole: the index keeps each
            // digest once, with everything it lists.
            for v in self.vouched(trail.as_ref()).await?.into_values() {
                if digests.insert(v.digest.clone()) {
                    let fact: Option<indexer::ingest::DigestFact> =
                        self.out.get_json(&v.digest).await?;
                    batch.digests.extend(fact);
                }
            }
            batch.trail.extend(trail.into_iter().flat_map(|t| t.events));
        }
        Ok(batch)
    }
}
