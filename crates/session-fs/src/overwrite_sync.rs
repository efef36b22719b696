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
//! [`OverwriteSync::probe`] turns this on only where the filesystem says it is ext4 and
//! its sysfs entry says it has no journal (`journal_task` is `<none>`); anywhere else,
//! or when the unnamed file cannot be made, an overwrite is synced with `fdatasync`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::OnceLock;

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
        let Some(flush) = self.flush_file() else {
            return file.sync_data();
        };
        write_and_wait(file, offset, len)?;
        flush.sync_data()
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

    #[test]
    fn an_os_file_on_another_filesystem_falls_back_to_fdatasync_for_good() {
        use crate::storage::{OsFile, WriteFile};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let sync = Arc::new(for_dir(File::open(dir.path()).unwrap().into()));
        let mut here = OsFile::new(
            File::create(dir.path().join("journal")).unwrap(),
            Some(sync.clone()),
        );
        here.write_all(b"record").unwrap();
        here.sync_overwrite(0, 6).unwrap();
        assert!(
            here.syncs_in_place(),
            "the probed filesystem's file keeps the in-place sync"
        );
        let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let mut elsewhere = OsFile::new(File::create(shm.path().join("journal")).unwrap(), Some(sync));
        assert!(elsewhere.syncs_in_place(), "not known before its first sync");
        elsewhere.write_all(b"record").unwrap();
        elsewhere.sync_overwrite(0, 6).unwrap();
        assert!(
            !elsewhere.syncs_in_place(),
            "another filesystem's file syncs itself"
        );
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
        std::os::unix::fs::FileExt::write_all_at(&file, b"record", 4090).unwrap();
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
