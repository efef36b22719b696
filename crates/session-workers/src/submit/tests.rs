//! The worker's loop under tokio's paused clock, with a mocked transport for what a
//! real server cannot produce.

use std::sync::Arc;
use std::time::Duration;

use session_model::{Session, SessionId, SubmissionStatus};
use session_store::{DecodeOptions, SessionStore};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::transport::MockTransport;
use super::*;
use crate::clock::Clock;

/// Wall-clock time that follows tokio's (paused) clock.
#[derive(Debug)]
struct TokioClock {
    epoch: u64,
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.epoch + self.start.elapsed().as_millis() as u64
    }
}

fn session(id: &str) -> Session {
    let doc = format!(
        r#"{{"id": "{id}", "startTime": 1, "endTime": 2, "isComplete": true, "elements": [], "messages": []}}"#
    );
    session_store::decode(doc.as_bytes()).unwrap().session
}

fn reply(status: u16) -> ReplyFuture {
    Box::pin(async move {
        Ok(HttpReply {
            status,
            retry_after: None,
            location: None,
            date: None,
        })
    })
}

struct Setup {
    _dir: tempfile::TempDir,
    store: SessionStore,
    worker: SubmissionWorker<MockTransport>,
    events: broadcast::Receiver<WorkerEvent>,
}

fn setup(ids: &[&str], transport: MockTransport) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    for id in ids {
        store.create(&mut session(id)).unwrap();
    }
    let config = SubmitConfig {
        backoff: Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(2),
        },
        scan_interval: Duration::from_secs(300),
        ..SubmitConfig::default()
    };
    let clock = Arc::new(TokioClock {
        epoch: 1_000_000,
        start: tokio::time::Instant::now(),
    });
    let (tx, events) = broadcast::channel(64);
    let worker = SubmissionWorker::new(store.clone(), transport, config, clock, tx).unwrap();
    Setup {
        _dir: dir,
        store,
        worker,
        events,
    }
}

async fn next_result(events: &mut broadcast::Receiver<WorkerEvent>) -> WorkerEvent {
    // Bounded: a worker that never reports fails the test instead of hanging it (the
    // clock is paused, so this is an hour of the worker's time, not of the machine's).
    let next = async {
        loop {
            match events.recv().await.unwrap() {
                WorkerEvent::Progress { .. } => continue,
                other => return other,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3600), next)
        .await
        .expect("the worker reported nothing")
}

#[tokio::test(start_paused = true)]
async fn a_due_retry_wakes_the_loop_before_the_next_scan() {
    let mut transport = MockTransport::new();
    let mut seq = mockall::Sequence::new();
    transport
        .expect_post()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| reply(503));
    transport
        .expect_post()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| reply(201));
    let mut s = setup(&["s1"], transport);
    let cancel = CancellationToken::new();
    let started = tokio::time::Instant::now();
    let task = tokio::spawn(s.worker.run(cancel.clone()));
    assert!(matches!(
        next_result(&mut s.events).await,
        WorkerEvent::Retrying { attempts: 1, .. }
    ));
    assert_eq!(
        next_result(&mut s.events).await,
        WorkerEvent::Submitted { id: "s1".into() }
    );
    let waited = started.elapsed();
    assert!(
        waited <= Duration::from_secs(2),
        "woke for the retry after {waited:?}, not at the 300 s scan"
    );
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_trigger_sends_a_new_session_without_waiting_for_the_scan() {
    let mut transport = MockTransport::new();
    transport.expect_post().times(1).returning(|_| reply(200));
    let mut s = setup(&[], transport);
    let trigger = s.worker.trigger();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(s.worker.run(cancel.clone()));
    tokio::time::sleep(Duration::from_secs(10)).await;
    s.store.create(&mut session("late")).unwrap();
    let before = tokio::time::Instant::now();
    trigger.notify_one();
    assert_eq!(
        next_result(&mut s.events).await,
        WorkerEvent::Submitted { id: "late".into() }
    );
    assert!(before.elapsed() < Duration::from_secs(1));
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn an_unsendable_request_fails_at_once() {
    let mut transport = MockTransport::new();
    transport
        .expect_post()
        .times(1)
        .returning(|_| Box::pin(async { Err(TransportError::Invalid("bad header".into())) }));
    let s = setup(&["s1"], transport);
    let report = s.worker.run_pass(&CancellationToken::new()).await.unwrap();
    assert_eq!(report.failed, 1);
    let id = SessionId::new("s1").unwrap();
    let stored = s.store.load(&id).unwrap().unwrap().session;
    assert_eq!(stored.submission.status, SubmissionStatus::Failed);
}

/// A transport whose one reply takes `takes`, and which says when the request is out.
fn slow_transport(takes: Duration, sent: Arc<tokio::sync::Notify>) -> MockTransport {
    let mut transport = MockTransport::new();
    transport.expect_post().times(1).returning(move |_| {
        sent.notify_one();
        Box::pin(async move {
            tokio::time::sleep(takes).await;
            Ok(HttpReply {
                status: 201,
                retry_after: None,
                location: None,
                date: None,
            })
        })
    });
    transport
}

async fn pass_cancelled_mid_request(takes: Duration) -> (PassReport, SubmissionStatus) {
    let sent = Arc::new(tokio::sync::Notify::new());
    let s = setup(&["s1"], slow_transport(takes, sent.clone()));
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        sent.notified().await;
        canceller.cancel();
    });
    let report = s.worker.run_pass(&cancel).await.unwrap();
    let id = SessionId::new("s1").unwrap();
    let stored = s.store.load(&id).unwrap().unwrap().session;
    (report, stored.submission.status)
}

#[tokio::test(start_paused = true)]
async fn a_reply_within_the_shutdown_grace_is_recorded() {
    let (report, status) = pass_cancelled_mid_request(Duration::from_secs(5)).await;
    assert_eq!(
        (report.submitted, report.interrupted, status),
        (1, 0, SubmissionStatus::Submitted)
    );
}

#[tokio::test(start_paused = true)]
async fn a_reply_after_the_shutdown_grace_leaves_the_session_in_flight() {
    let (report, status) = pass_cancelled_mid_request(Duration::from_secs(60)).await;
    assert_eq!(
        (report.submitted, report.interrupted, status),
        (0, 1, SubmissionStatus::InFlight)
    );
}

/// A subscriber writing every level, without colours, into `captured`.
fn capturing(captured: &test_support::CapturedLogs) -> impl tracing::Subscriber + Send + Sync + use<> {
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
}

/// The log lines `log_pass` writes for `report`, at every level.
fn logged(report: &PassReport) -> String {
    let captured = test_support::CapturedLogs::default();
    tracing::subscriber::with_default(capturing(&captured), || log_pass(report));
    captured.text()
}

#[test]
fn a_pass_that_attempted_anything_is_logged_at_info_and_an_idle_one_at_debug() {
    let one = |set: fn(&mut PassReport)| {
        let mut report = PassReport::default();
        set(&mut report);
        report
    };
    let busy = [
        one(|r| r.submitted = 1),
        one(|r| r.retrying = 1),
        one(|r| r.failed = 1),
        one(|r| r.interrupted = 1),
        one(|r| {
            r.submitted = 2;
            r.failed = 1;
        }),
    ];
    for report in busy {
        let line = logged(&report);
        assert!(
            line.contains(" INFO ") && line.contains("submission pass finished"),
            "{report:?}: {line}"
        );
        let counts = format!(
            "submitted={} retrying={} failed={} interrupted={}",
            report.submitted, report.retrying, report.failed, report.interrupted
        );
        assert!(line.contains(&counts), "{report:?}: {line}");
    }
    let idle = logged(&PassReport::default());
    assert!(
        idle.contains(" DEBUG ") && idle.contains("nothing was due"),
        "{idle}"
    );
}

#[tokio::test]
async fn a_submission_task_that_panics_is_logged_as_failed_and_the_pass_goes_on() {
    let mut transport = MockTransport::new();
    transport.expect_post().times(2).returning(|request| {
        if request.body.session_id == "boom" {
            // Panics in the reply, polled on the task: a panic in this closure would
            // poison the mock for the other session's call.
            return Box::pin(async { panic!("a transport bug") });
        }
        reply(201)
    });
    let s = setup(&["boom", "fine"], transport);
    let captured = test_support::CapturedLogs::default();
    let _default = tracing::subscriber::set_default(capturing(&captured));
    let report = s.worker.run_pass(&CancellationToken::new()).await.unwrap();
    assert_eq!(report.submitted, 1, "the other session is delivered: {report:?}");
    let logs = captured.text();
    assert_eq!(
        logs.matches("a submission task failed").count(),
        1,
        "a panicked task is an error in the log, once:\n{logs}"
    );
    let id = SessionId::new("boom").unwrap();
    let stored = s.store.load(&id).unwrap().unwrap().session;
    assert_eq!(
        stored.submission.status,
        SubmissionStatus::InFlight,
        "left for the next start to resume, never marked delivered"
    );
}

#[tokio::test]
async fn a_configuration_problem_for_a_session_ignored_meanwhile_leaves_the_ignore_standing() {
    let store_slot: Arc<std::sync::OnceLock<SessionStore>> = Arc::default();
    let store_seen = store_slot.clone();
    let mut transport = MockTransport::new();
    transport.expect_post().times(1).returning(move |_| {
        // The operator ignores the session while its request is out; the request
        // then fails on the endpoint's certificate.
        let store = store_seen
            .get()
            .expect("the store is set before the pass")
            .clone();
        Box::pin(async move {
            store.ignore(&SessionId::new("s1").unwrap()).unwrap();
            Err(TransportError::Tls(
                "the endpoint's certificate is not trusted".into(),
            ))
        })
    });
    let s = setup(&["s1"], transport);
    let _ = store_slot.set(s.store.clone());
    let report = s.worker.run_pass(&CancellationToken::new()).await.unwrap();
    assert_eq!(
        (
            report.submitted,
            report.retrying,
            report.failed,
            report.interrupted
        ),
        (0, 0, 0, 0),
        "the attempt counts as skipped: {report:?}"
    );
    let id = SessionId::new("s1").unwrap();
    let submission = s.store.load(&id).unwrap().unwrap().session.submission;
    assert_eq!(
        submission.status,
        SubmissionStatus::Ignored,
        "the operator's decision stands"
    );
    assert_eq!(
        submission.next_attempt_at, None,
        "no retry scheduled for an ignored session"
    );
    assert!(
        submission
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("not trusted")),
        "the attempt's error is recorded beside it: {submission:?}"
    );
}
