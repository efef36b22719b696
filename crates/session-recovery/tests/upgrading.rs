//! `recover_upgrading`: recovery's one pass upgrades every outdated file it reads, on
//! the threads that read it, and hands on each session as its file is afterwards.

use std::collections::BTreeMap;
use std::path::Path;

use session_fs::Store;
use session_store::{DecodeOptions, SchemaVersion, SessionStore};

const NEWER: &[u8] = br#"{"id": "newer", "_metadata": {"version": "99.0.0"}}"#;

/// `old` `1.0.0` files (`s0000.json`...), two torn ones, a newer build's file and one
/// current session.
fn mixed_store(dir: &Path, old: usize) -> BTreeMap<String, Vec<u8>> {
    let mut originals = BTreeMap::new();
    for n in 0..old {
        let bytes = test_support::fixture_as("v1/session-21.json", &format!("s{n:04}"));
        std::fs::write(dir.join(format!("s{n:04}.json")), &bytes).unwrap();
        originals.insert(format!("s{n:04}.json"), bytes);
    }
    for n in 0..2 {
        std::fs::write(dir.join(format!("torn{n}.json")), b"{\"torn").unwrap();
    }
    std::fs::write(dir.join("newer.json"), NEWER).unwrap();
    let store = SessionStore::open(dir, DecodeOptions::default()).unwrap();
    let mut current = session_store::decode(br#"{"id": "current", "startTime": 5, "isComplete": true}"#)
        .unwrap()
        .session;
    store.save(&mut current).unwrap();
    originals
}

fn upgrade_in_one_pass(old: usize) {
    let dir = tempfile::tempdir().unwrap();
    let originals = mixed_store(dir.path(), old);
    let current_before = std::fs::read(dir.path().join("current.json")).unwrap();
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let upgrade = store.upgrade();
    let mut seen = BTreeMap::new();
    let mut reading = None;
    let report = session_recovery::recover_upgrading(
        &store,
        &upgrade,
        |files| reading = Some(files),
        |id, decoded| {
            assert!(
                seen.insert(id.to_string(), decoded).is_none(),
                "{id} visited twice"
            );
        },
    )
    .unwrap();
    assert_eq!(
        reading,
        Some(old + 4),
        "every live file: the old, the torn, the newer, the current"
    );
    let run = upgrade.run().to_string();
    let upgraded = upgrade.finish();

    assert_eq!(report.quarantined, 2, "{report:?}");
    assert_eq!((upgraded.migrated, upgraded.failed), (old, 0), "{upgraded:?}");
    assert_eq!(seen.len(), old + 1, "every old session and the current one");
    for (id, decoded) in &seen {
        let on_disk = std::fs::read(dir.path().join(format!("{id}.json"))).unwrap();
        assert_eq!(
            &session_store::decode(&on_disk).unwrap(),
            decoded,
            "{id} as its file is"
        );
        assert_eq!(decoded.from, SchemaVersion::CURRENT, "{id}");
    }
    assert_eq!(
        std::fs::read(dir.path().join("current.json")).unwrap(),
        current_before
    );
    assert_eq!(std::fs::read(dir.path().join("newer.json")).unwrap(), NEWER);
    let kept: BTreeMap<String, Vec<u8>> = std::fs::read_dir(dir.path().join(".backup").join(&run))
        .unwrap()
        .map(|f| {
            let f = f.unwrap();
            (
                f.file_name().to_string_lossy().into_owned(),
                std::fs::read(f.path()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kept, originals,
        "every original, byte for byte, in the pass's one run"
    );
    assert_eq!(std::fs::read_dir(dir.path().join(".backup")).unwrap().count(), 1);
    assert!(
        session_recovery::recover(&store).unwrap().is_clean(),
        "nothing left for recovery"
    );
}

#[test]
fn a_small_store_is_upgraded_as_it_is_read() {
    upgrade_in_one_pass(3);
}

#[test]
fn a_large_store_is_upgraded_as_it_is_read_on_every_core() {
    // Past 512 files recovery reads on several threads; each upgrades what it reads.
    upgrade_in_one_pass(600);
}

#[test]
fn plain_recovery_upgrades_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let originals = mixed_store(dir.path(), 3);
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let mut from = Vec::new();
    session_recovery::recover_visiting(&store, |id, decoded| from.push((id.to_string(), decoded.from)))
        .unwrap();
    from.sort();
    assert_eq!(
        from.iter().filter(|(_, v)| *v == SchemaVersion::V1_0_0).count(),
        3
    );
    for (name, bytes) in &originals {
        assert_eq!(&std::fs::read(dir.path().join(name)).unwrap(), bytes, "{name}");
    }
    assert!(!dir.path().join(".backup").exists());
}

const KILL_CHILD_DIR: &str = "SESSION_RECOVERY_UPGRADE_CHILD_DIR";
const KILLED_SESSIONS: usize = 60;

/// Not a test on its own: the child the kill test below SIGKILLs mid-pass.
#[test]
fn child_recovers_and_upgrades_until_killed() {
    let Ok(dir) = std::env::var(KILL_CHILD_DIR) else {
        return;
    };
    let store = SessionStore::new(
        Store::options().exclusive().open(dir).unwrap(),
        DecodeOptions::default(),
    );
    let upgrade = store.upgrade();
    println!("started");
    let mut visited = 0;
    session_recovery::recover_upgrading(
        &store,
        &upgrade,
        |_| {},
        |_, _| {
            visited += 1;
            println!("visited {visited}");
        },
    )
    .unwrap();
    println!("finished");
}

/// The app's files `kill-000.json`...: the session each must hold, old or upgraded.
fn legacy_store(dir: &Path) -> BTreeMap<String, session_store::Session> {
    let mut expected = BTreeMap::new();
    for n in 0..KILLED_SESSIONS {
        let id = format!("kill-{n:03}");
        let bytes = test_support::fixture_as("v1/session-23.json", &id);
        std::fs::write(dir.join(format!("{id}.json")), &bytes).unwrap();
        expected.insert(id, session_store::decode(&bytes).unwrap().session);
    }
    expected
}

#[test]
fn sigkill_during_the_upgrading_pass_leaves_every_session_old_or_new_and_a_rerun_finishes() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let tmp = tempfile::tempdir().unwrap();
    let expected = legacy_store(tmp.path());
    let (mut kills, mut mid_pass) = (0, 0);
    for round in 0..12usize {
        let mut child = test_support::ChildGuard::new(
            test_support::rerun_as_child("child_recovers_and_upgrades_until_killed")
                .env(KILL_CHILD_DIR, tmp.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Killed once it has handed on a chosen number of sessions (none: at its start),
        // so that the kill lands where the pass is, not where a clock says.
        let after = (round * 7) % (KILLED_SESSIONS / 2);
        let reached = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .any(|l| match l.rsplit_once("visited ") {
                Some((_, n)) => n.trim().parse::<usize>().is_ok_and(|n| n >= after),
                None => after == 0 && l.contains("started"),
            });
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        if !reached {
            continue; // it finished before the chosen moment: nothing mid-pass to check
        }
        let (mut old, mut new) = (0, 0);
        for (id, want) in &expected {
            let bytes = std::fs::read(tmp.path().join(format!("{id}.json")))
                .unwrap_or_else(|e| panic!("round {round}: {id} is gone: {e}"));
            let decoded = session_store::decode(&bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
            let mut got = decoded.session;
            if decoded.from == SchemaVersion::CURRENT {
                new += 1;
                // An upgraded file's original is kept, byte for byte the app's.
                let kept = std::fs::read_dir(tmp.path().join(".backup"))
                    .unwrap()
                    .map(|run| run.unwrap().path().join(format!("{id}.json")))
                    .find(|p| p.exists())
                    .unwrap_or_else(|| panic!("{id} upgraded with no original kept"));
                assert_eq!(
                    session_store::decode(&std::fs::read(kept).unwrap())
                        .unwrap()
                        .session,
                    *want
                );
            } else {
                old += 1;
            }
            got.metadata.revision = want.metadata.revision;
            got.metadata.saved_at = want.metadata.saved_at;
            got.metadata.version = want.metadata.version.clone();
            assert_eq!(&got, want, "round {round}: {id} neither fully old nor fully new");
        }
        if old > 0 && new > 0 {
            mid_pass += 1;
        }
    }
    // The next start finishes the job (a torn temp is recovery's to handle).
    let store = SessionStore::new(
        Store::options().exclusive().open(tmp.path()).unwrap(),
        DecodeOptions::default(),
    );
    let upgrade = store.upgrade();
    session_recovery::recover_upgrading(&store, &upgrade, |_| {}, |_, _| {}).unwrap();
    upgrade.finish();
    for id in expected.keys() {
        let bytes = std::fs::read(tmp.path().join(format!("{id}.json"))).unwrap();
        assert_eq!(
            session_store::decode(&bytes).unwrap().from,
            SchemaVersion::CURRENT,
            "{id}"
        );
    }
    eprintln!("{kills} SIGKILLs during the upgrading pass ({mid_pass} part-way), every session intact");
    assert!(mid_pass >= 3, "too few kills landed part-way: {mid_pass}");
}

/// `recover_upgrading_summarized` on a store of `old` legacy files: each session's
/// summary, and the threads that made them.
fn summarized(
    old: usize,
) -> (
    BTreeMap<String, (usize, SchemaVersion)>,
    Vec<std::thread::ThreadId>,
) {
    let dir = tempfile::tempdir().unwrap();
    mixed_store(dir.path(), old);
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let upgrade = store.upgrade();
    let summarizers = std::sync::Mutex::new(Vec::new());
    let mut seen = BTreeMap::new();
    let report = session_recovery::recover_upgrading_summarized(
        &store,
        &upgrade,
        |_| {},
        |id, decoded| {
            summarizers.lock().unwrap().push(std::thread::current().id());
            (id.to_string(), decoded.session.elements.len(), decoded.from)
        },
        |id, (summarized_id, elements, from)| {
            assert_eq!(id.as_str(), summarized_id, "a summary reaches its own session");
            assert!(
                seen.insert(id.to_string(), (elements, from)).is_none(),
                "{id} visited twice"
            );
        },
    )
    .unwrap();
    assert_eq!(report.quarantined, 2, "{report:?}");
    assert_eq!(upgrade.finish().migrated, old);
    // Each summary is of the session as its file is afterwards: upgraded, whole.
    for (id, (elements, from)) in &seen {
        let on_disk = session_store::decode(&std::fs::read(dir.path().join(format!("{id}.json"))).unwrap())
            .unwrap()
            .session;
        assert_eq!(*elements, on_disk.elements.len(), "{id}");
        assert_eq!(*from, SchemaVersion::CURRENT, "{id}");
    }
    (seen, summarizers.into_inner().unwrap())
}

#[test]
fn each_session_is_summarized_once_by_the_thread_that_read_it() {
    let (seen, summarizers) = summarized(600);
    assert_eq!(seen.len(), 601, "every old session and the current one");
    assert_eq!(summarizers.len(), 601, "summarized once each");
    assert!(
        seen.iter()
            .filter(|(id, _)| id.starts_with('s'))
            .all(|(_, (elements, _))| *elements > 0),
        "the old sessions' elements reach the summary"
    );
    let me = std::thread::current().id();
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        // Past 512 files the pass reads on several threads: none of it on the caller's.
        assert!(
            summarizers.iter().all(|t| *t != me),
            "summarized on the reading threads"
        );
    }
    // A small store is read on the calling thread, and summarized there.
    let (seen, summarizers) = summarized(3);
    assert_eq!(seen.len(), 4);
    assert!(summarizers.iter().all(|t| *t == me));
}

/// A summary that counts how many of its kind are alive, and the most there ever were.
struct Counted<'a>(&'a (std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize));

impl<'a> Counted<'a> {
    fn new(counts: &'a (std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize)) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let alive = counts.0.fetch_add(1, SeqCst) + 1;
        counts.1.fetch_max(alive, SeqCst);
        Counted(counts)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn summaries_stream_to_the_caller_never_all_in_memory_at_once() {
    // At most four batches of 256 wait, one fills per reading thread and one is being
    // visited: far fewer than every session of a store twice that size.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let bound = (4 + cores + 1) * 256;
    let files = 2 * bound;
    let dir = tempfile::tempdir().unwrap();
    let bytes = br#"{"id": "x", "startTime": 5, "isComplete": true}"#;
    for n in 0..files {
        let text = String::from_utf8_lossy(bytes).replace("\"x\"", &format!("\"c{n:05}\""));
        std::fs::write(dir.path().join(format!("c{n:05}.json")), text).unwrap();
    }
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path()).unwrap(),
        DecodeOptions::default(),
    );
    let upgrade = store.upgrade();
    let counts = Default::default();
    let mut visited = 0;
    session_recovery::recover_upgrading_summarized(
        &store,
        &upgrade,
        |_| {},
        |_, _| Counted::new(&counts),
        |_, counted| {
            visited += 1;
            drop(counted);
        },
    )
    .unwrap();
    assert_eq!(visited, files);
    let most = counts.1.load(std::sync::atomic::Ordering::SeqCst);
    assert!(most <= bound, "{most} summaries alive at once of {files}");
}
