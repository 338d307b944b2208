//! The Lambda handler: S3 `ObjectCreated` events and CloudWatch Logs subscription events.

use crate::error::Error;
use crate::pipeline::{Done, Pipeline, StreamEvent};
use aws_adapters::events::{self, Decoded};
use aws_adapters::objects::ObjectStore;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// Opens the bucket an event names.
pub type Buckets = Arc<dyn Fn(&str) -> Arc<dyn ObjectStore> + Send + Sync>;

/// What the handler needs, built once at start-up.
#[derive(Clone)]
pub struct Deps {
    /// The source buckets.
    pub buckets: Buckets,
    /// The engine and its output location.
    pub pipeline: Pipeline,
    /// A tantivy index to commit into as well (`SSM_AUDIT_INDEX_DIR`).
    pub index_dir: Option<PathBuf>,
    /// Where that index's ledger heads are anchored (`SSM_AUDIT_ANCHOR`).
    pub anchor: Option<Anchor>,
}

/// Where the index's ledger heads are anchored after each commit, as `ingest --anchor` does.
#[derive(Clone)]
pub struct Anchor {
    /// The S3 client that writes them.
    pub client: aws_adapters::objects::S3Client,
    /// `s3://bucket/prefix` (`SSM_AUDIT_ANCHOR`).
    pub url: String,
    /// Days of Object Lock retention for each head (`SSM_AUDIT_ANCHOR_RETAIN_DAYS`).
    pub retain_days: Option<u32>,
    /// The KMS key that signs each head (`SSM_AUDIT_ANCHOR_SIGN_KEY`), and the client that
    /// asks KMS to.
    pub sign_key: Option<(String, aws_adapters::anchor::KmsClient)>,
}

/// The invocation failed in a way worth retrying; everything done so far is idempotent.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} sources failed transiently (the invocation will be retried): {first}")]
pub struct Retry {
    /// How many failed.
    pub failed: usize,
    /// How many there were.
    pub total: usize,
    /// The first failure.
    pub first: String,
}

/// Handle one event. Permanent failures are quarantined and reported in the response;
/// transient ones fail the invocation after the whole batch was tried.
pub async fn handle(event: Value, deps: &Deps) -> Result<Value, Retry> {
    let mut results: Vec<(String, Result<Done, Error>)> = Vec::new();
    match events::decode(&event) {
        Decoded::TestEvent => {
            tracing::info!("acknowledged s3:TestEvent");
            return Ok(json!({"ignored": "s3:TestEvent"}));
        }
        Decoded::Control { name } => {
            tracing::info!(source = name, "skipped CloudWatch Logs control message");
            return Ok(json!({"ignored": "CONTROL_MESSAGE"}));
        }
        Decoded::Logs {
            group,
            stream,
            events,
        } => {
            let name = format!("cloudwatch://{group}/{stream}");
            let events = events
                .into_iter()
                .map(|e| StreamEvent {
                    id: e.id,
                    timestamp: e.timestamp,
                    message: e.message,
                })
                .collect();
            let r = deps.pipeline.log_events(&group, &stream, events).await;
            results.push((name, r));
        }
        Decoded::Trail { name } => {
            let r = deps
                .pipeline
                .event_object(&name, event.to_string().into_bytes())
                .await;
            results.push((name, r));
        }
        Decoded::Batch {
            schema,
            invocation_id,
            tasks,
        } => return Ok(batch(&schema, &invocation_id, tasks, deps).await),
        Decoded::BadLogs(reason) => {
            results.push((
                "CloudWatch Logs event".into(),
                Err(Error::BadSource(reason)),
            ));
        }
        Decoded::Unknown(reason) => {
            deps.pipeline
                .quarantine_event(&event, &reason)
                .await
                .map_err(|e| Retry {
                    failed: 1,
                    total: 1,
                    first: e.to_string(),
                })?;
            return Ok(json!({"quarantined": reason}));
        }
        Decoded::Objects { objects, lenient } => {
            if let Some(typed) = lenient {
                tracing::warn!(error = %typed, "S3 event does not match the S3 event schema; reading bucket and key only");
            }
            for o in objects {
                let bucket = o.bucket;
                let Some(key) = o.key else {
                    results.push((
                        format!("s3://{bucket}/?"),
                        Err(Error::BadSource(
                            "event record without an object key".into(),
                        )),
                    ));
                    continue;
                };
                let url = format!("s3://{bucket}/{key}");
                if !o.event_name.starts_with("ObjectCreated:") {
                    tracing::info!(
                        source = url,
                        event = o.event_name,
                        "skipped: not an ObjectCreated event"
                    );
                    continue;
                }
                if bucket.is_empty() {
                    results.push((
                        url,
                        Err(Error::BadSource("event record without a bucket".into())),
                    ));
                    continue;
                }
                let store = (deps.buckets)(&bucket);
                let r = deps
                    .pipeline
                    .object(
                        store.as_ref(),
                        &key,
                        o.version_id.as_deref(),
                        o.etag.as_deref(),
                    )
                    .await;
                results.push((url, r));
            }
        }
    }
    report(results, deps).await
}

/// An S3 Batch Operations invocation: each task's object read as its `ObjectCreated` event
/// would be, and answered on its own (`Succeeded`, `TemporaryFailure` to be retried by the job,
/// `PermanentFailure` for a task naming nothing readable). Bad objects are quarantined and
/// succeed, as they do for events.
async fn batch(
    schema: &str,
    invocation_id: &str,
    tasks: Vec<events::BatchTask>,
    deps: &Deps,
) -> Value {
    let mut results = Vec::new();
    let mut sessions = Vec::new();
    for t in tasks {
        let (code, said) = match (&t.key, t.bucket.is_empty()) {
            (None, _) | (_, true) => (
                "PermanentFailure",
                "the task names no bucket or no key".to_string(),
            ),
            (Some(key), false) => {
                let store = (deps.buckets)(&t.bucket);
                match deps
                    .pipeline
                    .object(store.as_ref(), key, t.version_id.as_deref(), None)
                    .await
                {
                    Ok(done) => {
                        if let Done::Ingested { sessions: s, .. } = &done {
                            sessions.extend(s.iter().cloned());
                        }
                        tracing::info!(source = store.url(key), outcome = ?done, "processed");
                        (
                            "Succeeded",
                            serde_json::to_string(&done).unwrap_or_default(),
                        )
                    }
                    Err(e) if e.retryable() => ("TemporaryFailure", e.to_string()),
                    Err(e) => ("PermanentFailure", e.to_string()),
                }
            }
        };
        results.push(json!({"taskId": t.task_id, "resultCode": code, "resultString": said}));
    }
    if let Err(why) = commit_index(sessions, deps).await {
        // The records are written; the index is retried with the job's next tasks.
        tracing::error!(reason = why, "index not committed");
    }
    json!({
        "invocationSchemaVersion": schema,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": invocation_id,
        "results": results,
    })
}

async fn report(results: Vec<(String, Result<Done, Error>)>, deps: &Deps) -> Result<Value, Retry> {
    let total = results.len();
    let mut out = Vec::new();
    let mut failed = Vec::new();
    let mut sessions = Vec::new();
    for (source, r) in results {
        match r {
            Ok(done) => {
                tracing::info!(source, outcome = ?done, "processed");
                if let Done::Ingested { sessions: s, .. } = &done {
                    sessions.extend(s.iter().cloned());
                }
                out.push(json!({"source": source, "outcome": done}));
            }
            Err(e) if !e.retryable() => {
                // Only reached where the quarantine record could not say it (no source object).
                let reason = e.to_string();
                tracing::error!(source, reason, "rejected");
                out.push(json!({"source": source, "outcome": {"rejected": reason}}));
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(source, reason, "transient failure");
                failed.push(format!("{source}: {reason}"));
            }
        }
    }
    if let Err(why) = commit_index(sessions, deps).await {
        failed.push(why);
    }
    if let Some(first) = failed.first() {
        return Err(Retry {
            failed: failed.len(),
            total,
            first: first.clone(),
        });
    }
    Ok(json!({"results": out}))
}

/// Commit the sessions' records into the index, when the function keeps one (with its anchor).
async fn commit_index(mut sessions: Vec<String>, deps: &Deps) -> Result<(), String> {
    let Some(dir) = deps.index_dir.as_ref().filter(|_| !sessions.is_empty()) else {
        return Ok(());
    };
    sessions.sort();
    sessions.dedup();
    let batch = deps
        .pipeline
        .batch_for(&sessions)
        .await
        .map_err(|e| format!("index: {e}"))?;
    let dir = dir.clone();
    let anchor = deps.anchor.clone();
    let rt = tokio::runtime::Handle::current();
    let r = tokio::task::spawn_blocking(move || {
        indexer::store::Index::open_or_create(&dir)
            .and_then(|i| i.writer())
            .and_then(|mut s| {
                if let Some(a) = anchor {
                    let store = aws_adapters::anchor::S3Anchor::new(
                        a.client,
                        &a.url,
                        a.retain_days,
                        rt.clone(),
                    )
                    .map_err(indexer::error::Error::Anchor)?;
                    let signer = a.sign_key.map(|(key, kms)| {
                        Box::new(aws_adapters::anchor::KmsSigner::new(
                            Some(kms),
                            &key,
                            rt.clone(),
                        )) as Box<dyn indexer::anchor::Signer>
                    });
                    s.anchor_to(Box::new(store), signer)?;
                }
                let changes = s.ingest(batch)?;
                s.finish()?;
                Ok(changes)
            })
    })
    .await;
    match r {
        Ok(Ok(changes)) => {
            tracing::info!(
                sessions = changes.sessions,
                commands = changes.commands,
                "index committed"
            );
            Ok(())
        }
        Ok(Err(e)) => Err(format!("index: {e}")),
        Err(e) => Err(format!("index: {e}")),
    }
}
