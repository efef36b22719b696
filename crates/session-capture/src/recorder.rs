//! The recorder: begin, append, complete or abandon, each durable when it returns.

use std::ops::Range;
use std::sync::Mutex;

use session_fs::{ClaimedJournal, FsError, Journal, now_ms};
use session_model::{Base64Bytes, InterruptionReason, SessionId};
use session_store::SessionStore;

use crate::CaptureError;
use crate::fold::{Outcome, settle, settle_kept};
use crate::framing::FramedElement;
use crate::kept::KeptRecords;
use crate::record::{BeginRecord, ElementRecord, EndRecord, LisGone, Record};

/// The counter in `.state/` that session numbers come from.
const NUMBERS: &str = "capture-numbers";
/// How many numbers one reservation takes: one durable write per this many sessions.
const BLOCK: u64 = 64;

/// Who talked to whom: the two ends' addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The analyzer's address (`deviceIP`).
    pub device_ip: Option<String>,
    /// The LIS's address (`lisIP`).
    pub lis_ip: Option<String>,
}

/// Records captures into one store. Share it (`Arc`) between connections.
#[derive(Debug)]
pub struct Recorder {
    store: SessionStore,
    numbers: Mutex<Range<u64>>,
}

impl Recorder {
    /// A recorder over `store`; sessions are kept for the store's retention
    /// (`DecodeOptions::retention_days`).
    pub fn new(store: SessionStore) -> Self {
        Recorder {
            store,
            numbers: Mutex::new(0..0),
        }
    }

    /// The store it records into.
    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// Opens a capture that started at `start_time`: a new id (`session-<n>`) and
    /// `sessionId` (`n`) that no capture of this store ever had, in any process, before
    /// or after a restart. Returns once the capture's journal is durable.
    pub fn begin(&self, endpoints: &Endpoints, start_time: u64) -> Result<OpenCapture, CaptureError> {
        self.begin_with(endpoints, start_time, &[])
    }

    /// [`begin`](Self::begin) with the capture's first elements (those that came with
    /// its start, such as the ENQ that opened it): the journal is created holding them,
    /// with one sync for its start and them. When this returns `Ok`, every one survives
    /// any crash, as after [`OpenCapture::append_all`].
    pub fn begin_with(
        &self,
        endpoints: &Endpoints,
        start_time: u64,
        elements: &[FramedElement],
    ) -> Result<OpenCapture, CaptureError> {
        let element_records = element_records(elements);
        let element_bytes = encoded(&element_records)?;
        loop {
            let number = self.next_number()?;
            let id = SessionId::new(format!("session-{number}"))
                .map_err(|e| CaptureError::Numbering(e.to_string()))?;
            let begin = BeginRecord {
                id: id.clone(),
                session_number: number,
                start_time,
                device_ip: endpoints.device_ip.clone(),
                lis_ip: endpoints.lis_ip.clone(),
                retention_days: self.store.options().retention_days,
            };
            let begin_bytes = Record::Begin(begin.clone()).to_bytes()?;
            let first: Vec<&[u8]> = std::iter::once(begin_bytes.as_slice())
                .chain(element_bytes.iter().map(Vec::as_slice))
                .collect();
            let journal = match self.store.fs().create_journal_with(&id, &first) {
                Ok(journal) => journal,
                // An operator's `put` took the name: take the next number.
                Err(FsError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            return Ok(OpenCapture {
                store: self.store.clone(),
                journal,
                elements: elements.len() as u64,
                lis_gone: None,
                kept: KeptRecords::new(begin).with(element_records),
            });
        }
    }

    /// Folds every journal no live capture holds (its process died) into a session
    /// file; see [`crate::recover_journals`].
    pub fn recover(&self) -> Result<crate::JournalRecovery, CaptureError> {
        crate::recover_journals(&self.store)
    }

    fn next_number(&self) -> Result<u64, CaptureError> {
        let mut numbers = self.numbers.lock().unwrap_or_else(|p| p.into_inner());
        if numbers.is_empty() {
            // Numbers start at the clock's milliseconds, far above the app's counter
            // (`session-1`, `session-2`...), so its files are never collided with; the
            // stored high mark keeps them rising when the clock goes back.
            *numbers = self.store.fs().reserve_numbers(NUMBERS, BLOCK, now_ms())?;
        }
        Ok(numbers.next().unwrap_or_default())
    }
}

/// A capture in progress. Dropping it without [`complete`](Self::complete) or
/// [`abandon`](Self::abandon) leaves its journal for recovery, which keeps every element
/// appended and marks the session interrupted (`crash`).
#[derive(Debug)]
pub struct OpenCapture {
    store: SessionStore,
    journal: Journal,
    elements: u64,
    lis_gone: Option<LisGone>,
    /// What it journaled, while that is small: its session is stored from this copy.
    kept: Option<KeptRecords>,
}

impl OpenCapture {
    /// The session's id.
    pub fn id(&self) -> &SessionId {
        self.journal.id()
    }

    /// How many elements were appended.
    pub fn elements(&self) -> u64 {
        self.elements
    }

    /// Appends one element; when this returns `Ok`, the element survives any crash.
    /// Costs one record and one `fsync`, whatever the session's size.
    pub fn append(&mut self, element: &FramedElement) -> Result<(), CaptureError> {
        self.append_all(std::slice::from_ref(element))
    }

    /// Appends elements in order with one `fsync` for all of them (the elements one
    /// chunk completed): when this returns `Ok`, every one survives any crash.
    pub fn append_all(&mut self, elements: &[FramedElement]) -> Result<(), CaptureError> {
        let records = element_records(elements);
        let encoded = encoded(&records)?;
        let payloads: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        self.journal.append_all(&payloads)?;
        self.elements += elements.len() as u64;
        self.kept = self.kept.take().and_then(|kept| kept.with(records));
        Ok(())
    }

    /// The LIS is gone (it closed, reset or refused its side at `since`), and `bytes`
    /// more of the analyzer's never reached it. The session, complete or not, is then
    /// stored interrupted (`lisClosed`) with the count. The first call's time stands.
    pub fn lis_missed(&mut self, since: u64, bytes: u64) {
        let gone = self.lis_gone.get_or_insert(LisGone {
            at: since,
            missed_bytes: 0,
        });
        gone.missed_bytes = gone.missed_bytes.saturating_add(bytes);
    }

    /// The end marker arrived at `end_time`: the session file is written (complete,
    /// pending delivery) and the journal removed.
    pub fn complete(self, end_time: u64) -> Result<SessionId, CaptureError> {
        self.end(end_time, None)?.store()
    }

    /// The capture was cut off at `at` (`reason`): the session file is written with
    /// every element, `isComplete: false` and `interrupted`, and is never submitted.
    pub fn abandon(self, at: u64, reason: InterruptionReason) -> Result<SessionId, CaptureError> {
        self.end(at, Some(reason))?.store()
    }

    /// Journals the end (at `at`; `interrupted`: cut off for that reason, else
    /// complete) and returns once it is durable, leaving the session file to
    /// [`EndedCapture::store`]: a relay forwards the end marker first and stores the
    /// session after, off the conversation's path. Whatever happens to the
    /// [`EndedCapture`], the journal now says how the capture ended.
    pub fn end(self, at: u64, interrupted: Option<InterruptionReason>) -> Result<EndedCapture, CaptureError> {
        self.end_with(&[], at, interrupted)
    }

    /// [`end`](Self::end) after appending `elements` (those that came with the end,
    /// such as the EOT that closed it): one sync for them and the end record. When
    /// this returns `Ok`, every one and the end survive any crash.
    pub fn end_with(
        mut self,
        elements: &[FramedElement],
        at: u64,
        interrupted: Option<InterruptionReason>,
    ) -> Result<EndedCapture, CaptureError> {
        let end = EndRecord {
            at,
            interrupted,
            lis_gone: self.lis_gone,
        };
        let end_bytes = Record::End(end.clone()).to_bytes()?;
        let records = element_records(elements);
        let encoded = encoded(&records)?;
        let payloads: Vec<&[u8]> = encoded
            .iter()
            .map(Vec::as_slice)
            .chain(std::iter::once(end_bytes.as_slice()))
            .collect();
        // The end is journaled first: if writing the session file fails (a full disk),
        // recovery later folds the journal with the right ending.
        self.journal.append_all(&payloads)?;
        Ok(EndedCapture {
            store: self.store,
            claimed: self.journal.into_claimed()?,
            kept: self
                .kept
                .and_then(|kept| kept.with(records))
                .map(|kept| (kept, end)),
        })
    }
}

/// Each element as its journal record.
fn element_records(elements: &[FramedElement]) -> Vec<ElementRecord> {
    elements
        .iter()
        .map(|element| ElementRecord {
            timestamp: element.timestamp,
            direction: element.direction.clone(),
            kind: element.kind.clone(),
            data: Base64Bytes(element.bytes.clone()),
        })
        .collect()
}

/// Each element record's bytes in the journal.
fn encoded(records: &[ElementRecord]) -> Result<Vec<Vec<u8>>, serde_json::Error> {
    records.iter().map(Record::element_bytes).collect()
}

/// A capture whose end is journaled, its session file not yet written: see
/// [`OpenCapture::end`]. Dropped unstored, it lets its journal go, and recovery folds
/// it with the ending it records.
#[derive(Debug)]
#[must_use = "an ended capture is stored as a session by `store`"]
pub struct EndedCapture {
    store: SessionStore,
    claimed: ClaimedJournal,
    /// The copy of what it journaled and its end, when the capture was small enough
    /// to keep one.
    kept: Option<(KeptRecords, EndRecord)>,
}

impl EndedCapture {
    /// The session's id.
    pub fn id(&self) -> &SessionId {
        self.claimed.id()
    }

    /// Folds the journal into the session file and removes it. A small capture is
    /// folded from the copy of its records it kept, without reading its journal back:
    /// the same session either way.
    pub fn store(self) -> Result<SessionId, CaptureError> {
        let id = self.claimed.id().clone();
        let outcome = match self.kept {
            Some((kept, end)) => settle_kept(&self.store, self.claimed, kept, end)?,
            None => settle(&self.store, self.claimed)?,
        };
        match outcome {
            Outcome::Session { .. } => Ok(id),
            Outcome::Quarantined { reason } => Err(CaptureError::KeptInQuarantine { id, reason }),
            Outcome::Unbegun { .. } => Err(CaptureError::KeptInQuarantine {
                id,
                reason: "its journal read back with no record (removed: it held nothing)",
            }),
        }
    }
}
