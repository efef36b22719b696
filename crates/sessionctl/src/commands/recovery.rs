//! `recover` and `verify`.

use std::path::Path;

use serde_json::json;
use session_fs::{FsError, Store};
use session_store::{DecodeOptions, SessionStore};

use crate::error::CliError;
use crate::output::{Output, count};

/// `recover`: needs the store to itself, so it refuses to run beside a daemon or any
/// other writer instead of touching a temp file that is still being written.
pub(crate) fn recover(dir: &Path, decode: DecodeOptions, out: &Output) -> Result<(), CliError> {
    let store = SessionStore::new(open_exclusive(dir, "recovery")?, decode);
    let report = session_recovery::recover(&store).map_err(|e| CliError::Failed(e.to_string()))?;
    let summary = json!({
        "recovered": report.recovered,
        "cleaned": report.cleaned,
        "quarantined": report.quarantined,
        "interrupted": report.interrupted,
        "capturesFinished": report.captures_finished,
        "tornRecords": report.torn_records,
    });
    for problem in &report.problems {
        out.warn(&format!("not recovered: {}: {}", problem.file, problem.problem));
    }
    out.result(&summary, || {
        let mut text = format!(
            "recovered {}, cleaned {}, quarantined {}",
            report.recovered, report.cleaned, report.quarantined
        );
        if report.interrupted + report.captures_finished + report.torn_records > 0 {
            text.push_str(&format!(
                "\ncaptures cut off by a crash: {} stored as interrupted, {} finished ones stored; {} torn journal records dropped (never acknowledged)",
                report.interrupted, report.captures_finished, report.torn_records
            ));
        }
        for moved in &report.moved {
            text.push_str(&format!(
                "\n  {:?} {}: {}",
                moved.action,
                session_model::printable(&moved.file),
                session_model::printable(&moved.reason)
            ));
        }
        text
    })?;
    if !report.problems.is_empty() {
        return Err(CliError::Failed(format!(
            "{} could not be recovered (named above); the rest of the store was recovered",
            count(report.problems.len(), "file", "files")
        )));
    }
    Ok(())
}

/// The store to itself, for `what` (recovery, rollback): refused at once, never
/// waited for, while a daemon or any other sessionctl has it open.
pub(crate) fn open_exclusive(dir: &Path, what: &str) -> Result<Store, CliError> {
    Store::options()
        .exclusive()
        .no_wait()
        .open(dir)
        .map_err(|e| match e {
            FsError::Busy { dir } => CliError::Failed(format!(
                "store {} is in use (is `sessionctl run` active?); {what} needs it to itself",
                dir.display()
            )),
            other => other.into(),
        })
}

/// `verify`: read-only; exit 1 when anything is wrong.
pub(crate) fn verify(store: &SessionStore, out: &Output) -> Result<(), CliError> {
    let report = session_recovery::verify(store)?;
    // CONTRACT's shape, owned here: `{"ok": n, "problems": [{"file", "problem"}]}`.
    let shown = json!({
        "ok": report.ok,
        "problems": report
            .problems
            .iter()
            .map(|p| json!({ "file": p.file, "problem": p.problem }))
            .collect::<Vec<_>>(),
    });
    out.result(&shown, || {
        let mut text = format!(
            "{} ok, {}",
            report.ok,
            count(report.problems.len(), "problem", "problems")
        );
        for p in &report.problems {
            text.push_str(&format!(
                "\n  {}: {}",
                session_model::printable(&p.file),
                session_model::printable(&p.problem)
            ));
        }
        text
    })?;
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} found; `sessionctl recover` moves damaged files to .quarantine/ (a name that is not a regular file it leaves where it is, for you to move away)",
            count(report.problems.len(), "problem", "problems")
        )))
    }
}
