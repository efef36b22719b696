//! Logs never carry message contents or the authorization value, even at TRACE.

mod common;

use common::*;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn trace_logs_hold_no_patient_data_and_no_secret() {
    let captured = test_support::CapturedLogs::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let server = MockServer::builder()
        .listener(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .start()
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let (dir, store) = store_with(vec![pending("s1"), pending("s2")]);
    let h = worker(&store, &endpoint(&server), fast_config());
    h.worker.run_pass(&CancellationToken::new()).await.unwrap();
    let logs = captured.text();
    assert!(
        logs.contains("s1") && logs.contains("HTTP 503"),
        "the decisions are logged:\n{logs}"
    );
    for secret in ["test-token", "MSH|", "Doe^John", "PID|"] {
        assert!(!logs.contains(secret), "{secret:?} leaked into the logs");
    }
    // The retry time is logged for people: RFC 3339, the one stored.
    let next = load(&store, "s1").submission.next_attempt_at.unwrap();
    let readable =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(next));
    assert!(
        logs.contains(&format!("next_attempt_at={readable}")),
        "{readable} not in:\n{logs}"
    );

    // A file the worker cannot read (over this handle's size limit) is named in the log
    // and skipped; the pass goes on. (One subscriber per test binary: hence one test.)
    drop(h); // one submitter per store
    let tight = session_fs::Store::options()
        .max_file_size(64)
        .open(dir.path())
        .unwrap();
    let tight = session_store::SessionStore::new(tight, session_store::DecodeOptions::default());
    let h = worker(&tight, &endpoint(&server), fast_config());
    h.worker.run_pass(&CancellationToken::new()).await.unwrap();
    let logs = captured.text();
    let skipped: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("submission skipped a file it cannot read"))
        .collect();
    assert!(
        skipped.iter().any(|l| l.contains("s1.json")) && skipped.iter().any(|l| l.contains("s2.json")),
        "each unreadable file is named:\n{logs}"
    );
    for secret in ["MSH|", "Doe^John", "PID|"] {
        assert!(!logs.contains(secret), "{secret:?} leaked into the logs");
    }

    // A shutdown that cuts a request off says so, and is never logged as a task failure.
    drop(h);
    let slow = MockServer::builder()
        .listener(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .start()
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(std::time::Duration::from_secs(5)))
        .mount(&slow)
        .await;
    let (_dir, store) = store_with(vec![pending("s3")]);
    let h = worker(&store, &endpoint(&slow), fast_config());
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    let stop_once_sent = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while slow.received_requests().await.unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the request never went out");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        stopper.cancel();
    };
    let (report, ()) = tokio::join!(h.worker.run_pass(&cancel), stop_once_sent);
    assert_eq!(report.unwrap().interrupted, 1);
    let logs = captured.text();
    assert!(logs.contains("shutdown interrupted a submission"), "{logs}");
    assert!(!logs.contains("a submission task failed"), "{logs}");

    // Cleanup's lock sweep says how many lock files it removed, and is silent when it
    // removed none: a daily line saying "0" would bury the ones that matter.
    let swept_lines = |logs: &str| -> Vec<String> {
        logs.lines()
            .filter(|l| l.contains("removed the lock files of sessions that no longer exist"))
            .map(str::to_owned)
            .collect()
    };
    let (dir, store) = store_with(vec![pending("s4")]);
    let config = session_workers::cleanup::CleanupConfig::default();
    session_workers::cleanup::cleanup_once(&store, &config).unwrap();
    assert_eq!(swept_lines(&captured.text()), Vec::<String>::new());
    for orphan in ["crashed-a", "crashed-b"] {
        std::fs::write(dir.path().join(".locks").join(format!("{orphan}.lock")), b"").unwrap();
    }
    session_workers::cleanup::cleanup_once(&store, &config).unwrap();
    let swept = swept_lines(&captured.text());
    assert_eq!(swept.len(), 1, "{swept:?}");
    assert!(swept[0].contains("lock_files=2"), "{swept:?}");

    // A clock suspicion the endpoint's Date raised is said cleared once, when a Date
    // agrees, and not while the Dates still disagree.
    let cleared = |logs: &str| logs.matches("the clock suspicion is cleared").count();
    let right_now = || httpdate::fmt_http_date(std::time::SystemTime::now());
    let dated = MockServer::builder()
        .listener(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .start()
        .await;
    Mock::given(method("POST"))
        .respond_with(move |_: &wiremock::Request| {
            ResponseTemplate::new(503).insert_header("Date", right_now().as_str())
        })
        .mount(&dated)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let real = session_fs::now_ms();
    let store_clock = session_workers::ManualClock::at(real + 94 * 365 * 86_400_000);
    let fs = session_fs::Store::options()
        .clock(std::sync::Arc::new(store_clock.clone()))
        .open(dir.path())
        .unwrap();
    let store = session_store::SessionStore::new(fs, session_store::DecodeOptions::default());
    store.create(&mut pending("s5")).unwrap();
    let h = worker(&store, &endpoint(&dated), fast_config());
    let before = cleared(&captured.text());
    for (pass, worker_time) in [(1, NOW), (2, NOW + 86_400_000)] {
        h.clock.set(worker_time);
        h.worker.run_pass(&CancellationToken::new()).await.unwrap();
        assert_eq!(dated.received_requests().await.unwrap().len(), pass);
        assert!(store.fs().clock_record().unwrap().suspect.is_some());
        assert_eq!(cleared(&captured.text()), before, "pass {pass}: still suspect");
    }
    store_clock.set(session_fs::now_ms());
    h.clock.set(NOW + 2 * 86_400_000);
    h.worker.run_pass(&CancellationToken::new()).await.unwrap();
    assert_eq!(dated.received_requests().await.unwrap().len(), 3);
    assert_eq!(store.fs().clock_record().unwrap().suspect, None);
    assert_eq!(cleared(&captured.text()), before + 1);
}
