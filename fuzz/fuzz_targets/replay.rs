//! The terminal replay on any bytes, in any chunking, with and without markers: no panic, no
//! hang, byte ranges inside the input, sequence numbers in order.
#![no_main]

use indexer::replay::{ReplayOptions, Replayer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, bytes)) = data.split_first() else {
        return;
    };
    let options = ReplayOptions {
        base_user: "ssm-user".into(),
        markers: knobs & 1 == 0,
        width: (knobs & 2 != 0).then_some(usize::from(knobs >> 2).max(2)),
    };
    let chunk = usize::from(knobs % 17) + 1;
    let mut r = Replayer::new(options);
    let mut lines = Vec::new();
    for (i, part) in bytes.chunks(chunk).enumerate() {
        r.feed(part, (i * chunk) as u64);
        lines.extend(r.drain());
    }
    let replayed = r.finish();
    lines.extend(replayed.lines);
    // Stretches not read lie inside the input, in order, without overlap.
    let mut end = 0;
    for p in &replayed.partial {
        assert!(end <= p.byte_start && p.byte_start < p.byte_end, "{p:?}");
        assert!(p.byte_end <= bytes.len() as u64, "{p:?}");
        assert!(!p.reason.is_empty());
        end = p.byte_end;
    }
    let mut seq = 0;
    for l in &lines {
        assert!(l.byte_start <= l.byte_end, "{l:?}");
        assert!(l.byte_end <= bytes.len() as u64, "{l:?}");
        assert!(l.seq > seq, "{l:?}");
        seq = l.seq;
        assert!(l.output.len() <= indexer::replay::MAX_OUTPUT_BYTES, "{l:?}");
    }
});
