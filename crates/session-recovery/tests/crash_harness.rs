//! Simulated power loss at every call of the write protocol, and inside recovery.
//!
//! For every workload of up to 3 operations (create, save, delete) over 2 ids, the
//! workload runs on a simulated disk that crashes after call k, for every k. Every disk
//! state a power cut at that moment may leave is materialised (or a seeded sample when
//! there are more than `STATES_PER_POINT`), the real `recover` runs on it, and the
//! invariants are checked. Then the same harness runs against write protocols missing a
//! file fsync or a directory fsync and must report violations.
//!
//! Every store here reads a wall clock that jumps at every reading (years ahead, years
//! behind, days, minutes) and knows no time since boot, so that every stamp the store
//! records is as wrong as a careless operator can make it: no guarantee may rest on it.

mod sim;

use std::path::Path;
use std::sync::Arc;

use session_fs::Store;
use session_model::{Session, SessionId};
use session_recovery::recover;
use session_store::{DecodeOptions, SessionStore, decode};
use sim::{Protocol, SimDisk};

const ROOT: &str = "/store";
const IDS: [&str; 2] = ["a", "b"];
const STATES_PER_POINT: usize = 300;

#[derive(Debug, Clone, Copy)]
enum Op {
    Create(usize),
    Save(usize),
    Delete(usize),
}

/// What the workload did, from the caller's side: per id, the state its last
/// acknowledged operation left (`None`: absent), and the operation in flight at the crash.
#[derive(Debug, Clone, Default)]
struct Model {
    acked: [Option<u32>; 2],
    in_flight: Option<(usize, Option<u32>)>,
}

fn session(id: &str, tag: u32) -> Session {
    let doc = format!(
        r#"{{"id": "{id}", "startTime": 1, "isComplete": true, "elements": [
            {{"id": "e", "timestamp": 1, "direction": "device-to-pc", "type": "message",
              "hexData": "4d5348", "rawBytes": {{"type": "Buffer", "data": [77, 83, 72]}}}}],
            "messages": ["MSH"], "tag": {tag}}}"#
    );
    decode(doc.as_bytes()).unwrap().session
}

/// A wall clock that jumps at every reading.
#[derive(Debug, Default)]
struct JumpingClock(std::sync::atomic::AtomicUsize);

impl session_fs::clock::Clock for JumpingClock {
    fn now_ms(&self) -> u64 {
        const DAY: u64 = 86_400_000;
        let real = session_fs::now_ms();
        let jumps = [
            real + 94 * 365 * DAY,
            real - 26 * 365 * DAY,
            real + 3 * DAY,
            real - 10 * 60_000,
            real,
        ];
        jumps[self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % jumps.len()]
    }
}

fn open(disk: &SimDisk, exclusive: bool) -> SessionStore {
    let options = Store::options()
        .storage(Arc::new(disk.clone()))
        .clock(Arc::new(JumpingClock::default()));
    let options = if exclusive { options.exclusive() } else { options };
    SessionStore::new(options.open(ROOT).unwrap(), DecodeOptions::default())
}

fn run_workload(disk: &SimDisk, ops: &[Op]) -> Model {
    let store = open(disk, false);
    let mut model = Model::default();
    for (n, &op) in ops.iter().enumerate() {
        let tag = n as u32 + 1;
        let (index, effect, result) = match op {
            Op::Create(i) => (i, Some(tag), store.create(&mut session(IDS[i], tag)).map(|_| ())),
            Op::Save(i) => (i, Some(tag), store.save(&mut session(IDS[i], tag)).map(|_| ())),
            Op::Delete(i) => (
                i,
                None,
                store.delete(&SessionId::new(IDS[i]).unwrap()).map(|_| ()),
            ),
        };
        match result {
            Ok(()) => model.acked[index] = effect,
            Err(_) if disk.has_crashed() => {
                model.in_flight = Some((index, effect));
                break;
            }
            Err(_) => {} // create of an existing id: refused, no effect
        }
    }
    model
}

fn tag_of(session: &Session) -> Option<u32> {
    session
        .unknown
        .get("tag")
        .and_then(|t| t.as_u64())
        .map(|t| t as u32)
}

/// The state of each id as a reader sees it, or a violation.
fn observe(store: &SessionStore) -> Result<[Option<u32>; 2], String> {
    let mut seen = [None, None];
    for (i, id) in IDS.iter().enumerate() {
        let id = SessionId::new(*id).unwrap();
        seen[i] = match store.load(&id) {
            Ok(Some(decoded)) => tag_of(&decoded.session),
            Ok(None) => None,
            Err(e) => return Err(format!("{id} unreadable after recovery: {e}")),
        };
    }
    Ok(seen)
}

/// Recovers a crashed disk and checks every invariant; `Err` describes a violation.
fn check(disk: &SimDisk, model: &Model) -> Result<(), String> {
    let store = open(disk, true);
    recover(&store).map_err(|e| format!("recovery failed: {e}"))?;
    let seen = observe(&store)?;
    for (i, state) in seen.iter().enumerate() {
        let began = model
            .in_flight
            .filter(|(id, _)| *id == i)
            .map(|(_, effect)| effect);
        if *state != model.acked[i] && Some(*state) != began {
            return Err(format!(
                "{}: found {state:?}, acknowledged {:?}, in flight {began:?}",
                IDS[i], model.acked[i]
            ));
        }
    }
    let temps = store.fs().maintenance().scan().map_err(|e| e.to_string())?.temps;
    if !temps.is_empty() {
        return Err(format!("temp files survived recovery: {temps:?}"));
    }
    let again = recover(&store).map_err(|e| format!("second recovery failed: {e}"))?;
    if !again.is_clean() || observe(&store)? != seen {
        return Err(format!("recovery is not idempotent: {again:?}"));
    }
    Ok(())
}

/// How many mutating calls `run` makes on a fork of `base` that never crashes.
fn calls_taken(base: &SimDisk, run: impl FnOnce(&SimDisk)) -> usize {
    let probe = base.fork(Protocol::Correct, None);
    run(&probe);
    probe.calls()
}

fn workloads() -> Vec<Vec<Op>> {
    let ops: Vec<Op> = (0..2)
        .flat_map(|i| [Op::Create(i), Op::Save(i), Op::Delete(i)])
        .collect();
    let mut all: Vec<Vec<Op>> = vec![vec![]];
    let mut out = Vec::new();
    for _ in 0..3 {
        all = all
            .iter()
            .flat_map(|prefix| {
                ops.iter().map(move |&op| {
                    let mut w = prefix.clone();
                    w.push(op);
                    w
                })
            })
            .collect();
        out.extend(all.iter().cloned());
    }
    out
}

#[derive(Debug, Default)]
struct Tally {
    crash_points: usize,
    states: usize,
    violations: Vec<String>,
}

fn explore(protocol: Protocol, workloads: &[Vec<Op>], states_per_point: usize, tally: &mut Tally) {
    for (w, ops) in workloads.iter().enumerate() {
        let base = SimDisk::new();
        let calls = calls_taken(&base, |disk| {
            run_workload(disk, ops);
        });
        for k in 1..=calls {
            let disk = base.fork(protocol, Some(k));
            let model = run_workload(&disk, ops);
            tally.crash_points += 1;
            for state in disk.crash_states(states_per_point, (w * 1000 + k) as u64) {
                tally.states += 1;
                if let Err(v) = check(&state, &model) {
                    tally
                        .violations
                        .push(format!("{ops:?} crash after call {k}: {v}"));
                }
            }
        }
    }
}

#[test]
fn no_acknowledged_write_is_lost_at_any_crash_point() {
    let mut tally = Tally::default();
    explore(Protocol::Correct, &workloads(), STATES_PER_POINT, &mut tally);
    eprintln!(
        "correct protocol: {} workloads, {} crash points, {} crash states checked",
        workloads().len(),
        tally.crash_points,
        tally.states
    );
    assert!(
        tally.violations.is_empty(),
        "{} violations, first: {:#?}",
        tally.violations.len(),
        &tally.violations[..tally.violations.len().min(5)]
    );
    assert!(tally.crash_points > 2000 && tally.states > 8_000, "{tally:?}");
}

/// Runs the harness against a broken write protocol; it must report violations.
fn assert_caught(protocol: Protocol, name: &str) {
    let mut tally = Tally::default();
    explore(protocol, &workloads()[..42], 64, &mut tally);
    eprintln!(
        "{name}: {} violations in {} states",
        tally.violations.len(),
        tally.states
    );
    assert!(
        !tally.violations.is_empty(),
        "{name}: the harness missed a broken protocol"
    );
}

#[test]
fn the_harness_catches_a_protocol_without_file_fsync() {
    assert_caught(Protocol::NoFileSync, "without file fsync");
}

#[test]
fn the_harness_catches_a_protocol_without_directory_fsync() {
    assert_caught(Protocol::NoDirSync, "without directory fsync");
}

#[test]
fn a_crash_inside_recovery_is_recovered_next_time() {
    let mut points = 0;
    let mut states = 0;
    for ops in workloads().iter().filter(|w| w.len() == 2) {
        let base = SimDisk::new();
        let calls = calls_taken(&base, |disk| {
            run_workload(disk, ops);
        });
        for k in 1..=calls {
            let disk = base.fork(Protocol::Correct, Some(k));
            let model = run_workload(&disk, ops);
            // Pick the crash state that leaves recovery the most to do.
            let Some(crashed) = disk
                .crash_states(16, k as u64)
                .into_iter()
                .max_by_key(|d| d.files().len())
            else {
                continue;
            };
            let recovery_calls = calls_taken(&crashed, |disk| {
                recover(&open(disk, true)).unwrap();
            });
            for j in 1..=recovery_calls {
                let during = crashed.fork(Protocol::Correct, Some(j));
                assert!(
                    recover(&open(&during, true)).is_err() || !during.has_crashed() || j == recovery_calls
                );
                points += 1;
                for state in during.crash_states(32, j as u64) {
                    states += 1;
                    if let Err(v) = check(&state, &model) {
                        panic!("{ops:?}, crash after workload call {k}, then recovery call {j}: {v}");
                    }
                }
            }
        }
    }
    eprintln!("crash inside recovery: {points} crash points, {states} states checked");
    assert!(points > 0);
}

#[test]
fn error_injection_leaves_the_old_version_and_no_temp() {
    for errno in [28 /* ENOSPC */, 5 /* EIO */, 13 /* EACCES */] {
        let base = SimDisk::new();
        let store = open(&base, false);
        store.save(&mut session("a", 1)).unwrap();
        drop(store);
        let calls = calls_taken(&base, |disk| {
            open(disk, false).save(&mut session("a", 2)).unwrap();
        });
        for call in 1..=calls {
            let disk = base.fork(Protocol::Correct, None).failing(call, errno);
            let store = open(&disk, false);
            let err = store.save(&mut session("a", 2)).expect_err("injected failure");
            assert!(err.to_string().contains(ROOT), "error names the file: {err}");
            let seen = observe(&store).unwrap()[0];
            // The last call is the directory fsync after the rename: the new version is in
            // place but was not acknowledged. Every earlier failure leaves the old one.
            if call < calls {
                assert_eq!(seen, Some(1), "call {call} errno {errno}: {err}");
            } else {
                assert!(seen == Some(1) || seen == Some(2));
            }
            drop(store);
            let store = open(&disk, true);
            recover(&store).unwrap();
            assert!(
                store.fs().maintenance().scan().unwrap().temps.is_empty(),
                "call {call}: temp left after recovery"
            );
            assert_eq!(observe(&store).unwrap()[0], seen);
        }
    }
}

#[test]
fn sim_disk_models_the_documented_failure_model() {
    // An unsynced rename may be lost; a synced one may not.
    let disk = SimDisk::new();
    let file = Path::new(ROOT).join("x");
    disk.put_durable(&file, b"old");
    let crashed = disk.fork(Protocol::Correct, Some(1));
    session_fs::Storage::rename(&crashed, &file, &Path::new(ROOT).join("y")).unwrap();
    let outcomes: Vec<_> = crashed
        .crash_states(10, 0)
        .iter()
        .map(|d| d.files().keys().cloned().collect::<Vec<_>>())
        .collect();
    assert!(outcomes.contains(&vec![file.clone()]) && outcomes.contains(&vec![Path::new(ROOT).join("y")]));
}

#[test]
fn a_save_or_delete_over_a_damaged_file_never_loses_it_at_any_crash_point() {
    // Valid JSON that does not decode: only the decoder knows it is damaged.
    let damaged: &[u8] = br#"{"id": "a", "startTime": "yesterday", "messages": ["MSH|1"]}"#;
    let mut states = 0;
    for ops in [
        vec![Op::Save(0)],
        vec![Op::Delete(0)],
        vec![Op::Save(0), Op::Save(0)],
    ] {
        let base = SimDisk::new();
        drop(open(&base, false));
        base.put_durable(&Path::new(ROOT).join("a.json"), damaged);
        let calls = calls_taken(&base, |disk| {
            run_workload(disk, &ops);
        });
        for k in 1..=calls {
            let disk = base.fork(Protocol::Correct, Some(k));
            let model = run_workload(&disk, &ops);
            for state in disk.crash_states(STATES_PER_POINT, k as u64) {
                states += 1;
                if let Err(v) = check(&state, &model) {
                    panic!("{ops:?} crash after call {k}: {v}");
                }
                let kept = state.files().into_iter().any(|(path, bytes)| {
                    bytes == damaged && path.parent() == Some(&Path::new(ROOT).join(".quarantine"))
                });
                let live = state
                    .files()
                    .get(&Path::new(ROOT).join("a.json"))
                    .map(Vec::as_slice)
                    == Some(damaged);
                assert!(
                    kept || live,
                    "{ops:?} crash after call {k}: the damaged file is gone"
                );
            }
        }
        // Without a crash, the damaged original ends in quarantine, never the trash.
        let done = base.fork(Protocol::Correct, None);
        run_workload(&done, &ops);
        assert!(
            done.files()
                .iter()
                .any(|(p, b)| b == damaged && p.starts_with(Path::new(ROOT).join(".quarantine"))),
            "{ops:?}"
        );
        assert!(
            !done
                .files()
                .iter()
                .any(|(p, _)| p.starts_with(Path::new(ROOT).join(".trash"))),
            "{ops:?}"
        );
    }
    assert!(states > 50, "{states}");
}

#[test]
fn a_store_temp_never_beats_the_apps_later_file() {
    // A complete store temp (revision 2) from a save never acknowledged, and the app's
    // later 1.0.0 file (no revision): whatever a crash leaves, recovery keeps the app's.
    let store_copy = {
        let base = SimDisk::new();
        let store = open(&base, false);
        store.save(&mut session("a", 1)).unwrap();
        store.save(&mut session("a", 2)).unwrap();
        base.files()[&Path::new(ROOT).join("a.json")].clone()
    };
    let saved_at = decode(&store_copy).unwrap().session.metadata.saved_at;
    let app_file = format!(
        r#"{{"id": "a", "startTime": 1, "isComplete": true, "elements": [], "messages": [],
            "submissionStatus": "pending", "persistedUntil": 9, "tag": 3,
            "_metadata": {{"version": "1.0.0", "savedAt": {}, "retentionDays": 30}}}}"#,
        saved_at + 1000
    );
    let disk = SimDisk::new();
    drop(open(&disk, false));
    disk.put_durable(&Path::new(ROOT).join(".a.json.1-2-3.tmp"), &store_copy);
    disk.put_durable(&Path::new(ROOT).join("a.json"), app_file.as_bytes());
    let store = open(&disk, true);
    let report = recover(&store).unwrap();
    assert_eq!(observe(&store).unwrap()[0], Some(3), "{report:?}");
    assert!(
        disk.files()
            .iter()
            .any(|(p, b)| b == &store_copy && p.starts_with(Path::new(ROOT).join(".quarantine"))),
        "the temp is kept in quarantine, not trashed"
    );
}
