//! The deployment templates: linted, scanned, complete, and the Athena query of infra/README.md
//! answering like `ssm-audit who` over the records the Lambda writes.

use aws_adapters::objects::{DirStore, ObjectStore};
use ingest_lambda::handler::{self, Deps};
use ingest_lambda::pipeline::{Output, Pipeline};
use serde_json::Value;
use ssm_audit_tests::aws::s3_event;
use ssm_audit_tests::{corpus, files_under, repo_root, run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A tool of the infra virtualenv (`scripts/test` makes it), else the one on the PATH.
fn tool(name: &str) -> PathBuf {
    if let Some(v) = std::env::var_os("SSM_AUDIT_INFRA_VENV").filter(|v| !v.is_empty()) {
        return PathBuf::from(v).join("bin").join(name);
    }
    PathBuf::from(name)
}

/// A tool's run, its start tried again twice when the system refuses it (once, under the load of
/// the whole suite, starting checkov failed); every refusal is printed.
trait OutputRetried {
    fn output_retried(&mut self) -> std::process::Output;
}

impl OutputRetried for Command {
    fn output_retried(&mut self) -> std::process::Output {
        let mut tries = 0;
        loop {
            match self.output() {
                Ok(out) => return out,
                Err(e) if tries < 2 => {
                    use std::io::Write as _;
                    let program = self.get_program().to_owned();
                    writeln!(std::io::stderr(), "{program:?} did not start: {e:?}; again").ok();
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
                Err(e) => panic!("{:?} does not start: {e:?}", self.get_program()),
            }
        }
    }
}

fn templates() -> Vec<PathBuf> {
    let mut t: Vec<PathBuf> = std::fs::read_dir(repo_root().join("infra"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    t.sort();
    assert!(t.len() >= 2, "{t:?}");
    t
}

#[test]
fn cfn_lint_finds_no_error_and_no_warning() {
    let out = Command::new(tool("cfn-lint"))
        .args(templates())
        .output_retried();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "cfn-lint:\n{text}"
    );
}

#[test]
fn checkov_leaves_no_failed_check() {
    let out = Command::new(tool("checkov"))
        .args([
            "-d",
            &repo_root().join("infra").display().to_string(),
            "--compact",
            "--skip-download",
            "-o",
            "cli",
        ])
        .env("BC_SKIP_MAPPING", "TRUE")
        .output_retried();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "checkov:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Failed checks: 0"), "{text}");
}

#[test]
fn the_templates_hold_every_resource_named_in_the_issue() {
    let out = Command::new(tool("python3"))
        .arg(repo_root().join("tests/infra/check_templates.py"))
        .arg(repo_root().join("infra"))
        .output()
        .expect("python3 runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("all present"), "{text}");
}

/// The query between the marker and the end of its ```sql block in infra/README.md.
fn readme_sql() -> String {
    let readme = std::fs::read_to_string(repo_root().join("infra/README.md")).unwrap();
    let after = readme
        .split("<!-- who-ran-sudo-sql -->")
        .nth(1)
        .expect("the SQL marker");
    let block = after.split("```sql").nth(1).expect("a sql block");
    block.split("```").next().unwrap().trim().to_string()
}

/// Run the Lambda's handler over the corpus with folders standing for the buckets.
fn lambda_records(root: &Path) -> PathBuf {
    let c = corpus();
    let bucket = root.join("logs");
    let mut keys = Vec::new();
    let copy =
        |from: &Path, key: &str, keys: &mut Vec<(String, Option<String>, Option<String>, u64)>| {
            let dest = bucket.join(key);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(from, &dest).unwrap();
            keys.push((
                key.to_string(),
                None,
                Some(format!("{:x}", std::fs::metadata(from).unwrap().len())),
                0,
            ));
        };
    for e in std::fs::read_dir(c.join("sessions")).unwrap() {
        let p = e.unwrap().path();
        copy(
            &p,
            &format!("sessions/{}", p.file_name().unwrap().to_string_lossy()),
            &mut keys,
        );
    }
    for (i, p) in files_under(&c.join("cloudtrail")).iter().enumerate() {
        copy(p, &format!("AWSLogs/trail-{i}.json.gz"), &mut keys);
    }
    for p in files_under(&c.join("cloudwatch")) {
        copy(
            &p,
            &format!("streams/{}", p.file_name().unwrap().to_string_lossy()),
            &mut keys,
        );
    }
    copy(
        &c.join("describe-instances.json"),
        "inventory/describe-instances.json",
        &mut keys,
    );
    let out = root.join("records");
    let buckets_root = root.to_path_buf();
    let deps = Deps {
        buckets: Arc::new(move |b: &str| {
            Arc::new(DirStore::new(&buckets_root.join(b))) as Arc<dyn ObjectStore>
        }),
        pipeline: Pipeline::new(Output {
            store: Arc::new(DirStore::new(&out)),
            prefix: "audit".into(),
        }),
        index_dir: None,
        anchor: None,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    for k in keys {
        let r = rt.block_on(handler::handle(s3_event("logs", &[k]), &deps));
        assert!(r.is_ok(), "{r:?}");
    }
    out.join("audit/sessions")
}

#[test]
fn the_athena_query_gives_the_principals_of_ssm_audit_who() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = lambda_records(tmp.path());
    let sql = readme_sql();
    assert!(sql.contains("FROM ssm_audit.commands"), "{sql}");
    let local = sql.replace(
        "ssm_audit.commands",
        &format!(
            "read_json_auto('{}/*/*.jsonl', format='newline_delimited')",
            sessions.display()
        ),
    );
    let script = format!(
        "import duckdb, json\nfor row in duckdb.sql({local:?}).fetchall():\n    print(json.dumps(row))\n"
    );
    let out = Command::new(tool("python3"))
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let athena: Vec<(String, u64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v[0].as_str().unwrap().to_string(), v[2].as_u64().unwrap())
        })
        .collect();
    // The CLI's answer over a local ingest of the same files.
    let index = tmp.path().join("idx");
    let idx = index.display().to_string();
    let c = corpus();
    let (code, _, err) = run(&[
        "ingest",
        "--index",
        &idx,
        &c.join("sessions").display().to_string(),
        &c.join("cloudtrail").display().to_string(),
        &c.join("cloudwatch").display().to_string(),
        &c.join("describe-instances.json").display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (_, who, _) = run(&[
        "who",
        "sudo",
        "--instance",
        "EC2-A",
        "--index",
        &idx,
        "--format",
        "json",
    ]);
    let mut cli: Vec<(String, u64)> = who
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["principal_arn"].as_str().unwrap().to_string(),
                v["commands"].as_u64().unwrap(),
            )
        })
        .collect();
    cli.sort();
    assert_eq!(athena.len(), 3, "{athena:?}");
    assert_eq!(athena, cli);
}

/// The AWS CLI `scripts/test` installs (`SSM_AUDIT_AWSCLI`), else the one on the PATH.
fn aws_cli_dir() -> Option<PathBuf> {
    std::env::var_os("SSM_AUDIT_AWSCLI")
        .filter(|p| !p.is_empty())
        .and_then(|p| PathBuf::from(p).parent().map(Path::to_path_buf))
}

/// `scripts/deploy` against a moto_server: the standard AWS environment, a zip in place of the
/// packaged function (its build is `scripts/package-lambda`'s, measured apart).
fn deploy(moto: &ssm_audit_tests::aws::Moto, zip: &Path, extra: &[&str]) -> (bool, String) {
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = aws_cli_dir() {
        let mut dirs = vec![dir];
        dirs.extend(std::env::split_paths(&path));
        path = std::env::join_paths(dirs).unwrap();
    }
    let out = Command::new(repo_root().join("scripts/deploy"))
        .args(["--artifact-bucket", "artifacts", "--region", "us-east-1"])
        .arg("--artifact")
        .arg(zip)
        .args(extra)
        .env("PATH", path)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .expect("scripts/deploy runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn scripts_deploy_creates_both_stacks_on_moto_and_updates_them() {
    let moto = ssm_audit_tests::aws::Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("bootstrap.zip");
    // A zip with a `bootstrap` in it: moto keeps the code, never runs it.
    let status = Command::new(ssm_audit_tests::aws::moto_python())
        .args([
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], 'w'); z.writestr('bootstrap', '#!/bin/sh\\n'); z.close()",
        ])
        .arg(&zip)
        .status()
        .unwrap();
    assert!(status.success());

    let (ok, text) = deploy(&moto, &zip, &["--owner", "alice"]);
    assert!(ok, "{text}");
    for stack in ["ssm-audit-network", "ssm-audit"] {
        assert!(
            text.contains(&format!("scripts/deploy: {stack}: CREATE_COMPLETE")),
            "{stack} not created:\n{text}"
        );
    }
    assert!(
        text.contains("s3://ssm-audit-records-123456789012/audit/sessions/")
            && text.contains("ssm-audit backfill"),
        "the next steps name where records land and how to backfill:\n{text}"
    );
    let check = |what: &str| {
        let out = Command::new(ssm_audit_tests::aws::moto_python())
            .arg(repo_root().join("tests/infra/check_deployed.py"))
            .arg(&moto.endpoint)
            .arg("ssm-audit")
            .output()
            .expect("python3 runs");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("deployed"),
            "{what}: {text}"
        );
    };
    check("after creation");

    // Again: both stacks are updated in place, the artifact bucket is not created twice.
    let (ok, text) = deploy(&moto, &zip, &["--owner", "alice"]);
    assert!(ok, "{text}");
    assert!(!text.contains("creating the artifact bucket"), "{text}");
    for stack in ["ssm-audit-network", "ssm-audit"] {
        assert!(
            text.contains(&format!("scripts/deploy: {stack}: UPDATE_COMPLETE"))
                || text.contains(&format!("scripts/deploy: {stack}: no changes")),
            "{stack} not updated:\n{text}"
        );
    }
    check("after the update");

    // A bad argument is one clear line and nothing deployed.
    let (ok, text) = deploy(&moto, &zip, &["--arch", "sparc"]);
    assert!(
        !ok && text.contains("--arch must be arm64 or x86_64"),
        "{text}"
    );
}
