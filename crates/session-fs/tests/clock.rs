//! The store's clock record on a real directory, with a manual clock: stamps follow the
//! time since boot when the wall clock strays, the record is written only when it says
//! something new, a read-only handle judges without writing, and the store's own
//! directory times are evidence.

use std::path::Path;
use std::sync::Arc;

use session_fs::Store;
use session_fs::clock::{CLOCK_STATE, Clock, ManualClock, OFFLINE_ALLOWANCE_MS};

const NOW: u64 = 1_796_000_000_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn open(dir: &Path, clock: &ManualClock) -> Store {
    Store::options().clock(Arc::new(clock.clone())).open(dir).unwrap()
}

fn stored(dir: &Path) -> Option<Vec<u8>> {
    std::fs::read(dir.join(".state").join(CLOCK_STATE)).ok()
}

#[test]
fn noting_the_clock_trusts_a_plausible_reading_and_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let store = open(tmp.path(), &clock);
    assert!(stored(tmp.path()).is_none());
    let check = store.note_clock().unwrap();
    assert!(!check.is_suspect());
    assert_eq!(check.reading.wall_ms, NOW);
    // Written, and read back by another handle as it was judged.
    let other = open(tmp.path(), &clock);
    let record = other.clock_record().unwrap();
    assert_eq!(record, check.record);
    assert_eq!(record.trusted.map(|t| t.wall_ms), Some(NOW));
}

#[test]
fn the_record_is_written_again_only_for_something_new() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let store = open(tmp.path(), &clock);
    store.note_clock().unwrap();
    let first = stored(tmp.path()).unwrap();
    // Within the hour (an hour exactly included), in the same boot: nothing worth a write.
    clock.advance(HOUR);
    store.note_clock().unwrap();
    assert_eq!(
        stored(tmp.path()).unwrap(),
        first,
        "a recent trusted reading is kept"
    );
    // Past the hour: the trusted reading is refreshed.
    clock.advance(1);
    store.note_clock().unwrap();
    let refreshed = store.clock_record().unwrap();
    assert_eq!(refreshed.trusted.map(|t| t.wall_ms), Some(NOW + HOUR + 1));
    // Another boot (a new clock, minutes later): refreshed at once.
    let rebooted = ManualClock::at(NOW + HOUR + 60_000);
    let after_boot = open(tmp.path(), &rebooted);
    after_boot.note_clock().unwrap();
    let record = after_boot.clock_record().unwrap();
    assert_eq!(
        record.trusted.as_ref().map(|t| t.wall_ms),
        Some(NOW + HOUR + 60_000)
    );
    assert_eq!(record.trusted.and_then(|t| t.boot), rebooted.since_boot());
}

#[test]
fn a_jump_is_latched_in_the_record_and_stamps_keep_the_real_time() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let store = open(tmp.path(), &clock);
    store.note_clock().unwrap();
    clock.advance(60_000);
    // The operator sets the clock 94 years ahead within this boot.
    clock.set(NOW + 94 * 365 * DAY);
    let fresh = open(tmp.path(), &clock);
    assert_eq!(
        fresh.stamp_ms(),
        NOW + 60_000,
        "the time since boot says what time it is"
    );
    let check = fresh.note_clock().unwrap();
    assert!(check.is_suspect());
    let record = open(tmp.path(), &clock).clock_record().unwrap();
    assert!(
        record
            .suspect
            .as_ref()
            .is_some_and(|s| s.reason.contains("forward")),
        "{record:?}"
    );
    // Back to the right time, it stays suspect until corroborated.
    clock.set(NOW + 61_000);
    assert!(fresh.check_clock(0).unwrap().is_suspect());
    let agreed = fresh.corroborate_clock(NOW + 62_000, "endpoint Date").unwrap();
    assert!(!agreed.is_suspect());
    assert!(open(tmp.path(), &clock).clock_record().unwrap().suspect.is_none());
}

#[test]
fn a_handle_reads_the_record_for_its_stamps_at_most_once_a_minute() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let stamping = open(tmp.path(), &clock);
    // It reads the (empty) record once: with nothing trusted, the stamp is the wall clock.
    assert_eq!(stamping.stamp_ms(), NOW);
    // Another handle trusts a reading; then the wall clock jumps.
    open(tmp.path(), &clock).note_clock().unwrap();
    clock.set(NOW + 365 * DAY);
    assert_eq!(
        stamping.stamp_ms(),
        NOW + 365 * DAY,
        "within the minute the handle goes by what it read"
    );
    // A handle that reads the record now stamps the real time.
    assert_eq!(open(tmp.path(), &clock).stamp_ms(), NOW);
}

#[test]
fn a_read_only_handle_judges_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    open(tmp.path(), &clock).note_clock().unwrap();
    let before = stored(tmp.path()).unwrap();
    clock.set(NOW + 9 * DAY);
    let reader = Store::options()
        .read_only()
        .clock(Arc::new(clock.clone()))
        .open(tmp.path())
        .unwrap();
    assert!(reader.check_clock(0).unwrap().is_suspect());
    assert_eq!(stored(tmp.path()).unwrap(), before, "nothing written");
    // A writable handle's check latches it; a dry judgement does not.
    let writer = open(tmp.path(), &clock);
    assert!(writer.judge_clock(0).unwrap().is_suspect());
    assert_eq!(
        stored(tmp.path()).unwrap(),
        before,
        "a dry judgement writes nothing"
    );
    assert!(writer.check_clock(0).unwrap().is_suspect());
    assert!(writer.clock_record().unwrap().suspect.is_some());
}

#[test]
fn the_newest_change_of_the_stores_directories_is_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(NOW);
    let store = open(tmp.path(), &clock);
    let mtime_ms = |path: &Path| {
        std::fs::metadata(path)
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    std::fs::write(tmp.path().join("marker"), b"x").unwrap();
    let newest = store.newest_recorded_ms();
    assert_eq!(newest, mtime_ms(tmp.path()), "to the millisecond");
    // Judged against that evidence: a wall clock far behind the real one passes no
    // bound without a record, but one far past it does.
    let real = newest;
    let behind = ManualClock::wall_only(real + OFFLINE_ALLOWANCE_MS + DAY);
    let judged = Store::options()
        .clock(Arc::new(behind))
        .open(tmp.path())
        .unwrap()
        .judge_clock(0)
        .unwrap();
    assert!(judged.is_suspect(), "{judged:?}");
}

mod rules {
    //! `ClockRecord`'s rules at their edges, through the public API.

    use session_fs::clock::{
        BootTime, Clock, ClockRecord, Judgement, Reading, SystemClock, TOLERANCE_MS, describe_span,
    };

    use super::{DAY, HOUR, NOW};

    fn reading(wall_ms: u64, boot: &str, uptime_ms: u64) -> Reading {
        Reading {
            wall_ms,
            boot: Some(BootTime {
                boot_id: boot.into(),
                uptime_ms,
            }),
        }
    }

    fn trusting(r: Reading) -> ClockRecord {
        let mut record = ClockRecord::default();
        record.confirm(&r);
        record
    }

    #[test]
    fn spans_read_in_the_largest_whole_unit() {
        assert_eq!(describe_span(TOLERANCE_MS), "5 minutes");
        assert_eq!(describe_span(2 * HOUR + 5), "2 hours");
        assert_eq!(describe_span(HOUR), "1 hour");
        assert_eq!(describe_span(47 * HOUR), "1 day");
        assert_eq!(describe_span(3 * 60_000 + 59_999), "3 minutes");
    }

    #[test]
    fn the_system_clocks_time_since_boot_is_to_the_millisecond() {
        // Two readings of CLOCK_BOOTTIME around the clock's: it lies between them, so
        // the milliseconds are added, not lost (tried a few times, as the sub-second
        // part may happen to be near zero).
        let mut checked = 0;
        for _ in 0..50 {
            let before = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
            let boot = SystemClock.since_boot().unwrap();
            let after = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
            let ms = |t: rustix::time::Timespec| t.tv_sec as u64 * 1000 + t.tv_nsec as u64 / 1_000_000;
            assert!(
                (ms(before)..=ms(after)).contains(&boot.uptime_ms),
                "{} not within {}..={}",
                boot.uptime_ms,
                ms(before),
                ms(after)
            );
            if before.tv_nsec > 10_000_000 {
                checked += 1;
            }
            std::thread::sleep(std::time::Duration::from_millis(7));
        }
        assert!(checked > 0);
    }

    #[test]
    fn a_reading_of_another_boot_just_within_the_tolerance_before_the_trusted_one_passes() {
        let record = trusting(reading(NOW, "old", 1_000));
        assert_eq!(
            record.judge(&reading(NOW - TOLERANCE_MS, "new", 5), 0),
            Judgement::Plausible
        );
        assert!(matches!(
            record.judge(&reading(NOW - TOLERANCE_MS - 1, "new", 5), 0),
            Judgement::Suspect(_)
        ));
    }

    #[test]
    fn a_stamp_within_the_tolerance_is_the_wall_clocks_own() {
        let record = trusting(reading(NOW, "b", 1_000));
        // Expected NOW + 60 s; the wall clock says a second more: its own reading stands.
        assert_eq!(
            record.stamp_for(&reading(NOW + 61_000, "b", 61_000)),
            NOW + 61_000
        );
        // Exactly at the tolerance, still its own; one past, the time since boot's.
        assert_eq!(
            record.stamp_for(&reading(NOW + 60_000 + TOLERANCE_MS, "b", 61_000)),
            NOW + 60_000 + TOLERANCE_MS
        );
        assert_eq!(
            record.stamp_for(&reading(NOW + 60_001 + TOLERANCE_MS, "b", 61_000)),
            NOW + 60_000
        );
    }

    #[test]
    fn a_plausible_reading_becomes_the_trusted_one_while_no_suspicion_stands() {
        let mut record = ClockRecord::default();
        assert!(record.observe(&reading(NOW, "b", 0), 0));
        assert!(record.observe(&reading(NOW + 1_000, "b", 1_000), 0));
        assert_eq!(record.trusted.as_ref().map(|t| t.wall_ms), Some(NOW + 1_000));
        assert!(record.suspect.is_none());
    }

    #[test]
    fn corroboration_says_whether_it_changed_anything_and_which_way_the_clock_is_off() {
        let trusted = reading(NOW, "b", 0);
        let mut record = trusting(trusted.clone());
        assert!(
            !record.corroborate(&trusted, NOW + 1_000, "endpoint Date"),
            "the same trusted reading again changes nothing"
        );
        assert!(record.corroborate(&reading(NOW + 1_000, "b", 1_000), NOW, "endpoint Date"));
        assert_eq!(record.trusted.as_ref().map(|t| t.wall_ms), Some(NOW + 1_000));
        // Behind the reference by a year and a day: said so, in words.
        assert!(record.corroborate(
            &reading(NOW + 2_000, "b", 2_000),
            NOW + 2_000 + 366 * DAY,
            "endpoint Date"
        ));
        let reason = record
            .suspect
            .as_ref()
            .map(|s| s.reason.clone())
            .unwrap_or_default();
        assert!(reason.contains("1 year behind the endpoint Date"), "{reason}");
        // A clearing corroboration with the trusted reading unchanged still changes the record.
        let mut suspect = trusting(trusted.clone());
        suspect.corroborate(&trusted, NOW + 30 * DAY, "endpoint Date");
        assert!(suspect.suspect.is_some());
        assert!(suspect.corroborate(&trusted, NOW, "endpoint Date"));
        assert!(suspect.suspect.is_none());
    }
}
