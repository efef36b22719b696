//! `recover` and `verify`.

use std::ffi::OsString;
use std::sync::atomic::{AtomicUsize, Ordering};

use session_fs::maintenance::{Area, Maintenance};
use session_fs::{Access, FsError};
use session_migrate::{Decoded, SessionStore};
use session_model::SessionId;

use crate::inspect::{Order, Verdict, inspect, loggable, order};
use crate::report::{Action, Moved, Problem, RecoveryReport, VerifyReport};

/// Why recovery could not run or finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// Recovery needs the store to itself so that it never touches a temp file that a
    /// live writer is still filling; open it with `Store::options().exclusive()`.
    #[error("recovery needs an exclusive store handle: another writer may be active")]
    NotExclusive,
    /// A filesystem call failed; what was done before it is durable and reported again
    /// as already-done work by the next run.
    #[error(transparent)]
    Fs(#[from] FsError),
}

fn sidecar(file: &OsString, reason: &str) -> Vec<u8> {
    session_fs::maintenance::quarantine_note(
        &file.to_string_lossy(),
        reason,
        concat!("session-recovery ", env!("CARGO_PKG_VERSION")),
    )
}

struct Run<'a> {
    typed: &'a SessionStore,
    store: Maintenance<'a>,
    report: RecoveryReport,
}

impl Run<'_> {
    fn move_aside(&mut self, file: &OsString, action: Action, reason: String) -> Result<(), FsError> {
        let area = if action == Action::Quarantined {
            Area::Quarantine
        } else {
            Area::Trash
        };
        let note = (area == Area::Quarantine).then(|| sidecar(file, &reason));
        let moved = self.store.move_aside(file, &area, note.as_deref())?;
        tracing::info!(file = %session_model::printable(&file.to_string_lossy()), to = %moved.to.display(), ?action, %reason, "recovery moved a file");
        self.report.record(Moved {
            action,
            file: file.to_string_lossy().into_owned(),
            to: moved.to,
            reason,
        });
        Ok(())
    }

    fn read_or_quarantine(&mut self, file: &OsString) -> Result<Option<Vec<u8>>, FsError> {
        match self.store.read_entry(file) {
            Ok(bytes) => Ok(bytes),
            Err(e @ FsError::TooLarge { .. }) => {
                self.move_aside(file, Action::Quarantined, e.to_string())?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Folds the journals of captures the crash cut off into session files.
    fn journals(&mut self) -> Result<(), FsError> {
        let found = match session_capture::recover_journals(self.typed) {
            Ok(found) => found,
            Err(session_capture::CaptureError::Fs(e)) => return Err(e),
            Err(e) => {
                self.problem(&OsString::from(".journal"), e.to_string());
                return Ok(());
            }
        };
        self.report.interrupted += found.interrupted.len();
        self.report.captures_finished += found.finished.len();
        self.report.torn_records += found.torn_records;
        for id in found.damaged {
            self.report.quarantined += 1;
            self.report.problems.push(Problem {
                file: format!(".journal/{id}.journal"),
                problem: "damaged before its end: the session holds the records before the damage; the journal was kept in .quarantine/".into(),
            });
        }
        for id in found.quarantined {
            self.report.quarantined += 1;
            self.report.problems.push(Problem {
                file: format!(".journal/{id}.journal"),
                problem: "no readable begin record: moved to .quarantine/".into(),
            });
        }
        for (id, problem) in found.failures {
            self.problem(&OsString::from(format!(".journal/{id}.journal")), problem);
        }
        Ok(())
    }

    fn problem(&mut self, file: &OsString, problem: String) {
        tracing::info!(file = %session_model::printable(&file.to_string_lossy()), %problem, "recovery left a file it could not handle");
        self.report.problems.push(Problem {
            file: file.to_string_lossy().into_owned(),
            problem,
        });
    }

    fn temp(&mut self, temp: &OsString, id: &SessionId) -> Result<(), FsError> {
        let Some(bytes) = self.read_or_quarantine(temp)? else {
            return Ok(());
        };
        let temp_verdict = inspect(self.typed, id, &bytes);
        let temp_stamp = match &temp_verdict {
            Verdict::Damaged(e) => {
                return self.move_aside(temp, Action::Quarantined, format!("temp file: {}", loggable(e)));
            }
            valid => valid.stamp().unwrap_or_default(),
        };
        let live = OsString::from(id.file_name());
        let live_verdict = self
            .read_or_quarantine(&live)?
            .map(|bytes| inspect(self.typed, id, &bytes));
        let live_stamp = live_verdict.as_ref().and_then(Verdict::stamp).unwrap_or_default();
        let compared = format!(
            "temp revision {}, saved {}; live revision {}, saved {}",
            temp_stamp.revision, temp_stamp.saved_at, live_stamp.revision, live_stamp.saved_at
        );
        match &live_verdict {
            None => {}
            Some(Verdict::Damaged(e)) => {
                self.move_aside(
                    &live,
                    Action::Quarantined,
                    format!("replaced by a valid temp file: {}", loggable(e)),
                )?;
            }
            Some(Verdict::Newer(_)) => {
                // A newer build's live file is never moved, even by a later temp copy;
                // the temp is kept in quarantine, since nothing ordered the two.
                return self.move_aside(
                    temp,
                    Action::Quarantined,
                    "temp file beside a newer-version live file".into(),
                );
            }
            Some(live_valid) => match order(&temp_verdict, live_valid) {
                // On a tie the live file wins: it is the one readers have already seen.
                Order::ByRevision { temp_later: false } => {
                    return self.move_aside(
                        temp,
                        Action::Cleaned,
                        format!("superseded temp file ({compared})"),
                    );
                }
                Order::ByRevision { temp_later: true } => {
                    self.move_aside(
                        &live,
                        Action::Cleaned,
                        format!("superseded by a temp file ({compared})"),
                    )?;
                }
                // Revisions order only copies the store wrote: against the app's file,
                // savedAt decides, and the loser is kept in quarantine, not trashed.
                Order::BySavedAt { temp_later: false } => {
                    return self.move_aside(
                        temp,
                        Action::Quarantined,
                        format!("temp file not later than the live file by savedAt; kept ({compared})"),
                    );
                }
                Order::BySavedAt { temp_later: true } => {
                    self.move_aside(
                        &live,
                        Action::Quarantined,
                        format!("live file replaced by a temp file saved later; kept ({compared})"),
                    )?;
                }
            },
        }
        self.store.promote_temp(temp, id)?;
        tracing::info!(file = %temp.to_string_lossy(), id = %id, "recovery promoted a temp file");
        self.report.record(Moved {
            action: Action::Recovered,
            file: temp.to_string_lossy().into_owned(),
            to: self.typed.fs().path_of(id),
            reason: format!("orphaned temp file, revision {}", temp_stamp.revision),
        });
        Ok(())
    }
}

/// Recovers a store from interrupted writes and damaged files. Safe to run again at any
/// time, including after a crash in the middle of a previous run.
///
/// - A temp file that decodes becomes the live session when there is none, or when it
///   was saved later than the live copy (revision, then `savedAt`; the live file wins a
///   tie); the losing copy goes to `.trash/`.
/// - A temp file that does not decode goes to `.quarantine/`.
/// - A live file that does not decode goes to `.quarantine/` with a sidecar saying why.
/// - Newer-version live files are left byte for byte alone. Nothing is deleted.
pub fn recover(store: &SessionStore) -> Result<RecoveryReport, RecoveryError> {
    recover_visiting(store, |_, _| {})
}

/// [`recover`], handing every valid session it decodes to `visit`, so that start-up can
/// load the store in the same pass. Live files are checked on every core; sessions
/// stream to `visit` through a bounded channel, never all in memory at once.
pub fn recover_visiting(
    typed: &SessionStore,
    mut visit: impl FnMut(SessionId, Decoded),
) -> Result<RecoveryReport, RecoveryError> {
    if typed.fs().access() != Access::Exclusive {
        return Err(RecoveryError::NotExclusive);
    }
    let store = typed.fs().maintenance();
    let mut run = Run {
        typed,
        store,
        report: RecoveryReport::default(),
    };
    // Captures cut off first: their session files are then checked like any live file.
    run.journals()?;
    // Temps next, so that a promoted temp is then checked like any live file.
    let scan = store.scan()?;
    let had_temps = !scan.temps.is_empty();
    for (name, kind) in &scan.irregular {
        run.problem(
            name,
            format!(
                "is {}, not a regular file: never read; move it away",
                kind.describe()
            ),
        );
    }
    for (temp, id) in scan.temps {
        // One bad file never stops the run: it is reported, and the rest go on.
        if let Err(e) = run.temp(&temp, &id) {
            run.problem(&temp, e.to_string());
        }
    }
    let live = if had_temps { store.scan()?.live } else { scan.live };
    // Threads pay off only for stores of some size.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = (live.len() / 256).clamp(1, cores);
    let next = AtomicUsize::new(0);
    let check_next = || -> Option<Found> {
        loop {
            let id = live.get(next.fetch_add(1, Ordering::Relaxed))?;
            return Some(match typed.fs().read(id) {
                Ok(None) => continue,
                Ok(Some(bytes)) => match inspect(typed, id, &bytes) {
                    Verdict::Valid(decoded) => Found::Valid(id.clone(), decoded),
                    Verdict::Newer(_) => continue,
                    Verdict::Damaged(e) => Found::Damaged(id.clone(), loggable(&e)),
                },
                Err(e @ FsError::TooLarge { .. }) => Found::Damaged(id.clone(), e.to_string()),
                Err(e) => Found::Failed(id.clone(), e),
            });
        }
    };
    let mut damaged = Vec::new();
    let mut failures = Vec::new();
    let mut take = |found: Found| match found {
        Found::Valid(id, decoded) => visit(id, *decoded),
        Found::Damaged(id, reason) => damaged.push((id, reason)),
        Found::Failed(id, e) => failures.push((id, e)),
    };
    if threads == 1 {
        while let Some(found) = check_next() {
            take(found);
        }
    } else {
        let (sender, received) = std::sync::mpsc::sync_channel::<Found>(64);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let sender = sender.clone();
                let check_next = &check_next;
                scope.spawn(move || {
                    while let Some(found) = check_next() {
                        if sender.send(found).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(sender);
            for found in received {
                take(found);
            }
        });
    }
    failures.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, e) in failures {
        run.problem(&OsString::from(id.file_name()), e.to_string());
    }
    damaged.sort();
    for (id, reason) in damaged {
        let file = OsString::from(id.file_name());
        if let Err(e) = run.move_aside(&file, Action::Quarantined, reason) {
            run.problem(&file, format!("could not be quarantined: {e}"));
        }
    }
    let report = run.report;
    tracing::info!(
        recovered = report.recovered,
        cleaned = report.cleaned,
        quarantined = report.quarantined,
        "recovery finished"
    );
    Ok(report)
}

enum Found {
    Valid(SessionId, Box<Decoded>),
    Damaged(SessionId, String),
    Failed(SessionId, FsError),
}

/// Checks every file of the store without changing anything.
pub fn verify(typed: &SessionStore) -> Result<VerifyReport, FsError> {
    let store = typed.fs();
    let scan = store.maintenance().scan()?;
    let mut report = VerifyReport::default();
    for (name, kind) in &scan.irregular {
        report.problems.push(Problem {
            file: name.to_string_lossy().into_owned(),
            problem: format!("is {}, not a regular file", kind.describe()),
        });
    }
    for (temp, _) in &scan.temps {
        report.problems.push(Problem {
            file: temp.to_string_lossy().into_owned(),
            problem: "orphaned temp file (an interrupted write): run `sessionctl recover`".into(),
        });
    }
    for id in &scan.live {
        let file = id.file_name();
        match store.read(id) {
            Ok(None) => {}
            Ok(Some(bytes)) => match inspect(typed, id, &bytes) {
                Verdict::Valid(_) | Verdict::Newer(_) => report.ok += 1,
                Verdict::Damaged(e) => report.problems.push(Problem {
                    file,
                    problem: loggable(&e),
                }),
            },
            Err(e) => report.problems.push(Problem {
                file,
                problem: e.to_string(),
            }),
        }
    }
    Ok(report)
}
