//! `Upgrade::decoded`: a file someone has just read and decoded is upgraded without a
//! second decode, and afterwards the caller's copy is what the file holds.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use session_fs::{Entry, EntryKind, HeldLock, LockMode, OsStorage, ReadOutcome, Storage, Store, WriteFile};
use session_migrate::{Current, DecodeOptions, Decoded, SchemaVersion, Upgrade, decode_stored};
use session_model::SessionId;

const OLD: &[u8] = br#"{"id": "s-1", "startTime": 1000, "isComplete": true, "messages": ["MSH|a"]}"#;
const OLD_CHANGED: &[u8] = br#"{"id": "s-1", "startTime": 2000, "isComplete": true, "messages": ["MSH|b"]}"#;

fn id() -> SessionId {
    "s-1".parse().unwrap()
}

/// A store holding `s-1.json` with `bytes`, that file read and decoded.
fn read_and_decoded(dir: &Path, bytes: &[u8]) -> (Store, Vec<u8>, Decoded) {
    std::fs::write(dir.join("s-1.json"), bytes).unwrap();
    let store = Store::open(dir).unwrap();
    let seen = store.read(&id()).unwrap().unwrap();
    let decoded = decoded_of(&seen);
    (store, seen, decoded)
}

fn decoded_of(bytes: &[u8]) -> Decoded {
    decode_stored(&id(), bytes, &DecodeOptions::default()).unwrap()
}

fn live(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("s-1.json")).unwrap()
}

/// Every file under `.backup/`, with its bytes.
fn backups(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(runs) = std::fs::read_dir(dir.join(".backup")) else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    for run in runs {
        let run = run.unwrap();
        for file in std::fs::read_dir(run.path()).unwrap() {
            let file = file.unwrap();
            kept.push((
                format!(
                    "{}/{}",
                    run.file_name().to_string_lossy(),
                    file.file_name().to_string_lossy()
                ),
                std::fs::read(file.path()).unwrap(),
            ));
        }
    }
    kept.sort();
    kept
}

#[test]
fn an_outdated_session_is_upgraded_and_the_callers_copy_is_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen, mut decoded) = read_and_decoded(dir.path(), OLD);
    let options = DecodeOptions::default();
    let upgrade = Upgrade::<Current>::new(&store, &options);
    let run = upgrade.run().to_string();

    assert_eq!(upgrade.migrated(), 0);
    assert!(upgrade.decoded(&id(), &seen, &mut decoded));
    assert_eq!(
        upgrade.migrated(),
        1,
        "counted as it happens, for a progress report"
    );
    assert_eq!(decoded.from, SchemaVersion::CURRENT);
    assert_eq!(decoded_of(&live(dir.path())), decoded, "stamp and all");
    assert_eq!(decoded.session.metadata.revision, 1);
    assert_eq!(backups(dir.path()), [(format!("{run}/s-1.json"), OLD.to_vec())]);
    let report = upgrade.finish();
    assert_eq!((report.migrated, report.failed), (1, 0));
    assert_eq!(report.backup_run, Some(run));
}

#[test]
fn a_file_changed_since_it_was_read_is_judged_and_upgraded_as_it_is_now() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen, mut decoded) = read_and_decoded(dir.path(), OLD);
    std::fs::write(dir.path().join("s-1.json"), OLD_CHANGED).unwrap();
    let options = DecodeOptions::default();
    let upgrade = Upgrade::<Current>::new(&store, &options);

    assert!(upgrade.decoded(&id(), &seen, &mut decoded));
    assert_eq!(
        decoded.session.start_time, 2000,
        "the file's content, not the stale copy's"
    );
    assert_eq!(decoded_of(&live(dir.path())), decoded);
    let kept = backups(dir.path());
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].1, OLD_CHANGED,
        "the original kept is the file that was replaced"
    );
}

#[test]
fn a_file_upgraded_by_someone_else_since_it_was_read_is_current_and_the_copy_is_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen, mut decoded) = read_and_decoded(dir.path(), OLD);
    let options = DecodeOptions::default();
    let meanwhile = Upgrade::<Current>::new(&store, &options);
    meanwhile.file(&id());
    assert_eq!(meanwhile.finish().migrated, 1);
    let upgraded = live(dir.path());

    let upgrade = Upgrade::<Current>::new(&store, &options);
    assert!(upgrade.decoded(&id(), &seen, &mut decoded));
    assert_eq!(
        decoded,
        decoded_of(&upgraded),
        "the file as it is, not the stale reading"
    );
    assert_eq!(live(dir.path()), upgraded, "not written again");
    let report = upgrade.finish();
    assert_eq!((report.migrated, report.up_to_date), (0, 1));
    assert_eq!(
        backups(dir.path()).len(),
        1,
        "only the first run kept an original"
    );
}

#[test]
fn a_file_gone_or_made_newer_since_it_was_read_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen, mut decoded) = read_and_decoded(dir.path(), OLD);
    let options = DecodeOptions::default();
    let newer = br#"{"id": "s-1", "_metadata": {"version": "99.0.0"}}"#;
    std::fs::write(dir.path().join("s-1.json"), newer).unwrap();
    let upgrade = Upgrade::<Current>::new(&store, &options);
    assert!(!upgrade.decoded(&id(), &seen, &mut decoded));
    assert_eq!(live(dir.path()), newer, "a newer build's file is never touched");

    std::fs::remove_file(dir.path().join("s-1.json")).unwrap();
    assert!(!upgrade.decoded(&id(), &seen, &mut decoded));
    assert!(
        !dir.path().join("s-1.json").exists(),
        "a deleted session is not brought back"
    );
    assert_eq!(backups(dir.path()), []);
    let report = upgrade.finish();
    assert_eq!(
        (report.migrated, report.skipped, report.failed),
        (0, 1, 0),
        "{report:?}"
    );
    assert_eq!(report.backup_run, None);
}

#[test]
fn a_current_session_or_a_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen, mut decoded) = read_and_decoded(dir.path(), OLD);
    let options = DecodeOptions::default();
    let dry = Upgrade::<Current>::new(&store, &options).dry_run(true);
    let before = decoded.clone();
    assert!(
        !dry.decoded(&id(), &seen, &mut decoded),
        "still outdated after a dry run"
    );
    assert_eq!(decoded, before);
    assert_eq!(live(dir.path()), OLD);
    let report = dry.finish();
    assert_eq!((report.migrated, report.backup_run), (1, None));

    let upgrade = Upgrade::<Current>::new(&store, &options);
    assert!(upgrade.decoded(&id(), &seen, &mut decoded));
    let upgraded = live(dir.path());
    let mut again = decoded_of(&upgraded);
    let second = Upgrade::<Current>::new(&store, &options);
    assert!(second.decoded(&id(), &upgraded, &mut again), "current already");
    assert_eq!(live(dir.path()), upgraded, "not rewritten");
    let report = second.finish();
    assert_eq!((report.migrated, report.up_to_date), (0, 1));
    assert_eq!(backups(dir.path()).len(), 1, "no second original kept");
}

#[test]
fn an_upgrade_that_cannot_keep_the_original_leaves_the_file_and_the_copy_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen, mut decoded) = read_and_decoded(dir.path(), OLD);
    // Where the backups go is a file: no original can be kept, so nothing is replaced.
    std::fs::write(dir.path().join(".backup"), b"in the way").unwrap();
    let options = DecodeOptions::default();
    let upgrade = Upgrade::<Current>::new(&store, &options);
    let before = decoded.clone();
    assert!(!upgrade.decoded(&id(), &seen, &mut decoded));
    assert_eq!(decoded, before);
    assert_eq!(live(dir.path()), OLD);
    let report = upgrade.finish();
    assert_eq!(report.failed, 1);
    assert_eq!(report.failures[0].file, "s-1.json");
    assert!(
        report.failures[0].problem.contains(".backup"),
        "{:?}",
        report.failures
    );
}

/// The OS's storage, except that renaming a temp file over a live session fails: the
/// last step of a save, after the document was stamped and encoded.
#[derive(Debug)]
struct RenameFails {
    store_dir: PathBuf,
}

impl Storage for RenameFails {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        OsStorage.create_dir(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        OsStorage.create_new(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if to.parent() == Some(&self.store_dir) {
            return Err(io::Error::other("rename refused by the test"));
        }
        OsStorage.rename(from, to)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsStorage.hard_link(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        OsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsStorage.sync_dir(dir)
    }
    fn read(&self, path: &Path, limit: u64) -> io::Result<ReadOutcome> {
        OsStorage.read(path, limit)
    }
    fn list(&self, dir: &Path, sizes: bool) -> io::Result<Vec<Entry>> {
        OsStorage.list(dir, sizes)
    }
    fn lock(&self, path: &Path, mode: LockMode, wait: bool) -> io::Result<Option<Box<dyn HeldLock>>> {
        OsStorage.lock(path, mode, wait)
    }
    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        OsStorage.kind(path)
    }
    fn set_mode(&self, path: &Path, mode: u32) -> io::Result<()> {
        OsStorage.set_mode(path, mode)
    }
}

#[test]
fn a_save_that_fails_after_the_stamp_leaves_the_callers_copy_unstamped() {
    let dir = tempfile::tempdir().unwrap();
    let (_, seen, mut decoded) = read_and_decoded(dir.path(), OLD);
    let store = Store::options()
        .storage(Arc::new(RenameFails {
            store_dir: dir.path().to_path_buf(),
        }))
        .open(PathBuf::from(dir.path()))
        .unwrap();
    let options = DecodeOptions::default();
    let upgrade = Upgrade::<Current>::new(&store, &options);
    let before = decoded.clone();
    assert!(!upgrade.decoded(&id(), &seen, &mut decoded));
    assert_eq!(decoded, before, "no stamp of a save that did not happen");
    assert_eq!(live(dir.path()), OLD);
    assert_eq!(backups(dir.path()).len(), 1, "the original was kept first");
    let report = upgrade.finish();
    assert_eq!((report.migrated, report.failed), (0, 1));
}

#[test]
fn a_migration_told_its_run_keeps_its_originals_there() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen, mut decoded) = read_and_decoded(dir.path(), OLD);
    let other = String::from_utf8_lossy(OLD).replace("s-1", "s-2");
    std::fs::write(dir.path().join("s-2.json"), other).unwrap();
    let options = DecodeOptions::default();
    let first = Upgrade::<Current>::new(&store, &options);
    assert!(first.decoded(&id(), &seen, &mut decoded));
    let run = first.run().clone();
    let report = session_migrate::migrate_store::<Current>(
        &store,
        &options,
        &session_migrate::MigrateOptions::default()
            .only(vec!["s-2".parse().unwrap()])
            .run(run.clone()),
        &|_, _| {},
    )
    .unwrap();
    assert_eq!((report.migrated, report.backup_run), (1, Some(run.to_string())));
    let kept: Vec<String> = backups(dir.path()).into_iter().map(|(name, _)| name).collect();
    assert_eq!(kept, [format!("{run}/s-1.json"), format!("{run}/s-2.json")]);
}

#[test]
fn an_upgrade_shows_its_run_and_nothing_of_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen, mut decoded) = read_and_decoded(dir.path(), OLD);
    let options = DecodeOptions::default();
    let upgrade = Upgrade::<Current>::new(&store, &options).dry_run(true);
    upgrade.decoded(&id(), &seen, &mut decoded);
    let shown = format!("{upgrade:?}");
    assert!(shown.starts_with("Upgrade {"), "{shown}");
    assert!(shown.contains(upgrade.run().as_str()), "{shown}");
    assert!(shown.contains("dry_run: true"), "{shown}");
    assert!(!shown.contains("MSH"), "no message content: {shown}");
}
