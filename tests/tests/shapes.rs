//! Every shape AWS delivers its evidence in (`tests/fixtures/shapes`, made by its `make.py`
//! from the documented shapes): CloudTrail however it is kept, sessions started with a command,
//! ECS Exec, Run As, one session from S3 and from its stream, MFA that CloudTrail cannot tell,
//! and a root shell killed by a signal.

use serde_json::Value;
use ssm_audit_tests::{ingest, repo_root, run, search_json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn shapes() -> PathBuf {
    repo_root().join("tests/fixtures/shapes")
}

/// Every record of an index, by session, in order.
fn records(index: &Path) -> BTreeMap<String, Vec<Value>> {
    let (code, out, err) = search_json(index, &[]);
    assert_eq!(code, 0, "{err}");
    let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for l in out.lines() {
        let r: Value = serde_json::from_str(l).unwrap();
        by.entry(r["session_id"].as_str().unwrap().to_string())
            .or_default()
            .push(r);
    }
    for v in by.values_mut() {
        v.sort_by_key(|r| r["seq"].as_u64());
    }
    by
}

fn commands(rs: &[Value]) -> Vec<&str> {
    rs.iter().map(|r| r["command"].as_str().unwrap()).collect()
}

/// The index of the whole fixture, ingested once per test.
fn indexed() -> (tempfile::TempDir, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let (code, err) = ingest(&index, &[&shapes()]);
    assert_eq!(code, 0, "every shape is read, nothing fails: {err}");
    (tmp, index, err)
}

#[test]
fn cloudtrail_in_every_delivery_shape_attributes_its_session() {
    let (_tmp, index, err) = indexed();
    assert!(!err.contains("error:"), "{err}");
    let by = records(&index);
    let expected: BTreeMap<String, Value> =
        serde_json::from_slice(&std::fs::read(shapes().join("EXPECTED.json")).unwrap()).unwrap();
    // ana: a subscription payload; ben: filter-log-events; cho: lookup-events; dev: EventBridge
    // as delivered; eun: EventBridge in a log group; fay, gil: the two Firehose objects; hal: a
    // SIEM export.
    assert_eq!(expected.len(), 8);
    for (who, want) in &expected {
        let sid = want["session_id"].as_str().unwrap();
        let rs = by.get(sid).unwrap_or_else(|| panic!("{who}: no records"));
        for r in rs {
            assert_eq!(r["attribution"], "cloudtrail", "{who}: {r}");
            assert_eq!(r["principal_arn"], want["principal_arn"], "{who}");
            assert_eq!(
                r["source_ip"]
                    .as_str()
                    .map(|s| s.starts_with("198.51.100.")),
                Some(true)
            );
            assert!(
                r["session_end"].is_string(),
                "{who}: its TerminateSession too"
            );
        }
    }
    // The SIEM's time is read as the time it is, so date filters find the session.
    let hal = &by["hal-000000000000a0008"][0];
    assert_eq!(hal["session_start"], "2025-02-19T20:13:49Z");
    assert_eq!(hal["session_end"], "2025-02-19T20:14:30Z");
    let (code, out, _) = search_json(&index, &["--since", "2025-02-19", "--until", "2025-02-20"]);
    assert_eq!(code, 0);
    assert!(
        out.lines().count() >= 3 && out.lines().all(|l| l.contains("hal-000000000000a0008")),
        "{out}"
    );
}

#[test]
fn a_session_started_with_a_command_has_it_as_a_record_from_cloudtrail() {
    let (_tmp, index, _) = indexed();
    let by = records(&index);
    let ivy = &by["ivy-000000000000b0001"];
    assert_eq!(
        commands(ivy),
        ["sudo cat /etc/shadow"],
        "its transcript holds only output"
    );
    let r = &ivy[0];
    assert_eq!(r["seq"], 0);
    assert_eq!(r["started_with"]["document"], "AWS-StartInteractiveCommand");
    assert_eq!(r["started_with"]["event_name"], "StartSession");
    assert_eq!(r["programs"], serde_json::json!(["sudo", "cat"]));
    assert!(r["rule"].to_string().contains("privilege-elevation"), "{r}");
    assert_eq!(
        (
            r["evidence"]["byte_start"].as_u64(),
            r["evidence"]["byte_end"].as_u64()
        ),
        (Some(0), Some(0))
    );
    // Its transcript is its output.
    let idx = index.display().to_string();
    let (_, out, _) = run(&[
        "search",
        "--index",
        &idx,
        "--format",
        "json",
        "--with-output",
        "shadow",
    ]);
    let with: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let r = with
        .iter()
        .find(|r| r["session_id"] == "ivy-000000000000b0001")
        .expect("found by its command");
    assert_eq!(
        r["output"],
        "root:*LOCK*:14600::::::\nssm-user:!!:20100:0:99999:7:::"
    );
    // With no transcript at all, CloudTrail alone gives the record, its evidence the trail file.
    let pam = &by["pam-000000000000b0009"];
    assert_eq!(commands(pam), ["sudo systemctl stop auditd"]);
    assert_eq!(
        pam[0]["started_with"]["document"],
        "AWS-StartNonInteractiveCommand"
    );
    assert!(pam[0]["evidence"]["source"]
        .as_str()
        .unwrap()
        .ends_with("other/trail.json"));
    let sha =
        indexer::model::sha256_hex(&std::fs::read(shapes().join("other/trail.json")).unwrap());
    assert_eq!(pam[0]["evidence"]["sha256"], sha.as_str());
    // `who sudo` finds their principals.
    let (code, out, err) = run(&["who", "--index", &idx, "sudo"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ivy") && out.contains("pam"), "{out}");
}

#[test]
fn ecs_exec_names_its_caller_and_does_not_guess_its_user() {
    let (_tmp, index, _) = indexed();
    let by = records(&index);
    let ecs = &by["ecs-execute-command-0c1d2e3f4a5b6c7d8"];
    assert_eq!(
        commands(ecs),
        ["/bin/sh", "whoami", "cat /proc/1/environ", "exit"]
    );
    for r in ecs {
        assert_eq!(r["principal"], "jon");
        assert_eq!(r["attribution"], "cloudtrail");
        assert_eq!(r["login_user_from"], "unknown");
    }
    assert_eq!(ecs[0]["started_with"]["event_name"], "ExecuteCommand");
    // The task, as the log's header names it.
    assert!(
        ecs[1]["instance_id"]
            .as_str()
            .unwrap()
            .starts_with("ecs:web_"),
        "{}",
        ecs[1]
    );
    assert!(ecs[0]["run_as"].is_null(), "{}", ecs[0]);
    // The `#` prompt says root.
    assert_eq!(ecs[1]["run_as"], "root");
}

#[test]
fn run_as_follows_what_the_session_showed_not_ssm_user() {
    let (_tmp, index, _) = indexed();
    let by = records(&index);
    let kim: Vec<(&str, &str)> = by["kim-000000000000b0003"]
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap(),
                r["run_as"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kim,
        [
            ("ls", "ec2-user"),
            ("whoami", "ec2-user"),
            ("sudo su -", "ec2-user"),
            ("id", "root"),
            ("exit", "root"),
            ("exit", "ec2-user")
        ]
    );
    assert_eq!(by["kim-000000000000b0003"][0]["login_user_from"], "output");
    // `--run-as` finds the lines of the user the session showed.
    let idx = index.display().to_string();
    let (_, out, _) = run(&[
        "search", "--index", &idx, "--run-as", "ec2-user", "--format", "json",
    ]);
    assert!(
        out.lines()
            .any(|l| l.contains("\"command\":\"ls\"") && l.contains("kim-")),
        "{out}"
    );
    // The stream's runAsUser, for its S3 log too.
    for r in &by["lee-000000000000b0004"] {
        assert_eq!(r["run_as"], "ec2-user");
        assert_eq!(r["login_user_from"], "stream");
    }
    // Nothing says otherwise: Session Manager's default, said to be one.
    assert_eq!(by["mia-000000000000b0005"][0]["run_as"], "ssm-user");
    assert_eq!(by["mia-000000000000b0005"][0]["login_user_from"], "default");
}

#[test]
fn one_session_from_s3_and_its_stream_gives_one_answer_whatever_the_order() {
    let dir = shapes().join("other");
    let log = dir.join("sessions/lee-000000000000b0004.log");
    let stream = dir.join("streams/lee-000000000000b0004.json");
    let tmp = tempfile::tempdir().unwrap();
    let mut got = Vec::new();
    for (name, order) in [("a", [&log, &stream]), ("b", [&stream, &log])] {
        let index = tmp.path().join(name);
        for p in order {
            let (code, err) = ingest(&index, &[p]);
            assert_eq!(code, 0, "{err}");
        }
        let (_, out, _) = search_json(&index, &[]);
        got.push(out);
    }
    assert_eq!(got[0], got[1], "the same records in either order");
    let rs: Vec<Value> = got[0]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rs.len(), 3);
    for r in &rs {
        assert_eq!(
            r["principal_arn"], "arn:aws:iam::444455556666:user/lee",
            "{r}"
        );
        assert_eq!(r["attribution"], "stream");
        assert_eq!(r["instance_id"], "i-0a1b2c3d4e5f60718");
        assert_eq!(
            r["session_start"], "2026-03-03T09:30:00Z",
            "the stream's first event"
        );
    }
}

#[test]
fn mfa_that_cloudtrail_cannot_tell_is_unknown_and_says_why() {
    let (_tmp, index, _) = indexed();
    let by = records(&index);
    let mia = &by["mia-000000000000b0005"][0];
    assert!(mia["mfa"].is_null(), "{mia}");
    assert!(mia["mfa_unknown"]
        .as_str()
        .unwrap()
        .contains("Identity Center"));
    let nia = &by["nia-000000000000b0006"][0];
    assert!(nia["mfa"].is_null(), "{nia}");
    assert!(nia["mfa_unknown"]
        .as_str()
        .unwrap()
        .contains("no MFA attribute"));
    assert_eq!(by["ana-000000000000a0001"][0]["mfa"], true);
    let idx = index.display().to_string();
    let (_, out, _) = run(&["coverage", "--index", &idx]);
    assert!(out.contains("2 whose MFA CloudTrail cannot tell"), "{out}");
    let (_, json, _) = run(&["coverage", "--index", &idx, "--format", "json"]);
    let unknown = json
        .lines()
        .filter(|l| l.contains("\"mfa_unknown\""))
        .count();
    assert_eq!(unknown, 2, "{json}");
}

#[test]
fn a_signal_notice_on_a_dead_shells_prompt_is_not_a_command() {
    let (_tmp, index, _) = indexed();
    let by = records(&index);
    let oli: Vec<(&str, &str)> = by["oli-000000000000b0007"]
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap(),
                r["run_as"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        oli,
        [
            ("sudo su -", "ssm-user"),
            ("whoami", "root"),
            ("ls", "ssm-user"),
            ("exit", "ssm-user")
        ]
    );
    assert!(by["oli-000000000000b0007"]
        .iter()
        .all(|r| r["suspicious"].is_null()));
}

/// Every field the new shapes give a record has a column in the Athena tables.
#[test]
fn the_glue_tables_have_a_column_for_every_field_these_records_have() {
    let (_tmp, index, _) = indexed();
    let template = std::fs::read_to_string(repo_root().join("infra/audit.yaml")).unwrap();
    let columns: std::collections::BTreeSet<&str> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- {Name: "))
        .filter_map(|l| l.split(',').next())
        .collect();
    let fields: std::collections::BTreeSet<String> = records(&index)
        .values()
        .flatten()
        .flat_map(|r| r.as_object().unwrap().keys().cloned())
        .collect();
    for f in [
        "started_with",
        "mfa_unknown",
        "login_user",
        "login_user_from",
    ] {
        assert!(fields.contains(f), "{f} among {fields:?}");
    }
    for f in &fields {
        assert!(columns.contains(f.as_str()), "no column for {f}");
    }
}

/// macOS: BSD `script`'s header names the command on a line of its own, its footer gives the
/// exit status and a ctime time; neither is a command, and the instance and end come from them.
#[test]
fn a_macos_session_log_gives_its_instance_end_and_commands() {
    let (_tmp, index, _) = indexed();
    let by = records(&index);
    let zoe = &by["zoe-000000000000b0008"];
    assert_eq!(commands(zoe), ["whoami", "sudo -i", "id", "exit", "exit"]);
    assert_eq!(zoe[2]["run_as"], "root");
    for r in zoe {
        assert_eq!(r["instance_id"], "i-0f9e8d7c6b5a49382");
        assert_eq!(r["session_end"], "2026-03-03T10:15:00Z");
    }
}

/// The preferences' shell profile, which the agent writes into the terminal before the shell
/// reads it: marked as such where the shell shows it again (bash), and where it does not
/// (dash, Ubuntu's `sh`) taken from what the terminal showed before the first prompt, the
/// session flagged partial (what shows at the first prompt may be its output).
#[test]
fn the_shell_profile_is_marked_not_taken_for_the_users_typing() {
    let (_tmp, index, _) = indexed();
    let by = records(&index);
    let marked = |sid: &str| -> Vec<(String, bool)> {
        by[sid]
            .iter()
            .map(|r| {
                (
                    r["command"].as_str().unwrap().to_string(),
                    r["shell_profile"] == true,
                )
            })
            .collect()
    };
    let profile = ("cd /tmp; echo profile-ran".to_string(), true);
    assert_eq!(
        marked("sam-000000000000b000a"),
        [
            profile.clone(),
            ("uptime -p".into(), false),
            ("exit".into(), false)
        ]
    );
    let tia = marked("tia-000000000000b000b");
    assert_eq!(tia[0], profile);
    assert_eq!(
        &tia[2..],
        [("uptime -p".into(), false), ("exit".into(), false)]
    );
    let idx = index.display().to_string();
    let (_, cov, _) = run(&["coverage", "--index", &idx, "--format", "json"]);
    let flagged: Vec<&str> = cov
        .lines()
        .filter(|l| l.contains("before the shell's first prompt"))
        .collect();
    assert_eq!(flagged.len(), 1, "{cov}");
    assert!(flagged[0].contains("tia-000000000000b000b"));
}

/// Streamed sessions as CloudWatch Logs -> Firehose -> S3 writes them give the records their
/// stream gives, pointing into the same canonical document.
#[test]
fn a_firehose_object_of_streamed_sessions_reads_as_the_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let of = |name: &str, path: PathBuf| -> Vec<(u64, String, String)> {
        let index = tmp.path().join(name);
        let (code, err) = ingest(&index, &[&path]);
        assert_eq!(code, 0, "{err}");
        let (_, out, _) = search_json(&index, &[]);
        out.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|r| {
                (
                    r["seq"].as_u64().unwrap(),
                    r["command"].as_str().unwrap().to_string(),
                    r["evidence"]["sha256"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let firehose = of("firehose", shapes().join("firehose-streams"));
    let stream = of(
        "stream",
        shapes().join("other/streams/lee-000000000000b0004.json"),
    );
    assert_eq!(firehose.len(), 3);
    assert_eq!(firehose, stream);
}
