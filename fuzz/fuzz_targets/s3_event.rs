//! The S3 notification decoder on any JSON: no panic; every object it returns has its fields
//! decoded, every failure a reason.
#![no_main]

use aws_adapters::events::{decode, Decoded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match decode(&event) {
        Decoded::Unknown(why) | Decoded::BadLogs(why) => assert!(!why.is_empty()),
        Decoded::Objects { objects, .. } => {
            for o in objects {
                assert!(o.version_id.as_deref() != Some("null"));
            }
        }
        _ => {}
    }
});
