//! Spare journals on a real filesystem: a finished journal's file is emptied and
//! written again by the next capture (no inode freed, nothing of the old session left
//! in it), a stopped process's spares are adopted and emptied, hostile entries named
//! like spares are never written through, and the number kept is bounded.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use session_fs::Store;
use session_model::SessionId;

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
    assert_eq!(spare.len(), 0, "emptied: no capture's bytes wait in a spare");

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
