//! What the worker remembers between passes so that a pass costs what changed, not the
//! store's size: the sessions that may need sending, and nothing else.
//!
//! It is derived state, never the truth. It is built from the files (at start-up, from
//! recovery's one pass, or by a skim of every file), kept current by the ids a
//! [`ChangeFeed`] reports and by each attempt's outcome, and rebuilt from the files
//! whenever a change may have been missed (the feed overflowed, or every
//! `SubmitConfig::rescan_interval`). A stale entry can neither lose nor repeat a
//! delivery: every attempt re-reads its session under the lock and sends only what is
//! sendable then; a session the index lacks is found by the next rebuild.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use session_model::{Session, SessionId, SubmissionStatus};
use tokio::sync::Notify;

/// More queued changes than this and the worker rebuilds from the files instead.
const MAX_QUEUED: usize = 10_000;

/// One session the worker may have to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    in_flight: bool,
    next_attempt_at: Option<u64>,
    start_time: u64,
}

/// The sessions that may need the worker: complete and pending (due now or later), or
/// `inFlight` (orphans to resume). Settled, failed, incomplete and interrupted sessions
/// are not kept: a store of 100,000 delivered sessions costs nothing here.
#[derive(Debug, Default)]
pub struct DeliveryIndex {
    candidates: HashMap<SessionId, Candidate>,
}

impl DeliveryIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what `session` now says (its id's entry is replaced or dropped).
    pub fn observe(&mut self, session: &Session) {
        let s = &session.submission;
        let candidate = match s.status {
            SubmissionStatus::InFlight => Some(Candidate {
                in_flight: true,
                next_attempt_at: None,
                start_time: session.start_time,
            }),
            // Every session that may be delivered under some setting: the attempt
            // applies the worker's (`deliver_lis_closed`).
            SubmissionStatus::Pending if session.may_deliver(true) => Some(Candidate {
                in_flight: false,
                next_attempt_at: s.next_attempt_at,
                start_time: session.start_time,
            }),
            _ => None,
        };
        match candidate {
            Some(c) => {
                self.candidates.insert(session.id.clone(), c);
            }
            None => {
                self.candidates.remove(&session.id);
            }
        }
    }

    /// The session is gone (deleted, damaged, unreadable).
    pub fn forget(&mut self, id: &SessionId) {
        self.candidates.remove(id);
    }

    /// How many sessions it holds.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    pub(crate) fn in_flight(&self) -> Vec<SessionId> {
        self.candidates
            .iter()
            .filter(|(_, c)| c.in_flight)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The pending sessions due at `now`, oldest retry first, then oldest capture; and
    /// when the next one not yet due falls due. A retry time more than `cap_ms` after
    /// `now` can only come from a clock that went back since it was stored (no backoff
    /// is longer than the cap): it is due now, never years away.
    pub(crate) fn due(&self, now: u64, cap_ms: u64) -> (Vec<SessionId>, Option<u64>) {
        let mut due: Vec<(u64, u64, &SessionId)> = Vec::new();
        let mut next = None::<u64>;
        for (id, c) in &self.candidates {
            if c.in_flight {
                continue;
            }
            match session_model::retry_due_at(c.next_attempt_at, now, cap_ms) {
                at if at > now => next = Some(next.map_or(at, |n| n.min(at))),
                at => due.push((at, c.start_time, id)),
            }
        }
        due.sort();
        (due.into_iter().map(|(_, _, id)| id.clone()).collect(), next)
    }
}

/// Tells the worker which sessions changed on disk (a directory watch, the capture
/// relay...), so that a pass reads only those. Cloneable; every clone feeds one worker.
#[derive(Debug, Clone)]
pub struct ChangeFeed {
    pub(crate) queue: Arc<Mutex<ChangeQueue>>,
    pub(crate) trigger: Arc<Notify>,
}

#[derive(Debug, Default)]
pub(crate) struct ChangeQueue {
    pub(crate) ids: HashSet<SessionId>,
    /// A change may have been missed: rebuild from the files.
    pub(crate) rescan: bool,
    /// Whether anyone feeds changes at all (until then every pass reads every file).
    pub(crate) attached: bool,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl ChangeFeed {
    /// A feed not yet attached to a worker (see `SubmissionWorker::with_feed`): what it
    /// collects meanwhile (at most 10,000 ids, then "rebuild") waits for the worker.
    pub fn new() -> Self {
        ChangeFeed {
            queue: Arc::default(),
            trigger: Arc::new(Notify::new()),
        }
    }

    /// `id`'s file was written, replaced or removed; a pass starts at once.
    pub fn changed(&self, id: SessionId) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.ids.len() >= MAX_QUEUED {
            queue.rescan = true;
            queue.ids.clear();
        } else if !queue.rescan {
            queue.ids.insert(id);
        }
        drop(queue);
        self.trigger.notify_one();
    }

    /// Changes may have been missed (the watch overflowed or failed): the next pass
    /// rebuilds from the files.
    pub fn rescan(&self) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).rescan = true;
        self.trigger.notify_one();
    }

    /// Takes what changed since the last take: the ids, and whether changes may have
    /// been missed (then read everything again). For a consumer of its own feed (the
    /// daemon's session index); a worker's feed is taken by the worker.
    pub fn take(&self) -> (Vec<SessionId>, bool) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Waits until something is fed (at once if something was fed since the last wait).
    pub async fn notified(&self) {
        self.trigger.notified().await;
    }
}

impl ChangeQueue {
    pub(crate) fn take(&mut self) -> (Vec<SessionId>, bool) {
        let rescan = std::mem::take(&mut self.rescan);
        (self.ids.drain().collect(), rescan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_model::{Interruption, InterruptionReason, Submission};

    fn session(id: &str, status: SubmissionStatus, complete: bool, next: Option<u64>) -> Session {
        let mut s: Session = session_store::decode(
            format!(r#"{{"id":"{id}","startTime":5,"isComplete":{complete},"elements":[],"messages":[]}}"#)
                .as_bytes(),
        )
        .unwrap()
        .session;
        s.submission = Submission {
            status,
            next_attempt_at: next,
            ..Submission::pending()
        };
        s
    }

    #[test]
    fn only_what_may_need_sending_is_kept_and_due_is_ordered() {
        let mut index = DeliveryIndex::new();
        index.observe(&session("done", SubmissionStatus::Submitted, true, None));
        index.observe(&session("open", SubmissionStatus::Pending, false, None));
        index.observe(&session("later", SubmissionStatus::Pending, true, Some(500)));
        index.observe(&session("retry", SubmissionStatus::Pending, true, Some(50)));
        index.observe(&session("fresh", SubmissionStatus::Pending, true, None));
        index.observe(&session("orphan", SubmissionStatus::InFlight, true, None));
        let mut cut = session("cut", SubmissionStatus::Pending, true, None);
        cut.interrupted = Some(Interruption::new(1, InterruptionReason::Crash));
        index.observe(&cut);
        assert_eq!(
            index.len(),
            4,
            "submitted, incomplete and interrupted are not kept"
        );
        let (due, next) = index.due(100, u64::MAX);
        let due: Vec<&str> = due.iter().map(SessionId::as_str).collect();
        assert_eq!(due, vec!["fresh", "retry"]);
        assert_eq!(next, Some(500));
        assert_eq!(index.in_flight(), vec![SessionId::new("orphan").unwrap()]);
        // Delivered since: dropped. Gone: dropped.
        index.observe(&session("fresh", SubmissionStatus::Submitted, true, None));
        index.forget(&SessionId::new("retry").unwrap());
        assert_eq!(index.due(100, u64::MAX).0, Vec::<SessionId>::new());
        assert_eq!(index.due(500, u64::MAX).0, vec![SessionId::new("later").unwrap()]);
    }

    #[test]
    fn a_retry_stored_beyond_the_cap_is_due_now() {
        // Stored under a clock 94 years ahead, read back at the right time.
        let year = 365 * 24 * 3_600_000u64;
        let now = 1_796_000_000_000;
        let mut index = DeliveryIndex::new();
        index.observe(&session(
            "stuck",
            SubmissionStatus::Pending,
            true,
            Some(now + 94 * year),
        ));
        index.observe(&session(
            "soon",
            SubmissionStatus::Pending,
            true,
            Some(now + 60_000),
        ));
        let cap = 15 * 60_000;
        let (due, next) = index.due(now, cap);
        assert_eq!(due, vec![SessionId::new("stuck").unwrap()]);
        assert_eq!(next, Some(now + 60_000), "a retry within the cap keeps its time");
        // Exactly at the cap it still waits; a minute past it, it is due.
        let mut edge = DeliveryIndex::new();
        edge.observe(&session("edge", SubmissionStatus::Pending, true, Some(now + cap)));
        assert_eq!(edge.due(now, cap), (Vec::new(), Some(now + cap)));
        assert_eq!(edge.due(now - 60_000, cap).0.len(), 1);
    }

    #[test]
    fn a_feed_that_overflows_asks_for_a_rebuild() {
        let feed = ChangeFeed {
            queue: Arc::default(),
            trigger: Arc::new(Notify::new()),
        };
        for n in 0..MAX_QUEUED + 5 {
            feed.changed(SessionId::new(format!("s-{n}")).unwrap());
        }
        let (ids, rescan) = feed.queue.lock().unwrap().take();
        assert!(rescan, "an overflow means changes may be missing");
        assert!(ids.len() < MAX_QUEUED);
        let (ids, rescan) = feed.queue.lock().unwrap().take();
        assert!(ids.is_empty() && !rescan, "taken once");
    }
}
