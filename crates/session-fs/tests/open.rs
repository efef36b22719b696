//! Opening a store: read-only handles, the file-size limit, state files, the
//! directory's own permissions, and the clock the store stamps with.

use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use session_fs::{Access, DEFAULT_MAX_FILE_SIZE, FsError, Store, now_ms};
use session_model::SessionId;

fn id(s: &str) -> SessionId {
    s.parse().unwrap()
}

fn save(store: &Store, s: &str, bytes: Vec<u8>) -> Result<(), FsError> {
    store
        .save(&id(s), move |_| Ok::<_, std::io::Error>(bytes))
        .map(|_| ())
}

#[test]
fn a_read_only_handle_needs_a_directory_creates_nothing_and_refuses_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let err = Store::options().read_only().open(&missing).unwrap_err();
    assert!(matches!(err, FsError::NoStore { .. }), "{err:?}");
    assert!(!missing.exists(), "a read-only open created the directory");
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let err = Store::options().read_only().open(&file).unwrap_err();
    assert!(matches!(err, FsError::NoStore { .. }), "{err:?}");

    // A plain directory no writer ever opened: nothing is created in it, not even a lock.
    let bare = dir.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    std::fs::write(bare.join("s.json"), b"{}").unwrap();
    let reader = Store::options().read_only().open(&bare).unwrap();
    assert_eq!(reader.access(), Access::ReadOnly);
    assert_eq!(reader.read(&id("s")).unwrap().as_deref(), Some(&b"{}"[..]));
    assert_eq!(reader.list().unwrap(), vec![id("s")]);
    for refused in [
        save(&reader, "s", b"{}".to_vec()),
        reader.delete(&id("s")).map(|_| ()),
        reader.write_state("x", b"1"),
        reader.secure_dir().map(|_| ()),
        reader.create_journal(&id("j")).map(|_| ()),
    ] {
        assert!(matches!(refused, Err(FsError::ReadOnly { .. })), "{refused:?}");
    }
    assert_eq!(test_support::names_in(&bare), ["s.json"]);

    // Once a writer has opened it, a read-only handle shares the store lock: an
    // exclusive handle cannot open while it lives.
    drop(Store::open(&bare).unwrap());
    let reader = Store::options().read_only().open(&bare).unwrap();
    let busy = Store::options().exclusive().no_wait().open(&bare).unwrap_err();
    assert!(matches!(busy, FsError::Busy { .. }), "{busy:?}");
    drop(reader);
    Store::options().exclusive().no_wait().open(&bare).unwrap();
}

#[test]
fn the_file_size_limit_is_the_handles_and_the_default_takes_a_session_of_megabytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.max_file_size(), DEFAULT_MAX_FILE_SIZE);
    // An analyzer result with an embedded image runs to megabytes.
    let big = vec![b'x'; 3 * 1024 * 1024];
    save(&store, "big", big.clone()).unwrap();
    assert_eq!(store.read(&id("big")).unwrap(), Some(big));
    let strict = Store::options().max_file_size(1024).open(dir.path()).unwrap();
    assert_eq!(strict.max_file_size(), 1024);
    let err = strict.read(&id("big")).unwrap_err();
    assert!(
        matches!(err, FsError::TooLarge { size, limit: 1024, .. } if size == 3 * 1024 * 1024),
        "{err:?}"
    );
}

#[test]
fn state_files_take_only_plain_names_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.write_state("last-cleanup", b"{}").unwrap();
    assert_eq!(
        store.read_state("last-cleanup").unwrap().as_deref(),
        Some(&b"{}"[..])
    );
    assert_eq!(store.read_state("never-written").unwrap(), None);
    for hostile in [".hidden", "..", "a/b", "../escape", "", "nul\0"] {
        assert!(store.write_state(hostile, b"x").is_err(), "{hostile:?} written");
        assert!(store.read_state(hostile).is_err(), "{hostile:?} read");
    }
    assert_eq!(
        test_support::names_in(&dir.path().join(".state")),
        ["last-cleanup"]
    );
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn securing_the_directory_takes_group_and_other_bits_away_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sessions");
    let store = Store::open(&root).unwrap();
    let mode = || std::fs::metadata(&root).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(), 0o700, "created private");
    assert_eq!(store.secure_dir().unwrap(), None, "already private: unchanged");
    for (open, secured) in [(0o755, 0o700), (0o750, 0o700), (0o1777, 0o1700), (0o701, 0o700)] {
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(open)).unwrap();
        assert_eq!(store.secure_dir().unwrap(), Some(open), "{open:o}");
        assert_eq!(mode(), secured, "{open:o}");
    }
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o500)).unwrap();
    assert_eq!(
        store.secure_dir().unwrap(),
        None,
        "a narrower owner mode is left alone"
    );
    assert_eq!(mode(), 0o500);
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn a_handle_shows_its_directory_and_access_and_the_clock_is_the_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::options().exclusive().open(dir.path()).unwrap();
    let shown = format!("{store:?}");
    assert!(
        shown.contains(&dir.path().display().to_string()) && shown.contains("Exclusive"),
        "{shown}"
    );
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(now_ms().abs_diff(wall) < 60_000, "{} vs {wall}", now_ms());
}
