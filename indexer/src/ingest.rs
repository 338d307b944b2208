//! From source objects to a [`Batch`] of facts, one outcome per object.

use crate::error::Error;
use crate::formats::{self, Parsed, TrailEvent};
use crate::kinds::SourceKind;
use crate::model::{CommandRecord, SessionSource, SourceObject};
use crate::names::{InstanceNames, NameOrigin, TagChange};

/// How a file of command records found among sources is described: it is skipped, as
/// nothing in it proves what it says.
pub const RECORDS_AMONG_SOURCES: &str = "command records derived elsewhere, among sources";

/// Facts read from sources, to be merged into the index.
#[derive(Debug, Default)]
pub struct Batch {
    /// Replayed transcripts.
    pub sources: Vec<SessionSource>,
    /// CloudTrail events.
    pub trail: Vec<TrailEvent>,
    /// Instance names observed (inventories, the EC2 API).
    pub instances: Vec<InstanceNames>,
    /// Changes of instance names recorded by CloudTrail.
    pub tags: Vec<TagChange>,
    /// Command records derived elsewhere (the Lambda's output), taken as they are.
    pub records: Vec<CommandRecord>,
    /// Files named as transcripts that are not terminal output.
    pub unreadable: Vec<crate::model::Unreadable>,
    /// The sources these facts were read from, for the ledger.
    pub ledger: Vec<crate::ledger::Ingested>,
    /// The CloudTrail files read, for log file validation.
    pub trail_files: Vec<TrailFile>,
    /// CloudTrail digest files: what each vouches for.
    pub digests: Vec<DigestFact>,
}

/// What a CloudTrail digest file vouches for: the log files it lists with their hashes, and
/// whether its signature was checked with CloudTrail's public keys and holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DigestFact {
    /// The digest (`s3://bucket/key` or a path).
    pub name: String,
    /// Its S3 version.
    pub version_id: Option<String>,
    /// (`s3://bucket/key`, SHA-256 of the uncompressed content) of each log file it lists.
    pub listed: Vec<(String, String)>,
    /// Its signature was checked and holds.
    pub signed: bool,
}

/// What signed CloudTrail digests vouch for: the SHA-256 of the uncompressed content of each
/// log file they list. A record read from a file of such content is what CloudTrail delivered,
/// wherever that file is now (a copy, a local download).
#[derive(Debug, Clone, Default)]
pub struct Vouched {
    hashes: rustc_hash::FxHashSet<String>,
}

impl Vouched {
    /// Take what `d` vouches for, when its signature holds: whether that is anything not
    /// vouched for already.
    pub fn add(&mut self, d: &DigestFact) -> bool {
        let mut new = false;
        if d.signed {
            for (_, hash) in &d.listed {
                new |= self.hashes.insert(hash.to_ascii_lowercase());
            }
        }
        new
    }

    /// Take a log file's SHA-256 that a signed digest lists (as recorded elsewhere).
    pub fn insert(&mut self, sha: &str) {
        self.hashes.insert(sha.to_ascii_lowercase());
    }

    /// Nothing is vouched for.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Does a signed digest list a log file whose uncompressed content has SHA-256 `sha`?
    pub fn vouches(&self, sha: &str) -> bool {
        self.hashes.contains(&sha.to_ascii_lowercase())
    }
}

/// A CloudTrail file as read: its name and the SHA-256 of its uncompressed content (what a
/// digest file lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailFile {
    /// `s3://bucket/key` or a path.
    pub name: String,
    /// SHA-256 of the uncompressed content, hex.
    pub sha256: String,
}

impl Batch {
    /// Nothing to merge.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
            && self.trail.is_empty()
            && self.instances.is_empty()
            && self.tags.is_empty()
            && self.records.is_empty()
            && self.unreadable.is_empty()
            && self.digests.is_empty()
    }
}

/// What became of one source object.
#[derive(Debug)]
pub enum Outcome {
    /// Read; what it held was added to the batch.
    Read {
        /// `s3-log`, `cloudwatch-stream`, `cloudtrail`, `inventory`.
        kind: SourceKind,
        /// Sessions (transcripts), events (CloudTrail) or instances (inventory) it held.
        items: usize,
    },
    /// Recognised, holds no audit data; the reason.
    Skipped(String),
    /// Unreadable; the error.
    Failed(Error),
}

impl Outcome {
    /// One line for a person: what was read, skipped or wrong.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Read { kind, items } => {
                let what = match kind {
                    SourceKind::Cloudtrail => "session events",
                    SourceKind::CloudtrailDigest => "log files listed",
                    SourceKind::Inventory => "instances",
                    SourceKind::Records => "command records",
                    SourceKind::S3Log | SourceKind::CloudwatchStream => "sessions",
                };
                format!("{kind}: {items} {what}")
            }
            Outcome::Skipped(why) => format!("skipped: {why}"),
            Outcome::Failed(e) => e.to_string(),
        }
    }
}

/// What a source is taken for: each kind of input is accepted for what it can prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// What AWS wrote: session logs, streams, CloudTrail, inventories, recognised by content.
    /// Command records are never taken from these: a file of them proves nothing.
    Sources,
    /// Command records derived elsewhere (the Lambda's output), read only because the user
    /// named them as such (`ingest records:LOCATION`).
    Records,
}

/// Parse one source object and add its facts to `batch`.
pub fn read_object(object: &SourceObject, batch: &mut Batch) -> Outcome {
    read_as(object, Provenance::Sources, batch)
}

/// [`read_object`] holding nothing inflated past `whole` bytes (see
/// [`formats::parse_within`]): what a reader of small memory (the Lambda) reads with.
pub fn read_object_within(object: &SourceObject, whole: u64, batch: &mut Batch) -> Outcome {
    let sha = object.sha256();
    let outcome = parse_object(object, &sha, whole, batch);
    ledger_entry(object, sha, &outcome, batch);
    outcome
}

/// Parse one object, taken for what `provenance` says, and add its facts to `batch`.
pub fn read_as(object: &SourceObject, provenance: Provenance, batch: &mut Batch) -> Outcome {
    // Hashed once: the ledger and every session of the object name the same digest.
    let sha = object.sha256();
    let outcome = match provenance {
        Provenance::Sources => parse_object(object, &sha, formats::MAX_INFLATED_BYTES, batch),
        Provenance::Records => match crate::model::parse_records(&object.bytes) {
            Some(records) => {
                let items = records.len();
                batch.records.extend(records);
                Outcome::Read {
                    kind: SourceKind::Records,
                    items,
                }
            }
            None => Outcome::Failed(Error::Unrecognised(
                "named as command records, but not JSON Lines of command records".into(),
            )),
        },
    };
    ledger_entry(object, sha, &outcome, batch);
    outcome
}

/// What was read, for the ledger.
fn ledger_entry(object: &SourceObject, sha: String, outcome: &Outcome, batch: &mut Batch) {
    if let Outcome::Read { kind, .. } = outcome {
        batch.ledger.push(crate::ledger::Ingested {
            source: object.name.clone(),
            version_id: object.version_id.clone(),
            sha256: sha,
            size: object.bytes.len() as u64,
            kind: *kind,
        });
    }
}

/// [`read_as`], and a CloudTrail digest's signature checked with `keys` when they have any: a
/// digest whose signature fails is refused (its ledger entry is not kept).
#[cfg(feature = "index")]
pub fn read_checked(
    object: &SourceObject,
    provenance: Provenance,
    keys: &mut crate::trail_check::Keyring,
    batch: &mut Batch,
) -> Outcome {
    let outcome = read_as(object, provenance, batch);
    let (
        Outcome::Read {
            kind: SourceKind::CloudtrailDigest,
            ..
        },
        true,
    ) = (&outcome, keys.has_source())
    else {
        return outcome;
    };
    let bytes = match formats::inflated(&object.bytes) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(e),
    };
    let why = match crate::trail_check::DigestRead::read(&object.name, &bytes, &object.metadata) {
        Err(why) => why,
        Ok(d) => match keys.check(&d) {
            crate::trail_check::Signature::Invalid(why) => why,
            crate::trail_check::Signature::Valid => {
                if let Some(fact) = batch.digests.last_mut() {
                    fact.signed = true;
                }
                return outcome;
            }
            crate::trail_check::Signature::Unchecked(_) => return outcome,
        },
    };
    batch.ledger.pop();
    batch.digests.pop();
    Outcome::Failed(Error::Corrupt {
        kind: "CloudTrail digest",
        reason: format!("refused: {why}"),
    })
}

/// A session log's lines, or why it is not a terminal transcript.
fn read_log(object: &SourceObject, log: &[u8], sha: &str, batch: &mut Batch) -> Outcome {
    if let Some(why) = crate::stream::refusal(log) {
        let meta = formats::log_meta(&object.name, &log[..log.len().min(formats::LOG_HEAD_BYTES)]);
        batch.unreadable.push(crate::model::Unreadable {
            session_id: meta.session_id,
            source: object.name.clone(),
            version_id: object.version_id.clone(),
            sha256: sha.to_string(),
            reason: why.clone(),
        });
        return Outcome::Failed(crate::error::Error::Unrecognised(why));
    }
    batch
        .sources
        .push(SessionSource::from_log(object, log, sha));
    Outcome::Read {
        kind: SourceKind::S3Log,
        items: 1,
    }
}

/// What log file validation compares with the hash a digest lists: the SHA-256 of the content
/// uncompressed (the object's own digest when it was not compressed).
fn content_sha(object: &SourceObject, sha: &str, bytes: &[u8]) -> String {
    if std::ptr::eq(bytes, object.bytes.as_slice()) {
        sha.to_string()
    } else {
        crate::model::sha256_hex(bytes)
    }
}

/// Transcripts read from `object` into the batch.
fn transcripts_read(
    object: &SourceObject,
    sha: &str,
    ts: &[formats::Transcript],
    batch: &mut Batch,
) -> Outcome {
    let kind = ts.first().map_or(SourceKind::S3Log, |t| t.kind);
    for t in ts {
        batch
            .sources
            .push(SessionSource::from_transcript(t, object, sha));
    }
    Outcome::Read {
        kind,
        items: ts.len(),
    }
}

/// A CloudTrail file's events and tag changes into the batch; `file_sha` is the SHA-256 of
/// its content uncompressed, what a digest lists.
fn trail_read(
    object: &SourceObject,
    events: Vec<formats::TrailEvent>,
    tags: Vec<TagChange>,
    file_sha: String,
    batch: &mut Batch,
) -> Outcome {
    let items = events.len() + tags.len();
    let sha = (!events.is_empty()).then(|| object.sha256());
    batch.trail.extend(events.into_iter().map(|mut e| {
        e.file_sha256 = Some(file_sha.clone());
        if let Some(sha) = &sha {
            e.file = Some((object.name.clone(), sha.clone()));
        }
        e
    }));
    batch.trail_files.push(TrailFile {
        name: object.name.clone(),
        sha256: file_sha,
    });
    batch.tags.extend(tags);
    Outcome::Read {
        kind: SourceKind::Cloudtrail,
        items,
    }
}

fn parse_object(object: &SourceObject, sha: &str, whole: u64, batch: &mut Batch) -> Outcome {
    if object.bytes.first() == Some(&b'{') && crate::model::parse_records(&object.bytes).is_some() {
        return Outcome::Skipped(format!(
            "{RECORDS_AMONG_SOURCES}: they are read only when named as such (ingest records:LOCATION)"
        ));
    }
    // Session logs, the bulk of the input, go through the one reader of session logs.
    if crate::stream::is_session_log(&object.bytes) {
        return read_log(object, &object.bytes, sha, batch);
    }
    // Compressed objects are inflated once: a log goes to the log reader, anything else to the
    // format parser under its name without `.gz` (as `formats::parse` reads gzip itself).
    let inflated;
    let (name, bytes) = if object.bytes.starts_with(&[0x1f, 0x8b]) {
        // A CloudTrail file is read as it inflates, never held inflated.
        let head = match formats::gzip_head(&object.bytes, 64 << 10) {
            Ok(h) => h,
            Err(e) => return Outcome::Failed(e),
        };
        if head.trim_ascii_start().starts_with(b"{") {
            match formats::gzip_trail(&object.bytes) {
                Some(Ok((Parsed::Trail { events, tags, .. }, file_sha))) => {
                    return trail_read(object, events, tags, file_sha, batch)
                }
                Some(Ok((Parsed::Skipped(why), _))) => return Outcome::Skipped(why),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Outcome::Failed(e),
                None => {}
            }
        }
        inflated = match formats::gunzip_within(&object.bytes, whole) {
            Ok(b) => b,
            Err(e) => return Outcome::Failed(e),
        };
        if crate::stream::is_session_log(&inflated) {
            return read_log(object, &inflated, sha, batch);
        }
        (object.name.trim_end_matches(".gz"), inflated.as_slice())
    } else {
        (object.name.as_str(), object.bytes.as_slice())
    };
    match formats::parse_within(name, bytes, whole) {
        Err(e) => Outcome::Failed(e),
        Ok(Parsed::Skipped(why)) => Outcome::Skipped(why),
        Ok(Parsed::Digest { listed }) => {
            let items = listed.len();
            batch.digests.push(DigestFact {
                name: object.name.clone(),
                version_id: object.version_id.clone(),
                listed,
                signed: false,
            });
            Outcome::Read {
                kind: SourceKind::CloudtrailDigest,
                items,
            }
        }
        Ok(Parsed::Transcripts(ts)) => transcripts_read(object, sha, &ts, batch),
        Ok(Parsed::Trail { events, tags, .. }) => {
            let file_sha = content_sha(object, sha, bytes);
            trail_read(object, events, tags, file_sha, batch)
        }
        Ok(Parsed::Mixed {
            transcripts,
            events,
            tags,
            ..
        }) => {
            let file_sha = content_sha(object, sha, bytes);
            let trail = trail_read(object, events, tags, file_sha, batch);
            let read = transcripts_read(object, sha, &transcripts, batch);
            match (trail, read) {
                (Outcome::Read { items: a, .. }, Outcome::Read { kind, items: b }) => {
                    Outcome::Read { kind, items: a + b }
                }
                (_, other) => other,
            }
        }
        Ok(Parsed::Inventory(list)) => {
            let items = list.len();
            batch.instances.extend(list.into_iter().map(|i| {
                let mut n = InstanceNames::new(&i.instance_id);
                n.observe(i.name.as_deref(), NameOrigin::Inventory);
                n
            }));
            Outcome::Read {
                kind: SourceKind::Inventory,
                items,
            }
        }
    }
}
