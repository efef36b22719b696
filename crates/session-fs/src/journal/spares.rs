//! Spare journals: finished journals kept, emptied, for the next capture to write
//! instead of removing one file and creating another per session.
//!
//! A capture's journal lives for one session, so a relay that removed each journal
//! freed one inode per session. On ext4 without a journal every file creation then
//! skips each inode freed in the last five minutes (the kernel's `recently_deleted`
//! check reads its inode to tell), so creating a file grew dearer with the rate of
//! captures, for the journal and the session file alike. A spare keeps its inode:
//! captures free none.
//!
//! A spare is `.journal/.spare.<unique>`, a name no reader takes for a journal
//! ([`Store::journals`] lists `<id>.journal` only). It is emptied as soon as it stops
//! being a journal, so no capture's bytes wait in it once their session is stored
//! (retention forgets a session; a spare must not remember it). A capture takes one by
//! renaming it to its own temp name, so two processes never take the same; one that
//! cannot be taken or emptied is passed over and the capture creates a file as before.
//! At most [`SPARES_KEPT`] are kept per store handle; spares a process left behind are
//! adopted (emptied again) by the next handle to create or finish a journal.
//!
//! Emptied how: a journal its own writer finished, every write of which succeeded, is
//! known to hold its records and then zeros. Its records (up to [`ZEROED_IN_PLACE`]
//! bytes of them) are overwritten with zeros, and the file keeps its size: the next
//! capture writes into zeros already on disk, so its start syncs data only, with no
//! 64 KiB of zeros to write and no new size to commit. The zeros reach the disk with
//! that capture's first sync (`fdatasync` writes every dirty page of the file) before
//! its name appears, so a journal never shows another capture's records after its own.
//! Any other spare (claimed from a process that died, adopted, or one whose writer
//! saw a write fail) is truncated to nothing, as before.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::storage::{EntryKind, HeldLock, WriteFile};
use crate::store::Store;

/// The prefix of every spare's name.
const SPARE_PREFIX: &str = ".spare.";
/// The most spares one store handle keeps: more than the captures a relay holds open.
pub(crate) const SPARES_KEPT: usize = 128;
/// The most bytes of records a finished journal has overwritten with zeros to be kept
/// at its size; one that used more is truncated (writing its zeros would cost more than
/// growing the next journal does).
pub(crate) const ZEROED_IN_PLACE: u64 = 1024 * 1024;

/// One kept spare.
#[derive(Debug)]
struct Spare {
    path: PathBuf,
    /// Its size, every byte of it zero (0: it was truncated).
    zeroed: u64,
}

/// The spares a store handle may reuse; `None` until the directory's own were adopted.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    names: Mutex<Option<Vec<Spare>>>,
}

/// Whether `name` is a spare's.
pub(crate) fn is_spare(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with(SPARE_PREFIX))
}

impl Store {
    /// A spare renamed to `temp` and opened to be written from its start as a new
    /// journal, with how many bytes of it are known zeros (its size, or 0 when it was
    /// truncated); `None` when there is none to take (then the caller creates `temp`).
    pub(crate) fn take_spare(&self, dir: &Path, temp: &Path) -> Option<(Box<dyn WriteFile>, u64)> {
        let storage = self.storage();
        loop {
            let spare = self.with_spares(dir, Vec::pop)?;
            // Another process may have taken it (then it is gone): pass it over.
            if storage.rename(&spare.path, temp).is_err() {
                continue;
            }
            match storage.reopen(temp) {
                // As it was left, all zeros or empty: nobody else wrote it meanwhile.
                Ok((file, size)) if size == spare.zeroed => return Some((file, size)),
                // Otherwise it is emptied, as an adopted spare is.
                _ => {}
            }
            match storage.reopen_empty(temp) {
                Ok(file) => return Some((file, 0)),
                Err(e) => {
                    tracing::debug!(path = %temp.display(), error = %e, "journal: a spare cannot be written; creating a journal instead");
                    let _ = storage.remove_file(temp);
                }
            }
        }
    }

    /// A name for the journal leaving `dir`, when another spare may be kept.
    pub(crate) fn spare_name(&self, dir: &Path) -> Option<PathBuf> {
        let kept = self.with_spares(dir, |names| names.len());
        (kept < SPARES_KEPT).then(|| dir.join(format!("{SPARE_PREFIX}{}", self.unique())))
    }

    /// Keeps `spare` (a journal renamed to a [`spare_name`](Self::spare_name), still
    /// `locked` as the journal was) once it is emptied: its `written` bytes overwritten
    /// with zeros when its writer says that is all it wrote, else truncated. The lock
    /// goes once it is empty, before the spare is offered to this handle's captures:
    /// another process can see and take the spare as soon as it is named, and one
    /// that did would write into the file these zeros go into (it takes the lock
    /// before writing, so while this holds it, it passes the spare over). One that
    /// cannot be emptied, or one over [`SPARES_KEPT`], is removed.
    pub(crate) fn keep_spare(
        &self,
        dir: &Path,
        spare: PathBuf,
        written: Option<u64>,
        locked: Box<dyn HeldLock>,
    ) {
        let storage = self.storage();
        let emptied = match written.filter(|&used| used <= ZEROED_IN_PLACE) {
            Some(used) => zero_in_place(storage, &spare, used),
            None => None,
        }
        .map_or_else(|| storage.reopen_empty(&spare).map(|_| 0), Ok);
        drop(locked);
        let kept = match emptied {
            Ok(zeroed) => self.with_spares(dir, |names| {
                let room = names.len() < SPARES_KEPT;
                if room {
                    names.push(Spare {
                        path: spare.clone(),
                        zeroed,
                    });
                }
                room
            }),
            Err(e) => {
                tracing::debug!(path = %spare.display(), error = %e, "journal: a finished journal cannot be emptied; removing it");
                false
            }
        };
        if !kept {
            let _ = storage.remove_file(&spare);
        }
    }

    /// Runs `f` on this handle's spares, adopting the directory's own the first time,
    /// so that a handle that only finishes journals (recovery's) keeps no more spares
    /// than one that also creates them.
    fn with_spares<T>(&self, dir: &Path, f: impl FnOnce(&mut Vec<Spare>) -> T) -> T {
        // A list of names keeps no invariant a panic could break.
        let mut names = self
            .spares()
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(names.get_or_insert_with(|| self.adopt_spares(dir)))
    }

    /// The spares already in `dir` (a process that stopped left them), emptied again:
    /// a crash may have come before one was. Those over [`SPARES_KEPT`] are removed.
    fn adopt_spares(&self, dir: &Path) -> Vec<Spare> {
        let storage = self.storage();
        let Ok(entries) = storage.list(dir, false) else {
            return Vec::new();
        };
        let mut adopted = Vec::new();
        for entry in entries {
            if entry.kind != EntryKind::File || !is_spare(&entry.name) {
                continue;
            }
            let path = dir.join(&entry.name);
            if adopted.len() < SPARES_KEPT && storage.reopen_empty(&path).is_ok() {
                adopted.push(Spare { path, zeroed: 0 });
            } else {
                let _ = storage.remove_file(&path);
            }
        }
        adopted
    }
}

/// Overwrites the first `used` bytes of `spare` with zeros, keeping its size: that size
/// when every byte of it is now zero, `None` when that cannot be done or told (then it
/// is truncated instead).
fn zero_in_place(storage: &dyn crate::storage::Storage, spare: &Path, used: u64) -> Option<u64> {
    let (mut file, size) = storage.reopen(spare).ok()?;
    // A storage that empties instead (size 0), or a file shorter than what was written
    // into it (someone else truncated it): nothing to keep in place.
    if used > size {
        return None;
    }
    let zeros = vec![0u8; usize::try_from(used).ok()?];
    file.write_all(&zeros).ok()?;
    Some(size)
}
