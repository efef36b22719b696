//! Journals and counters on a real filesystem: a live writer's journal is never taken
//! over, a dead one's is, and reserved numbers never repeat.

use session_fs::{FsError, Store, parse_journal};
use session_model::SessionId;

fn id(s: &str) -> SessionId {
    s.parse().unwrap()
}

#[test]
fn a_live_journal_is_never_claimed_and_a_dropped_one_is_with_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-1")).unwrap();
    journal.append(b"one").unwrap();
    journal.append(b"two").unwrap();
    assert_eq!(store.journals().unwrap(), vec![id("cap-1")]);
    // Another handle, as another process would: the writer's lock keeps it off.
    let other = Store::open(dir.path()).unwrap();
    assert!(other.claim_journal(&id("cap-1")).unwrap().is_none());
    // A second journal or a session of the same id is refused.
    assert!(matches!(
        other.create_journal(&id("cap-1")),
        Err(FsError::AlreadyExists { .. })
    ));
    drop(journal);
    let claimed = other.claim_journal(&id("cap-1")).unwrap().expect("orphaned now");
    assert_eq!(claimed.contents().records, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(claimed.contents().torn_bytes, 0);
    // While claimed, nobody else claims it.
    assert!(store.claim_journal(&id("cap-1")).unwrap().is_none());
    claimed.remove().unwrap();
    assert!(store.journals().unwrap().is_empty());
    // No temp or lock debris in the journal directory.
    let left: Vec<_> = std::fs::read_dir(dir.path().join(".journal")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_journal_is_refused_for_an_id_that_is_already_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .create(&id("s-1"), |_| Ok::<_, std::io::Error>(b"{}".to_vec()))
        .unwrap();
    assert!(matches!(
        store.create_journal(&id("s-1")),
        Err(FsError::AlreadyExists { .. })
    ));
}

#[test]
fn a_torn_tail_is_counted_and_the_records_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-2")).unwrap();
    journal.append(b"kept").unwrap();
    drop(journal);
    let path = dir.path().join(".journal/cap-2.journal");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]); // a record header a crash cut short
    std::fs::write(&path, &bytes).unwrap();
    let claimed = store.claim_journal(&id("cap-2")).unwrap().unwrap();
    assert_eq!(claimed.contents(), &parse_journal(&bytes));
    assert_eq!(claimed.contents().records, vec![b"kept".to_vec()]);
    assert_eq!(claimed.contents().torn_bytes, 6);
    let moved = claimed.quarantine("torn").unwrap();
    assert!(
        moved.starts_with(dir.path().join(".quarantine")),
        "{}",
        moved.display()
    );
    assert!(store.journals().unwrap().is_empty());
}

#[test]
fn a_symlinked_journal_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(".journal")).unwrap();
    let err = Store::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains(".journal") && err.contains("symlink"), "{err}");
}

#[test]
fn reserved_numbers_never_repeat_across_handles_and_respect_the_floor() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path()).unwrap();
    let b = Store::open(dir.path()).unwrap();
    let first = a.reserve_numbers("numbers", 10, 1_000).unwrap();
    assert_eq!(first, 1_000..1_010);
    let second = b.reserve_numbers("numbers", 10, 0).unwrap();
    assert_eq!(second, 1_010..1_020, "above every earlier reservation");
    let third = a.reserve_numbers("numbers", 5, 5_000).unwrap();
    assert_eq!(third, 5_000..5_005, "the floor lifts it");
    // Threads at once: every number handed out once.
    let mut all: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = Store::open(dir.path()).unwrap();
                s.spawn(move || {
                    (0..20)
                        .flat_map(|_| store.reserve_numbers("numbers", 3, 0).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "a number was handed out twice");
    std::fs::write(dir.path().join(".state/numbers"), b"garbage").unwrap();
    let err = a.reserve_numbers("numbers", 1, 0).unwrap_err().to_string();
    assert!(err.contains("numbers") && err.contains("not a number"), "{err}");
}
