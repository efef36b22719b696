//! Simulated power loss at every call of a capture: begin, appends, complete or
//! abandon, two captures interleaved. After each crash, the real `recover` must leave
//! every acknowledged element in a session file, in order, with nothing invented; a
//! capture that had not ended is `interrupted` and never sendable; no journal survives;
//! and recovery is idempotent. Against a disk that ignores file fsyncs, violations
//! must show up, which is how we know this test can fail.

mod sim;

use std::sync::Arc;

use session_capture::{Endpoints, FramedElement, Recorder};
use session_fs::Store;
use session_model::{Direction, ElementKind, InterruptionReason, SessionId};
use session_recovery::recover;
use session_store::{DecodeOptions, SessionStore};
use sim::{Protocol, SimDisk};

const ROOT: &str = "/store";
const STATES_PER_POINT: usize = 200;

#[derive(Debug, Clone, Copy)]
enum Step {
    Begin(usize),
    Append(usize),
    Complete(usize),
    Abandon(usize),
}

/// What the caller was told, per capture: its id once begun, the elements acknowledged,
/// whether its end was acknowledged, and the step in flight at the crash.
#[derive(Debug, Clone, Default)]
struct Told {
    ids: [Option<SessionId>; 2],
    acked: [Vec<Vec<u8>>; 2],
    ended: [Option<bool>; 2], // Some(true): completed, Some(false): abandoned
    in_flight: Option<Step>,
}

fn element(n: usize, capture: usize) -> FramedElement {
    FramedElement {
        timestamp: 10 + n as u64,
        direction: Direction::DeviceToPc,
        kind: ElementKind::Message,
        bytes: format!("MSH|{capture}|{n}\r\n").into_bytes(),
    }
}

fn open(disk: &SimDisk, exclusive: bool) -> SessionStore {
    let options = Store::options().storage(Arc::new(disk.clone()));
    let options = if exclusive { options.exclusive() } else { options };
    SessionStore::new(options.open(ROOT).unwrap(), DecodeOptions::default())
}

fn run(disk: &SimDisk, steps: &[Step]) -> Told {
    let recorder = Recorder::new(open(disk, false));
    let mut open_captures = [None, None];
    let mut told = Told::default();
    for (n, &step) in steps.iter().enumerate() {
        let result = match step {
            Step::Begin(c) => recorder.begin(&Endpoints::default(), 1).map(|capture| {
                told.ids[c] = Some(capture.id().clone());
                open_captures[c] = Some(capture);
            }),
            Step::Append(c) => {
                let e = element(n, c);
                let Some(capture) = open_captures[c].as_mut() else {
                    continue;
                };
                capture.append(&e).map(|()| told.acked[c].push(e.bytes))
            }
            Step::Complete(c) => {
                let Some(capture) = open_captures[c].take() else {
                    continue;
                };
                capture.complete(99).map(|_| told.ended[c] = Some(true))
            }
            Step::Abandon(c) => {
                let Some(capture) = open_captures[c].take() else {
                    continue;
                };
                capture
                    .abandon(99, InterruptionReason::ConnectionClosed)
                    .map(|_| told.ended[c] = Some(false))
            }
        };
        if result.is_err() {
            assert!(disk.has_crashed(), "{step:?} failed without a crash");
            told.in_flight = Some(step);
            break;
        }
    }
    told
}

fn check(disk: &SimDisk, told: &Told) -> Result<(), String> {
    let store = open(disk, true);
    let report = recover(&store).map_err(|e| format!("recovery failed: {e}"))?;
    if !report.problems.is_empty() {
        return Err(format!("recovery reported problems: {:?}", report.problems));
    }
    if !store.fs().journals().map_err(|e| e.to_string())?.is_empty() {
        return Err("a journal survived recovery".into());
    }
    let mut snapshot = Vec::new();
    for c in 0..2 {
        let in_flight_here = matches!(told.in_flight, Some(Step::Begin(x) | Step::Append(x) | Step::Complete(x) | Step::Abandon(x)) if x == c);
        let Some(id) = &told.ids[c] else {
            continue; // never acknowledged as begun: may or may not exist; nothing promised
        };
        let Some(loaded) = store.load(id).map_err(|e| e.to_string())? else {
            return Err(format!("capture {c} ({id}) was begun but has no session file"));
        };
        let s = loaded.session;
        let got: Vec<Vec<u8>> = s.elements.iter().map(|e| e.data.0.clone()).collect();
        let acked = &told.acked[c];
        let extra_allowed = usize::from(in_flight_here && matches!(told.in_flight, Some(Step::Append(_))));
        if got.len() < acked.len()
            || got.len() > acked.len() + extra_allowed
            || got[..acked.len()] != acked[..]
        {
            return Err(format!(
                "capture {c}: {} elements found, {} acknowledged (+{extra_allowed} in flight)",
                got.len(),
                acked.len()
            ));
        }
        match told.ended[c] {
            Some(true) if !s.is_complete || s.interrupted.is_some() => {
                return Err(format!(
                    "capture {c}: completion acknowledged, session not complete"
                ));
            }
            Some(false) if s.is_complete || s.interrupted.is_none() => {
                return Err(format!(
                    "capture {c}: abandon acknowledged, session not interrupted"
                ));
            }
            None if s.is_complete && !in_flight_here => {
                return Err(format!("capture {c}: never ended, yet complete"));
            }
            _ => {}
        }
        if s.is_complete == s.interrupted.is_some() {
            return Err(format!("capture {c}: complete and interrupted disagree"));
        }
        if s.interrupted.is_some() && s.is_sendable(u64::MAX) {
            return Err(format!("capture {c}: interrupted yet sendable"));
        }
        snapshot.push(s);
    }
    let again = recover(&store).map_err(|e| format!("second recovery failed: {e}"))?;
    if !again.is_clean() || again.interrupted != 0 {
        return Err(format!("recovery is not idempotent: {again:?}"));
    }
    Ok(())
}

fn workloads() -> Vec<Vec<Step>> {
    use Step::*;
    vec![
        vec![Begin(0), Append(0), Append(0), Complete(0)],
        vec![Begin(0), Append(0), Abandon(0)],
        vec![
            Begin(0),
            Append(0),
            Begin(1),
            Append(1),
            Append(0),
            Complete(0),
            Append(1),
            Abandon(1),
        ],
    ]
}

fn explore(protocol: Protocol) -> (usize, usize, Vec<String>) {
    let (mut points, mut states, mut violations) = (0, 0, Vec::new());
    for (w, steps) in workloads().iter().enumerate() {
        let probe = SimDisk::new().fork(Protocol::Correct, None);
        run(&probe, steps);
        for k in 1..=probe.calls() {
            let disk = SimDisk::new().fork(protocol, Some(k));
            let told = run(&disk, steps);
            points += 1;
            for state in disk.crash_states(STATES_PER_POINT, (w * 1000 + k) as u64) {
                states += 1;
                if let Err(v) = check(&state, &told) {
                    violations.push(format!("workload {w} crash after call {k}: {v}"));
                }
            }
        }
    }
    (points, states, violations)
}

#[test]
fn every_acknowledged_element_survives_a_crash_at_every_call() {
    let (points, states, violations) = explore(Protocol::Correct);
    eprintln!("capture: {points} crash points, {states} crash states checked");
    assert!(
        points > 50,
        "the workloads make {points} calls: too few to mean much"
    );
    assert!(
        violations.is_empty(),
        "{} violations, first: {:#?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
}

#[test]
fn the_check_fails_when_appends_are_not_synced() {
    let (_, _, violations) = explore(Protocol::NoFileSync);
    assert!(!violations.is_empty(), "a disk that ignores fsync lost nothing?");
}
