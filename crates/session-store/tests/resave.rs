//! Saving a session that is stored already: the store's delivery state wins, unless
//! the content changed or the document settles what the store never sent.

use session_fs::Store;
use session_model::{Session, SessionId, SubmissionStatus};
use session_store::{DecodeOptions, SessionStore, decode};

fn fresh() -> Session {
    decode(&std::fs::read(test_support::fixture("v1/session-21.json")).unwrap())
        .unwrap()
        .session
}

fn stored(store: &SessionStore) -> Session {
    let id: SessionId = "session-21".parse().unwrap();
    store.load(&id).unwrap().unwrap().session
}

#[test]
fn the_same_content_keeps_the_stored_state_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(Store::open(dir.path()).unwrap(), DecodeOptions::default());
    let mut first = fresh();
    first.submission.status = SubmissionStatus::Submitted;
    first.submission.idempotency_key = Some("k-1".into());
    first.submission.submitted_at = Some(5);
    store.save(&mut first).unwrap();
    let mut again = fresh();
    assert_eq!(again.submission.status, SubmissionStatus::Pending);
    store.save(&mut again).unwrap();
    let now = stored(&store).submission;
    assert_eq!(now.status, SubmissionStatus::Submitted);
    assert_eq!(now.idempotency_key.as_deref(), Some("k-1"));
    assert!(now.earlier_deliveries.is_empty());
}

#[test]
fn a_document_that_settles_what_the_store_never_sent_is_believed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(Store::open(dir.path()).unwrap(), DecodeOptions::default());
    store.save(&mut fresh()).unwrap();
    let mut delivered_by_the_app = fresh();
    delivered_by_the_app.submission.status = SubmissionStatus::Submitted;
    delivered_by_the_app.submission.submitted_at = Some(7);
    store.save(&mut delivered_by_the_app).unwrap();
    let now = stored(&store).submission;
    assert_eq!(
        (now.status, now.submitted_at),
        (SubmissionStatus::Submitted, Some(7))
    );
}

#[test]
fn changed_content_is_pending_again_with_the_delivery_on_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(Store::open(dir.path()).unwrap(), DecodeOptions::default());
    let mut first = fresh();
    first.submission.status = SubmissionStatus::Submitted;
    first.submission.idempotency_key = Some("k-1".into());
    first.submission.submitted_at = Some(5);
    first.submission.attempts = 2;
    store.save(&mut first).unwrap();
    for change in [
        |s: &mut Session| s.end_time = Some(s.end_time.unwrap_or(0) + 1),
        |s: &mut Session| s.lis_ip = Some("10.9.9.9".into()),
        |s: &mut Session| {
            s.elements
                .retain(|e| e.kind != session_model::ElementKind::Message)
        },
    ] {
        let mut changed = fresh();
        change(&mut changed);
        store.save(&mut changed).unwrap();
        let now = stored(&store).submission;
        assert_eq!(now.status, SubmissionStatus::Pending);
        assert_eq!(
            (now.attempts, now.idempotency_key.as_deref(), now.submitted_at),
            (0, None, None)
        );
        assert_eq!(now.earlier_deliveries[0].key.as_deref(), Some("k-1"));
        assert_eq!(now.earlier_deliveries[0].at, Some(5));
    }
    // Only one delivery happened: re-saving changed content again records nothing more.
    assert_eq!(stored(&store).submission.earlier_deliveries.len(), 1);
}

#[test]
fn a_document_never_unsettles_or_resettles_what_the_store_delivered_or_is_still_trying() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(Store::open(dir.path()).unwrap(), DecodeOptions::default());
    // Delivered by the store; the app's copy says "ignored" (an operator there).
    let mut delivered = fresh();
    delivered.submission.status = SubmissionStatus::Submitted;
    delivered.submission.idempotency_key = Some("k-1".into());
    delivered.submission.submitted_at = Some(5);
    store.save(&mut delivered).unwrap();
    let mut ignored_there = fresh();
    ignored_there.submission.status = SubmissionStatus::Ignored;
    store.save(&mut ignored_there).unwrap();
    let now = stored(&store).submission;
    assert_eq!(
        (now.status, now.idempotency_key.as_deref(), now.submitted_at),
        (SubmissionStatus::Submitted, Some("k-1"), Some(5)),
        "a delivery stays a delivery"
    );

    // Still being retried by the store; the app's copy is plain pending with no attempts.
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::new(Store::open(dir.path()).unwrap(), DecodeOptions::default());
    let mut retrying = fresh();
    retrying.submission.attempts = 2;
    retrying.submission.idempotency_key = Some("k-2".into());
    retrying.submission.next_attempt_at = Some(99);
    store.save(&mut retrying).unwrap();
    store.save(&mut fresh()).unwrap();
    let now = stored(&store).submission;
    assert_eq!(
        (
            now.status,
            now.attempts,
            now.idempotency_key.as_deref(),
            now.next_attempt_at
        ),
        (SubmissionStatus::Pending, 2, Some("k-2"), Some(99)),
        "the store's retry state is kept"
    );
}
