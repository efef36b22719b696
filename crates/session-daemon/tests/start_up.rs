//! Start-up in its order, on real files: one daemon per store, recovery's one pass
//! feeding the caller and the delivery index, migration of exactly what it found old.

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

#[test]
fn recovery_feeds_the_caller_once_per_session_and_migration_takes_exactly_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..3 {
        legacy(dir.path(), &format!("old-{n}"));
    }
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    let mut current = session_store::decode(br#"{"id": "new-1", "startTime": 5, "isComplete": true}"#)
        .unwrap()
        .session;
    store.save(&mut current).unwrap();
    drop(store);
    std::fs::write(dir.path().join("broken.json"), b"{").unwrap();

    let claimed = Claimed::claim(dir.path(), DecodeOptions::default(), "test").unwrap();
    let mut seen = Vec::new();
    let recovered = claimed
        .recover(|id, decoded| seen.push((id.to_string(), decoded.from)), |_| {})
        .unwrap();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen.len(), 4, "each decodable session once: {seen:?}");
    assert_eq!(recovered.delivery.len(), 4);
    let mut outdated: Vec<String> = recovered.outdated.iter().map(|id| id.to_string()).collect();
    outdated.sort();
    assert_eq!(outdated, ["old-0", "old-1", "old-2"]);
    assert_eq!(recovered.report.quarantined, 1, "{:?}", recovered.report);

    let phases = std::sync::Mutex::new(Vec::new());
    let store = claimed
        .migrate(recovered.outdated, |p| {
            phases.lock().unwrap().push((p.phase, p.total))
        })
        .unwrap();
    assert!(
        phases
            .into_inner()
            .unwrap()
            .iter()
            .all(|&(phase, total)| phase == Phase::Migrating && total == Some(3))
    );
    for entry in store.entries().unwrap() {
        let StoredEntry::Valid(decoded) = entry else {
            panic!("only decodable files are left live")
        };
        assert_eq!(decoded.from, SchemaVersion::CURRENT, "{}", decoded.session.id);
    }
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
