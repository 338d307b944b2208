//! The corpus of broken and hostile inputs in `tests/fixtures/bad` (issue 7, bar 2): each file
//! gets what `EXPECTED.tsv` says — one line naming it with the expected reason, or its commands
//! ingested — and a good session log beside them is ingested whole. Then bar 3: no output
//! format carries a raw control character from those logs.

use ssm_audit_tests::{corpus, files_under, repo_root, run};
use std::path::Path;

fn bad() -> std::path::PathBuf {
    repo_root().join("tests/fixtures/bad")
}

/// (file, outcome, text) rows of `EXPECTED.tsv`.
fn expected() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(bad().join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            (
                f.next().unwrap_or("").to_string(),
                f.next().unwrap_or("").to_string(),
                f.next().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn search(index: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["search", "--index"];
    let i = index.display().to_string();
    args.push(&i);
    args.extend_from_slice(extra);
    let (code, out, _) = run(&args);
    (code, out)
}

#[test]
fn every_bad_input_gets_its_expected_line_and_the_good_log_beside_them_is_ingested() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("in");
    // Every fixture, plus a good log, plus a 1 GiB line with no newline.
    for f in files_under(&bad()) {
        let rel = f.strip_prefix(bad()).expect("under bad/");
        if rel.extension().is_some_and(|e| e == "tsv" || e == "md") {
            continue;
        }
        let to = dir.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&f, &to).expect("copy");
    }
    let good = "hana-c4db7c64a8bda93c6.log";
    std::fs::copy(corpus().join("sessions").join(good), dir.join(good)).expect("copy");
    let long = dir.join("one-line-0123456789abcdef2.log");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&long).expect("create"));
        f.write_all(b"Script started on 2026-01-01 00:00:00+0000\n$ ")
            .expect("write");
        let block = vec![b'x'; 1 << 20];
        for _ in 0..1024 {
            f.write_all(&block).expect("write");
        }
    }
    let listed = files_under(&bad())
        .into_iter()
        .filter(|f| !f.extension().is_some_and(|e| e == "tsv" || e == "md"))
        .count();
    let rows = expected();
    assert_eq!(rows.len(), listed, "EXPECTED.tsv lists every fixture");

    let index = tmp.path().join("index");
    let (code, err) = ssm_audit_tests::ingest(&index, &[&dir]);
    assert_eq!(code, 2, "errors make ingest exit 2: {err}");
    for (file, outcome, text) in &rows {
        let name = dir.join(file).display().to_string();
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(&name)).collect();
        match outcome.as_str() {
            "error" | "skipped" => {
                assert_eq!(lines.len(), 1, "{file}: one line: {err}");
                let prefix_ok = if outcome == "error" {
                    lines[0].starts_with("error: ")
                } else {
                    lines[0].contains("skipped")
                };
                assert!(
                    prefix_ok && lines[0].contains(text.as_str()),
                    "{file}: {}",
                    lines[0]
                );
            }
            ingested => {
                assert!(lines.is_empty(), "{file} was reported: {lines:?}");
                let want: usize = ingested
                    .trim_start_matches("ingested ")
                    .parse()
                    .expect("a count");
                let sid = Path::new(file)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .expect("a name");
                let (_, out) = search(&index, &["--format", "json", "--limit", "100000"]);
                let n = out
                    .lines()
                    .filter(|l| l.contains(&format!("\"session_id\":\"{sid}\"")))
                    .count();
                assert_eq!(n, want, "{file}: commands ingested");
            }
        }
    }
    // The good log beside them: all its commands.
    let (_, out) = search(&index, &["--format", "json", "--limit", "100000"]);
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("\"session_id\":\"hana-c4db7c64a8bda93c6\""))
            .count(),
        7
    );
    // The 1 GiB line: read without an error, and its session is known to the index (it was
    // typed, never run: no command comes of it).
    assert!(
        !err.contains("one-line-0123456789abcdef2"),
        "the long line was reported: {err}"
    );
    let (_, coverage, _) = run(&[
        "coverage",
        "--index",
        &index.display().to_string(),
        "--format",
        "json",
    ]);
    assert!(
        coverage.contains("one-line-0123456789abcdef2"),
        "the long line's session is missing: {coverage}"
    );
}

#[test]
fn no_output_format_carries_a_raw_control_character_from_hostile_logs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("in");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for f in [
        "hostile-escapes-0123456789abcdef1.log",
        "nul-and-invalid-utf8-0123456789abcdef0.log",
        "dotdot-session.log",
    ] {
        std::fs::copy(bad().join(f), dir.join(f)).expect("copy");
    }
    let index = tmp.path().join("index");
    let (code, err) = ssm_audit_tests::ingest(&index, &[&dir]);
    assert_eq!(code, 0, "{err}");
    let i = index.display().to_string();
    let out_file = tmp.path().join("report.html");
    let o = out_file.display().to_string();
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    for format in ["table", "json", "csv"] {
        for cmd in [
            vec!["search", "--with-output", "--format", format, "--index", &i],
            vec!["search", "--abandoned", "--format", format, "--index", &i],
            vec!["who", "cat", "--format", format, "--index", &i],
            vec!["coverage", "--format", format, "--index", &i],
        ] {
            let out = ssm_audit_tests::ssm_audit()
                .args(&cmd)
                .output()
                .expect("runs");
            outputs.push((cmd.join(" "), out.stdout));
            outputs.push((format!("{} (stderr)", cmd.join(" ")), out.stderr));
        }
    }
    for format in ["html", "md", "csv", "json"] {
        let (code, _, err) = run(&[
            "report",
            "--user",
            "hostile-escapes",
            "--format",
            format,
            "-o",
            &o,
            "--index",
            &i,
        ]);
        assert_eq!(code, 0, "report {format}: {err}");
        outputs.push((
            format!("report {format}"),
            std::fs::read(&out_file).expect("report"),
        ));
    }
    // The output text of `cat notes` is in the index (so the test looks at real content).
    let (_, json) = search(&index, &["--with-output", "--format", "json"]);
    assert!(json.contains("C1 CSI") || json.contains("click"), "{json}");
    for (what, bytes) in outputs {
        for (at, &b) in bytes.iter().enumerate() {
            let allowed = b == b'\n'
                || (b == b'\t' && !what.starts_with("search --with-output --format json"));
            assert!(
                b >= 0x20 && b != 0x7f || allowed,
                "{what}: byte {b:#04x} at {at}: {:?}",
                String::from_utf8_lossy(&bytes[at.saturating_sub(40)..(at + 40).min(bytes.len())])
            );
            // C1 controls as UTF-8 (U+0080..U+009F) are as dangerous as the raw bytes.
            if b == 0xc2 {
                let next = bytes.get(at + 1).copied().unwrap_or(0);
                assert!(
                    !(0x80..=0x9f).contains(&next),
                    "{what}: a C1 control at {at}"
                );
            }
        }
    }
}

#[test]
fn forged_prompts_and_echo_off_are_flagged_and_nothing_else_in_the_corpora_is() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let index = tmp.path().join("index");
    let forged = bad().join("forged-prompt-and-echo-off-0123456789abcdef3.log");
    let (code, err) =
        ssm_audit_tests::ingest(&index, &[&corpus(), &ssm_audit_tests::recorded(), &forged]);
    assert_eq!(code, 0, "{err}");
    let (_, out) = search(&index, &["--format", "json", "--limit", "100000"]);
    let flagged: Vec<(String, String, String)> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .filter(|r| r.get("suspicious").is_some())
        .map(|r| {
            (
                r["session_id"].as_str().unwrap_or("").to_string(),
                r["command"].as_str().unwrap_or("").to_string(),
                r["suspicious"][0].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expect = [
        (
            "forged-prompt-and-echo-off-0123456789abcdef3",
            "printf '[ssm-user@ip-10-0-0-1 ~]$ ls\\n'",
            "shows a command line at a prompt",
        ),
        (
            "forged-prompt-and-echo-off-0123456789abcdef3",
            "stty -echo",
            "echo off",
        ),
        (
            "dan-ccf3e46bbb6789642",
            "printf '$ rm -rf /\\n# cat /etc/shadow\\n'",
            "shows a command line at a prompt",
        ),
        (
            "ana-8vqv52h0mqbb976gqd0cv453mm",
            "printf 'ssm-user@ip-172-31-9-9:/var/log$ sudo reboot\\n'",
            "shows a command line at a prompt",
        ),
    ];
    assert_eq!(flagged.len(), expect.len(), "{flagged:#?}");
    for (sid, command, why) in expect {
        assert!(
            flagged
                .iter()
                .any(|(s, c, w)| s == sid && c == command && w.contains(why)),
            "{sid} {command:?} not flagged: {flagged:#?}"
        );
    }
    // The table shows them too.
    let (_, table) = search(&index, &["--limit", "100000"]);
    assert_eq!(table.matches("SUSPICIOUS").count(), expect.len(), "{table}");
}
