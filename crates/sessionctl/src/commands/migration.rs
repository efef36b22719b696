//! `migrate [--dry-run] [--rollback]`.

use std::io::IsTerminal;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use session_store::{MigrateOptions, RollbackError, RollbackOptions, SessionStore};

use crate::config::Config;
use crate::error::CliError;
use crate::output::{Output, count};

/// `migrate --rollback [--force]`: needs the store to itself, as `recover` does.
pub(crate) fn rollback(dir: &Path, config: &Config, out: &Output, force: bool) -> Result<(), CliError> {
    let store = SessionStore::new(
        super::recovery::open_exclusive(dir, "rollback")?,
        config.settings().decode_options(),
    );
    let report = store
        .rollback(&RollbackOptions::default().force(force))
        .map_err(|e| match e {
            RollbackError::Fs(e) => CliError::from(e),
            other => CliError::Failed(other.to_string()),
        })?;
    for kept in &report.not_restored {
        out.warn(&format!("not restored: {}: {}", kept.file, kept.reason));
    }
    let shown = json!({
        "run": report.run,
        "restored": report.restored,
        "notRestored": report
            .not_restored
            .iter()
            .map(|n| json!({ "file": n.file, "reason": n.reason }))
            .collect::<Vec<_>>(),
        "keptRun": report.kept_run,
    });
    out.result(&shown, || {
        let mut text = format!(
            "restored {} from backup run {}",
            count(report.restored, "file", "files"),
            report.run
        );
        if let Some(kept) = &report.kept_run {
            text.push_str(&format!(
                "\nthe newer copies it replaced are kept in .backup/{kept}"
            ));
        }
        text
    })?;
    if !report.not_restored.is_empty() && !force {
        return Err(CliError::Failed(format!(
            "{} changed since the migration left as they are (named above); \
             `--force` restores those it can without losing a delivery or a newer copy",
            count(report.not_restored.len(), "file", "files")
        )));
    }
    Ok(())
}

/// Runs the store-wide migration.
pub(crate) fn migrate(store: &SessionStore, out: &Output, dry_run: bool) -> Result<(), CliError> {
    let options = MigrateOptions::default().dry_run(dry_run);
    // A bar only for a person watching: never in --json or when piped.
    let bar = if !out.json && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} sessions ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let report = store.migrate(&options, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    for failure in &report.failures {
        out.warn(&format!("not migrated: {}: {}", failure.file, failure.problem));
    }
    let summary = json!({
        "migrated": report.migrated,
        "upToDate": report.up_to_date,
        "skipped": report.skipped,
        "failed": report.failed,
    });
    out.result(&summary, || {
        let verb = if dry_run { "would migrate" } else { "migrated" };
        let mut text = format!(
            "{verb} {}, up to date {}, skipped {} (newer version), failed {}",
            report.migrated, report.up_to_date, report.skipped, report.failed
        );
        if let Some(run) = &report.backup_run {
            text.push_str(&format!(
                "\noriginals kept in .backup/{run} (undo: sessionctl migrate --rollback)"
            ));
        }
        text
    })?;
    if report.failed > 0 {
        return Err(CliError::Failed(format!(
            "{} not migrated (named above); the others were",
            count(report.failed, "file", "files")
        )));
    }
    Ok(())
}
