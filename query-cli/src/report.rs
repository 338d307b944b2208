//! Per-user evidence reports: a summary, a timeline of sessions with every command and its
//! evidence, privileged commands by rule; HTML (one self-contained file), Markdown, CSV, JSON.

use anyhow::Result;
use indexer::model::CommandRecord;
use indexer::redact::redact;
use indexer::store::SessionCoverage;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// One self-contained HTML page (inline CSS and SVG, no fetches)
    Html,
    /// Markdown
    Md,
    /// CSV, one row per command
    Csv,
    /// JSON: summary and sessions with their commands
    Json,
}

impl ReportFormat {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Md => "md",
            ReportFormat::Csv => "csv",
            ReportFormat::Json => "json",
        }
    }
}

/// One session of the report.
#[derive(Debug, Serialize)]
pub struct Session {
    /// Its coverage: who, where, when, transcript and CloudTrail.
    #[serde(flatten)]
    pub coverage: SessionCoverage,
    /// Its commands, in order.
    pub commands: Vec<CommandRecord>,
}

/// The summary block.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The principal.
    pub user: String,
    /// Its ARNs seen.
    pub principal_arns: Vec<String>,
    /// Time window asked for.
    pub since: Option<String>,
    /// Time window asked for.
    pub until: Option<String>,
    /// Sessions.
    pub sessions: usize,
    /// Sessions with a transcript and a CloudTrail record.
    pub sessions_covered: usize,
    /// Sessions started without MFA.
    pub sessions_without_mfa: usize,
    /// Instances (name and id).
    pub instances: Vec<String>,
    /// Source IPs.
    pub source_ips: Vec<String>,
    /// Commands.
    pub commands: usize,
    /// Privileged commands per rule id.
    pub privileged: BTreeMap<String, usize>,
    /// First activity.
    pub first_activity: Option<String>,
    /// Last activity.
    pub last_activity: Option<String>,
    /// Secrets in command lines and output are masked.
    pub redacted: bool,
}

/// A whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Summary.
    pub summary: Summary,
    /// Sessions, oldest first.
    pub sessions: Vec<Session>,
    /// Rule titles by id.
    pub rules: BTreeMap<String, String>,
}

/// Assemble a report from a principal's commands and coverage rows.
pub fn build(
    user: &str,
    window: (Option<String>, Option<String>),
    mut records: Vec<CommandRecord>,
    coverage: Vec<SessionCoverage>,
    rules: &indexer::rules::Rules,
    redacted: bool,
) -> Report {
    for r in &mut records {
        r.rule = rules.matches(&r.command);
        if redacted {
            r.command = redact(&r.command);
            r.output = r.output.as_deref().map(redact);
        }
    }
    let mut by_session: BTreeMap<String, Vec<CommandRecord>> = BTreeMap::new();
    for r in records {
        by_session.entry(r.session_id.clone()).or_default().push(r);
    }
    let sessions: Vec<Session> = coverage
        .into_iter()
        .map(|c| Session {
            commands: by_session.remove(&c.session_id).unwrap_or_default(),
            coverage: c,
        })
        .collect();
    let mut privileged = BTreeMap::new();
    let (mut instances, mut ips, mut arns, mut times) = (
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
    );
    for s in &sessions {
        let who = &s.coverage.who;
        if let Some(i) = &who.instance_id {
            instances.insert(match &who.instance_name {
                Some(n) => format!("{n} ({i})"),
                None => i.clone(),
            });
        }
        ips.extend(who.source_ip.clone());
        arns.extend(who.principal_arn.clone());
        times.extend(who.session_start.clone());
        times.extend(who.session_end.clone());
        for c in &s.commands {
            for r in &c.rule {
                *privileged.entry(r.clone()).or_insert(0) += 1;
            }
        }
    }
    let summary = Summary {
        user: user.to_string(),
        principal_arns: arns.into_iter().collect(),
        since: window.0,
        until: window.1,
        sessions: sessions.len(),
        sessions_covered: sessions
            .iter()
            .filter(|s| s.coverage.status() == indexer::kinds::Status::Covered)
            .count(),
        sessions_without_mfa: sessions
            .iter()
            .filter(|s| s.coverage.who.mfa == Some(false))
            .count(),
        instances: instances.into_iter().collect(),
        source_ips: ips.into_iter().collect(),
        commands: sessions.iter().map(|s| s.commands.len()).sum(),
        privileged,
        first_activity: times.first().cloned(),
        last_activity: times.last().cloned(),
        redacted,
    };
    let titles = rules
        .all()
        .iter()
        .map(|r| (r.id.clone(), r.title.clone()))
        .collect();
    Report {
        summary,
        sessions,
        rules: titles,
    }
}

/// HTML text: see [`escape::html`].
fn h(s: &str) -> String {
    escape::html(s)
}

/// A time, or a source address, from a source: flagged when it is not one (see
/// [`escape::time`], [`escape::address`]); `—` when there is none.
fn time_of(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "—".into(), escape::time)
}

fn address_of(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "—".into(), escape::address)
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("—")
}

fn mfa(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "unknown",
    }
}

/// First lines of a command's output.
fn excerpt(o: &Option<String>) -> String {
    let text = o.as_deref().unwrap_or("");
    let mut lines: Vec<&str> = text.lines().take(3).collect();
    if text.lines().count() > 3 {
        lines.push("…");
    }
    let joined = lines.join("\n");
    if joined.chars().count() > 300 {
        joined.chars().take(300).collect::<String>() + "…"
    } else {
        joined
    }
}

/// Commands per day, as an inline SVG bar chart.
fn chart(r: &Report) -> String {
    let mut per_day: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in &r.sessions {
        let day = s
            .coverage
            .who
            .session_day()
            .unwrap_or_else(|| "unknown".into());
        let e = per_day.entry(day).or_default();
        e.0 += s.commands.len();
        e.1 += s.commands.iter().filter(|c| !c.rule.is_empty()).count();
    }
    let (w, hgt, pad) = (720.0_f64, 180.0_f64, 30.0_f64);
    let max = per_day.values().map(|v| v.0).max().unwrap_or(1).max(1) as f64;
    let n = per_day.len().max(1) as f64;
    let bw = ((w - 2.0 * pad) / n).min(60.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hgt}\" role=\"img\" aria-label=\"Commands per day\">\
<line x1=\"{pad}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#888\"/>",
        y0 = hgt - pad,
        x1 = w - pad
    );
    for (i, (day, (all, privileged))) in per_day.iter().enumerate() {
        let x = pad + i as f64 * bw + 4.0;
        let bh = (*all as f64 / max) * (hgt - 2.0 * pad);
        let ph = (*privileged as f64 / max) * (hgt - 2.0 * pad);
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#8aa9d6\"><title>{} commands on {}</title></rect>\
<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ph:.1}\" fill=\"#c0392b\"><title>{} privileged</title></rect>\
<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            hgt - pad - bh,
            bw - 8.0,
            all,
            h(day),
            hgt - pad - ph,
            bw - 8.0,
            privileged,
            x + (bw - 8.0) / 2.0,
            hgt - pad + 14.0,
            h(day.get(5..).unwrap_or(day))
        );
    }
    svg.push_str("</svg>");
    svg
}

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222}\
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;width:100%;margin:.6em 0}th,td{border:1px solid #ddd;padding:4px 6px;vertical-align:top;text-align:left}\
th{background:#f3f3f3}code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}\
pre{margin:0;white-space:pre-wrap;word-break:break-all;color:#555}tr.priv td{background:#fdecea}\
.conflict{border:2px solid #c0392b;background:#fdecea;padding:4px 8px}.note{border-left:4px solid #e67e22;padding:2px 8px}\
.rule{display:inline-block;background:#c0392b;color:#fff;border-radius:3px;padding:0 4px;margin:1px;font-size:11px}\
.ev{font-size:11px;color:#666;word-break:break-all}.warn{color:#c0392b;font-weight:bold}\
@media print{body{margin:0}tr{page-break-inside:avoid}h2{page-break-after:avoid}}";

/// The report as one self-contained HTML page.
pub fn html(r: &Report) -> String {
    let s = &r.summary;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Session Manager activity of {user}</title>\
<style>{CSS}</style></head><body><h1>Session Manager activity of {user}</h1>",
        user = h(&s.user)
    );
    let _ = write!(
        o,
        "<p>Period: {} to {}. {} of {} sessions covered (transcript and CloudTrail record){}. Secrets in commands and output are {}.</p>",
        h(s.since.as_deref().unwrap_or("the beginning")),
        h(s.until.as_deref().unwrap_or("now")),
        s.sessions_covered,
        s.sessions,
        if s.sessions_without_mfa > 0 {
            format!("; <span class=\"warn\">{} started without MFA</span>", s.sessions_without_mfa)
        } else {
            String::new()
        },
        if s.redacted { "masked" } else { "<b>not</b> masked" }
    );
    o.push_str("<h2>Summary</h2><table>");
    let row = |o: &mut String, k: &str, v: String| {
        let _ = write!(o, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    row(
        &mut o,
        "Principal ARNs",
        s.principal_arns
            .iter()
            .map(|a| h(a))
            .collect::<Vec<_>>()
            .join("<br>"),
    );
    row(&mut o, "Sessions", s.sessions.to_string());
    row(
        &mut o,
        "Instances",
        s.instances
            .iter()
            .map(|a| h(a))
            .collect::<Vec<_>>()
            .join("<br>"),
    );
    row(
        &mut o,
        "Source IPs",
        s.source_ips
            .iter()
            .map(|a| h(&escape::address(a)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    row(&mut o, "Commands", s.commands.to_string());
    row(
        &mut o,
        "Privileged commands",
        if s.privileged.is_empty() {
            "none".into()
        } else {
            s.privileged
                .iter()
                .map(|(id, n)| {
                    format!(
                        "{n} × <span class=\"rule\">{}</span> {}",
                        h(id),
                        h(r.rules.get(id).map_or("", |t| t))
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>")
        },
    );
    row(&mut o, "First activity", h(&time_of(&s.first_activity)));
    row(&mut o, "Last activity", h(&time_of(&s.last_activity)));
    o.push_str("</table><h2>Activity</h2>");
    o.push_str(&chart(r));
    o.push_str("<h2>Sessions</h2>");
    for sess in &r.sessions {
        let c = &sess.coverage;
        let w = &c.who;
        let _ = write!(
            o,
            "<h3><code>{}</code></h3><p>{} → {} · instance {} · MFA {} · from {} · attribution: {}{} · {}{}</p>",
            h(&c.session_id),
            h(&time_of(&w.session_start)),
            h(&time_of(&w.session_end)),
            h(&match (&w.instance_name, &w.instance_id) {
                (Some(n), Some(i)) => format!("{n} ({i})"),
                (None, Some(i)) => i.clone(),
                _ => "unknown".into(),
            }),
            mfa(w.mfa),
            h(&address_of(&w.source_ip)),
            h(w.attribution.as_str()),
            match w.cloudtrail_validated {
                Some(true) => " (CloudTrail validated)",
                Some(false) => {
                    " <span class=\"warn\">(CloudTrail not validated: no signed digest lists its file)</span>"
                }
                None => "",
            },
            h(c.status().as_str()),
            c.document.as_deref().map(|d| format!(" · document {}", h(d))).unwrap_or_default()
        );
        // What an auditor must weigh before reading the commands: sources that disagree,
        // others who joined, calls that were refused.
        if !w.conflicts.is_empty() {
            o.push_str("<div class=\"conflict\"><b>CONFLICT: the sources of this session disagree.</b> What follows shows the documented precedence.<ul>");
            for why in &w.conflicts {
                let _ = write!(o, "<li>{}</li>", h(why));
            }
            o.push_str("</ul></div>");
        }
        if !c.partial.is_empty() {
            o.push_str("<div class=\"conflict\"><b>PARTIAL: parts of this transcript could not be read.</b> Commands typed there may be missing below.<ul>");
            for p in &c.partial {
                let _ = write!(
                    o,
                    "<li>bytes {}–{}: {}</li>",
                    p.byte_start,
                    p.byte_end,
                    h(&p.reason)
                );
            }
            o.push_str("</ul></div>");
        }
        if !w.participants.is_empty() {
            o.push_str("<div class=\"note\"><b>Resumed by another principal.</b> A transcript does not say who typed which line after a resume.<ul>");
            for p in &w.participants {
                let _ = write!(
                    o,
                    "<li>{} from {} at {}, MFA {}</li>",
                    h(opt(&p.principal_arn.clone().or(p.principal.clone()))),
                    h(&address_of(&p.source_ip)),
                    h(&escape::time(&p.time)),
                    mfa(p.mfa)
                );
            }
            o.push_str("</ul></div>");
        }
        if !c.denied.is_empty() {
            o.push_str("<div class=\"note\"><b>Failed or denied calls on this session.</b><ul>");
            for e in &c.denied {
                let _ = write!(
                    o,
                    "<li>{} {} {} by {} from {}</li>",
                    h(&escape::time(&e.event_time)),
                    h(&e.event_name),
                    h(opt(&e.error_code)),
                    h(opt(&e.principal_arn.clone().or(e.principal.clone()))),
                    h(&address_of(&e.source_ip))
                );
            }
            o.push_str("</ul></div>");
        }
        if sess.commands.is_empty() {
            o.push_str("<p><i>No commands: no transcript was ingested for this session.</i></p>");
            continue;
        }
        o.push_str("<table><tr><th>#</th><th>run as</th><th>cwd</th><th>command</th><th>output (excerpt)</th><th>evidence</th></tr>");
        for cmd in &sess.commands {
            let e = &cmd.evidence;
            let _ = write!(
                o,
                "<tr{}><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code>{}</td><td><pre>{}</pre></td>\
<td class=\"ev\">{}{}<br>sha256 {}<br>bytes {}–{}</td></tr>",
                if cmd.rule.is_empty() { "" } else { " class=\"priv\"" },
                cmd.seq,
                h(cmd.run_as.as_deref().unwrap_or("unknown")),
                h(opt(&cmd.cwd)),
                h(&cmd.command),
                cmd.rule.iter().map(|id| format!(" <span class=\"rule\">{}</span>", h(id))).collect::<String>(),
                excerpt(&cmd.output).lines().map(h).collect::<Vec<_>>().join("\n"),
                h(&e.source),
                e.version_id.as_deref().map(|v| format!(" (version {})", h(v))).unwrap_or_default(),
                h(&e.sha256),
                e.byte_start,
                e.byte_end
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</body></html>\n");
    o
}

/// A value in Markdown: a code span (see [`escape::md`]); in a table cell, `|` escaped.
fn md(s: &str) -> String {
    escape::md(s, true)
}

/// A value in Markdown outside a table (a heading, a note).
fn md_text(s: &str) -> String {
    escape::md(s, false)
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let s = &r.summary;
    let mut o = format!("# Session Manager activity of {}\n\n", md_text(&s.user));
    let _ = writeln!(
        o,
        "{} of {} sessions covered; {} started without MFA; {} commands; secrets {}.\n",
        s.sessions_covered,
        s.sessions,
        s.sessions_without_mfa,
        s.commands,
        if s.redacted { "masked" } else { "NOT masked" }
    );
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(
        o,
        "| Principal ARNs | {} |",
        s.principal_arns
            .iter()
            .map(|a| md(a))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        o,
        "| Instances | {} |",
        s.instances
            .iter()
            .map(|a| md(a))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        o,
        "| Source IPs | {} |",
        s.source_ips
            .iter()
            .map(|a| md(&escape::address(a)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        o,
        "| First activity | {} |",
        md(&time_of(&s.first_activity))
    );
    let _ = writeln!(o, "| Last activity | {} |", md(&time_of(&s.last_activity)));
    for (id, n) in &s.privileged {
        let _ = writeln!(
            o,
            "| Privileged: {} | {n} |",
            md(r.rules.get(id).map_or(id, |t| t))
        );
    }
    for sess in &r.sessions {
        let c = &sess.coverage;
        let w = &c.who;
        let _ = writeln!(
            o,
            "\n## {}\n\n{} → {}, instance {} {}, MFA {}, from {}, {}{}\n",
            md_text(&c.session_id),
            md_text(&time_of(&w.session_start)),
            md_text(&time_of(&w.session_end)),
            md_text(opt(&w.instance_name)),
            md_text(opt(&w.instance_id)),
            mfa(w.mfa),
            md_text(&address_of(&w.source_ip)),
            c.status(),
            match w.cloudtrail_validated {
                Some(true) => ", CloudTrail validated",
                Some(false) => ", **CloudTrail not validated** (no signed digest lists its file)",
                None => "",
            }
        );
        for why in &w.conflicts {
            let _ = writeln!(o, "> **CONFLICT**: {}\n>", md_text(why));
        }
        for p in &c.partial {
            let _ = writeln!(
                o,
                "> **PARTIAL**: bytes {}–{}: {} (commands typed there may be missing below)\n>",
                p.byte_start,
                p.byte_end,
                md_text(&p.reason)
            );
        }
        for p in &w.participants {
            let _ = writeln!(
                o,
                "> **Resumed by** {} from {} at {}, MFA {} (a transcript does not say who typed which line after a resume)\n>",
                md_text(opt(&p.principal_arn.clone().or(p.principal.clone()))),
                md_text(&address_of(&p.source_ip)),
                md_text(&escape::time(&p.time)),
                mfa(p.mfa)
            );
        }
        for e in &c.denied {
            let _ = writeln!(
                o,
                "> **{}** {} {} by {} from {}\n>",
                md_text(opt(&e.error_code)),
                md_text(&escape::time(&e.event_time)),
                md_text(&e.event_name),
                md_text(opt(&e.principal_arn.clone().or(e.principal.clone()))),
                md_text(&address_of(&e.source_ip))
            );
        }
        if sess.commands.is_empty() {
            continue;
        }
        let _ = writeln!(
            o,
            "| # | run as | cwd | command | rules | evidence |\n|---|---|---|---|---|---|"
        );
        for cmd in &sess.commands {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} sha256 {} bytes {}–{} |",
                cmd.seq,
                md(cmd.run_as.as_deref().unwrap_or("unknown")),
                md(opt(&cmd.cwd)),
                md(&cmd.command),
                md(&cmd.rule.join(", ")),
                md(&cmd.evidence.source),
                md(&cmd.evidence.sha256),
                cmd.evidence.byte_start,
                cmd.evidence.byte_end
            );
        }
    }
    o
}

/// The report's commands as CSV rows (one per command).
pub fn csv(r: &Report, out: &mut impl std::io::Write) -> Result<()> {
    let mut records: Vec<CommandRecord> = Vec::new();
    for s in &r.sessions {
        records.extend(s.commands.iter().cloned());
    }
    crate::output::commands(out, &records, crate::cli::Format::Csv, true)
}
