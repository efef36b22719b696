//! `alert_webhook`: each alert a [`StatusReport`] raises is POSTed as JSON, once while
//! it stands and once when it clears, a failed POST retried with backoff. The URL may
//! hold a token: it is logged redacted. A body holds ids and counts, never a message's
//! content.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use session_station::SessionIndex;
use session_store::SessionStore;
use session_workers::submit::redacted_url;
use tokio_util::sync::CancellationToken;

use crate::{Alert, AlertKind, StatusOptions, StatusReport, status, status_from_index};

/// The longest wait after failed POSTs (the first is [`AlertWebhook::check_every`],
/// doubled after each failure).
const RETRY_CAP: Duration = Duration::from_secs(600);

/// Where alerts are told, and what they are computed from.
#[derive(Debug, Clone)]
pub struct AlertWebhook {
    /// The URL each alert is POSTed to.
    pub url: String,
    /// The station's name in each body (its host name, say).
    pub station: String,
    /// The store the alerts are about.
    pub store: SessionStore,
    /// The daemon's index, when it keeps one: the report is then computed from it
    /// instead of a read of every file.
    pub index: Option<Arc<SessionIndex>>,
    /// What the report judges by.
    pub options: StatusOptions,
    /// How often the alerts are looked at (5 s in `sessionctl run`), and the first wait
    /// after a failed POST.
    pub check_every: Duration,
}

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
struct Told {
    standing: HashMap<AlertKind, Tracked>,
    /// Cleared alerts whose "resolved" is still to be told.
    clearing: HashMap<AlertKind, Tracked>,
}

impl AlertWebhook {
    /// Runs until `cancel`: looks at the alerts every 5 s and POSTs what changed.
    pub async fn run(self, cancel: CancellationToken) {
        let shown = redacted_url(&self.url);
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
        let mut told = Told::default();
        loop {
            let (store, index, options) = (self.store.clone(), self.index.clone(), self.options);
            let report = tokio::task::spawn_blocking(move || match index {
                Some(index) => status_from_index(&index, &store, &options),
                None => status(&store, &options),
            })
            .await;
            match report {
                Ok(Ok(report)) => {
                    told.update(&report.alerts, report.at, self.check_every);
                    told.tell(&client, &self, &shown, &report).await;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "alert_webhook: could not compute the alerts"),
                Err(e) => tracing::warn!(error = %e, "alert_webhook: the alert check failed"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.check_every) => {}
            }
        }
    }
}

impl Told {
    /// Takes in the alerts standing at `now`; a POST that fails first waits `first_wait`.
    fn update(&mut self, alerts: &[Alert], now: u64, first_wait: Duration) {
        for alert in alerts {
            match self.standing.get_mut(&alert.kind) {
                // Its words may change (an age grows); it was told once, which stands.
                Some(tracked) => tracked.alert = alert.clone(),
                None => {
                    self.clearing.remove(&alert.kind);
                    self.standing.insert(
                        alert.kind,
                        Tracked {
                            alert: alert.clone(),
                            since: now,
                            told: false,
                            next_try: tokio::time::Instant::now(),
                            wait: first_wait,
                        },
                    );
                }
            }
        }
        let gone: Vec<AlertKind> = self
            .standing
            .keys()
            .filter(|kind| !alerts.iter().any(|a| a.kind == **kind))
            .copied()
            .collect();
        for kind in gone {
            if let Some(mut tracked) = self.standing.remove(&kind)
                && tracked.told
            {
                tracked.next_try = tokio::time::Instant::now();
                tracked.wait = first_wait;
                self.clearing.insert(kind, tracked);
            }
        }
    }

    /// POSTs what is due: new alerts (`firing`) and cleared ones (`resolved`).
    async fn tell(
        &mut self,
        client: &reqwest::Client,
        webhook: &AlertWebhook,
        shown: &str,
        report: &StatusReport,
    ) {
        let due = tokio::time::Instant::now();
        let store = webhook.store.fs().dir().display().to_string();
        for (state, table) in [("firing", &mut self.standing), ("resolved", &mut self.clearing)] {
            let mut done = Vec::new();
            for (kind, tracked) in table.iter_mut() {
                if (state == "firing" && tracked.told) || tracked.next_try > due {
                    continue;
                }
                let alert = kind.as_str();
                let body = serde_json::json!({
                    "alert": alert,
                    "state": state,
                    "message": tracked.alert.message,
                    "since": tracked.since,
                    "at": report.at,
                    "station": webhook.station,
                    "store": store,
                });
                let key = format!("{alert}-{state}-{}", tracked.since);
                let sent = client
                    .post(&webhook.url)
                    .header("Idempotency-Key", &key)
                    .header("Content-Type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                match sent {
                    Ok(reply) if reply.status().is_success() => {
                        tracing::info!(webhook = %shown, alert, state, "alert told");
                        tracked.told = true;
                        done.push(*kind);
                    }
                    other => {
                        let why = match other {
                            Ok(reply) => format!("HTTP {}", reply.status().as_u16()),
                            Err(e) if e.is_timeout() => "timed out".to_owned(),
                            Err(_) => "network error".to_owned(),
                        };
                        tracing::warn!(webhook = %shown, alert, state, error = %why, retry_in = ?tracked.wait, "alert not told; trying again");
                        tracked.next_try = due + tracked.wait;
                        tracked.wait = (tracked.wait * 2).min(RETRY_CAP);
                    }
                }
            }
            if state == "resolved" {
                for kind in done {
                    table.remove(&kind);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(kind: AlertKind) -> Alert {
        Alert {
            kind,
            message: format!("{kind:?} happened"),
        }
    }

    #[test]
    fn an_alert_is_told_once_while_it_stands_and_its_clearing_only_if_it_was_told() {
        let (undelivered, clock) = (AlertKind::Undelivered, AlertKind::ClockSuspect);
        let mut told = Told::default();
        told.update(&[alert(undelivered), alert(clock)], 1, Duration::from_secs(5));
        assert_eq!(told.standing.len(), 2);
        told.standing.get_mut(&undelivered).unwrap().told = true;
        // Standing on: kept as it was (its key's `since` does not move).
        told.update(&[alert(undelivered), alert(clock)], 2, Duration::from_secs(5));
        assert_eq!(told.standing[&undelivered].since, 1);
        // Both clear: only the told one has a "resolved" to tell.
        told.update(&[], 3, Duration::from_secs(5));
        assert!(told.standing.is_empty());
        assert_eq!(told.clearing.keys().copied().collect::<Vec<_>>(), [undelivered]);
        // Back before its clearing was told: standing again, a new occurrence.
        told.update(&[alert(undelivered)], 4, Duration::from_secs(5));
        assert!(told.clearing.is_empty());
        assert_eq!(told.standing[&undelivered].since, 4);
        assert!(!told.standing[&undelivered].told);
    }
}
