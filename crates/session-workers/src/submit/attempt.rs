//! One attempt on one session: `inFlight` saved before the POST, the outcome after it.

use std::sync::Arc;
use std::time::Duration;

use session_model::{Session, SessionId, SubmissionStatus};
use session_store::{SessionStore, StoreError, refused};
use tokio::sync::broadcast;

use super::transport::{HttpReply, SubmissionBody, SubmissionRequest, Transport, TransportError};
use super::{AttemptOutcome, SubmitConfig};
use crate::clock::Clock;
use crate::events::WorkerEvent;

/// What step 3 recorded: the outcome, and the error and next attempt to report.
type Recorded = (AttemptOutcome, Option<(String, u64)>);

/// What an attempt's reply means.
enum Verdict {
    Delivered,
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    Permanent {
        error: String,
    },
    Configuration {
        error: String,
    },
}

fn judge(reply: Result<HttpReply, TransportError>) -> Verdict {
    match reply {
        Ok(HttpReply { status, .. }) if (200..300).contains(&status) => Verdict::Delivered,
        // Never followed, never retried: the endpoint is misconfigured, and the session
        // waits (failed) for the operator to fix it and run `retry`.
        Ok(HttpReply { status, location, .. }) if (300..400).contains(&status) => Verdict::Permanent {
            error: format!(
                "HTTP {status} redirect to {}: redirects are never followed; fix the endpoint, then `sessionctl retry`",
                location.as_deref().unwrap_or("(no Location)")
            ),
        },
        Ok(HttpReply {
            status, retry_after, ..
        }) if matches!(status, 408 | 409 | 425 | 429 | 500..=599) => Verdict::Retry {
            error: format!("HTTP {status}"),
            retry_after,
        },
        Ok(HttpReply { status, .. }) => Verdict::Permanent {
            error: format!("HTTP {status}"),
        },
        Err(e @ (TransportError::Timeout | TransportError::Network(_))) => Verdict::Retry {
            error: e.to_string(),
            retry_after: None,
        },
        // An untrusted, expired or misnamed certificate is a configuration problem: it
        // waits for an operator (retried at the cap), never burning attempts.
        Err(e @ TransportError::Tls(_)) => Verdict::Configuration { error: e.to_string() },
        Err(e @ TransportError::Invalid(_)) => Verdict::Permanent { error: e.to_string() },
    }
}

/// One attempt on one session.
pub(super) struct Attempt<T: Transport> {
    pub(super) store: SessionStore,
    pub(super) transport: Arc<T>,
    pub(super) config: SubmitConfig,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) events: broadcast::Sender<WorkerEvent>,
    pub(super) id: SessionId,
}

impl<T: Transport> Attempt<T> {
    /// Compares the store's clock with the endpoint's `Date`: agreement clears a
    /// suspicion, disagreement raises one (logged when raised or cleared).
    async fn corroborate_clock(&self, date: u64) {
        let fs = self.store.fs().clone();
        let checked = tokio::task::spawn_blocking(move || {
            let before = fs.clock_record().is_ok_and(|r| r.suspect.is_some());
            fs.corroborate_clock(date, "endpoint's Date")
                .map(|check| (before, check))
        })
        .await;
        match checked {
            Ok(Ok((true, check))) if !check.is_suspect() => {
                tracing::info!("the endpoint's Date agrees with the clock: the clock suspicion is cleared");
            }
            Ok(Ok((false, check))) => {
                if let Some(suspicion) = &check.record.suspect {
                    tracing::warn!(reason = %suspicion.reason, "CLOCK SUSPECT: nothing is purged, trashed or expired until it is corroborated or confirmed");
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not update the clock record"),
            Err(e) => tracing::warn!(error = %e, "clock record task failed"),
        }
    }

    /// A locked read-modify-write of this attempt's session, off the async threads.
    /// Errors are only logged, so they are flattened to text.
    async fn update<R, F>(&self, change: F) -> Result<R, String>
    where
        R: Send + 'static,
        F: FnOnce(&mut Session) -> Result<R, StoreError> + Send + 'static,
    {
        let (store, id) = (self.store.clone(), self.id.clone());
        match tokio::task::spawn_blocking(move || store.update(&id, change).map(|(r, _)| r)).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    pub(super) async fn run(&self) -> AttemptOutcome {
        // 1. inFlight, with the attempt counted and the key fixed, before anything is sent.
        let Some((request, attempts)) = self.begin().await else {
            return AttemptOutcome::Skipped;
        };
        let key = request.idempotency_key.clone();
        // 2. The POST, bounded by the request timeout.
        let reply =
            match tokio::time::timeout(self.config.request_timeout, self.transport.post(request)).await {
                Ok(reply) => reply,
                Err(_) => Err(TransportError::Timeout),
            };
        // The server's Date is the station's one independent witness of the time.
        if let Some(date) = reply.as_ref().ok().and_then(|r| r.date) {
            self.corroborate_clock(date).await;
        }
        // 3. The outcome, on the latest copy of the session.
        let recorded = self.record(judge(reply), key, attempts).await;
        self.report(recorded, attempts)
    }

    /// Step 1: the session `inFlight`, its attempt counted and its key fixed, saved;
    /// the request to send. `None` when it is not sendable now (or could not be saved).
    async fn begin(&self) -> Option<(SubmissionRequest, u32)> {
        let now = self.clock.now_ms();
        let performer = self.config.performer.clone();
        let cap_ms = self.config.backoff.cap.as_millis() as u64;
        let lis_closed = self.config.deliver_lis_closed;
        let begun = self
            .update(move |s| {
                if !s.is_sendable_capped(now, cap_ms, lis_closed) {
                    return Ok(None);
                }
                let id = s.id.clone();
                let body = SubmissionBody {
                    session_id: s.id.to_string(),
                    start_time: s.start_time,
                    end_time: s.end_time,
                    messages: s.messages(),
                    device_ip: s.device_ip.clone(),
                    lis_ip: s.lis_ip.clone(),
                    performer,
                    interrupted: s.interrupted.as_ref().and_then(|i| serde_json::to_value(i).ok()),
                };
                // One content, one key: derived from the body, unless this content
                // already has a key (kept as it is, whoever assigned it).
                let key = s
                    .submission
                    .begin_attempt(now, || body.idempotency_key())
                    .map_err(refused(&id))?
                    .to_owned();
                Ok(Some((
                    SubmissionRequest {
                        idempotency_key: key,
                        body,
                    },
                    s.submission.attempts,
                )))
            })
            .await;
        match begun {
            Ok(begun) => begun,
            Err(e) => {
                tracing::warn!(id = %self.id, error = %e, "could not start a submission");
                None
            }
        }
    }

    /// Step 3: the verdict recorded on the latest copy of the session, if it is still
    /// this attempt's (`inFlight` under `key`); else beside the decision that replaced it.
    async fn record(&self, verdict: Verdict, key: String, attempts: u32) -> Result<Recorded, String> {
        let now = self.clock.now_ms();
        let (max_attempts, backoff) = (self.config.max_attempts.clamp(1, 10), self.config.backoff);
        self.update(move |s| {
            let id = s.id.clone();
            let submission = &mut s.submission;
            // Still this attempt: inFlight under the key the request carried. Any
            // other state means an operator or a new save changed it meanwhile.
            let in_flight = submission.status == SubmissionStatus::InFlight
                && submission.idempotency_key.as_deref() == Some(key.as_str());
            Ok(match verdict {
                Verdict::Delivered if in_flight => {
                    submission.succeed(now).map_err(refused(&id))?;
                    (AttemptOutcome::Submitted, None)
                }
                Verdict::Retry { error, retry_after } if in_flight && attempts < max_attempts => {
                    let delay = backoff.delay(attempts, retry_after, &mut rand::rng());
                    let at = now.saturating_add(delay.as_millis() as u64);
                    submission.retry_later(error.clone(), at).map_err(refused(&id))?;
                    (AttemptOutcome::Retrying(at), Some((error, at)))
                }
                Verdict::Configuration { error } if in_flight => {
                    let at = now.saturating_add(backoff.cap.as_millis() as u64);
                    submission
                        .await_configuration(error.clone(), at)
                        .map_err(refused(&id))?;
                    (AttemptOutcome::Retrying(at), Some((error, at)))
                }
                Verdict::Retry { error, .. } | Verdict::Permanent { error } if in_flight => {
                    submission.fail(error.clone()).map_err(refused(&id))?;
                    (AttemptOutcome::Failed, Some((error, 0)))
                }
                // Changed while the request was out: that decision stands, and the
                // attempt's result is recorded beside it (for the content it carried).
                Verdict::Delivered => {
                    submission.late_outcome(&key, Ok(now));
                    (AttemptOutcome::Skipped, None)
                }
                Verdict::Retry { error, .. }
                | Verdict::Permanent { error }
                | Verdict::Configuration { error } => {
                    submission.late_outcome(&key, Err(error));
                    (AttemptOutcome::Skipped, None)
                }
            })
        })
        .await
    }

    /// Logs and announces what the attempt came to.
    fn report(&self, recorded: Result<Recorded, String>, attempts: u32) -> AttemptOutcome {
        let id = self.id.to_string();
        match recorded {
            Ok((AttemptOutcome::Submitted, _)) => {
                tracing::info!(id = %id, attempts, "session submitted");
                let _ = self.events.send(WorkerEvent::Submitted { id });
                AttemptOutcome::Submitted
            }
            Ok((AttemptOutcome::Retrying(_), Some((error, next_attempt_at)))) => {
                // Epoch milliseconds stay in the JSON documents; people read RFC 3339.
                let at = std::time::UNIX_EPOCH + Duration::from_millis(next_attempt_at);
                let next = humantime::format_rfc3339_seconds(at);
                tracing::warn!(id = %id, attempts, %error, next_attempt_at = %next, "submission failed; will retry");
                let _ = self.events.send(WorkerEvent::Retrying {
                    id,
                    attempts,
                    next_attempt_at,
                    error,
                });
                AttemptOutcome::Retrying(next_attempt_at)
            }
            Ok((AttemptOutcome::Failed, Some((error, _)))) => {
                tracing::warn!(id = %id, attempts, %error, "submission failed for good");
                let _ = self.events.send(WorkerEvent::Failed { id, error });
                AttemptOutcome::Failed
            }
            Ok((other, _)) => other,
            Err(e) => {
                // The session stays inFlight; it is resumed with the same key next start.
                tracing::error!(id = %id, error = %e, "could not record a submission outcome");
                AttemptOutcome::Interrupted
            }
        }
    }
}
