//! `run`: the daemon a lab runs.

use std::sync::Arc;
use std::time::Duration;

use session_fs::{FsError, Store};
use session_migrate::MigrateOptions;
use session_workers::SystemClock;
use session_workers::cleanup::run_cleanup;
use session_workers::submit::{HttpTransport, SubmissionWorker};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::CliError;

const ROLE: &str = "daemon";
const HOLDER: &str = "daemon.holder";

fn failed(context: &str) -> impl FnOnce(FsError) -> CliError + '_ {
    move |e| CliError::Failed(format!("{context}: {e}"))
}

/// Takes the daemon role, recovers, migrates, then runs the workers until SIGINT or
/// SIGTERM. Every start-up failure is one line and exit 1.
pub fn run(config: &Config) -> Result<(), CliError> {
    let dir = config.dir()?;
    let shared = Store::open(&dir).map_err(failed("cannot open the store"))?;
    if let Some(was) = shared.secure_dir().map_err(failed("cannot secure the store"))? {
        tracing::warn!(dir = %dir.display(), was = format!("{was:o}"), "the store directory was open to others; now 0700");
    }
    let Some(_role) = shared
        .try_lock_role(ROLE)
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

    // Recovery needs the store to itself: wait for other sessionctl processes to finish.
    let exclusive = match Store::options().exclusive().no_wait().open(&dir) {
        Err(FsError::Busy { .. }) => {
            tracing::info!("waiting for other sessionctl processes to release the store");
            Store::options().exclusive().open(&dir)
        }
        other => other,
    }
    .map_err(failed("cannot open the store for recovery"))?;
    // recover and migrate log their own summaries.
    session_recovery::recover(&exclusive).map_err(|e| CliError::Failed(format!("recovery: {e}")))?;
    drop(exclusive);

    let store = Store::open(&dir).map_err(failed("cannot open the store"))?;
    let options = MigrateOptions {
        decode: config.decode_options(),
        ..MigrateOptions::default()
    };
    session_migrate::migrate(&store, &options, &|_, _| {}).map_err(failed("migration"))?;

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(serve(store, config))
}

async fn serve(store: Store, config: &Config) -> Result<(), CliError> {
    let cancel = CancellationToken::new();
    let (events, _) = tokio::sync::broadcast::channel(256);
    let clock = Arc::new(SystemClock);
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(run_cleanup(
        store.clone(),
        config.cleanup(),
        clock.clone(),
        events.clone(),
        cancel.clone(),
    ));
    let submit = config.submit();
    let grace = submit.shutdown_grace;
    // Kept alive until shutdown: dropping it stops the watch.
    let mut watcher = None;
    match config.endpoint() {
        Some(endpoint) => {
            let transport = HttpTransport::new(endpoint, config.authorization(), submit.request_timeout)
                .map_err(|e| CliError::BadInput(format!("endpoint: {e}")))?;
            let worker = SubmissionWorker::new(store.clone(), transport, submit, clock, events.clone())
                .map_err(|e| CliError::Failed(format!("submission: {e}")))?;
            watcher = watch_for_new_sessions(store.dir(), worker.trigger());
            tracing::info!(endpoint = %session_workers::submit::redacted_url(endpoint), "submission worker started");
            tasks.spawn(worker.run(cancel.clone()));
        }
        None => tracing::info!("submission is off: no endpoint configured (set HL7_ENDPOINT or `endpoint`)"),
    }
    tracing::info!(dir = %store.dir().display(), "sessionctl run: serving; SIGINT or SIGTERM stops");
    wait_for_signal().await?;
    tracing::info!("stopping: finishing in-flight work");
    cancel.cancel();
    let drained = tokio::time::timeout(grace + Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("workers did not stop in time; unfinished submissions resume at the next start");
    }
    drop(watcher);
    tracing::info!("stopped");
    Ok(())
}

/// Starts a scan as soon as a session file appears or is replaced in the store (the
/// capture tool or an operator's `sessionctl put`), instead of at the next interval.
/// Without a watch (inotify limits, an unusual filesystem), the periodic scan remains.
fn watch_for_new_sessions(
    dir: &std::path::Path,
    trigger: Arc<tokio::sync::Notify>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let is_session = |p: &std::path::PathBuf| {
            p.file_name().is_some_and(|n| {
                matches!(
                    session_fs::layout::classify(n),
                    session_fs::layout::EntryName::Live(_)
                )
            })
        };
        if (event.kind.is_create() || event.kind.is_modify()) && event.paths.iter().any(is_session) {
            trigger.notify_one();
        }
    };
    let watched = notify::recommended_watcher(handler)
        .and_then(|mut w| w.watch(dir, notify::RecursiveMode::NonRecursive).map(|()| w));
    match watched {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the store for new sessions; relying on the periodic scan");
            None
        }
    }
}

async fn wait_for_signal() -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
