//! `status`: what state the store is in, at a glance.

use std::collections::BTreeMap;

use serde::Serialize;
use session_model::SubmissionStatus;
use session_station::{FileProblems, SessionCounts, SessionIndex, Tally};
use session_store::SessionStore;
use session_workers::cleanup::{CleanupSummary, last_cleanup};

use super::clock::ClockView;
use super::list::relative_past;
use crate::error::CliError;
use crate::output::{Output, count};

/// The oldest session not yet delivered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Oldest {
    id: String,
    start_time: u64,
    submission_status: SubmissionStatus,
}

/// A session that failed for good, with why.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FailedSession {
    id: String,
    last_error: Option<String>,
}

/// `status --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Status {
    total: usize,
    counts: BTreeMap<&'static str, usize>,
    /// Undelivered and never sendable: capture did not finish.
    incomplete: usize,
    /// Of those, cut off (a crash, a lost connection, a stop): marked interrupted.
    interrupted: usize,
    /// Sessions the LIS did not wholly receive (`lisClosed`): results that may never
    /// have reached it.
    not_received_by_lis: usize,
    /// Captures in progress (or cut off by a crash the next start will recover).
    capturing: usize,
    /// Captures whose journal no live relay holds: their recording failed (a full disk,
    /// an element over the file limit) or their process died. They are stored as
    /// sessions as soon as that can be done (the relay retries; `recover` does it).
    recording_stalled: usize,
    /// Everything `verify` reports: damaged files, orphaned temps, names that are not
    /// regular files.
    problems: usize,
    damaged: usize,
    orphaned_temps: usize,
    not_regular_files: usize,
    newer_version: usize,
    /// The oldest complete session still waiting to be sent (pending or inFlight).
    oldest_undelivered: Option<Oldest>,
    failed: Vec<FailedSession>,
    last_cleanup: Option<LastCleanup>,
    /// Whether the store trusts its clock.
    clock: ClockView,
    /// Pending sessions whose stored next attempt lies further ahead than the retry
    /// cap (stored under a clock that was ahead): the worker sends them now instead.
    retries_pulled_in: usize,
    /// A delivery problem only an operator can fix (a TLS certificate the station does
    /// not trust), with how many sessions wait for it; retried at the cap meanwhile.
    endpoint_attention: Option<EndpointAttention>,
    /// What someone should act on now (the page's banner, `status`'s first lines,
    /// `alert_webhook`).
    alerts: Vec<Alert>,
}

/// Something an operator should act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Alert {
    /// `undelivered`, `recordingFailed`, `clockSuspect` or `endpointAttention`.
    pub kind: &'static str,
    /// What is wrong and what to do, in words (never a message's content).
    pub message: String,
}

impl Status {
    /// What someone should act on now.
    pub(crate) fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// Sessions by submission status.
    pub(crate) fn counts(&self) -> &BTreeMap<&'static str, usize> {
        &self.counts
    }

    /// When the oldest complete session not yet delivered started, epoch ms.
    pub(crate) fn oldest_undelivered_start(&self) -> Option<u64> {
        self.oldest_undelivered.as_ref().map(|o| o.start_time)
    }

    /// Whether the store distrusts its clock.
    pub(crate) fn clock_suspect(&self) -> bool {
        self.clock.suspect
    }
}

/// The endpoint needs an operator.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndpointAttention {
    /// The newest such error.
    error: String,
    /// Sessions waiting for it.
    sessions: usize,
}

/// The last cleanup, as `status --json` shows it (this command's own shape).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LastCleanup {
    expired: usize,
    trashed: usize,
    kept: usize,
    purged: usize,
    bytes_freed: u64,
    duration_ms: u64,
    dry_run: bool,
    at: u64,
}

impl From<CleanupSummary> for LastCleanup {
    fn from(s: CleanupSummary) -> Self {
        LastCleanup {
            expired: s.expired,
            trashed: s.trashed,
            kept: s.kept,
            purged: s.purged,
            bytes_freed: s.bytes_freed,
            duration_ms: s.duration_ms,
            dry_run: s.dry_run,
            at: s.at,
        }
    }
}

/// `status`: counts by submission status, the oldest undelivered session, the last cleanup.
pub(crate) fn status(store: &SessionStore, out: &Output, options: &StatusOptions) -> Result<(), CliError> {
    let report = compute(store, options)?;
    let now = session_fs::now_ms();
    Ok(out.result(&report, || human(&report, store, now))?)
}

/// The settings `status` judges by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatusOptions {
    /// The retry cap: a stored next attempt further ahead is pulled in.
    pub retry_cap_ms: u64,
    /// How long the oldest undelivered complete session may wait before it is an alert.
    pub alert_undelivered_ms: u64,
}

/// What `status --json` (and the local API's `/api/status`) reports.
pub(crate) fn compute(store: &SessionStore, options: &StatusOptions) -> Result<Status, CliError> {
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

/// `status` from the index a daemon keeps, instead of a read of every file.
pub(crate) fn from_index(
    index: &SessionIndex,
    store: &SessionStore,
    options: &StatusOptions,
) -> Result<Status, CliError> {
    let now = store.fs().clock().now_ms();
    let (counts, files) = index.counts(store, now, options.retry_cap_ms)?;
    report(counts, files, store, now, options)
}

/// The report at `now` (the one reading the counts were taken at): the sessions'
/// `counts`, the `files`' problems, and what the store says of its journals, its last
/// cleanup and its clock.
fn report(
    counts: SessionCounts,
    files: FileProblems,
    store: &SessionStore,
    now: u64,
    options: &StatusOptions,
) -> Result<Status, CliError> {
    let journals = store.fs().journals()?;
    let mut stalled = 0;
    for id in &journals {
        if !store.fs().journal_held(id)? {
            stalled += 1;
        }
    }
    let mut report = Status {
        total: counts.total,
        counts: counts.by_status.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
        incomplete: counts.incomplete,
        interrupted: counts.interrupted,
        not_received_by_lis: counts.not_received_by_lis,
        capturing: journals.len() - stalled,
        recording_stalled: stalled,
        problems: files.damaged + files.orphaned_temps + files.not_regular_files,
        damaged: files.damaged,
        orphaned_temps: files.orphaned_temps,
        not_regular_files: files.not_regular_files,
        newer_version: counts.newer,
        oldest_undelivered: counts.oldest_waiting.map(|w| Oldest {
            id: w.id,
            start_time: w.start_time,
            submission_status: w.status,
        }),
        failed: counts
            .failed
            .into_iter()
            .map(|f| FailedSession {
                id: f.id,
                last_error: f.last_error,
            })
            .collect(),
        last_cleanup: last_cleanup(store.fs())?.map(LastCleanup::from),
        clock: ClockView::of(store)?,
        retries_pulled_in: counts.retries_pulled_in,
        endpoint_attention: counts.endpoint_attention.map(|a| EndpointAttention {
            error: a.error,
            sessions: a.sessions,
        }),
        alerts: Vec::new(),
    };
    report.alerts = alerts_of(&report, now, options.alert_undelivered_ms);
    Ok(report)
}

/// The alerts `report` raises at `now`.
fn alerts_of(report: &Status, now: u64, undelivered_after_ms: u64) -> Vec<Alert> {
    let mut alerts = Vec::new();
    if let Some(oldest) = &report.oldest_undelivered
        && now.saturating_sub(oldest.start_time) > undelivered_after_ms
    {
        alerts.push(Alert {
            kind: "undelivered",
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
            kind: "recordingFailed",
            message: format!(
                "{} could not be stored (a full disk?): kept in .journal/ and stored as soon as space allows",
                count(report.recording_stalled, "capture", "captures")
            ),
        });
    }
    if report.clock.suspect {
        alerts.push(Alert {
            kind: "clockSuspect",
            message: format!(
                "the computer's clock is suspect ({}): nothing is deleted or expired until it is confirmed",
                report.clock.reason.as_deref().unwrap_or("no reason recorded")
            ),
        });
    }
    if let Some(attention) = &report.endpoint_attention {
        alerts.push(Alert {
            kind: "endpointAttention",
            message: format!(
                "the delivery endpoint needs attention: {} ({} waiting)",
                attention.error,
                count(attention.sessions, "session", "sessions")
            ),
        });
    }
    alerts
}

/// The human form of a [`Status`].
fn human(report: &Status, store: &SessionStore, now: u64) -> String {
    {
        let mut text = String::new();
        for alert in report.alerts.iter().filter(|a| a.kind == "undelivered") {
            text.push_str(&format!("ALERT: {}\n", session_model::printable(&alert.message)));
        }
        if let Some(warning) = report.clock.warning() {
            text.push_str(&format!("{warning}\n"));
        }
        if let Some(attention) = &report.endpoint_attention {
            text.push_str(&format!(
                "ENDPOINT NEEDS ATTENTION: {} ({} waiting; retried every retry_cap_seconds until it is fixed)\n",
                session_model::printable(&attention.error),
                count(attention.sessions, "session", "sessions")
            ));
        }
        text.push_str(&format!(
            "{} in {}\n",
            count(report.total, "session", "sessions"),
            store.fs().dir().display()
        ));
        for (status, n) in &report.counts {
            text.push_str(&format!("  {status:<10} {n}\n"));
        }
        if report.problems > 0 {
            let kinds: Vec<String> = [
                (report.damaged, "damaged file", "damaged files"),
                (report.orphaned_temps, "orphaned temp file", "orphaned temp files"),
                (
                    report.not_regular_files,
                    "name that is not a regular file",
                    "names that are not regular files",
                ),
            ]
            .into_iter()
            .filter(|(n, ..)| *n > 0)
            .map(|(n, one, many)| count(n, one, many))
            .collect();
            text.push_str(&format!(
                "  ({}: {}; `sessionctl verify` names them)\n",
                count(report.problems, "problem", "problems"),
                kinds.join(", ")
            ));
        }
        if report.newer_version > 0 {
            text.push_str(&format!(
                "  ({} from a newer version, left alone)\n",
                report.newer_version
            ));
        }
        if report.incomplete > 0 {
            text.push_str(&format!(
                "  ({} incomplete: capture never finished, so never sent; {} of them interrupted)\n",
                report.incomplete, report.interrupted
            ));
        }
        if report.not_received_by_lis > 0 {
            text.push_str(&format!(
                "  ({} did not reach the LIS: it closed the connection while the analyzer was sending; `list` shows them as \"not at LIS\")\n",
                count(report.not_received_by_lis, "session", "sessions")
            ));
        }
        if report.retries_pulled_in > 0 {
            text.push_str(&format!(
                "  ({} stored with a next attempt beyond the retry cap (a clock that was ahead): sent now instead)\n",
                count(report.retries_pulled_in, "pending session", "pending sessions")
            ));
        }
        if report.capturing > 0 {
            text.push_str(&format!("  ({} being captured now)\n", report.capturing));
        }
        if report.recording_stalled > 0 {
            text.push_str(&format!(
                "RECORDING FAILED: {} not yet stored (a full disk? an element over the file limit? a crash?): kept in .journal/, stored as soon as space allows (the relay retries every 5 s; or `sessionctl recover`)\n",
                count(report.recording_stalled, "capture", "captures")
            ));
        }
        match &report.oldest_undelivered {
            Some(o) => text.push_str(&format!(
                "oldest undelivered: {} ({}, started {})\n",
                o.id,
                o.submission_status,
                relative_past(o.start_time, now)
            )),
            None => text.push_str("nothing is waiting to be sent\n"),
        }
        for f in &report.failed {
            text.push_str(&format!(
                "failed: {}: {}\n",
                f.id,
                f.last_error
                    .as_deref()
                    .map_or_else(|| "(no error recorded)".into(), session_model::printable)
            ));
        }
        match &report.last_cleanup {
            Some(c) => text.push_str(&format!(
                "last cleanup {}: expired {}, trashed {}, kept {}, purged {}",
                relative_past(c.at, now),
                c.expired,
                c.trashed,
                c.kept,
                c.purged
            )),
            None => text.push_str("no cleanup has run yet"),
        }
        text
    }
}
