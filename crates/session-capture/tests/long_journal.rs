//! Folding a journal costs the memory of one record, not of the journal: a capture cut
//! off after 64 MiB of elements (an 85 MB journal) is recovered by a process whose
//! peak resident memory stays under 64 MiB, and the session holds every byte.

use session_capture::{Endpoints, FramedElement, MAX_ELEMENT, Recorder, recover_journals};
use session_model::{Direction, ElementKind};
use session_store::{DecodeOptions, SessionStore};

const CHILD_ENV: &str = "SESSION_CAPTURE_FOLD_CHILD_DIR";
const ELEMENTS: usize = 16;
const PEAK_LIMIT_KIB: u64 = 64 * 1024;

fn store(dir: &std::path::Path) -> SessionStore {
    SessionStore::open(dir, DecodeOptions::default()).unwrap()
}

fn element_bytes(n: usize) -> Vec<u8> {
    // Distinct per element, and not one repeated byte: each must arrive where it was.
    (0..MAX_ELEMENT).map(|i| (i * 31 + n * 7) as u8).collect()
}

/// The peak resident memory of this process so far, KiB (`VmHWM`).
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Not a test on its own: the process of the test below that folds the journal.
#[test]
fn child_recovers_the_journals() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let report = recover_journals(&store(std::path::Path::new(&dir))).unwrap();
    assert_eq!(report.interrupted.len(), 1, "{report:?}");
    println!("peak_kib={}", peak_kib());
}

#[test]
fn a_journal_larger_than_the_memory_bound_is_folded_within_it() {
    // An 85 MB journal and its session: beside the build, not in a possibly small /tmp.
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let recorder = Recorder::new(store(tmp.path()));
    let endpoints = Endpoints {
        device_ip: Some("10.0.0.7".into()),
        lis_ip: Some("10.0.0.1".into()),
    };
    let mut capture = recorder.begin(&endpoints, 1_000).unwrap();
    let id = capture.id().clone();
    for n in 0..ELEMENTS {
        capture
            .append(&FramedElement {
                timestamp: 1_000 + n as u64,
                direction: Direction::DeviceToPc,
                kind: ElementKind::Message,
                bytes: element_bytes(n),
            })
            .unwrap();
    }
    // Cut off as a crash cuts it: the journal stays, with no end record.
    drop(capture);
    let journal = tmp.path().join(".journal").join(format!("{id}.journal"));
    let journal_len = std::fs::metadata(&journal).unwrap().len();
    assert!(journal_len > PEAK_LIMIT_KIB * 1024 * 5 / 4, "{journal_len}");

    let out = test_support::rerun_as_child("child_recovers_the_journals")
        .env(CHILD_ENV, tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.split("peak_kib=").nth(1))
        .unwrap_or_else(|| panic!("the child reports its peak: {stdout}"))
        .parse()
        .unwrap();
    assert!(
        peak < PEAK_LIMIT_KIB,
        "folding a {journal_len}-byte journal peaked at {peak} KiB"
    );

    assert!(!journal.exists(), "the journal is folded and removed");
    let session = store(tmp.path()).load(&id).unwrap().unwrap().session;
    assert!(!session.is_complete && session.interrupted.is_some());
    assert_eq!(session.elements.len(), ELEMENTS);
    for (n, element) in session.elements.iter().enumerate() {
        assert_eq!(element.timestamp, 1_000 + n as u64);
        assert!(element.data.0 == element_bytes(n), "element {n} differs");
    }
}
