//! A Lambda Runtime API on 127.0.0.1, so the built `ingest-lambda` binary runs as in Lambda:
//! it polls `/next` for events and posts each response or error back.

use serde_json::Value;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the function answered for one invocation.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `/response` with this body.
    Response(Value),
    /// `/error` with this body.
    Error(Value),
}

#[derive(Default)]
struct State {
    queue: std::collections::VecDeque<Value>,
    next_id: usize,
    answers: Vec<(usize, Answer)>,
    init_error: Option<String>,
}

/// The server: a queue of events and the answers received.
pub struct RuntimeApi {
    state: Arc<(Mutex<State>, Condvar)>,
    server: Arc<tiny_http::Server>,
    /// `127.0.0.1:PORT`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
}

impl RuntimeApi {
    /// Serve these events in order.
    pub fn start(events: Vec<Value>) -> RuntimeApi {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let address = server
            .server_addr()
            .to_ip()
            .expect("an IP address")
            .to_string();
        let state = Arc::new((
            Mutex::new(State {
                queue: events.into(),
                ..State::default()
            }),
            Condvar::new(),
        ));
        let (srv, st) = (server.clone(), state.clone());
        std::thread::spawn(move || {
            for req in srv.incoming_requests() {
                let st = st.clone();
                std::thread::spawn(move || serve(req, &st));
            }
        });
        RuntimeApi {
            state,
            server,
            address,
        }
    }

    /// Wait until `n` answers arrived (or the timeout, or an init error); returns them by invocation.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Answer> {
        let (lock, cv) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut s = lock.lock().expect("state lock");
        while s.answers.len() < n && s.init_error.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} of {n} invocations answered in {timeout:?}",
                s.answers.len()
            );
            s = cv.wait_timeout(s, left).expect("state lock").0;
        }
        if let Some(e) = &s.init_error {
            panic!("the function failed to initialise: {e}");
        }
        let mut a = s.answers.clone();
        a.sort_by_key(|(id, _)| *id);
        a.into_iter().map(|(_, a)| a).collect()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn serve(mut req: tiny_http::Request, st: &Arc<(Mutex<State>, Condvar)>) {
    let (lock, cv) = &**st;
    let url = req.url().to_string();
    let mut body = String::new();
    let _ = req.as_reader().read_to_string(&mut body);
    if url.ends_with("/invocation/next") {
        // Hold the poll until there is an event (as Lambda does between invocations).
        let event = loop {
            let mut s = lock.lock().expect("state lock");
            if let Some(e) = s.queue.pop_front() {
                s.next_id += 1;
                break Some((s.next_id, e));
            }
            let (guard, timeout) = cv
                .wait_timeout(s, Duration::from_secs(600))
                .expect("state lock");
            drop(guard);
            if timeout.timed_out() {
                break None;
            }
        };
        let Some((id, event)) = event else { return };
        let deadline = (std::time::SystemTime::now() + Duration::from_secs(900))
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let resp = tiny_http::Response::from_string(event.to_string())
            .with_header(header("Content-Type", "application/json"))
            .with_header(header(
                "Lambda-Runtime-Aws-Request-Id",
                &format!("req-{id}"),
            ))
            .with_header(header("Lambda-Runtime-Deadline-Ms", &deadline.to_string()))
            .with_header(header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:444455556666:function:ssm-audit-ingest",
            ))
            .with_header(header(
                "Lambda-Runtime-Trace-Id",
                "Root=1-00000000-000000000000000000000000;Sampled=0",
            ));
        let _ = req.respond(resp);
        return;
    }
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
    {
        let mut s = lock.lock().expect("state lock");
        if url.contains("/init/error") {
            s.init_error = Some(body.clone());
        } else if let Some(rest) = url.strip_prefix("/2018-06-01/runtime/invocation/req-") {
            let id: usize = rest
                .split('/')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let answer = if url.ends_with("/response") {
                Answer::Response(value)
            } else {
                Answer::Error(value)
            };
            s.answers.push((id, answer));
        }
        cv.notify_all();
    }
    let _ = req.respond(tiny_http::Response::from_string("{}").with_status_code(202));
}
