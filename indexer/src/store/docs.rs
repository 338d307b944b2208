//! The documents: what each kind holds, and how a session's records are written as command
//! documents and read back.

use super::body;
use super::earliest;
use super::schema::{keys, order_key, pair_term, Fields};
use crate::derive::{Basis, LineRef};
use crate::error::Result;
use crate::model::{self, CommandRecord, SessionSource, SessionTrail, Unreadable};
use crate::names::InstanceNames;
use std::borrow::Cow;
use tantivy::doc;
use tantivy::schema::TantivyDocument;

pub(super) type Shared = Basis;

/// What a command document stores of its record: the line's own facts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Stored<'a> {
    /// Its session.
    pub(super) sid: Cow<'a, str>,
    pub(super) seq: u32,
    pub(super) command: Cow<'a, str>,
    pub(super) run_as: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) cwd: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) abandoned: bool,
    pub(super) byte_start: u64,
    pub(super) byte_end: u64,
    /// Index of its [`Shared`] part among the session's (one, unless records came from elsewhere).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(super) shared: usize,
    /// Output, for records that no source document of the index holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) output: Option<Cow<'a, str>>,
    /// Why the line deserves a closer look.
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    pub(super) suspicious: Cow<'a, [String]>,
    /// Its full length, when the command is only its head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) truncated: Option<u64>,
    /// Shown before the shell's first prompt (the shell profile).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) profile: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Stored<'_> {
    pub(super) fn record(self, session_id: &str, shared: &Shared) -> CommandRecord {
        let mut r = shared.record(
            session_id,
            LineRef {
                seq: self.seq,
                command: &self.command,
                run_as: &self.run_as,
                cwd: self.cwd.as_deref(),
                abandoned: self.abandoned,
                byte_start: self.byte_start,
                byte_end: self.byte_end,
                suspicious: &self.suspicious,
                truncated: self.truncated,
                profile: self.profile,
            },
        );
        r.output = self.output.map(Cow::into_owned);
        r
    }
}

/// The `who` fast field of a command: its session and what `who` shows of it.
///
/// Stored as JSON in this field order, so that the column's dictionary sorts by instance, then
/// principal: the sessions of one instance (the usual question) sit in a few dictionary blocks,
/// and a `who --instance` reads only those.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct WhoKey {
    /// Instance Name tag, or id.
    pub instance: Option<String>,
    /// IAM principal ARN.
    pub principal_arn: Option<String>,
    /// User name, role session name or Identity Center user.
    pub principal: Option<String>,
    /// The session.
    pub session_id: String,
    /// Session start.
    pub session_start: Option<String>,
    /// Session end.
    pub session_end: Option<String>,
    /// Its sources disagree (the records' `conflicts`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conflict: bool,
}

impl WhoKey {
    pub(super) fn of(session_id: &str, who: &model::Attribution) -> WhoKey {
        WhoKey {
            session_id: session_id.to_string(),
            principal_arn: who.principal_arn.clone(),
            principal: who.principal.clone(),
            instance: who
                .instance_name
                .clone()
                .or_else(|| who.instance_id.clone()),
            session_start: who.session_start.clone(),
            session_end: who.session_end.clone(),
            conflict: !who.conflicts.is_empty(),
        }
    }
}

/// One input line to write as a command document, borrowed from where it is held.
pub(super) struct LineDoc<'a> {
    /// The line's own facts.
    pub(super) line: LineRef<'a>,
    /// Its output text.
    pub(super) output: &'a str,
    /// Its own document keeps the output (no source document holds it).
    pub(super) keep_output: bool,
    /// Which of the session's [`Shared`] parts it has.
    pub(super) shared: usize,
}

#[derive(serde::Deserialize)]
pub(super) struct SourceMetaOnly {
    #[serde(flatten)]
    pub(super) meta: model::SourceMeta,
}

/// A document and about how many bytes of values it holds (what the writer's backlog counts).
pub(super) type Sized = (TantivyDocument, usize);

/// A document of facts: its kind, its key, its session and instance when it has them (found
/// by those), and its body.
fn fact(
    f: Fields,
    kind: &str,
    key: String,
    sid: Option<&str>,
    instance: Option<&str>,
    body: String,
) -> Sized {
    let bytes = body.len() + 2 * key.len();
    let mut d = doc!(f.kind => kind, f.key => key, f.body => body);
    if let Some(sid) = sid {
        d.add_text(f.sid, sid);
    }
    if let Some(i) = instance {
        d.add_text(f.instance, i.to_ascii_lowercase());
    }
    (d, bytes)
}

/// The inventory document of an instance.
pub(super) fn instance(f: Fields, key: String, id: &str, names: &InstanceNames) -> Result<Sized> {
    let body = serde_json::to_string(names)?;
    Ok(fact(f, "instance", key, None, Some(id), body))
}

/// The CloudTrail document of a session: its events, found by the session and by the instance
/// its start names.
pub(super) fn trail(f: Fields, key: String, t: &SessionTrail) -> Result<Sized> {
    let target = t.start().and_then(|s| s.target.as_deref());
    let body = serde_json::to_string(t)?;
    Ok(fact(f, "trail", key, Some(&t.session_id), target, body))
}

/// The document of a CloudTrail digest file: what it vouches for.
pub(super) fn digest(f: Fields, key: String, d: &crate::ingest::DigestFact) -> Result<Sized> {
    let body = serde_json::to_string(d)?;
    Ok(fact(f, "digest", key, None, None, body))
}

/// The document of a file refused as a session's transcript.
pub(super) fn unreadable(f: Fields, key: String, u: &Unreadable) -> Result<Sized> {
    let body = serde_json::to_string(u)?;
    Ok(fact(f, "unreadable", key, Some(&u.session_id), None, body))
}

/// The document of one transcript source: its facts and its replayed lines.
pub(super) fn source(f: Fields, key: String, s: &SessionSource) -> Result<Sized> {
    let m = &s.meta;
    let body = body::source(s)?;
    Ok(fact(
        f,
        "source",
        key,
        Some(&m.session_id),
        m.instance_id.as_deref(),
        body,
    ))
}

/// A session's command and abandoned-line documents, one per line of `lines`, then its
/// `session` document holding `shared` (what its records share), handed to `add` in that order.
pub(super) fn session(
    f: Fields,
    sid: &str,
    shared: &[Shared],
    lines: &[LineDoc<'_>],
    add: &mut dyn FnMut(TantivyDocument, usize) -> Result<()>,
) -> Result<()> {
    let key = keys::commands(sid);
    // What is the same for every command of a shared part, worked out once.
    struct Facts {
        who: String,
        principal: Option<String>,
        ran_on: Option<String>,
        order_start: Option<i64>,
    }
    let facts = shared
        .iter()
        .map(|s| {
            let w = &s.who;
            Ok(Facts {
                who: serde_json::to_string(&WhoKey::of(sid, w))?,
                principal: pair_term(&w.principal_arn, &w.principal),
                ran_on: pair_term(&w.instance_id, &w.instance_name),
                order_start: w.session_time(),
            })
        })
        .collect::<Result<Vec<Facts>>>()?;
    for doc in lines {
        let l = &doc.line;
        let fx = &facts[doc.shared];
        let stored = Stored {
            sid: Cow::Borrowed(sid),
            seq: l.seq,
            command: Cow::Borrowed(l.command),
            run_as: Cow::Borrowed(l.run_as),
            cwd: l.cwd.map(Cow::Borrowed),
            abandoned: l.abandoned,
            byte_start: l.byte_start,
            byte_end: l.byte_end,
            shared: doc.shared,
            output: doc.keep_output.then_some(Cow::Borrowed(doc.output)),
            suspicious: Cow::Borrowed(l.suspicious),
            truncated: l.truncated,
            profile: l.profile,
        };
        let body = body::stored(&stored)?;
        let bytes =
            key.len() + l.command.len() + doc.output.len() + fx.who.len() + body.len() + 256;
        // Sized once for what it will hold (a document's values are copied into one buffer).
        let mut d = TantivyDocument::with_capacity(bytes);
        d.add_text(f.kind, if l.abandoned { "abandoned" } else { "command" });
        d.add_text(f.key, &key);
        d.add_text(f.command, l.command);
        d.add_text(f.output, doc.output);
        // The login user's lines are found by who the session's sources say that is.
        let run_as = if l.run_as == crate::replay::LOGIN_USER {
            shared[doc.shared].who.login_user.as_deref().unwrap_or("")
        } else {
            l.run_as
        };
        d.add_text(f.run_as, run_as);
        d.add_text(f.who, &fx.who);
        if !l.abandoned {
            crate::shellwords::each_program(l.command, &mut |p| d.add_text(f.program, p));
        }
        if let Some(p) = &fx.principal {
            d.add_text(f.principal, p);
        }
        if let Some(i) = &fx.ran_on {
            d.add_text(f.ran_on, i);
        }
        let order = order_key(fx.order_start, l.seq);
        d.add_u64(f.order, order);
        d.add_u64(f.day, earliest::day_of(order));
        d.add_text(f.body, body);
        add(d, bytes)?;
    }
    let body = serde_json::to_string(shared)?;
    let bytes = body.len() + 2 * key.len();
    add(
        doc!(
            f.kind => "session",
            f.key => key,
            f.body => body,
        ),
        bytes,
    )
}
