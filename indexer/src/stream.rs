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

/// What a streamed log turned out to hold besides its lines.
#[derive(Debug, Clone)]
pub struct LogSummary {
    /// Header facts.
    pub meta: LogMeta,
    /// SHA-256 of every byte pushed.
    pub sha256: String,
    /// Bytes pushed.
    pub size: u64,
    /// `Script done on` time.
    pub last_time: Option<String>,
}

/// Reads one S3 session log incrementally.
pub struct LogReader {
    name: String,
    head: Vec<u8>,
    hold: Vec<u8>,
    /// Source offset of `hold[0]`.
    hold_offset: u64,
    replayer: Option<Replayer>,
    meta: Option<LogMeta>,
    hasher: Sha256,
    size: u64,
}

impl LogReader {
    /// A reader for the object named `name` (its file name may carry the session id).
    pub fn new(name: &str) -> Self {
        LogReader {
            name: name.to_string(),
            head: Vec::new(),
            hold: Vec::new(),
            hold_offset: 0,
            replayer: None,
            meta: None,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The header's facts, once enough bytes were pushed to read them.
    pub fn meta(&self) -> Option<&LogMeta> {
        self.meta.as_ref()
    }

    /// Push the next bytes; returns the input lines completed so far.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Line> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        if self.meta.is_none() {
            self.head.extend_from_slice(chunk);
            if self.head.len() < LOG_HEAD_BYTES + 1024 {
                return Vec::new();
            }
            self.start();
            let head = std::mem::take(&mut self.head);
            return self.feed(&head);
        }
        self.feed(chunk)
    }

    fn start(&mut self) {
        let meta = formats::log_meta(&self.name, &self.head);
        self.hold_offset = meta.body_start as u64;
        self.head.drain(..meta.body_start);
        self.meta = Some(meta);
        self.replayer = Some(Replayer::new(ReplayOptions::default()));
    }

    /// Feed all but the last bytes (they may be the footer).
    fn feed(&mut self, bytes: &[u8]) -> Vec<Line> {
        self.hold.extend_from_slice(bytes);
        if self.hold.len() <= LOG_TAIL_BYTES * 2 {
            return Vec::new();
        }
        let n = self.hold.len() - LOG_TAIL_BYTES;
        let r = self.replayer.as_mut().expect("started before feeding");
        r.feed(&self.hold[..n], self.hold_offset);
        self.hold.drain(..n);
        self.hold_offset += n as u64;
        r.drain().into_iter().map(Line::from).collect()
    }

    /// End of the object: the last lines and what the log said about itself.
    pub fn finish(mut self) -> (LogSummary, Vec<Line>) {
        if self.meta.is_none() {
            self.start();
            self.hold = std::mem::take(&mut self.head);
        }
        let (end, last_time) = match formats::log_footer(&self.hold) {
            Some((at, time)) => (at, time),
            None => (self.hold.len(), None),
        };
        let mut r = self.replayer.take().expect("started");
        r.feed(&self.hold[..end], self.hold_offset);
        let lines = r.finish().into_iter().map(Line::from).collect();
        let sha256 = self
            .hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (
            LogSummary {
                meta: self.meta.expect("started"),
                sha256,
                size: self.size,
                last_time,
            },
            lines,
        )
    }
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
    fn sniffing() {
        assert!(is_session_log(b"Script started on 2020"));
        assert!(is_session_log(b"\x1b[?2004h$ ls\r\n"));
        assert!(!is_session_log(b"{\"Records\":[]}"));
        assert!(!is_session_log(&[0x1f, 0x8b, 8]));
    }
}
