//! Hostile input, second round (issue 20): what a log, CloudTrail or an inventory says never
//! reaches a reader raw, whatever the output; report file names never collide; folder walks
//! read or name everything.

use serde_json::Value;
use ssm_audit_tests::{corpus, files_under, run};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// An OSC 52 clipboard write and a conceal sequence.
const TERMINAL: &str = "\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}\u{1b}[8m";
/// Bidi overrides and isolates, zero-width and invisible characters.
const BIDI: &str = "\u{202e}\u{2066}\u{2069}\u{200b}\u{200d}\u{feff}\u{61c}\u{2028}";

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The corpus with hostile times, addresses, principal names and Name tags: every StartSession
/// of its CloudTrail and every Name tag of its inventory rewritten.
fn hostile_corpus(dir: &Path) -> PathBuf {
    let root = dir.join("hostile");
    let c = corpus();
    for f in files_under(&c.join("sessions")) {
        let to = root.join(f.strip_prefix(&c).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    for f in files_under(&c.join("cloudtrail")) {
        let mut doc: Value = serde_json::from_slice(&gunzip(&std::fs::read(&f).unwrap())).unwrap();
        for r in doc["Records"].as_array_mut().unwrap() {
            if r["eventName"] != "StartSession" {
                continue;
            }
            let t = r["eventTime"].as_str().unwrap().to_string();
            r["eventTime"] = format!("{t}{TERMINAL}").into();
            r["sourceIPAddress"] =
                "203.0.113.40\n## forged session\n| 9 | root | / | `rm -rf /` | x | y |\n<img src=x onerror=alert(1)>"
                    .into();
            let arn = r["userIdentity"]["arn"].as_str().unwrap().to_string();
            r["userIdentity"]["arn"] = format!("{arn}{BIDI}").into();
            if let Some(user) = r["userIdentity"]["userName"].as_str().map(String::from) {
                r["userIdentity"]["userName"] = format!("{user}{BIDI}").into();
            }
        }
        let to = root.join(f.strip_prefix(&c).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(&to, gzip(&serde_json::to_vec(&doc).unwrap())).unwrap();
    }
    let mut inv: Value =
        serde_json::from_slice(&std::fs::read(c.join("describe-instances.json")).unwrap()).unwrap();
    for res in inv["Reservations"].as_array_mut().unwrap() {
        for i in res["Instances"].as_array_mut().unwrap() {
            for t in i["Tags"].as_array_mut().unwrap() {
                if t["Key"] == "Name" {
                    let name = t["Value"].as_str().unwrap().to_string();
                    t["Value"] = format!(
                        "<img src=x onerror=alert(1)>[x](javascript:alert(1))![](http://beacon.example/p.png)\u{2066}{name}\u{2069}{TERMINAL}\n# forged"
                    )
                    .into();
                }
            }
        }
    }
    std::fs::write(
        root.join("describe-instances.json"),
        serde_json::to_vec(&inv).unwrap(),
    )
    .unwrap();
    root
}

/// The characters no output may hold raw: C0 (but the line ends), DEL, C1, and the format and
/// separator characters of [`BIDI`].
fn raw_hidden(text: &str) -> Vec<(usize, char)> {
    text.char_indices()
        .filter(|(_, c)| {
            (c.is_control() && *c != '\n' && *c != '\r')
                || matches!(*c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}' | '\u{61c}' | '\u{2028}' | '\u{2029}')
        })
        .collect()
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert!(code == 0, "{args:?}: exit {code}: {err}");
    out
}

#[test]
fn nothing_from_a_log_reaches_a_reader_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let input = hostile_corpus(tmp.path());
    let index = tmp.path().join("index");
    let idx = index.display().to_string();
    let (code, _, err) = run(&[
        "ingest",
        "-q",
        "--index",
        &idx,
        &input.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let mut outputs: Vec<(String, String)> = Vec::new();
    for format in ["table", "csv", "json"] {
        for cmd in [
            vec!["search", "--limit", "100000"],
            vec!["who", "sudo"],
            vec!["coverage"],
        ] {
            let mut args = cmd.clone();
            args.extend(["--index", &idx, "--format", format]);
            outputs.push((format!("{cmd:?} {format}"), ok(&args)));
        }
    }
    // Each session whole, and each of its lines' evidence bytes.
    let (_, listed, _) = run(&["sessions", "--index", &idx, "--format", "json"]);
    outputs.push(("sessions json".into(), listed.clone()));
    for l in listed.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let sid = v["session_id"].as_str().unwrap();
        for format in ["text", "json"] {
            outputs.push((
                format!("show {sid:?} {format}"),
                ok(&[
                    "show", "--index", &idx, sid, "--format", format, "--color", "never",
                ]),
            ));
        }
        if v["commands"].as_u64().unwrap_or(0) > 0 {
            let (_, out, _) = run(&["show", "--index", &idx, &format!("{sid}#1"), "--raw"]);
            outputs.push((format!("show {sid:?}#1 --raw"), out));
        }
    }
    let reports = tmp.path().join("reports");
    let dir = reports.display().to_string();
    for format in ["md", "html", "json", "csv"] {
        ok(&[
            "report",
            "--all-users",
            "--index",
            &idx,
            "--format",
            format,
            "--out-dir",
            &dir,
        ]);
    }
    let files = files_under(&reports);
    assert!(
        files.len() >= 4 * 4 && files.len().is_multiple_of(4),
        "a report per principal and format: {files:?}"
    );
    for f in &files {
        outputs.push((
            f.display().to_string(),
            String::from_utf8(std::fs::read(f).unwrap()).unwrap(),
        ));
    }
    for (what, text) in &outputs {
        let raw = raw_hidden(text);
        assert!(raw.is_empty(), "{what}: raw {:?}", &raw[..raw.len().min(5)]);
    }
    // The hostile values are there, shown: nothing was dropped to get there.
    let table = &outputs[0].1;
    assert!(table.contains("\\u{202e}"), "{table}");
    assert!(table.contains("[not a time]"), "{table}");

    // Markdown: the only headings are the report's own, and nothing is a link, an image or
    // HTML.
    use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag};
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(f).unwrap();
        let mut headings = 0;
        let mut in_heading = false;
        let mut heading_text = String::new();
        for e in Parser::new_ext(&text, Options::ENABLE_TABLES) {
            match e {
                Event::Start(Tag::Heading { level, .. }) => {
                    assert!(
                        matches!(level, HeadingLevel::H1 | HeadingLevel::H2),
                        "{f:?}"
                    );
                    in_heading = true;
                    heading_text.clear();
                    headings += 1;
                }
                Event::End(pulldown_cmark::TagEnd::Heading(_)) => {
                    in_heading = false;
                    assert!(
                        !heading_text.contains("forged"),
                        "{f:?}: a heading was injected: {heading_text}"
                    );
                }
                Event::Text(t) | Event::Code(t) if in_heading => heading_text.push_str(&t),
                Event::Start(Tag::Link { .. }) | Event::Start(Tag::Image { .. }) => {
                    panic!("{f:?}: a link or an image: {e:?}")
                }
                Event::Html(h) | Event::InlineHtml(h) => panic!("{f:?}: HTML: {h}"),
                _ => {}
            }
        }
        assert!(headings >= 2, "{f:?}");
    }

    // HTML, as a browser parses it: no element or handler but the report's own.
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "html"))
    {
        let out = ssm_audit_tests::headless_chromium(&tmp.path().join("chromium"))
            .arg("--dump-dom")
            // The file's name holds `%`: as a URL, each is `%25`.
            .arg(format!(
                "file://{}",
                f.display().to_string().replace('%', "%25")
            ))
            .output()
            .unwrap();
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(
            dom.contains("<h1>"),
            "{f:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let allowed = [
            "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "span", "b",
            "i", "table", "tbody", "tr", "th", "td", "code", "pre", "div", "ul", "li", "br", "svg",
            "line", "rect", "text",
        ];
        for tag in dom
            .split('<')
            .skip(1)
            .filter(|t| !t.starts_with("!DOCTYPE"))
        {
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(
                allowed.contains(&name.to_ascii_lowercase().as_str()),
                "{f:?}: an element <{name}>"
            );
            let inside = tag.split('>').next().unwrap_or("").to_ascii_lowercase();
            assert!(
                !inside.contains(" on") && !inside.contains("javascript:"),
                "{f:?}: a handler in <{inside}>"
            );
        }
    }
}

/// A StartSession record of `session` by `arn`.
fn start_session(session: &str, arn: &str, minute: u32) -> Value {
    serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": arn, "accountId": "111122223333",
            "userName": arn.rsplit('/').next().unwrap(),
            "sessionContext": {"attributes": {"mfaAuthenticated": "true"}}},
        "eventSource": "ssm.amazonaws.com",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "eventTime": format!("2026-02-10T01:{minute:02}:00Z"),
        "eventName": "StartSession",
        "requestParameters": {"target": "i-0123456789abcdef0"},
        "responseElements": {"sessionId": session},
        "eventID": format!("00000000-0000-0000-0000-0000000000{minute:02}")
    })
}

#[test]
fn every_principal_gets_its_own_report_file_and_a_collision_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let log = std::fs::read(corpus().join("sessions/jiwoo-de2414f130f6d253c.log")).unwrap();
    let arns = [
        "arn:aws:iam::111122223333:user/ops+admin",
        "arn:aws:iam::111122223333:user/ops=admin",
        "arn:aws:iam::111122223333:user/ops,admin",
        "arn:aws:sts::111122223333:assumed-role/Audit/Ops",
        "arn:aws:sts::111122223333:assumed-role/Audit/ops",
    ];
    let mut records = Vec::new();
    for (i, arn) in arns.iter().enumerate() {
        let sid = format!("ops-0000000000000000{}", i + 1);
        std::fs::write(dir.join(format!("{sid}.log")), &log).unwrap();
        records.push(start_session(&sid, arn, i as u32));
    }
    std::fs::write(
        dir.join("111122223333_CloudTrail_us-east-1_20260210T0100Z_ops.json"),
        serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap(),
    )
    .unwrap();
    let idx = tmp.path().join("index").display().to_string();
    ok(&["ingest", "-q", "--index", &idx, &dir.display().to_string()]);
    let out = tmp.path().join("reports");
    let (code, _, err) = run(&[
        "report",
        "--all-users",
        "--index",
        &idx,
        "--format",
        "md",
        "--out-dir",
        &out.display().to_string(),
    ]);
    // The two role sessions differ only in case: on a file system that does not tell them
    // apart they would be one file; the second is refused, never written over the first.
    assert_eq!(code, 2, "{err}");
    let refused: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert!(
        refused.len() == 1 && refused[0].contains("assumed-role/Audit/"),
        "{err}"
    );
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    // Each name decodes to its principal's ARN, and each file is that principal's report.
    for name in &names {
        let stem = name.strip_suffix(".md").unwrap();
        let arn = percent_decode(stem);
        assert!(arns.contains(&arn.as_str()), "{name} decodes to {arn}");
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(
            text.lines().next().unwrap().contains(&arn),
            "{name}: {text}"
        );
    }
    for arn in &arns[..3] {
        assert!(
            names
                .iter()
                .any(|n| percent_decode(n.strip_suffix(".md").unwrap()) == *arn),
            "{arn}: {names:?}"
        );
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Run `ssm-audit ARGS`, killed after `secs`: (exit code, stderr), or a panic naming the hang.
fn run_within(secs: u64, args: &[&str]) -> (i32, String) {
    let mut child = ssm_audit_tests::ssm_audit()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if start.elapsed().as_secs() > secs {
            let _ = child.kill();
            panic!("ssm-audit {args:?} did not end within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_folder_walk_reads_or_names_everything_and_does_not_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("in");
    let sessions = corpus().join("sessions");
    std::fs::create_dir_all(root.join(".archive")).unwrap();
    std::fs::create_dir_all(tmp.path().join("elsewhere")).unwrap();
    // A dotfile (an IAM name may begin with a dot), a dot-folder, a linked folder.
    std::fs::copy(
        sessions.join("hana-c4db7c64a8bda93c6.log"),
        root.join(".hana-c4db7c64a8bda93c6.log"),
    )
    .unwrap();
    std::fs::copy(
        sessions.join("jiwoo-de2414f130f6d253c.log"),
        root.join(".archive/jiwoo-de2414f130f6d253c.log"),
    )
    .unwrap();
    std::fs::copy(
        sessions.join("yuna-2ozxtf6s17it2g8sxa6d5ka4i3.log"),
        tmp.path()
            .join("elsewhere/yuna-2ozxtf6s17it2g8sxa6d5ka4i3.log"),
    )
    .unwrap();
    std::os::unix::fs::symlink(tmp.path().join("elsewhere"), root.join("linked")).unwrap();
    // A FIFO, a broken link, a link looping back to the folder.
    let fifo = root.join("pipe.log");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), root.join("gone.log")).unwrap();
    std::os::unix::fs::symlink(&root, root.join("loop")).unwrap();

    let idx = tmp.path().join("index").display().to_string();
    let (code, err) = run_within(
        60,
        &["ingest", "--index", &idx, &root.display().to_string()],
    );
    assert_eq!(code, 2, "the broken and the looping link are errors: {err}");
    let about = |name: &str| -> Vec<&str> {
        err.lines()
            .filter(|l| l.contains(&root.join(name).display().to_string()))
            .collect()
    };
    let fifo_lines = about("pipe.log");
    assert!(
        fifo_lines.len() == 1
            && fifo_lines[0].starts_with("skipped: ")
            && fifo_lines[0].contains("FIFO"),
        "{err}"
    );
    let gone = about("gone.log");
    assert!(
        gone.len() == 1
            && gone[0].starts_with("error: ")
            && gone[0].contains("broken symbolic link"),
        "{err}"
    );
    let looping = about("loop");
    assert!(
        looping.len() == 1 && looping[0].starts_with("error: ") && looping[0].contains("loop"),
        "{err}"
    );
    assert!(
        err.contains("ingested 3 of 6 sources (1 skipped, 2 failed"),
        "{err}"
    );
    let out = ok(&[
        "search", "--index", &idx, "--format", "json", "--limit", "100000",
    ]);
    let sessions: std::collections::BTreeSet<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["session_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for sid in [
        ".hana-c4db7c64a8bda93c6",
        "jiwoo-de2414f130f6d253c",
        "yuna-2ozxtf6s17it2g8sxa6d5ka4i3",
    ] {
        assert!(sessions.contains(sid), "{sid}: {sessions:?}");
    }
}

#[test]
fn a_file_whose_name_is_not_utf8_verifies_and_its_edits_are_found() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("in");
    // A folder named in Latin-1, as an old archive may be.
    let odd = root.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    std::fs::create_dir_all(&odd).unwrap();
    let log = odd.join("jiwoo-de2414f130f6d253c.log");
    std::fs::copy(corpus().join("sessions/jiwoo-de2414f130f6d253c.log"), &log).unwrap();
    let idx = tmp.path().join("index").display().to_string();
    let (code, _, err) = run(&["ingest", "--index", &idx, &root.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["verify", "--index", &idx]);
    assert_eq!(code, 0, "{out}{err}");
    // An edit to it is found as an edit, under the name it was ingested by.
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&log, &bytes).unwrap();
    let (code, out, _) = run(&["verify", "--index", &idx]);
    assert_eq!(code, 1, "{out}");
    let changed: Vec<&str> = out.lines().filter(|l| l.starts_with("CHANGED")).collect();
    assert!(
        changed.len() == 1 && changed[0].contains("caf%E9/jiwoo-de2414f130f6d253c.log"),
        "{out}"
    );
    assert!(!out.lines().any(|l| l.starts_with("MISSING")), "{out}");
}

#[test]
fn an_error_is_said_once() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("index").display().to_string();
    let log = corpus().join("sessions/hana-c4db7c64a8bda93c6.log");
    ok(&["ingest", "-q", "--index", &idx, &log.display().to_string()]);
    let missing = tmp.path().join("none").display().to_string();
    for args in [
        vec!["search", "--index", &idx, "colour:x"],
        vec!["search", "--index", &missing, "sudo"],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{err}");
        let line = err.trim_end();
        assert_eq!(line.lines().count(), 1, "{err}");
        // No part of it said twice.
        let parts: Vec<&str> = line.split(": ").collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(
                !parts[i + 1..].contains(p) || p.len() < 8,
                "said twice: {line}"
            );
        }
    }
}

#[test]
fn cloudtrail_is_read_record_by_record_and_json_bombs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        corpus().join("sessions/hana-c4db7c64a8bda93c6.log"),
        dir.join("hana-c4db7c64a8bda93c6.log"),
    )
    .unwrap();
    // A CloudTrail file that once took the whole-document path (a record that is not an
    // object), half a million records long, its one StartSession among them still read.
    let start = serde_json::to_string(&start_session(
        "hana-c4db7c64a8bda93c6",
        "arn:aws:iam::111122223333:user/hana",
        3,
    ))
    .unwrap();
    let mut doc = String::from("{\"Records\":[7,");
    doc.push_str(&start);
    for _ in 0..500_000 {
        doc.push_str(",{\"a\":[1]}");
    }
    doc.push_str("]}");
    let fast = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    std::fs::write(
        dir.join("111122223333_CloudTrail_us-east-1_20260210T0100Z_big.json.gz"),
        fast(doc.as_bytes()),
    )
    .unwrap();
    // JSON that inflates past its limit (100 times its size beyond 64 MiB): refused, named.
    let bomb = dir.join("111122223333_CloudTrail_us-east-1_20260210T0105Z_bomb.json.gz");
    let mut text = Vec::with_capacity(70 << 20);
    text.extend_from_slice(b"{\"Records\":[");
    while text.len() < (70 << 20) {
        text.extend_from_slice(b"7,");
    }
    text.extend_from_slice(b"7]}");
    std::fs::write(&bomb, fast(&text)).unwrap();
    drop(text);
    let idx = tmp.path().join("index").display().to_string();
    let (code, _, err) = run(&["ingest", "--index", &idx, &dir.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    let refused: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(&bomb.display().to_string()))
        .collect();
    assert!(
        refused.len() == 1
            && refused[0].starts_with("error: ")
            && refused[0].contains("gzip bomb")
            && refused[0].contains("for JSON"),
        "{err}"
    );
    let out = ok(&[
        "search", "--index", &idx, "--format", "json", "--limit", "1",
    ]);
    let r: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        r["principal_arn"], "arn:aws:iam::111122223333:user/hana",
        "{r}"
    );
}

#[test]
fn a_line_longer_than_the_screen_keeps_its_head_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let mut log = Vec::with_capacity(9_100_000);
    log.extend_from_slice(b"\x1b[?2004h[ssm-user@ip-10-0-0-1 ~]$ sudo cat /etc/shadow; : ");
    log.extend(std::iter::repeat_n(b'A', 9_000_000));
    log.extend_from_slice(b"\r\r\n\x1b[?2004l\rroot:*:19000:0:99999:7:::\r\n");
    log.extend_from_slice(
        b"\x1b[?2004h[ssm-user@ip-10-0-0-1 ~]$ exit\r\r\n\x1b[?2004l\rexit\r\r\n",
    );
    std::fs::write(dir.join("mallory-0123456789abcdef0.log"), &log).unwrap();
    let idx = tmp.path().join("index").display().to_string();
    ok(&["ingest", "-q", "--index", &idx, &dir.display().to_string()]);
    let out = ok(&[
        "search", "--index", &idx, "--format", "json", "--limit", "10",
    ]);
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = records
        .iter()
        .find(|r| r["seq"] == 1)
        .expect("the long line is a record");
    let command = first["command"].as_str().unwrap();
    assert!(
        command.starts_with("sudo cat /etc/shadow; : AAAA"),
        "{}",
        &command[..80]
    );
    assert!(command.len() < 100_000, "{}", command.len());
    assert!(
        first["rule"].as_array().is_some_and(|r| !r.is_empty()),
        "rules apply to the head: {}",
        first["rule"]
    );
    let said = first["suspicious"].to_string();
    assert!(
        said.contains("truncated: the command is 9000024 characters long"),
        "{said}"
    );
    // And as a field of its own: the command's full length.
    assert_eq!(
        first["truncated"].as_u64(),
        Some(("sudo cat /etc/shadow; : ".len() + 9_000_000) as u64),
        "{}",
        first["truncated"]
    );
    // The next command is itself.
    assert!(records.iter().any(|r| r["command"] == "exit"), "{out}");
}
