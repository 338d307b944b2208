//! Every format parser through the entry point ingest uses: S3 session logs, CloudWatch Logs
//! exports, filter-log-events and subscription payloads, CloudTrail, describe-instances, gzip
//! of any of them, under names that steer the format guess. No panic; every outcome names
//! what became of the object.
#![no_main]

use indexer::ingest::{read_object, Outcome};
use indexer::model::SourceObject;
use indexer::ingest::Batch;
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "s3://logs/sessions/alice-0123456789abcdef0.log",
    "logs/i-0123456789abcdef0/bob-0a1b2c3d4e5f6a7b8.log",
    "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/01/123456789012_CloudTrail_us-east-1_20260101T0000Z_x.json.gz",
    "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/01/x.json",
    "describe-instances.json",
    "cloudwatch://aws/ssm/sessions/carol-0123456789abcdef0",
    "events.jsonl",
    "export.json.gz",
    "records/sessions/dave-0123456789abcdef0.jsonl",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let object = SourceObject {
        name: NAMES[usize::from(pick) % NAMES.len()].to_string(),
        version_id: None,
        bytes: bytes.to_vec(),
        written: None,
        metadata: Default::default(),
    };
    let mut batch = Batch::default();
    let outcome = read_object(&object, &mut batch);
    assert!(!outcome.describe().is_empty());
    if let Outcome::Skipped(why) = &outcome {
        assert!(!why.is_empty());
    }
    for s in &batch.sources {
        for l in &s.lines {
            assert!(l.byte_start <= l.byte_end);
        }
    }
});
