//! The `Storage` contract, held by both real implementations: `OsStorage` (paths) and
//! `RootedStorage` (one directory handle). Each case runs against both, on real files:
//! hostile names (symlinks, FIFOs, sockets), limits at their exact edge, and a file that
//! grows between its size check and its read.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use session_fs::{EntryKind, LockMode, OsStorage, ReadOutcome, RootedStorage, Storage};

/// Runs `case` against each storage, rooted at a fresh temp directory.
fn for_each_storage(case: impl Fn(&str, &dyn Storage, &Path)) {
    for name in ["OsStorage", "RootedStorage"] {
        let dir = tempfile::tempdir().unwrap();
        let storage: Box<dyn Storage> = match name {
            "OsStorage" => Box::new(OsStorage),
            _ => Box::new(RootedStorage::open(dir.path()).unwrap()),
        };
        case(name, storage.as_ref(), dir.path());
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn message(result: io::Result<impl std::fmt::Debug>) -> String {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn directories_are_made_0700_and_only_a_real_directory_counts_as_one() {
    for_each_storage(|name, storage, root| {
        let made = root.join(".trash");
        storage.create_dir(&made).unwrap();
        assert_eq!(mode_of(&made), 0o700, "{name}");
        storage.create_dir(&made).unwrap(); // an existing directory is fine
        std::fs::write(root.join(".state"), b"").unwrap();
        let err = message(storage.create_dir(&root.join(".state")));
        assert!(err.contains("not a directory"), "{name}: {err}");
        std::os::unix::fs::symlink(&made, root.join(".backup")).unwrap();
        let err = message(storage.create_dir(&root.join(".backup")));
        assert!(err.contains("symlink"), "{name}: {err}");
    });
}

#[test]
fn a_new_file_is_0600_exclusive_and_never_made_through_a_symlink() {
    for_each_storage(|name, storage, root| {
        let path = root.join("s.json");
        let mut file = storage.create_new(&path).unwrap();
        file.write_all(b"{}").unwrap();
        file.sync().unwrap();
        assert_eq!(
            (std::fs::read(&path).unwrap(), mode_of(&path)),
            (b"{}".to_vec(), 0o600),
            "{name}"
        );
        let again = storage.create_new(&path).err().expect("exclusive");
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists, "{name}");
        std::os::unix::fs::symlink(root.join("target.json"), root.join("link.json")).unwrap();
        assert!(storage.create_new(&root.join("link.json")).is_err(), "{name}");
        assert!(
            !root.join("target.json").exists(),
            "{name}: created through the symlink"
        );
    });
}

#[test]
fn names_are_renamed_linked_and_removed() {
    for_each_storage(|name, storage, root| {
        std::fs::write(root.join("a"), b"1").unwrap();
        storage.hard_link(&root.join("a"), &root.join("b")).unwrap();
        let clash = storage.hard_link(&root.join("a"), &root.join("b")).unwrap_err();
        assert_eq!(clash.kind(), io::ErrorKind::AlreadyExists, "{name}");
        storage.rename(&root.join("a"), &root.join("c")).unwrap();
        storage.remove_file(&root.join("b")).unwrap();
        assert_eq!(std::fs::read(root.join("c")).unwrap(), b"1", "{name}");
        assert!(!root.join("a").exists() && !root.join("b").exists(), "{name}");
        storage.sync_dir(root).unwrap();
        assert!(storage.sync_dir(&root.join("missing")).is_err(), "{name}");
    });
}

#[test]
fn a_read_takes_a_file_at_its_limit_and_refuses_one_byte_more() {
    for_each_storage(|name, storage, root| {
        let path = root.join("s.json");
        std::fs::write(&path, vec![b'x'; 100]).unwrap();
        match storage.read(&path, 100).unwrap() {
            ReadOutcome::Bytes(bytes) => assert_eq!(bytes.len(), 100, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(
            storage.read(&path, 99).unwrap(),
            ReadOutcome::TooLarge { size: 100 },
            "{name}"
        );
        let missing = storage.read(&root.join("missing.json"), 100).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound, "{name}");
    });
}

#[test]
fn a_file_larger_than_its_size_said_is_refused_never_cut_short() {
    // /proc files report a size of 0 and then read as more: the case of a file that
    // grew between the size check and the read.
    let status = Path::new("/proc/self/status");
    assert_eq!(std::fs::metadata(status).unwrap().len(), 0);
    for (name, storage) in [
        ("OsStorage", Box::new(OsStorage) as Box<dyn Storage>),
        (
            "RootedStorage",
            Box::new(RootedStorage::open(Path::new("/proc/self")).unwrap()),
        ),
    ] {
        match storage.read(status, 50).unwrap() {
            ReadOutcome::TooLarge { size } => {
                assert_eq!(size, 51, "{name}: read up to one byte past the limit")
            }
            ReadOutcome::Bytes(bytes) => panic!("{name}: cut short to {} bytes", bytes.len()),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn a_read_refuses_symlinks_fifos_sockets_and_directories_without_blocking() {
    for_each_storage(|name, storage, root| {
        std::fs::write(root.join("target.json"), b"{}").unwrap();
        std::os::unix::fs::symlink(root.join("target.json"), root.join("l.json")).unwrap();
        test_support::mkfifo(&root.join("f.json"));
        let _socket = std::os::unix::net::UnixListener::bind(root.join("s.json")).unwrap();
        std::fs::create_dir(root.join("d.json")).unwrap();
        for (file, says) in [
            ("l.json", "symlink"),
            ("f.json", "a FIFO"),
            ("s.json", "socket"),
            ("d.json", "directory"),
        ] {
            let err = message(storage.read(&root.join(file), 1024));
            assert!(err.contains(says), "{name} {file}: {err}");
        }
    });
}

#[test]
fn a_listing_reports_each_kind_and_sizes_only_when_asked() {
    for_each_storage(|name, storage, root| {
        std::fs::write(root.join("r.json"), b"12345").unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::os::unix::fs::symlink("r.json", root.join("l")).unwrap();
        test_support::mkfifo(&root.join("f"));
        for sizes in [false, true] {
            let mut listed: Vec<(String, EntryKind, u64)> = storage
                .list(root, sizes)
                .unwrap()
                .into_iter()
                .map(|e| (e.name.to_string_lossy().into_owned(), e.kind, e.len))
                .collect();
            listed.sort_by(|a, b| a.0.cmp(&b.0));
            let kinds: Vec<(&str, EntryKind)> = listed.iter().map(|(n, k, _)| (n.as_str(), *k)).collect();
            assert_eq!(
                kinds,
                [
                    ("d", EntryKind::Dir),
                    ("f", EntryKind::Fifo),
                    ("l", EntryKind::Symlink),
                    ("r.json", EntryKind::File)
                ],
                "{name}"
            );
            let file_len = listed.iter().find(|(n, ..)| n == "r.json").unwrap().2;
            assert_eq!(file_len, if sizes { 5 } else { 0 }, "{name} sizes: {sizes}");
        }
        std::os::unix::fs::symlink(root.join("d"), root.join("dl")).unwrap();
        let err = message(storage.list(&root.join("dl"), false));
        assert!(err.contains("symlink"), "{name}: {err}");
        let missing = storage.list(&root.join("missing"), false).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound, "{name}");
    });
}

#[test]
fn kinds_come_from_the_name_itself_and_a_missing_name_is_none() {
    for_each_storage(|name, storage, root| {
        std::fs::write(root.join("r"), b"").unwrap();
        std::os::unix::fs::symlink("r", root.join("l")).unwrap();
        test_support::mkfifo(&root.join("f"));
        let _socket = std::os::unix::net::UnixListener::bind(root.join("s")).unwrap();
        for (file, kind) in [
            ("r", EntryKind::File),
            ("l", EntryKind::Symlink),
            ("f", EntryKind::Fifo),
            ("s", EntryKind::Socket),
        ] {
            assert_eq!(
                storage.kind(&root.join(file)).unwrap(),
                Some(kind),
                "{name} {file}"
            );
        }
        assert_eq!(storage.kind(&root.join("missing")).unwrap(), None, "{name}");
        assert_eq!(
            storage.kind(&root.join("missing/deeper")).unwrap(),
            None,
            "{name}"
        );
        // Under a file is not "missing": it is an error.
        assert!(storage.kind(&root.join("r/under-a-file")).is_err(), "{name}");
    });
}

#[test]
fn locks_exclude_share_and_are_0600_files_never_fifos_or_symlinks() {
    for_each_storage(|name, storage, root| {
        let path = root.join("s.lock");
        let exclusive = storage.lock(&path, LockMode::Exclusive, false).unwrap();
        assert!(exclusive.is_some(), "{name}");
        assert_eq!(mode_of(&path), 0o600, "{name}");
        assert!(
            storage.lock(&path, LockMode::Exclusive, false).unwrap().is_none(),
            "{name}"
        );
        assert!(
            storage.lock(&path, LockMode::Shared, false).unwrap().is_none(),
            "{name}"
        );
        drop(exclusive);
        let a = storage.lock(&path, LockMode::Shared, false).unwrap();
        let b = storage.lock(&path, LockMode::Shared, true).unwrap();
        assert!(a.is_some() && b.is_some(), "{name}: shared locks coexist");
        assert!(
            storage.lock(&path, LockMode::Exclusive, false).unwrap().is_none(),
            "{name}"
        );
        drop((a, b));
        assert!(
            storage.lock(&path, LockMode::Exclusive, true).unwrap().is_some(),
            "{name}"
        );

        test_support::mkfifo(&root.join("f.lock"));
        let err = message(
            storage
                .lock(&root.join("f.lock"), LockMode::Exclusive, false)
                .map(|l| l.is_some()),
        );
        assert!(
            err.contains("a FIFO") && err.contains("not a lock file"),
            "{name}: {err}"
        );
        std::fs::write(root.join("target"), b"").unwrap();
        std::os::unix::fs::symlink(root.join("target"), root.join("l.lock")).unwrap();
        assert!(
            storage
                .lock(&root.join("l.lock"), LockMode::Exclusive, false)
                .is_err(),
            "{name}"
        );
        assert!(
            storage
                .lock(&root.join("missing/x.lock"), LockMode::Exclusive, false)
                .is_err(),
            "{name}"
        );
    });
}

#[test]
fn a_lock_file_its_holder_removes_is_never_held_by_whoever_waited_on_it() {
    for_each_storage(|name, storage, root| {
        let path = root.join("s.lock");
        let held = storage.lock(&path, LockMode::Exclusive, true).unwrap().unwrap();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| storage.lock(&path, LockMode::Exclusive, true).unwrap().unwrap());
            // The waiter has opened the file and waits on it: then it is removed.
            test_support::wait_for_flock_waiter(&path, "the second locker");
            assert!(storage.remove_held_lock(&path).unwrap(), "{name}");
            assert!(!path.exists(), "{name}");
            drop(held);
            let second = waiter.join().unwrap();
            // It holds the file the name leads to now: no one else may hold it too.
            assert!(path.exists(), "{name}");
            assert!(
                storage.lock(&path, LockMode::Exclusive, false).unwrap().is_none(),
                "{name}: two holders at once"
            );
            drop(second);
            assert!(
                storage.lock(&path, LockMode::Exclusive, false).unwrap().is_some(),
                "{name}"
            );
        });
        assert!(
            !storage.remove_held_lock(&root.join("never.lock")).unwrap(),
            "{name}"
        );
        std::fs::create_dir(root.join("dir.lock")).unwrap();
        let err = message(storage.remove_held_lock(&root.join("dir.lock")));
        assert!(err.contains("directory"), "{name}: {err}");
        assert!(root.join("dir.lock").is_dir(), "{name}");
    });
}

#[test]
fn modes_are_set_on_the_name_itself_never_through_a_symlink() {
    for_each_storage(|name, storage, root| {
        let file = root.join("s.json");
        std::fs::write(&file, b"{}").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        storage.set_mode(&file, 0o600).unwrap();
        assert_eq!(mode_of(&file), 0o600, "{name}");
        let target = root.join("target");
        std::fs::write(&target, b"").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&target, root.join("l.json")).unwrap();
        assert!(storage.set_mode(&root.join("l.json"), 0o600).is_err(), "{name}");
        assert_eq!(mode_of(&target), 0o644, "{name}: changed through the symlink");
        // A FIFO's mode is set without waiting for a writer.
        test_support::mkfifo(&root.join("f.json"));
        storage.set_mode(&root.join("f.json"), 0o644).unwrap();
        assert_eq!(mode_of(&root.join("f.json")), 0o644, "{name}");
    });
}

#[test]
fn a_device_is_reported_as_a_device() {
    // /dev is the one directory every machine has with a device in it.
    let dev = Path::new("/dev");
    for (name, storage) in [
        ("OsStorage", Box::new(OsStorage) as Box<dyn Storage>),
        ("RootedStorage", Box::new(RootedStorage::open(dev).unwrap())),
    ] {
        assert_eq!(
            storage.kind(&dev.join("null")).unwrap(),
            Some(EntryKind::Device),
            "{name}"
        );
    }
}

#[test]
fn bytes_written_over_zeros_land_at_their_place_and_the_next_write_follows_them() {
    for_each_storage(|name, storage, root| {
        let path = root.join("j.journal");
        let mut file = storage.create_new(&path).unwrap();
        // A header, then zeros made durable past it, as a journal's start writes them.
        file.write_all(b"HEAD").unwrap();
        assert!(file.preallocate(3000).unwrap(), "{name}");
        // Records that straddle the 512- and 1024-byte marks, each with every byte
        // before it as context (fewer than a page: the file holds no more).
        let mut written = b"HEAD".to_vec();
        for (i, len) in [500usize, 600, 700].into_iter().enumerate() {
            let record = vec![b'a' + i as u8; len];
            file.write_over_zeros(written.len() as u64, &written, &record)
                .unwrap();
            written.extend_from_slice(&record);
        }
        // A plain write after them goes where they end.
        file.write_all(b"TAIL").unwrap();
        file.sync().unwrap();
        written.extend_from_slice(b"TAIL");
        let read = std::fs::read(&path).unwrap();
        assert_eq!(read.len(), 3000, "{name}: the size the zeros gave it");
        assert_eq!(read[..written.len()], written[..], "{name}");
        assert!(
            read[written.len()..].iter().all(|&b| b == 0),
            "{name}: zeros after"
        );
    });
}
