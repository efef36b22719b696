//! `alert_webhook`: the daemon POSTs each alert `status` raises (JSON), once while it
//! stands and once when it clears, retrying a failed POST with backoff. The URL may hold
//! a token: it is logged redacted. A body holds no message content.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use session_store::SessionStore;
use session_workers::submit::redacted_url;
use tokio_util::sync::CancellationToken;

use crate::commands::status::{Alert, StatusOptions, compute};
use session_station::SessionIndex;

/// How often the alerts are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// The first wait after a failed POST; doubled each time, up to [`RETRY_CAP`].
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_CAP: Duration = Duration::from_secs(600);

/// An alert the webhook knows of: whether it was told, and when to try again.
#[derive(Debug)]
struct Tracked {
    alert: Alert,
    /// When it was first seen, epoch ms: part of its key, so a receiver keeps it once.
    since: u64,
    told: bool,
    next_try: tokio::time::Instant,
    wait: Duration,
}

/// The webhook's state between checks.
#[derive(Debug, Default)]
struct Webhook {
    standing: HashMap<&'static str, Tracked>,
    /// Cleared alerts whose "resolved" is still to be told.
    clearing: HashMap<&'static str, Tracked>,
}

/// Runs until `cancel`: looks at the alerts every 5 s and POSTs what changed to `url`.
pub(crate) async fn run(
    url: String,
    store: SessionStore,
    index: Option<Arc<SessionIndex>>,
    options: StatusOptions,
    cancel: CancellationToken,
) {
    let shown = redacted_url(&url);
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        // Never follow: nothing goes to a host nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(webhook = %shown, error = %e, "alert_webhook is off: no HTTP client");
            return;
        }
    };
    let station = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let mut webhook = Webhook::default();
    loop {
        let (store_now, index_now) = (store.clone(), index.clone());
        let alerts = tokio::task::spawn_blocking(move || match index_now {
            Some(index) => crate::commands::status::from_index(&index, &store_now, &options),
            None => compute(&store_now, &options),
        })
        .await;
        match alerts {
            Ok(Ok(status)) => {
                let now = store.fs().clock().now_ms();
                webhook.update(status.alerts(), now);
                webhook
                    .tell(
                        &client,
                        &url,
                        &shown,
                        &station,
                        &store.fs().dir().display().to_string(),
                        now,
                    )
                    .await;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "alert_webhook: could not compute the alerts"),
            Err(e) => tracing::warn!(error = %e, "alert_webhook: the alert check failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

impl Webhook {
    /// Takes in the alerts standing at `now`.
    fn update(&mut self, alerts: &[Alert], now: u64) {
        for alert in alerts {
            match self.standing.get_mut(alert.kind) {
                // Its words may change (an age grows); it was told once, which stands.
                Some(tracked) => tracked.alert = alert.clone(),
                None => {
                    self.clearing.remove(alert.kind);
                    self.standing.insert(
                        alert.kind,
                        Tracked {
                            alert: alert.clone(),
                            since: now,
                            told: false,
                            next_try: tokio::time::Instant::now(),
                            wait: RETRY_FIRST,
                        },
                    );
                }
            }
        }
        let gone: Vec<&'static str> = self
            .standing
            .keys()
            .filter(|kind| !alerts.iter().any(|a| a.kind == **kind))
            .copied()
            .collect();
        for kind in gone {
            if let Some(mut tracked) = self.standing.remove(kind)
                && tracked.told
            {
                tracked.next_try = tokio::time::Instant::now();
                tracked.wait = RETRY_FIRST;
                self.clearing.insert(kind, tracked);
            }
        }
    }

    /// POSTs what is due: new alerts (`firing`) and cleared ones (`resolved`).
    async fn tell(
        &mut self,
        client: &reqwest::Client,
        url: &str,
        shown: &str,
        station: &str,
        store: &str,
        now: u64,
    ) {
        let due = tokio::time::Instant::now();
        for (state, table) in [("firing", &mut self.standing), ("resolved", &mut self.clearing)] {
            let mut done = Vec::new();
            for (kind, tracked) in table.iter_mut() {
                if (state == "firing" && tracked.told) || tracked.next_try > due {
                    continue;
                }
                let body = serde_json::json!({
                    "alert": kind,
                    "state": state,
                    "message": tracked.alert.message,
                    "since": tracked.since,
                    "at": now,
                    "station": station,
                    "store": store,
                });
                let key = format!("{kind}-{state}-{}", tracked.since);
                let sent = client
                    .post(url)
                    .header("Idempotency-Key", &key)
                    .header("Content-Type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                match sent {
                    Ok(reply) if reply.status().is_success() => {
                        tracing::info!(webhook = %shown, alert = kind, state, "alert told");
                        tracked.told = true;
                        done.push(*kind);
                    }
                    other => {
                        let why = match other {
                            Ok(reply) => format!("HTTP {}", reply.status().as_u16()),
                            Err(e) => {
                                if e.is_timeout() {
                                    "timed out".to_owned()
                                } else {
                                    "network error".to_owned()
                                }
                            }
                        };
                        tracing::warn!(webhook = %shown, alert = kind, state, error = %why, retry_in = ?tracked.wait, "alert not told; trying again");
                        tracked.next_try = due + tracked.wait;
                        tracked.wait = (tracked.wait * 2).min(RETRY_CAP);
                    }
                }
            }
            if state == "resolved" {
                for kind in done {
                    table.remove(kind);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(kind: &'static str) -> Alert {
        Alert {
            kind,
            message: format!("{kind} happened"),
        }
    }

    #[test]
    fn an_alert_is_told_once_while_it_stands_and_its_clearing_only_if_it_was_told() {
        let mut webhook = Webhook::default();
        webhook.update(&[alert("undelivered"), alert("clockSuspect")], 1);
        assert_eq!(webhook.standing.len(), 2);
        webhook.standing.get_mut("undelivered").unwrap().told = true;
        // Standing on: kept as it was (its key's `since` does not move).
        webhook.update(&[alert("undelivered"), alert("clockSuspect")], 2);
        assert_eq!(webhook.standing["undelivered"].since, 1);
        // Both clear: only the told one has a "resolved" to tell.
        webhook.update(&[], 3);
        assert!(webhook.standing.is_empty());
        assert_eq!(
            webhook.clearing.keys().copied().collect::<Vec<_>>(),
            ["undelivered"]
        );
        // Back before its clearing was told: standing again, a new occurrence.
        webhook.update(&[alert("undelivered")], 4);
        assert!(webhook.clearing.is_empty());
        assert_eq!(webhook.standing["undelivered"].since, 4);
        assert!(!webhook.standing["undelivered"].told);
    }
}
