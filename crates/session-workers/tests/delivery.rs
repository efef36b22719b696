//! Delivery exactly once, for real: redirects are never followed, Retry-After is
//! capped, one content has one key everywhere, and a re-put never undoes a delivery.

mod common;

use common::*;
use proptest::prelude::*;
use session_model::{SessionId, SubmissionStatus};
use session_workers::submit::SubmissionBody;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn a_redirect_is_a_failure_naming_its_location_and_nothing_reaches_the_other_host() {
    for status in [301u16, 302, 303, 307, 308] {
        let elsewhere = server().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&elsewhere)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201))
            .mount(&elsewhere)
            .await;
        let receiver = server().await;
        let location = format!("{}/moved?token=secret123", elsewhere.uri());
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).insert_header("Location", location.as_str()))
            .mount(&receiver)
            .await;
        let (_dir, store) = store_with(vec![pending("r1")]);
        let h = worker(&store, &endpoint(&receiver), fast_config());
        let report = h.worker.run_pass(&CancellationToken::new()).await.unwrap();
        assert_eq!(
            (report.submitted, report.failed, report.retrying),
            (0, 1, 0),
            "{status}"
        );
        let stored = load(&store, "r1");
        assert_eq!(stored.submission.status, SubmissionStatus::Failed, "{status}");
        let error = stored.submission.last_error.unwrap();
        assert!(error.contains(&format!("HTTP {status}")), "{error}");
        assert!(error.contains(&elsewhere.uri()), "names the Location: {error}");
        assert!(
            !error.contains("secret123"),
            "the Location's secrets are redacted: {error}"
        );
        assert_eq!(
            elsewhere.received_requests().await.unwrap().len(),
            0,
            "{status}: nothing sent elsewhere"
        );
        assert_eq!(
            receiver.received_requests().await.unwrap().len(),
            1,
            "{status}: not retried"
        );
    }
}

#[tokio::test]
async fn retry_after_beyond_the_cap_counts_as_the_cap() {
    let receiver = server().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "999999999"))
        .mount(&receiver)
        .await;
    let (_dir, store) = store_with(vec![pending("c1")]);
    let h = worker(&store, &endpoint(&receiver), fast_config());
    let report = h.worker.run_pass(&CancellationToken::new()).await.unwrap();
    assert_eq!(report.retrying, 1);
    let next = load(&store, "c1").submission.next_attempt_at.unwrap();
    // fast_config's cap is 60 s (the default would be 15 minutes).
    assert_eq!(next, NOW + 60_000, "parked at the configured cap, not years away");
}

#[tokio::test]
async fn the_key_is_the_hash_of_the_body_sent() {
    let receiver = server().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&receiver)
        .await;
    let (_dir, store) = store_with(vec![pending("k1")]);
    let h = worker(&store, &endpoint(&receiver), fast_config());
    h.worker.run_pass(&CancellationToken::new()).await.unwrap();
    let request = &receiver.received_requests().await.unwrap()[0];
    use sha2::Digest;
    let expected: String = sha2::Sha256::digest(&request.body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(key_of(request), expected);
    assert_eq!(load(&store, "k1").submission.idempotency_key, Some(expected));
}

#[tokio::test]
async fn a_re_put_never_undoes_a_delivery_and_new_content_gets_a_new_key() {
    let receiver = server().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&receiver)
        .await;
    let (_dir, store) = store_with(vec![pending("p1")]);
    let h = worker(&store, &endpoint(&receiver), fast_config());
    h.worker.run_pass(&CancellationToken::new()).await.unwrap();
    let delivered = load(&store, "p1").submission;
    assert_eq!(delivered.status, SubmissionStatus::Submitted);
    // The capture tool saves the identical session again, as a fresh pending document.
    let mut again = pending("p1");
    store.save(&mut again).unwrap();
    assert_eq!(
        load(&store, "p1").submission,
        delivered,
        "same content: state and key kept"
    );
    h.worker.run_pass(&CancellationToken::new()).await.unwrap();
    assert_eq!(
        receiver.received_requests().await.unwrap().len(),
        1,
        "not sent again"
    );
    // New content: pending again, the earlier delivery recorded, a different key.
    let mut changed = pending("p1");
    changed.end_time = Some(changed.end_time.unwrap() + 1000);
    store.save(&mut changed).unwrap();
    let after = load(&store, "p1").submission;
    assert_eq!(after.status, SubmissionStatus::Pending);
    assert_eq!(after.earlier_deliveries.len(), 1);
    assert_eq!(after.earlier_deliveries[0].key, delivered.idempotency_key);
    h.worker.run_pass(&CancellationToken::new()).await.unwrap();
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_ne!(key_of(&requests[0]), key_of(&requests[1]));
    assert_eq!(load(&store, "p1").submission.status, SubmissionStatus::Submitted);
}

#[tokio::test]
async fn new_content_saved_during_the_request_is_not_marked_delivered_by_it() {
    // The endpoint answers only when the test lets it: the new content is saved while
    // the request is certainly out, whatever the machine's speed.
    let receiver = GatedServer::start(201).await;
    let (_dir, store) = store_with(vec![pending("m1")]);
    let h = worker(&store, &receiver.url, fast_config());
    let cancel = CancellationToken::new();
    let pass = h.worker.run_pass(&cancel);
    let resave = async {
        receiver.arrived.notified().await;
        assert_eq!(load(&store, "m1").submission.status, SubmissionStatus::InFlight);
        let mut changed = pending("m1");
        changed.end_time = Some(changed.end_time.unwrap() + 1);
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.save(&mut changed).unwrap())
            .await
            .unwrap();
        receiver.release_one();
    };
    let (report, ()) = tokio::join!(pass, resave);
    report.unwrap();
    let after = load(&store, "m1").submission;
    assert_eq!(
        after.status,
        SubmissionStatus::Pending,
        "the new content is still to deliver"
    );
    assert_eq!(
        after.earlier_deliveries.len(),
        1,
        "the old content's delivery is recorded"
    );
    let sent_key = receiver.keys.lock().unwrap()[0].clone();
    assert_eq!(
        after.earlier_deliveries[0].key.as_deref(),
        Some(sent_key.as_str())
    );
}

fn body(id: &str, messages: Vec<String>, performer: Option<String>) -> SubmissionBody {
    SubmissionBody {
        session_id: SessionId::new(id).unwrap().to_string(),
        start_time: 1,
        end_time: Some(2),
        messages,
        device_ip: Some("10.0.0.1".into()),
        lis_ip: None,
        performer,
        interrupted: None,
    }
}

proptest! {
    #[test]
    fn same_body_same_key_and_changed_body_different_key(
        id in "[a-z0-9]{1,12}",
        messages in prop::collection::vec(".{0,20}", 0..4),
        performer in prop::option::of("[a-z]{1,8}"),
        extra in ".{1,10}",
    ) {
        let a = body(&id, messages.clone(), performer.clone());
        prop_assert_eq!(a.idempotency_key(), body(&id, messages.clone(), performer.clone()).idempotency_key());
        let mut more = messages.clone();
        more.push(extra);
        prop_assert_ne!(a.idempotency_key(), body(&id, more, performer.clone()).idempotency_key());
        let other_performer = Some(format!("{}x", performer.clone().unwrap_or_default()));
        prop_assert_ne!(a.idempotency_key(), body(&id, messages, other_performer).idempotency_key());
    }
}
