//! The one derivation: a session's sources, its CloudTrail facts, instance names and rules in,
//! its command records and abandoned lines out.
//!
//! Every caller goes through here: the CLI's index writer (and the records it reads back), the
//! Lambda's per-session records and its optional index commit. Choosing among several
//! transcripts of one session happens here too, in [`Basis::of`].
//!
//! ```
//! use indexer::derive::Basis;
//! use indexer::kinds::{IdFrom, SourceKind};
//! use indexer::model::{Line, SourceMeta};
//! use indexer::names::Names;
//! let meta = SourceMeta {
//!     session_id: "alice-0123456789abcdef0".into(),
//!     session_id_from: IdFrom::FileName,
//!     kind: SourceKind::S3Log,
//!     source: "alice-0123456789abcdef0.log".into(),
//!     version_id: None,
//!     sha256: "00".repeat(32),
//!     object_sha256: None,
//!     size: 10,
//!     instance_id: None,
//!     principal_arn: None,
//!     first_time: None,
//!     last_time: None,
//!     written: None,
//!     partial: vec![],
//!     run_as: None,
//!     login_seen: None,
//!     preamble: String::new(),
//! };
//! let (_, basis) =
//!     Basis::of(&meta.session_id, [&meta], None, &Names::default(), &Default::default()).unwrap();
//! let line = Line {
//!     seq: 0, command: "sudo id".into(), run_as: "ssm-user".into(), cwd: None,
//!     byte_start: 0, byte_end: 7, output: String::new(), output_truncated: 0,
//!     abandoned: false, suspicious: vec![], truncated: None, profile: false,
//! };
//! let r = basis.record(&meta.session_id, (&line).into());
//! assert_eq!(r.programs, ["sudo", "id"]);
//! assert_eq!(r.who.principal.as_deref(), Some("alice"));
//! assert_eq!(r.schema, indexer::derive::SCHEMA);
//! ```

pub use crate::ingest::Vouched;
use crate::model::{
    self, Attribution, CommandRecord, Evidence, Line, SessionTrail, SourceMeta, StartedWith,
};
use crate::names::Names;
use crate::rules::Rules;
use serde::{Deserialize, Serialize};

/// The version of the command record's shape, carried by every record as `schema`.
pub const SCHEMA: u32 = 1;

/// What all the records of a session share: who, where, when, and the source they were read
/// from. The index stores it once per session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    /// Who, where, when, and how that is known.
    pub who: Attribution,
    /// The source object the records were read from.
    pub source: String,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// SHA-256 of the source document (the object, or a stream's canonical document).
    pub sha256: String,
    /// The command the session was started with and the call that named it, when CloudTrail
    /// names one: its record is line 0 ([`Basis::started_line`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<(String, StartedWith)>,
}

/// One input line's own facts, borrowed from wherever it is held.
#[derive(Debug, Clone, Copy)]
pub struct LineRef<'a> {
    /// Position among the session's input lines.
    pub seq: u32,
    /// The command as the shell took it.
    pub command: &'a str,
    /// The user it ran as.
    pub run_as: &'a str,
    /// Working directory shown by the prompt.
    pub cwd: Option<&'a str>,
    /// Interrupted with Ctrl-C: typed, never run.
    pub abandoned: bool,
    /// First byte of the line in the source.
    pub byte_start: u64,
    /// End of those bytes.
    pub byte_end: u64,
    /// Why the line deserves a closer look.
    pub suspicious: &'a [String],
    /// Its full length, when the command is only its head.
    pub truncated: Option<u64>,
    /// Shown before the shell's first prompt: the shell profile, or text typed ahead.
    pub profile: bool,
}

impl<'a> From<&'a Line> for LineRef<'a> {
    fn from(l: &'a Line) -> Self {
        LineRef {
            seq: l.seq,
            command: &l.command,
            run_as: &l.run_as,
            cwd: l.cwd.as_deref(),
            abandoned: l.abandoned,
            byte_start: l.byte_start,
            byte_end: l.byte_end,
            suspicious: &l.suspicious,
            truncated: l.truncated,
            profile: l.profile,
        }
    }
}

impl<'a> From<&'a CommandRecord> for LineRef<'a> {
    fn from(r: &'a CommandRecord) -> Self {
        LineRef {
            seq: r.seq,
            command: &r.command,
            run_as: r.run_as.as_deref().unwrap_or(crate::replay::LOGIN_USER),
            cwd: r.cwd.as_deref(),
            abandoned: r.abandoned,
            byte_start: r.evidence.byte_start,
            byte_end: r.evidence.byte_end,
            suspicious: &r.suspicious,
            truncated: r.truncated,
            profile: r.shell_profile,
        }
    }
}

/// Precedence among the transcripts of one session, first first: full S3 transcripts over
/// streams, then the one written first (where the store says when: S3's `LastModified`, a
/// file's modification time; unknown last), then the name and version. Never the size: a
/// forged copy padded with commands is bigger. The choice does not depend on the order the
/// sources arrived in; when the transcripts differ, [`transcript_conflicts`] says so.
fn rank(m: &SourceMeta) -> impl Ord + '_ {
    (
        m.kind != crate::kinds::SourceKind::S3Log,
        m.written.is_none(),
        m.written.as_deref(),
        m.source.as_str(),
        m.version_id.as_deref(),
    )
}

/// Which of a session's transcripts its records are read from: the index into `sources`.
pub fn choose<'a>(sources: impl IntoIterator<Item = &'a SourceMeta>) -> Option<usize> {
    sources
        .into_iter()
        .enumerate()
        .min_by(|a, b| rank(a.1).cmp(&rank(b.1)))
        .map(|(i, _)| i)
}

/// Transcripts of the same kind as the chosen one whose bytes differ from it: two S3 logs (a
/// second object or version under the session's id), two streams. An S3 log beside its stream
/// is not one: they are two renderings of the same session.
pub fn transcript_conflicts(chosen: &SourceMeta, sources: &[&SourceMeta]) -> Vec<String> {
    let mut others: Vec<&SourceMeta> = sources
        .iter()
        .copied()
        .filter(|m| m.kind == chosen.kind && m.sha256 != chosen.sha256)
        .collect();
    others.sort_by(|a, b| rank(a).cmp(&rank(b)));
    // Each different transcript once, by its first copy.
    let mut seen = std::collections::BTreeSet::new();
    others.retain(|m| seen.insert(m.sha256.clone()));
    let at = |m: &SourceMeta| {
        let mut s = m.source.clone();
        if let Some(v) = &m.version_id {
            s.push_str(&format!(" version {v}"));
        }
        if let Some(w) = &m.written {
            s.push_str(&format!(" written {w}"));
        }
        format!("{s} (SHA-256 {})", &m.sha256[..m.sha256.len().min(12)])
    };
    others
        .into_iter()
        .map(|o| {
            format!(
                "two different transcripts of this session: {} and {}; the records are read from the first",
                at(chosen),
                at(o)
            )
        })
        .collect()
}

impl Basis {
    /// The basis of a session's records: its chosen transcript (which of `sources`, returned
    /// with it), attributed with CloudTrail's facts and the instance's name at the time of the
    /// session. `None` without a transcript.
    ///
    /// Each CloudTrail event is marked with whether `vouched` validates its file; a
    /// StartSession from a validated file wins over one from a file nothing vouches for.
    pub fn of<'a>(
        session_id: &str,
        sources: impl IntoIterator<Item = &'a SourceMeta>,
        trail: Option<&SessionTrail>,
        names: &Names,
        vouched: &Vouched,
    ) -> Option<(usize, Basis)> {
        let sources: Vec<&SourceMeta> = sources.into_iter().collect();
        let chosen = choose(sources.iter().copied())?;
        let best = sources[chosen];
        let trail = trail.map(|t| annotated(t, vouched));
        // In the order transcripts are chosen, not the order they came in.
        let mut ranked = sources.clone();
        ranked.sort_by(|a, b| rank(a).cmp(&rank(b)));
        let mut who = model::attribute(session_id, Some(best), &ranked, trail.as_ref(), names);
        let started = trail.as_ref().and_then(|t| t.start()).and_then(|s| {
            let command = s.command.clone()?;
            Some((
                command,
                StartedWith {
                    event_name: s.event_name.clone(),
                    event_id: s.event_id.clone(),
                    event_time: s.event_time.clone(),
                    document: s.document_name.clone(),
                },
            ))
        });
        who.conflicts.extend(transcript_conflicts(best, &sources));
        let basis = Basis {
            who,
            source: best.source.clone(),
            version_id: best.version_id.clone(),
            sha256: best.sha256.clone(),
            started,
        };
        Some((chosen, basis))
    }

    /// The basis of a session no transcript was read for, when CloudTrail says it was started
    /// with a command (an interactive or non-interactive command document, ECS Exec): its one
    /// record is that command ([`Basis::started_line`]), its evidence the CloudTrail source.
    pub fn of_trail(
        session_id: &str,
        trail: &SessionTrail,
        names: &Names,
        vouched: &Vouched,
    ) -> Option<Basis> {
        let trail = annotated(trail, vouched);
        let start = trail.start()?;
        let command = start.command.clone()?;
        let (source, sha256) = start.file.clone()?;
        let who = model::attribute(session_id, None, &[], Some(&trail), names);
        Some(Basis {
            who,
            source,
            version_id: None,
            sha256,
            started: Some((
                command,
                StartedWith {
                    event_name: start.event_name.clone(),
                    event_id: start.event_id.clone(),
                    event_time: start.event_time.clone(),
                    document: start.document_name.clone(),
                },
            )),
        })
    }

    /// The command the session was started with, as line 0, when CloudTrail names one
    /// (interactive and non-interactive command documents, ECS Exec): no transcript holds it,
    /// so its evidence range is empty and its record says where it comes from.
    pub fn started_line(&self) -> Option<LineRef<'_>> {
        let (command, _) = self.started.as_ref()?;
        Some(LineRef {
            seq: 0,
            command,
            run_as: crate::replay::LOGIN_USER,
            cwd: None,
            abandoned: false,
            byte_start: 0,
            byte_end: 0,
            suspicious: &[],
            truncated: None,
            profile: false,
        })
    }

    /// The basis a record derived elsewhere carries.
    pub fn of_record(r: &CommandRecord) -> Basis {
        Basis {
            who: r.who.clone(),
            source: r.evidence.source.clone(),
            version_id: r.evidence.version_id.clone(),
            sha256: r.evidence.sha256.clone(),
            started: r.started_with.clone().map(|s| (r.command.clone(), s)),
        }
    }

    /// The record of one input line (its rules not applied: see [`apply_rules`]).
    pub fn record(&self, session_id: &str, l: LineRef<'_>) -> CommandRecord {
        CommandRecord {
            schema: SCHEMA,
            session_id: session_id.to_string(),
            seq: l.seq,
            command: l.command.to_string(),
            // An empty `run_as` is the login user's, whoever the session's sources say that is.
            run_as: if l.run_as == crate::replay::LOGIN_USER {
                self.who.login_user.clone()
            } else {
                Some(l.run_as.to_string())
            },
            cwd: l.cwd.map(String::from),
            started_with: match &self.started {
                Some((_, s)) if l.seq == 0 => Some(s.clone()),
                _ => None,
            },
            who: self.who.clone(),
            programs: if l.abandoned {
                Vec::new()
            } else {
                crate::shellwords::programs(l.command)
            },
            abandoned: l.abandoned,
            rule: Vec::new(),
            suspicious: l.suspicious.to_vec(),
            truncated: l.truncated,
            shell_profile: l.profile,
            evidence: Evidence {
                source: self.source.clone(),
                version_id: self.version_id.clone(),
                sha256: self.sha256.clone(),
                byte_start: l.byte_start,
                byte_end: l.byte_end,
            },
            output: None,
        }
    }
}

/// `trail` with each event marked with whether `vouched` validates its CloudTrail file.
pub fn annotated(trail: &SessionTrail, vouched: &Vouched) -> SessionTrail {
    let mut t = trail.clone();
    t.annotate(&|sha| vouched.vouches(sha));
    t
}

/// Name the privileged-command rules a record matches (none for an abandoned line: it never
/// ran).
pub fn apply_rules(r: &mut CommandRecord, rules: &Rules) {
    r.rule = if r.abandoned {
        Vec::new()
    } else {
        rules.matches(&r.command)
    };
}

/// A session's records, commands and abandoned lines in input order, rules applied: what the
/// Lambda writes and `search --format json` (with and without `--abandoned`) prints.
pub fn records<'a>(
    session_id: &str,
    basis: &'a Basis,
    lines: impl IntoIterator<Item = LineRef<'a>>,
    rules: &Rules,
) -> Vec<CommandRecord> {
    basis
        .started_line()
        .into_iter()
        .chain(lines)
        .map(|l| {
            let mut r = basis.record(session_id, l);
            apply_rules(&mut r, rules);
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kinds::{IdFrom, SourceKind};

    fn meta(kind: SourceKind, size: u64, source: &str) -> SourceMeta {
        SourceMeta {
            session_id: "bob-0123456789abcdef0".into(),
            session_id_from: IdFrom::FileName,
            kind,
            source: source.into(),
            version_id: None,
            sha256: String::new(),
            object_sha256: None,
            size,
            instance_id: None,
            principal_arn: None,
            first_time: None,
            last_time: None,
            written: None,
            partial: Vec::new(),
            run_as: None,
            login_seen: None,
            preamble: String::new(),
        }
    }

    #[test]
    fn the_choice_prefers_s3_logs_then_the_first_written_then_the_name_whatever_the_order() {
        let a = meta(SourceKind::CloudwatchStream, 900, "cloudwatch://g/s");
        let b = meta(SourceKind::S3Log, 100, "b.log");
        let c = meta(SourceKind::S3Log, 100, "c.log");
        assert_eq!(choose([&a, &b, &c]), Some(1));
        assert_eq!(choose([&c, &b, &a]), Some(1));
        assert_eq!(choose([&a]), Some(0));
        assert_eq!(choose(std::iter::empty::<&SourceMeta>()), None);
        // Written first wins over the name and over the size (a padded copy is bigger).
        let mut real = meta(SourceKind::S3Log, 100, "z.log");
        real.written = Some("2026-02-11T05:00:01Z".into());
        let mut padded = meta(SourceKind::S3Log, 100_000, "a.log");
        padded.written = Some("2026-02-12T00:00:00Z".into());
        assert_eq!(choose([&padded, &b, &real]), Some(2));
        assert_eq!(choose([&real, &padded]), Some(0));
    }

    #[test]
    fn different_transcripts_of_one_kind_are_a_conflict_and_a_log_beside_its_stream_is_not() {
        let mut real = meta(SourceKind::S3Log, 100, "sessions/bob.log");
        real.sha256 = "aa".repeat(32);
        let mut forged = meta(SourceKind::S3Log, 900, "elsewhere/bob.log");
        forged.sha256 = "bb".repeat(32);
        let mut stream = meta(SourceKind::CloudwatchStream, 300, "cloudwatch://g/bob");
        stream.sha256 = "cc".repeat(32);
        let copy = SourceMeta {
            source: "local/bob.log".into(),
            ..real.clone()
        };
        let (_, basis) = Basis::of(
            &real.session_id,
            [&forged, &stream, &real, &copy],
            None,
            &Names::default(),
            &Vouched::default(),
        )
        .unwrap();
        assert_eq!(
            basis.source, "elsewhere/bob.log",
            "by name: neither says when"
        );
        assert_eq!(basis.who.conflicts.len(), 1, "{:?}", basis.who.conflicts);
        let c = &basis.who.conflicts[0];
        assert!(
            c.contains("elsewhere/bob.log") && c.contains("aaaaaaaaaaaa"),
            "{c}"
        );
        let (_, alone) = Basis::of(
            &real.session_id,
            [&real, &stream, &copy],
            None,
            &Names::default(),
            &Vouched::default(),
        )
        .unwrap();
        assert!(alone.who.conflicts.is_empty(), "{:?}", alone.who.conflicts);
    }

    #[test]
    fn abandoned_lines_have_no_programs_and_no_rules() {
        let m = meta(SourceKind::S3Log, 1, "x.log");
        let (_, basis) = Basis::of(
            &m.session_id,
            [&m],
            None,
            &Names::default(),
            &Vouched::default(),
        )
        .unwrap();
        let line = |abandoned| Line {
            seq: 1,
            command: "sudo su -".into(),
            run_as: "ssm-user".into(),
            cwd: None,
            byte_start: 3,
            byte_end: 9,
            output: String::new(),
            output_truncated: 0,
            abandoned,
            suspicious: vec![],
            truncated: None,
            profile: false,
        };
        let (ran, typed) = (line(false), line(true));
        let rs = records(
            &m.session_id,
            &basis,
            [(&ran).into(), (&typed).into()],
            &Rules::builtin(),
        );
        assert_eq!(rs[0].programs, ["sudo", "su"]);
        assert!(!rs[0].rule.is_empty());
        assert!(rs[1].programs.is_empty() && rs[1].rule.is_empty() && rs[1].abandoned);
        assert_eq!((rs[1].evidence.byte_start, rs[1].evidence.byte_end), (3, 9));
    }
}
