//! Folding a journal into a session file, and recovering the journals of captures
//! whose process died.

use session_fs::{ClaimedJournal, FsError};
use session_migrate::{SessionStore, StoreError};
use session_model::{
    DAY_MS, Element, Interruption, InterruptionReason, Metadata, Session, SessionId, Submission,
    UnknownFields,
};

use crate::CaptureError;
use crate::record::{BeginRecord, EndRecord, Record};

/// A journal read into a session.
pub(crate) struct Folded {
    pub session: Session,
    /// Records after the last readable one that could not be read.
    pub unreadable_records: bool,
}

/// Builds the session a journal's records describe. Deterministic: the same records
/// always give the same session. A capture with no end record was cut off by a crash,
/// at its last recorded element.
pub(crate) fn fold(records: &[Vec<u8>]) -> Option<Folded> {
    let mut parsed = records.iter().map(|r| serde_json::from_slice::<Record>(r));
    let Some(Ok(Record::Begin(begin))) = parsed.next() else {
        return None;
    };
    let BeginRecord {
        id,
        session_number,
        start_time,
        device_ip,
        lis_ip,
        retention_days,
    } = begin;
    let mut elements = Vec::new();
    let mut end: Option<EndRecord> = None;
    let mut unreadable_records = false;
    for record in parsed {
        match record {
            Ok(Record::Element(e)) if end.is_none() => {
                let index = elements.len();
                elements.push(Element {
                    id: format!("element-{}-{index}", e.timestamp),
                    timestamp: e.timestamp,
                    direction: e.direction,
                    kind: e.kind,
                    data: e.data,
                    unknown: UnknownFields::new(),
                });
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
    let last_seen = elements.last().map_or(start_time, |e| e.timestamp);
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
    let session = Session {
        id,
        session_number: Some(session_number),
        start_time,
        end_time,
        device_ip,
        lis_ip,
        is_complete,
        interrupted,
        elements,
        persisted_until: start_time.saturating_add(u64::from(retention_days) * DAY_MS),
        submission: Submission::pending(),
        metadata: Metadata {
            version: session_model::CURRENT_VERSION.into(),
            saved_at: 0,
            retention_days,
            revision: 0,
            unknown: UnknownFields::new(),
        },
        unknown: UnknownFields::new(),
    };
    Some(Folded {
        session,
        unreadable_records,
    })
}

/// How one claimed journal ended up.
pub(crate) enum Outcome {
    /// Written as this session (or found already written by an earlier fold).
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
/// with damage beyond a torn tail is kept in quarantine instead of removed.
pub(crate) fn settle(store: &SessionStore, claimed: ClaimedJournal) -> Result<Outcome, CaptureError> {
    let contents = claimed.contents();
    if contents.records.is_empty() && !contents.damaged {
        let torn = contents.torn_bytes > 0;
        claimed.remove()?;
        return Ok(Outcome::Unbegun { torn });
    }
    let Some(Folded {
        mut session,
        unreadable_records,
    }) = fold(&contents.records)
    else {
        return set_aside(claimed, "the journal has no readable begin record");
    };
    if &session.id != claimed.id() {
        return set_aside(claimed, "the journal's begin record names another session");
    }
    let damaged = contents.damaged || unreadable_records;
    let torn = contents.torn_bytes > 0 && !damaged;
    match store.create(&mut session) {
        Ok(_) => {}
        // Folded before, and the crash came before the journal was removed; or the id
        // was stored by someone else meanwhile (an operator's `put`), and then the
        // capture must not be lost with its journal.
        Err(StoreError::Fs(FsError::AlreadyExists { .. })) => {
            let stored = store.load(&session.id).ok().flatten().map(|d| d.session);
            if !stored.is_some_and(|stored| same_capture(&stored, &session)) {
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

/// Whether `stored` is this capture, folded before (delivery state and store metadata
/// may have changed since; what was captured may not).
fn same_capture(stored: &Session, folded: &Session) -> bool {
    (
        stored.session_number,
        stored.start_time,
        &stored.elements,
        &stored.device_ip,
        &stored.lis_ip,
    ) == (
        folded.session_number,
        folded.start_time,
        &folded.elements,
        &folded.device_ip,
        &folded.lis_ip,
    )
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
    Interruption {
        at,
        reason,
        unknown: UnknownFields::new(),
    }
}
