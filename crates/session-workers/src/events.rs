//! What the workers tell whoever listens (the app's UI consumed these).

use crate::cleanup::CleanupSummary;

/// One event from a worker, sent on a broadcast channel: slow listeners miss old
/// events, and no listener ever slows a worker down.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// A cleanup run finished.
    Cleanup(CleanupSummary),
    /// Submission queue state.
    Progress {
        /// Sessions due and not yet started in this pass.
        queued: usize,
        /// Requests under way.
        in_flight: usize,
    },
    /// A session was delivered.
    Submitted {
        /// The session.
        id: String,
    },
    /// An attempt failed and will be retried.
    Retrying {
        /// The session.
        id: String,
        /// Attempts so far.
        attempts: u32,
        /// When the next attempt may start, epoch ms.
        next_attempt_at: u64,
        /// What went wrong (never a message's content).
        error: String,
    },
    /// An attempt failed for good.
    Failed {
        /// The session.
        id: String,
        /// What went wrong.
        error: String,
    },
}
