//! `keep_index` on a real store: a reported change is read into the index, a feed that
//! may have missed changes rebuilds it from the files, and a cancel ends it.

use std::sync::Arc;
use std::time::Duration;

use session_daemon::keep_index;
use session_model::{Session, SessionId};
use session_station::{SessionIndex, Tally};
use session_store::{DecodeOptions, SessionStore};
use session_workers::submit::ChangeFeed;
use tokio_util::sync::CancellationToken;

fn save(store: &SessionStore, id: &str) -> SessionId {
    let id = SessionId::new(id).unwrap();
    let mut session = Session::new(id.clone(), 1_000, 30).completed_at(2_000);
    store.save(&mut session).unwrap();
    id
}

async fn wait_for_total(index: &SessionIndex, store: &SessionStore, total: usize) {
    for _ in 0..300 {
        if index.counts(store, 0, 0).unwrap().0.total == total {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the index never held {total} sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_follows_reported_changes_and_rebuilds_when_some_were_missed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    let index = Arc::new(SessionIndex::new());
    let feed = ChangeFeed::new();
    let cancel = CancellationToken::new();
    let keeping = tokio::spawn(keep_index(
        store.clone(),
        index.clone(),
        feed.clone(),
        cancel.clone(),
    ));

    let first = save(&store, "s-1");
    feed.changed(first.clone());
    wait_for_total(&index, &store, 1).await;

    // Two sessions stored unreported, then a feed that missed changes: all three.
    save(&store, "s-2");
    save(&store, "s-3");
    feed.rescan();
    wait_for_total(&index, &store, 3).await;
    assert_eq!(
        index.counts(&store, 0, 0).unwrap().0,
        Tally::of_store(&store).unwrap().0.counts(0, 0),
        "the index agrees with a count of the files"
    );

    // A removal reported is a row gone.
    store.fs().delete(&first).unwrap();
    feed.changed(first);
    wait_for_total(&index, &store, 2).await;

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), keeping)
        .await
        .expect("keep_index ends at its cancel")
        .unwrap();
}
