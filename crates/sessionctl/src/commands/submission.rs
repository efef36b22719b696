//! `retry`, `ignore` and `submit`.

use std::sync::Arc;

use serde_json::json;
use session_model::{Session, SessionId};
use session_store::{SessionStore, StoreError};
use session_workers::SystemClock;
use session_workers::submit::{SubmissionWorker, SubmitError};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::CliError;
use crate::output::{Output, count};

/// How a retry or an ignore ended, for the CLI.
fn changed(out: &Output, id: &SessionId, saved: Result<Session, StoreError>) -> Result<(), CliError> {
    let session = saved.map_err(|e| match e {
        StoreError::NotFound { .. } | StoreError::Transition { .. } => CliError::Failed(e.to_string()),
        other => other.into(),
    })?;
    let status = session.submission.status;
    Ok(
        out.result(&json!({ "id": id.as_str(), "submissionStatus": status }), || {
            format!(
                "{id}: submission {status} (attempts {})",
                session.submission.attempts
            )
        })?,
    )
}

/// `retry ID`: back to pending, attempts reset.
pub(crate) fn retry(store: &SessionStore, out: &Output, id: &SessionId) -> Result<(), CliError> {
    changed(out, id, store.retry(id))
}

/// `ignore ID`: never submitted.
pub(crate) fn ignore(store: &SessionStore, out: &Output, id: &SessionId) -> Result<(), CliError> {
    changed(out, id, store.ignore(id))
}

/// `submit --endpoint URL [--once]`: one pass of the submission worker.
pub(crate) fn submit(store: &SessionStore, config: &Config, out: &Output) -> Result<(), CliError> {
    let endpoint =
        config.settings().endpoint.as_deref().ok_or_else(|| {
            CliError::BadInput("no endpoint: pass --endpoint URL or set HL7_ENDPOINT".into())
        })?;
    let settings = config.settings().submit();
    let transport = crate::config::transport(config, endpoint)?;
    let (events, _) = tokio::sync::broadcast::channel(64);
    let worker = SubmissionWorker::new(store.clone(), transport, settings, Arc::new(SystemClock), events)
        .map_err(|e| match e {
            SubmitError::AlreadyRunning => CliError::Failed(
                "another process (is `sessionctl run` active?) is submitting from this store".into(),
            ),
            other => CliError::Failed(other.to_string()),
        })?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime
        .block_on(worker.run_pass(&CancellationToken::new()))
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let summary = json!({
        "submitted": report.submitted,
        "failed": report.failed,
        "retrying": report.retrying,
    });
    out.result(&summary, || {
        format!(
            "submitted {}, failed {}, retrying {}",
            report.submitted, report.failed, report.retrying
        )
    })?;
    if report.failed > 0 {
        return Err(CliError::Failed(format!(
            "{} failed for good in this pass; `sessionctl list --status failed` shows why",
            count(report.failed, "session", "sessions")
        )));
    }
    Ok(())
}
