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
}
