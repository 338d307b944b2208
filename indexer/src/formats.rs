//! What AWS writes, read by content: S3 session logs, CloudWatch Logs streams, CloudTrail
//! records, `describe-instances` inventories. See `../shared/FORMATS.md` in the repository.

use crate::error::{Error, Result};
use crate::kinds::{IdFrom, SourceKind};
use crate::names::TagChange;
use crate::sessionid;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::io::Read;

/// Largest a gzip member may inflate to before it is refused as a bomb.
pub const MAX_INFLATED_BYTES: u64 = 4 << 30;

/// Beyond [`RATIO_FLOOR_BYTES`], gzip may inflate to at most this many times its own size:
/// session logs and CloudTrail compress 5 to 30 times, a bomb a thousand times.
pub const MAX_INFLATE_RATIO: u64 = 1000;

/// Inflated size always allowed, whatever the ratio.
pub const RATIO_FLOOR_BYTES: u64 = 256 << 20;

/// JSON (CloudTrail, inventories, exports) compresses 5 to 30 times: beyond
/// [`JSON_FLOOR_BYTES`] a JSON document may inflate to at most this many times its gzip size.
/// A session log of `yes` may compress a thousand times and is still evidence; JSON that does
/// is crafted.
pub const MAX_JSON_INFLATE_RATIO: u64 = 100;

/// Inflated size of JSON always allowed, whatever the ratio.
pub const JSON_FLOOR_BYTES: u64 = 64 << 20;

/// One source transcript's terminal bytes and what it says about its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// The session id.
    pub session_id: String,
    /// Where the session id came from: `header`, `file-name`, `stream`, `transcript`.
    pub session_id_from: IdFrom,
    /// `s3-log` or `cloudwatch-stream`.
    pub kind: SourceKind,
    /// The terminal bytes to replay.
    pub body: Vec<u8>,
    /// Offset of `body[0]` in the source, when the body is a slice of it (S3 logs).
    pub body_offset: u64,
    /// Maps offsets in `body` to byte ranges of the source: (body offset, source start, source end).
    pub spans: Vec<(u64, u64, u64)>,
    /// Instance id named by the source (util-linux 2.35+ header, stream `target.id`).
    pub instance_id: Option<String>,
    /// Principal ARN named by a streamed session.
    pub principal_arn: Option<String>,
    /// The user the shell ran as, when the source says (`runAsUser`).
    pub run_as: Option<String>,
    /// First time the source shows (stream event time).
    pub first_time: Option<String>,
    /// Last time the source shows (`Script done on`, last stream event).
    pub last_time: Option<String>,
    /// Escapes were stripped line by line (streamed sessions): no input markers to trust.
    pub stripped: bool,
    /// The document the byte ranges point into and the SHA-256 is taken of, when it is not
    /// the source object itself: a stream's canonical document ([`stream_document`]).
    pub document: Option<Vec<u8>>,
}

impl Transcript {
    /// Source byte range of body bytes `start..end`.
    pub fn source_range(&self, start: u64, end: u64) -> (u64, u64) {
        if self.spans.is_empty() {
            return (start, end);
        }
        let find = |off: u64| {
            let i = self.spans.partition_point(|s| s.0 <= off).saturating_sub(1);
            self.spans[i]
        };
        let a = find(start);
        let b = find(end.saturating_sub(1).max(start));
        (a.1, b.2)
    }
}

/// A CloudTrail Session Manager event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TrailEvent {
    /// StartSession, ResumeSession or TerminateSession.
    pub event_name: String,
    /// `eventTime`.
    pub event_time: String,
    /// The session.
    pub session_id: String,
    /// `userIdentity.arn`.
    pub principal_arn: Option<String>,
    /// IAM user name, role session name, or Identity Center user.
    pub principal: Option<String>,
    /// `userIdentity.type`.
    pub principal_type: Option<String>,
    /// `userIdentity.principalId`.
    pub principal_id: Option<String>,
    /// `mfaAuthenticated`.
    pub mfa: Option<bool>,
    /// `sourceIPAddress`.
    pub source_ip: Option<String>,
    /// `userAgent`.
    pub user_agent: Option<String>,
    /// `requestParameters.target`.
    pub target: Option<String>,
    /// `requestParameters.documentName`.
    pub document_name: Option<String>,
    /// The command the session was started with, where the call names one: an interactive or
    /// non-interactive command document's `requestParameters.parameters.command` (a list, its
    /// parts joined by newlines), ECS Exec's `requestParameters.command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `awsRegion`.
    pub region: Option<String>,
    /// `recipientAccountId`, or the identity's account.
    pub account: Option<String>,
    /// `eventID`.
    pub event_id: Option<String>,
    /// `errorCode`: the call failed or was denied, and started, resumed or ended nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The SHA-256 of the uncompressed content of the CloudTrail file it was read from: what a
    /// digest file lists. A signed digest listing it vouches for this record's content, wherever
    /// the file is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_sha256: Option<String>,
    /// The source it was read from (path, `s3://` URL, `cloudwatch://` stream), and that
    /// object's own SHA-256: the evidence of a record CloudTrail alone gives (the command a
    /// session with no transcript was started with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<(String, String)>,
    /// Whether a CloudTrail digest whose signature holds lists that hash: set where records are
    /// derived (never stored), `None` until then.
    #[serde(skip)]
    pub validated: Option<bool>,
}

impl TrailEvent {
    /// Did the call succeed? A failed or denied one (`errorCode`) never starts, resumes, ends or
    /// attributes a session.
    pub fn succeeded(&self) -> bool {
        self.error_code.is_none()
    }
}

/// An instance and its Name tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// `i-…`.
    pub instance_id: String,
    /// The `Name` tag.
    pub name: Option<String>,
}

/// What one source holds.
#[derive(Debug)]
pub enum Parsed {
    /// A CloudTrail digest file: the log files of a period, with their hashes, signed (read
    /// by [`crate::trail_check`]); `listed`: how many log files it lists.
    Digest {
        /// The log files listed: (`s3://bucket/key`, SHA-256 of the uncompressed content).
        listed: Vec<(String, String)>,
    },
    /// Session transcripts.
    Transcripts(Vec<Transcript>),
    /// CloudTrail events about sessions and instance names (others are dropped; `ignored`
    /// counts them).
    Trail {
        /// The Session Manager events.
        events: Vec<TrailEvent>,
        /// Changes of instances' `Name` tags.
        tags: Vec<TagChange>,
        /// Records that are about something else.
        ignored: usize,
    },
    /// An instance inventory.
    Inventory(Vec<Instance>),
    /// A delivery holding both streamed sessions and CloudTrail records (a Firehose object
    /// fed by several log groups).
    Mixed {
        /// The sessions.
        transcripts: Vec<Transcript>,
        /// The Session Manager events.
        events: Vec<TrailEvent>,
        /// Changes of instances' `Name` tags.
        tags: Vec<TagChange>,
        /// Records that are about something else.
        ignored: usize,
    },
    /// A file that is recognised but holds no audit data, and why.
    Skipped(String),
}

/// Read one source. `name` is its path or URL (used for the session id of `<id>.log` files).
pub fn parse(name: &str, bytes: &[u8]) -> Result<Parsed> {
    parse_within(name, bytes, MAX_INFLATED_BYTES)
}

/// [`parse`], with nothing inflated past `whole` bytes held ([`gunzip_within`]); a gzip
/// CloudTrail file is not held at all ([`gzip_trail`]).
pub fn parse_within(name: &str, bytes: &[u8], whole: u64) -> Result<Parsed> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        if gzip_head(bytes, 64 << 10)?
            .trim_ascii_start()
            .starts_with(b"{")
        {
            if let Some(read) = gzip_trail(bytes) {
                return read.map(|(parsed, _)| parsed);
            }
        }
        let inflated = gunzip_within(bytes, whole)?;
        return parse_within(name.trim_end_matches(".gz"), &inflated, whole);
    }
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    if start == bytes.len() {
        return Err(Error::Unrecognised("the file is empty".into()));
    }
    let text = &bytes[start..];
    if text.starts_with(b"Script started on") {
        return s3_log(name, bytes).map(|t| Parsed::Transcripts(vec![t]));
    }
    if matches!(text[0], b'{' | b'[') && !looks_like_terminal(text) {
        return parse_json(name, bytes, whole);
    }
    if looks_like_terminal(bytes) {
        return s3_log(name, bytes).map(|t| Parsed::Transcripts(vec![t]));
    }
    if bytes.contains(&0) || std::str::from_utf8(bytes).is_err() {
        return Err(Error::Unrecognised(
            "binary data: not a session log, JSON or gzip".into(),
        ));
    }
    let lower = name.to_ascii_lowercase();
    if [".md", ".txt", ".rst", ".html"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        return Ok(Parsed::Skipped(
            "documentation, not a log (no `Script started on` header, no terminal output)".into(),
        ));
    }
    if [".py", ".sh"].iter().any(|e| lower.ends_with(e)) {
        return Ok(Parsed::Skipped(
            "a script, not a log (no `Script started on` header, no terminal output)".into(),
        ));
    }
    Err(Error::Unrecognised(
        "text with no `Script started on` header and no terminal control bytes, and not JSON"
            .into(),
    ))
}

/// `bytes` uncompressed: inflated ([`gunzip`]) when they are gzip, else as they are.
pub fn inflated(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        gunzip(bytes).map(std::borrow::Cow::Owned)
    } else {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

/// Decompress gzip, refusing a bomb: more than [`MAX_INFLATED_BYTES`], or more than
/// [`MAX_INFLATE_RATIO`] times the compressed size once past [`RATIO_FLOOR_BYTES`]. Memory stays
/// within that limit: decompression stops as soon as it is passed.
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
    gunzip_within(bytes, MAX_INFLATED_BYTES)
}

/// [`gunzip`], refusing also what inflates past `whole` bytes: the most a reader with a
/// smaller memory (the Lambda's) holds.
pub fn gunzip_within(bytes: &[u8], whole: u64) -> Result<Vec<u8>> {
    let corrupt = |e: std::io::Error| Error::Corrupt {
        kind: "gzip",
        reason: e.to_string(),
    };
    let mut dec = flate2::read::MultiGzDecoder::new(bytes);
    // What it starts with decides how far it may go: JSON less far than a session log.
    let mut out = Vec::new();
    (&mut dec)
        .take(64 << 10)
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    let json = out
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'['));
    let limit = if json {
        json_inflate_limit(bytes.len() as u64)
    } else {
        inflate_limit(bytes.len() as u64)
    };
    if whole < limit {
        let mut dec = flate2::read::MultiGzDecoder::new(bytes).take(whole + 1);
        let mut out = Vec::new();
        dec.read_to_end(&mut out).map_err(corrupt)?;
        if out.len() as u64 > whole {
            return Err(Error::Corrupt {
                kind: "gzip",
                reason: format!(
                    "inflates past {} MiB, the most read whole here: refused",
                    whole >> 20
                ),
            });
        }
        return Ok(out);
    }
    let have = out.len() as u64;
    dec.take((limit + 1).saturating_sub(have))
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    if out.len() as u64 > limit {
        return Err(Error::Corrupt {
            kind: "gzip",
            reason: format!(
                "inflates past {} MiB, {}x its {} bytes: refused as a gzip bomb (limit{}: {}x beyond {} MiB, {} GiB in all)",
                limit >> 20,
                limit / (bytes.len() as u64).max(1),
                bytes.len(),
                if json { " for JSON" } else { "" },
                if json { MAX_JSON_INFLATE_RATIO } else { MAX_INFLATE_RATIO },
                if json { JSON_FLOOR_BYTES } else { RATIO_FLOOR_BYTES } >> 20,
                MAX_INFLATED_BYTES >> 30
            ),
        });
    }
    Ok(out)
}

/// The first `n` bytes `bytes` inflate to (fewer when it is shorter): what a gzip holds, told
/// without inflating it all.
pub fn gzip_head(bytes: &[u8], n: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(n)
        .read_to_end(&mut out)
        .map_err(|e| Error::Corrupt {
            kind: "gzip",
            reason: e.to_string(),
        })?;
    Ok(out)
}

/// The longest CloudTrail record read: CloudTrail writes records of at most 256 KB.
pub const MAX_RECORD_BYTES: u64 = 4 << 20;
/// The most session events and `Name` tag changes one CloudTrail file may give: one file holds
/// about five minutes of one region.
pub const MAX_KEPT_RECORDS: usize = 100_000;
/// The most bytes of records one CloudTrail file may give that are kept (session events and
/// tag changes).
pub const MAX_KEPT_BYTES: u64 = 64 << 20;

/// How far a stream of records has been read: the reader counts, the records visitor marks
/// where each record starts, so that one record longer than [`MAX_RECORD_BYTES`] is refused
/// while it is read, not after it is held.
#[derive(Default)]
struct Progress {
    read: std::cell::Cell<u64>,
    record_start: std::cell::Cell<u64>,
    in_records: std::cell::Cell<bool>,
}

/// A reader that hashes and counts what it passes on, and keeps the first error it met (so
/// that a gzip error is told apart from a JSON one).
struct Tee<'p, R> {
    inner: R,
    sha: sha2::Sha256,
    progress: &'p Progress,
    failed: Option<Error>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let p = self.progress;
        // Read ahead by the buffer of the reader above, at most.
        if p.in_records.get() && p.read.get() - p.record_start.get() > MAX_RECORD_BYTES + (1 << 20)
        {
            let e = record_too_long(p.read.get() - p.record_start.get());
            let said = e.to_string();
            self.failed.get_or_insert(e);
            return Err(std::io::Error::other(said));
        }
        match self.inner.read(buf) {
            Ok(n) => {
                self.sha.update(&buf[..n]);
                p.read.set(p.read.get() + n as u64);
                Ok(n)
            }
            Err(e) => {
                self.failed.get_or_insert_with(|| Error::Corrupt {
                    kind: "gzip",
                    reason: e.to_string(),
                });
                Err(e)
            }
        }
    }
}

fn record_too_long(len: u64) -> Error {
    Error::Corrupt {
        kind: "CloudTrail file",
        reason: format!(
            "a record of more than {} bytes, past the {} MiB read (CloudTrail writes records of at most 256 KB): refused",
            len,
            MAX_RECORD_BYTES >> 20
        ),
    }
}

/// Why gzip of `len` bytes holding JSON that inflates past `limit` is refused.
fn json_bomb(limit: u64, len: usize) -> Error {
    Error::Corrupt {
        kind: "gzip",
        reason: format!(
            "inflates past {} MiB, {}x its {len} bytes: refused as a gzip bomb (limit for JSON: {}x beyond {} MiB, {} GiB in all)",
            limit >> 20,
            limit / (len as u64).max(1),
            MAX_JSON_INFLATE_RATIO,
            JSON_FLOOR_BYTES >> 20,
            MAX_INFLATED_BYTES >> 30
        ),
    }
}

/// A gzip CloudTrail file read as it inflates, record by record: the inflated text is never
/// held, so memory is one record and what the records give, whatever the file's size. Gives
/// what it holds and the SHA-256 of its inflated content (what a digest lists), or `None` when
/// it is not one object with a `Records` array (read it with [`gunzip`] and [`parse`]). The
/// JSON inflate limit ([`json_inflate_limit`]) applies as it does to [`gunzip`].
pub fn gzip_trail(bytes: &[u8]) -> Option<Result<(Parsed, String)>> {
    let limit = json_inflate_limit(bytes.len() as u64);
    // A bomb is refused by inflating alone, before any record is read.
    let mut counted = flate2::read::MultiGzDecoder::new(bytes).take(limit + 1);
    if std::io::copy(&mut counted, &mut std::io::sink()).is_ok_and(|n| n > limit) {
        return Some(Err(json_bomb(limit, bytes.len())));
    }
    let progress = Progress::default();
    let mut tee = Tee {
        inner: flate2::read::MultiGzDecoder::new(bytes).take(limit + 1),
        sha: sha2::Sha256::default(),
        progress: &progress,
        failed: None,
    };
    let read = {
        let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(
            64 << 10,
            &mut tee,
        ));
        trail_records::<Box<serde_json::value::RawValue>, _>(&mut de, Some(&progress))
    }?;
    if progress.read.get() > limit {
        return Some(Err(json_bomb(limit, bytes.len())));
    }
    if let Some(e) = tee.failed.take() {
        return Some(Err(e));
    }
    let parsed = match read {
        Ok(p) => p,
        Err(e) => return Some(Err(e)),
    };
    // Whatever follows the document (whitespace only, or `end` would have refused it) is
    // part of the content the digest hashed.
    progress.in_records.set(false);
    if let Err(e) = std::io::copy(&mut tee, &mut std::io::sink()) {
        return Some(Err(Error::Corrupt {
            kind: "gzip",
            reason: e.to_string(),
        }));
    }
    use sha2::Digest;
    Some(Ok((parsed, crate::model::hex(&tee.sha.finalize()))))
}

/// How far `compressed` bytes of gzip may inflate.
pub fn inflate_limit(compressed: u64) -> u64 {
    compressed
        .saturating_mul(MAX_INFLATE_RATIO)
        .clamp(RATIO_FLOOR_BYTES, MAX_INFLATED_BYTES)
}

/// How far `compressed` bytes of gzip holding JSON may inflate.
pub fn json_inflate_limit(compressed: u64) -> u64 {
    compressed
        .saturating_mul(MAX_JSON_INFLATE_RATIO)
        .clamp(JSON_FLOOR_BYTES, MAX_INFLATED_BYTES)
}

/// Terminal output: escape sequences, `\r\n`, backspaces, or a shell prompt on a line.
fn looks_like_terminal(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    head.contains(&0x1b) || head.windows(2).any(|w| w == b"\r\n") || head.contains(&0x08)
}

// ---- S3 session logs ---------------------------------------------------------------------

const FOOTER: &[u8] = b"\nScript done on ";

/// What the start of a session log says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogMeta {
    /// The session id.
    pub session_id: String,
    /// `header`, `file-name` or `transcript`.
    pub session_id_from: IdFrom,
    /// The instance named by the 2.35+ header or an old agent's logger line.
    pub instance_id: Option<String>,
    /// Where the terminal bytes start (after the header line).
    pub body_start: usize,
}

/// Bytes of a log's start needed to read its header and an old agent's logger line.
pub const LOG_HEAD_BYTES: usize = 4096;

/// Read the header (and, for old agents, the logger line) from the first bytes of a log.
pub fn log_meta(name: &str, head: &[u8]) -> LogMeta {
    let (header, body_start) = if head.starts_with(b"Script started on") {
        let mut end = memchr::memchr(b'\n', head).map_or(head.len(), |p| p + 1);
        // macOS: BSD `script` names the command on a line of its own.
        if head[end..].starts_with(b"Command: ") {
            end += memchr::memchr(b'\n', &head[end..]).map_or(head.len() - end, |p| p + 1);
        }
        (String::from_utf8_lossy(&head[..end]).into_owned(), end)
    } else if let Some((header, end)) = powershell_header(head) {
        (header, end)
    } else {
        (String::new(), 0)
    };
    // macOS keeps the agent's data elsewhere; a Windows transcript names its file by a Windows
    // path: the same parts.
    let header = header.replace("/opt/aws/ssm/data/", "/var/lib/amazon/ssm/");
    let header = if header.contains("\\InstanceData\\") {
        header
            .replace("\\InstanceData\\", "/var/lib/amazon/ssm/")
            .replace("\\Session\\Orchestration\\", "/session/orchestration/")
            .replace('\\', "/")
    } else {
        header
    };
    let body = &head[body_start..];
    let (mut sid, mut from) = (None, IdFrom::Header);
    let mut instance = None;
    if let Some(p) = header.find("/var/lib/amazon/ssm/") {
        let path = &header[p + "/var/lib/amazon/ssm/".len()..];
        // ECS Exec names its task (`ecs:<cluster>_<task>_<runtime>`) where an instance would be.
        instance = path
            .split('/')
            .next()
            .filter(|i| i.starts_with("i-") || i.starts_with("mi-") || i.starts_with("ecs:"))
            .map(String::from);
        if let Some(q) = path.find("/orchestration/") {
            sid = path[q + "/orchestration/".len()..]
                .split('/')
                .next()
                .filter(|s| plausible_session_id(s))
                .map(String::from);
        }
    }
    if sid.is_none() {
        let stem = file_stem(name);
        if sessionid::parse(&stem).is_some() {
            sid = Some(stem);
            from = IdFrom::FileName;
        }
    }
    if sid.is_none() || instance.is_none() {
        // Old agents ran ssm-session-logger with the transcript's path on the terminal.
        let flat: String = String::from_utf8_lossy(&body[..body.len().min(LOG_HEAD_BYTES)])
            .replace(" \r\n", "")
            .replace(" \n", "");
        if sid.is_none() {
            if let Some(q) = flat.find("/orchestration/") {
                let cand: String = flat[q + "/orchestration/".len()..]
                    .chars()
                    .take_while(|c| *c != '/' && !c.is_whitespace())
                    .collect();
                if sessionid::parse(&cand).is_some() {
                    sid = Some(cand);
                    from = IdFrom::Transcript;
                }
            }
        }
        if instance.is_none() {
            if let Some(q) = flat.find("/var/lib/amazon/ssm/") {
                let cand: String = flat[q + "/var/lib/amazon/ssm/".len()..]
                    .chars()
                    .take_while(|c| *c != '/')
                    .collect();
                if cand.starts_with("i-") {
                    instance = Some(cand);
                }
            }
        }
    }
    let session_id = sid.unwrap_or_else(|| {
        from = IdFrom::FileName;
        file_stem(name)
    });
    LogMeta {
        session_id,
        session_id_from: from,
        instance_id: instance,
        body_start,
    }
}

/// The header block of a PowerShell transcript (Windows instances: the agent's logger shell
/// records the session with `Start-Transcript`): its text and where the body begins, after the
/// line naming the transcript's file.
fn powershell_header(head: &[u8]) -> Option<(String, usize)> {
    let bom = if head.starts_with(b"\xef\xbb\xbf") {
        3
    } else {
        0
    };
    let rest = &head[bom..head.len().min(LOG_HEAD_BYTES)];
    if !rest.starts_with(b"**********************")
        || memchr::memmem::find(rest, b"PowerShell transcript start").is_none()
    {
        return None;
    }
    let at = memchr::memmem::find(rest, b"Transcript started, output file is ")?;
    let end = memchr::memchr(b'\n', &rest[at..]).map(|p| at + p + 1)?;
    Some((
        String::from_utf8_lossy(&rest[..end]).into_owned(),
        bom + end,
    ))
}

/// The footer of a PowerShell transcript whose `… transcript end` line is at `end`: it begins
/// at the line of stars before it, and the logger shell's own `exit` just before that is not
/// the user's (its time is the instance's local time, with no zone: not kept).
fn powershell_footer(tail: &[u8], end: usize) -> Option<(usize, Option<String>)> {
    let line_start = |to: usize| memchr::memrchr(b'\n', &tail[..to]).map_or(0, |p| p + 1);
    // The line before `… transcript end` is the line of stars.
    let ps_end_line = line_start(end);
    let stars = line_start(ps_end_line.checked_sub(1)?);
    if !tail[stars..].starts_with(b"**********") {
        return None;
    }
    let mut at = stars;
    let prev = line_start(stars.checked_sub(1)?);
    let line = String::from_utf8_lossy(&tail[prev..stars]);
    let line = line.trim_end();
    if line.starts_with("PS ") && line.ends_with("> exit") {
        at = prev;
    }
    Some((at, None))
}

/// A session id as a header may name it: one path segment, not `.` or `..`, at most 96 bytes.
fn plausible_session_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 96
        && s != "."
        && s != ".."
        && !s.contains(['/', '\\'])
        && !s.chars().any(char::is_control)
}

/// Where the footer starts in the last bytes of a log, and the time it gives.
pub fn log_footer(tail: &[u8]) -> Option<(usize, Option<String>)> {
    if let Some(end) = memchr::memmem::rfind(tail, b"PowerShell transcript end") {
        return powershell_footer(tail, end);
    }
    let at = memchr::memmem::rfind(tail, FOOTER)?;
    let footer = String::from_utf8_lossy(&tail[at + 1..]);
    let time = script_time(&footer, "Script done on ");
    // macOS: BSD `script` writes the command's exit status before its footer.
    let status = b"\nCommand exit status: ";
    let at = match memchr::memmem::rfind(&tail[..at], status) {
        Some(s) if !tail[s + status.len()..at].contains(&b'\n') => s,
        _ => at,
    };
    Some((at, time))
}

/// Bytes at the end of a log that may hold its footer.
pub const LOG_TAIL_BYTES: usize = 512;

/// A `script` transcript: header, pty bytes, footer.
fn s3_log(name: &str, bytes: &[u8]) -> Result<Transcript> {
    if let Some(why) = crate::stream::refusal(bytes) {
        return Err(Error::Unrecognised(why));
    }
    let meta = log_meta(name, &bytes[..bytes.len().min(LOG_HEAD_BYTES + 1024)]);
    let tail_from = bytes
        .len()
        .saturating_sub(LOG_TAIL_BYTES)
        .max(meta.body_start);
    let (body_end, last_time) = match log_footer(&bytes[tail_from..]) {
        Some((at, time)) => (tail_from + at, time),
        None => (bytes.len(), None),
    };
    Ok(Transcript {
        session_id: meta.session_id,
        session_id_from: meta.session_id_from,
        kind: SourceKind::S3Log,
        body: bytes[meta.body_start..body_end].to_vec(),
        body_offset: meta.body_start as u64,
        spans: Vec::new(),
        instance_id: meta.instance_id,
        principal_arn: None,
        run_as: None,
        first_time: None,
        last_time,
        stripped: false,
        document: None,
    })
}

/// `Script started on 2020-05-27 23:00:48+0000` → `2020-05-27T23:00:48Z`.
fn script_time(line: &str, prefix: &str) -> Option<String> {
    let rest = line.strip_prefix(prefix)?;
    let stamp = rest.split(" [").next()?.trim();
    let parsed = chrono::DateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%z")
        .or_else(|_| chrono::DateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%:z"))
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok()
        // macOS: BSD `script` writes ctime(3), in the instance's zone (UTC on EC2 Mac
        // instances unless it was changed), taken as UTC.
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(stamp, "%a %b %e %H:%M:%S %Y")
                .ok()
                .map(|t| t.and_utc())
        })?;
    Some(parsed.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn file_stem(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.strip_suffix(".log").unwrap_or(base).to_string()
}

// ---- JSON inputs ---------------------------------------------------------------------------

fn parse_json(name: &str, bytes: &[u8], whole: u64) -> Result<Parsed> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::Corrupt {
        kind: "JSON",
        reason: format!("not UTF-8: {e}"),
    })?;
    // CloudTrail files, the bulk of JSON input, are read record by record, whatever they
    // hold: memory holds one record at a time, never the document as values. Anything that is
    // not an object with `Records` is read below as a whole.
    if text.trim_start().starts_with('{') {
        if let Some(parsed) = trail_streamed(text) {
            return parsed;
        }
    }
    let docs: Vec<&str> = match serde_json::from_str::<&serde_json::value::RawValue>(text) {
        Ok(one) => vec![one.get()],
        // Several documents one after another: JSON Lines, or documents written back to back
        // (`}{`, Firehose without a delimiter).
        Err(e) => match documents(text) {
            Some(d) => d,
            None => return Err(Error::Json(e)),
        },
    };
    if let [one] = docs[..] {
        let value: Value = serde_json::from_str(one)?;
        if value.get("digestStartTime").is_some() || value.get("digestSignatureAlgorithm").is_some()
        {
            return Ok(digest(&value));
        }
        if let Some(reservations) = value.get("Reservations").and_then(Value::as_array) {
            return Ok(Parsed::Inventory(inventory(reservations)));
        }
    }
    let mut g = Gathered::default();
    for d in docs {
        g.document(d, whole, 0)?;
    }
    g.finish(name)
}

/// The documents of a text holding several JSON values one after another (separated by
/// whitespace or by nothing), when there are several and each is an object or an array.
fn documents(text: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_str(text).into_iter::<&serde_json::value::RawValue>() {
        let v = v.ok()?.get();
        if !(v.starts_with('{') || v.starts_with('[')) {
            return None;
        }
        out.push(v);
    }
    (out.len() > 1).then_some(out)
}

fn digest(value: &Value) -> Parsed {
    let listed = value
        .get("logFiles")
        .and_then(Value::as_array)
        .map(|files| {
            files
                .iter()
                .map(|f| {
                    let text = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default();
                    (
                        format!("s3://{}/{}", text("s3Bucket"), text("s3Object")),
                        text("hashValue").to_ascii_lowercase(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Parsed::Digest { listed }
}

/// How deep deliveries may wrap one another (a subscription payload inside a Firehose object
/// inside an array): past this, a document is not read.
const MAX_WRAPPING: u8 = 6;

/// What JSON documents of every delivery shape hold, gathered: log events (streamed sessions,
/// or CloudTrail and EventBridge events kept in a log group) and CloudTrail records, however
/// they were wrapped.
#[derive(Default)]
struct Gathered {
    /// Log events, from subscription payloads, `filter-log-events` output, or stream messages.
    events: Vec<StreamEvent>,
    /// CloudTrail records, from files, lookup-events, EventBridge events or log events.
    trail: TrailSink,
    /// How many CloudTrail records (of any kind) were seen.
    records: usize,
    /// CloudWatch Logs control messages (health checks).
    control: usize,
    /// Documents of no known shape.
    unknown: usize,
}

impl Gathered {
    fn document(&mut self, text: &str, whole: u64, depth: u8) -> Result<()> {
        // `filter-log-events` output, the bulk of streamed input, straight into events.
        #[derive(Deserialize)]
        struct FilterOut {
            events: Vec<StreamEvent>,
        }
        if text.trim_start().starts_with("{\"events\"") || text.contains("\"logStreamName\"") {
            if let Ok(out) = serde_json::from_str::<FilterOut>(text) {
                self.events.extend(out.events);
                return Ok(());
            }
        }
        let value: Value = serde_json::from_str(text)?;
        // A stream message keeps its own text: the stream's document is made of it.
        if value.get("sessionData").is_some() {
            self.events.push(StreamEvent {
                log_stream_name: None,
                timestamp: 0,
                message: text.trim().to_string(),
                event_id: None,
            });
            return Ok(());
        }
        self.value(value, whole, depth)
    }

    fn value(&mut self, v: Value, whole: u64, depth: u8) -> Result<()> {
        if depth > MAX_WRAPPING {
            self.unknown += 1;
            return Ok(());
        }
        let obj = match v {
            Value::Array(items) => {
                for i in items {
                    self.value(i, whole, depth + 1)?;
                }
                return Ok(());
            }
            Value::Object(o) => o,
            _ => {
                self.unknown += 1;
                return Ok(());
            }
        };
        let text = |k: &str| obj.get(k).and_then(Value::as_str);
        if let Some(data) = obj.get("awslogs").and_then(|a| a.get("data")) {
            let raw = data
                .as_str()
                .and_then(base64_decode)
                .ok_or_else(|| Error::Corrupt {
                    kind: "CloudWatch Logs subscription event",
                    reason: "awslogs.data is not base64".into(),
                })?;
            let inflated = gunzip_within(&raw, whole)?;
            let inner = std::str::from_utf8(&inflated).map_err(|e| Error::Corrupt {
                kind: "CloudWatch Logs subscription event",
                reason: format!("its payload is not UTF-8: {e}"),
            })?;
            return self.document(inner, whole, depth + 1);
        }
        if let Some(kind) = text("messageType") {
            if kind == "CONTROL_MESSAGE" {
                self.control += 1;
                return Ok(());
            }
            let stream = text("logStream").map(String::from);
            for e in obj
                .get("logEvents")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.events.push(StreamEvent {
                    log_stream_name: stream.clone(),
                    timestamp: e.get("timestamp").and_then(Value::as_i64).unwrap_or(0),
                    message: e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    event_id: e.get("id").and_then(Value::as_str).map(String::from),
                });
            }
            return Ok(());
        }
        if let Some(events) = obj.get("events").and_then(Value::as_array) {
            for e in events {
                self.events.push(StreamEvent::deserialize(e)?);
            }
            return Ok(());
        }
        if obj.get("message").is_some_and(Value::is_string) && obj.contains_key("timestamp") {
            self.events
                .push(StreamEvent::deserialize(Value::Object(obj))?);
            return Ok(());
        }
        let obj = Value::Object(obj);
        if self.record(&obj) {
            return Ok(());
        }
        // `{"Records": [...]}` (a CloudTrail file among other documents), lookup-events'
        // `{"Events": [...]}`.
        for list in ["Records", "Events"] {
            if let Some(items) = obj.get(list).and_then(Value::as_array) {
                for i in items {
                    if !self.record(i) {
                        self.value(i.clone(), whole, depth + 1)?;
                    }
                }
                return Ok(());
            }
        }
        if obj.get("sessionData").is_some() {
            self.events.push(StreamEvent {
                log_stream_name: None,
                timestamp: 0,
                message: obj.to_string(),
                event_id: None,
            });
            return Ok(());
        }
        self.unknown += 1;
        Ok(())
    }

    /// A CloudTrail record however it is wrapped: as it is, as an EventBridge event's `detail`,
    /// as a lookup-events event's `CloudTrailEvent` text. False when `v` is none of these.
    fn record(&mut self, v: &Value) -> bool {
        match trail_record(v) {
            Some(r) => {
                self.records += 1;
                self.trail.any(&r);
                true
            }
            None => false,
        }
    }

    fn finish(mut self, name: &str) -> Result<Parsed> {
        // Log events whose messages are CloudTrail records (a trail delivered to CloudWatch
        // Logs, EventBridge events kept in a log group) are records; the rest are sessions.
        let mut sessions = Vec::new();
        for e in std::mem::take(&mut self.events) {
            // Only a message naming a record's or a wrapper's field is read as one.
            let m = &e.message;
            let record = (m.trim_start().starts_with('{')
                && (m.contains("eventSource") || m.contains("CloudTrailEvent")))
            .then(|| serde_json::from_str::<Value>(m).ok())
            .flatten()
            .filter(|v| v.get("sessionData").is_none());
            match record {
                Some(v) if self.record(&v) => {}
                _ => sessions.push(e),
            }
        }
        let transcripts = if sessions.is_empty() {
            None
        } else {
            Some(streams(name, sessions)?)
        };
        let trail = (self.records > 0).then(|| self.trail.parsed());
        Ok(match (transcripts, trail) {
            (
                Some(Parsed::Transcripts(ts)),
                Some(Parsed::Trail {
                    events,
                    tags,
                    ignored,
                }),
            ) => Parsed::Mixed {
                transcripts: ts,
                events,
                tags,
                ignored,
            },
            (Some(t @ Parsed::Transcripts(_)), _) => t,
            (_, Some(t)) => t,
            (Some(skipped), None) => skipped,
            (None, None) if self.control > 0 => {
                Parsed::Skipped("a CloudWatch Logs CONTROL_MESSAGE (a health check)".into())
            }
            (None, None) => {
                let what = "JSON that is none of: CloudTrail records (a file, lookup-events output, EventBridge events), describe-instances output, CloudWatch Logs events or subscription payload, Session Manager stream messages";
                // Where CloudTrail files live, a file of another shape is damaged, not merely
                // something else.
                if name.contains("CloudTrail") || name.ends_with(".log") {
                    return Err(Error::Unrecognised(what.into()));
                }
                Parsed::Skipped(what.into())
            }
        })
    }
}

/// Is `v` a CloudTrail record, or an event that wraps one (EventBridge, lookup-events)?
pub fn is_trail_record(v: &Value) -> bool {
    trail_record(v).is_some()
}

/// Is a log event's message a CloudTrail record, or an event that wraps one: a trail delivered
/// to CloudWatch Logs, EventBridge events kept in a log group. (A session's stream message is
/// not.)
pub fn is_trail_message(message: &str) -> bool {
    message.trim_start().starts_with('{')
        && (message.contains("eventSource") || message.contains("CloudTrailEvent"))
        && serde_json::from_str::<Value>(message)
            .is_ok_and(|v| v.get("sessionData").is_none() && is_trail_record(&v))
}

/// The CloudTrail record `v` is or wraps: a record (`eventName` and `eventSource`), an
/// EventBridge "AWS API Call via CloudTrail" event (its `detail`), a lookup-events event (its
/// `CloudTrailEvent`, a record as text), a SIEM's export of one (Splunk's `result` and `_raw`,
/// Elasticsearch's `_source`).
fn trail_record(v: &Value) -> Option<Cow<'_, Value>> {
    let is_record = |r: &Value| r.get("eventName").is_some() && r.get("eventSource").is_some();
    if is_record(v) {
        return Some(Cow::Borrowed(v));
    }
    if v.get("detail-type").is_some() {
        return v.get("detail").filter(|d| is_record(d)).map(Cow::Borrowed);
    }
    if let Some(inner) = ["result", "_source"]
        .iter()
        .find_map(|k| v.get(*k).filter(|i| i.is_object()))
    {
        return trail_record(inner);
    }
    let text = ["CloudTrailEvent", "_raw"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))?;
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(is_record)
        .map(Cow::Owned)
}

/// Is this an EC2 event that may change an instance's `Name` tag?
fn is_tag_event(source: Option<&str>, name: Option<&str>) -> bool {
    source == Some("ec2.amazonaws.com")
        && matches!(name, Some("CreateTags" | "DeleteTags" | "RunInstances"))
}

/// The `Name` tag changes of a successful `CreateTags`, `DeleteTags` or `RunInstances`.
fn tag_changes(r: &Value, out: &mut Vec<TagChange>) {
    if r.get("errorCode").is_some_and(|e| !e.is_null()) {
        return;
    }
    let s = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(String::from);
    let (Some(name), Some(time)) = (s(r, "/eventName"), s(r, "/eventTime")) else {
        return;
    };
    let items = |v: Option<&Value>| -> Vec<Value> {
        v.and_then(|v| v.get("items").or(Some(v)))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let is_instance = |id: &str| id.starts_with("i-") || id.starts_with("mi-");
    let (ids, tags): (Vec<String>, Vec<Value>) = if name == "RunInstances" {
        let ids = items(r.pointer("/responseElements/instancesSet"))
            .iter()
            .filter_map(|i| s(i, "/instanceId"))
            .collect();
        let tags = items(r.pointer("/requestParameters/tagSpecificationSet"))
            .into_iter()
            .filter(|spec| spec.get("resourceType").and_then(Value::as_str) == Some("instance"))
            .flat_map(|spec| items(spec.get("tags").or(spec.get("tagSet"))))
            .collect();
        (ids, tags)
    } else {
        let ids = items(r.pointer("/requestParameters/resourcesSet"))
            .iter()
            .filter_map(|i| s(i, "/resourceId"))
            .collect();
        (ids, items(r.pointer("/requestParameters/tagSet")))
    };
    let Some(tag) = tags
        .iter()
        .rev()
        .find(|t| t.get("key").and_then(Value::as_str) == Some("Name"))
    else {
        return;
    };
    let value = (name != "DeleteTags").then(|| s(tag, "/value")).flatten();
    if name != "DeleteTags" && value.is_none() {
        return;
    }
    let time = normal_time(&time);
    for id in ids.into_iter().filter(|i| is_instance(i)) {
        out.push(TagChange {
            time: time.clone(),
            instance_id: id,
            name: value.clone(),
            event_name: name.clone(),
            event_id: s(r, "/eventID"),
        });
    }
}

/// What tells a record's kind.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordHead<'a> {
    #[serde(borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_name: Option<Cow<'a, str>>,
    /// An S3 event notification's record has one.
    #[serde(default, deserialize_with = "present")]
    s3: bool,
}

/// The key is there, whatever its value.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// The parts of a Session Manager event that [`session_event`] reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionRecord<'a> {
    #[serde(borrow)]
    event_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_identity: Option<Identity<'a>>,
    #[serde(borrow)]
    request_parameters: Option<SessionParameters<'a>>,
    #[serde(borrow)]
    response_elements: Option<SessionResponse<'a>>,
    #[serde(rename = "sourceIPAddress", borrow)]
    source_ip_address: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aws_region: Option<Cow<'a, str>>,
    #[serde(borrow)]
    recipient_account_id: Option<Cow<'a, str>>,
    #[serde(rename = "eventID", borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error_code: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    principal_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    account_id: Option<Cow<'a, str>>,
    session_context: Option<SessionContext>,
}

#[derive(Deserialize)]
struct SessionContext {
    attributes: Option<SessionAttributes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionAttributes {
    /// `"true"`, `"false"` or a boolean.
    mfa_authenticated: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionParameters<'a> {
    #[serde(borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    target: Option<Cow<'a, str>>,
    #[serde(borrow)]
    document_name: Option<Cow<'a, str>>,
    /// A session document's parameters (`command`, a list of strings, for interactive
    /// commands).
    parameters: Option<Value>,
    /// ECS Exec's command.
    command: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionResponse<'a> {
    #[serde(borrow)]
    session_id: Option<Cow<'a, str>>,
    /// ECS Exec's session.
    #[serde(borrow)]
    session: Option<EcsSession<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EcsSession<'a> {
    #[serde(borrow)]
    session_id: Option<Cow<'a, str>>,
}

/// The fields of a CloudTrail record that a session event is made of (each `None` where the
/// record has no string there).
struct RecordFields<'a> {
    source: Option<&'a str>,
    name: Option<&'a str>,
    event_time: Option<&'a str>,
    response_session_id: Option<&'a str>,
    request_session_id: Option<&'a str>,
    arn: Option<&'a str>,
    identity_type: Option<&'a str>,
    user_name: Option<&'a str>,
    principal_id: Option<&'a str>,
    identity_account: Option<&'a str>,
    mfa: Option<&'a Value>,
    source_ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    target: Option<&'a str>,
    document_name: Option<&'a str>,
    command: Option<&'a Value>,
    region: Option<&'a str>,
    recipient_account: Option<&'a str>,
    event_id: Option<&'a str>,
    error_code: Option<&'a str>,
}

fn fields_of_value(r: &Value) -> RecordFields<'_> {
    let s = |p: &str| r.pointer(p).and_then(Value::as_str);
    RecordFields {
        source: s("/eventSource"),
        name: s("/eventName"),
        event_time: s("/eventTime"),
        response_session_id: s("/responseElements/sessionId")
            .or_else(|| s("/responseElements/session/sessionId")),
        request_session_id: s("/requestParameters/sessionId"),
        arn: s("/userIdentity/arn"),
        identity_type: s("/userIdentity/type"),
        user_name: s("/userIdentity/userName"),
        principal_id: s("/userIdentity/principalId"),
        identity_account: s("/userIdentity/accountId"),
        mfa: r.pointer("/userIdentity/sessionContext/attributes/mfaAuthenticated"),
        source_ip: s("/sourceIPAddress"),
        user_agent: s("/userAgent"),
        target: s("/requestParameters/target"),
        document_name: s("/requestParameters/documentName"),
        command: r
            .pointer("/requestParameters/parameters/command")
            .or_else(|| r.pointer("/requestParameters/command")),
        region: s("/awsRegion"),
        recipient_account: s("/recipientAccountId"),
        event_id: s("/eventID"),
        error_code: s("/errorCode"),
    }
}

fn fields_of_record<'a>(head: &'a RecordHead<'a>, r: &'a SessionRecord<'a>) -> RecordFields<'a> {
    let id = r.user_identity.as_ref();
    let params = r.request_parameters.as_ref();
    let s = |v: Option<&'a Cow<'a, str>>| v.map(Cow::as_ref);
    RecordFields {
        source: s(head.event_source.as_ref()),
        name: s(head.event_name.as_ref()),
        event_time: s(r.event_time.as_ref()),
        response_session_id: s(r.response_elements.as_ref().and_then(|e| {
            e.session_id
                .as_ref()
                .or_else(|| e.session.as_ref().and_then(|s| s.session_id.as_ref()))
        })),
        request_session_id: s(params.and_then(|p| p.session_id.as_ref())),
        arn: s(id.and_then(|i| i.arn.as_ref())),
        identity_type: s(id.and_then(|i| i.kind.as_ref())),
        user_name: s(id.and_then(|i| i.user_name.as_ref())),
        principal_id: s(id.and_then(|i| i.principal_id.as_ref())),
        identity_account: s(id.and_then(|i| i.account_id.as_ref())),
        mfa: id
            .and_then(|i| i.session_context.as_ref())
            .and_then(|c| c.attributes.as_ref())
            .and_then(|a| a.mfa_authenticated.as_ref()),
        source_ip: s(r.source_ip_address.as_ref()),
        user_agent: s(r.user_agent.as_ref()),
        target: s(params.and_then(|p| p.target.as_ref())),
        document_name: s(params.and_then(|p| p.document_name.as_ref())),
        command: params.and_then(|p| {
            p.parameters
                .as_ref()
                .and_then(|v| v.get("command"))
                .or(p.command.as_ref())
        }),
        region: s(r.aws_region.as_ref()),
        recipient_account: s(r.recipient_account_id.as_ref()),
        event_id: s(r.event_id.as_ref()),
        error_code: s(r.error_code.as_ref()),
    }
}

/// Is this a Session Manager event of a session's life (ECS Exec's `ExecuteCommand` starts
/// one too)?
fn is_session_event(source: Option<&str>, name: Option<&str>) -> bool {
    match source {
        Some("ssm.amazonaws.com") => matches!(
            name,
            Some("StartSession" | "ResumeSession" | "TerminateSession")
        ),
        Some("ecs.amazonaws.com") => name == Some("ExecuteCommand"),
        _ => false,
    }
}

/// A command parameter as one text: a string, or a list of strings joined by newlines.
fn command_text(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    };
    (!text.trim().is_empty()).then_some(text)
}

/// The session event a record holds, if it holds one.
fn session_event(f: RecordFields<'_>) -> Option<TrailEvent> {
    if !is_session_event(f.source, f.name) {
        return None;
    }
    let own = |v: Option<&str>| v.map(String::from);
    // A denied StartSession names no session (none began): it is kept, with an empty id, as
    // an attempt on its target.
    let session_id = match own(f.response_session_id.or(f.request_session_id)) {
        Some(id) => id,
        None if f.error_code.is_some() => String::new(),
        None => return None,
    };
    let arn = own(f.arn);
    let ptype = own(f.identity_type);
    let principal = own(f.user_name)
        .filter(|_| ptype.as_deref() == Some("IAMUser"))
        .or_else(|| arn.as_deref().and_then(principal_from_arn))
        .or_else(|| {
            f.principal_id
                .and_then(|p| p.split_once(':').map(|(_, n)| n.to_string()))
        });
    let mfa = match f.mfa {
        Some(Value::String(v)) => Some(v == "true"),
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    Some(TrailEvent {
        event_name: own(f.name).unwrap_or_default(),
        event_time: f.event_time.map(normal_time).unwrap_or_default(),
        session_id,
        principal_arn: arn,
        principal,
        principal_type: ptype,
        principal_id: own(f.principal_id),
        mfa,
        source_ip: own(f.source_ip),
        user_agent: own(f.user_agent),
        target: own(f.target),
        document_name: own(f.document_name),
        command: f.command.and_then(command_text),
        region: own(f.region),
        account: own(f.recipient_account.or(f.identity_account)),
        event_id: own(f.event_id),
        error_code: own(f.error_code),
        ..TrailEvent::default()
    })
}

/// An event time as RFC 3339 UTC (`2025-02-19T20:13:49Z`), whichever way it was written:
/// CloudTrail's own form, or an export's (`2025-02-19 20:13:49`, with fractions, with an
/// offset, as epoch milliseconds). A time that is none of these is kept as it is.
pub fn normal_time(s: &str) -> String {
    use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
    let t = s.trim();
    if t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T' {
        return t.to_string();
    }
    let utc: Option<DateTime<Utc>> = DateTime::parse_from_rfc3339(t)
        .or_else(|_| DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .or_else(|_| DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f %z"))
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f UTC",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
            .map(|n| n.and_utc())
        })
        .or_else(|| {
            // Epoch milliseconds (13 digits) or seconds (10).
            let n: i64 = t.parse().ok()?;
            match t.len() {
                13 => DateTime::from_timestamp_millis(n),
                10 => DateTime::from_timestamp(n, 0),
                _ => None,
            }
        });
    match utc {
        Some(u) => u.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => s.to_string(),
    }
}

/// What the records of a CloudTrail file give, taken one record at a time.
#[derive(Default)]
struct TrailSink {
    events: Vec<TrailEvent>,
    tags: Vec<TagChange>,
    ignored: usize,
    /// The objects named by records that are S3 event notifications, when there are any.
    s3: Option<Vec<String>>,
    /// The bytes of the records that gave events or tag changes.
    kept_bytes: u64,
}

impl TrailSink {
    /// Session events and tag changes kept so far.
    fn kept(&self) -> usize {
        self.events.len() + self.tags.len()
    }

    /// One record: read into types where it fits them, else as a value of its own.
    fn record(&mut self, raw: &serde_json::value::RawValue) {
        // Not an object: no event, no tag change (and no cost per record for a flood of them).
        if !raw.get().starts_with('{') {
            self.ignored += 1;
            return;
        }
        let head = serde_json::from_str::<RecordHead<'_>>(raw.get()).ok();
        let value =
            |raw: &serde_json::value::RawValue| serde_json::from_str::<Value>(raw.get()).ok();
        if head.as_ref().is_none_or(|h| h.s3) {
            // Not of the types (a record that is not an object, a field of another type), or
            // an S3 event notification: this record alone, as a value.
            match value(raw) {
                Some(v) => self.any(&v),
                None => self.ignored += 1,
            }
            return;
        }
        let Some(head) = head else { return };
        if is_tag_event(head.event_source.as_deref(), head.event_name.as_deref()) {
            let before = self.tags.len();
            if let Some(v) = value(raw) {
                tag_changes(&v, &mut self.tags);
            }
            self.ignored += usize::from(self.tags.len() == before);
            return;
        }
        if !is_session_event(head.event_source.as_deref(), head.event_name.as_deref()) {
            self.ignored += 1;
            return;
        }
        let event = match serde_json::from_str::<SessionRecord<'_>>(raw.get()) {
            Ok(r) => session_event(fields_of_record(&head, &r)),
            Err(_) => value(raw).and_then(|v| session_event(fields_of_value(&v))),
        };
        match event {
            Some(e) => self.events.push(e),
            None => self.ignored += 1,
        }
    }

    /// One record read as a value, whatever it is: an S3 event notification's record (its
    /// object named), a tag change, a session event, or ignored.
    fn any(&mut self, v: &Value) {
        if v.get("s3").is_some() {
            let names = self.s3.get_or_insert_with(Vec::new);
            if let (Some(b), Some(k)) = (
                v.pointer("/s3/bucket/name").and_then(Value::as_str),
                v.pointer("/s3/object/key").and_then(Value::as_str),
            ) {
                names.push(format!("s3://{b}/{}", decode_s3_key(k)));
            }
            return;
        }
        self.value(v);
    }

    /// One record read as a value: a tag change, a session event, or ignored.
    fn value(&mut self, v: &Value) {
        let f = fields_of_value(v);
        if is_tag_event(f.source, f.name) {
            let before = self.tags.len();
            tag_changes(v, &mut self.tags);
            self.ignored += usize::from(self.tags.len() == before);
            return;
        }
        match session_event(f) {
            Some(e) => self.events.push(e),
            None => self.ignored += 1,
        }
    }

    fn parsed(self) -> Parsed {
        match self.s3 {
            Some(names) => {
                let named = if names.is_empty() {
                    "no object".to_string()
                } else {
                    names.join(", ")
                };
                Parsed::Skipped(format!(
                    "an S3 event notification (it names {named}): ingest the objects themselves"
                ))
            }
            None => Parsed::Trail {
                events: self.events,
                tags: self.tags,
                ignored: self.ignored,
            },
        }
    }
}

/// The top-level object of a CloudTrail file: its `Records` array given to the sink record by
/// record as it is read, every other member skipped without being kept. `R` is how one record
/// is held while the sink reads it: borrowed from a text, or owned when read from a stream.
struct TrailDoc<'s, R> {
    sink: &'s mut TrailSink,
    progress: Option<&'s Progress>,
    /// Set once a `Records` array began: from then on the input is a CloudTrail file, broken
    /// or not, and never read as a whole.
    seen: &'s mut bool,
    record: std::marker::PhantomData<R>,
}

impl<'de, R> serde::de::DeserializeSeed<'de> for TrailDoc<'_, R>
where
    R: Deserialize<'de> + std::ops::Deref<Target = serde_json::value::RawValue>,
{
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, R> serde::de::Visitor<'de> for TrailDoc<'_, R>
where
    R: Deserialize<'de> + std::ops::Deref<Target = serde_json::value::RawValue>,
{
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "Records" && !*self.seen {
                map.next_value_seed(TrailRecords::<R> {
                    sink: &mut *self.sink,
                    progress: self.progress,
                    seen: &mut *self.seen,
                    record: std::marker::PhantomData,
                })?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// The `Records` array, each element given to the sink as it is read.
struct TrailRecords<'s, R> {
    sink: &'s mut TrailSink,
    progress: Option<&'s Progress>,
    seen: &'s mut bool,
    record: std::marker::PhantomData<R>,
}

impl<'de, R> serde::de::DeserializeSeed<'de> for TrailRecords<'_, R>
where
    R: Deserialize<'de> + std::ops::Deref<Target = serde_json::value::RawValue>,
{
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, R> serde::de::Visitor<'de> for TrailRecords<'_, R>
where
    R: Deserialize<'de> + std::ops::Deref<Target = serde_json::value::RawValue>,
{
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of CloudTrail records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<(), A::Error> {
        use serde::de::Error as _;
        *self.seen = true;
        let mark = |p: Option<&Progress>| {
            if let Some(p) = p {
                p.in_records.set(true);
                p.record_start.set(p.read.get());
            }
        };
        mark(self.progress);
        while let Some(raw) = seq.next_element::<R>()? {
            let len = raw.get().len() as u64;
            if len > MAX_RECORD_BYTES {
                return Err(A::Error::custom(record_too_long(len)));
            }
            let before = self.sink.kept();
            self.sink.record(&raw);
            if self.sink.kept() > before {
                self.sink.kept_bytes += len;
                if self.sink.kept() > MAX_KEPT_RECORDS || self.sink.kept_bytes > MAX_KEPT_BYTES {
                    return Err(A::Error::custom(format!(
                        "more than {MAX_KEPT_RECORDS} session events and Name tag changes, or more than {} MiB of them, in one file (a CloudTrail file holds about five minutes of one region): refused",
                        MAX_KEPT_BYTES >> 20
                    )));
                }
            }
            mark(self.progress);
        }
        Ok(())
    }
}

/// A CloudTrail file (`{"Records": [...]}`) read record by record from `de`: `None` when the
/// input is not one object with a `Records` array (it is read as a whole elsewhere).
fn trail_records<'de, R, I>(
    de: &mut serde_json::Deserializer<I>,
    progress: Option<&Progress>,
) -> Option<Result<Parsed>>
where
    R: Deserialize<'de> + std::ops::Deref<Target = serde_json::value::RawValue>,
    I: serde_json::de::Read<'de>,
{
    use serde::de::DeserializeSeed;
    let mut sink = TrailSink::default();
    let mut seen = false;
    let read = TrailDoc::<R> {
        sink: &mut sink,
        progress,
        seen: &mut seen,
        record: std::marker::PhantomData,
    }
    .deserialize(&mut *de)
    .and_then(|()| de.end());
    match read {
        Ok(()) if seen => Some(Ok(sink.parsed())),
        Err(e) if seen => Some(Err(Error::Json(e))),
        _ => None,
    }
}

/// A CloudTrail text read record by record (see [`trail_records`]).
fn trail_streamed(text: &str) -> Option<Result<Parsed>> {
    trail_records::<&serde_json::value::RawValue, _>(
        &mut serde_json::Deserializer::from_str(text),
        None,
    )
}

/// The principal's name in an ARN: `user/NAME`, `assumed-role/ROLE/NAME`, `federated-user/NAME`.
pub fn principal_from_arn(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    if resource == "root" {
        return Some("root".into());
    }
    let mut parts = resource.split('/');
    match parts.next()? {
        "assumed-role" => parts.nth(1).map(String::from),
        _ => resource.rsplit('/').next().map(String::from),
    }
}

fn inventory(reservations: &[Value]) -> Vec<Instance> {
    let mut out = Vec::new();
    for r in reservations {
        for i in r
            .get("Instances")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(id) = i.get("InstanceId").and_then(Value::as_str) else {
                continue;
            };
            let name = i
                .get("Tags")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|t| t.get("Key").and_then(Value::as_str) == Some("Name"))
                .and_then(|t| t.get("Value").and_then(Value::as_str))
                .map(String::from);
            out.push(Instance {
                instance_id: id.to_string(),
                name,
            });
        }
    }
    out
}

// ---- CloudWatch Logs -----------------------------------------------------------------------

/// A streamed message: one compact JSON object per event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamMessage {
    #[serde(default)]
    event_time: Option<String>,
    #[serde(default)]
    target: Option<Value>,
    #[serde(default)]
    user_identity: Option<Value>,
    #[serde(default)]
    run_as_user: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    session_data: Vec<String>,
}

/// One log event of a CloudWatch Logs stream, however it was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamEvent {
    /// The log stream (a session's id, for Session Manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_stream_name: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub timestamp: i64,
    /// The message.
    pub message: String,
    /// The event id (absent where only messages were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// The canonical document of a stream's events, and the byte range of each event in it.
///
/// A streamed session reaches ssm-audit as subscription deliveries, `aws logs
/// filter-log-events` output or a `cloudwatch://` read: each shape is turned into this one
/// document, so that its SHA-256 and the byte ranges of its commands are the same whichever way
/// it came. The document is `{"events":[E,…]}` without spaces, one `E` per event as
/// `{"logStreamName":…,"timestamp":…,"message":…,"eventId":…}` (a missing stream name or id
/// left out) as `serde_json` writes it, events sorted by timestamp then event id (stably), an
/// event id seen twice kept once. It is itself `filter-log-events` output, and canonical: read
/// again, it gives itself.
pub fn stream_document(events: &[StreamEvent]) -> (Vec<u8>, Vec<(u64, u64)>) {
    write_document(&document_order(events))
}

/// Each event of a stream's canonical document ([`stream_document`]): its byte range in the
/// document and the `eventTime` its message carries (when the agent sent it, about a second
/// after the lines in it were printed). Empty when `document` is not a canonical document.
pub fn stream_event_times(document: &[u8]) -> Vec<((u64, u64), Option<String>)> {
    #[derive(Deserialize)]
    struct Document {
        events: Vec<StreamEvent>,
    }
    let Ok(doc) = serde_json::from_slice::<Document>(document) else {
        return Vec::new();
    };
    let order = document_order(&doc.events);
    let (written, ranges) = write_document(&order);
    if written != document {
        return Vec::new();
    }
    order
        .iter()
        .zip(ranges)
        .map(|(e, r)| (r, stream_message(&e.message).and_then(|m| m.event_time)))
        .collect()
}

/// The events of a stream in its canonical document's order: by timestamp then event id, an
/// id seen twice once.
fn document_order(events: &[StreamEvent]) -> Vec<&StreamEvent> {
    let mut order: Vec<&StreamEvent> = events.iter().collect();
    order.sort_by(|a, b| (a.timestamp, &a.event_id).cmp(&(b.timestamp, &b.event_id)));
    order.dedup_by(|b, a| a.event_id.is_some() && a.event_id == b.event_id);
    order
}

/// The document of events already in [`document_order`], and each one's byte range in it.
fn write_document(order: &[&StreamEvent]) -> (Vec<u8>, Vec<(u64, u64)>) {
    let mut doc = Vec::with_capacity(order.iter().map(|e| e.message.len() + 96).sum());
    let mut ranges = Vec::with_capacity(order.len());
    doc.extend_from_slice(b"{\"events\":[");
    for (i, e) in order.iter().enumerate() {
        if i > 0 {
            doc.push(b',');
        }
        let start = doc.len() as u64;
        // Writing a struct of strings and an integer into memory cannot fail.
        let _ = serde_json::to_writer(&mut doc, e);
        ranges.push((start, doc.len() as u64));
    }
    doc.extend_from_slice(b"]}");
    (doc, ranges)
}

/// Group log events into one transcript per session, each read from its canonical document
/// ([`stream_document`]).
fn streams(name: &str, events: Vec<StreamEvent>) -> Result<Parsed> {
    use std::collections::BTreeMap;
    let mut by_session: BTreeMap<String, Vec<StreamEvent>> = BTreeMap::new();
    let mut skipped = Vec::new();
    for e in events {
        let msg = stream_message(&e.message);
        let sid = match &msg {
            Some(m) => m.session_id.clone().or_else(|| e.log_stream_name.clone()),
            None => e.log_stream_name.clone(),
        };
        let Some(sid) = sid else {
            skipped.push("an event with no session id".to_string());
            continue;
        };
        if sessionid::parse(&sid).is_none() && msg.is_none() {
            skipped.push(format!(
                "log stream {sid:?} is not a Session Manager session"
            ));
            continue;
        }
        by_session.entry(sid).or_default().push(e);
    }
    if by_session.is_empty() {
        let why = skipped
            .first()
            .cloned()
            .unwrap_or_else(|| "no log events".into());
        return Ok(Parsed::Skipped(format!(
            "CloudWatch Logs data with no Session Manager session ({why}) in {}",
            file_stem(name)
        )));
    }
    Ok(Parsed::Transcripts(
        by_session
            .into_iter()
            .map(|(sid, events)| stream_transcript(sid, &events))
            .collect(),
    ))
}

/// A message that is a Session Manager stream message (session data or a session id), not raw
/// transcript text.
fn stream_message(message: &str) -> Option<StreamMessage> {
    serde_json::from_str::<StreamMessage>(message)
        .ok()
        .filter(|m| !m.session_data.is_empty() || m.session_id.is_some())
}

/// The transcript of one session's events, read from their canonical document.
fn stream_transcript(sid: String, events: &[StreamEvent]) -> Transcript {
    let order = document_order(events);
    let (document, ranges) = write_document(&order);
    let mut t = Transcript {
        session_id: sid,
        session_id_from: IdFrom::Stream,
        kind: SourceKind::CloudwatchStream,
        body: Vec::new(),
        body_offset: 0,
        spans: Vec::new(),
        instance_id: None,
        principal_arn: None,
        run_as: None,
        first_time: None,
        last_time: None,
        stripped: false,
        document: None,
    };
    let mut first = true;
    for (e, &(a, b)) in order.iter().zip(&ranges) {
        let msg = stream_message(&e.message);
        if first {
            t.stripped = msg.is_some();
            first = false;
        }
        t.spans.push((t.body.len() as u64, a, b));
        match &msg {
            Some(m) => {
                for l in &m.session_data {
                    t.body.extend_from_slice(l.as_bytes());
                    t.body.extend_from_slice(b"\r\n");
                }
            }
            // Non-streaming uploads turned `\r\n` into `\n`: the replay treats LF as a new line.
            None => t.body.extend_from_slice(e.message.as_bytes()),
        }
        if let Some(m) = msg {
            if t.instance_id.is_none() {
                t.instance_id = m
                    .target
                    .as_ref()
                    .and_then(|v| v.get("id"))
                    .and_then(Value::as_str)
                    .map(String::from);
            }
            if t.principal_arn.is_none() {
                t.principal_arn = m
                    .user_identity
                    .as_ref()
                    .and_then(|v| v.get("arn"))
                    .and_then(Value::as_str)
                    .map(String::from);
            }
            if t.run_as.is_none() {
                t.run_as = m.run_as_user;
            }
            if let Some(time) = m.event_time {
                if t.first_time.is_none() {
                    t.first_time = Some(time.clone());
                }
                t.last_time = Some(time);
            }
        }
    }
    t.document = Some(document);
    t
}

/// An S3 event's object key: `+` is a space, then `%XX` escapes (UTF-8).
pub fn decode_s3_key(key: &str) -> String {
    let plus = key.replace('+', " ");
    let bytes = plus.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&plus[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b'\n' | b'\r' | b' ' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A streamed session's events: (id, timestamp, message).
    fn stream_events() -> Vec<(String, i64, String)> {
        (0..4)
            .map(|i| {
                let msg = serde_json::json!({
                    "eventVersion": "1.0", "eventTime": format!("2026-02-11T05:00:0{i}Z"),
                    "awsRegion": "us-east-1", "target": {"id": "i-0d44dd44dd44dd444"},
                    "userIdentity": {"arn": "arn:aws:sts::444455556666:assumed-role/R/hyejin"},
                    "runAsUser": "ssm-user", "sessionId": "hyejin-0123456789abcdef0",
                    "sessionData": [format!("sh-4.2$ echo {i}"), format!("{i}")],
                });
                (format!("3799{i}"), 1_770_786_000_000 + i, msg.to_string())
            })
            .collect()
    }

    #[test]
    fn each_event_of_a_stream_document_has_its_range_and_time() {
        let stream = "hyejin-0123456789abcdef0";
        let text = serde_json::json!({"events": stream_events().iter().map(|(id, ts, m)| {
            serde_json::json!({"logStreamName": stream, "timestamp": ts, "message": m, "eventId": id})
        }).collect::<Vec<_>>()})
        .to_string();
        let (doc, _, _) = transcript_of("s.json", &text);
        let times = stream_event_times(&doc);
        assert_eq!(times.len(), 4);
        for (i, ((start, end), time)) in times.iter().enumerate() {
            assert_eq!(
                time.as_deref(),
                Some(format!("2026-02-11T05:00:0{i}Z").as_str())
            );
            let event = &doc[*start as usize..*end as usize];
            assert!(event.starts_with(b"{") && event.ends_with(b"}"));
        }
        // Not a canonical document: nothing is claimed.
        assert!(stream_event_times(text.as_bytes()).is_empty() || text.as_bytes() == doc);
        assert!(stream_event_times(b"{\"events\":[").is_empty());
    }

    /// A transcript's document, its spans (body offset, document range) and its body.
    type Read = (Vec<u8>, Vec<(u64, u64, u64)>, Vec<u8>);

    /// What the one transcript a text holds was read from.
    fn transcript_of(name: &str, text: &str) -> Read {
        match parse(name, text.as_bytes()).unwrap() {
            Parsed::Transcripts(mut ts) => {
                assert_eq!(ts.len(), 1);
                let t = ts.remove(0);
                (t.document.unwrap(), t.spans, t.body)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stream_has_one_document_whichever_shape_it_came_in() {
        let events = stream_events();
        let stream = "hyejin-0123456789abcdef0";
        let as_event = |(id, ts, m): &(String, i64, String)| {
            serde_json::json!({"logStreamName": stream, "timestamp": ts, "message": m,
                "ingestionTime": ts + 5, "eventId": id})
        };
        // `aws logs filter-log-events`, pretty-printed, with fields the document leaves out.
        let filter = serde_json::to_string_pretty(&serde_json::json!({
            "events": events.iter().map(as_event).collect::<Vec<_>>(),
            "searchedLogStreams": []
        }))
        .unwrap();
        // A subscription delivery, decoded, its events in two deliveries' order reversed.
        let mut reversed = events.clone();
        reversed.reverse();
        let subscription = serde_json::json!({
            "messageType": "DATA_MESSAGE", "owner": "444455556666",
            "logGroup": "/aws/ssm/sessions", "logStream": stream, "subscriptionFilters": ["f"],
            "logEvents": reversed.iter().map(|(id, ts, m)| serde_json::json!({"id": id, "timestamp": ts, "message": m})).collect::<Vec<_>>()
        })
        .to_string();
        // Events one per line, one of them twice.
        let mut lines: Vec<String> = events.iter().map(|e| as_event(e).to_string()).collect();
        lines.push(lines[1].clone());
        let jsonl = lines.join("\n");
        let a = transcript_of("a.json", &filter);
        let b = transcript_of("b.json", &subscription);
        let c = transcript_of("c.json", &jsonl);
        assert_eq!(a, b);
        assert_eq!(a, c);
        // The document is canonical: read again, it gives itself.
        let again = transcript_of("d.json", std::str::from_utf8(&a.0).unwrap());
        assert_eq!(again, a);
        // Each span is one event of the document, in time order.
        assert_eq!(a.1.len(), 4);
        for (i, &(_, start, end)) in a.1.iter().enumerate() {
            let e: StreamEvent =
                serde_json::from_slice(&a.0[start as usize..end as usize]).unwrap();
            assert_eq!(e.event_id.as_deref(), Some(events[i].0.as_str()));
        }
        assert!(String::from_utf8_lossy(&a.2).contains("sh-4.2$ echo 3\r\n3\r\n"));
    }

    #[test]
    fn name_tag_changes_are_read_from_successful_ec2_calls_only() {
        let rec = |name: &str, extra: &str, params: &str| {
            format!(
                r#"{{"eventSource":"ec2.amazonaws.com","eventName":"{name}","eventTime":"2026-03-01T00:00:00Z","eventID":"e-{name}","requestParameters":{params}{extra}}}"#
            )
        };
        let tags = r#"{"resourcesSet":{"items":[{"resourceId":"i-0a"},{"resourceId":"vol-1"}]},"tagSet":{"items":[{"key":"Env","value":"prod"},{"key":"Name","value":"EC2-A"}]}}"#;
        let run = r#"{"tagSpecificationSet":{"items":[{"resourceType":"volume","tags":[{"key":"Name","value":"disk"}]},{"resourceType":"instance","tags":[{"key":"Name","value":"web"}]}]}},"responseElements":{"instancesSet":{"items":[{"instanceId":"i-0b"}]}}"#;
        let text = format!(
            r#"{{"Records":[{},{},{},{}]}}"#,
            rec("CreateTags", "", tags),
            rec("DeleteTags", "", tags),
            rec(
                "CreateTags",
                r#","errorCode":"UnauthorizedOperation""#,
                tags
            ),
            rec("RunInstances", "", run),
        );
        let (typed, by_value) = both_ways(&text);
        assert_eq!(typed, by_value);
        let Ok(Parsed::Trail { tags, ignored, .. }) = parse("x.json", text.as_bytes()) else {
            panic!("a trail");
        };
        let got: Vec<(&str, &str, Option<&str>)> = tags
            .iter()
            .map(|t| {
                (
                    t.event_name.as_str(),
                    t.instance_id.as_str(),
                    t.name.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("CreateTags", "i-0a", Some("EC2-A")),
                ("DeleteTags", "i-0a", None),
                ("RunInstances", "i-0b", Some("web")),
            ]
        );
        assert_eq!(ignored, 1, "the failed call is ignored");
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_gzip_cloudtrail_file_is_read_as_it_inflates_within_the_json_limit() {
        let text = br#"{"Records":[{"eventSource":"ssm.amazonaws.com","eventName":"TerminateSession","eventTime":"2026-02-10T01:02:03Z","responseElements":{"sessionId":"jiwoo-0a1b"}}]}"#;
        let gz = gzip(text);
        // Cut short: a gzip error, named as one, not a JSON one.
        match gzip_trail(&gz[..gz.len() - 12]) {
            Some(Err(Error::Corrupt { kind: "gzip", .. })) => {}
            other => panic!("{other:?}"),
        }
        // Not CloudTrail: left to the whole-document reader.
        assert!(gzip_trail(&gzip(br#"{"Reservations":[]}"#)).is_none());
        assert!(gzip_trail(&gzip(br#"{"Records":7}"#)).is_none());
        // Records that inflate past the JSON limit: refused as a bomb, read no further.
        // (Gzip members one after another, as `gzip` concatenates: one 1 MiB record compressed
        // once and repeated.)
        let mut record = vec![b'"'];
        record.extend(std::iter::repeat_n(b'a', 1 << 20));
        record.extend(b"\",");
        let record = gzip(&record);
        let mut gz = gzip(b"{\"Records\":[");
        for _ in 0..(JSON_FLOOR_BYTES >> 20) + 8 {
            gz.extend(&record);
        }
        gz.extend(gzip(b"7]}"));
        assert!((gz.len() as u64) * MAX_JSON_INFLATE_RATIO < JSON_FLOOR_BYTES);
        match gzip_trail(&gz) {
            Some(Err(Error::Corrupt {
                kind: "gzip",
                reason,
            })) => {
                assert!(reason.contains("gzip bomb"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // One record longer than CloudTrail writes, or more kept records than five minutes of
        // a region hold: refused, compressed or not, and the long record refused while read.
        let long = format!(r#"{{"Records":["{}"]}}"#, "a".repeat(5 << 20));
        let many = format!(
            r#"{{"Records":[{}]}}"#,
            vec![
                std::str::from_utf8(text)
                    .unwrap()
                    .trim_start_matches(r#"{"Records":["#)
                    .trim_end_matches("]}");
                MAX_KEPT_RECORDS + 1
            ]
            .join(",")
        );
        for (text, said) in [(&long, "256 KB"), (&many, "five minutes")] {
            let plain = parse("x.json", text.as_bytes()).unwrap_err().to_string();
            assert!(plain.contains(said), "{plain}");
            let Some(Err(e)) = gzip_trail(&gzip(text.as_bytes())) else {
                panic!("refused")
            };
            assert!(e.to_string().contains(said), "{e}");
        }
        let under = many.replacen("TerminateSession", "GetObject", 1);
        assert!(
            matches!(parse("x.json", under.as_bytes()), Ok(Parsed::Trail { ref events, .. }) if events.len() == MAX_KEPT_RECORDS)
        );
        // `parse` reads a compressed CloudTrail file the same way.
        assert!(matches!(
            parse("x.json.gz", &gzip(text)),
            Ok(Parsed::Trail { ref events, .. }) if events.len() == 1
        ));
    }

    /// The events and the ignored count of a CloudTrail text, read both ways: record by
    /// record, and as one value.
    fn both_ways(text: &str) -> (String, String) {
        let streamed = format!("{:?}", trail_streamed(text).unwrap().unwrap());
        let value: Value = serde_json::from_str(text).unwrap();
        let mut sink = TrailSink::default();
        for r in value["Records"].as_array().unwrap() {
            sink.value(r);
        }
        let by_value = format!("{:?}", sink.parsed());
        (streamed, by_value)
    }

    #[test]
    fn typed_cloudtrail_records_read_as_values_do() {
        let start = |extra: &str| {
            format!(
                r#"{{"eventSource":"ssm.amazonaws.com","eventName":"StartSession","eventTime":"2026-02-10T01:02:03Z","awsRegion":"ap-northeast-2","sourceIPAddress":"10.0.0.1","userAgent":"aws-cli","eventID":"e-1","recipientAccountId":"444455556666","userIdentity":{{"type":"IAMUser","userName":"jiwoo","arn":"arn:aws:iam::444455556666:user/jiwoo","principalId":"AIDA:jiwoo","accountId":"444455556666","sessionContext":{{"attributes":{{"mfaAuthenticated":"true"}}}}}},"requestParameters":{{"target":"i-0123","documentName":"SSM-SessionManagerRunShell"}},"responseElements":{{"sessionId":"jiwoo-0a1b"}}{extra}}}"#
            )
        };
        let files = [
            // A plain file, with records of other services and types the typed path skips.
            format!(
                r#"{{"Records":[{},{{"eventSource":"s3.amazonaws.com","eventName":"GetObject","requestParameters":{{"target":{{"odd":1}}}}}},{}]}}"#,
                start(""),
                start(r#","eventTime":null"#).replace("StartSession", "TerminateSession")
            ),
            // Fields of unexpected types in a session record: read as a Value, the same way.
            format!(
                r#"{{"Records":[{},{}]}}"#,
                start("").replace(r#""mfaAuthenticated":"true""#, r#""mfaAuthenticated":true"#),
                start("").replace(r#""target":"i-0123""#, r#""target":["i-0123"]"#)
            ),
            // No session id, a non-string event name, a duplicated key.
            format!(
                r#"{{"Records":[{},{},{}]}}"#,
                start("").replace(
                    r#""responseElements":{"sessionId":"jiwoo-0a1b"}"#,
                    r#""responseElements":null"#
                ),
                start("").replace(r#""eventName":"StartSession""#, r#""eventName":1"#),
                start(r#","eventTime":"2026-02-11T00:00:00Z""#)
            ),
            // A record that is not an object: that record alone is read as a value.
            format!(r#"{{"Records":[{},7]}}"#, start("")),
        ];
        for text in &files {
            let (streamed, by_value) = both_ways(text);
            assert_eq!(streamed, by_value, "{text}");
            // And the whole file, as `parse` reads it.
            let parsed = format!(
                "{:?}",
                parse("x_CloudTrail_x.json", text.as_bytes()).unwrap()
            );
            assert_eq!(parsed, by_value, "{text}");
            // And compressed, read as it inflates: the same, and the hash of its content.
            let (read, sha) = gzip_trail(&gzip(text.as_bytes())).unwrap().unwrap();
            assert_eq!(format!("{read:?}"), by_value, "{text}");
            assert_eq!(sha, crate::model::sha256_hex(text.as_bytes()));
        }
        // The first file went the typed way, and kept what it should.
        let (typed, _) = both_ways(&files[0]);
        assert!(
            typed.contains("jiwoo-0a1b") && typed.contains("ignored: 1"),
            "{typed}"
        );
        assert!(typed.contains("mfa: Some(true)"), "{typed}");
        // A record that is not an object does not send the others elsewhere.
        assert!(both_ways(&files[3]).0.contains("jiwoo-0a1b"));
    }

    #[test]
    fn script_times_of_both_util_linux_forms() {
        assert_eq!(
            script_time(
                "Script done on 2020-05-27 23:01:53+0000\n",
                "Script done on "
            )
            .as_deref(),
            Some("2020-05-27T23:01:53Z")
        );
        assert_eq!(
            script_time(
                "Script done on 2025-09-29 16:58:03+00:00 [COMMAND_EXIT_CODE=\"0\"]\n",
                "Script done on "
            )
            .as_deref(),
            Some("2025-09-29T16:58:03Z")
        );
    }

    /// A StartSession record for `sid`, as CloudTrail writes it, at `time`.
    fn start_record(sid: &str, time: &str) -> Value {
        serde_json::json!({
            "eventVersion": "1.09", "eventSource": "ssm.amazonaws.com", "eventName": "StartSession",
            "eventTime": time, "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.9",
            "userIdentity": {"type": "IAMUser", "userName": "ana", "arn": "arn:aws:iam::1:user/ana",
                "sessionContext": {"attributes": {"mfaAuthenticated": "true"}}},
            "requestParameters": {"target": "i-0123"}, "responseElements": {"sessionId": sid},
            "eventID": format!("id-{sid}"), "recipientAccountId": "1"
        })
    }

    /// The session ids of the StartSessions a text gives.
    fn started(bytes: &[u8]) -> Vec<String> {
        match parse("delivery", bytes).unwrap() {
            Parsed::Trail { events, .. } => events.into_iter().map(|e| e.session_id).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cloudtrail_is_read_inside_every_wrapper_it_is_kept_in() {
        let r = |n: u8| start_record(&format!("ana-0123456789abcdef{n}"), "2026-03-02T10:00:00Z");
        let ids = |ns: &[u8]| -> Vec<String> {
            ns.iter()
                .map(|n| format!("ana-0123456789abcdef{n}"))
                .collect()
        };
        // Splunk's JSON export (`_raw` as text) and Elasticsearch's (`_source`), one per line.
        let splunk = format!(
            "{}\n{}\n",
            serde_json::json!({"preview": false, "result": {"_raw": r(1).to_string()}}),
            serde_json::json!({"_index": "trail", "_source": r(2)})
        );
        assert_eq!(started(splunk.as_bytes()), ids(&[1, 2]));
        // A log group's subscription payloads, as Firehose writes them: gzip members one after
        // another, a health check among them, and all of it compressed again.
        let payload = |n: u8| {
            serde_json::json!({"messageType": "DATA_MESSAGE", "logGroup": "trail", "logStream": "1_CloudTrail_us-east-1",
                "logEvents": [{"id": format!("{n}"), "timestamp": 1, "message": r(n).to_string()}]})
            .to_string()
        };
        let control =
            serde_json::json!({"messageType": "CONTROL_MESSAGE", "logEvents": []}).to_string();
        let members: Vec<u8> = [payload(3), control, payload(4)]
            .iter()
            .flat_map(|p| gzip(p.as_bytes()))
            .collect();
        assert_eq!(started(&members), ids(&[3, 4]));
        assert_eq!(started(&gzip(&members)), ids(&[3, 4]));
        // Without a delimiter, decompressed: `}{`.
        assert_eq!(
            started(format!("{}{}", payload(5), payload(6)).as_bytes()),
            ids(&[5, 6])
        );
        // Only health checks: skipped, and said.
        let only =
            serde_json::json!({"messageType": "CONTROL_MESSAGE", "logEvents": []}).to_string();
        assert!(
            matches!(parse("d", only.as_bytes()), Ok(Parsed::Skipped(w)) if w.contains("CONTROL_MESSAGE"))
        );
    }

    #[test]
    fn event_times_of_every_export_are_rfc3339_utc() {
        for (given, want) in [
            ("2025-02-19T20:13:49Z", "2025-02-19T20:13:49Z"),
            ("2025-02-19 20:13:49", "2025-02-19T20:13:49Z"),
            ("2025-02-19 20:13:49.250", "2025-02-19T20:13:49.250Z"),
            ("2025-02-19T20:13:49+00:00", "2025-02-19T20:13:49Z"),
            ("2025-02-20T05:13:49+09:00", "2025-02-19T20:13:49Z"),
            ("2025-02-19 20:13:49 UTC", "2025-02-19T20:13:49Z"),
            ("1739996029000", "2025-02-19T20:13:49Z"),
            ("yesterday", "yesterday"),
        ] {
            assert_eq!(normal_time(given), want, "{given}");
        }
        assert_eq!(
            script_time(
                "Script done on Tue Mar  3 10:15:00 2026\n",
                "Script done on "
            )
            .as_deref(),
            Some("2026-03-03T10:15:00Z")
        );
    }

    #[test]
    fn principal_names_from_arns() {
        assert_eq!(
            principal_from_arn("arn:aws:iam::1:user/jiwoo").as_deref(),
            Some("jiwoo")
        );
        assert_eq!(
            principal_from_arn("arn:aws:sts::1:assumed-role/AWSReservedSSO_X/hyejin@corp.example")
                .as_deref(),
            Some("hyejin@corp.example")
        );
        assert_eq!(
            principal_from_arn("arn:aws:iam::1:user/path/to/bob").as_deref(),
            Some("bob")
        );
    }

    #[test]
    fn s3_keys_are_url_decoded() {
        assert_eq!(decode_s3_key("Happy%20Face.jpg"), "Happy Face.jpg");
        assert_eq!(decode_s3_key("logs/a+b%2Bc.log"), "logs/a b+c.log");
        assert_eq!(decode_s3_key("%ED%95%9C.log"), "한.log");
        assert_eq!(decode_s3_key("100%"), "100%");
        assert_eq!(decode_s3_key("x%zz"), "x%zz");
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
    }

    #[test]
    fn empty_and_binary_inputs_are_errors() {
        assert!(parse("x", b"").is_err());
        assert!(parse("x", b"  \n").is_err());
        assert!(parse("x", &[0xff, 0xfe, 0x00, 0x01]).is_err());
        assert!(matches!(
            parse("x", &[0x1f, 0x8b, 0x08, 0x00]),
            Err(Error::Corrupt { .. })
        ));
    }
}
