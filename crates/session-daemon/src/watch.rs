//! The store directory watch: a session stored by anyone is noticed at once.
//!
//! An inotify watch of its own, with the events that change which sessions are stored
//! and nothing else. A general-purpose watcher (the `notify` crate, used before) also
//! asks for `IN_OPEN`, so every read of a session file (recovery's start-up pass over
//! the whole store, the page, `list`, delivery) queued an event for the watcher's
//! thread to wake for and drop: a tenth of the daemon's start-up CPU on a store of
//! 100,000 sessions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use session_model::SessionId;
use session_workers::submit::ChangeFeed;

/// What changes the set of stored sessions: a name linked, renamed in or out, removed,
/// or a file written in place and closed; and the directory itself going away.
fn store_events() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::DELETE
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
}

/// A watch on the store directory (inotify), alive until dropped.
pub struct StoreWatch {
    watches: Watches,
    watch: WatchDescriptor,
    stopping: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
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
        let watched = Inotify::init().and_then(|inotify| {
            let watch = inotify.watches().add(dir, store_events())?;
            Ok((inotify, watch))
        });
        let (inotify, watch) = match watched {
            Ok(watched) => watched,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the store; relying on the periodic scan");
                return None;
            }
        };
        let watches = inotify.watches();
        let stopping = Arc::new(AtomicBool::new(false));
        let reader = {
            let stopping = stopping.clone();
            let dir = dir.to_path_buf();
            std::thread::Builder::new()
                .name("store-watch".into())
                .spawn(move || read_events(inotify, &dir, &stopping, &feeds, &on_change))
        };
        match reader {
            Ok(reader) => Some(StoreWatch {
                watches,
                watch,
                stopping,
                reader: Some(reader),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the store watch; relying on the periodic scan");
                None
            }
        }
    }
}

impl Drop for StoreWatch {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Removing the watch queues IN_IGNORED, which wakes the reader to see `stopping`.
        // When the removal fails the watch is gone already (the directory was removed),
        // and the reader has seen IN_IGNORED and ended, or will.
        let removed = self.watches.remove(self.watch.clone()).is_ok();
        if let Some(reader) = self.reader.take().filter(|_| removed) {
            let _ = reader.join();
        }
    }
}

/// The watch's thread: reports each event until the watch is removed.
fn read_events(
    mut inotify: Inotify,
    dir: &std::path::Path,
    stopping: &AtomicBool,
    feeds: &[ChangeFeed],
    on_change: &(impl Fn(&SessionId, bool) + Send + Sync),
) {
    let rescan = || feeds.iter().for_each(ChangeFeed::rescan);
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let events = match inotify.read_events_blocking(&mut buffer) {
            Ok(events) => events,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "the store watch failed; relying on the periodic scan");
                rescan();
                return;
            }
        };
        for event in events {
            if event.mask.contains(EventMask::Q_OVERFLOW) {
                rescan();
                continue;
            }
            if event
                .mask
                .intersects(EventMask::IGNORED | EventMask::DELETE_SELF | EventMask::MOVE_SELF)
            {
                if !stopping.load(Ordering::SeqCst) {
                    tracing::warn!(dir = %dir.display(), "the store directory was removed or moved; relying on the periodic scan");
                    rescan();
                }
                if event.mask.contains(EventMask::IGNORED) {
                    return;
                }
                continue;
            }
            let Some(name) = event.name else { continue };
            let Some(id) = session_fs::live_session(name) else {
                continue;
            };
            // Whatever the event says, what counts is whether the name is there now.
            let stored = session_fs::exists_no_follow(&dir.join(name));
            feeds.iter().for_each(|feed| feed.changed(id.clone()));
            on_change(&id, stored);
        }
    }
}
