//! `run`: the daemon a lab runs.

use std::sync::Arc;
use std::time::Duration;

use session_fs::maintenance::Role;
use session_fs::{FsError, Store};
use session_store::{MigrateOptions, SessionStore};
use session_workers::SystemClock;
use session_workers::cleanup::run_cleanup;
use session_workers::submit::{ChangeFeed, DeliveryIndex, SubmissionWorker};
use tokio_util::sync::CancellationToken;

use crate::api::security::Guard;
use crate::api::starting::{Progress, Starting};
use crate::api::{ApiState, StoreEvent};
use crate::config::Config;
use crate::error::CliError;
use crate::index::SessionIndex;

const HOLDER: &str = "daemon.holder";

fn failed(context: &str) -> impl FnOnce(FsError) -> CliError + '_ {
    move |e| CliError::Failed(format!("{context}: {e}"))
}

/// Takes the daemon role, recovers, migrates, then runs the workers until SIGINT or
/// SIGTERM. Every start-up failure is one line and exit 1.
pub fn run(config: &Config) -> Result<(), CliError> {
    let dir = config.dir()?;
    if let Some(listen) = config.http_listen()
        && !crate::api::security::is_loopback(listen)
        && config.http_token().is_none()
    {
        return Err(CliError::Failed(format!(
            "http_listen = {listen} is reachable from other machines: set http_token \
             (HL7_HTTP_TOKEN) so that only those who hold it see patient data"
        )));
    }
    let shared = Store::open(&dir).map_err(failed("cannot open the store"))?;
    if let Some(was) = shared.secure_dir().map_err(failed("cannot secure the store"))? {
        tracing::warn!(dir = %dir.display(), was = format!("{was:o}"), "the store directory was open to others; now 0700");
    }
    let Some(_role) = shared
        .maintenance()
        .try_lock_role(Role::Daemon)
        .map_err(failed("cannot lock the store"))?
    else {
        let holder = shared
            .read_state(HOLDER)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|| "another process".into());
        return Err(CliError::Failed(format!(
            "{} is already served by {holder}",
            dir.display()
        )));
    };
    let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let holder = format!("sessionctl run (pid {}, started {since})", std::process::id());
    shared
        .write_state(HOLDER, holder.as_bytes())
        .map_err(failed("cannot write to the store"))?;
    drop(shared);

    // The page answers from here on, saying what start-up is doing until it is done.
    let runtime = tokio::runtime::Runtime::new()?;
    let cancel = CancellationToken::new();
    let web = runtime.block_on(listen_early(config, &cancel))?;
    let starting = web.as_ref().map(|w| w.starting.clone());
    let report = |progress: Progress| {
        if let Some(starting) = &starting {
            starting.report(progress);
        }
    };

    // Watching before recovery: a session stored from here on is reported, not missed.
    let feed = ChangeFeed::new();
    // The session index's own feed: it follows the same watch as the worker.
    let index_feed = ChangeFeed::new();
    let (store_events, _) = tokio::sync::broadcast::channel(256);
    let watcher = watch_store(&dir, [feed.clone(), index_feed.clone()], store_events.clone());
    // Recovery needs the store to itself: wait for other sessionctl processes to finish.
    let exclusive = match Store::options().exclusive().no_wait().open(&dir) {
        Err(FsError::Busy { .. }) => {
            tracing::info!("waiting for other sessionctl processes to release the store");
            Store::options().exclusive().open(&dir)
        }
        other => other,
    }
    .map_err(failed("cannot open the store for recovery"))?;
    // One pass over the store: recovery decodes every file once, and hands each session
    // to the delivery index and, when outdated, to the migration list.
    let mut index = DeliveryIndex::new();
    let sessions = Arc::new(SessionIndex::new());
    let mut outdated = Vec::new();
    let mut read = 0usize;
    session_recovery::recover_visiting(
        &SessionStore::new(exclusive.clone(), config.decode_options()),
        |id, decoded| {
            read += 1;
            if read.is_multiple_of(500) {
                report(Progress {
                    phase: "recovering",
                    done: read,
                    total: None,
                });
            }
            index.observe(&decoded.session);
            sessions.observe(&decoded);
            if decoded.from.is_outdated() {
                outdated.push(id);
            }
        },
    )
    .map_err(|e| CliError::Failed(format!("recovery: {e}")))?;
    sessions.settle();
    drop(exclusive);

    let store = SessionStore::new(
        Store::open(&dir).map_err(failed("cannot open the store"))?,
        config.decode_options(),
    );
    if !outdated.is_empty() {
        // recover and migrate log their own summaries.
        store
            .migrate(&MigrateOptions::default().only(outdated), &|done, total| {
                report(Progress {
                    phase: "migrating",
                    done,
                    total: Some(total),
                })
            })
            .map_err(failed("migration"))?;
    }

    let watched = watcher.is_some();
    let feed = watched.then_some(feed);
    // Without a watch the index would go stale: lists read the files instead.
    let sessions = watched.then_some((sessions, index_feed));
    let served = runtime.block_on(serve(
        store,
        config,
        index,
        feed,
        sessions,
        store_events,
        web,
        cancel,
    ));
    drop(watcher);
    served
}

/// The local API's listener, bound before start-up so that the page answers during it.
struct Web {
    guard: Guard,
    starting: Arc<Starting>,
}

/// Binds `http_listen` and serves the page (and a 503 that says what start-up is doing)
/// until [`Starting::serve`] hands the listener's requests to the real router; the server
/// stops at `cancel`. `None` when the API is off, or its default port is taken.
async fn listen_early(config: &Config, cancel: &CancellationToken) -> Result<Option<Web>, CliError> {
    let Some(listen) = config.http_listen() else {
        return Ok(None);
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        // The default port taken (another daemon's page, say) must not keep this
        // daemon from capturing and delivering; a configured one must be had.
        Err(e) if config.http_listen_is_default() => {
            tracing::warn!(%listen, error = %e, "the local API and page are off: the default http_listen is taken (set http_listen to another address)");
            return Ok(None);
        }
        Err(e) => {
            return Err(CliError::Failed(format!(
                "cannot listen on {listen} (http_listen): {e}"
            )));
        }
    };
    let bound = listener.local_addr()?;
    let guard = Guard::new(listen, bound, config.http_token().map(str::to_owned));
    let starting = Starting::new(guard.clone());
    tracing::info!(url = %format!("http://{bound}/"), "local API and web page");
    let stop = cancel.clone();
    let router = crate::api::starting::router(starting.clone());
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the local API stopped");
        }
    });
    Ok(Some(Web { guard, starting }))
}

/// Starts the capture relay beside the workers when `capture_listen` and
/// `capture_forward` are set: one daemon records and delivers.
async fn start_capture(
    store: &SessionStore,
    config: &Config,
    tasks: &mut tokio::task::JoinSet<()>,
    counters: &crate::metrics::StationCounters,
    cancel: &CancellationToken,
) -> Result<(), CliError> {
    let Some(relay_config) = crate::capture::relay_config(config) else {
        return Ok(());
    };
    let listener = crate::capture::bind(&relay_config).await?;
    let recorder = Arc::new(session_capture::Recorder::new(store.clone()));
    let stats = Arc::new(session_capture::relay::RelayStats::default());
    *counters.relay.lock().unwrap_or_else(|p| p.into_inner()) = Some(stats.clone());
    tasks.spawn(session_capture::relay::relay(
        listener,
        recorder,
        relay_config,
        stats,
        cancel.clone(),
    ));
    Ok(())
}

#[allow(clippy::too_many_arguments)] // each is a piece start-up made; a struct would only rename them
/// Runs the workers (the submission worker starting from `index`, and told of changes
/// by `feed` when the directory is watched), the local API and capture, until a signal.
async fn serve(
    store: SessionStore,
    config: &Config,
    index: DeliveryIndex,
    feed: Option<ChangeFeed>,
    sessions: Option<(Arc<SessionIndex>, ChangeFeed)>,
    store_events: tokio::sync::broadcast::Sender<StoreEvent>,
    web: Option<Web>,
    cancel: CancellationToken,
) -> Result<(), CliError> {
    let signals = StopSignals::catch()?;
    let sessions = sessions.map(|(sessions, changes)| {
        tokio::spawn(keep_index(
            store.clone(),
            sessions.clone(),
            changes,
            cancel.clone(),
        ));
        sessions
    });
    let (events, _) = tokio::sync::broadcast::channel(1024);
    let counters = Arc::new(crate::metrics::StationCounters::default());
    tokio::spawn(crate::metrics::count_deliveries(
        counters.clone(),
        events.subscribe(),
    ));
    let clock = Arc::new(SystemClock);
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(url) = config.alert_webhook() {
        tasks.spawn(crate::alerts::run(
            url.to_owned(),
            store.clone(),
            sessions.clone(),
            config.status_options(),
            cancel.clone(),
        ));
    }
    // Settings changed through the local API reach the cleanup worker through this.
    let (cleanup_settings, cleanup_config) = tokio::sync::watch::channel(config.cleanup());
    tasks.spawn(run_cleanup(
        store.clone(),
        cleanup_config,
        events.clone(),
        cancel.clone(),
    ));
    tasks.spawn(keep_clock_record(store.clone(), cancel.clone()));
    let submit = config.submit();
    let grace = submit.shutdown_grace;
    match config.endpoint() {
        Some(endpoint) => {
            let transport = config.transport(endpoint)?;
            let mut worker = SubmissionWorker::new(store.clone(), transport, submit, clock, events.clone())
                .map_err(|e| CliError::Failed(format!("submission: {e}")))?;
            worker.seed(index);
            if let Some(feed) = &feed {
                worker = worker.with_feed(feed);
            }
            tracing::info!(endpoint = %session_workers::submit::redacted_url(endpoint), "submission worker started");
            tasks.spawn(worker.run(cancel.clone()));
        }
        None => tracing::info!("submission is off: no endpoint configured (set HL7_ENDPOINT or `endpoint`)"),
    }
    start_capture(&store, config, &mut tasks, &counters, &cancel).await?;
    if let Some(web) = web {
        let state = Arc::new(ApiState {
            store: store.clone(),
            config: tokio::sync::RwLock::new(config.clone()),
            cleanup: cleanup_settings,
            events: store_events,
            guard: web.guard,
            stopping: cancel.clone(),
            index: sessions,
            counters,
        });
        web.starting.serve(crate::api::router(state));
    }
    tracing::info!(dir = %store.fs().dir().display(), "sessionctl run: serving; SIGINT or SIGTERM stops");
    signals.wait().await;
    tracing::info!("stopping: finishing in-flight work");
    cancel.cancel();
    let drained = tokio::time::timeout(grace + Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("workers did not stop in time; unfinished submissions resume at the next start");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Watches the store directory: a session file stored (by the capture tool, an
/// operator's `put`, a worker) starts a submission scan at once and tells the page; a
/// session file gone tells the page. Without a watch (inotify limits, an unusual
/// filesystem), the periodic scan remains and the page refreshes on its own actions.
fn watch_store(
    dir: &std::path::Path,
    feeds: [ChangeFeed; 2],
    events: tokio::sync::broadcast::Sender<StoreEvent>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else {
            // The watch lost events (an overflowed queue): read everything again.
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
            let stored = std::fs::symlink_metadata(path).is_ok();
            feeds.iter().for_each(|feed| feed.changed(id.clone()));
            let _ = events.send(StoreEvent {
                kind: if stored { "stored" } else { "deleted" },
                id: id.to_string(),
            });
        }
    };
    let watched = notify::recommended_watcher(handler)
        .and_then(|mut w| w.watch(dir, notify::RecursiveMode::NonRecursive).map(|()| w));
    match watched {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the store; relying on the periodic scan");
            None
        }
    }
}

/// Keeps the session index current: each change the watch reports re-reads that one
/// file; a watch that may have missed changes rebuilds it from the files.
async fn keep_index(
    store: SessionStore,
    sessions: Arc<SessionIndex>,
    changes: ChangeFeed,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = changes.notified() => {}
        }
        let (ids, rescan) = changes.take();
        let (store, sessions) = (store.clone(), sessions.clone());
        let applied = tokio::task::spawn_blocking(move || {
            if rescan {
                if let Err(e) = sessions.rebuild(&store) {
                    tracing::warn!(error = %e, "could not rebuild the session index");
                }
            } else {
                ids.iter().for_each(|id| sessions.refresh(&store, id));
            }
        })
        .await;
        if applied.is_err() {
            tracing::error!("the session index stopped following changes");
            return;
        }
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made: made before a daemon says it
/// is serving, so that a signal sent on that word stops it cleanly instead of killing it.
pub(crate) struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Starts catching SIGINT and SIGTERM (inside a tokio runtime).
    pub(crate) fn catch() -> Result<Self, CliError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for either.
    pub(crate) async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Takes a clock reading into the store's record now and every ten minutes, so that a
/// jump of the wall clock is measured against a recent reading of this boot, and a
/// reboot's bound starts from a recent time. A suspicion it reveals is logged once.
async fn keep_clock_record(store: SessionStore, cancel: CancellationToken) {
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
