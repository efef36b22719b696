//! Submission state and the one state machine every caller goes through.

use serde::{Deserialize, Serialize};

use crate::vocabulary::UnknownFields;

/// Where a session is on its way to the REST API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubmissionStatus {
    /// Waiting to be sent (possibly until `nextAttemptAt`).
    Pending,
    /// A request is (or was, before a crash) under way.
    InFlight,
    /// Delivered: the API answered 2xx.
    Submitted,
    /// Given up: a permanent error, or attempts ran out.
    Failed,
    /// An operator chose not to deliver it.
    Ignored,
}

impl SubmissionStatus {
    /// The name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InFlight => "inFlight",
            Self::Submitted => "submitted",
            Self::Failed => "failed",
            Self::Ignored => "ignored",
        }
    }

    /// Whether the data reached (or was deliberately kept from) the API, so that
    /// retention may remove it.
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Submitted | Self::Ignored)
    }

    /// Every status, in lifecycle order.
    pub const ALL: [SubmissionStatus; 5] = [
        Self::Pending,
        Self::InFlight,
        Self::Submitted,
        Self::Failed,
        Self::Ignored,
    ];
}

impl std::fmt::Display for SubmissionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SubmissionStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown status {s:?}; expected pending, inFlight, submitted, failed or ignored")
            })
    }
}

/// The `submission` block of a `2.0.0` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// Current status.
    pub status: SubmissionStatus,
    /// Attempts made since the last reset.
    #[serde(default)]
    pub attempts: u32,
    /// When the last attempt started, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<u64>,
    /// Not before this time will the next attempt start, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<u64>,
    /// When the API accepted it, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<u64>,
    /// The last error, as a short description (never a message's content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Sent as `Idempotency-Key` on every attempt; assigned once for a given content,
    /// never changed while the content stays the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Deliveries of earlier contents of this session (it was saved again with other
    /// content after them): when, and under which key. Never dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_deliveries: Vec<Delivery>,
    /// Fields this build does not know.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// A delivery of an earlier content of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The `Idempotency-Key` it was delivered under (`None` if the app delivered it
    /// before keys existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When the API accepted it, epoch milliseconds (if known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
}

/// An action the submission state machine does not allow from the current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a session whose submission is {from}")]
#[non_exhaustive]
pub struct TransitionError {
    /// The status the session was in.
    pub from: SubmissionStatus,
    /// What was attempted.
    pub action: &'static str,
}

impl Submission {
    /// A fresh, never-attempted submission.
    pub fn pending() -> Self {
        Self {
            status: SubmissionStatus::Pending,
            attempts: 0,
            last_attempt_at: None,
            next_attempt_at: None,
            submitted_at: None,
            last_error: None,
            idempotency_key: None,
            earlier_deliveries: Vec::new(),
            unknown: UnknownFields::new(),
        }
    }

    /// The session was saved again with different content to deliver: the state of the
    /// old content no longer applies. A delivery is kept in `earlier_deliveries`; the
    /// key goes (the new content gets its own); `failed` and `submitted` become
    /// `pending` with attempts reset. `ignored` stays: an operator's decision stands.
    /// An `inFlight` request for the old content may still land: the worker then
    /// reports it through [`Submission::late_outcome`].
    pub fn content_changed(&mut self) {
        if self.status == SubmissionStatus::Submitted || self.submitted_at.is_some() {
            self.earlier_deliveries.push(Delivery {
                key: self.idempotency_key.clone(),
                at: self.submitted_at,
            });
        }
        if self.status != SubmissionStatus::Ignored {
            self.status = SubmissionStatus::Pending;
        }
        self.attempts = 0;
        self.last_attempt_at = None;
        self.next_attempt_at = None;
        self.submitted_at = None;
        self.last_error = None;
        self.idempotency_key = None;
    }

    /// The outcome of an attempt under `key` that arrived after the session left that
    /// attempt's `inFlight` (an operator ignored it, or new content was saved): their
    /// decision stands, and the outcome is recorded beside it. `delivered` is the
    /// API's acceptance (`Ok(now)`) or the attempt's error.
    pub fn late_outcome(&mut self, key: &str, outcome: Result<u64, String>) {
        let same_content = self.idempotency_key.as_deref() == Some(key);
        match outcome {
            Ok(at) if same_content => {
                self.submitted_at = Some(at);
                self.last_error = None;
            }
            Ok(at) => self.earlier_deliveries.push(Delivery {
                key: Some(key.to_owned()),
                at: Some(at),
            }),
            Err(error) if same_content => self.last_error = Some(error),
            // A failure for content that is gone changes nothing.
            Err(_) => {}
        }
    }

    fn refuse(&self, action: &'static str) -> TransitionError {
        TransitionError {
            from: self.status,
            action,
        }
    }

    /// `pending -> inFlight`: counts the attempt and fixes the idempotency key.
    ///
    /// `new_key` is used only when the session has none yet: a key, once assigned,
    /// never changes, so a retry after a crash is recognisable as a duplicate.
    pub fn begin_attempt(
        &mut self,
        now: u64,
        new_key: impl FnOnce() -> String,
    ) -> Result<&str, TransitionError> {
        if self.status != SubmissionStatus::Pending {
            return Err(self.refuse("start an attempt on"));
        }
        self.status = SubmissionStatus::InFlight;
        self.attempts = self.attempts.saturating_add(1);
        self.last_attempt_at = Some(now);
        self.next_attempt_at = None;
        Ok(self.idempotency_key.get_or_insert_with(new_key))
    }

    /// `inFlight -> submitted`.
    pub fn succeed(&mut self, now: u64) -> Result<(), TransitionError> {
        if self.status != SubmissionStatus::InFlight {
            return Err(self.refuse("mark as submitted"));
        }
        self.status = SubmissionStatus::Submitted;
        self.submitted_at = Some(now);
        self.next_attempt_at = None;
        self.last_error = None;
        Ok(())
    }

    /// `inFlight -> pending` with a next-attempt time (a retryable failure).
    pub fn retry_later(&mut self, error: String, next_attempt_at: u64) -> Result<(), TransitionError> {
        if self.status != SubmissionStatus::InFlight {
            return Err(self.refuse("schedule a retry of"));
        }
        self.status = SubmissionStatus::Pending;
        self.next_attempt_at = Some(next_attempt_at);
        self.last_error = Some(error);
        Ok(())
    }

    /// `inFlight -> pending` when the attempt failed for a configuration problem that
    /// needs an operator (an untrusted certificate): the attempt is not counted, so the
    /// session never runs out of attempts for it, and it is tried again at
    /// `next_attempt_at` (the retry cap). The error is kept as `lastError`.
    pub fn await_configuration(
        &mut self,
        error: String,
        next_attempt_at: u64,
    ) -> Result<(), TransitionError> {
        if self.status != SubmissionStatus::InFlight {
            return Err(self.refuse("schedule a retry of"));
        }
        self.status = SubmissionStatus::Pending;
        self.attempts = self.attempts.saturating_sub(1);
        self.next_attempt_at = Some(next_attempt_at);
        self.last_error = Some(error);
        Ok(())
    }

    /// `inFlight -> failed` (a permanent failure, or attempts ran out).
    pub fn fail(&mut self, error: String) -> Result<(), TransitionError> {
        if self.status != SubmissionStatus::InFlight {
            return Err(self.refuse("mark as failed"));
        }
        self.status = SubmissionStatus::Failed;
        self.next_attempt_at = None;
        self.last_error = Some(error);
        Ok(())
    }

    /// `inFlight -> pending` after a crash or shutdown interrupted the attempt: the
    /// attempt stays counted and the key stays, so the resend is recognisable.
    pub fn resume_interrupted(&mut self) -> Result<(), TransitionError> {
        if self.status != SubmissionStatus::InFlight {
            return Err(self.refuse("resume"));
        }
        self.status = SubmissionStatus::Pending;
        Ok(())
    }

    /// An operator's retry: `failed | ignored | pending -> pending`, attempts reset.
    /// Refused for `submitted` (already delivered) and `inFlight` (a request may be
    /// under way; a second one would be a duplicate).
    pub fn retry(&mut self) -> Result<(), TransitionError> {
        if matches!(
            self.status,
            SubmissionStatus::Submitted | SubmissionStatus::InFlight
        ) {
            return Err(self.refuse("retry"));
        }
        self.status = SubmissionStatus::Pending;
        self.attempts = 0;
        self.next_attempt_at = None;
        self.last_error = None;
        Ok(())
    }

    /// An operator's ignore: any status but `submitted` -> `ignored`.
    pub fn ignore(&mut self) -> Result<(), TransitionError> {
        if self.status == SubmissionStatus::Submitted {
            return Err(self.refuse("ignore"));
        }
        self.status = SubmissionStatus::Ignored;
        self.next_attempt_at = None;
        Ok(())
    }

    /// Whether this submission was ever delivered, for this content or an earlier one.
    pub fn was_ever_delivered(&self) -> bool {
        self.status == SubmissionStatus::Submitted
            || self.submitted_at.is_some()
            || !self.earlier_deliveries.is_empty()
    }

    /// Whether an attempt may start at `now`.
    pub fn is_due(&self, now: u64) -> bool {
        self.status == SubmissionStatus::Pending && self.next_attempt_at.is_none_or(|at| at <= now)
    }

    /// [`Submission::is_due`] when no backoff is longer than `cap_ms`: a next attempt
    /// stored further ahead than that can only come from a clock that has since gone
    /// back, and is due now (see [`retry_due_at`]).
    pub fn is_due_capped(&self, now: u64, cap_ms: u64) -> bool {
        self.status == SubmissionStatus::Pending && retry_due_at(self.next_attempt_at, now, cap_ms) <= now
    }
}

/// When a retry stored as `next_attempt_at` falls due at `now`, if no backoff is longer
/// than `cap_ms`: the stored time, or `now` when there is none or it lies more than the
/// cap ahead (stored under a clock that was ahead). A retry is never further away than
/// the cap, whatever the clock did.
pub fn retry_due_at(next_attempt_at: Option<u64>, now: u64, cap_ms: u64) -> u64 {
    match next_attempt_at {
        Some(at) if at > now.saturating_add(cap_ms) => now,
        Some(at) => at,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::SubmissionStatus::*;
    use super::*;

    fn in_status(status: SubmissionStatus) -> Submission {
        Submission {
            status,
            ..Submission::pending()
        }
    }

    #[test]
    fn happy_path_assigns_the_key_once() {
        let mut s = Submission::pending();
        assert_eq!(s.begin_attempt(10, || "k1".into()).unwrap(), "k1");
        s.retry_later("HTTP 503".into(), 50).unwrap();
        assert_eq!((s.status, s.attempts, s.next_attempt_at), (Pending, 1, Some(50)));
        assert!(!s.is_due(49) && s.is_due(50));
        // A configuration problem does not count the attempt.
        let mut c = Submission::pending();
        c.begin_attempt(1, || "k".into()).unwrap();
        c.await_configuration("TLS: untrusted".into(), 900).unwrap();
        assert_eq!((c.status, c.attempts, c.next_attempt_at), (Pending, 0, Some(900)));
        assert_eq!(c.last_error.as_deref(), Some("TLS: untrusted"));
        assert!(
            c.await_configuration("again".into(), 1).is_err(),
            "only from inFlight"
        );
        // Within the cap the stored time holds; beyond it (a clock that went back) it is due now.
        assert!(!s.is_due_capped(49, 1) && s.is_due_capped(50, 1));
        assert!(s.is_due_capped(48, 1), "50 is more than 1 after 48");
        assert!(!s.is_due_capped(48, 2));
        assert_eq!(retry_due_at(Some(50), 48, 2), 50);
        assert_eq!(retry_due_at(Some(50), 48, 1), 48);
        assert_eq!(retry_due_at(None, 48, 1), 0);
        assert_eq!(s.begin_attempt(60, || "k2".into()).unwrap(), "k1");
        s.succeed(70).unwrap();
        assert_eq!(
            (s.status, s.attempts, s.submitted_at, s.last_error),
            (Submitted, 2, Some(70), None)
        );
    }

    #[test]
    fn every_transition_is_allowed_or_refused_as_the_machine_says() {
        type Action = fn(&mut Submission) -> Result<(), TransitionError>;
        /// Allowed from -> the status after.
        type Allowed = &'static [(SubmissionStatus, SubmissionStatus)];
        // (name, action, the refusal's wording, where it is allowed)
        let actions: [(&str, Action, &str, Allowed); 7] = [
            (
                "begin",
                |s| s.begin_attempt(0, || "k".into()).map(|_| ()),
                "start an attempt on",
                &[(Pending, InFlight)],
            ),
            (
                "succeed",
                |s| s.succeed(0),
                "mark as submitted",
                &[(InFlight, Submitted)],
            ),
            (
                "retry_later",
                |s| s.retry_later("e".into(), 0),
                "schedule a retry of",
                &[(InFlight, Pending)],
            ),
            (
                "fail",
                |s| s.fail("e".into()),
                "mark as failed",
                &[(InFlight, Failed)],
            ),
            (
                "resume",
                |s| s.resume_interrupted(),
                "resume",
                &[(InFlight, Pending)],
            ),
            (
                "retry",
                |s| s.retry(),
                "retry",
                &[(Pending, Pending), (Failed, Pending), (Ignored, Pending)],
            ),
            (
                "ignore",
                |s| s.ignore(),
                "ignore",
                &[
                    (Pending, Ignored),
                    (InFlight, Ignored),
                    (Failed, Ignored),
                    (Ignored, Ignored),
                ],
            ),
        ];
        for (name, action, wording, allowed) in actions {
            for from in SubmissionStatus::ALL {
                let mut s = in_status(from);
                let before = s.clone();
                let result = action(&mut s);
                match allowed.iter().find(|(f, _)| *f == from) {
                    Some((_, to)) => {
                        assert_eq!(result, Ok(()), "{name} from {from}");
                        assert_eq!(s.status, *to, "{name} from {from}");
                    }
                    None => {
                        assert_eq!(
                            result,
                            Err(TransitionError {
                                from,
                                action: wording
                            }),
                            "{name} from {from}"
                        );
                        assert_eq!(s, before, "{name} from {from} changed state although refused");
                    }
                }
            }
        }
    }

    #[test]
    fn failures_and_resumes_keep_what_they_must() {
        let mut s = Submission::pending();
        s.begin_attempt(10, || "k".into()).unwrap();
        s.fail("HTTP 400".into()).unwrap();
        assert_eq!(
            (
                s.status,
                s.attempts,
                s.last_error.as_deref(),
                s.next_attempt_at,
                s.idempotency_key.as_deref()
            ),
            (Failed, 1, Some("HTTP 400"), None, Some("k"))
        );
        let mut s = Submission::pending();
        s.begin_attempt(10, || "k".into()).unwrap();
        s.resume_interrupted().unwrap();
        assert_eq!(
            (s.status, s.attempts, s.idempotency_key.as_deref()),
            (Pending, 1, Some("k"))
        );
        assert!(s.is_due(10), "a resumed attempt is due at once");
        let mut s = in_status(Failed);
        s.next_attempt_at = Some(99);
        s.ignore().unwrap();
        assert_eq!((s.status, s.next_attempt_at), (Ignored, None));
    }

    #[test]
    fn changed_content_and_late_outcomes_keep_every_delivery() {
        let mut s = Submission::pending();
        s.begin_attempt(10, || "old".into()).unwrap();
        s.succeed(20).unwrap();
        s.content_changed();
        assert_eq!(
            (s.status, s.attempts, s.idempotency_key.as_deref()),
            (Pending, 0, None)
        );
        assert_eq!(
            s.earlier_deliveries,
            vec![Delivery {
                key: Some("old".into()),
                at: Some(20)
            }]
        );
        assert!(s.was_ever_delivered());
        // An ignored session stays ignored when its content changes.
        let mut ignored = in_status(Ignored);
        ignored.content_changed();
        assert_eq!(ignored.status, Ignored);
        // A late success for other content is recorded beside; for this content, as its delivery.
        s.begin_attempt(30, || "new".into()).unwrap();
        s.ignore().unwrap();
        s.late_outcome("stale", Ok(35));
        assert_eq!(s.earlier_deliveries.len(), 2);
        assert_eq!(s.submitted_at, None);
        s.late_outcome("new", Ok(40));
        assert_eq!((s.status, s.submitted_at), (Ignored, Some(40)));
        s.late_outcome("new", Err("HTTP 500".into()));
        assert_eq!(s.last_error.as_deref(), Some("HTTP 500"));
        s.late_outcome("stale", Err("HTTP 502".into()));
        assert_eq!(
            s.last_error.as_deref(),
            Some("HTTP 500"),
            "a failure for gone content changes nothing"
        );
    }

    #[test]
    fn operator_retry_resets_attempts() {
        let mut s = in_status(Failed);
        s.attempts = 3;
        s.last_error = Some("HTTP 400".into());
        s.retry().unwrap();
        assert_eq!((s.status, s.attempts, s.last_error), (Pending, 0, None));
    }

    #[test]
    fn statuses_parse_case_insensitively() {
        assert_eq!("inflight".parse::<SubmissionStatus>(), Ok(InFlight));
        assert!("done".parse::<SubmissionStatus>().is_err());
    }
}
