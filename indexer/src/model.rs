//! Audit records: what one source says about a session, what CloudTrail says, and the command
//! records derived from both.

use crate::formats::{self, Instance, TrailEvent, Transcript};
use crate::replay::{InputLine, ReplayOptions, Replayer};
use crate::{sessionid, shellwords};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Where a piece of evidence came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Local path or `s3://bucket/key`.
    pub source: String,
    /// S3 version id, when the object has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// SHA-256 of the whole source object, hex.
    pub sha256: String,
    /// First byte of the command in the source.
    pub byte_start: u64,
    /// End of the command in the source (exclusive).
    pub byte_end: u64,
}

/// An object as read: its name, version and bytes.
#[derive(Debug, Clone)]
pub struct SourceObject {
    /// Local path or `s3://bucket/key`.
    pub name: String,
    /// S3 version id.
    pub version_id: Option<String>,
    /// The bytes, as stored (compressed or not).
    pub bytes: Vec<u8>,
}

impl SourceObject {
    /// SHA-256 of the bytes, hex.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

/// One input line of a session, as replayed from one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// Position among the session's input lines.
    pub seq: u32,
    /// The command.
    pub command: String,
    /// The user it ran as.
    pub run_as: String,
    /// Working directory from the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Source bytes of the line.
    pub byte_start: u64,
    /// End of those bytes.
    pub byte_end: u64,
    /// Clean output text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// Output bytes not kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_truncated: u64,
    /// Interrupted with Ctrl-C: never ran.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abandoned: bool,
    /// Why the line deserves a closer look.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspicious: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What one transcript source says about one session, besides its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMeta {
    /// The session id.
    pub session_id: String,
    /// How the id was found: `header`, `file-name`, `stream`, `transcript`.
    pub session_id_from: String,
    /// `s3-log` or `cloudwatch-stream`.
    pub kind: String,
    /// The source object.
    pub source: String,
    /// Its version id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// SHA-256 of the whole object.
    pub sha256: String,
    /// Size of the object.
    pub size: u64,
    /// Instance id named by the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Principal ARN named by the source (streams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_arn: Option<String>,
    /// First time the source shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_time: Option<String>,
    /// Last time the source shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_time: Option<String>,
}

impl SourceMeta {
    /// Preference among sources of one session: full S3 transcripts over streams, then bigger.
    pub fn rank(&self) -> (u8, u64, &str) {
        (u8::from(self.kind == "s3-log"), self.size, &self.source)
    }
}

/// What one transcript source says about one session: its facts and its input lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSource {
    /// The facts.
    #[serde(flatten)]
    pub meta: SourceMeta,
    /// The input lines.
    pub lines: Vec<Line>,
}

impl SessionSource {
    /// Replay a transcript read from `object`.
    pub fn from_transcript(t: &Transcript, object: &SourceObject, sha256: &str) -> SessionSource {
        let options = ReplayOptions {
            base_user: t.run_as.clone().unwrap_or_else(|| "ssm-user".to_string()),
            markers: !t.stripped,
            width: None,
        };
        let mut r = Replayer::new(options);
        r.feed(&t.body, t.body_offset);
        let lines = r
            .finish()
            .into_iter()
            .map(|l: InputLine| {
                let (byte_start, byte_end) = t.source_range(l.byte_start, l.byte_end);
                Line {
                    byte_start,
                    byte_end,
                    ..Line::from(l)
                }
            })
            .collect();
        SessionSource {
            meta: SourceMeta {
                session_id: t.session_id.clone(),
                session_id_from: t.session_id_from.to_string(),
                kind: t.kind.to_string(),
                source: object.name.clone(),
                version_id: object.version_id.clone(),
                sha256: sha256.to_string(),
                size: object.bytes.len() as u64,
                instance_id: t.instance_id.clone(),
                principal_arn: t.principal_arn.clone(),
                first_time: t.first_time.clone(),
                last_time: t.last_time.clone(),
            },
            lines,
        }
    }
}

/// Everything CloudTrail said about one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SessionTrail {
    /// The session.
    pub session_id: String,
    /// StartSession, ResumeSession and TerminateSession events, in time order, no duplicates.
    pub events: Vec<TrailEvent>,
}

impl SessionTrail {
    /// Merge events in; true when something new was learned.
    pub fn merge(&mut self, events: impl IntoIterator<Item = TrailEvent>) -> bool {
        let before = self.events.len();
        for e in events {
            if !self.events.contains(&e) {
                self.events.push(e);
            }
        }
        self.events
            .sort_by(|a, b| (&a.event_time, &a.event_name).cmp(&(&b.event_time, &b.event_name)));
        self.events.len() != before
    }

    /// The StartSession event.
    pub fn start(&self) -> Option<&TrailEvent> {
        self.events.iter().find(|e| e.event_name == "StartSession")
    }

    /// The TerminateSession event.
    pub fn terminate(&self) -> Option<&TrailEvent> {
        self.events
            .iter()
            .rev()
            .find(|e| e.event_name == "TerminateSession")
    }
}

/// Who a session belongs to, where it ran, when, and how that is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Attribution {
    /// IAM principal ARN.
    pub principal_arn: Option<String>,
    /// User name, role session name or Identity Center user.
    pub principal: Option<String>,
    /// `IAMUser`, `AssumedRole`, …
    pub principal_type: Option<String>,
    /// MFA used to start the session.
    pub mfa: Option<bool>,
    /// Caller's IP address.
    pub source_ip: Option<String>,
    /// Instance id.
    pub instance_id: Option<String>,
    /// Instance Name tag.
    pub instance_name: Option<String>,
    /// Start time (RFC 3339, UTC).
    pub session_start: Option<String>,
    /// End time.
    pub session_end: Option<String>,
    /// `cloudtrail`, `stream` (the streamed identity), `session-id` (its name part) or `none`.
    pub attribution: String,
}

/// Combine what the sources, CloudTrail and the inventory say about one session.
pub fn attribute(
    session_id: &str,
    source: Option<&SourceMeta>,
    trail: Option<&SessionTrail>,
    names: &BTreeMap<String, String>,
) -> Attribution {
    let mut a = Attribution::default();
    let start = trail.and_then(SessionTrail::start);
    if let Some(s) = start {
        a.principal_arn = s.principal_arn.clone();
        a.principal = s.principal.clone();
        a.principal_type = s.principal_type.clone();
        a.mfa = s.mfa.or(Some(false));
        a.source_ip = s.source_ip.clone();
        a.instance_id = s.target.clone();
        a.session_start = Some(s.event_time.clone());
        a.attribution = "cloudtrail".into();
    } else if let Some(arn) = source.and_then(|s| s.principal_arn.clone()) {
        a.principal = formats::principal_from_arn(&arn);
        a.principal_arn = Some(arn);
        a.attribution = "stream".into();
    } else if let Some((name, _)) = sessionid::parse(session_id) {
        a.principal = Some(name.to_string());
        a.attribution = "session-id".into();
    } else {
        a.attribution = "none".into();
    }
    if a.instance_id.is_none() {
        a.instance_id = source.and_then(|s| s.instance_id.clone());
    }
    a.instance_name = a.instance_id.as_ref().and_then(|i| names.get(i).cloned());
    if a.session_start.is_none() {
        a.session_start = source.and_then(|s| s.first_time.clone());
    }
    a.session_end = trail
        .and_then(SessionTrail::terminate)
        .map(|e| e.event_time.clone())
        .or_else(|| source.and_then(|s| s.last_time.clone()));
    a
}

/// One command with everything an auditor needs to read it and prove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// The session.
    pub session_id: String,
    /// Position in the session.
    pub seq: u32,
    /// The command.
    pub command: String,
    /// The user it ran as.
    pub run_as: String,
    /// Working directory shown by the prompt.
    pub cwd: Option<String>,
    /// Who, where, when.
    #[serde(flatten)]
    pub who: Attribution,
    /// The programs the command ran (pipeline and list parts, past wrappers such as sudo).
    pub programs: Vec<String>,
    /// Interrupted with Ctrl-C: typed, never run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abandoned: bool,
    /// Ids of the privileged-command rules it matches (filled in when rules are applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule: Vec<String>,
    /// Why the command deserves a closer look: its output shows a forged command line, it
    /// turned echo off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspicious: Vec<String>,
    /// The source.
    pub evidence: Evidence,
    /// Output text (only when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The best of a session's sources.
pub fn best(sources: &[SessionSource]) -> Option<&SessionSource> {
    sources
        .iter()
        .max_by(|a, b| a.meta.rank().cmp(&b.meta.rank()))
}

/// The record of one input line.
pub fn record(meta: &SourceMeta, who: &Attribution, l: &Line) -> CommandRecord {
    CommandRecord {
        session_id: meta.session_id.clone(),
        seq: l.seq,
        command: l.command.clone(),
        run_as: l.run_as.clone(),
        cwd: l.cwd.clone(),
        who: who.clone(),
        programs: if l.abandoned {
            Vec::new()
        } else {
            shellwords::programs(&l.command)
        },
        abandoned: l.abandoned,
        rule: Vec::new(),
        suspicious: l.suspicious.clone(),
        evidence: Evidence {
            source: meta.source.clone(),
            version_id: meta.version_id.clone(),
            sha256: meta.sha256.clone(),
            byte_start: l.byte_start,
            byte_end: l.byte_end,
        },
        output: None,
    }
}

/// Instance names from inventories.
pub fn names_of(instances: &[Instance]) -> BTreeMap<String, String> {
    instances
        .iter()
        .filter_map(|i| Some((i.instance_id.clone(), i.name.clone()?)))
        .collect()
}

/// Command records as JSON Lines (the Lambda's output, `search --format json`), if every
/// non-blank line is one.
pub fn parse_records(bytes: &[u8]) -> Option<Vec<CommandRecord>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        out.push(serde_json::from_str::<CommandRecord>(line).ok()?);
    }
    (!out.is_empty()).then_some(out)
}
