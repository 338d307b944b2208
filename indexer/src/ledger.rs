//! The ledger: an append-only, hash-chained list of every source version ingested into an
//! index (`ledger.jsonl` in the index folder). Each entry holds the hash of the one before, so
//! an entry edited or removed from the middle breaks the chain, and `verify` compares the
//! ledger with the index both ways, so a record removed from either is found.
//!
//! The ledger is written before the index commits, and each commit records the ledger's
//! [`Head`] then (its payload): a commit that failed after the ledger was written (a full disk,
//! a kill) leaves entries past the committed head, and a write that failed leaves a torn last
//! line. [`Ledger::settle`], run when the next writer takes the index, cuts both; `verify` reads
//! them as an interrupted ingest, not as tampering. What this cannot show (a ledger cut and
//! re-chained together with the index's commit) is what anchoring the head outside the index
//! ([`crate::anchor`]) shows.

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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Where the chain ends: how many entries it has, and the hash of the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Entries in the ledger.
    pub entries: u64,
    /// The hash of the last entry ([`GENESIS`] when there is none).
    pub hash: String,
}

impl Head {
    /// The head of an empty ledger.
    pub fn genesis() -> Head {
        Head {
            entries: 0,
            hash: GENESIS.to_string(),
        }
    }

    /// The head of a chain that ends with `last`.
    pub fn of(last: Option<&Entry>) -> Head {
        last.map_or_else(Head::genesis, |e| Head {
            entries: e.n,
            hash: e.hash.clone(),
        })
    }
}

/// What a ledger file holds.
#[derive(Debug, Default)]
pub struct Contents {
    /// Every entry that reads as one, in order.
    pub entries: Vec<Entry>,
    /// The lines where the chain is broken.
    pub broken: Vec<Break>,
    /// The file ends in a line cut short (no newline, not an entry): a write that failed.
    pub torn: bool,
}

/// What [`Ledger::settle`] cut.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Entries past the committed head: sources of a commit that did not happen.
    pub uncommitted: u64,
    /// A torn last line was cut.
    pub torn: bool,
}

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
    pub fn read(&self) -> Result<Contents> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(e) => return Err(Error::Io(e)),
        };
        Ok(Self::parse(&text).0)
    }

    /// The file's contents, and the byte offset after each entry's line.
    fn parse(text: &[u8]) -> (Contents, Vec<usize>) {
        let mut out = Contents::default();
        let mut ends = Vec::new();
        let mut prev = GENESIS.to_string();
        let mut start = 0;
        let mut number = 0;
        while start < text.len() {
            let (line, end, complete) = match text[start..].iter().position(|&b| b == b'\n') {
                Some(i) => (&text[start..start + i], start + i + 1, true),
                None => (&text[start..], text.len(), false),
            };
            number += 1;
            start = end;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = std::str::from_utf8(line)
                .map_err(|e| e.to_string())
                .and_then(|l| serde_json::from_str::<Entry>(l).map_err(|e| e.to_string()));
            match parsed {
                Ok(e) => {
                    if e.prev != prev {
                        out.broken.push((number, format!("entry {} does not follow the entry before it (an entry was removed or changed)", e.n)));
                    }
                    if e.digest() != e.hash {
                        out.broken.push((
                            number,
                            format!(
                                "entry {} was altered (its hash does not match its content)",
                                e.n
                            ),
                        ));
                    }
                    prev = e.hash.clone();
                    out.entries.push(e);
                    ends.push(end);
                }
                Err(_) if !complete => out.torn = true,
                Err(err) => out
                    .broken
                    .push((number, format!("not a ledger entry: {err}"))),
            }
        }
        (out, ends)
    }

    /// Make the file end where the index's last commit says it ends (`committed`, the head
    /// recorded with that commit; `None` for an index committed before heads were recorded):
    /// entries written for a commit that did not happen, and a torn last line, are cut. A
    /// ledger that does not hold the committed head is left as it is, for `verify` to report.
    ///
    /// Only a writer of the index (holding its lock) may settle its ledger.
    pub fn settle(&mut self, committed: Option<&Head>) -> Result<Settled> {
        self.tail = None;
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settled::default()),
            Err(e) => return Err(Error::Io(e)),
        };
        let (contents, ends) = Self::parse(&text);
        let keep = match committed {
            Some(head) if head.entries == 0 => (!contents.entries.is_empty() || contents.torn)
                .then_some((0, contents.entries.len() as u64)),
            Some(head) => contents
                .entries
                .iter()
                .position(|e| e.n == head.entries && e.hash == head.hash)
                .map(|i| (ends[i], (contents.entries.len() - i - 1) as u64)),
            None => None,
        };
        let (cut_at, uncommitted) = match keep {
            Some(k) => k,
            // Without a head to go by, only a torn last line is cut.
            None if contents.torn => (ends.last().copied().unwrap_or(0), 0),
            None => return Ok(Settled::default()),
        };
        if cut_at == text.len() && text.ends_with(b"\n") {
            return Ok(Settled::default());
        }
        let torn = contents.torn;
        let f = std::fs::OpenOptions::new().write(true).open(&self.path)?;
        f.set_len(cut_at as u64)?;
        // A kept last entry whose newline was not written gets it.
        if cut_at > 0 && text[cut_at - 1] != b'\n' {
            let mut f = std::fs::OpenOptions::new().append(true).open(&self.path)?;
            f.write_all(b"\n")?;
        }
        f.sync_all()?;
        Ok(Settled { uncommitted, torn })
    }

    /// The head of the chain as this writer knows it.
    pub fn head(&mut self) -> Result<Head> {
        let tail = self.tail()?;
        Ok(Head {
            entries: tail.n,
            hash: tail.prev.clone(),
        })
    }

    fn tail(&mut self) -> Result<&mut Tail> {
        if self.tail.is_none() {
            let entries = self.read()?.entries;
            self.tail = Some(Tail {
                n: entries.last().map_or(0, |e| e.n),
                prev: entries
                    .last()
                    .map_or(GENESIS.to_string(), |e| e.hash.clone()),
                // Later entries replace earlier ones.
                latest: entries
                    .into_iter()
                    .map(|e| (e.source, (e.sha256, e.version_id)))
                    .collect(),
            });
        }
        Ok(self.tail.as_mut().expect("just read"))
    }

    /// Append sources not already recorded with the same digest as their latest entry.
    ///
    /// The file is read on the first append only: a `Ledger` that appends must be the only
    /// writer of its index (the index's writer lock) for as long as it is kept.
    /// Returns the hashes of the entries added, in order.
    pub fn append(&mut self, sources: &[Ingested]) -> Result<Vec<String>> {
        self.tail()?;
        let mut tail = self.tail.take().expect("just read");
        let mut out = String::new();
        let mut added = Vec::new();
        let mut hashes = Vec::new();
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
            hashes.push(e.hash.clone());
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
        Ok(hashes)
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
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            l.append(&[src("a", "1")]).unwrap().len(),
            0,
            "the same version again adds nothing"
        );
        assert_eq!(
            l.append(&[src("a", "9")]).unwrap().len(),
            1,
            "a new version is recorded"
        );
        let read = l.read().unwrap();
        assert_eq!(read.entries.len(), 4);
        assert!(read.broken.is_empty());
        let text = std::fs::read_to_string(dir.path().join("ledger.jsonl")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Remove the second entry.
        std::fs::write(
            dir.path().join("ledger.jsonl"),
            format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]),
        )
        .unwrap();
        assert!(!l.read().unwrap().broken.is_empty());
        // Change a digest in place.
        std::fs::write(
            dir.path().join("ledger.jsonl"),
            text.replacen("\"sha256\":\"2\"", "\"sha256\":\"7\"", 1),
        )
        .unwrap();
        assert!(l
            .read()
            .unwrap()
            .broken
            .iter()
            .any(|(_, why)| why.contains("altered")));
    }

    #[test]
    fn settling_cuts_what_the_index_never_committed_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let mut l = Ledger::of_index(dir.path());
        l.append(&[src("a", "1"), src("b", "2")]).unwrap();
        let committed = l.head().unwrap();
        assert_eq!(committed.entries, 2);
        l.append(&[src("c", "3")]).unwrap();
        let whole = std::fs::read(&path).unwrap();
        // Half of a fourth line: the disk filled while it was written.
        let mut torn = whole.clone();
        torn.extend_from_slice(br#"{"n":4,"time":"2026-"#);
        std::fs::write(&path, &torn).unwrap();
        let read = l.read().unwrap();
        assert!(read.torn && read.broken.is_empty(), "{:?}", read.broken);
        assert_eq!(read.entries.len(), 3);
        // The index committed two entries: the third and the torn line go.
        let settled = l.settle(Some(&committed)).unwrap();
        assert_eq!(
            settled,
            Settled {
                uncommitted: 1,
                torn: true
            }
        );
        let read = l.read().unwrap();
        assert_eq!(read.entries.len(), 2);
        assert!(!read.torn && read.broken.is_empty());
        assert_eq!(l.head().unwrap(), committed);
        // Settled again, nothing changes.
        assert_eq!(l.settle(Some(&committed)).unwrap(), Settled::default());
        // The next entry follows the committed head.
        l.append(&[src("c", "3")]).unwrap();
        assert!(l.read().unwrap().broken.is_empty());
    }

    #[test]
    fn settling_leaves_a_ledger_that_does_not_hold_the_committed_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let mut l = Ledger::of_index(dir.path());
        l.append(&[src("a", "1"), src("b", "2"), src("c", "3")])
            .unwrap();
        let committed = l.head().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // The last entry cut away: the head the index committed is not there.
        let cut: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, &cut).unwrap();
        assert_eq!(l.settle(Some(&committed)).unwrap(), Settled::default());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), cut);
        // Without a committed head, only a torn line is cut.
        std::fs::write(&path, format!("{cut}{{\"n\":3")).unwrap();
        assert_eq!(
            l.settle(None).unwrap(),
            Settled {
                uncommitted: 0,
                torn: true
            }
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), cut);
    }
}
