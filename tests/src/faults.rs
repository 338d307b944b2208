//! A fault-injecting HTTP proxy in front of `moto_server`: it forwards every request, except
//! that the requests a rule matches are answered with an S3 error (503 SlowDown, as S3 throttles)
//! instead, as many times as the rule says.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

/// Which requests fail, and how many more times.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The HTTP method (`GET`, `PUT`…).
    pub method: &'static str,
    /// A piece of the request path.
    pub path_contains: String,
    /// Failures left (`usize::MAX`: always).
    pub remaining: usize,
    /// The status to answer (503, 500).
    pub status: u16,
}

/// The proxy; it stops when dropped.
pub struct FaultProxy {
    server: Arc<tiny_http::Server>,
    rules: Arc<Mutex<Vec<Rule>>>,
    seen: Arc<Mutex<Vec<(String, String, u16)>>>,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl FaultProxy {
    /// Forward to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let endpoint = format!(
            "http://{}",
            server.server_addr().to_ip().expect("an IP address")
        );
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let seen: Arc<Mutex<Vec<(String, String, u16)>>> = Arc::default();
        let (srv, r, s) = (server.clone(), rules.clone(), seen.clone());
        std::thread::spawn(move || {
            for req in srv.incoming_requests() {
                let (r, s, up) = (r.clone(), s.clone(), upstream.clone());
                std::thread::spawn(move || serve(req, &up, &r, &s));
            }
        });
        FaultProxy {
            server,
            rules,
            seen,
            endpoint,
        }
    }

    /// Add a rule.
    pub fn fail(&self, rule: Rule) {
        self.rules.lock().expect("rules").push(rule);
    }

    /// Remove every rule.
    pub fn heal(&self) {
        self.rules.lock().expect("rules").clear();
    }

    /// (method, path, status answered) of every request so far.
    pub fn seen(&self) -> Vec<(String, String, u16)> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn serve(
    mut req: tiny_http::Request,
    upstream: &str,
    rules: &Mutex<Vec<Rule>>,
    seen: &Mutex<Vec<(String, String, u16)>>,
) {
    let method = req.method().as_str().to_string();
    let path = req.url().to_string();
    let injected = {
        let mut rules = rules.lock().expect("rules");
        rules
            .iter_mut()
            .find(|r| r.method == method && path.contains(&r.path_contains) && r.remaining > 0)
            .map(|r| {
                r.remaining = r.remaining.saturating_sub(1);
                r.status
            })
    };
    if let Some(status) = injected {
        seen.lock().expect("seen").push((method, path, status));
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>\
                    <Message>Please reduce your request rate.</Message></Error>";
        let _ = req.respond(
            tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(
                    tiny_http::Header::from_bytes("Content-Type", "application/xml")
                        .expect("a header"),
                ),
        );
        return;
    }
    let mut body = Vec::new();
    let _ = req.as_reader().read_to_end(&mut body);
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for h in req.headers() {
        let name = h.field.as_str().as_str();
        if name.eq_ignore_ascii_case("connection")
            || name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            continue;
        }
        head.push_str(&format!("{name}: {}\r\n", h.value.as_str()));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let answer = TcpStream::connect(upstream).and_then(|mut up| {
        up.write_all(head.as_bytes())?;
        up.write_all(&body)?;
        let mut raw = Vec::new();
        up.read_to_end(&mut raw)?;
        Ok(raw)
    });
    let Ok(raw) = answer else {
        let _ = req.respond(tiny_http::Response::empty(502));
        return;
    };
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let payload = raw.get(split + 4..).unwrap_or_default().to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let k = k.trim();
            if [
                "connection",
                "content-length",
                "transfer-encoding",
                "server",
                "date",
            ]
            .iter()
            .any(|x| k.eq_ignore_ascii_case(x))
            {
                continue;
            }
            if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.trim().as_bytes()) {
                headers.push(h);
            }
        }
    }
    seen.lock().expect("seen").push((method, path, status));
    let len = payload.len();
    let _ = req.respond(tiny_http::Response::new(
        tiny_http::StatusCode(status),
        headers,
        std::io::Cursor::new(payload),
        Some(len),
        None,
    ));
}
