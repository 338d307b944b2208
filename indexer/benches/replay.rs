//! Terminal replay throughput beside `strip_ansi_escapes::strip` on the same bytes.
//!
//! `cargo bench -p indexer --bench replay` — the input is the shared corpus's S3 session
//! bodies repeated to 8 MiB (or the recorded fixtures when the corpus is not there).
//!
//! Both run under mimalloc, the allocator the `ssm-audit` and Lambda binaries are built with;
//! `--features system-alloc` runs them under the system's allocator instead.
//!
//! After criterion's figures it times the two again, alternating, and prints their throughputs
//! and ratio side by side (the target: the replay at 3× strip or more).
#![allow(clippy::print_stdout)]

use criterion::{criterion_group, Criterion, Throughput};
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
    g.bench_function("Replayer (feed + lines)", |b| b.iter(|| replay(&bytes)));
    g.finish();
}

fn replay(bytes: &[u8]) -> usize {
    let mut r = Replayer::new(ReplayOptions::default());
    r.feed(bytes, 0);
    r.finish().lines.len()
}

/// Median MiB/s of `runs` timed runs of each, the two alternating so that both see the same
/// machine.
fn side_by_side(bytes: &[u8], runs: usize) {
    let mib = bytes.len() as f64 / (1 << 20) as f64;
    let (mut strip, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = std::time::Instant::now();
        std::hint::black_box(strip_ansi_escapes::strip(bytes));
        strip.push(mib / t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        std::hint::black_box(replay(bytes));
        ours.push(mib / t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, r) = (median(&mut strip), median(&mut ours));
    println!();
    println!("{:<34}{:>12}", "median of alternating runs", "MiB/s");
    println!("{:<34}{:>12.1}", "strip_ansi_escapes::strip", s);
    println!("{:<34}{:>12.1}", "Replayer (feed + lines)", r);
    println!("{:<34}{:>11.2}x   (target >= 3x)", "replay / strip", r / s);
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Not when criterion is only listing or testing the benchmarks.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") {
        side_by_side(&input(), 21);
    }
}
