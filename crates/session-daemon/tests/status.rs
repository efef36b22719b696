//! The station's report on real stores: what it counts, the alerts it raises and
//! when, the same report from the index as from the files, and `/metrics` of it.

use std::sync::atomic::Ordering;

use session_daemon::metrics::{StationCounters, render};
use session_daemon::{AlertKind, StatusOptions, StatusReport, status, status_from_index};
use session_model::{Session, SessionId, SubmissionStatus};
use session_station::SessionIndex;
use session_store::{DecodeOptions, SessionStore};

const HOUR: u64 = 3_600_000;

fn id(s: &str) -> SessionId {
    SessionId::new(s).unwrap()
}

/// A store of: a complete pending session started `waiting_ms` ago, one submitted,
/// one failed for good, one pending on a TLS error, one incomplete.
fn store(dir: &std::path::Path, waiting_ms: u64) -> SessionStore {
    let store = SessionStore::open(dir, DecodeOptions::default()).unwrap();
    let now = store.fs().clock().now_ms();
    let save = |name: &str, start: u64, complete: bool, change: &dyn Fn(&mut Session)| {
        let mut session = Session::new(id(name), start, 30);
        if complete {
            session = session.completed_at(start + 1);
        }
        change(&mut session);
        store.save(&mut session).unwrap();
    };
    save("s-1", now - waiting_ms, true, &|_| {});
    save("s-2", now - 1_000, true, &|s| {
        s.submission.status = SubmissionStatus::Submitted
    });
    save("s-3", now - 2_000, true, &|s| {
        s.submission.status = SubmissionStatus::Failed;
        s.submission.last_error = Some("HTTP 400".into());
    });
    save("s-4", now - 500, true, &|s| {
        s.submission.last_error = Some("TLS: unknown issuer".into());
        s.submission.last_attempt_at = Some(now - 400);
    });
    save("s-5", now - 300, false, &|_| {});
    store
}

fn options(alert_after_ms: u64) -> StatusOptions {
    StatusOptions {
        retry_cap_ms: HOUR,
        alert_undelivered_ms: alert_after_ms,
    }
}

fn kinds(report: &StatusReport) -> Vec<AlertKind> {
    report.alerts.iter().map(|a| a.kind).collect()
}

#[test]
fn the_report_counts_the_store_and_raises_an_alert_for_each_thing_to_act_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 2 * HOUR);
    // A capture in progress (its journal held) and one whose recorder is gone.
    let _live = store.fs().create_journal(&id("s-6")).unwrap();
    drop(store.fs().create_journal(&id("s-7")).unwrap());
    let report = status(&store, &options(HOUR)).unwrap();
    assert_eq!(report.counts.total, 5);
    assert_eq!(
        report
            .counts
            .failed
            .iter()
            .map(|f| f.id.as_str())
            .collect::<Vec<_>>(),
        ["s-3"]
    );
    assert_eq!(
        report.counts.oldest_waiting.as_ref().map(|w| w.id.as_str()),
        Some("s-1")
    );
    assert_eq!((report.capturing, report.recording_stalled), (1, 1));
    assert_eq!(report.problems(), 0);
    assert!(report.last_cleanup.is_none());
    assert_eq!(
        kinds(&report),
        [
            AlertKind::Undelivered,
            AlertKind::RecordingFailed,
            AlertKind::EndpointAttention
        ]
    );
    let words: Vec<&str> = report.alerts.iter().map(|a| a.message.as_str()).collect();
    assert!(
        words[0].starts_with("s-1 has waited to be delivered since "),
        "{words:?}"
    );
    assert!(words[0].contains("alert_undelivered_minutes = 60"), "{words:?}");
    assert!(words[1].starts_with("1 capture could not be stored"), "{words:?}");
    assert_eq!(
        words[2],
        "the delivery endpoint needs attention: TLS: unknown issuer (1 session waiting)"
    );
    // The names the JSON and the webhook use.
    let names: Vec<&str> = report.alerts.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(names, ["undelivered", "recordingFailed", "endpointAttention"]);
    assert_eq!(AlertKind::ClockSuspect.as_str(), "clockSuspect");
}

#[test]
fn a_session_is_undelivered_only_past_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 2 * HOUR);
    let report = status(&store, &options(3 * HOUR)).unwrap();
    assert_eq!(kinds(&report), [AlertKind::EndpointAttention]);
    // At exactly its age (the report's own reading), not yet.
    let age = report.at - report.counts.oldest_waiting.as_ref().unwrap().start_time;
    let report = status(&store, &options(age + 10_000)).unwrap();
    assert!(!kinds(&report).contains(&AlertKind::Undelivered));
    let report = status(&store, &options(age - 1)).unwrap();
    assert!(kinds(&report).contains(&AlertKind::Undelivered));
}

#[test]
fn a_suspect_clock_is_an_alert_until_it_is_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 0);
    let now = store.fs().clock().now_ms();
    // An independent time a year ahead: the clock is behind.
    store
        .fs()
        .corroborate_clock(now + 365 * 24 * HOUR, "test")
        .unwrap();
    let report = status(&store, &options(HOUR)).unwrap();
    assert!(report.clock.suspect.is_some());
    let alert = report
        .alerts
        .iter()
        .find(|a| a.kind == AlertKind::ClockSuspect)
        .expect("a clock alert");
    assert!(
        alert.message.starts_with("the computer's clock is suspect ("),
        "{alert:?}"
    );
    assert!(
        alert
            .message
            .ends_with("nothing is deleted or expired until it is confirmed")
    );
    store.fs().confirm_clock().unwrap();
    let report = status(&store, &options(HOUR)).unwrap();
    assert!(!kinds(&report).contains(&AlertKind::ClockSuspect));
}

#[test]
fn the_report_from_the_index_is_the_report_from_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 2 * HOUR);
    std::fs::write(dir.path().join("s-9.json"), b"{ damaged").unwrap();
    let index = SessionIndex::new();
    index.rebuild(&store).unwrap();
    let (files, indexed) = (
        status(&store, &options(HOUR)).unwrap(),
        status_from_index(&index, &store, &options(HOUR)).unwrap(),
    );
    assert_eq!(indexed.counts, files.counts);
    assert_eq!(kinds(&indexed), kinds(&files));
    assert_eq!(
        (indexed.files.damaged, files.files.damaged),
        (1, 1),
        "the damaged file, counted by both"
    );
    assert_eq!(indexed.problems(), 1);
}

fn sample(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn metrics_show_the_report_and_what_the_daemon_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 2 * HOUR);
    store
        .fs()
        .corroborate_clock(store.fs().clock().now_ms() + 365 * 24 * HOUR, "test")
        .unwrap();
    let report = status(&store, &options(HOUR)).unwrap();
    let counters = StationCounters::default();
    counters.submitted.store(3, Ordering::Relaxed);
    counters.failed.store(1, Ordering::Relaxed);
    let text = render(&report, &counters, Some(4096));
    assert_eq!(sample(&text, r#"hl7_sessions{status="pending"}"#), 3);
    assert_eq!(sample(&text, r#"hl7_sessions{status="submitted"}"#), 1);
    assert_eq!(sample(&text, r#"hl7_sessions{status="failed"}"#), 1);
    let waited = (report.at - report.counts.oldest_waiting.as_ref().unwrap().start_time) / 1000;
    assert_eq!(sample(&text, "hl7_oldest_undelivered_seconds"), waited as i64);
    assert_eq!(sample(&text, r#"hl7_deliveries_total{outcome="submitted"}"#), 3);
    assert_eq!(sample(&text, r#"hl7_deliveries_total{outcome="retried"}"#), 0);
    assert_eq!(sample(&text, r#"hl7_deliveries_total{outcome="failed"}"#), 1);
    assert_eq!(sample(&text, "hl7_capture_sessions_total"), 0, "no relay: zero");
    assert_eq!(sample(&text, "hl7_store_bytes"), 4096);
    assert_eq!(sample(&text, "hl7_clock_suspect"), 1);
    let unknown = render(&report, &counters, None);
    assert_eq!(sample(&unknown, "hl7_store_bytes"), -1);
    assert!(!text.contains("MSH"), "never a message");
}

#[test]
fn the_store_size_is_read_at_most_once_a_minute() {
    let counters = StationCounters::default();
    assert_eq!(counters.store_bytes(|| None), None, "an unknown size is not kept");
    assert_eq!(counters.store_bytes(|| Some(10)), Some(10));
    assert_eq!(counters.store_bytes(|| Some(20)), Some(10), "reused");
}

#[tokio::test]
async fn deliveries_are_counted_by_outcome_until_the_workers_stop() {
    use session_workers::WorkerEvent;
    let counters = std::sync::Arc::new(StationCounters::default());
    let (events, receiver) = tokio::sync::broadcast::channel(16);
    let counting = tokio::spawn(session_daemon::metrics::count_deliveries(
        counters.clone(),
        receiver,
    ));
    let id = || "s-1".to_owned();
    for event in [
        WorkerEvent::Submitted { id: id() },
        WorkerEvent::Submitted { id: id() },
        WorkerEvent::Retrying {
            id: id(),
            attempts: 1,
            next_attempt_at: 0,
            error: "HTTP 503".into(),
        },
        WorkerEvent::Failed {
            id: id(),
            error: "HTTP 400".into(),
        },
        WorkerEvent::Progress {
            queued: 1,
            in_flight: 1,
        },
    ] {
        events.send(event).unwrap();
    }
    drop(events);
    counting.await.unwrap();
    let counted = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
    assert_eq!(
        (
            counted(&counters.submitted),
            counted(&counters.retried),
            counted(&counters.failed)
        ),
        (2, 1, 1)
    );
}

#[test]
fn every_kind_of_file_problem_counts_once_and_captures_by_whether_a_relay_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 0);
    std::fs::write(dir.path().join("s-8.json"), b"{ damaged").unwrap();
    std::fs::write(dir.path().join("s-9.json"), b"[ damaged too").unwrap();
    // Temps no write owns, left by a crash.
    for n in 1..=3 {
        std::fs::write(dir.path().join(format!(".s-1.json.4242-{n}.tmp")), b"{").unwrap();
    }
    // A name that is not a regular file.
    test_support::mkfifo(&dir.path().join("s-10.json"));
    // One capture in progress, two whose recorder is gone.
    let _live = store.fs().create_journal(&id("s-11")).unwrap();
    drop(store.fs().create_journal(&id("s-12")).unwrap());
    drop(store.fs().create_journal(&id("s-13")).unwrap());
    let report = status(&store, &options(HOUR)).unwrap();
    assert_eq!(
        (
            report.files.damaged,
            report.files.orphaned_temps,
            report.files.not_regular_files
        ),
        (2, 3, 1)
    );
    assert_eq!(report.problems(), 6);
    assert_eq!((report.capturing, report.recording_stalled), (1, 2));
    let stalled = report
        .alerts
        .iter()
        .find(|a| a.kind == AlertKind::RecordingFailed)
        .expect("a recording alert");
    assert!(
        stalled.message.starts_with("2 captures could not be stored"),
        "{stalled:?}"
    );
}

#[test]
fn a_session_waiting_exactly_the_threshold_is_not_yet_undelivered() {
    use session_fs::clock::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let start = 1_765_000_000_000;
    let clock = ManualClock::at(start + HOUR);
    let fs = session_fs::Store::options()
        .clock(std::sync::Arc::new(clock.clone()))
        .open(dir.path())
        .unwrap();
    let store = SessionStore::new(fs, DecodeOptions::default());
    let mut session = Session::new(id("s-1"), start, 30).completed_at(start + 1);
    store.save(&mut session).unwrap();
    let report = status(&store, &options(HOUR)).unwrap();
    assert_eq!(report.at, start + HOUR, "the report's one reading");
    assert!(report.alerts.is_empty(), "{:?}", report.alerts);
    clock.advance(1);
    let report = status(&store, &options(HOUR)).unwrap();
    assert_eq!(kinds(&report), [AlertKind::Undelivered]);
}
