//! The submission worker against a real HTTP server on 127.0.0.1 (wiremock).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use session_model::SubmissionStatus;
use session_workers::WorkerEvent;
use session_workers::submit::PassReport;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

async fn pass(h: &Harness) -> PassReport {
    h.worker.run_pass(&CancellationToken::new()).await.unwrap()
}

#[tokio::test]
async fn a_success_is_recorded_with_the_contract_request() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path("/sessions"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    let mut h = worker(&store, &endpoint(&server), fast_config());
    let report = pass(&h).await;
    assert_eq!((report.submitted, report.failed, report.retrying), (1, 0, 0));
    let stored = load(&store, "s1");
    assert_eq!(stored.submission.status, SubmissionStatus::Submitted);
    assert_eq!(stored.submission.submitted_at, Some(NOW));
    assert_eq!(stored.submission.attempts, 1);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.headers.get("content-type").unwrap(), "application/json");
    assert_eq!(r.headers.get("authorization").unwrap(), "Bearer test-token");
    assert_eq!(Some(key_of(r)), stored.submission.idempotency_key);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    insta::assert_json_snapshot!(body);
    assert_eq!(
        h.events.recv().await.unwrap(),
        WorkerEvent::Progress {
            queued: 0,
            in_flight: 1
        }
    );
    assert_eq!(
        h.events.recv().await.unwrap(),
        WorkerEvent::Submitted { id: "s1".into() }
    );
}

#[tokio::test]
async fn two_503s_then_201_is_three_requests_with_one_key() {
    let server = server().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    let h = worker(&store, &endpoint(&server), fast_config());
    for expected_attempts in 1..=2u32 {
        assert_eq!(pass(&h).await.retrying, 1);
        let s = load(&store, "s1");
        assert_eq!(s.submission.status, SubmissionStatus::Pending);
        assert_eq!(s.submission.attempts, expected_attempts);
        assert_eq!(s.submission.last_error.as_deref(), Some("HTTP 503"));
        let next = s.submission.next_attempt_at.unwrap();
        assert!(
            next >= h.clock.now() && next <= h.clock.now() + 60_000,
            "backoff within the cap"
        );
        // Not due yet: a pass now sends nothing.
        let idle = pass(&h).await;
        assert_eq!(
            (
                idle.submitted,
                idle.failed,
                idle.retrying,
                idle.interrupted,
                idle.next_due
            ),
            (0, 0, 0, 0, Some(next))
        );
        h.clock.set(next);
    }
    assert_eq!(pass(&h).await.submitted, 1);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    let keys: std::collections::HashSet<String> = requests.iter().map(key_of).collect();
    assert_eq!(keys.len(), 1, "one idempotency key across retries");
    let s = load(&store, "s1");
    assert_eq!(
        (s.submission.status, s.submission.attempts),
        (SubmissionStatus::Submitted, 3)
    );
}

trait Now {
    fn now(&self) -> u64;
}
impl Now for session_workers::ManualClock {
    fn now(&self) -> u64 {
        session_workers::Clock::now_ms(self)
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = server().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "45"))
        .mount(&server)
        .await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    let h = worker(&store, &endpoint(&server), fast_config());
    assert_eq!(pass(&h).await.retrying, 1);
    let next = load(&store, "s1").submission.next_attempt_at.unwrap();
    assert!(next >= NOW + 45_000, "next attempt {next} before Retry-After");
    h.clock.set(NOW + 44_000);
    pass(&h).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_400_fails_at_once_and_is_never_retried() {
    let server = answering(400).await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    let h = worker(&store, &endpoint(&server), fast_config());
    assert_eq!(pass(&h).await.failed, 1);
    h.clock.advance(86_400_000);
    pass(&h).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let s = load(&store, "s1");
    assert_eq!(
        (s.submission.status, s.submission.last_error.as_deref()),
        (SubmissionStatus::Failed, Some("HTTP 400"))
    );
}

#[tokio::test]
async fn attempts_run_out_into_failed() {
    let server = answering(500).await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    let config = fast_config().max_attempts(2);
    let h = worker(&store, &endpoint(&server), config);
    assert_eq!(pass(&h).await.retrying, 1);
    h.clock.advance(3_600_000);
    assert_eq!(pass(&h).await.failed, 1);
    assert_eq!(load(&store, "s1").submission.status, SubmissionStatus::Failed);
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let server = server().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    let config = fast_config().request_timeout(Duration::from_millis(200));
    let h = worker(&store, &endpoint(&server), config);
    assert_eq!(pass(&h).await.retrying, 1);
    assert_eq!(
        load(&store, "s1").submission.last_error.as_deref(),
        Some("request timed out")
    );
}

#[tokio::test]
async fn connection_refused_is_retried() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_dir, store) = store_with(vec![pending("s1")]);
    let h = worker(
        &store,
        &format!("http://127.0.0.1:{port}/sessions"),
        fast_config(),
    );
    assert_eq!(pass(&h).await.retrying, 1);
    let error = load(&store, "s1").submission.last_error.unwrap();
    assert!(error.starts_with("network error"), "{error}");
}

/// Answers after a delay, remembering when each request arrived.
struct Slow {
    arrivals: Arc<Mutex<Vec<Instant>>>,
    delay: Duration,
}

impl Respond for Slow {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.arrivals.lock().unwrap().push(Instant::now());
        ResponseTemplate::new(201).set_delay(self.delay)
    }
}

#[tokio::test]
async fn never_more_than_the_configured_requests_in_flight() {
    let server = server().await;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    // Long against three fsync'd saves even on a loaded machine: the limit gets used.
    let delay = Duration::from_secs(2);
    Mock::given(method("POST"))
        .respond_with(Slow {
            arrivals: arrivals.clone(),
            delay,
        })
        .mount(&server)
        .await;
    let (_dir, store) = store_with((0..6).map(|i| pending(&format!("s{i}"))).collect());
    let config = fast_config()
        .concurrency(3)
        .request_timeout(Duration::from_secs(30));
    let h = worker(&store, &endpoint(&server), config);
    assert_eq!(pass(&h).await.submitted, 6);
    let mut times = arrivals.lock().unwrap().clone();
    times.sort();
    // Requests overlapping the one that arrived at t: those arriving within (t - delay, t].
    let most = times
        .iter()
        .map(|t| times.iter().filter(|u| **u <= *t && *t - **u < delay).count())
        .max()
        .unwrap();
    assert!(most <= 3, "{most} requests overlapped");
    assert_eq!(most, 3, "the limit should be used, not just respected");
}

#[tokio::test]
async fn ignored_and_incomplete_sessions_are_never_sent() {
    let server = answering(201).await;
    let mut incomplete = pending("open");
    incomplete.is_complete = false;
    let (_dir, store) = store_with(vec![with_status("ign", SubmissionStatus::Ignored, 0), incomplete]);
    let h = worker(&store, &endpoint(&server), fast_config());
    assert_eq!(pass(&h).await, PassReport::default());
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_operator_retry_resets_attempts_and_sends_again() {
    let server = answering(201).await;
    let (_dir, store) = store_with(vec![with_status("s1", SubmissionStatus::Failed, 3)]);
    let h = worker(&store, &endpoint(&server), fast_config());
    assert_eq!(
        pass(&h).await,
        PassReport::default(),
        "failed is not retried by itself"
    );
    let id = "s1".parse().unwrap();
    store
        .update(&id, |s| s.submission.retry().map_err(session_store::refused(&id)))
        .unwrap();
    assert_eq!(load(&store, "s1").submission.attempts, 0);
    assert_eq!(pass(&h).await.submitted, 1);
    assert_eq!(load(&store, "s1").submission.attempts, 1);
}

#[tokio::test]
async fn shutdown_leaves_unfinished_work_in_flight_and_the_next_start_resumes_it() {
    let server = server().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    let h = worker(&store, &endpoint(&server), fast_config());
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    // Shut down once the request is out (the reply takes 5 s; the grace period is 200 ms).
    let requests = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.received_requests().await.unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the request never went out");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stopper.cancel();
    };
    let (report, ()) = tokio::join!(h.worker.run_pass(&cancel), requests);
    // Had the pass waited for the reply, the session would be submitted.
    assert_eq!(report.unwrap().interrupted, 1);
    let s = load(&store, "s1");
    assert_eq!(s.submission.status, SubmissionStatus::InFlight);
    let key = s.submission.idempotency_key.clone().unwrap();
    drop(h);
    // The next start's first pass sends it again: same key, the attempt still counted.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let h = worker(&store, &endpoint(&server), fast_config());
    assert_eq!(pass(&h).await.submitted, 1);
    assert_eq!(key_of(&server.received_requests().await.unwrap()[0]), key);
    let s = load(&store, "s1");
    assert_eq!(
        (s.submission.status, s.submission.attempts),
        (SubmissionStatus::Submitted, 2)
    );
}

#[tokio::test]
async fn only_one_submitter_per_store() {
    let server = server().await;
    let (_dir, store) = store_with(vec![]);
    let _first = worker(&store, &endpoint(&server), fast_config());
    let transport =
        session_workers::submit::HttpTransport::new(&endpoint(&server), None, Duration::from_secs(1))
            .unwrap();
    let (tx, _rx) = tokio::sync::broadcast::channel(4);
    let second = session_workers::submit::SubmissionWorker::new(
        store.clone(),
        transport,
        fast_config(),
        Arc::new(session_workers::SystemClock),
        tx,
    );
    assert!(matches!(
        second,
        Err(session_workers::submit::SubmitError::AlreadyRunning)
    ));
}

#[tokio::test]
async fn a_session_left_in_flight_by_a_failed_status_write_is_resumed_at_the_next_pass() {
    let server = answering(201).await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    let h = worker(&store, &endpoint(&server), fast_config());
    // What an attempt whose outcome could not be written (a full disk, say) leaves behind.
    let id = "s1".parse().unwrap();
    store
        .update(&id, |s| {
            s.submission
                .begin_attempt(NOW, || "key-from-before".into())
                .map(|_| ())
                .map_err(session_store::refused(&id))
        })
        .unwrap();
    assert_eq!(pass(&h).await.submitted, 1);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(key_of(&requests[0]), "key-from-before");
    let s = load(&store, "s1");
    assert_eq!(
        (s.submission.status, s.submission.attempts),
        (SubmissionStatus::Submitted, 2)
    );
}

#[tokio::test]
async fn every_retryable_status_is_retried_and_every_other_4xx_fails_at_once() {
    for (status, retried) in [
        (408u16, true),
        (409, true),
        (425, true),
        (429, true),
        (500, true),
        (503, true),
        (599, true),
        (400, false),
        (401, false),
        (404, false),
        (422, false),
    ] {
        let server = server().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status))
            .mount(&server)
            .await;
        let (_dir, store) = store_with(vec![pending("s1")]);
        let h = worker(&store, &endpoint(&server), fast_config());
        let report = pass(&h).await;
        let stored = load(&store, "s1").submission;
        if retried {
            assert_eq!((report.retrying, report.failed), (1, 0), "HTTP {status}");
            assert_eq!(stored.status, SubmissionStatus::Pending, "HTTP {status}");
            assert!(stored.next_attempt_at.is_some(), "HTTP {status}");
        } else {
            assert_eq!((report.retrying, report.failed), (0, 1), "HTTP {status}");
            assert_eq!(stored.status, SubmissionStatus::Failed, "HTTP {status}");
        }
        assert_eq!(stored.last_error, Some(format!("HTTP {status}")));
    }
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = server().await;
    // The worker's clock is a ManualClock at NOW; the HTTP date is read against the real
    // clock, so the date is 40 s ahead of the real time.
    let at = std::time::SystemTime::now() + Duration::from_secs(40);
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(503).insert_header("Retry-After", httpdate::fmt_http_date(at).as_str()),
        )
        .mount(&server)
        .await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    let h = worker(&store, &endpoint(&server), fast_config());
    assert_eq!(pass(&h).await.retrying, 1);
    let next = load(&store, "s1").submission.next_attempt_at.unwrap();
    assert!(
        next >= NOW + 38_000,
        "next attempt {} ms after now, before Retry-After",
        next - NOW
    );
}

#[tokio::test]
async fn progress_counts_down_the_sessions_not_yet_started() {
    let server = answering(201).await;
    let (_dir, store) = store_with(vec![pending("p1"), pending("p2"), pending("p3")]);
    let mut h = worker(&store, &endpoint(&server), fast_config().concurrency(1));
    assert_eq!(pass(&h).await.submitted, 3);
    let mut queued = Vec::new();
    while let Ok(event) = h.events.try_recv() {
        if let WorkerEvent::Progress { queued: q, in_flight } = event {
            assert_eq!(in_flight, 1, "one at a time");
            queued.push(q);
        }
    }
    assert_eq!(queued, [2, 1, 0]);
}

/// The real filesystem, except that renames fail (ENOSPC) while `full` is set: a disk
/// that fills up between an attempt's start and the write of its outcome.
#[derive(Debug, Default)]
struct FillingDisk {
    full: std::sync::atomic::AtomicBool,
}

impl session_fs::Storage for FillingDisk {
    fn create_dir(&self, path: &std::path::Path) -> std::io::Result<()> {
        session_fs::OsStorage.create_dir(path)
    }
    fn create_new(&self, path: &std::path::Path) -> std::io::Result<Box<dyn session_fs::WriteFile>> {
        session_fs::OsStorage.create_new(path)
    }
    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        session_fs::OsStorage.rename(from, to)
    }
    fn hard_link(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        session_fs::OsStorage.hard_link(from, to)
    }
    fn remove_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        session_fs::OsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        session_fs::OsStorage.sync_dir(dir)
    }
    fn read(&self, path: &std::path::Path, limit: u64) -> std::io::Result<session_fs::ReadOutcome> {
        session_fs::OsStorage.read(path, limit)
    }
    fn list(&self, dir: &std::path::Path, sizes: bool) -> std::io::Result<Vec<session_fs::Entry>> {
        session_fs::OsStorage.list(dir, sizes)
    }
    fn lock(
        &self,
        path: &std::path::Path,
        mode: session_fs::LockMode,
        wait: bool,
    ) -> std::io::Result<Option<Box<dyn session_fs::HeldLock>>> {
        session_fs::OsStorage.lock(path, mode, wait)
    }
    fn kind(&self, path: &std::path::Path) -> std::io::Result<Option<session_fs::EntryKind>> {
        session_fs::OsStorage.kind(path)
    }
    fn set_mode(&self, path: &std::path::Path, mode: u32) -> std::io::Result<()> {
        session_fs::OsStorage.set_mode(path, mode)
    }
}

/// Fills the disk when the request arrives, then answers 201.
struct FillDiskThenAccept(std::sync::Arc<FillingDisk>);

impl Respond for FillDiskThenAccept {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.full.store(true, std::sync::atomic::Ordering::SeqCst);
        ResponseTemplate::new(201)
    }
}

#[tokio::test]
async fn an_outcome_that_cannot_be_written_leaves_the_session_in_flight_counted_as_interrupted() {
    let disk = std::sync::Arc::new(FillingDisk::default());
    let server = server().await;
    Mock::given(method("POST"))
        .respond_with(FillDiskThenAccept(disk.clone()))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let fs = session_fs::Store::options()
        .storage(disk.clone())
        .open(dir.path())
        .unwrap();
    let store = session_store::SessionStore::new(fs, session_store::DecodeOptions::default());
    store.create(&mut pending("s1")).unwrap();
    let h = worker(&store, &endpoint(&server), fast_config());
    let report = pass(&h).await;
    assert_eq!((report.interrupted, report.submitted), (1, 0));
    let s = load(&store, "s1");
    assert_eq!(
        s.submission.status,
        SubmissionStatus::InFlight,
        "never lost, never marked delivered"
    );
    let key = s.submission.idempotency_key.clone();
    // Room again: the next pass resends with the same key, and records the delivery.
    disk.full.store(false, std::sync::atomic::Ordering::SeqCst);
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    assert_eq!(pass(&h).await.submitted, 1);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(Some(key_of(&requests[0])), key);
    assert_eq!(load(&store, "s1").submission.status, SubmissionStatus::Submitted);
}

#[tokio::test]
async fn a_session_the_lis_did_not_wholly_receive_is_delivered_with_its_interruption_unless_configured_not_to()
 {
    for deliver in [true, false] {
        let server = server().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201))
            .mount(&server)
            .await;
        let mut lis_closed = pending("lis-closed");
        lis_closed.interrupted = Some(session_model::Interruption::lis_closed(NOW - 5, 42));
        let mut crashed = pending("crashed");
        crashed.is_complete = false;
        crashed.interrupted = Some(session_model::Interruption::lis_closed(NOW - 5, 7));
        let (_dir, store) = store_with(vec![lis_closed, crashed, pending("whole")]);
        let h = worker(
            &store,
            &endpoint(&server),
            fast_config().deliver_lis_closed(deliver),
        );
        let report = pass(&h).await;
        let requests = server.received_requests().await.unwrap();
        let bodies: Vec<serde_json::Value> = requests
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        let sent: Vec<&str> = bodies.iter().map(|b| b["sessionId"].as_str().unwrap()).collect();
        if deliver {
            assert_eq!(report.submitted, 2, "{sent:?}");
            let body = bodies
                .iter()
                .find(|b| b["sessionId"] == "lis-closed")
                .expect("sent");
            assert_eq!(body["interrupted"]["reason"], "lisClosed", "{body}");
            assert_eq!(body["interrupted"]["lisMissedBytes"], 42, "{body}");
            let whole = bodies.iter().find(|b| b["sessionId"] == "whole").expect("sent");
            assert!(
                whole.get("interrupted").is_none(),
                "left out when there is none: {whole}"
            );
        } else {
            assert_eq!(sent, ["whole"]);
            assert_eq!(
                load(&store, "lis-closed").submission.status,
                SubmissionStatus::Pending
            );
        }
        // An incomplete session is never sent, whatever the setting.
        assert!(!sent.contains(&"crashed"));
    }
}
