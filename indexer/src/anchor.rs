//! Anchoring the ledger outside the index: after each commit, the ledger's new head (how many
//! entries, the last one's hash, when) and the hashes of the entries since the head anchored
//! before are written as a new object that is never overwritten, to a folder or an S3 prefix
//! (with Object Lock where the bucket has it). Whoever can write the index folder can rewrite
//! its ledger and re-chain it, or cut its tail, and the index's own checks agree; the heads
//! anchored elsewhere do not, and `verify --anchor` names the first entry that differs.
//!
//! A head may be signed ([`Signer`], a KMS asymmetric key): a signature binds the head to the
//! key, for anchor locations that the people who can write the index could also write.
//!
//! One anchor location belongs to one index: every head found there must agree with the ledger.

use crate::ledger::{Entry, Head};
use crate::model::{hex, sha256_hex};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The version of the head objects' shape.
pub const FORMAT: u32 = 1;

/// One anchored head of a ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchoredHead {
    /// [`FORMAT`].
    pub format: u32,
    /// Entries in the ledger at this head.
    pub entries: u64,
    /// The hash of the last of them.
    pub hash: String,
    /// When it was anchored (RFC 3339, UTC).
    pub time: String,
    /// The entries of the head anchored before this one, by the same writer.
    pub from: u64,
    /// The hashes of entries `from + 1` to `entries`, in order.
    pub hashes: Vec<String>,
    /// A signature of [`AnchoredHead::statement`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<HeadSignature>,
}

/// A signature of a head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadSignature {
    /// The key that signed (a KMS key ARN).
    pub key: String,
    /// The signing algorithm (KMS's name of it).
    pub algorithm: String,
    /// The signature, in hex.
    pub value: String,
}

impl AnchoredHead {
    /// What a signature covers: one short line (KMS signs messages of up to 4 KiB), naming
    /// every field but the signature (the hashes through their SHA-256).
    pub fn statement(&self) -> String {
        format!(
            "ssm-audit ledger head {} entries={} hash={} time={} from={} hashes={}",
            self.format,
            self.entries,
            self.hash,
            self.time,
            self.from,
            sha256_hex(self.hashes.join("\n").as_bytes())
        )
    }

    /// The object's name: heads sort by their entries, then by time.
    pub fn name(&self) -> String {
        let time: String = self
            .time
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        format!("ledger-head-{:012}-{time}.json", self.entries)
    }
}

/// Where heads are kept: a folder, an S3 prefix.
pub trait AnchorStore: Send {
    /// The location, for messages.
    fn location(&self) -> String;
    /// Every object whose name starts with `ledger-head-`: (name, bytes).
    fn list(&mut self) -> Result<Vec<(String, Vec<u8>)>, String>;
    /// Write a new object; an object of that name that exists already is an error, never
    /// overwritten.
    fn create(&mut self, name: &str, bytes: &[u8]) -> Result<(), String>;
}

/// Signs heads.
pub trait Signer: Send {
    /// Sign `statement`: the key, the algorithm and the signature.
    fn sign(&mut self, statement: &[u8]) -> Result<HeadSignature, String>;
}

/// Checks heads' signatures.
pub trait SignatureCheck {
    /// Whether `signature` is a valid signature of `statement`.
    fn verify(&mut self, signature: &HeadSignature, statement: &[u8]) -> Result<bool, String>;
}

/// Heads in a local folder, each a new file, made read-only.
pub struct FolderAnchor {
    dir: PathBuf,
}

impl FolderAnchor {
    /// The folder `dir` (made when the first head is written).
    pub fn new(dir: &Path) -> FolderAnchor {
        FolderAnchor {
            dir: dir.to_path_buf(),
        }
    }
}

impl AnchorStore for FolderAnchor {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn list(&mut self) -> Result<Vec<(String, Vec<u8>)>, String> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("{}: {e}", self.dir.display())),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|e| format!("{}: {e}", self.dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("ledger-head-") {
                continue;
            }
            let bytes = crate::files::read_regular(&e.path(), Some(MAX_HEAD_BYTES))
                .map_err(|err| format!("{}: {err}", e.path().display()))?;
            out.push((name, bytes));
        }
        out.sort();
        Ok(out)
    }

    fn create(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let path = self.dir.join(name);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&path)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Heads are small: a larger object under that name is not read whole.
pub const MAX_HEAD_BYTES: u64 = 64 << 20;

/// Writes a head after each commit that changed the ledger.
pub struct Anchoring {
    store: Box<dyn AnchorStore>,
    signer: Option<Box<dyn Signer>>,
    /// The entries of the last head anchored.
    last: u64,
    /// Hashes of the entries after it, not anchored yet.
    pending: Vec<String>,
}

impl Anchoring {
    /// Anchor the ledger `entries` (committed, in order) to `store` from now on. The heads
    /// already there must agree with the ledger: a ledger that does not is not extended.
    pub fn start(
        store: Box<dyn AnchorStore>,
        signer: Option<Box<dyn Signer>>,
        entries: &[Entry],
    ) -> Result<Anchoring, String> {
        let mut store = store;
        let heads = read_heads(store.as_mut())?;
        let check = compare(entries, &heads);
        if let Some(first) = check.first_difference {
            return Err(format!(
                "the ledger disagrees with the heads anchored at {}: {first}; run `ssm-audit verify --anchor {}`",
                store.location(),
                store.location()
            ));
        }
        let last = heads.iter().map(|(_, h)| h.entries).max().unwrap_or(0);
        let pending = entries
            .iter()
            .filter(|e| e.n > last)
            .map(|e| e.hash.clone())
            .collect();
        Ok(Anchoring {
            store,
            signer,
            last,
            pending,
        })
    }

    /// Where heads go.
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// After a commit: `head` is the ledger's head, `added` the hashes of the entries the
    /// commit added. Writes a head when any entry is not anchored yet.
    pub fn anchor(&mut self, head: &Head, added: &[String]) -> Result<(), String> {
        self.pending.extend_from_slice(added);
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut h = AnchoredHead {
            format: FORMAT,
            entries: head.entries,
            hash: head.hash.clone(),
            time: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
            from: self.last,
            hashes: self.pending.clone(),
            signature: None,
        };
        if h.from + h.hashes.len() as u64 != h.entries || h.hashes.last() != Some(&h.hash) {
            return Err(format!(
                "the ledger's head (entry {}) does not follow the head anchored before (entry {}) and the {} entries since",
                h.entries,
                h.from,
                h.hashes.len()
            ));
        }
        if let Some(s) = &mut self.signer {
            h.signature = Some(s.sign(h.statement().as_bytes())?);
        }
        let bytes = serde_json::to_vec_pretty(&h).map_err(|e| e.to_string())?;
        self.store.create(&h.name(), &bytes)?;
        self.last = h.entries;
        self.pending.clear();
        Ok(())
    }
}

/// Every head of `store`, read: a head that does not read is an error naming it.
fn read_heads(store: &mut dyn AnchorStore) -> Result<Vec<(String, AnchoredHead)>, String> {
    store
        .list()?
        .into_iter()
        .map(|(name, bytes)| {
            serde_json::from_slice::<AnchoredHead>(&bytes)
                .map(|h| (name.clone(), h))
                .map_err(|e| format!("{}/{name}: not an anchored head: {e}", store.location()))
        })
        .collect()
}

/// How a ledger compares with anchored heads.
#[derive(Debug, Default)]
pub struct Comparison {
    /// The first entry that differs from what a head anchored, and how.
    pub first_difference: Option<String>,
    /// The highest entry anchored.
    pub anchored: u64,
}

/// Compare the ledger's `entries` with every anchored head: each entry a head lists must be
/// in the ledger with the same hash.
pub fn compare(entries: &[Entry], heads: &[(String, AnchoredHead)]) -> Comparison {
    let mut out = Comparison::default();
    // The first difference by entry number, over all heads.
    let mut first: Option<(u64, String)> = None;
    for (name, h) in heads {
        out.anchored = out.anchored.max(h.entries);
        let listed = h.from + h.hashes.len() as u64 == h.entries
            && h.hashes.last().is_none_or(|l| *l == h.hash);
        if !listed {
            let n = h.from + 1;
            if first.as_ref().is_none_or(|(f, _)| n < *f) {
                first = Some((
                    n,
                    format!("the head {name} does not list its entries in order"),
                ));
            }
            continue;
        }
        for (i, hash) in h.hashes.iter().enumerate() {
            let n = h.from + i as u64 + 1;
            if first.as_ref().is_some_and(|(f, _)| n >= *f) {
                break;
            }
            let why = match entries.get((n - 1) as usize) {
                None => Some(format!(
                    "entry {n} is anchored by {name} ({}), and the ledger ends at entry {}: entries were cut",
                    h.time,
                    entries.len()
                )),
                Some(e) if e.n != n || e.hash != *hash => Some(format!(
                    "entry {n} differs from the one anchored by {name} ({}): its hash was {}, is {}",
                    h.time,
                    &hash[..hash.len().min(16)],
                    &e.hash[..e.hash.len().min(16)]
                )),
                Some(_) => None,
            };
            if let Some(why) = why {
                first = Some((n, why));
                break;
            }
        }
    }
    out.first_difference = first.map(|(_, why)| why);
    out
}

/// What checking a ledger against an anchor location found.
#[derive(Debug, Default)]
pub struct AnchorReport {
    /// Heads read.
    pub heads: usize,
    /// Problems: a difference, an unreadable head, a bad signature, no head at all.
    pub problems: Vec<String>,
    /// What could not be checked, and why.
    pub unchecked: Vec<String>,
}

/// Check the committed ledger `entries` against every head at `store`; with `signatures`,
/// every head must carry a valid signature (by `key`, when given).
pub fn check(
    entries: &[Entry],
    store: &mut dyn AnchorStore,
    signatures: Option<&mut dyn SignatureCheck>,
    key: Option<&str>,
) -> AnchorReport {
    let mut out = AnchorReport::default();
    let heads = match read_heads(store) {
        Ok(h) => h,
        Err(e) => {
            out.problems.push(e);
            return out;
        }
    };
    out.heads = heads.len();
    if heads.is_empty() {
        out.problems.push(format!(
            "no anchored head at {}: nothing to check the ledger against",
            store.location()
        ));
        return out;
    }
    if let Some(check) = signatures {
        for (name, h) in &heads {
            let problem = match &h.signature {
                None => Some("is not signed".to_string()),
                Some(s) if key.is_some_and(|k| !key_matches(&s.key, k)) => {
                    Some(format!("is signed by another key ({})", s.key))
                }
                Some(s) => match check.verify(s, h.statement().as_bytes()) {
                    Ok(true) => None,
                    Ok(false) => Some("has a signature that does not match it".to_string()),
                    Err(e) => Some(format!("its signature could not be checked: {e}")),
                },
            };
            if let Some(p) = problem {
                out.problems
                    .push(format!("the head {}/{name} {p}", store.location()));
            }
        }
    }
    let c = compare(entries, &heads);
    if let Some(d) = c.first_difference {
        out.problems.push(d);
    }
    let last = entries.last().map_or(0, |e| e.n);
    if last > c.anchored {
        out.unchecked.push(format!(
            "ledger entries {} to {last} are not anchored yet (ingested without --anchor, or the last anchoring failed): checked by the chain only",
            c.anchored + 1
        ));
    }
    out
}

/// A key named as an ARN, an alias or an id matches the ARN a signature names when it is the
/// ARN or its last part.
fn key_matches(signed_by: &str, given: &str) -> bool {
    signed_by == given || signed_by.rsplit('/').next() == Some(given)
}

/// A signature in hex.
pub fn signature_hex(bytes: &[u8]) -> String {
    hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::SourceKind;
    use crate::ledger::{Ingested, Ledger};

    /// Sources `s<i>` for `i` in `range`.
    fn sources(range: std::ops::Range<usize>) -> Vec<Ingested> {
        range
            .map(|i| Ingested {
                source: format!("s{i}"),
                version_id: None,
                sha256: format!("{i:064}"),
                size: 1,
                kind: SourceKind::S3Log,
            })
            .collect()
    }

    fn ledger(dir: &Path, n: usize) -> Ledger {
        let mut l = Ledger::of_index(dir);
        l.append(&sources(0..n)).unwrap();
        l
    }

    #[test]
    fn a_removed_and_rechained_entry_or_a_cut_tail_differs_from_the_anchored_heads() {
        let dir = tempfile::tempdir().unwrap();
        let anchor_dir = dir.path().join("anchor");
        let mut l = ledger(dir.path(), 3);
        let entries = l.read().unwrap().entries;
        let mut a = Anchoring::start(Box::new(FolderAnchor::new(&anchor_dir)), None, &[]).unwrap();
        let hashes: Vec<String> = entries.iter().map(|e| e.hash.clone()).collect();
        a.anchor(&l.head().unwrap(), &hashes).unwrap();
        // Two more, anchored by a second writer.
        let added = l.append(&sources(3..5)).unwrap();
        let entries = l.read().unwrap().entries;
        let mut a = Anchoring::start(
            Box::new(FolderAnchor::new(&anchor_dir)),
            None,
            &entries[..3],
        )
        .unwrap();
        a.anchor(&l.head().unwrap(), &added).unwrap();
        let mut store = FolderAnchor::new(&anchor_dir);
        assert_eq!(store.list().unwrap().len(), 2);
        let r = check(&entries, &mut store, None, None);
        assert!(r.problems.is_empty() && r.unchecked.is_empty(), "{r:?}");
        // Entry 2 removed and the chain recomputed: entry 2 is now what was entry 3.
        // Entry 1 stays byte for byte; the rest is chained again after it.
        let rechained = dir.path().join("rechained");
        std::fs::create_dir_all(&rechained).unwrap();
        let first_line = std::fs::read_to_string(dir.path().join("ledger.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        std::fs::write(rechained.join("ledger.jsonl"), format!("{first_line}\n")).unwrap();
        let mut forged = Ledger::of_index(&rechained);
        forged
            .append(
                &entries
                    .iter()
                    .filter(|e| e.n > 2)
                    .map(|e| Ingested {
                        source: e.source.clone(),
                        version_id: None,
                        sha256: e.sha256.clone(),
                        size: 1,
                        kind: SourceKind::S3Log,
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        let forged = forged.read().unwrap();
        assert!(forged.broken.is_empty(), "the chain itself is whole");
        let r = check(&forged.entries, &mut store, None, None);
        assert_eq!(r.problems.len(), 1, "{r:?}");
        assert!(r.problems[0].starts_with("entry 2 differs"), "{r:?}");
        // The last entry cut.
        let r = check(&entries[..4], &mut store, None, None);
        assert!(
            r.problems.len() == 1 && r.problems[0].starts_with("entry 5 is anchored"),
            "{r:?}"
        );
        // A writer does not extend a ledger that disagrees with its anchors.
        let refused = Anchoring::start(
            Box::new(FolderAnchor::new(&anchor_dir)),
            None,
            &forged.entries,
        );
        assert!(refused.is_err());
        // Heads are never overwritten.
        let (name, bytes) = store.list().unwrap().remove(0);
        assert!(store.create(&name, &bytes).is_err());
        // No head at all is a problem, not a pass.
        let mut empty = FolderAnchor::new(&dir.path().join("nothing"));
        assert_eq!(check(&entries, &mut empty, None, None).problems.len(), 1);
    }

    struct Xor;
    impl Signer for Xor {
        fn sign(&mut self, statement: &[u8]) -> Result<HeadSignature, String> {
            Ok(HeadSignature {
                key: "arn:aws:kms:eu-west-1:111122223333:key/k1".into(),
                algorithm: "TEST".into(),
                value: sha256_hex(statement),
            })
        }
    }
    impl SignatureCheck for Xor {
        fn verify(&mut self, s: &HeadSignature, statement: &[u8]) -> Result<bool, String> {
            Ok(s.value == sha256_hex(statement))
        }
    }

    #[test]
    fn signed_heads_are_checked_and_an_edited_head_fails() {
        let dir = tempfile::tempdir().unwrap();
        let anchor_dir = dir.path().join("anchor");
        let mut l = ledger(dir.path(), 2);
        let entries = l.read().unwrap().entries;
        let mut a = Anchoring::start(
            Box::new(FolderAnchor::new(&anchor_dir)),
            Some(Box::new(Xor)),
            &[],
        )
        .unwrap();
        let hashes: Vec<String> = entries.iter().map(|e| e.hash.clone()).collect();
        a.anchor(&l.head().unwrap(), &hashes).unwrap();
        let mut store = FolderAnchor::new(&anchor_dir);
        let r = check(&entries, &mut store, Some(&mut Xor), Some("k1"));
        assert!(r.problems.is_empty(), "{r:?}");
        let r = check(&entries, &mut store, Some(&mut Xor), Some("k2"));
        assert!(r.problems[0].contains("another key"), "{r:?}");
        // The head rewritten (its file replaced) to match a forged ledger: the signature fails.
        let (name, bytes) = store.list().unwrap().remove(0);
        let mut h: AnchoredHead = serde_json::from_slice(&bytes).unwrap();
        h.time = "2020-01-01T00:00:00Z".into();
        let path = anchor_dir.join(&name);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, serde_json::to_vec(&h).unwrap()).unwrap();
        let r = check(&entries, &mut store, Some(&mut Xor), None);
        assert!(
            r.problems.len() == 1 && r.problems[0].contains("does not match"),
            "{r:?}"
        );
    }
}
