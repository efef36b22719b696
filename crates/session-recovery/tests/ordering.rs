//! Which copy recovery keeps, rule by rule, with exact counts: revisions order only
//! copies the store wrote; otherwise `savedAt` decides and the loser is kept aside in
//! quarantine; ties go to the live file; nothing is deleted.

use std::path::Path;

use serde_json::json;
use session_fs::Store;
use session_migrate::{DecodeOptions, SessionStore};
use session_recovery::{Action, recover, verify};

fn v2(tag: &str, revision: u64, saved_at: u64) -> Vec<u8> {
    store_copy("2.0.0", tag, revision, saved_at)
}

/// A copy a store wrote at `version` (every store version records a revision).
fn store_copy(version: &str, tag: &str, revision: u64, saved_at: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "s-1", "startTime": 1, "isComplete": true, "elements": [], "persistedUntil": 9,
        "submission": {"status": "pending", "attempts": 0},
        "_metadata": {"version": version, "savedAt": saved_at, "retentionDays": 30, "revision": revision},
        "tag": tag
    }))
    .unwrap()
}

fn app(tag: &str, saved_at: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "s-1", "startTime": 1, "isComplete": true, "elements": [], "messages": [],
        "submissionStatus": "pending", "persistedUntil": 9,
        "_metadata": {"version": "1.0.0", "savedAt": saved_at, "retentionDays": 30},
        "tag": tag
    }))
    .unwrap()
}

/// Recovers a store holding `live` and a store temp `temp`; returns the tag kept live,
/// the actions taken, and whether the losing copy is still somewhere in the store.
fn run(live: &[u8], temp: &[u8], temp_name: &str) -> (String, Vec<Action>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s-1.json"), live).unwrap();
    std::fs::write(dir.path().join(temp_name), temp).unwrap();
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let report = recover(&store).unwrap();
    let actions: Vec<Action> = report.moved.iter().map(|m| m.action).collect();
    assert_eq!(
        (report.recovered, report.cleaned, report.quarantined),
        (
            actions.iter().filter(|a| **a == Action::Recovered).count(),
            actions.iter().filter(|a| **a == Action::Cleaned).count(),
            actions.iter().filter(|a| **a == Action::Quarantined).count()
        )
    );
    assert!(!report.is_clean());
    // Nothing deleted: both copies' bytes are still in the store directory's tree.
    let all = everything(dir.path());
    assert!(
        all.iter().any(|b| b == live) && all.iter().any(|b| b == temp),
        "a copy was deleted"
    );
    assert!(recover(&store).unwrap().is_clean(), "idempotent");
    // Read raw, not through `load`: a newer build's copy is kept but not loadable.
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("s-1.json")).unwrap()).unwrap();
    (kept["tag"].as_str().unwrap().to_owned(), actions)
}

fn everything(root: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

const STORE_TEMP: &str = ".s-1.json.1-2-3.tmp";
const APP_TEMP: &str = "s-1.json.tmp";

#[test]
fn between_store_copies_the_higher_revision_wins_and_the_loser_is_trashed() {
    // A later temp (higher revision, even if its clock ran backwards) is promoted.
    let (kept, actions) = run(&v2("live", 3, 500), &v2("temp", 4, 100), STORE_TEMP);
    assert_eq!(
        (kept.as_str(), actions),
        ("temp", vec![Action::Cleaned, Action::Recovered])
    );
    // An older temp is cleaned away; the live file stays.
    let (kept, actions) = run(&v2("live", 5, 100), &v2("temp", 4, 900), STORE_TEMP);
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Cleaned]));
    // Same revision: savedAt breaks the tie, and a full tie goes to the live file.
    let (kept, _) = run(&v2("live", 4, 100), &v2("temp", 4, 200), STORE_TEMP);
    assert_eq!(kept, "temp");
    let (kept, actions) = run(&v2("live", 4, 200), &v2("temp", 4, 200), STORE_TEMP);
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Cleaned]));
    // Copies of two store versions (an older build's 2.0.0 temp beside a 2.1.0 live file)
    // are still ordered by revision, not by savedAt.
    let (kept, actions) = run(
        &store_copy("2.1.0", "live", 3, 900),
        &v2("temp", 4, 100),
        STORE_TEMP,
    );
    assert_eq!(
        (kept.as_str(), actions),
        ("temp", vec![Action::Cleaned, Action::Recovered])
    );
    let (kept, _) = run(
        &v2("live", 5, 100),
        &store_copy("2.1.0", "temp", 4, 900),
        STORE_TEMP,
    );
    assert_eq!(kept, "live");
}

#[test]
fn against_the_apps_files_saved_at_decides_and_the_loser_is_kept_in_quarantine() {
    // The app's live file is later than a store temp of high revision: the live file stays.
    let (kept, actions) = run(&app("live", 900), &v2("temp", 7, 100), STORE_TEMP);
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Quarantined]));
    // The app's own temp, saved later than its live file: promoted, the live file kept aside.
    let (kept, actions) = run(&app("live", 100), &app("temp", 900), APP_TEMP);
    assert_eq!(
        (kept.as_str(), actions),
        ("temp", vec![Action::Quarantined, Action::Recovered])
    );
    // Saved at the same moment: the live file wins.
    let (kept, actions) = run(&app("live", 500), &app("temp", 500), APP_TEMP);
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Quarantined]));
    // A store file without a revision (0) is not ordered by revision either.
    let (kept, _) = run(&v2("live", 0, 900), &v2("temp", 3, 100), STORE_TEMP);
    assert_eq!(kept, "live");
}

#[test]
fn what_recovery_cannot_handle_is_a_problem_reported_and_left() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s-1.json"), app("fine", 1)).unwrap();
    std::fs::create_dir(dir.path().join("d-1.json")).unwrap();
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let report = recover(&store).unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].file, "d-1.json");
    assert!(
        report.problems[0].problem.contains("directory"),
        "{:?}",
        report.problems
    );
    assert!(report.moved.is_empty());
    assert!(!report.is_clean(), "a run with problems is not clean");
    assert!(dir.path().join("d-1.json").is_dir(), "left where it is");
    assert_eq!(verify(&store).unwrap().problems.len(), 1);
}

fn newer(tag: &str, revision: u64, saved_at: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "s-1", "startTime": 1,
        "_metadata": {"version": "9.0.0", "savedAt": saved_at, "revision": revision},
        "tag": tag
    }))
    .unwrap()
}

#[test]
fn a_newer_builds_temp_is_ordered_by_its_revision_only_when_it_has_one() {
    // A newer build's temp with a revision beats an older store revision, whatever the clocks.
    let (kept, _) = run(&v2("live", 3, 900), &newer("temp", 5, 100), STORE_TEMP);
    assert_eq!(kept, "temp");
    // Without a revision, savedAt decides, both ways.
    let (kept, _) = run(&v2("live", 3, 100), &newer("temp", 0, 900), STORE_TEMP);
    assert_eq!(kept, "temp");
    let (kept, _) = run(&v2("live", 3, 900), &newer("temp", 0, 100), STORE_TEMP);
    assert_eq!(kept, "live");
}
