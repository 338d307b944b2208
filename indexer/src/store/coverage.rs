//! Coverage: every session the index knows of, and which sources speak of it.

use super::Reader;
use crate::derive::Basis;
use crate::error::Result;
use crate::formats::TrailEvent;
use crate::kinds::{Flag, Status};
use crate::model::{self, SessionTrail};
use std::collections::{BTreeMap, BTreeSet};

impl Reader {
    /// Every session the index knows of, from CloudTrail or a transcript, and which of the two
    /// it has: sessions CloudTrail saw with no transcript (port forwarding, lost logs), and
    /// transcripts with no CloudTrail record.
    pub fn coverage(&self) -> Result<Vec<SessionCoverage>> {
        let names = self.instance_names()?;
        let vouched = self.vouched()?;
        let trails = self.trails()?;
        let mut metas: BTreeMap<String, Vec<model::SourceMeta>> = BTreeMap::new();
        for m in self.source_metas()? {
            metas.entry(m.session_id.clone()).or_default().push(m);
        }
        let mut refused: BTreeMap<String, Vec<model::Unreadable>> = BTreeMap::new();
        for u in self.of_kind::<model::Unreadable>("unreadable")? {
            refused.entry(u.session_id.clone()).or_default().push(u);
        }
        let ids: BTreeSet<&String> = trails
            .keys()
            .chain(metas.keys())
            .chain(refused.keys())
            .filter(|s| !s.is_empty())
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        // Calls refused before any session began (a denied StartSession names none): one row
        // each, as an attempt on its target.
        for e in trails.get("").map_or(&[][..], |t| &t.events[..]) {
            let (mfa, mfa_unknown) = model::mfa_of(e);
            let mut who = model::Attribution {
                principal_arn: e.principal_arn.clone(),
                principal: e.principal.clone(),
                principal_type: e.principal_type.clone(),
                mfa,
                mfa_unknown,
                source_ip: e.source_ip.clone(),
                instance_id: e.target.clone(),
                session_start: Some(e.event_time.clone()),
                attribution: crate::kinds::AttributedBy::Cloudtrail,
                ..Default::default()
            };
            if let Some(i) = &who.instance_id {
                (who.instance_name, who.instance_name_from) = names.at(i, Some(&e.event_time));
            }
            out.push(SessionCoverage {
                session_id: String::new(),
                document: e.document_name.clone(),
                who,
                cloudtrail: false,
                transcripts: Vec::new(),
                denied: vec![e.clone()],
                unreadable: Vec::new(),
                partial: Vec::new(),
            });
        }
        for sid in ids {
            let trail = trails.get(sid);
            let sources = metas.get(sid).map(Vec::as_slice).unwrap_or_default();
            // Who, as the session's records say it: the one derivation; what of it could not
            // be read, as its records' transcript says.
            let mut partial = Vec::new();
            let who = match Basis::of(sid, sources, trail, &names, &vouched) {
                Some((chosen, basis)) => {
                    partial.clone_from(&sources[chosen].partial);
                    basis.who
                }
                None => model::attribute(
                    sid,
                    None,
                    &[],
                    trail
                        .map(|t| crate::derive::annotated(t, &vouched))
                        .as_ref(),
                    &names,
                ),
            };
            let start = trail.and_then(SessionTrail::start);
            out.push(SessionCoverage {
                session_id: sid.clone(),
                document: start.and_then(|s| s.document_name.clone()),
                who,
                cloudtrail: start.is_some(),
                transcripts: sources.iter().map(|m| m.source.clone()).collect(),
                denied: trail
                    .map(|t| {
                        t.events
                            .iter()
                            .filter(|e| !e.succeeded())
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default(),
                unreadable: refused.get(sid.as_str()).cloned().unwrap_or_default(),
                partial,
            });
        }
        out.sort_by_cached_key(|c| (c.who.session_time(), c.session_id.clone()));
        Ok(out)
    }
}

/// One session's coverage: what CloudTrail and the transcripts say of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionCoverage {
    /// The session.
    pub session_id: String,
    /// Who, where, when.
    #[serde(flatten)]
    pub who: model::Attribution,
    /// The document it was started with (`AWS-StartPortForwardingSession` writes no transcript).
    pub document: Option<String>,
    /// CloudTrail recorded its StartSession.
    pub cloudtrail: bool,
    /// The transcripts indexed for it.
    pub transcripts: Vec<String>,
    /// Calls on it that failed or were denied (`errorCode`): they started, resumed or ended
    /// nothing, and who tried is listed here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<TrailEvent>,
    /// Files named as its transcript that are not terminal output, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<model::Unreadable>,
    /// Stretches of the transcript its records come from that the replay could not read
    /// (byte ranges in it), and why: commands typed there may be missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<model::Partial>,
}

impl SessionCoverage {
    /// Is it this principal's (name or ARN), on this instance (id or Name), started in
    /// `[since, until)` (unix seconds)? Each `None` admits all.
    pub fn matches(
        &self,
        user: Option<&str>,
        instance: Option<&str>,
        since: Option<i64>,
        until: Option<i64>,
    ) -> bool {
        let w = &self.who;
        let is = |v: &Option<String>, want: &str| {
            v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(want))
        };
        let start = w.session_time();
        user.is_none_or(|u| is(&w.principal, u) || is(&w.principal_arn, u))
            && instance.is_none_or(|i| is(&w.instance_id, i) || is(&w.instance_name, i))
            && since.is_none_or(|s| start.is_some_and(|t| t >= s))
            && until.is_none_or(|e| start.is_some_and(|t| t < e))
    }

    /// What is known of it: both CloudTrail's start and a transcript, one of them, or only
    /// refused calls.
    pub fn status(&self) -> Status {
        match (self.cloudtrail, self.transcripts.is_empty()) {
            (true, false) => Status::Covered,
            (true, true) => Status::NoTranscript,
            (false, true) if !self.denied.is_empty() => Status::Denied,
            _ => Status::NoCloudtrail,
        }
    }

    /// What an auditor must look at besides the status.
    pub fn flags(&self) -> Vec<Flag> {
        [
            (!self.who.conflicts.is_empty(), Flag::Conflict),
            (!self.denied.is_empty(), Flag::Denied),
            (!self.who.participants.is_empty(), Flag::Participants),
            (!self.unreadable.is_empty(), Flag::Unreadable),
            (!self.partial.is_empty(), Flag::Partial),
        ]
        .into_iter()
        .filter_map(|(on, flag)| on.then_some(flag))
        .collect()
    }
}
