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
//! then do not queue behind the filesystem's metadata journal. An all-zero record head
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

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use session_model::SessionId;

use crate::error::{FsError, Step};
use crate::layout;
use crate::storage::{EntryKind, HeldLock, LockMode, StreamOutcome, WriteFile};
use crate::store::Store;

/// The first bytes of every journal: its format, so a future layout is recognised.
pub const JOURNAL_HEADER: &[u8; 8] = b"HL7JRN1\n";
const SUFFIX: &str = ".journal";
const RECORD_HEAD: usize = 8;
/// How much a journal grows by when an append would run past its zeros: one size
/// change (one metadata commit) per this many bytes of records, not per record.
const EXTENT: u64 = 64 * 1024;

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

/// What a journal holds: every whole record, in order, and what followed them that was
/// not a whole record (a write a crash cut short).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JournalContents {
    /// The payloads of the whole records.
    pub records: Vec<Vec<u8>>,
    /// Bytes after the last whole record (0 when the journal ends cleanly).
    pub torn_bytes: u64,
    /// Whether the header was there and right. Without it nothing is read.
    pub header_ok: bool,
    /// Whether a whole record follows the unreadable part: damage, not a write a crash
    /// cut short (which is always last).
    pub damaged: bool,
}

/// How a journal's readable part ended: what [`JournalRecords::end`] reports once
/// every whole record was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalEnd {
    /// Bytes after the last whole record (0 when the journal ends cleanly).
    pub torn_bytes: u64,
    /// Whether the header was there and right. Without it nothing is read.
    pub header_ok: bool,
    /// Whether a whole record follows the unreadable part: damage, not a write a crash
    /// cut short (which is always last).
    pub damaged: bool,
}

/// The largest record a journal holds: [`Journal::append`] refuses larger ones, and a
/// reader takes a larger length for damage, so reading a journal never holds more
/// than one record of this size, however large the journal.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// A journal's records, read one at a time: memory holds one record, never the
/// journal. Never panics on any bytes: what is not a whole record ends the iteration
/// and is described by [`JournalRecords::end`]; only I/O errors are errors.
pub struct JournalRecords<R> {
    reader: std::io::BufReader<R>,
    path: PathBuf,
    /// Bytes not yet consumed.
    remaining: u64,
    started: bool,
    end: Option<JournalEnd>,
}

impl<R> std::fmt::Debug for JournalRecords<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalRecords")
            .field("path", &self.path)
            .field("remaining", &self.remaining)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl<R: std::io::Read> JournalRecords<R> {
    /// Reads the journal of `len` bytes that `reader` yields; `path` names it in errors.
    pub fn new(reader: R, len: u64, path: PathBuf) -> Self {
        Self {
            reader: std::io::BufReader::with_capacity(256 * 1024, reader),
            path,
            remaining: len,
            started: false,
            end: None,
        }
    }

    /// How the readable part ended: `Some` once the iteration returned `None`.
    pub fn end(&self) -> Option<JournalEnd> {
        self.end
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), FsError> {
        use std::io::Read as _;
        self.reader
            .read_exact(buf)
            .map_err(FsError::io(Step::Read, &self.path))
    }

    fn skip(&mut self, n: u64) -> Result<(), FsError> {
        let copied = std::io::copy(
            &mut std::io::Read::take(&mut self.reader, n),
            &mut std::io::sink(),
        )
        .map_err(FsError::io(Step::Read, &self.path))?;
        if copied == n {
            Ok(())
        } else {
            Err(FsError::io(Step::Read, &self.path)(
                std::io::ErrorKind::UnexpectedEof.into(),
            ))
        }
    }

    /// The length and checksum of the record at the reader, if a whole head is left.
    fn head(&mut self, left: u64) -> Result<Option<(u64, u32)>, FsError> {
        if left < RECORD_HEAD as u64 {
            return Ok(None);
        }
        let mut head = [0u8; RECORD_HEAD];
        self.read_exact(&mut head)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        Ok(Some((u64::from(len), crc)))
    }

    fn next_record(&mut self) -> Result<Option<Vec<u8>>, FsError> {
        if !self.started {
            self.started = true;
            let mut header = [0u8; JOURNAL_HEADER.len()];
            if self.remaining < header.len() as u64 || {
                self.read_exact(&mut header)?;
                &header != JOURNAL_HEADER
            } {
                self.end = Some(JournalEnd {
                    torn_bytes: self.remaining,
                    header_ok: false,
                    damaged: false,
                });
                return Ok(None);
            }
            self.remaining -= header.len() as u64;
        }
        let at_record = self.remaining;
        let bad = |damaged| JournalEnd {
            torn_bytes: at_record,
            header_ok: true,
            damaged,
        };
        let Some((len, crc)) = self.head(at_record)? else {
            self.end = Some(bad(false));
            return Ok(None);
        };
        let body_left = at_record - RECORD_HEAD as u64;
        if len == 0 && crc == 0 {
            // The preallocated zeros: the records end here. Anything but zeros after
            // them is the last append, cut short before its head was written.
            let clean = self.zeros(body_left)?;
            self.end = Some(if clean {
                JournalEnd {
                    torn_bytes: 0,
                    header_ok: true,
                    damaged: false,
                }
            } else {
                bad(false)
            });
            return Ok(None);
        }
        if len > body_left {
            // Runs past the end: a write a crash cut short (nothing whole can follow).
            self.end = Some(bad(false));
            return Ok(None);
        }
        if len <= MAX_RECORD_BYTES as u64 {
            let mut payload = vec![0u8; len as usize];
            self.read_exact(&mut payload)?;
            if crc32fast::hash(&payload) == crc {
                self.remaining = body_left - len;
                return Ok(Some(payload));
            }
        } else {
            self.skip(len)?;
        }
        // A bad record with a whole one after it is damage; a crash only cuts the last.
        let after = body_left - len;
        let damaged = match self.head(after)? {
            // An all-zero head is the preallocated tail, not a record.
            Some((next_len, next_crc)) if next_len > 0 && next_len <= after - RECORD_HEAD as u64 => {
                self.checksum_of(next_len)? == next_crc
            }
            _ => false,
        };
        self.end = Some(bad(damaged));
        Ok(None)
    }

    /// Feeds the next `len` bytes to `each`, a piece at a time, while it returns true;
    /// whether it always did.
    fn pieces(&mut self, len: u64, mut each: impl FnMut(&[u8]) -> bool) -> Result<bool, FsError> {
        use std::io::BufRead as _;
        let mut left = len;
        while left > 0 {
            let chunk = self
                .reader
                .fill_buf()
                .map_err(FsError::io(Step::Read, &self.path))?;
            if chunk.is_empty() {
                return Err(FsError::io(Step::Read, &self.path)(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            let take = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if !each(&chunk[..take]) {
                return Ok(false);
            }
            self.reader.consume(take);
            left -= take as u64;
        }
        Ok(true)
    }

    /// Whether the next `len` bytes are all zeros.
    fn zeros(&mut self, len: u64) -> Result<bool, FsError> {
        self.pieces(len, |piece| piece.iter().all(|&b| b == 0))
    }

    /// The checksum of the next `len` bytes.
    fn checksum_of(&mut self, len: u64) -> Result<u32, FsError> {
        let mut hasher = crc32fast::Hasher::new();
        self.pieces(len, |piece| {
            hasher.update(piece);
            true
        })?;
        Ok(hasher.finalize())
    }
}

impl<R: std::io::Read> Iterator for JournalRecords<R> {
    type Item = Result<Vec<u8>, FsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.end.is_some() {
            return None;
        }
        match self.next_record() {
            Ok(Some(payload)) => Some(Ok(payload)),
            Ok(None) => None,
            Err(e) => {
                // An I/O error ends the reading: nothing after it is trusted.
                self.end = Some(JournalEnd {
                    torn_bytes: self.remaining,
                    header_ok: self.started,
                    damaged: false,
                });
                Some(Err(e))
            }
        }
    }
}

/// Splits a journal's bytes into records; never fails, never panics: whatever does not
/// parse is counted in [`JournalContents::torn_bytes`]. The same reader as
/// [`ClaimedJournal::records`], over bytes in memory.
#[cfg(test)]
pub(crate) fn parse_journal(bytes: &[u8]) -> JournalContents {
    let mut reader = JournalRecords::new(bytes, bytes.len() as u64, PathBuf::new());
    // Reading a slice cannot fail.
    let records = reader.by_ref().filter_map(Result::ok).collect();
    let end = reader.end().unwrap_or_default();
    JournalContents {
        records,
        torn_bytes: end.torn_bytes,
        header_ok: end.header_ok,
        damaged: end.damaged,
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

/// One record as [`Journal::append`] writes it.
pub(crate) fn frame_record(payload: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(RECORD_HEAD + payload.len());
    framed.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    framed.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    framed.extend_from_slice(payload);
    framed
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
            } else if self.len + framed.len() as u64 + framed_len > limit {
                Some(format!(
                    "a record of {} bytes would take the journal over the store's {limit}-byte file limit",
                    payload.len()
                ))
            } else {
                None
            };
            if let Some(refusal) = refusal {
                return Err(FsError::io(Step::Append, &self.path)(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    refusal,
                )));
            }
            framed.extend_from_slice(&frame_record(payload));
        }
        if framed.is_empty() {
            return Ok(());
        }
        let end = self.len + framed.len() as u64;
        if end > self.allocated {
            self.allocated = grow(self.file.as_mut(), end, limit, &self.path).max(self.len);
        }
        self.file
            .write_all(&framed)
            .map_err(FsError::io(Step::Append, &self.path))?;
        if end <= self.allocated {
            self.file.sync_data()
        } else {
            self.file.sync()
        }
        .map_err(FsError::io(Step::SyncAppend, &self.path))?;
        self.records += payloads.len() as u64;
        self.len = end;
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
            ..
        } = self;
        drop(file);
        Ok(ClaimedJournal {
            store,
            id,
            path,
            _lock: lock,
        })
    }
}

/// A journal nobody else writes, held locked until it is removed or dropped.
pub struct ClaimedJournal {
    store: Store,
    id: SessionId,
    path: PathBuf,
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
    /// again after that session was deleted.
    pub fn remove(self) -> Result<(), FsError> {
        let storage = self.store.storage();
        match storage.remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(FsError::io(Step::Remove, &self.path)(e)),
        }
        let dir = self.store.dir().join(layout::JOURNAL_DIR);
        storage.sync_dir(&dir).map_err(FsError::io(Step::SyncDir, &dir))
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
        let dir = self.area_path(layout::JOURNAL_DIR)?;
        storage
            .create_dir(&dir)
            .map_err(FsError::io(Step::CreateDir, &dir))?;
        let path = dir.join(format!("{id}{SUFFIX}"));
        let temp = dir.join(format!(".{id}.{}.tmp", self.unique()));
        let mut allocated = 0;
        let mut file = storage
            .create_new(&temp)
            .map_err(FsError::io(Step::CreateTemp, &temp))?;
        // Locked before the name appears: a claimer never sees it unlocked while we live.
        let locked = storage
            .lock(&temp, LockMode::Exclusive, false)
            .map_err(FsError::io(Step::Lock, &temp))
            .and_then(|lock| {
                lock.ok_or_else(|| FsError::io(Step::Lock, &temp)(std::io::ErrorKind::WouldBlock.into()))
            });
        let written = locked.and_then(|lock| {
            file.write_all(JOURNAL_HEADER)
                .map_err(FsError::io(Step::WriteTemp, &temp))?;
            // The first zeros go in with the header's own sync.
            allocated = grow(
                file.as_mut(),
                JOURNAL_HEADER.len() as u64,
                self.max_file_size(),
                &temp,
            );
            if allocated == 0 {
                file.sync().map_err(FsError::io(Step::SyncTemp, &temp))?;
            }
            match storage.hard_link(&temp, &path) {
                Ok(()) => Ok(lock),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(FsError::AlreadyExists { id: id.clone() })
                }
                Err(e) => Err(FsError::io(Step::Link, &path)(e)),
            }
        });
        // The temp name is never needed again, whatever happened.
        let _ = storage.remove_file(&temp);
        let lock = written?;
        storage.sync_dir(&dir).map_err(FsError::io(Step::SyncDir, &dir))?;
        Ok(Journal {
            store: self.clone(),
            id: id.clone(),
            path,
            file,
            records: 0,
            len: JOURNAL_HEADER.len() as u64,
            allocated: allocated.max(JOURNAL_HEADER.len() as u64),
            lock,
        })
    }

    /// The ids that have a journal, sorted: captures in progress, or cut off by a crash.
    pub fn journals(&self) -> Result<Vec<SessionId>, FsError> {
        let dir = self.area_path(layout::JOURNAL_DIR)?;
        let entries = match self.storage().list(&dir, false) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(FsError::io(Step::List, &dir)(e)),
        };
        let mut ids: Vec<SessionId> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .filter_map(|e| journal_id(&e.name))
            .collect();
        ids.sort();
        Ok(ids)
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

fn journal_id(name: &OsStr) -> Option<SessionId> {
    name.to_str()?.strip_suffix(SUFFIX)?.parse().ok()
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
