//! Shared set-up for the workers' tests: a store of sessions and a worker over it.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use session_model::{Session, SessionId, SubmissionStatus};
use session_store::{DecodeOptions, SessionStore};
use session_workers::ManualClock;
use session_workers::submit::{Backoff, HttpTransport, Secret, SubmissionWorker, SubmitConfig};
use tokio::sync::broadcast;

pub(crate) use test_support::FIXTURES;
pub(crate) const NOW: u64 = 1_800_000_000_000;

/// A complete, pending session built from the app's fixture session-21, under `id`.
pub(crate) fn pending(id: &str) -> Session {
    let bytes = std::fs::read(Path::new(FIXTURES).join("v1/session-21.json")).unwrap();
    let mut session = session_store::decode(&bytes).unwrap().session;
    session.id = SessionId::new(id).unwrap();
    session.persisted_until = NOW + 86_400_000;
    session
}

pub(crate) fn with_status(id: &str, status: SubmissionStatus, attempts: u32) -> Session {
    let mut s = pending(id);
    s.submission.status = status;
    s.submission.attempts = attempts;
    s
}

pub(crate) fn store_with(sessions: Vec<Session>) -> (tempfile::TempDir, SessionStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    for mut s in sessions {
        store.create(&mut s).unwrap();
    }
    (dir, store)
}

pub(crate) fn load(store: &SessionStore, id: &str) -> Session {
    store.load(&SessionId::new(id).unwrap()).unwrap().unwrap().session
}

pub(crate) fn fast_config() -> SubmitConfig {
    SubmitConfig::default()
        .concurrency(2)
        .request_timeout(Duration::from_secs(5))
        .max_attempts(3)
        .backoff(Backoff::new(Duration::from_secs(10), Duration::from_secs(60)))
        // Not the default (5 minutes): a setter that dropped what came before it would show.
        .scan_interval(Duration::from_secs(120))
        .shutdown_grace(Duration::from_millis(200))
        .performer(Some("lab-tech-7".into()))
}

pub(crate) struct Harness {
    pub worker: SubmissionWorker<HttpTransport>,
    pub clock: ManualClock,
    pub events: broadcast::Receiver<session_workers::WorkerEvent>,
}

pub(crate) fn worker(store: &SessionStore, endpoint: &str, config: SubmitConfig) -> Harness {
    let clock = ManualClock::at(NOW);
    let (tx, rx) = broadcast::channel(256);
    let transport = HttpTransport::new(
        endpoint,
        Some(Secret::new("Bearer test-token")),
        config.request_timeout,
    )
    .unwrap();
    let worker =
        SubmissionWorker::new(store.clone(), transport, config, Arc::new(clock.clone()), tx).unwrap();
    Harness {
        worker,
        clock,
        events: rx,
    }
}

/// An HTTP endpoint on 127.0.0.1 that answers each request only when the test says so:
/// tests that need a request to be "out" synchronise on it, never on a clock.
pub(crate) struct GatedServer {
    pub url: String,
    pub arrived: Arc<tokio::sync::Notify>,
    /// The `Idempotency-Key` of every request that arrived, in order.
    pub keys: Arc<std::sync::Mutex<Vec<String>>>,
    release: Arc<tokio::sync::Semaphore>,
}

impl GatedServer {
    /// Answers every request with `status`, once released.
    pub(crate) async fn start(status: u16) -> GatedServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sessions", listener.local_addr().unwrap());
        let arrived = Arc::new(tokio::sync::Notify::new());
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let (notify, gate) = (arrived.clone(), release.clone());
        let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = keys.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (notify, gate, seen) = (notify.clone(), gate.clone(), seen.clone());
                tokio::spawn(async move {
                    // Read the head, then as many body bytes as it announces.
                    let mut request = Vec::new();
                    let mut buf = [0u8; 8192];
                    let body_start = loop {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while request.len() < body_start + length {
                        let n = socket.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                    if let Some(key) = head.lines().find_map(|l| l.strip_prefix("idempotency-key:")) {
                        seen.lock().unwrap().push(key.trim().to_owned());
                    }
                    notify.notify_one();
                    gate.acquire().await.unwrap().forget();
                    let reply =
                        format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        GatedServer {
            url,
            arrived,
            keys,
            release,
        }
    }

    /// Lets one waiting request have its answer.
    pub(crate) fn release_one(&self) {
        self.release.add_permits(1);
    }
}

/// A wiremock server bound to 127.0.0.1, never another address.
pub(crate) async fn server() -> wiremock::MockServer {
    wiremock::MockServer::builder()
        .listener(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .start()
        .await
}

/// A server on 127.0.0.1 that answers every POST with `status`.
pub(crate) async fn answering(status: u16) -> wiremock::MockServer {
    let server = server().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

/// The endpoint URL the worker is pointed at on `server`.
pub(crate) fn endpoint(server: &wiremock::MockServer) -> String {
    format!("{}/sessions", server.uri())
}

/// The `Idempotency-Key` header a request carried.
pub(crate) fn key_of(request: &wiremock::Request) -> String {
    request
        .headers
        .get("Idempotency-Key")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}
