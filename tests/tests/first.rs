//! `search --limit N` gives the first N records of the whole answer in session order (start,
//! session id, seq): with phrases, phrases under NOT, and sessions that started in the same
//! second, whose commands share their `order` numbers.

use ssm_audit_tests::{corpus, ingest, run};
use std::path::Path;

/// The recorded sessions' terminal bytes, without their util-linux header and footer.
fn bodies() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(corpus().join("sessions"))
        .expect("the corpus sessions")
        .map(|e| e.expect("an entry").path())
        .collect();
    names.sort();
    for path in names {
        let data = std::fs::read(&path).expect("a session log");
        let start = indexer::formats::log_meta("", &data).body_start;
        let end = indexer::formats::log_footer(&data).map_or(data.len(), |(at, _)| at);
        out.push(data[start..end.max(start)].to_vec());
    }
    out
}

/// Session logs in `dir`: 40 sessions, their start times five seconds in all, their ids not
/// in the order they are written.
fn write_sessions(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let bodies = bodies();
    assert!(
        bodies.len() >= 5,
        "the corpus has {} sessions",
        bodies.len()
    );
    for i in 0..40usize {
        let sid = format!("user{:02}-{:026}", (i * 17) % 40, i);
        let second = i % 5;
        let stamp = format!("2026-03-01 10:00:0{second}+00:00");
        let iid = format!("i-{:017x}", 0xa0 + i % 3);
        let mut log = format!(
            "Script started on {stamp} [COMMAND=\"cat /var/lib/amazon/ssm/{iid}/session/\
             orchestration/{sid}/Standard_Stream/ipcTempFile.log\" <not executed on terminal>]\n"
        )
        .into_bytes();
        log.extend_from_slice(&bodies[i % bodies.len()]);
        log.extend_from_slice(
            format!("\nScript done on {stamp} [COMMAND_EXIT_CODE=\"0\"]\n").as_bytes(),
        );
        std::fs::write(dir.join(format!("{sid}.log")), log).expect("write a session log");
    }
}

fn records(index: &Path, query: &str, limit: usize) -> Vec<String> {
    let (index, limit) = (index.display().to_string(), limit.to_string());
    let mut args = vec![
        "search", "--index", &index, "--format", "json", "--limit", &limit,
    ];
    if !query.is_empty() {
        args.push(query);
    }
    let (code, out, err) = run(&args);
    assert!(code == 0 || code == 1, "search {query:?} failed: {err}");
    out.lines().map(str::to_string).collect()
}

#[test]
fn a_limit_gives_the_first_records_of_the_whole_answer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sessions = tmp.path().join("sessions");
    write_sessions(&sessions);
    let index = tmp.path().join("index");
    let (code, err) = ingest(&index, &[&sessions]);
    assert_eq!(code, 0, "ingest failed: {err}");

    // A phrase under NOT excludes exactly the phrase's matches.
    let count = |q: &str| records(&index, q, 1_000_000).len();
    assert_eq!(
        count("NOT \"sudo su\" sudo") + count("\"sudo su\" AND sudo"),
        count("sudo")
    );
    assert!(count("\"sudo su\"") > 0);

    for query in [
        "",
        "sudo",
        "\"sudo su\"",
        "NOT \"sudo su\" sudo",
        "ls OR \"sudo su\"",
        "\"cat /etc\" OR \"sudo -i\"",
    ] {
        let all = records(&index, query, 1_000_000);
        assert!(all.len() > 3, "{query:?} matches {} records", all.len());
        for limit in [1, 2, 3, 7, 20, all.len()] {
            let first = records(&index, query, limit);
            assert_eq!(
                first,
                all[..limit.min(all.len())],
                "{query:?} with --limit {limit}"
            );
        }
    }
}
