//! The worker's delivery index is derived state: with a change feed attached, a pass
//! reads only what was reported, yet a stale or missing entry never loses or repeats a
//! delivery, and a rebuild from the files finds what no feed reported.

mod common;

use std::time::Duration;

use common::*;
use session_model::{SessionId, SubmissionStatus};
use session_workers::submit::{DeliveryIndex, PassReport};
use tokio_util::sync::CancellationToken;

async fn pass(h: &Harness) -> PassReport {
    h.worker.run_pass(&CancellationToken::new()).await.unwrap()
}

fn id(s: &str) -> SessionId {
    SessionId::new(s).unwrap()
}

#[tokio::test]
async fn with_a_feed_a_pass_reads_only_reported_changes_and_a_rebuild_finds_the_rest() {
    let server = answering(201).await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    let h = worker(
        &store,
        &endpoint(&server),
        fast_config().rescan_interval(Duration::from_secs(3600)),
    );
    let feed = h.worker.change_feed();
    // The first pass builds the index from the files.
    assert_eq!(pass(&h).await.submitted, 1);
    // A session stored behind the feed's back: not read, so not sent...
    store.create(&mut pending("quiet")).unwrap();
    assert_eq!(pass(&h).await.submitted, 0, "an unreported change costs no read");
    // ...until it is reported,
    feed.changed(id("quiet"));
    assert_eq!(pass(&h).await.submitted, 1);
    // or until a rebuild from the files.
    store.create(&mut pending("missed")).unwrap();
    feed.rescan();
    assert_eq!(pass(&h).await.submitted, 1);
    assert_eq!(
        load(&store, "missed").submission.status,
        SubmissionStatus::Submitted
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        3,
        "each delivered once"
    );
}

#[tokio::test]
async fn an_index_older_than_the_rescan_interval_is_rebuilt_from_the_files() {
    let server = answering(201).await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    // A zero interval: every pass finds the index stale and rebuilds it.
    let h = worker(
        &store,
        &endpoint(&server),
        fast_config().rescan_interval(Duration::ZERO),
    );
    let _feed = h.worker.change_feed();
    assert_eq!(pass(&h).await.submitted, 1);
    store.create(&mut pending("unreported")).unwrap();
    assert_eq!(
        pass(&h).await.submitted,
        1,
        "found by the rebuild, without a report"
    );
    assert_eq!(
        load(&store, "unreported").submission.status,
        SubmissionStatus::Submitted
    );
}

#[tokio::test]
async fn a_seeded_index_is_trusted_until_the_next_rebuild() {
    let server = answering(201).await;
    let (_dir, store) = store_with(vec![pending("known"), pending("unknown")]);
    let h = worker(&store, &endpoint(&server), fast_config());
    let feed = h.worker.change_feed();
    // The caller (start-up recovery) read the files and saw only one of them.
    let mut seed = session_workers::submit::DeliveryIndex::new();
    seed.observe(&load(&store, "known"));
    h.worker.seed(seed);
    assert_eq!(
        pass(&h).await.submitted,
        1,
        "the seed spares the first pass a read of every file"
    );
    assert_eq!(
        load(&store, "known").submission.status,
        SubmissionStatus::Submitted
    );
    assert_eq!(
        load(&store, "unknown").submission.status,
        SubmissionStatus::Pending
    );
    feed.rescan();
    assert_eq!(pass(&h).await.submitted, 1, "a rebuild finds the rest");
}

#[tokio::test]
async fn with_a_feed_and_no_report_a_failed_attempt_still_waits_its_backoff() {
    let server = answering(503).await;
    let (_dir, store) = store_with(vec![pending("s1")]);
    let h = worker(&store, &endpoint(&server), fast_config());
    // A feed that reports nothing (not a directory watch): the worker must learn the
    // outcome of its own attempt by itself.
    let _feed = h.worker.change_feed();
    assert_eq!(pass(&h).await.retrying, 1);
    let next = load(&store, "s1").submission.next_attempt_at.unwrap();
    assert!(next > NOW);
    let waiting = pass(&h).await;
    assert_eq!(waiting.retrying, 0, "not due again before its backoff");
    // The worker knows when it falls due, so its loop wakes then (not at the next scan).
    assert_eq!(waiting.next_due, Some(next));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    h.clock.set(next);
    assert_eq!(pass(&h).await.retrying, 1, "due once the backoff is over");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_stale_index_never_repeats_a_delivery_or_sends_an_incomplete_session() {
    let server = answering(201).await;
    let delivered = with_status("done", SubmissionStatus::Submitted, 1);
    let mut open = pending("open");
    open.is_complete = false;
    let (_dir, store) = store_with(vec![delivered.clone(), open.clone()]);
    let h = worker(&store, &endpoint(&server), fast_config());
    let _feed = h.worker.change_feed();
    // An index that lies: both look pending and complete.
    let mut lying = DeliveryIndex::new();
    lying.observe(&pending("done"));
    lying.observe(&pending("open"));
    lying.observe(&pending("gone"));
    h.worker.seed(lying);
    let report = pass(&h).await;
    assert_eq!(report.submitted, 0, "{report:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
    assert_eq!(load(&store, "done").submission, delivered.submission);
}

#[tokio::test]
async fn an_inflight_orphan_found_by_the_rebuild_is_resumed_with_its_key() {
    let server = answering(201).await;
    let mut orphan = with_status("orphan", SubmissionStatus::InFlight, 1);
    orphan.submission.idempotency_key = Some("kept-key".into());
    let (_dir, store) = store_with(vec![orphan]);
    let h = worker(&store, &endpoint(&server), fast_config());
    let _feed = h.worker.change_feed();
    assert_eq!(pass(&h).await.submitted, 1);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(key_of(&requests[0]), "kept-key");
    assert_eq!(load(&store, "orphan").submission.attempts, 2);
}

#[test]
fn the_index_holds_only_sessions_that_may_need_the_worker() {
    let mut index = session_workers::submit::DeliveryIndex::new();
    assert_eq!((index.len(), index.is_empty()), (0, true));
    index.observe(&pending("p1"));
    index.observe(&with_status("done", SubmissionStatus::Submitted, 1));
    index.observe(&with_status("dropped", SubmissionStatus::Ignored, 0));
    assert_eq!(
        (index.len(), index.is_empty()),
        (1, false),
        "only the pending one"
    );
    // Observed again once delivered, it leaves the index.
    index.observe(&with_status("p1", SubmissionStatus::Submitted, 1));
    assert!(index.is_empty());
    index.observe(&pending("p2"));
    index.forget(&id("p2"));
    assert!(index.is_empty());
}

#[tokio::test]
async fn a_reported_change_reads_that_session_only() {
    let server = answering(201).await;
    let (_dir, store) = store_with(vec![]);
    let h = worker(&store, &endpoint(&server), fast_config());
    let feed = h.worker.change_feed();
    assert_eq!(
        pass(&h).await.submitted,
        0,
        "the first pass builds the (empty) index"
    );
    store.create(&mut pending("reported")).unwrap();
    store.create(&mut pending("unreported")).unwrap();
    feed.changed(id("reported"));
    assert_eq!(pass(&h).await.submitted, 1);
    assert_eq!(
        load(&store, "reported").submission.status,
        SubmissionStatus::Submitted
    );
    assert_eq!(
        load(&store, "unreported").submission.status,
        SubmissionStatus::Pending,
        "one report is not a reason to read every file"
    );
}

#[tokio::test]
async fn a_feed_read_by_its_own_consumer_gives_each_change_once_and_wakes_it() {
    let feed = session_workers::submit::ChangeFeed::new();
    // Nothing fed: nothing to take, and a wait does not end.
    assert_eq!(feed.take(), (Vec::new(), false));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), feed.notified())
            .await
            .is_err(),
        "woken with nothing fed"
    );
    let waiter = {
        let feed = feed.clone();
        tokio::spawn(async move { feed.notified().await })
    };
    tokio::task::yield_now().await;
    feed.changed(id("a"));
    feed.changed(id("b"));
    feed.changed(id("a"));
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("a change wakes the consumer")
        .unwrap();
    let (mut ids, rescan) = feed.take();
    ids.sort();
    assert_eq!((ids, rescan), (vec![id("a"), id("b")], false));
    // Taken once: the next take is empty; a rescan is said once too.
    assert_eq!(feed.take(), (Vec::new(), false));
    feed.rescan();
    assert_eq!(feed.take(), (Vec::new(), true));
    assert_eq!(feed.take(), (Vec::new(), false));
}
