//! The store's side of [`crate::clock`]: its stamps, and the record in `.state/`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::{CLOCK_STATE, Clock, ClockRecord, Reading};
use crate::error::{FsError, Step};
use crate::layout;
use crate::storage::LockMode;
use crate::store::{Access, Store};

/// A trusted reading older than this is refreshed by [`Store::note_clock`], so that
/// after a reboot the bound starts from a recent time.
const REFRESH: Duration = Duration::from_secs(3600);
/// How often one handle reads the record again while it stamps.
const NOTE_EVERY: Duration = Duration::from_secs(60);

/// A handle's clock and what it last knew of the record.
pub(crate) struct ClockKeeper {
    clock: Arc<dyn Clock>,
    cached: Mutex<Option<(Instant, ClockRecord)>>,
}

impl ClockKeeper {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            cached: Mutex::new(None),
        }
    }
}

/// What [`Store::check_clock`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClockCheck {
    /// The reading judged.
    pub reading: Reading,
    /// The record after it (its `suspect` set while the clock is suspect).
    pub record: ClockRecord,
}

impl ClockCheck {
    /// Whether the clock is suspect: nothing may then be purged, trashed or expired by age.
    pub fn is_suspect(&self) -> bool {
        self.record.suspect.is_some()
    }
}

impl Store {
    /// The clock this store stamps with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock_keeper().clock
    }

    /// The time to record in a save, a move aside or a backup run's name: the wall
    /// clock, unless the time since boot shows it strayed since the record's trusted
    /// reading (then the time that says). Reads the record at most once a minute per
    /// handle and never writes it, so a save costs no more for it.
    pub fn stamp_ms(&self) -> u64 {
        let reading = Reading::of(self.clock().as_ref());
        let keeper = self.clock_keeper();
        let cached = keeper
            .cached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < NOTE_EVERY)
            .map(|(_, record)| record.clone());
        let record = cached.unwrap_or_else(|| {
            // The record is evidence, not data: a save never fails for it.
            let record = self.clock_record().unwrap_or_default();
            *keeper.cached.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((Instant::now(), record.clone()));
            record
        });
        record.stamp_for(&reading)
    }

    /// Takes one reading into the record, latching a suspicion it reveals, and writes
    /// the record only when something worth keeping changed (a new suspicion; a trusted
    /// reading of another boot or over an hour old). A process that writes to the store
    /// calls this once when it starts and a long-running one now and then, so that the
    /// next judgement has a recent reading of the same boot to go by.
    pub fn note_clock(&self) -> Result<ClockCheck, FsError> {
        let reading = Reading::of(self.clock().as_ref());
        let evidence = self.newest_recorded_ms();
        let record = self.update_clock_record(|record| {
            let stale = record.trusted.as_ref().is_none_or(|t| {
                reading.expected_from(t).is_none()
                    || reading.wall_ms.saturating_sub(t.wall_ms) > REFRESH.as_millis() as u64
            });
            let was_suspect = record.suspect.is_some();
            record.observe(&reading, evidence);
            stale || record.suspect.is_some() != was_suspect
        })?;
        Ok(ClockCheck { reading, record })
    }

    /// The record as stored (an empty one when none was ever written, or it is of
    /// another format). Works on a read-only handle.
    pub fn clock_record(&self) -> Result<ClockRecord, FsError> {
        Ok(self
            .read_state(CLOCK_STATE)?
            .and_then(|bytes| ClockRecord::parse(&bytes))
            .unwrap_or_default())
    }

    /// Judges the clock now against the record and the evidence (`evidence_ms`, the
    /// newest time the caller knows of: the newest save, move aside, cleanup, endpoint
    /// `Date` or message time; 0 for none; and the store's own, see
    /// [`Store::newest_recorded_ms`]), latching a suspicion it reveals. Every pass that
    /// deletes, trashes, purges or expires by age calls this first and does none of it
    /// while [`ClockCheck::is_suspect`]. A read-only handle judges without writing.
    pub fn check_clock(&self, evidence_ms: u64) -> Result<ClockCheck, FsError> {
        let reading = Reading::of(self.clock().as_ref());
        let evidence = evidence_ms.max(self.newest_recorded_ms());
        let record = self.update_clock_record(|record| record.observe(&reading, evidence))?;
        Ok(ClockCheck { reading, record })
    }

    /// [`Store::check_clock`] without writing anything (a dry run's judgement): a
    /// suspicion it reveals shows in the returned record but is not latched.
    pub fn judge_clock(&self, evidence_ms: u64) -> Result<ClockCheck, FsError> {
        let reading = Reading::of(self.clock().as_ref());
        let evidence = evidence_ms.max(self.newest_recorded_ms());
        let mut record = self.clock_record()?;
        record.observe(&reading, evidence);
        Ok(ClockCheck { reading, record })
    }

    /// The newest time the store's directories were changed (their modification
    /// times: every save, move aside, backup run and capture changes one), epoch ms; 0
    /// when unknown. `.locks/` and `.state/` are left out: opening a store and judging
    /// its clock change them. Read with raw `stat` system calls, which an `LD_PRELOAD`
    /// clock shim does not rewrite.
    pub fn newest_recorded_ms(&self) -> u64 {
        let areas = [
            layout::TRASH_DIR,
            layout::QUARANTINE_DIR,
            layout::BACKUP_DIR,
            layout::JOURNAL_DIR,
        ];
        std::iter::once(self.dir().to_path_buf())
            .chain(areas.iter().map(|area| self.dir().join(area)))
            .filter_map(|path| rustix::fs::stat(&path).ok())
            .map(|stat| {
                let (secs, nanos) = (stat.st_mtime.max(0) as u64, stat.st_mtime_nsec);
                secs * 1000 + nanos / 1_000_000
            })
            .max()
            .unwrap_or(0)
    }

    /// Compares the clock with an independent time (an endpoint's `Date` header, say):
    /// agreement within [`TOLERANCE_MS`](crate::clock::TOLERANCE_MS) clears a suspicion,
    /// disagreement raises one.
    pub fn corroborate_clock(&self, reference_ms: u64, source: &str) -> Result<ClockCheck, FsError> {
        let reading = Reading::of(self.clock().as_ref());
        let record = self.update_clock_record(|record| record.corroborate(&reading, reference_ms, source))?;
        Ok(ClockCheck { reading, record })
    }

    /// An operator confirms that the clock is right now: any suspicion clears.
    pub fn confirm_clock(&self) -> Result<ClockCheck, FsError> {
        self.writable()?;
        let reading = Reading::of(self.clock().as_ref());
        let record = self.update_clock_record(|record| {
            record.confirm(&reading);
            true
        })?;
        Ok(ClockCheck { reading, record })
    }

    /// Read-modify-write of the record under `.state/.clock.lock`, so that two
    /// processes never lose each other's suspicion.
    fn update_clock_record(
        &self,
        change: impl FnOnce(&mut ClockRecord) -> bool,
    ) -> Result<ClockRecord, FsError> {
        if self.access() == Access::ReadOnly {
            let mut record = self.clock_record()?;
            change(&mut record);
            return Ok(record);
        }
        let dir = self.made_area_path(layout::STATE_DIR)?;
        let path = dir.join(".clock.lock");
        let _held = self
            .storage()
            .lock(&path, LockMode::Exclusive, true)
            .map_err(FsError::io(Step::Lock, &path))?;
        let mut record = self.clock_record()?;
        if change(&mut record) {
            self.write_state(CLOCK_STATE, &record.to_bytes())?;
        }
        *self
            .clock_keeper()
            .cached
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), record.clone()));
        Ok(record)
    }
}
