//! The JSON bodies of source and command documents, written directly.
//!
//! A source document's body is its whole [`SessionSource`]: every replayed line with its
//! output, most of the bytes an ingest stores; a command document's is its line's facts.
//! `serde_json` escapes a string by looking up each byte in a table; here eight bytes are
//! checked at once, and runs without anything to escape are copied whole. The text is the same, byte for byte, as `serde_json::to_string`
//! gives (the tests hold it to that), so it reads back with serde as before.

use crate::model::{Line, SessionSource};
use std::fmt::Write as _;

/// `serde_json::to_string(source)`, faster.
pub(super) fn source(s: &SessionSource) -> serde_json::Result<String> {
    let size: usize = s
        .lines
        .iter()
        .map(|l| l.command.len() + l.output.len() + l.run_as.len() + 160)
        .sum();
    // The facts are few and small: serde writes them, and the lines go in before its `}`.
    let mut out = serde_json::to_string(&s.meta)?;
    out.reserve(size + 16);
    out.pop();
    // The facts always have fields; an empty object would take no comma.
    if out.len() > 1 {
        out.push(',');
    }
    out.push_str("\"lines\":[");
    for (i, l) in s.lines.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        line(&mut out, l)?;
    }
    out.push_str("]}");
    Ok(out)
}

/// `serde_json::to_string(stored)`, faster.
pub(super) fn stored(s: &super::docs::Stored<'_>) -> serde_json::Result<String> {
    let mut out = String::with_capacity(
        s.sid.len()
            + s.command.len()
            + s.run_as.len()
            + s.output.as_ref().map_or(0, |o| o.len())
            + 160,
    );
    out.push_str("{\"sid\":");
    string(&mut out, &s.sid);
    out.push_str(",\"seq\":");
    number(&mut out, u64::from(s.seq));
    out.push_str(",\"command\":");
    string(&mut out, &s.command);
    out.push_str(",\"run_as\":");
    string(&mut out, &s.run_as);
    if let Some(cwd) = &s.cwd {
        out.push_str(",\"cwd\":");
        string(&mut out, cwd);
    }
    if s.abandoned {
        out.push_str(",\"abandoned\":true");
    }
    out.push_str(",\"byte_start\":");
    number(&mut out, s.byte_start);
    out.push_str(",\"byte_end\":");
    number(&mut out, s.byte_end);
    if s.shared != 0 {
        out.push_str(",\"shared\":");
        number(&mut out, s.shared as u64);
    }
    if let Some(output) = &s.output {
        out.push_str(",\"output\":");
        string(&mut out, output);
    }
    if !s.suspicious.is_empty() {
        out.push_str(",\"suspicious\":");
        out.push_str(&serde_json::to_string(&s.suspicious)?);
    }
    if let Some(n) = s.truncated {
        out.push_str(",\"truncated\":");
        number(&mut out, n);
    }
    if s.profile {
        out.push_str(",\"profile\":true");
    }
    out.push('}');
    Ok(out)
}

/// One [`Line`] as serde writes it: fields in declaration order, the skipped ones skipped.
fn line(out: &mut String, l: &Line) -> serde_json::Result<()> {
    out.push_str("{\"seq\":");
    number(out, u64::from(l.seq));
    out.push_str(",\"command\":");
    string(out, &l.command);
    out.push_str(",\"run_as\":");
    string(out, &l.run_as);
    if let Some(cwd) = &l.cwd {
        out.push_str(",\"cwd\":");
        string(out, cwd);
    }
    out.push_str(",\"byte_start\":");
    number(out, l.byte_start);
    out.push_str(",\"byte_end\":");
    number(out, l.byte_end);
    if !l.output.is_empty() {
        out.push_str(",\"output\":");
        string(out, &l.output);
    }
    if l.output_truncated != 0 {
        out.push_str(",\"output_truncated\":");
        number(out, l.output_truncated);
    }
    if l.abandoned {
        out.push_str(",\"abandoned\":true");
    }
    if !l.suspicious.is_empty() {
        out.push_str(",\"suspicious\":");
        out.push_str(&serde_json::to_string(&l.suspicious)?);
    }
    if let Some(n) = l.truncated {
        out.push_str(",\"truncated\":");
        number(out, n);
    }
    if l.profile {
        out.push_str(",\"profile\":true");
    }
    out.push('}');
    Ok(())
}

/// A JSON number (without `fmt`'s machinery, which costs more than the digits here).
fn number(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// A JSON string, escaped as `serde_json` escapes it: `"`, `\` and control characters below
/// U+0020 (the usual five by their short forms), nothing else.
pub(super) fn string(out: &mut String, s: &str) {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `w` is zero (may also flag a byte after the first zero, never before it).
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let bytes = s.as_bytes();
    out.push('"');
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_ne_bytes(word);
            let control = w.wrapping_sub(0x20 * ONES) & !w & HIGH;
            if control
                | has_zero(w ^ (u64::from(b'"') * ONES))
                | has_zero(w ^ (u64::from(b'\\') * ONES))
                == 0
            {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\t' => Some("\\t"),
            b'\r' => Some("\\r"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0..=0x1f => None,
            _ => {
                i += 1;
                continue;
            }
        };
        // `i` is at an ASCII byte: a character boundary.
        out.push_str(&s[run..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        i += 1;
        run = i;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SourceMeta;

    fn serde_string(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_escapes_them() {
        let mut every_byte = String::new();
        for c in 0u8..0x80 {
            every_byte.push(char::from(c));
        }
        let cases = [
            "",
            "plain text, longer than eight bytes",
            "\"quoted\" and back\\slash",
            "line\nline\r\n\ttab \u{8}\u{c}\u{0}\u{1b}[31mred\u{1b}[0m\u{7f}",
            "non-ASCII: é ü 日本語 🎉 at the end of a word: 日本語日本語",
            "\u{1f}\u{1f}\u{1f}\u{1f}\u{1f}\u{1f}\u{1f}\u{1f}\u{1f}",
            "1234567\"",
            "12345678\"",
            "123456789\\",
            &every_byte,
        ];
        for case in cases {
            let mut ours = String::new();
            string(&mut ours, case);
            assert_eq!(ours, serde_string(case), "{case:?}");
        }
    }

    #[test]
    fn a_source_is_written_as_serde_writes_it() {
        let line = |seq: u32| Line {
            seq,
            command: format!("echo \"{seq}\" | tee out\\y"),
            run_as: "root".into(),
            cwd: Some("/home/ssm-user".into()),
            byte_start: 10 * u64::from(seq),
            byte_end: 10 * u64::from(seq) + 9,
            output: "a\nb\tc\u{1b}".into(),
            output_truncated: 3,
            abandoned: true,
            suspicious: vec!["why \"this\"".into()],
            truncated: Some(9_000_000),
            profile: true,
        };
        let bare = Line {
            seq: 3,
            command: "ls".into(),
            run_as: "ssm-user".into(),
            cwd: None,
            byte_start: 0,
            byte_end: 2,
            output: String::new(),
            output_truncated: 0,
            abandoned: false,
            suspicious: Vec::new(),
            truncated: None,
            profile: false,
        };
        let meta = SourceMeta {
            session_id: "alice-0123456789abcdef0".into(),
            session_id_from: crate::kinds::IdFrom::Header,
            kind: crate::kinds::SourceKind::S3Log,
            source: "s3://bucket/key with spaces".into(),
            version_id: Some("v1".into()),
            sha256: "ab".repeat(32),
            object_sha256: Some("cd".repeat(32)),
            size: 1234,
            instance_id: Some("i-0123".into()),
            principal_arn: None,
            first_time: Some("2026-01-01T00:00:00Z".into()),
            last_time: None,
            written: None,
            partial: vec![crate::model::Partial {
                reason: "inside \"tmux\"".into(),
                byte_start: 10,
                byte_end: 20,
            }],
            run_as: Some("ec2-user".into()),
            login_seen: None,
            preamble: "root:*:14600::::::".into(),
        };
        for lines in [vec![], vec![bare.clone()], vec![line(1), bare, line(2)]] {
            let s = SessionSource {
                meta: meta.clone(),
                lines,
            };
            assert_eq!(source(&s).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn a_command_is_written_as_serde_writes_it() {
        use std::borrow::Cow;
        let suspicious = vec!["turns \"echo\" off".to_string()];
        let full = super::super::docs::Stored {
            sid: Cow::Borrowed("bob-0123456789abcdef0"),
            seq: 7,
            command: Cow::Borrowed("printf 'a\\n\"b\"'\ncontinued"),
            run_as: Cow::Borrowed("root"),
            cwd: Some(Cow::Borrowed("/var/log")),
            abandoned: true,
            byte_start: 100,
            byte_end: 180,
            shared: 2,
            output: Some(Cow::Borrowed("out\r\n\u{7}")),
            suspicious: Cow::Borrowed(&suspicious),
            truncated: Some(70_000),
            profile: true,
        };
        let bare = super::super::docs::Stored {
            cwd: None,
            abandoned: false,
            shared: 0,
            output: None,
            suspicious: Cow::Borrowed(&[]),
            profile: false,
            ..full.clone()
        };
        for s in [full, bare] {
            assert_eq!(stored(&s).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn recorded_sessions_are_written_as_serde_writes_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/recorded/sessions");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let object = crate::model::SourceObject {
                name: path.display().to_string(),
                version_id: None,
                bytes: std::fs::read(&path).unwrap(),
                written: None,
                metadata: Default::default(),
            };
            let Ok(crate::formats::Parsed::Transcripts(ts)) =
                crate::formats::parse(&object.name, &object.bytes)
            else {
                continue;
            };
            for t in &ts {
                let s = SessionSource::from_transcript(t, &object, "digest");
                assert_eq!(
                    source(&s).unwrap(),
                    serde_json::to_string(&s).unwrap(),
                    "{}",
                    object.name
                );
                seen += 1;
            }
        }
        assert!(seen > 0, "no recorded session in {}", dir.display());
    }
}
