//! `relay::recover_orphans`, the relay's way of storing the captures a crash cut off:
//! every journal no live capture holds becomes a session, and the operator is warned
//! when (and only when) there was something to store.
#![cfg(feature = "relay")]

use std::sync::{Arc, Mutex};

use session_capture::relay::recover_orphans;
use session_capture::{Endpoints, FramedElement, Recorder};
use session_model::{Direction, ElementKind, InterruptionReason};
use session_store::{DecodeOptions, SessionStore};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata};

/// A subscriber that keeps the warnings logged while it is the default, each as its
/// fields (`message=... interrupted=1 ...`).
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() == Level::WARN {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `recover_orphans` and returns the relay's warnings about stored captures.
fn recover_and_warnings(recorder: &Recorder) -> Vec<String> {
    let warnings = Warnings::default();
    tracing::subscriber::with_default(warnings.clone(), || recover_orphans(recorder));
    let all = warnings.0.lock().unwrap().clone();
    all.into_iter()
        .filter(|w| w.contains("a crash cut off"))
        .collect()
}

fn recorder(dir: &std::path::Path) -> Recorder {
    Recorder::new(SessionStore::open(dir, DecodeOptions::default()).unwrap())
}

fn start_element() -> FramedElement {
    FramedElement {
        timestamp: 1_001,
        direction: Direction::DeviceToPc,
        kind: ElementKind::Start,
        bytes: b"\x05".to_vec(),
    }
}

#[test]
fn with_nothing_cut_off_nothing_is_stored_and_no_one_is_warned() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    assert!(recover_and_warnings(&rec).is_empty(), "an empty store");
    // A live capture's journal is held: not an orphan.
    let mut live = rec.begin(&Endpoints::default(), 1_000).unwrap();
    live.append(&start_element()).unwrap();
    assert!(recover_and_warnings(&rec).is_empty(), "a live capture");
    assert_eq!(rec.store().fs().journals().unwrap().len(), 1, "its journal stays");
    assert!(rec.store().load(live.id()).unwrap().is_none());
}

#[test]
fn a_capture_a_crash_cut_off_is_stored_as_interrupted_and_the_operator_warned() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let mut cut = rec.begin(&Endpoints::default(), 1_000).unwrap();
    cut.append(&start_element()).unwrap();
    let id = cut.id().clone();
    drop(cut); // the process died: the journal is no one's
    let warnings = recover_and_warnings(&rec);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("interrupted=1 finished=0 torn_records=0"),
        "{warnings:?}"
    );
    let stored = rec.store().load(&id).unwrap().expect("stored").session;
    assert_eq!(stored.interrupted.unwrap().reason, InterruptionReason::Crash);
    assert!(rec.store().fs().journals().unwrap().is_empty());
}

#[test]
fn a_capture_that_ended_but_was_not_stored_is_stored_and_counted_as_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    let mut done = rec.begin(&Endpoints::default(), 1_000).unwrap();
    done.append(&start_element()).unwrap();
    let ended = done.end(1_500, None).unwrap();
    let id = ended.id().clone();
    drop(ended); // its end is journaled; the file was never written
    let warnings = recover_and_warnings(&rec);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("interrupted=0 finished=1 torn_records=0"),
        "{warnings:?}"
    );
    let stored = rec.store().load(&id).unwrap().expect("stored").session;
    assert!(stored.is_complete && stored.interrupted.is_none());
}

#[test]
fn a_journal_torn_before_its_begin_is_reported_though_it_makes_no_session() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = recorder(tmp.path());
    // Make the journal directory the store's way, then leave a torn begin in it.
    drop(rec.begin(&Endpoints::default(), 1_000).unwrap());
    assert_eq!(recover_and_warnings(&rec).len(), 1);
    let mut torn = session_fs::JOURNAL_HEADER.to_vec();
    torn.extend_from_slice(&[40, 0, 0, 0, 1]);
    std::fs::write(tmp.path().join(".journal/session-40.journal"), torn).unwrap();
    let warnings = recover_and_warnings(&rec);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("interrupted=0 finished=0 torn_records=1"),
        "{warnings:?}"
    );
}
