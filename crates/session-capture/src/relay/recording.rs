//! What a chunk's framing events do to the recorder: sessions begun, elements
//! recorded, sessions ended, each durable before the chunk is forwarded.

use std::sync::atomic::Ordering;

use session_model::InterruptionReason;

use super::{Capture, RelayStats};
use crate::{Framed, FramedElement, Recorder};

/// Applies the machine's events to the recorder. A failure is logged (without bytes)
/// and counted; the session it hit is left to recovery, which keeps what was durable.
pub(super) fn apply(
    capture: &mut Capture,
    events: Vec<Framed>,
    recorder: &Recorder,
    stats: &RelayStats,
    mut missed: u64,
) {
    // The chunk's bytes the LIS never received count against the session open when it
    // came, or else the one it began.
    if let (Some(since), Some(open)) = (capture.lis_gone_at, capture.open.as_mut())
        && missed > 0
    {
        open.lis_missed(since, std::mem::take(&mut missed));
    }
    let mut writing = Writing {
        capture,
        recorder,
        stats,
        missed,
        beginning: None,
        batch: Vec::new(),
    };
    for event in events {
        match event {
            Framed::Element(element) => writing.batch.push(element),
            Framed::Begin { at, unframed } => {
                writing.write_batch();
                // A session still open here was already ended by the machine; a
                // leftover means its ending failed to record: recovery takes its journal.
                writing.capture.open = None;
                writing.beginning = Some((at, unframed));
            }
            Framed::Complete { at } => writing.end_open(at, None),
            Framed::Abandon { at, reason } => writing.end_open(at, Some(reason)),
        }
    }
    writing.write_batch();
}

/// One chunk's events being written. The elements between two other events are
/// written together, with one sync: with the begin before them (the journal is created
/// holding them), with the end after them, or else appended to the open session.
struct Writing<'a> {
    capture: &'a mut Capture,
    recorder: &'a Recorder,
    stats: &'a RelayStats,
    /// Bytes the LIS never received, not yet counted against a session.
    missed: u64,
    /// A session begun (when, and whether unframed) whose journal waits for the
    /// elements that follow its begin.
    beginning: Option<(u64, bool)>,
    batch: Vec<FramedElement>,
}

impl Writing<'_> {
    /// Writes the elements gathered: into the journal of the session beginning
    /// (created now, holding them), or appended to the open session's.
    fn write_batch(&mut self) {
        let count = self.batch.len() as u64;
        let stats = self.stats;
        if let Some((at, unframed)) = self.beginning.take() {
            match self.recorder.begin_with(&self.capture.endpoints, at, &self.batch) {
                Ok(mut open) => {
                    tracing::info!(session = %open.id(), unframed, "capture: session opened");
                    stats.elements.fetch_add(count, Ordering::Relaxed);
                    if let Some(since) = self.capture.lis_gone_at {
                        open.lis_missed(since, std::mem::take(&mut self.missed));
                    }
                    self.capture.open = Some(open);
                }
                Err(e) => {
                    stats.unrecorded.fetch_add(1 + count, Ordering::Relaxed);
                    stats.recording_failures.fetch_add(1, Ordering::Relaxed);
                    self.capture.recording_failed = true;
                    tracing::error!(error = %e, "capture: CANNOT RECORD a new session; still forwarding");
                }
            }
            self.batch.clear();
            return;
        }
        if self.batch.is_empty() {
            return;
        }
        match self
            .capture
            .open
            .as_mut()
            .map(|open| open.append_all(&self.batch))
        {
            Some(Ok(())) => {
                stats.elements.fetch_add(count, Ordering::Relaxed);
            }
            Some(Err(e)) => {
                stats.unrecorded.fetch_add(count, Ordering::Relaxed);
                tracing::error!(error = %e, "capture: CANNOT RECORD an element; still forwarding (the session keeps what was recorded)");
                // Its journal may end in a partial record now: stop writing to it, and
                // let it go (unlocked), so that `status` shows it as failed and it is folded.
                stats.recording_failures.fetch_add(1, Ordering::Relaxed);
                self.capture.open = None;
                self.capture.recording_failed = true;
            }
            None => {
                stats.unrecorded.fetch_add(count, Ordering::Relaxed);
            }
        }
        self.batch.clear();
    }

    /// Journals the end of the open session at `at` (`interrupted`: cut off for that
    /// reason) with the elements gathered before it, durably; its file is stored
    /// later, by [`super::store_ended`].
    fn end_open(&mut self, at: u64, interrupted: Option<InterruptionReason>) {
        if self.beginning.is_some() {
            // Begun and ended by one chunk: the journal is created with the elements.
            self.write_batch();
        }
        let count = self.batch.len() as u64;
        let stats = self.stats;
        let Some(open) = self.capture.open.take() else {
            stats.unrecorded.fetch_add(count, Ordering::Relaxed);
            self.batch.clear();
            return;
        };
        match open.end_with(&self.batch, at, interrupted) {
            Ok(ended) => {
                stats.elements.fetch_add(count, Ordering::Relaxed);
                self.capture.ended.push(ended);
            }
            Err(e) => {
                stats.unrecorded.fetch_add(1 + count, Ordering::Relaxed);
                tracing::error!(error = %e, "capture: CANNOT RECORD the end of a session; its journal is kept for recovery");
            }
        }
        self.batch.clear();
    }
}
