//! The store against the real filesystem, and through recording / failing seams.

use std::io;
use std::path::PathBuf;
use std::sync::Barrier;

use session_fs::{FsError, SaveOutcome, Step, Store};
use session_model::SessionId;

mod common;

use common::{Recording, log_of, store_with};

fn id(s: &str) -> SessionId {
    s.parse().unwrap()
}

fn doc(id: &str, value: &str) -> impl FnOnce(session_fs::SaveStamp) -> Result<Vec<u8>, io::Error> {
    let (id, value) = (id.to_owned(), value.to_owned());
    move |stamp| {
        Ok(serde_json::to_vec(&serde_json::json!({
            "id": id, "value": value, "_metadata": {"revision": stamp.revision, "savedAt": stamp.saved_at}
        }))
        .unwrap())
    }
}

fn read_json(store: &Store, s: &str) -> serde_json::Value {
    serde_json::from_slice(&store.read(&id(s)).unwrap().expect("session exists")).unwrap()
}

#[test]
fn save_writes_fsyncs_renames_then_fsyncs_the_directory() {
    let (_dir, store, rec) = store_with(Recording::default());
    store.save(&id("s1"), doc("s1", "a")).unwrap();
    assert_eq!(
        *rec.log.lock().unwrap(),
        [
            "create <temp>",
            "write <temp>",
            "fsync <temp>",
            "rename s1.json",
            "fsync-dir sessions"
        ]
    );
}

#[test]
fn create_links_into_place_and_never_clobbers() {
    let (_dir, store, rec) = store_with(Recording::default());
    store.create(&id("s1"), doc("s1", "first")).unwrap();
    assert_eq!(
        *rec.log.lock().unwrap(),
        [
            "create <temp>",
            "write <temp>",
            "fsync <temp>",
            "link s1.json",
            "fsync-dir sessions",
            "remove <temp>"
        ]
    );
    let err = store.create(&id("s1"), doc("s1", "second")).unwrap_err();
    assert!(matches!(err, FsError::AlreadyExists { .. }), "{err}");
    assert_eq!(read_json(&store, "s1")["value"], "first");
    assert_eq!(
        test_support::names_in(store.dir()),
        [".locks", ".quarantine", ".store.lock", ".trash", "s1.json"]
    );
}

#[test]
fn create_never_clobbers_a_file_a_foreign_writer_made_after_the_check() {
    let (_dir, store, _rec) = store_with(Recording {
        foreign_write_before_link: Some(b"{\"app\":true}".to_vec()),
        ..Recording::default()
    });
    let err = store.create(&id("s1"), doc("s1", "ours")).unwrap_err();
    assert!(
        matches!(&err, FsError::AlreadyExists { id: taken } if *taken == id("s1")),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read(store.path_of(&id("s1"))).unwrap(),
        b"{\"app\":true}"
    );
    assert_eq!(
        test_support::names_in(store.dir()),
        [".locks", ".quarantine", ".store.lock", ".trash", "s1.json"]
    );
}

#[test]
fn racing_creators_of_one_id_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let barrier = Barrier::new(8);
    let wins: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (store, barrier) = (&store, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    store.create(&id("dup"), doc("dup", &i.to_string())).is_ok()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(wins.iter().filter(|w| **w).count(), 1);
    let winner = wins.iter().position(|w| *w).unwrap().to_string();
    assert_eq!(read_json(&store, "dup")["value"], winner.as_str());
}

#[test]
fn sixteen_concurrent_writers_of_one_id_last_write_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let barrier = Barrier::new(16);
    let outcomes: Vec<SaveOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let (store, barrier) = (&store, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    (0..10)
                        .map(|round| {
                            store
                                .save(&id("hot"), doc("hot", &format!("{i}-{round}")))
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let stored = read_json(&store, "hot");
    let value = stored["value"].as_str().unwrap();
    let (writer, round) = value.split_once('-').unwrap();
    assert_eq!(
        round, "9",
        "the survivor must be some writer's last save, got {value}"
    );
    assert!(writer.parse::<usize>().unwrap() < 16);
    // Every written save bumped the revision exactly once, and only those did: the
    // superseded ones were skipped, none was lost or interleaved.
    let written: Vec<u64> = outcomes
        .iter()
        .filter_map(|o| match o {
            SaveOutcome::Written(stamp) => Some(stamp.revision),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes.len(), 160);
    assert_eq!(stored["_metadata"]["revision"], written.len() as u64);
    let mut revisions = written.clone();
    revisions.sort_unstable();
    assert_eq!(
        revisions,
        (1..=written.len() as u64).collect::<Vec<_>>(),
        "each revision written once"
    );
    // After everything returned, a new save is applied on top: it wins.
    store.save(&id("hot"), doc("hot", "final")).unwrap();
    assert_eq!(read_json(&store, "hot")["value"], "final");
    assert!(
        test_support::names_in(dir.path())
            .iter()
            .all(|n| !n.ends_with(".tmp"))
    );
}

#[test]
fn sequential_saves_bump_the_revision() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for expected in 1..=3u64 {
        let outcome = store.save(&id("s"), doc("s", "v")).unwrap();
        assert!(matches!(outcome, SaveOutcome::Written(stamp) if stamp.revision == expected));
    }
    assert_eq!(read_json(&store, "s")["_metadata"]["revision"], 3);
}

#[test]
fn a_failed_save_names_the_step_and_leaves_the_old_version() {
    for (op, step) in [
        ("create", Step::CreateTemp),
        ("write", Step::WriteTemp),
        ("fsync", Step::SyncTemp),
        ("rename", Step::Rename),
    ] {
        for errno in [28 /* ENOSPC */, 5 /* EIO */, 13 /* EACCES */] {
            // The first save (call 1 of each op) succeeds; the second fails at `op`.
            let (_dir, store, _rec) = store_with(Recording {
                fail_at: Some((op.to_owned(), 2)),
                fail_with: Some(errno),
                ..Recording::default()
            });
            store.save(&id("s1"), doc("s1", "old")).unwrap();
            let err = store.save(&id("s1"), doc("s1", "new")).unwrap_err();
            match &err {
                FsError::Io {
                    step: got, source, ..
                } => {
                    assert_eq!(*got, step, "{op}");
                    assert_eq!(source.raw_os_error(), Some(errno));
                }
                other => panic!("{op}: unexpected {other}"),
            }
            assert!(
                err.to_string().contains("sessions"),
                "error names the file: {err}"
            );
            assert_eq!(read_json(&store, "s1")["value"], "old", "{op} errno {errno}");
            let leftovers: Vec<_> = test_support::names_in(store.dir())
                .into_iter()
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            assert!(leftovers.is_empty(), "{op}: temp left behind: {leftovers:?}");
        }
    }
}

#[test]
fn delete_moves_to_trash_and_missing_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save(&id("gone"), doc("gone", "x")).unwrap();
    assert!(store.delete(&id("gone")).unwrap());
    assert!(!store.delete(&id("gone")).unwrap());
    assert!(store.list().unwrap().is_empty());
    let trash = test_support::names_in(&dir.path().join(".trash"));
    assert_eq!(trash.len(), 1);
    assert!(trash[0].ends_with(".gone.json"), "{trash:?}");
}

#[test]
fn listing_skips_everything_that_is_not_a_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save(&id("b"), doc("b", "x")).unwrap();
    store.save(&id("a"), doc("a", "x")).unwrap();
    let p = dir.path();
    for name in [
        "c.json.tmp",
        ".d.json.1-2.tmp",
        "notes.txt",
        "bad name.json",
        ".hidden.json",
    ] {
        std::fs::write(p.join(name), b"{}").unwrap();
    }
    std::os::unix::fs::symlink(p.join("a.json"), p.join("link.json")).unwrap();
    std::fs::create_dir(p.join("dir.json")).unwrap();
    assert_eq!(store.list().unwrap(), [id("a"), id("b")]);
    // Reading never follows a symlink.
    let err = store.read(&id("link")).unwrap_err();
    assert!(matches!(err, FsError::Io { step: Step::Read, .. }), "{err}");
}

#[test]
fn a_huge_file_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let file = std::fs::File::create(dir.path().join("huge.json")).unwrap();
    file.set_len(5 * 1024 * 1024 * 1024).unwrap(); // sparse: costs no disk
    let err = store.read(&id("huge")).unwrap_err();
    assert!(
        matches!(err, FsError::TooLarge { size, .. } if size == 5 * 1024 * 1024 * 1024),
        "{err}"
    );
    assert!(err.to_string().contains("huge.json"), "{err}");
}

#[test]
fn files_are_0600_and_directories_0700() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    store.save(&id("p"), doc("p", "x")).unwrap();
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(root.join("p.json")), 0o600);
    assert_eq!(mode(root.clone()), 0o700);
    assert_eq!(mode(root.join(".trash")), 0o700);
}

#[test]
fn replacing_a_damaged_file_keeps_it_in_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    std::fs::write(dir.path().join("torn.json"), b"{\"id\": \"to").unwrap();
    store.save(&id("torn"), doc("torn", "fresh")).unwrap();
    assert_eq!(read_json(&store, "torn")["value"], "fresh");
    let quarantined = test_support::names_in(&dir.path().join(".quarantine"));
    assert_eq!(quarantined.len(), 2, "{quarantined:?}");
    let kept = quarantined.iter().find(|n| n.ends_with("torn.json")).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(".quarantine").join(kept)).unwrap(),
        b"{\"id\": \"to"
    );
}

#[test]
fn an_exclusive_handle_waits_for_no_one_and_excludes_others() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Store::open(dir.path()).unwrap();
    let err = Store::options()
        .exclusive()
        .no_wait()
        .open(dir.path())
        .unwrap_err();
    assert!(matches!(err, FsError::Busy { .. }), "{err}");
    drop(shared);
    let exclusive = Store::options().exclusive().no_wait().open(dir.path()).unwrap();
    assert!(matches!(
        Store::options().no_wait().open(dir.path()),
        Err(FsError::Busy { .. })
    ));
    drop(exclusive);
}

const CHILD_ENV: &str = "SESSION_FS_TEST_CHILD_STORE";

/// Not a test on its own: the body of the child processes of the test below.
#[test]
fn child_increments_a_counter() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(dir).unwrap();
    for _ in 0..100 {
        let mut guard = store.lock(&id("shared")).unwrap();
        let mut value: serde_json::Value = serde_json::from_slice(&guard.read().unwrap().unwrap()).unwrap();
        value["count"] = (value["count"].as_u64().unwrap() + 1).into();
        guard.save(|_| serde_json::to_vec(&value)).unwrap();
    }
}

#[test]
fn two_processes_updating_one_session_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .save(&id("shared"), |_| {
            serde_json::to_vec(&serde_json::json!({"count": 0}))
        })
        .unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            test_support::ChildGuard::new(
                test_support::rerun_as_child("child_increments_a_counter")
                    .env(CHILD_ENV, dir.path())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(read_json(&store, "shared")["count"], 200);
}

#[test]
fn area_operations_refuse_anything_outside_the_dot_areas() {
    use session_fs::maintenance::{Area, BackupRun};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    std::fs::write(dir.path().join("outside.json"), b"keep me").unwrap();
    let hooks = store.maintenance();
    let name = std::ffi::OsString::from("outside.json");
    // Areas are typed: a backup run is only what the store could have named.
    for foreign in ["..", ".trash/..", "../..", "", "s", "2023-photos"] {
        assert!(BackupRun::parse(foreign).is_none(), "{foreign:?}");
    }
    // The quarantine is never purged; names with a separator are refused everywhere.
    let quarantined = hooks.purge(&Area::Quarantine, &name).unwrap_err();
    assert_eq!(
        quarantined.io_kind(),
        Some(std::io::ErrorKind::InvalidInput),
        "{quarantined}"
    );
    for bad in ["../../outside.json", "../outside.json", "..", "a/b"] {
        let bad = std::ffi::OsString::from(bad);
        let err = hooks.purge(&Area::Trash, &bad).unwrap_err();
        assert_eq!(err.io_kind(), Some(std::io::ErrorKind::InvalidInput), "{err}");
        assert!(hooks.read_entry(&bad).is_err());
        assert!(hooks.move_aside(&bad, &Area::Trash, None).is_err());
    }
    assert!(store.read_state("../../outside.json").is_err());
    assert!(store.write_state("../outside.json", b"x").is_err());
    assert!(dir.path().join("outside.json").exists());
}

#[test]
fn an_open_store_works_through_its_directory_handle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let store = Store::open(&dir).unwrap();
    let id = SessionId::new("h-1").unwrap();
    // The directory is moved away and another put in its place: the open store keeps
    // working on the directory it opened, never on what the path now names.
    let moved = tmp.path().join("s-moved");
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::create_dir(&dir).unwrap();
    store
        .save(&id, |stamp| {
            Ok::<_, std::io::Error>(
                format!(r#"{{"id":"h-1","_metadata":{{"revision":{}}}}}"#, stamp.revision).into_bytes(),
            )
        })
        .unwrap();
    assert!(moved.join("h-1.json").exists());
    assert!(!dir.join("h-1.json").exists());
    assert!(store.read(&id).unwrap().is_some());
    // A dot-directory replaced by a symlink after opening is refused, not followed.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::rename(moved.join(".trash"), tmp.path().join("old-trash")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, moved.join(".trash")).unwrap();
    let err = store.delete(&id).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(moved.join("h-1.json").exists(), "nothing moved");
}

const STRACE_DIR: &str = "SESSION_FS_STRACE_DIR";

/// Child side of [`a_save_fsyncs_the_file_renames_then_fsyncs_the_directory`].
#[test]
fn child_saves_once() {
    let Ok(dir) = std::env::var(STRACE_DIR) else {
        return;
    };
    let store = Store::open(dir).unwrap();
    store.save(&id("traced"), doc("traced", "v")).unwrap();
}

#[test]
fn a_save_fsyncs_the_file_renames_then_fsyncs_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let Some(lines) = test_support::strace_of_child(
        "child_saves_once",
        "openat,fsync,fdatasync,rename,renameat,renameat2,close",
        (STRACE_DIR, &dir),
    ) else {
        return;
    };
    let result = |line: &str| {
        line.rsplit_once("= ")
            .and_then(|(_, r)| r.trim().parse::<i64>().ok())
    };
    // The temp file: created exclusively, and the descriptor it got.
    let (created_at, temp_fd) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains("openat(") && l.contains(".traced.json.") && l.contains("O_EXCL"))
        .map(|(i, l)| (i, result(l).unwrap()))
        .expect("the temp file is created");
    let synced_at = lines
        .iter()
        .enumerate()
        .skip(created_at)
        .find(|(_, l)| {
            l.contains(&format!("fsync({temp_fd})")) || l.contains(&format!("fdatasync({temp_fd})"))
        })
        .map(|(i, _)| i)
        .expect("the temp file is fsynced");
    let renamed_at = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains("rename") && l.contains("\"traced.json\""))
        .map(|(i, _)| i)
        .expect("the temp file is renamed into place");
    assert!(
        synced_at < renamed_at,
        "fsync of the file before the rename:\n{}",
        lines.join("\n")
    );
    // After the rename: a directory opened for this save and fsynced before that
    // descriptor is closed (a later fsync of a reused descriptor number is another file).
    let dir_fsynced = lines.iter().enumerate().skip(renamed_at).any(|(i, l)| {
        l.contains("O_DIRECTORY")
            && result(l).is_some_and(|fd| {
                fd >= 0 && {
                    let (fsync, close) = (format!("fsync({fd})"), format!("close({fd})"));
                    lines[i + 1..]
                        .iter()
                        .take_while(|m| !m.contains(&close))
                        .any(|m| m.contains(&fsync))
                }
            })
    });
    assert!(
        dir_fsynced,
        "fsync of the directory after the rename:\n{}",
        lines.join("\n")
    );
}

#[test]
fn a_damaged_file_is_kept_once_per_guard_and_the_save_after_it_continues_the_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for value in ["a", "b", "c"] {
        store.save(&id("s"), doc("s", value)).unwrap();
    }
    let mut guard = store.lock(&id("s")).unwrap();
    assert!(guard.read().unwrap().is_some());
    guard.keep_damaged("unknown field").unwrap();
    guard.keep_damaged("unknown field").unwrap();
    let kept = test_support::names_in(&dir.path().join(".quarantine"));
    assert_eq!(kept.len(), 2, "one copy and its sidecar, once: {kept:?}");
    let sidecar = kept.iter().find(|n| n.ends_with(".why.json")).unwrap();
    let note: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(".quarantine").join(sidecar)).unwrap())
            .unwrap();
    assert_eq!(note["reason"], "replaced by a save while damaged: unknown field");
    let stamp = guard.save(doc("s", "d")).unwrap();
    assert_eq!(stamp.revision, 4, "the revisions go on from the kept copy's");
    drop(guard);

    // Nothing to keep for a session that does not exist.
    let mut guard = store.lock(&id("new")).unwrap();
    guard.keep_damaged("x").unwrap();
    assert_eq!(test_support::names_in(&dir.path().join(".quarantine")).len(), 2);
}

#[test]
fn quarantining_moves_the_session_with_its_reason_and_says_whether_there_was_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save(&id("s"), doc("s", "a")).unwrap();
    let mut guard = store.lock(&id("s")).unwrap();
    assert!(guard.quarantine("not JSON").unwrap());
    assert!(!guard.quarantine("not JSON").unwrap(), "gone already");
    drop(guard);
    assert_eq!(store.read(&id("s")).unwrap(), None);
    let kept = test_support::names_in(&dir.path().join(".quarantine"));
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().any(|n| n.ends_with(".s.json")), "{kept:?}");
    let mut missing = store.lock(&id("never")).unwrap();
    assert!(!missing.quarantine("x").unwrap());
}

#[test]
fn a_failed_listing_of_any_area_is_an_error_never_an_empty_area() {
    let (_dir, store, _rec) = store_with(Recording {
        fail_list: Some(5), // EIO
        ..Recording::default()
    });
    let hooks = store.maintenance();
    let results = [
        hooks.list_area(&session_fs::maintenance::Area::Trash).map(|_| ()),
        hooks.backup_runs().map(|_| ()),
        hooks.scan().map(|_| ()),
        store.list().map(|_| ()),
    ];
    for (n, result) in results.into_iter().enumerate() {
        assert!(
            matches!(result, Err(FsError::Io { step: Step::List, .. })),
            "call {n}: {result:?}"
        );
    }
}

#[test]
fn a_backup_kept_twice_in_one_run_keeps_the_first_bytes_and_a_failed_link_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let run = store.maintenance().new_backup_run();
    store.save(&id("s"), doc("s", "original")).unwrap();
    store.lock(&id("s")).unwrap().keep_backup(&run).unwrap();
    store.save(&id("s"), doc("s", "migrated")).unwrap();
    // A rerun after a crash keeps the backup it made first, never the rewritten file.
    store.lock(&id("s")).unwrap().keep_backup(&run).unwrap();
    let kept = store.maintenance().read_backup(&run, &id("s")).unwrap().unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&kept).unwrap()["value"],
        "original"
    );

    let (_dir, store, _rec) = store_with(Recording {
        fail_at: Some(("link".into(), 1)),
        ..Recording::default()
    });
    store.save(&id("s"), doc("s", "original")).unwrap();
    let run = store.maintenance().new_backup_run();
    let err = store.lock(&id("s")).unwrap().keep_backup(&run).unwrap_err();
    assert!(matches!(err, FsError::Io { step: Step::Link, .. }), "{err:?}");
    assert_eq!(store.maintenance().read_backup(&run, &id("s")).unwrap(), None);
}

#[test]
fn a_run_is_made_durable_once_and_each_original_then_costs_one_directory_fsync() {
    let (dir, store, rec) = store_with(Recording::default());
    for n in 0..3 {
        store.save(&id(&format!("s{n}")), doc("s", "original")).unwrap();
    }
    let run = store.maintenance().new_backup_run();
    rec.log.lock().unwrap().clear();
    for n in 0..3 {
        store
            .lock(&id(&format!("s{n}")))
            .unwrap()
            .keep_backup(&run)
            .unwrap();
    }
    let syncs_and_links: Vec<String> = log_of(&rec)
        .into_iter()
        .filter(|l| l.starts_with("fsync-dir") || l.starts_with("link"))
        .collect();
    let run_name = run.to_string();
    assert_eq!(
        syncs_and_links,
        [
            // Before the first link: the run's entry in `.backup/`, and `.backup/`'s in
            // the store directory.
            "fsync-dir .backup".to_owned(),
            "fsync-dir sessions".to_owned(),
            "link s0.json".to_owned(),
            format!("fsync-dir {run_name}"),
            "link s1.json".to_owned(),
            format!("fsync-dir {run_name}"),
            "link s2.json".to_owned(),
            format!("fsync-dir {run_name}"),
        ]
    );
    // Another run, on the same handle, is made durable in its turn.
    let second = store.maintenance().new_backup_run();
    rec.log.lock().unwrap().clear();
    store.lock(&id("s0")).unwrap().keep_backup(&second).unwrap();
    assert_eq!(
        log_of(&rec).iter().filter(|l| *l == "fsync-dir .backup").count(),
        1,
        "{:?}",
        log_of(&rec)
    );
    assert!(
        dir.path()
            .join("sessions/.backup")
            .join(second.to_string())
            .join("s0.json")
            .exists()
    );
}

#[test]
fn a_run_directory_removed_by_hand_is_made_again_durably() {
    let (dir, store, rec) = store_with(Recording::default());
    store.save(&id("a"), doc("a", "original")).unwrap();
    store.save(&id("b"), doc("b", "original")).unwrap();
    let run = store.maintenance().new_backup_run();
    store.lock(&id("a")).unwrap().keep_backup(&run).unwrap();
    let run_dir = dir.path().join("sessions/.backup").join(run.to_string());
    std::fs::remove_dir_all(&run_dir).unwrap();
    rec.log.lock().unwrap().clear();
    store.lock(&id("b")).unwrap().keep_backup(&run).unwrap();
    assert!(run_dir.join("b.json").exists());
    let log = log_of(&rec);
    let made_again = log
        .iter()
        .position(|l| l == "fsync-dir .backup")
        .expect("made durable again");
    let linked = log.iter().rposition(|l| l == "link b.json").unwrap();
    assert!(made_again < linked, "{log:?}");
}

#[test]
fn concurrent_backups_in_one_run_are_each_durable_before_they_return() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ids: Vec<SessionId> = (0..32).map(|n| id(&format!("s{n:02}"))).collect();
    for one in &ids {
        store.save(one, doc("s", "original")).unwrap();
    }
    let run = store.maintenance().new_backup_run();
    std::thread::scope(|scope| {
        for chunk in ids.chunks(8) {
            let (store, run) = (&store, &run);
            scope.spawn(move || {
                for one in chunk {
                    store.lock(one).unwrap().keep_backup(run).unwrap();
                }
            });
        }
    });
    for one in &ids {
        assert!(
            store.maintenance().read_backup(&run, one).unwrap().is_some(),
            "{one}"
        );
    }
}

#[test]
fn a_quarantine_whose_move_fails_is_an_error_not_a_missing_session() {
    let (_dir, store, _rec) = store_with(Recording {
        fail_at: Some(("rename".into(), 2)), // the first rename is the save's
        ..Recording::default()
    });
    store.save(&id("s"), doc("s", "a")).unwrap();
    let err = store.lock(&id("s")).unwrap().quarantine("damaged").unwrap_err();
    assert!(
        matches!(
            err,
            FsError::Io {
                step: Step::Rename,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(store.read(&id("s")).unwrap().is_some(), "still there");
}

#[test]
fn restoring_a_backup_puts_its_bytes_back_and_says_when_the_run_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let run = store.maintenance().new_backup_run();
    store.save(&id("s"), doc("s", "original")).unwrap();
    store.lock(&id("s")).unwrap().keep_backup(&run).unwrap();
    store.save(&id("s"), doc("s", "migrated")).unwrap();
    assert!(store.lock(&id("s")).unwrap().restore_backup(&run).unwrap());
    assert_eq!(read_json(&store, "s")["value"], "original");
    assert_eq!(
        store.maintenance().read_backup(&run, &id("s")).unwrap(),
        None,
        "moved back, not copied"
    );
    // The copy it replaced went to the trash, never lost.
    assert_eq!(test_support::names_in(&dir.path().join(".trash")).len(), 1);
    assert!(
        !store.lock(&id("s")).unwrap().restore_backup(&run).unwrap(),
        "nothing left to restore"
    );
    assert!(!store.lock(&id("other")).unwrap().restore_backup(&run).unwrap());
    assert_eq!(read_json(&store, "s")["value"], "original");
}

#[test]
fn deleting_through_a_guard_says_whether_there_was_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save(&id("s"), doc("s", "a")).unwrap();
    let mut guard = store.lock(&id("s")).unwrap();
    assert!(guard.delete().unwrap());
    assert!(!guard.delete().unwrap());
    assert!(!store.lock(&id("never")).unwrap().delete().unwrap());
}

#[test]
fn a_session_gone_takes_its_lock_file_with_it_and_whoever_waited_locks_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        Store::open(dir.path()).unwrap(),
        Store::open(dir.path()).unwrap(),
        Store::open(dir.path()).unwrap(),
    );
    let lock_file = dir.path().join(".locks").join("s.lock");
    a.save(&id("s"), doc("s", "a")).unwrap();
    assert!(lock_file.exists(), "a stored session keeps its lock file");
    let mut deleting = a.lock(&id("s")).unwrap();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (holding, held) = std::sync::mpsc::channel();
    let watched = lock_file.clone();
    // Everything moves in: a failed assertion drops the lock and the release, and the
    // threads end instead of waiting for them forever.
    std::thread::scope(move |scope| {
        scope.spawn(move || {
            let mut guard = b.lock(&id("s")).unwrap();
            holding.send(guard.read().unwrap()).unwrap();
            let _ = released.recv();
        });
        test_support::wait_for_flock_waiter(&watched, "the handle that will see it deleted");
        assert!(deleting.delete().unwrap());
        drop(deleting);
        let found = held.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!(found, None, "the waiter saw the session gone");
        // The waiter holds the lock now, on the name's new file: a third handle waits for it.
        let (took, taken) = std::sync::mpsc::channel();
        scope.spawn(move || {
            let mut guard = c.lock(&id("s")).unwrap();
            took.send(guard.read().unwrap()).unwrap();
        });
        // Seen blocked in `flock`, not assumed from a wait: a lock kept on the removed
        // file would let it take the name's new file at once, and no waiter would appear.
        test_support::wait_for_flock_waiter(&watched, "two holders of one session's lock at once");
        assert!(
            taken.try_recv().is_err(),
            "two holders of one session's lock at once"
        );
        release.send(()).unwrap();
        assert_eq!(
            taken.recv_timeout(std::time::Duration::from_secs(10)).unwrap(),
            None
        );
    });
    // Every guard since found the session missing: no lock file stays behind.
    assert!(!lock_file.exists());
    // Nor for an id locked and never stored, deleted or not.
    drop(a.lock(&id("never")).unwrap());
    assert!(!a.lock(&id("never")).unwrap().delete().unwrap());
    assert!(a.lock_existing(&id("never")).unwrap().is_none());
    assert_eq!(
        test_support::names_in(&dir.path().join(".locks")),
        Vec::<String>::new()
    );
    // A stored session's lock file stays while it lives, whoever wrote it.
    a.create(&id("made"), doc("made", "a")).unwrap();
    a.save(&id("saved"), doc("saved", "a")).unwrap();
    assert_eq!(
        test_support::names_in(&dir.path().join(".locks")),
        ["made.lock", "saved.lock"]
    );
}

/// A storage written with the required methods only (the real filesystem's), so every
/// provided method is the trait's default: one written for an earlier version.
#[derive(Debug)]
struct OnlyRequired;

impl session_fs::Storage for OnlyRequired {
    fn create_dir(&self, path: &std::path::Path) -> io::Result<()> {
        session_fs::OsStorage.create_dir(path)
    }
    fn create_new(&self, path: &std::path::Path) -> io::Result<Box<dyn session_fs::WriteFile>> {
        session_fs::OsStorage.create_new(path)
    }
    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> io::Result<()> {
        session_fs::OsStorage.rename(from, to)
    }
    fn hard_link(&self, from: &std::path::Path, to: &std::path::Path) -> io::Result<()> {
        session_fs::OsStorage.hard_link(from, to)
    }
    fn remove_file(&self, path: &std::path::Path) -> io::Result<()> {
        session_fs::OsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &std::path::Path) -> io::Result<()> {
        session_fs::OsStorage.sync_dir(dir)
    }
    fn read(&self, path: &std::path::Path, limit: u64) -> io::Result<session_fs::ReadOutcome> {
        session_fs::OsStorage.read(path, limit)
    }
    fn list(&self, dir: &std::path::Path, sizes: bool) -> io::Result<Vec<session_fs::Entry>> {
        session_fs::OsStorage.list(dir, sizes)
    }
    fn lock(
        &self,
        path: &std::path::Path,
        mode: session_fs::LockMode,
        wait: bool,
    ) -> io::Result<Option<Box<dyn session_fs::HeldLock>>> {
        session_fs::OsStorage.lock(path, mode, wait)
    }
    fn kind(&self, path: &std::path::Path) -> io::Result<Option<session_fs::EntryKind>> {
        session_fs::OsStorage.kind(path)
    }
    fn set_mode(&self, path: &std::path::Path, mode: u32) -> io::Result<()> {
        session_fs::OsStorage.set_mode(path, mode)
    }
}

#[test]
fn a_storage_that_does_not_say_it_can_remove_lock_files_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let lock_file = dir.path().join("s.lock");
    std::fs::write(&lock_file, b"").unwrap();
    assert!(!session_fs::Storage::remove_held_lock(&OnlyRequired, &lock_file).unwrap());
    assert!(lock_file.exists());
    // Nor does a store on such a storage remove them: a deleted session's stays.
    let store = Store::options()
        .storage(std::sync::Arc::new(OnlyRequired))
        .open(dir.path().join("sessions"))
        .unwrap();
    store.save(&id("s"), doc("s", "a")).unwrap();
    assert!(store.delete(&id("s")).unwrap());
    assert!(dir.path().join("sessions/.locks/s.lock").exists());
}

#[test]
fn the_sweep_removes_only_lock_files_of_ids_without_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save(&id("kept"), doc("kept", "a")).unwrap();
    let locks = dir.path().join(".locks");
    // What a crash after a deletion, or an older version, leaves: lock files alone.
    for orphan in ["gone-1.lock", "gone-2.lock"] {
        std::fs::write(locks.join(orphan), b"").unwrap();
    }
    // Names the sweep is not to touch: not a lock file, not an id, not a file.
    std::fs::write(locks.join("notes.txt"), b"").unwrap();
    std::fs::write(locks.join("bad id!.lock"), b"").unwrap();
    std::fs::create_dir(locks.join("dir.lock")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("kept.json"), locks.join("link.lock")).unwrap();
    let maintenance = store.maintenance();
    assert_eq!(
        maintenance.sweep_orphan_locks().unwrap(),
        vec![id("gone-1"), id("gone-2")]
    );
    assert_eq!(
        test_support::names_in(&locks),
        ["bad id!.lock", "dir.lock", "kept.lock", "link.lock", "notes.txt"]
    );
    assert!(
        dir.path().join("kept.json").exists(),
        "a session is never touched"
    );
    // Swept ids lock as any new id does.
    store.save(&id("gone-1"), doc("gone-1", "b")).unwrap();
    assert!(maintenance.sweep_orphan_locks().unwrap().is_empty());
    assert!(locks.join("gone-1.lock").exists());
}

#[test]
fn a_lock_file_the_sweep_cannot_take_is_left_and_the_sweep_goes_on() {
    // `gone-2.lock` becomes a symlink between the sweep's listing and its lock (the
    // seam swaps it): that id fails, and the ids after it are still swept.
    let (dir, store, _) = store_with(Recording {
        symlink_before_lock: Some("gone-2.lock".into()),
        removes_held_locks: true,
        ..Default::default()
    });
    let locks = dir.path().join("sessions/.locks");
    std::fs::create_dir_all(&locks).unwrap();
    for orphan in ["gone-1.lock", "gone-2.lock", "gone-3.lock"] {
        std::fs::write(locks.join(orphan), b"").unwrap();
    }
    let (swept, log) = sweep_logged(&store);
    assert_eq!(swept.unwrap(), vec![id("gone-1"), id("gone-3")]);
    assert_eq!(test_support::names_in(&locks), ["gone-2.lock"]);
    // One failure: its file named, and no count after it.
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains(".locks/gone-2.lock"), "{log}");
    assert!(
        locks.join("gone-2.lock").is_symlink(),
        "what the sweep could not lock is left as it found it"
    );
}

/// The sweep's result and what it logged.
fn sweep_logged(store: &Store) -> (Result<Vec<SessionId>, FsError>, String) {
    let captured = test_support::CapturedLogs::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let swept = tracing::subscriber::with_default(subscriber, || store.maintenance().sweep_orphan_locks());
    (swept, captured.text())
}

#[test]
fn a_failure_that_hits_every_lock_file_is_logged_once_by_name_and_once_as_a_count() {
    // Every lock fails alike (a disk returning EIO): one line per orphan would flood
    // the log of a store with many.
    let (dir, store, _) = store_with(Recording {
        fail_lock_files_with: Some(5),
        ..Default::default()
    });
    let locks = dir.path().join("sessions/.locks");
    std::fs::create_dir_all(&locks).unwrap();
    let orphans = ["gone-1.lock", "gone-2.lock", "gone-3.lock", "gone-4.lock"];
    for orphan in orphans {
        std::fs::write(locks.join(orphan), b"").unwrap();
    }
    let (swept, text) = sweep_logged(&store);
    assert_eq!(swept.unwrap(), Vec::<SessionId>::new());
    assert_eq!(test_support::names_in(&locks), orphans, "nothing is removed");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("could not sweep a lock file") && lines[0].contains(".locks/gone-1.lock"),
        "{text}"
    );
    assert!(lines[1].contains("more=3"), "{text}");
    assert!(!lines[1].contains("gone-"), "the count names no file: {text}");
}

#[test]
fn the_sweep_never_follows_a_symlinked_locks_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Someone else's directory, reached through a `.locks` swapped for a symlink after
    // the store was opened: its files are not the store's to remove.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("ghost.lock"), b"").unwrap();
    std::fs::remove_dir(dir.path().join(".locks")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join(".locks")).unwrap();
    let err = store.maintenance().sweep_orphan_locks().unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    assert!(elsewhere.path().join("ghost.lock").exists());
}

#[test]
fn the_sweep_waits_for_a_holder_and_keeps_the_lock_of_a_session_stored_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let store = &store;
    std::thread::scope(|s| {
        let holder = s.spawn(move || {
            let mut guard = store.lock(&id("late")).unwrap();
            held_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            // Stored under the lock the sweep waits for.
            guard.save(doc("late", "a")).unwrap();
            drop(guard);
        });
        held_rx.recv().unwrap();
        let sweeper = s.spawn(move || store.maintenance().sweep_orphan_locks().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(50));
        let waited = !sweeper.is_finished();
        // Let the holder go before any assertion: a failed one must not hang the test.
        go_tx.send(()).unwrap();
        holder.join().unwrap();
        assert!(waited, "the sweep must wait for the holder");
        assert!(sweeper.join().unwrap().is_empty());
    });
    assert!(dir.path().join(".locks/late.lock").exists());
    assert!(dir.path().join("late.json").exists());
}

/// A document streamed in many small writes, as a fold writes a long capture.
fn streamed(
    value: &'static str,
    pieces: usize,
) -> impl FnOnce(session_fs::SaveStamp, &mut dyn io::Write) -> io::Result<()> {
    move |stamp, out| {
        write!(
            out,
            "{{\"value\":\"{value}\",\"revision\":{},\"pad\":[",
            stamp.revision
        )?;
        for i in 0..pieces {
            write!(out, "{}{i}", if i == 0 { "" } else { "," })?;
        }
        out.write_all(b"]}")
    }
}

#[test]
fn a_streamed_create_is_written_in_pieces_linked_into_place_and_never_clobbers() {
    let (_dir, store, rec) = store_with(Recording::default());
    let stamp = store
        .create_streamed(&id("s1"), streamed("first", 100_000))
        .unwrap();
    assert_eq!(stamp.revision, 1);
    let stored = read_json(&store, "s1");
    assert_eq!(
        (&stored["value"], &stored["revision"]),
        (&"first".into(), &1.into())
    );
    assert_eq!(stored["pad"].as_array().unwrap().len(), 100_000);
    assert_eq!(stored["pad"][99_999], 99_999);
    // Buffered: far fewer writes than pieces, then the same durable sequence as create.
    let log = rec.log.lock().unwrap().clone();
    let writes = log.iter().filter(|l| *l == "write <temp>").count();
    assert!((1..10).contains(&writes), "{writes} writes: {log:?}");
    let rest: Vec<_> = log.iter().filter(|l| *l != "write <temp>").cloned().collect();
    assert_eq!(
        rest,
        [
            "create <temp>",
            "fsync <temp>",
            "link s1.json",
            "fsync-dir sessions",
            "remove <temp>"
        ]
    );
    let err = store
        .create_streamed(&id("s1"), streamed("second", 1))
        .unwrap_err();
    assert!(matches!(err, FsError::AlreadyExists { .. }), "{err}");
    assert_eq!(read_json(&store, "s1")["value"], "first");
}

#[test]
fn a_streamed_create_that_fails_leaves_nothing_and_says_whether_the_disk_or_the_encoder_failed() {
    // The disk fills at the second write: an I/O error naming the temp file.
    let (_dir, store, _rec) = store_with(Recording {
        fail_at: Some(("write".to_owned(), 2)),
        fail_with: Some(common::libc_enospc()),
        ..Recording::default()
    });
    let err = store
        .create_streamed(&id("s1"), streamed("big", 200_000))
        .unwrap_err();
    match &err {
        FsError::Io { step, source, .. } => {
            assert_eq!(
                (*step, source.raw_os_error()),
                (Step::WriteTemp, Some(28)),
                "{err}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    assert!(store.read(&id("s1")).unwrap().is_none());
    // The encoder fails after writing part: an encode error, and nothing left either.
    let err = store
        .create_streamed(&id("s2"), |_, out| {
            out.write_all(b"{\"partial\":")?;
            Err(io::Error::other("the elements ran dry"))
        })
        .unwrap_err();
    assert!(matches!(err, FsError::Encode { .. }), "{err}");
    assert!(err.to_string().contains("ran dry"), "{err}");
    assert!(store.read(&id("s2")).unwrap().is_none());
    let leftovers: Vec<_> = test_support::names_in(store.dir())
        .into_iter()
        .filter(|n| n.ends_with(".tmp") || n.ends_with(".json"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn saves_that_queue_behind_a_write_coalesce_into_one() {
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let (_dir, store, rec) = store_with(Recording {
        gate_first_create: Some(std::sync::Mutex::new((entered_tx, release_rx))),
        ..Recording::default()
    });
    let started = std::sync::atomic::AtomicUsize::new(0);
    let outcomes: Vec<SaveOutcome> = std::thread::scope(|scope| {
        // The first save holds the id's lock inside its write until the gate opens.
        let first = scope.spawn(|| store.save(&id("hot"), doc("hot", "first")).unwrap());
        entered.recv().unwrap();
        // Eight more line up behind it.
        let queued: Vec<_> = (0..8)
            .map(|i| {
                let (store, started) = (&store, &started);
                scope.spawn(move || {
                    started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    store
                        .save(&id("hot"), doc("hot", &format!("queued-{i}")))
                        .unwrap()
                })
            })
            .collect();
        while started.load(std::sync::atomic::Ordering::SeqCst) < 8 {
            std::thread::yield_now();
        }
        release.send(()).unwrap();
        let mut all = vec![first.join().unwrap()];
        all.extend(queued.into_iter().map(|h| h.join().unwrap()));
        all
    });
    let writes = rec
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| *l == "write <temp>")
        .count();
    let superseded = outcomes
        .iter()
        .filter(|o| matches!(o, SaveOutcome::Superseded))
        .count();
    let written = outcomes
        .iter()
        .filter(|o| matches!(o, SaveOutcome::Written(_)))
        .count();
    assert_eq!(writes, written, "one write per written save");
    assert!(
        writes < 9,
        "nine saves, {writes} writes: the queued ones coalesced"
    );
    assert!(superseded >= 1 && superseded + written == 9, "{outcomes:?}");
    // What was written last is a queued save, and the revision counts the writes.
    let stored = read_json(&store, "hot");
    assert!(
        stored["value"].as_str().unwrap().starts_with("queued-"),
        "{stored}"
    );
    assert_eq!(stored["_metadata"]["revision"], writes as u64);
}
