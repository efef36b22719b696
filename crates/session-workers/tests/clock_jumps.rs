//! No guarantee rests on the wall clock being right: a store whose clock jumps ahead,
//! behind, or ahead and back again purges, trashes and expires nothing early, never
//! strands a retry, and cleans genuinely old data once the clock is trusted again.
//! Every store here runs on an injected clock ([`ManualClock`]): `advance` is real time
//! passing, `set` a jump of the wall clock alone.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use session_fs::Store;
use session_model::SessionId;
use session_model::SubmissionStatus::{Pending, Submitted};
use session_store::{DecodeOptions, MigrateOptions, SessionStore};
use session_workers::cleanup::{CleanupConfig, CleanupSummary, cleanup_once};
use session_workers::{Clock, ManualClock};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 86_400_000;
const YEAR: u64 = 365 * DAY;

fn real_now() -> u64 {
    session_fs::now_ms()
}

/// A station: a store on `clock`, holding what retention could destroy. A backup run
/// made by a real migration, a session deleted into the trash, and a delivered session
/// past its retention, all made just now; and a pending one.
struct Station {
    dir: tempfile::TempDir,
    clock: ManualClock,
    store: SessionStore,
}

fn open(dir: &Path, clock: &ManualClock) -> SessionStore {
    let fs = Store::options().clock(Arc::new(clock.clone())).open(dir).unwrap();
    SessionStore::new(fs, DecodeOptions::default())
}

fn station() -> Station {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(real_now());
    let store = open(dir.path(), &clock);
    // The first reading of this boot becomes the trusted one.
    assert!(!store.fs().note_clock().unwrap().is_suspect());
    // An app file, migrated: its original is kept in a backup run made now.
    std::fs::copy(
        Path::new(FIXTURES).join("v1/session-21.json"),
        dir.path().join("session-21.json"),
    )
    .unwrap();
    let migrated = store.migrate(&MigrateOptions::default(), &|_, _| {}).unwrap();
    assert_eq!(migrated.migrated, 1, "{migrated:?}");
    let mut delivered = with_status("delivered-long-ago", Submitted, 1);
    delivered.persisted_until = real_now() - DAY;
    store.create(&mut delivered).unwrap();
    let mut doomed = with_status("deleted-just-now", Submitted, 1);
    doomed.persisted_until = real_now() + 30 * DAY;
    store.create(&mut doomed).unwrap();
    assert!(
        store
            .delete(&SessionId::new("deleted-just-now").unwrap())
            .unwrap()
    );
    let mut waiting = with_status("waiting", Pending, 0);
    waiting.persisted_until = real_now() + 30 * DAY;
    store.create(&mut waiting).unwrap();
    Station { dir, clock, store }
}

/// Every file under the store but the clock's state and the lock files, by name.
fn files(dir: &Path) -> Vec<String> {
    test_support::files_under(dir, &[".state", ".locks"])
}

fn clean(station: &Station) -> CleanupSummary {
    cleanup_once(&station.store, &CleanupConfig::default()).unwrap()
}

fn assert_nothing_destroyed(station: &Station, before: &[String], summary: &CleanupSummary, what: &str) {
    assert!(
        summary.clock_suspect.is_some(),
        "{what}: the clock was trusted: {summary:?}"
    );
    assert_eq!(
        (summary.expired, summary.trashed, summary.purged),
        (0, 0, 0),
        "{what}"
    );
    assert_eq!(files(station.dir.path()), before, "{what}: a file moved or went");
}

#[test]
fn a_clock_ahead_purges_trashes_and_expires_nothing_until_it_is_corroborated() {
    for jump in [10 * MINUTE, 3 * DAY, 8 * DAY, 94 * YEAR] {
        let station = station();
        let before = files(station.dir.path());
        let real = station.clock.now_ms();
        station.clock.set(real + jump);
        let summary = clean(&station);
        assert_nothing_destroyed(&station, &before, &summary, &format!("{jump} ms ahead"));
        // Back at the right time, still latched: readings under a wrong clock (or a
        // right one) never clear it by themselves.
        station.clock.set(real + MINUTE);
        let summary = clean(&station);
        assert_nothing_destroyed(&station, &before, &summary, &format!("back from {jump} ms ahead"));
        assert!(station.store.fs().clock_record().unwrap().suspect.is_some());
        // The endpoint's Date agrees: cleared, and only what is genuinely old goes.
        let check = station
            .store
            .fs()
            .corroborate_clock(real + MINUTE + 2_000, "endpoint's Date")
            .unwrap();
        assert!(!check.is_suspect());
        let summary = clean(&station);
        assert_eq!(summary.clock_suspect, None);
        assert_eq!(
            (summary.trashed, summary.purged),
            (1, 0),
            "the expired delivered session is trashed; the backup and the trash are minutes old"
        );
        assert!(
            files(station.dir.path())
                .iter()
                .any(|f| f.starts_with(".backup/"))
        );
    }
}

#[test]
fn a_clock_behind_stamps_the_real_time_and_latches_a_suspicion() {
    for jump in [10 * MINUTE, 2 * DAY, 6 * YEAR] {
        let station = station();
        let real = station.clock.now_ms();
        station.clock.set(real - jump);
        // What the store stamps follows the time since boot, not the wall clock.
        let mut late = with_status("deleted-under-a-clock-behind", Submitted, 1);
        late.persisted_until = real + 30 * DAY;
        station.store.create(&mut late).unwrap();
        let saved_at =
            session_model::Document::saved(&load(&station.store, "deleted-under-a-clock-behind")).1;
        assert!(
            saved_at.abs_diff(real) < MINUTE,
            "savedAt {saved_at} vs real {real}"
        );
        station
            .store
            .delete(&SessionId::new("deleted-under-a-clock-behind").unwrap())
            .unwrap();
        let trashed = std::fs::read_dir(station.dir.path().join(".trash"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.ends_with("deleted-under-a-clock-behind.json"))
            .unwrap();
        let stamp: u64 = trashed.split('.').next().unwrap().parse().unwrap();
        assert!(
            stamp.abs_diff(real) < MINUTE,
            "trash stamped {stamp}, real {real}"
        );
        // A pass under the clock behind latches it; back at the real time, still nothing
        // is destroyed until the clock is confirmed.
        let before = files(station.dir.path());
        assert_nothing_destroyed(&station, &before, &clean(&station), "behind");
        station.clock.set(real + 8 * DAY);
        assert_nothing_destroyed(&station, &before, &clean(&station), "behind, then ahead");
        station.clock.set(real + MINUTE);
        station.store.fs().confirm_clock().unwrap();
        let summary = clean(&station);
        assert_eq!(
            (summary.clock_suspect, summary.purged),
            (None, 0),
            "nothing young purged"
        );
    }
}

#[test]
fn an_active_store_with_a_right_clock_still_cleans_what_is_old() {
    let station = station();
    // Eight days pass for real: the trash entry and the backup run are past their age.
    station.clock.advance(8 * DAY);
    let summary = clean(&station);
    assert_eq!(summary.clock_suspect, None);
    assert_eq!((summary.trashed, summary.purged), (1, 2), "{summary:?}");
    assert!(
        !files(station.dir.path())
            .iter()
            .any(|f| f.starts_with(".backup/"))
    );
}

#[test]
fn after_a_reboot_a_short_gap_is_plausible_and_a_long_one_waits_for_corroboration() {
    let station = station();
    let real = station.clock.now_ms();
    // Another boot (a new clock), two hours on: cleaned as usual.
    let rebooted = ManualClock::at(real + 2 * 3_600_000);
    let store = open(station.dir.path(), &rebooted);
    let summary = cleanup_once(&store, &CleanupConfig::default()).unwrap();
    assert_eq!((summary.clock_suspect, summary.trashed), (None, 1));
    // Another boot three days past the newest evidence: nothing until corroborated.
    let station = station_after(3 * DAY);
    assert!(station.1.clock_suspect.is_some(), "{:?}", station.1);
    assert_eq!((station.1.trashed, station.1.purged), (0, 0));
}

/// A station whose machine restarts `gap` after it was set up, then cleans.
fn station_after(gap: u64) -> (Station, CleanupSummary) {
    let station = station();
    let rebooted = ManualClock::at(station.clock.now_ms() + gap);
    let store = open(station.dir.path(), &rebooted);
    let summary = cleanup_once(&store, &CleanupConfig::default()).unwrap();
    (station, summary)
}

#[tokio::test]
async fn a_retry_stored_under_a_clock_ahead_is_sent_when_the_clock_comes_back_once() {
    for ahead in [2 * DAY, 94 * YEAR] {
        // An endpoint that fails once, then accepts.
        let server = server().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201))
            .mount(&server)
            .await;
        let (_dir, store) = store_with(vec![pending("s1")]);
        let h = worker(&store, &endpoint(&server), fast_config());
        h.clock.set(NOW + ahead);
        let failed = h.worker.run_pass(&CancellationToken::new()).await.unwrap();
        assert_eq!(failed.retrying, 1);
        let stuck = load(&store, "s1").submission.next_attempt_at.unwrap();
        assert!(stuck > NOW + ahead, "stored under the clock ahead");
        // The clock comes back: the retry is due now, not in `ahead`.
        h.clock.set(NOW);
        let sent = h.worker.run_pass(&CancellationToken::new()).await.unwrap();
        assert_eq!(sent.submitted, 1, "ahead by {ahead} ms: {sent:?}");
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 2, "the failure, then one resend");
        let keys: std::collections::HashSet<String> = requests.iter().map(key_of).collect();
        assert_eq!(keys.len(), 1, "the same key: delivered once");
    }
}

#[tokio::test]
async fn the_endpoints_date_raises_and_clears_a_suspicion() {
    let server = server().await;
    // The endpoint's clock is right: its Date is the real time.
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("Date", date.as_str()))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let store_clock = ManualClock::at(real_now() + 94 * YEAR);
    let store = open(dir.path(), &store_clock);
    store.create(&mut pending("s1")).unwrap();
    let h = worker(&store, &endpoint(&server), fast_config());
    // A store whose clock is 94 years ahead of the endpoint's Date: suspect.
    h.worker.run_pass(&CancellationToken::new()).await.unwrap();
    let record = store.fs().clock_record().unwrap();
    let reason = record.suspect.expect("suspect").reason;
    assert!(
        reason.contains("94 years ahead of the endpoint's Date"),
        "{reason}"
    );
    // The store's clock is put right; the next response agrees: cleared.
    store_clock.set(real_now());
    h.clock.set(NOW + DAY);
    h.worker.run_pass(&CancellationToken::new()).await.unwrap();
    let record = store.fs().clock_record().unwrap();
    assert_eq!(record.suspect, None);
    assert_eq!(record.cleared.map(|c| c.by), Some("endpoint's Date".to_owned()));
}

#[test]
fn an_operators_stated_time_is_taken_as_stated_and_records_nothing() {
    let station = station();
    let real = station.clock.now_ms();
    // The wall clock is 94 years off; the operator says it is eight days from now.
    station.clock.set(real + 94 * YEAR);
    let before = station.store.fs().clock_record().unwrap();
    let summary = cleanup_once(&station.store, &CleanupConfig::default().at(real + 8 * DAY)).unwrap();
    assert_eq!(summary.clock_suspect, None);
    assert_eq!(
        (summary.at, summary.trashed, summary.purged),
        (real + 8 * DAY, 1, 2),
        "{summary:?}"
    );
    assert_eq!(
        station.store.fs().clock_record().unwrap(),
        before,
        "nothing recorded of the clock"
    );
}

#[test]
fn after_a_reboot_messages_made_since_vouch_for_the_clock() {
    let station = station();
    let real = station.clock.now_ms();
    let later = real + 3 * DAY;
    let rebooted = ManualClock::at(later);
    let store = open(station.dir.path(), &rebooted);
    // A result captured since the reboot: its MSH-7 says when the analyzer made it.
    // Made an hour before the clock's reading, by the analyzer's clock.
    let made_at = later - 3_600_000;
    let made =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(made_at))
            .to_string()
            .replace(['-', 'T', ':', 'Z'], "");
    let mut fresh = with_status("captured-since", Pending, 0);
    fresh.persisted_until = later + 30 * DAY;
    fresh.elements.push(session_model::Element::new(
        later,
        session_model::Direction::DeviceToPc,
        session_model::ElementKind::Message,
        format!("MSH|^~\\&|AN|LAB|LIS|HOSP|{made}||ORU^R01|9|P|2.5\r\n").into_bytes(),
    ));
    assert_eq!(fresh.newest_message_time(), Some(made_at / 1000 * 1000));
    // Stored with the old boot's stamps, so that only its message time speaks for now.
    station.store.create(&mut fresh).unwrap();
    let summary = cleanup_once(&store, &CleanupConfig::default()).unwrap();
    assert_eq!(
        summary.clock_suspect, None,
        "three days off, and the analyzer agrees"
    );
    assert_eq!(summary.trashed, 1);
}

/// `later` as an MSH-7 timestamp (`YYYYMMDDHHMMSS`, no zone, as analyzers write it).
fn msh7(at: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(at))
        .to_string()
        .replace(['-', 'T', ':', 'Z'], "")
}

/// A session holding one message whose MSH-7 says `made`.
fn captured(id: &str, made: u64, now: u64) -> session_model::Session {
    let mut session = with_status(id, Pending, 0);
    session.persisted_until = now + 30 * DAY;
    session.elements.push(session_model::Element::new(
        now,
        session_model::Direction::DeviceToPc,
        session_model::ElementKind::Message,
        format!("MSH|^~\\&|AN|LAB|LIS|HOSP|{}||ORU^R01|9|P|2.5\r\n", msh7(made)).into_bytes(),
    ));
    session
}

#[test]
fn a_messages_time_vouches_for_the_clock_only_less_the_furthest_zone() {
    // MSH-7 carries no zone, so a message's time stands for a moment up to 14 hours
    // earlier (an analyzer set to local time east of UTC). After a reboot three days on,
    // a message made 9 hours before the clock's reading brings the evidence to 23 hours
    // back (within the day a station may be off); one made 11 hours before, to 25 (not).
    for (before, trusted) in [(9 * HOUR, true), (11 * HOUR, false)] {
        let station = station();
        let later = station.clock.now_ms() + 3 * DAY;
        let rebooted = ManualClock::at(later);
        let store = open(station.dir.path(), &rebooted);
        // Stored with the old boot's stamps, so that only its message time speaks for now.
        station
            .store
            .create(&mut captured("captured-since", later - before, later))
            .unwrap();
        let summary = cleanup_once(&store, &CleanupConfig::default()).unwrap();
        assert_eq!(
            summary.clock_suspect.is_none(),
            trusted,
            "a message made {before} ms before the clock's reading: {summary:?}"
        );
    }
}

/// After one cleanup, every session deleted into the trash and the clock's record lost:
/// only the store's areas (the trash's stamps, the backup run, the last cleanup) still
/// say what time it was.
fn only_the_areas_remember(station: &Station) {
    assert_eq!(clean(station).clock_suspect, None);
    for id in station.store.fs().list().unwrap() {
        assert!(station.store.delete(&id).unwrap());
    }
    let state = station.dir.path().join(".state");
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().contains("clock") {
            std::fs::remove_file(path).unwrap();
        }
    }
}

#[test]
fn the_stores_own_records_of_time_vouch_for_the_clock_after_a_reboot() {
    for (gap, trusted) in [(2 * HOUR, true), (3 * DAY, false)] {
        let station = station();
        let real = station.clock.now_ms();
        only_the_areas_remember(&station);
        let rebooted = ManualClock::at(real + gap);
        let store = open(station.dir.path(), &rebooted);
        let summary = cleanup_once(&store, &CleanupConfig::default()).unwrap();
        assert_eq!(
            summary.clock_suspect.is_none(),
            trusted,
            "a reboot {gap} ms after the areas' newest time: {summary:?}"
        );
    }
}

#[test]
fn the_names_the_store_gave_vouch_for_the_clock_when_its_directories_times_do_not() {
    // Only the areas remember, and the directories' modification times are ten days old
    // too (a copy that reset them, say): the trash's stamps, the backup run's name and
    // the last cleanup's record still say what time it was, and a reboot two hours later
    // is trusted on their word alone.
    let station = station();
    let real = station.clock.now_ms();
    only_the_areas_remember(&station);
    let long_ago = std::time::UNIX_EPOCH + std::time::Duration::from_millis(real - 10 * DAY);
    let mut dirs = vec![station.dir.path().to_path_buf()];
    for entry in std::fs::read_dir(station.dir.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            dirs.push(entry.path());
        }
    }
    for dir in dirs {
        std::fs::File::open(&dir).unwrap().set_modified(long_ago).unwrap();
    }
    let rebooted = ManualClock::at(real + 2 * HOUR);
    let store = open(station.dir.path(), &rebooted);
    assert!(
        store.fs().newest_recorded_ms() < real - 9 * DAY,
        "the directories' times no longer vouch"
    );
    let summary = cleanup_once(&store, &CleanupConfig::default()).unwrap();
    assert_eq!(summary.clock_suspect, None, "{summary:?}");
}
