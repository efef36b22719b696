//! A journal's appends at their edges: the extent it preallocates, an append that ends
//! exactly where the zeros end, a data-only sync of its own bytes inside them and
//! `fsync` past them, a batch
//! bounded by the file limit as a whole, and who holds a journal.

mod common;

use common::{Recording, log_of, store_with};
use session_fs::{FsError, JOURNAL_HEADER, Store};
use session_model::SessionId;

fn id(s: &str) -> SessionId {
    s.parse().unwrap()
}

const EXTENT: u64 = 64 * 1024;

#[test]
fn a_journal_is_created_with_one_extent_of_zeros_and_appends_inside_it_sync_data_only() {
    let (_dir, store, rec) = store_with(Recording {
        preallocating: true,
        ..Recording::default()
    });
    let mut journal = store.create_journal(&id("cap-1")).unwrap();
    let path = store.dir().join(".journal/cap-1.journal");
    let header = JOURNAL_HEADER.len() as u64;
    assert_eq!(std::fs::metadata(&path).unwrap().len(), header + EXTENT);
    assert!(
        log_of(&rec).contains(&format!("preallocate {} <temp>", header + EXTENT)),
        "{:?}",
        log_of(&rec)
    );
    rec.log.lock().unwrap().clear();
    // One record that ends exactly where the zeros end: no growth, a data sync.
    let payload = vec![b'x'; (EXTENT - 8) as usize];
    journal.append(&payload).unwrap();
    assert_eq!(log_of(&rec), ["write <temp>", "fdatasync <temp>"]);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), header + EXTENT);
    // The write names exactly the record's place, over zeros, with every byte before
    // it (the header).
    assert_eq!(
        *rec.overwrites.lock().unwrap(),
        [(header, EXTENT, JOURNAL_HEADER.to_vec())]
    );
    // The next one runs past them: the file grows by an extent, synced with it.
    rec.log.lock().unwrap().clear();
    journal.append(b"one more").unwrap();
    let log = log_of(&rec);
    assert_eq!(
        log,
        [
            format!("preallocate {} <temp>", header + EXTENT + 16 + EXTENT),
            "write <temp>".to_owned(),
            "fdatasync <temp>".to_owned()
        ]
    );
    // Its record follows the first, into the new zeros, with the last page before it:
    // the end of the first record's payload.
    let overwrites = rec.overwrites.lock().unwrap();
    let (at, len, before) = overwrites.last().unwrap();
    assert_eq!((*at, *len), (header + EXTENT, 8 + b"one more".len() as u64));
    assert_eq!(*before, vec![b'x'; session_fs::OVERWRITE_CONTEXT]);
}

#[test]
fn where_the_file_cannot_preallocate_each_append_syncs_the_file_whole() {
    let (_dir, store, rec) = store_with(Recording::default());
    let mut journal = store.create_journal(&id("cap-2")).unwrap();
    rec.log.lock().unwrap().clear();
    journal.append(b"rec").unwrap();
    assert_eq!(log_of(&rec), ["write <temp>", "fsync <temp>"]);
}

#[test]
fn a_batch_is_bounded_by_the_file_limit_as_a_whole_and_a_record_may_end_exactly_at_it() {
    let dir = tempfile::tempdir().unwrap();
    let header = JOURNAL_HEADER.len() as u64;
    let limit = header + 2 * (8 + 100);
    let store = Store::options().max_file_size(limit).open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-3")).unwrap();
    let record = [b'r'; 100];
    let big = [b'b'; 101];
    // Each fits alone; together they are one byte over: refused whole.
    assert!(journal.append_all(&[&record, &big]).is_err());
    assert_eq!(journal.records(), 0);
    // Two that end exactly at the limit are taken.
    journal.append_all(&[&record, &record]).unwrap();
    assert_eq!(journal.records(), 2);
    let claimed = journal.into_claimed().unwrap();
    assert_eq!(claimed.contents().unwrap().records.len(), 2);
}

#[test]
fn a_journal_is_held_while_its_writer_lives_and_a_second_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(!store.journal_held(&id("cap-4")).unwrap(), "no journal");
    let journal = store.create_journal(&id("cap-4")).unwrap();
    let other = Store::open(dir.path()).unwrap();
    assert!(other.journal_held(&id("cap-4")).unwrap());
    assert!(matches!(
        other.create_journal(&id("cap-4")),
        Err(FsError::AlreadyExists { .. })
    ));
    drop(journal);
    assert!(!other.journal_held(&id("cap-4")).unwrap(), "given up");
    // A directory in a journal's place is no journal, held by no one.
    std::fs::create_dir(dir.path().join(".journal/cap-5.journal")).unwrap();
    assert!(!store.journal_held(&id("cap-5")).unwrap());
}

#[test]
fn a_claimed_journal_says_whether_it_holds_any_byte() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let journal = store.create_journal(&id("cap-6")).unwrap();
    let claimed = journal.into_claimed().unwrap();
    assert!(!claimed.is_empty().unwrap(), "a header at least");
    claimed.remove().unwrap();
    // An empty file (its writer finished between a look and a lock, which made it
    // again) holds nothing to keep: not claimed, and gone.
    let path = dir.path().join(".journal/cap-7.journal");
    std::fs::write(&path, b"").unwrap();
    assert!(store.claim_journal(&id("cap-7")).unwrap().is_none());
    assert!(!path.exists());
}

const STRACE_DIR: &str = "SESSION_FS_JOURNAL_STRACE_DIR";

/// Child side of [`an_append_inside_the_zeros_syncs_its_own_bytes_only`].
#[test]
fn child_appends_once() {
    let Ok(dir) = std::env::var(STRACE_DIR) else {
        return;
    };
    let store = Store::open(dir).unwrap();
    let mut journal = store.create_journal(&id("traced")).unwrap();
    journal.append(b"one record").unwrap();
}

/// Whether `dir` is on ext4 mounted without a journal, told without the store's code:
/// `findmnt` names the filesystem and its device, ext4's sysfs names its journal task.
fn on_journal_less_ext4(dir: &std::path::Path) -> bool {
    let out = std::process::Command::new("findmnt")
        .args(["-n", "-o", "FSTYPE,SOURCE", "--target"])
        .arg(dir)
        .output()
        .expect("findmnt (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace();
    let (Some("ext4"), Some(source)) = (fields.next(), fields.next()) else {
        return false;
    };
    let device = std::path::Path::new(source).file_name().unwrap();
    let task = std::path::Path::new("/sys/fs/ext4")
        .join(device)
        .join("journal_task");
    std::fs::read_to_string(task).is_ok_and(|t| t.trim() == "<none>")
}

#[test]
fn appends_sync_in_place_exactly_where_the_filesystem_is_ext4_without_a_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = session_fs::RootedStorage::open(tmp.path()).unwrap();
    assert_eq!(
        storage.syncs_overwrites_in_place(),
        on_journal_less_ext4(tmp.path())
    );
    // Never on a filesystem that is not ext4 (the shared-memory tmpfs, where present).
    if let Ok(shm) = tempfile::tempdir_in("/dev/shm") {
        let storage = session_fs::RootedStorage::open(shm.path()).unwrap();
        assert!(!storage.syncs_overwrites_in_place());
    }
}

#[test]
fn an_append_inside_the_zeros_syncs_its_own_bytes_only() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("s");
    let Some(lines) = test_support::strace_of_child(
        "child_appends_once",
        "openat,openat2,open,pwrite64,write,fsync,fdatasync,sync_file_range",
        (STRACE_DIR, &store_dir),
    ) else {
        return;
    };
    let trace = lines.join("\n");
    // The record (its payload is in the write), the call and the descriptor it went to.
    let (record, call, fd) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| {
            let (before, _) = l.split_once("write(").or_else(|| l.split_once("write64("))?;
            let fd = test_support::strace_call_fd(l, "write")
                .or_else(|| test_support::strace_call_fd(l, "write64"))?;
            l.contains("one record").then(|| (i, before.to_owned(), fd))
        })
        .expect("the record is written");
    let syncs: Vec<&String> = lines[record..].iter().filter(|l| l.contains("sync")).collect();
    let in_place = session_fs::RootedStorage::open(&store_dir)
        .unwrap()
        .syncs_overwrites_in_place();
    if !in_place {
        assert!(
            syncs
                .first()
                .is_some_and(|l| l.contains(&format!("fdatasync({fd})"))),
            "the append is synced with fdatasync:\n{trace}"
        );
        return;
    }
    // Ext4 without a journal: the record's sectors written directly, through a second
    // handle on the journal opened `O_DIRECT`, from the file's first byte (the header
    // is in the same sector) to a whole number of sectors...
    assert!(call.ends_with('p'), "a positioned write: {}", lines[record]);
    let direct = lines
        .iter()
        .find(|l| {
            l.contains("/proc/self/fd/")
                && l.contains("O_DIRECT")
                && test_support::strace_returned_fd(l) == Some(fd)
        })
        .unwrap_or_else(|| panic!("the record goes through an O_DIRECT handle:\n{trace}"));
    let journal_fd: i64 = direct
        .split("/proc/self/fd/")
        .nth(1)
        .and_then(|rest| rest.split('"').next()?.parse().ok())
        .expect("the handle reopens a descriptor");
    let (offset, len) = {
        let args: Vec<&str> = lines[record].rsplitn(3, ", ").collect();
        let offset: u64 = args[0].split(')').next().unwrap().parse().unwrap();
        let len: u64 = args[1].parse().unwrap();
        (offset, len)
    };
    assert_eq!(offset, 0, "{}", lines[record]);
    assert!(len >= 512 && len % 512 == 0, "{}", lines[record]);
    // ...then the device's cache flushed through a file with no name: never a sync of
    // the journal's own descriptors.
    let flushed = syncs
        .first()
        .and_then(|l| {
            l.split_once("fdatasync(")?
                .1
                .split(')')
                .next()?
                .parse::<i64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("a flush follows:\n{trace}"));
    assert!(flushed != fd && flushed != journal_fd, "{trace}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("O_TMPFILE") && test_support::strace_returned_fd(l) == Some(flushed)),
        "the flush is an unnamed file's:\n{trace}"
    );
}

#[test]
fn a_journal_made_by_someone_else_between_the_look_and_the_link_is_already_there() {
    // Another writer's journal appears just before the link: the link fails with
    // EEXIST, which is the id's journal existing, not an I/O failure.
    let (_dir, store, _rec) = store_with(Recording {
        foreign_write_before_link: Some(JOURNAL_HEADER.to_vec()),
        ..Recording::default()
    });
    let refused = store.create_journal(&id("cap-8"));
    assert!(
        matches!(refused, Err(FsError::AlreadyExists { .. })),
        "{:?}",
        refused.err()
    );
    let left: Vec<_> = std::fs::read_dir(store.dir().join(".journal"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["cap-8.journal"], "no temp left behind");
}

#[test]
fn a_new_journals_header_is_synced_once_by_its_zeros_or_else_by_an_fsync() {
    for preallocating in [true, false] {
        let (_dir, store, rec) = store_with(Recording {
            preallocating,
            ..Recording::default()
        });
        store.create_journal(&id("cap-9")).unwrap();
        let syncs: Vec<String> = log_of(&rec)
            .into_iter()
            .filter(|l| l.starts_with("fsync <temp>") || l.starts_with("preallocate"))
            .collect();
        let expected: Vec<String> = if preallocating {
            vec![format!(
                "preallocate {} <temp>",
                JOURNAL_HEADER.len() as u64 + EXTENT
            )]
        } else {
            vec!["fsync <temp>".to_owned()]
        };
        assert_eq!(syncs, expected, "preallocating: {preallocating}");
    }
}

#[test]
fn a_record_of_exactly_the_record_limit_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut journal = store.create_journal(&id("cap-10")).unwrap();
    let largest = vec![b'l'; session_fs::MAX_RECORD_BYTES];
    journal.append(&largest).unwrap();
    assert_eq!(journal.records(), 1);
}
