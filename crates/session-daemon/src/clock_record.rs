//! The store's clock record, kept fresh while the daemon runs.

use std::time::Duration;

use session_store::SessionStore;
use tokio_util::sync::CancellationToken;

/// Takes a clock reading into the store's record now and every ten minutes, so that a
/// jump of the wall clock is measured against a recent reading of this boot, and a
/// reboot's bound starts from a recent time. A suspicion it reveals is logged once.
pub(crate) async fn keep_clock_record(store: SessionStore, cancel: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    let mut reported = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = every.tick() => {}
        }
        let fs = store.fs().clone();
        match tokio::task::spawn_blocking(move || fs.note_clock()).await {
            Ok(Ok(check)) => match &check.record.suspect {
                Some(suspicion) if !reported => {
                    reported = true;
                    tracing::warn!(reason = %suspicion.reason, "CLOCK SUSPECT: nothing is purged, trashed or expired until the endpoint's Date agrees or an operator confirms the clock (sessionctl clock confirm)");
                }
                Some(_) => {}
                None => reported = false,
            },
            Ok(Err(e)) => tracing::warn!(error = %e, "could not update the clock record"),
            Err(e) => tracing::warn!(error = %e, "clock record task failed"),
        }
    }
}
