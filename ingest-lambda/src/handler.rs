//! The Lambda handler: S3 `ObjectCreated` events and CloudWatch Logs subscription events.

use crate::objects::ObjectStore;
use crate::pipeline::{Done, Failure, Pipeline, StreamEvent};
use aws_lambda_events::cloudwatch_logs::LogsEvent;
use aws_lambda_events::s3::S3Event;
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
    if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        tracing::info!("acknowledged s3:TestEvent");
        return Ok(json!({"ignored": "s3:TestEvent"}));
    }
    let mut results: Vec<(String, Result<Done, Failure>)> = Vec::new();
    if event.get("awslogs").is_some() {
        // The payload's decoder borrows from the text it reads: decode from a string.
        match serde_json::from_str::<LogsEvent>(&event.to_string()) {
            Ok(logs) => {
                let data = logs.aws_logs.data;
                let name = format!("cloudwatch://{}/{}", data.log_group, data.log_stream);
                if data.message_type == "CONTROL_MESSAGE" {
                    tracing::info!(source = name, "skipped CloudWatch Logs control message");
                    return Ok(json!({"ignored": "CONTROL_MESSAGE"}));
                }
                let events = data
                    .log_events
                    .into_iter()
                    .map(|e| StreamEvent {
                        id: e.id,
                        timestamp: e.timestamp,
                        message: e.message,
                    })
                    .collect();
                let r = deps
                    .pipeline
                    .log_events(&data.log_group, &data.log_stream, events)
                    .await;
                results.push((name, r));
            }
            Err(e) => results.push((
                "CloudWatch Logs event".into(),
                Err(Failure::Permanent(format!(
                    "undecodable subscription event: {e}"
                ))),
            )),
        }
    } else {
        let records = match serde_json::from_value::<S3Event>(event.clone()) {
            Ok(e) => e.records,
            Err(typed) => match lenient_records(&event) {
                Some(r) => {
                    tracing::warn!(error = %typed, "S3 event does not match the S3 event schema; reading bucket and key only");
                    r
                }
                None => {
                    let reason = format!("not an S3 or CloudWatch Logs event: {typed}");
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
            },
        };
        for record in records {
            let name = record.event_name.clone().unwrap_or_default();
            let bucket = record.s3.bucket.name.clone().unwrap_or_default();
            let Some(raw_key) = record.s3.object.key.clone() else {
                results.push((
                    format!("s3://{bucket}/?"),
                    Err(Failure::Permanent(
                        "event record without an object key".into(),
                    )),
                ));
                continue;
            };
            let key = indexer::formats::decode_s3_key(&raw_key);
            let url = format!("s3://{bucket}/{key}");
            if !name.starts_with("ObjectCreated:") {
                tracing::info!(
                    source = url,
                    event = name,
                    "skipped: not an ObjectCreated event"
                );
                continue;
            }
            if bucket.is_empty() {
                results.push((
                    url,
                    Err(Failure::Permanent("event record without a bucket".into())),
                ));
                continue;
            }
            let store = (deps.buckets)(&bucket);
            let version = record
                .s3
                .object
                .version_id
                .clone()
                .filter(|v| !v.is_empty() && v != "null");
            let etag = record.s3.object.e_tag.clone();
            let r = deps
                .pipeline
                .object(store.as_ref(), &key, version.as_deref(), etag.as_deref())
                .await;
            results.push((url, r));
        }
    }
    report(results, deps).await
}

/// Records of an S3 event that misses fields the typed schema requires: bucket and key are
/// what matter; a record without them is reported by the caller.
fn lenient_records(event: &Value) -> Option<Vec<aws_lambda_events::s3::S3EventRecord>> {
    let list = event.get("Records")?.as_array()?;
    let mut out = Vec::new();
    for r in list {
        let text = |path: &str| r.pointer(path).and_then(Value::as_str).map(String::from);
        let mut rec = aws_lambda_events::s3::S3EventRecord::default();
        rec.event_name = text("/eventName");
        rec.s3.bucket.name = text("/s3/bucket/name");
        rec.s3.object.key = text("/s3/object/key");
        rec.s3.object.version_id = text("/s3/object/versionId");
        rec.s3.object.e_tag = text("/s3/object/eTag");
        out.push(rec);
    }
    (!out.is_empty()).then_some(out)
}

async fn report(
    results: Vec<(String, Result<Done, Failure>)>,
    deps: &Deps,
) -> Result<Value, Retry> {
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
            Err(Failure::Permanent(reason)) => {
                // Only reached where the quarantine record could not say it (no source object).
                tracing::error!(source, reason, "rejected");
                out.push(json!({"source": source, "outcome": {"rejected": reason}}));
            }
            Err(Failure::Transient(reason)) => {
                tracing::error!(source, reason, "transient failure");
                failed.push(format!("{source}: {reason}"));
            }
        }
    }
    if let (Some(dir), false) = (&deps.index_dir, sessions.is_empty()) {
        sessions.sort();
        sessions.dedup();
        let batch = deps
            .pipeline
            .batch_for(&sessions)
            .await
            .map_err(|e| Retry {
                failed: 1,
                total,
                first: e.to_string(),
            })?;
        let dir = dir.clone();
        let r = tokio::task::spawn_blocking(move || {
            indexer::store::Store::open_or_create(&dir).and_then(|mut s| {
                let changes = s.ingest(batch)?;
                s.finish()?;
                Ok(changes)
            })
        })
        .await;
        match r {
            Ok(Ok(changes)) => tracing::info!(
                sessions = changes.sessions,
                commands = changes.commands,
                "index committed"
            ),
            Ok(Err(e)) => failed.push(format!("index: {e}")),
            Err(e) => failed.push(format!("index: {e}")),
        }
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
