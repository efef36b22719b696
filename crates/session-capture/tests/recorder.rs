//! The recorder on a real filesystem: what `complete`, `abandon` and a dropped capture
//! leave, ids that never repeat, and recovery of journals (torn, damaged, empty).

use session_capture::{Endpoints, FramedElement, Recorder, recover_journals};
use session_model::{Direction, ElementKind, InterruptionReason, SessionId};
use session_store::{DecodeOptions, SessionStore};

fn recorder(dir: &std::path::Path) -> Recorder {
    Recorder::new(SessionStore::open(dir, DecodeOptions::default().retention_days(10)).unwrap())
}

fn element(n: u64, kind: ElementKind, bytes: &[u8]) -> FramedElement {
    FramedElement {
        timestamp: 1_000 + n,
        direction: Direction::DeviceToPc,
        kind,
        bytes: bytes.to_vec(),
    }
}

fn endpoints() -> Endpoints {
    Endpoints {
        device_ip: Some("10.0.0.7".into()),
        lis_ip: Some("10.0.0.1".into()),
    }
}

fn journal_path(dir: &std::path::Path, id: &SessionId) -> std::path::PathBuf {
    dir.join(".journal").join(format!("{id}.journal"))
}

#[test]
fn a_completed_capture_is_a_complete_pending_session_with_every_element() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let mut open = rec.begin(&endpoints(), 1_000).unwrap();
    let id = open.id().clone();
    assert!(journal_path(tmp.path(), &id).exists());
    open.append(&element(0, ElementKind::Start, b"\x05")).unwrap();
    open.append(&element(1, ElementKind::Message, b"MSH|1\r\xff\r\n"))
        .unwrap();
    assert_eq!(open.elements(), 2);
    assert_eq!(open.complete(1_500).unwrap(), id);
    assert!(
        !journal_path(tmp.path(), &id).exists(),
        "the journal is folded and removed"
    );
    let s = rec.store().load(&id).unwrap().unwrap().session;
    assert!(s.is_complete && s.interrupted.is_none());
    assert_eq!((s.start_time, s.end_time), (1_000, Some(1_500)));
    assert_eq!(s.device_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(s.lis_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(s.elements.len(), 2);
    assert_eq!(
        s.elements[1].data.0, b"MSH|1\r\xff\r\n",
        "bytes exactly, UTF-8 or not"
    );
    assert_eq!(s.elements[1].timestamp, 1_001);
    assert_eq!(s.elements[0].kind, ElementKind::Start);
    assert_eq!(s.persisted_until, 1_000 + 10 * session_model::DAY_MS);
    assert_eq!(s.metadata.retention_days, 10);
    assert_eq!(
        s.session_number,
        Some(id.as_str()["session-".len()..].parse().unwrap())
    );
    assert!(s.is_sendable(u64::MAX));
}

#[test]
fn an_abandoned_capture_is_interrupted_and_never_sendable() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let mut open = rec.begin(&endpoints(), 1_000).unwrap();
    open.append(&element(0, ElementKind::Start, b"\x05")).unwrap();
    let id = open.abandon(1_200, InterruptionReason::ConnectionClosed).unwrap();
    let s = rec.store().load(&id).unwrap().unwrap().session;
    assert!(!s.is_complete && s.end_time.is_none());
    let cut = s.interrupted.as_ref().unwrap();
    assert_eq!(
        (cut.at, &cut.reason),
        (1_200, &InterruptionReason::ConnectionClosed)
    );
    assert!(!s.is_sendable(u64::MAX));
}

#[test]
fn a_dropped_capture_is_recovered_as_cut_off_by_a_crash_at_its_last_element() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let mut open = rec.begin(&endpoints(), 1_000).unwrap();
    let id = open.id().clone();
    open.append(&element(0, ElementKind::Start, b"\x05")).unwrap();
    open.append(&element(7, ElementKind::Message, b"MSH|1\r\n"))
        .unwrap();
    // While it lives, nobody takes its journal.
    assert_eq!(
        recover_journals(rec.store()).unwrap().interrupted,
        Vec::<SessionId>::new()
    );
    drop(open);
    let found = rec.recover().unwrap();
    assert_eq!(found.interrupted, vec![id.clone()]);
    assert!(found.finished.is_empty() && found.quarantined.is_empty() && found.failures.is_empty());
    assert_eq!(found.torn_records, 0);
    let s = rec.store().load(&id).unwrap().unwrap().session;
    assert_eq!(s.elements.len(), 2);
    let cut = s.interrupted.unwrap();
    assert_eq!((cut.at, cut.reason), (1_007, InterruptionReason::Crash));
    assert!(!journal_path(tmp.path(), &id).exists());
    // Again: nothing to do.
    assert_eq!(rec.recover().unwrap(), Default::default());
}

#[test]
fn elements_begun_with_and_ended_with_are_kept_in_order_and_survive_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let first = [
        element(0, ElementKind::Start, b"\x05"),
        element(1, ElementKind::Message, b"MSH|first\r\n"),
    ];
    let mut open = rec.begin_with(&endpoints(), 1_000, &first).unwrap();
    assert_eq!(open.elements(), 2);
    let id = open.id().clone();
    open.append(&element(2, ElementKind::Message, b"MSH|middle\r\n"))
        .unwrap();
    let last = [
        element(3, ElementKind::Message, b"MSH|last\r\n"),
        element(4, ElementKind::End, b"\x04"),
    ];
    let ended = open.end_with(&last, 1_500, None).unwrap();
    assert_eq!(ended.store().unwrap(), id);
    let s = rec.store().load(&id).unwrap().unwrap().session;
    assert!(s.is_complete && s.interrupted.is_none());
    assert_eq!(s.end_time, Some(1_500));
    let stamps: Vec<u64> = s.elements.iter().map(|e| e.timestamp).collect();
    assert_eq!(stamps, [1_000, 1_001, 1_002, 1_003, 1_004]);
    assert_eq!(s.elements[4].kind, ElementKind::End);

    // Cut off right after its start: the elements it began with are kept.
    let open = rec
        .begin_with(&endpoints(), 2_000, &[element(9, ElementKind::Start, b"\x05")])
        .unwrap();
    let cut_id = open.id().clone();
    drop(open);
    assert_eq!(rec.recover().unwrap().interrupted, vec![cut_id.clone()]);
    let s = rec.store().load(&cut_id).unwrap().unwrap().session;
    assert_eq!(s.elements.len(), 1);
    assert_eq!(s.interrupted.unwrap().at, 1_009);
}

#[test]
fn ids_and_numbers_never_repeat_across_recorders_and_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3 {
        // A new recorder is a restart: its numbers continue above the last reservation.
        let rec = recorder(tmp.path());
        for _ in 0..70 {
            let open = rec.begin(&Endpoints::default(), 1).unwrap();
            assert!(seen.insert(open.id().clone()), "{} again", open.id());
            open.abandon(2, InterruptionReason::Shutdown).unwrap();
        }
    }
    let numbers: Vec<u64> = seen
        .iter()
        .map(|id| id.as_str()["session-".len()..].parse().unwrap())
        .collect();
    assert!(
        numbers.iter().all(|&n| n >= 1_700_000_000_000),
        "numbers start at the clock's ms"
    );
}

#[test]
fn a_name_already_taken_by_a_session_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let first = rec.begin(&Endpoints::default(), 1).unwrap();
    let next_number: u64 = first.id().as_str()["session-".len()..].parse::<u64>().unwrap() + 1;
    // An operator stored a session under the next name.
    let taken = format!("session-{next_number}");
    std::fs::write(
        tmp.path().join(format!("{taken}.json")),
        format!(r#"{{"id":"{taken}","startTime":1,"isComplete":true,"messages":[]}}"#),
    )
    .unwrap();
    let second = rec.begin(&Endpoints::default(), 1).unwrap();
    assert_ne!(second.id().as_str(), taken);
    assert_ne!(second.id(), first.id());
}

#[test]
fn a_torn_tail_is_dropped_and_counted_and_damage_is_kept_in_quarantine() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let mut torn = rec.begin(&Endpoints::default(), 1).unwrap();
    torn.append(&element(0, ElementKind::Start, b"\x05")).unwrap();
    let torn_id = torn.id().clone();
    drop(torn);
    let mut bytes = test_support::journal_written(&journal_path(tmp.path(), &torn_id));
    bytes.extend_from_slice(&[50, 0, 0, 0, 9, 9]);
    std::fs::write(journal_path(tmp.path(), &torn_id), &bytes).unwrap();

    let mut damaged = rec.begin(&Endpoints::default(), 1).unwrap();
    damaged.append(&element(0, ElementKind::Start, b"\x05")).unwrap();
    damaged
        .append(&element(1, ElementKind::Message, b"MSH|1\r\n"))
        .unwrap();
    damaged
        .append(&element(2, ElementKind::Message, b"MSH|2\r\n"))
        .unwrap();
    let damaged_id = damaged.id().clone();
    drop(damaged);
    let path = journal_path(tmp.path(), &damaged_id);
    let mut bytes = test_support::journal_written(&path);
    // Flip a byte inside the second element's record: the third is whole after it.
    let claimed = rec.store().fs().claim_journal(&damaged_id).unwrap().unwrap();
    let records = claimed.contents().unwrap().records;
    drop(claimed);
    let (last, second) = (records[records.len() - 1].len(), records[records.len() - 2].len());
    let at = bytes.len() - (8 + last) - second / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let found = rec.recover().unwrap();
    assert_eq!(found.torn_records, 1);
    assert_eq!(found.damaged, vec![damaged_id.clone()]);
    assert_eq!(found.interrupted.len(), 2);
    assert_eq!(
        rec.store()
            .load(&torn_id)
            .unwrap()
            .unwrap()
            .session
            .elements
            .len(),
        1
    );
    let kept = rec.store().load(&damaged_id).unwrap().unwrap().session;
    assert!(kept.elements.len() < 3, "only the records before the damage");
    let quarantine = test_support::names_in(&tmp.path().join(".quarantine"));
    assert!(
        quarantine
            .iter()
            .any(|n| n.ends_with(&format!("{damaged_id}.journal"))),
        "the damaged journal is kept: {quarantine:?}"
    );
    assert!(
        !quarantine.iter().any(|n| n.contains(torn_id.as_str())),
        "a torn tail is not damage"
    );
}

#[test]
fn a_journal_without_a_begin_record_is_removed_or_quarantined_never_made_a_session() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let open = rec.begin(&Endpoints::default(), 1).unwrap();
    let id = open.id().clone();
    drop(open);
    // Only the header: the begin record was never acknowledged.
    std::fs::write(journal_path(tmp.path(), &id), session_fs::JOURNAL_HEADER).unwrap();
    let found = rec.recover().unwrap();
    assert_eq!(found, Default::default());
    assert!(rec.store().load(&id).unwrap().is_none());
    assert!(!journal_path(tmp.path(), &id).exists());
    // A whole record that is not a begin: not ours to guess at.
    let open = rec.begin(&Endpoints::default(), 1).unwrap();
    let id = open.id().clone();
    drop(open);
    hand_journal(tmp.path(), id.as_str(), &[r#"{"element":{}}"#.to_owned()]);
    let found = rec.recover().unwrap();
    assert_eq!(found.quarantined, vec![id.clone()]);
    assert!(rec.store().load(&id).unwrap().is_none());
}

#[test]
fn an_id_stored_by_someone_else_meanwhile_never_costs_the_capture() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let mut open = rec.begin(&endpoints(), 1_000).unwrap();
    let id = open.id().clone();
    open.append(&element(0, ElementKind::Start, b"\x05")).unwrap();
    // An operator's `put` of that very id while the capture is open.
    let theirs = format!(r#"{{"id":"{id}","startTime":5,"isComplete":true,"messages":[]}}"#);
    std::fs::write(tmp.path().join(format!("{id}.json")), &theirs).unwrap();
    match open.complete(2_000) {
        Err(session_capture::CaptureError::KeptInQuarantine { id: kept, reason }) => {
            assert_eq!(kept, id);
            assert!(reason.contains("taken"), "{reason}");
        }
        other => panic!("expected the capture kept aside, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(tmp.path().join(format!("{id}.json"))).unwrap(),
        theirs
    );
    let kept = test_support::names_in(&tmp.path().join(".quarantine"));
    assert!(
        kept.iter().any(|n| n.ends_with(&format!("{id}.journal"))),
        "{kept:?}"
    );
}

/// A journal of these records, as a capture that died would have left it (not held).
fn hand_journal(dir: &std::path::Path, id: &str, records: &[String]) {
    let store = session_fs::Store::open(dir).unwrap();
    let id = session_model::SessionId::new(id).unwrap();
    let _ = std::fs::remove_file(dir.join(".journal").join(format!("{id}.journal")));
    let mut journal = store.create_journal(&id).unwrap();
    for r in records {
        journal.append(r.as_bytes()).unwrap();
    }
}

fn begin_record(id: &str) -> String {
    format!(r#"{{"begin":{{"id":"{id}","sessionId":7,"startTime":1000,"retentionDays":10}}}}"#)
}

const START: &str =
    r#"{"element":{"timestamp":1001,"direction":"device-to-pc","type":"start","data":"BQ=="}}"#;

#[test]
fn journals_recovery_did_not_write_itself_are_judged_record_by_record() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    // Ended but not folded (the crash came between): a finished session, not a crash.
    hand_journal(
        tmp.path(),
        "session-1",
        &[
            begin_record("session-1"),
            START.into(),
            r#"{"end":{"at":1500}}"#.into(),
        ],
    );
    // An element after the end: what came before is kept, the journal set aside.
    hand_journal(
        tmp.path(),
        "session-2",
        &[
            begin_record("session-2"),
            START.into(),
            r#"{"end":{"at":1500}}"#.into(),
            START.into(),
        ],
    );
    // A begin record naming another session: not made a session at all.
    hand_journal(tmp.path(), "session-3", &[begin_record("session-9")]);
    // Only a torn record after the header: the begin was never acknowledged.
    let mut torn = session_fs::JOURNAL_HEADER.to_vec();
    torn.extend_from_slice(&[40, 0, 0, 0, 1]);
    std::fs::write(tmp.path().join(".journal/session-4.journal"), torn).unwrap();

    let found = rec.recover().unwrap();
    let ids = |v: &[SessionId]| v.iter().map(|i| i.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(ids(&found.finished), vec!["session-1", "session-2"]);
    assert!(found.interrupted.is_empty());
    assert_eq!(ids(&found.damaged), vec!["session-2"]);
    assert_eq!(ids(&found.quarantined), vec!["session-3"]);
    assert_eq!(found.torn_records, 1, "session-4's torn begin");
    let done = rec
        .store()
        .load(&"session-1".parse().unwrap())
        .unwrap()
        .unwrap()
        .session;
    assert!(done.is_complete && done.end_time == Some(1_500));
    assert_eq!(done.session_number, Some(7));
    let cut = rec
        .store()
        .load(&"session-2".parse().unwrap())
        .unwrap()
        .unwrap()
        .session;
    assert_eq!(cut.elements.len(), 1, "only what came before the stray record");
    for id in ["session-3", "session-4", "session-9"] {
        assert!(rec.store().load(&id.parse().unwrap()).unwrap().is_none(), "{id}");
    }
    assert!(rec.store().fs().journals().unwrap().is_empty());
}

#[test]
fn a_second_end_is_damage_and_a_torn_tail_alone_is_counted_as_torn() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    hand_journal(
        tmp.path(),
        "session-5",
        &[
            begin_record("session-5"),
            START.into(),
            r#"{"end":{"at":1500}}"#.into(),
            r#"{"end":{"at":1600}}"#.into(),
        ],
    );
    hand_journal(
        tmp.path(),
        "session-6",
        &[begin_record("session-6"), START.into()],
    );
    let path = tmp.path().join(".journal/session-6.journal");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[30, 0, 0, 0, 7]); // a record a crash cut short
    std::fs::write(&path, bytes).unwrap();
    hand_journal(
        tmp.path(),
        "session-7",
        &[begin_record("session-7"), START.into()],
    );
    let path = tmp.path().join(".journal/session-7.journal");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[30, 0, 0]);
    std::fs::write(&path, bytes).unwrap();

    let found = rec.recover().unwrap();
    let ids = |v: &[SessionId]| v.iter().map(|i| i.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(ids(&found.damaged), vec!["session-5"]);
    assert_eq!(found.torn_records, 2, "session-6's and session-7's torn tails");
    let five = rec
        .store()
        .load(&"session-5".parse().unwrap())
        .unwrap()
        .unwrap()
        .session;
    assert_eq!(five.end_time, Some(1_500), "the first end stands");
}

#[test]
fn a_journal_folded_before_a_crash_is_removed_when_found_again_never_set_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let mut open = rec.begin(&endpoints(), 1_000).unwrap();
    open.append(&element(0, ElementKind::Start, b"\x05")).unwrap();
    let id = open.id().clone();
    drop(open); // a crash
    let journal = std::fs::read(journal_path(tmp.path(), &id)).unwrap();
    let first = rec.recover().unwrap();
    assert_eq!(first.interrupted, vec![id.clone()]);
    let stored = std::fs::read(rec.store().fs().path_of(&id)).unwrap();
    // The crash came after the fold but before the journal's removal was durable.
    std::fs::write(journal_path(tmp.path(), &id), journal).unwrap();
    let again = rec.recover().unwrap();
    assert!(again.quarantined.is_empty(), "{again:?}");
    assert!(!journal_path(tmp.path(), &id).exists(), "the journal is removed");
    assert_eq!(
        std::fs::read(rec.store().fs().path_of(&id)).unwrap(),
        stored,
        "the session is untouched"
    );
    assert!(test_support::names_in(&tmp.path().join(".quarantine")).is_empty());
}

#[test]
fn an_ended_capture_never_stored_is_folded_by_recovery_with_the_ending_it_journaled() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let mut complete = rec.begin(&Endpoints::default(), 1).unwrap();
    complete.append(&element(2, ElementKind::Start, b"\x05")).unwrap();
    complete
        .append(&element(3, ElementKind::Message, b"MSH|1\r\n"))
        .unwrap();
    let ended = complete.end(9, None).unwrap();
    let complete_id = ended.id().clone();
    assert!(
        rec.store().load(&complete_id).unwrap().is_none(),
        "not stored yet"
    );
    drop(ended); // the process died before storing it
    let mut cut = rec.begin(&Endpoints::default(), 1).unwrap();
    cut.append(&element(2, ElementKind::Start, b"\x05")).unwrap();
    let cut = cut.end(7, Some(InterruptionReason::ConnectionClosed)).unwrap();
    let cut_id = cut.id().clone();
    drop(cut);

    rec.recover().unwrap();
    let session = rec.store().load(&complete_id).unwrap().unwrap().session;
    assert!(
        session.is_complete && session.interrupted.is_none(),
        "{:?}",
        session.interrupted
    );
    assert_eq!((session.end_time, session.elements.len()), (Some(9), 2));
    let session = rec.store().load(&cut_id).unwrap().unwrap().session;
    assert!(!session.is_complete);
    assert_eq!(
        session.interrupted.map(|i| i.reason),
        Some(InterruptionReason::ConnectionClosed)
    );
    // Stored at once, an ended capture is the same session `complete` gives.
    let mut now = rec.begin(&Endpoints::default(), 1).unwrap();
    now.append(&element(2, ElementKind::Start, b"\x05")).unwrap();
    let id = now.end(5, None).unwrap().store().unwrap();
    assert!(rec.store().load(&id).unwrap().unwrap().session.is_complete);
    assert!(rec.store().fs().journals().unwrap().is_empty());
}

/// How a scripted capture ends.
#[derive(Clone, Debug)]
enum Ending {
    Complete,
    Abandon(InterruptionReason),
    LisGoneThenComplete,
    LisGoneThenAbandon,
}

/// Runs one capture of `elements` (the first `begun` come with its start, the last
/// `ended` with its end) ending as `ending`, and returns it ended, not yet stored.
fn scripted(
    rec: &Recorder,
    elements: &[FramedElement],
    begun: usize,
    ended: usize,
    ending: &Ending,
) -> session_capture::EndedCapture {
    let (first, rest) = elements.split_at(begun);
    let (middle, last) = rest.split_at(rest.len() - ended);
    let mut open = rec.begin_with(&endpoints(), 900, first).unwrap();
    for element in middle {
        open.append(element).unwrap();
    }
    if matches!(ending, Ending::LisGoneThenComplete | Ending::LisGoneThenAbandon) {
        open.lis_missed(1_003, 40);
        open.lis_missed(1_009, 2);
    }
    let interrupted = match ending {
        Ending::Complete | Ending::LisGoneThenComplete => None,
        Ending::Abandon(reason) => Some(reason.clone()),
        Ending::LisGoneThenAbandon => Some(InterruptionReason::ConnectionClosed),
    };
    open.end_with(last, 2_000, interrupted).unwrap()
}

/// A stored session as JSON, without what differs between two captures of the same
/// elements: the id and number each capture takes, and the save's own stamps.
fn captured_part(rec: &Recorder, id: &SessionId) -> serde_json::Value {
    let session = rec.store().load(id).unwrap().unwrap().session;
    let mut json = serde_json::to_value(&session).unwrap();
    let object = json.as_object_mut().unwrap();
    for key in ["id", "sessionId"] {
        assert!(object.remove(key).is_some(), "{key}");
    }
    let metadata = object["_metadata"].as_object_mut().unwrap();
    for key in ["savedAt", "revision"] {
        assert!(metadata.remove(key).is_some(), "{key}");
    }
    json
}

#[test]
fn a_capture_stored_by_its_writer_is_the_session_recovery_makes_of_its_journal() {
    let small: Vec<FramedElement> = (0..6)
        .map(|n| element(n, ElementKind::Message, format!("MSH|{n}\r\u{e9}\r\n").as_bytes()))
        .collect();
    // Over what a capture keeps a copy of (64 KiB of elements): folded from its journal.
    let large: Vec<FramedElement> = (0..5)
        .map(|n| element(n, ElementKind::Message, &vec![b'a' + n as u8; 20_000]))
        .collect();
    let endings = [
        Ending::Complete,
        Ending::Abandon(InterruptionReason::Shutdown),
        Ending::Abandon(InterruptionReason::Other("an operator's reason".into())),
        Ending::LisGoneThenComplete,
        Ending::LisGoneThenAbandon,
    ];
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    for elements in [&small[..0], &small[..], &large[..]] {
        for (begun, ended) in [(0, 0), (1, 0), (0, 1), (2, 2)] {
            if begun + ended > elements.len() {
                continue;
            }
            for ending in &endings {
                let case = format!(
                    "{} elements, {begun} begun with, {ended} ended with, {ending:?}",
                    elements.len()
                );
                let stored = scripted(&rec, elements, begun, ended, ending).store().unwrap();
                let left = scripted(&rec, elements, begun, ended, ending);
                let recovered = left.id().clone();
                drop(left); // its writer died before storing it
                let found = rec.recover().unwrap();
                assert_eq!(found.finished, vec![recovered.clone()], "{case}");
                assert_eq!(
                    captured_part(&rec, &stored),
                    captured_part(&rec, &recovered),
                    "{case}"
                );
            }
        }
    }
    assert!(rec.store().fs().journals().unwrap().is_empty());
}

/// Overwrites every byte of `id`'s journal after its header (`HL7JRN1\n`) with `x`.
fn spoil_journal(dir: &std::path::Path, id: &SessionId) {
    use std::os::unix::fs::FileExt;
    let path = journal_path(dir, id);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&vec![b'x'; len - 8], 8).unwrap();
}

#[test]
fn a_small_capture_is_stored_from_what_its_writer_kept_and_a_large_one_from_its_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let small = [element(0, ElementKind::Message, b"MSH|small\r\n")];
    let ended = scripted(&rec, &small, 0, 0, &Ending::Complete);
    let id = ended.id().clone();
    // The journal no longer reads: only the writer's copy can make the session.
    spoil_journal(tmp.path(), &id);
    assert_eq!(ended.store().unwrap(), id);
    let session = rec.store().load(&id).unwrap().unwrap().session;
    assert!(session.is_complete);
    assert_eq!(session.messages(), vec!["MSH|small\r\n".to_string()]);
    assert!(!journal_path(tmp.path(), &id).exists(), "the journal is removed");

    let large: Vec<FramedElement> = (0..4)
        .map(|n| element(n, ElementKind::Message, &[b'L'; 20_000]))
        .collect();
    let ended = scripted(&rec, &large, 0, 0, &Ending::Complete);
    let id = ended.id().clone();
    spoil_journal(tmp.path(), &id);
    // Past the copy's bytes the journal is read back, and this one no longer reads.
    assert!(
        matches!(
            ended.store(),
            Err(session_capture::CaptureError::KeptInQuarantine { .. })
        ),
        "a large capture is folded from its journal"
    );
    assert!(rec.store().load(&id).unwrap().is_none());
}
