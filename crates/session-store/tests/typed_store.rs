//! The typed store's own guards, each checked by the value that matters: a newer
//! build's file is never replaced, a damaged one is kept in quarantine with its reason,
//! `create` hands back the stamp it wrote, options are the ones given, and a run with
//! nothing to migrate makes no backup run while one that fails on a file names it.

use session_fs::Store;
use session_store::{DecodeOptions, MigrateOptions, SessionStore, StoreError, decode};
use test_support::{fixture, tree};

fn session(id: &str) -> session_model::Session {
    let doc = format!(r#"{{"id": "{id}", "startTime": 1000, "isComplete": true, "messages": []}}"#);
    decode(doc.as_bytes()).unwrap().session
}

#[test]
fn a_newer_builds_file_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let newer = br#"{"id": "s-1", "startTime": 1, "_metadata": {"version": "9.0.0", "revision": 4}}"#;
    std::fs::write(dir.path().join("s-1.json"), newer).unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    match store.save(&mut session("s-1")) {
        Err(StoreError::NewerOnDisk { version, path }) => {
            assert_eq!(version, "9.0.0");
            assert!(path.ends_with("s-1.json"));
        }
        other => panic!("expected NewerOnDisk, got {other:?}"),
    }
    assert_eq!(std::fs::read(dir.path().join("s-1.json")).unwrap(), newer);
    // A current file of the same id is replaced as usual.
    store.save(&mut session("s-2")).unwrap();
    store.save(&mut session("s-2")).unwrap();
}

#[test]
fn saving_over_a_damaged_file_keeps_it_in_quarantine_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s-1.json"),
        br#"{"id": "s-1", "startTime": "soon"}"#,
    )
    .unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    store.save(&mut session("s-1")).unwrap();
    let kept = tree(&dir.path().join(".quarantine"));
    let sidecar = kept
        .iter()
        .find(|(name, _)| name.to_string_lossy().ends_with(".why.json"))
        .expect("a sidecar");
    let note: serde_json::Value = serde_json::from_slice(sidecar.1).unwrap();
    let reason = note["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("startTime"),
        "the decoder's reason, naming the field: {note}"
    );
    assert!(!reason.contains("soon"), "never the value: {note}");
    assert!(
        kept.values()
            .any(|bytes| bytes.as_slice() == br#"{"id": "s-1", "startTime": "soon"}"#)
    );
}

#[test]
fn create_returns_the_stamp_it_wrote_and_options_are_the_ones_given() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default().retention_days(12)).unwrap();
    assert_eq!(store.options().retention_days, 12);
    let stamp = store.create(&mut session("s-1")).unwrap();
    assert_eq!(stamp.revision, 1);
    let loaded = store.load(&"s-1".parse().unwrap()).unwrap().unwrap().session;
    assert_eq!(loaded.metadata.revision, stamp.revision);
    assert_eq!(loaded.metadata.saved_at, stamp.saved_at);
    assert!(stamp.saved_at > 0);
    let shown = format!("{store:?}");
    assert!(
        shown.contains("SessionStore") && shown.contains("retention_days: 12"),
        "{shown}"
    );
}

#[test]
fn metadata_null_is_not_a_legacy_file() {
    let err =
        decode(br#"{"id": "s-1", "startTime": 1, "isComplete": true, "messages": [], "_metadata": null}"#)
            .unwrap_err();
    assert!(err.to_string().contains("_metadata"), "{err}");
    // While an absent one is.
    assert!(decode(br#"{"id": "s-1", "startTime": 1, "isComplete": true, "messages": []}"#).is_ok());
}

#[test]
fn a_run_with_nothing_to_migrate_has_no_backup_run_and_a_file_it_cannot_read_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    store.save(&mut session("current")).unwrap();
    let report = store.migrate(&MigrateOptions::default(), &|_, _| {}).unwrap();
    assert_eq!(
        (report.migrated, report.up_to_date, report.backup_run),
        (0, 1, None)
    );
    // A legacy file over the size limit: not read, reported by name, the run goes on.
    std::fs::copy(fixture("v1/session-21.json"), dir.path().join("session-21.json")).unwrap();
    std::fs::copy(fixture("v1/session-25.json"), dir.path().join("session-25.json")).unwrap();
    let limited = SessionStore::new(
        Store::options().max_file_size(200_000).open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let report = limited.migrate(&MigrateOptions::default(), &|_, _| {}).unwrap();
    assert_eq!((report.migrated, report.failed), (1, 1), "{report:?}");
    assert_eq!(report.failures[0].file, "session-25.json");
    assert!(
        report.failures[0].problem.contains("limit"),
        "{:?}",
        report.failures
    );
    assert!(
        report.backup_run.is_some(),
        "a run that rewrote a file names its backups"
    );
}

#[test]
fn a_newer_builds_file_is_one_kind_of_error_whatever_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let newer = br#"{"id": "s-1", "startTime": 1, "_metadata": {"version": "9.0.0", "revision": 4}}"#;
    std::fs::write(dir.path().join("s-1.json"), newer).unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    let id = session_model::SessionId::new("s-1").unwrap();
    let load = store.load(&id).unwrap_err();
    let save = store.save(&mut session("s-1")).unwrap_err();
    let update = store.update(&id, |_| Ok(())).unwrap_err();
    let retry = store.retry(&id).unwrap_err();
    let delete = store.delete(&id).unwrap_err();
    for (call, error) in [
        ("load", load),
        ("save", save),
        ("update", update),
        ("retry", retry),
        ("delete", delete),
    ] {
        assert!(error.is_newer_version(), "{call}: {error:?}");
    }
    // A damaged file and a missing one are not.
    std::fs::write(dir.path().join("s-2.json"), b"{").unwrap();
    let damaged = store
        .load(&session_model::SessionId::new("s-2").unwrap())
        .unwrap_err();
    assert!(!damaged.is_newer_version(), "{damaged:?}");
    let missing = store
        .retry(&session_model::SessionId::new("s-3").unwrap())
        .unwrap_err();
    assert!(!missing.is_newer_version(), "{missing:?}");
    assert_eq!(std::fs::read(dir.path().join("s-1.json")).unwrap(), newer);
}

#[test]
fn a_streamed_create_stores_the_elements_as_they_come_and_stamps_the_first_revision() {
    use session_store::{Direction, Element, ElementKind, FsError, Session, SessionId};
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    let id = SessionId::new("long-capture").unwrap();
    let mut envelope = Session::new(id.clone(), 1_000, 30).completed_at(5_000);
    let elements: Vec<Element> = (0..50u64)
        .map(|n| {
            Element::new(
                1_000 + n,
                Direction::DeviceToPc,
                ElementKind::Message,
                format!("MSH|{n}\r\n").into_bytes(),
            )
        })
        .collect();
    let stamp = store
        .create_streamed(
            &mut envelope,
            elements.clone().into_iter().map(Ok::<_, std::io::Error>),
        )
        .unwrap();
    assert_eq!(stamp.revision, 1);
    let loaded = store.load(&id).unwrap().unwrap().session;
    assert_eq!(loaded.elements, elements);
    assert_eq!(loaded.metadata.revision, 1);
    assert_eq!(
        envelope.metadata.revision, 1,
        "the envelope records what was written"
    );
    // A second create of the same id is refused, and the first copy stands.
    let again = store.create_streamed(
        &mut envelope.clone(),
        std::iter::empty::<Result<Element, std::io::Error>>(),
    );
    assert!(
        matches!(again, Err(StoreError::Fs(FsError::AlreadyExists { .. }))),
        "{again:?}"
    );
    assert_eq!(store.load(&id).unwrap().unwrap().session.elements.len(), 50);
}

#[test]
fn a_retention_applied_to_the_store_changes_each_session_it_can_and_names_the_rest() {
    use session_model::{DAY_MS, Session, SessionId};
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    for (n, start) in [(1, 1_000u64), (2, 9_000)] {
        let mut session = Session::new(SessionId::new(format!("s-{n}")).unwrap(), start, 30);
        store.save(&mut session).unwrap();
    }
    let newer = br#"{"id": "s-3", "startTime": 1, "_metadata": {"version": "9.0.0", "revision": 4}}"#;
    std::fs::write(dir.path().join("s-3.json"), newer).unwrap();
    std::fs::write(dir.path().join("s-4.json"), b"{ damaged").unwrap();
    let mut heard = Vec::new();
    let applied = store
        .apply_retention(90, |id, saved| {
            heard.push((id.to_string(), saved.map(|s| s.persisted_until).is_ok()))
        })
        .unwrap();
    assert_eq!(applied.changed, 2);
    let mut skipped: Vec<&str> = applied.skipped.iter().map(|(id, _)| id.as_str()).collect();
    skipped.sort();
    assert_eq!(skipped, ["s-3", "s-4"]);
    assert!(
        applied.skipped.iter().any(|(_, e)| e.is_newer_version()),
        "{:?}",
        applied.skipped
    );
    heard.sort();
    assert_eq!(
        heard,
        [
            ("s-1".to_owned(), true),
            ("s-2".to_owned(), true),
            ("s-3".to_owned(), false),
            ("s-4".to_owned(), false)
        ]
    );
    for (n, start) in [(1, 1_000u64), (2, 9_000)] {
        let kept = store
            .load(&SessionId::new(format!("s-{n}")).unwrap())
            .unwrap()
            .unwrap()
            .session;
        assert_eq!(kept.persisted_until, start + 90 * DAY_MS);
        assert_eq!(kept.metadata.retention_days, 90);
    }
    assert_eq!(
        std::fs::read(dir.path().join("s-3.json")).unwrap(),
        newer,
        "never rewritten"
    );
}
