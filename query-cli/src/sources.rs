//! Every source given to `ingest`, as one stream of objects: the files under local paths, the
//! objects under `s3://bucket/prefix`, the streamed sessions under `cloudwatch://group[/prefix]`.
//! A location written `records:LOCATION` holds command records derived elsewhere (the Lambda's
//! output): only those are read as records, never a file found among sources.
//!
//! The locations are listed first, in the order given, so that the stream knows how many
//! sources it holds; each file and S3 object is read only when it is taken. A location that
//! cannot be listed is one failed source naming it, and the others are still read.
//!
//! An S3 object written more than once is as many sources as it has versions: a session log
//! overwritten in the bucket is then two transcripts of the session, which its records show as
//! a conflict, rather than the newest bytes read as if they were the only ones.

use aws_adapters::objects::{self, ObjectStore, S3Store};
use indexer::ingest::Provenance;
use indexer::model::SourceObject;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// One source: its name (a path or URL), what it is taken for, and its bytes, or why they
/// could not be had.
pub struct Source {
    pub name: String,
    pub provenance: Provenance,
    pub object: Result<SourceObject, Unread>,
}

/// Why a source was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unread {
    /// It could not be: a location that does not list, a broken or looping link, an error.
    Failed(String),
    /// It is not a regular file (a FIFO, a socket, a device): not opened.
    Skipped(String),
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::Failed(why) | Unread::Skipped(why) => f.write_str(why),
        }
    }
}

/// The prefix of a location of command records.
pub const RECORDS: &str = "records:";

/// A source as listed, not yet read.
enum Listed {
    File(PathBuf),
    S3 {
        store: S3Store,
        key: String,
        /// The version to read, when the key has several; else the current one.
        version: Option<String>,
        /// Its size as listed, for the budget of reads in flight.
        size: u64,
    },
    /// One stream of a log group, its events read when it is taken (or ahead).
    Stream {
        client: aws_adapters::cloudwatch::Client,
        group: String,
        stream: String,
        since_ms: Option<i64>,
    },
    /// A location that could not be listed, or an entry of a folder that cannot be read.
    Failed {
        name: String,
        why: String,
    },
    /// An entry of a folder that is not a regular file.
    Skipped {
        name: String,
        why: String,
    },
}

/// S3 objects read ahead of the one being taken, at most: requests in flight at once.
const READ_AHEAD: usize = 32;
/// And at most this many bytes of them held (one larger object is still read, alone).
const READ_AHEAD_BYTES: u64 = 256 << 20;

/// A source taken off the listing: an S3 read under way, or anything else, to read when taken.
enum Ahead {
    Reading {
        name: String,
        size: u64,
        read: tokio::task::JoinHandle<Result<SourceObject, Unread>>,
    },
    Later(Listed),
}

/// The sources under every location, in order.
pub struct Sources {
    listed: VecDeque<(Listed, Provenance)>,
    /// Taken off `listed`, in the same order: S3 objects are read many at a time, ahead of the
    /// one being ingested, so that a slow round trip per request is paid once per
    /// [`READ_AHEAD`] objects, not once per object.
    ahead: VecDeque<(Ahead, Provenance)>,
    /// Bytes of the reads in `ahead`.
    ahead_bytes: u64,
    total: usize,
    /// What a person should know about the listing (one line each).
    warnings: Vec<String>,
    /// Made on first use: local paths need none.
    rt: Option<tokio::runtime::Runtime>,
}

impl Sources {
    /// List the sources under `locations` (paths, `s3://` and `cloudwatch://` URLs); streams
    /// from `since_ms` on. `listing` is told each location before it is listed.
    pub fn list(
        locations: &[String],
        since_ms: Option<i64>,
        listing: &mut dyn FnMut(&str),
    ) -> Sources {
        let mut sources = Sources {
            listed: VecDeque::new(),
            ahead: VecDeque::new(),
            ahead_bytes: 0,
            total: 0,
            warnings: Vec::new(),
            rt: None,
        };
        let mut s3: Option<objects::S3Client> = None;
        let mut logs: Option<aws_adapters::cloudwatch::Client> = None;
        for given in locations {
            listing(given);
            let (location, provenance) = match given.strip_prefix(RECORDS) {
                Some(rest) => (rest, Provenance::Records),
                None => (given.as_str(), Provenance::Sources),
            };
            let listed = if location.starts_with("s3://") {
                sources.list_s3(location, &mut s3)
            } else if let Some(path) = location.strip_prefix("cloudwatch://") {
                sources.list_streams(path, since_ms, &mut logs)
            } else {
                list_files(Path::new(location))
            };
            match listed {
                Ok(found) => sources
                    .listed
                    .extend(found.into_iter().map(|l| (l, provenance))),
                Err(why) => sources.listed.push_back((
                    Listed::Failed {
                        name: given.clone(),
                        why,
                    },
                    provenance,
                )),
            }
        }
        sources.total = sources.listed.len();
        sources
    }

    /// How many sources were listed (a location that could not be listed counts as one).
    pub fn total(&self) -> usize {
        self.total
    }

    /// What a person should know about the listing, one line each: a bucket whose versions
    /// could not be listed (only each object's current version is read).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn rt(&mut self) -> Result<&tokio::runtime::Runtime, String> {
        if self.rt.is_none() {
            // A thread of its own: the reads ahead go on while a source is being ingested.
            self.rt = Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .map_err(|e| format!("starting the async runtime: {e}"))?,
            );
        }
        Ok(self.rt.as_ref().expect("made above"))
    }

    fn list_s3(
        &mut self,
        url: &str,
        client: &mut Option<objects::S3Client>,
    ) -> Result<Vec<Listed>, String> {
        let (bucket, prefix) =
            aws_adapters::parse_s3_url(url).ok_or_else(|| "not s3://bucket/prefix".to_string())?;
        let rt = self.rt()?;
        let client = client
            .get_or_insert_with(|| rt.block_on(objects::s3_client()))
            .clone();
        let store = S3Store::new(client, &bucket);
        let found = match rt.block_on(store.list_versions(&prefix)) {
            Ok(found) => found,
            Err(versions) => {
                let current = rt
                    .block_on(store.list(&prefix))
                    .map_err(|e| format!("listing: {e}"))?;
                self.warnings.push(format!(
                    "{url}: its object versions cannot be listed ({versions}): only each \
                     object's current version is read, so an object written over shows no \
                     earlier version"
                ));
                current
            }
        };
        let mut versions: std::collections::HashMap<&str, usize> = Default::default();
        for o in &found {
            *versions.entry(o.key.as_str()).or_default() += 1;
        }
        // A key of one version is read as it is now (its version id comes with it).
        let several: std::collections::HashSet<String> = versions
            .into_iter()
            .filter(|&(_, n)| n > 1)
            .map(|(k, _)| k.to_string())
            .collect();
        Ok(found
            .into_iter()
            .map(|o| Listed::S3 {
                store: store.clone(),
                version: o.version_id.filter(|_| several.contains(&o.key)),
                key: o.key,
                size: o.size,
            })
            .collect())
    }

    /// Streamed sessions since `since_ms`, one `filter-log-events` document per session.
    /// Group names may hold `/`: the longest leading part that names an existing group is
    /// the group.
    fn list_streams(
        &mut self,
        path: &str,
        since_ms: Option<i64>,
        client: &mut Option<aws_adapters::cloudwatch::Client>,
    ) -> Result<Vec<Listed>, String> {
        if path.is_empty() {
            return Err("no log group".into());
        }
        let rt = self.rt()?;
        let client = client
            .get_or_insert_with(|| rt.block_on(aws_adapters::cloudwatch::client()))
            .clone();
        let (group, prefix) =
            rt.block_on(aws_adapters::cloudwatch::resolve_group(&client, path))?;
        // The streams only: each one's events are read when it is taken, one stream in memory
        // at a time (a few ahead), never the whole group.
        let streams = rt.block_on(aws_adapters::cloudwatch::list_streams(
            &client,
            &group,
            prefix.as_deref(),
            since_ms,
        ))?;
        Ok(streams
            .into_iter()
            .map(|stream| Listed::Stream {
                client: client.clone(),
                group: group.clone(),
                stream,
                since_ms,
            })
            .collect())
    }

    fn read(&mut self, listed: Listed, provenance: Provenance) -> Source {
        let (name, object) = match listed {
            Listed::File(path) => {
                let name = indexer::files::name_of(&path);
                let written = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .map(objects::written);
                // Read only as a regular file: what was listed may have been replaced since.
                let object = indexer::files::read_regular(&path, None)
                    .map(|bytes| SourceObject {
                        name: name.clone(),
                        version_id: None,
                        bytes,
                        written,
                        metadata: Default::default(),
                    })
                    .map_err(|e| match e {
                        indexer::files::ReadError::NotRegular(_) => Unread::Skipped(e.to_string()),
                        e => Unread::Failed(e.to_string()),
                    });
                (name, object)
            }
            // Read from AWS through the one path that reads them ahead.
            remote @ (Listed::S3 { .. } | Listed::Stream { .. }) => {
                let ahead = self.start(remote);
                return self.finish(ahead, provenance);
            }
            Listed::Failed { name, why } => (name, Err(Unread::Failed(why))),
            Listed::Skipped { name, why } => (name, Err(Unread::Skipped(why))),
        };
        Source {
            name,
            provenance,
            object,
        }
    }
}

impl Sources {
    /// Start reading S3 objects ahead, in listing order, while fewer than [`READ_AHEAD`] are
    /// under way and their sizes fit [`READ_AHEAD_BYTES`] (one is always allowed).
    fn read_ahead(&mut self) {
        while self.ahead.len() < READ_AHEAD {
            let fits = match self.listed.front() {
                None => break,
                Some((Listed::S3 { size, .. }, _)) => {
                    self.ahead.is_empty() || self.ahead_bytes + size <= READ_AHEAD_BYTES
                }
                Some(_) => true,
            };
            if !fits {
                break;
            }
            let (listed, provenance) = self.listed.pop_front().expect("looked at above");
            let ahead = self.start(listed);
            self.ahead.push_back((ahead, provenance));
        }
    }

    /// Start reading a source from S3 or CloudWatch Logs on the runtime's thread; anything
    /// else is read when it is taken.
    fn start(&mut self, listed: Listed) -> Ahead {
        type Read = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<SourceObject, Unread>> + Send>,
        >;
        let (name, size, read): (String, u64, Read) = match listed {
            Listed::S3 {
                store,
                key,
                version,
                size,
            } => (
                store.url(&key),
                size,
                Box::pin(read_s3(store, key, version)),
            ),
            Listed::Stream {
                client,
                group,
                stream,
                since_ms,
            } => (
                format!("cloudwatch://{group}/{stream}"),
                0,
                Box::pin(read_stream(client, group, stream, since_ms)),
            ),
            other => return Ahead::Later(other),
        };
        match self.rt() {
            Ok(rt) => {
                let read = rt.spawn(read);
                self.ahead_bytes += size;
                Ahead::Reading { name, size, read }
            }
            Err(why) => Ahead::Later(Listed::Failed { name, why }),
        }
    }

    /// The source of what was started (or left for later): its read awaited, or done now.
    fn finish(&mut self, ahead: Ahead, provenance: Provenance) -> Source {
        match ahead {
            Ahead::Later(listed) => self.read(listed, provenance),
            Ahead::Reading { name, size, read } => {
                self.ahead_bytes -= size;
                let object = match self.rt() {
                    Ok(rt) => match rt.block_on(read) {
                        Ok(r) => r,
                        Err(e) => Err(Unread::Failed(format!("reading: {e}"))),
                    },
                    Err(why) => Err(Unread::Failed(why)),
                };
                Source {
                    name,
                    provenance,
                    object,
                }
            }
        }
    }
}

/// Read one S3 object (at a version), as a source.
async fn read_s3(
    store: S3Store,
    key: String,
    version: Option<String>,
) -> Result<SourceObject, Unread> {
    let name = store.url(&key);
    let o = store
        .read_versioned(&key, version.as_deref())
        .await
        .map_err(|e| Unread::Failed(e.to_string()))?;
    Ok(SourceObject {
        name,
        version_id: o.version_id,
        bytes: o.bytes,
        written: o.written,
        metadata: o.metadata,
    })
}

/// One stream's events since `since_ms`, as its canonical document (the bytes a
/// `filter-log-events` file of the same events holds).
async fn read_stream(
    client: aws_adapters::cloudwatch::Client,
    group: String,
    stream: String,
    since_ms: Option<i64>,
) -> Result<SourceObject, Unread> {
    let events = aws_adapters::cloudwatch::stream_events(&client, &group, &stream, since_ms)
        .await
        .map_err(Unread::Failed)?;
    if events.is_empty() {
        return Err(Unread::Skipped(
            "the stream has no events in the time asked".into(),
        ));
    }
    Ok(SourceObject {
        name: format!("cloudwatch://{group}/{stream}"),
        version_id: None,
        bytes: indexer::formats::stream_document(&events).0,
        written: None,
        metadata: Default::default(),
    })
}

impl Iterator for Sources {
    type Item = Source;

    fn next(&mut self) -> Option<Source> {
        self.read_ahead();
        let (ahead, provenance) = self.ahead.pop_front()?;
        let source = self.finish(ahead, provenance);
        // Keep the reads going while this source is ingested.
        self.read_ahead();
        Some(source)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.listed.len() + self.ahead.len();
        (n, Some(n))
    }
}

/// Everything under `path`, in name order: every regular file, dotfiles and dot-folders
/// included, symbolic links followed (a loop is detected); and each entry that is not read,
/// with why: a FIFO, socket or device is skipped (never opened), a broken or looping link and
/// an unreadable folder fail.
fn list_files(path: &Path) -> Result<Vec<Listed>, String> {
    Ok(files(path)?
        .into_iter()
        .map(|l| match l {
            Local::File(path) => Listed::File(path),
            Local::Failed { name, why } => Listed::Failed { name, why },
            Local::Skipped { name, why } => Listed::Skipped { name, why },
        })
        .collect())
}

/// An entry under a local path: a regular file to read, or why it is not read.
pub enum Local {
    File(PathBuf),
    /// A broken or looping link, an unreadable folder.
    Failed {
        name: String,
        why: String,
    },
    /// A FIFO, socket or device: never opened.
    Skipped {
        name: String,
        why: String,
    },
}

/// What [`list_files`] lists, for whoever reads local paths (`ingest`, `backfill`).
pub fn files(path: &Path) -> Result<Vec<Local>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Ok(vec![entry(path.to_path_buf(), meta.file_type())]);
    }
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(path)
        .follow_links(true)
        .sort_by_file_name()
    {
        match e {
            Ok(e) if e.file_type().is_dir() => {}
            Ok(e) => {
                let ft = e.file_type();
                out.push(entry(e.into_path(), ft));
            }
            Err(e) => out.push(Local::Failed {
                name: indexer::files::name_of(e.path().unwrap_or(path)),
                why: walk_error(&e),
            }),
        }
    }
    Ok(out)
}

/// A folder entry: a regular file to read, or what it is instead.
fn entry(path: PathBuf, ft: std::fs::FileType) -> Local {
    match indexer::files::special(ft) {
        None => Local::File(path),
        Some(what) => Local::Skipped {
            name: indexer::files::name_of(&path),
            why: format!("a {what}, not a regular file: not opened"),
        },
    }
}

/// Why a folder walk could not go on at an entry, in words.
fn walk_error(e: &walkdir::Error) -> String {
    if let Some(back) = e.loop_ancestor() {
        return format!(
            "a symbolic link loop (back to {}): not followed",
            back.display()
        );
    }
    if let Some(p) = e.path() {
        if let (Ok(link), Err(_)) = (std::fs::read_link(p), std::fs::metadata(p)) {
            return format!(
                "a broken symbolic link (to {}): nothing to read",
                link.display()
            );
        }
    }
    match e.io_error() {
        Some(io) => io.to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sources: Sources) -> Vec<(String, Result<usize, String>)> {
        sources
            .map(|s| {
                (
                    s.name,
                    s.object.map(|o| o.bytes.len()).map_err(|e| e.to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn files_in_order_hidden_ones_too_and_a_missing_path_is_one_failed_source() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        std::fs::create_dir_all(root.join("b/c")).expect("mkdir");
        std::fs::create_dir_all(root.join(".hidden")).expect("mkdir");
        std::fs::write(root.join("b/c/z.log"), b"zz").expect("write");
        std::fs::write(root.join("b/a.log"), b"a").expect("write");
        std::fs::write(root.join(".hidden/x.log"), b"x").expect("write");
        std::fs::write(root.join(".dot.log"), b"d").expect("write");
        let single = root.join("single.json");
        std::fs::write(&single, b"{}").expect("write");
        let missing = root.join("missing");
        let locations: Vec<String> = [root.to_path_buf(), missing.clone(), single.clone()]
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut told = Vec::new();
        let sources = Sources::list(&locations, None, &mut |l| told.push(l.to_string()));
        assert_eq!(
            told, locations,
            "each location is announced before it is listed"
        );
        assert_eq!(sources.total(), 7);
        let got = names(sources);
        let path = |p: PathBuf| p.display().to_string();
        assert_eq!(got[0], (path(root.join(".dot.log")), Ok(1)));
        assert_eq!(got[1], (path(root.join(".hidden/x.log")), Ok(1)));
        assert_eq!(got[2], (path(root.join("b/a.log")), Ok(1)));
        assert_eq!(got[3], (path(root.join("b/c/z.log")), Ok(2)));
        assert_eq!(got[4], (path(root.join("single.json")), Ok(2)));
        assert_eq!(got[5].0, path(missing));
        assert!(
            got[5].1.as_ref().is_err_and(|e| e.contains("No such file")),
            "{:?}",
            got[5]
        );
        assert_eq!(got[6], (path(single), Ok(2)));
    }

    #[test]
    fn a_file_that_vanishes_after_listing_fails_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for f in ["a.log", "b.log", "c.log"] {
            std::fs::write(tmp.path().join(f), f.as_bytes()).expect("write");
        }
        let mut sources = Sources::list(&[tmp.path().display().to_string()], None, &mut |_| {});
        std::fs::remove_file(tmp.path().join("b.log")).expect("remove");
        let first = sources.next().expect("a");
        assert!(first.object.is_ok());
        let second = sources.next().expect("b");
        assert!(second.name.ends_with("b.log") && second.object.is_err());
        let third = sources.next().expect("c");
        assert_eq!(third.object.expect("c is read").bytes, b"c.log");
        assert!(sources.next().is_none());
    }

    #[test]
    fn records_locations_are_marked_and_named_as_given() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("r.jsonl"), b"{}").expect("write");
        let dir = tmp.path().display().to_string();
        let sources = Sources::list(
            &[
                format!("records:{dir}"),
                dir.clone(),
                "records:/no/such".into(),
            ],
            None,
            &mut |_| {},
        );
        let got: Vec<(String, Provenance, bool)> = sources
            .map(|s| (s.name, s.provenance, s.object.is_ok()))
            .collect();
        let file = tmp.path().join("r.jsonl").display().to_string();
        assert_eq!(
            got,
            [
                (file.clone(), Provenance::Records, true),
                (file, Provenance::Sources, true),
                ("records:/no/such".into(), Provenance::Records, false),
            ]
        );
    }

    #[test]
    fn a_bad_url_is_one_failed_source() {
        let sources = Sources::list(
            &["s3://".to_string(), "cloudwatch://".to_string()],
            None,
            &mut |_| {},
        );
        let got = names(sources);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            ("s3://".into(), Err("not s3://bucket/prefix".into()))
        );
        assert_eq!(got[1], ("cloudwatch://".into(), Err("no log group".into())));
    }
}
