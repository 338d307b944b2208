//! The CloudTrail parser: any JSON value as a record of a CloudTrail file (and any JSON as the
//! whole file). No panic; the outcome is events or a reason.
#![no_main]

use indexer::formats::parse;
use libfuzzer_sys::fuzz_target;

const NAME: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/01/123456789012_CloudTrail_us-east-1_20260101T0000Z_f.json";

fuzz_target!(|data: &[u8]| {
    let _ = parse(NAME, data);
    let Ok(record) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let file = serde_json::json!({ "Records": [record.clone(), record] });
    let _ = parse(NAME, file.to_string().as_bytes());
});
