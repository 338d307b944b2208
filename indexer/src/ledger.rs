//! The ledger: an append-only, hash-chained list of every source version ingested into an
//! index (`ledger.jsonl` in the index folder). Each entry holds the hash of the one before, so
//! an entry edited or removed from the middle breaks the chain, and `verify` compares the
//! ledger with the index both ways, so a record removed from either is found.

use crate::error::{Error, Result};
use crate::kinds::SourceKind;
use crate::model::sha256_hex;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One ingested source version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the ledger, from 1.
    pub n: u64,
    /// When it was ingested (RFC 3339, UTC).
    pub time: String,
    /// Path or `s3://bucket/key`.
    pub source: String,
    /// S3 version id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// SHA-256 of the object.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// `s3-log`, `cloudwatch-stream`, `cloudtrail`, `inventory`, `records`.
    pub kind: SourceKind,
    /// The hash of the entry before.
    pub prev: String,
    /// The hash of this entry (of its JSON without this field).
    #[serde(default)]
    pub hash: String,
}

impl Entry {
    fn digest(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        sha256_hex(
            serde_json::to_string(&unhashed)
                .unwrap_or_default()
                .as_bytes(),
        )
    }
}

/// What a source was when ingested, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Path or URL.
    pub source: String,
    /// S3 version id.
    pub version_id: Option<String>,
    /// SHA-256.
    pub sha256: String,
    /// Size.
    pub size: u64,
    /// Kind.
    pub kind: SourceKind,
}

/// A line where the chain is broken, and what is wrong there.
pub type Break = (usize, String);

/// The ledger file of an index.
pub struct Ledger {
    path: PathBuf,
    /// Where the chain ends and each source's latest entry, once read: kept while this
    /// writer holds the index's lock (no one else appends meanwhile), so that appending does
    /// not read the whole file again each time.
    tail: Option<Tail>,
}

/// The end of the chain, and the latest (digest, version) of each source.
struct Tail {
    n: u64,
    prev: String,
    latest: std::collections::HashMap<String, (String, Option<String>)>,
}

impl Ledger {
    /// The ledger of the index at `dir`.
    pub fn of_index(dir: &Path) -> Ledger {
        Ledger {
            path: dir.join("ledger.jsonl"),
            tail: None,
        }
    }

    /// Every entry, and the lines where the chain is broken.
    pub fn read(&self) -> Result<(Vec<Entry>, Vec<Break>)> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), Vec::new()))
            }
            Err(e) => return Err(Error::Io(e)),
        };
        let mut entries = Vec::new();
        let mut broken = Vec::new();
        let mut prev = GENESIS.to_string();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str::<Entry>(line) {
                Ok(e) => {
                    if e.prev != prev {
                        broken.push((i + 1, format!("entry {} does not follow the entry before it (an entry was removed or changed)", e.n)));
                    }
                    if e.digest() != e.hash {
                        broken.push((
                            i + 1,
                            format!(
                                "entry {} was altered (its hash does not match its content)",
                                e.n
                            ),
                        ));
                    }
                    prev = e.hash.clone();
                    entries.push(e);
                }
                Err(err) => broken.push((i + 1, format!("not a ledger entry: {err}"))),
            }
        }
        Ok((entries, broken))
    }

    /// Append sources not already recorded with the same digest as their latest entry.
    ///
    /// The file is read on the first append only: a `Ledger` that appends must be the only
    /// writer of its index (the index's writer lock) for as long as it is kept.
    pub fn append(&mut self, sources: &[Ingested]) -> Result<usize> {
        let mut tail = match self.tail.take() {
            Some(t) => t,
            None => {
                let (entries, _) = self.read()?;
                Tail {
                    n: entries.last().map_or(0, |e| e.n),
                    prev: entries
                        .last()
                        .map_or(GENESIS.to_string(), |e| e.hash.clone()),
                    // Later entries replace earlier ones.
                    latest: entries
                        .into_iter()
                        .map(|e| (e.source, (e.sha256, e.version_id)))
                        .collect(),
                }
            }
        };
        let mut out = String::new();
        let mut added = Vec::new();
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let (mut n, mut prev) = (tail.n, tail.prev.clone());
        for s in sources {
            if tail
                .latest
                .get(&s.source)
                .is_some_and(|(sha, v)| *sha == s.sha256 && *v == s.version_id)
            {
                continue;
            }
            n += 1;
            let mut e = Entry {
                n,
                time: time.clone(),
                source: s.source.clone(),
                version_id: s.version_id.clone(),
                sha256: s.sha256.clone(),
                size: s.size,
                kind: s.kind,
                prev,
                hash: String::new(),
            };
            e.hash = e.digest();
            prev = e.hash.clone();
            out.push_str(&serde_json::to_string(&e)?);
            out.push('\n');
            added.push(s);
        }
        if !added.is_empty() {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            // On an error what the file holds is unknown: the tail is read again next time.
            f.write_all(out.as_bytes())?;
            f.sync_all()?;
            tail.n = n;
            tail.prev = prev;
            for s in &added {
                tail.latest
                    .insert(s.source.clone(), (s.sha256.clone(), s.version_id.clone()));
            }
        }
        self.tail = Some(tail);
        Ok(added.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(name: &str, sha: &str) -> Ingested {
        Ingested {
            source: name.into(),
            version_id: None,
            sha256: sha.into(),
            size: 1,
            kind: SourceKind::S3Log,
        }
    }

    #[test]
    fn the_chain_detects_edits_and_removals() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::of_index(dir.path());
        assert_eq!(
            l.append(&[src("a", "1"), src("b", "2"), src("c", "3")])
                .unwrap(),
            3
        );
        assert_eq!(
            l.append(&[src("a", "1")]).unwrap(),
            0,
            "the same version again adds nothing"
        );
        assert_eq!(
            l.append(&[src("a", "9")]).unwrap(),
            1,
            "a new version is recorded"
        );
        let (entries, broken) = l.read().unwrap();
        assert_eq!(entries.len(), 4);
        assert!(broken.is_empty());
        let text = std::fs::read_to_string(dir.path().join("ledger.jsonl")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Remove the second entry.
        std::fs::write(
            dir.path().join("ledger.jsonl"),
            format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]),
        )
        .unwrap();
        assert!(!l.read().unwrap().1.is_empty());
        // Change a digest in place.
        std::fs::write(
            dir.path().join("ledger.jsonl"),
            text.replacen("\"sha256\":\"2\"", "\"sha256\":\"7\"", 1),
        )
        .unwrap();
        assert!(l
            .read()
            .unwrap()
            .1
            .iter()
            .any(|(_, why)| why.contains("altered")));
    }
}
