//! The store's clock: wall-clock readings, and the evidence that says whether one can
//! be trusted.
//!
//! A capture station's wall clock is not to be trusted: a dead CMOS battery boots it in
//! 2000, an operator sets it years ahead. Nothing destructive may rest on one reading.
//! So every reading is judged against the newest reading the store trusted before, kept
//! in `.state/clock.json` ([`ClockRecord`]):
//!
//! - **Same boot** (the record's boot id is this machine's current one): the time since
//!   boot, which no change of the wall clock moves, says exactly how much real time has
//!   passed since the trusted reading. A wall clock that disagrees with it by more than
//!   [`TOLERANCE_MS`] has jumped.
//! - **Another boot** (or no boot time known): only a bound is possible. A reading
//!   earlier than the trusted one, or more than [`OFFLINE_ALLOWANCE_MS`] past the newest
//!   time the station has evidence of, is suspect.
//!
//! A suspicion is latched in the record: readings made under the wrong clock never clear
//! it. Only independent evidence does (a reference time, such as an endpoint's `Date`,
//! within [`TOLERANCE_MS`]; see [`Store::corroborate_clock`](crate::Store::corroborate_clock))
//! or an operator ([`Store::confirm_clock`](crate::Store::confirm_clock)).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How far a wall-clock reading may stray from the evidence before it is suspect: NTP
/// slews and small steps stay inside it.
pub const TOLERANCE_MS: u64 = 5 * 60 * 1000;

/// Across a reboot no elapsed time is known: a reading more than this past the newest
/// evidence makes the clock suspect. A station switched off for longer waits for
/// corroboration (the endpoint's `Date`) or an operator before it purges anything.
pub const OFFLINE_ALLOWANCE_MS: u64 = 24 * 3600 * 1000;

/// The state file (see [`Store::write_state`](crate::Store::write_state)) holding the
/// [`ClockRecord`].
pub const CLOCK_STATE: &str = "clock.json";

/// Time since boot, which no change of the wall clock moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootTime {
    /// Which boot the uptime counts from (Linux's `/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
    /// Milliseconds since that boot, suspend included.
    pub uptime_ms: u64,
}

/// A source of time for everything the store stamps and every decision by age.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The wall clock, epoch milliseconds.
    fn now_ms(&self) -> u64;

    /// Time since boot, when the platform tells it (`None`: only the wall clock).
    fn since_boot(&self) -> Option<BootTime> {
        None
    }
}

/// The system's clocks: the wall clock, and Linux's boot id with `CLOCK_BOOTTIME`. The
/// boot id is read once per process (from `/proc`); the time since boot comes from the
/// kernel through the vDSO, which neither a change of the wall clock nor an `LD_PRELOAD`
/// clock shim such as libfaketime moves, and costs nanoseconds, not a file read.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn since_boot(&self) -> Option<BootTime> {
        static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let boot_id = BOOT_ID
            .get_or_init(|| {
                std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                    .ok()
                    .map(|id| id.trim().to_owned())
                    .filter(|id| !id.is_empty())
            })
            .clone()?;
        let since = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let uptime_ms = u64::try_from(since.tv_sec).ok()?.saturating_mul(1000)
            + u64::try_from(since.tv_nsec).ok()? / 1_000_000;
        Some(BootTime { boot_id, uptime_ms })
    }
}

/// A clock that moves only when told to, for tests.
///
/// [`advance`](Self::advance) is real time passing (the wall clock and the time since
/// boot move together); [`set`](Self::set) is a jump of the wall clock alone.
///
/// ```
/// use session_fs::clock::{Clock, ManualClock};
/// let clock = ManualClock::at(1_000);
/// clock.advance(500);
/// assert_eq!(clock.now_ms(), 1_500);
/// clock.set(7);
/// assert_eq!(clock.now_ms(), 7);
/// assert_eq!(clock.since_boot().unwrap().uptime_ms, 500);
/// assert!(ManualClock::wall_only(5).since_boot().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    wall: Arc<AtomicU64>,
    uptime: Option<Arc<AtomicU64>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::at(0)
    }
}

impl ManualClock {
    /// A clock reading `now_ms`, in a boot of its own that starts now.
    pub fn at(now_ms: u64) -> Self {
        Self {
            wall: Arc::new(AtomicU64::new(now_ms)),
            uptime: Some(Arc::new(AtomicU64::new(0))),
        }
    }

    /// A clock reading `now_ms` that knows no time since boot (as on a platform without one).
    pub fn wall_only(now_ms: u64) -> Self {
        Self {
            wall: Arc::new(AtomicU64::new(now_ms)),
            uptime: None,
        }
    }

    /// Real time passes: the wall clock and the time since boot move forward together.
    pub fn advance(&self, ms: u64) {
        self.wall.fetch_add(ms, Ordering::SeqCst);
        if let Some(uptime) = &self.uptime {
            uptime.fetch_add(ms, Ordering::SeqCst);
        }
    }

    /// The wall clock jumps to `now_ms`; the time since boot does not move.
    pub fn set(&self, now_ms: u64) {
        self.wall.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.wall.load(Ordering::SeqCst)
    }

    fn since_boot(&self) -> Option<BootTime> {
        let uptime = self.uptime.as_ref()?;
        Some(BootTime {
            // Each manual clock is a boot of its own: the address of its counter tells it apart.
            boot_id: format!("manual-{:p}", Arc::as_ptr(uptime)),
            uptime_ms: uptime.load(Ordering::SeqCst),
        })
    }
}

/// One reading of a [`Clock`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reading {
    /// The wall clock, epoch milliseconds.
    pub wall_ms: u64,
    /// Time since boot, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<BootTime>,
}

impl Reading {
    /// Reads `clock` once.
    pub fn of(clock: &dyn Clock) -> Reading {
        Reading {
            wall_ms: clock.now_ms(),
            boot: clock.since_boot(),
        }
    }

    /// The wall time this reading should show, going by the time since boot elapsed
    /// since `anchor`; `None` when the two readings are not of one boot.
    pub fn expected_from(&self, anchor: &Reading) -> Option<u64> {
        let (now, then) = (self.boot.as_ref()?, anchor.boot.as_ref()?);
        if now.boot_id != then.boot_id || now.uptime_ms < then.uptime_ms {
            return None;
        }
        Some(anchor.wall_ms.saturating_add(now.uptime_ms - then.uptime_ms))
    }
}

/// Why the store does not trust its clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suspicion {
    /// The reading that raised it.
    pub at: Reading,
    /// What the evidence said, in words.
    pub reason: String,
}

/// `.state/clock.json`: what the store knows of its clock. Derived evidence, never a
/// session; losing it loses no data (the next reading starts a new record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockRecord {
    /// This record's format (1).
    #[serde(default = "first_format")]
    pub format: u32,
    /// The newest reading judged right.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted: Option<Reading>,
    /// Set while the clock is suspect: latched until corroborated or confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<Suspicion>,
    /// The last time a suspicion was cleared, and by what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared: Option<Clearance>,
}

fn first_format() -> u32 {
    1
}

impl Default for ClockRecord {
    fn default() -> Self {
        Self {
            format: first_format(),
            trusted: None,
            suspect: None,
            cleared: None,
        }
    }
}

/// How a suspicion was cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Clearance {
    /// The reading at the time.
    pub at: Reading,
    /// What cleared it ("operator", "endpoint Date").
    pub by: String,
}

/// A judgement of one reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Nothing contradicts the reading.
    Plausible,
    /// The evidence contradicts it: the reason, in words.
    Suspect(String),
}

/// How a duration reads in a reason ("3 days", "94 years").
pub fn describe_span(ms: u64) -> String {
    const MINUTE: u64 = 60_000;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    const YEAR: u64 = 365 * DAY;
    let (n, unit) = match ms {
        ms if ms >= YEAR => (ms / YEAR, "year"),
        ms if ms >= DAY => (ms / DAY, "day"),
        ms if ms >= HOUR => (ms / HOUR, "hour"),
        ms => (ms / MINUTE, "minute"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

impl ClockRecord {
    /// Parses a record; `None` for bytes of another format (treated as no record).
    pub fn parse(bytes: &[u8]) -> Option<ClockRecord> {
        serde_json::from_slice::<ClockRecord>(bytes)
            .ok()
            .filter(|r| r.format == 1)
    }

    /// The record as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Judges `reading` against the trusted reading and `evidence_ms`, the newest time
    /// the caller has evidence of (0: none). Pure: see the module docs for the rules.
    pub fn judge(&self, reading: &Reading, evidence_ms: u64) -> Judgement {
        let trusted = self.trusted.as_ref();
        if let Some(expected) = trusted.and_then(|t| reading.expected_from(t)) {
            // The time since boot is exact: the wall clock must agree with it.
            return if reading.wall_ms > expected.saturating_add(TOLERANCE_MS) {
                Judgement::Suspect(format!(
                    "the clock jumped forward by {} since {} (the time since boot says so)",
                    describe_span(reading.wall_ms - expected),
                    rfc3339(trusted.map_or(0, |t| t.wall_ms)),
                ))
            } else if reading.wall_ms.saturating_add(TOLERANCE_MS) < expected {
                Judgement::Suspect(format!(
                    "the clock went back by {} since {} (the time since boot says so)",
                    describe_span(expected - reading.wall_ms),
                    rfc3339(trusted.map_or(0, |t| t.wall_ms)),
                ))
            } else {
                Judgement::Plausible
            };
        }
        let trusted_ms = trusted.map_or(0, |t| t.wall_ms);
        // A reading without a time since boot is a person's (`--now`): one in the past
        // can only make a pass do less, so only one ahead is suspect.
        if reading.boot.is_some() && reading.wall_ms.saturating_add(TOLERANCE_MS) < trusted_ms {
            return Judgement::Suspect(format!(
                "the clock reads {}, {} before a time the store already trusted ({})",
                rfc3339(reading.wall_ms),
                describe_span(trusted_ms - reading.wall_ms),
                rfc3339(trusted_ms),
            ));
        }
        let newest = trusted_ms.max(evidence_ms);
        if newest > 0 && reading.wall_ms > newest.saturating_add(OFFLINE_ALLOWANCE_MS) {
            return Judgement::Suspect(format!(
                "the clock reads {}, {} past the newest time the station has evidence of ({}), with no record of the time between",
                rfc3339(reading.wall_ms),
                describe_span(reading.wall_ms - newest),
                rfc3339(newest),
            ));
        }
        Judgement::Plausible
    }

    /// The time to stamp for `reading`: the reading itself, unless this boot's time
    /// since the trusted reading says otherwise (then the time it says).
    pub fn stamp_for(&self, reading: &Reading) -> u64 {
        match self.trusted.as_ref().and_then(|t| reading.expected_from(t)) {
            Some(expected) if expected.abs_diff(reading.wall_ms) > TOLERANCE_MS => expected,
            _ => reading.wall_ms,
        }
    }

    /// Takes in one reading with the evidence: a suspect one latches the suspicion, a
    /// plausible one becomes the trusted reading unless a suspicion stands. Returns
    /// whether the record changed.
    pub fn observe(&mut self, reading: &Reading, evidence_ms: u64) -> bool {
        match self.judge(reading, evidence_ms) {
            Judgement::Suspect(reason) => {
                if self.suspect.is_some() {
                    return false;
                }
                self.suspect = Some(Suspicion {
                    at: reading.clone(),
                    reason,
                });
                true
            }
            Judgement::Plausible if self.suspect.is_none() => {
                self.trusted = Some(reading.clone());
                true
            }
            Judgement::Plausible => false,
        }
    }

    /// Compares `reading` with an independent `reference_ms` (such as an endpoint's
    /// `Date`): within [`TOLERANCE_MS`] it clears any suspicion and becomes trusted;
    /// beyond it, the clock is suspect. Returns whether the record changed.
    pub fn corroborate(&mut self, reading: &Reading, reference_ms: u64, source: &str) -> bool {
        if reading.wall_ms.abs_diff(reference_ms) <= TOLERANCE_MS {
            let cleared = self.suspect.take().is_some();
            if cleared {
                self.cleared = Some(Clearance {
                    at: reading.clone(),
                    by: source.to_owned(),
                });
            }
            let moved = self.trusted.as_ref().is_none_or(|t| t.wall_ms != reading.wall_ms);
            self.trusted = Some(reading.clone());
            cleared || moved
        } else if self.suspect.is_none() {
            let (ahead, span) = if reading.wall_ms > reference_ms {
                ("ahead of", reading.wall_ms - reference_ms)
            } else {
                ("behind", reference_ms - reading.wall_ms)
            };
            self.suspect = Some(Suspicion {
                at: reading.clone(),
                reason: format!(
                    "the clock is {} {ahead} the {source} ({})",
                    describe_span(span),
                    rfc3339(reference_ms)
                ),
            });
            true
        } else {
            false
        }
    }

    /// An operator says the clock is right: the suspicion clears and the reading is trusted.
    pub fn confirm(&mut self, reading: &Reading) {
        if self.suspect.take().is_some() {
            self.cleared = Some(Clearance {
                at: reading.clone(),
                by: "operator".into(),
            });
        }
        self.trusted = Some(reading.clone());
    }
}

/// `ms` as RFC 3339 UTC, second precision ("2026-12-05T07:19:22Z").
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600 * 1000;
    const NOW: u64 = 1_796_000_000_000;

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
        ClockRecord {
            trusted: Some(r),
            ..ClockRecord::default()
        }
    }

    #[test]
    fn the_system_clock_knows_its_boot_on_linux() {
        let boot = SystemClock
            .since_boot()
            .expect("Linux has a boot id and CLOCK_BOOTTIME");
        assert!(!boot.boot_id.is_empty());
        assert!(boot.uptime_ms > 0);
        // It agrees with /proc/uptime (two readings a moment apart).
        let proc_uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (proc_uptime * 1000.0 - boot.uptime_ms as f64).abs() < 5_000.0,
            "{proc_uptime} s vs {} ms",
            boot.uptime_ms
        );
        let later = SystemClock.since_boot().unwrap();
        assert_eq!(later.boot_id, boot.boot_id);
        assert!(later.uptime_ms >= boot.uptime_ms);
    }

    #[test]
    fn within_one_boot_the_wall_clock_must_agree_with_the_time_since_boot() {
        let record = trusting(reading(NOW, "b", 1_000));
        // A day passed, and the wall clock says so.
        assert_eq!(
            record.judge(&reading(NOW + DAY, "b", 1_000 + DAY), 0),
            Judgement::Plausible
        );
        // Within the tolerance either way.
        assert_eq!(
            record.judge(&reading(NOW + TOLERANCE_MS, "b", 1_000), 0),
            Judgement::Plausible
        );
        assert_eq!(
            record.judge(&reading(NOW - TOLERANCE_MS, "b", 1_000), 0),
            Judgement::Plausible
        );
        for jump in [TOLERANCE_MS + 1, 10 * 60_000, 3 * DAY, 94 * 365 * DAY] {
            let Judgement::Suspect(reason) = record.judge(&reading(NOW + jump, "b", 1_000), 0) else {
                panic!("a jump of {jump} ms forward passed");
            };
            assert!(reason.contains("forward"), "{reason}");
            let Judgement::Suspect(reason) = record.judge(&reading(NOW.saturating_sub(jump), "b", 1_000), 0)
            else {
                panic!("a jump of {jump} ms back passed");
            };
            assert!(reason.contains("went back"), "{reason}");
        }
    }

    #[test]
    fn across_boots_only_a_bound_holds() {
        let record = trusting(reading(NOW, "old", 1_000));
        // Off for a few hours: plausible.
        assert_eq!(
            record.judge(&reading(NOW + 3_600_000, "new", 5), 0),
            Judgement::Plausible
        );
        assert_eq!(
            record.judge(&reading(NOW + OFFLINE_ALLOWANCE_MS, "new", 5), 0),
            Judgement::Plausible
        );
        // Beyond the allowance, or earlier than the trusted reading: suspect.
        assert!(matches!(
            record.judge(&reading(NOW + OFFLINE_ALLOWANCE_MS + 1, "new", 5), 0),
            Judgement::Suspect(_)
        ));
        assert!(matches!(
            record.judge(&reading(NOW - TOLERANCE_MS - 1, "new", 5), 0),
            Judgement::Suspect(_)
        ));
        // Evidence newer than the trusted reading moves the bound.
        assert_eq!(
            record.judge(&reading(NOW + 5 * DAY, "new", 5), NOW + 4 * DAY + 1),
            Judgement::Plausible
        );
        // A reading without a time since boot (a person's) is never suspect for being early.
        assert_eq!(
            record.judge(
                &Reading {
                    wall_ms: NOW - 365 * DAY,
                    boot: None
                },
                0
            ),
            Judgement::Plausible
        );
        // Without any record, evidence alone bounds the reading.
        let none = ClockRecord::default();
        assert_eq!(none.judge(&reading(NOW, "new", 5), 0), Judgement::Plausible);
        assert!(matches!(
            none.judge(
                &Reading {
                    wall_ms: NOW + 2 * DAY,
                    boot: None
                },
                NOW
            ),
            Judgement::Suspect(_)
        ));
        // A reading that restarts uptime (a reboot that kept the id) is not same-boot.
        assert_eq!(
            record.judge(&reading(NOW + 3_600_000, "old", 5), 0),
            Judgement::Plausible
        );
    }

    #[test]
    fn a_suspicion_is_latched_until_corroborated_or_confirmed() {
        let mut record = trusting(reading(NOW, "b", 0));
        let ahead = reading(NOW + 94 * 365 * DAY, "b", 1_000);
        assert!(record.observe(&ahead, 0));
        let raised = record.suspect.clone().expect("suspect");
        // Readings under the wrong clock, consistent among themselves, never clear it.
        assert!(!record.observe(&reading(NOW + 94 * 365 * DAY + 60_000, "b", 61_000), 0));
        assert_eq!(record.suspect.as_ref(), Some(&raised));
        // Nor does a right reading alone, nor a reference that disagrees.
        assert!(!record.observe(&reading(NOW + 2_000, "b", 2_000), 0));
        assert!(!record.corroborate(&reading(NOW + 2_000, "b", 2_000), NOW + DAY, "endpoint Date"));
        assert!(record.suspect.is_some());
        assert_eq!(record.trusted.as_ref().map(|t| t.wall_ms), Some(NOW));
        // A reference that agrees clears it.
        assert!(record.corroborate(&reading(NOW + 3_000, "b", 3_000), NOW + 60_000, "endpoint Date"));
        assert!(record.suspect.is_none());
        assert_eq!(
            record.cleared.as_ref().map(|c| c.by.as_str()),
            Some("endpoint Date")
        );
        assert_eq!(record.trusted.as_ref().map(|t| t.wall_ms), Some(NOW + 3_000));
        // A reference that disagrees raises one; an operator clears it.
        assert!(record.corroborate(
            &reading(NOW + 4_000, "b", 4_000),
            NOW - 365 * DAY,
            "endpoint Date"
        ));
        assert!(
            record
                .suspect
                .as_ref()
                .is_some_and(|s| s.reason.contains("1 year ahead of"))
        );
        record.confirm(&reading(NOW + 5_000, "b", 5_000));
        assert!(record.suspect.is_none());
        assert_eq!(record.cleared.as_ref().map(|c| c.by.as_str()), Some("operator"));
    }

    #[test]
    fn stamps_follow_the_time_since_boot_when_the_wall_clock_strays() {
        let record = trusting(reading(NOW, "b", 1_000));
        assert_eq!(
            record.stamp_for(&reading(NOW + 60_000, "b", 61_000)),
            NOW + 60_000
        );
        // Set to 2020 or to 2120 within this boot: the stamp is the real time.
        assert_eq!(
            record.stamp_for(&reading(NOW - 5 * 365 * DAY, "b", 61_000)),
            NOW + 60_000
        );
        assert_eq!(
            record.stamp_for(&reading(NOW + 94 * 365 * DAY, "b", 61_000)),
            NOW + 60_000
        );
        // Another boot: nothing better than the reading.
        assert_eq!(record.stamp_for(&reading(NOW - DAY, "c", 10)), NOW - DAY);
    }

    #[test]
    fn records_round_trip_and_other_formats_are_no_record() {
        let mut record = trusting(reading(NOW, "b", 1));
        record.observe(&reading(NOW + 9 * DAY, "c", 1), 0);
        assert_eq!(ClockRecord::parse(&record.to_bytes()), Some(record));
        assert_eq!(ClockRecord::parse(br#"{"format":2}"#), None);
        assert_eq!(ClockRecord::parse(b"not json"), None);
    }

    #[test]
    fn times_read_as_rfc3339_and_spans_in_words() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_733_510_400_000), "2120-01-01T00:00:00Z");
        assert_eq!(describe_span(59_999), "0 minutes");
        assert_eq!(describe_span(60_000), "1 minute");
        assert_eq!(describe_span(3 * DAY + 5), "3 days");
        assert_eq!(describe_span(94 * 365 * DAY), "94 years");
    }
}
