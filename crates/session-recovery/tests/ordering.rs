//! Which copy recovery keeps, rule by rule, with exact counts: a temp (never
//! acknowledged) never replaces a live file that decodes (acknowledged), whatever its
//! revision or `savedAt`; without one, the latest temp by revision, then `savedAt`, is
//! promoted; every copy not kept is in the trash (older by revision) or in quarantine;
//! nothing is deleted.

use std::path::Path;

use serde_json::json;
use session_fs::Store;
use session_recovery::{Action, recover, verify};
use session_store::{DecodeOptions, SessionStore};

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
fn a_temp_never_replaces_a_live_file_that_decodes() {
    // A store temp of a higher revision was never acknowledged (its save did not
    // return): the live file stays, and the temp is kept in quarantine, not trashed.
    let (kept, actions) = run(&v2("live", 3, 500), &v2("temp", 4, 100), STORE_TEMP);
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Quarantined]));
    let (kept, actions) = run(&v2("live", 3, 100), &v2("temp", 4, 900), STORE_TEMP);
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Quarantined]));
    // An older or equal temp is a superseded write: trashed.
    let (kept, actions) = run(&v2("live", 5, 100), &v2("temp", 4, 900), STORE_TEMP);
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Cleaned]));
    let (kept, actions) = run(&v2("live", 4, 200), &v2("temp", 4, 200), STORE_TEMP);
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Cleaned]));
    // The app's temp saved "later" (a clock years ahead, or a store put under a clock
    // years behind) beside a store file: the live file stays.
    let year_2100 = 4_102_444_800_000;
    let (kept, actions) = run(
        &v2("live", 2, 1_600_000_000_000),
        &app("temp", year_2100),
        APP_TEMP,
    );
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Quarantined]));
    // The app's own temp beside the app's live file, saved later: the live file stays.
    let (kept, actions) = run(&app("live", 100), &app("temp", 900), APP_TEMP);
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Quarantined]));
    let (kept, actions) = run(&app("live", 900), &v2("temp", 7, 100), STORE_TEMP);
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Quarantined]));
    // Copies of two store versions, and a newer build's temp: the live file stays.
    let (kept, actions) = run(
        &store_copy("2.1.0", "live", 3, 900),
        &v2("temp", 4, 100),
        STORE_TEMP,
    );
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Quarantined]));
    let (kept, actions) = run(&v2("live", 3, 900), &newer("temp", 5, 100), STORE_TEMP);
    assert_eq!((kept.as_str(), actions), ("live", vec![Action::Quarantined]));
}

/// Recovers a store holding `live` (if any) and the temps `temps`; returns the tag kept
/// live and, per temp name, the action taken on it.
fn run_many(live: Option<&[u8]>, temps: &[(&str, Vec<u8>)]) -> (String, Vec<(String, Action)>) {
    let dir = tempfile::tempdir().unwrap();
    if let Some(live) = live {
        std::fs::write(dir.path().join("s-1.json"), live).unwrap();
    }
    for (name, bytes) in temps {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let report = recover(&store).unwrap();
    let all = everything(dir.path());
    for bytes in live.into_iter().chain(temps.iter().map(|(_, b)| b.as_slice())) {
        assert!(all.iter().any(|b| b == bytes), "a copy was deleted");
    }
    assert!(recover(&store).unwrap().is_clean(), "idempotent");
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("s-1.json")).unwrap()).unwrap();
    let actions = report.moved.iter().map(|m| (m.file.clone(), m.action)).collect();
    (kept["tag"].as_str().unwrap().to_owned(), actions)
}

#[test]
fn without_a_live_file_that_decodes_the_latest_temp_is_promoted() {
    let (a, b) = (".s-1.json.1-1-1.tmp", ".s-1.json.1-1-2.tmp");
    // Missing live file: the higher revision wins even with the earlier savedAt; the
    // other is trashed. The order the names sort in does not matter.
    for (first, second) in [(a, b), (b, a)] {
        let (kept, actions) = run_many(None, &[(first, v2("rev5", 5, 100)), (second, v2("rev3", 3, 900))]);
        assert_eq!(kept, "rev5");
        assert_eq!(
            actions,
            [
                (second.to_owned(), Action::Cleaned),
                (first.to_owned(), Action::Recovered)
            ]
        );
    }
    // Damaged live file: quarantined, then the latest temp promoted.
    let (kept, actions) = run_many(
        Some(b"{\"id\": \"s-1\", torn"),
        &[(a, v2("old", 1, 100)), (b, v2("new", 2, 50))],
    );
    assert_eq!(kept, "new");
    assert_eq!(
        actions,
        [
            ("s-1.json".to_owned(), Action::Quarantined),
            (a.to_owned(), Action::Cleaned),
            (b.to_owned(), Action::Recovered)
        ]
    );
    // The app's temp against a store temp: savedAt decides, the loser is quarantined.
    let (kept, actions) = run_many(None, &[(APP_TEMP, app("app", 900)), (a, v2("store", 2, 100))]);
    assert_eq!(kept, "app");
    assert_eq!(
        actions,
        [
            (a.to_owned(), Action::Quarantined),
            (APP_TEMP.to_owned(), Action::Recovered)
        ]
    );
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
fn a_store_copy_of_revision_0_has_no_revision_to_order_by_so_saved_at_decides() {
    let (a, b) = (".s-1.json.1-1-1.tmp", ".s-1.json.1-1-2.tmp");
    // Revision 0 is no revision (nothing a store wrote has it): a 2.x copy of revision
    // 0 is ordered by savedAt against any other, and the loser is quarantined.
    for zero in [
        store_copy("2.0.0", "zero", 0, 900),
        store_copy("2.1.0", "zero", 0, 900),
    ] {
        let (kept, actions) = run_many(None, &[(a, zero), (b, v2("five", 5, 100))]);
        assert_eq!(kept, "zero");
        assert_eq!(
            actions,
            [
                (b.to_owned(), Action::Quarantined),
                (a.to_owned(), Action::Recovered)
            ]
        );
    }
}

#[test]
fn a_newer_builds_copy_is_ordered_by_its_revision_only_when_it_has_one() {
    let (a, b) = (".s-1.json.1-1-1.tmp", ".s-1.json.1-1-2.tmp");
    // Without a revision: savedAt decides, the loser is quarantined.
    let (kept, actions) = run_many(None, &[(a, newer("newer", 0, 900)), (b, v2("five", 5, 100))]);
    assert_eq!(kept, "newer");
    assert_eq!(
        actions,
        [
            (b.to_owned(), Action::Quarantined),
            (a.to_owned(), Action::Recovered)
        ]
    );
    // With one: the revision decides against the later savedAt, and the older
    // revision is a superseded write.
    let (kept, actions) = run_many(None, &[(a, newer("newer", 5, 100)), (b, v2("three", 3, 900))]);
    assert_eq!(kept, "newer");
    assert_eq!(
        actions,
        [(b.to_owned(), Action::Cleaned), (a.to_owned(), Action::Recovered)]
    );
}

#[test]
fn by_saved_at_a_tie_goes_to_the_first_temp_by_name() {
    // The store temp's name sorts first ('.' before 's'); the app's temp saved at the
    // same moment does not beat it.
    let a = ".s-1.json.1-1-1.tmp";
    let (kept, actions) = run_many(None, &[(APP_TEMP, app("app", 500)), (a, v2("store", 2, 500))]);
    assert_eq!(kept, "store");
    assert_eq!(
        actions,
        [
            (APP_TEMP.to_owned(), Action::Quarantined),
            (a.to_owned(), Action::Recovered)
        ]
    );
}
