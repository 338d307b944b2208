//! From source objects to per-session JSON Lines records, with all state kept in the output
//! bucket, so that any invocation can rebuild any session. See `design.md` beside this file.

use crate::objects::{ObjectStore, StoreError};
use indexer::formats::{self, Instance, Parsed, TrailEvent};
use indexer::model::{self, Line, SessionSource, SessionTrail, SourceMeta, SourceObject};
use indexer::stream::{self, LogReader};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a source failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Worth retrying: the invocation fails and Lambda delivers the event again.
    #[error("transient: {0}")]
    Transient(String),
    /// The object itself is bad: it is quarantined, the rest of the batch goes on.
    #[error("{0}")]
    Permanent(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Transient(e.to_string())
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Failure::Transient(format!("state: {e}"))
    }
}

/// What became of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Done {
    /// Read; these sessions were rebuilt.
    Ingested {
        /// `s3-log`, `cloudwatch-stream`, `cloudtrail`, `inventory`.
        kind: String,
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
    ) -> Result<Option<T>, Failure> {
        match self.store.get(&self.key(rest)).await? {
            Some(b) => Ok(Some(serde_json::from_slice(&b)?)),
            None => Ok(None),
        }
    }

    /// Write a JSON state object under the prefix.
    async fn put_json<T: Serialize>(&self, rest: &str, value: &T) -> Result<(), Failure> {
        Ok(self
            .store
            .put(&self.key(rest), serde_json::to_vec(value)?)
            .await?)
    }

    /// Every JSON state object under a prefix (under the output prefix), in key order.
    async fn list_json<T: serde::de::DeserializeOwned>(
        &self,
        rest: &str,
    ) -> Result<Vec<T>, Failure> {
        let mut out = Vec::new();
        for o in self.store.list(&self.key(rest)).await? {
            if let Some(b) = self.store.get(&o.key).await? {
                out.push(serde_json::from_slice(&b)?);
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
    kind: String,
    sessions: Vec<String>,
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
    let tag = version.or(etag).unwrap_or("");
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

/// The engine working against the output bucket.
#[derive(Clone)]
pub struct Pipeline {
    out: Output,
}

impl Pipeline {
    /// A pipeline writing under `out`.
    pub fn new(out: Output) -> Self {
        Pipeline { out }
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
    ) -> Result<Done, Failure> {
        let url = src.url(key);
        let id = source_id(&url, version, etag);
        let seen_key = self.out.key(&format!("state/seen/{id}.json"));
        if self.out.store.get(&seen_key).await?.is_some() {
            return Ok(Done::Duplicate);
        }
        let result = self.read_object(src, key, version, &url, &id).await;
        let done = match result {
            Ok(done) => done,
            Err(Failure::Permanent(reason)) => {
                self.quarantine(&url, version, &id, &reason).await?;
                Done::Quarantined(reason)
            }
            Err(e) => return Err(e),
        };
        let (kind, sessions) = match &done {
            Done::Ingested { kind, sessions } => (kind.clone(), sessions.clone()),
            Done::Skipped(_) => ("skipped".into(), Vec::new()),
            Done::Quarantined(_) => ("quarantined".into(), Vec::new()),
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
            .put(&seen_key, serde_json::to_vec(&seen)?)
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
    ) -> Result<Done, Failure> {
        let mut chunks = src.open(key, version).await.map_err(|e| match e {
            StoreError::NotFound(m) => {
                Failure::Permanent(format!("{m} (deleted before it could be read)"))
            }
            e => Failure::from(e),
        })?;
        let mut head = Vec::new();
        while head.len() < formats::LOG_HEAD_BYTES + 1024 {
            match chunks.next().await? {
                Some(c) => head.extend_from_slice(&c),
                None => break,
            }
        }
        if head.is_empty() {
            return Err(Failure::Permanent("the object is empty".into()));
        }
        if stream::is_session_log(&head) {
            return self.stream_log(chunks, head, url, version, id).await;
        }
        let mut bytes = head;
        while let Some(c) = chunks.next().await? {
            bytes.extend_from_slice(&c);
        }
        let object = SourceObject {
            name: url.to_string(),
            version_id: version.map(String::from),
            bytes,
        };
        match formats::parse(url, &object.bytes) {
            Err(e) => Err(Failure::Permanent(e.to_string())),
            Ok(Parsed::Skipped(why)) => Ok(Done::Skipped(why)),
            Ok(Parsed::Transcripts(ts)) => {
                let sha = object.sha256();
                let mut sessions = Vec::new();
                for t in &ts {
                    let s = SessionSource::from_transcript(t, &object, &sha);
                    sessions.push(self.store_source(&s.meta, &s.lines, id).await?);
                }
                for sid in &sessions {
                    self.rebuild(sid).await?;
                }
                Ok(Done::Ingested {
                    kind: ts
                        .first()
                        .map_or("cloudwatch-stream", |t| t.kind)
                        .to_string(),
                    sessions,
                })
            }
            Ok(Parsed::Trail { events, .. }) => {
                let sessions = self.merge_trail(events).await?;
                Ok(Done::Ingested {
                    kind: "cloudtrail".into(),
                    sessions,
                })
            }
            Ok(Parsed::Inventory(list)) => {
                let sessions = self.merge_inventory(list).await?;
                Ok(Done::Ingested {
                    kind: "inventory".into(),
                    sessions,
                })
            }
        }
    }

    /// Replay a session log as it streams in, writing its lines as they complete.
    async fn stream_log(
        &self,
        mut chunks: Box<dyn crate::objects::ChunkStream>,
        head: Vec<u8>,
        url: &str,
        version: Option<&str>,
        id: &str,
    ) -> Result<Done, Failure> {
        let mut reader = LogReader::new(url);
        let mut writer: Option<(Box<dyn crate::objects::ObjectWriter>, String)> = None;
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
        let meta = SourceMeta {
            session_id: sid.clone(),
            session_id_from: summary.meta.session_id_from.to_string(),
            kind: "s3-log".into(),
            source: url.to_string(),
            version_id: version.map(String::from),
            sha256: summary.sha256,
            size: summary.size,
            instance_id: summary.meta.instance_id.clone(),
            principal_arn: None,
            first_time: None,
            last_time: summary.last_time,
        };
        self.put_source_state(&meta, lines_key, counts, id).await?;
        self.rebuild(&sid).await?;
        Ok(Done::Ingested {
            kind: "s3-log".into(),
            sessions: vec![sid],
        })
    }

    fn lines_key(&self, sid: &str, id: &str) -> String {
        self.out
            .key(&format!("state/lines/{}/{id}.jsonl", key_safe(sid)))
    }

    async fn write_lines(
        &self,
        writer: &mut Option<(Box<dyn crate::objects::ObjectWriter>, String)>,
        sid: &str,
        id: &str,
        lines: &[Line],
        counts: &mut (usize, usize),
    ) -> Result<(), Failure> {
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
            serde_json::to_writer(&mut buf, l)?;
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
    ) -> Result<String, Failure> {
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
    ) -> Result<(), Failure> {
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
                serde_json::to_vec(&state)?,
            )
            .await?;
        Ok(())
    }

    /// Remember that a session ran on an instance (a new Name tag rebuilds it).
    async fn mark_instance(&self, instance: &str, sid: &str) -> Result<(), Failure> {
        let marker = format!("state/by-instance/{}/{}", key_safe(instance), key_safe(sid));
        Ok(self
            .out
            .store
            .put(&self.out.key(&marker), Vec::new())
            .await?)
    }

    async fn merge_trail(&self, events: Vec<TrailEvent>) -> Result<Vec<String>, Failure> {
        let mut by: BTreeMap<String, Vec<TrailEvent>> = BTreeMap::new();
        for e in events {
            by.entry(e.session_id.clone()).or_default().push(e);
        }
        let mut touched = Vec::new();
        for (sid, events) in by {
            let mut t = self.trail(&sid).await?.unwrap_or_else(|| SessionTrail {
                session_id: sid.clone(),
                events: Vec::new(),
            });
            if !t.merge(events) {
                continue;
            }
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

    async fn merge_inventory(&self, list: Vec<Instance>) -> Result<Vec<String>, Failure> {
        let mut touched = Vec::new();
        for i in list {
            let rest = format!("state/instances/{}.json", key_safe(&i.instance_id));
            if self.out.get_json::<Instance>(&rest).await?.as_ref() == Some(&i) {
                continue;
            }
            self.out.put_json(&rest, &i).await?;
            let prefix = self
                .out
                .key(&format!("state/by-instance/{}/", key_safe(&i.instance_id)));
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
    ) -> Result<Done, Failure> {
        if events.is_empty() {
            return Ok(Done::Skipped("no log events".into()));
        }
        let first = events
            .iter()
            .map(|e| e.id.as_str())
            .min()
            .unwrap_or("0")
            .to_string();
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
        // Every delivery so far, in time order, as `filter-log-events` would print them.
        let mut all: BTreeMap<(i64, String), StreamEvent> = BTreeMap::new();
        let chunks: Vec<StreamChunk> = self.out.list_json(&format!("state/stream/{sid}/")).await?;
        for e in chunks.into_iter().flat_map(|c| c.events) {
            all.insert((e.timestamp, e.id.clone()), e);
        }
        let events: Vec<serde_json::Value> = all
            .into_values()
            .map(|e| {
                serde_json::json!({"logStreamName": stream, "timestamp": e.timestamp, "message": e.message, "eventId": e.id})
            })
            .collect();
        let bytes = serde_json::to_vec(&serde_json::json!({ "events": events }))?;
        let url = format!("cloudwatch://{group}/{stream}");
        let object = SourceObject {
            name: url.clone(),
            version_id: None,
            bytes,
        };
        let id = source_id(&url, None, None);
        match formats::parse(&url, &object.bytes) {
            Ok(Parsed::Transcripts(ts)) => {
                let sha = object.sha256();
                let mut sessions = Vec::new();
                for t in &ts {
                    let s = SessionSource::from_transcript(t, &object, &sha);
                    let sid = self.store_source(&s.meta, &s.lines, &id).await?;
                    self.rebuild(&sid).await?;
                    sessions.push(sid);
                }
                Ok(Done::Ingested {
                    kind: "cloudwatch-stream".into(),
                    sessions,
                })
            }
            Ok(Parsed::Skipped(why)) => Ok(Done::Skipped(why)),
            Ok(_) => Ok(Done::Skipped("not a session stream".into())),
            Err(e) => {
                self.quarantine(&url, None, &id, &e.to_string()).await?;
                Ok(Done::Quarantined(e.to_string()))
            }
        }
    }

    /// The CloudTrail facts of a session.
    async fn trail(&self, sid: &str) -> Result<Option<SessionTrail>, Failure> {
        self.out
            .get_json(&format!("state/trail/{}.json", key_safe(sid)))
            .await
    }

    /// The Name tag of an instance, as a name map for attribution.
    async fn names(&self, instance: Option<&str>) -> Result<BTreeMap<String, String>, Failure> {
        let Some(i) = instance else {
            return Ok(BTreeMap::new());
        };
        let inst: Option<Instance> = self
            .out
            .get_json(&format!("state/instances/{}.json", key_safe(i)))
            .await?;
        Ok(model::names_of(&inst.into_iter().collect::<Vec<_>>()))
    }

    /// Rewrite a session's records from its state. False when it has no transcript yet.
    pub async fn rebuild(&self, session_id: &str) -> Result<bool, Failure> {
        let sid = key_safe(session_id);
        let sources: Vec<SourceState> =
            self.out.list_json(&format!("state/sources/{sid}/")).await?;
        let Some(best) = sources
            .iter()
            .max_by(|a, b| a.meta.rank().cmp(&b.meta.rank()))
        else {
            return Ok(false);
        };
        let trail = self.trail(session_id).await?;
        let instance = trail
            .as_ref()
            .and_then(|t| t.start())
            .and_then(|s| s.target.clone())
            .or_else(|| best.meta.instance_id.clone());
        let names = self.names(instance.as_deref()).await?;
        let who = model::attribute(session_id, Some(&best.meta), trail.as_ref(), &names);
        let day = who
            .session_start
            .as_deref()
            .or(who.session_end.as_deref())
            .and_then(|t| t.get(..10))
            .unwrap_or("unknown")
            .to_string();
        let out_key = self.out.key(&format!("sessions/dt={day}/{sid}.jsonl"));
        let mut w = self.out.store.create(&out_key).await?;
        let mut lines = self.out.store.open(&best.lines_key, None).await?;
        let mut rest = Vec::new();
        while let Some(chunk) = lines.next().await? {
            rest.extend_from_slice(&chunk);
            let Some(end) = rest.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let mut buf = Vec::new();
            for l in rest[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let line: Line = serde_json::from_slice(l)?;
                if line.abandoned {
                    continue;
                }
                serde_json::to_writer(&mut buf, &model::record(&best.meta, &who, &line))?;
                buf.push(b'\n');
            }
            rest.drain(..=end);
            w.write(&buf).await?;
        }
        w.finish().await?;
        let pointer = format!("state/output/{sid}.json");
        if let Some(old) = self.out.get_json::<String>(&pointer).await? {
            if old != out_key {
                self.out.store.delete(&old).await?;
            }
        }
        self.out.put_json(&pointer, &out_key).await?;
        Ok(true)
    }

    /// Write the quarantine record of an event that names no readable source.
    pub async fn quarantine_event(
        &self,
        event: &serde_json::Value,
        reason: &str,
    ) -> Result<(), Failure> {
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
    ) -> Result<(), Failure> {
        tracing::warn!(source = url, reason, "quarantined");
        let record = serde_json::json!({"source": url, "version_id": version, "reason": reason, "time": now()});
        self.out
            .put_json(&format!("quarantine/{id}.json"), &record)
            .await
    }

    /// Every transcript of each session with its CloudTrail facts and instance names, for
    /// committing into a tantivy index.
    pub async fn batch_for(&self, sessions: &[String]) -> Result<indexer::store::Batch, Failure> {
        let mut batch = indexer::store::Batch::default();
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
            for i in instances {
                let inst: Option<Instance> = self
                    .out
                    .get_json(&format!("state/instances/{}.json", key_safe(&i)))
                    .await?;
                batch.instances.extend(inst);
            }
            for st in states {
                let raw = self.out.store.get(&st.lines_key).await?.unwrap_or_default();
                let lines = raw
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(serde_json::from_slice::<Line>)
                    .collect::<Result<Vec<_>, _>>()?;
                batch.sources.push(SessionSource {
                    meta: st.meta,
                    lines,
                });
            }
            batch.trail.extend(trail.into_iter().flat_map(|t| t.events));
        }
        Ok(batch)
    }
}
