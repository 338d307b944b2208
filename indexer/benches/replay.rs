//! Terminal replay throughput beside `strip_ansi_escapes::strip` on the same bytes.
//!
//! `cargo bench -p indexer --bench replay` — the input is the shared corpus's S3 session
//! bodies repeated to 8 MiB (or the recorded fixtures when the corpus is not there).
//!
//! Both run under mimalloc, the allocator the `ssm-audit` and Lambda binaries are built with;
//! `--features system-alloc` runs them under the system's allocator instead.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use indexer::replay::{ReplayOptions, Replayer};
use std::path::Path;

#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn input() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = [
        root.join("../shared/corpus/sessions"),
        root.join("tests/fixtures/recorded/sessions"),
    ]
    .into_iter()
    .find(|d| d.exists())
    .expect("session logs to replay");
    let mut bodies = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let b = std::fs::read(&p).unwrap();
        let start = b.iter().position(|&c| c == b'\n').map_or(0, |i| i + 1);
        let end = b
            .windows(16)
            .rposition(|w| w == b"\nScript done on ")
            .unwrap_or(b.len());
        bodies.push(b[start..end.max(start)].to_vec());
    }
    let mut out = Vec::with_capacity(8 << 20);
    let mut i = 0;
    while out.len() < 8 << 20 {
        out.extend_from_slice(&bodies[i % bodies.len()]);
        i += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let bytes = input();
    let mut g = c.benchmark_group("replay-8MiB");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.sample_size(10);
    g.bench_function("strip_ansi_escapes::strip", |b| {
        b.iter(|| strip_ansi_escapes::strip(&bytes))
    });
    g.bench_function("Replayer (feed + lines)", |b| {
        b.iter(|| {
            let mut r = Replayer::new(ReplayOptions::default());
            r.feed(&bytes, 0);
            r.finish().len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
