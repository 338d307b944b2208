//! A report bundle: the HTML, CSV and JSON reports of one principal in a folder, with a
//! manifest that names each file's SHA-256, each source the records cite (with its SHA-256 and
//! ledger entry) and the ledger head they were made at, so that `verify --bundle` can tell
//! later whether the files, the index or the sources have changed since.

use crate::look::{Look, Styled, Tone};
use crate::report::{self, Report, ReportFormat};
use anyhow::{bail, Context, Result};
use indexer::ledger::{Entry, Head};
use indexer::model::sha256_hex;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The files of a bundle, besides its manifest.
pub const FILES: [(&str, ReportFormat); 3] = [
    ("report.html", ReportFormat::Html),
    ("report.csv", ReportFormat::Csv),
    ("report.json", ReportFormat::Json),
];

const MANIFEST: &str = "manifest.json";

/// What `manifest.json` holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// The shape of this manifest.
    pub manifest: u32,
    pub generated: String,
    pub version: String,
    pub command_line: String,
    /// The index's ledger head the report was made at.
    pub ledger: Head,
    pub files: Vec<FileSum>,
    pub sources: Vec<SourceSum>,
}

/// One file of the bundle.
#[derive(Debug, Serialize, Deserialize)]
pub struct FileSum {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

/// One source the report's records cite, as the ledger recorded it when it was read.
#[derive(Debug, Serialize, Deserialize)]
pub struct SourceSum {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// SHA-256 of the object as stored (the ledger's).
    pub sha256: String,
    pub size: u64,
    /// Its ledger entry; 0 when the index never read it (records that came from elsewhere).
    pub ledger_entry: u64,
    /// SHA-256 of what the records' byte ranges point into, when that is not the object (a
    /// stream's canonical document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_sha256: Option<String>,
}

/// Write the bundle of `r` into `dir` (made if missing; a folder that already holds a
/// manifest is refused). Returns the number of sources named.
pub fn write(dir: &Path, r: &Report, ledger: &[Entry], look: &Look) -> Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    if dir.join(MANIFEST).exists() {
        bail!(
            "{} already holds a bundle (manifest.json): give a new folder",
            dir.display()
        );
    }
    let mut files = Vec::new();
    for (name, format) in FILES {
        let bytes = report::render(r, format, look)?;
        let path = dir.join(name);
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(FileSum {
            name: name.to_string(),
            sha256: sha256_hex(&bytes),
            bytes: bytes.len() as u64,
        });
    }
    let mut sources: Vec<SourceSum> = Vec::new();
    for e in r
        .sessions
        .iter()
        .flat_map(|s| &s.commands)
        .map(|c| &c.evidence)
    {
        if sources
            .iter()
            .any(|s| s.source == e.source && s.version_id == e.version_id)
        {
            continue;
        }
        let entry = ledger
            .iter()
            .rev()
            .find(|l| l.source == e.source && l.version_id == e.version_id);
        sources.push(SourceSum {
            source: e.source.clone(),
            version_id: e.version_id.clone(),
            sha256: entry.map_or_else(|| e.sha256.clone(), |l| l.sha256.clone()),
            size: entry.map_or(0, |l| l.size),
            ledger_entry: entry.map_or(0, |l| l.n),
            document_sha256: entry
                .filter(|l| l.sha256 != e.sha256)
                .map(|_| e.sha256.clone()),
        });
    }
    let manifest = Manifest {
        manifest: 1,
        generated: r.context.generated.clone(),
        version: r.context.version.clone(),
        command_line: r.context.command_line.clone(),
        ledger: r.context.ledger.clone(),
        files,
        sources,
    };
    let n = manifest.sources.len();
    let text = escape::json(serde_json::to_string_pretty(&manifest)?) + "\n";
    std::fs::write(dir.join(MANIFEST), text)
        .with_context(|| format!("writing {}", dir.join(MANIFEST).display()))?;
    Ok(n)
}

/// One thing `verify --bundle` found wrong.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// `file`, `ledger`, `source`.
    pub kind: &'static str,
    pub subject: String,
    pub detail: String,
}

/// Check a bundle: each file against the manifest, the ledger head it names against the
/// index's ledger, each source it cites fetched again and hashed. Returns what is wrong, and
/// how many files and sources were checked.
pub fn check(dir: &Path, index: &Path) -> Result<(Vec<Problem>, usize, usize)> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let m: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a bundle manifest", path.display()))?;
    let mut problems = Vec::new();
    for f in &m.files {
        // A name is a file of this folder, never a path out of it.
        if f.name.contains(['/', '\\']) || f.name.starts_with('.') {
            problems.push(Problem {
                kind: "file",
                subject: f.name.clone(),
                detail: "not a file name of the bundle: not read".into(),
            });
            continue;
        }
        match std::fs::read(dir.join(&f.name)) {
            Ok(b) if sha256_hex(&b) == f.sha256 => {}
            Ok(b) => problems.push(Problem {
                kind: "file",
                subject: f.name.clone(),
                detail: format!(
                    "SHA-256 is {} (the manifest says {}): changed since it was written",
                    sha256_hex(&b),
                    f.sha256
                ),
            }),
            Err(e) => problems.push(Problem {
                kind: "file",
                subject: f.name.clone(),
                detail: format!("cannot be read: {e}"),
            }),
        }
    }
    let ledger = indexer::ledger::Ledger::of_index(index).read()?;
    if m.ledger.entries > 0 {
        let at = usize::try_from(m.ledger.entries - 1)
            .ok()
            .and_then(|i| ledger.entries.get(i));
        match at {
            Some(e) if e.n == m.ledger.entries && e.hash == m.ledger.hash => {}
            Some(e) => problems.push(Problem {
                kind: "ledger",
                subject: format!("entry {}", m.ledger.entries),
                detail: format!(
                    "the index's ledger has hash {} there, the report was made at {}: not the index it was made from, or its ledger was rewritten",
                    e.hash, m.ledger.hash
                ),
            }),
            None => problems.push(Problem {
                kind: "ledger",
                subject: format!("entry {}", m.ledger.entries),
                detail: format!(
                    "the index's ledger has {} entries: not the index the report was made from, or its ledger was cut",
                    ledger.entries.len()
                ),
            }),
        }
    }
    let mut refetch = crate::remote::Refetch::new()?;
    for s in &m.sources {
        let entry = ledger
            .entries
            .iter()
            .find(|e| e.n == s.ledger_entry && s.ledger_entry > 0);
        let Some(entry) = entry.filter(|e| {
            e.source == s.source && e.version_id == s.version_id && e.sha256 == s.sha256
        }) else {
            problems.push(Problem {
                kind: "source",
                subject: s.source.clone(),
                detail: if s.ledger_entry == 0 {
                    "the index never read it (its records came from elsewhere): not fetched".into()
                } else {
                    format!(
                        "ledger entry {} is not this source with this SHA-256",
                        s.ledger_entry
                    )
                },
            });
            continue;
        };
        match refetch.fetch(entry) {
            indexer::verify::Fetched::Bytes(b, _) => {
                let now = sha256_hex(&b);
                if now != s.sha256 {
                    problems.push(Problem {
                        kind: "source",
                        subject: s.source.clone(),
                        detail: format!("SHA-256 was {}, is {now} now", s.sha256),
                    });
                }
            }
            indexer::verify::Fetched::Changed(why) => problems.push(Problem {
                kind: "source",
                subject: s.source.clone(),
                detail: format!("changed: {why}"),
            }),
            indexer::verify::Fetched::Missing(why) | indexer::verify::Fetched::NotChecked(why) => {
                problems.push(Problem {
                    kind: "source",
                    subject: s.source.clone(),
                    detail: why,
                })
            }
        }
    }
    Ok((problems, m.files.len(), m.sources.len()))
}

/// Print what [`check`] found.
pub fn print(
    out: &mut impl std::io::Write,
    dir: &Path,
    (problems, files, sources): &(Vec<Problem>, usize, usize),
    format: crate::cli::Format,
    look: &Look,
) -> Result<()> {
    match format {
        crate::cli::Format::Json => {
            for p in problems {
                writeln!(out, "{}", escape::json(serde_json::to_string(p)?))?;
            }
        }
        crate::cli::Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(["problem", "subject", "detail"])?;
            for p in problems {
                w.write_record([p.kind, &escape::csv(&p.subject), &escape::csv(&p.detail)])?;
            }
            w.flush()?;
        }
        crate::cli::Format::Table => {
            if !problems.is_empty() {
                let rows = problems
                    .iter()
                    .map(|p| {
                        vec![
                            Styled::toned(p.kind.to_uppercase(), Tone::Alert),
                            escape::cell(&p.subject).into(),
                            escape::cell(&p.detail).into(),
                        ]
                    })
                    .collect();
                out.write_all(
                    look.table(&["PROBLEM", "SUBJECT", "DETAIL"], rows)
                        .as_bytes(),
                )?;
                writeln!(out)?;
            }
            writeln!(
                out,
                "bundle {}: {files} files and {sources} sources checked, the ledger head against the index: {}",
                escape::visible(&dir.display().to_string()),
                if problems.is_empty() {
                    "everything matches".to_string()
                } else {
                    format!("{} problems", problems.len())
                }
            )?;
        }
    }
    Ok(())
}
