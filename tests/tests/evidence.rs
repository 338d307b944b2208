//! Evidence features: privileged-command rules and coverage.

use serde_json::Value;
use ssm_audit_tests::{corpus, recorded, run};

fn ingest(index: &Path, paths: &[&Path]) {
    let (code, err) = ssm_audit_tests::ingest(index, paths);
    assert_eq!(code, 0, "{err}");
}
use std::path::Path;

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).expect("JSON Lines"))
        .collect()
}

#[test]
fn privileged_search_finds_what_ran_and_not_what_was_mentioned() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    ingest(&index, &[&corpus(), &recorded()]);
    let idx = index.display().to_string();
    let (code, out, err) = run(&[
        "search",
        "--privileged",
        "--index",
        &idx,
        "--format",
        "json",
        "--limit",
        "100000",
    ]);
    assert_eq!(code, 0, "{err}");
    let hits = json_lines(&out);
    let has = |cmd: &str, rule: &str| {
        hits.iter()
            .any(|h| h["command"] == cmd && h["rule"].as_array().unwrap().iter().any(|r| r == rule))
    };
    // Every sudo and su the shells ran, in both corpora.
    for dir in [corpus(), recorded()] {
        let truth: Value =
            serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
        for s in truth.as_object().unwrap().values() {
            for c in s["commands"].as_array().unwrap() {
                let cmd = c["command"].as_str().unwrap();
                if matches!(cmd.split_whitespace().next(), Some("sudo" | "su")) {
                    assert!(has(cmd, "privilege-elevation"), "{cmd} not found");
                }
            }
        }
    }
    assert!(has("tail -n1 /etc/shadow", "credential-files"));
    assert!(has("sudo grep -c root /etc/sudoers", "sudoers-pam"));
    assert!(has("sudo su -", "root-shell"));
    // Mentions, quotes and abandoned lines are not privileged commands.
    for h in &hits {
        let cmd = h["command"].as_str().unwrap();
        assert!(!cmd.starts_with("printf '[root@"), "{cmd}");
        assert!(!cmd.starts_with("grep -w sudo"), "{cmd}");
        assert!(
            cmd != "sudo cat /etc/sudoers" && cmd != "sudo passwd root" && cmd != "sudo reboot",
            "abandoned: {cmd}"
        );
    }
    // A user's rules file adds to the built-in rules.
    let rules = tmp.path().join("rules.json");
    std::fs::write(&rules, r#"[{"id":"hostname-probe","title":"Host name read","severity":"low","programs":["hostname"]}]"#).unwrap();
    let (_, out, _) = run(&[
        "search",
        "--privileged",
        "--rules",
        &rules.display().to_string(),
        "--index",
        &idx,
        "--format",
        "json",
    ]);
    assert!(json_lines(&out)
        .iter()
        .any(|h| h["command"] == "hostname" && h["rule"][0] == "hostname-probe"));
}

#[test]
fn coverage_names_the_session_whose_log_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus();
    let logs = tmp.path().join("sessions");
    std::fs::create_dir(&logs).unwrap();
    let missing = "eve-0i7p0kein1wvdveilipgnk43b2";
    for e in std::fs::read_dir(c.join("sessions")).unwrap() {
        let p = e.unwrap().path();
        if !p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(missing)
        {
            std::fs::copy(&p, logs.join(p.file_name().unwrap())).unwrap();
        }
    }
    let index = tmp.path().join("idx");
    ingest(
        &index,
        &[
            &logs,
            &c.join("cloudwatch"),
            &c.join("cloudtrail"),
            &c.join("describe-instances.json"),
        ],
    );
    let idx = index.display().to_string();
    let (code, out, _) = run(&["coverage", "--index", &idx, "--format", "json"]);
    assert_eq!(code, 0);
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 8);
    let gaps: Vec<&Value> = rows.iter().filter(|r| r["status"] != "covered").collect();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["session_id"], missing);
    assert_eq!(gaps[0]["status"], "no transcript");
    assert_eq!(gaps[0]["principal"], "eve");
    assert_eq!(gaps[0]["mfa"], false);
    let (_, table, _) = run(&["coverage", "--index", &idx, "--user", "jiwoo"]);
    assert!(table.contains("2 of 2 sessions covered"), "{table}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn verify_finds_a_changed_byte_a_deleted_record_and_an_edited_ledger() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("corpus");
    copy_dir(&corpus(), &data);
    let index = tmp.path().join("idx");
    ingest(&index, &[&data]);
    let idx = index.display().to_string();
    let (code, out, _) = run(&["verify", "--index", &idx]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("everything matches"), "{out}");

    // One byte of one session log changes.
    let log = data.join("sessions/hana-c4db7c64a8bda93c6.log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[100] ^= 0x20;
    std::fs::write(&log, &bytes).unwrap();
    let (code, out, _) = run(&["verify", "--index", &idx, "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let problems = json_lines(&out);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["kind"], "changed");
    assert_eq!(problems[0]["source"], log.display().to_string());
    bytes[100] ^= 0x20;
    std::fs::write(&log, &bytes).unwrap();

    // One session's records are removed from the index.
    {
        let mut store = indexer::store::Index::open(&index)
            .unwrap()
            .writer()
            .unwrap();
        store
            .forget_session("eve-0i7p0kein1wvdveilipgnk43b2")
            .unwrap();
    }
    let (code, out, _) = run(&["verify", "--index", &idx, "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let problems = json_lines(&out);
    assert!(
        problems.iter().any(|p| p["kind"] == "deleted"
            && p["source"]
                .as_str()
                .unwrap()
                .ends_with("eve-0i7p0kein1wvdveilipgnk43b2.log")),
        "{problems:?}"
    );

    // An entry is removed from the middle of the ledger.
    let ledger = index.join("ledger.jsonl");
    let text = std::fs::read_to_string(&ledger).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&ledger, kept.join("\n") + "\n").unwrap();
    let (code, out, _) = run(&["verify", "--index", &idx]);
    assert_eq!(code, 1);
    assert!(
        out.contains("LEDGER") && out.contains("does not follow"),
        "{out}"
    );
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[test]
fn the_report_of_jiwoo_holds_all_his_commands_and_renders_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    ingest(&index, &[&corpus()]);
    let idx = index.display().to_string();
    let truth: Value =
        serde_json::from_slice(&std::fs::read(corpus().join("truth.json")).unwrap()).unwrap();
    let mut sessions: Vec<&Value> = truth
        .as_object()
        .unwrap()
        .values()
        .filter(|s| s["principal"] == "jiwoo")
        .collect();
    sessions.sort_by_key(|s| s["started_at"].as_str().unwrap().to_string());
    let want: Vec<String> = sessions
        .into_iter()
        .flat_map(|s| {
            s["commands"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["command"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(want.len() > 10);
    let html = tmp.path().join("jiwoo.html");
    let (code, _, err) = run(&[
        "report",
        "--index",
        &idx,
        "--user",
        "jiwoo",
        "--format",
        "html",
        "-o",
        &html.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    for c in &want {
        assert!(
            page.contains(&html_escape(c)),
            "{c} missing from the HTML report"
        );
    }
    assert!(page.contains("2&gt;/dev/null"), "text from logs is escaped");
    for fetch in ["src=", "href=", "<link", "<script", "@import", "url("] {
        assert!(!page.contains(fetch), "self-contained, no fetches: {fetch}");
    }
    assert!(
        page.contains("<svg") && page.contains("class=\"priv\""),
        "a chart and highlighted privileged commands"
    );
    // CSV and JSON hold the same commands.
    let (_, csv, _) = run(&[
        "report", "--index", &idx, "--user", "jiwoo", "--format", "csv",
    ]);
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let col = rows
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "command")
        .unwrap();
    let from_csv: Vec<String> = rows
        .records()
        .map(|r| r.unwrap()[col].to_string())
        .collect();
    assert_eq!(from_csv, want);
    let (_, json, _) = run(&[
        "report", "--index", &idx, "--user", "jiwoo", "--format", "json",
    ]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let from_json: Vec<String> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["commands"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["command"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(from_json, want);
    assert_eq!(v["summary"]["sessions_covered"], 2);
    // Headless Chromium renders it.
    let png = tmp.path().join("jiwoo.png");
    let out = ssm_audit_tests::headless_chromium(&tmp.path().join("chromium"))
        .args(["--hide-scrollbars", "--window-size=1280,1600"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    let shot = std::fs::read(&png)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(shot.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        shot.len() > 50_000,
        "a near-empty page: {} bytes",
        shot.len()
    );
}

#[test]
fn secrets_are_masked_in_reports_unless_asked_not_to() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let log = b"\x1b[?2004h[ssm-user@ip-10-0-0-1 ~]$ mysql -u admin -pHunter2secret -h db\r\r\n\x1b[?2004l\rERROR 2005\r\r\n\x1b[?2004h[ssm-user@ip-10-0-0-1 ~]$ export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\r\r\n\x1b[?2004l\r\x1b[?2004h[ssm-user@ip-10-0-0-1 ~]$ exit\r\r\n\x1b[?2004l\rexit\r\r\n";
    std::fs::write(dir.join("mallory-0123456789abcdef0.log"), log).unwrap();
    let index = tmp.path().join("idx");
    ingest(&index, &[&dir]);
    let idx = index.display().to_string();
    let (_, masked, _) = run(&[
        "report", "--index", &idx, "--user", "mallory", "--format", "md",
    ]);
    assert!(
        !masked.contains("Hunter2secret") && !masked.contains("wJalrXUtnFEMI"),
        "{masked}"
    );
    assert!(masked.contains("-p********"), "{masked}");
    let (_, clear, _) = run(&[
        "report",
        "--index",
        &idx,
        "--user",
        "mallory",
        "--format",
        "md",
        "--no-redact",
    ]);
    assert!(clear.contains("Hunter2secret"), "{clear}");
    // The evidence digest is the raw object's either way.
    let sha = |t: &str| t.split("sha256 ").nth(1).map(|s| s[..64].to_string());
    assert_eq!(sha(&masked), sha(&clear));
}
