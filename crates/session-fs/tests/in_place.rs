//! Writes over zeros on ext4 without a journal, traced: which sectors go straight to
//! the device, and which fall back to a buffered write and `sync_file_range` (a last
//! sector that would run past the end of the file). Elsewhere these tests have nothing
//! to trace and say so.

use std::path::Path;

use session_fs::{RootedStorage, Storage};

const STRACE_DIR: &str = "SESSION_FS_IN_PLACE_STRACE_DIR";

/// Writes over zeros into two files of `dir`: `fits` (1,024 bytes, the record's last
/// sector ends exactly at its end) and `ragged` (1,000 bytes, it would run past it).
fn write_both(dir: &Path) {
    let storage = RootedStorage::open(dir).unwrap();
    // Both kept open to the end, so the trace tells their descriptors apart.
    let mut open = Vec::new();
    for (name, size) in [("fits", 1024), ("ragged", 1000)] {
        let mut file = storage.create_new(&dir.join(name)).unwrap();
        file.write_all(b"HEAD").unwrap();
        assert!(file.preallocate(size).unwrap());
        let record = vec![b'r'; size as usize - 4];
        file.write_over_zeros(4, b"HEAD", &record).unwrap();
        open.push(file);
    }
}

/// Child side of [`a_sector_at_the_end_goes_direct_and_one_past_it_falls_back`].
#[test]
fn child_writes_over_zeros() {
    let Ok(dir) = std::env::var(STRACE_DIR) else {
        return;
    };
    write_both(Path::new(&dir));
}

/// The descriptor a traced `openat` of `name` returned.
fn opened(lines: &[String], name: &str) -> i64 {
    lines
        .iter()
        .filter(|l| l.contains("openat(") && l.contains(&format!("\"{name}\"")))
        .find_map(|l| test_support::strace_returned_fd(l))
        .unwrap_or_else(|| panic!("{name} is opened:\n{}", lines.join("\n")))
}

#[test]
fn a_sector_at_the_end_goes_direct_and_one_past_it_falls_back() {
    let tmp = tempfile::tempdir().unwrap();
    if !RootedStorage::open(tmp.path())
        .unwrap()
        .syncs_overwrites_in_place()
    {
        eprintln!("skipped: not ext4 without a journal; writes over zeros are fdatasynced here");
        return;
    }
    let Some(lines) = test_support::strace_of_child(
        "child_writes_over_zeros",
        "openat,open,pwrite64,fdatasync,sync_file_range",
        (STRACE_DIR, tmp.path()),
    ) else {
        return;
    };
    let trace = lines.join("\n");
    let (fits, ragged) = (opened(&lines, "fits"), opened(&lines, "ragged"));
    let direct_of = |fd: i64| {
        lines
            .iter()
            .find(|l| l.contains(&format!("/proc/self/fd/{fd}\"")) && l.contains("O_DIRECT"))
            .and_then(|l| test_support::strace_returned_fd(l))
    };
    // One traced line holds every one of `parts`.
    let traced = |parts: &[&str]| lines.iter().any(|l| parts.iter().all(|p| l.contains(p)));
    // `fits`: the whole file's two sectors, header and record, straight to the device.
    let direct = direct_of(fits).unwrap_or_else(|| panic!("fits gets a direct handle:\n{trace}"));
    assert!(
        traced(&[&format!("pwrite64({direct}, \"HEAD"), ", 1024, 0)"]),
        "{trace}"
    );
    assert!(!traced(&[&format!("sync_file_range({fits},")]), "{trace}");
    // `ragged`: its last sector would grow it, so the record is written buffered at its
    // place and its own range written and waited for, with every flag.
    assert!(
        traced(&[&format!("pwrite64({ragged}, \"rrrr"), ", 996, 4)"]),
        "{trace}"
    );
    assert!(
        traced(&[&format!(
            "sync_file_range({ragged}, 4, 996, SYNC_FILE_RANGE_WAIT_BEFORE|SYNC_FILE_RANGE_WRITE|SYNC_FILE_RANGE_WAIT_AFTER)"
        )]),
        "{trace}"
    );
}

#[test]
fn both_files_hold_their_records_and_keep_their_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    write_both(tmp.path());
    for (name, size) in [("fits", 1024usize), ("ragged", 1000)] {
        let read = std::fs::read(tmp.path().join(name)).unwrap();
        assert_eq!(read.len(), size, "{name}");
        assert_eq!(&read[..4], b"HEAD", "{name}");
        assert!(read[4..].iter().all(|&b| b == b'r'), "{name}");
    }
}
