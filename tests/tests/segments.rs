//! The end of a command-line ingest (issue 6): the small segments its commits left are merged
//! into one, so queries visit fewer segments, and nothing is lost or changed by it.

use ssm_audit_tests::{corpus, ingest, recorded, search_json};
use std::path::Path;

/// The segments its `meta.json` lists.
fn segments(index: &Path) -> Vec<serde_json::Value> {
    let meta = std::fs::read_to_string(index.join("meta.json")).expect("meta.json");
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("meta.json is JSON");
    meta["segments"]
        .as_array()
        .expect("a segments list")
        .clone()
}

/// The document counts of the index's segments.
fn segment_sizes(index: &Path) -> Vec<u64> {
    segments(index)
        .iter()
        .map(|s| s["max_doc"].as_u64().expect("max_doc"))
        .collect()
}

/// Every segment file of the index's folder belongs to a segment its `meta.json` lists.
fn assert_only_live_segment_files(index: &Path) {
    let live: Vec<String> = segments(index)
        .iter()
        .map(|s| s["segment_id"].as_str().expect("an id").replace('-', ""))
        .collect();
    for entry in std::fs::read_dir(index).expect("the index folder") {
        let name = entry
            .expect("an entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let stem = name.split('.').next().unwrap_or("");
        if stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()) {
            assert!(
                live.iter().any(|id| id == stem),
                "{name} belongs to no segment of the index: {live:?}"
            );
        }
    }
}

fn all_records(index: &Path, query: &[&str]) -> String {
    let (code, out, err) = search_json(index, query);
    assert_eq!(code, 0, "search {query:?} failed: {err}");
    out
}

#[test]
fn ingests_end_with_their_small_segments_merged_and_the_same_records() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let corpus = corpus();
    let sessions = recorded().join("sessions");
    let added: Vec<_> = [
        "dan-137509b0150106785.log",
        "gus-24c0efb6545038f71.log",
        "dan-ccf3e46bbb6789642.log",
        "deploy-bot-sui90na27sw6ja0dwo343ng5ab.log",
    ]
    .iter()
    .map(|f| sessions.join(f))
    .collect();

    // The corpus, then one session log per run: each run commits a small segment, too few
    // for tantivy's merge policy to merge.
    let daily = tmp.path().join("daily");
    assert_eq!(ingest(&daily, &[&corpus]).0, 0);
    for f in &added {
        assert_eq!(ingest(&daily, &[f]).0, 0);
        // The merged segments' files are gone as the run ends.
        assert_only_live_segment_files(&daily);
    }
    let sizes = segment_sizes(&daily);
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let small = sizes.iter().filter(|&&n| n < largest / 8).count();
    assert!(
        small <= 1,
        "{small} segments under an eighth of the largest ({largest} documents) were left: {sizes:?}"
    );

    // The same inputs in one run give the same records.
    let once = tmp.path().join("once");
    let mut all = vec![corpus.as_path()];
    all.extend(added.iter().map(|p| p.as_path()));
    assert_eq!(ingest(&once, &all).0, 0);
    for query in [
        &[][..],
        &["sudo"][..],
        &["\"sudo su\""][..],
        &["--program", "sudo"][..],
    ] {
        let (a, b) = (all_records(&once, query), all_records(&daily, query));
        assert!(a.lines().count() > 0, "no records for {query:?}");
        assert_eq!(a, b, "search {query:?} differs after the merges");
    }
}
