//! The submission worker: completed sessions to the REST API, exactly as reliable as
//! the store.

mod attempt;
mod backoff;
mod index;
mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use session_fs::maintenance::Role;
use session_fs::{FsError, HeldLock};
use session_model::SessionId;
use session_store::{SessionStore, StoreError, StoredEntry, refused};
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use backoff::Backoff;
pub use index::{ChangeFeed, DeliveryIndex};
#[cfg(feature = "http")]
pub use transport::HttpTransport;
pub use transport::{
    HttpReply, ReplyFuture, Secret, SubmissionBody, SubmissionRequest, Transport, TransportError,
    is_valid_header_value, redacted_url,
};

use attempt::Attempt;

use crate::clock::Clock;
use crate::events::WorkerEvent;

/// How the submission worker behaves.
///
/// ```
/// use std::time::Duration;
/// let config = session_workers::submit::SubmitConfig::default()
///     .concurrency(4)
///     .request_timeout(Duration::from_secs(10))
///     .performer(Some("lab-1".into()));
/// assert_eq!(config.concurrency, 4);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubmitConfig {
    /// Requests in flight at most (1 to 10; default 2).
    pub concurrency: usize,
    /// Per-request timeout (default 30 s).
    pub request_timeout: Duration,
    /// Attempts before giving up (the app allowed 1 to 10; default 3).
    pub max_attempts: u32,
    /// Delay between retries.
    pub backoff: Backoff,
    /// Time between scans for due sessions (the app: 1 to 60 minutes; default 5).
    pub scan_interval: Duration,
    /// After cancellation, how long in-flight requests may still finish (default 10 s).
    pub shutdown_grace: Duration,
    /// Added to each body as `performer`, when set.
    pub performer: Option<String>,
    /// With a [`ChangeFeed`] attached, how often the worker still rebuilds what it knows
    /// from every file, in case a change was missed (default 1 hour). Without a feed,
    /// every pass reads every file.
    pub rescan_interval: Duration,
    /// Deliver complete sessions the LIS did not wholly receive (`lisClosed`), with
    /// their interruption in the body, so the archive knows (default true).
    pub deliver_lis_closed: bool,
}

impl Default for SubmitConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            request_timeout: Duration::from_secs(30),
            max_attempts: 3,
            backoff: Backoff::default(),
            scan_interval: Duration::from_secs(5 * 60),
            shutdown_grace: Duration::from_secs(10),
            performer: None,
            rescan_interval: Duration::from_secs(3600),
            deliver_lis_closed: true,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PassReport {
    /// Delivered.
    pub submitted: usize,
    /// Failed for good.
    pub failed: usize,
    /// Failed, retry scheduled.
    pub retrying: usize,
    /// Left `inFlight` by a shutdown; resumed at the next start.
    pub interrupted: usize,
    /// When a pending session falls due next (epoch ms): the earliest `nextAttemptAt`
    /// of those this pass left waiting, and of the retries it scheduled.
    pub next_due: Option<u64>,
}

/// Why the worker cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// Another process (a daemon, or another `submit`) is submitting from this store.
    #[error("another process is already submitting from this store")]
    AlreadyRunning,
    /// The filesystem failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking task failed.
    #[error("worker task failed: {0}")]
    Task(String),
}

impl SubmitConfig {
    /// See [`SubmitConfig::rescan_interval`].
    pub fn rescan_interval(mut self, every: Duration) -> Self {
        self.rescan_interval = every;
        self
    }

    /// Whether to deliver complete sessions the LIS did not wholly receive.
    pub fn deliver_lis_closed(mut self, yes: bool) -> Self {
        self.deliver_lis_closed = yes;
        self
    }

    /// Requests in flight at most (clamped to 1 to 10 when used).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }
    /// Per-request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// Attempts before giving up (clamped to 1 to 10 when used).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }
    /// Delay between retries.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
    /// Time between scans (at least a second when used).
    pub fn scan_interval(mut self, every: Duration) -> Self {
        self.scan_interval = every;
        self
    }
    /// After cancellation, how long in-flight requests may still finish.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }
    /// Added to each body as `performer`.
    pub fn performer(mut self, performer: Option<String>) -> Self {
        self.performer = performer;
        self
    }
}

/// Rebuilds the index from every live session that decodes (damaged files are
/// recovery's business), one file at a time: nothing but the index stays in memory.
fn rebuild(store: &SessionStore) -> Result<DeliveryIndex, StoreError> {
    let mut index = DeliveryIndex::new();
    for entry in store.entries()? {
        match entry {
            StoredEntry::Valid(decoded) => index.observe(&decoded.session),
            // Newer versions are not ours to send; damaged files are recovery's. An
            // unreadable one is named, and the pass goes on with the rest.
            StoredEntry::Damaged {
                id,
                error: error @ StoreError::Fs(_),
            } => tracing::warn!(file = %id.file_name(), %error, "submission skipped a file it cannot read"),
            _ => {}
        }
    }
    Ok(index)
}

/// Reads `ids` again into the index.
fn reobserve(store: &SessionStore, index: &mut DeliveryIndex, ids: &[SessionId]) {
    for id in ids {
        match store.load(id) {
            Ok(Some(decoded)) => index.observe(&decoded.session),
            Ok(None) => index.forget(id),
            Err(e) => {
                tracing::debug!(id = %id, error = %e, "a changed session does not decode; not sending it");
                index.forget(id);
            }
        }
    }
}

/// Makes `inFlight` sessions pending again, keeping their attempt counts and keys so
/// that the resend is recognisable. Only the holder of the submitter role, between its
/// passes, may call this: then no request is under way for any of them.
fn resume_orphans(store: &SessionStore, index: &mut DeliveryIndex) {
    for id in index.in_flight() {
        match store.update(&id, |s| s.submission.resume_interrupted().map_err(refused(&id))) {
            Ok(((), updated)) => {
                index.observe(&updated);
                tracing::info!(id = %id, "resumed an interrupted submission");
            }
            Err(e) => {
                tracing::warn!(id = %id, error = %e, "could not resume an interrupted submission");
                // Read again at the next pass.
                index.forget(&id);
            }
        }
    }
}

/// The worker's memory between passes.
struct Known {
    index: DeliveryIndex,
    /// When the index was last rebuilt from every file; `None`: never.
    rebuilt_at: Option<std::time::Instant>,
}

/// Submits completed sessions; one per store at a time (it holds a role lock).
pub struct SubmissionWorker<T: Transport> {
    store: SessionStore,
    transport: Arc<T>,
    config: SubmitConfig,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<WorkerEvent>,
    trigger: Arc<Notify>,
    known: Arc<std::sync::Mutex<Known>>,
    changes: Arc<std::sync::Mutex<index::ChangeQueue>>,
    _role: Box<dyn HeldLock>,
}

enum AttemptOutcome {
    Submitted,
    /// Retry scheduled at this time, epoch ms.
    Retrying(u64),
    Failed,
    Skipped,
    Interrupted,
}

impl<T: Transport> SubmissionWorker<T> {
    /// Takes the store's submitter role. Sessions a crash left `inFlight` are sent again
    /// by the first pass (with their attempt counts and idempotency keys).
    pub fn new(
        store: SessionStore,
        transport: T,
        config: SubmitConfig,
        clock: Arc<dyn Clock>,
        events: broadcast::Sender<WorkerEvent>,
    ) -> Result<Self, SubmitError> {
        let role = store
            .fs()
            .maintenance()
            .try_lock_role(Role::Submitter)?
            .ok_or(SubmitError::AlreadyRunning)?;
        Ok(Self {
            store,
            transport: Arc::new(transport),
            config,
            clock,
            events,
            trigger: Arc::new(Notify::new()),
            known: Arc::new(std::sync::Mutex::new(Known {
                index: DeliveryIndex::new(),
                rebuilt_at: None,
            })),
            changes: Arc::default(),
            _role: role,
        })
    }

    /// Starts from `index`, built from every file by the caller (start-up recovery
    /// reads every file anyway), instead of reading them all again at the first pass.
    pub fn seed(&self, index: DeliveryIndex) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        *known = Known {
            index,
            rebuilt_at: Some(std::time::Instant::now()),
        };
    }

    /// Attaches `feed`, made before the worker (so that a directory watch can start
    /// before start-up recovery and miss nothing): see [`Self::change_feed`].
    pub fn with_feed(mut self, feed: &ChangeFeed) -> Self {
        self.changes = feed.queue.clone();
        self.trigger = feed.trigger.clone();
        self.changes.lock().unwrap_or_else(|p| p.into_inner()).attached = true;
        self
    }

    /// A feed to report changed sessions through. Once one is attached, a pass reads
    /// only the sessions reported since the last one (plus a rebuild from every file
    /// each `rescan_interval`); without one, every pass reads every file.
    pub fn change_feed(&self) -> ChangeFeed {
        self.changes.lock().unwrap_or_else(|p| p.into_inner()).attached = true;
        ChangeFeed {
            queue: self.changes.clone(),
            trigger: self.trigger.clone(),
        }
    }

    /// A handle that starts a scan at once (a session was just completed).
    pub fn trigger(&self) -> Arc<Notify> {
        self.trigger.clone()
    }

    /// Brings the index up to date (reading what changed, or every file when a change
    /// may have been missed), resumes orphaned `inFlight` sessions, and returns what is
    /// due at `now` and when the next waiting one falls due. Off the async threads.
    async fn due_off_thread(&self, now: u64) -> Result<(Vec<SessionId>, Option<u64>), SubmitError> {
        let (store, known, changes) = (self.store.clone(), self.known.clone(), self.changes.clone());
        let rescan_interval = self.config.rescan_interval;
        let cap_ms = self.config.backoff.cap.as_millis() as u64;
        tokio::task::spawn_blocking(move || {
            let (changed, rescan, attached) = {
                let mut queue = changes.lock().unwrap_or_else(|p| p.into_inner());
                let (ids, rescan) = queue.take();
                (ids, rescan, queue.attached)
            };
            let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
            let stale = known.rebuilt_at.is_none_or(|at| at.elapsed() >= rescan_interval);
            if !attached || rescan || stale {
                known.index = rebuild(&store)?;
                known.rebuilt_at = Some(std::time::Instant::now());
            } else {
                reobserve(&store, &mut known.index, &changed);
            }
            resume_orphans(&store, &mut known.index);
            Ok(known.index.due(now, cap_ms))
        })
        .await
        .map_err(|e| SubmitError::Task(e.to_string()))?
    }

    /// Reads the sessions a pass attempted again, so the index holds their outcomes.
    async fn reobserve_off_thread(&self, ids: Vec<SessionId>) {
        let (store, known) = (self.store.clone(), self.known.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
            reobserve(&store, &mut known.index, &ids);
        })
        .await;
    }

    /// One pass: every complete, pending, due session, at most `concurrency` at a time.
    /// On cancellation, stops taking work and gives in-flight requests
    /// `shutdown_grace` to finish; the rest stay `inFlight` for the next start.
    pub async fn run_pass(&self, cancel: &CancellationToken) -> Result<PassReport, SubmitError> {
        let now = self.clock.now_ms();
        // Between passes no request of ours is under way, and no other process submits
        // (the role lock): any inFlight session is an orphan of a failed status write.
        let (due, waiting_next) = self.due_off_thread(now).await?;
        // When the loop should wake next: the waiting sessions now, the retries this pass
        // schedules as they are counted.
        let mut report = PassReport {
            next_due: waiting_next,
            ..PassReport::default()
        };
        let attempted = due.clone();
        let semaphore = Arc::new(Semaphore::new(self.config.concurrency.clamp(1, 10)));
        let mut tasks: JoinSet<(SessionId, AttemptOutcome)> = JoinSet::new();
        let mut in_flight_ids: HashMap<tokio::task::Id, SessionId> = HashMap::new();
        let total = due.len();
        for (started, id) in due.into_iter().enumerate() {
            let permit = tokio::select! {
                _ = cancel.cancelled() => break,
                permit = semaphore.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let attempt = Attempt {
                store: self.store.clone(),
                transport: self.transport.clone(),
                config: self.config.clone(),
                clock: self.clock.clone(),
                events: self.events.clone(),
                id: id.clone(),
            };
            let handle = tasks.spawn(async move {
                let outcome = attempt.run().await;
                drop(permit);
                (attempt.id, outcome)
            });
            in_flight_ids.insert(handle.id(), id);
            let in_flight = self.config.concurrency.clamp(1, 10) - semaphore.available_permits();
            let _ = self.events.send(WorkerEvent::Progress {
                queued: total - started - 1,
                in_flight,
            });
            // Collect what already finished, so the join set does not grow.
            while let Some(done) = tasks.try_join_next_with_id() {
                Self::count(&mut report, &mut in_flight_ids, done);
            }
        }
        let drain = async {
            while let Some(done) = tasks.join_next_with_id().await {
                Self::count(&mut report, &mut in_flight_ids, done);
            }
        };
        tokio::select! {
            _ = drain => {}
            _ = async {
                cancel.cancelled().await;
                tokio::time::sleep(self.config.shutdown_grace).await;
            } => {
                // The grace period is over: whatever is still in flight stays inFlight on
                // disk, and is resumed (same key) at the next start.
                tasks.abort_all();
                report.interrupted += in_flight_ids.len();
                for id in in_flight_ids.values() {
                    tracing::warn!(id = %id, "shutdown interrupted a submission; it resumes at the next start");
                }
            }
        }
        if !attempted.is_empty() {
            self.reobserve_off_thread(attempted).await;
        }
        Ok(report)
    }

    fn count(
        report: &mut PassReport,
        ids: &mut HashMap<tokio::task::Id, SessionId>,
        done: Result<(tokio::task::Id, (SessionId, AttemptOutcome)), tokio::task::JoinError>,
    ) {
        match done {
            Ok((task, (_, outcome))) => {
                ids.remove(&task);
                match outcome {
                    AttemptOutcome::Submitted => report.submitted += 1,
                    AttemptOutcome::Retrying(at) => {
                        report.retrying += 1;
                        report.next_due = Some(report.next_due.map_or(at, |due| due.min(at)));
                    }
                    AttemptOutcome::Failed => report.failed += 1,
                    AttemptOutcome::Interrupted => report.interrupted += 1,
                    AttemptOutcome::Skipped => {}
                }
            }
            Err(e) => {
                ids.remove(&e.id());
                if !e.is_cancelled() {
                    tracing::error!(error = %e, "a submission task failed");
                }
            }
        }
    }

    /// Scans at once, then every `scan_interval`, whenever triggered, and when a retry
    /// falls due, until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        // tokio panics on a zero period.
        let mut interval = tokio::time::interval(self.config.scan_interval.max(Duration::from_secs(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut next_due: Option<u64> = None;
        loop {
            let until_due = next_due.map(|at| Duration::from_millis(at.saturating_sub(self.clock.now_ms())));
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = interval.tick() => {}
                _ = self.trigger.notified() => {}
                _ = async { tokio::time::sleep(until_due.unwrap_or(Duration::MAX)).await }, if until_due.is_some() => {}
            }
            match self.run_pass(&cancel).await {
                Ok(report) => {
                    next_due = report.next_due;
                    log_pass(&report);
                }
                Err(e) => {
                    next_due = None;
                    tracing::error!(error = %e, "submission pass failed; retrying at the next scan");
                }
            }
        }
    }
}

/// Logs what a pass did: at info when it attempted anything, at debug when nothing
/// was due (a quiet daemon's log stays quiet).
fn log_pass(report: &PassReport) {
    if report.submitted + report.retrying + report.failed + report.interrupted > 0 {
        tracing::info!(
            submitted = report.submitted,
            retrying = report.retrying,
            failed = report.failed,
            interrupted = report.interrupted,
            "submission pass finished"
        );
    } else {
        tracing::debug!("submission pass finished: nothing was due");
    }
}

#[cfg(test)]
mod tests;
