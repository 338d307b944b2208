//! Helpers for the end-to-end tests: where the shared corpus is, and how to run the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// `../shared` beside the repository (or `$SSM_AUDIT_SHARED`).
pub fn shared() -> PathBuf {
    std::env::var_os("SSM_AUDIT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"))
}

/// The shared corpus; panics with a clear message when it is missing.
pub fn corpus() -> PathBuf {
    let c = shared().join("corpus");
    assert!(
        c.join("truth.json").exists(),
        "the shared corpus is missing at {} (set SSM_AUDIT_SHARED)",
        c.display()
    );
    c
}

/// Sessions recorded the same way as the corpus, kept in this repository.
pub fn recorded() -> PathBuf {
    repo_root().join("tests/fixtures/recorded")
}

/// The corpus and the recorded sessions, copied into one folder (`DIR/inputs`).
pub fn corpus_and_recorded(dir: &Path) -> PathBuf {
    let out = dir.join("inputs");
    for (name, from) in [("corpus", corpus()), ("recorded", recorded())] {
        for f in files_under(&from) {
            let to = out
                .join(name)
                .join(f.strip_prefix(&from).expect("under the folder"));
            std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
            std::fs::copy(&f, &to).expect("copy");
        }
    }
    out
}

/// Run `script` with `sh` in a mount namespace of its own (as root of a user namespace of its
/// own), with `vars` in its environment: the mounts it makes (a small tmpfs, a read-only bind
/// mount) are its own and end with it. Returns (exit code, stdout, stderr).
pub fn in_own_mounts(script: &str, vars: &[(&str, &Path)]) -> (i32, String, String) {
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-euc", script]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.env("SSM_AUDIT", assert_cmd::cargo::cargo_bin("ssm-audit"));
    let out = cmd.output().expect("unshare runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A command running the built `ssm-audit` binary.
pub fn ssm_audit() -> Command {
    let bin = assert_cmd::cargo::cargo_bin("ssm-audit");
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build --workspace` first (scripts/test does)",
        bin.display()
    );
    Command::new(bin)
}

/// Run `ssm-audit ARGS` and return (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = ssm_audit().args(args).output().expect("ssm-audit runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run `ssm-audit ingest --index INDEX PATHS…` and return (exit code, stderr).
pub fn ingest(index: &Path, paths: &[&Path]) -> (i32, String) {
    let mut args = vec![
        "ingest".to_string(),
        "--index".into(),
        index.display().to_string(),
    ];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = run(&args);
    (code, err)
}

/// Run `ssm-audit search --index INDEX --format json --limit 1000000 QUERY…` (every match, as
/// JSON Lines) and return (exit code, stdout, stderr).
pub fn search_json(index: &Path, query: &[&str]) -> (i32, String, String) {
    let index = index.display().to_string();
    let mut args = vec!["search", "--index", &index, "--format", "json"];
    args.extend_from_slice(query);
    args.extend_from_slice(&["--limit", "1000000"]);
    run(&args)
}

/// Every file under a folder, recursively, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("a readable folder") {
            let p = e.expect("a folder entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The last line `score.py TRUTH HITS` prints, and its exit code.
pub fn score(truth: &Path, hits: &Path, floors: &[&str]) -> (i32, String) {
    let out = Command::new("python3")
        .arg(shared().join("eval/score.py"))
        .arg(truth)
        .arg(hits)
        .args(floors)
        .output()
        .expect("python3 runs the scorer");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

/// The headless browser reports are rendered with (`scripts/test` installs Debian's package).
/// Headless Chromium with its profile in `profile`, no network of its own (no updates, sync or
/// background fetches): add what to do and the page.
pub fn headless_chromium(profile: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

pub fn chromium() -> String {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium is installed (scripts/test installs Debian's package)")
        .to_string()
}

pub mod aws;
pub mod cloudtrail_api;
pub mod faults;
pub mod runtime_api;
