//! CloudTrail log file validation (issue 19), on moto S3 through the real SDK: the corpus's
//! CloudTrail files with digest files signed the way CloudTrail signs them (SHA256withRSA over
//! `digestEndTime\nbucket/key\nhex SHA-256 of the digest\nprevious signature`, the signature in
//! the digest object's `signature` metadata), and the public key in the shape `aws cloudtrail
//! list-public-keys` prints. A clean trail verifies; a CloudTrail file changed after ingest, one
//! inside a digest's period that no digest lists, and a digest whose signature does not match are
//! each named, and fail.

use serde_json::{json, Value};
use ssm_audit_tests::aws::Moto;
use ssm_audit_tests::cloudtrail_api::{
    digests, gunzip, gzip, keys_file, public_der, Digest, KeysApi, ACCOUNT, FINGERPRINT, REGION,
};
use ssm_audit_tests::corpus;

const BUCKET: &str = "org-trail";

struct Trail {
    moto: Moto,
    rt: tokio::runtime::Runtime,
    s3: aws_sdk_s3::Client,
    files: Vec<(String, Vec<u8>)>,
    digests: Vec<Digest>,
}

impl Trail {
    fn put(&self, key: &str, body: Vec<u8>, signature: Option<&str>) {
        let mut put = self
            .s3
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.into());
        if let Some(s) = signature {
            put = put
                .metadata("signature", s)
                .metadata("signature-algorithm", "SHA256withRSA");
        }
        self.rt.block_on(put.send()).unwrap();
    }

    fn ssm_audit(&self, args: &[&str]) -> (i32, String, String) {
        self.ssm_audit_with(&[], args)
    }

    /// With more environment (the CloudTrail API's endpoint).
    fn ssm_audit_with(&self, env: &[(&str, String)], args: &[&str]) -> (i32, String, String) {
        let out = ssm_audit_tests::ssm_audit()
            .envs(self.moto.env())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The corpus's CloudTrail files in a bucket, under the keys CloudTrail gives them, with their
/// signed digests (the digest of 2026-02-14 left out when `all_days` is false).
fn trail() -> Trail {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = moto.s3();
    rt.block_on(s3.create_bucket().bucket(BUCKET).send())
        .unwrap();
    let root = corpus().join("cloudtrail");
    let mut files: Vec<(String, Vec<u8>)> = ssm_audit_tests::files_under(&root)
        .into_iter()
        .map(|p| {
            let key = p.strip_prefix(&root).unwrap().display().to_string();
            (key, gunzip(&std::fs::read(&p).unwrap()))
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 5);
    let digests = digests(
        BUCKET,
        &files,
        &["20260210", "20260211", "20260212", "20260213", "20260214"],
    );
    let t = Trail {
        moto,
        rt,
        s3,
        files,
        digests,
    };
    for (k, bytes) in &t.files {
        t.put(k, gzip(bytes), None);
    }
    for d in &t.digests {
        t.put(&d.key, d.body.clone(), Some(&d.signature));
    }
    t
}

/// Every record of the index at `idx`, as JSON.
fn records_of(t: &Trail, idx: &str) -> Vec<Value> {
    let (_, out, _) = t.ssm_audit(&[
        "search", "--index", idx, "--format", "json", "--limit", "1000000",
    ]);
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn lines_naming<'a>(out: &'a str, kind: &str, name: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.starts_with(kind) && l.contains(name))
        .collect()
}

#[test]
fn a_signed_trail_verifies_and_a_changed_or_unlisted_file_or_a_bad_digest_is_named() {
    let t = trail();
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys_file(tmp.path());
    let keys_arg = keys.display().to_string();
    let index = tmp.path().join("index");
    let idx = index.display().to_string();
    let sessions = corpus().join("sessions").display().to_string();
    let source = format!("s3://{BUCKET}/AWSLogs/");
    let (code, _, err) = t.ssm_audit(&[
        "ingest",
        "--cloudtrail-keys",
        &keys_arg,
        "--index",
        &idx,
        &sessions,
        &source,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("CloudTrail: 5 of 5 files validated by 5 signed digests"),
        "{err}"
    );

    // Clean: every CloudTrail file validated by a signed digest.
    let (code, out, err) =
        t.ssm_audit(&["verify", "--cloudtrail-keys", &keys_arg, "--index", &idx]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("5 CloudTrail files validated by 5 signed digests"),
        "{out}"
    );
    // The digests ingested after the files they list (as they arrive, an hour later): the
    // sessions those files attribute are derived again, and say their CloudTrail is validated.
    let late = tmp.path().join("late");
    let late_idx = late.display().to_string();
    let trail_only = format!("s3://{BUCKET}/AWSLogs/{ACCOUNT}/CloudTrail/");
    let digests_only = format!("s3://{BUCKET}/AWSLogs/{ACCOUNT}/CloudTrail-Digest/");
    t.ssm_audit(&["ingest", "--index", &late_idx, &sessions, &trail_only]);
    let before = records_of(&t, &late_idx);
    assert!(
        before
            .iter()
            .filter(|r| r["attribution"] == "cloudtrail")
            .all(|r| r["cloudtrail_validated"] == false),
        "not validated before the digests"
    );
    let (code, _, err) = t.ssm_audit(&[
        "ingest",
        "--cloudtrail-keys",
        &keys_arg,
        "--index",
        &late_idx,
        &digests_only,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        records_of(&t, &late_idx),
        records_of(&t, &idx),
        "digests after their files give what digests first give"
    );

    // Without the keys, the hashes and the chain are checked and the signatures are said not
    // to be.
    let (code, out, _) = t.ssm_audit(&["verify", "--index", &idx]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("not checked:") && l.contains("--cloudtrail-keys"))
            .count(),
        5,
        "{out}"
    );

    // A CloudTrail file changed after ingest: a StartSession's source IP rewritten.
    let (changed_key, original) = &t.files[2];
    let forged = String::from_utf8(original.clone()).unwrap().replacen(
        "\"sourceIPAddress\": \"",
        "\"sourceIPAddress\": \"6",
        1,
    );
    assert!(
        forged.as_bytes() != original.as_slice(),
        "the file was changed"
    );
    t.put(changed_key, gzip(forged.as_bytes()), None);
    let (code, out, _) = t.ssm_audit(&["verify", "--cloudtrail-keys", &keys_arg, "--index", &idx]);
    assert_eq!(code, 1, "{out}");
    let url = format!("s3://{BUCKET}/{changed_key}");
    let named = lines_naming(&out, "CHANGED", &url);
    assert!(
        named.iter().any(|l| l.contains("the digest")),
        "the change is named against the digest: {out}"
    );
    assert!(
        out.lines()
            .filter(|l| !l.starts_with("not checked") && l.contains("s3://"))
            .all(|l| l.contains(&url)),
        "only that file is named: {out}"
    );
    t.put(changed_key, gzip(original), None);

    // Every record attributed by CloudTrail says its CloudTrail is validated.
    let records = records_of(&t, &idx);
    let attributed: Vec<&Value> = records
        .iter()
        .filter(|r| r["attribution"] == "cloudtrail")
        .collect();
    assert!(attributed.len() > 10);
    assert!(
        attributed
            .iter()
            .all(|r| r["cloudtrail_validated"] == Value::Bool(true)),
        "{attributed:?}"
    );

    // A CloudTrail file inside a digest's period that no digest lists: a forged StartSession
    // for a session of that day, a minute before the genuine one, from another address.
    let mut doc: Value = serde_json::from_slice(original).unwrap();
    let genuine = doc["Records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["eventName"] == "StartSession")
        .unwrap()
        .clone();
    let sid = genuine["responseElements"]["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    let genuine_ip = genuine["sourceIPAddress"].as_str().unwrap().to_string();
    let mut forged_start = genuine.clone();
    forged_start["sourceIPAddress"] = "198.51.100.66".into();
    forged_start["eventID"] = "00000000-0000-0000-0000-000000000066".into();
    let t0 = chrono::DateTime::parse_from_rfc3339(genuine["eventTime"].as_str().unwrap()).unwrap();
    forged_start["eventTime"] = (t0 - chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
        .into();
    doc["Records"] = json!([forged_start]);
    let unlisted = format!(
        "AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/02/12/{ACCOUNT}_CloudTrail_{REGION}_20260212T0010Z_forged00000001.json.gz"
    );
    t.put(&unlisted, gzip(&serde_json::to_vec(&doc).unwrap()), None);
    let index2 = tmp.path().join("index2");
    let idx2 = index2.display().to_string();
    let (code, _, err) = t.ssm_audit(&[
        "ingest",
        "--cloudtrail-keys",
        &keys_arg,
        "--index",
        &idx2,
        &sessions,
        &source,
    ]);
    // Ingest validates what it read, and names it already.
    assert_eq!(code, 2, "{err}");
    let unlisted_url = format!("s3://{BUCKET}/{unlisted}");
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("error: {unlisted_url}: "))
                && l.contains("does not list it")),
        "{err}"
    );
    assert!(
        err.contains("CloudTrail: 5 of 6 files validated by 5 signed digests"),
        "{err}"
    );
    let (code, out, _) = t.ssm_audit(&["verify", "--cloudtrail-keys", &keys_arg, "--index", &idx2]);
    assert_eq!(code, 1, "{out}");
    let named = lines_naming(&out, "UNLISTED", &format!("s3://{BUCKET}/{unlisted}"));
    assert_eq!(named.len(), 1, "{out}");
    assert!(named[0].contains("does not list it"), "{out}");
    assert!(
        !out.lines().any(|l| l.starts_with("RECORDS")),
        "the records derive again as the index holds them: {out}"
    );
    // The validated StartSession wins over the earlier forged one, and the conflict is shown.
    let session = |idx: &str| -> Value {
        records_of(&t, idx)
            .into_iter()
            .find(|r| r["session_id"] == sid.as_str())
            .unwrap_or_else(|| panic!("no record of {sid}"))
    };
    let r = session(&idx2);
    assert_eq!(r["source_ip"], genuine_ip.as_str(), "{r}");
    assert_eq!(r["cloudtrail_validated"], true, "{r}");
    let conflicts = r["conflicts"].to_string();
    assert!(
        conflicts.contains("198.51.100.66") && conflicts.contains("(not validated)"),
        "{r}"
    );
    // Without the keys nothing is validated: the earlier record is taken, and says so.
    let index2b = tmp.path().join("index2b");
    let idx2b = index2b.display().to_string();
    t.ssm_audit(&["ingest", "--index", &idx2b, &sessions, &source]);
    let r = session(&idx2b);
    assert_eq!(r["source_ip"], "198.51.100.66", "{r}");
    assert_eq!(r["cloudtrail_validated"], false, "{r}");
    assert!(r["conflicts"].to_string().contains(&genuine_ip), "{r}");
    // Reports say it, session by session.
    let user = r["principal"].as_str().unwrap().to_string();
    for (idx, says) in [
        (&idx2, "CloudTrail validated"),
        (&idx2b, "**CloudTrail not validated**"),
    ] {
        let out = tmp.path().join("report.md");
        let (code, _, err) = t.ssm_audit(&[
            "report",
            "--index",
            idx,
            "--user",
            &user,
            "--format",
            "md",
            "--out",
            &out.display().to_string(),
        ]);
        assert_eq!(code, 0, "{err}");
        let md = std::fs::read_to_string(&out).unwrap();
        let section = md.split(&format!("## `{sid}`")).nth(1).unwrap_or("");
        assert!(section.contains(says), "{idx}: {md}");
    }
    t.rt.block_on(t.s3.delete_object().bucket(BUCKET).key(&unlisted).send())
        .unwrap();

    // A digest whose signature does not match (its signature metadata is another digest's):
    // ingest refuses it, naming it; verify of an index that took it names it too.
    let bad = &t.digests[1];
    t.put(&bad.key, bad.body.clone(), Some(&t.digests[0].signature));
    let bad_url = format!("s3://{BUCKET}/{}", bad.key);
    let index3 = tmp.path().join("index3");
    let idx3 = index3.display().to_string();
    let (code, _, err) = t.ssm_audit(&[
        "ingest",
        "--cloudtrail-keys",
        &keys_arg,
        "--index",
        &idx3,
        &source,
    ]);
    assert_eq!(code, 2, "{err}");
    let refused: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with(&format!("error: {bad_url}")))
        .collect();
    assert!(
        refused.len() == 1 && refused[0].contains("signature does not match"),
        "{err}"
    );
    let index4 = tmp.path().join("index4");
    let idx4 = index4.display().to_string();
    let (code, _, err) = t.ssm_audit(&["ingest", "--index", &idx4, &source]);
    // Without the keys, ingest still sees the chain broken at it.
    assert_eq!(code, 2, "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("error: {bad_url}: ")) && l.contains("chain broken")),
        "{err}"
    );
    let (code, out, _) = t.ssm_audit(&["verify", "--cloudtrail-keys", &keys_arg, "--index", &idx4]);
    assert_eq!(code, 1, "{out}");
    let named = lines_naming(&out, "DIGEST", &bad_url);
    assert!(
        named.iter().any(|l| l.contains("signature does not match"))
            && out.lines().filter(|l| l.starts_with("DIGEST")).count() == named.len(),
        "{out}"
    );
    // The CloudTrail file only it lists is not validated, and says why.
    assert!(
        out.lines().any(|l| l.starts_with("not checked:")
            && l.contains("_20260211T0000Z_")
            && l.contains("refused")),
        "{out}"
    );
}

#[test]
fn without_a_keys_file_the_keys_are_asked_of_the_cloudtrail_api() {
    let t = trail();
    let tmp = tempfile::tempdir().unwrap();
    let sessions = corpus().join("sessions").display().to_string();
    let source = format!("s3://{BUCKET}/AWSLogs/");
    let api = KeysApi::start(vec![(FINGERPRINT.to_string(), public_der())]);
    let idx = tmp.path().join("index").display().to_string();
    let (code, _, err) =
        t.ssm_audit_with(&api.env(), &["ingest", "--index", &idx, &sessions, &source]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("CloudTrail: 5 of 5 files validated by 5 signed digests")
            && !err.contains("not checked"),
        "{err}"
    );
    // Asked once, in the digests' region, for keys valid from the first digest read on.
    let asked = api.asked();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].region, REGION);
    let first_start = chrono::DateTime::parse_from_rfc3339("2026-02-09T23:30:00Z")
        .unwrap()
        .timestamp() as f64;
    assert_eq!(
        asked[0].body["StartTime"].as_f64(),
        Some(first_start),
        "{asked:?}"
    );
    assert!(records_of(&t, &idx)
        .iter()
        .filter(|r| r["attribution"] == "cloudtrail")
        .all(|r| r["cloudtrail_validated"] == true));
    let (code, out, _) = t.ssm_audit_with(&api.env(), &["verify", "--index", &idx]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("5 CloudTrail files validated by 5 signed digests")
            && !out.contains("not checked"),
        "{out}"
    );
    assert_eq!(api.asked().len(), 2);

    // An API that lists other keys: every digest is refused, and the key is named.
    let other = KeysApi::start(vec![("0f0f0f".to_string(), public_der())]);
    let idx2 = tmp.path().join("index2").display().to_string();
    let (code, _, err) = t.ssm_audit_with(&other.env(), &["ingest", "--index", &idx2, &source]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("error: s3://")
                && l.contains("CloudTrail-Digest")
                && l.contains(&format!(
                    "not among the public keys the CloudTrail API lists for {REGION}"
                )))
            .count(),
        5,
        "{err}"
    );

    // An API that does not answer (moto has no ListPublicKeys): the hashes and the chain are
    // still checked, and the summary says why the signatures were not.
    let idx3 = tmp.path().join("index3").display().to_string();
    let (code, _, err) = t.ssm_audit(&["ingest", "--index", &idx3, &sessions, &source]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("CloudTrail: 0 of 5 files validated")
            && l.contains(&format!("signatures not checked: no --cloudtrail-keys, and the CloudTrail API did not give the public keys ({REGION}: "))),
        "{err}"
    );
}
