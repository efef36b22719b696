//! The storages' edges: descriptors that do not leak into children, FIFOs that never
//! block a stream, an error's kind kept as the OS gave it, the `WriteFile` defaults a
//! storage without preallocation relies on, and the maintenance view's byte count.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use session_fs::{EntryKind, OsStorage, RootedStorage, Storage, StreamOutcome, WriteFile};

/// The descriptor of this process that has `path` open, if any.
fn open_fd_of(path: &Path) -> Option<i32> {
    std::fs::read_dir("/proc/self/fd")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let target = std::fs::read_link(entry.path()).ok()?;
            (target == path).then(|| entry.file_name().to_str()?.parse().ok())?
        })
}

fn cloexec(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags >= 0, "fcntl failed on {fd}");
    flags & libc::FD_CLOEXEC != 0
}

#[test]
fn files_the_storages_create_are_closed_on_exec() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap().join("new.json");
    let file = OsStorage.create_new(&path).unwrap();
    let fd = open_fd_of(&path).expect("the file is open");
    assert!(cloexec(fd), "a child process would inherit {}", path.display());
    drop(file);
    let rooted = RootedStorage::open(&dir.path().canonicalize().unwrap()).unwrap();
    let other = dir.path().canonicalize().unwrap().join("other.json");
    let file = rooted.create_new(&other).unwrap();
    assert!(cloexec(open_fd_of(&other).expect("open")));
    drop(file);
    // The probe itself tells an inherited descriptor from a closed-on-exec one.
    let plain = std::fs::File::open(&path).unwrap();
    // SAFETY: clears FD_CLOEXEC on a descriptor this test owns.
    unsafe { libc::fcntl(plain.as_raw_fd(), libc::F_SETFD, 0) };
    assert!(!cloexec(plain.as_raw_fd()));
}

#[test]
fn a_directory_the_os_refuses_keeps_the_refusals_kind() {
    // Nothing may be made in /sys, for root too: EPERM, not "not found".
    if !Path::new("/sys/kernel").is_dir() {
        assert!(std::env::var_os("CI").is_none(), "CI machines have /sys");
        eprintln!("skipped: no /sys");
        return;
    }
    let err = OsStorage
        .create_dir(Path::new("/sys/session-fs-test"))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
}

#[test]
fn streaming_a_fifo_never_waits_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    test_support::mkfifo(&root.join("f.json"));
    let (done, finished) = mpsc::channel();
    let path = root.join("f.json");
    std::thread::spawn(move || {
        let rooted = RootedStorage::open(path.parent().unwrap()).unwrap();
        let outcomes = [
            rooted.open_stream(&path, 1 << 20).map(|_| ()),
            OsStorage.open_stream(&path, 1 << 20).map(|_| ()),
        ];
        let _ = done.send(outcomes.map(|o| o.is_err()));
    });
    let refused = finished
        .recv_timeout(Duration::from_secs(10))
        .expect("opening a FIFO to stream it blocked");
    assert_eq!(refused, [true, true], "a FIFO is no file to stream");
}

#[test]
fn stream_outcomes_show_their_sizes_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(&path, b"0123456789").unwrap();
    let opened = OsStorage.open_stream(&path, 100).unwrap();
    assert!(matches!(opened, StreamOutcome::Opened { len: 10, .. }));
    assert_eq!(format!("{opened:?}"), "Opened { len: 10, .. }");
    let large = OsStorage.open_stream(&path, 5).unwrap();
    assert_eq!(format!("{large:?}"), "TooLarge { size: 10 }");
}

/// A file that can only write and sync, as a storage without preallocation has.
#[derive(Default)]
struct Plain {
    syncs: usize,
}

impl WriteFile for Plain {
    fn write_all(&mut self, _data: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn sync(&mut self) -> std::io::Result<()> {
        self.syncs += 1;
        Ok(())
    }
}

#[test]
fn without_preallocation_a_data_sync_is_a_full_sync() {
    let mut file = Plain::default();
    assert!(!file.preallocate(4096).unwrap(), "no zeros were written");
    file.sync_data().unwrap();
    assert_eq!(file.syncs, 1, "sync_data falls back to sync");
    file.write_over_zeros(0, b"", b"record").unwrap();
    assert_eq!(
        file.syncs, 2,
        "write_over_zeros falls back to write_all and sync_data, then sync"
    );
}

#[test]
fn live_bytes_add_up_the_session_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = session_fs::Store::open(dir.path()).unwrap();
    std::fs::write(dir.path().join("a.json"), vec![b'a'; 100]).unwrap();
    std::fs::write(dir.path().join("b.json"), vec![b'b'; 23]).unwrap();
    // Not sessions: a temp, a note, a directory named like one.
    std::fs::write(dir.path().join(".a.json.1.tmp"), vec![b't'; 1000]).unwrap();
    std::fs::write(dir.path().join("notes.txt"), vec![b'n'; 1000]).unwrap();
    std::fs::create_dir(dir.path().join("d.json")).unwrap();
    assert_eq!(store.maintenance().live_bytes().unwrap(), 123);
    assert_eq!(
        OsStorage.kind(&dir.path().join("d.json")).unwrap(),
        Some(EntryKind::Dir)
    );
}

#[test]
fn a_name_exists_without_following_it() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("dangling.json");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
    assert!(session_fs::exists_no_follow(&link), "a dangling symlink is there");
    assert!(!session_fs::exists_no_follow(&dir.path().join("nowhere")));
}

#[test]
fn reopening_emptied_or_in_place_keeps_the_file_and_never_writes_through_a_fifo_a_symlink_or_a_directory() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), b"outside").unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
    std::fs::create_dir(root.join("dir")).unwrap();
    test_support::mkfifo(&root.join("fifo"));
    let (done, finished) = mpsc::channel();
    let in_root = root.clone();
    std::thread::spawn(move || {
        let rooted = RootedStorage::open(&in_root).unwrap();
        let storages: [&dyn Storage; 2] = [&rooted, &OsStorage];
        let mut outcomes = Vec::new();
        let mut outcomes_in_place = Vec::new();
        for storage in storages {
            let file = in_root.join("file");
            std::fs::write(&file, b"old bytes").unwrap();
            let inode = std::fs::metadata(&file).unwrap().ino();
            let mut reopened = storage.reopen_empty(&file).unwrap();
            reopened.write_all(b"new").unwrap();
            reopened.sync().unwrap();
            let kept = std::fs::metadata(&file).unwrap().ino() == inode;
            let refused = ["link", "dir", "fifo", "missing"]
                .map(|name| storage.reopen_empty(&in_root.join(name)).is_err());
            outcomes.push((kept, std::fs::read(&file).unwrap(), refused));
            // Kept in place: written from its start, its size and later bytes stay.
            std::fs::write(&file, b"old bytes").unwrap();
            let (mut reopened, size) = storage.reopen(&file).unwrap();
            reopened.write_all(b"new").unwrap();
            reopened.sync().unwrap();
            let kept = std::fs::metadata(&file).unwrap().ino() == inode && size == 9;
            let refused =
                ["link", "dir", "fifo", "missing"].map(|name| storage.reopen(&in_root.join(name)).is_err());
            outcomes_in_place.push((kept, std::fs::read(&file).unwrap(), refused));
        }
        let _ = done.send((outcomes, outcomes_in_place));
    });
    let (outcomes, outcomes_in_place) = finished
        .recv_timeout(Duration::from_secs(10))
        .expect("reopening a FIFO blocked");
    for (kept, bytes, refused) in outcomes {
        assert!(kept, "the same inode");
        assert_eq!(bytes, b"new", "emptied, then written from its start");
        assert_eq!(refused, [true; 4]);
    }
    for (kept, bytes, refused) in outcomes_in_place {
        assert!(kept, "the same inode, its size told");
        assert_eq!(bytes, b"new bytes", "written from its start, the rest kept");
        assert_eq!(refused, [true; 4]);
    }
    assert_eq!(std::fs::read(outside.path()).unwrap(), b"outside");
}
