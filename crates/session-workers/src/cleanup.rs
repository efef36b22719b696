//! The retention worker: expired sessions to the trash, old trash and backups purged.

use std::time::{Duration, Instant};

use serde::Serialize;
use session_fs::maintenance::{Area, AreaEntry};
use session_fs::{FsError, Store};
use session_model::{SessionId, SubmissionStatus};
use session_store::SessionStore;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::events::WorkerEvent;

/// What the cleanup worker may do.
///
/// ```
/// let config = session_workers::cleanup::CleanupConfig::default().dry_run(true);
/// assert!(config.dry_run);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupConfig {
    /// Time between runs (the app allowed 1 to 168 hours; default 24).
    pub interval: Duration,
    /// Report what would happen; change nothing.
    pub dry_run: bool,
    /// Trash entries (and migration backups) older than this are purged (default 7 days).
    pub trash_max_age: Duration,
    /// Also trash expired sessions that were never delivered (default: keep them).
    pub delete_undelivered: bool,
    /// Run as at this time, epoch ms: an operator's statement (`cleanup --now MS`),
    /// taken as stated, so the store's clock is neither judged nor recorded. `None` (the
    /// default): the store's clock, judged first.
    pub at: Option<u64>,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(24 * 3600),
            dry_run: false,
            trash_max_age: Duration::from_secs(7 * 24 * 3600),
            delete_undelivered: false,
            at: None,
        }
    }
}

/// What one cleanup run did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupSummary {
    /// Sessions past `persistedUntil`.
    pub expired: usize,
    /// Expired sessions moved to the trash.
    pub trashed: usize,
    /// Expired sessions kept because they were never delivered.
    pub kept: usize,
    /// Trash entries and backups removed for good.
    pub purged: usize,
    /// Bytes those removals freed.
    pub bytes_freed: u64,
    /// How long the run took.
    pub duration_ms: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// When the run happened, epoch ms.
    pub at: u64,
    /// Files the run could not handle (unreadable, say): left as they were, reported;
    /// the run carried on with the rest.
    pub failures: Vec<CleanupFailure>,
    /// Set when the store's clock is suspect (see [`session_fs::clock`]): the run then
    /// purged, trashed and expired nothing, whatever the counts would have been.
    pub clock_suspect: Option<String>,
}

/// A file one cleanup run could not handle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupFailure {
    /// The file (a session's name, or an area entry such as `.trash/<name>`).
    pub file: String,
    /// What went wrong.
    pub problem: String,
}

impl CleanupConfig {
    /// Time between runs (at least a second when used).
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every;
        self
    }
    /// Report only; change nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
    /// Age after which trash entries and backups are purged.
    pub fn trash_max_age(mut self, age: Duration) -> Self {
        self.trash_max_age = age;
        self
    }
    /// Also trash expired sessions never delivered.
    pub fn delete_undelivered(mut self, yes: bool) -> Self {
        self.delete_undelivered = yes;
        self
    }
    /// Run as at `now` (epoch ms), an operator's time, taken as stated.
    pub fn at(mut self, now: u64) -> Self {
        self.at = Some(now);
        self
    }
}

/// The state file (see `Store::write_state`) holding the last real run's summary.
pub const LAST_CLEANUP: &str = "last-cleanup.json";

/// `.state/last-cleanup.json`, this crate's own on-disk format, versioned apart from
/// [`CleanupSummary`] (which may grow): `format` 1. A record without `format` (written
/// before it existed) has the same fields.
#[derive(Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CleanupRecord {
    #[serde(default = "first_format")]
    format: u32,
    at: u64,
    #[serde(default)]
    dry_run: bool,
    expired: usize,
    trashed: usize,
    kept: usize,
    purged: usize,
    #[serde(default)]
    bytes_freed: u64,
    #[serde(default)]
    duration_ms: u64,
}

fn first_format() -> u32 {
    1
}

impl From<&CleanupSummary> for CleanupRecord {
    fn from(s: &CleanupSummary) -> Self {
        CleanupRecord {
            format: 1,
            at: s.at,
            dry_run: s.dry_run,
            expired: s.expired,
            trashed: s.trashed,
            kept: s.kept,
            purged: s.purged,
            bytes_freed: s.bytes_freed,
            duration_ms: s.duration_ms,
        }
    }
}

impl CleanupSummary {
    /// Counts what happened to one session.
    fn count(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::NotExpired => {}
            Verdict::Trash => {
                self.expired += 1;
                self.trashed += 1;
            }
            Verdict::Keep => {
                self.expired += 1;
                self.kept += 1;
            }
        }
    }

    /// One file the run could not handle: logged, reported, and the run goes on.
    fn failed(&mut self, id: &SessionId, e: &FsError) {
        tracing::warn!(file = %id.file_name(), error = %e, "cleanup could not handle a file");
        self.failures.push(CleanupFailure {
            file: id.file_name(),
            problem: e.to_string(),
        });
    }
}

/// The summary of the last cleanup that was not a dry run, if any (and if its record
/// is of a format this build reads).
pub fn last_cleanup(store: &Store) -> Result<Option<CleanupSummary>, FsError> {
    let record = store
        .read_state(LAST_CLEANUP)?
        .and_then(|bytes| serde_json::from_slice::<CleanupRecord>(&bytes).ok())
        .filter(|r| r.format == 1);
    Ok(record.map(|r| CleanupSummary {
        expired: r.expired,
        trashed: r.trashed,
        kept: r.kept,
        purged: r.purged,
        bytes_freed: r.bytes_freed,
        duration_ms: r.duration_ms,
        dry_run: r.dry_run,
        at: r.at,
        failures: Vec::new(),
        clock_suspect: None,
    }))
}

/// Why a cleanup run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CleanupError {
    /// The filesystem failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

enum Verdict {
    NotExpired,
    Trash,
    Keep,
}

/// What retention does with one session's bytes, and its status (for the log).
fn verdict(
    store: &SessionStore,
    id: &SessionId,
    bytes: Option<&[u8]>,
    config: &CleanupConfig,
    now: u64,
) -> (Verdict, Option<SubmissionStatus>) {
    // Damaged files are recovery's; newer versions are never touched.
    let Some(Ok(decoded)) = bytes.map(|b| store.decode(id, b)) else {
        return (Verdict::NotExpired, None);
    };
    let session = decoded.session;
    let status = Some(session.submission.status);
    if !session.is_expired(now) {
        (Verdict::NotExpired, status)
    } else if session.submission.status.is_settled() || config.delete_undelivered {
        (Verdict::Trash, status)
    } else {
        (Verdict::Keep, status)
    }
}

/// Decides from a plain read, and returns with the verdict what the session says of
/// the time: when it was saved, and the newest MSH-7 of its messages less 14 hours (an
/// analyzer's clock, in a zone not known: no zone is further from UTC). Takes no lock.
fn judge_one(
    typed: &SessionStore,
    id: &SessionId,
    config: &CleanupConfig,
    now: u64,
) -> Result<(Verdict, u64), FsError> {
    const ZONE_SLACK_MS: u64 = 14 * 3600 * 1000;
    let seen = typed.fs().read(id)?;
    let evidence = seen
        .as_deref()
        .and_then(|b| typed.decode(id, b).ok())
        .map_or(0, |d| {
            let saved_at = session_model::Document::saved(&d.session).1;
            let made = d
                .session
                .newest_message_time()
                .map_or(0, |t| t.saturating_sub(ZONE_SLACK_MS));
            saved_at.max(made)
        });
    let (verdict, _) = verdict(typed, id, seen.as_deref(), config, now);
    Ok((verdict, evidence))
}

/// Trashes a session judged expired, judging it again under its lock, so that a status
/// change by another process in between is never overridden.
fn trash_one(
    typed: &SessionStore,
    id: &SessionId,
    config: &CleanupConfig,
    now: u64,
) -> Result<Verdict, FsError> {
    let store = typed.fs();
    let mut guard = store.lock(id)?;
    let current = guard.read()?;
    let (now_verdict, status) = verdict(typed, id, current.as_deref(), config, now);
    if matches!(now_verdict, Verdict::Trash) {
        guard.delete()?;
        if let Some(status) = status {
            tracing::info!(id = %id, %status, "expired session moved to the trash");
        }
    }
    Ok(now_verdict)
}

/// Entries of `.trash/` and backup runs older than the configured age: (area, entry).
fn purgeable(store: &Store, max_age: Duration, now: u64) -> Result<Vec<(Area, AreaEntry)>, FsError> {
    let cutoff = now.saturating_sub(max_age.as_millis() as u64);
    let hooks = store.maintenance();
    // Names the store gave these entries say when they were put there; a name the
    // store did not make is never purged.
    let mut out = Vec::new();
    for entry in hooks.list_area(&Area::Trash)? {
        if entry.moved_at.is_some_and(|t| t < cutoff) {
            out.push((Area::Trash, entry));
        }
    }
    for run in hooks.backup_runs()? {
        if run.started_at() < cutoff {
            let area = Area::Backup(run);
            for entry in hooks.list_area(&area)? {
                out.push((area.clone(), entry));
            }
        }
    }
    Ok(out)
}

/// The newest time the store's own areas record: moves aside, backup runs, the last
/// cleanup.
fn newest_area_time(store: &Store) -> Result<u64, FsError> {
    let hooks = store.maintenance();
    let trash = hooks
        .list_area(&Area::Trash)?
        .iter()
        .filter_map(|e| e.moved_at)
        .max();
    let backups = hooks.backup_runs()?.iter().map(|r| r.started_at()).max();
    let last = last_cleanup(store)?.map(|s| s.at);
    Ok([trash, backups, last].into_iter().flatten().max().unwrap_or(0))
}

/// One cleanup run, at the time of the store's clock.
///
/// It reads every session first, then judges the clock
/// ([`Store::check_clock`](session_fs::Store::check_clock)) against the newest time the
/// store recorded (saves, moves aside, backup runs, the last cleanup) and the newest
/// time a captured message says it was made (MSH-7, less 14 hours for its zone). While the clock
/// is suspect it purges, trashes and expires nothing: the summary says why
/// ([`CleanupSummary::clock_suspect`]). An operator's time ([`CleanupConfig::at`]) is
/// taken as stated instead.
pub fn cleanup_once(typed: &SessionStore, config: &CleanupConfig) -> Result<CleanupSummary, CleanupError> {
    let store = typed.fs();
    let started = Instant::now();
    let now = config.at.unwrap_or_else(|| store.clock().now_ms());
    let mut summary = CleanupSummary {
        dry_run: config.dry_run,
        at: now,
        ..CleanupSummary::default()
    };
    let mut expired = Vec::new();
    let mut evidence = newest_area_time(store)?;
    for id in store.list()? {
        // One file that cannot be read never stops the run.
        match judge_one(typed, &id, config, now) {
            Ok((verdict, said)) => {
                evidence = evidence.max(said);
                match verdict {
                    Verdict::Trash => expired.push(id),
                    other => summary.count(&other),
                }
            }
            Err(e) => summary.failed(&id, &e),
        }
    }
    let check = judge_clock(store, config, evidence)?;
    if let Some(suspicion) = check.as_ref().and_then(|c| c.record.suspect.as_ref()) {
        tracing::warn!(reason = %suspicion.reason, "the clock is suspect: cleanup purges, trashes and expires nothing until it is corroborated or confirmed (sessionctl clock confirm)");
        summary.clock_suspect = Some(suspicion.reason.clone());
        summary.expired = 0;
        summary.kept = 0;
        summary.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(summary);
    }
    // Purge first, so that what this run trashes waits its full age.
    purge(store, config, now, &mut summary)?;
    for id in expired {
        if config.dry_run {
            summary.count(&Verdict::Trash);
            continue;
        }
        // One file that cannot be moved never stops the run.
        match trash_one(typed, &id, config, now) {
            Ok(verdict) => summary.count(&verdict),
            Err(e) => summary.failed(&id, &e),
        }
    }
    if !config.dry_run {
        sweep_orphan_locks(store);
    }
    summary.duration_ms = started.elapsed().as_millis() as u64;
    if !config.dry_run {
        let record = serde_json::to_vec(&CleanupRecord::from(&summary)).unwrap_or_default();
        store.write_state(LAST_CLEANUP, &record)?;
    }
    tracing::info!(
        expired = summary.expired,
        trashed = summary.trashed,
        kept = summary.kept,
        purged = summary.purged,
        bytes_freed = summary.bytes_freed,
        duration_ms = summary.duration_ms,
        dry_run = summary.dry_run,
        "cleanup finished"
    );
    Ok(summary)
}

/// Removes the lock files of ids with no session (a crash between a deletion and its
/// lock file's removal leaves one; versions before lock files went with their
/// sessions left one per deletion). Off start-up's path: `.locks/` holds a file per
/// live session, and this lists it whole. Housekeeping: a failure is logged, never
/// fails the run.
fn sweep_orphan_locks(store: &session_fs::Store) {
    match store.maintenance().sweep_orphan_locks() {
        Ok(swept) if !swept.is_empty() => {
            tracing::info!(
                lock_files = swept.len(),
                "cleanup: removed the lock files of sessions that no longer exist"
            );
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cleanup: could not sweep the lock files of sessions that no longer exist")
        }
    }
}

/// The clock judged against `evidence` (recorded unless this is a dry run); `None` when
/// an operator stated the time, which is taken as stated.
fn judge_clock(
    store: &session_fs::Store,
    config: &CleanupConfig,
    evidence: u64,
) -> Result<Option<session_fs::ClockCheck>, CleanupError> {
    Ok(match config.at {
        Some(_) => None,
        None if config.dry_run => Some(store.judge_clock(evidence)?),
        // A record that cannot be written (a full disk: just when cleanup is wanted)
        // must not stop the run: the judgement stands without it.
        None => Some(store.check_clock(evidence).or_else(|e| {
            tracing::warn!(error = %e, "could not update the clock record; judging the clock without it");
            store.judge_clock(evidence)
        })?),
    })
}

/// Purges trash and backups older than `config.trash_max_age`, counting into `summary`.
fn purge(
    store: &session_fs::Store,
    config: &CleanupConfig,
    now: u64,
    summary: &mut CleanupSummary,
) -> Result<(), CleanupError> {
    for (area, entry) in purgeable(store, config.trash_max_age, now)? {
        if !config.dry_run
            && let Err(e) = store.maintenance().purge(&area, &entry.name)
        {
            summary.failures.push(CleanupFailure {
                file: format!("{area}/{}", entry.name.to_string_lossy()),
                problem: e.to_string(),
            });
            continue;
        }
        summary.purged += 1;
        summary.bytes_freed += entry.len;
    }
    Ok(())
}

/// Runs cleanup at once (at the time of the store's clock), then every `config.interval` (missed ticks skipped), until
/// `cancel` fires. Each summary goes to `events`. A new configuration sent through
/// `config` takes effect without a restart: the next run is one new interval later.
pub async fn run_cleanup(
    store: SessionStore,
    mut config: tokio::sync::watch::Receiver<CleanupConfig>,
    events: broadcast::Sender<WorkerEvent>,
    cancel: CancellationToken,
) {
    // tokio panics on a zero period.
    let period = |c: &CleanupConfig| c.interval.max(Duration::from_secs(1));
    let mut interval = tokio::time::interval(period(&config.borrow()));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = interval.tick() => {}
            changed = config.changed() => {
                if changed.is_ok() {
                    let every = period(&config.borrow_and_update());
                    interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    tracing::info!(interval_s = every.as_secs(), "cleanup settings changed");
                    continue;
                }
                // The sender is gone: keep the last settings.
                cancel.cancelled().await;
                break;
            }
        }
        let settings = config.borrow().clone();
        let store = store.clone();
        match tokio::task::spawn_blocking(move || cleanup_once(&store, &settings)).await {
            Ok(Ok(summary)) => {
                let _ = events.send(WorkerEvent::Cleanup(summary));
            }
            Ok(Err(e)) => tracing::error!(error = %e, "cleanup failed; retrying at the next interval"),
            Err(e) => tracing::error!(error = %e, "cleanup task failed"),
        }
    }
}
