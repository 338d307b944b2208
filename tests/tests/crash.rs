//! Crashes and concurrent use (issue 7): an `ingest` killed with SIGKILL at random points
//! leaves an index that opens and holds only whole sessions, and running the same ingest again
//! gives what a clean run gives; a second `ingest` on the same index fails at once with a
//! clear message; a search during an ingest sees committed state only.

use ssm_audit_tests::{run, search_json, ssm_audit};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Commit after every 2 KiB of input: the corpus then takes dozens of commits, so a kill
/// lands between commits, inside one, or while the ledger is written.
const COMMIT_KIB: &str = "2";

fn inputs(dir: &Path) -> PathBuf {
    ssm_audit_tests::corpus_and_recorded(dir)
}

fn start_ingest(index: &Path, inputs: &Path) -> Child {
    start_ingest_to(index, inputs, Stdio::null())
}

/// [`start_ingest`], its standard error to `stderr`.
fn start_ingest_to(index: &Path, inputs: &Path, stderr: Stdio) -> Child {
    ssm_audit()
        .args(["ingest", "-q", "--commit-kib", COMMIT_KIB, "--index"])
        .arg(index)
        .arg(inputs)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("ssm-audit starts")
}

/// Every record of the index as JSON Lines (exit 1 means none).
fn all_records(index: &Path) -> String {
    let (code, out, err) = search_json(index, &[]);
    assert!(code == 0 || code == 1, "search failed ({code}): {err}");
    out
}

/// (session → its (seq, command) list) of JSON Lines records.
fn by_session(records: &str) -> BTreeMap<String, Vec<(u64, String)>> {
    let mut out: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for line in records.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
        out.entry(v["session_id"].as_str().unwrap_or("").to_string())
            .or_default()
            .push((
                v["seq"].as_u64().unwrap_or(0),
                v["command"].as_str().unwrap_or("").to_string(),
            ));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// A fixed sequence of pseudo-random numbers (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn ingest_killed_at_50_random_points_resumes_to_the_clean_result() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let inputs = inputs(tmp.path());
    let clean_index = tmp.path().join("clean");
    let started = Instant::now();
    let status = start_ingest(&clean_index, &inputs)
        .wait()
        .expect("ingest ends");
    let clean_time = started.elapsed();
    assert!(status.success(), "the clean ingest failed: {status}");
    let clean = all_records(&clean_index);
    let clean_sessions = by_session(&clean);
    assert!(
        clean_sessions.len() >= 20,
        "{} sessions",
        clean_sessions.len()
    );

    let seed = 0x5eed_2026_u64;
    let mut rng = Rng(seed);
    // Kill points are drawn from the time a whole run takes. That time changes with the load
    // of the machine (the clean run may share it with other tests, the later ones not): a run
    // that ended before its kill shows that a whole run takes at most that long, and later
    // points are drawn from the shorter window.
    let mut window = clean_time.as_micros() as u64;
    let mut killed_midway = 0;
    let mut partial_states = BTreeSet::new();
    for point in 0..50 {
        let index = tmp.path().join(format!("killed-{point}"));
        let mut child = start_ingest(&index, &inputs);
        let delay = Duration::from_micros(rng.below(window));
        std::thread::sleep(delay);
        let finished = child.try_wait().expect("try_wait").is_some();
        child.kill().ok();
        child.wait().expect("the killed ingest is reaped");
        if finished {
            window = window.min(delay.as_micros() as u64);
        } else {
            killed_midway += 1;
        }
        let context = format!("kill point {point} (seed {seed:#x}, after {delay:?})");

        // The index opens, and every session in it is whole.
        if index.join("meta.json").exists() {
            let partial = by_session(&all_records(&index));
            for (sid, commands) in &partial {
                let whole = clean_sessions.get(sid).unwrap_or_else(|| {
                    panic!("{context}: session {sid} is not in the clean index")
                });
                assert_eq!(commands, whole, "{context}: session {sid} is not whole");
            }
            partial_states.insert(partial.len());
        }

        // The same ingest again gives the clean result, byte for byte.
        let status = start_ingest(&index, &inputs).wait().expect("ingest ends");
        assert!(status.success(), "{context}: the resumed ingest failed");
        assert_eq!(
            all_records(&index),
            clean,
            "{context}: resumed index differs"
        );
        let (code, _, err) = run(&["verify", "--index", &index.display().to_string()]);
        assert_eq!(code, 0, "{context}: verify after resuming: {err}");
        std::fs::remove_dir_all(&index).ok();
    }
    // The kills must have hit runs in progress, at different stages.
    assert!(
        killed_midway >= 25,
        "only {killed_midway} of 50 kills hit a running ingest"
    );
    assert!(
        partial_states.len() >= 3,
        "the kills left too few different states: {partial_states:?}"
    );
}

#[test]
fn a_second_ingest_on_the_same_index_fails_at_once_and_searches_see_committed_state() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let inputs = inputs(tmp.path());
    let clean_index = tmp.path().join("clean");
    assert!(start_ingest(&clean_index, &inputs)
        .wait()
        .expect("ingest ends")
        .success());
    let clean_sessions = by_session(&all_records(&clean_index));

    let index = tmp.path().join("index");
    let first_err = tmp.path().join("first.err");
    let mut first = start_ingest_to(
        &index,
        &inputs,
        std::fs::File::create(&first_err).expect("a file").into(),
    );
    // Wait until the first ingest holds the index: it has committed a segment. (meta.json
    // alone is written when the index is made, just before the writer lock is taken: a second
    // ingest started then may take the lock first.)
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(index.join("meta.json"))
        .is_ok_and(|meta| meta.contains("segment_id"))
    {
        assert!(
            Instant::now() < deadline,
            "the first ingest never created the index"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut second_failed = false;
    let mut searches = 0;
    while first.try_wait().expect("try_wait").is_none() {
        if !second_failed {
            let out = ssm_audit()
                .args(["ingest", "-q", "--index"])
                .arg(&index)
                .arg(&inputs)
                .output()
                .expect("the second ingest runs");
            if first.try_wait().expect("try_wait").is_none() {
                let err = String::from_utf8_lossy(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "second ingest: {err}");
                assert!(
                    err.contains("being written by another process"),
                    "the second ingest does not say why: {err}"
                );
                second_failed = true;
            }
        }
        // A search meanwhile sees whole sessions of committed state.
        for (sid, commands) in by_session(&all_records(&index)) {
            assert_eq!(
                Some(&commands),
                clean_sessions.get(&sid),
                "session {sid} seen half-written during the ingest"
            );
        }
        searches += 1;
    }
    assert!(
        first.wait().expect("reaped").success(),
        "the first ingest failed: {}",
        std::fs::read_to_string(&first_err).unwrap_or_default()
    );
    assert!(
        second_failed,
        "the first ingest ended before a second could start"
    );
    assert!(searches > 0);
    assert_eq!(by_session(&all_records(&index)), clean_sessions);
}
