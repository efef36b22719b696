//! The store directory watch: a session stored by anyone is noticed at once.

use session_model::SessionId;
use session_workers::submit::ChangeFeed;

/// A watch on the store directory (inotify), alive until dropped.
pub struct StoreWatch {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for StoreWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreWatch")
    }
}

impl StoreWatch {
    /// Watches `dir`: each live session file stored, replaced or removed is reported to
    /// every feed and to `on_change(id, stored)` (`stored`: the name is there now).
    /// A watch that lost events asks every feed to read everything again. `None` (and a
    /// warning) when the directory cannot be watched (inotify limits, an unusual
    /// filesystem): the workers' periodic scans remain.
    pub fn start(
        dir: &std::path::Path,
        feeds: Vec<ChangeFeed>,
        on_change: impl Fn(&SessionId, bool) + Send + Sync + 'static,
    ) -> Option<StoreWatch> {
        use notify::Watcher;
        let handler = move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else {
                feeds.iter().for_each(ChangeFeed::rescan);
                return;
            };
            if event.need_rescan() {
                feeds.iter().for_each(ChangeFeed::rescan);
            }
            if event.kind.is_access() {
                return;
            }
            for path in &event.paths {
                let Some(name) = path.file_name() else { continue };
                let Some(id) = session_fs::live_session(name) else {
                    continue;
                };
                // Whatever the event says, what counts is whether the name is there now.
                let stored = session_fs::exists_no_follow(path);
                feeds.iter().for_each(|feed| feed.changed(id.clone()));
                on_change(&id, stored);
            }
        };
        let watched = notify::recommended_watcher(handler)
            .and_then(|mut w| w.watch(dir, notify::RecursiveMode::NonRecursive).map(|()| w));
        match watched {
            Ok(watcher) => Some(StoreWatch { _watcher: watcher }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the store; relying on the periodic scan");
                None
            }
        }
    }
}
