//! The index against the files: an older reading never wins, the kept counts agree with
//! a count of the files after every kind of change, odd files leave the list, and a
//! search stops at its deadline or cancel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use session_model::SessionId;
use session_station::{Cancel, ListQuery, SessionIndex, SessionRow, Tally, search};
use session_store::{DecodeOptions, SessionStore};

fn store_with(dir: &std::path::Path, sessions: &[(&str, u64, &str)]) -> SessionStore {
    let store = SessionStore::open(dir, DecodeOptions::default()).unwrap();
    for (id, start, message) in sessions {
        let doc = serde_json::json!({
            "id": id, "startTime": start, "isComplete": true, "messages": [message],
        });
        let mut session = session_store::decode(doc.to_string().as_bytes()).unwrap().session;
        store.save(&mut session).unwrap();
    }
    store
}

fn ids(rows: &[SessionRow]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn an_older_reading_never_replaces_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &[("s-1", 10, "MSH|old")]);
    let old = store.load(&"s-1".parse().unwrap()).unwrap().unwrap();
    store
        .update(&"s-1".parse().unwrap(), |s| {
            s.submission
                .ignore()
                .map_err(session_store::refused(&s.id.clone()))
        })
        .unwrap();
    let index = SessionIndex::new();
    index.refresh(&store, &"s-1".parse().unwrap());
    // A reader that read the file before the change reports after it.
    index.observe(&old);
    let page = index.page(&ListQuery {
        limit: 10,
        ..ListQuery::default()
    });
    assert_eq!(page.rows[0].submission_status.as_deref(), Some("ignored"));
    assert_eq!(page.rows[0].revision, 2);
}

#[test]
fn the_kept_tally_agrees_with_a_count_of_the_files_after_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let sessions: Vec<(String, u64, &str)> =
        (0..12).map(|i| (format!("s-{i}"), 1_000 + i, "MSH|x")).collect();
    let borrowed: Vec<(&str, u64, &str)> = sessions.iter().map(|(id, t, m)| (id.as_str(), *t, *m)).collect();
    let store = store_with(dir.path(), &borrowed);
    let index = SessionIndex::new();
    index.rebuild(&store).unwrap();
    let now = 10_000;
    let same = |step: &str| {
        let (kept, kept_files) = index.counts(&store, now, 900_000).unwrap();
        // A count of the files, from scratch.
        let (tally, damaged) = Tally::of_store(&store).unwrap();
        assert_eq!(kept, tally.counts(now, 900_000), "after {step}");
        assert_eq!(kept_files.damaged, damaged, "after {step}");
    };
    same("the build");
    let id = |i: usize| -> SessionId { format!("s-{i}").parse().unwrap() };
    let change =
        |i: usize, f: fn(&mut session_model::Submission) -> Result<(), session_model::TransitionError>| {
            store
                .update(&id(i), |s| {
                    f(&mut s.submission).map_err(session_store::refused(&id(i)))
                })
                .unwrap();
            index.refresh(&store, &id(i));
        };
    change(0, session_model::Submission::ignore);
    same("an ignore");
    change(0, session_model::Submission::retry);
    same("a retry");
    store
        .update(&id(3), |s| {
            s.submission.status = session_model::SubmissionStatus::Failed;
            s.submission.last_error = Some("HTTP 503".into());
            s.submission.next_attempt_at = Some(u64::MAX / 4);
            Ok(())
        })
        .unwrap();
    index.refresh(&store, &id(3));
    same("a failure");
    store
        .update(&id(4), |s| {
            s.submission.next_attempt_at = Some(u64::MAX / 4);
            Ok(())
        })
        .unwrap();
    index.refresh(&store, &id(4));
    same("a retry far ahead");
    store.delete(&id(5)).unwrap();
    index.refresh(&store, &id(5));
    same("a delete");
    std::fs::write(
        dir.path().join("s-6.json"),
        b"{\"id\": \"s-6\", \"startTime\": \"x\"",
    )
    .unwrap();
    index.refresh(&store, &id(6));
    same("a damaged file");
    std::fs::write(
        dir.path().join("s-7.json"),
        br#"{"id": "s-7", "startTime": 1, "_metadata": {"version": "9.0.0"}, "submission": {"status": "pending"}}"#,
    )
    .unwrap();
    index.refresh(&store, &id(7));
    same("a newer build's file");
    index.rebuild(&store).unwrap();
    same("a rebuild");
}

#[test]
fn a_session_replaced_by_a_fifo_or_a_symlink_leaves_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(
        dir.path(),
        &[("s-1", 1, "MSH|a"), ("s-2", 2, "MSH|b"), ("s-3", 3, "MSH|c")],
    );
    let index = SessionIndex::new();
    index.rebuild(&store).unwrap();
    let file = |id: &str| dir.path().join(format!("{id}.json"));
    std::fs::remove_file(file("s-1")).unwrap();
    let fifo = std::ffi::CString::new(file("s-1").to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mkfifo has no other precondition.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::remove_file(file("s-2")).unwrap();
    std::os::unix::fs::symlink(file("s-3"), file("s-2")).unwrap();
    for id in ["s-1", "s-2"] {
        index.refresh(&store, &id.parse().unwrap());
    }
    let page = index.page(&ListQuery {
        limit: 10,
        ..ListQuery::default()
    });
    assert_eq!(ids(&page.rows), ["s-3"]);
    let (counts, files) = index.counts(&store, 10, 1).unwrap();
    assert_eq!(
        (counts.total, files.not_regular_files),
        (1, 2),
        "{counts:?} {files:?}"
    );
}

#[test]
fn what_a_change_saved_is_taken_as_saved_and_a_failed_change_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &[("s-1", 1, "MSH|a")]);
    let index = SessionIndex::new();
    index.rebuild(&store).unwrap();
    let id: SessionId = "s-1".parse().unwrap();
    let ignored = store.ignore(&id).unwrap();
    // The saved copy is taken as it is: the file is not read (it is gone here).
    std::fs::remove_file(dir.path().join("s-1.json")).unwrap();
    index.saved(&store, &id, Ok(&ignored));
    let page = index.page(&ListQuery {
        limit: 10,
        ..ListQuery::default()
    });
    assert_eq!(page.rows[0].submission_status.as_deref(), Some("ignored"));
    assert_eq!(page.rows[0].revision, 2);
    // A change that failed says nothing of the file: it is read, and it is gone.
    let failed = store.retry(&id).unwrap_err();
    index.saved(&store, &id, Err(&failed));
    assert_eq!(
        index
            .page(&ListQuery {
                limit: 10,
                ..ListQuery::default()
            })
            .total,
        0
    );
}

#[test]
fn a_search_stops_at_its_deadline_or_cancel_and_says_how_far_it_got() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(
        dir.path(),
        &[("s-1", 1, "MSH|GLU"), ("s-2", 2, "MSH|NA"), ("s-3", 3, "MSH|glu")],
    );
    let index = SessionIndex::new();
    index.rebuild(&store).unwrap();
    let query = ListQuery {
        descending: true,
        limit: 10,
        ..ListQuery::default()
    };
    let never = AtomicBool::new(false);
    let later = Instant::now() + std::time::Duration::from_secs(60);
    let found = search(&store, index.candidates(&query), "Glu", (0, 10), later, &never);
    assert_eq!(
        (ids(&index.rows(&found.ids)), found.matched, found.complete),
        (vec!["s-3", "s-1"], 2, true)
    );
    let past = Instant::now();
    let found = search(&store, index.candidates(&query), "glu", (0, 10), past, &never);
    assert_eq!((found.searched, found.matched, found.complete), (0, 0, false));
    let cancelled = AtomicBool::new(true);
    let found = search(
        &store,
        index.candidates(&query),
        "glu",
        (0, 10),
        later,
        &cancelled,
    );
    assert!(!found.complete && found.ids.is_empty());
    // The request's switch: dropping it cancels.
    let cancel = Cancel::default();
    let flag = cancel.flag();
    drop(cancel);
    assert!(flag.load(Ordering::Relaxed));
}

#[test]
fn what_recovery_read_is_taken_in_and_a_same_revision_reading_replaces_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &[("s-1", 10, "MSH|a"), ("s-2", 20, "MSH|b")]);
    let index = SessionIndex::new();
    let mut first = store.load(&"s-1".parse().unwrap()).unwrap().unwrap();
    index.observe(&first);
    index.observe(&store.load(&"s-2".parse().unwrap()).unwrap().unwrap());
    index.settle();
    let all = ListQuery {
        limit: 10,
        ..ListQuery::default()
    };
    assert_eq!(ids(&index.page(&all).rows), ["s-1", "s-2"]);
    // A writer that did not bump the revision: the later reading is the one kept.
    first.session.submission.status = session_model::SubmissionStatus::Ignored;
    index.observe(&first);
    assert_eq!(
        index.page(&all).rows[0].submission_status.as_deref(),
        Some("ignored")
    );
}

#[test]
fn the_files_problems_are_listed_at_most_every_10_s() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &[("s-1", 10, "MSH|a")]);
    let index = SessionIndex::new();
    index.rebuild(&store).unwrap();
    let (_, files) = index.counts(&store, 10, 1).unwrap();
    assert_eq!(files.orphaned_temps, 0);
    // A temp no write owns, left by a crash, appears between two readings.
    std::fs::write(dir.path().join(".s-1.json.4242-1.tmp"), b"{").unwrap();
    let (_, files) = index.counts(&store, 10, 1).unwrap();
    assert_eq!(files.orphaned_temps, 0, "the listing of a moment ago is reused");
    let fresh_index = SessionIndex::new();
    fresh_index.rebuild(&store).unwrap();
    assert_eq!(
        fresh_index.counts(&store, 10, 1).unwrap().1.orphaned_temps,
        1,
        "a new listing sees it"
    );
    let (_, fresh) = Tally::of_store(&store).unwrap();
    assert_eq!(fresh, 0, "a temp is no damaged session");
    // Past the 10 s, the first index lists again and sees it too.
    std::thread::sleep(std::time::Duration::from_millis(10_300));
    assert_eq!(
        index.counts(&store, 10, 1).unwrap().1.orphaned_temps,
        1,
        "a listing older than 10 s is not reused"
    );
}

#[test]
fn a_search_returns_the_page_of_its_matches_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(
        dir.path(),
        &[
            ("s-1", 1, "MSH|GLU"),
            ("s-2", 2, "MSH|NA"),
            ("s-3", 3, "MSH|glu"),
            ("s-4", 4, "MSH|Glu"),
        ],
    );
    let index = SessionIndex::new();
    index.rebuild(&store).unwrap();
    let query = ListQuery {
        limit: 10,
        ..ListQuery::default()
    };
    let never = AtomicBool::new(false);
    let later = Instant::now() + std::time::Duration::from_secs(60);
    let found = search(&store, index.candidates(&query), "glu", (1, 1), later, &never);
    assert_eq!((ids(&index.rows(&found.ids)), found.matched), (vec!["s-3"], 3));
    let found = search(&store, index.candidates(&query), "glu", (1, 5), later, &never);
    assert_eq!(ids(&index.rows(&found.ids)), ["s-3", "s-4"]);
    let found = search(&store, index.candidates(&query), "glu", (3, 5), later, &never);
    assert!(found.ids.is_empty() && found.matched == 3);
}

/// The disk (`OsStorage`, for every call the index makes), but reads of one file fail
/// with an I/O error (`EIO`) once `failing` is set. The trait's provided methods it
/// leaves at their defaults: this store only reads and lists.
#[derive(Debug)]
struct FailingReads {
    file: &'static str,
    failing: AtomicBool,
}

impl FailingReads {
    fn check(&self, path: &std::path::Path) -> std::io::Result<()> {
        if self.failing.load(Ordering::SeqCst) && path.file_name().is_some_and(|n| n == self.file) {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }
}

impl session_fs::Storage for FailingReads {
    fn create_dir(&self, path: &std::path::Path) -> std::io::Result<()> {
        session_fs::OsStorage.create_dir(path)
    }
    fn create_new(&self, path: &std::path::Path) -> std::io::Result<Box<dyn session_fs::WriteFile>> {
        session_fs::OsStorage.create_new(path)
    }
    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        session_fs::OsStorage.rename(from, to)
    }
    fn hard_link(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        session_fs::OsStorage.hard_link(from, to)
    }
    fn remove_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        session_fs::OsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        session_fs::OsStorage.sync_dir(dir)
    }
    fn read(&self, path: &std::path::Path, limit: u64) -> std::io::Result<session_fs::ReadOutcome> {
        self.check(path)?;
        session_fs::OsStorage.read(path, limit)
    }
    fn open_stream(&self, path: &std::path::Path, limit: u64) -> std::io::Result<session_fs::StreamOutcome> {
        self.check(path)?;
        session_fs::OsStorage.open_stream(path, limit)
    }
    fn list(&self, dir: &std::path::Path, sizes: bool) -> std::io::Result<Vec<session_fs::Entry>> {
        session_fs::OsStorage.list(dir, sizes)
    }
    fn lock(
        &self,
        path: &std::path::Path,
        mode: session_fs::LockMode,
        wait: bool,
    ) -> std::io::Result<Option<Box<dyn session_fs::HeldLock>>> {
        session_fs::OsStorage.lock(path, mode, wait)
    }
    fn kind(&self, path: &std::path::Path) -> std::io::Result<Option<session_fs::EntryKind>> {
        session_fs::OsStorage.kind(path)
    }
    fn set_mode(&self, path: &std::path::Path, mode: u32) -> std::io::Result<()> {
        session_fs::OsStorage.set_mode(path, mode)
    }
}

#[test]
fn a_session_that_cannot_be_read_for_a_moment_keeps_its_row() {
    // An I/O error says nothing about the file: unlike a file that is no longer a
    // regular one, it must not take the session off the list.
    let dir = tempfile::tempdir().unwrap();
    store_with(dir.path(), &[("s-1", 10, "MSH|a"), ("s-2", 20, "MSH|b")]);
    let disk = std::sync::Arc::new(FailingReads {
        file: "s-2.json",
        failing: AtomicBool::new(false),
    });
    let fs = session_fs::Store::options()
        .storage(disk.clone())
        .open(dir.path())
        .unwrap();
    let store = SessionStore::new(fs, DecodeOptions::default());
    let index = SessionIndex::new();
    index.rebuild(&store).unwrap();
    let listed = |index: &SessionIndex| {
        let page = index.page(&ListQuery {
            limit: 10,
            ..ListQuery::default()
        });
        let mut listed: Vec<String> = ids(&page.rows).into_iter().map(str::to_owned).collect();
        listed.sort();
        listed
    };
    assert_eq!(listed(&index), ["s-1", "s-2"]);
    disk.failing.store(true, Ordering::SeqCst);
    assert!(store.load(&"s-2".parse().unwrap()).is_err(), "the read fails");
    index.refresh(&store, &"s-2".parse().unwrap());
    assert_eq!(listed(&index), ["s-1", "s-2"]);
    // Once it reads again, a change to it shows as usual.
    disk.failing.store(false, Ordering::SeqCst);
    std::fs::remove_file(dir.path().join("s-2.json")).unwrap();
    index.refresh(&store, &"s-2".parse().unwrap());
    assert_eq!(listed(&index), ["s-1"]);
}
