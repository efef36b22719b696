//! `status`: what state the store is in, at a glance.

use std::collections::BTreeMap;

use serde::Serialize;
use session_model::SubmissionStatus;
use session_store::{SessionStore, StoredEntry};
use session_workers::cleanup::{CleanupSummary, last_cleanup};

use super::clock::ClockView;
use super::list::{Row, natural_cmp, newer_row, relative_past};
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
    let mut rows = Vec::new();
    let mut damaged = 0;
    for entry in store.entries()? {
        match entry {
            StoredEntry::Valid(decoded) => rows.push(Row::of(&decoded)),
            StoredEntry::Newer {
                id,
                version,
                document,
            } => rows.push(newer_row(id.to_string(), version, &document)),
            _ => damaged += 1,
        }
    }
    let scan = store.fs().maintenance().scan()?;
    let files = FileProblems {
        damaged,
        orphaned_temps: scan.temps.len(),
        not_regular_files: scan.irregular.len(),
    };
    from_rows(rows.iter(), files, store, options)
}

/// What is wrong with files of the store that are not sessions this build reads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FileProblems {
    /// Session files that do not decode.
    pub damaged: usize,
    /// Temp files no write owns.
    pub orphaned_temps: usize,
    /// Names that are not regular files.
    pub not_regular_files: usize,
}

/// [`compute`] from rows already read: the sessions' part is counted from `rows`, the
/// journals, the last cleanup and the clock are read.
pub(crate) fn from_rows<'a>(
    rows: impl Iterator<Item = &'a Row>,
    files: FileProblems,
    store: &SessionStore,
    options: &StatusOptions,
) -> Result<Status, CliError> {
    let mut tally = Tally::default();
    rows.for_each(|row| tally.add(&row.counted()));
    tally.status(files, store, options)
}

/// An id ordered as people read ids (`session-9` before `session-10`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NaturalId(String);

impl Ord for NaturalId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        natural_cmp(&self.0, &other.0)
    }
}

impl PartialOrd for NaturalId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The sessions' part of `status`, kept so that a row can be added and taken away:
/// `status` adds every row once; the daemon's index keeps one current as rows change,
/// so that its `status` costs what the report holds, not the store's size.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    total: usize,
    newer: usize,
    counts: [usize; 5],
    incomplete: usize,
    interrupted: usize,
    not_received_by_lis: usize,
    failed: BTreeMap<NaturalId, Option<String>>,
    /// Complete and waiting to be sent (pending or in flight): (start, id) -> status.
    waiting: BTreeMap<(u64, String), SubmissionStatus>,
    /// Pending, by next attempt.
    next_attempts: std::collections::BTreeSet<(u64, String)>,
    /// Pending with a TLS error: id -> (last attempt, error).
    tls: BTreeMap<String, (u64, String)>,
}

/// What a [`Tally`] counts of one session, borrowed from wherever it is kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counted<'a> {
    /// The id.
    pub id: &'a str,
    /// The submission status (`None`: one this build does not know).
    pub status: Option<SubmissionStatus>,
    /// Written by a newer build.
    pub newer: bool,
    /// Whether capture finished.
    pub is_complete: Option<bool>,
    /// Whether capture was cut off.
    pub interrupted: bool,
    /// Whether the LIS did not receive all of it.
    pub not_received_by_lis: bool,
    /// Capture start, epoch ms.
    pub start_time: Option<u64>,
    /// The last delivery error.
    pub last_error: Option<&'a str>,
    /// The last delivery attempt, epoch ms.
    pub last_attempt_at: Option<u64>,
    /// The next one, epoch ms.
    pub next_attempt_at: Option<u64>,
}

impl Row {
    /// What a [`Tally`] counts of this row.
    pub(crate) fn counted(&self) -> Counted<'_> {
        Counted {
            id: &self.id,
            status: self.status,
            newer: self.newer,
            is_complete: self.is_complete,
            interrupted: self.interrupted,
            not_received_by_lis: self.not_received_by_lis,
            start_time: self.start_time,
            last_error: self.last_error.as_deref(),
            last_attempt_at: self.last_attempt_at,
            next_attempt_at: self.next_attempt_at,
        }
    }
}

impl Tally {
    /// Counts `row` in.
    pub(crate) fn add(&mut self, row: &Counted<'_>) {
        self.apply(row, true);
    }

    /// Counts `row` out (it must have been added).
    pub(crate) fn remove(&mut self, row: &Counted<'_>) {
        self.apply(row, false);
    }

    fn apply(&mut self, row: &Counted<'_>, add: bool) {
        let step = |n: &mut usize| {
            *n = if add { *n + 1 } else { n.saturating_sub(1) };
        };
        let Some(status) = row.status.filter(|_| !row.newer) else {
            step(&mut self.newer);
            return;
        };
        step(&mut self.total);
        if let Some(i) = SubmissionStatus::ALL.iter().position(|s| *s == status) {
            step(&mut self.counts[i]);
        }
        let is_complete = row.is_complete == Some(true);
        if !status.is_settled() && !is_complete {
            step(&mut self.incomplete);
        }
        if row.interrupted {
            step(&mut self.interrupted);
        }
        if row.not_received_by_lis {
            step(&mut self.not_received_by_lis);
        }
        let start = row.start_time.unwrap_or(0);
        if status == SubmissionStatus::Failed {
            let id = NaturalId(row.id.to_owned());
            if add {
                self.failed.insert(id, row.last_error.map(str::to_owned));
            } else {
                self.failed.remove(&id);
            }
        }
        if is_complete && matches!(status, SubmissionStatus::Pending | SubmissionStatus::InFlight) {
            if add {
                self.waiting.insert((start, row.id.to_owned()), status);
            } else {
                self.waiting.remove(&(start, row.id.to_owned()));
            }
        }
        if status == SubmissionStatus::Pending {
            if let Some(at) = row.next_attempt_at {
                if add {
                    self.next_attempts.insert((at, row.id.to_owned()));
                } else {
                    self.next_attempts.remove(&(at, row.id.to_owned()));
                }
            }
            // Configuration problems are the ones the worker waits out at the cap
            // without counting attempts: TLS, today.
            if let Some(error) = row.last_error.filter(|e| e.starts_with("TLS: ")) {
                if add {
                    self.tls.insert(
                        row.id.to_owned(),
                        (row.last_attempt_at.unwrap_or(0), error.to_owned()),
                    );
                } else {
                    self.tls.remove(row.id);
                }
            }
        }
    }

    /// The report: this tally, `files`, and what the store says of its journals, its
    /// last cleanup and its clock.
    pub(crate) fn status(
        &self,
        files: FileProblems,
        store: &SessionStore,
        options: &StatusOptions,
    ) -> Result<Status, CliError> {
        let now = store.fs().clock().now_ms();
        let counts: BTreeMap<&'static str, usize> = SubmissionStatus::ALL
            .iter()
            .zip(self.counts)
            .map(|(s, n)| (s.as_str(), n))
            .collect();
        let oldest = self.waiting.iter().next().map(|((start, id), status)| Oldest {
            id: id.clone(),
            start_time: *start,
            submission_status: *status,
        });
        let failed = self
            .failed
            .iter()
            .map(|(id, error)| FailedSession {
                id: id.0.clone(),
                last_error: error.clone(),
            })
            .collect();
        let pulled_after = now.saturating_add(options.retry_cap_ms);
        let retries_pulled_in = self
            .next_attempts
            .range((pulled_after.saturating_add(1), String::new())..)
            .count();
        let attention = self
            .tls
            .values()
            .max_by_key(|(at, _)| *at)
            .map(|(_, error)| EndpointAttention {
                error: error.clone(),
                sessions: self.tls.len(),
            });
        let (total, newer, incomplete, interrupted, not_received_by_lis) = (
            self.total,
            self.newer,
            self.incomplete,
            self.interrupted,
            self.not_received_by_lis,
        );
        let journals = store.fs().journals()?;
        let mut stalled = 0;
        for id in &journals {
            if !store.fs().journal_held(id)? {
                stalled += 1;
            }
        }
        let mut report = Status {
            total,
            counts,
            incomplete,
            interrupted,
            not_received_by_lis,
            capturing: journals.len() - stalled,
            recording_stalled: stalled,
            problems: files.damaged + files.orphaned_temps + files.not_regular_files,
            damaged: files.damaged,
            orphaned_temps: files.orphaned_temps,
            not_regular_files: files.not_regular_files,
            newer_version: newer,
            oldest_undelivered: oldest,
            failed,
            last_cleanup: last_cleanup(store.fs())?.map(LastCleanup::from),
            clock: ClockView::of(store)?,
            retries_pulled_in,
            endpoint_attention: attention,
            alerts: Vec::new(),
        };
        report.alerts = alerts_of(&report, now, options.alert_undelivered_ms);
        Ok(report)
    }
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
