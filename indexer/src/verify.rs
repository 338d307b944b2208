//! `verify`: fetch every source again, recompute its SHA-256, re-derive its commands, and
//! compare with the index and the ledger, both ways; then derive every record again from
//! every source the ledger lists (transcripts, CloudTrail, inventories, records files) into a
//! fresh index, and compare each record with the index's, field by field.

use crate::anchor::{AnchorStore, SignatureCheck};
use crate::error::Result;
use crate::ingest::{self, Outcome, Provenance};
use crate::kinds::{ProblemKind, SourceKind};
use crate::ledger::{Entry, Head, Ledger};
use crate::model::{sha256_hex, Line, SessionSource, SourceObject};
use crate::store::{Batch, Index, Reader};
use crate::trail_check::{DigestRead, Keyring, Signature, TrailRead};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One disagreement found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `changed`, `missing`, `unexpected`, `deleted`, `commands`, `records`, `ledger`.
    pub kind: ProblemKind,
    /// The source (or the ledger file) it is about.
    pub source: String,
    /// What is wrong.
    pub detail: String,
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Sources fetched and hashed again.
    pub sources: usize,
    /// Command records compared.
    pub commands: usize,
    /// Heads anchored outside the index that the ledger was checked against.
    pub anchored_heads: usize,
    /// CloudTrail digests whose signature was checked and holds.
    pub valid_digests: usize,
    /// CloudTrail files listed with their hash in such a digest.
    pub validated_trail_files: usize,
    /// Sources that could not be checked, and why (not mismatches).
    pub unchecked: Vec<(String, String)>,
    /// Everything that disagrees.
    pub problems: Vec<Problem>,
}

/// What fetching a source again gave.
#[derive(Debug)]
pub enum Fetched {
    /// Its bytes, and its user metadata (S3's `x-amz-meta-*`; empty for a file).
    Bytes(Vec<u8>, BTreeMap<String, String>),
    /// It is there and is not what was ingested, known without reading it whole (larger than
    /// the ledger's size); what it is now.
    Changed(String),
    /// It cannot be had: gone, unreadable, or not a regular file to open; why.
    Missing(String),
    /// It cannot be fetched again byte for byte; why.
    NotChecked(String),
}

/// Fetches a source again, as the ledger recorded it (name, version, size: a fetch reads no
/// more than one byte past the size).
pub type Fetch<'a> = dyn FnMut(&Entry) -> Fetched + 'a;

/// Told the sources a verify will fetch, in order, before it fetches any.
pub type Upcoming<'a> = dyn FnMut(&[&Entry]) + 'a;

fn comparable(lines: &[Line]) -> Vec<(u32, &str, &str, bool)> {
    lines
        .iter()
        .map(|l| (l.seq, l.command.as_str(), l.run_as.as_str(), l.abandoned))
        .collect()
}

/// The heads a ledger was anchored to, and how to check their signatures.
pub struct AnchorCheck<'a> {
    /// Where the heads are.
    pub store: &'a mut dyn AnchorStore,
    /// Checks signatures: with it, every head must be signed.
    pub signatures: Option<&'a mut dyn SignatureCheck>,
    /// The key every head must be signed by.
    pub key: Option<String>,
}

/// What `verify` checks besides the index, its ledger and its sources.
#[derive(Default)]
pub struct Checks<'a> {
    /// Only sources whose name contains this.
    pub only: Option<&'a str>,
    /// The heads the ledger was anchored to.
    pub anchor: Option<AnchorCheck<'a>>,
    /// Where CloudTrail's public keys come from, to check digests' signatures with.
    pub cloudtrail_keys: Option<&'a mut Keyring>,
    /// Told once, before any fetch, every source that will be fetched, in order: a fetcher can
    /// read ahead of the one asked for.
    pub upcoming: Option<&'a mut Upcoming<'a>>,
}

/// Check the index at `dir` against its ledger and its sources, the CloudTrail files among
/// them against the digests among them, and the ledger against the heads anchored outside it.
pub fn verify(
    store: &Reader,
    dir: &Path,
    fetch: &mut Fetch<'_>,
    checks: Checks<'_>,
) -> Result<Report> {
    let Checks {
        only,
        anchor,
        cloudtrail_keys,
        upcoming,
    } = checks;
    let mut no_keys = Keyring::none();
    let cloudtrail_keys = cloudtrail_keys.unwrap_or(&mut no_keys);
    let mut report = Report::default();
    let ledger_path = dir.join("ledger.jsonl").display().to_string();
    let contents = Ledger::of_index(dir).read()?;
    for (line, why) in contents.broken {
        report.problems.push(Problem {
            kind: ProblemKind::Ledger,
            source: ledger_path.clone(),
            detail: format!("line {line}: {why}"),
        });
    }
    if contents.torn {
        report.unchecked.push((
            ledger_path.clone(),
            "its last line is cut short: an ingest was interrupted while writing it (the next ingest removes it)".into(),
        ));
    }
    let entries = committed_entries(
        contents.entries,
        store.ledger_head()?.as_ref(),
        &ledger_path,
        &mut report,
    );
    if let Some(a) = anchor {
        let location = a.store.location();
        let found = crate::anchor::check(&entries, a.store, a.signatures, a.key.as_deref());
        report.anchored_heads = found.heads;
        for detail in found.problems {
            report.problems.push(Problem {
                kind: ProblemKind::Anchor,
                source: location.clone(),
                detail,
            });
        }
        for why in found.unchecked {
            report.unchecked.push((location.clone(), why));
        }
    }
    let selected = |name: &str| only.is_none_or(|o| name.contains(o));
    // A source is its name and its version: two versions of one S3 object are two sources,
    // and a file ingested again after it changed is one.
    let mut latest: BTreeMap<(String, Option<String>), Entry> = BTreeMap::new();
    for e in entries {
        latest.insert((e.source.clone(), e.version_id.clone()), e);
    }
    let mut indexed: BTreeMap<(String, Option<String>), Vec<SessionSource>> = BTreeMap::new();
    for s in store.sources()? {
        let key = (s.meta.source.clone(), s.meta.version_id.clone());
        indexed.entry(key).or_default().push(s);
    }
    // Every source again, for the records derived again from all of them.
    let mut again = Batch::default();
    let mut cloudtrail = Cloudtrail::default();
    // The index against the ledger.
    for (key, sources) in &indexed {
        let name = &key.0;
        if !selected(name) {
            continue;
        }
        match latest.get(key) {
            None => report.problems.push(Problem {
                kind: ProblemKind::Unexpected,
                source: name.clone(),
                detail: "in the index but not in the ledger".into(),
            }),
            Some(e) if sources.iter().any(|s| s.meta.object_digest() != e.sha256) => {
                report.problems.push(Problem {
                    kind: ProblemKind::Unexpected,
                    source: name.clone(),
                    detail: format!(
                        "the index holds another version than the ledger's ({})",
                        &e.sha256[..12]
                    ),
                })
            }
            _ => {}
        }
    }
    if let Some(tell) = upcoming {
        let order: Vec<&Entry> = latest
            .iter()
            .filter(|(k, _)| selected(&k.0))
            .map(|(_, e)| e)
            .collect();
        tell(&order);
    }
    // Every source the ledger recorded: still there, still the same, still giving the same commands.
    for (key, e) in &latest {
        let name = &key.0;
        if !selected(name) {
            continue;
        }
        let transcript = e.kind.is_transcript();
        let in_index = indexed.get(key);
        if transcript && in_index.is_none() {
            report.problems.push(Problem {
                kind: ProblemKind::Deleted,
                source: name.clone(),
                detail: "ingested (ledger entry {}) but its records are gone from the index"
                    .replace("{}", &e.n.to_string()),
            });
        }
        let fetched = match fetch(e) {
            Fetched::Bytes(bytes, metadata) => {
                report.sources += 1;
                let digest = sha256_hex(&bytes);
                // A CloudTrail file changed since it was ingested is also checked against the
                // digests: they say whether it is still what CloudTrail delivered.
                cloudtrail.read(e, &bytes, &metadata, &mut report);
                if digest == e.sha256 {
                    Some(bytes)
                } else {
                    report.problems.push(Problem {
                        kind: ProblemKind::Changed,
                        source: name.clone(),
                        detail: format!(
                            "SHA-256 was {} when ingested, is {} now",
                            e.sha256, digest
                        ),
                    });
                    None
                }
            }
            Fetched::Changed(now) => {
                report.sources += 1;
                report.problems.push(Problem {
                    kind: ProblemKind::Changed,
                    source: name.clone(),
                    detail: format!(
                        "{} bytes with SHA-256 {} when ingested, {now}",
                        e.size, e.sha256
                    ),
                });
                None
            }
            Fetched::NotChecked(why) => {
                report.unchecked.push((name.clone(), why));
                None
            }
            Fetched::Missing(why) => {
                report.problems.push(Problem {
                    kind: ProblemKind::Missing,
                    source: name.clone(),
                    detail: why,
                });
                None
            }
        };
        let Some(bytes) = fetched else {
            // A transcript that cannot be read again as it was stands in with its lines as
            // indexed when the records are derived again: what happened to it is said once,
            // above.
            again
                .sources
                .extend(in_index.into_iter().flatten().cloned());
            continue;
        };
        let mut batch = Batch::default();
        let object = SourceObject {
            name: name.clone(),
            version_id: e.version_id.clone(),
            bytes,
            written: None,
            metadata: Default::default(),
        };
        let provenance = if e.kind == SourceKind::Records {
            Provenance::Records
        } else {
            Provenance::Sources
        };
        if let Outcome::Failed(err) = ingest::read_as(&object, provenance, &mut batch) {
            report.problems.push(Problem {
                kind: ProblemKind::Commands,
                source: name.clone(),
                detail: format!("no longer reads: {err}"),
            });
            continue;
        }
        // When it was written is not in the ledger: the index's note of it stands.
        for s in &mut batch.sources {
            s.meta.written = in_index
                .into_iter()
                .flatten()
                .find(|i| i.meta.session_id == s.meta.session_id)
                .and_then(|i| i.meta.written.clone());
        }
        let derived_sources = batch.sources.clone();
        again.sources.extend(batch.sources);
        again.trail.extend(batch.trail);
        again.instances.extend(batch.instances);
        again.tags.extend(batch.tags);
        again.records.extend(batch.records);
        again.digests.extend(batch.digests);
        let (Some(sources), true) = (in_index, transcript) else {
            continue;
        };
        for derived in &derived_sources {
            let sid = &derived.meta.session_id;
            let stored = sources.iter().find(|s| &s.meta.session_id == sid);
            if stored.is_none_or(|s| comparable(&s.lines) != comparable(&derived.lines)) {
                report.problems.push(Problem {
                    kind: ProblemKind::Commands,
                    source: name.clone(),
                    detail: format!(
                        "the commands of session {sid} replayed now differ from those indexed"
                    ),
                });
                continue;
            }
            // The records derived from it: as many as its lines, and the same commands.
            let records = store.records_of(sid)?;
            report.commands += records.len();
            let of_session: Vec<&SessionSource> = indexed
                .values()
                .flatten()
                .filter(|s| &s.meta.session_id == sid)
                .collect();
            let best = crate::derive::choose(of_session.iter().map(|s| &s.meta))
                .map(|i| (&of_session[i].meta.source, &of_session[i].meta.version_id));
            if best != Some((&key.0, &key.1)) {
                continue;
            }
            // The command a session was started with comes from CloudTrail, not the transcript.
            let mut got: Vec<(u32, String)> = records
                .iter()
                .filter(|r| r.started_with.is_none())
                .map(|r| (r.seq, r.command.clone()))
                .collect();
            got.sort();
            let want: Vec<(u32, String)> = derived
                .lines
                .iter()
                .map(|l| (l.seq, l.command.clone()))
                .collect();
            if got != want {
                let missing: Vec<String> = want
                    .iter()
                    .filter(|w| !got.contains(w))
                    .map(|(seq, c)| format!("#{seq} {c}"))
                    .collect();
                report.problems.push(Problem {
                    kind: ProblemKind::Commands,
                    source: name.clone(),
                    detail: format!(
                        "session {sid}: the index holds {} records, the source gives {}{}",
                        got.len(),
                        want.len(),
                        if missing.is_empty() {
                            String::new()
                        } else {
                            format!("; not in the index: {}", missing.join(", "))
                        }
                    ),
                });
            }
        }
    }
    // Whether each digest's signature holds, for the records derived again: checked again with
    // the keys when there are any, else (or when it could not be checked) as the index recorded
    // it (and said above to be unchecked).
    let recorded: BTreeMap<(String, Option<String>), bool> = store
        .digests()?
        .into_iter()
        .map(|d| ((d.name, d.version_id), d.signed))
        .collect();
    for d in &mut again.digests {
        let checked: Vec<Signature> = cloudtrail
            .digests
            .iter()
            .filter(|r| r.name == d.name)
            .map(|r| cloudtrail_keys.check(r))
            .collect();
        d.signed = if checked.contains(&Signature::Valid) {
            true
        } else if checked.iter().any(|c| matches!(c, Signature::Invalid(_))) {
            false
        } else {
            recorded
                .get(&(d.name.clone(), d.version_id.clone()))
                .copied()
                .unwrap_or(false)
        };
    }
    cloudtrail.check(cloudtrail_keys, fetch, &mut report);
    if only.is_none() {
        again.instances.extend(store.names_from_ec2()?);
        rederive(store, again, &mut report)?;
    }
    Ok(report)
}

/// The CloudTrail files and digests read again, for log file validation.
#[derive(Default)]
struct Cloudtrail {
    trails: Vec<TrailRead>,
    digests: Vec<DigestRead>,
}

impl Cloudtrail {
    /// Keep a CloudTrail file or digest that was fetched again as ingested.
    fn read(
        &mut self,
        e: &Entry,
        bytes: &[u8],
        metadata: &BTreeMap<String, String>,
        report: &mut Report,
    ) {
        if !matches!(
            e.kind,
            SourceKind::Cloudtrail | SourceKind::CloudtrailDigest
        ) {
            return;
        }
        let inflated = match inflate(bytes) {
            Ok(b) => b,
            Err(why) => {
                report.unchecked.push((e.source.clone(), why));
                return;
            }
        };
        if e.kind == SourceKind::Cloudtrail {
            self.trails.push(TrailRead {
                name: e.source.clone(),
                sha256: sha256_hex(&inflated),
            });
            return;
        }
        match DigestRead::read(&e.source, &inflated, metadata) {
            Ok(d) => self.digests.push(d),
            Err(why) => report.problems.push(Problem {
                kind: ProblemKind::Digest,
                source: e.source.clone(),
                detail: why,
            }),
        }
    }

    /// Validate the CloudTrail files against the digests; fetch the files a digest read from S3
    /// lists that were not ingested, to tell a file gone or changed from one not asked for.
    fn check(self, keys: &mut Keyring, fetch: &mut Fetch<'_>, report: &mut Report) {
        if self.digests.is_empty() {
            if !self.trails.is_empty() {
                report.unchecked.push((
                    format!("{} CloudTrail files", self.trails.len()),
                    "no CloudTrail digest file was ingested: they are not validated (ingest the trail's CloudTrail-Digest/ files too)".into(),
                ));
            }
            return;
        }
        let found = crate::trail_check::validate(&self.digests, &self.trails, keys);
        report.valid_digests = found.valid_digests;
        report.validated_trail_files = found.validated.len();
        for (source, kind, detail) in found.problems {
            report.problems.push(Problem {
                kind,
                source,
                detail,
            });
        }
        report.unchecked.extend(found.unchecked);
        for (url, hash, digest) in found.not_read {
            let entry = Entry {
                n: 0,
                time: String::new(),
                source: url.clone(),
                version_id: None,
                sha256: String::new(),
                size: crate::formats::MAX_INFLATED_BYTES,
                kind: SourceKind::Cloudtrail,
                prev: String::new(),
                hash: String::new(),
            };
            match fetch(&entry) {
                Fetched::Bytes(bytes, _) => match inflate(&bytes) {
                    Ok(b) if sha256_hex(&b).eq_ignore_ascii_case(&hash) => {}
                    Ok(b) => report.problems.push(Problem {
                        kind: ProblemKind::Changed,
                        source: url,
                        detail: format!(
                            "CloudTrail file changed: its SHA-256 is {}, the digest {digest} lists {hash} (it was not ingested)",
                            sha256_hex(&b)
                        ),
                    }),
                    Err(why) => report.problems.push(Problem {
                        kind: ProblemKind::Changed,
                        source: url,
                        detail: format!("CloudTrail file listed by the digest {digest} no longer reads: {why}"),
                    }),
                },
                Fetched::Missing(why) => report.problems.push(Problem {
                    kind: ProblemKind::Missing,
                    source: url,
                    detail: format!("CloudTrail file listed by the digest {digest}, and gone: {why}"),
                }),
                Fetched::Changed(why) | Fetched::NotChecked(why) => {
                    report.unchecked.push((url, why))
                }
            }
        }
    }
}

/// The uncompressed bytes of a CloudTrail file or digest (gzip, or not).
fn inflate(bytes: &[u8]) -> std::result::Result<std::borrow::Cow<'_, [u8]>, String> {
    crate::formats::inflated(bytes).map_err(|e| e.to_string())
}

/// The entries the index's last commit covers. Entries past the head it recorded were written
/// for a commit that did not happen (or is happening now): they are named, not checked. A
/// ledger that does not hold that head lost or changed entries.
fn committed_entries(
    mut entries: Vec<Entry>,
    head: Option<&Head>,
    ledger_path: &str,
    report: &mut Report,
) -> Vec<Entry> {
    let Some(head) = head else {
        return entries;
    };
    let found = if head.entries == 0 {
        Some(0)
    } else {
        entries
            .iter()
            .position(|e| e.n == head.entries && e.hash == head.hash)
            .map(|i| i + 1)
    };
    match found {
        Some(keep) if keep < entries.len() => {
            let (first, last) = (entries[keep].n, entries[entries.len() - 1].n);
            report.unchecked.push((
                ledger_path.to_string(),
                format!(
                    "entries {first} to {last} were written for a commit that has not happened (an ingest running or interrupted; the next ingest removes them)"
                ),
            ));
            entries.truncate(keep);
        }
        Some(_) => {}
        None => {
            let last = entries.last().map_or(0, |e| e.n);
            report.problems.push(Problem {
                kind: ProblemKind::Ledger,
                source: ledger_path.to_string(),
                detail: if last < head.entries {
                    format!(
                        "the index was last committed with {} ledger entries, the ledger ends at entry {last}: entries were cut",
                        head.entries
                    )
                } else {
                    format!(
                        "the index was last committed with ledger entry {} hashed {}, the ledger holds another: entries were removed or changed",
                        head.entries,
                        &head.hash[..12.min(head.hash.len())]
                    )
                },
            });
        }
    }
    entries
}

/// Derive every record again from `again` in a fresh index, and name every record whose
/// fields differ from the index's, or that only one of the two holds.
fn rederive(store: &Reader, again: Batch, report: &mut Report) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!(
        "ssm-audit-verify-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let result = (|| {
        let mut fresh = Index::open_or_create(&tmp)?.writer()?;
        fresh.add(again)?;
        fresh.commit()?;
        let all = |s: &Reader| -> Result<BTreeMap<(String, u32, bool), serde_json::Value>> {
            let mut out = BTreeMap::new();
            for abandoned in [false, true] {
                let filter = crate::store::Filter {
                    abandoned,
                    ..Default::default()
                };
                for r in s.search(&filter)? {
                    let key = (r.session_id.clone(), r.seq, r.abandoned);
                    out.insert(key, serde_json::to_value(&r)?);
                }
            }
            Ok(out)
        };
        Ok::<_, crate::error::Error>((all(store)?, all(fresh.reader())?))
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    let (held, derived) = result?;
    for (key, want) in &derived {
        let (sid, seq, _) = key;
        match held.get(key) {
            None => report.problems.push(Problem {
                kind: ProblemKind::Records,
                source: sid.clone(),
                detail: format!("#{seq}: derived again from the sources, but not in the index"),
            }),
            Some(got) if got != want => {
                let fields = differing(got, want);
                report.problems.push(Problem {
                    kind: ProblemKind::Records,
                    source: sid.clone(),
                    detail: format!("#{seq}: the index differs from the sources in {fields}"),
                });
            }
            Some(_) => {}
        }
    }
    for (sid, seq, _) in held.keys().filter(|k| !derived.contains_key(*k)) {
        report.problems.push(Problem {
            kind: ProblemKind::Records,
            source: sid.clone(),
            detail: format!("#{seq}: in the index, but no source the ledger lists gives it"),
        });
    }
    Ok(())
}

/// The fields of two records that differ, each with the index's value and the derived one.
fn differing(got: &serde_json::Value, want: &serde_json::Value) -> String {
    let empty = serde_json::Map::new();
    let (g, w) = (
        got.as_object().unwrap_or(&empty),
        want.as_object().unwrap_or(&empty),
    );
    let keys: std::collections::BTreeSet<&String> = g.keys().chain(w.keys()).collect();
    keys.into_iter()
        .filter(|k| g.get(*k) != w.get(*k))
        .map(|k| {
            let show =
                |v: Option<&serde_json::Value>| v.map_or("nothing".into(), |v| v.to_string());
            format!(
                "{k} ({} in the index, {} from the sources)",
                show(g.get(k)),
                show(w.get(k))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
