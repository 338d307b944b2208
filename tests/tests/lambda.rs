//! The Lambda and the S3/CloudWatch Logs I/O against a real endpoint (moto_server on 127.0.0.1),
//! through the real AWS SDK; one test runs the built `ingest-lambda` binary behind a Lambda
//! Runtime API.

use aws_adapters::objects::{ObjectStore, S3Store};
use ingest_lambda::handler::{self, Deps};
use ingest_lambda::pipeline::{ApiKeys, Output, Pipeline};
use serde_json::Value;
use ssm_audit_tests::aws::{logs_event, s3_event, Moto};
use ssm_audit_tests::cloudtrail_api::{self, KeysApi};
use ssm_audit_tests::runtime_api::{Answer, RuntimeApi};
use ssm_audit_tests::{corpus, files_under, run, score};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const LOGS: &str = "ssm-session-logs";
const OUT: &str = "ssm-audit-records";
const GROUP: &str = "/aws/ssm/sessions";

/// One uploaded object: key, version, etag, size, and whether it is a CloudTrail file.
type Uploaded = (String, Option<String>, Option<String>, u64, bool);

/// A moto server holding the shared corpus: logs, CloudTrail and inventory in S3 (one key with
/// a space, one with Hangul), the streamed session as log events in CloudWatch Logs.
struct World {
    moto: Moto,
    rt: tokio::runtime::Runtime,
    s3: aws_sdk_s3::Client,
    objects: Vec<Uploaded>,
    streams: Vec<Stream>,
}

/// A streamed session in CloudWatch Logs: its stream, and its events (id, timestamp, message).
type Stream = (String, Vec<(String, i64, String)>);

/// Put the events of a `filter-log-events` file into their stream of [`GROUP`], shifted to end
/// ten minutes before `now`; the events with the ids CloudWatch Logs gave them.
async fn put_stream(logs: &aws_sdk_cloudwatchlogs::Client, file: &Path, now: i64) -> Stream {
    let doc: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let stream = doc["events"][0]["logStreamName"]
        .as_str()
        .unwrap()
        .to_string();
    let raw = doc["events"].as_array().unwrap();
    let first = raw[0]["timestamp"].as_i64().unwrap();
    let events: Vec<(i64, String)> = raw
        .iter()
        .map(|e| {
            let ts = now - 600_000 + (e["timestamp"].as_i64().unwrap() - first);
            (ts, e["message"].as_str().unwrap().to_string())
        })
        .collect();
    logs.create_log_stream()
        .log_group_name(GROUP)
        .log_stream_name(&stream)
        .send()
        .await
        .unwrap();
    let put: Vec<_> = events
        .iter()
        .map(|(ts, m)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(*ts)
                .message(m)
                .build()
                .unwrap()
        })
        .collect();
    let r = logs
        .put_log_events()
        .log_group_name(GROUP)
        .log_stream_name(&stream)
        .set_log_events(Some(put))
        .send()
        .await
        .unwrap();
    assert!(
        r.rejected_log_events_info().is_none(),
        "events rejected: {:?}",
        r.rejected_log_events_info()
    );
    // A subscription delivers the ids CloudWatch Logs gave the events.
    let got = logs
        .filter_log_events()
        .log_group_name(GROUP)
        .log_stream_names(&stream)
        .send()
        .await
        .unwrap();
    let given: Vec<(i64, String, String)> = got
        .events()
        .iter()
        .map(|e| {
            (
                e.timestamp().unwrap(),
                e.message().unwrap().to_string(),
                e.event_id().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(given.len(), events.len());
    let events = events
        .iter()
        .map(|(ts, m)| {
            let g = given.iter().find(|g| g.0 == *ts && &g.1 == m).unwrap();
            (g.2.clone(), *ts, m.clone())
        })
        .collect();
    (stream, events)
}

fn world() -> World {
    world_in(Moto::start(), &corpus(), true)
}

/// A moto server holding the corpus at `c`, with its `describe-instances.json` or without.
fn world_in(moto: Moto, c: &Path, inventory: bool) -> World {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = moto.s3();
    let logs = moto.logs();
    let objects = rt.block_on(async {
        for b in [LOGS, OUT] {
            s3.create_bucket().bucket(b).send().await.unwrap();
        }
        s3.put_bucket_versioning()
            .bucket(LOGS)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut uploads: Vec<(String, PathBuf, bool)> = Vec::new();
        for (i, f) in files_under(&c.join("sessions")).into_iter().enumerate() {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let key = match i {
                0 => format!("session logs/{name}"),
                1 => format!("세션 기록/{name}"),
                _ => format!("sessions/{name}"),
            };
            uploads.push((key, f, false));
        }
        for f in files_under(&c.join("cloudtrail")) {
            let rel = f
                .strip_prefix(c.join("cloudtrail"))
                .unwrap()
                .to_string_lossy()
                .to_string();
            uploads.push((rel, f, true));
        }
        if inventory {
            uploads.push((
                "inventory/describe-instances.json".into(),
                c.join("describe-instances.json"),
                false,
            ));
        }
        let mut out = Vec::new();
        for (key, path, trail) in uploads {
            let bytes = std::fs::read(&path).unwrap();
            let size = bytes.len() as u64;
            let put = s3
                .put_object()
                .bucket(LOGS)
                .key(&key)
                .body(bytes.into())
                .send()
                .await
                .unwrap();
            out.push((
                key,
                put.version_id().map(String::from),
                put.e_tag().map(String::from),
                size,
                trail,
            ));
        }
        out
    });
    // The streamed sessions: their events, shifted to the present (CloudWatch Logs refuses old
    // ones), each in its stream of one group.
    rt.block_on(logs.create_log_group().log_group_name(GROUP).send())
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let streams: Vec<Stream> = files_under(&c.join("cloudwatch"))
        .iter()
        .map(|file| rt.block_on(put_stream(&logs, file, now)))
        .collect();
    World {
        moto,
        rt,
        s3,
        objects,
        streams,
    }
}

impl World {
    fn s3_events(&self, filter: impl Fn(&Uploaded) -> bool) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|o| filter(o))
            .map(|(k, v, e, s, _)| s3_event(LOGS, &[(k.clone(), v.clone(), e.clone(), *s)]))
            .collect()
    }

    /// Each streamed session as two subscription deliveries.
    fn stream_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (stream, events) in &self.streams {
            let half = events.len() / 2;
            out.push(logs_event(GROUP, stream, "DATA_MESSAGE", &events[..half]));
            out.push(logs_event(GROUP, stream, "DATA_MESSAGE", &events[half..]));
        }
        out
    }

    fn deps(&self, prefix: &str) -> Deps {
        let client = self.s3.clone();
        Deps {
            buckets: Arc::new(move |b: &str| {
                Arc::new(S3Store::new(client.clone(), b)) as Arc<dyn ObjectStore>
            }),
            pipeline: Pipeline::new(Output {
                store: Arc::new(S3Store::new(self.s3.clone(), OUT)),
                prefix: prefix.to_string(),
            }),
            index_dir: None,
            anchor: None,
        }
    }

    fn deliver(&self, deps: &Deps, events: &[Value]) -> Vec<Result<Value, String>> {
        events
            .iter()
            .map(|e| {
                self.rt
                    .block_on(handler::handle(e.clone(), deps))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// Every object under `prefix` of the output bucket: key (without the prefix) → bytes.
    fn outputs(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        let store = S3Store::new(self.s3.clone(), OUT);
        self.rt.block_on(async {
            let mut out = BTreeMap::new();
            for o in store.list(prefix).await.unwrap() {
                let b = store.get(&o.key).await.unwrap().unwrap();
                out.insert(o.key[prefix.len()..].to_string(), b);
            }
            out
        })
    }
}

fn local_score(tmp: &Path) -> String {
    let c = corpus();
    let index = tmp.join("local-idx");
    let idx = index.display().to_string();
    let paths = [
        c.join("sessions"),
        c.join("cloudwatch"),
        c.join("cloudtrail"),
        c.join("describe-instances.json"),
    ];
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let (code, err) = ssm_audit_tests::ingest(&index, &refs);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(&[
        "search", "--index", &idx, "--format", "json", "--limit", "100000",
    ]);
    let hits = tmp.join("local.ndjson");
    std::fs::write(&hits, out).unwrap();
    last_line(&score(&c.join("truth.json"), &hits, &[]).1)
}

fn last_line(s: &str) -> String {
    s.lines().last().unwrap_or_default().to_string()
}

fn records_score(tmp: &Path, records: &BTreeMap<String, Vec<u8>>) -> String {
    let hits = tmp.join("lambda.ndjson");
    let all: Vec<u8> = records.values().flatten().copied().collect();
    std::fs::write(&hits, all).unwrap();
    last_line(&score(&corpus().join("truth.json"), &hits, &[]).1)
}

#[test]
fn the_lambda_binary_behind_a_runtime_api_scores_like_local_ingest() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let mut events = vec![serde_json::json!({
        "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-02-15T00:00:00.000Z",
        "Bucket": LOGS, "RequestId": "X", "HostId": "Y"
    })];
    events.extend(w.s3_events(|_| true));
    events.extend(w.stream_events());
    events.push(logs_event(
        GROUP,
        "CloudwatchLogsHealthCheck",
        "CONTROL_MESSAGE",
        &[],
    ));
    let answers = run_binary(&w, &w.moto.endpoint, events.clone(), "audit");
    for (e, a) in events.iter().zip(&answers) {
        assert!(matches!(a, Answer::Response(_)), "event {e} answered {a:?}");
    }
    let Answer::Response(test_event) = &answers[0] else {
        unreachable!()
    };
    assert_eq!(test_event["ignored"], "s3:TestEvent");
    let records = w.outputs("audit/sessions/");
    assert_eq!(records.len(), 8, "{:?}", records.keys().collect::<Vec<_>>());
    assert!(
        records.keys().all(|k| k.starts_with("dt=2026-02-")),
        "{:?}",
        records.keys()
    );
    assert_eq!(records_score(tmp.path(), &records), local_score(tmp.path()));
    // The keys with a space and with Hangul were read (their sessions are attributed).
    let text = String::from_utf8_lossy(&records.values().flatten().copied().collect::<Vec<u8>>())
        .to_string();
    assert!(
        text.contains(&format!("s3://{LOGS}/session logs/")),
        "no record from the key with a space"
    );
    assert!(
        text.contains(&format!("s3://{LOGS}/세션 기록/")),
        "no record from the Hangul key"
    );
}

#[test]
fn duplicate_and_out_of_order_delivery_give_identical_records() {
    let w = world();
    // One ordered delivery: inventory and CloudTrail first, then logs and streams.
    let mut ordered = w.s3_events(|o| o.4 || o.0.starts_with("inventory/"));
    ordered.extend(w.s3_events(|o| !o.4 && !o.0.starts_with("inventory/")));
    ordered.extend(w.stream_events());
    let a = w.deliver(&w.deps("ordered"), &ordered);
    assert!(a.iter().all(Result::is_ok), "{a:?}");
    // Every event twice, CloudTrail last, streams reversed.
    let mut twice = w.s3_events(|o| !o.4);
    twice.extend(w.stream_events().into_iter().rev());
    twice.extend(w.s3_events(|o| o.4));
    let doubled: Vec<Value> = twice.iter().flat_map(|e| [e.clone(), e.clone()]).collect();
    let b = w.deliver(&w.deps("twice"), &doubled);
    assert!(b.iter().all(Result::is_ok), "{b:?}");
    let (ra, rb) = (w.outputs("ordered/sessions/"), w.outputs("twice/sessions/"));
    assert_eq!(ra.len(), 8);
    assert_eq!(ra.keys().collect::<Vec<_>>(), rb.keys().collect::<Vec<_>>());
    for (k, v) in &ra {
        assert!(v == &rb[k], "{k} differs");
    }
    // Before CloudTrail arrived, the sessions were attributed by their ids only; after, by it.
    let text =
        String::from_utf8_lossy(&rb.values().flatten().copied().collect::<Vec<u8>>()).to_string();
    assert!(!text.contains("\"attribution\":\"session-id\""));
    assert!(text.contains("\"attribution\":\"cloudtrail\""));
}

#[test]
fn a_corrupt_object_is_quarantined_and_the_rest_of_the_batch_goes_on() {
    let w = world();
    let broken_key = "AWSLogs/444455556666/CloudTrail/ap-northeast-2/2026/02/16/broken.json.gz";
    let put = w.rt.block_on(
        w.s3.put_object()
            .bucket(LOGS)
            .key(broken_key)
            .body(vec![0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00].into())
            .send(),
    );
    let version = put.unwrap().version_id().map(String::from);
    let logs: Vec<_> = w
        .objects
        .iter()
        .filter(|o| o.0.ends_with(".log"))
        .take(2)
        .collect();
    let batch = s3_event(
        LOGS,
        &[
            (
                logs[0].0.clone(),
                logs[0].1.clone(),
                logs[0].2.clone(),
                logs[0].3,
            ),
            (broken_key.to_string(), version, None, 7),
            (
                logs[1].0.clone(),
                logs[1].1.clone(),
                logs[1].2.clone(),
                logs[1].3,
            ),
        ],
    );
    let deps = w.deps("q");
    let r = w.deliver(&deps, &[batch]);
    assert!(r[0].is_ok(), "{r:?}");
    let quarantine = w.outputs("q/quarantine/");
    assert_eq!(quarantine.len(), 1);
    let record: Value = serde_json::from_slice(quarantine.values().next().unwrap()).unwrap();
    assert_eq!(record["source"], format!("s3://{LOGS}/{broken_key}"));
    assert!(
        record["reason"].as_str().unwrap().contains("gzip"),
        "{record}"
    );
    assert!(record["time"].as_str().is_some());
    assert_eq!(w.outputs("q/sessions/").len(), 2);
}

#[test]
fn corrupt_state_is_permanent_for_an_object_and_for_a_stream_delivery() {
    let w = world();
    let deps = w.deps("c");
    let log = w
        .objects
        .iter()
        .find(|o| o.0.ends_with(".log"))
        .expect("a session log")
        .clone();
    let log_sid = log
        .0
        .rsplit('/')
        .next()
        .and_then(|n| n.strip_suffix(".log"))
        .unwrap()
        .to_string();
    let stream_sid = w.streams[0].0.clone();
    // The CloudTrail facts of both sessions, as state that does not read.
    w.rt.block_on(async {
        for sid in [&log_sid, &stream_sid] {
            w.s3.put_object()
                .bucket(OUT)
                .key(format!("c/state/trail/{sid}.json"))
                .body(b"{\"principal\": tru".to_vec().into())
                .send()
                .await
                .unwrap();
        }
    });
    let mut events = w.s3_events(|o| o.0 == log.0);
    events.extend(w.stream_events());
    let r = w.deliver(&deps, &events);
    // Trying again reads the same bytes: nothing is retried, each is quarantined.
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let quarantine = w.outputs("c/quarantine/");
    let reasons: Vec<(String, String)> = quarantine
        .values()
        .map(|b| {
            let v: Value = serde_json::from_slice(b).unwrap();
            (
                v["source"].as_str().unwrap().to_string(),
                v["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for source in [
        format!("s3://{LOGS}/{}", log.0),
        format!("cloudwatch://{GROUP}/{stream_sid}"),
    ] {
        assert!(
            reasons.iter().any(|(s, why)| *s == source
                && why.starts_with("corrupt state ")
                && why.contains("state/trail/")),
            "{source} quarantined for its state: {reasons:?}"
        );
    }
    assert!(w.outputs("c/sessions/").is_empty());
}

#[test]
fn a_transient_failure_fails_the_invocation_and_leaves_no_partial_records() {
    let w = world();
    let client = w.s3.clone();
    let deps = Deps {
        buckets: Arc::new(move |b: &str| {
            Arc::new(S3Store::new(client.clone(), b)) as Arc<dyn ObjectStore>
        }),
        pipeline: Pipeline::new(Output {
            store: Arc::new(S3Store::new(w.s3.clone(), "not-created-yet")),
            prefix: "audit".into(),
        }),
        index_dir: None,
        anchor: None,
    };
    let events = w.s3_events(|o| o.0.ends_with(".log"));
    let r = w.deliver(&deps, &events[..1]);
    assert!(r[0].is_err(), "{r:?}");
    // The retry after the cause is gone succeeds.
    w.rt.block_on(w.s3.create_bucket().bucket("not-created-yet").send())
        .unwrap();
    let r = w.deliver(&deps, &events[..1]);
    assert!(r[0].is_ok(), "{r:?}");
}

#[test]
fn the_cli_reads_s3_cloudwatch_and_the_lambda_records_like_local_files() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let commands = |index: &Path| -> Vec<(String, u64, String, String)> {
        let idx = index.display().to_string();
        let (_, out, _) = run(&[
            "search", "--index", &idx, "--format", "json", "--limit", "100000",
        ]);
        let mut v: Vec<_> = out
            .lines()
            .map(|l| {
                let h: Value = serde_json::from_str(l).unwrap();
                (
                    h["session_id"].as_str().unwrap().to_string(),
                    h["seq"].as_u64().unwrap(),
                    h["command"].as_str().unwrap().to_string(),
                    h["run_as"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let env = w.moto.env();
    let ingest = |index: &Path, sources: &[&str]| {
        let mut cmd = ssm_audit_tests::ssm_audit();
        cmd.envs(env.clone())
            .args(["ingest", "--index", &index.display().to_string()])
            .args(sources);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Local files.
    let c = corpus();
    let local = tmp.path().join("local");
    let paths: Vec<String> = [
        c.join("sessions"),
        c.join("cloudwatch"),
        c.join("cloudtrail"),
        c.join("describe-instances.json"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect();
    ingest(
        &local,
        &paths.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let want = commands(&local);
    assert!(want.len() > 40);
    // The same through S3 and CloudWatch Logs.
    let remote = tmp.path().join("remote");
    ingest(
        &remote,
        &[&format!("s3://{LOGS}/"), &format!("cloudwatch://{GROUP}")],
    );
    assert_eq!(commands(&remote), want);
    // Folders, S3 prefixes and a log group in one run, among locations that cannot be
    // listed: each of those is one error line naming it, and the rest is read.
    let mixed = tmp.path().join("mixed");
    let missing = tmp.path().join("no such folder").display().to_string();
    let sessions = c.join("sessions").display().to_string();
    let out = ssm_audit_tests::ssm_audit()
        .envs(env.clone())
        .args(["ingest", "--index", &mixed.display().to_string()])
        .args([
            sessions.as_str(),
            &format!("s3://{LOGS}/AWSLogs/"),
            &missing,
            "s3://no-such-bucket/logs/",
            &format!("s3://{LOGS}/inventory/"),
            "cloudwatch://no/such/group",
            &format!("cloudwatch://{GROUP}"),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for bad in [
        missing.as_str(),
        "s3://no-such-bucket/logs/",
        "cloudwatch://no/such/group",
    ] {
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with(&format!("error: {bad}: ")))
            .collect();
        assert_eq!(lines.len(), 1, "one line for {bad}: {err}");
    }
    assert!(err.contains("3 failed"), "{err}");
    assert_eq!(commands(&mixed), want);
    // The Lambda's records, read back from S3.
    let events: Vec<Value> = w
        .s3_events(|_| true)
        .into_iter()
        .chain(w.stream_events())
        .collect();
    let r = w.deliver(&w.deps("audit"), &events);
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let records = tmp.path().join("records");
    ingest(&records, &[&format!("records:s3://{OUT}/audit/sessions/")]);
    assert_eq!(commands(&records), want);

    // `verify` fetches the streamed sessions again from their log group, as it fetches the
    // objects: every source is checked.
    let verify = |index: &Path| {
        let out = ssm_audit_tests::ssm_audit()
            .envs(env.clone())
            .args(["verify", "--index", &index.display().to_string()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = verify(&remote);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        !out.lines()
            .any(|l| l.starts_with("not checked: cloudwatch://")),
        "{out}"
    );
    // An event written into a stream after the ingest: the stream is named as changed.
    let streams =
        w.rt.block_on(
            w.moto
                .logs()
                .describe_log_streams()
                .log_group_name(GROUP)
                .send(),
        )
        .unwrap();
    let stream = streams.log_streams()[0]
        .log_stream_name()
        .unwrap()
        .to_string();
    w.rt.block_on(
        w.moto
            .logs()
            .put_log_events()
            .log_group_name(GROUP)
            .log_stream_name(&stream)
            .log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(chrono::Utc::now().timestamp_millis())
                    .message("written later")
                    .build()
                    .unwrap(),
            )
            .send(),
    )
    .unwrap();
    let (code, out) = verify(&remote);
    assert_eq!(code, Some(1), "{out}");
    let named: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(&format!("cloudwatch://{GROUP}/{stream}")))
        .collect();
    assert!(named.len() == 1 && named[0].starts_with("CHANGED"), "{out}");
}

#[test]
fn s3_and_folder_stores_pass_the_same_suite() {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = moto.s3();
    rt.block_on(s3.create_bucket().bucket("suite").send())
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let stores: Vec<Box<dyn ObjectStore>> = vec![
        Box::new(S3Store::new(s3, "suite")),
        Box::new(aws_adapters::objects::DirStore::new(tmp.path())),
    ];
    for store in stores {
        rt.block_on(store_suite(store.as_ref()));
    }
}

async fn store_suite(store: &dyn ObjectStore) {
    let url = store.url("x");
    assert_eq!(store.get("a/missing").await.unwrap(), None, "{url}");
    store.put("a/one.json", b"1".to_vec()).await.unwrap();
    store.put("a/b/two.json", b"22".to_vec()).await.unwrap();
    store.put("c/three", b"333".to_vec()).await.unwrap();
    assert_eq!(
        store.get("a/one.json").await.unwrap().as_deref(),
        Some(&b"1"[..]),
        "{url}"
    );
    let keys: Vec<String> = store
        .list("a/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["a/b/two.json", "a/one.json"], "{url}");
    // A multipart object (larger than one part) reads back whole, and is invisible until finished.
    let big: Vec<u8> = (0..(aws_adapters::objects::PART_BYTES * 2 + 12345))
        .map(|i| (i % 251) as u8)
        .collect();
    let mut w = store.create("big/object").await.unwrap();
    for chunk in big.chunks(1 << 20) {
        w.write(chunk).await.unwrap();
    }
    assert_eq!(
        store.get("big/object").await.unwrap(),
        None,
        "{url}: visible before finish"
    );
    w.finish().await.unwrap();
    let back = aws_adapters::objects::read_all(store, "big/object", None)
        .await
        .unwrap();
    assert!(back == big, "{url}: multipart object differs");
    store.delete("a/one.json").await.unwrap();
    store.delete("a/one.json").await.unwrap();
    assert_eq!(store.get("a/one.json").await.unwrap(), None, "{url}");
    assert!(matches!(
        store.open("nothing/here", None).await.err(),
        Some(aws_adapters::objects::StoreError::NotFound(_))
    ));
}

#[test]
fn the_lambda_also_commits_into_a_tantivy_index_when_asked() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let mut deps = w.deps("indexed");
    deps.index_dir = Some(tmp.path().join("index"));
    // Its ledger heads anchored in a bucket with Object Lock, signed with a KMS key.
    let kms = w.moto.kms();
    let key_arn = w.rt.block_on(async {
        w.s3.create_bucket()
            .bucket("anchors")
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
            .unwrap();
        let key = kms
            .create_key()
            .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
            .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
            .send()
            .await
            .unwrap();
        key.key_metadata().unwrap().arn().unwrap().to_string()
    });
    deps.anchor = Some(ingest_lambda::handler::Anchor {
        client: w.s3.clone(),
        url: "s3://anchors/lambda-index".into(),
        retain_days: Some(1),
        sign_key: Some((key_arn.clone(), kms.clone())),
    });
    let events: Vec<Value> = w
        .s3_events(|_| true)
        .into_iter()
        .chain(w.stream_events())
        .collect();
    let r = w.deliver(&deps, &events);
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let store = indexer::store::Index::open(&tmp.path().join("index"))
        .and_then(|i| i.reader())
        .unwrap();
    let records = store.search(&indexer::store::Filter::default()).unwrap();
    let from_s3: usize = w
        .outputs("indexed/sessions/")
        .values()
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .sum();
    assert_eq!(records.len(), from_s3);
    assert!(records.len() > 40);
    assert!(
        records
            .iter()
            .all(|r| r.who.attribution == indexer::kinds::AttributedBy::Cloudtrail),
        "attributed in the index too"
    );
    // Every source it rests on is in its ledger (streams included): `verify` agrees.
    let out = ssm_audit_tests::ssm_audit()
        .envs(w.moto.env())
        .args([
            "verify",
            "--index",
            &tmp.path().join("index").display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Each commit's head: a new object, signed, under Object Lock.
    let heads =
        w.rt.block_on(
            w.s3.list_objects_v2()
                .bucket("anchors")
                .prefix("lambda-index/")
                .send(),
        )
        .unwrap();
    let keys: Vec<String> = heads
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_string())
        .collect();
    assert!(!keys.is_empty(), "no head anchored");
    for key in &keys {
        let head =
            w.rt.block_on(w.s3.head_object().bucket("anchors").key(key).send())
                .unwrap();
        assert_eq!(
            head.object_lock_mode(),
            Some(&aws_sdk_s3::types::ObjectLockMode::Compliance),
            "{key}"
        );
        assert!(head.object_lock_retain_until_date().is_some(), "{key}");
    }
    let ledger = indexer::ledger::Ledger::of_index(&tmp.path().join("index"))
        .read()
        .unwrap()
        .entries;
    // `verify --anchor` checks the Lambda's ledger against them, signatures included.
    let verify = |extra: &[&str]| {
        let out = ssm_audit_tests::ssm_audit()
            .envs(w.moto.env())
            .args([
                "verify",
                "--index",
                &tmp.path().join("index").display().to_string(),
            ])
            .args([
                "--anchor",
                "s3://anchors/lambda-index",
                "--sign-key",
                &key_arn,
            ])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (_, out) = verify(&[]);
    assert!(
        !out.lines().any(|l| l.starts_with("ANCHOR"))
            && out.contains(&format!("{} anchored heads", keys.len())),
        "{out}"
    );
    // A head written again under its name (a new version) to match a forged ledger: its
    // signature does not match, and the first version still stands.
    let last_key = keys.last().unwrap();
    let body =
        w.rt.block_on(async {
            w.s3.get_object()
                .bucket("anchors")
                .key(last_key)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
        })
        .unwrap()
        .into_bytes();
    let mut head: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(head["entries"].as_u64(), Some(ledger.len() as u64));
    assert!(head["signature"]["value"].is_string(), "{head}");
    head["time"] = "2020-01-01T00:00:00Z".into();
    w.rt.block_on(
        w.s3.put_object()
            .bucket("anchors")
            .key(last_key)
            .body(serde_json::to_vec(&head).unwrap().into())
            .send(),
    )
    .unwrap();
    let (code, out) = verify(&[]);
    assert_eq!(code, Some(1), "{out}");
    let bad: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("ANCHOR") && l.contains("does not match"))
        .collect();
    assert_eq!(bad.len(), 1, "{out}");
}

/// Run the built `ingest-lambda` against `endpoint` for these events; its answers.
fn run_binary(w: &World, endpoint: &str, events: Vec<Value>, prefix: &str) -> Vec<Answer> {
    let bin = assert_cmd::cargo::cargo_bin("ingest-lambda");
    assert!(
        bin.exists(),
        "{} is not built (cargo build --workspace)",
        bin.display()
    );
    run_lambda(std::process::Command::new(bin), w, endpoint, events, prefix)
}

/// Run a Lambda `bootstrap` (the command given) behind a Runtime API for these events.
fn run_lambda(
    mut command: std::process::Command,
    w: &World,
    endpoint: &str,
    events: Vec<Value>,
    prefix: &str,
) -> Vec<Answer> {
    let api = RuntimeApi::start(events.clone());
    let mut child = command
        .envs(w.moto.env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "ssm-audit-ingest")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("SSM_AUDIT_OUTPUT", format!("s3://{OUT}/{prefix}"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let answers = api.wait_for(events.len(), Duration::from_secs(180));
    let _ = child.kill();
    let _ = child.wait();
    answers
}

#[test]
fn s3_throttling_is_retried_and_persistent_errors_fail_the_invocation_without_losing_the_object() {
    use ssm_audit_tests::faults::{FaultProxy, Rule};
    let w = world();
    let proxy = FaultProxy::start(&w.moto.endpoint);
    let events = w.s3_events(|o| o.0.starts_with("sessions/") && o.0.ends_with(".log"));
    let name = |e: &Value| {
        e["Records"][0]["s3"]["object"]["key"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    };
    let (a, b) = (events[0].clone(), events[1].clone());
    let (name_a, name_b) = (name(&a), name(&b));
    let sid = |n: &str| n.trim_end_matches(".log").to_string();
    // `a` is throttled twice, then served; `b` fails every time.
    proxy.fail(Rule {
        method: "GET",
        path_contains: name_a.clone(),
        remaining: 2,
        status: 503,
    });
    proxy.fail(Rule {
        method: "GET",
        path_contains: name_b.clone(),
        remaining: usize::MAX,
        status: 500,
    });
    let answers = run_binary(&w, &proxy.endpoint, vec![a, b.clone()], "f");
    assert!(matches!(answers[0], Answer::Response(_)), "{answers:?}");
    assert!(matches!(answers[1], Answer::Error(_)), "{answers:?}");
    let gets = |n: &str| -> Vec<u16> {
        proxy
            .seen()
            .into_iter()
            .filter(|(m, p, _)| m == "GET" && p.contains(n))
            .map(|(_, _, s)| s)
            .collect()
    };
    let got_a = gets(&name_a);
    assert_eq!(
        &got_a[..3],
        &[503, 503, 200],
        "retried after throttling: {got_a:?}"
    );
    let got_b = gets(&name_b);
    assert!(
        got_b.len() >= 3 && got_b.iter().all(|&s| s == 500),
        "retried, then given up: {got_b:?}"
    );
    let written = w.outputs("f/sessions/");
    assert!(
        written.keys().any(|k| k.contains(&sid(&name_a))),
        "{written:?}"
    );
    assert!(
        !written.keys().any(|k| k.contains(&sid(&name_b))),
        "{written:?}"
    );
    // Once S3 answers again, the retried invocation (Lambda retries failed ones) writes `b`.
    proxy.heal();
    let answers = run_binary(&w, &proxy.endpoint, vec![b], "f");
    assert!(matches!(answers[0], Answer::Response(_)), "{answers:?}");
    assert!(w
        .outputs("f/sessions/")
        .keys()
        .any(|k| k.contains(&sid(&name_b))));
}

/// Launch the corpus's instances in moto (in the corpus's region, with their Name tags) and
/// write a copy of the corpus at `dir` whose files name moto's instance ids instead (ids of the
/// same length: byte ranges do not move), without its inventory file.
fn corpus_on_ec2(moto: &Moto, c: &Path, dir: &Path) -> BTreeMap<String, String> {
    let inventory: Value =
        serde_json::from_slice(&std::fs::read(c.join("describe-instances.json")).unwrap()).unwrap();
    // The region of the trail's files (AWSLogs/ACCOUNT/CloudTrail/REGION/…).
    let trail = files_under(&c.join("cloudtrail")).remove(0);
    let parts: Vec<String> = trail
        .iter()
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    let at = parts.iter().position(|p| p == "CloudTrail").unwrap();
    let region = &parts[at + 1];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ec2 = moto.ec2(region);
    let mut ids = BTreeMap::new();
    for r in inventory["Reservations"].as_array().unwrap() {
        for i in r["Instances"].as_array().unwrap() {
            let old = i["InstanceId"].as_str().unwrap().to_string();
            let name = i["Tags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["Key"] == "Name")
                .map(|t| t["Value"].as_str().unwrap().to_string())
                .unwrap();
            let new = rt.block_on(async {
                let tag = aws_sdk_ec2::types::Tag::builder()
                    .key("Name")
                    .value(&name)
                    .build();
                let spec = aws_sdk_ec2::types::TagSpecification::builder()
                    .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                    .tags(tag)
                    .build();
                let out = ec2
                    .run_instances()
                    .image_id("ami-12c6146b")
                    .min_count(1)
                    .max_count(1)
                    .tag_specifications(spec)
                    .send()
                    .await
                    .unwrap();
                out.instances()[0].instance_id().unwrap().to_string()
            });
            assert_eq!(new.len(), old.len(), "{new} and {old}");
            ids.insert(old, new);
        }
    }
    for f in files_under(c) {
        let rel = f.strip_prefix(c).unwrap();
        if rel == Path::new("describe-instances.json") {
            continue;
        }
        let mut bytes = std::fs::read(&f).unwrap();
        let gz = bytes.starts_with(&[0x1f, 0x8b]);
        if gz {
            let mut out = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                &mut out,
            )
            .unwrap();
            bytes = out;
        }
        for (old, new) in &ids {
            bytes = replace_all(&bytes, old.as_bytes(), new.as_bytes());
        }
        if gz {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut e, &bytes).unwrap();
            bytes = e.finish().unwrap();
        }
        let dest = dir.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
    ids
}

fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// JSON Lines as values, in (session, seq) order.
fn sorted_records(text: &[u8]) -> Vec<Value> {
    let mut v: Vec<Value> = String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    v.sort_by(|a, b| {
        (a["session_id"].as_str(), a["seq"].as_u64())
            .cmp(&(b["session_id"].as_str(), b["seq"].as_u64()))
    });
    v
}

#[test]
fn the_lambda_with_names_from_ec2_writes_exactly_the_records_the_cli_derives() {
    lambda_with_names_from_ec2_equals_the_cli(&corpus());
}

/// The same on this repository's recorded sessions: another account and region, three streamed
/// sessions, other shells and keystrokes.
#[test]
fn the_lambda_with_names_from_ec2_equals_the_cli_on_the_recorded_sessions() {
    lambda_with_names_from_ec2_equals_the_cli(&ssm_audit_tests::recorded());
}

/// The corpus at `c` rewritten to instances launched in moto, no inventory uploaded: the
/// Lambda binary's records and abandoned lines equal the CLI's, field for field, and score
/// precision, recall and attribution 1.000 against the corpus's truth.
fn lambda_with_names_from_ec2_equals_the_cli(c: &Path) {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("corpus");
    let ids = corpus_on_ec2(&moto, c, &copy);
    let w = world_in(moto, &copy, false);
    // The Lambda binary behind the Runtime API, no inventory anywhere: names come from EC2.
    let mut events = w.s3_events(|_| true);
    events.extend(w.stream_events());
    let answers = run_binary(&w, &w.moto.endpoint, events.clone(), "audit");
    for (e, a) in events.iter().zip(&answers) {
        assert!(matches!(a, Answer::Response(_)), "event {e} answered {a:?}");
    }
    let commands: Vec<u8> = w
        .outputs("audit/sessions/")
        .into_values()
        .flatten()
        .collect();
    let abandoned: Vec<u8> = w
        .outputs("audit/abandoned/")
        .into_values()
        .flatten()
        .collect();
    // The command line on the same bytes, through S3 and CloudWatch Logs.
    let index = tmp.path().join("index");
    let idx = index.display().to_string();
    let out = ssm_audit_tests::ssm_audit()
        .envs(w.moto.env())
        .args(["ingest", "--resolve-names", "--index", &idx])
        .args([format!("s3://{LOGS}/"), format!("cloudwatch://{GROUP}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let search = |extra: &[&str]| {
        let mut args = vec![
            "search", "--index", &idx, "--format", "json", "--limit", "100000",
        ];
        args.extend_from_slice(extra);
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        sorted_records(out.as_bytes())
    };
    let (lambda, cli) = (sorted_records(&commands), search(&[]));
    assert!(lambda.len() > 20);
    assert_eq!(lambda.len(), cli.len());
    for (l, c) in lambda.iter().zip(&cli) {
        assert_eq!(l, c, "the Lambda's record and the CLI's differ");
    }
    let (lambda, cli) = (sorted_records(&abandoned), search(&["--abandoned"]));
    assert!(!lambda.is_empty(), "the corpus has Ctrl-C'd lines");
    assert_eq!(lambda, cli);
    assert!(lambda.iter().all(|r| r["abandoned"] == true));
    // Every record names its instance by the Name tag EC2 gave, and says so; the streamed
    // session is among them, with the same digest and byte ranges.
    let all = sorted_records(&commands);
    for r in &all {
        let id = r["instance_id"].as_str().unwrap();
        assert!(ids.values().any(|v| v == id), "{id} is one of moto's");
        assert_eq!(r["instance_name_from"], "ec2", "{r}");
        assert_eq!(r["schema"], 1);
    }
    let streamed: std::collections::BTreeSet<&str> = all
        .iter()
        .filter_map(|r| r["evidence"]["source"].as_str())
        .filter(|s| s.starts_with("cloudwatch://"))
        .collect();
    assert_eq!(streamed.len(), w.streams.len(), "every streamed session");
    assert!(all
        .iter()
        .any(|r| !r["rule"].as_array().is_none_or(Vec::is_empty)));
    // Scored against the corpus's truth with the ids rewritten: every name right.
    let hits = tmp.path().join("lambda.ndjson");
    std::fs::write(&hits, &commands).unwrap();
    let (_, text) = score(&copy.join("truth.json"), &hits, &[]);
    let last = last_line(&text);
    assert!(last.contains("attribution 1.000"), "{text}");
    assert!(last.starts_with("precision 1.000 recall 1.000"), "{text}");
}

/// Issue 18 through the Lambda: a forged StartSession for another principal and a second,
/// padded transcript written under the session's key (a new version) by an instance. The
/// records keep the genuine attribution and transcript, and carry both conflicts; a file of
/// command records written into the log prefix is skipped.
#[test]
fn the_lambda_flags_a_forged_start_and_a_second_transcript_and_skips_records() {
    let w = world();
    let sid = "jiwoo-de2414f130f6d253c";
    let key = w
        .objects
        .iter()
        .find(|o| o.0.ends_with(&format!("{sid}.log")))
        .unwrap()
        .0
        .clone();
    let mut events = w.s3_events(|_| true);
    // S3 keeps LastModified to the second: the forgeries come later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let real = std::fs::read(corpus().join(format!("sessions/{sid}.log"))).unwrap();
    let mut padded = real.clone();
    padded.extend(std::iter::repeat_n(b' ', 20_000));
    let forged_start = serde_json::json!({"Records": [{
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::444455556666:user/mallory",
            "accountId": "444455556666", "userName": "mallory", "principalId": "AIDAFORGED"},
        "eventTime": "2026-02-10T01:00:00Z", "eventSource": "ssm.amazonaws.com",
        "eventName": "StartSession", "awsRegion": "ap-northeast-2",
        "sourceIPAddress": "198.51.100.66", "recipientAccountId": "444455556666",
        "requestParameters": {"target": "i-0d44dd44dd44dd444"},
        "responseElements": {"sessionId": sid}, "eventID": "forged-start"
    }]});
    let records = b"{\"schema\":1,\"session_id\":\"jiwoo-de2414f130f6d253c\",\"seq\":0,\"command\":\"true\",\"run_as\":\"root\",\"cwd\":null,\"principal_arn\":\"arn:aws:iam::444455556666:user/mallory\",\"principal\":\"mallory\",\"principal_type\":null,\"mfa\":null,\"source_ip\":null,\"instance_id\":null,\"instance_name\":null,\"session_start\":null,\"session_end\":null,\"attribution\":\"cloudtrail\",\"programs\":[\"true\"],\"evidence\":{\"source\":\"x\",\"sha256\":\"00\",\"byte_start\":0,\"byte_end\":1}}\n".to_vec();
    let forged: Vec<(String, Vec<u8>)> = vec![
        (key.clone(), padded),
        (
            "AWSLogs/444455556666/CloudTrail/ap-northeast-2/2026/02/10/forged.json".into(),
            serde_json::to_vec(&forged_start).unwrap(),
        ),
        ("sessions/notes.jsonl".into(), records),
    ];
    for (k, bytes) in forged {
        let size = bytes.len() as u64;
        let put =
            w.rt.block_on(
                w.s3.put_object()
                    .bucket(LOGS)
                    .key(&k)
                    .body(bytes.into())
                    .send(),
            )
            .unwrap();
        events.push(s3_event(
            LOGS,
            &[(k, put.version_id().map(String::from), None, size)],
        ));
    }
    let answers = w.deliver(&w.deps("p"), &events);
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let skipped = answers.last().unwrap().as_ref().unwrap().to_string();
    assert!(skipped.contains("skipped"), "{skipped}");
    let all: Vec<Value> = sorted_records(
        &w.outputs("p/sessions/")
            .into_values()
            .flatten()
            .collect::<Vec<u8>>(),
    );
    let session: Vec<&Value> = all.iter().filter(|r| r["session_id"] == sid).collect();
    assert!(!session.is_empty());
    for r in &session {
        assert_eq!(
            r["principal_arn"], "arn:aws:iam::444455556666:user/jiwoo",
            "{r}"
        );
        let c = r["conflicts"].to_string();
        assert!(c.contains("mallory"), "{r}");
        assert!(c.contains("two different transcripts"), "{r}");
        assert_ne!(r["evidence"]["version_id"], Value::Null);
    }
    // The first version written is the one read.
    let first = w.objects.iter().find(|o| o.0 == key).unwrap().1.clone();
    assert_eq!(
        session[0]["evidence"]["version_id"].as_str(),
        first.as_deref()
    );

    // The command line reading the same bucket sees both versions of the log (not only the
    // newest), skips the records file among the logs, and says the same.
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index").display().to_string();
    let out = ssm_audit_tests::ssm_audit()
        .envs(w.moto.env())
        .args(["ingest", "--index", &index, &format!("s3://{LOGS}/")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("sessions/notes.jsonl") && l.contains("skipped")),
        "{err}"
    );
    let cli = ssm_audit_tests::search_json(Path::new(&index), &[]).1;
    let cli: Vec<Value> = cli
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["session_id"] == sid)
        .collect();
    assert_eq!(cli.len(), session.len());
    for r in &cli {
        assert_eq!(r["principal_arn"], "arn:aws:iam::444455556666:user/jiwoo");
        assert_eq!(
            r["evidence"]["version_id"].as_str(),
            first.as_deref(),
            "{r}"
        );
        let c = r["conflicts"].to_string();
        assert!(
            c.contains("mallory") && c.contains("two different transcripts"),
            "{r}"
        );
    }
    let (code, cov, _) = run(&["coverage", "--index", &index, "--format", "json"]);
    assert_eq!(code, 0);
    let row: Value = cov
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["session_id"] == sid)
        .unwrap();
    assert!(row["flags"].to_string().contains("conflict"), "{row}");
    assert_eq!(row["transcripts"].as_array().unwrap().len(), 2, "{row}");
    // Both versions are in the ledger, each verified at its own version.
    let out = ssm_audit_tests::ssm_audit()
        .envs(w.moto.env())
        .args(["verify", "--index", &index, "--source", &key])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("2 sources"), "{said}");
}

/// The corpus's CloudTrail files as uploaded (key, uncompressed bytes), with signed digests
/// of them put beside them in the logs bucket: (key, version, etag, size) of each digest.
fn signed_digests(w: &World) -> (Vec<Uploaded>, Vec<cloudtrail_api::Digest>) {
    let files: Vec<(String, Vec<u8>)> = w
        .objects
        .iter()
        .filter(|o| o.4)
        .map(|(k, ..)| {
            let bytes = std::fs::read(corpus().join("cloudtrail").join(k)).unwrap();
            (k.clone(), cloudtrail_api::gunzip(&bytes))
        })
        .collect();
    assert_eq!(files.len(), 5);
    let digests = cloudtrail_api::digests(
        LOGS,
        &files,
        &["20260210", "20260211", "20260212", "20260213", "20260214"],
    );
    let uploaded = digests
        .iter()
        .map(|d| put_digest(w, &d.key, d.body.clone(), &d.signature))
        .collect();
    (uploaded, digests)
}

fn put_digest(w: &World, key: &str, body: Vec<u8>, signature: &str) -> Uploaded {
    let size = body.len() as u64;
    let put =
        w.rt.block_on(
            w.s3.put_object()
                .bucket(LOGS)
                .key(key)
                .metadata("signature", signature)
                .metadata("signature-algorithm", "SHA256withRSA")
                .body(body.into())
                .send(),
        )
        .unwrap();
    (
        key.to_string(),
        put.version_id().map(String::from),
        put.e_tag().map(String::from),
        size,
        false,
    )
}

fn events_of(objects: &[Uploaded]) -> Vec<Value> {
    objects
        .iter()
        .map(|(k, v, e, s, _)| s3_event(LOGS, &[(k.clone(), v.clone(), e.clone(), *s)]))
        .collect()
}

/// Every record of the records files under `prefix`.
fn records_under(w: &World, prefix: &str) -> Vec<Value> {
    w.outputs(prefix)
        .iter()
        .filter(|(k, _)| k.starts_with("sessions/"))
        .flat_map(|(_, b)| sorted_records(b))
        .collect()
}

#[test]
fn the_lambda_checks_digests_and_its_records_say_their_cloudtrail_is_validated() {
    let w = world();
    let tmp = tempfile::tempdir().unwrap();
    let api = KeysApi::start(vec![(
        cloudtrail_api::FINGERPRINT.into(),
        cloudtrail_api::public_der(),
    )]);
    let (digests, made) = signed_digests(&w);
    let with_keys = |prefix: &str| {
        let mut deps = w.deps(prefix);
        deps.pipeline = deps
            .pipeline
            .clone()
            .with_cloudtrail(Arc::new(ApiKeys::new(w.moto.cloudtrail_at(&api.url))));
        deps
    };
    let sources: Vec<Value> = w
        .s3_events(|_| true)
        .into_iter()
        .chain(w.stream_events())
        .collect();

    // The digests after the files they list (as CloudTrail delivers them, an hour later), with
    // the index kept too.
    let mut late = with_keys("late");
    late.index_dir = Some(tmp.path().join("index"));
    let r = w.deliver(&late, &sources);
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let before = records_under(&w, "late/");
    assert!(before.len() > 40);
    assert!(before.iter().all(|r| r["cloudtrail_validated"] == false));
    let r = w.deliver(&late, &events_of(&digests));
    let outcomes: Vec<String> = r
        .iter()
        .map(|r| r.as_ref().unwrap()["results"][0]["outcome"].to_string())
        .collect();
    assert!(
        outcomes.iter().all(|o| o.contains("cloudtrail-digest")),
        "{outcomes:?}"
    );
    let late_records = records_under(&w, "late/");
    let attributed: Vec<&Value> = late_records
        .iter()
        .filter(|r| r["attribution"] == "cloudtrail")
        .collect();
    assert!(attributed.len() > 40, "{}", attributed.len());
    assert!(
        attributed.iter().all(|r| r["cloudtrail_validated"] == true),
        "{attributed:?}"
    );
    assert_eq!(api.asked().len(), 1, "asked once per region");
    assert_eq!(api.asked()[0].region, cloudtrail_api::REGION);
    // The index the function keeps says the same.
    let (_, out, _) = run(&[
        "search",
        "--index",
        &tmp.path().join("index").display().to_string(),
        "--format",
        "json",
        "--limit",
        "1000000",
    ]);
    let indexed: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(indexed.len(), late_records.len());
    assert!(indexed.iter().all(|r| r["cloudtrail_validated"] == true));
    // Its ledger lists every object its records rest on (transcripts, CloudTrail files,
    // digests, the inventory): `verify` derives every record again from them, and agrees.
    let out = ssm_audit_tests::ssm_audit()
        .envs(w.moto.env())
        .envs(api.env())
        .args([
            "verify",
            "--index",
            &tmp.path().join("index").display().to_string(),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("5 CloudTrail files validated by 5 signed digests"),
        "{said}"
    );

    // The digests first: the same records.
    let first = with_keys("first");
    let digest_events = events_of(&digests);
    let all: Vec<Value> = digest_events.iter().chain(&sources).cloned().collect();
    let r = w.deliver(&first, &all);
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let mut a = records_under(&w, "first/");
    let mut b = late_records.clone();
    a.sort_by_key(|r| r.to_string());
    b.sort_by_key(|r| r.to_string());
    assert_eq!(
        a, b,
        "digests before or after their files give the same records"
    );

    // A function with no CloudTrail client skips digests, saying why, and validates nothing.
    let plain = w.deps("plain");
    let r = w.deliver(&plain, &all);
    let said = r[0].as_ref().unwrap()["results"][0]["outcome"].to_string();
    assert!(
        said.contains("skipped") && said.contains("not validated"),
        "{said}"
    );
    assert!(records_under(&w, "plain/")
        .iter()
        .all(|r| r["cloudtrail_validated"] == false));

    // A digest whose signature is another's: refused, quarantined, naming why.
    let forged = put_digest(&w, &made[1].key, made[1].body.clone(), &made[0].signature);
    let r = w.deliver(&with_keys("forged"), &events_of(&[forged]));
    let said = r[0].as_ref().unwrap()["results"][0]["outcome"].to_string();
    assert!(
        said.contains("quarantined") && said.contains("signature does not match"),
        "{said}"
    );
}

#[test]
fn an_object_deleted_before_it_was_read_is_read_when_uploaded_again() {
    let w = world();
    let bucket = "plain-logs";
    let key = "sessions/jiwoo-de2414f130f6d253c.log";
    let bytes = std::fs::read(corpus().join("sessions/jiwoo-de2414f130f6d253c.log")).unwrap();
    let size = bytes.len() as u64;
    let put = || {
        w.rt.block_on(
            w.s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(bytes.clone().into())
                .send(),
        )
        .unwrap()
        .e_tag()
        .map(String::from)
    };
    w.rt.block_on(w.s3.create_bucket().bucket(bucket).send())
        .unwrap();
    // Uploaded, then deleted before the function read it (a bucket without versions).
    let etag = put();
    w.rt.block_on(w.s3.delete_object().bucket(bucket).key(key).send())
        .unwrap();
    let event = s3_event(bucket, &[(key.to_string(), None, etag.clone(), size)]);
    let deps = w.deps("gone");
    let r = w.deliver(&deps, std::slice::from_ref(&event));
    let said = r[0].as_ref().unwrap()["results"][0]["outcome"].to_string();
    assert!(said.contains("deleted before it could be read"), "{said}");
    assert!(w.outputs("gone/sessions/").is_empty());
    // The same bytes again: the same ETag, and this time they are read.
    assert_eq!(put(), etag);
    let r = w.deliver(&deps, &[event]);
    let said = r[0].as_ref().unwrap()["results"][0]["outcome"].to_string();
    assert!(said.contains("ingested"), "{said}");
    assert_eq!(w.outputs("gone/sessions/").len(), 1);
}

/// The shapes fixture as a world: its S3 session logs, and its Firehose objects where a
/// delivery stream writes them (`tests/fixtures/shapes`).
fn shapes_world() -> (World, tempfile::TempDir, PathBuf) {
    let shapes = ssm_audit_tests::repo_root().join("tests/fixtures/shapes");
    let c = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("sessions", "sessions"),
        ("firehose", "cloudtrail/firehose"),
        ("other/trail.json", "cloudtrail/other"),
    ] {
        let dir = c.path().join(to);
        std::fs::create_dir_all(&dir).unwrap();
        let from = shapes.join(from);
        let files = if from.is_dir() {
            files_under(&from)
        } else {
            vec![from]
        };
        for f in files {
            std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir_all(c.path().join("cloudwatch")).unwrap();
    let w = world_in(Moto::start(), c.path(), false);
    (w, c, shapes)
}

/// Put `messages` into a new stream of a new log group, ten minutes before now.
fn put_messages(w: &World, group: &str, stream: &str, messages: &[String]) {
    let logs = w.moto.logs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    w.rt.block_on(async {
        logs.create_log_group()
            .log_group_name(group)
            .send()
            .await
            .unwrap();
        logs.create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
            .unwrap();
        let events: Vec<_> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now - 600_000 + i as i64 * 1000)
                    .message(m)
                    .build()
                    .unwrap()
            })
            .collect();
        let r = logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(events))
            .send()
            .await
            .unwrap();
        assert!(r.rejected_log_events_info().is_none());
    });
}

/// The messages of a `filter-log-events` file.
fn messages_of(file: &Path) -> Vec<String> {
    let doc: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

/// Each session's records attribution and principal ARN, by the name in its id.
fn attributed(records: &[Value]) -> BTreeMap<String, (String, String)> {
    records
        .iter()
        .map(|r| {
            let sid = r["session_id"].as_str().unwrap();
            (
                sid.split('-').next().unwrap().to_string(),
                (
                    r["attribution"].as_str().unwrap().to_string(),
                    r["principal_arn"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

/// CloudTrail kept elsewhere than a trail's bucket, as the Lambda gets it: a log group's
/// subscription (a trail delivered to CloudWatch Logs), EventBridge events a rule sends the
/// function, Firehose objects in S3. Each attributes its session, and nothing of it is taken
/// for a session's stream.
#[test]
fn the_lambda_reads_cloudtrail_however_it_is_delivered() {
    let (w, _c, shapes) = shapes_world();
    let mut events = w.s3_events(|_| true);
    events.push(
        serde_json::from_slice(
            &std::fs::read(shapes.join("cloudtrail-in-logs/subscription.json")).unwrap(),
        )
        .unwrap(),
    );
    for l in std::fs::read_to_string(shapes.join("eventbridge/delivered.jsonl"))
        .unwrap()
        .lines()
    {
        events.push(serde_json::from_str(l).unwrap());
    }
    let got = w.deliver(&w.deps("shapes"), &events);
    assert!(got.iter().all(Result::is_ok), "{got:?}");
    let records = records_under(&w, "shapes/");
    let who = attributed(&records);
    // The eight sessions with a transcript, and three with none whose CloudTrail names the
    // command they were started with: that command is their record.
    assert_eq!(who.len(), 11, "{who:?}");
    for (name, command) in [
        ("ivy", "sudo cat /etc/shadow"),
        ("pam", "sudo systemctl stop auditd"),
        ("ecs", "/bin/sh"),
    ] {
        let r: Vec<&Value> = records
            .iter()
            .filter(|r| r["session_id"].as_str().unwrap().starts_with(name))
            .collect();
        assert_eq!(r.len(), 1, "{name}");
        assert_eq!(r[0]["command"], command);
        assert_eq!(r[0]["seq"], 0);
        assert!(r[0]["started_with"].is_object());
        assert!(r[0]["evidence"]["source"]
            .as_str()
            .unwrap()
            .ends_with("other/trail.json"));
    }
    for name in ["ana", "dev", "fay", "gil"] {
        assert_eq!(
            who[name],
            (
                "cloudtrail".to_string(),
                format!("arn:aws:iam::444455556666:user/{name}")
            ),
            "{name}"
        );
    }
    // Their CloudTrail was not delivered here: named by their ids only.
    for name in ["ben", "cho", "eun", "hal"] {
        assert_eq!(who[name].0, "session-id", "{name}");
    }
    assert!(w.outputs("shapes/state/stream/").is_empty());
    assert!(w.outputs("shapes/quarantine/").is_empty());
}

/// `cloudwatch://` of a log group holding a trail's delivery, and of one holding EventBridge
/// events: their records attribute the sessions.
#[test]
fn the_cli_reads_cloudtrail_kept_in_a_log_group() {
    let (w, c, shapes) = shapes_world();
    let trail_group = "aws-cloudtrail-logs-444455556666-audit";
    let events_group = "/aws/events/ssm-sessions";
    put_messages(
        &w,
        trail_group,
        "444455556666_CloudTrail_ap-northeast-2",
        &messages_of(&shapes.join("cloudtrail-in-logs/filter-log-events.json")),
    );
    put_messages(
        &w,
        events_group,
        "e7f8a9b0-eb-target",
        &messages_of(&shapes.join("eventbridge/log-group.json")),
    );
    let index = c.path().join("index");
    let out = ssm_audit_tests::ssm_audit()
        .envs(w.moto.env())
        .args(["ingest", "--index", &index.display().to_string()])
        .arg(c.path().join("sessions"))
        .arg(format!("cloudwatch://{trail_group}"))
        .arg(format!("cloudwatch://{events_group}"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let (_, found, _) = ssm_audit_tests::search_json(&index, &[]);
    let records: Vec<Value> = found
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let who = attributed(&records);
    for name in ["ben", "eun"] {
        assert_eq!(
            who[name],
            (
                "cloudtrail".to_string(),
                format!("arn:aws:iam::444455556666:user/{name}")
            ),
            "{name}: {err}"
        );
    }
    assert_eq!(who["ana"].0, "session-id");
}

/// `ssm-audit backfill` against the same endpoint: its stderr, and whether it succeeded.
fn backfill(w: &World, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("ssm-audit"))
        .envs(w.moto.env())
        .arg("backfill")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Where two output prefixes differ: keys only one has, and keys whose bytes differ.
fn differences(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut out = Vec::new();
    for k in a.keys().chain(b.keys()) {
        match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x != y => out.push(format!("{k}: bytes differ")),
            (Some(_), None) => out.push(format!("{k}: only in the first")),
            (None, Some(_)) => out.push(format!("{k}: only in the second")),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn backfill_writes_byte_for_byte_the_records_the_lambda_wrote() {
    backfill_equals_the_lambda(world(), 8);
}

#[test]
fn backfill_writes_byte_for_byte_the_records_the_lambda_wrote_on_the_recorded_sessions() {
    for (c, sessions) in [
        (ssm_audit_tests::recorded(), 0),
        (
            ssm_audit_tests::repo_root().join("tests/fixtures/recorded-2"),
            0,
        ),
    ] {
        let w = world_in(Moto::start(), &c, true);
        backfill_equals_the_lambda(w, sessions);
    }
}

/// Deliver every event of `w` to the Lambda binary, backfill the same sources, and compare;
/// `sessions`, when not 0, is how many sessions' records there must be.
fn backfill_equals_the_lambda(w: World, sessions: usize) {
    // The Lambda, as deployed: every object's event and every stream's deliveries.
    let mut events = w.s3_events(|_| true);
    events.extend(w.stream_events());
    let answers = run_binary(&w, &w.moto.endpoint, events.clone(), "audit");
    for (e, a) in events.iter().zip(&answers) {
        assert!(matches!(a, Answer::Response(_)), "event {e} answered {a:?}");
    }
    // The same sources, backfilled from the bucket and the log group.
    let (ok, said) = backfill(
        &w,
        &[
            &format!("s3://{LOGS}/"),
            &format!("cloudwatch://{GROUP}"),
            "--to",
            &format!("s3://{OUT}/backfill"),
            "--concurrency",
            "8",
        ],
    );
    assert!(ok, "{said}");
    let want = if sessions > 0 {
        sessions
    } else {
        w.outputs("audit/sessions/").len()
    };
    assert!(want > 0);
    assert!(
        said.contains(&format!("records of {want} sessions written")),
        "{said}"
    );
    for part in [
        "sessions/",
        "abandoned/",
        "quarantine/",
        "state/sources/",
        "state/trail/",
        "state/output/",
    ] {
        // State names keys under its own prefix: the same state under either prefix.
        let lambda: BTreeMap<String, Vec<u8>> = w
            .outputs(&format!("audit/{part}"))
            .into_iter()
            .map(|(k, v)| (k, replace_all(&v, b"\"audit/", b"\"backfill/")))
            .collect();
        let back = w.outputs(&format!("backfill/{part}"));
        if part == "sessions/" {
            assert_eq!(lambda.len(), want, "{:?}", lambda.keys());
        }
        assert_eq!(
            differences(&lambda, &back),
            Vec::<String>::new(),
            "{part} of the Lambda and of the backfill differ"
        );
    }
    // Each object's marker says the same as the Lambda's: the Lambda's later events for those
    // objects find them read.
    // (Less the sessions each rebuilt when it was read, which depend on what came before it.)
    let seen = |prefix: &str| -> BTreeMap<String, Vec<u8>> {
        w.outputs(&format!("{prefix}/state/seen/"))
            .into_iter()
            .map(|(k, v)| {
                let mut m: Value = serde_json::from_slice(&v).unwrap();
                m.as_object_mut().unwrap().remove("sessions");
                (k, m.to_string().into_bytes())
            })
            .collect()
    };
    assert_eq!(
        differences(&seen("audit"), &seen("backfill")),
        Vec::<String>::new()
    );
    let deps = w.deps("backfill");
    for r in w.deliver(&deps, &w.s3_events(|_| true)) {
        let r = r.unwrap();
        assert!(
            r["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["outcome"] == "duplicate"),
            "an event after the backfill is not a duplicate: {r}"
        );
    }
    // The streams delivered again (as the Lambda would see them go on) leave the same records.
    w.deliver(&deps, &w.stream_events());
    assert_eq!(
        differences(
            &w.outputs("audit/sessions/"),
            &w.outputs("backfill/sessions/")
        ),
        Vec::<String>::new()
    );
    // A second backfill reads nothing twice and leaves the records as they are.
    let before = w.outputs("backfill/sessions/");
    let (ok, said) = backfill(
        &w,
        &[
            &format!("s3://{LOGS}/"),
            "--to",
            &format!("s3://{OUT}/backfill"),
        ],
    );
    assert!(ok && said.contains("already read"), "{said}");
    assert_eq!(
        differences(&before, &w.outputs("backfill/sessions/")),
        Vec::<String>::new()
    );
}

#[test]
fn s3_batch_operations_tasks_are_read_as_their_events_are() {
    let w = world();
    let deps = w.deps("events");
    w.deliver(&deps, &w.s3_events(|_| true));
    // The job's manifest lists each object at its version (schema 2.0 names the bucket,
    // 1.0 its ARN); one task names no key.
    let mut tasks: Vec<Value> = w
        .objects
        .iter()
        .enumerate()
        .map(|(i, (key, version, _, _, _))| {
            let encoded = ssm_audit_tests::aws::event_key(key);
            if i % 2 == 0 {
                serde_json::json!({"taskId": format!("t{i}"), "s3Key": encoded,
                    "s3VersionId": version, "s3Bucket": LOGS})
            } else {
                serde_json::json!({"taskId": format!("t{i}"), "s3Key": encoded,
                    "s3VersionId": version, "s3BucketArn": format!("arn:aws:s3:::{LOGS}")})
            }
        })
        .collect();
    tasks.push(serde_json::json!({"taskId": "broken", "s3Bucket": LOGS}));
    let job = serde_json::json!({"invocationSchemaVersion": "2.0", "invocationId": "inv-1",
        "job": {"id": "job-1", "userArguments": {}}, "tasks": tasks});
    let batch = w.deps("batch");
    let answer = w.deliver(&batch, &[job]).remove(0).unwrap();
    assert_eq!(answer["invocationId"], "inv-1");
    assert_eq!(answer["invocationSchemaVersion"], "2.0");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), w.objects.len() + 1);
    for r in &results[..w.objects.len()] {
        assert_eq!(r["resultCode"], "Succeeded", "{r}");
    }
    assert_eq!(results[w.objects.len()]["taskId"], "broken");
    assert_eq!(results[w.objects.len()]["resultCode"], "PermanentFailure");
    // The records are those the objects' events gave.
    let events = w.outputs("events/sessions/");
    assert!(!events.is_empty());
    assert_eq!(
        differences(&events, &w.outputs("batch/sessions/")),
        Vec::<String>::new()
    );
}

#[test]
#[ignore = "needs the packaged zip: SSM_AUDIT_LAMBDA_ZIP=target/lambda/arm64/bootstrap.zip (scripts/package-lambda; an arm64 zip runs under qemu-aarch64 -L /usr/aarch64-linux-gnu on another machine)"]
fn the_packaged_lambda_writes_what_the_host_build_writes() {
    let zip = std::env::var("SSM_AUDIT_LAMBDA_ZIP").expect("SSM_AUDIT_LAMBDA_ZIP names the zip");
    let tmp = tempfile::tempdir().unwrap();
    // The mode Lambda runs it with is the zip entry's; extraction here sets it the same way.
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1]); i = z.getinfo('bootstrap')\n\
             mode = (i.external_attr >> 16) & 0o777; z.extract(i, sys.argv[2])\n\
             os.chmod(os.path.join(sys.argv[2], 'bootstrap'), mode); print(oct(mode))",
        ])
        .arg(&zip)
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0o755",
        "bootstrap's mode in the zip"
    );
    let bootstrap = tmp.path().join("bootstrap");
    let elf = std::fs::read(&bootstrap).unwrap();
    // e_machine: 0xB7 is AArch64, 0x3E is x86-64.
    let machine = u16::from_le_bytes([elf[18], elf[19]]);
    let command = match (machine, std::env::consts::ARCH) {
        (0xB7, "aarch64") | (0x3E, "x86_64") => std::process::Command::new(&bootstrap),
        (0xB7, _) => {
            let mut c = std::process::Command::new("qemu-aarch64");
            c.args(["-L", "/usr/aarch64-linux-gnu"]).arg(&bootstrap);
            c
        }
        (m, arch) => panic!("a bootstrap for machine {m:#x} cannot run on {arch}"),
    };
    let w = world();
    let mut events = w.s3_events(|_| true);
    events.extend(w.stream_events());
    let packaged = run_lambda(command, &w, &w.moto.endpoint, events.clone(), "packaged");
    for (e, a) in events.iter().zip(&packaged) {
        assert!(matches!(a, Answer::Response(_)), "event {e} answered {a:?}");
    }
    run_binary(&w, &w.moto.endpoint, events, "host");
    let host = w.outputs("host/sessions/");
    assert_eq!(host.len(), 8);
    assert_eq!(
        differences(&host, &w.outputs("packaged/sessions/")),
        Vec::<String>::new()
    );
}
