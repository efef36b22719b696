//! Start-up in its order, on real files: one daemon per store, recovery's one pass
//! feeding the caller and the delivery index and upgrading exactly the old files.

use session_daemon::{Claimed, DaemonError, Phase, Services};
use session_store::{DecodeOptions, SchemaVersion, SessionStore, StoredEntry};
use session_workers::submit::HttpTransport;

fn legacy(dir: &std::path::Path, id: &str) {
    let doc = format!(r#"{{"id": "{id}", "startTime": 1000, "isComplete": true, "messages": ["MSH|1"]}}"#);
    std::fs::write(dir.join(format!("{id}.json")), doc).unwrap();
}

#[test]
fn a_second_daemon_is_refused_and_told_who_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let first = Claimed::claim(dir.path(), DecodeOptions::default(), "station A").unwrap();
    match Claimed::claim(dir.path(), DecodeOptions::default(), "station B") {
        Err(DaemonError::AlreadyServed { holder, .. }) => {
            assert!(holder.starts_with("station A (pid "), "{holder}")
        }
        other => panic!("expected AlreadyServed, got {other:?}"),
    }
    drop(first);
    Claimed::claim(dir.path(), DecodeOptions::default(), "station B").expect("free once the first lets go");
}

fn backup_runs(dir: &std::path::Path) -> Vec<Vec<String>> {
    let Ok(runs) = std::fs::read_dir(dir.join(".backup")) else {
        return Vec::new();
    };
    runs.map(|run| {
        let mut files: Vec<String> = std::fs::read_dir(run.unwrap().path())
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    })
    .collect()
}

#[test]
fn recovery_feeds_the_caller_once_per_session_and_upgrades_exactly_the_old_ones_as_it_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..3 {
        legacy(dir.path(), &format!("old-{n}"));
    }
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    let mut current = session_store::decode(br#"{"id": "new-1", "startTime": 5, "isComplete": true}"#)
        .unwrap()
        .session;
    store.save(&mut current).unwrap();
    let current_bytes = std::fs::read(dir.path().join("new-1.json")).unwrap();
    drop(store);
    std::fs::write(dir.path().join("broken.json"), b"{").unwrap();

    let claimed = Claimed::claim(dir.path(), DecodeOptions::default(), "test").unwrap();
    // `visit` runs on the threads that read the files.
    let seen = std::sync::Mutex::new(Vec::new());
    let recovered = claimed
        .recover(
            |id, decoded| seen.lock().unwrap().push((id.to_string(), decoded.clone())),
            |_| {},
        )
        .unwrap();
    let mut seen = seen.into_inner().unwrap();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen.len(), 4, "each decodable session once: {seen:?}");
    assert_eq!(recovered.delivery.len(), 4);
    // What the caller saw is each file as it is now: the old ones upgraded, with the
    // stamp of the save that upgraded them.
    for (id, decoded) in &seen {
        let on_disk = std::fs::read(dir.path().join(format!("{id}.json"))).unwrap();
        assert_eq!(&session_store::decode(&on_disk).unwrap(), decoded, "{id}");
        assert_eq!(decoded.from, SchemaVersion::CURRENT, "{id}");
    }
    assert!(recovered.outdated.is_empty(), "{:?}", recovered.outdated);
    assert_eq!(
        (recovered.upgraded.migrated, recovered.upgraded.failed),
        (3, 0),
        "{:?}",
        recovered.upgraded
    );
    assert_eq!(recovered.report.quarantined, 1, "{:?}", recovered.report);
    assert_eq!(
        std::fs::read(dir.path().join("new-1.json")).unwrap(),
        current_bytes,
        "a current file is not rewritten"
    );
    assert_eq!(
        backup_runs(dir.path()),
        [["old-0.json", "old-1.json", "old-2.json"]],
        "the originals, kept in one run"
    );

    let phases = std::sync::Mutex::new(Vec::new());
    let store = claimed
        .migrate(recovered.outdated, |p| phases.lock().unwrap().push(p.phase))
        .unwrap();
    assert_eq!(phases.into_inner().unwrap(), [], "nothing left to migrate");
    for entry in store.entries().unwrap() {
        let StoredEntry::Valid(decoded) = entry else {
            panic!("only decodable files are left live")
        };
        assert_eq!(decoded.from, SchemaVersion::CURRENT, "{}", decoded.session.id);
    }
}

#[test]
fn a_file_the_pass_cannot_upgrade_is_tried_again_in_the_same_backup_run() {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..3 {
        legacy(dir.path(), &format!("old-{n}"));
    }
    // A directory where old-1's lock file belongs: locking it fails, and only it.
    let blocker = dir.path().join(".locks").join("old-1.lock");
    std::fs::create_dir_all(&blocker).unwrap();

    let claimed = Claimed::claim(dir.path(), DecodeOptions::default(), "test").unwrap();
    let from = std::sync::Mutex::new(Vec::new());
    let recovered = claimed
        .recover(
            |id, decoded| from.lock().unwrap().push((id.to_string(), decoded.from)),
            |_| {},
        )
        .unwrap();
    let mut from = from.into_inner().unwrap();
    from.sort();
    assert_eq!(
        from,
        [
            ("old-0".to_string(), SchemaVersion::CURRENT),
            ("old-1".to_string(), SchemaVersion::LEGACY),
            ("old-2".to_string(), SchemaVersion::CURRENT),
        ],
        "the one left outdated is seen as read"
    );
    let outdated: Vec<String> = recovered.outdated.iter().map(|id| id.to_string()).collect();
    assert_eq!(outdated, ["old-1"]);
    assert_eq!((recovered.upgraded.migrated, recovered.upgraded.failed), (2, 1));
    assert_eq!(recovered.upgraded.failures[0].file, "old-1.json");

    std::fs::remove_dir(&blocker).unwrap();
    let phases = std::sync::Mutex::new(Vec::new());
    let store = claimed
        .migrate(recovered.outdated, |p| {
            phases.lock().unwrap().push((p.phase, p.total))
        })
        .unwrap();
    assert_eq!(phases.into_inner().unwrap(), [(Phase::Migrating, Some(1))]);
    assert_eq!(
        store.load(&"old-1".parse().unwrap()).unwrap().unwrap().from,
        SchemaVersion::CURRENT
    );
    assert_eq!(
        backup_runs(dir.path()),
        [["old-0.json", "old-1.json", "old-2.json"]],
        "the second try keeps its original in the pass's run: one rollback undoes both"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_is_held_while_running_and_released_by_stop() {
    let dir = tempfile::tempdir().unwrap();
    let claimed = Claimed::claim(dir.path(), DecodeOptions::default(), "test").unwrap();
    let recovered = claimed.recover(|_, _| {}, |_| {}).unwrap();
    let store = claimed.migrate(recovered.outdated, |_| {}).unwrap();
    let running = claimed
        .start(
            &store,
            recovered.delivery,
            None,
            Services::<HttpTransport>::default(),
        )
        .unwrap();
    assert!(matches!(
        Claimed::claim(dir.path(), DecodeOptions::default(), "other"),
        Err(DaemonError::AlreadyServed { .. })
    ));
    assert!(running.stop(std::time::Duration::from_secs(1)).await);
    Claimed::claim(dir.path(), DecodeOptions::default(), "other").expect("released");
}
