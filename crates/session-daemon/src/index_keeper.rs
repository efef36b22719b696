//! A daemon's [`SessionIndex`] kept current from a directory watch's [`ChangeFeed`].

use std::sync::Arc;

use session_station::SessionIndex;
use session_store::SessionStore;
use session_workers::submit::ChangeFeed;
use tokio_util::sync::CancellationToken;

/// Keeps `index` current until `cancel`: each change `changes` reports re-reads that
/// one file; a feed that may have missed changes (the watch overflowed) rebuilds the
/// index from the files. Reads run on blocking threads, one batch at a time.
pub async fn keep_index(
    store: SessionStore,
    index: Arc<SessionIndex>,
    changes: ChangeFeed,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = changes.notified() => {}
        }
        let (ids, rescan) = changes.take();
        let (store, index) = (store.clone(), index.clone());
        let applied = tokio::task::spawn_blocking(move || {
            if rescan {
                if let Err(e) = index.rebuild(&store) {
                    tracing::warn!(error = %e, "could not rebuild the session index");
                }
            } else {
                ids.iter().for_each(|id| index.refresh(&store, id));
            }
        })
        .await;
        if applied.is_err() {
            tracing::error!("the session index stopped following changes");
            return;
        }
    }
}
