//! Proof that survives an attacker and an accident (issue 19): a disk that fills during an
//! ingest never reads as tampering once the ingest is run again; `verify` cannot be stalled by
//! what replaced a source; an index that cannot be written is still searched and verified.

use ssm_audit_tests::{corpus, corpus_and_recorded, in_own_mounts, run, search_json, ssm_audit};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Every record of the index as JSON Lines.
fn all_records(index: &Path) -> String {
    let (code, out, err) = search_json(index, &[]);
    assert!(code == 0 || code == 1, "search failed ({code}): {err}");
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The problems `verify` reports that would say the index or its ledger was tampered with.
fn tampering(verify_out: &str) -> Vec<&str> {
    verify_out
        .lines()
        .filter(|l| {
            ["LEDGER", "UNEXPECTED", "DELETED", "RECORDS", "COMMANDS"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .collect()
}

#[test]
fn a_disk_that_fills_mid_ingest_never_reads_as_tampering_and_the_next_ingest_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = corpus_and_recorded(tmp.path());
    let clean_index = tmp.path().join("clean");
    let (code, _, err) = run(&[
        "ingest",
        "-q",
        "--index",
        &clean_index.display().to_string(),
        &inputs.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let clean = all_records(&clean_index);
    // The clean index takes about 100 KB: these sizes fill at different points of the ingest
    // (a commit every 2 KiB of input makes the index and the ledger grow all along).
    let sizes = ["24k", "40k", "56k", "72k", "96k", "128k"];
    let mut filled = 0;
    for size in sizes {
        let out = tmp.path().join(format!("out-{size}"));
        std::fs::create_dir_all(&out).unwrap();
        let mnt = tmp.path().join(format!("mnt-{size}"));
        let (code, stdout, stderr) = in_own_mounts(
            r#"
            mkdir -p "$MNT"
            mount -t tmpfs -o size="$SIZE" tmpfs "$MNT"
            set +e
            "$SSM_AUDIT" ingest -q --commit-kib 2 --index "$MNT/ix" "$INPUTS" 2> "$OUT/ingest1.err"
            echo $? > "$OUT/ingest1.code"
            if [ -e "$MNT/ix/meta.json" ]; then
                "$SSM_AUDIT" verify --index "$MNT/ix" > "$OUT/verify1.out" 2>&1
                echo $? > "$OUT/verify1.code"
            fi
            mount -o remount,size=64m "$MNT"
            "$SSM_AUDIT" ingest -q --index "$MNT/ix" "$INPUTS" 2> "$OUT/ingest2.err"
            echo $? > "$OUT/ingest2.code"
            "$SSM_AUDIT" verify --index "$MNT/ix" > "$OUT/verify2.out" 2>&1
            echo $? > "$OUT/verify2.code"
            "$SSM_AUDIT" search --index "$MNT/ix" --format json --limit 1000000 > "$OUT/records"
            "#,
            &[
                ("MNT", &mnt),
                ("OUT", &out),
                ("INPUTS", &inputs),
                ("SIZE", Path::new(size)),
            ],
        );
        assert_eq!(code, 0, "the script failed: {stdout}{stderr}");
        let context = format!("tmpfs of {size}");
        let ingest1 = read(&out.join("ingest1.code"));
        if ingest1.trim() != "0" {
            let err = read(&out.join("ingest1.err"));
            assert!(
                err.contains("No space left on device"),
                "{context}: the full disk is named: {err}"
            );
            filled += 1;
        }
        // What the failed ingest committed verifies, without a word of tampering.
        if out.join("verify1.code").exists() {
            let v = read(&out.join("verify1.out"));
            assert_eq!(
                read(&out.join("verify1.code")).trim(),
                "0",
                "{context}: verify after the disk filled: {v}"
            );
            assert!(tampering(&v).is_empty(), "{context}: {v}");
        }
        // Space again: the same ingest completes, and verify passes.
        assert_eq!(
            read(&out.join("ingest2.code")).trim(),
            "0",
            "{context}: {}",
            read(&out.join("ingest2.err"))
        );
        let v = read(&out.join("verify2.out"));
        assert_eq!(
            read(&out.join("verify2.code")).trim(),
            "0",
            "{context}: {v}"
        );
        assert!(
            v.contains("everything matches")
                && !v
                    .lines()
                    .any(|l| l.starts_with("not checked") && l.contains("ledger")),
            "{context}: {v}"
        );
        assert_eq!(read(&out.join("records")), clean, "{context}");
    }
    assert!(
        filled >= 3,
        "only {filled} of {} tmpfs sizes filled during the ingest",
        sizes.len()
    );
}

/// Run `verify` on `index`, killed if it takes more than 30 s: (exit code, stdout).
fn verify_within_30s(index: &Path) -> (i32, String) {
    let mut child = ssm_audit()
        .args(["verify", "--index", &index.display().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().ok();
            child.wait().ok();
            panic!("verify did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn verify_names_a_fifo_a_device_or_a_grown_file_in_place_of_a_source_and_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("inputs");
    let sessions = corpus().join("sessions");
    for f in ssm_audit_tests::files_under(&sessions) {
        let to = inputs.join(f.strip_prefix(&sessions).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    let index = tmp.path().join("index");
    let (code, _, err) = run(&[
        "ingest",
        "-q",
        "--index",
        &index.display().to_string(),
        &inputs.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out) = verify_within_30s(&index);
    assert_eq!(code, 0, "{out}");
    let mut logs: Vec<_> = ssm_audit_tests::files_under(&inputs)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() >= 3);
    // A FIFO nobody writes: opening it to read would wait for ever.
    std::fs::remove_file(&logs[0]).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&logs[0])
        .status()
        .unwrap();
    assert!(made.success());
    // A link to a device that never ends.
    std::fs::remove_file(&logs[1]).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &logs[1]).unwrap();
    // The same bytes and 8 MiB more: not read past its recorded size.
    let mut grown = std::fs::read(&logs[2]).unwrap();
    grown.extend(std::iter::repeat_n(b'A', 8 << 20));
    std::fs::write(&logs[2], grown).unwrap();
    let (code, out) = verify_within_30s(&index);
    assert_eq!(code, 1, "{out}");
    for (path, kind, says) in [
        (&logs[0], "MISSING", "is a FIFO, not a regular file"),
        (
            &logs[1],
            "MISSING",
            "is a character device, not a regular file",
        ),
        (&logs[2], "CHANGED", "now larger than"),
    ] {
        let name = path.display().to_string();
        let lines: Vec<&str> = out.lines().filter(|l| l.contains(&name)).collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with(kind) && lines[0].contains(says),
            "{name}: {out}"
        );
    }
}

#[test]
fn an_index_on_a_read_only_mount_is_searched_and_verified_and_not_written() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let c = corpus();
    let (code, _, err) = run(&[
        "ingest",
        "-q",
        "--index",
        &index.display().to_string(),
        &c.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let records = all_records(&index);
    let ro = tmp.path().join("ro");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (code, stdout, stderr) = in_own_mounts(
        r#"
        mkdir -p "$RO"
        mount --bind "$INDEX" "$RO"
        mount -o remount,bind,ro "$RO"
        if touch "$RO/probe" 2>/dev/null; then echo "the mount can be written"; exit 3; fi
        set +e
        "$SSM_AUDIT" search --index "$RO" --format json --limit 1000000 > "$OUT/records" 2> "$OUT/search.err"
        echo $? > "$OUT/search.code"
        "$SSM_AUDIT" verify --index "$RO" > "$OUT/verify.out" 2>&1
        echo $? > "$OUT/verify.code"
        "$SSM_AUDIT" coverage --index "$RO" > "$OUT/coverage.out" 2>&1
        echo $? > "$OUT/coverage.code"
        "$SSM_AUDIT" who --index "$RO" sudo > "$OUT/who.out" 2>&1
        echo $? > "$OUT/who.code"
        "$SSM_AUDIT" report --index "$RO" --user eve --out "$OUT/eve.html" > "$OUT/report.out" 2>&1
        echo $? > "$OUT/report.code"
        "$SSM_AUDIT" ingest -q --index "$RO" "$CORPUS" > "$OUT/ingest.out" 2>&1
        echo $? > "$OUT/ingest.code"
        "#,
        &[
            ("RO", &ro),
            ("INDEX", &index),
            ("OUT", &out),
            ("CORPUS", &c),
        ],
    );
    assert_eq!(code, 0, "the script failed: {stdout}{stderr}");
    for step in ["search", "verify", "coverage", "who", "report"] {
        let code = read(&out.join(format!("{step}.code")));
        let said = std::fs::read_to_string(out.join(format!("{step}.out")))
            .or_else(|_| std::fs::read_to_string(out.join(format!("{step}.err"))))
            .unwrap_or_default();
        assert_eq!(code.trim(), "0", "{step} on a read-only index: {said}");
    }
    assert_eq!(read(&out.join("records")), records);
    assert!(read(&out.join("verify.out")).contains("everything matches"));
    assert!(read(&out.join("eve.html")).contains("<html"));
    // Writing it is refused, saying why (not that another process holds it).
    let said = read(&out.join("ingest.out"));
    assert_eq!(read(&out.join("ingest.code")).trim(), "2", "{said}");
    assert!(said.contains("cannot be written"), "{said}");
}

/// Rewrite the index's ledger as an attacker with write access to the folder would: keep the
/// entries `keep` accepts, chain them again, and make the index's last commit name the new
/// head, so that the index agrees with its ledger.
fn forge_ledger(index: &Path, keep: impl Fn(&indexer::ledger::Entry) -> bool) {
    use indexer::ledger::{Ingested, Ledger};
    let entries = Ledger::of_index(index).read().unwrap().entries;
    let text = read(&index.join("ledger.jsonl"));
    // The entries before the first one dropped stay as they are, byte for byte.
    let first_dropped = entries.iter().position(|e| !keep(e)).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let prefix: String = text
        .lines()
        .take(first_dropped)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(scratch.path().join("ledger.jsonl"), prefix).unwrap();
    let mut forged = Ledger::of_index(scratch.path());
    let kept: Vec<Ingested> = entries[first_dropped..]
        .iter()
        .filter(|e| keep(e))
        .map(|e| Ingested {
            source: e.source.clone(),
            version_id: e.version_id.clone(),
            sha256: e.sha256.clone(),
            size: e.size,
            kind: e.kind,
        })
        .collect();
    forged.append(&kept).unwrap();
    let head = forged.head().unwrap();
    assert!(forged.read().unwrap().broken.is_empty());
    std::fs::copy(
        scratch.path().join("ledger.jsonl"),
        index.join("ledger.jsonl"),
    )
    .unwrap();
    let meta_path = index.join("meta.json");
    let mut meta: serde_json::Value = serde_json::from_str(&read(&meta_path)).unwrap();
    meta["payload"] = serde_json::json!(serde_json::json!({ "ledger": head }).to_string());
    std::fs::write(&meta_path, meta.to_string()).unwrap();
}

/// `verify --index INDEX [--anchor DIR]`: (exit code, stdout).
fn verify_anchored(index: &Path, anchor: Option<&Path>) -> (i32, String) {
    let mut args = vec![
        "verify".to_string(),
        "--index".into(),
        index.display().to_string(),
    ];
    if let Some(a) = anchor {
        args.extend(["--anchor".into(), a.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, _) = run(&args);
    (code, out)
}

#[test]
fn a_ledger_rechained_or_cut_fails_against_its_anchored_heads() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let heads = tmp.path().join("heads");
    let (code, _, err) = run(&[
        "ingest",
        "-q",
        "--commit-kib",
        "64",
        "--anchor",
        &heads.display().to_string(),
        "--index",
        &index.display().to_string(),
        &corpus().display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    // The anchor folder holds the heads, the last one the ledger's.
    let ledger = indexer::ledger::Ledger::of_index(&index)
        .read()
        .unwrap()
        .entries;
    assert!(ledger.len() >= 10);
    let mut anchored: Vec<serde_json::Value> = ssm_audit_tests::files_under(&heads)
        .iter()
        .map(|p| serde_json::from_str(&read(p)).unwrap())
        .collect();
    anchored.sort_by_key(|h| h["entries"].as_u64());
    assert!(anchored.len() >= 2, "{anchored:?}");
    let last = anchored.last().unwrap();
    assert_eq!(last["entries"].as_u64(), Some(ledger.len() as u64));
    assert_eq!(
        last["hash"].as_str(),
        Some(ledger.last().unwrap().hash.as_str())
    );
    // Clean: verifies.
    let (code, out) = verify_anchored(&index, Some(&heads));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{} anchored heads", anchored.len())),
        "{out}"
    );

    // Entry 3 removed, the chain recomputed, the index's commit made to agree.
    let copy = tmp.path().join("rechained");
    copy_dir(&index, &copy);
    forge_ledger(&copy, |e| e.n != 3);
    let (code, out) = verify_anchored(&copy, Some(&heads));
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("ANCHOR")).collect();
    assert!(
        lines.len() == 1 && lines[0].contains("entry 3 differs"),
        "{out}"
    );

    // The last entry cut, the commit made to agree: the index's own checks cannot tell.
    let copy = tmp.path().join("cut");
    copy_dir(&index, &copy);
    let n = ledger.len() as u64;
    forge_ledger(&copy, |e| e.n != n);
    let (code, out) = verify_anchored(&copy, Some(&heads));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("ANCHOR") && l.contains(&format!("entry {n} is anchored"))),
        "{out}"
    );

    // An anchor folder emptied is a failure, not a pass.
    let (code, out) = verify_anchored(&index, Some(&tmp.path().join("no heads")));
    assert_eq!(code, 1, "{out}");

    // A later ingest that does not extend the anchored chain is refused.
    let (code, _, err) = run(&[
        "ingest",
        "-q",
        "--anchor",
        &heads.display().to_string(),
        "--index",
        &tmp.path().join("rechained").display().to_string(),
        &corpus().display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("disagrees with the heads anchored"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    for f in ssm_audit_tests::files_under(from) {
        let dest = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
}
