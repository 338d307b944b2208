//! Lambda event decoding: what an S3 notification or a CloudWatch Logs subscription delivery
//! asks for, without any I/O. The Lambda acts on the result; the fuzz targets feed it anything.

use aws_lambda_events::cloudwatch_logs::LogsEvent;
use aws_lambda_events::s3::{S3Event, S3EventRecord};
use serde_json::Value;

/// One object an S3 notification names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// `ObjectCreated:Put`, …
    pub event_name: String,
    /// The bucket (empty when the record lacks it).
    pub bucket: String,
    /// The key, URL-decoded; `None` when the record lacks it.
    pub key: Option<String>,
    /// The version, when the bucket is versioned.
    pub version_id: Option<String>,
    /// The ETag.
    pub etag: Option<String>,
}

/// One log event of a subscription delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// The event id.
    pub id: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The message.
    pub message: String,
}

/// One task of an S3 Batch Operations job: an object to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTask {
    /// The task id, to answer with.
    pub task_id: String,
    /// The bucket (from `s3BucketArn` in schema 1.0, `s3Bucket` in 2.0); empty when missing.
    pub bucket: String,
    /// The key, URL-decoded as Batch Operations sends it encoded; `None` when missing.
    pub key: Option<String>,
    /// The version, when the manifest names one.
    pub version_id: Option<String>,
}

/// What an invocation's event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// S3's `s3:TestEvent`, sent when notifications are configured.
    TestEvent,
    /// A CloudWatch Logs control message (`CONTROL_MESSAGE`), sent when a subscription starts.
    Control {
        /// `cloudwatch://GROUP/STREAM`.
        name: String,
    },
    /// Log events of one stream.
    Logs {
        /// The log group.
        group: String,
        /// The log stream.
        stream: String,
        /// Its events.
        events: Vec<LogEvent>,
    },
    /// Objects an S3 notification names, and whether the record matched the S3 event schema.
    Objects {
        /// The objects.
        objects: Vec<ObjectRef>,
        /// The schema's complaint, when the records were read leniently (bucket and key only).
        lenient: Option<String>,
    },
    /// An EventBridge event wrapping a CloudTrail record ("AWS API Call via CloudTrail"),
    /// delivered to the function by a rule.
    Trail {
        /// `eventbridge://<event id>`.
        name: String,
    },
    /// An S3 Batch Operations invocation ("Invoke AWS Lambda function" operation), for a
    /// backfill run inside AWS: it is answered task by task.
    Batch {
        /// `invocationSchemaVersion`, answered back.
        schema: String,
        /// `invocationId`, answered back.
        invocation_id: String,
        /// The objects.
        tasks: Vec<BatchTask>,
    },
    /// A CloudWatch Logs event whose payload does not decode.
    BadLogs(String),
    /// Neither kind of event.
    Unknown(String),
}

/// Decode an invocation's event.
pub fn decode(event: &Value) -> Decoded {
    if event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Decoded::TestEvent;
    }
    if event.get("awslogs").is_some() {
        // The payload's decoder borrows from the text it reads: decode from a string.
        return match serde_json::from_str::<LogsEvent>(&event.to_string()) {
            Ok(logs) => {
                let data = logs.aws_logs.data;
                if data.message_type == "CONTROL_MESSAGE" {
                    return Decoded::Control {
                        name: format!("cloudwatch://{}/{}", data.log_group, data.log_stream),
                    };
                }
                Decoded::Logs {
                    group: data.log_group,
                    stream: data.log_stream,
                    events: data
                        .log_events
                        .into_iter()
                        .map(|e| LogEvent {
                            id: e.id,
                            timestamp: e.timestamp,
                            message: e.message,
                        })
                        .collect(),
                }
            }
            Err(e) => Decoded::BadLogs(format!("undecodable subscription event: {e}")),
        };
    }
    if let (Some(schema), Some(tasks)) = (
        event.get("invocationSchemaVersion").and_then(Value::as_str),
        event.get("tasks").and_then(Value::as_array),
    ) {
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        return Decoded::Batch {
            schema: schema.to_string(),
            invocation_id: text(event, "invocationId").unwrap_or_default(),
            tasks: tasks
                .iter()
                .map(|t| BatchTask {
                    task_id: text(t, "taskId").unwrap_or_default(),
                    bucket: text(t, "s3Bucket")
                        .or_else(|| {
                            text(t, "s3BucketArn")
                                .map(|a| a.rsplit(":::").next().unwrap_or_default().to_string())
                        })
                        .unwrap_or_default(),
                    key: text(t, "s3Key")
                        .as_deref()
                        .map(indexer::formats::decode_s3_key),
                    version_id: text(t, "s3VersionId").filter(|v| !v.is_empty() && v != "null"),
                })
                .collect(),
        };
    }
    if event.get("detail-type").is_some() && indexer::formats::is_trail_record(event) {
        let id = event.get("id").and_then(Value::as_str).unwrap_or("unnamed");
        return Decoded::Trail {
            name: format!("eventbridge://{id}"),
        };
    }
    let (records, lenient) = match serde_json::from_value::<S3Event>(event.clone()) {
        Ok(e) => (e.records, None),
        Err(typed) => match lenient_records(event) {
            Some(r) => (r, Some(typed.to_string())),
            None => {
                return Decoded::Unknown(format!("not an S3 or CloudWatch Logs event: {typed}"))
            }
        },
    };
    let objects = records
        .into_iter()
        .map(|r| ObjectRef {
            event_name: r.event_name.unwrap_or_default(),
            bucket: r.s3.bucket.name.unwrap_or_default(),
            key: r
                .s3
                .object
                .key
                .as_deref()
                .map(indexer::formats::decode_s3_key),
            version_id: r
                .s3
                .object
                .version_id
                .filter(|v| !v.is_empty() && v != "null"),
            etag: r.s3.object.e_tag,
        })
        .collect();
    Decoded::Objects { objects, lenient }
}

/// Records of an S3 event that misses fields the typed schema requires: bucket and key are
/// what matter; a record without them is reported by the caller.
fn lenient_records(event: &Value) -> Option<Vec<S3EventRecord>> {
    let list = event.get("Records")?.as_array()?;
    let mut out = Vec::new();
    for r in list {
        let text = |path: &str| r.pointer(path).and_then(Value::as_str).map(String::from);
        let mut rec = S3EventRecord::default();
        rec.event_name = text("/eventName");
        rec.s3.bucket.name = text("/s3/bucket/name");
        rec.s3.object.key = text("/s3/object/key");
        rec.s3.object.version_id = text("/s3/object/versionId");
        rec.s3.object.e_tag = text("/s3/object/eTag");
        out.push(rec);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_events_objects_and_broken_events() {
        assert_eq!(
            decode(&json!({"Service": "Amazon S3", "Event": "s3:TestEvent"})),
            Decoded::TestEvent
        );
        let Decoded::Objects { objects, lenient } = decode(&json!({"Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"},
             "object": {"key": "a+b%20c.log", "versionId": "null"}}}]}))
        else {
            panic!("objects");
        };
        assert!(lenient.is_some());
        assert_eq!(objects[0].key.as_deref(), Some("a b c.log"));
        assert_eq!(objects[0].version_id, None);
        assert!(matches!(decode(&json!({"x": 1})), Decoded::Unknown(_)));
        // S3 Batch Operations, both schemas: the bucket from its ARN or its name, the key
        // decoded.
        let Decoded::Batch {
            schema,
            invocation_id,
            tasks,
        } = decode(
            &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv",
            "job": {"id": "j"}, "tasks": [
                {"taskId": "t1", "s3Key": "sessions/a%20b.log", "s3VersionId": "v1",
                 "s3BucketArn": "arn:aws:s3:::logs"},
                {"taskId": "t2", "s3Key": "x.log", "s3VersionId": null, "s3Bucket": "other"}]}),
        )
        else {
            panic!("batch");
        };
        assert_eq!((schema.as_str(), invocation_id.as_str()), ("1.0", "inv"));
        assert_eq!(
            tasks,
            [
                BatchTask {
                    task_id: "t1".into(),
                    bucket: "logs".into(),
                    key: Some("sessions/a b.log".into()),
                    version_id: Some("v1".into()),
                },
                BatchTask {
                    task_id: "t2".into(),
                    bucket: "other".into(),
                    key: Some("x.log".into()),
                    version_id: None,
                },
            ]
        );
        assert!(matches!(
            decode(&json!({"awslogs": {"data": "not base64"}})),
            Decoded::BadLogs(_)
        ));
    }
}
