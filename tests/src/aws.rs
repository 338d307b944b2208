//! A real S3 and CloudWatch Logs endpoint on 127.0.0.1: `moto_server`, started and stopped here.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Credentials and region every client of the test endpoint uses.
pub const REGION: &str = "us-east-1";

/// A running `moto_server`; killed when dropped.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The `moto_server` to run: `$SSM_AUDIT_MOTO_SERVER` (scripts/test installs a pinned one),
/// else the one on the PATH, installed from PyPI if missing.
fn moto_server() -> String {
    if let Some(p) = std::env::var_os("SSM_AUDIT_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return p.to_string_lossy().into_owned();
    }
    let ok = Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !ok.map(|s| s.success()).unwrap_or(false) {
        let st = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "moto[server]==5.1.22"])
            .status()
            .expect("python3 runs pip");
        assert!(st.success(), "pip install moto[server] failed");
    }
    "moto_server".into()
}

/// A Python with boto3: the one beside the pinned `moto_server`, else `python3`.
pub fn moto_python() -> String {
    if let Some(p) = std::env::var_os("SSM_AUDIT_MOTO_SERVER").filter(|p| !p.is_empty()) {
        if let Some(dir) = std::path::Path::new(&p).parent() {
            return dir.join("python").display().to_string();
        }
    }
    "python3".into()
}

impl Moto {
    /// Start a fresh server on a free port and wait until it answers.
    pub fn start() -> Moto {
        let server = moto_server();
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("moto_server starts");
            let mut m = Moto {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return m;
                }
                if let Ok(Some(_)) = m.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = m.child.kill();
        }
        panic!("moto_server did not start");
    }

    /// Environment variables that point the AWS SDK (in a child process) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests"),
            ))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build()
    }

    /// An S3 client of this server (path-style addressing).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// An EC2 client of this server in `region`.
    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        let conf = aws_sdk_ec2::config::Builder::from(&self.sdk_config())
            .region(aws_sdk_ec2::config::Region::new(region.to_string()))
            .build();
        aws_sdk_ec2::Client::from_conf(conf)
    }

    /// A KMS client of this server.
    pub fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.sdk_config())
    }

    /// A CloudTrail client of an endpoint beside this server (moto has no `ListPublicKeys`: see
    /// [`crate::cloudtrail_api::KeysApi`]).
    pub fn cloudtrail_at(&self, endpoint: &str) -> aws_adapters::cloudtrail::Client {
        let config = self
            .sdk_config()
            .into_builder()
            .endpoint_url(endpoint)
            .build();
        aws_adapters::cloudtrail::Client::new(&config)
    }

    /// A CloudWatch Logs client of this server.
    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.sdk_config())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `key` as S3 event notifications write it: URL-encoded, `+` for a space.
pub fn event_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An S3 `ObjectCreated:Put` event with one record per object (bucket, key, version, etag, size).
pub fn s3_event(
    bucket: &str,
    objects: &[(String, Option<String>, Option<String>, u64)],
) -> serde_json::Value {
    let records: Vec<serde_json::Value> = objects
        .iter()
        .enumerate()
        .map(|(i, (key, version, etag, size))| {
            let mut object = serde_json::json!({
                "key": event_key(key),
                "size": size,
                "sequencer": format!("{:016X}", i + 1),
            });
            if let Some(v) = version {
                object["versionId"] = v.clone().into();
            }
            if let Some(e) = etag {
                object["eTag"] = e.trim_matches('"').to_string().into();
            }
            serde_json::json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-02-15T00:10:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AROAEXAMPLE:ssm-agent"},
                "requestParameters": {"sourceIPAddress": "10.0.0.1"},
                "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "session-logs",
                    "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": format!("arn:aws:s3:::{bucket}")},
                    "object": object,
                }
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// A CloudWatch Logs subscription event: the payload gzipped and base64-encoded.
pub fn logs_event(
    group: &str,
    stream: &str,
    message_type: &str,
    events: &[(String, i64, String)],
) -> serde_json::Value {
    use std::io::Write;
    let payload = serde_json::json!({
        "messageType": message_type,
        "owner": "444455556666",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["ssm-audit"],
        "logEvents": events.iter().map(|(id, ts, m)| serde_json::json!({"id": id, "timestamp": ts, "message": m})).collect::<Vec<_>>(),
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(payload.to_string().as_bytes())
        .expect("gzip in memory");
    let data = base64(&gz.finish().expect("gzip in memory"));
    serde_json::json!({"awslogs": {"data": data}})
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
