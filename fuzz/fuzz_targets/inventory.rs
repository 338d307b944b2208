//! The describe-instances parser: any JSON value as the reservations (and as one instance).
#![no_main]

use indexer::formats::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for doc in [
        serde_json::json!({ "Reservations": value.clone() }),
        serde_json::json!({ "Reservations": [{ "Instances": [value] }] }),
    ] {
        let _ = parse("describe-instances.json", doc.to_string().as_bytes());
    }
});
