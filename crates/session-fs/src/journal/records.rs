//! Reading a journal back, a record at a time, whatever its bytes.

use std::path::PathBuf;

use crate::error::{FsError, Step};

use super::{JOURNAL_HEADER, RECORD_HEAD};

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

/// The largest record a journal holds: [`Journal::append`](super::Journal::append) refuses larger ones, and a
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
            // No bigger than the journal: a buffer over 128 KiB is a fresh mapping
            // of its own for each reader, and a finished capture's journal is read twice.
            reader: std::io::BufReader::with_capacity(
                usize::try_from(len)
                    .unwrap_or(usize::MAX)
                    .clamp(8 * 1024, 256 * 1024),
                reader,
            ),
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
/// [`ClaimedJournal::records`](super::ClaimedJournal::records), over bytes in memory.
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
