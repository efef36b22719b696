//! The maintenance hooks on a real filesystem, judged here rather than only by the
//! crates above that call them: quarantine and trash, backups, promotion, roles, scans.

use std::ffi::{OsStr, OsString};

use session_fs::maintenance::{Area, BackupRun, Role, quarantine_note};
use session_fs::{EntryKind, FsError, Store, live_session, now_ms};
use session_model::SessionId;

fn id(s: &str) -> SessionId {
    s.parse().unwrap()
}

fn save(store: &Store, s: &str, bytes: &[u8]) {
    let bytes = bytes.to_vec();
    store
        .save(&id(s), move |_| Ok::<_, std::io::Error>(bytes))
        .unwrap();
}

#[test]
fn a_quarantine_note_names_the_file_the_reason_the_time_and_who() {
    let before = now_ms();
    let note: serde_json::Value = serde_json::from_slice(&quarantine_note(
        "session-3.json",
        "not JSON: line 1",
        "session-recovery",
    ))
    .unwrap();
    let after = now_ms();
    assert_eq!(note["file"], "session-3.json");
    assert_eq!(note["reason"], "not JSON: line 1");
    assert_eq!(note["by"], "session-recovery");
    let at = note["quarantinedAt"].as_u64().expect("a number of milliseconds");
    assert!((before..=after).contains(&at), "{at} not in {before}..={after}");
}

#[test]
fn a_role_excludes_another_holder_of_the_same_role_only() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path()).unwrap();
    let b = Store::open(dir.path()).unwrap();
    let daemon = a.maintenance().try_lock_role(Role::Daemon).unwrap();
    assert!(daemon.is_some());
    assert!(b.maintenance().try_lock_role(Role::Daemon).unwrap().is_none());
    let submitter = b.maintenance().try_lock_role(Role::Submitter).unwrap();
    assert!(submitter.is_some(), "the roles are independent");
    assert!(a.maintenance().try_lock_role(Role::Submitter).unwrap().is_none());
    assert!(dir.path().join(".daemon.lock").is_file() && dir.path().join(".submitter.lock").is_file());
    drop(daemon);
    assert!(b.maintenance().try_lock_role(Role::Daemon).unwrap().is_some());
}

#[test]
fn a_backup_run_keeps_the_original_bytes_lists_them_and_purges_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let hooks = store.maintenance();
    assert_eq!(hooks.backup_runs().unwrap(), Vec::<BackupRun>::new());
    // A run is made by its first backup: before that it lists as empty, not as an error.
    let unmade = hooks.new_backup_run();
    assert_eq!(
        hooks.list_area(&Area::Backup(unmade.clone())).unwrap(),
        Vec::new()
    );
    assert_eq!(hooks.backup_entries(&unmade).unwrap(), Vec::<SessionId>::new());
    let before = now_ms();
    let run = hooks.new_backup_run();
    let after = now_ms();
    assert!((before..=after).contains(&run.started_at()), "{run}");
    assert_eq!(run.to_string(), run.as_str());
    assert_eq!(BackupRun::parse(run.as_str()), Some(run.clone()));
    for foreign in ["2023-photos", "", "1700000000000-1-2", "x-1-2-3"] {
        assert_eq!(BackupRun::parse(foreign), None, "{foreign:?}");
    }
    assert_eq!(
        BackupRun::parse("1700000000000-12-3-4").unwrap().started_at(),
        1_700_000_000_000
    );

    save(&store, "s-1", b"original");
    save(&store, "s-2", b"untouched");
    store.lock(&id("s-1")).unwrap().keep_backup(&run).unwrap();
    save(&store, "s-1", b"rewritten");
    assert_eq!(hooks.backup_runs().unwrap(), vec![run.clone()]);
    assert_eq!(hooks.backup_entries(&run).unwrap(), vec![id("s-1")]);
    assert_eq!(
        hooks.read_backup(&run, &id("s-1")).unwrap().as_deref(),
        Some(&b"original"[..])
    );
    assert_eq!(hooks.read_backup(&run, &id("s-2")).unwrap(), None);
    assert_eq!(
        store.read(&id("s-1")).unwrap().as_deref(),
        Some(&b"rewritten"[..])
    );

    let area = Area::Backup(run.clone());
    assert_eq!(area.to_string(), format!(".backup/{run}"));
    assert_eq!(
        (Area::Trash.to_string(), Area::Quarantine.to_string()),
        (".trash".into(), ".quarantine".into())
    );
    let listed = hooks.list_area(&area).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name, OsString::from("s-1.json"));
    assert_eq!(listed[0].len, 8);
    assert_eq!(listed[0].moved_at, None, "a backup's name carries no time");
    assert_eq!(
        test_support::names_in(&dir.path().join(".backup").join(run.as_str())),
        ["s-1.json"]
    );
    // Even an id shaped like a moved-aside name gives a backup no time of its own.
    let lookalike = "1700000000000.1-2-3.x";
    save(&store, lookalike, b"{}");
    store.lock(&id(lookalike)).unwrap().keep_backup(&run).unwrap();
    let listed = hooks.list_area(&area).unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|e| e.moved_at.is_none()), "{listed:?}");
    hooks
        .purge(&area, OsStr::new(&format!("{lookalike}.json")))
        .unwrap();
    hooks.purge(&area, OsStr::new("s-1.json")).unwrap();
    assert!(hooks.list_area(&area).unwrap().is_empty());
    assert_eq!(hooks.backup_entries(&run).unwrap(), Vec::<SessionId>::new());
}

#[test]
fn moved_aside_files_are_listed_with_their_time_and_only_the_trash_is_purged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let hooks = store.maintenance();
    std::fs::write(dir.path().join("bad.json"), b"{not json").unwrap();
    std::fs::write(dir.path().join("old.json.tmp"), b"{}").unwrap();
    let before = now_ms();
    let quarantined = hooks
        .move_aside(&"bad.json".into(), &Area::Quarantine, Some(b"{\"reason\":\"x\"}"))
        .unwrap();
    let trashed = hooks
        .move_aside(&"old.json.tmp".into(), &Area::Trash, None)
        .unwrap();
    let after = now_ms();
    assert_eq!(quarantined.from, dir.path().join("bad.json"));
    assert!(
        quarantined.to.starts_with(dir.path().join(".quarantine")),
        "{quarantined:?}"
    );
    assert_eq!(std::fs::read(&quarantined.to).unwrap(), b"{not json");
    assert!(trashed.to.starts_with(dir.path().join(".trash")), "{trashed:?}");

    let in_quarantine = hooks.list_area(&Area::Quarantine).unwrap();
    assert_eq!(
        in_quarantine.len(),
        2,
        "the file and its sidecar: {in_quarantine:?}"
    );
    for entry in &in_quarantine {
        let at = entry.moved_at.expect("the store's own name carries its time");
        assert!((before..=after).contains(&at), "{entry:?}");
    }
    assert!(
        in_quarantine
            .iter()
            .any(|e| e.len == 9 && e.name == quarantined.to.file_name().unwrap())
    );
    let in_trash = hooks.list_area(&Area::Trash).unwrap();
    assert_eq!(in_trash.len(), 1, "{in_trash:?}");
    assert_eq!(
        (in_trash[0].name.as_os_str(), in_trash[0].len),
        (trashed.to.file_name().unwrap(), 2)
    );

    // A name the store did not make is listed without a time: retention never touches it.
    std::fs::write(dir.path().join(".trash/notes.txt"), b"mine").unwrap();
    let foreign = hooks.list_area(&Area::Trash).unwrap();
    assert!(
        foreign
            .iter()
            .any(|e| e.name == "notes.txt" && e.moved_at.is_none()),
        "{foreign:?}"
    );

    hooks.purge(&Area::Trash, &in_trash[0].name).unwrap();
    assert_eq!(test_support::names_in(&dir.path().join(".trash")), ["notes.txt"]);
    let refused = hooks.purge(&Area::Quarantine, &in_quarantine[0].name);
    assert!(refused.is_err(), "the quarantine is never purged");
    assert_eq!(hooks.list_area(&Area::Quarantine).unwrap().len(), 2);

    std::fs::write(dir.path().join("x.json"), b"{}").unwrap();
    let err = hooks.move_aside(&"x.json".into(), &Area::Backup(hooks.new_backup_run()), None);
    assert!(
        err.as_ref()
            .is_err_and(|e| e.to_string().contains("only migration")),
        "{err:?}"
    );
    assert!(dir.path().join("x.json").exists());
}

#[test]
fn a_scan_sorts_live_sessions_temps_and_irregular_names_and_reads_temps_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    save(&store, "b", b"{}");
    save(&store, "a", b"{}");
    std::fs::write(dir.path().join("c.json.tmp"), b"app temp").unwrap();
    std::fs::write(dir.path().join(".a.json.1-2.tmp"), b"store temp").unwrap();
    std::fs::create_dir(dir.path().join("d.json")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"").unwrap();
    let scan = store.maintenance().scan().unwrap();
    assert_eq!(scan.live, vec![id("a"), id("b")]);
    assert_eq!(
        scan.temps,
        vec![
            (".a.json.1-2.tmp".into(), id("a")),
            ("c.json.tmp".into(), id("c"))
        ]
    );
    assert_eq!(scan.irregular, vec![("d.json".into(), EntryKind::Dir)]);
    assert_eq!(
        store
            .maintenance()
            .read_entry(&"c.json.tmp".into())
            .unwrap()
            .as_deref(),
        Some(&b"app temp"[..])
    );
    assert_eq!(
        store.maintenance().read_entry(&"gone.json.tmp".into()).unwrap(),
        None
    );
}

#[test]
fn promoting_a_temp_needs_an_exclusive_handle_and_replaces_the_live_file() {
    let dir = tempfile::tempdir().unwrap();
    {
        let shared = Store::open(dir.path()).unwrap();
        save(&shared, "s", b"old");
        std::fs::write(dir.path().join("s.json.tmp"), b"newer").unwrap();
        let err = shared.maintenance().promote_temp(&"s.json.tmp".into(), &id("s"));
        assert!(matches!(err, Err(FsError::NotExclusive)), "{err:?}");
    }
    let exclusive = Store::options().exclusive().open(dir.path()).unwrap();
    exclusive
        .maintenance()
        .promote_temp(&"s.json.tmp".into(), &id("s"))
        .unwrap();
    assert_eq!(exclusive.read(&id("s")).unwrap().as_deref(), Some(&b"newer"[..]));
    assert!(!dir.path().join("s.json.tmp").exists());
}

#[test]
fn only_a_live_session_name_is_a_live_session() {
    assert_eq!(live_session(OsStr::new("session-1.json")), Some(id("session-1")));
    for other in [
        "session-1.json.tmp",
        ".session-1.json.1-2.tmp",
        ".quarantine",
        "notes.txt",
    ] {
        assert_eq!(live_session(OsStr::new(other)), None, "{other}");
    }
}
