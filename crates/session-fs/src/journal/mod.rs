//! Append-only journals: how a session still being captured grows by one element at a
//! time, durably, at a cost that does not grow with the session.
//!
//! A journal is `.journal/<id>.journal`: a header, then records, each
//! `[length: u32 LE][crc32 of the payload: u32 LE][payload]`. [`Journal::append`]
//! returns once its record is durable, so an acknowledged record survives a crash; a
//! record a crash cut short fails its length or checksum and is reported as torn,
//! never read.
//!
//! The file grows ahead of its records, 64 KiB of zeros at a time, made durable with
//! the new size (`fsync`); a record written into those zeros needs only its data made
//! durable (`fdatasync`), which commits no metadata: appends on many journals at once
//! then do not queue behind the filesystem's metadata journal. On ext4 without a
//! journal, where `fdatasync` would also write the inode for its new modification
//! time, the record's sectors are written directly and the device's cache flushed
//! instead ([`WriteFile::write_over_zeros`](crate::WriteFile::write_over_zeros)). An all-zero record head
//! is where the records end (no record has an empty payload: appending one is refused),
//! and the zeros after it are not counted as torn. Payloads are opaque bytes: what
//! they mean is the caller's (`session-capture`'s) business.
//!
//! A journal never grows past the store's file-size limit
//! ([`OpenOptions::max_file_size`](crate::OpenOptions::max_file_size)) and holds no
//! record over [`MAX_RECORD_BYTES`]: an append that would is refused. Journals are read
//! back one record at a time ([`ClaimedJournal::records`]), so folding one costs the
//! memory of a record, not of the journal.
//!
//! The writer holds an exclusive `flock` on the journal for as long as it lives, taken
//! before the journal's name appears (it is written under a temp name and linked into
//! place), so [`Store::claim_journal`] can tell a live capture from one whose process
//! died without ever taking over the former.

use std::path::{Path, PathBuf};

use session_model::SessionId;

use crate::error::{FsError, Step};
use crate::layout;
use crate::storage::{EntryKind, HeldLock, LockMode, OVERWRITE_CONTEXT, StreamOutcome, WriteFile};
use crate::store::Store;

mod records;
mod spares;

#[cfg(test)]
use records::parse_journal;
pub use records::{JournalContents, JournalEnd, JournalRecords, MAX_RECORD_BYTES};
pub(crate) use spares::Spares;

/// The first bytes of every journal: its format, so a future layout is recognised.
pub const JOURNAL_HEADER: &[u8; 8] = b"HL7JRN1\n";
const SUFFIX: &str = ".journal";
const RECORD_HEAD: usize = 8;
/// How much a journal grows by when an append would run past its zeros: one size
/// change (one metadata commit) per this many bytes of records, not per record.
const EXTENT: u64 = 64 * 1024;

/// A new journal's file, how many bytes of it are known zeros (a spare's whole size,
/// else 0), and the exclusive lock its writer holds on it.
type LockedFile = (Box<dyn WriteFile>, u64, Box<dyn HeldLock>);

/// An open journal, written by the one capture that created it.
pub struct Journal {
    store: Store,
    id: SessionId,
    path: PathBuf,
    file: Box<dyn WriteFile>,
    records: u64,
    /// Bytes written so far, header included: what the next append is bounded by.
    len: u64,
    /// The file's size: zeros from `len` up to it, written and durable, so that an
    /// append inside them commits only its data. Equals `len` where the storage does
    /// not preallocate.
    allocated: u64,
    /// The last [`OVERWRITE_CONTEXT`] bytes written (all of them while fewer): what
    /// an append hands [`WriteFile::write_over_zeros`] as the bytes before its own.
    recent: Vec<u8>,
    /// A write or sync failed: bytes past `len` may be a record's, so the file is
    /// emptied, not zeroed in place, when it becomes a spare.
    spoiled: bool,
    lock: Box<dyn HeldLock>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("id", &self.id)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

/// Extends a journal to hold at least `needed` bytes: [`EXTENT`] more zeros, never
/// past `limit`, durably. The size it has now (`needed` or more), or `0` where the
/// storage does not preallocate or there is no room for the zeros.
fn grow(file: &mut dyn WriteFile, needed: u64, limit: u64, path: &Path) -> u64 {
    let target = needed.saturating_add(EXTENT).min(limit).max(needed);
    match file.preallocate(target) {
        Ok(true) => target,
        Ok(false) => 0,
        // No room for the zeros (a nearly full disk): the record may still fit, and a
        // growing append is as durable, only dearer.
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "journal: cannot preallocate; appending without");
            0
        }
    }
}

/// Adds `written` to the bytes `recent` remembers, keeping the last
/// [`OVERWRITE_CONTEXT`] of them.
fn remember(recent: &mut Vec<u8>, written: &[u8]) {
    recent.extend_from_slice(written);
    let over = recent.len().saturating_sub(OVERWRITE_CONTEXT);
    recent.drain(..over);
}

/// One record as [`Journal::append`] writes it.
pub(crate) fn frame_record(payload: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(RECORD_HEAD + payload.len());
    framed.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    framed.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    framed.extend_from_slice(payload);
    framed
}

/// `payloads` framed as records to follow `len` bytes of a journal at `path`, or the
/// refusal of the first that cannot be appended: an empty one, one over
/// [`MAX_RECORD_BYTES`], or one that would take the journal past `limit`.
fn frame_records(payloads: &[&[u8]], len: u64, limit: u64, path: &Path) -> Result<Vec<u8>, FsError> {
    let mut framed = Vec::new();
    for payload in payloads {
        let framed_len = (RECORD_HEAD + payload.len()) as u64;
        let refusal = if payload.is_empty() {
            Some("an empty record is refused (an all-zero record head ends a journal)".to_owned())
        } else if payload.len() > MAX_RECORD_BYTES {
            Some(format!(
                "a record of {} bytes is over the {MAX_RECORD_BYTES}-byte record limit",
                payload.len()
            ))
        } else if len + framed.len() as u64 + framed_len > limit {
            Some(format!(
                "a record of {} bytes would take the journal over the store's {limit}-byte file limit",
                payload.len()
            ))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return Err(FsError::io(Step::Append, path)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                refusal,
            )));
        }
        framed.extend_from_slice(&frame_record(payload));
    }
    Ok(framed)
}

impl Journal {
    /// The session it records.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// How many records this writer appended.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Appends one record and returns once it is durable. An empty record is refused.
    ///
    /// After an error the journal may end in a partial record, which readers report as
    /// torn; the caller should stop appending and finish or abandon the capture.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), FsError> {
        self.append_all(&[payload])
    }

    /// Appends records in order with one sync for all of them, and returns once
    /// every one is durable. Nothing is written when they would take the journal over
    /// the store's file limit. A crash before it returns leaves a prefix of them, the
    /// last possibly torn, as any unacknowledged append does.
    pub fn append_all(&mut self, payloads: &[&[u8]]) -> Result<(), FsError> {
        let limit = self.store.max_file_size();
        let framed = frame_records(payloads, self.len, limit, &self.path)?;
        if framed.is_empty() {
            return Ok(());
        }
        let end = self.len + framed.len() as u64;
        if end > self.allocated {
            self.allocated = grow(self.file.as_mut(), end, limit, &self.path).max(self.len);
        }
        let written = if end <= self.allocated {
            // Written and synced as one step: where it is made durable in place, the
            // write is the sync's own (see `WriteFile::write_over_zeros`).
            self.file
                .write_over_zeros(self.len, &self.recent, &framed)
                .map_err(FsError::io(Step::SyncAppend, &self.path))
        } else {
            self.file
                .write_all(&framed)
                .map_err(FsError::io(Step::Append, &self.path))
                .and_then(|()| {
                    self.file
                        .sync()
                        .map_err(FsError::io(Step::SyncAppend, &self.path))
                })
        };
        if let Err(e) = written {
            self.spoiled = true;
            return Err(e);
        }
        self.records += payloads.len() as u64;
        self.len = end;
        remember(&mut self.recent, &framed);
        Ok(())
    }

    /// Gives up writing and hands the journal over as claimed (still locked), to be
    /// folded and removed.
    pub fn into_claimed(self) -> Result<ClaimedJournal, FsError> {
        let Journal {
            store,
            id,
            path,
            file,
            lock,
            len,
            spoiled,
            ..
        } = self;
        drop(file);
        Ok(ClaimedJournal {
            store,
            id,
            path,
            written: (!spoiled).then_some(len),
            _lock: lock,
        })
    }
}

/// A journal nobody else writes, held locked until it is removed or dropped.
pub struct ClaimedJournal {
    store: Store,
    id: SessionId,
    path: PathBuf,
    /// How many bytes its writer wrote, all of them acknowledged, when it was handed
    /// over by that writer; `None` when claimed (its writer's process is gone).
    written: Option<u64>,
    _lock: Box<dyn HeldLock>,
}

impl std::fmt::Debug for ClaimedJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedJournal")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ClaimedJournal {
    /// The session it records.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// Its records from the first, read one at a time (each call starts over): what
    /// folding uses, at the memory of one record whatever the journal's size.
    pub fn records(&self) -> Result<JournalRecords<Box<dyn std::io::Read + Send>>, FsError> {
        let limit = self.store.max_file_size();
        match self.store.storage().open_stream(&self.path, limit) {
            Ok(StreamOutcome::Opened { len, reader }) => {
                // Handed over by its writer: every byte past what it wrote is a zero it
                // put there, so reading stops where its records do.
                let len = self.written.map_or(len, |written| written.min(len));
                Ok(JournalRecords::new(reader, len, self.path.clone()))
            }
            Ok(StreamOutcome::TooLarge { size }) => Err(FsError::TooLarge {
                path: self.path.clone(),
                size,
                limit,
            }),
            Err(e) => Err(FsError::io(Step::Read, &self.path)(e)),
        }
    }

    /// Everything it holds, in memory: for small journals and tests. Folding reads
    /// [`records`](Self::records) instead.
    pub fn contents(&self) -> Result<JournalContents, FsError> {
        let mut reader = self.records()?;
        let records = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
        let end = reader.end().unwrap_or_default();
        Ok(JournalContents {
            records,
            torn_bytes: end.torn_bytes,
            header_ok: end.header_ok,
            damaged: end.damaged,
        })
    }

    /// Whether the journal holds no byte at all (not even its header).
    pub fn is_empty(&self) -> Result<bool, FsError> {
        let storage = self.store.storage();
        match storage.open_stream(&self.path, self.store.max_file_size()) {
            Ok(StreamOutcome::Opened { len, .. }) => Ok(len == 0),
            Ok(StreamOutcome::TooLarge { .. }) => Ok(false),
            Err(e) => Err(FsError::io(Step::Read, &self.path)(e)),
        }
    }

    /// The journal's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the journal durably, once what it holds is kept elsewhere (the session
    /// file it was folded into): a crash afterwards cannot bring it back to be folded
    /// again after that session was deleted. The file itself is kept, emptied, as a
    /// spare for the next capture to write (see `spares.rs`: no inode is freed).
    pub fn remove(self) -> Result<(), FsError> {
        let ClaimedJournal {
            store,
            path,
            written,
            _lock,
            ..
        } = self;
        let storage = store.storage();
        let dir = store.dir().join(layout::JOURNAL_DIR);
        let spare = store.spare_name(&dir);
        let gone = match &spare {
            Some(spare) => storage.rename(&path, spare),
            None => storage.remove_file(&path),
        };
        match gone {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(FsError::io(Step::Remove, &path)(e)),
        }
        store.commit_journal_dir()?;
        match spare {
            // Emptied under the journal's lock: another process that takes the spare
            // meanwhile cannot lock it, so it never writes where these zeros land.
            Some(spare) => store.keep_spare(&dir, spare, written, _lock),
            None => drop(_lock),
        }
        Ok(())
    }

    /// Moves the journal into `.quarantine/` with a sidecar (`reason`), when what it
    /// holds could not be made into a session.
    pub fn quarantine(self, reason: &str) -> Result<PathBuf, FsError> {
        let name = self.path.file_name().unwrap_or_default().to_owned();
        let note = crate::maintenance::quarantine_note(
            &format!("{}/{}", layout::JOURNAL_DIR, name.to_string_lossy()),
            reason,
            crate::store::QUARANTINED_BY,
        );
        self.store
            .move_aside_from(
                Some(layout::JOURNAL_DIR),
                &name,
                crate::store::Aside::Quarantine,
                Some(&note),
            )
            .map(|moved| moved.to)
    }
}

impl Store {
    /// Starts the journal of `id`: refused with [`FsError::AlreadyExists`] when the
    /// session or its journal exists. Returns once the (empty) journal is durable, so
    /// that every record appended after survives with it.
    pub fn create_journal(&self, id: &SessionId) -> Result<Journal, FsError> {
        self.create_journal_with(id, &[])
    }

    /// [`Store::create_journal`] with its first records already in it: the header and
    /// `first` are made durable by one sync before the journal's name appears, where
    /// creating it and then appending them would sync twice. Refused as
    /// [`Journal::append_all`] refuses, before anything is written.
    pub fn create_journal_with(&self, id: &SessionId, first: &[&[u8]]) -> Result<Journal, FsError> {
        self.writable()?;
        let storage = self.storage();
        let live = self.path_of(id);
        if storage
            .kind(&live)
            .map_err(FsError::io(Step::Open, &live))?
            .is_some()
        {
            return Err(FsError::AlreadyExists { id: id.clone() });
        }
        let dir = self.made_area_path(layout::JOURNAL_DIR)?;
        let path = dir.join(format!("{id}{SUFFIX}"));
        let header_len = JOURNAL_HEADER.len() as u64;
        let framed = frame_records(first, header_len, self.max_file_size(), &path)?;
        let temp = dir.join(format!(".{id}.{}.tmp", self.unique()));
        let (mut file, zeroed, lock) = self.locked_temp(&dir, &temp)?;
        let written = self.start_journal(file.as_mut(), zeroed, &framed, &temp, &path, id);
        // The temp name is never needed again, whatever happened.
        let _ = storage.remove_file(&temp);
        let allocated = written?;
        // Not the directory's group commit: on a capture's path, waiting out an fsync
        // already under way and then leading one's own would cost two.
        storage.sync_dir(&dir).map_err(FsError::io(Step::SyncDir, &dir))?;
        let len = header_len + framed.len() as u64;
        let mut recent = Vec::with_capacity(OVERWRITE_CONTEXT);
        remember(&mut recent, JOURNAL_HEADER);
        remember(&mut recent, &framed);
        Ok(Journal {
            store: self.clone(),
            id: id.clone(),
            path,
            file,
            records: first.len() as u64,
            len,
            allocated: allocated.max(len),
            recent,
            spoiled: false,
            lock,
        })
    }

    /// Writes the header and the `framed` first records (and the first zeros) into
    /// `file`, durably, and links `temp` as `path`: the size the file has (0 where the
    /// storage does not preallocate). A spare's `zeroed` bytes (its whole size, all
    /// zeros) are written over without growing it: their sync commits data only.
    fn start_journal(
        &self,
        file: &mut dyn WriteFile,
        zeroed: u64,
        framed: &[u8],
        temp: &Path,
        path: &Path,
        id: &SessionId,
    ) -> Result<u64, FsError> {
        let mut start = Vec::with_capacity(JOURNAL_HEADER.len() + framed.len());
        start.extend_from_slice(JOURNAL_HEADER);
        start.extend_from_slice(framed);
        file.write_all(&start)
            .map_err(FsError::io(Step::WriteTemp, temp))?;
        let allocated = if start.len() as u64 <= zeroed {
            file.sync_data().map_err(FsError::io(Step::SyncTemp, temp))?;
            zeroed
        } else {
            // The first zeros go in with the first bytes' own sync.
            let allocated = grow(file, start.len() as u64, self.max_file_size(), temp);
            if allocated == 0 {
                file.sync().map_err(FsError::io(Step::SyncTemp, temp))?;
            }
            allocated
        };
        match self.storage().hard_link(temp, path) {
            Ok(()) => Ok(allocated),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(FsError::AlreadyExists { id: id.clone() })
            }
            Err(e) => Err(FsError::io(Step::Link, path)(e)),
        }
    }

    /// A new journal's file under `temp` (a spare emptied, or else a new file) and the
    /// exclusive lock on it, taken before its name appears: a claimer never sees it
    /// unlocked while we live. A spare someone still holds locked (a claimer that
    /// opened it as a journal before it was finished) is passed over.
    fn locked_temp(&self, dir: &Path, temp: &Path) -> Result<LockedFile, FsError> {
        let storage = self.storage();
        if let Some((file, zeroed)) = self.take_spare(dir, temp) {
            if let Ok(Some(lock)) = storage.lock(temp, LockMode::Exclusive, false) {
                return Ok((file, zeroed, lock));
            }
            drop(file);
            let _ = storage.remove_file(temp);
        }
        let file = storage
            .create_new(temp)
            .map_err(FsError::io(Step::CreateTemp, temp))?;
        let lock = storage
            .lock(temp, LockMode::Exclusive, false)
            .map_err(FsError::io(Step::Lock, temp))
            .and_then(|lock| {
                lock.ok_or_else(|| FsError::io(Step::Lock, temp)(std::io::ErrorKind::WouldBlock.into()))
            });
        match lock {
            Ok(lock) => Ok((file, 0, lock)),
            Err(e) => {
                let _ = storage.remove_file(temp);
                Err(e)
            }
        }
    }

    /// The ids that have a journal, sorted: captures in progress, or cut off by a crash.
    pub fn journals(&self) -> Result<Vec<SessionId>, FsError> {
        self.ids_in_area(layout::JOURNAL_DIR, SUFFIX)
    }

    /// Whether a live writer holds the journal of `id` (a capture in progress); `false`
    /// for a journal its writer gave up (a crash, a recording that failed) or none.
    /// Changes nothing; works on a read-only handle.
    pub fn journal_held(&self, id: &SessionId) -> Result<bool, FsError> {
        let storage = self.storage();
        let path = self.area_path(layout::JOURNAL_DIR)?.join(format!("{id}{SUFFIX}"));
        if storage.kind(&path).map_err(FsError::io(Step::Open, &path))? != Some(EntryKind::File) {
            return Ok(false);
        }
        // A writer holds it exclusively: a shared lock is had only when none does.
        let free = storage
            .lock(&path, LockMode::Shared, false)
            .map_err(FsError::io(Step::Lock, &path))?;
        Ok(free.is_none())
    }

    /// Takes over the journal of `id` when no live writer holds it (its process died):
    /// `Ok(None)` when one does, or when there is no such journal.
    pub fn claim_journal(&self, id: &SessionId) -> Result<Option<ClaimedJournal>, FsError> {
        self.writable()?;
        let storage = self.storage();
        let dir = self.area_path(layout::JOURNAL_DIR)?;
        let path = dir.join(format!("{id}{SUFFIX}"));
        if storage.kind(&path).map_err(FsError::io(Step::Open, &path))? != Some(EntryKind::File) {
            return Ok(None);
        }
        let Some(lock) = storage
            .lock(&path, LockMode::Exclusive, false)
            .map_err(FsError::io(Step::Lock, &path))?
        else {
            return Ok(None);
        };
        let claimed = ClaimedJournal {
            store: self.clone(),
            id: id.clone(),
            path,
            written: None,
            _lock: lock,
        };
        // Its writer may have finished and removed it between the look and the lock
        // (the lock then made an empty file): an empty file holds nothing to keep.
        if claimed.is_empty()? {
            let _ = storage.remove_file(&claimed.path);
            return Ok(None);
        }
        Ok(Some(claimed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_back_and_a_cut_anywhere_is_torn_never_misread() {
        let payloads: [&[u8]; 3] = [b"first", b"2", b"third record"];
        let mut bytes = JOURNAL_HEADER.to_vec();
        for p in payloads {
            bytes.extend(frame_record(p));
        }
        let whole = parse_journal(&bytes);
        assert_eq!(whole.records, payloads.map(<[u8]>::to_vec));
        assert_eq!((whole.torn_bytes, whole.header_ok), (0, true));
        // Cut at every byte: only whole records come back, and the rest is counted.
        let ends: Vec<usize> = {
            let mut at = JOURNAL_HEADER.len();
            payloads
                .iter()
                .map(|p| {
                    at += RECORD_HEAD + p.len();
                    at
                })
                .collect()
        };
        for cut in 0..bytes.len() {
            let got = parse_journal(&bytes[..cut]);
            let whole_records = ends.iter().filter(|&&end| end <= cut).count();
            assert_eq!(got.records.len(), whole_records, "cut at {cut}");
            let consumed = if cut < JOURNAL_HEADER.len() {
                0
            } else {
                ends[..whole_records]
                    .last()
                    .copied()
                    .unwrap_or(JOURNAL_HEADER.len())
            };
            assert_eq!(got.torn_bytes, (cut - consumed) as u64, "cut at {cut}");
            assert_eq!(got.header_ok, cut >= JOURNAL_HEADER.len(), "cut at {cut}");
            assert!(!got.damaged, "cut at {cut}");
        }
    }

    #[test]
    fn zeros_after_the_records_end_them_cleanly_and_a_cut_into_the_zeros_is_torn_never_damage() {
        let payloads: [&[u8]; 3] = [b"first", b"2", b"third record"];
        let mut bytes = JOURNAL_HEADER.to_vec();
        let mut ends = Vec::new();
        for p in payloads {
            bytes.extend(frame_record(p));
            ends.push(bytes.len());
        }
        let padded = |written: &[u8]| {
            let mut file = written.to_vec();
            file.resize(bytes.len() + 64, 0);
            file
        };
        let whole = parse_journal(&padded(&bytes));
        assert_eq!(whole.records, payloads.map(<[u8]>::to_vec));
        assert_eq!((whole.torn_bytes, whole.damaged), (0, false));
        // A crash inside the preallocated zeros leaves a prefix of the last append.
        for cut in JOURNAL_HEADER.len()..bytes.len() {
            let got = parse_journal(&padded(&bytes[..cut]));
            let whole_records = ends.iter().filter(|&&end| end <= cut).count();
            assert_eq!(got.records.len(), whole_records, "cut at {cut}");
            assert!(!got.damaged, "cut at {cut}");
            let at_boundary = cut == JOURNAL_HEADER.len() || ends.contains(&cut);
            assert_eq!(got.torn_bytes == 0, at_boundary, "cut at {cut}: {got:?}");
        }
        // Bytes after an all-zero head (a head the crash did not write): torn.
        let mut late = padded(&bytes);
        let last = late.len() - 1;
        late[last] = 1;
        let got = parse_journal(&late);
        assert_eq!(got.records.len(), 3);
        assert_eq!((got.torn_bytes, got.damaged), (64, false));
    }

    #[test]
    fn a_flipped_bit_or_an_absurd_length_ends_the_readable_part() {
        let mut bytes = JOURNAL_HEADER.to_vec();
        bytes.extend(frame_record(b"kept"));
        let second = bytes.len();
        bytes.extend(frame_record(b"damaged"));
        bytes.extend(frame_record(b"after"));
        let mut flipped = bytes.clone();
        flipped[second + RECORD_HEAD + 2] ^= 0x01;
        let got = parse_journal(&flipped);
        assert_eq!(got.records, vec![b"kept".to_vec()]);
        assert_eq!(got.torn_bytes as usize, bytes.len() - second);
        assert!(got.damaged, "a whole record follows the bad one");
        // The same bad record last is what a crash leaves: torn, not damaged.
        let last = parse_journal(&flipped[..bytes.len() - frame_record(b"after").len()]);
        assert_eq!((last.records.len(), last.damaged), (1, false));
        let mut absurd = bytes.clone();
        absurd[second..second + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_journal(&absurd).records.len(), 1);
        assert!(!parse_journal(b"not a journal").header_ok);
    }
}
