//! The station's state at a glance: the report behind `sessionctl status`,
//! `/api/status`, the page's banner, the alert webhook and `/metrics`.

use session_fs::clock::ClockRecord;
use session_station::{FileProblems, SessionCounts, SessionIndex, Tally};
use session_store::{SessionStore, StoreError};
use session_workers::cleanup::{CleanupSummary, last_cleanup};

/// The settings a report judges by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusOptions {
    /// The retry cap: a pending session's stored next attempt further ahead than this
    /// is counted as pulled in (the worker sends it now).
    pub retry_cap_ms: u64,
    /// How long the oldest complete session may wait to be delivered before it is an
    /// [`AlertKind::Undelivered`] alert.
    pub alert_undelivered_ms: u64,
}

/// What the store is doing at one moment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StatusReport {
    /// The one clock reading the report was taken at, epoch ms: its counts and its
    /// alerts are judged by this reading, never by two.
    pub at: u64,
    /// The sessions, by status, with the oldest waiting and the failed ones.
    pub counts: SessionCounts,
    /// Files that are not sessions this build reads.
    pub files: FileProblems,
    /// Captures in progress (a live relay holds their journal).
    pub capturing: usize,
    /// Captures whose journal no live relay holds: their recording failed (a full disk,
    /// an element over the file limit) or their process died.
    pub recording_stalled: usize,
    /// The last cleanup, when one ran.
    pub last_cleanup: Option<CleanupSummary>,
    /// What the store knows of its clock.
    pub clock: ClockRecord,
    /// What someone should act on now, in [`AlertKind`]'s order.
    pub alerts: Vec<Alert>,
}

impl StatusReport {
    /// Every file problem: damaged files, orphaned temps, names that are not regular
    /// files.
    pub fn problems(&self) -> usize {
        self.files.damaged + self.files.orphaned_temps + self.files.not_regular_files
    }
}

/// What kind of thing an [`Alert`] is about; one alert of each kind at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AlertKind {
    /// A complete session has waited longer than the alert threshold to be delivered.
    Undelivered,
    /// Captures could not be stored (they wait in their journals).
    RecordingFailed,
    /// The store distrusts the wall clock: nothing is deleted or expired.
    ClockSuspect,
    /// The delivery endpoint needs an operator (a certificate the station does not
    /// trust).
    EndpointAttention,
}

impl AlertKind {
    /// Its name in JSON, the webhook's body and the page: `undelivered`,
    /// `recordingFailed`, `clockSuspect`, `endpointAttention`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Undelivered => "undelivered",
            AlertKind::RecordingFailed => "recordingFailed",
            AlertKind::ClockSuspect => "clockSuspect",
            AlertKind::EndpointAttention => "endpointAttention",
        }
    }
}

/// Something an operator should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Alert {
    /// What it is about.
    pub kind: AlertKind,
    /// What is wrong and what to do, in words (ids and counts, never a message's
    /// content).
    pub message: String,
}

/// The report of `store`, read file by file (no daemon's index at hand).
pub fn status(store: &SessionStore, options: &StatusOptions) -> Result<StatusReport, StoreError> {
    let (tally, damaged) = Tally::of_store(store)?;
    let files = FileProblems::listed(store, damaged)?;
    let now = store.fs().clock().now_ms();
    report(
        tally.counts(now, options.retry_cap_ms),
        files,
        store,
        now,
        options,
    )
}

/// The report from the index a daemon keeps, instead of a read of every file.
pub fn status_from_index(
    index: &SessionIndex,
    store: &SessionStore,
    options: &StatusOptions,
) -> Result<StatusReport, StoreError> {
    let now = store.fs().clock().now_ms();
    let (counts, files) = index.counts(store, now, options.retry_cap_ms)?;
    report(counts, files, store, now, options)
}

fn report(
    counts: SessionCounts,
    files: FileProblems,
    store: &SessionStore,
    now: u64,
    options: &StatusOptions,
) -> Result<StatusReport, StoreError> {
    let journals = store.fs().journals()?;
    let mut stalled = 0;
    for id in &journals {
        if !store.fs().journal_held(id)? {
            stalled += 1;
        }
    }
    let mut report = StatusReport {
        at: now,
        counts,
        files,
        capturing: journals.len() - stalled,
        recording_stalled: stalled,
        last_cleanup: last_cleanup(store.fs())?,
        clock: store.fs().clock_record()?,
        alerts: Vec::new(),
    };
    report.alerts = alerts_of(&report, options.alert_undelivered_ms);
    Ok(report)
}

/// "1 capture", "2 captures".
fn count(n: usize, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// The alerts `report` raises at its own reading of the clock.
fn alerts_of(report: &StatusReport, undelivered_after_ms: u64) -> Vec<Alert> {
    let mut alerts = Vec::new();
    if let Some(oldest) = &report.counts.oldest_waiting
        && report.at.saturating_sub(oldest.start_time) > undelivered_after_ms
    {
        alerts.push(Alert {
            kind: AlertKind::Undelivered,
            message: format!(
                "{} has waited to be delivered since {} (more than alert_undelivered_minutes = {}): is the endpoint reachable?",
                oldest.id,
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(oldest.start_time)
                ),
                undelivered_after_ms / 60_000
            ),
        });
    }
    if report.recording_stalled > 0 {
        alerts.push(Alert {
            kind: AlertKind::RecordingFailed,
            message: format!(
                "{} could not be stored (a full disk?): kept in .journal/ and stored as soon as space allows",
                count(report.recording_stalled, "capture", "captures")
            ),
        });
    }
    if let Some(suspect) = &report.clock.suspect {
        alerts.push(Alert {
            kind: AlertKind::ClockSuspect,
            message: format!(
                "the computer's clock is suspect ({}): nothing is deleted or expired until it is confirmed",
                suspect.reason
            ),
        });
    }
    if let Some(attention) = &report.counts.endpoint_attention {
        alerts.push(Alert {
            kind: AlertKind::EndpointAttention,
            message: format!(
                "the delivery endpoint needs attention: {} ({} waiting)",
                attention.error,
                count(attention.sessions, "session", "sessions")
            ),
        });
    }
    alerts
}
