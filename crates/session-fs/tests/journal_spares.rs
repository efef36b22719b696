//! Spare journals on a real filesystem: a finished journal's file is emptied and
//! written again by the next capture (no inode freed, nothing of the old session left
//! in it), a stopped process's spares are adopted and emptied, hostile entries named
//! like spares are never written through, and the number kept is bounded.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use session_fs::{JOURNAL_HEADER, Store};
use session_model::SessionId;

mod common;
use common::{Recording, log_of, store_with};

/// How much a journal grows by at a time (`journal/mod.rs`).
const EXTENT: u64 = 64 * 1024;

fn id(s: &str) -> SessionId {
    s.parse().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn spares(journals: &Path) -> Vec<PathBuf> {
    names(journals)
        .into_iter()
        .filter(|n| n.starts_with(".spare."))
        .map(|n| journals.join(n))
        .collect()
}

/// `path` is the file `inode` was (a spare written again, not a file created) and holds
/// none of `old`, what the file held before.
fn assert_written_again(path: &Path, inode: u64, old: &[u8]) {
    assert_eq!(
        std::fs::metadata(path).unwrap().ino(),
        inode,
        "written again, not created"
    );
    let bytes = std::fs::read(path).unwrap();
    assert!(
        !bytes.windows(old.len()).any(|w| w == old),
        "emptied before reuse"
    );
}

#[test]
fn a_finished_journal_is_kept_emptied_and_the_next_capture_writes_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    let store = Store::open(dir.path()).unwrap();
    let mut first = store.create_journal(&id("cap-1")).unwrap();
    first.append(b"PID|1||PATIENT-ONE").unwrap();
    let inode = std::fs::metadata(journals.join("cap-1.journal")).unwrap().ino();
    first.into_claimed().unwrap().remove().unwrap();

    assert!(store.journals().unwrap().is_empty());
    let kept = spares(&journals);
    assert_eq!(kept.len(), 1, "{:?}", names(&journals));
    let spare = std::fs::metadata(&kept[0]).unwrap();
    assert_eq!(spare.ino(), inode, "the same file, kept");
    assert_eq!(
        spare.len(),
        JOURNAL_HEADER.len() as u64 + EXTENT,
        "kept at the size it was grown to"
    );
    assert!(
        std::fs::read(&kept[0]).unwrap().iter().all(|&b| b == 0),
        "emptied: no capture's bytes wait in a spare, not even its header"
    );

    let mut second = store.create_journal(&id("cap-2")).unwrap();
    second.append(b"two").unwrap();
    let path = journals.join("cap-2.journal");
    assert_written_again(&path, inode, b"PATIENT");
    assert_eq!(names(&journals), vec!["cap-2.journal"]);
    let claimed = second.into_claimed().unwrap();
    assert_eq!(claimed.contents().unwrap().records, vec![b"two".to_vec()]);
}

#[test]
fn a_stopped_processs_spares_are_adopted_emptied_and_hostile_names_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    std::fs::create_dir_all(&journals).unwrap();
    // A crash came before this spare was emptied: it still holds a journal's bytes.
    let stale = journals.join(".spare.1-2-3");
    std::fs::write(&stale, b"HL7JRN1\nPATIENT-OLD records").unwrap();
    let inode = std::fs::metadata(&stale).unwrap().ino();
    // Entries named like spares that are no regular files: never written through.
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), b"outside the store").unwrap();
    std::os::unix::fs::symlink(outside.path(), journals.join(".spare.link")).unwrap();
    std::fs::create_dir(journals.join(".spare.dir")).unwrap();
    let fifo = journals.join(".spare.fifo");
    test_support::mkfifo(&fifo);

    let store = Store::open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-7")).unwrap();
    journal.append(b"new").unwrap();
    let path = journals.join("cap-7.journal");
    assert_written_again(&path, inode, b"PATIENT-OLD");
    assert_eq!(
        journal.into_claimed().unwrap().contents().unwrap().records,
        vec![b"new".to_vec()]
    );
    assert_eq!(std::fs::read(outside.path()).unwrap(), b"outside the store");
    assert!(
        std::fs::symlink_metadata(journals.join(".spare.link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(journals.join(".spare.dir").is_dir());
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn a_spare_someone_holds_locked_is_passed_over_and_the_capture_creates_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    let store = Store::open(dir.path()).unwrap();
    store
        .create_journal(&id("cap-1"))
        .unwrap()
        .into_claimed()
        .unwrap()
        .remove()
        .unwrap();
    let spare = spares(&journals).pop().unwrap();
    let inode = std::fs::metadata(&spare).unwrap().ino();
    // A claimer that opened the journal by its name just before it was finished.
    let holder = std::fs::File::open(&spare).unwrap();
    holder.try_lock().unwrap();

    let journal = store.create_journal(&id("cap-2")).unwrap();
    let path = journals.join("cap-2.journal");
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), inode);
    assert_eq!(
        names(&journals),
        vec!["cap-2.journal"],
        "the held spare's name is gone"
    );
    drop(journal);
    drop(holder);
}

#[test]
fn at_most_128_spares_are_kept_and_the_rest_removed() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    let store = Store::open(dir.path()).unwrap();
    let open: Vec<_> = (0..130)
        .map(|n| store.create_journal(&id(&format!("cap-{n}"))).unwrap())
        .collect();
    for journal in open {
        journal.into_claimed().unwrap().remove().unwrap();
    }
    assert!(store.journals().unwrap().is_empty());
    assert_eq!(spares(&journals).len(), 128, "{} entries", names(&journals).len());
    assert_eq!(names(&journals).len(), 128, "the two over the bound are removed");
}

#[test]
fn a_handle_that_only_finishes_journals_keeps_at_most_128_spares_too() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    let writer = Store::open(dir.path()).unwrap();
    for n in 0..130 {
        // Written and given up, as a relay that died leaves them.
        let mut journal = writer.create_journal(&id(&format!("cap-{n}"))).unwrap();
        journal.append(b"record").unwrap();
    }
    // A stopped process's spares, before this handle ever looked.
    for n in 0..3 {
        std::fs::write(journals.join(format!(".spare.left-{n}")), b"").unwrap();
    }
    // Recovery's handle: it claims and finishes journals, and never creates one.
    let recovery = Store::open(dir.path()).unwrap();
    for n in 0..130 {
        let claimed = recovery
            .claim_journal(&id(&format!("cap-{n}")))
            .unwrap()
            .expect("its writer is gone");
        claimed.remove().unwrap();
    }
    assert!(recovery.journals().unwrap().is_empty());
    assert_eq!(
        names(&journals).len(),
        128,
        "the spares left and made are bounded together"
    );
}

#[test]
fn a_finishing_handle_adopts_at_most_128_of_a_stopped_processs_spares_each_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    let writer = Store::open(dir.path()).unwrap();
    let mut journal = writer.create_journal(&id("cap-1")).unwrap();
    journal.append(b"record").unwrap();
    drop(journal);
    // 130 spares a crash left before they were emptied, each still holding a session.
    for n in 0..130 {
        std::fs::write(journals.join(format!(".spare.left-{n}")), b"PATIENT-LEFT").unwrap();
    }
    // Recovery's handle adopts them when it finishes its first journal, and never
    // takes one: what it keeps must be emptied by the adoption itself.
    let recovery = Store::open(dir.path()).unwrap();
    let claimed = recovery
        .claim_journal(&id("cap-1"))
        .unwrap()
        .expect("its writer is gone");
    claimed.remove().unwrap();

    let kept = spares(&journals);
    assert_eq!(kept.len(), 128, "{} entries", names(&journals).len());
    for spare in &kept {
        assert_eq!(
            std::fs::metadata(spare).unwrap().len(),
            0,
            "{} emptied",
            spare.display()
        );
    }
}

#[test]
fn a_spare_written_again_shows_only_the_new_captures_records_however_short() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    let store = Store::open(dir.path()).unwrap();
    // Long enough to grow twice: the spare is larger than one extent.
    let mut long = store.create_journal(&id("cap-1")).unwrap();
    for n in 0..300 {
        long.append(format!("PID|{n}||PATIENT-{n:0>280}").as_bytes())
            .unwrap();
    }
    long.into_claimed().unwrap().remove().unwrap();
    let kept = spares(&journals);
    let size = std::fs::metadata(&kept[0]).unwrap().len();
    assert!(size > EXTENT, "grown past one extent: {size}");

    let mut short = store.create_journal(&id("cap-2")).unwrap();
    short.append(b"one").unwrap();
    let path = journals.join("cap-2.journal");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size, "written in place");
    assert!(!std::fs::read(&path).unwrap().windows(7).any(|w| w == b"PATIENT"));
    let contents = short.into_claimed().unwrap().contents().unwrap();
    assert_eq!(
        contents.records,
        vec![b"one".to_vec()],
        "no record of the last capture"
    );
    assert_eq!(contents.torn_bytes, 0);
    assert!(!contents.damaged);
}

#[test]
fn a_journal_that_used_over_a_mebibyte_is_truncated_not_zeroed() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    let store = Store::open(dir.path()).unwrap();
    let mut big = store.create_journal(&id("cap-1")).unwrap();
    let record = vec![b'x'; 64 * 1024];
    for _ in 0..17 {
        big.append(&record).unwrap();
    }
    big.into_claimed().unwrap().remove().unwrap();
    let kept = spares(&journals);
    assert_eq!(std::fs::metadata(&kept[0]).unwrap().len(), 0);
}

#[test]
fn a_spare_kept_in_place_starts_the_next_journal_with_a_data_sync_and_no_growth() {
    let (_dir, store, rec) = store_with(Recording {
        preallocating: true,
        ..Recording::default()
    });
    let mut first = store.create_journal(&id("cap-1")).unwrap();
    first.append(b"PID|1||PATIENT-ONE").unwrap();
    first.into_claimed().unwrap().remove().unwrap();
    rec.log.lock().unwrap().clear();

    let _second = store
        .create_journal_with(&id("cap-2"), &[b"begin", b"enq"])
        .unwrap();
    let log = log_of(&rec);
    assert!(log.contains(&"reopen <temp>".to_owned()), "{log:?}");
    assert!(log.contains(&"fdatasync <temp>".to_owned()), "{log:?}");
    assert!(
        !log.iter()
            .any(|l| l.starts_with("preallocate") || l.starts_with("fsync <temp>")),
        "no growth and no metadata sync: {log:?}"
    );
}

#[test]
fn a_journal_whose_append_failed_is_truncated_as_a_spare_not_zeroed() {
    let (dir, store, _rec) = store_with(Recording {
        preallocating: true,
        fail_at: Some(("fdatasync".to_owned(), 1)),
        ..Recording::default()
    });
    let journals = dir.path().join("sessions/.journal");
    let mut journal = store.create_journal(&id("cap-1")).unwrap();
    journal.append(b"PID|1||PATIENT-ONE").unwrap_err();
    journal.into_claimed().unwrap().remove().unwrap();
    let kept = spares(&journals);
    assert_eq!(kept.len(), 1, "{:?}", names(&journals));
    assert_eq!(
        std::fs::metadata(&kept[0]).unwrap().len(),
        0,
        "what a failed write left past the records is not trusted to be zeros"
    );
}

#[test]
fn a_journal_created_with_its_first_records_holds_them_after_one_sync() {
    for preallocating in [true, false] {
        let (_dir, store, rec) = store_with(Recording {
            preallocating,
            ..Recording::default()
        });
        let journal = store
            .create_journal_with(&id("cap-1"), &[b"begin", b"enq"])
            .unwrap();
        assert_eq!(journal.records(), 2);
        let syncs: Vec<String> = log_of(&rec)
            .into_iter()
            .filter(|l| l.contains("sync <temp>") || l.starts_with("preallocate"))
            .collect();
        assert_eq!(
            syncs.len(),
            1,
            "one sync for the header and the records: {syncs:?}"
        );
        let claimed = journal.into_claimed().unwrap();
        assert_eq!(
            claimed.contents().unwrap().records,
            vec![b"begin".to_vec(), b"enq".to_vec()]
        );
    }
}

#[test]
fn a_journal_created_with_a_refused_record_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    let store = Store::open(dir.path()).unwrap();
    store
        .create_journal_with(&id("cap-1"), &[b"begin", b""])
        .unwrap_err();
    assert!(store.journals().unwrap().is_empty());
    assert!(
        !journals.exists() || names(&journals).is_empty(),
        "{:?}",
        names(&journals)
    );
}

#[test]
fn a_journal_whose_records_fill_its_zeros_exactly_is_kept_zeroed_at_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    let store = Store::open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-1")).unwrap();
    // Header (8) + record head (8) + payload: exactly the header and one extent.
    journal.append(&vec![b'P'; (EXTENT - 8) as usize]).unwrap();
    let size = JOURNAL_HEADER.len() as u64 + EXTENT;
    assert_eq!(
        std::fs::metadata(journals.join("cap-1.journal")).unwrap().len(),
        size
    );
    journal.into_claimed().unwrap().remove().unwrap();
    let kept = spares(&journals);
    let bytes = std::fs::read(&kept[0]).unwrap();
    assert_eq!(bytes.len() as u64, size, "kept at its size");
    assert!(bytes.iter().all(|&b| b == 0), "every byte it wrote is zero");
}

#[test]
fn a_journal_that_used_exactly_a_mebibyte_is_still_zeroed_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    let store = Store::open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-1")).unwrap();
    // Header (8) + record head (8) + payload = 1 MiB written.
    journal.append(&vec![b'P'; 1024 * 1024 - 16]).unwrap();
    journal.into_claimed().unwrap().remove().unwrap();
    let kept = spares(&journals);
    let bytes = std::fs::read(&kept[0]).unwrap();
    assert!(
        bytes.len() as u64 > 1024 * 1024,
        "kept at its size: {}",
        bytes.len()
    );
    assert!(bytes.iter().all(|&b| b == 0));
}

#[test]
fn a_spare_written_by_someone_else_after_it_was_zeroed_is_emptied_before_reuse() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join(".journal");
    let store = Store::open(dir.path()).unwrap();
    let mut first = store.create_journal(&id("cap-1")).unwrap();
    first.append(b"one").unwrap();
    first.into_claimed().unwrap().remove().unwrap();
    // A foreign writer appends to the zeroed spare: its size is no longer the one left.
    let spare = spares(&journals).pop().unwrap();
    let mut foreign = std::fs::OpenOptions::new().append(true).open(&spare).unwrap();
    foreign.write_all(b"PATIENT-FOREIGN").unwrap();
    drop(foreign);

    let mut second = store.create_journal(&id("cap-2")).unwrap();
    second.append(b"two").unwrap();
    let bytes = std::fs::read(journals.join("cap-2.journal")).unwrap();
    assert!(
        !bytes.windows(7).any(|w| w == b"PATIENT"),
        "emptied, not written over"
    );
    let contents = second.into_claimed().unwrap().contents().unwrap();
    assert_eq!(contents.records, vec![b"two".to_vec()]);
    assert!(!contents.damaged && contents.torn_bytes == 0);
}

#[test]
fn finishing_a_journal_syncs_the_journal_directory_after_renaming_it_to_a_spare() {
    let (_dir, store, rec) = store_with(Recording::default());
    let journal = store.create_journal(&id("cap-1")).unwrap();
    rec.log.lock().unwrap().clear();
    journal.into_claimed().unwrap().remove().unwrap();
    let log = log_of(&rec);
    let renamed = log
        .iter()
        .position(|l| l.starts_with("rename .spare."))
        .unwrap_or_else(|| panic!("renamed to a spare: {log:?}"));
    assert!(
        log[renamed..].contains(&"fsync-dir .journal".to_owned()),
        "the rename is made durable: {log:?}"
    );
}

#[test]
fn a_spare_its_process_is_emptying_is_never_written_by_another() {
    // Handle A's storage pauses right after it reopens its finished journal's spare to
    // overwrite the records with zeros; meanwhile handle B (another process, as far as
    // spares and locks go) adopts the directory's spares and begins a capture. B must
    // not write into the file A's zeros are about to land in.
    let (dir, a, recording) = store_with(Recording {
        preallocating: true,
        ..Recording::default()
    });
    let b = Store::open(dir.path().join("sessions")).unwrap();
    let taken_by_b = std::sync::Arc::new(std::sync::Mutex::new(None));
    let b_journal = taken_by_b.clone();
    *recording.after_spare_reopen.0.lock().unwrap() = Some(Box::new(move || {
        let mut journal = b.create_journal(&id("cap-b")).unwrap();
        journal.append(b"OBX|1||GLUCOSE^5.4").unwrap();
        *b_journal.lock().unwrap() = Some(journal.into_claimed().unwrap());
    }));
    let mut first = a.create_journal(&id("cap-a")).unwrap();
    first.append(b"PID|1||PATIENT-ONE-WITH-A-LONGER-RECORD").unwrap();
    first.into_claimed().unwrap().remove().unwrap();
    assert!(
        log_of(&recording).iter().any(|l| l.starts_with("reopen .spare.")),
        "A emptied its spare in place: {:?}",
        log_of(&recording)
    );
    let claimed = taken_by_b.lock().unwrap().take().expect("B began its capture");
    let records: Vec<Vec<u8>> = claimed.records().unwrap().map(Result::unwrap).collect();
    assert_eq!(records, [b"OBX|1||GLUCOSE^5.4".to_vec()], "B's capture is whole");
}

const STRACE_DIR: &str = "SESSION_FS_SPARE_STRACE_DIR";

/// Child side of [`a_spare_taken_again_is_started_with_an_fdatasync_of_its_own`].
#[test]
fn child_reuses_a_spare() {
    let Ok(dir) = std::env::var(STRACE_DIR) else {
        return;
    };
    let store = Store::open(dir).unwrap();
    let mut first = store.create_journal(&id("first")).unwrap();
    first.append(b"PID|1||PATIENT-ONE").unwrap();
    first.into_claimed().unwrap().remove().unwrap();
    let _second = store.create_journal(&id("second")).unwrap();
}

#[test]
fn a_spare_taken_again_is_started_with_an_fdatasync_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(lines) = test_support::strace_of_child(
        "child_reuses_a_spare",
        "openat,write,fsync,fdatasync",
        (STRACE_DIR, &tmp.path().join("s")),
    ) else {
        return;
    };
    let trace = lines.join("\n");
    // The second journal's header (the last header written) goes into the reopened
    // spare, whose zeros and header then reach the disk by that descriptor's own data
    // sync before the journal is named: no new size, no full sync.
    let (at, fd) = lines
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, l)| l.contains("HL7JRN1"))
        .find_map(|(i, l)| Some((i, test_support::strace_call_fd(l, "write")?)))
        .unwrap_or_else(|| panic!("the second journal's header is written:\n{trace}"));
    let first_sync = lines[at..]
        .iter()
        .find(|l| l.contains("sync("))
        .unwrap_or_else(|| panic!("a sync follows:\n{trace}"));
    assert!(
        first_sync.contains(&format!("fdatasync({fd})")),
        "{first_sync}\n{trace}"
    );
}
