//! The app's damaged files through `verify` and `recover`.

use std::path::Path;

use session_fs::Store;
use session_store::{DecodeOptions, SessionStore};

use test_support::{FIXTURES, tree};

fn store_of_corrupt_fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(Path::new(FIXTURES).join("corrupt")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

#[test]
fn verify_names_every_problem_and_changes_nothing() {
    let dir = store_of_corrupt_fixtures();
    // Verify reads through a read-only handle: not one byte or name may change, and
    // nothing may appear (not even the store's dot-directories).
    let before = tree(dir.path());
    let store = SessionStore::new(
        Store::options().read_only().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let report = session_recovery::verify(&store).unwrap();
    // The shape `sessionctl verify --json` gives it (the library's report is no format).
    let shown = serde_json::json!({
        "ok": report.ok,
        "problems": report.problems.iter().map(|p| serde_json::json!({"file": p.file, "problem": p.problem})).collect::<Vec<_>>(),
    });
    insta::assert_json_snapshot!(shown);
    assert_eq!(tree(dir.path()), before, "verify changed the store");
}

#[test]
fn recover_quarantines_the_damaged_and_promotes_the_valid_temp() {
    let dir = store_of_corrupt_fixtures();
    let newer = std::fs::read(dir.path().join("session-39.json")).unwrap();
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let report = session_recovery::recover(&store).unwrap();
    let shown: Vec<_> = report
        .moved
        .iter()
        .map(|m| format!("{:?} {}: {}", m.action, m.file, m.reason))
        .collect();
    insta::assert_snapshot!(format!(
        "recovered {}, cleaned {}, quarantined {}\n{}",
        report.recovered,
        report.cleaned,
        report.quarantined,
        shown.join("\n")
    ));
    // The newer version is byte-for-byte untouched; the valid temp is live now.
    assert_eq!(std::fs::read(dir.path().join("session-39.json")).unwrap(), newer);
    assert!(dir.path().join("session-31.json").exists());
    // Each quarantined file is kept, with a sidecar that says why.
    for moved in report
        .moved
        .iter()
        .filter(|m| m.action == session_recovery::Action::Quarantined)
    {
        let original = std::fs::read(Path::new(FIXTURES).join("corrupt").join(&moved.file)).unwrap();
        assert_eq!(std::fs::read(&moved.to).unwrap(), original, "{}", moved.file);
        let sidecar = format!("{}.why.json", moved.to.display());
        let why: serde_json::Value = serde_json::from_slice(&std::fs::read(sidecar).unwrap()).unwrap();
        assert_eq!(why["file"], moved.file.as_str());
        assert_eq!(why["reason"], moved.reason.as_str());
        assert!(
            why["by"].as_str().unwrap().starts_with("session-recovery "),
            "{why}"
        );
        assert!(why["quarantinedAt"].as_u64().unwrap() > 0, "{why}");
    }
    assert!(session_recovery::recover(&store).unwrap().is_clean());
    let after = session_recovery::verify(&store).unwrap();
    assert_eq!((after.ok, after.problems.len()), (2, 0), "{after:?}");
}

#[test]
fn recovery_refuses_to_run_beside_other_handles() {
    let dir = tempfile::tempdir().unwrap();
    let shared = SessionStore::new(Store::open(dir.path()).unwrap(), DecodeOptions::default());
    assert!(matches!(
        session_recovery::recover(&shared),
        Err(session_recovery::RecoveryError::NotExclusive)
    ));
}

#[test]
fn recovery_of_a_large_store_visits_every_valid_session_once_on_all_cores() {
    let dir = tempfile::tempdir().unwrap();
    let template: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(FIXTURES).join("v1/session-21.json")).unwrap())
            .unwrap();
    for n in 0..700 {
        let mut doc = template.clone();
        doc["id"] = format!("s{n:04}").into();
        std::fs::write(
            dir.path().join(format!("s{n:04}.json")),
            serde_json::to_vec(&doc).unwrap(),
        )
        .unwrap();
    }
    for n in 0..5 {
        std::fs::write(dir.path().join(format!("bad{n}.json")), b"{\"torn").unwrap();
    }
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let mut seen = Vec::new();
    let report = session_recovery::recover_visiting(&store, |id, decoded| {
        assert_eq!(decoded.session.id, id);
        seen.push(id.to_string());
    })
    .unwrap();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 700);
    assert_eq!(report.quarantined, 5);
}
