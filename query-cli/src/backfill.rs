//! `ssm-audit backfill`: the records the Lambda would have written for sources that were there
//! before it was deployed. Each source goes through the Lambda's own pipeline
//! (`ingest_lambda::pipeline`), keyed as the Lambda keys it: an S3 object by its URL and version
//! (or ETag), a streamed session by its group and stream. So the records, state and quarantine
//! under `--to` are what the Lambda writes for the same objects, and a later event for one of
//! them is a duplicate to it.
//!
//! Sources are read many at a time (`--concurrency`); sessions are rebuilt once, when every
//! source is in, rather than after each source as the Lambda must.

use crate::cli::BackfillArgs;
use crate::output;
use crate::sources::Local;
use anyhow::{bail, Context, Result};
use aws_adapters::objects::{self, DirStore, ObjectStore, S3Store};
use ingest_lambda::pipeline::{ApiKeys, Done, Output, Pipeline, StreamEvent};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// One source to take through the pipeline.
enum Job {
    /// An object (or one version of it) of a bucket or a folder.
    Object {
        store: Arc<dyn ObjectStore>,
        key: String,
        version: Option<String>,
        etag: Option<String>,
    },
    /// One stream of a log group: its events are read when the job runs.
    Stream {
        client: aws_adapters::cloudwatch::Client,
        group: String,
        stream: String,
        since_ms: Option<i64>,
    },
    /// A location that could not be listed, or a folder entry that cannot be read.
    Unlisted { name: String, why: String },
    /// A folder entry that is not a regular file (a FIFO, a socket, a device): not opened.
    Skipped { name: String, why: String },
}

impl Job {
    fn name(&self) -> String {
        match self {
            Job::Object { store, key, .. } => store.url(key),
            Job::Stream { group, stream, .. } => format!("cloudwatch://{group}/{stream}"),
            Job::Unlisted { name, .. } | Job::Skipped { name, .. } => name.clone(),
        }
    }
}

/// What became of one job, for the summary.
enum Outcome {
    Done(Done),
    Failed(String),
}

/// Run a backfill: every source it names into its `--to`; streams from `since_ms` on.
pub fn run(args: &BackfillArgs, since_ms: Option<i64>) -> Result<ExitCode> {
    // The replay holds what is not `Send`: the jobs are interleaved on one thread, which waits
    // on many requests at once.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio::task::LocalSet::new().block_on(&rt, backfill(args, since_ms))
}

async fn backfill(args: &BackfillArgs, since_ms: Option<i64>) -> Result<ExitCode> {
    let (locations, to, quiet) = (&args.sources, args.to.as_str(), args.quiet);
    let concurrency = usize::from(args.concurrency).max(1);
    let s3 = objects::s3_client().await;
    let out = output_of(to, &s3)?;
    let where_to = to.trim_end_matches('/').to_string();
    // The Lambda's pipeline as `deps_from_env` makes it: names from EC2, digests checked with
    // the CloudTrail API's keys.
    let pipeline = Pipeline::new(out)
        .with_ec2(Arc::new(aws_adapters::ec2::Ec2Names::from_env().await))
        .with_cloudtrail(Arc::new(ApiKeys::new(
            aws_adapters::cloudtrail::client().await,
        )))
        .deferring();
    let mut progress = Progress::new(quiet);

    let mut jobs = Vec::new();
    let mut logs: Option<aws_adapters::cloudwatch::Client> = None;
    for location in locations {
        progress.message(&format!("listing {location}"));
        match list(location, &s3, &mut logs, since_ms).await {
            Ok(found) => jobs.extend(found),
            Err(why) => jobs.push(Job::Unlisted {
                name: location.clone(),
                why,
            }),
        }
    }
    let total = jobs.len();
    progress.start(total as u64, "sources");

    // Many at a time, at most `concurrency`: each job holds one source (a session log streams
    // through; other objects are small), so memory stays flat however many are listed.
    let mut results: Vec<(String, Outcome)> = Vec::with_capacity(total);
    let p = pipeline.clone();
    each_at_most(
        jobs,
        concurrency,
        move |job| {
            let p = p.clone();
            async move {
                let name = job.name();
                let outcome = take(&p, job).await;
                (name, outcome)
            }
        },
        |(name, outcome)| {
            match &outcome {
                Outcome::Failed(why) => progress.say(&format!(
                    "{}: {}",
                    output::visible(&name),
                    output::visible(why)
                )),
                Outcome::Done(Done::Quarantined(why)) => progress.say(&format!(
                    "{}: quarantined: {}",
                    output::visible(&name),
                    output::visible(why)
                )),
                Outcome::Done(_) => {}
            }
            progress.inc();
            results.push((name, outcome));
        },
    )
    .await?;
    progress.finish();

    // Every session once, from all its facts: the records the Lambda's last rebuild leaves.
    let sessions = pipeline.deferred_sessions();
    progress.start(sessions.len() as u64, "sessions");
    let mut written = 0usize;
    let mut failed_sessions = Vec::new();
    let p = pipeline.clone();
    each_at_most(
        sessions,
        concurrency,
        move |sid| {
            let p = p.clone();
            async move {
                let r = p.rebuild_now(&sid).await;
                (sid, r)
            }
        },
        |(sid, r)| {
            match r {
                Ok(true) => written += 1,
                Ok(false) => {}
                Err(e) => {
                    progress.say(&format!(
                        "session {}: not rebuilt: {}",
                        output::visible(&sid),
                        output::visible(&e.to_string())
                    ));
                    failed_sessions.push(sid);
                }
            }
            progress.inc();
        },
    )
    .await?;
    progress.finish();

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failed = 0;
    for (_, o) in &results {
        let what = match o {
            Outcome::Done(Done::Ingested { .. }) => "read",
            Outcome::Done(Done::Duplicate) => "already read",
            Outcome::Done(Done::Skipped(_)) => "skipped",
            Outcome::Done(Done::Quarantined(_)) => "quarantined",
            Outcome::Failed(_) => {
                failed += 1;
                "failed"
            }
        };
        *counts.entry(what).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let summary = format!(
        "backfill: {total} source{} ({}); records of {written} session{} written under {}/sessions/",
        if total == 1 { "" } else { "s" },
        parts.join(", "),
        if written == 1 { "" } else { "s" },
        output::visible(&where_to),
    );
    progress.say(&summary);
    if failed > 0 || !failed_sessions.is_empty() {
        progress.say(&format!(
            "backfill: {failed} source{} and {} session{} failed (listed above); run the same backfill again: what was done is kept and not done twice",
            if failed == 1 { "" } else { "s" },
            failed_sessions.len(),
            if failed_sessions.len() == 1 { "" } else { "s" },
        ));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `work` on every item, at most `n` at once on this thread (the pipeline's futures are
/// not `Send`), handing each answer to `done` as it comes.
async fn each_at_most<T, R, Fut>(
    items: Vec<T>,
    n: usize,
    work: impl Fn(T) -> Fut,
    mut done: impl FnMut(R),
) -> Result<()>
where
    Fut: std::future::Future<Output = R> + 'static,
    R: 'static,
{
    let mut running = tokio::task::JoinSet::new();
    let mut pending = items.into_iter();
    loop {
        while running.len() < n {
            let Some(item) = pending.next() else { break };
            running.spawn_local(work(item));
        }
        let Some(joined) = running.join_next().await else {
            return Ok(());
        };
        done(joined.context("a backfill task failed")?);
    }
}

/// The output location: `s3://bucket/prefix`, or a folder standing for the bucket.
fn output_of(to: &str, s3: &objects::S3Client) -> Result<Output> {
    if to.starts_with("s3://") {
        let Some((bucket, prefix)) = aws_adapters::parse_s3_url(to) else {
            bail!("--to {to}: not s3://bucket/prefix");
        };
        return Ok(Output {
            store: Arc::new(S3Store::new(s3.clone(), &bucket)),
            prefix: prefix.trim_end_matches('/').to_string(),
        });
    }
    if to.contains("://") {
        bail!("--to {to}: the Lambda's output is s3://bucket/prefix (or a folder)");
    }
    std::fs::create_dir_all(to).with_context(|| format!("--to {to}"))?;
    Ok(Output {
        store: Arc::new(DirStore::new(Path::new(to))),
        prefix: String::new(),
    })
}

/// The jobs under one location.
async fn list(
    location: &str,
    s3: &objects::S3Client,
    logs: &mut Option<aws_adapters::cloudwatch::Client>,
    since_ms: Option<i64>,
) -> Result<Vec<Job>, String> {
    if location.starts_with("s3://") {
        let (bucket, prefix) = aws_adapters::parse_s3_url(location)
            .ok_or_else(|| "not s3://bucket/prefix".to_string())?;
        let store = S3Store::new(s3.clone(), &bucket);
        // Every version, as the Lambda was told of each when it was written.
        let found = match store.list_versions(&prefix).await {
            Ok(v) => v,
            Err(_) => store
                .list(&prefix)
                .await
                .map_err(|e| format!("listing: {e}"))?,
        };
        let store: Arc<dyn ObjectStore> = Arc::new(store);
        return Ok(found
            .into_iter()
            .map(|o| Job::Object {
                store: store.clone(),
                key: o.key,
                version: o.version_id,
                etag: o.etag,
            })
            .collect());
    }
    if let Some(path) = location.strip_prefix("cloudwatch://") {
        if path.is_empty() {
            return Err("no log group".into());
        }
        if logs.is_none() {
            *logs = Some(aws_adapters::cloudwatch::client().await);
        }
        let client = logs.clone().expect("made above");
        let (group, prefix) = aws_adapters::cloudwatch::resolve_group(&client, path).await?;
        let streams =
            aws_adapters::cloudwatch::list_streams(&client, &group, prefix.as_deref(), since_ms)
                .await?;
        return Ok(streams
            .into_iter()
            .map(|stream| Job::Stream {
                client: client.clone(),
                group: group.clone(),
                stream,
                since_ms,
            })
            .collect());
    }
    // A folder stands for a bucket, keys relative to it; a file, for its folder's.
    let path = Path::new(location);
    let root = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    let store: Arc<dyn ObjectStore> = Arc::new(DirStore::new(root));
    Ok(crate::sources::files(path)?
        .into_iter()
        .map(|l| match l {
            Local::File(p) => Job::Object {
                store: store.clone(),
                key: p
                    .strip_prefix(root)
                    .map(|k| k.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default(),
                version: None,
                etag: None,
            },
            Local::Failed { name, why } => Job::Unlisted { name, why },
            Local::Skipped { name, why } => Job::Skipped { name, why },
        })
        .collect())
}

/// Take one job through the pipeline.
async fn take(p: &Pipeline, job: Job) -> Outcome {
    let r = match job {
        Job::Object {
            store,
            key,
            version,
            etag,
        } => {
            p.object(store.as_ref(), &key, version.as_deref(), etag.as_deref())
                .await
        }
        Job::Stream {
            client,
            group,
            stream,
            since_ms,
        } => {
            let events =
                match aws_adapters::cloudwatch::stream_events(&client, &group, &stream, since_ms)
                    .await
                {
                    Ok(e) if e.is_empty() => {
                        return Outcome::Done(Done::Skipped("no events in the time asked".into()))
                    }
                    Ok(e) => e,
                    Err(why) => return Outcome::Failed(why),
                };
            // One delivery of the whole stream: the records are the same however the Lambda
            // was delivered the events, since a stream is read whole at each delivery.
            let events = events
                .into_iter()
                .enumerate()
                .map(|(i, e)| StreamEvent {
                    id: e.event_id.unwrap_or_else(|| format!("{i:020}")),
                    timestamp: e.timestamp,
                    message: e.message,
                })
                .collect();
            p.log_events(&group, &stream, events).await
        }
        Job::Unlisted { why, .. } => return Outcome::Failed(why),
        Job::Skipped { why, .. } => return Outcome::Done(Done::Skipped(why)),
    };
    match r {
        Ok(done) => Outcome::Done(done),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Progress on a terminal, and lines that must be seen either way.
struct Progress {
    /// Whether to show bars: stderr is a terminal and not --quiet.
    on: bool,
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let on = !quiet && std::io::stderr().is_terminal();
        let bar = on.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        Progress { on, bar, quiet }
    }

    fn message(&self, m: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(output::visible(m));
        }
    }

    /// A new stage of `len` steps.
    fn start(&mut self, len: u64, what: &str) {
        if let Some(old) = self.bar.take() {
            old.finish_and_clear();
        }
        if !self.on {
            return;
        }
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{{bar:30}} {{pos}}/{{len}} {what}, {{per_sec}}, {{eta}} left"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        self.bar = Some(bar);
    }

    fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// A line on stderr: failures and quarantines always; the summary unless --quiet.
    fn say(&self, line: &str) {
        if self.quiet && line.starts_with("backfill: ") && !line.contains("failed") {
            return;
        }
        let write = || {
            let _ = writeln!(std::io::stderr(), "ssm-audit: {line}");
        };
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}
