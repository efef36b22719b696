//! `status`: what state the store is in, at a glance. The report is
//! `session_daemon::status`; this is its JSON (CONTRACT's shape) and its words.

use std::collections::BTreeMap;

use serde::Serialize;
use session_daemon::{StatusOptions, StatusReport};
use session_model::SubmissionStatus;
use session_store::SessionStore;
use session_workers::cleanup::CleanupSummary;

use super::clock::ClockView;
use super::list::relative_past;
use crate::error::CliError;
use crate::output::{Output, count};

/// The oldest session not yet delivered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Oldest {
    id: String,
    start_time: u64,
    submission_status: SubmissionStatus,
}

/// A session that failed for good, with why.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FailedSession {
    id: String,
    last_error: Option<String>,
}

/// `status --json` and `/api/status`: a [`StatusReport`] in CONTRACT's shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Status {
    total: usize,
    counts: BTreeMap<&'static str, usize>,
    incomplete: usize,
    interrupted: usize,
    not_received_by_lis: usize,
    capturing: usize,
    recording_stalled: usize,
    problems: usize,
    damaged: usize,
    orphaned_temps: usize,
    not_regular_files: usize,
    newer_version: usize,
    oldest_undelivered: Option<Oldest>,
    failed: Vec<FailedSession>,
    last_cleanup: Option<LastCleanup>,
    clock: ClockView,
    retries_pulled_in: usize,
    endpoint_attention: Option<EndpointAttention>,
    alerts: Vec<Alert>,
}

/// Something an operator should act on.
#[derive(Debug, Serialize)]
struct Alert {
    kind: &'static str,
    message: String,
}

/// The endpoint needs an operator.
#[derive(Debug, Serialize)]
struct EndpointAttention {
    error: String,
    sessions: usize,
}

/// The last cleanup, as `status --json` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LastCleanup {
    expired: usize,
    trashed: usize,
    kept: usize,
    purged: usize,
    bytes_freed: u64,
    duration_ms: u64,
    dry_run: bool,
    at: u64,
}

impl From<&CleanupSummary> for LastCleanup {
    fn from(s: &CleanupSummary) -> Self {
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

impl From<&StatusReport> for Status {
    fn from(report: &StatusReport) -> Self {
        let (counts, files) = (&report.counts, &report.files);
        Status {
            total: counts.total,
            counts: counts.by_status.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
            incomplete: counts.incomplete,
            interrupted: counts.interrupted,
            not_received_by_lis: counts.not_received_by_lis,
            capturing: report.capturing,
            recording_stalled: report.recording_stalled,
            problems: report.problems(),
            damaged: files.damaged,
            orphaned_temps: files.orphaned_temps,
            not_regular_files: files.not_regular_files,
            newer_version: counts.newer,
            oldest_undelivered: counts.oldest_waiting.as_ref().map(|w| Oldest {
                id: w.id.clone(),
                start_time: w.start_time,
                submission_status: w.status,
            }),
            failed: counts
                .failed
                .iter()
                .map(|f| FailedSession {
                    id: f.id.clone(),
                    last_error: f.last_error.clone(),
                })
                .collect(),
            last_cleanup: report.last_cleanup.as_ref().map(LastCleanup::from),
            clock: ClockView::from(&report.clock),
            retries_pulled_in: counts.retries_pulled_in,
            endpoint_attention: counts.endpoint_attention.as_ref().map(|a| EndpointAttention {
                error: a.error.clone(),
                sessions: a.sessions,
            }),
            alerts: report
                .alerts
                .iter()
                .map(|a| Alert {
                    kind: a.kind.as_str(),
                    message: a.message.clone(),
                })
                .collect(),
        }
    }
}

/// `status`: counts by submission status, the oldest undelivered session, the last cleanup.
pub(crate) fn status(store: &SessionStore, out: &Output, options: &StatusOptions) -> Result<(), CliError> {
    let report = Status::from(&session_daemon::status(store, options)?);
    let now = session_fs::now_ms();
    Ok(out.result(&report, || human(&report, store, now))?)
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
