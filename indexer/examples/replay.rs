//! Print the input lines replayed from a session log: `cargo run --example replay -- FILE...`
#![allow(clippy::print_stdout)]

use indexer::replay::{ReplayOptions, Replayer};

fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).expect("readable file");
        let start = indexer::formats::log_meta(&path, &bytes).body_start;
        let end = indexer::formats::log_footer(&bytes).map_or(bytes.len(), |(at, _)| at);
        let mut r = Replayer::new(ReplayOptions::default());
        r.feed(&bytes[start..end.max(start)], start as u64);
        println!("== {path}");
        for l in r.finish().lines {
            println!(
                "{:>3} {:<9} {}{:?} [{}..{}] cwd={:?} out={:?}",
                l.seq,
                l.run_as,
                if l.abandoned { "ABANDONED " } else { "" },
                l.command,
                l.byte_start,
                l.byte_end,
                l.cwd,
                l.output.chars().take(60).collect::<String>()
            );
        }
    }
}
