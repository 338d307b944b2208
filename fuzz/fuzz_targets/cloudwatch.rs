//! The CloudWatch Logs parsers: filter-log-events output, subscription payloads, JSON Lines of
//! stream messages, with any JSON as the events or messages.
#![no_main]

use indexer::formats::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = "cloudwatch://aws/ssm/sessions/carol-0123456789abcdef0";
    let _ = parse("carol-0123456789abcdef0.jsonl", data);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let message = value.to_string();
    for doc in [
        serde_json::json!({ "events": value.clone() }),
        serde_json::json!({ "events": [{ "logStreamName": "carol-0123456789abcdef0", "timestamp": 1, "message": message, "eventId": "1" }] }),
        serde_json::json!({ "messageType": "DATA_MESSAGE", "logGroup": "/aws/ssm/sessions", "logStream": "carol-0123456789abcdef0", "logEvents": value }),
    ] {
        let _ = parse(name, doc.to_string().as_bytes());
    }
});
