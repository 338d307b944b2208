//! Session logs read as a stream: chunks in, input lines out, memory bounded by the screen
//! model and the output kept per command, not by the size of the log.

use crate::formats::{self, LogMeta, LOG_HEAD_BYTES, LOG_TAIL_BYTES};
use crate::model::Line;
use crate::replay::{InputLine, ReplayOptions, Replayer};
use sha2::{Digest, Sha256};

/// Does an object that starts with these bytes read as a session log (rather than JSON or gzip)?
pub fn is_session_log(head: &[u8]) -> bool {
    if head.starts_with(b"Script started on") {
        return true;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return false;
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{' | b'[')) {
        return false;
    }
    head.contains(&0x1b) || head.windows(2).any(|w| w == b"\r\n") || head.contains(&0x08)
}

/// Why bytes that look like a session log are not a terminal transcript, if they are not: more
/// than a quarter of the first bytes after the header (the [`LogReader`]'s head, the same
/// window whether the object is read whole or in chunks) are neither text nor the controls a
/// terminal prints (random data, a binary). Real transcripts have next to none: the shared
/// and recorded corpora none at all, hostile fixtures with NULs and invalid UTF-8 under 8 %.
pub fn refusal(head: &[u8]) -> Option<String> {
    let head = &head[..head.len().min(HEAD_NEEDED)];
    let body = if head.starts_with(b"Script started on") {
        memchr::memchr(b'\n', head).map_or(&head[head.len()..], |p| &head[p + 1..])
    } else {
        head
    };
    if body.len() < 32 {
        return None;
    }
    let mut noise = 0usize;
    for chunk in body.utf8_chunks() {
        noise += chunk.invalid().len();
        noise += chunk
            .valid()
            .bytes()
            .filter(|&b| (b < 0x20 && !b"\t\n\r\x07\x08\x0e\x0f\x1b".contains(&b)) || b == 0x7f)
            .count();
    }
    (noise * 4 > body.len()).then(|| {
        format!(
            "not a terminal transcript: {} of its first {} bytes are neither text nor terminal controls (random data or a binary?)",
            noise,
            body.len()
        )
    })
}

/// What a streamed log turned out to hold besides its lines.
#[derive(Debug, Clone)]
pub struct LogSummary {
    /// Header facts.
    pub meta: LogMeta,
    /// SHA-256 of every byte pushed (empty for a reader made with [`LogReader::unhashed`]).
    pub sha256: String,
    /// Bytes pushed.
    pub size: u64,
    /// `Script done on` time.
    pub last_time: Option<String>,
    /// Stretches the replay could not read.
    pub partial: Vec<crate::model::Partial>,
    /// The login shell's user as the session's own output showed it ([`crate::model::login_shown`]).
    pub login_seen: Option<String>,
    /// What the log shows before its first input line ([`crate::replay::Replayed::preamble`]).
    pub preamble: String,
}

/// Reads one S3 session log incrementally: the one reader of session logs, fed chunk by chunk
/// by the Lambda and whole by the command line ([`read_log`]).
pub struct LogReader {
    name: String,
    head: Vec<u8>,
    hold: Vec<u8>,
    /// Source offset of `hold[0]`.
    hold_offset: u64,
    replayer: Option<Replayer>,
    meta: Option<LogMeta>,
    hasher: Option<Sha256>,
    size: u64,
    login_seen: Option<String>,
}

impl LogReader {
    /// A reader for the object named `name` (its file name may carry the session id).
    pub fn new(name: &str) -> Self {
        LogReader {
            hasher: Some(Sha256::new()),
            ..LogReader::unhashed(name)
        }
    }

    /// A reader that does not hash what it reads (the caller knows the digest already).
    pub fn unhashed(name: &str) -> Self {
        LogReader {
            name: name.to_string(),
            head: Vec::new(),
            hold: Vec::new(),
            hold_offset: 0,
            replayer: None,
            meta: None,
            hasher: None,
            size: 0,
            login_seen: None,
        }
    }

    /// The header's facts, once enough bytes were pushed to read them.
    pub fn meta(&self) -> Option<&LogMeta> {
        self.meta.as_ref()
    }

    /// Push the next bytes; returns the input lines completed so far.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Line> {
        if let Some(h) = &mut self.hasher {
            h.update(chunk);
        }
        self.size += chunk.len() as u64;
        if self.meta.is_some() {
            return self.feed(chunk);
        }
        if self.head.is_empty() && chunk.len() >= HEAD_NEEDED {
            // The header is in this chunk: read it in place.
            let body = self.start(chunk);
            return self.feed(&chunk[body..]);
        }
        self.head.extend_from_slice(chunk);
        if self.head.len() < HEAD_NEEDED {
            return Vec::new();
        }
        let head = std::mem::take(&mut self.head);
        let body = self.start(&head);
        self.feed(&head[body..])
    }

    /// Read the header from `head`; returns where the body starts in it.
    fn start(&mut self, head: &[u8]) -> usize {
        let meta = formats::log_meta(&self.name, &head[..head.len().min(HEAD_NEEDED)]);
        let body = meta.body_start;
        self.hold_offset = body as u64;
        self.meta = Some(meta);
        self.replayer = Some(Replayer::new(ReplayOptions {
            base_user: crate::replay::LOGIN_USER.to_string(),
            ..ReplayOptions::default()
        }));
        body
    }

    /// Feed all but the last bytes (they may be the footer), copying only what is held back.
    fn feed(&mut self, bytes: &[u8]) -> Vec<Line> {
        let lines = self.feed_replayer(bytes);
        self.observe(&lines);
        lines
    }

    /// Note the login user the first line that shows it shows.
    fn observe(&mut self, lines: &[Line]) {
        if self.login_seen.is_none() {
            self.login_seen = lines.iter().find_map(crate::model::login_shown);
        }
    }

    fn feed_replayer(&mut self, bytes: &[u8]) -> Vec<Line> {
        let r = self.replayer.as_mut().expect("started before feeding");
        if self.hold.is_empty() && bytes.len() > LOG_TAIL_BYTES * 2 {
            let n = bytes.len() - LOG_TAIL_BYTES;
            r.feed(&bytes[..n], self.hold_offset);
            self.hold_offset += n as u64;
            self.hold.extend_from_slice(&bytes[n..]);
            return r.drain().into_iter().map(Line::from).collect();
        }
        self.hold.extend_from_slice(bytes);
        if self.hold.len() <= LOG_TAIL_BYTES * 2 {
            return Vec::new();
        }
        let n = self.hold.len() - LOG_TAIL_BYTES;
        r.feed(&self.hold[..n], self.hold_offset);
        self.hold.drain(..n);
        self.hold_offset += n as u64;
        r.drain().into_iter().map(Line::from).collect()
    }

    /// End of the object: the last lines and what the log said about itself.
    pub fn finish(mut self) -> (LogSummary, Vec<Line>) {
        if self.meta.is_none() {
            let head = std::mem::take(&mut self.head);
            let body = self.start(&head);
            self.hold = head[body..].to_vec();
        }
        let (end, last_time) = match formats::log_footer(&self.hold) {
            Some((at, time)) => (at, time),
            None => (self.hold.len(), None),
        };
        let mut r = self.replayer.take().expect("started");
        r.feed(&self.hold[..end], self.hold_offset);
        let replayed = r.finish();
        let lines: Vec<Line> = replayed.lines.into_iter().map(Line::from).collect();
        self.observe(&lines);
        let sha256 = self
            .hasher
            .map(|h| crate::model::hex(&h.finalize()))
            .unwrap_or_default();
        (
            LogSummary {
                meta: self.meta.expect("started"),
                sha256,
                size: self.size,
                last_time,
                partial: replayed.partial,
                login_seen: self.login_seen,
                preamble: replayed.preamble,
            },
            lines,
        )
    }
}

/// Bytes of a log's start read before its header is taken as known.
const HEAD_NEEDED: usize = LOG_HEAD_BYTES + 1024;

/// A whole session log whose SHA-256 is known, read by the same reader as a streamed one.
pub fn read_log(name: &str, bytes: &[u8]) -> (LogSummary, Vec<Line>) {
    let mut r = LogReader::unhashed(name);
    let mut lines = r.push(bytes);
    let (summary, rest) = r.finish();
    lines.extend(rest);
    (summary, lines)
}

impl From<InputLine> for Line {
    fn from(l: InputLine) -> Line {
        Line {
            seq: l.seq,
            command: l.command,
            run_as: l.run_as,
            cwd: l.cwd,
            byte_start: l.byte_start,
            byte_end: l.byte_end,
            output: l.output,
            output_truncated: l.output_truncated,
            abandoned: l.abandoned,
            suspicious: l.suspicious,
            truncated: l.truncated,
            profile: l.profile,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: usize) -> Vec<u8> {
        let mut b = b"Script started on 2025-09-29 16:58:03+00:00 [COMMAND=\"cat /var/lib/amazon/ssm/i-0123456789abcdef0/session/orchestration/ann-0123456789abcdef0/Standard_Stream/ipcTempFile.log\" <not executed on terminal>]\n".to_vec();
        for i in 0..n {
            b.extend_from_slice(
                format!(
                    "\x1b[?2004h[ssm-user@ip-10-0-0-1 ~]$ echo {i}\r\r\n\x1b[?2004l\r{i}\r\r\n"
                )
                .as_bytes(),
            );
        }
        b.extend_from_slice(b"\x1b[?2004h[ssm-user@ip-10-0-0-1 ~]$ exit\r\r\n\x1b[?2004l\rexit\r\r\n\nScript done on 2025-09-29 16:58:03+00:00 [COMMAND_EXIT_CODE=\"0\"]\n");
        b
    }

    #[test]
    fn chunked_reading_equals_whole_reading_for_any_chunk_size() {
        let bytes = log(300);
        let whole = {
            let mut r = LogReader::new("x.log");
            let mut lines = r.push(&bytes);
            let (s, rest) = r.finish();
            lines.extend(rest);
            (s.sha256, s.meta, s.last_time, lines)
        };
        assert_eq!(whole.3.len(), 301);
        assert_eq!(whole.1.session_id, "ann-0123456789abcdef0");
        assert_eq!(whole.1.instance_id.as_deref(), Some("i-0123456789abcdef0"));
        assert_eq!(whole.2.as_deref(), Some("2025-09-29T16:58:03Z"));
        for size in [1, 7, 512, 4096, 100_000] {
            let mut r = LogReader::new("x.log");
            let mut lines = Vec::new();
            for c in bytes.chunks(size) {
                lines.extend(r.push(c));
            }
            let (s, rest) = r.finish();
            lines.extend(rest);
            let got = (s.sha256, s.meta, s.last_time, lines);
            if got != whole {
                let first = got.3.iter().zip(&whole.3).position(|(a, b)| a != b);
                let shown = first.map(|i| (&got.3[i], &whole.3[i]));
                panic!(
                    "chunk size {size}: {} vs {} lines, first difference {shown:?}",
                    got.3.len(),
                    whole.3.len()
                );
            }
        }
    }

    #[test]
    fn the_whole_log_path_reads_what_the_streaming_reader_reads() {
        let bytes = log(40);
        let object = crate::model::SourceObject {
            name: "s3://b/x.log".into(),
            version_id: Some("v1".into()),
            bytes: bytes.clone(),
            written: Some("2026-01-01T00:00:00Z".into()),
            metadata: Default::default(),
        };
        let sha = object.sha256();
        // What the Lambda does: chunks, hashed on the way.
        let mut r = LogReader::new(&object.name);
        let mut lines = Vec::new();
        for c in bytes.chunks(1000) {
            lines.extend(r.push(c));
        }
        let (summary, rest) = r.finish();
        lines.extend(rest);
        let streamed = crate::model::SourceMeta::of_log(
            &object.name,
            object.version_id.clone(),
            object.written.clone(),
            summary.sha256.clone(),
            &summary,
        );
        // What the command line does, and what the index writer is handed.
        let mut batch = crate::ingest::Batch::default();
        crate::ingest::read_object(&object, &mut batch);
        let whole = &batch.sources[0];
        assert_eq!(summary.sha256, sha);
        assert_eq!(whole.meta, streamed);
        assert_eq!(whole.lines, lines);
        // The format parser's transcript replays to the same lines.
        let Ok(crate::formats::Parsed::Transcripts(ts)) =
            crate::formats::parse(&object.name, &bytes)
        else {
            panic!("a transcript");
        };
        let parsed = crate::model::SessionSource::from_transcript(&ts[0], &object, &sha);
        assert_eq!(parsed, *whole);
    }

    #[test]
    fn random_bytes_and_binaries_are_refused_and_real_transcripts_are_not() {
        // Deterministic noise: an xorshift generator.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(refusal(&random).is_some());
        let mut headed = b"Script started on 2026-01-01 00:00:00+0000\n".to_vec();
        headed.extend_from_slice(&random);
        assert!(refusal(&headed)
            .unwrap()
            .starts_with("not a terminal transcript"));
        // An ELF binary's start: mostly NULs and small numbers.
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.extend((0..4096u32).map(|i| if i % 5 == 0 { (i % 7) as u8 } else { 0 }));
        assert!(refusal(&elf).is_some());
        assert_eq!(refusal(&log(40)), None);
        let mut hangul = b"Script started on 2026-01-01 00:00:00+0000\n".to_vec();
        hangul.extend(
            "\x1b[?2004h$ echo 안녕하세요 \x08\x08\r\n"
                .repeat(50)
                .bytes(),
        );
        assert_eq!(refusal(&hangul), None);
    }

    #[test]
    fn sniffing() {
        assert!(is_session_log(b"Script started on 2020"));
        assert!(is_session_log(b"\x1b[?2004h$ ls\r\n"));
        assert!(!is_session_log(b"{\"Records\":[]}"));
        assert!(!is_session_log(&[0x1f, 0x8b, 8]));
    }
}
