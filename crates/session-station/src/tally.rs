//! `status`'s counts of the sessions, kept so that a row can be added and taken away.

use std::collections::BTreeMap;

use session_model::SubmissionStatus;
use session_store::{SessionStore, StoreError};

use crate::{SessionRow, natural_cmp};

/// What is wrong with files of the store that are not sessions this build reads.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct FileProblems {
    /// Session files that do not decode.
    pub damaged: usize,
    /// Temp files no write owns.
    pub orphaned_temps: usize,
    /// Names that are not regular files.
    pub not_regular_files: usize,
}

impl FileProblems {
    /// The temps and odd names of one listing of `store`'s directory, with `damaged`
    /// files counted by whoever read them.
    pub fn listed(store: &SessionStore, damaged: usize) -> Result<FileProblems, StoreError> {
        let scan = store.fs().maintenance().scan()?;
        Ok(FileProblems {
            damaged,
            orphaned_temps: scan.temps.len(),
            not_regular_files: scan.irregular.len(),
        })
    }
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

/// How many of the sessions that failed for good [`SessionCounts::failed`] names.
pub const FAILED_NAMED: usize = 10;

/// The sessions' part of `status`, kept so that a row can be added and taken away:
/// `status` adds every row once; the daemon's index keeps one current as rows change,
/// so that its `status` costs what the report holds, not the store's size.
#[derive(Debug, Clone, Default)]
pub struct Tally {
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
pub struct Counted<'a> {
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

impl Tally {
    /// Counts every session of `store`, one file at a time; also says how many files do
    /// not decode (they are counted nowhere else).
    pub fn of_store(store: &SessionStore) -> Result<(Tally, usize), StoreError> {
        let mut tally = Tally::default();
        let mut damaged = 0;
        for entry in store.entries()? {
            match SessionRow::of_entry(&entry) {
                Some(row) => tally.add(&row.counted()),
                None => damaged += 1,
            }
        }
        Ok((tally, damaged))
    }

    /// Counts `row` in.
    pub fn add(&mut self, row: &Counted<'_>) {
        self.apply(row, true);
    }

    /// Counts `row` out (it must have been added).
    pub fn remove(&mut self, row: &Counted<'_>) {
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

    /// What the tally says at `now`: a stored next attempt further ahead than
    /// `retry_cap_ms` counts as pulled in (the worker sends it at the cap instead).
    pub fn counts(&self, now: u64, retry_cap_ms: u64) -> SessionCounts {
        let by_status = SubmissionStatus::ALL.iter().copied().zip(self.counts).collect();
        let oldest_waiting = self.waiting.iter().next().map(|((start, id), status)| Waiting {
            id: id.clone(),
            start_time: *start,
            status: *status,
        });
        let failed = self
            .failed
            .iter()
            .take(FAILED_NAMED)
            .map(|(id, error)| Failed {
                id: id.0.clone(),
                last_error: error.clone(),
            })
            .collect();
        let pulled_after = now.saturating_add(retry_cap_ms);
        let retries_pulled_in = self
            .next_attempts
            .range((pulled_after.saturating_add(1), String::new())..)
            .count();
        let endpoint_attention = self
            .tls
            .values()
            .max_by_key(|(at, _)| *at)
            .map(|(_, error)| Attention {
                error: error.clone(),
                sessions: self.tls.len(),
            });
        SessionCounts {
            total: self.total,
            newer: self.newer,
            by_status,
            incomplete: self.incomplete,
            interrupted: self.interrupted,
            not_received_by_lis: self.not_received_by_lis,
            oldest_waiting,
            failed,
            retries_pulled_in,
            endpoint_attention,
        }
    }
}

/// What a [`Tally`] says at a moment: the sessions' part of `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCounts {
    /// Sessions this build reads.
    pub total: usize,
    /// Sessions a newer build wrote (shown, never counted with the others).
    pub newer: usize,
    /// How many of `total` have each submission status, every status in
    /// [`SubmissionStatus::ALL`]'s order.
    pub by_status: Vec<(SubmissionStatus, usize)>,
    /// Undelivered and never sendable: capture did not finish.
    pub incomplete: usize,
    /// Cut off (a crash, a lost connection, a stop).
    pub interrupted: usize,
    /// Not wholly received by the LIS (`lisClosed`).
    pub not_received_by_lis: usize,
    /// The complete session waiting longest to be sent (pending or in flight).
    pub oldest_waiting: Option<Waiting>,
    /// The first [`FAILED_NAMED`] sessions that failed for good, ids in natural order:
    /// a report to read at a glance, whose cost does not grow with the failures
    /// (`by_status` counts them all; `list --status failed` names them all).
    pub failed: Vec<Failed>,
    /// Pending sessions whose stored next attempt lies beyond the retry cap.
    pub retries_pulled_in: usize,
    /// A delivery problem only an operator can fix (a TLS error today).
    pub endpoint_attention: Option<Attention>,
}

/// A complete session waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Waiting {
    /// Its id.
    pub id: String,
    /// Capture start, epoch ms.
    pub start_time: u64,
    /// Pending or in flight.
    pub status: SubmissionStatus,
}

/// A session that failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failed {
    /// Its id.
    pub id: String,
    /// Why, as the worker recorded it.
    pub last_error: Option<String>,
}

/// The endpoint needs an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attention {
    /// The newest such error.
    pub error: String,
    /// Sessions waiting for it.
    pub sessions: usize,
}
