//! `RootedStorage` itself: what it opens, what it refuses to follow, what it reports.

use session_fs::{EntryKind, RootedStorage, Storage};

#[test]
fn the_root_must_be_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sessions");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = RootedStorage::open(&file).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(20), "ENOTDIR: {err}");
}

#[test]
fn a_symlink_swapped_in_for_an_area_after_opening_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let storage = RootedStorage::open(dir.path()).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(".trash")).unwrap();
    let inside = dir.path().join(".trash/s.json");
    let refused = [
        storage.create_new(&inside).err(),
        storage.list(&dir.path().join(".trash"), false).err(),
        storage.sync_dir(&dir.path().join(".trash")).err(),
        storage.kind(&inside).err(),
    ];
    for (n, err) in refused.into_iter().enumerate() {
        let err = err.unwrap_or_else(|| panic!("call {n} went through the symlink"));
        assert!(err.to_string().contains("symlink"), "call {n}: {err}");
    }
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn fifos_sockets_directories_and_symlinks_are_reported_as_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    test_support::mkfifo(&root.join("f.json"));
    let _socket = std::os::unix::net::UnixListener::bind(root.join("s.json")).unwrap();
    std::fs::create_dir(root.join("d.json")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("l.json")).unwrap();
    std::fs::write(root.join("r.json"), b"{}").unwrap();
    let storage = RootedStorage::open(root).unwrap();
    let expected = [
        ("d.json", EntryKind::Dir),
        ("f.json", EntryKind::Fifo),
        ("l.json", EntryKind::Symlink),
        ("r.json", EntryKind::File),
        ("s.json", EntryKind::Socket),
    ];
    for (name, kind) in expected {
        assert_eq!(storage.kind(&root.join(name)).unwrap(), Some(kind), "{name}");
    }
    for sizes in [false, true] {
        let mut listed: Vec<(String, EntryKind)> = storage
            .list(root, sizes)
            .unwrap()
            .into_iter()
            .map(|e| (e.name.to_string_lossy().into_owned(), e.kind))
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        let expected: Vec<(String, EntryKind)> = expected.iter().map(|(n, k)| (n.to_string(), *k)).collect();
        assert_eq!(listed, expected, "sizes: {sizes}");
    }
    assert_eq!(storage.kind(&root.join("missing.json")).unwrap(), None);
    // Reading a FIFO neither blocks nor succeeds; reading through a symlink is refused.
    for name in ["f.json", "l.json", "s.json", "d.json"] {
        assert!(storage.read(&root.join(name), 1024).is_err(), "{name}");
    }
}
