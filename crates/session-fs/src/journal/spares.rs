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

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::storage::{EntryKind, WriteFile};
use crate::store::Store;

/// The prefix of every spare's name.
const SPARE_PREFIX: &str = ".spare.";
/// The most spares one store handle keeps: more than the captures a relay holds open.
pub(crate) const SPARES_KEPT: usize = 128;

/// The spares a store handle may reuse; `None` until the directory's own were adopted.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    names: Mutex<Option<Vec<PathBuf>>>,
}

/// Whether `name` is a spare's.
pub(crate) fn is_spare(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with(SPARE_PREFIX))
}

impl Store {
    /// A spare renamed to `temp` and opened emptied, to be written as a new journal;
    /// `None` when there is none to take (then the caller creates `temp`).
    pub(crate) fn take_spare(&self, dir: &Path, temp: &Path) -> Option<Box<dyn WriteFile>> {
        let storage = self.storage();
        loop {
            let spare = self.with_spares(dir, Vec::pop)?;
            // Another process may have taken it (then it is gone): pass it over.
            if storage.rename(&spare, temp).is_err() {
                continue;
            }
            match storage.reopen_empty(temp) {
                Ok(file) => return Some(file),
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

    /// Keeps `spare` (a journal renamed to a [`spare_name`](Self::spare_name), its lock
    /// released) once it is emptied; one that cannot be emptied, or one over
    /// [`SPARES_KEPT`], is removed.
    pub(crate) fn keep_spare(&self, dir: &Path, spare: PathBuf) {
        let storage = self.storage();
        let kept = match storage.reopen_empty(&spare) {
            Ok(file) => {
                drop(file);
                self.with_spares(dir, |names| {
                    let room = names.len() < SPARES_KEPT;
                    if room {
                        names.push(spare.clone());
                    }
                    room
                })
            }
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
    fn with_spares<T>(&self, dir: &Path, f: impl FnOnce(&mut Vec<PathBuf>) -> T) -> T {
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
    fn adopt_spares(&self, dir: &Path) -> Vec<PathBuf> {
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
                adopted.push(path);
            } else {
                let _ = storage.remove_file(&path);
            }
        }
        adopted
    }
}
