//! The auditor's desk: one session seen whole (`show`), reports that say what they cover and
//! carry every line, a bundle `verify` can check later, and tables that fit the terminal.

use serde_json::Value;
use ssm_audit_tests::{corpus, ingest, recorded, repo_root, run, ssm_audit};
use std::path::{Path, PathBuf};

fn index_of(dir: &Path, sources: &[&Path]) -> String {
    let index = dir.join("index");
    let (code, err) = ingest(&index, sources);
    assert_eq!(code, 0, "{err}");
    index.display().to_string()
}

fn truth(dir: &Path) -> serde_json::Map<String, Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    v.as_object().unwrap().clone()
}

fn forged() -> PathBuf {
    repo_root().join("tests/fixtures/bad/forged-prompt-and-echo-off-0123456789abcdef3.log")
}

/// Display width of a line, escapes aside: CJK characters count two columns.
fn width(line: &str) -> usize {
    let mut plain = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI … final byte.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain
        .chars()
        .map(|c| match c as u32 {
            0x1100..=0x115f
            | 0x2e80..=0xa4cf
            | 0xac00..=0xd7a3
            | 0xf900..=0xfaff
            | 0xfe30..=0xfe4f
            | 0xff00..=0xff60
            | 0xffe0..=0xffe6 => 2,
            _ => 1,
        })
        .sum()
}

/// The commands (and abandoned lines) of a session as `search` lists them, in order.
fn searched(idx: &str, sid: &str) -> Vec<(u64, String)> {
    let mut lines = Vec::new();
    for extra in [None, Some("--abandoned")] {
        let q = format!("session:{sid}");
        let mut args = vec![
            "search", "--index", idx, "--format", "json", "--limit", "100000", &q,
        ];
        args.extend(extra);
        let (_, out, _) = run(&args);
        for l in out.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            lines.push((
                v["seq"].as_u64().unwrap(),
                v["command"].as_str().unwrap().to_string(),
            ));
        }
    }
    lines.sort();
    lines
}

#[test]
fn show_prints_every_command_of_every_session_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = index_of(tmp.path(), &[&corpus(), &recorded(), &forged()]);
    let (code, out, err) = run(&["sessions", "--index", &idx, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let ids: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["session_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(ids.len() >= 30, "{}", ids.len());
    let shared = truth(&corpus());
    let mut with_lines = 0;
    for sid in &ids {
        let (code, out, err) = run(&["show", "--index", &idx, sid, "--format", "json"]);
        assert_eq!(code, 0, "{sid}: {err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        let lines = v["commands"].as_array().unwrap();
        let shown: Vec<(u64, String)> = lines
            .iter()
            .map(|c| {
                (
                    c["seq"].as_u64().unwrap(),
                    c["command"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(shown, searched(&idx, sid), "{sid}");
        if shown.is_empty() {
            continue;
        }
        with_lines += 1;
        assert!(
            v["sources"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["check"] == "matches"),
            "{sid}: {}",
            v["sources"]
        );
        // The shared corpus's truth: the commands that ran, in order.
        if let Some(t) = shared.get(sid) {
            let want: Vec<&str> = t["commands"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["command"].as_str().unwrap())
                .collect();
            // As the truth writes them: a line continued with `\` is one line.
            let joined = |c: &str| {
                c.replace("\\\n", " ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let ran: Vec<String> = lines
                .iter()
                .filter(|c| c.get("abandoned").is_none())
                .map(|c| joined(c["command"].as_str().unwrap()))
                .collect();
            let want: Vec<String> = want.into_iter().map(joined).collect();
            assert_eq!(ran, want, "{sid}");
        }
        // The text shows each line in the same order, under its marker.
        let (code, text, err) = run(&["show", "--index", &idx, sid, "--color", "never"]);
        assert_eq!(code, 0, "{sid}: {err}");
        let mut at = 0;
        for (seq, command) in &shown {
            let marker = format!("── #{seq} ");
            let m = text[at..]
                .find(&marker)
                .unwrap_or_else(|| panic!("{sid}: no {marker} after byte {at}:\n{text}"));
            at += m;
            let first = command.lines().next().unwrap_or("").trim();
            assert!(
                text[at..].contains(first),
                "{sid}: #{seq} {first:?} not shown:\n{text}"
            );
        }
    }
    assert!(with_lines >= 25, "{with_lines}");
}

#[test]
fn show_marks_abandoned_and_suspicious_lines_and_times_streamed_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = index_of(tmp.path(), &[&corpus(), &recorded(), &forged()]);
    // eve's Ctrl-C'd `sudo passwd root` keeps its number, marked; nothing is skipped.
    let (code, text, err) = run(&[
        "show",
        "--index",
        &idx,
        "eve-0i7p0kein1wvdveilipgnk43b2",
        "--color",
        "never",
    ]);
    assert_eq!(code, 0, "{err}");
    let abandoned = text
        .lines()
        .find(|l| l.contains("ABANDONED"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(abandoned.starts_with("── #3 "), "{abandoned}");
    for n in 1..=6 {
        assert!(text.contains(&format!("── #{n} ")), "#{n}:\n{text}");
    }
    // The prompt as the terminal showed it, not the escapes.
    assert!(text.contains("$ sudo passwd root"), "{text}");
    assert!(!text.contains('\x1b'), "no raw escape");
    // A forged prompt is flagged on its line.
    let (code, text, _) = run(&[
        "show",
        "--index",
        &idx,
        "forged-prompt-and-echo-off-0123456789abcdef3",
        "--color",
        "never",
    ]);
    assert_eq!(code, 0);
    assert!(
        text.lines()
            .any(|l| l.starts_with("── #") && l.contains("SUSPICIOUS: ")),
        "{text}"
    );
    // A streamed session: each line has its event's time, in the zone asked for.
    let (code, text, err) = run(&[
        "show",
        "--index",
        &idx,
        "hyejin@corp.example-7nfzzj1w9wtx9agz0edbc7amdy",
        "--tz",
        "Asia/Seoul",
        "--color",
        "never",
    ]);
    assert_eq!(code, 0, "{err}");
    let markers: Vec<&str> = text.lines().filter(|l| l.starts_with("── #")).collect();
    assert!(!markers.is_empty());
    assert!(markers.iter().all(|m| m.contains("+09:00")), "{markers:#?}");
    // A session that is not there names the closest.
    let (code, _, err) = run(&["show", "--index", &idx, "eve-0i7p0kein1wvdveilipgnk43b"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the closest: eve-0i7p0kein1wvdveilipgnk43b2") && err.lines().count() == 1,
        "{err}"
    );
    let (code, _, err) = run(&["show", "--index", &idx, "eve-0i7p0kein1wvdveilipgnk43b2#99"]);
    assert_eq!(code, 2);
    assert!(err.contains("has no line #99"), "{err}");
}

#[test]
fn show_raw_prints_checked_evidence_escaped_and_refuses_a_changed_source() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let name = "minsu-ua95zkecz3d1sslkiiagka249y.log";
    std::fs::copy(corpus().join("sessions").join(name), logs.join(name)).unwrap();
    let idx = index_of(tmp.path(), &[&logs]);
    let sid = "minsu-ua95zkecz3d1sslkiiagka249y";
    let (code, out, err) = run(&[
        "search",
        "--index",
        &idx,
        "--format",
        "json",
        &format!("session:{sid}"),
    ]);
    assert_eq!(code, 0, "{err}");
    let third: Value = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["seq"] == 3)
        .unwrap();
    let (a, b) = (
        third["evidence"]["byte_start"].as_u64().unwrap() as usize,
        third["evidence"]["byte_end"].as_u64().unwrap() as usize,
    );
    let bytes = std::fs::read(logs.join(name)).unwrap();
    let (code, raw, err) = run(&["show", "--index", &idx, &format!("{sid}#3"), "--raw"]);
    assert_eq!(code, 0, "{err}");
    assert!(raw.contains("read again, matches"), "{raw}");
    assert!(raw.contains(&format!("bytes {a}–{b}")), "{raw}");
    assert!(!raw.contains('\x1b') && !raw.contains('\x07') && !raw.contains('\r'));
    // The body is the bytes, escaped: undone, it gives them back.
    let body: String = raw
        .lines()
        .filter(|l| !l.starts_with("# "))
        .collect::<Vec<_>>()
        .concat();
    let mut undone = Vec::new();
    let mut rest = body.as_str();
    while let Some(i) = rest.find("\\x") {
        undone.extend_from_slice(&rest.as_bytes()[..i]);
        undone.push(u8::from_str_radix(&rest[i + 2..i + 4], 16).unwrap());
        rest = &rest[i + 4..];
    }
    undone.extend_from_slice(rest.as_bytes());
    assert_eq!(undone, &bytes[a..b]);
    // One byte changed after ingest: the check fails, no byte is shown as evidence.
    let mut changed = bytes.clone();
    changed[a + 3] ^= 0x20;
    std::fs::write(logs.join(name), &changed).unwrap();
    let (code, raw, err) = run(&["show", "--index", &idx, &format!("{sid}#3"), "--raw"]);
    assert_eq!(code, 2, "{raw}");
    assert!(raw.is_empty(), "{raw}");
    assert!(
        err.contains("changed since it was ingested") && err.lines().count() == 1,
        "{err}"
    );
    // The session is still shown, from the index, saying its source did not check.
    let (code, text, _) = run(&["show", "--index", &idx, sid, "--color", "never"]);
    assert_eq!(code, 0);
    assert!(text.contains("changed since it was ingested"), "{text}");
    assert!(text.contains("» ls -d pam*"), "{text}");
}

/// A reader's report: the filters, the time, the version and the ledger head at its top.
#[test]
fn a_filtered_report_states_its_scope_and_ties_itself_to_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = index_of(tmp.path(), &[&corpus()]);
    let html = tmp.path().join("r.html");
    let (code, _, err) = run(&[
        "report",
        "--index",
        &idx,
        "--user",
        "jiwoo",
        "--instance",
        "EC2-A",
        "--since",
        "2026-02",
        "--until",
        "2026-02",
        "-o",
        &html.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let ledger = std::fs::read_to_string(Path::new(&idx).join("ledger.jsonl")).unwrap();
    let last: Value = serde_json::from_str(ledger.lines().last().unwrap()).unwrap();
    let head = last["hash"].as_str().unwrap();
    // As a browser shows it.
    let out = ssm_audit_tests::headless_chromium(&tmp.path().join("chromium"))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let scope = &dom[dom.find("id=\"scope\"").unwrap_or_else(|| panic!("{dom}"))..];
    let scope = &scope[..scope.find("</table>").unwrap()];
    for want in [
        "instance: EC2-A",
        "since: 2026-02",
        "until: 2026-02",
        "Only what matches these filters is in this report",
        &format!("ssm-audit {}", env!("CARGO_PKG_VERSION")),
        head,
        &format!("entry {}", last["n"]),
        "--instance EC2-A",
    ] {
        assert!(scope.contains(want), "{want} not at the top:\n{scope}");
    }
    assert!(
        scope.contains("Generated</th><td>20"),
        "the time it was made:\n{scope}"
    );
    // Only EC2-A in February: jiwoo's EC2-B session is not in it.
    assert!(!dom.contains("EC2-B"), "{dom}");
    // The chart: axes, a legend, the year, the values printed.
    let svg = &dom[dom.find("<svg").unwrap()..dom.find("</svg>").unwrap()];
    for want in [
        "<line",
        ">commands<",
        ">privileged<",
        "2026",
        "day of session start",
    ] {
        assert!(svg.contains(want), "{want}: {svg}");
    }
    // Markdown and JSON say the same.
    let (_, md, _) = run(&[
        "report",
        "--index",
        &idx,
        "--user",
        "jiwoo",
        "--instance",
        "EC2-A",
        "--format",
        "md",
    ]);
    assert!(md.contains("instance EC2-A") && md.contains(head), "{md}");
    let (_, json, _) = run(&[
        "report",
        "--index",
        &idx,
        "--user",
        "jiwoo",
        "--instance",
        "EC2-A",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["context"]["filters"]["instance"], "EC2-A");
    assert_eq!(v["context"]["ledger"]["hash"], head);
}

#[test]
fn suspicious_and_abandoned_lines_are_in_the_reports_of_who_has_them() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = index_of(tmp.path(), &[&corpus(), &recorded()]);
    // eve abandoned `sudo passwd root`: every report format has it, numbered.
    for format in ["html", "md", "csv", "json"] {
        let (code, out, err) = run(&[
            "report", "--index", &idx, "--user", "eve", "--format", format,
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("sudo passwd root"), "{format}: {out}");
        match format {
            "html" => {
                assert!(
                    out.contains("class=\"abandoned\"") && out.contains("ABANDONED"),
                    "{out}"
                );
                // Numbered without a gap.
                for n in 1..=6 {
                    assert!(out.contains(&format!("<td>{n}</td>")), "#{n}: {out}");
                }
            }
            "md" => assert!(out.contains("**ABANDONED**"), "{out}"),
            "json" => {
                let v: Value = serde_json::from_str(&out).unwrap();
                assert_eq!(v["summary"]["abandoned"], 1, "{}", v["summary"]);
            }
            _ => {
                let mut r = csv::Reader::from_reader(out.as_bytes());
                let h = r.headers().unwrap().clone();
                let col = h
                    .iter()
                    .position(|c| c == "abandoned")
                    .expect("an abandoned column");
                assert_eq!(
                    r.records()
                        .filter(|x| &x.as_ref().unwrap()[col] == "true")
                        .count(),
                    1
                );
            }
        }
    }
    // dan's forged prompt is marked in HTML and Markdown, not only in the table.
    let (code, html, err) = run(&["report", "--index", &idx, "--user", "dan"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        html.contains("class=\"susp\"")
            && html.contains("SUSPICIOUS: its output shows a command line at a prompt"),
        "{html}"
    );
    // Its output's lines are lines, not escapes.
    assert!(html.contains("$ rm -rf /\n# cat /etc/shadow"), "{html}");
    let (_, md, _) = run(&["report", "--index", &idx, "--user", "dan", "--format", "md"]);
    assert!(md.contains("**SUSPICIOUS**"), "{md}");
}

#[test]
fn a_bundle_is_checked_by_verify_and_a_changed_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = index_of(tmp.path(), &[&corpus()]);
    let dir = tmp.path().join("bundle");
    let d = dir.display().to_string();
    let (code, _, err) = run(&[
        "report",
        "--index",
        &idx,
        "--user",
        "hyejin@corp.example",
        "--bundle",
        &d,
    ]);
    assert_eq!(code, 0, "{err}");
    for f in ["report.html", "report.csv", "report.json", "manifest.json"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    let m: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["files"].as_array().unwrap().len(), 3);
    let src = &m["sources"][0];
    assert!(src["source"].as_str().unwrap().ends_with(".json"), "{m}");
    assert_eq!(src["sha256"].as_str().unwrap().len(), 64);
    assert!(
        src["document_sha256"].is_string(),
        "a stream's document: {m}"
    );
    let (code, out, err) = run(&["verify", "--index", &idx, "--bundle", &d]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("everything matches"), "{out}");
    // The same folder twice: refused.
    let (code, _, err) = run(&[
        "report",
        "--index",
        &idx,
        "--user",
        "hyejin@corp.example",
        "--bundle",
        &d,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("already holds a bundle"), "{err}");
    // One edited file is named.
    let csv = dir.join("report.csv");
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text = text.replacen("whoami", "whoam1", 1);
    std::fs::write(&csv, text).unwrap();
    let (code, out, _) = run(&[
        "verify", "--index", &idx, "--bundle", &d, "--color", "never",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("report.csv") && out.contains("1 problems"),
        "{out}"
    );
    // Against another index: the ledger head is not there.
    let other = index_of(&tmp.path().join("o"), &[&recorded()]);
    let (code, out, _) = run(&[
        "verify", "--index", &other, "--bundle", &d, "--color", "never",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("LEDGER"), "{out}");
}

/// Run `ssm-audit ARGS` on a pseudo-terminal of 80 columns; what it printed.
fn on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> String {
    let script = r#"
import os, pty, sys, fcntl, termios, struct
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
"#;
    let bin = assert_cmd::cargo::cargo_bin("ssm-audit");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c").arg(script).arg(&bin).args(args);
    cmd.env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env_remove("CLICOLOR_FORCE");
    cmd.env("TERM", "xterm-256color");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

#[test]
fn tables_fit_an_80_column_terminal_and_colour_follows_no_color() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = index_of(tmp.path(), &[&corpus(), &recorded()]);
    for what in [
        vec!["who", "sudo", "--index", &idx],
        vec!["search", "--index", &idx, "--limit", "40"],
        vec!["sessions", "--index", &idx],
        vec!["coverage", "--index", &idx],
    ] {
        let out = on_a_terminal(&what, &[]);
        assert!(out.lines().count() > 3, "{what:?}: {out}");
        for line in out.lines() {
            assert!(
                width(line) <= 80,
                "{what:?}: {} columns: {line:?}",
                width(line)
            );
        }
        assert!(out.contains('\x1b'), "colour on a terminal: {what:?}");
        let out = on_a_terminal(&what, &[("NO_COLOR", "1")]);
        assert!(!out.contains('\x1b'), "NO_COLOR: {what:?}: {out:?}");
    }
    // COLUMNS when it is not a terminal; the Japanese principal's row lines up.
    let out = ssm_audit()
        .args(["who", "sudo", "--index", &idx])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ユ"), "{text}");
    assert!(text.lines().all(|l| width(l) <= 80), "{text}");
    assert!(!text.contains('\x1b'), "no colour in a pipe");
    let (_, forced, _) = run(&["who", "sudo", "--index", &idx, "--color", "always"]);
    assert!(forced.contains("\x1b["), "--color always");
}

#[test]
fn times_are_shown_in_the_zone_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = index_of(tmp.path(), &[&corpus()]);
    let (code, out, err) = run(&[
        "search",
        "--index",
        &idx,
        "--tz",
        "Asia/Seoul",
        "--user",
        "jiwoo",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2026-02-10T10:02:03+09:00"), "{out}");
    let out = ssm_audit()
        .args(["sessions", "--index", &idx, "--user", "jiwoo"])
        .env("TZ", "Asia/Seoul")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("+09:00"));
    // JSON keeps UTC as stored.
    let (_, json, _) = run(&[
        "search",
        "--index",
        &idx,
        "--tz",
        "Asia/Seoul",
        "--user",
        "jiwoo",
        "--format",
        "json",
    ]);
    assert!(
        json.contains("\"session_start\":\"2026-02-10T01:02:03Z\""),
        "{json}"
    );
    // A day is taken in the zone: jiwoo's session of 01:02 UTC on February 10 began on the
    // 9th in Los Angeles.
    let day = |tz: &str| {
        let (_, out, _) = run(&[
            "sessions",
            "--index",
            &idx,
            "--user",
            "jiwoo",
            "--tz",
            tz,
            "--since",
            "2026-02-09",
            "--until",
            "2026-02-09",
            "--format",
            "json",
        ]);
        out.lines().count()
    };
    assert_eq!(day("America/Los_Angeles"), 1);
    assert_eq!(day("UTC"), 0);
    let (code, _, err) = run(&["search", "--index", &idx, "--tz", "Mars/Olympus_Mons"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a time zone"), "{err}");
}
