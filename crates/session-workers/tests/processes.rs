//! Real processes around the submission worker: a kill between the POST and the status
//! write, and an operator changing a session while its request is out.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use session_model::SubmissionStatus;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CHILD_STORE: &str = "SESSION_WORKERS_CHILD_STORE";
const CHILD_ENDPOINT: &str = "SESSION_WORKERS_CHILD_ENDPOINT";
const CHILD_IGNORE: &str = "SESSION_WORKERS_CHILD_IGNORE";

/// Not a test on its own: the worker process the test below kills.
#[tokio::test]
async fn child_submits() {
    let (Ok(dir), Ok(endpoint)) = (std::env::var(CHILD_STORE), std::env::var(CHILD_ENDPOINT)) else {
        return;
    };
    let store = session_store::SessionStore::open(dir, session_store::DecodeOptions::default()).unwrap();
    let h = worker(&store, &endpoint, fast_config());
    h.worker.run_pass(&CancellationToken::new()).await.unwrap();
}

/// Not a test on its own: the operator's `ignore`, from another process.
#[test]
fn child_ignores() {
    let Ok(dir) = std::env::var(CHILD_IGNORE) else {
        return;
    };
    let store = session_store::SessionStore::open(dir, session_store::DecodeOptions::default()).unwrap();
    let id = "s1".parse().unwrap();
    store
        .update(&id, |s| {
            s.submission.ignore().map_err(session_store::refused(&id))
        })
        .unwrap();
}

fn spawn_child(test: &str, env: &[(&str, &str)]) -> test_support::ChildGuard {
    test_support::ChildGuard::new(
        test_support::rerun_as_child(test)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn wait_for_requests(server: &MockServer, n: usize) {
    for _ in 0..500 {
        if server.received_requests().await.unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server never saw {n} request(s)");
}

#[tokio::test]
async fn killed_between_post_and_status_write_resubmits_with_the_same_key() {
    let server = server().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let (dir, store) = store_with(vec![pending("s1")]);
    let endpoint = endpoint(&server);
    let mut child = spawn_child(
        "child_submits",
        &[
            (CHILD_STORE, dir.path().to_str().unwrap()),
            (CHILD_ENDPOINT, &endpoint),
        ],
    );
    wait_for_requests(&server, 1).await;
    child.kill().unwrap(); // SIGKILL: the POST went out, the outcome was never written
    child.wait().unwrap();
    let s = load(&store, "s1");
    assert_eq!(s.submission.status, SubmissionStatus::InFlight);
    let key = s.submission.idempotency_key.clone().unwrap();

    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let h = worker(&store, &endpoint, fast_config());
    assert_eq!(
        h.worker
            .run_pass(&CancellationToken::new())
            .await
            .unwrap()
            .submitted,
        1
    );
    let resent = server.received_requests().await.unwrap();
    assert_eq!(
        resent[0]
            .headers
            .get("Idempotency-Key")
            .unwrap()
            .to_str()
            .unwrap(),
        key
    );
    let s = load(&store, "s1");
    assert_eq!(
        (s.submission.status, s.submission.attempts),
        (SubmissionStatus::Submitted, 2)
    );
}

#[tokio::test]
async fn an_operator_change_during_a_request_and_its_outcome_both_survive() {
    // The answer is held until the operator's change has landed: no clock involved.
    let server = GatedServer::start(503).await;
    let (dir, store) = store_with(vec![pending("s1")]);
    let h = worker(&store, &server.url, fast_config());
    let pass = tokio::spawn(async move { h.worker.run_pass(&CancellationToken::new()).await.unwrap() });
    server.arrived.notified().await;
    let status = spawn_child("child_ignores", &[(CHILD_IGNORE, dir.path().to_str().unwrap())])
        .wait()
        .unwrap();
    assert!(status.success());
    assert!(!pass.is_finished(), "the request is still out");
    server.release_one();
    pass.await.unwrap();
    let s = load(&store, "s1");
    // The operator's decision and the attempt's record, both there.
    assert_eq!(s.submission.status, SubmissionStatus::Ignored);
    assert_eq!(s.submission.attempts, 1);
    assert_eq!(s.submission.last_error.as_deref(), Some("HTTP 503"));
}
