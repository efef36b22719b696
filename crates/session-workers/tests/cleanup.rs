//! The retention worker on a real store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use session_model::SubmissionStatus::{Failed, Ignored, Pending, Submitted};
use session_workers::WorkerEvent;
use session_workers::cleanup::{CleanupConfig, LAST_CLEANUP, cleanup_once, last_cleanup, run_cleanup};
use tokio_util::sync::CancellationToken;

const DAY: u64 = 86_400_000;

/// Trash names carry the real time of the move, so these tests use the real clock.
fn now() -> u64 {
    session_fs::now_ms()
}

/// Another handle on `store`'s directory whose clock reads `at`.
fn clocked(store: &session_store::SessionStore, at: u64) -> session_store::SessionStore {
    let fs = session_fs::Store::options()
        .clock(Arc::new(session_workers::ManualClock::at(at)))
        .open(store.fs().dir())
        .unwrap();
    session_store::SessionStore::new(fs, session_store::DecodeOptions::default())
}

fn expired(id: &str, status: session_model::SubmissionStatus) -> session_model::Session {
    let mut s = with_status(id, status, 1);
    s.persisted_until = now() - DAY;
    s
}

const FUTURE: &[u8] = br#"{"id":"future","persistedUntil":1,"_metadata":{"version":"9.0.0"}}"#;

fn store_for_cleanup() -> (tempfile::TempDir, session_store::SessionStore) {
    let mut fresh = with_status("fresh-submitted", Submitted, 1);
    fresh.persisted_until = now() + DAY;
    let (dir, store) = store_with(vec![
        expired("old-submitted", Submitted),
        expired("old-ignored", Ignored),
        expired("old-pending", Pending),
        expired("old-failed", Failed),
        fresh,
    ]);
    // A newer build's file, long expired: never touched.
    std::fs::write(dir.path().join("future.json"), FUTURE).unwrap();
    // Trash: one entry eight days old, one from yesterday.
    let trash = dir.path().join(".trash");
    std::fs::write(
        trash.join(format!("{}.1-1-1.gone.json", now() - 8 * DAY)),
        vec![b'x'; 1000],
    )
    .unwrap();
    std::fs::write(trash.join(format!("{}.1-1-2.recent.json", now() - DAY)), b"y").unwrap();
    // A lock file a crash left after its session was deleted.
    std::fs::write(dir.path().join(".locks/crashed-away.lock"), b"").unwrap();
    (dir, store)
}

fn live(store: &session_store::SessionStore) -> Vec<String> {
    store
        .fs()
        .list()
        .unwrap()
        .iter()
        .map(|id| id.to_string())
        .collect()
}

#[test]
fn delivered_expired_sessions_go_to_the_trash_undelivered_ones_stay() {
    let (dir, store) = store_for_cleanup();
    let locks = dir.path().join(".locks");
    std::fs::remove_dir_all(&locks).unwrap();
    std::fs::create_dir(&locks).unwrap();
    let summary = cleanup_once(&clocked(&store, now()), &CleanupConfig::default()).unwrap();
    // The sessions it kept were only read (a lock would have left its file); those it
    // trashed took their lock files with them.
    assert_eq!(test_support::names_in(&locks), Vec::<String>::new());
    assert_eq!(
        (
            summary.expired,
            summary.trashed,
            summary.kept,
            summary.purged,
            summary.bytes_freed
        ),
        (4, 2, 2, 1, 1000)
    );
    assert_eq!(
        live(&store),
        ["fresh-submitted", "future", "old-failed", "old-pending"]
    );
    assert_eq!(std::fs::read(dir.path().join("future.json")).unwrap(), FUTURE);
    let trash: Vec<_> = std::fs::read_dir(dir.path().join(".trash"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        trash.len(),
        3,
        "the two trashed sessions and the recent entry: {trash:?}"
    );
    // The expiry rule is <=: a session expiring exactly now is expired.
    let mut edge = with_status("edge", Submitted, 1);
    let at = now();
    edge.persisted_until = at;
    store.create(&mut edge).unwrap();
    assert_eq!(
        cleanup_once(&clocked(&store, at), &CleanupConfig::default())
            .unwrap()
            .trashed,
        1
    );
}

#[test]
fn undelivered_data_is_deleted_only_when_configured() {
    let (_dir, store) = store_for_cleanup();
    let config = CleanupConfig::default().delete_undelivered(true);
    let summary = cleanup_once(&clocked(&store, now()), &config).unwrap();
    assert_eq!((summary.trashed, summary.kept), (4, 0));
    assert_eq!(live(&store), ["fresh-submitted", "future"]);
}

#[test]
fn a_dry_run_reports_and_changes_nothing() {
    let (dir, store) = store_for_cleanup();
    let before = walk(dir.path());
    let config = CleanupConfig::default().dry_run(true);
    let summary = cleanup_once(&clocked(&store, now()), &config).unwrap();
    assert_eq!(
        (summary.expired, summary.trashed, summary.kept, summary.purged),
        (4, 2, 2, 1)
    );
    assert_eq!(walk(dir.path()), before);
}

fn walk(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push((
                entry.path().display().to_string(),
                entry.metadata().unwrap().len(),
            ));
        }
    }
    out.sort();
    out
}

#[tokio::test(start_paused = true)]
async fn runs_at_start_then_on_every_interval_until_cancelled() {
    let (_dir, store) = store_for_cleanup();
    let (tx, mut rx) = tokio::sync::broadcast::channel(16);
    let cancel = CancellationToken::new();
    let config = CleanupConfig::default().interval(Duration::from_secs(3600));
    let (_settings, config) = tokio::sync::watch::channel(config);
    let task = tokio::spawn(run_cleanup(clocked(&store, now()), config, tx, cancel.clone()));
    let Ok(WorkerEvent::Cleanup(first)) = rx.recv().await else {
        panic!("no summary")
    };
    assert_eq!(first.trashed, 2);
    let started = tokio::time::Instant::now();
    let Ok(WorkerEvent::Cleanup(second)) = rx.recv().await else {
        panic!("no second summary")
    };
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(3600),
        "the next run waits one interval"
    );
    assert_eq!((second.trashed, second.kept), (0, 2));
    cancel.cancel();
    task.await.unwrap();
}

#[test]
fn the_trash_is_purged_strictly_after_its_age_and_only_what_the_store_named() {
    let (dir, store) = store_with(vec![]);
    let now = now();
    // Not the default age (seven days): the configured one is what counts.
    let age = Duration::from_secs(3 * 24 * 3600);
    let cutoff = now - age.as_millis() as u64;
    let trash = dir.path().join(".trash");
    let names = [
        (format!("{}.1-1-1.older.json", cutoff - 1), true),
        (format!("{cutoff}.1-1-2.exactly.json"), false),
        (format!("{}.1-1-3.younger.json", cutoff + 1), false),
        ("1.notes.txt".to_owned(), false),
        ("12.1-1.broken.json".to_owned(), false),
    ];
    for (name, _) in &names {
        std::fs::write(trash.join(name), b"x").unwrap();
    }
    let summary = cleanup_once(
        &clocked(&store, now),
        &CleanupConfig::default().trash_max_age(age),
    )
    .unwrap();
    assert_eq!(summary.purged, 1);
    for (name, purged) in &names {
        assert_eq!(!trash.join(name).exists(), *purged, "{name}");
    }
}

#[test]
fn a_backup_run_is_purged_whole_strictly_after_its_age() {
    let (dir, store) = store_with(vec![]);
    let now = now();
    let age = Duration::from_secs(2 * 24 * 3600);
    let cutoff = now - age.as_millis() as u64;
    let backup = dir.path().join(".backup");
    let runs = [(cutoff - 1, true), (cutoff, false), (cutoff + 1, false)];
    for (at, _) in runs {
        let run = backup.join(format!("{at}-1-1-1"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("a.json"), b"12345").unwrap();
        std::fs::write(run.join("b.json"), b"123").unwrap();
    }
    let summary = cleanup_once(
        &clocked(&store, now),
        &CleanupConfig::default().trash_max_age(age),
    )
    .unwrap();
    assert_eq!((summary.purged, summary.bytes_freed), (2, 8));
    for (at, purged) in runs {
        let left = std::fs::read_dir(backup.join(format!("{at}-1-1-1")))
            .unwrap()
            .count();
        assert_eq!(left, if purged { 0 } else { 2 }, "run of {at}");
    }
}

#[test]
fn the_last_real_run_is_recorded_and_a_dry_run_never_overwrites_it() {
    let (dir, store) = store_for_cleanup();
    assert!(last_cleanup(store.fs()).unwrap().is_none(), "no run yet");
    let at = now();
    let real = cleanup_once(&clocked(&store, at), &CleanupConfig::default()).unwrap();
    assert_eq!((real.at, real.dry_run), (at, false));
    let recorded = last_cleanup(store.fs()).unwrap().expect("recorded");
    assert_eq!(
        (
            recorded.at,
            recorded.dry_run,
            recorded.expired,
            recorded.trashed,
            recorded.kept,
            recorded.purged
        ),
        (at, false, 4, 2, 2, 1)
    );
    assert_eq!(
        (recorded.bytes_freed, recorded.duration_ms),
        (real.bytes_freed, real.duration_ms)
    );

    let dry = cleanup_once(&clocked(&store, at + 1), &CleanupConfig::default().dry_run(true)).unwrap();
    assert_eq!((dry.at, dry.dry_run), (at + 1, true));
    assert_eq!(
        last_cleanup(store.fs()).unwrap().unwrap().at,
        at,
        "a dry run is not recorded"
    );

    // A record from before `format` existed reads as format 1; a later format is not
    // guessed at.
    let state = dir.path().join(".state").join(LAST_CLEANUP);
    let unversioned = r#"{"at":5,"expired":1,"trashed":1,"kept":0,"purged":0}"#;
    std::fs::write(&state, unversioned).unwrap();
    let old = last_cleanup(store.fs())
        .unwrap()
        .expect("an unversioned record is format 1");
    assert_eq!((old.at, old.expired, old.trashed, old.dry_run), (5, 1, 1, false));
    std::fs::write(&state, unversioned.replace("{", r#"{"format":2,"#)).unwrap();
    assert!(last_cleanup(store.fs()).unwrap().is_none());
}

#[test]
fn a_real_run_sweeps_the_lock_files_of_sessions_that_no_longer_exist() {
    let (dir, store) = store_for_cleanup();
    let locks = dir.path().join(".locks");
    let lock_files = || test_support::names_in(&locks);
    assert!(lock_files().contains(&"crashed-away.lock".to_owned()));
    cleanup_once(&clocked(&store, now()), &CleanupConfig::default()).unwrap();
    let left = lock_files();
    assert!(!left.contains(&"crashed-away.lock".to_owned()), "{left:?}");
    // Every lock file left belongs to a session that is still there.
    let sessions = live(&store);
    assert!(
        !left.is_empty()
            && left
                .iter()
                .all(|name| sessions.contains(&name.trim_end_matches(".lock").to_owned())),
        "{left:?} against {sessions:?}"
    );
}

#[test]
fn a_file_the_run_cannot_read_is_reported_by_name_and_kept_and_the_run_goes_on() {
    let (dir, store) = store_for_cleanup();
    // Over this handle's size limit: reading it fails, which must not stop the run.
    let mut big = with_status("too-big-to-read", Submitted, 1);
    store.create(&mut big).unwrap();
    let path = dir.path().join("too-big-to-read.json");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::iter::repeat_n(b' ', 4096));
    std::fs::write(&path, &bytes).unwrap();
    let limit = std::fs::metadata(dir.path().join("old-submitted.json"))
        .unwrap()
        .len()
        + 1024;
    let fs = session_fs::Store::options()
        .clock(Arc::new(session_workers::ManualClock::at(now())))
        .max_file_size(limit)
        .open(dir.path())
        .unwrap();
    let tight = session_store::SessionStore::new(fs, session_store::DecodeOptions::default());
    let summary = cleanup_once(&tight, &CleanupConfig::default()).unwrap();
    assert_eq!(summary.failures.len(), 1, "{summary:?}");
    assert_eq!(summary.failures[0].file, "too-big-to-read.json");
    assert!(!summary.failures[0].problem.is_empty());
    // The others were judged as without it, and the unreadable one is untouched.
    assert_eq!(
        (summary.expired, summary.trashed, summary.kept),
        (4, 2, 2),
        "{summary:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}
