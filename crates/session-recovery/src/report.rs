//! What recovery and verification found.

use std::path::PathBuf;

/// Why recovery moved a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// A temp file became the live session.
    Recovered,
    /// A superseded copy (temp or live) went to the trash.
    Cleaned,
    /// A file that does not decode went to the quarantine.
    Quarantined,
}

/// One file recovery moved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Moved {
    /// What was done.
    pub action: Action,
    /// The file's name in the store directory.
    pub file: String,
    /// Where it went (the live name for a recovered temp).
    pub to: PathBuf,
    /// Why, in words (no document content).
    pub reason: String,
}

/// The outcome of [`recover`](crate::recover).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Temp files promoted to live sessions.
    pub recovered: usize,
    /// Superseded copies moved to the trash.
    pub cleaned: usize,
    /// Damaged files moved to the quarantine (journals with nothing readable included).
    pub quarantined: usize,
    /// Captures a crash cut off, found as journals and made session files with every
    /// acknowledged element, marked interrupted.
    pub interrupted: usize,
    /// Captures that had ended but were not yet folded when the process died.
    pub captures_finished: usize,
    /// Journal records a crash cut short (never acknowledged): dropped.
    pub torn_records: usize,
    /// Every file moved, in order.
    pub moved: Vec<Moved>,
    /// Files recovery could not handle (unreadable, not a regular file...): left where
    /// they are, reported, and the run carried on with the rest.
    pub problems: Vec<Problem>,
}

impl RecoveryReport {
    /// Whether recovery found nothing to do.
    pub fn is_clean(&self) -> bool {
        self.moved.is_empty() && self.problems.is_empty()
    }

    pub(crate) fn record(&mut self, moved: Moved) {
        match moved.action {
            Action::Recovered => self.recovered += 1,
            Action::Cleaned => self.cleaned += 1,
            Action::Quarantined => self.quarantined += 1,
        }
        self.moved.push(moved);
    }
}

/// One problem [`verify`](crate::verify) found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The file's name in the store directory.
    pub file: String,
    /// What is wrong.
    pub problem: String,
}

/// The outcome of [`verify`](crate::verify).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Live files that decode (newer versions included).
    pub ok: usize,
    /// Everything else.
    pub problems: Vec<Problem>,
}
