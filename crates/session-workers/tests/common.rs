//! Shared set-up for the workers' tests: a store of sessions and a worker over it.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use session_migrate::{DecodeOptions, SessionStore};
use session_model::{Session, SessionId, SubmissionStatus};
use session_workers::ManualClock;
use session_workers::submit::{Backoff, HttpTransport, Secret, SubmissionWorker, SubmitConfig};
use tokio::sync::broadcast;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
pub const NOW: u64 = 1_800_000_000_000;

/// A complete, pending session built from the app's fixture session-21, under `id`.
pub fn pending(id: &str) -> Session {
    let bytes = std::fs::read(Path::new(FIXTURES).join("v1/session-21.json")).unwrap();
    let mut session = session_migrate::decode(&bytes).unwrap().session;
    session.id = SessionId::new(id).unwrap();
    session.persisted_until = NOW + 86_400_000;
    session
}

pub fn with_status(id: &str, status: SubmissionStatus, attempts: u32) -> Session {
    let mut s = pending(id);
    s.submission.status = status;
    s.submission.attempts = attempts;
    s
}

pub fn store_with(sessions: Vec<Session>) -> (tempfile::TempDir, SessionStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    for mut s in sessions {
        store.create(&mut s).unwrap();
    }
    (dir, store)
}

pub fn load(store: &SessionStore, id: &str) -> Session {
    store.load(&SessionId::new(id).unwrap()).unwrap().unwrap().session
}

pub fn fast_config() -> SubmitConfig {
    SubmitConfig::default()
        .concurrency(2)
        .request_timeout(Duration::from_secs(5))
        .max_attempts(3)
        .backoff(Backoff::new(Duration::from_secs(10), Duration::from_secs(60)))
        .scan_interval(Duration::from_secs(300))
        .shutdown_grace(Duration::from_millis(200))
        .performer(Some("lab-tech-7".into()))
}

pub struct Harness {
    pub worker: SubmissionWorker<HttpTransport>,
    pub clock: ManualClock,
    pub events: broadcast::Receiver<session_workers::WorkerEvent>,
}

pub fn worker(store: &SessionStore, endpoint: &str, config: SubmitConfig) -> Harness {
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
