//! Tables for people, JSON Lines and CSV for machines. Text from logs never reaches the
//! terminal raw: what a reader cannot see is shown (see the `escape` crate).

use crate::cli::Format;
use anyhow::Result;
use indexer::model::CommandRecord;
use indexer::store::WhoKey;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::look::{Look, Styled, Tone};
use escape::cell;
pub use escape::visible;

/// A CSV cell: see [`escape::csv`].
fn csv_cell(s: &str) -> String {
    escape::csv(s)
}

/// JSON with nothing invisible in it (see [`escape::json`]).
fn json_line<T: Serialize>(value: &T) -> Result<String> {
    Ok(escape::json(serde_json::to_string(value)?))
}

/// Prose a table branch wrote after its table, with every hidden character of it shown (a
/// value printed without [`cell`] is still never raw on the terminal), each line wrapped to
/// the terminal's width (a continuation indented like its line, and two more); newlines are
/// the branch's own.
fn screen(out: &mut impl Write, buf: &[u8], look: &Look) -> Result<()> {
    let text = String::from_utf8_lossy(buf);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
        }
        let line = visible(line);
        match look.width {
            Some(w) if textwrap::core::display_width(&line) > usize::from(w) => {
                let indent = " ".repeat(line.len() - line.trim_start().len() + 2);
                let options = textwrap::Options::new(usize::from(w)).subsequent_indent(&indent);
                out.write_all(textwrap::wrap(&line, options).join("\n").as_bytes())?;
            }
            _ => out.write_all(line.as_bytes())?,
        }
    }
    Ok(())
}

/// A missing value in CSV: an empty cell.
fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn or_dash(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

/// Print command records.
pub fn commands(
    out: &mut impl Write,
    records: &[CommandRecord],
    format: Format,
    with_output: bool,
    look: &Look,
) -> Result<()> {
    match format {
        Format::Json => {
            for r in records {
                writeln!(out, "{}", json_line(r)?)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "session_id",
                "seq",
                "session_start",
                "principal",
                "principal_arn",
                "mfa",
                "source_ip",
                "instance_id",
                "instance_name",
                "run_as",
                "cwd",
                "command",
                "programs",
                "rule",
                "attribution",
                "source",
                "version_id",
                "sha256",
                "byte_start",
                "byte_end",
                "output",
                "suspicious",
                "conflicts",
                "abandoned",
            ])?;
            for r in records {
                let row = [
                    r.session_id.clone(),
                    r.seq.to_string(),
                    opt(&r.who.session_start).to_string(),
                    opt(&r.who.principal).to_string(),
                    opt(&r.who.principal_arn).to_string(),
                    r.who.mfa.map_or(String::new(), |m| m.to_string()),
                    opt(&r.who.source_ip).to_string(),
                    opt(&r.who.instance_id).to_string(),
                    opt(&r.who.instance_name).to_string(),
                    r.run_as.clone().unwrap_or_default(),
                    opt(&r.cwd).to_string(),
                    r.command.clone(),
                    r.programs.join(" "),
                    r.rule.join(" "),
                    r.who.attribution.to_string(),
                    r.evidence.source.clone(),
                    r.evidence.version_id.clone().unwrap_or_default(),
                    r.evidence.sha256.clone(),
                    r.evidence.byte_start.to_string(),
                    r.evidence.byte_end.to_string(),
                    r.output.clone().unwrap_or_default(),
                    r.suspicious.join("; "),
                    r.who.conflicts.join("; "),
                    r.abandoned.to_string(),
                ];
                w.write_record(row.iter().map(|c| csv_cell(c)))?;
            }
            w.flush()?;
        }
        Format::Table => {
            let rows: Vec<Vec<Styled>> = records
                .iter()
                .map(|r| {
                    // Flagged lines and sessions stand out; `--format json` and `coverage`
                    // say why.
                    let mut flags = Vec::new();
                    if !r.who.conflicts.is_empty() {
                        flags.push("CONFLICT".to_string());
                    }
                    if !r.suspicious.is_empty() {
                        flags.push("SUSPICIOUS".to_string());
                    }
                    if r.abandoned {
                        flags.push("ABANDONED".to_string());
                    }
                    if r.shell_profile {
                        flags.push("PROFILE".to_string());
                    }
                    if r.started_with.is_some() {
                        flags.push("STARTED-WITH".to_string());
                    }
                    let alert = flags.iter().any(|f| f == "CONFLICT" || f == "SUSPICIOUS");
                    flags.push(r.rule.join(","));
                    let tone = if alert {
                        Tone::Alert
                    } else if !r.rule.is_empty() || r.abandoned {
                        Tone::Warn
                    } else {
                        Tone::Plain
                    };
                    vec![
                        look.time_or_dash(&r.who.session_start).into(),
                        cell(or_dash(&r.who.principal)).into(),
                        cell(&match (&r.who.instance_name, &r.who.instance_id) {
                            (Some(n), Some(i)) => format!("{n} ({i})"),
                            (None, Some(i)) => i.clone(),
                            _ => "-".into(),
                        })
                        .into(),
                        cell(r.run_as.as_deref().unwrap_or("unknown")).into(),
                        cell(&format!("{}#{}", r.session_id, r.seq)).into(),
                        Styled::toned(cell(flags.join(" ").trim_end()), tone),
                        cell(&r.command).into(),
                    ]
                })
                .collect();
            out.write_all(
                look.table(
                    &[
                        "SESSION START",
                        "PRINCIPAL",
                        "INSTANCE",
                        "RUN AS",
                        "SESSION#SEQ",
                        "RULE",
                        "COMMAND",
                    ],
                    rows,
                )
                .as_bytes(),
            )?;
            if with_output {
                let mut buf = Vec::new();
                for r in records {
                    if let Some(o) = r.output.as_deref().filter(|o| !o.is_empty()) {
                        writeln!(buf, "\n── {}#{} {}", r.session_id, r.seq, cell(&r.command))?;
                        for line in o.lines() {
                            writeln!(buf, "  {}", visible(line))?;
                        }
                    }
                }
                screen(out, &buf, look)?;
            }
        }
    }
    Ok(())
}

/// One principal's part in a `who` answer.
#[derive(Debug, Serialize)]
pub struct WhoRow {
    pub principal_arn: Option<String>,
    pub principal: Option<String>,
    pub commands: usize,
    pub sessions: usize,
    pub instances: Vec<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Of its sessions, those whose sources disagree (`coverage` says how).
    #[serde(skip_serializing_if = "is_zero")]
    pub sessions_in_conflict: usize,
    /// The sessions, by id (`ssm-audit sessions` and `search session:ID` show them).
    pub session_ids: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Group matching commands, counted by session, by principal.
pub fn who_rows(sessions: &[(WhoKey, usize)]) -> Vec<WhoRow> {
    #[derive(Default)]
    struct Acc {
        arn: Option<String>,
        name: Option<String>,
        commands: usize,
        sessions: BTreeSet<String>,
        conflicted: BTreeSet<String>,
        instances: BTreeSet<String>,
        times: BTreeSet<String>,
    }
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    for (s, n) in sessions {
        let key = s
            .principal_arn
            .clone()
            .or_else(|| s.principal.clone())
            .unwrap_or_else(|| "(unknown)".into());
        let a = by.entry(key).or_default();
        a.arn = s.principal_arn.clone();
        a.name = s.principal.clone();
        a.commands += n;
        a.sessions.insert(s.session_id.clone());
        if s.conflict {
            a.conflicted.insert(s.session_id.clone());
        }
        if let Some(i) = &s.instance {
            a.instances.insert(i.clone());
        }
        for t in [&s.session_start, &s.session_end].into_iter().flatten() {
            a.times.insert(t.clone());
        }
    }
    let mut rows: Vec<WhoRow> = by
        .into_values()
        .map(|a| WhoRow {
            principal_arn: a.arn,
            principal: a.name,
            commands: a.commands,
            sessions: a.sessions.len(),
            instances: a.instances.into_iter().collect(),
            first_seen: a.times.first().cloned(),
            last_seen: a.times.last().cloned(),
            sessions_in_conflict: a.conflicted.len(),
            session_ids: a.sessions.into_iter().collect(),
        })
        .collect();
    rows.sort_by(|a, b| (&a.principal, &a.principal_arn).cmp(&(&b.principal, &b.principal_arn)));
    rows
}

/// Print a `who` answer.
pub fn who(out: &mut impl Write, rows: &[WhoRow], format: Format, look: &Look) -> Result<()> {
    match format {
        Format::Json => {
            for r in rows {
                writeln!(out, "{}", json_line(r)?)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "principal",
                "principal_arn",
                "commands",
                "sessions",
                "instances",
                "first_seen",
                "last_seen",
                "session_ids",
            ])?;
            for r in rows {
                let row = [
                    opt(&r.principal).to_string(),
                    opt(&r.principal_arn).to_string(),
                    r.commands.to_string(),
                    r.sessions.to_string(),
                    r.instances.join(" "),
                    opt(&r.first_seen).to_string(),
                    opt(&r.last_seen).to_string(),
                    r.session_ids.join(" "),
                ];
                w.write_record(row.iter().map(|c| csv_cell(c)))?;
            }
            w.flush()?;
        }
        Format::Table => {
            let rows: Vec<Vec<Styled>> = rows
                .iter()
                .map(|r| {
                    vec![
                        cell(or_dash(&r.principal)).into(),
                        cell(or_dash(&r.principal_arn)).into(),
                        r.commands.to_string().into(),
                        if r.sessions_in_conflict > 0 {
                            Styled::toned(
                                format!("{} ({} CONFLICT)", r.sessions, r.sessions_in_conflict),
                                Tone::Alert,
                            )
                        } else {
                            r.sessions.to_string().into()
                        },
                        cell(&r.instances.join(", ")).into(),
                        look.time_or_dash(&r.first_seen).into(),
                        look.time_or_dash(&r.last_seen).into(),
                    ]
                })
                .collect();
            out.write_all(
                look.table(
                    &[
                        "PRINCIPAL",
                        "ARN",
                        "COMMANDS",
                        "SESSIONS",
                        "INSTANCES",
                        "FIRST SEEN",
                        "LAST SEEN",
                    ],
                    rows,
                )
                .as_bytes(),
            )?;
        }
    }
    Ok(())
}

/// A session's coverage as JSON: every field, with its status and flags named.
pub fn coverage_json(c: &indexer::store::SessionCoverage) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(c)?;
    v["status"] = c.status().as_str().into();
    v["flags"] = c
        .flags()
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .into();
    Ok(v)
}

/// Print coverage: every session (or only those with a gap) and a summary line for people.
pub fn coverage(
    out: &mut impl Write,
    rows: &[indexer::store::SessionCoverage],
    gaps_only: bool,
    format: Format,
    look: &Look,
) -> Result<()> {
    let gap = |c: &indexer::store::SessionCoverage| {
        c.status() != indexer::kinds::Status::Covered
            || c.who.mfa != Some(true)
            || !c.partial.is_empty()
    };
    let shown: Vec<_> = rows.iter().filter(|c| !gaps_only || gap(c)).collect();
    match format {
        Format::Json => {
            for c in &shown {
                writeln!(out, "{}", json_line(&coverage_json(c)?)?)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "session_id",
                "status",
                "flags",
                "principal",
                "principal_arn",
                "mfa",
                "instance_id",
                "instance_name",
                "session_start",
                "session_end",
                "document",
                "transcripts",
                "conflicts",
                "partial",
            ])?;
            for c in &shown {
                let row = [
                    c.session_id.clone(),
                    c.status().to_string(),
                    flag_list(&c.flags(), " "),
                    opt(&c.who.principal).to_string(),
                    opt(&c.who.principal_arn).to_string(),
                    c.who.mfa.map_or(String::new(), |m| m.to_string()),
                    opt(&c.who.instance_id).to_string(),
                    opt(&c.who.instance_name).to_string(),
                    opt(&c.who.session_start).to_string(),
                    opt(&c.who.session_end).to_string(),
                    opt(&c.document).to_string(),
                    c.transcripts.join(" "),
                    c.who.conflicts.join("; "),
                    c.partial
                        .iter()
                        .map(|p| format!("bytes {}-{}: {}", p.byte_start, p.byte_end, p.reason))
                        .collect::<Vec<_>>()
                        .join("; "),
                ];
                w.write_record(row.iter().map(|c| csv_cell(c)))?;
            }
            w.flush()?;
        }
        Format::Table => {
            let table_rows: Vec<Vec<Styled>> = shown
                .iter()
                .map(|c| {
                    let flags = c.flags();
                    let status = if flags.is_empty() {
                        c.status().to_string()
                    } else {
                        format!("{} {}", c.status(), flag_list(&flags, ",").to_uppercase())
                    };
                    let tone = Tone::of(
                        c.status() != indexer::kinds::Status::Covered
                            || !c.who.conflicts.is_empty(),
                        !flags.is_empty(),
                    );
                    vec![
                        Styled::toned(status, tone),
                        // A call refused before any session began names none.
                        cell(if c.session_id.is_empty() {
                            "(none began)"
                        } else {
                            &c.session_id
                        })
                        .into(),
                        cell(or_dash(&c.who.principal)).into(),
                        match c.who.mfa {
                            None => Styled::toned("?".into(), Tone::Warn),
                            Some(true) => "yes".to_string().into(),
                            Some(false) => Styled::toned("NO".into(), Tone::Alert),
                        },
                        cell(or_dash(
                            &c.who
                                .instance_name
                                .clone()
                                .or_else(|| c.who.instance_id.clone()),
                        ))
                        .into(),
                        look.time_or_dash(&c.who.session_start).into(),
                        cell(or_dash(&c.document)).into(),
                    ]
                })
                .collect();
            out.write_all(
                look.table(
                    &[
                        "STATUS",
                        "SESSION",
                        "PRINCIPAL",
                        "MFA",
                        "INSTANCE",
                        "SESSION START",
                        "DOCUMENT",
                    ],
                    table_rows,
                )
                .as_bytes(),
            )?;
            let mut buf = Vec::new();
            {
                let out = &mut buf;
                let covered = rows
                    .iter()
                    .filter(|c| c.status() == indexer::kinds::Status::Covered)
                    .count();
                let no_log = rows
                    .iter()
                    .filter(|c| c.status() == indexer::kinds::Status::NoTranscript)
                    .count();
                let no_trail = rows
                    .iter()
                    .filter(|c| c.status() == indexer::kinds::Status::NoCloudtrail)
                    .count();
                let no_mfa = rows.iter().filter(|c| c.who.mfa == Some(false)).count();
                let mfa_unknown = rows.iter().filter(|c| c.who.mfa_unknown.is_some()).count();
                writeln!(
                    out,
                    "\n{covered} of {} sessions covered (transcript and CloudTrail); {no_log} with no transcript, {no_trail} with no CloudTrail record, {no_mfa} started without MFA, {mfa_unknown} whose MFA CloudTrail cannot tell (see mfa_unknown in --format json)",
                    rows.len()
                )?;
                let conflicts: Vec<_> = rows
                    .iter()
                    .filter(|c| !c.who.conflicts.is_empty())
                    .collect();
                if !conflicts.is_empty() {
                    writeln!(
                        out,
                        "{} sessions whose sources disagree (the row shows the documented precedence):",
                        conflicts.len()
                    )?;
                    for c in conflicts {
                        for why in &c.who.conflicts {
                            writeln!(out, "  CONFLICT {}: {}", cell(&c.session_id), cell(why))?;
                        }
                    }
                }
                let joined: Vec<_> = rows
                    .iter()
                    .flat_map(|c| c.who.participants.iter().map(move |p| (c, p)))
                    .collect();
                if !joined.is_empty() {
                    writeln!(
                        out,
                        "{} resumes by another principal (a transcript does not say who typed what after one):",
                        joined.len()
                    )?;
                    for (c, p) in joined {
                        writeln!(
                            out,
                            "  PARTICIPANT {}: {} from {} at {}, MFA {}",
                            cell(&c.session_id),
                            cell(or_dash(&p.principal_arn.clone().or(p.principal.clone()))),
                            p.source_ip
                                .as_deref()
                                .map_or_else(|| "-".into(), escape::address),
                            look.time(&p.time),
                            p.mfa.map_or("?", |m| if m { "yes" } else { "NO" })
                        )?;
                    }
                }
                let partial: Vec<_> = shown
                    .iter()
                    .flat_map(|c| c.partial.iter().map(move |p| (c, p)))
                    .collect();
                if !partial.is_empty() {
                    writeln!(
                        out,
                        "{} stretches of transcripts the replay could not read (commands typed there may be missing from the records):",
                        partial.len()
                    )?;
                    for (c, p) in partial {
                        writeln!(
                            out,
                            "  PARTIAL {}: bytes {}-{}: {}",
                            cell(&c.session_id),
                            p.byte_start,
                            p.byte_end,
                            cell(&p.reason)
                        )?;
                    }
                }
                let refused: Vec<_> = rows.iter().flat_map(|c| &c.unreadable).collect();
                if !refused.is_empty() {
                    writeln!(
                        out,
                        "{} files named as transcripts that are not:",
                        refused.len()
                    )?;
                    for u in refused {
                        writeln!(
                            out,
                            "  UNREADABLE {}: {}: {}",
                            cell(&u.session_id),
                            cell(&u.source),
                            cell(&u.reason)
                        )?;
                    }
                }
                let denied: Vec<_> = rows.iter().flat_map(|c| &c.denied).collect();
                if !denied.is_empty() {
                    writeln!(out, "{} failed or denied calls:", denied.len())?;
                    for e in denied {
                        writeln!(
                            out,
                            "  DENIED {} {} {} by {} from {} on {}",
                            look.time(&e.event_time),
                            cell(&e.event_name),
                            cell(or_dash(&e.error_code)),
                            cell(or_dash(&e.principal_arn.clone().or(e.principal.clone()))),
                            e.source_ip
                                .as_deref()
                                .map_or_else(|| "-".into(), escape::address),
                            cell(if e.session_id.is_empty() {
                                or_dash(&e.target)
                            } else {
                                &e.session_id
                            })
                        )?;
                    }
                }
            }
            screen(out, &buf, look)?;
        }
    }
    Ok(())
}

/// Print what `verify` found.
pub fn verify(
    out: &mut impl Write,
    report: &indexer::verify::Report,
    format: Format,
    look: &Look,
) -> Result<()> {
    match format {
        Format::Json => {
            for p in &report.problems {
                writeln!(out, "{}", json_line(p)?)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(["problem", "source", "detail"])?;
            for p in &report.problems {
                w.write_record([
                    csv_cell(p.kind.as_str()),
                    csv_cell(&p.source),
                    csv_cell(&p.detail),
                ])?;
            }
            w.flush()?;
        }
        Format::Table => {
            let mut buf = Vec::new();
            let mut tables = String::new();
            {
                let out = &mut buf;
                if !report.problems.is_empty() {
                    let rows: Vec<Vec<Styled>> = report
                        .problems
                        .iter()
                        .map(|p| {
                            vec![
                                Styled::toned(p.kind.as_str().to_uppercase(), Tone::Alert),
                                cell(&p.source).into(),
                                cell(&p.detail).into(),
                            ]
                        })
                        .collect();
                    tables.push_str(&look.table(&["PROBLEM", "SOURCE", "DETAIL"], rows));
                    tables.push('\n');
                }
                for (s, why) in &report.unchecked {
                    writeln!(out, "not checked: {}: {}", visible(s), visible(why))?;
                }
                writeln!(
                    out,
                    "{} sources fetched and hashed again, {} records compared{}: {}",
                    report.sources,
                    report.commands,
                    [
                        (report.valid_digests > 0 || report.validated_trail_files > 0).then(|| {
                            format!(
                                ", {} CloudTrail files validated by {} signed digests",
                                report.validated_trail_files, report.valid_digests
                            )
                        }),
                        (report.anchored_heads > 0).then(|| {
                            format!(
                                ", the ledger checked against {} anchored heads",
                                report.anchored_heads
                            )
                        }),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<String>(),
                    if report.problems.is_empty() {
                        "everything matches".to_string()
                    } else {
                        format!("{} problems", report.problems.len())
                    }
                )?;
            }
            out.write_all(tables.as_bytes())?;
            screen(out, &buf, look)?;
        }
    }
    Ok(())
}

/// Flags joined by `sep`.
fn flag_list(flags: &[indexer::kinds::Flag], sep: &str) -> String {
    flags
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_made_visible() {
        assert_eq!(
            visible("a\x1b]52;c;eA==\x07b\u{9b}"),
            "a\\x1b]52;c;eA==\\x07b\\x9b"
        );
        assert_eq!(csv_cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(json_line(&"x\u{7f}\u{85}").unwrap(), "\"x\\u007f\\u0085\"");
    }
}

/// One session in `sessions`: who, where, when, how long, what it holds, what to look at.
#[derive(Debug, Serialize)]
pub struct SessionRow {
    pub session_id: String,
    pub principal: Option<String>,
    pub principal_arn: Option<String>,
    pub instance_id: Option<String>,
    pub instance_name: Option<String>,
    pub session_start: Option<String>,
    pub session_end: Option<String>,
    /// Seconds from start to end, when both are known.
    pub duration_seconds: Option<i64>,
    pub mfa: Option<bool>,
    pub commands: usize,
    /// Commands that match a privileged-command rule.
    pub privileged: usize,
    /// Commands marked suspicious (a forged prompt, a line typed where no prompt was).
    pub suspicious: usize,
    /// Lines typed and abandoned (Ctrl-C), never run.
    pub abandoned: usize,
    /// `covered`, `no transcript`, `no cloudtrail`.
    pub status: String,
    /// `conflict`, `denied`, `participants`, `unreadable`, `partial`.
    pub flags: Vec<String>,
}

/// A duration for a table: `1h02m`, `5m07s`, `12s`.
fn duration(secs: Option<i64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        Some(s) if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) => format!("{s}s"),
    }
}

/// Print the sessions.
pub fn sessions(
    out: &mut impl Write,
    rows: &[SessionRow],
    format: Format,
    look: &Look,
) -> Result<()> {
    match format {
        Format::Json => {
            for r in rows {
                writeln!(out, "{}", json_line(r)?)?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "session_id",
                "principal",
                "principal_arn",
                "instance_id",
                "instance_name",
                "session_start",
                "session_end",
                "duration_seconds",
                "mfa",
                "commands",
                "privileged",
                "suspicious",
                "abandoned",
                "status",
                "flags",
            ])?;
            for r in rows {
                let row = [
                    r.session_id.clone(),
                    opt(&r.principal).to_string(),
                    opt(&r.principal_arn).to_string(),
                    opt(&r.instance_id).to_string(),
                    opt(&r.instance_name).to_string(),
                    opt(&r.session_start).to_string(),
                    opt(&r.session_end).to_string(),
                    r.duration_seconds
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    r.mfa.map(|m| m.to_string()).unwrap_or_default(),
                    r.commands.to_string(),
                    r.privileged.to_string(),
                    r.suspicious.to_string(),
                    r.abandoned.to_string(),
                    r.status.clone(),
                    r.flags.join(" "),
                ];
                w.write_record(row.iter().map(|c| csv_cell(c)))?;
            }
            w.flush()?;
        }
        Format::Table => {
            let rows: Vec<Vec<Styled>> = rows
                .iter()
                .map(|r| {
                    let mut flags: Vec<String> = Vec::new();
                    if r.status != "covered" {
                        flags.push(r.status.to_uppercase());
                    }
                    if r.suspicious > 0 {
                        flags.push(format!("{} SUSPICIOUS", r.suspicious));
                    }
                    if r.abandoned > 0 {
                        flags.push(format!("{} ABANDONED", r.abandoned));
                    }
                    flags.extend(r.flags.iter().map(|f| f.to_uppercase()));
                    let tone = Tone::of(
                        r.status != "covered"
                            || r.suspicious > 0
                            || r.flags.iter().any(|f| f == "conflict"),
                        !flags.is_empty(),
                    );
                    vec![
                        cell(&r.session_id).into(),
                        cell(or_dash(&r.principal)).into(),
                        cell(
                            &r.instance_name
                                .clone()
                                .or_else(|| r.instance_id.clone())
                                .unwrap_or_else(|| "-".into()),
                        )
                        .into(),
                        look.time_or_dash(&r.session_start).into(),
                        duration(r.duration_seconds).into(),
                        r.commands.to_string().into(),
                        if r.privileged > 0 {
                            Styled::toned(r.privileged.to_string(), Tone::Warn)
                        } else {
                            r.privileged.to_string().into()
                        },
                        Styled::toned(flags.join(", "), tone),
                    ]
                })
                .collect();
            out.write_all(
                look.table(
                    &[
                        "SESSION",
                        "PRINCIPAL",
                        "INSTANCE",
                        "START",
                        "DURATION",
                        "COMMANDS",
                        "PRIVILEGED",
                        "FLAGS",
                    ],
                    rows,
                )
                .as_bytes(),
            )?;
        }
    }
    Ok(())
}
