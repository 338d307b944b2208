//! Audit records: what one source says about a session, what CloudTrail says, and the command
//! records derived from both.

use crate::formats::{self, TrailEvent, Transcript};
use crate::kinds::{AttributedBy, IdFrom, LoginFrom, SourceKind};
use crate::names::{NameOrigin, Names};
use crate::replay::{InputLine, ReplayOptions, Replayer};
use crate::sessionid;
use crate::stream::{self, LogSummary};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// When it was written, RFC 3339 UTC, where the store says (S3's `LastModified`, a file's
    /// modification time): which of two transcripts of a session came first.
    pub written: Option<String>,
    /// The object's user metadata, where the store has it (S3's `x-amz-meta-*`, names without
    /// that prefix): a CloudTrail digest's `signature` and `signature-algorithm`.
    pub metadata: std::collections::BTreeMap<String, String>,
}

impl SourceObject {
    /// SHA-256 of the bytes, hex.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Bytes in lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
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
    /// The command line was longer than the replay keeps: its full length in characters
    /// (`command` holds its first [`crate::replay::screen::HEAD_CELLS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<u64>,
    /// Shown before the shell's first prompt: the preferences' shell profile, written into the
    /// terminal by the agent, or text typed ahead.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub profile: bool,
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
    pub session_id_from: IdFrom,
    /// `s3-log` or `cloudwatch-stream`.
    pub kind: SourceKind,
    /// The source object.
    pub source: String,
    /// Its version id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// SHA-256 of the document the byte ranges point into: the whole object, or a stream's
    /// canonical document ([`crate::formats::stream_document`]).
    pub sha256: String,
    /// SHA-256 of the object it was read from, when that is not the document itself (a
    /// stream read from a file or an event): what the ledger lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_sha256: Option<String>,
    /// Size of the document.
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
    /// When the object was written, where the store said ([`SourceObject::written`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<String>,
    /// Stretches the replay could not read: the session is only partly reconstructed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<Partial>,
    /// The user a stream says the shell ran as (its `runAsUser`; empty when the shell ran
    /// elevated or in a container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    /// The login shell's user as the session's own output showed it ([`login_shown`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_seen: Option<String>,
    /// What the transcript shows before its first input line: the output of the command the
    /// session was started with, when it was (see [`crate::derive::Basis::started_line`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preamble: String,
}

/// Bytes of a transcript the replay could not read as a shell's input and output, and why:
/// commands typed there may be missing from the records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// Why (`inside tmux: …`).
    pub reason: String,
    /// First byte of the stretch, in the document the source's byte ranges point into.
    pub byte_start: u64,
    /// End of the stretch (exclusive).
    pub byte_end: u64,
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

impl SourceMeta {
    /// The facts of an S3 session log named `name`, as its reader summed them up.
    pub fn of_log(
        name: &str,
        version_id: Option<String>,
        written: Option<String>,
        sha256: String,
        summary: &LogSummary,
    ) -> SourceMeta {
        SourceMeta {
            session_id: summary.meta.session_id.clone(),
            session_id_from: summary.meta.session_id_from,
            kind: SourceKind::S3Log,
            source: name.to_string(),
            version_id,
            sha256,
            object_sha256: None,
            size: summary.size,
            instance_id: summary.meta.instance_id.clone(),
            principal_arn: None,
            first_time: None,
            last_time: summary.last_time.clone(),
            written,
            partial: summary.partial.clone(),
            run_as: None,
            login_seen: summary.login_seen.clone(),
            preamble: summary.preamble.clone(),
        }
    }

    /// The SHA-256 the ledger lists for the object this source was read from.
    pub fn object_digest(&self) -> &str {
        self.object_sha256.as_deref().unwrap_or(&self.sha256)
    }
}

impl SessionSource {
    /// An S3 session log read whole (`bytes`: the log itself, inflated if it was stored
    /// compressed), by the reader the Lambda streams logs through.
    pub fn from_log(object: &SourceObject, bytes: &[u8], sha256: &str) -> SessionSource {
        let (summary, lines) = stream::read_log(&object.name, bytes);
        let mut meta = SourceMeta::of_log(
            &object.name,
            object.version_id.clone(),
            object.written.clone(),
            sha256.to_string(),
            &summary,
        );
        meta.size = object.bytes.len() as u64;
        SessionSource { meta, lines }
    }

    /// Replay a transcript read from `object`.
    pub fn from_transcript(t: &Transcript, object: &SourceObject, sha256: &str) -> SessionSource {
        let options = ReplayOptions {
            base_user: crate::replay::LOGIN_USER.to_string(),
            markers: !t.stripped,
            width: None,
        };
        let mut r = Replayer::new(options);
        r.feed(&t.body, t.body_offset);
        let mut replayed = r.finish();
        let preamble = std::mem::take(&mut replayed.preamble);
        // Stretches apart in the replayed text may meet in the source (a stream's events).
        let partial = crate::replay::merged(
            replayed
                .partial
                .into_iter()
                .map(|p| {
                    let (byte_start, byte_end) = t.source_range(p.byte_start, p.byte_end);
                    Partial {
                        byte_start,
                        byte_end,
                        ..p
                    }
                })
                .collect(),
        );
        let lines: Vec<Line> = replayed
            .lines
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
        let login_seen = lines.iter().find_map(login_shown);
        let (document_sha, size) = match &t.document {
            Some(d) => (sha256_hex(d), d.len() as u64),
            None => (sha256.to_string(), object.bytes.len() as u64),
        };
        let object_sha256 = (document_sha != sha256).then(|| sha256.to_string());
        SessionSource {
            meta: SourceMeta {
                session_id: t.session_id.clone(),
                session_id_from: t.session_id_from,
                kind: t.kind,
                source: object.name.clone(),
                version_id: object.version_id.clone(),
                sha256: document_sha,
                object_sha256,
                size,
                instance_id: t.instance_id.clone(),
                principal_arn: t.principal_arn.clone(),
                first_time: t.first_time.clone(),
                last_time: t.last_time.clone(),
                written: object.written.clone(),
                partial,
                run_as: t.run_as.clone(),
                login_seen,
                preamble,
            },
            lines,
        }
    }
}

/// The login shell's user, when this line asked who it is and its output says: `whoami`,
/// `id -un`, `echo $USER` (its output's first line), `id` (`uid=N(name)`). Only lines the
/// login user typed (an empty `run_as`) and that ran.
pub fn login_shown(l: &Line) -> Option<String> {
    if l.run_as != crate::replay::LOGIN_USER || l.abandoned {
        return None;
    }
    let c = l.command.trim_start();
    if !["whoami", "id", "echo", "logname"]
        .iter()
        .any(|p| c.starts_with(p))
    {
        return None;
    }
    let command = c.split_whitespace().collect::<Vec<_>>().join(" ");
    let first = l.output.lines().map(str::trim).find(|s| !s.is_empty())?;
    let name = match command.as_str() {
        "whoami" | "id -un" | "id -nu" | "id -u -n" | "id -n -u" | "echo $USER"
        | "echo \"$USER\"" | "echo $LOGNAME" | "logname" => first,
        "id" => {
            first
                .strip_prefix("uid=")?
                .split_once('(')?
                .1
                .split_once(')')?
                .0
        }
        _ => return None,
    };
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    ok.then(|| name.to_string())
}

/// A file named as a session's transcript that is not one (random data, a binary): refused,
/// and remembered so that the session's coverage says its transcript is unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    /// The session its name or header claims.
    pub session_id: String,
    /// The object.
    pub source: String,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Its SHA-256.
    pub sha256: String,
    /// Why it was refused.
    pub reason: String,
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
        // The same record read from two files (a copy of a trail file) is one event: the
        // file it was first read from stays.
        fn record(e: &TrailEvent) -> impl PartialEq + '_ {
            (
                (
                    &e.event_name,
                    &e.event_time,
                    &e.session_id,
                    &e.principal_arn,
                    &e.principal,
                    &e.principal_type,
                    &e.principal_id,
                    e.mfa,
                ),
                (
                    &e.source_ip,
                    &e.user_agent,
                    &e.target,
                    &e.document_name,
                    &e.region,
                    &e.account,
                    &e.event_id,
                    &e.error_code,
                ),
            )
        }
        let same = |a: &TrailEvent, b: &TrailEvent| record(a) == record(b);
        for e in events {
            if !self.events.iter().any(|have| same(have, &e)) {
                self.events.push(e);
            }
        }
        self.events
            .sort_by(|a, b| (&a.event_time, &a.event_name).cmp(&(&b.event_time, &b.event_name)));
        self.events.len() != before
    }

    /// The successful events named `name`, in time order.
    fn succeeded<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a TrailEvent> + 'a {
        self.events
            .iter()
            .filter(move |e| e.event_name == name && e.succeeded())
    }

    /// The successful calls that started the session, in time order: StartSession, or ECS
    /// Exec's ExecuteCommand.
    fn starts(&self) -> impl Iterator<Item = &TrailEvent> + '_ {
        self.events.iter().filter(|e| {
            matches!(e.event_name.as_str(), "StartSession" | "ExecuteCommand") && e.succeeded()
        })
    }

    /// The StartSession the session is attributed to, among the successful ones: the one whose
    /// principal is the name the session id was made from, else the earliest. (When there are
    /// several, [`SessionTrail::conflicts`] says so.)
    pub fn start(&self) -> Option<&TrailEvent> {
        let own = sessionid::parse(&self.session_id).map(|(name, _)| name);
        // A StartSession from a validated CloudTrail file wins over one from a file no signed
        // digest vouches for (and `conflicts` names them when they disagree).
        let validated = || self.starts().filter(|e| e.validated == Some(true));
        validated()
            .find(|e| own.is_some() && e.principal.as_deref() == own)
            .or_else(|| validated().next())
            .or_else(|| {
                self.starts()
                    .find(|e| own.is_some() && e.principal.as_deref() == own)
            })
            .or_else(|| self.starts().next())
    }

    /// Mark each event with whether its CloudTrail file is validated (see
    /// [`TrailEvent::validated`]), as `vouched` says of the file's SHA-256.
    pub fn annotate(&mut self, vouched: &dyn Fn(&str) -> bool) {
        for e in &mut self.events {
            e.validated = Some(e.file_sha256.as_deref().is_some_and(vouched));
        }
    }

    /// Who resumed the session, other than the principal its StartSession names, in time
    /// order (successful ResumeSessions only).
    pub fn participants(&self) -> Vec<Participant> {
        let Some(start) = self.start() else {
            return Vec::new();
        };
        self.succeeded("ResumeSession")
            .filter(|e| e.principal_arn != start.principal_arn || e.principal != start.principal)
            .map(|e| Participant {
                principal_arn: e.principal_arn.clone(),
                principal: e.principal.clone(),
                source_ip: e.source_ip.clone(),
                mfa: e.mfa,
                time: e.event_time.clone(),
            })
            .collect()
    }

    /// The last successful TerminateSession.
    pub fn terminate(&self) -> Option<&TrailEvent> {
        self.succeeded("TerminateSession").last()
    }

    /// What CloudTrail's records of the session disagree about, each naming the records (and
    /// whether each one's file is validated, once marked): two successful StartSessions for
    /// different principals, or from another address or to another target, a principal that is not the one the
    /// session id names, records from another account or region than the start's.
    pub fn conflicts(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(start) = self.start() else {
            return out;
        };
        let who = |e: &TrailEvent| {
            e.principal_arn
                .clone()
                .or_else(|| e.principal.clone())
                .unwrap_or_else(|| "an unnamed principal".into())
        };
        let event = |e: &TrailEvent| {
            let what = match &e.event_id {
                Some(id) => format!("{} {id} at {}", e.event_name, e.event_time),
                None => format!("{} at {}", e.event_name, e.event_time),
            };
            match e.validated {
                Some(true) => format!("{what} (validated)"),
                Some(false) => format!("{what} (not validated)"),
                None => what,
            }
        };
        for other in self.starts() {
            if std::ptr::eq(other, start) {
                continue;
            }
            if who(other) != who(start) {
                out.push(format!(
                    "CloudTrail has two StartSession records for this session: {} by {} and {} by {}",
                    event(start),
                    who(start),
                    event(other),
                    who(other)
                ));
            } else if (&other.source_ip, &other.target) != (&start.source_ip, &start.target) {
                let place = |e: &TrailEvent| {
                    format!(
                        "from {} to {}",
                        e.source_ip.as_deref().unwrap_or("an unknown address"),
                        e.target.as_deref().unwrap_or("an unknown target")
                    )
                };
                out.push(format!(
                    "CloudTrail has two StartSession records for this session by {}: {} {} and {} {}",
                    who(start),
                    event(start),
                    place(start),
                    event(other),
                    place(other)
                ));
            }
        }
        if let (Some((name, _)), Some(principal)) = (
            sessionid::parse(&self.session_id),
            start.principal.as_deref(),
        ) {
            // ECS Exec names its sessions after itself, not the caller.
            if name != principal && name != ECS_EXEC_NAME {
                out.push(format!(
                    "the session id names {name}, but CloudTrail's {} names {}",
                    event(start),
                    who(start)
                ));
            }
        }
        for e in self.events.iter().filter(|e| e.succeeded()) {
            let differs = |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
            if differs(&e.account, &start.account) || differs(&e.region, &start.region) {
                out.push(format!(
                    "{} is from account {} in {}, the session's StartSession from account {} in {}",
                    event(e),
                    e.account.as_deref().unwrap_or("?"),
                    e.region.as_deref().unwrap_or("?"),
                    start.account.as_deref().unwrap_or("?"),
                    start.region.as_deref().unwrap_or("?")
                ));
            }
        }
        out
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
    /// Why `mfa` is unknown (`null`) when CloudTrail cannot say: the record has no MFA
    /// attribute, or the caller signed in through IAM Identity Center or another identity
    /// provider, whose MFA CloudTrail's `mfaAuthenticated` does not show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_unknown: Option<String>,
    /// Caller's IP address.
    pub source_ip: Option<String>,
    /// Instance id.
    pub instance_id: Option<String>,
    /// Instance Name tag at the time of the session.
    pub instance_name: Option<String>,
    /// The user the session's login shell ran as (what a command's `run_as` is when no `sudo`,
    /// `su` or prompt says otherwise); `null` when it cannot be known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_user: Option<String>,
    /// What `login_user` rests on: `stream`, `output`, `default` (nothing said: Session
    /// Manager's `ssm-user`, unless Run As is on) or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_user_from: Option<LoginFrom>,
    /// Where that name comes from (`cloudtrail`, `inventory`, `ec2`), or `unknown` when the
    /// instance was renamed after the session and its name then is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_name_from: Option<NameOrigin>,
    /// Start time (RFC 3339, UTC).
    pub session_start: Option<String>,
    /// End time.
    pub session_end: Option<String>,
    /// `cloudtrail`, `stream` (the streamed identity), `session-id` (its name part) or `none`.
    pub attribution: AttributedBy,
    /// Where the session's sources disagree, each naming them; the fields above follow the
    /// documented precedence. Empty (and left out of JSON) when they agree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// Principals other than the starter who resumed the session (a successful ResumeSession).
    /// A transcript does not say who typed which line after a resume: every line after the
    /// first such time may be theirs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<Participant>,
    /// With CloudTrail attribution: whether the CloudTrail file of the StartSession it rests on
    /// is validated (listed with its SHA-256 in a CloudTrail digest whose signature holds).
    /// `false` says the attribution rests on a file nothing vouches for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudtrail_validated: Option<bool>,
}

impl Attribution {
    /// The session's time, the one every filter, order and sort of sessions uses: its start, or
    /// its end when nothing recorded the start (unix seconds); `None` when neither is known (a
    /// session of unknown time is in no time range).
    pub fn session_time(&self) -> Option<i64> {
        self.session_start
            .as_deref()
            .or(self.session_end.as_deref())
            .and_then(parse_time)
    }

    /// The UTC day (`YYYY-MM-DD`) of [`Attribution::session_time`]: what the Lambda's output
    /// is partitioned by and reports chart by.
    pub fn session_day(&self) -> Option<String> {
        let t = chrono::DateTime::from_timestamp(self.session_time()?, 0)?;
        Some(t.format("%Y-%m-%d").to_string())
    }
}

/// RFC 3339 (or `YYYY-MM-DD`, or a date and time without zone, taken as UTC) to unix seconds.
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

/// Someone other than its starter who took part in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// IAM principal ARN.
    pub principal_arn: Option<String>,
    /// User name, role session name or Identity Center user.
    pub principal: Option<String>,
    /// Caller's IP address.
    pub source_ip: Option<String>,
    /// MFA used.
    pub mfa: Option<bool>,
    /// When they joined (the ResumeSession's time).
    pub time: String,
}

/// The name part of an ECS Exec session's id: ECS's own, not the caller's.
pub const ECS_EXEC_NAME: &str = "ecs-execute-command";

/// Session Manager's user for sessions when Run As is off.
pub const DEFAULT_LOGIN_USER: &str = "ssm-user";

/// The user a session's login shell ran as, from every transcript of it (whatever the order
/// they came in): a stream's `runAsUser`, else the session's output, else unknown when a stream
/// said the shell ran elevated or in a container or the session is ECS Exec's, else Session
/// Manager's default user.
pub fn login_user(
    session_id: &str,
    sources: &[&SourceMeta],
    start: Option<&TrailEvent>,
) -> (Option<String>, LoginFrom) {
    let mut said: Vec<&str> = sources
        .iter()
        .filter_map(|s| s.run_as.as_deref())
        .filter(|u| !u.is_empty())
        .collect();
    said.sort_unstable();
    if let Some(u) = said.first() {
        return (Some(u.to_string()), LoginFrom::Stream);
    }
    let mut seen: Vec<&str> = sources
        .iter()
        .filter_map(|s| s.login_seen.as_deref())
        .collect();
    seen.sort_unstable();
    if let Some(u) = seen.first() {
        return (Some(u.to_string()), LoginFrom::Output);
    }
    let ecs = start.is_some_and(|e| e.event_name == "ExecuteCommand")
        || sessionid::parse(session_id).is_some_and(|(n, _)| n == ECS_EXEC_NAME);
    if ecs || sources.iter().any(|s| s.run_as.as_deref() == Some("")) {
        return (None, LoginFrom::Unknown);
    }
    (Some(DEFAULT_LOGIN_USER.to_string()), LoginFrom::Default)
}

/// Combine what the sources, CloudTrail and the instance names say about one session: `source`
/// is the transcript its records are read from, `all` every transcript of it.
pub fn attribute(
    session_id: &str,
    source: Option<&SourceMeta>,
    all: &[&SourceMeta],
    trail: Option<&SessionTrail>,
    names: &Names,
) -> Attribution {
    let mut a = Attribution::default();
    let start = trail.and_then(SessionTrail::start);
    let (user, from) = login_user(session_id, all, start);
    a.login_user = user;
    a.login_user_from = Some(from);
    // What a stream says of who and where, whichever of the session's transcripts the records
    // are read from: the first stream (in the order transcripts are chosen) that names it.
    let stream_arn = source
        .and_then(|s| s.principal_arn.clone())
        .or_else(|| all.iter().find_map(|s| s.principal_arn.clone()));
    if let Some(s) = start {
        a.principal_arn = s.principal_arn.clone();
        a.principal = s.principal.clone();
        a.principal_type = s.principal_type.clone();
        (a.mfa, a.mfa_unknown) = mfa_of(s);
        a.source_ip = s.source_ip.clone();
        a.instance_id = s.target.clone();
        a.session_start = Some(s.event_time.clone());
        a.attribution = AttributedBy::Cloudtrail;
        a.cloudtrail_validated = Some(s.validated == Some(true));
    } else if let Some(arn) = stream_arn {
        a.principal = formats::principal_from_arn(&arn);
        a.principal_arn = Some(arn);
        a.attribution = AttributedBy::Stream;
    } else if let Some((name, _)) =
        sessionid::parse(session_id).filter(|(name, _)| *name != ECS_EXEC_NAME)
    {
        a.principal = Some(name.to_string());
        a.attribution = AttributedBy::SessionId;
    } else {
        a.attribution = AttributedBy::None;
    }
    if a.instance_id.is_none() {
        a.instance_id = source
            .and_then(|s| s.instance_id.clone())
            .or_else(|| all.iter().find_map(|s| s.instance_id.clone()));
    }
    if a.session_start.is_none() {
        // A stream's first event is the session's start; an S3 log knows only its end.
        a.session_start = source
            .and_then(|s| s.first_time.clone())
            .or_else(|| all.iter().find_map(|s| s.first_time.clone()));
    }
    a.session_end = trail
        .and_then(SessionTrail::terminate)
        .map(|e| e.event_time.clone())
        .or_else(|| source.and_then(|s| s.last_time.clone()));
    if let Some(i) = &a.instance_id {
        // The session's time: its start, else its end.
        let at = a.session_start.as_deref().or(a.session_end.as_deref());
        (a.instance_name, a.instance_name_from) = names.at(i, at);
    }
    if let Some(t) = trail {
        a.conflicts = t.conflicts();
        a.participants = t.participants();
    }
    match start {
        Some(start) => {
            for s in all {
                a.conflicts.extend(source_conflicts(s, start));
            }
        }
        None => a.conflicts.extend(stream_conflicts(all)),
    }
    a
}

/// Where a session's transcripts disagree among themselves about who started it or where,
/// when no CloudTrail says: two streams naming other principals or instances, a log header
/// naming another instance than a stream.
fn stream_conflicts(all: &[&SourceMeta]) -> Vec<String> {
    let mut out = Vec::new();
    for (what, of) in [
        (
            "principal",
            (|s: &SourceMeta| s.principal_arn.clone()) as fn(&SourceMeta) -> Option<String>,
        ),
        ("instance", |s: &SourceMeta| s.instance_id.clone()),
    ] {
        let named: Vec<(&str, String)> = all
            .iter()
            .filter_map(|s| of(s).map(|v| (s.source.as_str(), v)))
            .collect();
        if let Some((src, v)) = named.first() {
            for (other, w) in &named[1..] {
                if w != v {
                    out.push(format!("{src} names {what} {v}, {other} names {w}"));
                }
            }
        }
    }
    out
}

/// What CloudTrail's StartSession says of MFA, and why it cannot say when it cannot.
///
/// `mfaAuthenticated` reflects MFA at IAM sign-in only (an IAM user, the root user, a role
/// assumed with IAM MFA): it is `true` or `false` for IAM users and the root user. A role
/// session reads `false` when it was made by IAM Identity Center or a SAML or OIDC identity
/// provider, even where that provider required MFA: for role sessions only `true` is told.
pub fn mfa_of(e: &TrailEvent) -> (Option<bool>, Option<String>) {
    let Some(said) = e.mfa else {
        return (
            None,
            Some("the StartSession record has no MFA attribute (no sessionContext)".into()),
        );
    };
    if said {
        return (Some(true), None);
    }
    let sso = e
        .principal_arn
        .as_deref()
        .is_some_and(|a| a.contains(":assumed-role/AWSReservedSSO_"));
    match e.principal_type.as_deref() {
        Some("IAMUser" | "Root") => (Some(false), None),
        _ if sso => (
            None,
            Some("an IAM Identity Center session: CloudTrail's mfaAuthenticated does not show whether Identity Center or its identity provider asked for MFA".into()),
        ),
        Some("AssumedRole") => (
            None,
            Some("a role session: CloudTrail's mfaAuthenticated is false for roles assumed through a SAML or OIDC identity provider even when it asked for MFA".into()),
        ),
        _ => (
            None,
            Some(format!(
                "a {} caller: CloudTrail's mfaAuthenticated reflects IAM sign-in only",
                e.principal_type.as_deref().unwrap_or("federated")
            )),
        ),
    }
}

/// Where a transcript's own identity contradicts CloudTrail's StartSession: a stream's
/// `userIdentity.arn` or `target.id`, a log header's instance. CloudTrail wins; this says so.
fn source_conflicts(s: &SourceMeta, start: &TrailEvent) -> Vec<String> {
    let mut out = Vec::new();
    let what = if s.kind == SourceKind::CloudwatchStream {
        "the stream"
    } else {
        "the log's header"
    };
    if let (Some(own), Some(trail)) = (&s.principal_arn, &start.principal_arn) {
        if own != trail {
            out.push(format!(
                "{what} {} names principal {own}, CloudTrail's StartSession {trail}",
                s.source
            ));
        }
    }
    if let (Some(own), Some(trail)) = (&s.instance_id, &start.target) {
        if own != trail {
            out.push(format!(
                "{what} {} names instance {own}, CloudTrail's StartSession {trail}",
                s.source
            ));
        }
    }
    out
}

/// One command with everything an auditor needs to read it and prove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// The version of this shape ([`crate::derive::SCHEMA`]).
    #[serde(default)]
    pub schema: u32,
    /// The session.
    pub session_id: String,
    /// Position in the session.
    pub seq: u32,
    /// The command.
    pub command: String,
    /// The user it ran as; `null` when it cannot be known (see `login_user_from`).
    pub run_as: Option<String>,
    /// Working directory shown by the prompt.
    pub cwd: Option<String>,
    /// Set on the command a session was started with, which no transcript holds: an
    /// interactive or non-interactive command document's, ECS Exec's. It comes from CloudTrail,
    /// and its transcript is its output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_with: Option<StartedWith>,
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
    /// The command line was longer than the replay keeps: its full length in characters
    /// (`command` holds its first [`crate::replay::screen::HEAD_CELLS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<u64>,
    /// The terminal showed it before the shell's first prompt: the agent wrote it from the
    /// preferences' shell profile (or it was typed ahead). It ran, as the session's user; that
    /// user need not have typed it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shell_profile: bool,
    /// The source.
    pub evidence: Evidence,
    /// Output text (only when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The call a session was started with, when it named a command: where a command record that
/// no transcript holds comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedWith {
    /// `StartSession` or `ExecuteCommand` (ECS Exec).
    pub event_name: String,
    /// Its `eventID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Its time.
    pub event_time: String,
    /// The session document (`AWS-StartInteractiveCommand`, `AWS-StartNonInteractiveCommand`,
    /// a custom one); none for ECS Exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

/// The fields every command record has, read without keeping anything.
#[derive(Deserialize)]
#[allow(dead_code)]
struct RecordProbe {
    session_id: serde::de::IgnoredAny,
    seq: serde::de::IgnoredAny,
    command: serde::de::IgnoredAny,
    evidence: serde::de::IgnoredAny,
}

/// Command records as JSON Lines (the Lambda's output, `search --format json`), if every
/// non-blank line is one.
pub fn parse_records(bytes: &[u8]) -> Option<Vec<CommandRecord>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // A record flattens its attribution, which makes serde hold a whole line as values
        // before it can say it is not a record (and a CloudTrail file is one long line): a
        // line is first checked, holding nothing, to have a record's fields.
        serde_json::from_str::<RecordProbe>(line).ok()?;
        out.push(serde_json::from_str::<CommandRecord>(line).ok()?);
    }
    (!out.is_empty()).then_some(out)
}
