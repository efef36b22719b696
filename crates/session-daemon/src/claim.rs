//! Start-up: the role, recovery and migration in one pass, a second try at what it could not upgrade.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use session_fs::maintenance::{BackupRun, Role};
use session_fs::{FsError, HeldLock, Store};
use session_model::SessionId;
use session_recovery::{RecoveryError, RecoveryReport};
use session_store::{DecodeOptions, Decoded, MigrateOptions, MigrateReport, SessionStore};
use session_workers::submit::DeliveryIndex;

/// The state file naming the process that holds the daemon role.
const HOLDER: &str = "daemon.holder";

/// Why the daemon could not start. Each names the step and the store's own error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// Opening the store directory failed.
    #[error("cannot open the store: {0}")]
    Open(#[source] FsError),
    /// The store directory's mode could not be tightened.
    #[error("cannot secure the store: {0}")]
    Secure(#[source] FsError),
    /// The daemon role's lock could not be taken (other than by another daemon).
    #[error("cannot lock the store: {0}")]
    Lock(#[source] FsError),
    /// Another daemon serves this store.
    #[error("{} is already served by {holder}", dir.display())]
    AlreadyServed {
        /// The store directory.
        dir: PathBuf,
        /// Who holds it, as that process wrote it.
        holder: String,
    },
    /// Writing the holder's name failed.
    #[error("cannot write to the store: {0}")]
    Write(#[source] FsError),
    /// The exclusive handle recovery needs could not be opened.
    #[error("cannot open the store for recovery: {0}")]
    Exclusive(#[source] FsError),
    /// Recovery failed.
    #[error("recovery: {0}")]
    Recovery(#[source] RecoveryError),
    /// Migration failed as a whole (single files that fail are reported, not fatal).
    #[error("migration: {0}")]
    Migration(#[source] FsError),
    /// The submission worker could not start.
    #[error("submission: {0}")]
    Submission(#[source] session_workers::submit::SubmitError),
}

/// What start-up is doing, for a page that answers meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Recovery's pass over every file, before it has upgraded any.
    Recovering,
    /// Upgrading outdated files: recovery's pass once it has upgraded one (its `done`
    /// and `total` still count the files read), or the second try at the few it could
    /// not upgrade.
    Migrating,
}

impl Phase {
    /// `recovering` or `migrating`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Recovering => "recovering",
            Phase::Migrating => "migrating",
        }
    }
}

/// How far a start-up phase is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Sessions done so far in it.
    pub done: usize,
    /// Sessions it has in all, when known (recovery knows it once it has listed the
    /// live files).
    pub total: Option<usize>,
}

/// What recovery's one pass learned.
#[derive(Debug)]
#[non_exhaustive]
pub struct Recovered {
    /// Every session's delivery state: the submission worker starts from it.
    pub delivery: DeliveryIndex,
    /// The sessions still in an older version: the pass upgrades each outdated file as
    /// it reads it, and these are the ones it could not (each in `upgraded`'s
    /// failures), for [`Claimed::migrate`] to try once more.
    pub outdated: Vec<SessionId>,
    /// What recovery did.
    pub report: RecoveryReport,
    /// What the pass's upgrading of outdated files did.
    pub upgraded: MigrateReport,
}

/// A store whose daemon role this process holds (until this is dropped).
pub struct Claimed {
    dir: PathBuf,
    decode: DecodeOptions,
    /// The backup run of recovery's upgrades, which [`Claimed::migrate`] continues.
    upgrade_run: Mutex<Option<BackupRun>>,
    pub(crate) role: Box<dyn HeldLock>,
}

impl std::fmt::Debug for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Claimed {
    /// Opens the store at `dir` (tightening its mode to 0700 if others could read it),
    /// takes its daemon role and records `holder` (with this process's id and start
    /// time) for the next daemon's refusal to name. `decode` are the options of every
    /// read from then on.
    pub fn claim(
        dir: impl Into<PathBuf>,
        decode: DecodeOptions,
        holder: &str,
    ) -> Result<Claimed, DaemonError> {
        let dir = dir.into();
        let shared = Store::open(&dir).map_err(DaemonError::Open)?;
        if let Some(was) = shared.secure_dir().map_err(DaemonError::Secure)? {
            tracing::warn!(dir = %dir.display(), was = format!("{was:o}"), "the store directory was open to others; now 0700");
        }
        let Some(role) = shared
            .maintenance()
            .try_lock_role(Role::Daemon)
            .map_err(DaemonError::Lock)?
        else {
            let holder = shared
                .read_state(HOLDER)
                .ok()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|| "another process".into());
            return Err(DaemonError::AlreadyServed { dir, holder });
        };
        let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let holder = format!("{holder} (pid {}, started {since})", std::process::id());
        shared
            .write_state(HOLDER, holder.as_bytes())
            .map_err(DaemonError::Write)?;
        Ok(Claimed {
            dir,
            decode,
            upgrade_run: Mutex::new(None),
            role,
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Recovery, once, on an exclusive handle (after waiting for other processes to let
    /// the store go), upgrading every outdated file as it reads it
    /// ([`session_recovery::recover_upgrading_summarized`]): `visit` sees every session
    /// as its file is afterwards, on the thread that read it (several at once: each
    /// session is let go by the thread that made it), and `progress` is told every 500
    /// files.
    pub fn recover(
        &self,
        visit: impl Fn(&SessionId, &Decoded) + Sync,
        progress: impl Fn(Progress),
    ) -> Result<Recovered, DaemonError> {
        let exclusive = match Store::options().exclusive().no_wait().open(&self.dir) {
            Err(FsError::Busy { .. }) => {
                tracing::info!("waiting for other sessionctl processes to release the store");
                Store::options().exclusive().open(&self.dir)
            }
            other => other,
        }
        .map_err(DaemonError::Exclusive)?;
        let delivery = std::sync::Mutex::new(DeliveryIndex::new());
        let mut outdated = Vec::new();
        let mut read = 0usize;
        let total = std::cell::Cell::new(None);
        let typed = SessionStore::new(exclusive, self.decode);
        let upgrade = typed.upgrade();
        let reading = |files| total.set(Some(files));
        // On the reading threads: what the daemon keeps of each session.
        let summarize = |id: &SessionId, decoded: Decoded| {
            // An index of candidates keeps no invariant a panic could break.
            let mut candidates = delivery.lock().unwrap_or_else(|p| p.into_inner());
            candidates.observe(&decoded.session);
            drop(candidates);
            visit(id, &decoded);
            decoded.from.is_outdated()
        };
        let report = session_recovery::recover_upgrading_summarized(
            &typed,
            &upgrade,
            reading,
            summarize,
            |id, is_outdated| {
                read += 1;
                if read.is_multiple_of(500) {
                    // Upgrades take most of a legacy store's pass: once one is made, say so.
                    progress(Progress {
                        phase: if upgrade.migrated() > 0 {
                            Phase::Migrating
                        } else {
                            Phase::Recovering
                        },
                        done: read,
                        total: total.get(),
                    });
                }
                if is_outdated {
                    outdated.push(id);
                }
            },
        )
        .map_err(DaemonError::Recovery)?;
        *self.upgrade_run.lock().unwrap_or_else(|e| e.into_inner()) = Some(upgrade.run().clone());
        let upgraded = upgrade.finish();
        if upgraded.migrated + upgraded.failed > 0 {
            tracing::info!(
                migrated = upgraded.migrated,
                failed = upgraded.failed,
                "outdated sessions upgraded as recovery read them"
            );
        }
        Ok(Recovered {
            delivery: delivery.into_inner().unwrap_or_else(|p| p.into_inner()),
            outdated,
            report,
            upgraded,
        })
    }

    /// Migrates `outdated` (what [`Claimed::recover`] could not upgrade), in the backup
    /// run of recovery's upgrades, then hands back the shared store the workers use.
    pub fn migrate(
        &self,
        outdated: Vec<SessionId>,
        progress: impl Fn(Progress) + Sync,
    ) -> Result<SessionStore, DaemonError> {
        let store = SessionStore::new(Store::open(&self.dir).map_err(DaemonError::Open)?, self.decode);
        if !outdated.is_empty() {
            let mut options = MigrateOptions::default().only(outdated);
            if let Some(run) = self.upgrade_run.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                options = options.run(run);
            }
            store
                .migrate(&options, &|done, total| {
                    progress(Progress {
                        phase: Phase::Migrating,
                        done,
                        total: Some(total),
                    })
                })
                .map_err(DaemonError::Migration)?;
        }
        Ok(store)
    }
}
