//! `status`: what state the store is in, at a glance. The report is
//! `session_daemon::status`, its JSON `session_api::views::StatusView` (CONTRACT's
//! shape, which `/api/status` answers too); this is its words.

use session_api::views::StatusView;
use session_daemon::StatusOptions;
use session_model::SubmissionStatus;
use session_store::SessionStore;

use super::list::relative_past;
use crate::error::CliError;
use crate::output::{Output, count};

/// `status`: counts by submission status, the oldest undelivered session, the last cleanup.
pub(crate) fn status(store: &SessionStore, out: &Output, options: &StatusOptions) -> Result<(), CliError> {
    let report = StatusView::from(&session_daemon::status(store, options)?);
    let now = session_fs::now_ms();
    Ok(out.result(&report, || human(&report, store, now))?)
}

/// The human form of a [`StatusView`].
fn human(report: &StatusView, store: &SessionStore, now: u64) -> String {
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
    let failed_in_all = report
        .counts
        .get(SubmissionStatus::Failed.as_str())
        .copied()
        .unwrap_or_default();
    if failed_in_all > report.failed.len() {
        text.push_str(&format!(
            "... and {} more failed (`sessionctl list --status failed` names them all)\n",
            failed_in_all - report.failed.len()
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
