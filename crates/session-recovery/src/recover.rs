//! `recover` and `verify`.

use std::ffi::OsString;
use std::sync::atomic::{AtomicUsize, Ordering};

use session_fs::maintenance::{Area, Maintenance};
use session_fs::{Access, FsError};
use session_model::SessionId;
use session_store::{Current, Decoded, SessionStore, Upgrade};

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

    /// Reports names that are not regular files and settles every orphaned temp
    /// (recovery's rule, per session); then the live sessions to check, temps promoted.
    fn irregulars_and_temps(&mut self) -> Result<Vec<SessionId>, FsError> {
        let scan = self.store.scan()?;
        let had_temps = !scan.temps.is_empty();
        for (name, kind) in &scan.irregular {
            self.problem(
                name,
                format!(
                    "is {}, not a regular file: never read; move it away",
                    kind.describe()
                ),
            );
        }
        let mut by_id: std::collections::BTreeMap<SessionId, Vec<OsString>> =
            std::collections::BTreeMap::new();
        for (temp, id) in scan.temps {
            by_id.entry(id).or_default().push(temp);
        }
        for (id, mut temps) in by_id {
            temps.sort();
            // One bad file never stops the run: it is reported, and the rest go on.
            if let Err(e) = self.temps_of(&id, &temps) {
                self.problem(&OsString::from(id.file_name()), e.to_string());
            }
        }
        Ok(if had_temps {
            self.store.scan()?.live
        } else {
            scan.live
        })
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

    /// The temp files of one id. A temp was never acknowledged and the live file was:
    /// a temp replaces the live file only when that is missing or does not decode, and
    /// then the latest temp (revision, then `savedAt`) is promoted. No clock reading and
    /// no `savedAt` lets a temp beat a live file that decodes. Every copy not chosen is
    /// kept: in the trash when a revision shows it older, in quarantine otherwise.
    fn temps_of(&mut self, id: &SessionId, temps: &[OsString]) -> Result<(), FsError> {
        let mut candidates: Vec<(&OsString, Verdict)> = Vec::new();
        for temp in temps {
            let Some(bytes) = self.read_or_quarantine(temp)? else {
                continue;
            };
            match inspect(self.typed, id, &bytes) {
                Verdict::Damaged(e) => {
                    self.move_aside(temp, Action::Quarantined, format!("temp file: {}", loggable(&e)))?;
                }
                valid => candidates.push((temp, valid)),
            }
        }
        if candidates.is_empty() {
            return Ok(());
        }
        let live = OsString::from(id.file_name());
        let live_verdict = self
            .read_or_quarantine(&live)?
            .map(|bytes| inspect(self.typed, id, &bytes));
        match &live_verdict {
            Some(Verdict::Damaged(e)) => {
                self.move_aside(
                    &live,
                    Action::Quarantined,
                    format!("replaced by a valid temp file: {}", loggable(e)),
                )?;
            }
            Some(Verdict::Newer(_)) => {
                // A newer build's live file is never moved; nothing orders the temps against it.
                for (temp, _) in &candidates {
                    self.move_aside(
                        temp,
                        Action::Quarantined,
                        "temp file beside a newer-version live file".into(),
                    )?;
                }
                return Ok(());
            }
            Some(live_valid) => {
                for (temp, verdict) in &candidates {
                    self.keep_loser(temp, verdict, live_valid, "the live file, which decodes")?;
                }
                return Ok(());
            }
            None => {}
        }
        // The latest temp wins; on a tie the first found (names sort, so runs agree).
        let best = (0..candidates.len())
            .reduce(|best, i| {
                let (b, c) = (&candidates[best].1, &candidates[i].1);
                let later = match order(c, b) {
                    Order::ByRevision { temp_later } | Order::BySavedAt { temp_later } => temp_later,
                };
                if later { i } else { best }
            })
            .unwrap_or(0);
        let (winner, winner_verdict) = candidates.remove(best);
        for (temp, verdict) in &candidates {
            self.keep_loser(temp, verdict, &winner_verdict, "a later temp file")?;
        }
        let stamp = winner_verdict.stamp().unwrap_or_default();
        self.store.promote_temp(winner, id)?;
        tracing::info!(file = %winner.to_string_lossy(), id = %id, "recovery promoted a temp file");
        self.report.record(Moved {
            action: Action::Recovered,
            file: winner.to_string_lossy().into_owned(),
            to: self.typed.fs().path_of(id),
            reason: format!(
                "orphaned temp file, revision {}, where no live file decoded",
                stamp.revision
            ),
        });
        Ok(())
    }

    /// Moves aside a temp that lost to `kept`: to the trash when the revisions show it
    /// older (a superseded write), to quarantine otherwise (it may hold what `kept` lacks).
    fn keep_loser(
        &mut self,
        temp: &OsString,
        verdict: &Verdict,
        kept: &Verdict,
        what: &str,
    ) -> Result<(), FsError> {
        let (t, k) = (
            verdict.stamp().unwrap_or_default(),
            kept.stamp().unwrap_or_default(),
        );
        let compared = format!(
            "temp revision {}, saved {}; kept revision {}, saved {}",
            t.revision, t.saved_at, k.revision, k.saved_at
        );
        match order(verdict, kept) {
            Order::ByRevision { temp_later: false } => self.move_aside(
                temp,
                Action::Cleaned,
                format!("superseded temp file ({compared})"),
            ),
            _ => self.move_aside(
                temp,
                Action::Quarantined,
                format!("unacknowledged temp file that did not replace {what}; kept ({compared})"),
            ),
        }
    }
}

/// Recovers a store from interrupted writes and damaged files. Safe to run again at any
/// time, including after a crash in the middle of a previous run.
///
/// - A temp file was never acknowledged; the live file was. A temp that decodes
///   becomes the live session only when the live file is missing or does not decode,
///   the latest of several by revision, then `savedAt`. Beside a live file that
///   decodes, a temp goes to `.trash/` when its revision is not later, to
///   `.quarantine/` otherwise: no clock reading can make it win.
/// - A temp file that does not decode goes to `.quarantine/`.
/// - A live file that does not decode goes to `.quarantine/` with a sidecar saying why.
/// - Newer-version live files are left byte for byte alone. Nothing is deleted.
pub fn recover(store: &SessionStore) -> Result<RecoveryReport, RecoveryError> {
    // Each session let go by the thread that read it, as start-up's are.
    recover_with(store, None, |_| {}, |_, _| (), |_, ()| {})
}

/// The most findings that travel to the caller together: fewer hand-offs leave the
/// reading threads more of the cores.
const BATCH_FINDINGS: usize = 256;
/// A batch goes as soon as the files its findings were read from hold this many bytes:
/// with at most `BATCHES_QUEUED` batches waiting and one filling per thread, the
/// sessions in flight stay a few MiB of files, whatever their size.
const BATCH_BYTES: usize = 1 << 20;

/// [`recover`], handing every valid session it decodes to `visit`, so that start-up can
/// load the store in the same pass. Live files are checked on every core; sessions
/// stream to `visit` through a bounded channel, never all in memory at once.
pub fn recover_visiting(
    typed: &SessionStore,
    mut visit: impl FnMut(SessionId, Decoded),
) -> Result<RecoveryReport, RecoveryError> {
    recover_with(
        typed,
        None,
        |_| {},
        |_, decoded| Box::new(decoded),
        |id, decoded| visit(id, *decoded),
    )
}

/// [`recover_visiting`], upgrading each outdated session to the current version as it
/// is read (through `upgrade`, a run of this store's: [`SessionStore::upgrade`]), so a
/// store of old files is read and decoded once, not once by recovery and again by a
/// migration. `visit` sees each session as its file is afterwards: an upgraded one with
/// its new save's stamp and `from` the current version; one whose upgrade failed (in
/// `upgrade`'s report) as read. The files are upgraded on the threads that read them,
/// as `session_store::SessionStore::migrate` would, originals kept in `.backup/` first.
/// `reading(n)` is told, once, how many live files the pass is about to read (for a
/// progress report: the upgrades take most of a legacy store's start-up).
pub fn recover_upgrading(
    typed: &SessionStore,
    upgrade: &Upgrade<'_, Current>,
    reading: impl FnOnce(usize),
    mut visit: impl FnMut(SessionId, Decoded),
) -> Result<RecoveryReport, RecoveryError> {
    recover_with(
        typed,
        Some(upgrade),
        reading,
        |_, decoded| Box::new(decoded),
        |id, decoded| visit(id, *decoded),
    )
}

/// [`recover_upgrading`], with each session's own work done on the thread that read
/// it: `summarize` turns every session into what the caller keeps of it (a row of an
/// index, a flag), there, and `visit` sees each summary on the calling thread.
///
/// For a caller that keeps little of each session, such as start-up building its
/// indexes: the session is made, summarized and let go by one thread. Summaries reach
/// `visit` in batches of a few hundred, so a summary should be small. Handed to the
/// calling thread whole, every session was freed by a thread other than the one that
/// made it, and on two cores the allocator's locks then cost start-up a fifth of its
/// time.
pub fn recover_upgrading_summarized<T: Send>(
    typed: &SessionStore,
    upgrade: &Upgrade<'_, Current>,
    reading: impl FnOnce(usize),
    summarize: impl Fn(&SessionId, Decoded) -> T + Sync,
    visit: impl FnMut(SessionId, T),
) -> Result<RecoveryReport, RecoveryError> {
    recover_with(typed, Some(upgrade), reading, summarize, visit)
}

fn recover_with<T: Send>(
    typed: &SessionStore,
    upgrade: Option<&Upgrade<'_, Current>>,
    reading: impl FnOnce(usize),
    summarize: impl Fn(&SessionId, Decoded) -> T + Sync,
    mut visit: impl FnMut(SessionId, T),
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
    let live = run.irregulars_and_temps()?;
    reading(live.len());
    let mut damaged = Vec::new();
    let mut failures = Vec::new();
    read_every_live(typed, &live, upgrade, &summarize, |found| match found {
        Found::Valid(id, summary) => visit(id, summary),
        Found::Damaged(id, reason) => damaged.push((id, reason)),
        Found::Failed(id, e) => failures.push((id, e)),
    });
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

enum Found<T> {
    Valid(SessionId, T),
    Damaged(SessionId, String),
    Failed(SessionId, FsError),
}

/// Reads and judges every live file, on threads when the store is large enough to pay
/// for them, each valid session summarized by the thread that read it; `take` sees
/// each finding on the calling thread.
fn read_every_live<T: Send>(
    typed: &SessionStore,
    live: &[SessionId],
    upgrade: Option<&Upgrade<'_, Current>>,
    summarize: &(impl Fn(&SessionId, Decoded) -> T + Sync),
    mut take: impl FnMut(Found<T>),
) {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = (live.len() / 256).clamp(1, cores);
    let next = AtomicUsize::new(0);
    // Each finding, with how many bytes its file held.
    let check_next = || -> Option<(Found<T>, usize)> {
        loop {
            let id = live.get(next.fetch_add(1, Ordering::Relaxed))?;
            let read = typed.fs().read(id);
            let len = read
                .as_ref()
                .map_or(0, |bytes| bytes.as_ref().map_or(0, Vec::len));
            let found = match read {
                Ok(None) => continue,
                Ok(Some(bytes)) => match inspect(typed, id, &bytes) {
                    Verdict::Valid(mut decoded) => {
                        if let Some(upgrade) = upgrade.filter(|_| decoded.from.is_outdated()) {
                            upgrade.decoded(id, &bytes, &mut decoded);
                        }
                        Found::Valid(id.clone(), summarize(id, *decoded))
                    }
                    Verdict::Newer(_) => continue,
                    Verdict::Damaged(e) => Found::Damaged(id.clone(), loggable(&e)),
                },
                Err(e @ FsError::TooLarge { .. }) => Found::Damaged(id.clone(), e.to_string()),
                Err(e) => Found::Failed(id.clone(), e),
            };
            return Some((found, len));
        }
    };
    if threads == 1 {
        while let Some((found, _)) = check_next() {
            take(found);
        }
        return;
    }
    // Findings travel in batches: one hand-off per session woke a thread per file,
    // which on two cores cost a tenth of start-up in context switches. At most
    // `BATCHES_QUEUED` batches wait, each of at most `BATCH_FINDINGS` findings or
    // `BATCH_BYTES` of files, so memory stays bounded whatever the store's size.
    const BATCHES_QUEUED: usize = 4;
    let (sender, received) = std::sync::mpsc::sync_channel::<Vec<Found<T>>>(BATCHES_QUEUED);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let sender = sender.clone();
            let check_next = &check_next;
            scope.spawn(move || {
                let mut batch = Vec::with_capacity(BATCH_FINDINGS);
                let mut bytes = 0;
                while let Some((found, len)) = check_next() {
                    batch.push(found);
                    bytes += len;
                    if batch.len() == BATCH_FINDINGS || bytes >= BATCH_BYTES {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_FINDINGS));
                        bytes = 0;
                        if sender.send(full).is_err() {
                            return;
                        }
                    }
                }
                let _ = sender.send(batch);
            });
        }
        drop(sender);
        for found in received.into_iter().flatten() {
            take(found);
        }
    });
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
