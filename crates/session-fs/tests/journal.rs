//! Journals and counters on a real filesystem: a live writer's journal is never taken
//! over, a dead one's is, and reserved numbers never repeat.

mod common;

use common::{Recording, libc_enospc, store_with};
use session_fs::{FsError, JOURNAL_HEADER, Step, Store};
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
    assert_eq!(
        claimed.contents().unwrap().records,
        vec![b"one".to_vec(), b"two".to_vec()]
    );
    assert_eq!(claimed.contents().unwrap().torn_bytes, 0);
    // While claimed, nobody else claims it.
    assert!(store.claim_journal(&id("cap-1")).unwrap().is_none());
    claimed.remove().unwrap();
    assert!(store.journals().unwrap().is_empty());
    // No temp or lock debris in the journal directory: only the journal's file, kept
    // emptied as a spare for the next capture.
    let left: Vec<_> = std::fs::read_dir(dir.path().join(".journal"))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].file_name().to_string_lossy().starts_with(".spare."));
    assert_eq!(left[0].metadata().unwrap().len(), 0);
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
    let mut bytes = test_support::journal_written(&path);
    bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]); // a record header a crash cut short
    std::fs::write(&path, &bytes).unwrap();
    let claimed = store.claim_journal(&id("cap-2")).unwrap().unwrap();
    assert_eq!(claimed.contents().unwrap().records, vec![b"kept".to_vec()]);
    assert_eq!(claimed.contents().unwrap().torn_bytes, 6);
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

#[test]
fn a_writer_counts_its_records_and_neither_debug_shows_a_payload() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-3")).unwrap();
    assert_eq!(journal.records(), 0);
    let big = vec![b'x'; 3 * 1024 * 1024];
    for payload in [b"PID|1||SECRET-NAME".as_slice(), &big, b"-"] {
        journal.append(payload).unwrap();
    }
    assert_eq!((journal.records(), journal.id()), (3, &id("cap-3")));
    let shown = format!("{journal:?}");
    assert!(shown.contains("cap-3") && shown.contains("records: 3"), "{shown}");
    assert!(!shown.contains("SECRET"), "{shown}");
    let claimed = journal.into_claimed().unwrap();
    assert_eq!(
        claimed.contents().unwrap().records,
        vec![b"PID|1||SECRET-NAME".to_vec(), big, b"-".to_vec()]
    );
    assert_eq!(claimed.id(), &id("cap-3"));
    assert_eq!(claimed.path(), dir.path().join(".journal/cap-3.journal"));
    let shown = format!("{claimed:?}");
    // A claimed journal is read only when asked (a record at a time): its Debug names it.
    assert!(
        shown.contains("cap-3") && shown.contains(".journal/cap-3.journal"),
        "{shown}"
    );
    assert!(!shown.contains("SECRET"), "{shown}");
}

#[test]
fn a_journal_grows_to_the_store_file_limit_and_no_further_so_it_can_always_be_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 1_000;
    let store = Store::options().max_file_size(limit).open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-4")).unwrap();
    let path = dir.path().join(".journal/cap-4.journal");
    // Header (8) + one record head (8) + payload: exactly the limit is allowed.
    let exact = vec![7u8; limit as usize - JOURNAL_HEADER.len() - 8];
    let err = journal.append(&[exact.as_slice(), b"!"].concat()).unwrap_err();
    assert!(
        matches!(&err, FsError::Io { step: Step::Append, path: p, .. } if *p == path),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.contains("appending to") && shown.contains("1000-byte file limit"),
        "{shown}"
    );
    assert_eq!(
        test_support::journal_written(&path).len(),
        8,
        "nothing of a refused record is written"
    );
    // Preallocation never takes the file past the limit either.
    assert!(std::fs::metadata(&path).unwrap().len() <= limit);
    journal.append(&exact).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), limit);
    assert_eq!(test_support::journal_written(&path).len() as u64, limit);
    // Full: even a one-byte record is over the limit now.
    assert!(journal.append(b"!").is_err());
    assert_eq!(journal.records(), 1);
    let claimed = journal.into_claimed().unwrap();
    assert_eq!(claimed.contents().unwrap().records, vec![exact]);
}

#[test]
fn removing_a_claimed_journal_that_is_already_gone_is_not_an_error_but_a_failed_remove_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let journal = store.create_journal(&id("cap-5")).unwrap();
    let claimed = journal.into_claimed().unwrap();
    std::fs::remove_file(claimed.path()).unwrap();
    claimed.remove().unwrap();

    let (_dir, store, rec) = store_with(Recording {
        // A finished journal leaves its name by a rename (to a spare's name).
        fail_at: Some(("rename".into(), 1)),
        fail_with: Some(libc_enospc()),
        ..Recording::default()
    });
    let claimed = store
        .create_journal(&id("cap-6"))
        .unwrap()
        .into_claimed()
        .unwrap();
    let path = claimed.path().to_owned();
    let err = claimed.remove().unwrap_err();
    assert!(
        matches!(&err, FsError::Io { step: Step::Remove, path: p, .. } if *p == path),
        "{err:?}"
    );
    assert!(path.exists(), "the journal stays when its removal failed");
    assert_eq!(store.journals().unwrap(), vec![id("cap-6")]);
    assert!(
        rec.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("rename .spare."))
    );
}

#[test]
fn a_failed_link_is_an_io_error_not_already_exists_and_leaves_no_debris() {
    let (_dir, store, _rec) = store_with(Recording {
        fail_at: Some(("link".into(), 1)),
        fail_with: Some(libc_enospc()),
        ..Recording::default()
    });
    let err = store.create_journal(&id("cap-7")).unwrap_err();
    assert!(matches!(&err, FsError::Io { step: Step::Link, .. }), "{err:?}");
    let left: Vec<_> = std::fs::read_dir(store.dir().join(".journal")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_store_that_never_journaled_has_no_journals_and_a_failed_listing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // The directory appears with the first journal.
    assert!(!dir.path().join(".journal").exists());
    assert_eq!(store.journals().unwrap(), Vec::<SessionId>::new());

    let (_dir, store, _rec) = store_with(Recording {
        fail_list: Some(5), // EIO
        ..Recording::default()
    });
    let err = store.journals().unwrap_err();
    assert!(matches!(&err, FsError::Io { step: Step::List, .. }), "{err:?}");
}

#[test]
fn a_record_over_the_record_limit_is_refused_and_a_length_past_it_reads_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-big")).unwrap();
    journal.append(b"kept").unwrap();
    let huge = vec![b'x'; session_fs::MAX_RECORD_BYTES + 1];
    let err = journal.append(&huge).unwrap_err().to_string();
    assert!(
        err.contains("record limit") && err.contains("cap-big.journal"),
        "{err}"
    );
    assert_eq!(journal.records(), 1);
    drop(journal);
    // A head claiming more than the limit, with its bytes and a whole record after it:
    // damage, found without holding the oversized record.
    let path = dir.path().join(".journal/cap-big.journal");
    let mut bytes = test_support::journal_written(&path);
    let claimed_len = session_fs::MAX_RECORD_BYTES + 10;
    bytes.extend_from_slice(&(claimed_len as u32).to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend(std::iter::repeat_n(0u8, claimed_len));
    bytes.extend(framed_by_append(&store, b"after"));
    std::fs::write(&path, &bytes).unwrap();
    let claimed = store.claim_journal(&id("cap-big")).unwrap().unwrap();
    let mut records = claimed.records().unwrap();
    assert_eq!(records.next().unwrap().unwrap(), b"kept");
    assert!(records.next().is_none());
    let end = records.end().unwrap();
    assert!(end.damaged && end.header_ok, "{end:?}");
    assert_eq!(end.torn_bytes as usize, 8 + claimed_len + 8 + 5);
    // The same reading as `contents`, and each call to records starts over.
    assert_eq!(claimed.contents().unwrap().records, vec![b"kept".to_vec()]);
    assert_eq!(claimed.records().unwrap().count(), 1);
}

/// `payload` framed exactly as `Journal::append` writes it: appended to a journal of its
/// own, and read back without the header.
fn framed_by_append(store: &Store, payload: &[u8]) -> Vec<u8> {
    let mut journal = store.create_journal(&id("framing-sample")).unwrap();
    journal.append(payload).unwrap();
    drop(journal);
    let path = store.dir().join(".journal/framing-sample.journal");
    let bytes = test_support::journal_written(&path);
    std::fs::remove_file(&path).unwrap();
    bytes[JOURNAL_HEADER.len()..].to_vec()
}

#[test]
fn appends_fill_preallocated_zeros_so_the_file_size_changes_once_per_extent_not_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-pre")).unwrap();
    let path = dir.path().join(".journal/cap-pre.journal");
    let created = std::fs::metadata(&path).unwrap().len();
    assert!(
        created > 8,
        "the journal is created with room for records: {created}"
    );
    let record = [b'r'; 200];
    let mut sizes = std::collections::BTreeSet::new();
    let mut appended = 0u64;
    while appended < 3 * created {
        journal.append(&record).unwrap();
        appended += 208;
        sizes.insert(std::fs::metadata(&path).unwrap().len());
    }
    let written = test_support::journal_written(&path).len() as u64;
    assert_eq!(
        written,
        8 + appended,
        "every record, and only records, before the zeros"
    );
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size >= written, "{size} < {written}");
    assert!(
        sizes.len() <= 4 && sizes.len() < (appended / 208) as usize,
        "the size changed with records, not per extent: {sizes:?}"
    );
    drop(journal);
    let claimed = store.claim_journal(&id("cap-pre")).unwrap().unwrap();
    let contents = claimed.contents().unwrap();
    assert_eq!(contents.records.len() as u64, appended / 208);
    assert_eq!(
        (contents.torn_bytes, contents.damaged),
        (0, false),
        "the zeros are not torn"
    );
}

#[test]
fn an_empty_record_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-empty")).unwrap();
    journal.append(b"one").unwrap();
    let err = journal.append(b"").unwrap_err().to_string();
    assert!(
        err.contains("empty record") && err.contains("cap-empty.journal"),
        "{err}"
    );
    assert!(
        journal.append_all(&[b"two", b""]).is_err(),
        "a batch holding one is refused whole"
    );
    assert_eq!(journal.records(), 1);
    let path = dir.path().join(".journal/cap-empty.journal");
    assert_eq!(test_support::journal_written(&path).len(), 8 + 8 + 3);
}

#[test]
fn a_journal_directory_made_for_a_journal_is_durable_in_the_store_before_the_journal_is_named() {
    let (_dir, store, rec) = store_with(Recording::default());
    let root = store.dir().file_name().unwrap().to_string_lossy().into_owned();
    let first = store.create_journal(&id("cap-1")).unwrap();
    let made = rec.log.lock().unwrap().clone();
    let named = made
        .iter()
        .position(|l| l == "link cap-1.journal")
        .expect("linked");
    assert!(
        made[..named].contains(&format!("fsync-dir {root}")),
        "the new .journal/ must reach the disk before a journal is named in it: {made:?}"
    );
    drop(first);

    // An area that exists is not made again, and the store's directory is not synced
    // for it: only `.journal/` itself, once the journal is named.
    rec.log.lock().unwrap().clear();
    let _second = store.create_journal(&id("cap-2")).unwrap();
    let log = rec.log.lock().unwrap().clone();
    assert!(!log.contains(&format!("fsync-dir {root}")), "{log:?}");
    let named = log
        .iter()
        .position(|l| l == "link cap-2.journal")
        .expect("linked");
    assert!(log[named..].contains(&"fsync-dir .journal".to_owned()), "{log:?}");
}

#[test]
fn a_journal_handed_over_by_its_writer_is_read_to_its_last_record_and_no_further() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-9")).unwrap();
    journal.append(b"one").unwrap();
    journal.append(b"two").unwrap();
    let claimed = journal.into_claimed().unwrap();
    // Bytes past the writer's records that it never wrote (its zeros, overwritten by
    // someone else): not the capture's, so not read as a torn append of it.
    let path = claimed.path().to_owned();
    let written = JOURNAL_HEADER.len() as u64 + 2 * (8 + 3);
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(b"\x05\0\0\0garbage", written).unwrap();
    }
    let contents = claimed.contents().unwrap();
    assert_eq!(contents.records, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!((contents.torn_bytes, contents.damaged), (0, false));
    drop(claimed);

    // The same file claimed after its writer died is read whole: the bytes after the
    // records are an append a crash cut short.
    let claimed = store.claim_journal(&id("cap-9")).unwrap().expect("orphaned");
    let contents = claimed.contents().unwrap();
    assert_eq!(contents.records.len(), 2);
    assert!(contents.torn_bytes > 0, "{contents:?}");
}
