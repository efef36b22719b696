//! `run`: the daemon a lab runs.

use std::sync::Arc;

use session_daemon::metrics::StationCounters;
use session_daemon::{AlertWebhook, Claimed, Running, Services, StopSignals, StoreWatch, Submission};
use session_store::SessionStore;
use session_workers::submit::ChangeFeed;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::CliError;
use session_api::security::Guard;
use session_api::starting::Starting;
use session_api::{ApiState, StoreEvent};
use session_station::SessionIndex;

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

/// Takes the daemon role, recovers, migrates, then runs the workers until SIGINT or
/// SIGTERM (`session_daemon` in its order, with the page, the session index and the
/// alerts around it). Every start-up failure is one line and exit 1.
pub(crate) fn run(config: &Config) -> Result<(), CliError> {
    let dir = crate::config::store_dir(config)?;
    if let Some(listen) = config.settings().http_listen.as_deref()
        && !session_api::security::is_loopback(listen)
        && config.settings().http_token.is_none()
    {
        return Err(CliError::Failed(format!(
            "http_listen = {listen} is reachable from other machines: set http_token \
             (HL7_HTTP_TOKEN) so that only those who hold it see patient data"
        )));
    }
    let claimed =
        Claimed::claim(&dir, config.settings().decode_options(), "sessionctl run").map_err(failed)?;

    // The page answers from here on, saying what start-up is doing until it is done.
    let runtime = tokio::runtime::Runtime::new()?;
    let cancel = CancellationToken::new();
    let web = runtime.block_on(listen_early(config, &cancel))?;
    let starting = web.as_ref().map(|w| w.starting.clone());
    let report = |progress: session_daemon::Progress| {
        if let Some(starting) = &starting {
            starting.report(progress.into());
        }
    };

    // The worker's feed and the session index's follow the same watch.
    let feed = ChangeFeed::new();
    let index_feed = ChangeFeed::new();
    let (store_events, _) = tokio::sync::broadcast::channel(256);
    let page_events = store_events.clone();
    let watch = StoreWatch::start(&dir, vec![feed.clone(), index_feed.clone()], move |id, stored| {
        let _ = page_events.send(StoreEvent::of(id.to_string(), stored));
    });
    let sessions = Arc::new(SessionIndex::new());
    let recovered = claimed
        .recover(|_, decoded| sessions.observe(decoded), report)
        .map_err(failed)?;
    sessions.settle();
    give_back_startup_memory();
    let store = claimed.migrate(recovered.outdated, report).map_err(failed)?;

    let watched = watch.is_some();
    // Without a watch the index would go stale: lists read the files instead.
    let sessions = watched.then_some((sessions, index_feed));
    let feed = watched.then_some(feed);
    let served = runtime.block_on(async {
        let signals = StopSignals::catch()?;
        let started = start(claimed, &store, config, recovered.delivery, feed.as_ref()).await?;
        serve(
            started,
            signals,
            store,
            config,
            sessions,
            store_events,
            web,
            cancel,
        )
        .await
    });
    drop(watch);
    served
}

/// Returns to the system the memory start-up's pass freed. The pass decodes every file
/// on the reading threads, and each thread's allocator arena keeps the pages its
/// sessions were freed into, among the index rows made there: about 4 MB on 100,000
/// sessions, which the daemon would otherwise hold for good (its target is 64 MiB).
fn give_back_startup_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: `malloc_trim` only releases free memory; it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The daemon's own pieces the page needs once it serves.
struct Started {
    running: Running,
    cleanup: tokio::sync::watch::Sender<session_workers::cleanup::CleanupConfig>,
    counters: Arc<StationCounters>,
}

/// Starts the workers and, when configured, delivery and the capture relay.
async fn start(
    claimed: Claimed,
    store: &SessionStore,
    config: &Config,
    delivery: session_workers::submit::DeliveryIndex,
    feed: Option<&ChangeFeed>,
) -> Result<Started, CliError> {
    let (cleanup, cleanup_config) = tokio::sync::watch::channel(config.settings().cleanup());
    let (events, _) = tokio::sync::broadcast::channel(1024);
    let counters = Arc::new(StationCounters::default());
    tokio::spawn(session_daemon::metrics::count_deliveries(
        counters.clone(),
        events.subscribe(),
    ));
    let mut services = Services::new(cleanup_config, events);
    match config.settings().endpoint.as_deref() {
        Some(endpoint) => {
            services = services.submission(Submission::new(
                crate::config::transport(config, endpoint)?,
                config.settings().submit(),
            ));
            tracing::info!(endpoint = %session_workers::submit::redacted_url(endpoint), "submission worker started");
        }
        None => tracing::info!("submission is off: no endpoint configured (set HL7_ENDPOINT or `endpoint`)"),
    }
    if let Some(relay_config) = crate::capture::relay_config(config) {
        let listener = crate::capture::bind(&relay_config).await?;
        services = services.relay(listener, relay_config);
    }
    let running = claimed.start(store, delivery, feed, services).map_err(failed)?;
    *counters.relay.lock().unwrap_or_else(|p| p.into_inner()) = running.relay_stats();
    Ok(Started {
        running,
        cleanup,
        counters,
    })
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
    let Some(listen) = config.settings().http_listen.as_deref() else {
        return Ok(None);
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        // The default port taken (another daemon's page, say) must not keep this
        // daemon from capturing and delivering; a configured one must be had.
        Err(e) if crate::config::http_listen_is_default(config) => {
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
    let guard = Guard::new(
        listen,
        bound,
        config
            .settings()
            .http_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
    );
    let starting = Starting::new(guard.clone());
    tracing::info!(url = %format!("http://{bound}/"), "local API and web page");
    let stop = cancel.clone();
    let router = session_api::starting::router(starting.clone());
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

#[allow(clippy::too_many_arguments)] // each is a piece start-up made; a struct would only rename them
/// Serves until a signal: the session index kept current, the alerts, the page.
async fn serve(
    started: Started,
    signals: StopSignals,
    store: SessionStore,
    config: &Config,
    sessions: Option<(Arc<SessionIndex>, ChangeFeed)>,
    store_events: tokio::sync::broadcast::Sender<StoreEvent>,
    web: Option<Web>,
    cancel: CancellationToken,
) -> Result<(), CliError> {
    let Started {
        mut running,
        cleanup,
        counters,
    } = started;
    let stopping = running.stopping();
    let sessions = sessions.map(|(sessions, changes)| {
        running.spawn(session_daemon::keep_index(
            store.clone(),
            sessions.clone(),
            changes,
            stopping.clone(),
        ));
        sessions
    });
    if let Some(url) = config.settings().alert_webhook.as_ref().map(|u| u.expose()) {
        let webhook = AlertWebhook {
            url: url.to_owned(),
            // The body names the station; the library reads no file of its own.
            station: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
            store: store.clone(),
            index: sessions.clone(),
            options: session_api::status_options(config),
            check_every: std::time::Duration::from_secs(5),
        };
        running.spawn(webhook.run(stopping.clone()));
    }
    if let Some(web) = web {
        let mut state = ApiState::new(store.clone(), config.clone(), web.guard)
            .with_cleanup(cleanup)
            .with_events(store_events)
            .with_counters(counters)
            .with_settings_file(Arc::new(crate::config::SettingsFileWriter))
            .stopping_on(stopping.clone());
        if let Some(sessions) = sessions {
            state = state.with_index(sessions);
        }
        web.starting.serve(session_api::router(Arc::new(state)));
    }
    tracing::info!(dir = %store.fs().dir().display(), "sessionctl run: serving; SIGINT or SIGTERM stops");
    signals.wait().await;
    tracing::info!("stopping: finishing in-flight work");
    cancel.cancel();
    if !running.stop(config.settings().submit().shutdown_grace).await {
        tracing::warn!("workers did not stop in time; unfinished submissions resume at the next start");
    }
    tracing::info!("stopped");
    Ok(())
}
