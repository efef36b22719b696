//! The store-wide run: upgrade every outdated session, keep the originals, undo on demand.

use std::sync::atomic::{AtomicUsize, Ordering};

use session_fs::maintenance::BackupRun;
use session_fs::{FsError, Store};
use session_model::SessionId;

use crate::codec::{DecodeError, DecodeOptions};
use crate::schema::{Document, Schema};
use crate::upgrade::{Files, Upgrade};

/// How to run [`migrate_store`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MigrateOptions {
    /// Read and decode everything, report what would change, write nothing at all.
    pub dry_run: bool,
    /// Worker threads (the run is I/O- and parse-bound); at least 1.
    pub threads: usize,
    /// Only these sessions (start-up passes the outdated ones recovery already found,
    /// so the store is not read twice); `None`: every live session.
    pub only: Option<Vec<SessionId>>,
    /// The backup run to keep the originals in; `None`: a new one. Start-up's second
    /// try at the files its first pass could not upgrade continues that pass's run, so
    /// one rollback undoes the whole start-up.
    pub run: Option<BackupRun>,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            only: None,
            run: None,
        }
    }
}

impl MigrateOptions {
    /// See [`MigrateOptions::dry_run`].
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// See [`MigrateOptions::only`].
    pub fn only(mut self, ids: Vec<SessionId>) -> Self {
        self.only = Some(ids);
        self
    }

    /// See [`MigrateOptions::run`].
    pub fn run(mut self, run: BackupRun) -> Self {
        self.run = Some(run);
        self
    }

    /// See [`MigrateOptions::threads`].
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }
}

/// A file the run could not migrate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// The file name.
    pub file: String,
    /// Why (recovery will quarantine it).
    pub problem: String,
}

/// The outcome of [`migrate_store`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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

/// Upgrades every outdated live session of `fs` to `S`'s last version, in parallel.
///
/// Each file is migrated under its session lock: its original bytes are kept in
/// `.backup/<run>/` (durably, first), then the upgraded document is saved through the
/// store's durable write. A run killed at any moment leaves every session either fully
/// old or fully new; running again finishes the job. One file that cannot be read or
/// written is reported in the report's failures and the run goes on.
/// `progress(done, total)` is called after each file. `decode` are the options every
/// read applies (the typed store passes its own, so that legacy files upgrade alike).
/// `session_store::SessionStore::migrate` is this with the store's own options.
pub fn migrate_store<S: Schema>(
    fs: &Store,
    decode: &DecodeOptions,
    options: &MigrateOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<MigrateReport, FsError> {
    let ids = match &options.only {
        Some(ids) => ids.clone(),
        None => fs.list()?,
    };
    let mut upgrade = Upgrade::<S>::new(fs, decode).dry_run(options.dry_run);
    if let Some(run) = &options.run {
        upgrade = upgrade.in_run(run.clone());
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| {
                while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                    upgrade.file(id);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, ids.len());
                }
            });
        }
    });
    let report = upgrade.finish();
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

/// How to run [`rollback_store`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RollbackOptions {
    /// The backup run to restore; the latest that still holds originals when `None`.
    pub run: Option<BackupRun>,
    /// Also restore files changed since the run (keeping each newer copy in a new
    /// backup run first). Even so, a file whose copy records a delivery the original
    /// lacks is never restored, and a deleted session is never brought back.
    pub force: bool,
}

impl RollbackOptions {
    /// Restores this run instead of the latest.
    pub fn run(mut self, run: BackupRun) -> Self {
        self.run = Some(run);
        self
    }

    /// See [`RollbackOptions::force`].
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

/// A file a rollback left as it is, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRestored {
    /// The file name.
    pub file: String,
    /// Why it was left.
    pub reason: String,
}

/// The outcome of [`rollback_store`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RollbackReport {
    /// The backup run that was restored.
    pub run: String,
    /// Files put back as they were before that run.
    pub restored: usize,
    /// Files changed since the run (saved again, delivered, deleted): left as they are.
    pub not_restored: Vec<NotRestored>,
    /// With `force`, the backup run now holding the newer copies that were replaced.
    pub kept_run: Option<String>,
}

/// Why a rollback could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackError {
    /// There is no backup run to restore.
    #[error("no migration backups in this store: nothing to roll back")]
    NothingToRollBack,
    /// Rollback needs the store to itself (no daemon, no other writer).
    #[error("rollback needs the store to itself: open it exclusively (is `sessionctl run` active?)")]
    NotExclusive,
    /// The filesystem failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// How the live copy compares with what the run made of the original.
enum Since {
    /// Exactly what the migration wrote (revision and save time aside).
    Unchanged,
    /// Saved again since, with nothing delivered that the original lacks.
    Changed(String),
    /// Never restored: a delivery would be lost, the session was deleted, a newer build wrote it.
    Keep(String),
}

fn since_the_run<S: Schema>(
    typed: &Files<'_, S>,
    id: &SessionId,
    original: &[u8],
    live: Option<&[u8]>,
) -> Since {
    let Some(live) = live else {
        return Since::Keep("deleted since the migration (by cleanup or an operator); left deleted".into());
    };
    let live = match typed.decode(id, live) {
        Ok(decoded) => decoded.session,
        Err(DecodeError::NewerVersion { .. }) => {
            return Since::Keep("rewritten by a newer build since the migration".into());
        }
        Err(e) => return Since::Changed(format!("does not decode any more ({e})")),
    };
    let Ok(mut made) = typed.decode(id, original).map(|d| d.session) else {
        return Since::Keep("the original does not decode".into());
    };
    let (revision, saved_at) = live.saved();
    made.stamp(revision, saved_at);
    if made == live {
        return Since::Unchanged;
    }
    let (made, live) = (made.submission(), live.submission());
    let deliveries =
        |s: &session_model::Submission| s.earlier_deliveries.len() + usize::from(s.submitted_at.is_some());
    if deliveries(live) > deliveries(made) || (live.status.is_settled() && !made.status.is_settled()) {
        return Since::Keep(format!(
            "{} since the migration; restoring the original would lose that",
            live.status
        ));
    }
    Since::Changed("saved again since the migration".into())
}

/// Restores the files a migration run changed (the latest run unless told otherwise),
/// putting each original back in place, and only where that loses nothing.
///
/// Needs an exclusive store handle: a daemon delivering meanwhile would race it. A file
/// exactly as the run left it is restored (its migrated copy goes to the trash: it can
/// be made again). Any other is listed in [`RollbackReport::not_restored`]; with
/// [`RollbackOptions::force`], changed files are restored too, each newer copy kept
/// first in a new backup run. A copy that records a delivery the original lacks, a
/// deleted session and a newer build's file are never restored.
pub fn rollback_store<S: Schema>(
    fs: &Store,
    decode: &DecodeOptions,
    options: &RollbackOptions,
) -> Result<RollbackReport, RollbackError> {
    let typed = &Files::<S>::new(fs, decode);
    let store = typed.fs();
    if store.access() != session_fs::Access::Exclusive {
        return Err(RollbackError::NotExclusive);
    }
    let store = store.maintenance();
    let run = match &options.run {
        Some(run) => run.clone(),
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
    let mut report = RollbackReport {
        run: run.to_string(),
        restored: 0,
        not_restored: Vec::new(),
        kept_run: None,
    };
    let mut kept_run: Option<BackupRun> = None;
    for id in store.backup_entries(&run)? {
        let Some(original) = store.read_backup(&run, &id)? else {
            continue;
        };
        let mut guard = typed.fs().lock(&id)?;
        let live = guard.read()?;
        match since_the_run(typed, &id, &original, live.as_deref()) {
            Since::Unchanged => {}
            Since::Changed(reason) if !options.force => {
                report.not_restored.push(NotRestored {
                    file: id.file_name(),
                    reason,
                });
                continue;
            }
            Since::Changed(_) => {
                let kept_run = kept_run.get_or_insert_with(|| store.new_backup_run());
                guard.keep_backup(kept_run)?;
            }
            Since::Keep(reason) => {
                report.not_restored.push(NotRestored {
                    file: id.file_name(),
                    reason,
                });
                continue;
            }
        }
        if guard.restore_backup(&run)? {
            report.restored += 1;
        }
    }
    report.kept_run = kept_run.map(|run| run.to_string());
    tracing::info!(%run, restored = report.restored, not_restored = report.not_restored.len(), "migration rolled back");
    Ok(report)
}
