//! One migration run, fed file by file from any thread: what [`migrate_store`] runs on
//! its workers, and what start-up feeds from recovery's pass, which has decoded every
//! file already.
//!
//! [`migrate_store`]: crate::migrate_store

use std::marker::PhantomData;
use std::sync::Mutex;

use session_fs::maintenance::BackupRun;
use session_fs::{FsError, Store};
use session_model::SessionId;

use crate::codec::{Chained, DecodeError, DecodeOptions, decode_stored_as, stamp_and_encode};
use crate::run::{Failure, MigrateReport};
use crate::schema::{Document, Schema};

/// A store's files read through a schema: what a run decodes and rewrites.
pub(crate) struct Files<'a, S: Schema> {
    fs: &'a Store,
    decode: &'a DecodeOptions,
    schema: PhantomData<fn() -> S>,
}

impl<'a, S: Schema> Files<'a, S> {
    pub(crate) fn new(fs: &'a Store, decode: &'a DecodeOptions) -> Self {
        Files {
            fs,
            decode,
            schema: PhantomData,
        }
    }

    pub(crate) fn fs(&self) -> &'a Store {
        self.fs
    }

    pub(crate) fn decode(&self, id: &SessionId, bytes: &[u8]) -> Result<Chained<S::Document>, DecodeError> {
        decode_stored_as::<S>(id, bytes, self.decode)
    }
}

enum Outcome {
    Migrated,
    UpToDate,
    Skipped,
    Failed(String),
    Gone,
}

/// A file's session, decoded, or the outcome that leaves the file alone (gone, written
/// by a newer build, damaged).
fn judge<S: Schema>(
    store: &Files<'_, S>,
    id: &SessionId,
    bytes: Option<&[u8]>,
) -> Result<Chained<S::Document>, Outcome> {
    let bytes = bytes.ok_or(Outcome::Gone)?;
    match store.decode(id, bytes) {
        Ok(decoded) => Ok(decoded),
        Err(DecodeError::NewerVersion { .. }) => Err(Outcome::Skipped),
        Err(e) => Err(Outcome::Failed(e.to_string())),
    }
}

/// Outdated for this schema: read from anything but the version its chain ends in.
fn is_outdated<S: Schema>(decoded: &Chained<S::Document>) -> bool {
    decoded.from != <S::Document as session_model::Version>::SCHEMA
}

/// A migration run: one backup run for the originals and one report, fed one file at a
/// time from any number of threads.
///
/// [`Upgrade::file`] reads and decodes a file itself ([`migrate_store`] calls it on its
/// workers); [`Upgrade::decoded`] takes a file someone has just read and decoded, so a
/// caller that reads every file anyway (start-up's recovery) migrates in the same pass
/// and the store is read and decoded once. Either way each file is upgraded under its
/// session lock, its original kept durably in `.backup/<run>/` first.
///
/// ```
/// use session_fs::Store;
/// use session_migrate::{Current, DecodeOptions, Upgrade, decode_stored};
///
/// let dir = tempfile::tempdir().unwrap();
/// let legacy = br#"{"id": "session-9", "startTime": 1000, "isComplete": true, "messages": []}"#;
/// std::fs::write(dir.path().join("session-9.json"), legacy).unwrap();
/// let store = Store::open(dir.path()).unwrap();
/// let id = "session-9".parse().unwrap();
/// let seen = store.read(&id).unwrap().unwrap();
/// let options = DecodeOptions::default();
/// let mut decoded = decode_stored(&id, &seen, &options).unwrap();
///
/// let upgrade = Upgrade::<Current>::new(&store, &options);
/// assert!(upgrade.decoded(&id, &seen, &mut decoded));
/// assert_eq!(upgrade.finish().migrated, 1);
/// let now = store.read(&id).unwrap().unwrap();
/// assert_eq!(decode_stored(&id, &now, &options).unwrap(), decoded);
/// ```
///
/// [`migrate_store`]: crate::migrate_store
pub struct Upgrade<'a, S: Schema> {
    files: Files<'a, S>,
    run: BackupRun,
    dry_run: bool,
    report: Mutex<MigrateReport>,
}

impl<S: Schema> std::fmt::Debug for Upgrade<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrade")
            .field("run", &self.run)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

impl<'a, S: Schema> Upgrade<'a, S> {
    /// A run on `fs`, reading with `decode`; its backup run is named now and created
    /// with the first original it keeps.
    pub fn new(fs: &'a Store, decode: &'a DecodeOptions) -> Self {
        Upgrade {
            files: Files::new(fs, decode),
            run: fs.maintenance().new_backup_run(),
            dry_run: false,
            report: Mutex::new(MigrateReport::default()),
        }
    }

    /// Decides and counts, writes nothing.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Keeps the originals in `run` (an earlier run's, continued) instead of a new one.
    pub fn in_run(mut self, run: BackupRun) -> Self {
        self.run = run;
        self
    }

    /// The backup run the originals are kept in.
    pub fn run(&self) -> &BackupRun {
        &self.run
    }

    /// Reads `id`'s file and upgrades it when it is outdated.
    pub fn file(&self, id: &SessionId) {
        let outcome = self.read_and_upgrade(id);
        self.count(id, outcome);
    }

    /// Upgrades `id`, whose file held `seen` when it was decoded into `decoded`, without
    /// decoding it again (unless the file changed since). `true` when the file is in the
    /// current version now (upgraded, or current already, whoever made it so), and then
    /// `decoded` is what the file holds: an upgraded one carries the new save's stamp
    /// and `from` the current version. `false` when the file is left as it is (a
    /// failure, counted in the report, or a dry run), or is gone or a newer build's
    /// since it was read; `decoded` is then as given, or the file as it was found.
    pub fn decoded(&self, id: &SessionId, seen: &[u8], decoded: &mut Chained<S::Document>) -> bool {
        if !is_outdated::<S>(decoded) {
            self.count(id, Ok(Outcome::UpToDate));
            return true;
        }
        if self.dry_run {
            self.count(id, Ok(Outcome::Migrated));
            return false;
        }
        let outcome = self.upgrade_locked(id, seen, decoded);
        let current = matches!(outcome, Ok(Outcome::Migrated | Outcome::UpToDate));
        self.count(id, outcome);
        current
    }

    /// How many files this run has upgraded so far (for a progress report).
    pub fn migrated(&self) -> usize {
        self.report.lock().unwrap_or_else(|e| e.into_inner()).migrated
    }

    /// The report of everything fed to this run.
    pub fn finish(self) -> MigrateReport {
        let mut report = self.report.into_inner().unwrap_or_else(|e| e.into_inner());
        report.failures.sort_by(|a, b| a.file.cmp(&b.file));
        if report.migrated > 0 && !self.dry_run {
            report.backup_run = Some(self.run.to_string());
        }
        report
    }

    fn read_and_upgrade(&self, id: &SessionId) -> Result<Outcome, FsError> {
        // Deciding needs no lock (whole-file renames keep a plain read consistent), so the
        // files that stay as they are cost one read and leave no lock file behind.
        let Some(seen) = self.files.fs().read(id)? else {
            return Ok(Outcome::Gone);
        };
        let mut decoded = match judge(&self.files, id, Some(&seen)) {
            Err(outcome) => return Ok(outcome),
            Ok(decoded) if !is_outdated::<S>(&decoded) => return Ok(Outcome::UpToDate),
            Ok(_) if self.dry_run => return Ok(Outcome::Migrated),
            Ok(decoded) => decoded,
        };
        self.upgrade_locked(id, &seen, &mut decoded)
    }

    /// The write: under the lock, judged again only if another process changed the
    /// file since `seen`; the original kept, then the upgrade saved.
    fn upgrade_locked(
        &self,
        id: &SessionId,
        seen: &[u8],
        decoded: &mut Chained<S::Document>,
    ) -> Result<Outcome, FsError> {
        let mut guard = self.files.fs().lock(id)?;
        let current = guard.read()?;
        if current.as_deref() != Some(seen) {
            *decoded = match judge(&self.files, id, current.as_deref()) {
                Err(outcome) => return Ok(outcome),
                Ok(changed) => changed,
            };
            if !is_outdated::<S>(decoded) {
                return Ok(Outcome::UpToDate);
            }
        }
        // The original first, durably: a kill after this point leaves it recoverable.
        guard.keep_backup(&self.run)?;
        let before = decoded.session.saved();
        match guard.save(|stamp| stamp_and_encode::<S>(&mut decoded.session, stamp)) {
            Ok(_) => {
                decoded.from = <S::Document as session_model::Version>::SCHEMA;
                Ok(Outcome::Migrated)
            }
            Err(e) => {
                // The stamp names a save that did not happen.
                decoded.session.stamp(before.0, before.1);
                Err(e)
            }
        }
    }

    fn count(&self, id: &SessionId, outcome: Result<Outcome, FsError>) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        let problem = match outcome {
            Ok(Outcome::Migrated) => {
                report.migrated += 1;
                return;
            }
            Ok(Outcome::UpToDate) => {
                report.up_to_date += 1;
                return;
            }
            Ok(Outcome::Skipped) => {
                report.skipped += 1;
                return;
            }
            Ok(Outcome::Gone) => return,
            Ok(Outcome::Failed(problem)) => {
                tracing::warn!(file = %id.file_name(), "migration left an undecodable file for recovery");
                problem
            }
            // One file that cannot be read or written never stops the run: it stays as
            // it was (the write protocol guarantees it), reported.
            Err(e) => {
                tracing::warn!(file = %id.file_name(), error = %e, "migration could not handle a file");
                e.to_string()
            }
        };
        report.failed += 1;
        report.failures.push(Failure {
            file: id.file_name(),
            problem,
        });
    }
}
