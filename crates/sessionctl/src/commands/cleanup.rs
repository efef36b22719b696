//! `cleanup [--dry-run] [--now MS]`.

use serde_json::json;
use session_store::SessionStore;
use session_workers::cleanup::cleanup_once;

use crate::config::Config;
use crate::error::CliError;
use crate::output::{Output, count};

/// One cleanup run with the configured retention rules.
pub(crate) fn cleanup(
    store: &SessionStore,
    config: &Config,
    out: &Output,
    dry_run: bool,
    now: Option<u64>,
) -> Result<(), CliError> {
    let mut settings = config.settings().cleanup();
    settings.dry_run |= dry_run;
    // `--now MS` is an operator's statement of the time: taken as stated.
    if let Some(ms) = now {
        settings = settings.at(ms);
    }
    let s = cleanup_once(store, &settings).map_err(|e| CliError::Failed(e.to_string()))?;
    if let Some(reason) = &s.clock_suspect {
        out.warn(&format!(
            "CLOCK SUSPECT: {}. Nothing was purged, trashed or expired; it will be once the endpoint's Date agrees or `sessionctl clock confirm` says the clock is right",
            session_model::printable(reason)
        ));
    }
    let summary = json!({ "expired": s.expired, "trashed": s.trashed, "kept": s.kept, "purged": s.purged, "clockSuspect": s.clock_suspect });
    for failure in &s.failures {
        out.warn(&format!("not cleaned: {}: {}", failure.file, failure.problem));
    }
    out.result(&summary, || {
        let verb = if settings.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        };
        format!(
            "expired {}: trashed {}, kept {} (never delivered); purged {} ({} bytes){verb}",
            s.expired, s.trashed, s.kept, s.purged, s.bytes_freed
        )
    })?;
    if s.clock_suspect.is_some() {
        return Err(CliError::Failed(
            "nothing was cleaned: the clock is suspect".into(),
        ));
    }
    if !s.failures.is_empty() {
        return Err(CliError::Failed(format!(
            "{} could not be cleaned (named above); the others were",
            count(s.failures.len(), "file", "files")
        )));
    }
    Ok(())
}
