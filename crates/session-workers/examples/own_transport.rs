//! A consuming team's first minutes with `session-workers`: one submission pass, with
//! its own transport plugged into the `Transport` seam (no HTTP stack needed), then a
//! cleanup run.
//!
//! `cargo run -p session-workers --example own_transport`

use std::sync::Arc;

use session_store::{DecodeOptions, SessionStore, decode};
use session_workers::SystemClock;
use session_workers::cleanup::{CleanupConfig, cleanup_once};
use session_workers::submit::{
    HttpReply, ReplyFuture, SubmissionRequest, SubmissionWorker, SubmitConfig, Transport,
};
use tokio_util::sync::CancellationToken;

/// A transport that accepts everything and says what it would have sent.
struct Accepting;

impl Transport for Accepting {
    fn post(&self, request: SubmissionRequest) -> ReplyFuture {
        // The body is patient data: show its size, never its content.
        println!(
            "would POST {:?} under key {}",
            request.body, request.idempotency_key
        );
        Box::pin(async { Ok(HttpReply::new(201)) })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = SessionStore::open(dir.path(), DecodeOptions::default())?;
    let mut session = decode(
        br#"{"id": "s-1", "startTime": 1700000000000, "endTime": 1700000001000,
        "isComplete": true, "messages": ["MSH|1"]}"#,
    )?
    .session;
    store.save(&mut session)?;

    let (events, _) = tokio::sync::broadcast::channel(16);
    let worker = SubmissionWorker::new(
        store.clone(),
        Accepting,
        SubmitConfig::default().performer(Some("lab-1".into())),
        Arc::new(SystemClock),
        events,
    )?;
    let report = worker.run_pass(&CancellationToken::new()).await?;
    println!(
        "submitted {}, failed {}, retrying {}",
        report.submitted, report.failed, report.retrying
    );

    let summary = cleanup_once(&store, &CleanupConfig::default().dry_run(true))?;
    println!(
        "cleanup (dry run): {} expired, {} would be trashed",
        summary.expired, summary.trashed
    );
    Ok(())
}
