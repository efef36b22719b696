//! The store-wide run: upgrade every outdated session, keep the originals, undo on demand.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use session_fs::{FsError, Store};
use session_model::SessionId;

use crate::codec::{DecodeError, DecodeOptions, Decoded, decode_stored};
use crate::stored::stamp_and_encode;

/// How to run [`migrate`].
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Read and decode everything, report what would change, write nothing at all.
    pub dry_run: bool,
    /// Worker threads (the run is I/O- and parse-bound); at least 1.
    pub threads: usize,
    /// Options for decoding legacy files.
    pub decode: DecodeOptions,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            decode: DecodeOptions::default(),
        }
    }
}

/// A file the run could not migrate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The file name.
    pub file: String,
    /// Why (recovery will quarantine it).
    pub problem: String,
}

/// The outcome of [`migrate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrateReport {
    /// Rewritten in the current version (or, in a dry run, would be).
    pub migrated: usize,
    /// Already current: left alone, not rewritten.
    pub up_to_date: usize,
    /// Newer versions: left byte for byte untouched.
    pub skipped: usize,
    /// Did not decode: left for recovery to quarantine.
    pub failed: usize,
    /// The files behind `failed`.
    pub failures: Vec<Failure>,
    /// The backup run holding the originals (none for a dry run or when nothing changed).
    pub backup_run: Option<String>,
}

enum Outcome {
    Migrated,
    UpToDate,
    Skipped,
    Failed(String),
    Gone,
}

/// What a file needs: its session to upgrade, or the outcome that leaves it alone.
fn plan(id: &SessionId, bytes: Option<&[u8]>, options: &DecodeOptions) -> Result<Decoded, Outcome> {
    let bytes = bytes.ok_or(Outcome::Gone)?;
    let decoded = match decode_stored(id, bytes, options) {
        Ok(decoded) => decoded,
        Err(DecodeError::NewerVersion { .. }) => return Err(Outcome::Skipped),
        Err(e) => return Err(Outcome::Failed(e.to_string())),
    };
    if decoded.from.is_outdated() {
        Ok(decoded)
    } else {
        Err(Outcome::UpToDate)
    }
}

fn migrate_one(
    store: &Store,
    id: &SessionId,
    options: &MigrateOptions,
    run: &str,
) -> Result<Outcome, FsError> {
    // Deciding needs no lock (whole-file renames keep a plain read consistent), so the
    // files that stay as they are cost one read and leave no lock file behind.
    let seen = store.read(id)?;
    let decoded = match plan(id, seen.as_deref(), &options.decode) {
        Err(outcome) => return Ok(outcome),
        Ok(_) if options.dry_run => return Ok(Outcome::Migrated),
        Ok(decoded) => decoded,
    };
    // Under the lock, judge again only if another process changed the file meanwhile.
    let mut guard = store.lock(id)?;
    let current = guard.read()?;
    let decoded = if current == seen {
        decoded
    } else {
        match plan(id, current.as_deref(), &options.decode) {
            Err(outcome) => return Ok(outcome),
            Ok(decoded) => decoded,
        }
    };
    // The original first, durably: a kill after this point leaves it recoverable.
    guard.keep_backup(run)?;
    let mut session = decoded.session;
    guard.save(|stamp| stamp_and_encode(&mut session, stamp))?;
    Ok(Outcome::Migrated)
}

/// Upgrades every outdated live session to the current version, in parallel.
///
/// Each file is migrated under its session lock: its original bytes are kept in
/// `.backup/<run>/` (durably, first), then the upgraded document is saved through the
/// store's durable write. A run killed at any moment leaves every session either fully
/// old or fully new; running again finishes the job. `progress(done, total)` is called
/// after each file.
pub fn migrate(
    store: &Store,
    options: &MigrateOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<MigrateReport, FsError> {
    let ids = store.list()?;
    let run = store.new_backup_run();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let report = Mutex::new(MigrateReport::default());
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| {
                while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let outcome = migrate_one(store, id, options, &run);
                    let mut report = report.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Ok(Outcome::Migrated) => report.migrated += 1,
                        Ok(Outcome::UpToDate) => report.up_to_date += 1,
                        Ok(Outcome::Skipped) => report.skipped += 1,
                        Ok(Outcome::Gone) => {}
                        Ok(Outcome::Failed(problem)) => {
                            tracing::warn!(file = %id.file_name(), "migration left an undecodable file for recovery");
                            report.failed += 1;
                            report.failures.push(Failure {
                                file: id.file_name(),
                                problem,
                            });
                        }
                        // One file that cannot be read or written never stops the run: it
                        // stays as it was (the write protocol guarantees it), reported.
                        Err(e) => {
                            tracing::warn!(file = %id.file_name(), error = %e, "migration could not handle a file");
                            report.failed += 1;
                            report.failures.push(Failure {
                                file: id.file_name(),
                                problem: e.to_string(),
                            });
                        }
                    }
                    drop(report);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, ids.len());
                }
            });
        }
    });
    let mut report = report.into_inner().unwrap_or_else(|e| e.into_inner());
    report.failures.sort_by(|a, b| a.file.cmp(&b.file));
    if report.migrated > 0 && !options.dry_run {
        report.backup_run = Some(run);
    }
    tracing::info!(
        migrated = report.migrated,
        up_to_date = report.up_to_date,
        skipped = report.skipped,
        failed = report.failed,
        dry_run = options.dry_run,
        "migration finished"
    );
    Ok(report)
}

/// The outcome of [`rollback`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackReport {
    /// The backup run that was restored.
    pub run: String,
    /// Files put back as they were before that run.
    pub restored: usize,
}

/// Why a rollback could not run.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// There is no backup run to restore.
    #[error("no migration backups in this store: nothing to roll back")]
    NothingToRollBack,
    /// The filesystem failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Restores exactly the files a migration run changed (the latest run unless `run` is
/// given), putting each original back in place; the copies they replace go to the trash.
pub fn rollback(store: &Store, run: Option<&str>) -> Result<RollbackReport, RollbackError> {
    let run = match run {
        Some(run) => run.to_owned(),
        // The latest run that still holds originals (a rolled-back run is empty).
        None => {
            let mut runs = store.backup_runs()?;
            loop {
                let run = runs.pop().ok_or(RollbackError::NothingToRollBack)?;
                if !store.backup_entries(&run)?.is_empty() {
                    break run;
                }
            }
        }
    };
    let mut restored = 0;
    for id in store.backup_entries(&run)? {
        if store.lock(&id)?.restore_backup(&run)? {
            restored += 1;
        }
    }
    tracing::info!(%run, restored, "migration rolled back");
    Ok(RollbackReport { run, restored })
}
