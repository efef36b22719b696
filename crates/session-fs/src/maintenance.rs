//! The store's maintenance hooks, meant for recovery, migration and cleanup.
//!
//! Everything a team needs to keep sessions is on [`Store`] (and the typed handle
//! above it); these calls move, promote, back up and purge files by name, and are only
//! for the crates that keep the store healthy: `session-recovery` (temp files,
//! quarantine), `session-migrate` (backups, rollback) and `session-workers` (purging
//! old trash and backups, the submitter role). Areas are typed: no call takes a path.

use std::ffi::{OsStr, OsString};

use session_model::SessionId;

use crate::error::FsError;
use crate::layout;
use crate::storage::{Entry, HeldLock};
use crate::store::{Aside, MovedFile, Scan, Store};

/// The sidecar (`<name>.why.json`) kept beside a quarantined file: which file, why,
/// when, and which component put it there. Every writer of `.quarantine/` uses this,
/// so the format is the same whoever quarantined the file.
pub fn quarantine_note(file: &str, reason: &str, by: &str) -> Vec<u8> {
    let note = serde_json::json!({
        "file": file,
        "reason": reason,
        "quarantinedAt": crate::now_ms(),
        "by": by,
    });
    serde_json::to_vec_pretty(&note).unwrap_or_default()
}

/// A store-wide role only one process holds at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// `sessionctl run`: one daemon per store.
    Daemon,
    /// The submission worker: one submitter per store.
    Submitter,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Daemon => "daemon",
            Role::Submitter => "submitter",
        }
    }
}

/// One migration run's backups, `.backup/<run>/`: named by the store, sorting by time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupRun {
    name: String,
}

impl BackupRun {
    /// The run a name denotes, if the store could have made it (`<ms>-<pid>-<ms>-<n>`).
    pub fn parse(name: &str) -> Option<BackupRun> {
        layout::parse_backup_run(name).map(|_| BackupRun {
            name: name.to_owned(),
        })
    }

    pub(crate) fn new(name: String) -> BackupRun {
        BackupRun { name }
    }

    /// Its directory name.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// When the run started, epoch milliseconds.
    pub fn started_at(&self) -> u64 {
        layout::parse_backup_run(&self.name).unwrap_or(0)
    }
}

impl std::fmt::Display for BackupRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// One of the store's areas.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Area {
    /// `.quarantine/`: damaged files and their sidecars; never purged.
    Quarantine,
    /// `.trash/`: deleted sessions and superseded copies, purged by age.
    Trash,
    /// `.backup/<run>/`: originals a migration run replaced, purged by age.
    Backup(BackupRun),
}

/// Its directory relative to the store (`.trash`, `.backup/<run>`...): how the store
/// finds it, and how messages name a file in it.
impl std::fmt::Display for Area {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Area::Quarantine => f.write_str(layout::QUARANTINE_DIR),
            Area::Trash => f.write_str(layout::TRASH_DIR),
            Area::Backup(run) => write!(f, "{}/{run}", layout::BACKUP_DIR),
        }
    }
}

/// A file in an area.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AreaEntry {
    /// Its name in the area.
    pub name: OsString,
    /// Its size in bytes.
    pub len: u64,
    /// When the store moved it there (trash and quarantine names carry it); `None` for
    /// a name the store did not make, which retention never touches.
    pub moved_at: Option<u64>,
}

/// The maintenance hooks of one store (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Maintenance<'a> {
    store: &'a Store,
}

impl Store {
    /// What the store's own tools need beyond sessions: recovery, migration, cleanup,
    /// and the daemon's and the CLI's views (scans for temps and odd names, roles, the
    /// live files' size).
    pub fn maintenance(&self) -> Maintenance<'_> {
        Maintenance { store: self }
    }
}

impl Maintenance<'_> {
    /// Removes the lock files (`.locks/<id>.lock`) of ids with no session, each under
    /// its own lock: what a crash between a deletion and its lock file's removal left,
    /// or a version that kept every lock file. Waits for whoever holds such an id's
    /// lock. The ids whose lock file went, sorted. An id that fails (an I/O error, its
    /// lock file swapped for a symlink) is kept for the next sweep, and the sweep goes
    /// on: the first such id is logged by name, any more as one count; only a `.locks/` that cannot be listed (or is not a
    /// directory of the store's) fails it.
    pub fn sweep_orphan_locks(&self) -> Result<Vec<SessionId>, FsError> {
        self.store.sweep_orphan_locks()
    }

    /// Live sessions, temp files and names that are not regular files.
    pub fn scan(&self) -> Result<Scan, FsError> {
        self.store.scan()
    }

    /// The bytes the live session files take (their sizes added up; one `lstat` each).
    pub fn live_bytes(&self) -> Result<u64, FsError> {
        let dir = self.store.dir();
        let entries = self
            .store
            .storage()
            .list(dir, true)
            .map_err(FsError::io(crate::error::Step::List, dir))?;
        Ok(entries
            .iter()
            .filter(|e| e.kind == crate::storage::EntryKind::File && live_session(&e.name).is_some())
            .map(|e| e.len)
            .sum())
    }

    /// Reads a file of the store directory by name (recovery reads temp files so).
    pub fn read_entry(&self, name: &OsString) -> Result<Option<Vec<u8>>, FsError> {
        self.store.read_entry(name)
    }

    /// Moves a file of the store directory into the quarantine or the trash, with an
    /// optional sidecar (`<name>.why.json`) written durably before the move.
    pub fn move_aside(
        &self,
        name: &OsString,
        area: &Area,
        sidecar: Option<&[u8]>,
    ) -> Result<MovedFile, FsError> {
        let aside = match area {
            Area::Quarantine => Aside::Quarantine,
            Area::Trash => Aside::Trash,
            Area::Backup(_) => {
                return Err(FsError::io(crate::error::Step::Rename, name)(
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "only migration puts files in a backup run",
                    ),
                ));
            }
        };
        self.store.move_aside(name, aside, sidecar)
    }

    /// Renames a temp file over `id`'s live file (recovery's promotion), durably.
    /// Needs an exclusive handle.
    pub fn promote_temp(&self, temp: &OsString, id: &SessionId) -> Result<(), FsError> {
        self.store.promote_temp(temp, id)
    }

    /// The backup runs, oldest first.
    pub fn backup_runs(&self) -> Result<Vec<BackupRun>, FsError> {
        Ok(self
            .store
            .backup_runs()?
            .into_iter()
            .map(BackupRun::new)
            .collect())
    }

    /// The sessions one backup run keeps.
    pub fn backup_entries(&self, run: &BackupRun) -> Result<Vec<SessionId>, FsError> {
        self.store.backup_entries(run.as_str())
    }

    /// The bytes a backup run keeps for `id`; `Ok(None)` when it keeps none.
    pub fn read_backup(&self, run: &BackupRun, id: &SessionId) -> Result<Option<Vec<u8>>, FsError> {
        self.store.read_backup(run.as_str(), id)
    }

    /// A new, empty backup run (its directory is made by the first backup kept in it).
    pub fn new_backup_run(&self) -> BackupRun {
        BackupRun::new(self.store.new_backup_run())
    }

    /// The files of an area, with their sizes (symlinks and directories skipped).
    pub fn list_area(&self, area: &Area) -> Result<Vec<AreaEntry>, FsError> {
        let entries = self.store.list_area(&area.to_string())?;
        Ok(entries
            .into_iter()
            .map(|Entry { name, len, .. }| {
                let moved_at = match area {
                    Area::Backup(_) => None,
                    _ => name
                        .to_str()
                        .and_then(layout::parse_aside_name)
                        .map(|n| n.moved_at),
                };
                AreaEntry { name, len, moved_at }
            })
            .collect())
    }

    /// Removes a file from the trash or a backup run for good (retention); the
    /// quarantine is never purged.
    pub fn purge(&self, area: &Area, name: &OsStr) -> Result<(), FsError> {
        self.store.purge_area_entry(&area.to_string(), &name.to_owned())
    }

    /// Takes a store-wide role without waiting: `Ok(None)` when another handle or
    /// process holds it.
    pub fn try_lock_role(&self, role: Role) -> Result<Option<Box<dyn HeldLock>>, FsError> {
        self.store.try_lock_role(role.name())
    }
}

/// The session a name in the store directory holds, if it is a live session's name
/// (`<id>.json`): for watchers of the directory.
pub fn live_session(name: &OsStr) -> Option<SessionId> {
    match layout::classify(name) {
        layout::EntryName::Live(id) => Some(id),
        _ => None,
    }
}

/// Whether `path` names something now (a symlink counts, and is not followed): for
/// watchers of the directory, whose events say what happened, not what is there.
pub fn exists_no_follow(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}
