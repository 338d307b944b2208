//! The command line as people who use the AWS CLI and the usual audit tools expect it: options
//! that do not mean something else, limits and time windows that say what they did.

use ssm_audit_tests::{corpus, ingest, run};
use std::path::Path;

fn indexed(dir: &Path) -> String {
    let index = dir.join("index");
    let (code, err) = ingest(&index, &[&corpus()]);
    assert_eq!(code, 0, "{err}");
    index.display().to_string()
}

#[test]
fn output_is_refused_with_what_to_use_and_searches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = indexed(tmp.path());
    let (code, out, err) = run(&["search", "--index", &idx, "--output", "json"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("--with-output") && err.contains("--format") && err.lines().count() == 1,
        "{err}"
    );
    // The option that does search the output.
    let (code, out, err) = run(&["search", "--index", &idx, "--with-output", "shadow"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.is_empty());
    // `report --output json` writes no file named `json`.
    let (code, _, err) = run(&[
        "report", "--index", &idx, "--user", "jiwoo", "--output", "json",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("-o/--out FILE"), "{err}");
    assert!(!Path::new("json").exists() && !tmp.path().join("json").exists());
    let html = tmp.path().join("jiwoo.html");
    let (code, _, err) = run(&[
        "report",
        "--index",
        &idx,
        "--user",
        "jiwoo",
        "--out",
        &html.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(html.exists());
}

#[test]
fn a_limit_says_when_it_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = indexed(tmp.path());
    let (code, out, err) = run(&[
        "search", "--index", &idx, "--format", "json", "--limit", "2",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 2);
    assert!(
        err.contains("showing the first 2 commands; more match"),
        "{err}"
    );
    // A limit above the answer says nothing.
    let (_, all, _) = run(&[
        "search", "--index", &idx, "--format", "json", "--limit", "1000000",
    ]);
    let n = all.lines().count().to_string();
    let (code, out, err) = run(&["search", "--index", &idx, "--format", "json", "--limit", &n]);
    assert_eq!(code, 0);
    assert_eq!(out, all);
    assert!(err.is_empty(), "{err}");
}

#[test]
fn calendar_windows_ages_and_an_inverted_window() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = indexed(tmp.path());
    let count = |args: &[&str]| {
        let mut a = vec![
            "search", "--index", &idx, "--format", "json", "--limit", "1000000",
        ];
        a.extend_from_slice(args);
        let (code, out, err) = run(&a);
        (code, out.lines().count(), err)
    };
    // Each command's session time as the windows compare it: its start, else its end.
    let (_, all, _) = run(&[
        "search", "--index", &idx, "--format", "json", "--limit", "1000000",
    ]);
    let times: Vec<String> = all
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            r["session_start"]
                .as_str()
                .or(r["session_end"].as_str())
                .unwrap_or_default()
                .to_string()
        })
        // A time that does not read (`2024-00-…`) is an unknown time: no window holds it.
        .filter(|t| indexer::model::parse_time(t).is_some())
        .collect();
    let within = |p: &dyn Fn(&str) -> bool| times.iter().filter(|t| p(t)).count();
    let february = within(&|t| t.starts_with("2026-02"));
    assert!(february > 0 && february < times.len(), "{times:?}");
    assert!(
        times.len() < all.lines().count(),
        "the corpus has a session of unknown time"
    );
    for (since, until, want) in [
        ("2026-02", "2026-02", february),
        (
            "2026-Q1",
            "2026-Q1",
            within(&|t| ("2026-01".."2026-04").contains(&t)),
        ),
        ("2026", "2026", within(&|t| t.starts_with("2026-"))),
        ("2020", "2025", within(&|t| ("2020".."2026").contains(&t))),
    ] {
        let (code, n, err) = count(&["--since", since, "--until", until]);
        assert_eq!((code, n), (0, want), "{since}..{until}: {err}");
    }
    // March and April: nothing, and no error.
    let (code, n, err) = count(&["--since", "2026-03", "--until", "2026-04"]);
    assert_eq!((code, n), (1, 0), "{err}");
    assert!(err.is_empty(), "{err}");
    // A window that ends before it starts is an error that says so.
    let (code, _, err) = count(&["--since", "2026-04", "--until", "2026-03"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not before --until"), "{err}");
    // `m` is not guessed.
    let (code, _, err) = count(&["--since", "3m"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("ambiguous") && err.contains("3min") && err.contains("3mo"),
        "{err}"
    );
    // Ages in months and years are accepted.
    for age in ["3mo", "1y", "90min"] {
        let (code, _, err) = count(&["--since", age]);
        assert!(code == 0 || code == 1, "{age}: {err}");
    }
}

#[test]
fn completions_and_the_manual_come_from_the_options() {
    let (code, bash, err) = run(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    // Every command and a command's options are completed.
    for word in ["backfill", "verify", "--with-output", "--since"] {
        assert!(bash.contains(word), "{word} is not completed");
    }
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), &bash).unwrap();
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(script.path())
        .status()
        .unwrap();
    assert!(status.success(), "the bash completion does not parse");
    for shell in ["zsh", "fish"] {
        let (code, out, err) = run(&["completions", shell]);
        assert!(code == 0 && out.contains("backfill"), "{shell}: {err}");
    }
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");

    let (code, man, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        man.contains(".TH ssm-audit 1"),
        "{}",
        &man[..man.len().min(300)]
    );
    for page in [
        "ssm\\-audit\\-ingest",
        "ssm\\-audit\\-backfill",
        "ssm\\-audit\\-report",
    ] {
        assert!(man.contains(page), "no section for {page}");
    }
    assert!(
        man.contains("with\\-output"),
        "the manual does not list --with-output"
    );
}

#[test]
fn the_ingest_summary_counts_distinct_sessions_and_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    let (code, err) = ingest(&index, &[&corpus()]);
    assert_eq!(code, 0, "{err}");
    let idx = index.display().to_string();
    let ids = |extra: &[&str]| {
        let mut a = vec![
            "search", "--index", &idx, "--format", "json", "--limit", "1000000",
        ];
        a.extend_from_slice(extra);
        let (_, out, _) = run(&a);
        out.lines()
            .map(|l| {
                let r: serde_json::Value = serde_json::from_str(l).unwrap();
                r["session_id"].as_str().unwrap().to_string()
            })
            .collect::<Vec<String>>()
    };
    let (commands, abandoned) = (ids(&[]), ids(&["--abandoned"]));
    let mut sessions: Vec<&String> = commands.iter().chain(&abandoned).collect();
    sessions.sort();
    sessions.dedup();
    let summary = err.lines().last().unwrap_or_default();
    let want = format!(
        "{} sessions with {} commands and {} abandoned lines written",
        sessions.len(),
        commands.len(),
        abandoned.len()
    );
    assert!(summary.contains(&want), "{summary}\nwant: {want}");
}

#[test]
fn sessions_lists_every_session_with_what_its_records_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = indexed(tmp.path());
    let json_lines = |args: &[&str]| -> Vec<serde_json::Value> {
        let mut a = vec!["--index", &idx];
        a.extend_from_slice(args);
        let (code, out, err) = run(&a);
        assert!(code == 0 || code == 1, "{args:?}: {err}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let sessions = json_lines(&["sessions", "--format", "json"]);
    // Every session coverage knows of, once each.
    let mut want: Vec<String> = json_lines(&["coverage", "--format", "json"])
        .iter()
        .filter_map(|c| {
            c["session_id"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(String::from)
        })
        .collect();
    want.sort();
    let mut got: Vec<String> = sessions
        .iter()
        .map(|s| s["session_id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, want);
    // Their commands, privileged commands and abandoned lines are the records'.
    let commands = json_lines(&["search", "--format", "json", "--limit", "1000000"]);
    let abandoned = json_lines(&[
        "search",
        "--abandoned",
        "--format",
        "json",
        "--limit",
        "1000000",
    ]);
    let sum = |k: &str| sessions.iter().map(|s| s[k].as_u64().unwrap()).sum::<u64>() as usize;
    assert_eq!(sum("commands"), commands.len());
    assert_eq!(sum("abandoned"), abandoned.len());
    let privileged = commands
        .iter()
        .filter(|c| c["rule"].as_array().is_some_and(|r| !r.is_empty()))
        .count();
    assert_eq!(sum("privileged"), privileged);
    // Filters: one principal's, one instance's.
    for s in json_lines(&["sessions", "--format", "json", "--user", "jiwoo"]) {
        assert_eq!(s["principal"], "jiwoo");
    }
    let on_a = json_lines(&["sessions", "--format", "json", "--instance", "EC2-A"]);
    assert!(!on_a.is_empty() && on_a.iter().all(|s| s["instance_name"] == "EC2-A"));
    // A session's duration is its end less its start.
    let jiwoo = sessions
        .iter()
        .find(|s| s["session_id"] == "jiwoo-de2414f130f6d253c")
        .unwrap();
    assert_eq!(jiwoo["duration_seconds"], 420);
}

#[test]
fn a_name_that_matches_nothing_gets_the_closest_names() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = indexed(tmp.path());
    let (code, _, err) = run(&["search", "--index", &idx, "--user", "hyejin"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no principal is named hyejin; the closest: hyejin@corp.example"),
        "{err}"
    );
    let (code, _, err) = run(&["sessions", "--index", &idx, "--instance", "EC2-Z"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no instance is named EC2-Z; the closest: EC2-A, EC2-B"),
        "{err}"
    );
    let (code, _, err) = run(&["search", "--index", &idx, "--user", "zzzzqqqq"]);
    assert_eq!(code, 1);
    assert!(err.contains("none of the"), "{err}");
    // A name the index knows, with nothing in the window, gets no hint.
    let (code, _, err) = run(&[
        "search", "--index", &idx, "--user", "jiwoo", "--since", "2030",
    ]);
    assert_eq!(code, 1);
    assert!(err.is_empty(), "{err}");
}

#[test]
fn profile_and_region_are_options_as_in_the_aws_cli() {
    let moto = ssm_audit_tests::aws::Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = moto.s3();
    let log = std::fs::read_dir(corpus().join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .unwrap();
    rt.block_on(async {
        s3.create_bucket().bucket("logs").send().await.unwrap();
        s3.put_object()
            .bucket("logs")
            .key("s/one.log")
            .body(std::fs::read(&log).unwrap().into())
            .send()
            .await
            .unwrap();
    });
    // Credentials only in a profile of a config file: without --profile there are none.
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config");
    std::fs::write(
        &config,
        "[profile audit]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    let ingest = |extra: &[&str]| {
        let index = tmp.path().join(format!("index-{}", extra.join("-")));
        let out = ssm_audit_tests::ssm_audit()
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", tmp.path())
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", tmp.path().join("none"))
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(extra)
            .args([
                "--index",
                &index.display().to_string(),
                "ingest",
                "s3://logs/s/",
            ])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = ingest(&["--region", "eu-west-3"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("credentials"), "{err}");
    assert!(
        err.lines().all(|l| !l.contains("{ ")),
        "a debug structure: {err}"
    );
    let (code, err) = ingest(&["--profile", "audit", "--region", "eu-west-3"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("1 session with"), "{err}");
}

#[test]
fn who_takes_a_user_a_run_as_and_a_limit_and_lists_the_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = indexed(tmp.path());
    let who = |extra: &[&str]| {
        let mut a = vec!["who", "sudo", "--index", &idx, "--format", "json"];
        a.extend_from_slice(extra);
        let (code, out, err) = run(&a);
        let rows: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (code, rows, err)
    };
    let (_, all, _) = who(&[]);
    assert!(all.len() > 2);
    // Each row names its sessions, as many as it counts.
    for r in &all {
        assert_eq!(
            r["session_ids"].as_array().unwrap().len() as u64,
            r["sessions"].as_u64().unwrap(),
            "{r}"
        );
    }
    let (code, jiwoo, err) = who(&["--user", "jiwoo"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        jiwoo.len() == 1 && jiwoo[0]["principal"] == "jiwoo",
        "{jiwoo:?}"
    );
    let (code, two, err) = who(&["--limit", "2"]);
    assert_eq!(code, 0);
    assert_eq!(two.len(), 2);
    assert_eq!(two[..], all[..2]);
    assert!(
        err.contains(&format!("showing 2 of {} principals", all.len())),
        "{err}"
    );
    // Run as: the commands run as ssm-user are not those run as root.
    let (_, as_ssm_user, _) = who(&["--run-as", "ssm-user"]);
    let (_, as_root, _) = who(&["--run-as", "root"]);
    let total = |rows: &[serde_json::Value]| {
        rows.iter()
            .map(|r| r["commands"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert!(total(&as_ssm_user) > 0 && total(&as_ssm_user) + total(&as_root) <= total(&all));
}

#[test]
fn query_fields_filter_as_their_options_do() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = indexed(tmp.path());
    let search = |args: &[&str]| {
        let mut a = vec![
            "search", "--index", &idx, "--format", "json", "--limit", "1000000",
        ];
        a.extend_from_slice(args);
        run(&a)
    };
    for (query, option) in [
        ("principal:jiwoo", ["--user", "jiwoo"]),
        ("instance:EC2-A", ["--instance", "EC2-A"]),
        ("program:sudo", ["--program", "sudo"]),
        ("run_as:root", ["--run-as", "root"]),
    ] {
        let (code, by_query, err) = search(&[query]);
        assert_eq!(code, 0, "{query}: {err}");
        let (_, by_option, _) = search(&option);
        assert_eq!(by_query, by_option, "{query}");
    }
    // With words beside them.
    let (_, both, _) = search(&["principal:jiwoo whoami"]);
    let (_, want, _) = search(&["whoami", "--user", "jiwoo"]);
    assert!(!both.is_empty());
    assert_eq!(both, want);
    // One session, whole.
    let (code, one, err) = search(&["session:jiwoo-de2414f130f6d253c"]);
    assert_eq!(code, 0, "{err}");
    let ids: std::collections::BTreeSet<String> = one
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["session_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(one.lines().count(), 8);
    let (_, same, _) = search(&["session_id:jiwoo-de2414f130f6d253c"]);
    assert_eq!(same, one);
    // What cannot be answered is said once, plainly.
    for (query, says) in [
        ("colour:red", "that is not one; the fields are"),
        ("principal:jiwoo OR sudo", "cannot be under OR"),
    ] {
        let (code, _, err) = search(&[query]);
        assert_eq!(code, 2, "{query}");
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{query}: {err}"
        );
    }
    let (code, _, err) = search(&["principal:jiwoo", "--user", "eve"]);
    assert_eq!(code, 2);
    assert!(err.contains("ask for two different things"), "{err}");
}
