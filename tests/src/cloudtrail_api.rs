//! The CloudTrail API's `ListPublicKeys`, served on 127.0.0.1 for the real SDK: moto does not
//! implement it (it answers 500). The answer has the documented shape (AWS JSON 1.1: `Value` a
//! base64 blob, validity times in epoch seconds, `Fingerprint`); the keys are the test's own.

use serde_json::{json, Value};
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
        use base64::Engine;
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
