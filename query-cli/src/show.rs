//! `ssm-audit show SESSION[#SEQ]`: one session as the user saw it, each command marked, its
//! evidence named once; `--raw`: one command's evidence bytes, after its source is read again
//! and its SHA-256 checked.

use crate::look::Look;
use anyhow::{bail, Context, Result};
use indexer::kinds::SourceKind;
use indexer::model::{sha256_hex, CommandRecord};
use indexer::store::{Filter, Reader, SessionCoverage};
use indexer::verify::Fetched;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// A streamed session's events: each one's byte range in the document, and its `eventTime`.
type Events = Vec<((u64, u64), Option<String>)>;

/// What reading a source again gave: why it does not check (none: it matches), the document
/// its byte ranges point into, a stream's events.
type ReadAgain = (Option<String>, Option<Vec<u8>>, Events);

/// What was asked for: a session, and maybe one of its commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub session: String,
    pub seq: Option<u32>,
}

impl Target {
    /// `SESSION` or `SESSION#SEQ` (a session id holds no `#`).
    pub fn parse(s: &str) -> Result<Target> {
        let s = s.trim();
        let (session, seq) = match s.rsplit_once('#') {
            Some((id, n)) => {
                let Ok(n) = n.parse::<u32>() else {
                    bail!("{s}: after # comes a command's number (SESSION#3)");
                };
                (id, Some(n))
            }
            None => (s, None),
        };
        if session.is_empty() {
            bail!("{s}: no session id");
        }
        Ok(Target {
            session: session.to_string(),
            seq,
        })
    }
}

/// A source of the session, read again (or not), and what the check found.
#[derive(Debug, Clone, Serialize)]
pub struct SourceCheck {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub sha256: String,
    /// Why it is not known to match (`changed: …`, `not read: …`); none: it was read again
    /// and matches. Written as `check`: `matches`, or the reason.
    #[serde(rename = "check", serialize_with = "check")]
    pub problem: Option<String>,
    /// The document the commands' byte ranges point into, when read and matching.
    #[serde(skip)]
    pub document: Option<Vec<u8>>,
    /// A streamed session: each event's byte range and `eventTime`.
    #[serde(skip)]
    pub events: Events,
    /// Is it a stream (its ranges are events, not terminal bytes)?
    #[serde(skip)]
    pub stream: bool,
}

impl SourceCheck {
    fn matches(&self) -> bool {
        self.problem.is_none()
    }
}

/// A source's check as JSON: `matches`, or why not.
fn check<S: serde::Serializer>(problem: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(problem.as_deref().unwrap_or("matches"))
}

/// One line of the session: a command or an abandoned line, with what the source adds.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    record: &'a CommandRecord,
    /// When its stream event was sent (streamed sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    /// Its prompt and line as the terminal showed them (session logs read again).
    #[serde(skip_serializing_if = "Option::is_none")]
    screen: Option<String>,
}

/// Options of `show`.
pub struct Options<'a> {
    pub raw: bool,
    pub offline: bool,
    pub json: bool,
    pub rules: &'a indexer::rules::Rules,
}

/// Answer `show`.
pub fn run(
    store: &Reader,
    index: &Path,
    target: &Target,
    opts: &Options,
    look: &Look,
    out: &mut impl Write,
) -> Result<()> {
    let coverage = store.coverage()?;
    // A session whose id holds `#` (a name from a file) is that session, not a line of another.
    let whole = target
        .seq
        .map(|n| format!("{}#{n}", target.session))
        .filter(|w| coverage.iter().any(|c| c.session_id == *w));
    let target = &match whole {
        Some(session) => Target { session, seq: None },
        None => target.clone(),
    };
    let row = coverage.iter().find(|c| c.session_id == target.session);
    let mut records = Vec::new();
    for abandoned in [false, true] {
        records.extend(store.search(&Filter {
            session: Some(target.session.clone()),
            abandoned,
            with_output: true,
            ..Filter::default()
        })?);
    }
    if row.is_none() && records.is_empty() {
        let ids: Vec<&str> = coverage.iter().map(|c| c.session_id.as_str()).collect();
        let near = crate::closest(&target.session, &ids);
        bail!(
            "no session {} in the index{}",
            target.session,
            if near.is_empty() {
                String::new()
            } else {
                format!("; the closest: {}", near.join(", "))
            }
        );
    }
    for r in &mut records {
        indexer::derive::apply_rules(r, opts.rules);
    }
    records.sort_by_key(|r| r.seq);
    if let Some(seq) = target.seq {
        if !records.iter().any(|r| r.seq == seq) {
            bail!(
                "session {} has no line #{seq}; it has {}",
                target.session,
                match (records.first(), records.last()) {
                    (Some(a), Some(b)) => format!("#{} to #{}", a.seq, b.seq),
                    _ => "none (no transcript was ingested)".into(),
                }
            );
        }
    }
    if opts.raw {
        let Some(seq) = target.seq else {
            bail!("--raw shows one command's bytes: name it, SESSION#SEQ");
        };
        if opts.offline {
            bail!("--raw reads the source again to check it: it cannot be --offline");
        }
        let r = records
            .iter()
            .find(|r| r.seq == seq)
            .context("checked above")?;
        return raw(index, r, out);
    }
    let sources = if opts.offline {
        sources_of(&records, |_| {
            (Some("not read: --offline".to_string()), None, Vec::new())
        })
    } else {
        let mut refetch = crate::remote::Refetch::new()?;
        let ledger = indexer::ledger::Ledger::of_index(index).read()?;
        sources_of(&records, |e| {
            read_again(&mut refetch, &ledger.entries, e, &target.session)
        })
    };
    let shown: Vec<Shown> = records
        .iter()
        .filter(|r| target.seq.is_none_or(|s| s == r.seq))
        .map(|r| shown(r, &sources))
        .collect();
    if opts.json {
        #[derive(Serialize)]
        struct Whole<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            session: Option<serde_json::Value>,
            sources: &'a [SourceCheck],
            commands: &'a [Shown<'a>],
        }
        let session = row.map(crate::output::coverage_json).transpose()?;
        let whole = Whole {
            session,
            sources: &sources,
            commands: &shown,
        };
        writeln!(out, "{}", escape::json(serde_json::to_string(&whole)?))?;
        return Ok(());
    }
    let mut text = String::new();
    header(&mut text, &target.session, row, &sources, look);
    let partial = row.map_or(&[][..], |c| c.partial.as_slice());
    let mut partial_said = vec![false; partial.len()];
    for s in &shown {
        // A stretch not read is said where it begins, before the first line after it.
        for (i, p) in partial.iter().enumerate() {
            if !partial_said[i] && p.byte_start <= s.record.evidence.byte_start {
                partial_said[i] = true;
                text.push_str(&partial_line(p, look));
            }
        }
        line(&mut text, s, &sources, look);
    }
    if target.seq.is_none() {
        for (i, p) in partial.iter().enumerate() {
            if !partial_said[i] {
                text.push_str(&partial_line(p, look));
            }
        }
        if shown.is_empty() {
            text.push_str("\nNo commands: no transcript of this session was ingested.\n");
        }
    }
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// A partial stretch, as a marker line.
fn partial_line(p: &indexer::model::Partial, look: &Look) -> String {
    format!(
        "\n{}\n",
        look.paint(
            alert(),
            &format!(
                "── PARTIAL bytes {}–{}: {} (commands typed there may be missing)",
                p.byte_start,
                p.byte_end,
                escape::cell(&p.reason)
            )
        )
    )
}

fn alert() -> anstyle::Style {
    anstyle::AnsiColor::Red.on_default().bold()
}

fn warn() -> anstyle::Style {
    anstyle::AnsiColor::Yellow.on_default()
}

fn marker() -> anstyle::Style {
    anstyle::Style::new().bold()
}

/// The session's facts, its sources once, and what must be weighed before reading on.
fn header(
    o: &mut String,
    id: &str,
    row: Option<&SessionCoverage>,
    sources: &[SourceCheck],
    look: &Look,
) {
    use std::fmt::Write as _;
    let cell = escape::cell;
    let _ = writeln!(o, "{}  {}", look.paint(marker(), "SESSION"), cell(id));
    if let Some(c) = row {
        let w = &c.who;
        let _ = writeln!(
            o,
            "  principal  {}{}",
            cell(w.principal.as_deref().unwrap_or("unknown")),
            w.principal_arn
                .as_deref()
                .map(|a| format!(" ({})", cell(a)))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "  MFA        {}   from {}",
            match w.mfa {
                Some(true) => "yes".to_string(),
                Some(false) => look.paint(alert(), "NO"),
                None => "unknown".into(),
            },
            w.source_ip
                .as_deref()
                .map_or_else(|| "unknown".into(), escape::address)
        );
        let _ = writeln!(
            o,
            "  instance   {}",
            cell(&match (&w.instance_name, &w.instance_id) {
                (Some(n), Some(i)) => format!("{n} ({i})"),
                (None, Some(i)) => i.clone(),
                _ => "unknown".into(),
            })
        );
        let _ = writeln!(
            o,
            "  time       {} → {}",
            look.time_or_dash(&w.session_start),
            look.time_or_dash(&w.session_end)
        );
        let flags = c.flags();
        let status = format!(
            "{}{}{}",
            c.status(),
            if flags.is_empty() {
                String::new()
            } else {
                format!(
                    ", {}",
                    flags
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            match w.cloudtrail_validated {
                Some(true) => ", CloudTrail validated by a signed digest",
                Some(false) => ", CloudTrail NOT validated (no signed digest lists its file)",
                None => "",
            }
        );
        let covered = c.status() == indexer::kinds::Status::Covered;
        let _ = writeln!(
            o,
            "  status     {}",
            if covered {
                status
            } else {
                look.paint(alert(), &status)
            }
        );
        if let Some(d) = &c.document {
            let _ = writeln!(o, "  document   {}", cell(d));
        }
        for why in &w.conflicts {
            let _ = writeln!(
                o,
                "  {} {} (shown: the documented precedence)",
                look.paint(alert(), "CONFLICT"),
                cell(why)
            );
        }
        for p in &w.participants {
            let _ = writeln!(
                o,
                "  {} {} from {} at {}, MFA {} (a transcript does not say who typed which line after a resume)",
                look.paint(warn(), "RESUMED BY"),
                cell(p.principal_arn.as_deref().or(p.principal.as_deref()).unwrap_or("unknown")),
                p.source_ip.as_deref().map_or_else(|| "unknown".into(), escape::address),
                look.time(&p.time),
                match p.mfa {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "unknown",
                }
            );
        }
        for e in &c.denied {
            let _ = writeln!(
                o,
                "  {} {} {} by {} at {}",
                look.paint(warn(), "DENIED"),
                cell(&e.event_name),
                cell(e.error_code.as_deref().unwrap_or("-")),
                cell(
                    e.principal_arn
                        .as_deref()
                        .or(e.principal.as_deref())
                        .unwrap_or("unknown")
                ),
                look.time(&e.event_time)
            );
        }
    } else {
        let _ = writeln!(
            o,
            "  (no CloudTrail record or session facts: only its lines are indexed)"
        );
    }
    for (i, s) in sources.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {}   {}{}",
            if sources.len() > 1 {
                format!("source {}", i + 1)
            } else {
                "source".into()
            },
            cell(&s.source),
            s.version_id
                .as_deref()
                .map(|v| format!(" (version {})", cell(v)))
                .unwrap_or_default()
        );
        let check = if s.matches() {
            "read again: SHA-256 matches".to_string()
        } else {
            look.paint(warn(), &cell(s.problem.as_deref().unwrap_or_default()))
        };
        let _ = writeln!(o, "    sha256   {}  {}", cell(&s.sha256), check);
    }
    let _ = writeln!(
        o,
        "  times in {}; each line: #SEQ, run as, directory, evidence bytes",
        cell(&look.tz_name)
    );
}

/// One command (or abandoned line): its marker, its line as shown, its output.
fn line(o: &mut String, s: &Shown, sources: &[SourceCheck], look: &Look) {
    use std::fmt::Write as _;
    let r = s.record;
    let mut parts = vec![format!("#{}", r.seq)];
    parts.push(format!(
        "as {}",
        escape::cell(r.run_as.as_deref().unwrap_or("unknown"))
    ));
    if let Some(cwd) = &r.cwd {
        parts.push(format!("in {}", escape::cell(cwd)));
    }
    if let Some(t) = &s.time {
        parts.push(look.time(t));
    }
    let which = sources
        .iter()
        .position(|x| x.source == r.evidence.source && x.version_id == r.evidence.version_id);
    parts.push(format!(
        "bytes {}–{}{}",
        r.evidence.byte_start,
        r.evidence.byte_end,
        match which {
            Some(i) if sources.len() > 1 => format!(" of source {}", i + 1),
            _ => String::new(),
        }
    ));
    let mut flags = Vec::new();
    if !r.rule.is_empty() {
        flags.push(look.paint(warn(), &escape::cell(&r.rule.join(","))));
    }
    if r.abandoned {
        flags.push(look.paint(warn(), "ABANDONED (Ctrl-C: typed, never run)"));
    }
    for why in &r.suspicious {
        flags.push(look.paint(alert(), &format!("SUSPICIOUS: {}", escape::cell(why))));
    }
    if r.shell_profile {
        flags.push("PROFILE (before the first prompt: the preferences' shell profile)".into());
    }
    if let Some(w) = &r.started_with {
        flags.push(format!(
            "STARTED-WITH {} at {} (from CloudTrail; no transcript holds it)",
            escape::cell(&w.event_name),
            look.time(&w.event_time)
        ));
    }
    if let Some(n) = r.truncated {
        flags.push(format!(
            "TRUNCATED: the line was {n} characters; its first are kept"
        ));
    }
    if !r.who.conflicts.is_empty() {
        flags.push(look.paint(alert(), "CONFLICT"));
    }
    let _ = writeln!(
        o,
        "\n{} {}{}",
        look.paint(marker(), "──"),
        look.paint(marker(), &parts.join(" · ")),
        if flags.is_empty() {
            String::new()
        } else {
            format!(" · {}", flags.join(" · "))
        }
    );
    match &s.screen {
        Some(screen) => {
            for l in screen.lines() {
                let _ = writeln!(o, "{}", escape::visible(l));
            }
        }
        None => {
            // The line as read (a multi-line command, a heredoc, as its lines).
            for (i, l) in r.command.lines().enumerate() {
                let _ = writeln!(
                    o,
                    "{} {}",
                    if i == 0 { "»" } else { " " },
                    escape::visible(l)
                );
            }
        }
    }
    if let Some(output) = r.output.as_deref().filter(|o| !o.is_empty()) {
        for l in output.lines() {
            let _ = writeln!(o, "{}", escape::visible(l));
        }
    }
}

/// What the source adds to one line: its stream event's time, its prompt and line as shown.
fn shown<'a>(r: &'a CommandRecord, sources: &[SourceCheck]) -> Shown<'a> {
    let src = sources
        .iter()
        .find(|s| s.source == r.evidence.source && s.version_id == r.evidence.version_id);
    let (mut time, mut screen) = (None, None);
    if let Some(s) = src.filter(|s| s.matches()) {
        let (a, b) = (r.evidence.byte_start, r.evidence.byte_end);
        if s.stream {
            time = s
                .events
                .iter()
                .find(|((start, end), _)| *start <= a && a < *end)
                .and_then(|(_, t)| t.clone());
        } else if let Some(doc) = &s.document {
            if let Some(bytes) = usize::try_from(a)
                .ok()
                .zip(usize::try_from(b).ok())
                .and_then(|(a, b)| doc.get(a..b))
            {
                let text = indexer::replay::as_shown(bytes);
                // What the screen shows is the line as typed; where it does not hold the
                // command as read (an edit the screen cannot redo), the line as read is kept.
                let first = r.command.lines().next().unwrap_or("");
                if !text.trim().is_empty() && text.contains(first.trim()) {
                    screen = Some(text);
                }
            }
        }
    }
    Shown {
        record: r,
        time,
        screen,
    }
}

/// The sources of the records, in order of first use, each read (or not) by `read`.
fn sources_of(
    records: &[CommandRecord],
    mut read: impl FnMut(&indexer::model::Evidence) -> ReadAgain,
) -> Vec<SourceCheck> {
    crate::report::distinct_sources(records)
        .into_iter()
        .map(|e| {
            let (problem, document, events) = read(e);
            SourceCheck {
                source: e.source.clone(),
                version_id: e.version_id.clone(),
                sha256: e.sha256.clone(),
                problem,
                stream: !events.is_empty() || e.source.starts_with("cloudwatch://"),
                document,
                events,
            }
        })
        .collect()
}

/// The document of `session` in the source `e` names, read again and checked against its
/// SHA-256: why it does not match (none: it does), the document, a stream's event times.
fn read_again(
    refetch: &mut crate::remote::Refetch,
    ledger: &[indexer::ledger::Entry],
    e: &indexer::model::Evidence,
    session: &str,
) -> ReadAgain {
    match document(refetch, ledger, e, session) {
        Ok(doc) => {
            let events = indexer::formats::stream_event_times(&doc);
            (None, Some(doc), events)
        }
        Err(why) => (Some(why), None, Vec::new()),
    }
}

fn document(
    refetch: &mut crate::remote::Refetch,
    ledger: &[indexer::ledger::Entry],
    e: &indexer::model::Evidence,
    session: &str,
) -> std::result::Result<Vec<u8>, String> {
    // The ledger's entry of the source: its size bounds the read. Records that came from
    // elsewhere (the Lambda's) name a source this index never read: it is read whole.
    let entry = ledger
        .iter()
        .rev()
        .find(|l| l.source == e.source && l.version_id == e.version_id)
        .cloned()
        .unwrap_or_else(|| indexer::ledger::Entry {
            n: 0,
            time: String::new(),
            source: e.source.clone(),
            version_id: e.version_id.clone(),
            sha256: e.sha256.clone(),
            size: 4 << 30,
            kind: if e.source.starts_with("cloudwatch://") {
                SourceKind::CloudwatchStream
            } else {
                SourceKind::S3Log
            },
            prev: String::new(),
            hash: String::new(),
        });
    let bytes = match refetch.fetch(&entry) {
        Fetched::Bytes(b, _) => b,
        Fetched::Changed(now) => return Err(format!("changed since it was ingested: {now}")),
        Fetched::Missing(why) | Fetched::NotChecked(why) => return Err(format!("not read: {why}")),
    };
    let stored = sha256_hex(&bytes);
    if stored == e.sha256 {
        // The object is the document (a session log), or holds it compressed.
        return indexer::formats::inflated(&bytes)
            .map(|b| b.into_owned())
            .map_err(|why| format!("not read: {why}"));
    }
    if entry.n > 0 && stored != entry.sha256 {
        return Err(format!(
            "changed since it was ingested: SHA-256 was {} then, is {stored} now",
            entry.sha256
        ));
    }
    // A stream's records point into its canonical document, made from the object.
    match indexer::formats::parse(&e.source, &bytes) {
        Ok(indexer::formats::Parsed::Transcripts(ts)) => {
            for t in ts {
                if t.session_id != session {
                    continue;
                }
                let doc = t.document.unwrap_or(t.body);
                return if sha256_hex(&doc) == e.sha256 {
                    Ok(doc)
                } else {
                    Err(format!(
                        "changed since it was ingested: SHA-256 of the session's document was {}, is {} now",
                        e.sha256,
                        sha256_hex(&doc)
                    ))
                };
            }
            Err(format!(
                "changed since it was ingested: it no longer holds session {session}"
            ))
        }
        _ => Err(format!(
            "changed since it was ingested: SHA-256 was {}, is {stored} now",
            e.sha256
        )),
    }
}

/// `--raw`: the bytes of one command's evidence, each byte a reader cannot see shown as an
/// escape, after the source is read again and found unchanged.
fn raw(index: &Path, r: &CommandRecord, out: &mut impl Write) -> Result<()> {
    let mut refetch = crate::remote::Refetch::new()?;
    let ledger = indexer::ledger::Ledger::of_index(index).read()?;
    let e = &r.evidence;
    let doc = document(&mut refetch, &ledger.entries, e, &r.session_id).map_err(|why| {
        anyhow::anyhow!(
            "{}: {why}: its bytes are not shown as evidence",
            escape::visible(&e.source)
        )
    })?;
    let (a, b) = (e.byte_start, e.byte_end);
    let Some(bytes) = usize::try_from(a)
        .ok()
        .zip(usize::try_from(b).ok())
        .and_then(|(a, b)| doc.get(a..b))
    else {
        bail!(
            "{}: bytes {a}–{b} are past its end ({} bytes)",
            escape::visible(&e.source),
            doc.len()
        );
    };
    let mut o = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        o,
        "# {}#{}: bytes {a}–{b} of {}{}",
        escape::visible(&r.session_id),
        r.seq,
        escape::visible(&e.source),
        e.version_id
            .as_deref()
            .map(|v| format!(" (version {})", escape::visible(v)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "# sha256 {}: read again, matches; bytes a reader cannot see are shown as \\xNN, and each line ends at \\x0a",
        escape::visible(&e.sha256)
    );
    o.push_str(&escaped(bytes));
    out.write_all(o.as_bytes())?;
    Ok(())
}

/// Bytes as text a terminal cannot be driven by: what is not printable UTF-8 as `\xNN` (or
/// `\u{…}`), a line break after each `\x0a`.
pub fn escaped(bytes: &[u8]) -> String {
    let mut o = String::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            o.push_str("\\x0a\n");
        }
        for chunk in line.utf8_chunks() {
            o.push_str(&escape::visible(chunk.valid()));
            for b in chunk.invalid() {
                o.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    if !o.ends_with('\n') {
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_raw_bytes() {
        assert_eq!(
            Target::parse("alice-0a1b#3").unwrap(),
            Target {
                session: "alice-0a1b".into(),
                seq: Some(3)
            }
        );
        assert_eq!(Target::parse("alice-0a1b").unwrap().seq, None);
        assert!(Target::parse("alice#x").is_err());
        assert!(Target::parse("#3").is_err());
        assert_eq!(
            escaped(b"\x1b]0;t\x07$ ls\r\r\n\xff\x9bx"),
            "\\x1b]0;t\\x07$ ls\\x0d\\x0d\\x0a\n\\xff\\x9bx\n"
        );
    }
}
