//! Folding a journal into a session file, and recovering the journals of captures
//! whose process died.

use session_fs::{ClaimedJournal, FsError};
use session_model::{Element, Interruption, InterruptionReason, Session, SessionId};
use session_store::{SessionStore, StoreError};

use crate::CaptureError;
use crate::kept::KeptRecords;
use crate::record::{BeginRecord, EndRecord, Record};

/// What the first pass over a journal learns: the session without its elements, and
/// how many element records make it up.
pub(crate) struct Folded {
    /// The session, its `elements` empty: [`elements`] yields them.
    pub envelope: Session,
    /// How many element records follow the begin record.
    pub elements: usize,
    /// Records after the last readable one that could not be read.
    pub unreadable_records: bool,
}

/// Builds the session a journal's records describe, reading them one at a time and
/// keeping none. Deterministic: the same records always give the same session. A
/// capture with no end record was cut off by a crash, at its last recorded element.
pub(crate) fn fold(
    records: impl IntoIterator<Item = Result<Vec<u8>, FsError>>,
) -> Result<Option<Folded>, FsError> {
    let mut records = records.into_iter();
    let begin = match records.next().transpose()? {
        Some(bytes) => match serde_json::from_slice::<Record>(&bytes) {
            Ok(Record::Begin(begin)) => begin,
            _ => return Ok(None),
        },
        None => return Ok(None),
    };
    let mut count = 0;
    let mut last_seen = begin.start_time;
    let mut end: Option<EndRecord> = None;
    let mut unreadable_records = false;
    for bytes in records {
        match serde_json::from_slice::<Record>(&bytes?) {
            Ok(Record::Element(e)) if end.is_none() => {
                count += 1;
                last_seen = e.timestamp;
            }
            Ok(Record::End(e)) if end.is_none() => end = Some(e),
            // Nothing follows an end record, and a second begin is never written: a
            // record like that, or one that does not parse, is not ours to guess at.
            _ => {
                unreadable_records = true;
                break;
            }
        }
    }
    let envelope = envelope(begin, last_seen, end);
    Ok(Some(Folded {
        envelope,
        elements: count,
        unreadable_records,
    }))
}

/// The session, without its elements, that a capture's begin, the time of its last
/// element (`last_seen`, its start when it has none) and its end make. A capture with
/// no end was cut off by a crash, at its last element.
pub(crate) fn envelope(begin: BeginRecord, last_seen: u64, end: Option<EndRecord>) -> Session {
    let BeginRecord {
        id,
        session_number,
        start_time,
        device_ip,
        lis_ip,
        retention_days,
    } = begin;
    let (is_complete, end_time, interrupted) = match end {
        // The LIS went away: the session says so, complete or not.
        Some(EndRecord {
            at,
            interrupted,
            lis_gone: Some(gone),
        }) => (
            interrupted.is_none(),
            interrupted.is_none().then_some(at),
            Some(Interruption::lis_closed(gone.at, gone.missed_bytes)),
        ),
        Some(EndRecord {
            at,
            interrupted: None,
            lis_gone: None,
        }) => (true, Some(at), None),
        Some(EndRecord {
            at,
            interrupted: Some(reason),
            lis_gone: None,
        }) => (false, None, Some(interruption(at, reason))),
        None => (
            false,
            None,
            Some(interruption(last_seen, InterruptionReason::Crash)),
        ),
    };
    let mut envelope = Session::new(id, start_time, retention_days).with_session_number(session_number);
    envelope.end_time = end_time;
    envelope.device_ip = device_ip;
    envelope.lis_ip = lis_ip;
    envelope.is_complete = is_complete;
    envelope.interrupted = interrupted;
    envelope
}

/// The second pass: the first `count` element records after the begin record, as the
/// session's elements, one at a time. A record the first pass read as an element and
/// this one cannot is an error (the journal is held locked: it cannot have changed).
pub(crate) fn elements(
    records: impl IntoIterator<Item = Result<Vec<u8>, FsError>>,
    count: usize,
) -> impl Iterator<Item = Result<Element, CaptureError>> {
    records
        .into_iter()
        .skip(1)
        .take(count)
        .enumerate()
        .map(|(index, bytes)| match serde_json::from_slice::<Record>(&bytes?) {
            Ok(Record::Element(e)) => Ok(e.into_element(index)),
            _ => Err(CaptureError::JournalChanged { index }),
        })
}

/// How one claimed journal ended up.
pub(crate) enum Outcome {
    /// Written as this session (or found already written by an earlier fold); the
    /// session is returned without its elements.
    Session {
        session: Box<Session>,
        torn: bool,
        damaged: bool,
    },
    /// Not made a session (nothing readable, or its id taken by another session): the
    /// journal went to quarantine, for this reason.
    Quarantined { reason: &'static str },
    /// No whole record: the crash came before the begin was acknowledged, so nothing
    /// was promised. The journal is removed.
    Unbegun { torn: bool },
}

/// Folds a claimed journal into its session file and removes the journal; a journal
/// with damage beyond a torn tail is kept in quarantine instead of removed. Reads the
/// journal twice, a record at a time, so its memory does not grow with the journal.
pub(crate) fn settle(store: &SessionStore, claimed: ClaimedJournal) -> Result<Outcome, CaptureError> {
    let mut first_pass = claimed.records()?;
    let mut whole_records = 0usize;
    let folded = fold(first_pass.by_ref().inspect(|_| whole_records += 1))?;
    let end = first_pass.end().unwrap_or_default();
    drop(first_pass);
    if whole_records == 0 && !end.damaged {
        claimed.remove()?;
        return Ok(Outcome::Unbegun {
            torn: end.torn_bytes > 0,
        });
    }
    let Some(Folded {
        envelope: mut session,
        elements: count,
        unreadable_records,
    }) = folded
    else {
        return set_aside(claimed, "the journal has no readable begin record");
    };
    if &session.id != claimed.id() {
        return set_aside(claimed, "the journal's begin record names another session");
    }
    let damaged = end.damaged || unreadable_records;
    let torn = end.torn_bytes > 0 && !damaged;
    match store.create_streamed(&mut session, elements(claimed.records()?, count)) {
        Ok(_) => {}
        // Folded before, and the crash came before the journal was removed; or the id
        // was stored by someone else meanwhile (an operator's `put`), and then the
        // capture must not be lost with its journal.
        Err(StoreError::Fs(FsError::AlreadyExists { .. })) => {
            let stored = store.load(&session.id).ok().flatten().map(|d| d.session);
            let same = match stored {
                Some(stored) => same_capture(&stored, &session, elements(claimed.records()?, count))?,
                None => false,
            };
            if !same {
                return set_aside(
                    claimed,
                    "the id was taken by another session before this capture was stored; the capture is kept here",
                );
            }
        }
        Err(e) => return Err(e.into()),
    }
    if damaged {
        claimed
            .quarantine("records after a damaged one could not be read; the session holds those before it")?;
    } else {
        claimed.remove()?;
    }
    Ok(Outcome::Session {
        session: Box::new(session),
        torn,
        damaged,
    })
}

/// Folds a capture its own writer ended from the copy it kept of its records
/// (`kept`, then `end`): the session [`settle`] makes of the journal, without reading
/// the journal back, which is then removed. When the id is found taken, the journal
/// decides, as recovery would ([`settle`]: folded before, or someone else's).
pub(crate) fn settle_kept(
    store: &SessionStore,
    claimed: ClaimedJournal,
    kept: KeptRecords,
    end: EndRecord,
) -> Result<Outcome, CaptureError> {
    let KeptRecords { begin, elements, .. } = kept;
    let last_seen = elements.last().map_or(begin.start_time, |e| e.timestamp);
    let mut session = envelope(begin, last_seen, Some(end));
    let elements = elements
        .into_iter()
        .enumerate()
        .map(|(index, e)| Ok::<_, std::convert::Infallible>(e.into_element(index)));
    match store.create_streamed(&mut session, elements) {
        Ok(_) => {}
        Err(StoreError::Fs(FsError::AlreadyExists { .. })) => return settle(store, claimed),
        Err(e) => return Err(e.into()),
    }
    claimed.remove()?;
    Ok(Outcome::Session {
        session: Box::new(session),
        torn: false,
        damaged: false,
    })
}

/// Whether `stored` is this capture, folded before (delivery state and store metadata
/// may have changed since; what was captured may not). `folded` is the envelope, its
/// elements come from the journal.
fn same_capture(
    stored: &Session,
    folded: &Session,
    elements: impl Iterator<Item = Result<Element, CaptureError>>,
) -> Result<bool, CaptureError> {
    if (
        stored.session_number,
        stored.start_time,
        &stored.device_ip,
        &stored.lis_ip,
    ) != (
        folded.session_number,
        folded.start_time,
        &folded.device_ip,
        &folded.lis_ip,
    ) {
        return Ok(false);
    }
    let mut stored_elements = stored.elements.iter();
    for element in elements {
        if stored_elements.next() != Some(&element?) {
            return Ok(false);
        }
    }
    Ok(stored_elements.next().is_none())
}

fn set_aside(claimed: ClaimedJournal, reason: &'static str) -> Result<Outcome, CaptureError> {
    claimed.quarantine(reason)?;
    Ok(Outcome::Quarantined { reason })
}

/// What [`recover_journals`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalRecovery {
    /// Captures cut off by a crash, now session files marked interrupted.
    pub interrupted: Vec<SessionId>,
    /// Captures that had finished (completed or abandoned) but were not yet folded.
    pub finished: Vec<SessionId>,
    /// Journals whose last record a crash cut short (dropped; it was never acknowledged).
    pub torn_records: usize,
    /// Journals damaged before their end (a bad record with whole ones after it): the
    /// session holds the records before the damage, the journal is kept in `.quarantine/`.
    pub damaged: Vec<SessionId>,
    /// Journals not made sessions (nothing readable, or their id taken by another
    /// session), moved to `.quarantine/`.
    pub quarantined: Vec<SessionId>,
    /// Journals that could not be folded (the error names the file); left in place.
    pub failures: Vec<(SessionId, String)>,
}

/// Makes every journal no live capture holds into a session file: every acknowledged
/// element present, `isComplete: false` and `interrupted` (reason `crash`) unless the
/// journal recorded its end. One bad journal never stops the others.
pub fn recover_journals(store: &SessionStore) -> Result<JournalRecovery, CaptureError> {
    let mut report = JournalRecovery::default();
    for id in store.fs().journals()? {
        let claimed = match store.fs().claim_journal(&id) {
            Ok(Some(claimed)) => claimed,
            Ok(None) => continue,
            Err(e) => {
                report.failures.push((id, e.to_string()));
                continue;
            }
        };
        match settle(store, claimed) {
            Ok(Outcome::Session {
                session,
                torn,
                damaged,
            }) => {
                if torn {
                    report.torn_records += 1;
                }
                if damaged {
                    report.damaged.push(id.clone());
                }
                if session.is_complete
                    || session
                        .interrupted
                        .as_ref()
                        .is_some_and(|i| i.reason != InterruptionReason::Crash)
                {
                    report.finished.push(id);
                } else {
                    report.interrupted.push(id);
                }
            }
            Ok(Outcome::Quarantined { reason }) => {
                tracing::warn!(session = %id, reason, "a capture journal was kept in quarantine");
                report.quarantined.push(id);
            }
            Ok(Outcome::Unbegun { torn }) => report.torn_records += usize::from(torn),
            Err(e) => {
                tracing::error!(session = %id, error = %e, "could not recover a capture journal");
                report.failures.push((id, e.to_string()));
            }
        }
    }
    Ok(report)
}

fn interruption(at: u64, reason: InterruptionReason) -> Interruption {
    Interruption::new(at, reason)
}
