//! Per-user evidence reports: a summary, a timeline of sessions with every command and its
//! evidence, privileged commands by rule; HTML (one self-contained file), Markdown, CSV, JSON.

use crate::look::Look;
use anyhow::Result;
use indexer::model::{CommandRecord, Evidence};
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

impl Session {
    /// The sources its lines cite (name and version), each once, in the order first cited:
    /// the evidence a report names once per session.
    pub fn sources(&self) -> Vec<&Evidence> {
        distinct_sources(&self.commands)
    }
}

/// The sources `records` cite (name and version), each once, in the order first cited.
pub fn distinct_sources(records: &[CommandRecord]) -> Vec<&Evidence> {
    let mut out: Vec<&Evidence> = Vec::new();
    for e in records.iter().map(|c| &c.evidence) {
        if cited(&out, e).is_none() {
            out.push(e);
        }
    }
    out
}

/// Which of `sources` (see [`Session::sources`]) `e` points into, from 0.
pub fn cited(sources: &[&Evidence], e: &Evidence) -> Option<usize> {
    sources
        .iter()
        .position(|s| s.source == e.source && s.version_id == e.version_id)
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
    /// Lines marked suspicious (a forged prompt, echo turned off, …).
    pub suspicious: usize,
    /// Lines typed and abandoned (Ctrl-C), never run.
    pub abandoned: usize,
    /// Transcript sources the records cite.
    pub sources_cited: usize,
    /// Privileged commands per rule id.
    pub privileged: BTreeMap<String, usize>,
    /// First activity.
    pub first_activity: Option<String>,
    /// Last activity.
    pub last_activity: Option<String>,
    /// Secrets in command lines and output are masked.
    pub redacted: bool,
}

/// What a report covers and what it was made from: enough for a reader who was not there to
/// know its scope and tie it to the index.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    /// When it was made (RFC 3339, UTC).
    pub generated: String,
    /// The tool's version.
    pub version: String,
    /// The command line that made it (arguments quoted where needed).
    pub command_line: String,
    /// The filters: principal, instance, since, until (as given).
    pub filters: Filters,
    /// The index's ledger head when it was made: entries and the last entry's hash.
    pub ledger: indexer::ledger::Head,
    /// Sources the index's ledger holds.
    pub sources_in_index: usize,
    /// The zone its HTML and Markdown show times in (JSON and CSV keep UTC).
    pub time_zone: String,
}

/// The filters a report was made with.
#[derive(Debug, Clone, Serialize)]
pub struct Filters {
    pub principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Scope and provenance.
    pub context: Context,
    /// Summary.
    pub summary: Summary,
    /// Sessions, oldest first.
    pub sessions: Vec<Session>,
    /// Rule titles by id.
    pub rules: BTreeMap<String, String>,
}

/// Assemble a report from a principal's lines (commands and abandoned lines) and coverage
/// rows.
pub fn build(
    user: &str,
    context: Context,
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
    let mut cited = BTreeSet::new();
    for r in records {
        cited.insert((r.evidence.source.clone(), r.evidence.version_id.clone()));
        by_session.entry(r.session_id.clone()).or_default().push(r);
    }
    for lines in by_session.values_mut() {
        lines.sort_by_key(|r| r.seq);
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
        for c in s.commands.iter().filter(|c| !c.abandoned) {
            for r in &c.rule {
                *privileged.entry(r.clone()).or_insert(0) += 1;
            }
        }
    }
    let summary = Summary {
        user: user.to_string(),
        principal_arns: arns.into_iter().collect(),
        since: context.filters.since.clone(),
        until: context.filters.until.clone(),
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
        commands: sessions
            .iter()
            .flat_map(|s| &s.commands)
            .filter(|c| !c.abandoned)
            .count(),
        suspicious: sessions
            .iter()
            .flat_map(|s| &s.commands)
            .filter(|c| !c.suspicious.is_empty())
            .count(),
        abandoned: sessions
            .iter()
            .flat_map(|s| &s.commands)
            .filter(|c| c.abandoned)
            .count(),
        sources_cited: cited.len(),
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
        context,
        summary,
        sessions,
        rules: titles,
    }
}

/// A time from a source in the zone of `look`, flagged when it is not one; `—` when there is
/// none.
fn when(look: &Look, s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "—".into(), |t| look.time(t))
}

/// A source address: flagged when it is not one (see [`escape::address`]); `—` when there is
/// none.
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

/// First lines of a command's output, each made visible.
fn excerpt(o: &Option<String>) -> String {
    let text = o.as_deref().unwrap_or("");
    let mut lines: Vec<String> = text.lines().take(3).map(escape::visible).collect();
    if text.lines().count() > 3 {
        lines.push("…".into());
    }
    let joined = lines.join("\n");
    if joined.chars().count() > 300 {
        joined.chars().take(300).collect::<String>() + "…"
    } else {
        joined
    }
}

/// A command's lines, each made visible: a heredoc or a continued line reads as lines.
fn command_lines(c: &str) -> String {
    c.replace("\r\n", "\n")
        .split('\n')
        .map(escape::visible)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The page's template: every value it prints is made visible and HTML-escaped by the
/// environment's formatter, whatever the template says.
const TEMPLATE: &str = include_str!("report.html.j2");

/// The environment that renders [`TEMPLATE`]: auto-escaping HTML, and each string shown
/// through [`escape::html`] line by line (so what a reader cannot see is shown as an escape,
/// and a multi-line value keeps its lines).
fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_formatter(|out, state, value| {
        if let Some(s) = value.as_str().filter(|_| !value.is_safe()) {
            // Line by line: a multi-line value (a heredoc, output) keeps its lines, and
            // everything else a reader cannot see is shown.
            let lines: Vec<String> = s.split('\n').map(escape::html).collect();
            out.write_str(&lines.join("\n"))?;
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env
}

/// A bar of the chart.
#[derive(Serialize)]
struct Bar {
    day: String,
    label: String,
    all: usize,
    privileged: usize,
    x: f64,
    w: f64,
    cx: f64,
    y: f64,
    h: f64,
    py: f64,
    ph: f64,
}

#[derive(Serialize)]
struct Tick {
    y: f64,
    label: usize,
}

#[derive(Serialize)]
struct Chart {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    base: f64,
    legend_x: f64,
    period: String,
    ticks: Vec<Tick>,
    bars: Vec<Bar>,
}

/// Commands (and privileged ones) per day of session start, in the zone: the bars, a y axis
/// with ticks, each value printed above its bar (a printed page shows no tooltips).
fn chart(r: &Report, look: &Look) -> Chart {
    let mut per_day: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in &r.sessions {
        let day = s
            .coverage
            .who
            .session_start
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| t.to_zoned(look.tz.clone()).strftime("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "unknown".into());
        let e = per_day.entry(day).or_default();
        let run: Vec<_> = s.commands.iter().filter(|c| !c.abandoned).collect();
        e.0 += run.len();
        e.1 += run.iter().filter(|c| !c.rule.is_empty()).count();
    }
    let (left, top, base) = (48.0_f64, 28.0_f64, 178.0_f64);
    let n = per_day.len().max(1) as f64;
    let bw = (660.0 / n).clamp(14.0, 60.0);
    let width = (left + n * bw + 24.0).max(560.0);
    let max = per_day.values().map(|v| v.0).max().unwrap_or(0).max(1);
    let scale = |v: usize| (v as f64 / max as f64) * (base - top - 12.0);
    let years: BTreeSet<&str> = per_day.keys().filter_map(|d| d.get(..4)).collect();
    let period = match (per_day.keys().next(), per_day.keys().last()) {
        (Some(a), Some(b)) if a == b => a.clone(),
        (Some(a), Some(b)) => format!("{a} to {b}"),
        _ => String::new(),
    };
    let bars = per_day
        .iter()
        .enumerate()
        .map(|(i, (day, (all, privileged)))| {
            let x = left + i as f64 * bw + 3.0;
            let w = bw - 6.0;
            let (h, ph) = (scale(*all), scale(*privileged));
            Bar {
                // The year is on every label when the days span more than one.
                label: if years.len() > 1 {
                    day.clone()
                } else {
                    day.get(5..).unwrap_or(day).to_string()
                },
                day: day.clone(),
                all: *all,
                privileged: *privileged,
                x,
                w,
                cx: x + w / 2.0,
                y: base - h,
                h,
                py: base - ph,
                ph,
            }
        })
        .collect();
    let ticks = [0, max / 2, max]
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|v| Tick {
            y: base - scale(v),
            label: v,
        })
        .collect();
    Chart {
        width,
        height: base + 40.0,
        left,
        right: width - 12.0,
        top,
        base,
        legend_x: width - 220.0,
        period,
        ticks,
        bars,
    }
}

/// The report as one self-contained HTML page, times in the zone of `look`.
pub fn html(r: &Report, look: &Look) -> Result<String> {
    let s = &r.summary;
    let x = &r.context;
    let mut filters = vec![serde_json::json!({"label": "principal", "value": x.filters.principal})];
    for (label, v) in [
        ("instance", &x.filters.instance),
        ("since", &x.filters.since),
        ("until", &x.filters.until),
    ] {
        if let Some(v) = v {
            filters.push(serde_json::json!({"label": label, "value": v}));
        }
    }
    let sessions: Vec<serde_json::Value> = r
        .sessions
        .iter()
        .map(|sess| {
            let c = &sess.coverage;
            let w = &c.who;
            let sources = sess.sources();
            let lines: Vec<serde_json::Value> = sess
                .commands
                .iter()
                .map(|cmd| {
                    let e = &cmd.evidence;
                    let n = cited(&sources, e).map_or(0, |i| i + 1);
                    let class = if !cmd.suspicious.is_empty() {
                        "susp"
                    } else if cmd.abandoned {
                        "abandoned"
                    } else if !cmd.rule.is_empty() {
                        "priv"
                    } else {
                        ""
                    };
                    serde_json::json!({
                        "seq": cmd.seq,
                        "class": class,
                        "run_as": cmd.run_as.as_deref().unwrap_or("unknown"),
                        "cwd": opt(&cmd.cwd),
                        "command": command_lines(&cmd.command),
                        "rules": cmd.rule,
                        "abandoned": cmd.abandoned,
                        "suspicious": cmd.suspicious,
                        "truncated": cmd.truncated,
                        "profile": cmd.shell_profile,
                        "started_with": cmd.started_with.as_ref().map(|w| format!("{} at {}", w.event_name, look.time(&w.event_time))),
                        "output": excerpt(&cmd.output),
                        "source": n,
                        "bytes": format!("bytes {}–{}", e.byte_start, e.byte_end),
                    })
                })
                .collect();
            serde_json::json!({
                "id": c.session_id,
                "start": when(look, &w.session_start),
                "end": when(look, &w.session_end),
                "instance": match (&w.instance_name, &w.instance_id) {
                    (Some(n), Some(i)) => format!("{n} ({i})"),
                    (None, Some(i)) => i.clone(),
                    _ => "unknown".into(),
                },
                "mfa": mfa(w.mfa),
                "from": address_of(&w.source_ip),
                "attribution": w.attribution.as_str(),
                "validated": match w.cloudtrail_validated { Some(true) => "yes", Some(false) => "no", None => "" },
                "status": c.status().as_str(),
                "document": c.document,
                "conflicts": w.conflicts,
                "partial": c.partial.iter().map(|p| format!("bytes {}–{}: {}", p.byte_start, p.byte_end, p.reason)).collect::<Vec<_>>(),
                "participants": w.participants.iter().map(|p| format!("{} from {} at {}, MFA {}", opt(&p.principal_arn.clone().or(p.principal.clone())), address_of(&p.source_ip), look.time(&p.time), mfa(p.mfa))).collect::<Vec<_>>(),
                "denied": c.denied.iter().map(|e| format!("{} {} {} by {} from {}", look.time(&e.event_time), e.event_name, opt(&e.error_code), opt(&e.principal_arn.clone().or(e.principal.clone())), address_of(&e.source_ip))).collect::<Vec<_>>(),
                "sources": sources.iter().enumerate().map(|(i, e)| serde_json::json!({"n": i + 1, "name": e.source, "version": e.version_id, "sha256": e.sha256})).collect::<Vec<_>>(),
                "lines": lines,
            })
        })
        .collect();
    let privileged: Vec<serde_json::Value> = s
        .privileged
        .iter()
        .map(|(id, n)| serde_json::json!({"id": id, "count": n, "title": r.rules.get(id).map_or("", |t| t)}))
        .collect();
    let ctx = serde_json::json!({
        "user": s.user,
        "filters": filters,
        "scoped": x.filters.instance.is_some() || x.filters.since.is_some() || x.filters.until.is_some(),
        "generated": look.time(&x.generated),
        "version": x.version,
        "command_line": x.command_line,
        "ledger_entries": x.ledger.entries,
        "ledger_hash": x.ledger.hash,
        "sources_cited": s.sources_cited,
        "sources_in_index": x.sources_in_index,
        "time_zone": look.tz_name,
        "redacted": s.redacted,
        "covered": s.sessions_covered,
        "without_mfa": s.sessions_without_mfa,
        "suspicious": s.suspicious,
        "abandoned": s.abandoned,
        "conflicted": r.sessions.iter().filter(|s| !s.coverage.who.conflicts.is_empty()).count(),
        "partial": r.sessions.iter().filter(|s| !s.coverage.partial.is_empty()).count(),
        "principal_arns": s.principal_arns,
        "instances": s.instances,
        "source_ips": s.source_ips.iter().map(|a| escape::address(a)).collect::<Vec<_>>(),
        "commands": s.commands,
        "privileged": privileged,
        "first_activity": when(look, &s.first_activity),
        "last_activity": when(look, &s.last_activity),
        "chart": chart(r, look),
        "sessions": sessions,
    });
    let env = environment();
    Ok(env.render_named_str("report.html", TEMPLATE, minijinja::value::Serde(&ctx))?)
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
pub fn markdown(r: &Report, look: &Look) -> String {
    let s = &r.summary;
    let x = &r.context;
    let mut o = format!("# Session Manager activity of {}\n\n", md_text(&s.user));
    let mut filters = vec![format!("principal {}", md_text(&x.filters.principal))];
    for (label, v) in [
        ("instance", &x.filters.instance),
        ("since", &x.filters.since),
        ("until", &x.filters.until),
    ] {
        if let Some(v) = v {
            filters.push(format!("{label} {}", md_text(v)));
        }
    }
    let _ = writeln!(
        o,
        "- **Scope**: {}{}\n- **Generated**: {} by ssm-audit {}\n- **Command line**: {}\n- **Index ledger head**: entry {}, hash {}\n- **Sources**: {} transcript sources cited, of {} in the index\n- **Times**: {}\n",
        filters.join("; "),
        if x.filters.instance.is_some() || x.filters.since.is_some() || x.filters.until.is_some() {
            " (only what matches these filters is in this report)"
        } else {
            ""
        },
        md_text(&look.time(&x.generated)),
        md_text(&x.version),
        md_text(&x.command_line),
        x.ledger.entries,
        md_text(&x.ledger.hash),
        s.sources_cited,
        x.sources_in_index,
        md_text(&look.tz_name),
    );
    let _ = writeln!(
        o,
        "{} of {} sessions covered; {} started without MFA; {} commands; {} suspicious lines; {} abandoned lines; secrets {}.\n",
        s.sessions_covered,
        s.sessions,
        s.sessions_without_mfa,
        s.commands,
        s.suspicious,
        s.abandoned,
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
        md(&when(look, &s.first_activity))
    );
    let _ = writeln!(
        o,
        "| Last activity | {} |",
        md(&when(look, &s.last_activity))
    );
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
            md_text(&when(look, &w.session_start)),
            md_text(&when(look, &w.session_end)),
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
                md_text(&look.time(&p.time)),
                mfa(p.mfa)
            );
        }
        for e in &c.denied {
            let _ = writeln!(
                o,
                "> **{}** {} {} by {} from {}\n>",
                md_text(opt(&e.error_code)),
                md_text(&look.time(&e.event_time)),
                md_text(&e.event_name),
                md_text(opt(&e.principal_arn.clone().or(e.principal.clone()))),
                md_text(&address_of(&e.source_ip))
            );
        }
        if sess.commands.is_empty() {
            continue;
        }
        let sources = sess.sources();
        for (i, e) in sources.iter().enumerate() {
            let _ = writeln!(
                o,
                "Evidence{}: {}{} sha256 {}\n",
                if sources.len() > 1 {
                    format!(" [{}]", i + 1)
                } else {
                    String::new()
                },
                md_text(&e.source),
                e.version_id
                    .as_deref()
                    .map(|v| format!(" (version {})", md_text(v)))
                    .unwrap_or_default(),
                md_text(&e.sha256)
            );
        }
        let _ = writeln!(
            o,
            "| # | run as | cwd | command | rules and marks | bytes |\n|---|---|---|---|---|---|"
        );
        for cmd in &sess.commands {
            let mut marks: Vec<String> = cmd.rule.iter().map(|r| md(r)).collect();
            if cmd.abandoned {
                marks.push("**ABANDONED** (typed, never run)".into());
            }
            for why in &cmd.suspicious {
                marks.push(format!("**SUSPICIOUS**: {}", md(why)));
            }
            let which = cited(&sources, &cmd.evidence)
                .filter(|_| sources.len() > 1)
                .map(|i| format!("[{}] ", i + 1))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {which}{}–{} |",
                cmd.seq,
                md(cmd.run_as.as_deref().unwrap_or("unknown")),
                md(opt(&cmd.cwd)),
                // A heredoc or a continued line: its line breaks shown as ⏎ (a Markdown table
                // cell holds one line, and no HTML is written).
                md(&cmd.command),
                marks.join(", "),
                cmd.evidence.byte_start,
                cmd.evidence.byte_end
            );
        }
    }
    o
}

/// The report in one format.
pub fn render(r: &Report, format: ReportFormat, look: &Look) -> Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::new();
    match format {
        ReportFormat::Html => buf.extend_from_slice(html(r, look)?.as_bytes()),
        ReportFormat::Md => buf.extend_from_slice(markdown(r, look).as_bytes()),
        ReportFormat::Json => {
            buf.extend_from_slice(escape::json(serde_json::to_string_pretty(r)?).as_bytes());
            buf.push(b'\n');
        }
        ReportFormat::Csv => csv(r, &mut buf)?,
    }
    Ok(buf)
}

/// The report's commands as CSV rows (one per command).
pub fn csv(r: &Report, out: &mut impl std::io::Write) -> Result<()> {
    let mut records: Vec<CommandRecord> = Vec::new();
    for s in &r.sessions {
        records.extend(s.commands.iter().cloned());
    }
    crate::output::commands(
        out,
        &records,
        crate::cli::Format::Csv,
        true,
        &crate::look::Look::default(),
    )
}
