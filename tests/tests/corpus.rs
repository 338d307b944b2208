//! The engine and CLI end to end on the shared corpus and on sessions recorded the same way.

use serde_json::Value;
use ssm_audit_tests::{corpus, files_under, ingest, recorded, run, score};
use std::collections::BTreeMap;
use std::path::Path;

fn search_json(index: &Path, extra: &[&str]) -> Vec<Value> {
    let idx = index.display().to_string();
    let mut args = vec![
        "search", "--index", &idx, "--format", "json", "--limit", "100000",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args);
    assert!(code == 0 || code == 1, "search failed ({code}): {err}");
    out.lines()
        .map(|l| serde_json::from_str(l).expect("JSON Lines"))
        .collect()
}

fn scored(dir: &Path) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    let (code, err) = ingest(&index, &[dir]);
    assert_eq!(code, 0, "ingest of {} failed: {err}", dir.display());
    let hits = search_json(&index, &[]);
    let file = tmp.path().join("hits.ndjson");
    let text: String = hits.iter().map(|h| format!("{h}\n")).collect();
    std::fs::write(&file, text).unwrap();
    score(
        &dir.join("truth.json"),
        &file,
        &[
            "--min-precision",
            "0.98",
            "--min-recall",
            "0.98",
            "--min-runas",
            "0.98",
            "--min-attribution",
            "1.0",
        ],
    )
}

#[test]
fn shared_corpus_meets_the_score_floors() {
    let (code, text) = scored(&corpus());
    assert_eq!(code, 0, "score below the floors:\n{text}");
}

#[test]
fn recorded_sessions_meet_the_score_floors() {
    let (code, text) = scored(&recorded());
    assert_eq!(code, 0, "score below the floors:\n{text}");
}

/// Commands of truth.json that run sudo as a program: a list or pipeline part starting with it.
fn truth_sudo_counts(instance_name: &str) -> BTreeMap<String, usize> {
    let truth: Value =
        serde_json::from_slice(&std::fs::read(corpus().join("truth.json")).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for s in truth.as_object().unwrap().values() {
        if s["instance_name"] != instance_name {
            continue;
        }
        for c in s["commands"].as_array().unwrap() {
            let cmd = c["command"].as_str().unwrap();
            let runs_sudo = cmd
                .split(['|', ';', '&'])
                .any(|part| part.split_whitespace().next() == Some("sudo"));
            if runs_sudo {
                *out.entry(s["principal_arn"].as_str().unwrap().to_string())
                    .or_insert(0) += 1;
            }
        }
    }
    out
}

#[test]
fn who_ran_sudo_on_ec2_a_matches_the_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    assert_eq!(ingest(&index, &[&corpus()]).0, 0);
    let idx = index.display().to_string();
    let (code, out, err) = run(&[
        "who",
        "sudo",
        "--instance",
        "EC2-A",
        "--index",
        &idx,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let got: BTreeMap<String, usize> = out
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["principal_arn"].as_str().unwrap().to_string(),
                v["commands"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    let want = truth_sudo_counts("EC2-A");
    assert_eq!(got, want);
    // eve's sudo id counts; her abandoned `sudo passwd root` and `grep -w sudo` do not.
    assert_eq!(got.get("arn:aws:iam::444455556666:user/eve"), Some(&1));
    // The same question by instance id, and as a table for people.
    let (_, by_id, _) = run(&[
        "who",
        "sudo",
        "--instance",
        "i-0d44dd44dd44dd444",
        "--index",
        &idx,
        "--format",
        "json",
    ]);
    assert_eq!(by_id, out);
    let (_, table, _) = run(&["who", "sudo", "--instance", "EC2-A", "--index", &idx]);
    assert!(table.starts_with("PRINCIPAL"), "{table}");
    assert!(table.contains("hyejin@corp.example"), "{table}");
}

/// A record's (session, seq).
fn record_key(h: &Value) -> (String, u64) {
    (
        h["session_id"].as_str().unwrap().to_string(),
        h["seq"].as_u64().unwrap(),
    )
}

/// Every value a field of the records takes.
fn values_of(records: &[Value], field: &str) -> std::collections::BTreeSet<String> {
    records
        .iter()
        .filter_map(|h| h[field].as_str().map(str::to_string))
        .collect()
}

/// The field equals `want`, case aside.
fn field_is(h: &Value, field: &str, want: &str) -> bool {
    h[field]
        .as_str()
        .is_some_and(|v| v.eq_ignore_ascii_case(want))
}

#[test]
fn filters_select_exactly_the_records_they_name() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    assert_eq!(ingest(&index, &[&corpus()]).0, 0);
    let all = search_json(&index, &[]);
    assert!(all.len() > 40, "{}", all.len());
    // The records a filter selects, which must be those of the unfiltered search it names.
    let check = |args: &[&str], keep: &dyn Fn(&Value) -> bool| {
        let got: Vec<(String, u64)> = search_json(&index, args).iter().map(record_key).collect();
        let want: Vec<(String, u64)> = all.iter().filter(|h| keep(h)).map(record_key).collect();
        assert_eq!(got, want, "{args:?}");
        got.len()
    };
    // Principals by name and by ARN, instances by id and by Name: found through their sessions.
    let mut users = values_of(&all, "principal");
    users.extend(values_of(&all, "principal_arn"));
    assert!(users.len() > 5, "{users:?}");
    for u in &users {
        let n = check(&["--user", u], &|h| {
            field_is(h, "principal", u) || field_is(h, "principal_arn", u)
        });
        assert!(n > 0, "{u}");
    }
    let mut instances = values_of(&all, "instance_id");
    instances.extend(values_of(&all, "instance_name"));
    assert!(instances.len() > 3, "{instances:?}");
    for i in &instances {
        let n = check(&["--instance", &i.to_uppercase()], &|h| {
            field_is(h, "instance_id", i) || field_is(h, "instance_name", i)
        });
        assert!(n > 0, "{i}");
    }
    let n = check(
        &["--user", "jiwoo", "--instance", "EC2-A", "--run-as", "root"],
        &|h| {
            field_is(h, "principal", "jiwoo")
                && field_is(h, "instance_name", "EC2-A")
                && h["run_as"] == "root"
        },
    );
    assert!(n > 0);
    // Times by the session's start, or its end when nothing recorded the start; a session of
    // unknown time is in no range.
    let time = |h: &Value| {
        h["session_start"]
            .as_str()
            .or(h["session_end"].as_str())
            .and_then(indexer::model::parse_time)
    };
    let mut times: Vec<i64> = all.iter().filter_map(time).collect();
    times.sort_unstable();
    times.dedup();
    assert!(times.len() > 3, "{times:?}");
    for t in [times[1], times[times.len() / 2], times[times.len() - 1]] {
        let at = chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let n = check(&["--since", &at], &|h| time(h).is_some_and(|s| s >= t));
        assert!(n > 0, "{at}");
        let n = check(&["--until", &at], &|h| time(h).is_some_and(|s| s < t));
        assert!(n > 0, "{at}");
        check(&["--since", &at, "--user", "jiwoo"], &|h| {
            time(h).is_some_and(|s| s >= t) && field_is(h, "principal", "jiwoo")
        });
    }
    let (code, out, _) = run(&[
        "search",
        "--index",
        &index.display().to_string(),
        "--user",
        "nobody-at-all",
        "--format",
        "json",
    ]);
    assert_eq!((code, out.as_str()), (1, ""));
}

#[test]
fn commands_of_one_session_attributed_differently_are_told_apart() {
    // The Lambda's records of one session can disagree on who ran them (some were written
    // before the CloudTrail file came): a filter follows each record, not its session.
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    assert_eq!(ingest(&index, &[&corpus()]).0, 0);
    let all = search_json(&index, &["--user", "jiwoo"]);
    let sid = all[0]["session_id"].as_str().unwrap().to_string();
    let mut session: Vec<Value> = all
        .into_iter()
        .filter(|h| h["session_id"] == sid.as_str())
        .collect();
    assert!(session.len() >= 2, "{}", session.len());
    let half = session.len() / 2;
    for h in &mut session[..half] {
        h["principal"] = Value::Null;
        h["principal_arn"] = "arn:aws:iam::444455556666:user/mallory-two".into();
        h["instance_name"] = Value::Null;
    }
    let records = tmp.path().join("records.jsonl");
    let text: String = session.iter().map(|h| format!("{h}\n")).collect();
    std::fs::write(&records, text).unwrap();
    let split = tmp.path().join("split");
    let named = std::path::PathBuf::from(format!("records:{}", records.display()));
    assert_eq!(ingest(&split, &[&named]).0, 0);
    let keys = |hits: &[Value]| hits.iter().map(record_key).collect::<Vec<_>>();
    let theirs = search_json(
        &split,
        &["--user", "arn:aws:iam::444455556666:user/mallory-two"],
    );
    assert_eq!(keys(&theirs), keys(&session[..half]));
    let his = search_json(&split, &["--user", "jiwoo"]);
    assert_eq!(keys(&his), keys(&session[half..]));
    let named = search_json(
        &split,
        &[
            "--instance",
            session[half]["instance_name"].as_str().unwrap(),
        ],
    );
    assert_eq!(keys(&named), keys(&session[half..]));
    let by_id = search_json(
        &split,
        &["--instance", session[0]["instance_id"].as_str().unwrap()],
    );
    assert_eq!(keys(&by_id), keys(&session));
}

#[test]
fn cloudtrail_files_read_the_same_typed_and_as_values() {
    // CloudTrail files are read into typed records; a file whose first key is not `Records`
    // goes the general way, through `serde_json::Value`. Both must give the same events.
    let mut checked = 0;
    for path in files_under(&corpus()) {
        let name = path.display().to_string();
        if !name.contains("CloudTrail") && !name.contains("cloudtrail_") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let text = if name.ends_with(".gz") {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
                .unwrap();
            out
        } else {
            String::from_utf8(bytes).unwrap()
        };
        let Some(rest) = text.trim_start().strip_prefix("{\"Records\"") else {
            continue;
        };
        let typed = indexer::formats::parse(&name, text.as_bytes()).unwrap();
        let general = format!("{{\"_\":0,\"Records\"{rest}");
        let by_value = indexer::formats::parse(&name, general.as_bytes()).unwrap();
        assert_eq!(format!("{typed:?}"), format!("{by_value:?}"), "{name}");
        assert!(
            format!("{typed:?}").contains("session_id"),
            "{name}: no event read"
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked} CloudTrail files");
}

#[test]
fn ingesting_twice_adds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    assert_eq!(ingest(&index, &[&corpus()]).0, 0);
    let once = search_json(&index, &[]);
    assert_eq!(ingest(&index, &[&corpus()]).0, 0);
    let twice = search_json(&index, &[]);
    assert!(once.len() > 40, "{}", once.len());
    assert_eq!(once, twice);
}

#[test]
fn cloudtrail_after_the_logs_still_attributes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    let c = corpus();
    assert_eq!(
        ingest(&index, &[&c.join("sessions"), &c.join("cloudwatch")]).0,
        0
    );
    let before = search_json(&index, &["--user", "jiwoo"]);
    assert!(!before.is_empty());
    assert!(before
        .iter()
        .all(|h| h["attribution"] == "session-id" && h["principal_arn"].is_null()));
    assert_eq!(
        ingest(
            &index,
            &[&c.join("cloudtrail"), &c.join("describe-instances.json")]
        )
        .0,
        0
    );
    let after = search_json(&index, &["--user", "jiwoo"]);
    assert_eq!(before.len(), after.len());
    assert!(after.iter().all(|h| h["attribution"] == "cloudtrail"));
    assert!(after
        .iter()
        .all(|h| h["principal_arn"] == "arn:aws:iam::444455556666:user/jiwoo"));
    assert!(after.iter().any(|h| h["instance_name"] == "EC2-A"));
    // Every record carries its evidence.
    for h in &after {
        let e = &h["evidence"];
        assert_eq!(e["sha256"].as_str().unwrap().len(), 64);
        assert!(e["byte_start"].as_u64().unwrap() < e["byte_end"].as_u64().unwrap());
    }
}

/// What a record says of a command and who ran it, without where the evidence came from.
fn attributed(records: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .map(|h| {
            [
                "session_id",
                "seq",
                "command",
                "run_as",
                "principal_arn",
                "mfa",
                "source_ip",
                "instance_id",
                "instance_name",
                "attribution",
            ]
            .iter()
            .map(|k| h[*k].to_string())
            .collect::<Vec<_>>()
            .join("\t")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn one_run_with_transcripts_before_their_cloudtrail_attributes_them_all() {
    // One ingest reads the transcripts first, then a second copy of one of them (a second
    // source of its session), then CloudTrail and the inventory: each later fact is about
    // sessions added earlier in the same run, which the index has not committed yet.
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus();
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    let log = c.join("sessions/jiwoo-9kvnc1arfcbci2w4uw3k40pqd3.log");
    std::fs::copy(
        &log,
        copy.join("again-jiwoo-9kvnc1arfcbci2w4uw3k40pqd3.log"),
    )
    .unwrap();
    let late = tmp.path().join("late");
    let (code, err) = ingest(
        &late,
        &[
            &c.join("sessions"),
            &c.join("cloudwatch"),
            &copy,
            &c.join("cloudtrail"),
            &c.join("describe-instances.json"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    // The same files, CloudTrail and the inventory first.
    let usual = tmp.path().join("usual");
    let (code, err) = ingest(
        &usual,
        &[
            &c.join("cloudtrail"),
            &c.join("describe-instances.json"),
            &c.join("sessions"),
            &c.join("cloudwatch"),
            &copy,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (late, usual) = (search_json(&late, &[]), search_json(&usual, &[]));
    assert!(usual.len() > 40, "{}", usual.len());
    assert_eq!(attributed(&late), attributed(&usual));
    assert!(late.iter().any(|h| h["instance_name"] == "EC2-A"));
    assert!(late
        .iter()
        .filter(|h| h["session_id"] == "jiwoo-9kvnc1arfcbci2w4uw3k40pqd3")
        .all(|h| h["attribution"] == "cloudtrail"));
}

#[test]
fn cloudtrail_after_records_derived_elsewhere_keeps_them() {
    // Records as the Lambda writes them (JSON Lines), ingested alone, then the CloudTrail of
    // their sessions: the records stay.
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus();
    let first = tmp.path().join("first");
    assert_eq!(ingest(&first, &[&c]).0, 0);
    let records = search_json(&first, &[]);
    assert!(records.len() > 40, "{}", records.len());
    let file = tmp.path().join("records.jsonl");
    let text: String = records.iter().map(|h| format!("{h}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let index = tmp.path().join("idx");
    let named = std::path::PathBuf::from(format!("records:{}", file.display()));
    assert_eq!(ingest(&index, &[&named]).0, 0);
    assert_eq!(search_json(&index, &[]).len(), records.len());
    assert_eq!(ingest(&index, &[&c.join("cloudtrail")]).0, 0);
    assert_eq!(attributed(&search_json(&index, &[])), attributed(&records));
}

#[test]
fn evidence_byte_ranges_hold_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    assert_eq!(ingest(&index, &[&corpus().join("sessions")]).0, 0);
    let hits = search_json(&index, &[]);
    // Within a session the ranges follow each other and never overlap; none starts in the header.
    for pair in hits.windows(2) {
        if pair[0]["session_id"] == pair[1]["session_id"] {
            let end = pair[0]["evidence"]["byte_end"].as_u64().unwrap();
            let next = pair[1]["evidence"]["byte_start"].as_u64().unwrap();
            assert!(end <= next, "{} overlaps {}", pair[0], pair[1]);
        }
    }
    for h in &hits {
        assert!(h["evidence"]["byte_start"].as_u64().unwrap() >= 40, "{h}");
    }
    for h in hits {
        let e = &h["evidence"];
        let bytes = std::fs::read(e["source"].as_str().unwrap()).unwrap();
        let (a, b) = (
            e["byte_start"].as_u64().unwrap() as usize,
            e["byte_end"].as_u64().unwrap() as usize,
        );
        let text = String::from_utf8_lossy(&bytes[a..b]);
        // The first word typed appears in the bytes of its range (echoes may be split by edits).
        let first: String = h["command"].as_str().unwrap().chars().take(1).collect();
        assert!(text.contains(&first), "{h}: {text:?}");
        let digest = indexer_sha(&bytes);
        assert_eq!(e["sha256"].as_str().unwrap(), digest);
    }
}

fn indexer_sha(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn every_real_sample_is_ingested_or_rejected_with_one_line() {
    let dir = corpus().join("real-samples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    for f in files {
        let tmp = tempfile::tempdir().unwrap();
        let index = tmp.path().join("idx");
        let idx = index.display().to_string();
        let (code, _, err) = run(&["ingest", "--index", &idx, &f.display().to_string()]);
        assert!(
            code == 0 || code == 2,
            "{}: exit {code}: {err}",
            f.display()
        );
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        // Summary lines aside (the run's, and what it says of the CloudTrail it read).
        let problems: Vec<&str> = err
            .lines()
            .filter(|l| {
                !["ingested ", "note: ", "CloudTrail: "]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .collect();
        assert!(problems.len() <= 1, "{name}: {err}");
        if let Some(p) = problems.first() {
            assert!(p.contains(&name), "{name}: {p}");
        } else {
            assert!(err.contains("ingested 1 of 1 sources"), "{name}: {err}");
        }
    }
}

#[test]
fn a_bad_file_is_named_and_the_rest_is_ingested() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let log = corpus().join("sessions/eve-0i7p0kein1wvdveilipgnk43b2.log");
    std::fs::copy(&log, dir.join("eve-0i7p0kein1wvdveilipgnk43b2.log")).unwrap();
    std::fs::write(
        dir.join("broken.json.gz"),
        [0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02],
    )
    .unwrap();
    std::fs::write(dir.join("junk.bin"), [0u8, 1, 2, 3, 0xff, 0xfe]).unwrap();
    let index = tmp.path().join("idx");
    let (code, err) = ingest(&index, &[&dir]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("error: ")
            && l.contains("broken.json.gz")
            && l.contains("gzip")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: ") && l.contains("junk.bin")),
        "{err}"
    );
    let hits = search_json(&index, &[]);
    assert_eq!(hits.len(), 5);
}

#[test]
fn control_characters_from_logs_never_reach_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let hostile = b"\x1b[?2004h[ssm-user@ip-10-0-0-1 ~]$ echo \x1b]52;c;ZWNobyBwd25lZA==\x07x\x1b]0;pwned\x07 \x9b31m\r\r\n\x1b[?2004l\rx\r\r\n\x1b[?2004h[ssm-user@ip-10-0-0-1 ~]$ exit\r\r\n\x1b[?2004l\rexit\r\r\n";
    std::fs::write(dir.join("mallory-0123456789abcdef0.log"), hostile).unwrap();
    let index = tmp.path().join("idx");
    assert_eq!(ingest(&index, &[&dir]).0, 0);
    let idx = index.display().to_string();
    for format in ["table", "json", "csv"] {
        let (code, out, _) = run(&[
            "search",
            "--index",
            &idx,
            "--format",
            format,
            "--with-output",
        ]);
        assert_eq!(code, 0);
        assert!(out.contains("echo"), "{format}: {out}");
        let raw: Vec<char> = out
            .chars()
            .filter(|c| c.is_control() && !matches!(c, '\n' | '\t'))
            .collect();
        assert!(
            raw.is_empty(),
            "{format}: raw control characters {raw:?} in {out:?}"
        );
    }
}

#[test]
fn exit_status_is_one_when_nothing_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    assert_eq!(ingest(&index, &[&corpus().join("sessions")]).0, 0);
    let idx = index.display().to_string();
    let (code, out, _) = run(&["search", "--index", &idx, "nosuchcommandanywhere"]);
    assert_eq!(code, 1, "{out}");
    let (code, _, err) = run(&[
        "search",
        "--index",
        &tmp.path().join("none").display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no index"), "{err}");
}

#[test]
fn broken_and_hostile_inputs_get_one_clear_line_and_the_good_file_is_ingested() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    write("empty.log", b"");
    write(
        "truncated.json.gz",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab",
    );
    write(
        "wrong-shape_CloudTrail_1.json",
        br#"{"Records": {"eventName": "StartSession"}}"#,
    );
    write(
        "nested.json",
        format!("{}{}", "[".repeat(5000), "]".repeat(5000)).as_bytes(),
    );
    write(
        "s3-event.json",
        br#"{"Records":[{"eventSource":"aws:s3","s3":{"bucket":{}}}]}"#,
    );
    write(
        "escape.log",
        b"Script started on 2026-01-01 00:00:00+00:00 [COMMAND=\"cat /var/lib/amazon/ssm/i-0123456789abcdef0/session/orchestration/../../etc/Standard_Stream/ipcTempFile.log\" <not executed on terminal>]\n$ id\r\r\nuid=0\r\r\n$ rm -rf /var/log",
    );
    write(
        "nul-0123456789abcdef0.log",
        b"Script started on 2026-01-01 00:00:00+0000\n\xff\xfe\x00$ ls\x00\r\n\xc3\x28\r\n",
    );
    let good = corpus().join("sessions/hana-c4db7c64a8bda93c6.log");
    std::fs::copy(&good, dir.join("hana-c4db7c64a8bda93c6.log")).unwrap();
    let index = tmp.path().join("idx");
    let (code, err) = ingest(&index, &[&dir]);
    assert_eq!(code, 2, "{err}");
    for (file, why) in [
        ("empty.log", "empty"),
        ("truncated.json.gz", "gzip"),
        ("wrong-shape_CloudTrail_1.json", "not a recognised input"),
        ("nested.json", "recursion limit"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("error: ") && l.contains(file) && l.contains(why)),
            "{file}: {err}"
        );
    }
    assert!(
        err.lines()
            .any(|l| l.contains("s3-event.json") && l.contains("skipped")),
        "{err}"
    );
    let hits = search_json(&index, &[]);
    assert_eq!(
        hits.iter()
            .filter(|h| h["session_id"] == "hana-c4db7c64a8bda93c6")
            .count(),
        7
    );
    // A `..` in the header is not a session id: the file name is used instead.
    assert!(
        hits.iter()
            .any(|h| h["session_id"] == "escape" && h["command"] == "id"),
        "{hits:?}"
    );
    assert!(hits
        .iter()
        .all(|h| !h["session_id"].as_str().unwrap().contains("..")));
    // A line still being typed when the log ends never ran.
    let abandoned = search_json(&index, &["--abandoned"]);
    assert!(
        abandoned
            .iter()
            .any(|h| h["session_id"] == "escape" && h["command"] == "rm -rf /var/log"),
        "{abandoned:?}"
    );
}

/// Sessions inside tmux and GNU screen (windows, panes, detach and re-attach, a root shell, a
/// Ctrl-C, a wrapped line), fish (a block over several lines, a stream), streams with a
/// history search, vi mode, a two-line prompt and echo switched off: every session that misses
/// a command, or reads one that did not run, is flagged `partial` in `coverage`, with a reason
/// and a byte range inside its source; the sessions read whole are not flagged.
#[test]
fn no_miss_is_silent() {
    let dir = ssm_audit_tests::repo_root().join("tests/fixtures/recorded-2");
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    ingest(&index, &[&dir]);
    let records = search_json(&index, &[]);
    let idx = index.display().to_string();
    let (code, out, err) = run(&["coverage", "--index", &idx, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let coverage: BTreeMap<String, Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["session_id"].as_str().unwrap().to_string(), v))
        .collect();
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
    let (mut wrong, mut flagged) = (Vec::new(), Vec::new());
    for (sid, s) in truth.as_object().unwrap() {
        let mut got: Vec<&str> = records
            .iter()
            .filter(|r| r["session_id"] == sid.as_str() && r["abandoned"] != true)
            .map(|r| r["command"].as_str().unwrap())
            .collect();
        let mut missed = Vec::new();
        for c in s["commands"].as_array().unwrap() {
            let c = c["command"].as_str().unwrap();
            match got.iter().position(|g| *g == c) {
                Some(i) => {
                    got.remove(i);
                }
                None => missed.push(c),
            }
        }
        let c = &coverage[sid];
        let partial = c["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "partial");
        if !missed.is_empty() || !got.is_empty() {
            wrong.push(sid.as_str());
            assert!(
                partial,
                "{sid} misses {missed:?} and reads {got:?} silently: {c}"
            );
        }
        if partial {
            flagged.push(sid.as_str());
            let log = dir.join("sessions").join(format!("{sid}.log"));
            let size = std::fs::metadata(&log).map_or(u64::MAX, |m| m.len());
            for p in c["partial"].as_array().unwrap() {
                let (a, b) = (
                    p["byte_start"].as_u64().unwrap(),
                    p["byte_end"].as_u64().unwrap(),
                );
                assert!(a < b && b <= size, "{sid}: {p}");
                assert!(!p["reason"].as_str().unwrap().is_empty(), "{p}");
            }
        }
    }
    // What cannot be read whole: a line edited in vi mode and what was typed with echo off,
    // in streams. Flagged besides: `sh` inside tmux and tmux and screen in streams (read by
    // their prompts alone), a line recalled by a search in a stream (read from the search's
    // display).
    wrong.sort_unstable();
    flagged.sort_unstable();
    assert_eq!(
        wrong,
        ["ana-25lv3wmym1c3o4qb2347tscnrs", "ana-2fb5f05c235d285b4"]
    );
    assert_eq!(
        flagged,
        [
            "ana-25lv3wmym1c3o4qb2347tscnrs",
            "ana-2fb5f05c235d285b4",
            "ana-67864c396e94afec5",
            "lee-ab7794d8a58b73777",
            "max-6254f8b82824c97b2",
            "max-dujpxv4jmk68pohoe4fdt5y3ox"
        ]
    );
    let reasons = |sid: &str| coverage[sid]["partial"].to_string();
    assert!(reasons("lee-ab7794d8a58b73777").contains("tmux"));
    assert!(reasons("ana-2fb5f05c235d285b4").contains("echo"));
    assert!(reasons("ana-25lv3wmym1c3o4qb2347tscnrs").contains("vi mode"));
    assert!(reasons("ana-67864c396e94afec5").contains("search"));
    assert!(reasons("max-6254f8b82824c97b2").contains("tmux in a streamed session"));
    // The table says it too.
    let (_, text, _) = run(&["coverage", "--index", &idx]);
    assert!(text.contains("covered PARTIAL"), "{text}");
    assert!(
        text.contains("PARTIAL lee-ab7794d8a58b73777: bytes"),
        "{text}"
    );
    // The line recalled by a search in a stream, the fish block, the fish stream.
    for c in [
        "echo alpha beta",
        "for i in 1 2\necho $i\nend",
        "echo streamed fish",
    ] {
        assert!(records.iter().any(|r| r["command"] == c), "{c:?} not read");
    }
    // The root shell opened inside screen runs as root.
    let shadow: Vec<&Value> = records
        .iter()
        .filter(|r| r["command"] == "cat /etc/shadow | wc -l")
        .collect();
    assert_eq!(shadow.len(), 1);
    assert_eq!(shadow[0]["run_as"], "root");
}

/// A Windows session log (a PowerShell transcript the agent's logger shell writes) and a
/// streamed one (per-user transcription), made from their documented shapes: the user's commands, without the logger's own command line, its
/// `exit` or the transcript's header and footer; Windows account changes match their rules;
/// the instance comes from the transcript's file path.
#[test]
fn windows_transcripts_are_read_without_the_loggers_own_lines() {
    let dir = ssm_audit_tests::repo_root().join("tests/fixtures/windows");
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    ingest(&index, &[&dir]);
    let all = search_json(&index, &[]);
    let records: Vec<&Value> = all
        .iter()
        .filter(|r| r["session_id"] == "pat-0a1b2c3d4e5f60718")
        .collect();
    let got: Vec<&str> = records
        .iter()
        .map(|r| r["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        [
            "whoami",
            "net user backdoor P@ssw0rd1 /add",
            "Add-LocalGroupMember -Group Administrators -Member backdoor",
            "Get-Service sshd",
            "exit"
        ]
    );
    let rules = |i: usize| records[i]["rule"].to_string();
    assert!(rules(1).contains("windows-accounts"), "{}", rules(1));
    assert!(rules(2).contains("windows-local-accounts"), "{}", rules(2));
    assert!(records[0]["rule"].is_null());
    assert!(all
        .iter()
        .all(|r| r["instance_id"] == "i-0123456789abcdef0"));
    // Streamed, PowerShell's transcription: its lines, the transcript's header among them.
    let streamed: Vec<(&str, String)> = all
        .iter()
        .filter(|r| r["session_id"] == "pat-0f1e2d3c4b5a69788")
        .map(|r| (r["command"].as_str().unwrap(), r["rule"].to_string()))
        .collect();
    assert_eq!(streamed.len(), 3, "{streamed:?}");
    assert_eq!(streamed[0].0, "whoami");
    assert_eq!(streamed[1].0, "net localgroup administrators backdoor /add");
    assert!(streamed[1].1.contains("windows-accounts"));
}
