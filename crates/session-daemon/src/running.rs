//! The workers, the clock record and the capture relay, running until stopped.

use std::sync::Arc;
use std::time::Duration;

use session_capture::Recorder;
use session_capture::relay::{RelayConfig, RelayStats};
use session_fs::HeldLock;
use session_store::SessionStore;
use session_workers::cleanup::{CleanupConfig, run_cleanup};
use session_workers::submit::{ChangeFeed, DeliveryIndex, SubmissionWorker, SubmitConfig, Transport};
use session_workers::{SystemClock, WorkerEvent};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::claim::{Claimed, DaemonError};

/// Delivery to the REST API: the transport and how to use it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Submission<T> {
    /// The HTTP side (`HttpTransport` in production).
    pub transport: T,
    /// Concurrency, backoff, timeouts.
    pub config: SubmitConfig,
}

impl<T> Submission<T> {
    /// Delivery through `transport` with `config`.
    pub fn new(transport: T, config: SubmitConfig) -> Self {
        Submission { transport, config }
    }
}

/// What the daemon runs beside cleanup, which always runs.
#[non_exhaustive]
pub struct Services<T> {
    /// Cleanup's settings; a sender kept by the caller changes them while it runs.
    pub cleanup: watch::Receiver<CleanupConfig>,
    /// Delivery, when an endpoint is configured.
    pub submission: Option<Submission<T>>,
    /// The capture relay, on a listener the caller bound (so that a taken address is
    /// the caller's error to word).
    pub relay: Option<(tokio::net::TcpListener, RelayConfig)>,
    /// Where the workers report what they do (delivery outcomes, cleanups).
    pub events: broadcast::Sender<WorkerEvent>,
}

impl<T> Default for Services<T> {
    /// Cleanup with its default settings; no submission, no relay.
    fn default() -> Self {
        Services {
            cleanup: watch::channel(CleanupConfig::default()).1,
            submission: None,
            relay: None,
            events: broadcast::channel(1024).0,
        }
    }
}

impl<T> Services<T> {
    /// Cleanup following `cleanup`, workers reporting to `events`.
    pub fn new(cleanup: watch::Receiver<CleanupConfig>, events: broadcast::Sender<WorkerEvent>) -> Self {
        Services {
            cleanup,
            submission: None,
            relay: None,
            events,
        }
    }

    /// With delivery.
    pub fn submission(mut self, submission: Submission<T>) -> Self {
        self.submission = Some(submission);
        self
    }

    /// With the capture relay.
    pub fn relay(mut self, listener: tokio::net::TcpListener, config: RelayConfig) -> Self {
        self.relay = Some((listener, config));
        self
    }
}

/// The running daemon: its tasks, and the role it holds until stopped.
pub struct Running {
    tasks: tokio::task::JoinSet<()>,
    cancel: CancellationToken,
    relay: Option<Arc<RelayStats>>,
    _role: Box<dyn HeldLock>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl Claimed {
    /// Starts cleanup, the clock record, submission (seeded with `delivery`, and told of
    /// changes by `feed` when the directory is watched) and the relay, inside a tokio
    /// runtime. They run until [`Running::stop`]; the daemon role is held until then.
    pub fn start<T: Transport>(
        self,
        store: &SessionStore,
        delivery: DeliveryIndex,
        feed: Option<&ChangeFeed>,
        services: Services<T>,
    ) -> Result<Running, DaemonError> {
        let cancel = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(run_cleanup(
            store.clone(),
            services.cleanup,
            services.events.clone(),
            cancel.clone(),
        ));
        tasks.spawn(crate::clock_record::keep_clock_record(
            store.clone(),
            cancel.clone(),
        ));
        if let Some(Submission { transport, config }) = services.submission {
            let mut worker = SubmissionWorker::new(
                store.clone(),
                transport,
                config,
                Arc::new(SystemClock),
                services.events.clone(),
            )
            .map_err(DaemonError::Submission)?;
            worker.seed(delivery);
            if let Some(feed) = feed {
                worker = worker.with_feed(feed);
            }
            tasks.spawn(worker.run(cancel.clone()));
        }
        let relay = services.relay.map(|(listener, config)| {
            let stats = Arc::new(RelayStats::default());
            tasks.spawn(session_capture::relay::relay(
                listener,
                Arc::new(Recorder::new(store.clone())),
                config,
                stats.clone(),
                cancel.clone(),
            ));
            stats
        });
        Ok(Running {
            tasks,
            cancel,
            relay,
            _role: self.role,
        })
    }
}

impl Running {
    /// The relay's counters, when it runs.
    pub fn relay_stats(&self) -> Option<Arc<RelayStats>> {
        self.relay.clone()
    }

    /// Cancelled when the daemon stops: for the caller's own tasks (a page, alerts).
    pub fn stopping(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Runs `task` with the daemon's, stopped and awaited with them.
    pub fn spawn(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// Stops everything: in-flight deliveries get `grace` (plus 5 s) to finish, open
    /// captures are stored as interrupted. `false` when some task did not stop in time
    /// (unfinished submissions resume at the next start).
    pub async fn stop(mut self, grace: Duration) -> bool {
        self.cancel.cancel();
        let drained = tokio::time::timeout(grace + Duration::from_secs(5), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        drained.is_ok()
    }
}
