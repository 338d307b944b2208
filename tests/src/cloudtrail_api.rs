//! CloudTrail log file validation material: digest files signed the way CloudTrail signs them
//! (SHA256withRSA over `digestEndTime\nbucket/key\nhex SHA-256 of the digest\nprevious
//! signature`, the signature in the digest object's `signature` metadata), with the test key of
//! `tests/fixtures/cloudtrail-digest`; its public half as `aws cloudtrail list-public-keys` prints
//! it; and the CloudTrail API's `ListPublicKeys`, served on 127.0.0.1 for the real SDK: moto does
//! not implement it (it answers 500). That answer has the documented shape (AWS JSON 1.1: `Value`
//! a base64 blob, validity times in epoch seconds, `Fingerprint`).

use base64::Engine;
use indexer::model::{hex, sha256_hex};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{json, Value};
use std::path::Path;

/// The account of the corpus's CloudTrail files.
pub const ACCOUNT: &str = "444455556666";
/// Their region.
pub const REGION: &str = "ap-northeast-2";
/// The fingerprint the test key is listed under.
pub const FINGERPRINT: &str = "7d2f0c1a9be4e1f3a0c5d6b7e8f90123";

/// Gzip bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut e, bytes).unwrap();
    e.finish().unwrap()
}

/// Gunzip bytes.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
    out
}

/// The test key CloudTrail digests are signed with here.
pub fn signing_key() -> rsa::pkcs1v15::SigningKey<rsa::sha2::Sha256> {
    let pem = std::fs::read_to_string(
        crate::repo_root().join("tests/fixtures/cloudtrail-digest/test-signing-key.pem"),
    )
    .unwrap();
    rsa::pkcs1v15::SigningKey::new(rsa::RsaPrivateKey::from_pkcs1_pem(&pem).unwrap())
}

/// The DER (PKCS #1) of the test key's public half.
pub fn public_der() -> Vec<u8> {
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(
        &std::fs::read_to_string(
            crate::repo_root().join("tests/fixtures/cloudtrail-digest/test-signing-key.pem"),
        )
        .unwrap(),
    )
    .unwrap();
    key.to_public_key()
        .to_pkcs1_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// `aws cloudtrail list-public-keys` output holding the test key's public half, written in `dir`.
pub fn keys_file(dir: &Path) -> std::path::PathBuf {
    let der = public_der();
    let doc = json!({"PublicKeyList": [{
        "Value": base64::engine::general_purpose::STANDARD.encode(&der),
        "ValidityStartTime": "2026-01-01T00:00:00+00:00",
        "ValidityEndTime": "2027-01-01T00:00:00+00:00",
        "Fingerprint": FINGERPRINT
    }]});
    let path = dir.join("public-keys.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    path
}

/// A digest object: its key, its gzip bytes and its `signature` metadata.
pub struct Digest {
    /// Its key.
    pub key: String,
    /// Its gzip bytes.
    pub body: Vec<u8>,
    /// Its `signature` metadata (hex).
    pub signature: String,
}

/// Digests for `days` (one per day, covering 23:30 the day before to 00:30), each listing the
/// log files `(key, uncompressed bytes)` of its day, chained as CloudTrail chains them, all in
/// `bucket` (CloudTrail's own bucket, where the files are too).
pub fn digests(bucket: &str, files: &[(String, Vec<u8>)], days: &[&str]) -> Vec<Digest> {
    let key = signing_key();
    let mut out: Vec<Digest> = Vec::new();
    for day in days {
        let (y, m, d) = (&day[0..4], &day[4..6], &day[6..8]);
        let end = format!("{y}-{m}-{d}T00:30:00Z");
        let start = chrono::NaiveDate::parse_from_str(day, "%Y%m%d")
            .unwrap()
            .pred_opt()
            .unwrap()
            .format("%Y-%m-%dT23:30:00Z")
            .to_string();
        let object = format!(
            "AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/{y}/{m}/{d}/{ACCOUNT}_CloudTrail-Digest_{REGION}_org-trail_{REGION}_{y}{m}{d}T003000Z.json.gz"
        );
        let log_files: Vec<Value> = files
            .iter()
            .filter(|(k, _)| k.contains(&format!("_{day}T")))
            .map(|(k, bytes)| {
                json!({
                    "s3Bucket": bucket,
                    "s3Object": k,
                    "hashValue": sha256_hex(bytes),
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": end,
                    "oldestEventTime": start
                })
            })
            .collect();
        let prev = out.last();
        let mut doc = json!({
            "awsAccountId": ACCOUNT,
            "digestStartTime": start,
            "digestEndTime": end,
            "digestS3Bucket": bucket,
            "digestS3Object": object,
            "digestPublicKeyFingerprint": FINGERPRINT,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": end,
            "oldestEventTime": start,
            "previousDigestSignature": Value::Null,
            "logFiles": log_files
        });
        if let Some(p) = prev {
            doc["previousDigestS3Bucket"] = bucket.into();
            doc["previousDigestS3Object"] = p.key.clone().into();
            doc["previousDigestHashValue"] = sha256_hex(&gunzip(&p.body)).into();
            doc["previousDigestHashAlgorithm"] = "SHA-256".into();
            doc["previousDigestSignature"] = p.signature.clone().into();
        }
        let text = serde_json::to_vec(&doc).unwrap();
        let to_sign = format!(
            "{end}\n{bucket}/{object}\n{}\n{}",
            sha256_hex(&text),
            prev.map_or("null".to_string(), |p| p.signature.clone())
        );
        let signature = hex(&key.sign(to_sign.as_bytes()).to_bytes());
        out.push(Digest {
            key: object,
            body: gzip(&text),
            signature,
        });
    }
    out
}

use std::sync::{Arc, Mutex};

/// One `ListPublicKeys` request as received: the region its signature is scoped to, its body.
#[derive(Debug, Clone)]
pub struct Asked {
    /// From the `Authorization` header's credential scope.
    pub region: String,
    /// The JSON request (`StartTime`, `EndTime`, `NextToken`).
    pub body: Value,
}

/// A local endpoint answering `ListPublicKeys` with fixed keys, keeping what it was asked.
pub struct KeysApi {
    server: Arc<tiny_http::Server>,
    asked: Arc<Mutex<Vec<Asked>>>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl KeysApi {
    /// Serve `keys`: (fingerprint, DER of the PKCS #1 public key).
    pub fn start(keys: Vec<(String, Vec<u8>)>) -> KeysApi {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let url = format!("http://{}", server.server_addr());
        let asked: Arc<Mutex<Vec<Asked>>> = Arc::default();
        let list: Vec<Value> = keys
            .iter()
            .map(|(fingerprint, der)| {
                json!({
                    "Value": base64::engine::general_purpose::STANDARD.encode(der),
                    "ValidityStartTime": 1_735_689_600.0,
                    "ValidityEndTime": 1_830_297_600.0,
                    "Fingerprint": fingerprint,
                })
            })
            .collect();
        let answer = json!({ "PublicKeyList": list }).to_string();
        let (srv, log) = (server.clone(), asked.clone());
        std::thread::spawn(move || {
            for mut req in srv.incoming_requests() {
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(req.as_reader(), &mut body);
                let header = |name: &str| {
                    req.headers()
                        .iter()
                        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                        .map(|h| h.value.as_str().to_string())
                        .unwrap_or_default()
                };
                let target = header("X-Amz-Target");
                let region = header("Authorization")
                    .split("Credential=")
                    .nth(1)
                    .and_then(|c| c.split('/').nth(2))
                    .unwrap_or("")
                    .to_string();
                let json_type = tiny_http::Header::from_bytes(
                    &b"Content-Type"[..],
                    &b"application/x-amz-json-1.1"[..],
                )
                .expect("valid header");
                if !target.ends_with(".ListPublicKeys") {
                    let _ = req.respond(
                        tiny_http::Response::from_string(
                            json!({"__type": "UnknownOperationException"}).to_string(),
                        )
                        .with_status_code(400)
                        .with_header(json_type),
                    );
                    continue;
                }
                if let Ok(mut l) = log.lock() {
                    l.push(Asked {
                        region,
                        body: serde_json::from_str(&body).unwrap_or(Value::Null),
                    });
                }
                let _ = req.respond(
                    tiny_http::Response::from_string(answer.clone()).with_header(json_type),
                );
            }
        });
        KeysApi { server, asked, url }
    }

    /// What it was asked so far.
    pub fn asked(&self) -> Vec<Asked> {
        self.asked.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The environment that sends the SDK's CloudTrail calls here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("AWS_ENDPOINT_URL_CLOUDTRAIL", self.url.clone())]
    }
}

impl Drop for KeysApi {
    fn drop(&mut self) {
        self.server.unblock();
    }
}
