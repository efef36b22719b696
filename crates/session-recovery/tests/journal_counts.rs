//! Recovery's report counts what it did with the journals of cut-off captures, one by
//! one: interrupted, finished but not yet stored, torn, damaged, unreadable.

use session_capture::{Endpoints, FramedElement, Recorder};
use session_fs::Store;
use session_model::{Direction, ElementKind, SessionId};
use session_recovery::recover;
use session_store::{DecodeOptions, SessionStore};

fn typed(dir: &std::path::Path) -> SessionStore {
    SessionStore::new(Store::open(dir).unwrap(), DecodeOptions::default())
}

fn element(n: u64, bytes: &[u8]) -> FramedElement {
    FramedElement {
        timestamp: n,
        direction: Direction::DeviceToPc,
        kind: ElementKind::Message,
        bytes: bytes.to_vec(),
    }
}

fn journal_path(dir: &std::path::Path, id: &SessionId) -> std::path::PathBuf {
    dir.join(".journal").join(format!("{id}.journal"))
}

fn exclusive(dir: &std::path::Path) -> SessionStore {
    SessionStore::new(
        Store::options().exclusive().open(dir).unwrap(),
        DecodeOptions::default(),
    )
}

#[test]
fn interrupted_finished_and_torn_journals_are_each_counted() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let rec = Recorder::new(typed(tmp.path()));
        for _ in 0..2 {
            let mut cut = rec.begin(&Endpoints::default(), 1).unwrap();
            cut.append(&element(2, b"MSH|cut\r\n")).unwrap();
            drop(cut); // the process died mid-capture
        }
        for n in 0..3 {
            let mut done = rec.begin(&Endpoints::default(), 1).unwrap();
            done.append(&element(2, b"MSH|done\r\n")).unwrap();
            drop(done.end(3 + n, None).unwrap()); // died after journaling the end
        }
        let mut torn = rec.begin(&Endpoints::default(), 1).unwrap();
        torn.append(&element(2, b"MSH|torn\r\n")).unwrap();
        let torn_id = torn.id().clone();
        drop(torn);
        let path = journal_path(tmp.path(), &torn_id);
        let mut bytes = test_support::journal_written(&path);
        bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3]);
        std::fs::write(&path, bytes).unwrap();
    }
    let report = recover(&exclusive(tmp.path())).unwrap();
    assert_eq!(report.interrupted, 3, "two cut off, and the torn one: {report:?}");
    assert_eq!(report.captures_finished, 3, "{report:?}");
    assert_eq!(report.torn_records, 1, "{report:?}");
    assert_eq!(report.quarantined, 0, "{report:?}");
}

#[test]
fn damaged_and_unreadable_journals_are_each_quarantined_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let store = typed(tmp.path());
        let rec = Recorder::new(store.clone());
        for _ in 0..2 {
            let mut damaged = rec.begin(&Endpoints::default(), 1).unwrap();
            for n in 0..3 {
                damaged
                    .append(&element(n, b"MSH|a message long enough\r\n"))
                    .unwrap();
            }
            let id = damaged.id().clone();
            drop(damaged);
            // A flipped byte in the middle record, whole records after it: damage.
            let path = journal_path(tmp.path(), &id);
            let mut bytes = test_support::journal_written(&path);
            // Records: begin, then three elements; flip a payload byte of the second.
            let mut starts = Vec::new();
            let mut at = 8;
            while at < bytes.len() {
                starts.push(at);
                let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                at += 8 + len;
            }
            assert_eq!(starts.len(), 4);
            bytes[starts[2] + 8 + 3] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
        for name in ["nobegin-1", "nobegin-2", "nobegin-3"] {
            let mut journal = store.fs().create_journal(&SessionId::new(name).unwrap()).unwrap();
            journal.append(b"not a record a recorder writes").unwrap();
        }
    }
    let report = recover(&exclusive(tmp.path())).unwrap();
    assert_eq!(report.quarantined, 5, "two damaged, three unreadable: {report:?}");
    let journal_problems = report
        .problems
        .iter()
        .filter(|p| p.file.starts_with(".journal/"))
        .count();
    assert_eq!(journal_problems, 5, "{report:?}");
}
