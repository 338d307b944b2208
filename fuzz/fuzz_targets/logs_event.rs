//! The CloudWatch Logs subscription decoder: any payload, gzipped or not, base64-encoded into
//! `awslogs.data` as CloudWatch Logs delivers it. No panic.
#![no_main]

use base64::Engine;
use aws_adapters::events::{decode, Decoded};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let Some((&how, payload)) = data.split_first() else {
        return;
    };
    let bytes = if how & 1 == 0 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(payload).expect("in memory");
        gz.finish().expect("in memory")
    } else {
        payload.to_vec()
    };
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    let event = serde_json::json!({ "awslogs": { "data": data } });
    match decode(&event) {
        Decoded::BadLogs(why) => assert!(!why.is_empty()),
        Decoded::Logs { events, .. } => {
            for e in events {
                let _ = e.message.len();
            }
        }
        _ => {}
    }
});
