//! `cleanup [--dry-run] [--now MS]`.

use serde_json::json;
use session_migrate::SessionStore;
use session_workers::cleanup::cleanup_once;

use crate::config::Config;
use crate::error::CliError;
use crate::output::{Output, count};

/// One cleanup run with the configured retention rules.
pub fn cleanup(
    store: &SessionStore,
    config: &Config,
    out: &Output,
    dry_run: bool,
    now: Option<u64>,
) -> Result<(), CliError> {
    let mut settings = config.cleanup();
    settings.dry_run |= dry_run;
    let now = now.unwrap_or_else(session_fs::now_ms);
    let s = cleanup_once(store, &settings, now).map_err(|e| CliError::Failed(e.to_string()))?;
    let summary = json!({ "expired": s.expired, "trashed": s.trashed, "kept": s.kept, "purged": s.purged });
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
    if !s.failures.is_empty() {
        return Err(CliError::Failed(format!(
            "{} could not be cleaned (named above); the others were",
            count(s.failures.len(), "file", "files")
        )));
    }
    Ok(())
}
