//! The store-wide run on real directories: counts, backups, rollback, dry run, kills.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use session_fs::Store;
use session_migrate::{DecodeOptions, MigrateOptions, RollbackOptions, SchemaVersion, decode};
use session_model::{Session, SessionId};
use session_store::SessionStore;

use test_support::FIXTURES;

fn copy_fixtures(dir: &Path, files: &[&str]) {
    for rel in files {
        let name = Path::new(rel).file_name().unwrap();
        std::fs::copy(Path::new(FIXTURES).join(rel), dir.join(name)).unwrap();
    }
}

/// Every file name -> bytes, outside the dot-directories.
fn snapshot_of(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect()
}

fn no_progress(_: usize, _: usize) {}

const MIXED: [&str; 7] = [
    "legacy/session-11.json",
    "legacy/session-14.json",
    "v1/session-21.json",
    "v1/session-23.json",
    "v1/session-24.json",
    "corrupt/session-35.json",
    "corrupt/session-39.json",
];

#[test]
fn migrates_old_files_skips_newer_and_counts_failures() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixtures(tmp.path(), &MIXED);
    let before = snapshot_of(tmp.path());
    let store = SessionStore::new(Store::open(tmp.path()).unwrap(), DecodeOptions::default());
    let report = store.migrate(&MigrateOptions::default(), &no_progress).unwrap();
    assert_eq!(
        (report.migrated, report.up_to_date, report.skipped, report.failed),
        (5, 0, 1, 1),
        "{report:?}"
    );
    assert_eq!(report.failures[0].file, "session-35.json");
    for (path, original) in &before {
        let now = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        if name == "session-39.json" || name == "session-35.json" {
            assert_eq!(&now, original, "{name} must be untouched");
            continue;
        }
        let decoded = decode(&now).unwrap();
        assert_eq!(decoded.from, SchemaVersion::CURRENT, "{name}");
        assert_eq!(
            decoded.session,
            decoded_without_stamp(original, &decoded.session),
            "{name}: content changed"
        );
    }
    // A second run has nothing to do and rewrites nothing.
    let after_first = snapshot_of(tmp.path());
    let locks = tmp.path().join(".locks");
    std::fs::remove_dir_all(&locks).unwrap();
    std::fs::create_dir(&locks).unwrap();
    let again = store.migrate(&MigrateOptions::default(), &no_progress).unwrap();
    assert_eq!((again.migrated, again.up_to_date), (0, 5));
    assert_eq!(snapshot_of(tmp.path()), after_first);
    // Files that stay as they are are only read: no lock taken, no lock file left.
    assert_eq!(std::fs::read_dir(&locks).unwrap().count(), 0);
    // Rollback restores exactly the originals of the files the run changed.
    assert!(matches!(
        store.rollback(&RollbackOptions::default()),
        Err(session_migrate::RollbackError::NotExclusive)
    ));
    drop(store);
    let store = SessionStore::new(
        Store::options().exclusive().open(tmp.path()).unwrap(),
        DecodeOptions::default(),
    );
    let undone = store.rollback(&RollbackOptions::default()).unwrap();
    assert_eq!(undone.restored, 5);
    assert!(undone.not_restored.is_empty());
    assert_eq!(snapshot_of(tmp.path()), before);
}

/// `original` decoded, with the stamp a save records taken from `saved`.
fn decoded_without_stamp(original: &[u8], saved: &Session) -> Session {
    let mut expected = decode(original).unwrap().session;
    expected.metadata.revision = saved.metadata.revision;
    expected.metadata.saved_at = saved.metadata.saved_at;
    expected
}

#[test]
fn dry_run_writes_nothing_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixtures(tmp.path(), &MIXED);
    let store = SessionStore::new(Store::open(tmp.path()).unwrap(), DecodeOptions::default());
    let listing = |p: &Path| -> Vec<String> {
        let mut names: Vec<String> = walk(p).into_iter().map(|p| p.display().to_string()).collect();
        names.sort();
        names
    };
    let (before, names_before) = (snapshot_of(tmp.path()), listing(tmp.path()));
    let options = MigrateOptions::default().dry_run(true);
    let report = store.migrate(&options, &no_progress).unwrap();
    assert_eq!(
        (report.migrated, report.skipped, report.failed, report.backup_run),
        (5, 1, 1, None)
    );
    assert_eq!(snapshot_of(tmp.path()), before);
    assert_eq!(
        listing(tmp.path()),
        names_before,
        "a dry run creates no file, not even a backup dir"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn progress_is_reported_for_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixtures(tmp.path(), &MIXED);
    let store = SessionStore::new(Store::open(tmp.path()).unwrap(), DecodeOptions::default());
    let seen = std::sync::Mutex::new(Vec::new());
    store
        .migrate(&MigrateOptions::default(), &|done, total| {
            seen.lock().unwrap().push((done, total))
        })
        .unwrap();
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    assert_eq!(seen, (1..=7).map(|d| (d, 7)).collect::<Vec<_>>());
}

const CHILD_ENV: &str = "SESSION_MIGRATE_KILL_CHILD_DIR";
const SESSIONS: usize = 120;

/// Not a test on its own: the child the kill test below SIGKILLs.
#[test]
fn child_migrates_until_killed() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let store = SessionStore::new(Store::open(dir).unwrap(), DecodeOptions::default());
    println!("started");
    // One line per file done: the parent kills after a chosen number of them.
    store
        .migrate(&MigrateOptions::default().threads(1), &|done, _| {
            println!("done {done}")
        })
        .unwrap();
    println!("finished");
}

/// A store of `SESSIONS` app files (legacy and 1.0.0) with distinct ids; returns the
/// session each must hold, old or new.
fn big_store(dir: &Path) -> BTreeMap<SessionId, Session> {
    let sources = [
        "legacy/session-11.json",
        "legacy/session-14.json",
        "v1/session-21.json",
        "v1/session-23.json",
    ];
    let mut expected = BTreeMap::new();
    for n in 0..SESSIONS {
        let bytes = std::fs::read(Path::new(FIXTURES).join(sources[n % sources.len()])).unwrap();
        let mut doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let id = format!("kill-{n:03}");
        doc["id"] = id.clone().into();
        let bytes = serde_json::to_vec_pretty(&doc).unwrap();
        std::fs::write(dir.join(format!("{id}.json")), &bytes).unwrap();
        expected.insert(SessionId::new(id).unwrap(), decode(&bytes).unwrap().session);
    }
    expected
}

fn check_every_session(store: &SessionStore, expected: &BTreeMap<SessionId, Session>) -> (usize, usize) {
    let (mut old, mut new) = (0, 0);
    assert_eq!(
        store.fs().list().unwrap(),
        expected.keys().cloned().collect::<Vec<_>>(),
        "each session exactly once"
    );
    for (id, want) in expected {
        let decoded = store.load(id).unwrap_or_else(|e| panic!("{id}: {e}")).unwrap();
        if decoded.from == SchemaVersion::CURRENT {
            new += 1
        } else {
            old += 1
        }
        let mut got = decoded.session;
        got.metadata.revision = want.metadata.revision;
        got.metadata.saved_at = want.metadata.saved_at;
        assert_eq!(&got, want, "{id}: neither fully old nor fully new");
    }
    (old, new)
}

#[test]
fn sigkill_during_migration_then_rerun_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = big_store(tmp.path());
    let mut rng = StdRng::seed_from_u64(4);
    let (mut kills, mut mid_run) = (0, 0);
    for _ in 0..40 {
        let mut child = test_support::ChildGuard::new(
            test_support::rerun_as_child("child_migrates_until_killed")
                .env(CHILD_ENV, tmp.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Kill it once it reports a chosen number of files done (or at the start): a
        // moment chosen by what the child did, not by a clock.
        let after = rng.random_range(0..SESSIONS / 2);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let reached = lines.by_ref().map_while(Result::ok).any(|l| {
            if after == 0 {
                l.contains("started")
            } else {
                l.rsplit_once("done ")
                    .and_then(|(_, n)| n.trim().parse::<usize>().ok())
                    >= Some(after)
            }
        });
        assert!(reached, "the child ended before {after} files");
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let store = SessionStore::new(
            Store::options().exclusive().open(tmp.path()).unwrap(),
            DecodeOptions::default(),
        );
        let (old, new) = check_every_session(&store, &expected);
        if old > 0 && new > 0 {
            mid_run += 1;
        }
        // What start-up does before the next run: recovery moves torn temps aside.
        session_recovery_like_cleanup(&store);
        if old == 0 {
            // All done: start over from the app's files, so that later kills land mid-run too.
            drop(store);
            big_store(tmp.path());
        }
    }
    let store = SessionStore::new(Store::open(tmp.path()).unwrap(), DecodeOptions::default());
    store.migrate(&MigrateOptions::default(), &no_progress).unwrap();
    let (old, new) = check_every_session(&store, &expected);
    assert_eq!((old, new), (0, SESSIONS));
    eprintln!(
        "{kills} SIGKILLs during migration ({mid_run} with the run part-way), every session intact after each"
    );
    assert!(mid_run >= 10, "too few kills landed mid-run: {mid_run}");
}

/// session-recovery sits above this crate, so the test removes leftover temps by hand
/// (recovery's own tests cover promoting them).
fn session_recovery_like_cleanup(store: &SessionStore) {
    for (temp, _) in store.fs().maintenance().scan().unwrap().temps {
        std::fs::remove_file(store.fs().dir().join(temp)).unwrap();
    }
}

/// Four copies of one `1.0.0` fixture, migrated; then each changed differently.
fn migrated_store_with_later_changes(dir: &Path) {
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(FIXTURES).join("v1/session-21.json")).unwrap())
            .unwrap();
    for id in ["same", "delivered", "resaved", "deleted"] {
        let mut doc = original.clone();
        doc["id"] = id.into();
        std::fs::write(dir.join(format!("{id}.json")), serde_json::to_vec(&doc).unwrap()).unwrap();
    }
    let store = SessionStore::new(Store::open(dir).unwrap(), DecodeOptions::default());
    assert_eq!(
        store
            .migrate(&MigrateOptions::default(), &no_progress)
            .unwrap()
            .migrated,
        4
    );
    let id = |s: &str| s.parse::<SessionId>().unwrap();
    // Delivered after the migration (what the daemon does).
    let delivered = id("delivered");
    for step in 0..2 {
        store
            .update(&delivered, |s| {
                let done = if step == 0 {
                    s.submission.begin_attempt(10, || "k".into()).map(|_| ())
                } else {
                    s.submission.succeed(20)
                };
                done.map_err(session_store::refused(&delivered))
            })
            .unwrap();
    }
    // Saved again with other content (the capture tool), and deleted (an operator).
    let mut resaved = store.load(&id("resaved")).unwrap().unwrap().session;
    resaved.end_time = Some(resaved.end_time.unwrap_or(0) + 1);
    store.save(&mut resaved).unwrap();
    assert!(store.delete(&id("deleted")).unwrap());
}

#[test]
fn rollback_restores_only_what_nobody_changed_since() {
    let tmp = tempfile::tempdir().unwrap();
    migrated_store_with_later_changes(tmp.path());
    let after_changes = snapshot_of(tmp.path());
    let store = SessionStore::new(
        Store::options().exclusive().open(tmp.path()).unwrap(),
        DecodeOptions::default(),
    );
    let report = store.rollback(&RollbackOptions::default()).unwrap();
    assert_eq!(report.restored, 1);
    let mut left: Vec<_> = report.not_restored.iter().map(|n| n.file.as_str()).collect();
    left.sort();
    assert_eq!(left, ["deleted.json", "delivered.json", "resaved.json"]);
    assert_eq!(
        decode(&std::fs::read(tmp.path().join("same.json")).unwrap())
            .unwrap()
            .from
            .as_str(),
        "1.0.0"
    );
    for changed in ["delivered.json", "resaved.json"] {
        assert_eq!(
            std::fs::read(tmp.path().join(changed)).unwrap(),
            after_changes[&tmp.path().join(changed)],
            "{changed} untouched"
        );
    }
    assert!(
        !tmp.path().join("deleted.json").exists(),
        "a deleted session stays deleted"
    );
    // --force restores the re-saved one, keeping its newer copy, and nothing else.
    let resaved_newer = std::fs::read(tmp.path().join("resaved.json")).unwrap();
    let forced = store.rollback(&RollbackOptions::default().force(true)).unwrap();
    assert_eq!(forced.restored, 1);
    let kept_run = forced.kept_run.expect("the newer copy is kept");
    assert_eq!(
        std::fs::read(tmp.path().join(".backup").join(&kept_run).join("resaved.json")).unwrap(),
        resaved_newer
    );
    assert_eq!(
        decode(&std::fs::read(tmp.path().join("resaved.json")).unwrap())
            .unwrap()
            .from
            .as_str(),
        "1.0.0"
    );
    let delivered = decode(&std::fs::read(tmp.path().join("delivered.json")).unwrap())
        .unwrap()
        .session;
    assert_eq!(
        delivered.submission.status,
        session_model::SubmissionStatus::Submitted,
        "never undone"
    );
    assert!(!tmp.path().join("deleted.json").exists());
}

#[test]
fn only_the_named_sessions_are_migrated() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixtures(tmp.path(), &MIXED);
    let store = SessionStore::new(Store::open(tmp.path()).unwrap(), DecodeOptions::default());
    let before = snapshot_of(tmp.path());
    let chosen = vec![
        SessionId::new("session-21").unwrap(),
        SessionId::new("session-11").unwrap(),
    ];
    let report = store
        .migrate(&MigrateOptions::default().only(chosen), &no_progress)
        .unwrap();
    assert_eq!((report.migrated, report.up_to_date, report.failed), (2, 0, 0));
    for (path, bytes) in snapshot_of(tmp.path()) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let changed = bytes != before[&path];
        assert_eq!(
            changed,
            name == "session-21.json" || name == "session-11.json",
            "{name}"
        );
    }
}

#[test]
fn force_never_restores_over_an_ignore_or_a_delivery_of_earlier_content() {
    let tmp = tempfile::tempdir().unwrap();
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(FIXTURES).join("v1/session-21.json")).unwrap())
            .unwrap();
    for id in ["ignored", "redelivered"] {
        let mut doc = original.clone();
        doc["id"] = id.into();
        std::fs::write(
            tmp.path().join(format!("{id}.json")),
            serde_json::to_vec(&doc).unwrap(),
        )
        .unwrap();
    }
    let store = SessionStore::new(Store::open(tmp.path()).unwrap(), DecodeOptions::default());
    store.migrate(&MigrateOptions::default(), &no_progress).unwrap();
    let id = |s: &str| s.parse::<SessionId>().unwrap();
    // An operator ignored it: settled, though never delivered.
    store
        .update(&id("ignored"), |s| {
            s.submission
                .ignore()
                .map_err(session_store::refused(&id("ignored")))
        })
        .unwrap();
    // Delivered, then saved with new content: pending again, the delivery on record.
    let redelivered = id("redelivered");
    store
        .update(&redelivered, |s| {
            s.submission
                .begin_attempt(10, || "k".into())
                .map(|_| ())
                .and_then(|()| s.submission.succeed(20))
                .map_err(session_store::refused(&redelivered))
        })
        .unwrap();
    let mut changed = store.load(&redelivered).unwrap().unwrap().session;
    changed.end_time = Some(changed.end_time.unwrap_or(0) + 1);
    store.save(&mut changed).unwrap();
    let now = store.load(&redelivered).unwrap().unwrap().session.submission;
    assert_eq!(
        (now.status, now.earlier_deliveries.len()),
        (session_model::SubmissionStatus::Pending, 1),
        "the precondition: pending again, one earlier delivery"
    );
    drop(store);
    let before = snapshot_of(tmp.path());
    let exclusive = SessionStore::new(
        Store::options().exclusive().open(tmp.path()).unwrap(),
        DecodeOptions::default(),
    );
    let report = exclusive
        .rollback(&RollbackOptions::default().force(true))
        .unwrap();
    assert_eq!(report.restored, 0, "{report:?}");
    assert_eq!(snapshot_of(tmp.path()), before, "neither file was touched");
}

#[test]
fn a_chosen_run_is_rolled_back_and_the_later_one_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let open = |exclusive: bool| {
        let options = if exclusive {
            Store::options().exclusive()
        } else {
            Store::options()
        };
        SessionStore::new(options.open(tmp.path()).unwrap(), DecodeOptions::default())
    };
    copy_fixtures(tmp.path(), &["v1/session-21.json"]);
    let first_original = std::fs::read(tmp.path().join("session-21.json")).unwrap();
    open(false)
        .migrate(&MigrateOptions::default(), &no_progress)
        .unwrap();
    copy_fixtures(tmp.path(), &["v1/session-22.json"]);
    open(false)
        .migrate(&MigrateOptions::default(), &no_progress)
        .unwrap();
    let store = open(true);
    let runs = store.fs().maintenance().backup_runs().unwrap();
    assert_eq!(runs.len(), 2, "one run per migration");
    let hooks = store.fs().maintenance();
    let session_21: SessionId = "session-21".parse().unwrap();
    let first = runs
        .into_iter()
        .find(|run| hooks.backup_entries(run).unwrap() == [session_21.clone()])
        .expect("the run that migrated session-21");
    let report = store
        .rollback(&RollbackOptions::default().run(first.clone()))
        .unwrap();
    assert_eq!((report.run.as_str(), report.restored), (first.as_str(), 1));
    assert_eq!(
        std::fs::read(tmp.path().join("session-21.json")).unwrap(),
        first_original
    );
    let later = decode(&std::fs::read(tmp.path().join("session-22.json")).unwrap()).unwrap();
    assert_eq!(
        later.from,
        SchemaVersion::CURRENT,
        "the later run's file stays migrated"
    );
}

#[test]
fn rollback_undoes_the_last_run_made_even_when_an_earlier_one_ran_under_a_clock_ahead() {
    let tmp = tempfile::tempdir().unwrap();
    // A clock without a time since boot: nothing corrects its readings.
    let clock = session_fs::clock::ManualClock::wall_only(session_fs::now_ms() + 94 * 365 * 86_400_000);
    let open = |exclusive: bool| {
        let options = Store::options().clock(std::sync::Arc::new(clock.clone()));
        let options = if exclusive { options.exclusive() } else { options };
        SessionStore::new(options.open(tmp.path()).unwrap(), DecodeOptions::default())
    };
    copy_fixtures(tmp.path(), &["v1/session-21.json"]);
    open(false)
        .migrate(&MigrateOptions::default(), &no_progress)
        .unwrap();
    // The clock comes back; a second run migrates another file.
    clock.set(session_fs::now_ms());
    copy_fixtures(tmp.path(), &["v1/session-22.json"]);
    let second_original = std::fs::read(tmp.path().join("session-22.json")).unwrap();
    open(false)
        .migrate(&MigrateOptions::default(), &no_progress)
        .unwrap();
    let report = open(true).rollback(&RollbackOptions::default()).unwrap();
    assert_eq!(report.restored, 1);
    assert_eq!(
        std::fs::read(tmp.path().join("session-22.json")).unwrap(),
        second_original,
        "the run made last is the one undone"
    );
    let first = decode(&std::fs::read(tmp.path().join("session-21.json")).unwrap()).unwrap();
    assert_eq!(first.from, SchemaVersion::CURRENT, "the earlier run stays");
}

#[test]
fn migration_threads_are_at_least_one() {
    assert_eq!(MigrateOptions::default().threads(3).threads, 3);
    assert_eq!(MigrateOptions::default().threads(0).threads, 1);
}

/// The real filesystem, except that the first lock of `session-21` is preceded by a
/// write of `bytes` to its file: another writer changing it between the migration's
/// plain read and its lock.
#[derive(Debug)]
struct ChangedUnderfoot {
    file: PathBuf,
    bytes: Vec<u8>,
    armed: std::sync::atomic::AtomicBool,
    /// A file whose name starts so cannot be created (a full disk, for one session).
    full_for: Option<&'static str>,
}

impl session_fs::Storage for ChangedUnderfoot {
    fn create_dir(&self, path: &Path) -> std::io::Result<()> {
        session_fs::OsStorage.create_dir(path)
    }
    fn create_new(&self, path: &Path) -> std::io::Result<Box<dyn session_fs::WriteFile>> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if self
            .full_for
            .is_some_and(|prefix| name.trim_start_matches('.').starts_with(prefix))
        {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        session_fs::OsStorage.create_new(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        session_fs::OsStorage.rename(from, to)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        session_fs::OsStorage.hard_link(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        session_fs::OsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        session_fs::OsStorage.sync_dir(dir)
    }
    fn read(&self, path: &Path, limit: u64) -> std::io::Result<session_fs::ReadOutcome> {
        session_fs::OsStorage.read(path, limit)
    }
    fn list(&self, dir: &Path, sizes: bool) -> std::io::Result<Vec<session_fs::Entry>> {
        session_fs::OsStorage.list(dir, sizes)
    }
    fn lock(
        &self,
        path: &Path,
        mode: session_fs::LockMode,
        wait: bool,
    ) -> std::io::Result<Option<Box<dyn session_fs::HeldLock>>> {
        let session_lock = path.file_name().is_some_and(|n| n == "session-21.lock");
        if session_lock && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            std::fs::write(&self.file, &self.bytes)?;
        }
        session_fs::OsStorage.lock(path, mode, wait)
    }
    fn kind(&self, path: &Path) -> std::io::Result<Option<session_fs::EntryKind>> {
        session_fs::OsStorage.kind(path)
    }
    fn set_mode(&self, path: &Path, mode: u32) -> std::io::Result<()> {
        session_fs::OsStorage.set_mode(path, mode)
    }
}

#[test]
fn a_file_changed_between_the_read_and_the_lock_is_migrated_as_it_is_now() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixtures(tmp.path(), &["v1/session-21.json"]);
    let file = tmp.path().join("session-21.json");
    let mut changed: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    changed["lisIP"] = serde_json::json!("10.9.9.9");
    let storage = std::sync::Arc::new(ChangedUnderfoot {
        file: file.clone(),
        bytes: serde_json::to_vec(&changed).unwrap(),
        armed: std::sync::atomic::AtomicBool::new(true),
        full_for: None,
    });
    let store = SessionStore::new(
        Store::options()
            .storage(storage.clone())
            .open(tmp.path())
            .unwrap(),
        DecodeOptions::default(),
    );
    let report = store.migrate(&MigrateOptions::default(), &no_progress).unwrap();
    assert_eq!(report.migrated, 1);
    assert!(
        !storage.armed.load(std::sync::atomic::Ordering::SeqCst),
        "the change was made"
    );
    let now = decode(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(now.from, SchemaVersion::CURRENT);
    assert_eq!(
        now.session.lis_ip.as_deref(),
        Some("10.9.9.9"),
        "the other writer's change survives"
    );
}

#[test]
fn a_file_the_run_cannot_write_is_counted_named_and_left_as_it_was_and_the_rest_migrate() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixtures(tmp.path(), &["v1/session-21.json", "v1/session-23.json"]);
    let original = std::fs::read(tmp.path().join("session-21.json")).unwrap();
    let storage = std::sync::Arc::new(ChangedUnderfoot {
        file: tmp.path().join("unused"),
        bytes: Vec::new(),
        armed: std::sync::atomic::AtomicBool::new(false),
        full_for: Some("session-21"),
    });
    let store = SessionStore::new(
        Store::options().storage(storage).open(tmp.path()).unwrap(),
        DecodeOptions::default(),
    );
    let report = store.migrate(&MigrateOptions::default(), &no_progress).unwrap();
    assert_eq!((report.migrated, report.failed), (1, 1), "{report:?}");
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].file, "session-21.json");
    assert_eq!(
        std::fs::read(tmp.path().join("session-21.json")).unwrap(),
        original
    );
    let other = decode(&std::fs::read(tmp.path().join("session-23.json")).unwrap()).unwrap();
    assert_eq!(other.from, SchemaVersion::CURRENT);
    assert!(
        report.backup_run.is_some(),
        "a run that migrated a file names its backups"
    );
}

#[test]
fn only_a_run_that_migrated_something_names_a_backup_run() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixtures(tmp.path(), &["v1/session-21.json"]);
    let store = SessionStore::new(Store::open(tmp.path()).unwrap(), DecodeOptions::default());
    let first = store.migrate(&MigrateOptions::default(), &no_progress).unwrap();
    assert_eq!(first.migrated, 1);
    let run = first.backup_run.expect("the run that migrated names its backups");
    assert!(
        store
            .fs()
            .maintenance()
            .backup_runs()
            .unwrap()
            .iter()
            .any(|r| r.to_string() == run),
        "{run}"
    );
    let second = store.migrate(&MigrateOptions::default(), &no_progress).unwrap();
    assert_eq!((second.migrated, second.up_to_date), (0, 1));
    assert!(second.backup_run.is_none(), "nothing migrated, no backup run");
}
