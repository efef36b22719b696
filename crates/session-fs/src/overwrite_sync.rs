//! Making bytes written over zeros already on disk durable without writing the file's
//! inode, on ext4 without a journal.
//!
//! A journal's appends land in zeros its writer made durable first (see
//! [`journal`](crate::journal)), so each needs only its own bytes and a device cache
//! flush: `fdatasync`'s contract. On ext4 *without a journal*, though, `fdatasync` also
//! writes the file's inode table block whenever it is dirty, and a `write` dirties it
//! each time the clock has ticked (every 4 ms at 250 Hz) since the file's last change,
//! to record the new modification time. For a capture, whose appends are milliseconds
//! apart, that is a third disk write per append, beside the data and the flush (measured
//! here: 3.0 block requests per append one tick apart, 2.0 back to back). With a journal,
//! ext4 commits a time change only in its own journal, and XFS logs it, so neither pays.
//!
//! There, [`OverwriteSync::sync`] writes the range and waits for it
//! (`sync_file_range`), then calls `fdatasync` on an unnamed file of the same
//! filesystem (`O_TMPFILE`, never written), which has nothing to write and issues the
//! device cache flush every ext4 `fsync` issues when mounted with barriers (the
//! default; without them `fdatasync` flushes nothing either). That is exactly what
//! durability needs for an overwrite: ext4 without a journal writes data in place, the
//! blocks were written (not merely allocated) and their size committed before any
//! record went into them, so no metadata is needed to read the bytes back.
//!
//! The bytes themselves go to the device with a direct write (`O_DIRECT`, through a
//! second handle on the file) of the sectors that hold them: the bytes before them in
//! the first sector (the caller's, unchanged) and zeros after them in the last (the
//! zeros already there). A sector either half is old or new then holds the same earlier
//! records, so a torn write tears only the new record, as any unacknowledged append may
//! be torn. A direct write skips the page cache's writeback, which costs a buffered
//! write and its `sync_file_range` about twice the kernel time per append (measured
//! here, 50 threads each appending 208 B: 26 to 30 us of system time per append direct,
//! 44 to 55 us buffered). Where the file cannot be opened for direct writes, or the
//! filesystem reports no alignment for them (`statx`'s `STATX_DIOALIGN`) or one over
//! [`MAX_SECTOR`], the buffered write and `sync_file_range` above are used.
//!
//! [`OverwriteSync::probe`] turns this on only where the filesystem says it is ext4 and
//! its sysfs entry says it has no journal (`journal_task` is `<none>`); anywhere else,
//! or when the unnamed file cannot be made, an overwrite is synced with `fdatasync`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustix::fs::{Mode, OFlags};

/// ext4's (and ext2's and ext3's) `statfs` magic number.
const EXT4_SUPER_MAGIC: u64 = 0xEF53;

/// What ext4's sysfs `journal_task` reads for a filesystem mounted without a journal.
const NO_JOURNAL_TASK: &str = "<none>";

/// The in-place sync of one store's filesystem (see the module docs).
#[derive(Debug)]
pub(crate) struct OverwriteSync {
    /// The store directory, where the unnamed file is made.
    dir: OwnedFd,
    /// The device it is on: the only one whose files this sync covers.
    device: u64,
    /// The unnamed file, made at the first sync; `None` when it cannot be.
    flush: OnceLock<Option<File>>,
}

/// Whether a filesystem of `statfs` type `f_type`, whose ext4 sysfs `journal_task`
/// reads `journal_task` (`None`: it could not be read), is ext4 without a journal.
pub(crate) fn journal_less_ext4(f_type: u64, journal_task: Option<&str>) -> bool {
    f_type == EXT4_SUPER_MAGIC && journal_task.is_some_and(|task| task.trim() == NO_JOURNAL_TASK)
}

/// The `journal_task` of the ext4 filesystem on the block device `st_dev`.
fn journal_task_of(st_dev: u64) -> Option<String> {
    let (major, minor) = (rustix::fs::major(st_dev), rustix::fs::minor(st_dev));
    // `/sys/dev/block/8:1` links to the device's directory, named as ext4 names it
    // under `/sys/fs/ext4` (`sda1`, `dm-0`).
    let device = std::fs::read_link(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    let name = device.file_name()?;
    std::fs::read_to_string(Path::new("/sys/fs/ext4").join(name).join("journal_task")).ok()
}

impl OverwriteSync {
    /// The in-place sync for the store directory `dir`, when its filesystem is ext4
    /// without a journal; `None` anywhere else or when that cannot be told.
    pub(crate) fn probe(dir: &OwnedFd) -> Option<Self> {
        let statfs = rustix::fs::fstatfs(dir).ok()?;
        // The field's integer type differs between targets.
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        let f_type = u64::try_from(statfs.f_type as i64).ok()?;
        let stat = rustix::fs::fstat(dir).ok()?;
        // `st_dev`'s integer type differs between targets.
        #[allow(clippy::useless_conversion)]
        let device = u64::from(stat.st_dev);
        let task = journal_task_of(device);
        if !journal_less_ext4(f_type, task.as_deref()) {
            return None;
        }
        Some(OverwriteSync {
            dir: dir.try_clone().ok()?,
            device,
            flush: OnceLock::new(),
        })
    }

    /// Whether `file` is on the filesystem probed, whose cache flush this sync issues.
    pub(crate) fn covers(&self, file: &File) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        Ok(file.metadata()?.dev() == self.device)
    }

    /// Makes `len` bytes of `file` from `offset`, written over bytes already durable
    /// in blocks already written, durable: written and waited for, then the device
    /// cache flushed. `fdatasync` of `file` where the unnamed file cannot be made.
    pub(crate) fn sync(&self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        if self.flush_file().is_none() {
            return file.sync_data();
        }
        write_and_wait(file, offset, len)?;
        self.flush(file)
    }

    /// Flushes the device's cache, so that every write to `file` the device has
    /// acknowledged is durable: an `fdatasync` of the unnamed file, or of `file`
    /// itself where the unnamed file cannot be made.
    pub(crate) fn flush(&self, file: &File) -> io::Result<()> {
        match self.flush_file() {
            Some(flush) => flush.sync_data(),
            None => file.sync_data(),
        }
    }

    fn flush_file(&self) -> Option<&File> {
        self.flush
            .get_or_init(|| {
                let made = rustix::fs::openat(
                    &self.dir,
                    ".",
                    OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                );
                match made {
                    Ok(fd) => Some(File::from(fd)),
                    Err(e) => {
                        tracing::debug!(error = %e, "journal: no unnamed file to flush with; appends sync with fdatasync");
                        None
                    }
                }
            })
            .as_ref()
    }
}

/// One file's writes over zeros made durable in place: the store's sync, and the
/// file's direct-write handle once it was tried.
pub(crate) struct InPlace {
    sync: Arc<OverwriteSync>,
    /// Whether the file was found on the probed filesystem.
    covered: bool,
    /// `None` until the first write tries to open it; `Some(None)` where it cannot be.
    direct: Option<Option<DirectWriter>>,
}

impl InPlace {
    /// For a file of the store `sync` was probed for.
    pub(crate) fn new(sync: Arc<OverwriteSync>) -> Self {
        InPlace {
            sync,
            covered: false,
            direct: None,
        }
    }

    /// Writes `bytes` at `at` in `file`, over zeros already durable, and makes them
    /// durable: directly where it can, else buffered and `sync_file_range`d, then the
    /// device's cache flushed. `before` is the file's bytes before `at` (see
    /// [`WriteFile::write_over_zeros`](crate::WriteFile::write_over_zeros)). The
    /// handle's position does not move. `Ok(false)`, with nothing written, when `file`
    /// is not on the filesystem probed (a filesystem mounted inside the store): only
    /// its own `fdatasync` is known to cover it.
    pub(crate) fn write_over_zeros(
        &mut self,
        file: &File,
        at: u64,
        before: &[u8],
        bytes: &[u8],
    ) -> io::Result<bool> {
        if !self.covered {
            if !self.sync.covers(file)? {
                return Ok(false);
            }
            self.covered = true;
        }
        if let Some(writer) = self.direct.get_or_insert_with(|| DirectWriter::open(file)) {
            match writer.write(at, before, bytes)? {
                Direct::Written => {
                    self.sync.flush(file)?;
                    return Ok(true);
                }
                Direct::Declined => {}
                Direct::Refused => self.direct = Some(None),
            }
        }
        file.write_all_at(bytes, at)?;
        self.sync.sync(file, at, bytes.len() as u64)?;
        Ok(true)
    }
}

/// The largest direct-write alignment used: one page, and the most bytes of context a
/// caller must hand [`DirectWriter::write`] before the bytes it writes.
pub(crate) const MAX_SECTOR: usize = 4096;

/// A second handle on a file, opened for direct writes, and the alignment they need.
pub(crate) struct DirectWriter {
    file: File,
    /// The offset, length and memory alignment of a direct write.
    sector: usize,
    /// The file's size when last looked at: a direct write never goes past it (its
    /// last sector would grow the file).
    size: u64,
    /// Reused for each write: the sectors written, with room to align their start.
    buffer: Vec<u8>,
}

/// What became of one [`DirectWriter::write`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Direct {
    /// The device has the bytes.
    Written,
    /// Nothing written: this write cannot go direct (too little context for its first
    /// sector, or its last sector would run past the end of the file).
    Declined,
    /// Nothing written (or only bytes the same as those there): the filesystem refused
    /// the write's alignment (`EINVAL`), and will refuse the next.
    Refused,
}

impl DirectWriter {
    /// A direct-write handle on the file `file` is open on, through `/proc/self/fd`;
    /// `None` where there is none to be had (no procfs, no `O_DIRECT` on the
    /// filesystem, no alignment reported, or one over [`MAX_SECTOR`]).
    pub(crate) fn open(file: &File) -> Option<Self> {
        let statx = rustix::fs::statx(
            file,
            "",
            rustix::fs::AtFlags::EMPTY_PATH,
            rustix::fs::StatxFlags::DIOALIGN | rustix::fs::StatxFlags::SIZE,
        )
        .ok()?;
        if statx.stx_mask & rustix::fs::StatxFlags::DIOALIGN.bits() == 0 {
            return None;
        }
        let sector = statx.stx_dio_offset_align.max(statx.stx_dio_mem_align) as usize;
        if sector == 0 || sector > MAX_SECTOR || !sector.is_power_of_two() {
            return None;
        }
        let direct = rustix::fs::open(
            format!("/proc/self/fd/{}", file.as_raw_fd()),
            OFlags::WRONLY | OFlags::DIRECT | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        Some(DirectWriter {
            file: File::from(direct),
            sector,
            size: statx.stx_size,
            buffer: Vec::new(),
        })
    }

    /// Writes `bytes` at `at` directly, with the whole sectors that hold them: the
    /// last bytes of `before` (the file's bytes just before `at`) in front and zeros
    /// behind, and returns once the device has them (its cache not flushed).
    pub(crate) fn write(&mut self, at: u64, before: &[u8], bytes: &[u8]) -> io::Result<Direct> {
        let sector = self.sector as u64;
        let start = at - at % sector;
        let lead = (at - start) as usize;
        let end = (at + bytes.len() as u64).div_ceil(sector) * sector;
        if end > self.size {
            // The file may have grown since: look again before declining.
            self.size = self.file.metadata()?.len();
        }
        if before.len() < lead || end > self.size {
            return Ok(Direct::Declined);
        }
        let len = (end - start) as usize;
        self.buffer.clear();
        self.buffer.resize(len + self.sector, 0);
        let skip = self.buffer.as_ptr().align_offset(self.sector);
        let sectors = &mut self.buffer[skip..skip + len];
        sectors[..lead].copy_from_slice(&before[before.len() - lead..]);
        sectors[lead..lead + bytes.len()].copy_from_slice(bytes);
        match self.file.write_all_at(sectors, start) {
            Ok(()) => Ok(Direct::Written),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(Direct::Refused),
            Err(e) => Err(e),
        }
    }
}

/// Writes `len` bytes of `file` from `offset` to the device and waits until it has
/// them (not its cache flushed): `sync_file_range` with all three of its flags.
fn write_and_wait(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let out_of_range = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "range past what sync_file_range takes",
        )
    };
    let offset = i64::try_from(offset).map_err(|_| out_of_range())?;
    let len = i64::try_from(len).map_err(|_| out_of_range())?;
    let flags =
        libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: a plain system call on a descriptor `file` keeps open for its duration;
    // no memory is passed.
    let done = unsafe { libc::sync_file_range(file.as_fd().as_raw_fd(), offset, len, flags) };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ext4_that_says_it_has_no_journal_syncs_in_place() {
        assert!(journal_less_ext4(0xEF53, Some("<none>\n")));
        // A journal's thread id, an unreadable entry, another filesystem.
        assert!(!journal_less_ext4(0xEF53, Some("412\n")));
        assert!(!journal_less_ext4(0xEF53, Some("")));
        assert!(!journal_less_ext4(0xEF53, None));
        assert!(!journal_less_ext4(0x5846_5342, Some("<none>\n")));
    }

    fn for_dir(dir: OwnedFd) -> OverwriteSync {
        use std::os::unix::fs::MetadataExt;
        let device = File::from(dir.try_clone().unwrap()).metadata().unwrap().dev();
        OverwriteSync {
            dir,
            device,
            flush: OnceLock::new(),
        }
    }

    /// A file of `len` zeros, durable, opened to read and write.
    fn zeros(path: &Path, len: usize) -> File {
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        file.write_all_at(&vec![0; len], 0).unwrap();
        file.sync_all().unwrap();
        file
    }

    #[test]
    fn an_os_file_on_another_filesystem_falls_back_to_fdatasync_for_good() {
        use crate::storage::{OsFile, WriteFile};
        let dir = tempfile::tempdir().unwrap();
        let sync = Arc::new(for_dir(File::open(dir.path()).unwrap().into()));
        let path = dir.path().join("journal");
        let mut here = OsFile::new(zeros(&path, 4096), Some(sync.clone()));
        here.write_over_zeros(0, b"", b"record").unwrap();
        assert!(
            here.syncs_in_place(),
            "the probed filesystem's file keeps the in-place sync"
        );
        // The handle's position moved past the record: the next plain write follows it.
        here.write_all(b"+next").unwrap();
        assert_eq!(&std::fs::read(&path).unwrap()[..12], b"record+next\0");
        let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let mut elsewhere = OsFile::new(zeros(&shm.path().join("journal"), 4096), Some(sync));
        assert!(elsewhere.syncs_in_place(), "not known before its first write");
        elsewhere.write_over_zeros(0, b"", b"record").unwrap();
        assert!(
            !elsewhere.syncs_in_place(),
            "another filesystem's file syncs itself"
        );
        assert_eq!(
            &std::fs::read(shm.path().join("journal")).unwrap()[..6],
            b"record"
        );
    }

    #[test]
    fn a_direct_write_keeps_the_bytes_before_it_and_the_zeros_after_it() {
        let dir = tempfile::tempdir().unwrap();
        if rustix::fs::statfs(dir.path()).unwrap().f_type as i64 != EXT4_SUPER_MAGIC as i64 {
            eprintln!("skipped: the temp directory is not on ext4");
            return;
        }
        let path = dir.path().join("journal");
        let file = zeros(&path, 16384);
        let before: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        file.write_all_at(&before, 0).unwrap();
        file.sync_all().unwrap();
        let mut writer = DirectWriter::open(&file).expect("ext4 takes direct writes");
        // Too little context for the first sector: declined, nothing written.
        assert_eq!(
            writer.write(5000, &before[4990..], b"record").unwrap(),
            Direct::Declined
        );
        assert_eq!(std::fs::read(&path).unwrap()[..5000], before[..]);
        // A last sector past the end of the file would grow it: declined.
        let context = &before[5000 - MAX_SECTOR..];
        assert_eq!(writer.write(16380, context, b"record").unwrap(), Direct::Declined);
        // With the last page before it: written, across the sectors that hold it.
        assert_eq!(writer.write(5000, context, b"record").unwrap(), Direct::Written);
        let read = std::fs::read(&path).unwrap();
        assert_eq!(read.len(), 16384, "the file keeps its size");
        assert_eq!(read[..5000], before[..]);
        assert_eq!(&read[5000..5006], b"record");
        assert!(read[5006..].iter().all(|&b| b == 0), "zeros after it");
        // The file grown by another handle is seen: a sector that now fits is written.
        file.write_all_at(&[0; 4096], 16384).unwrap();
        assert_eq!(
            writer
                .write(16380, &read[16380 - MAX_SECTOR..16380], b"record")
                .unwrap(),
            Direct::Written
        );
        assert_eq!(&std::fs::read(&path).unwrap()[16380..16386], b"record");
    }

    #[test]
    fn a_file_on_another_filesystem_is_not_covered() {
        let dir = tempfile::tempdir().unwrap();
        let sync = for_dir(File::open(dir.path()).unwrap().into());
        let here = File::create(dir.path().join("journal")).unwrap();
        assert!(sync.covers(&here).unwrap());
        // `/proc` is never the temp directory's filesystem.
        let elsewhere = File::open("/proc/self/status").unwrap();
        assert!(!sync.covers(&elsewhere).unwrap());
    }

    #[test]
    fn a_range_is_written_and_synced_and_the_unnamed_file_leaves_no_name() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let handle: OwnedFd = File::open(dir.path()).unwrap().into();
        let sync = for_dir(handle);
        let path = dir.path().join("journal");
        let mut file = File::create(&path).unwrap();
        file.write_all(&[0; 8192]).unwrap();
        file.sync_all().unwrap();
        file.write_all_at(b"record", 4090).unwrap();
        sync.sync(&file, 4090, 6).unwrap();
        assert_eq!(&std::fs::read(&path).unwrap()[4090..4096], b"record");
        assert!(
            sync.flush.get().is_some_and(Option::is_some),
            "the unnamed file was made"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["journal"], "the flush file has no name");
        // A range the call cannot take is an error, not a silent no-op.
        let err = write_and_wait(&file, u64::MAX, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
