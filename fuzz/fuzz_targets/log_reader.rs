//! The streaming S3 session-log reader the Lambda uses, in any chunking: no panic, lines in
//! order, byte ranges inside the input.
#![no_main]

use indexer::stream::LogReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&knob, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(knob) + 1;
    let mut r = LogReader::new("s3://logs/sessions/erin-0123456789abcdef0.log");
    let mut lines = Vec::new();
    for part in bytes.chunks(chunk) {
        lines.extend(r.push(part));
    }
    let (_, rest) = r.finish();
    lines.extend(rest);
    let mut seq = 0;
    for l in &lines {
        assert!(l.seq > seq);
        seq = l.seq;
        assert!(l.byte_start <= l.byte_end && l.byte_end <= bytes.len() as u64);
    }
});
