//! `/metrics`: the station in the Prometheus (OpenMetrics) text format, for a fleet to
//! scrape. Built by `prometheus-client` at each scrape from what the daemon already
//! knows: a [`StatusReport`], the delivery outcomes it counted, the relay's counters
//! and the store's size. Never a message's content.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use session_capture::relay::RelayStats;
use session_workers::WorkerEvent;

use crate::StatusReport;

/// How long the store's size is reused between scrapes (it costs an `lstat` a file).
const STORE_BYTES_REUSED: Duration = Duration::from_secs(60);

/// What the daemon counts for `/metrics` beyond what the index and the files say.
#[derive(Debug, Default)]
pub struct StationCounters {
    /// Deliveries that succeeded.
    pub submitted: AtomicU64,
    /// Attempts that failed and will be retried.
    pub retried: AtomicU64,
    /// Deliveries that failed for good.
    pub failed: AtomicU64,
    /// The relay's counters, when the daemon captures.
    pub relay: Mutex<Option<Arc<RelayStats>>>,
    store_bytes: Mutex<Option<(Instant, u64)>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

impl StationCounters {
    /// Counts one worker event (deliveries; other events are not counted).
    pub fn observe(&self, event: &WorkerEvent) {
        let counter = match event {
            WorkerEvent::Submitted { .. } => &self.submitted,
            WorkerEvent::Retrying { .. } => &self.retried,
            WorkerEvent::Failed { .. } => &self.failed,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The live sessions' bytes: `read` is called at most once a minute, the figure
    /// it gave reused in between.
    pub fn store_bytes(&self, read: impl FnOnce() -> Option<u64>) -> Option<u64> {
        let mut cached = self.store_bytes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, bytes)) = *cached
            && at.elapsed() < STORE_BYTES_REUSED
        {
            return Some(bytes);
        }
        let bytes = read()?;
        *cached = Some((Instant::now(), bytes));
        Some(bytes)
    }
}

/// Counts the workers' delivery outcomes into `counters` until the channel closes.
pub async fn count_deliveries(
    counters: Arc<StationCounters>,
    mut events: tokio::sync::broadcast::Receiver<WorkerEvent>,
) {
    loop {
        match events.recv().await {
            Ok(event) => counters.observe(&event),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "metrics missed delivery events (the count is low by that much)"
                );
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The text `/metrics` serves for `status`; `store_bytes` is `None` when unknown.
pub fn render(status: &StatusReport, counters: &StationCounters, store_bytes: Option<u64>) -> String {
    let mut registry = <Registry>::default();
    let sessions = Family::<StatusLabel, Gauge>::default();
    for (status, n) in &status.counts.by_status {
        sessions
            .get_or_create(&StatusLabel {
                status: status.as_str(),
            })
            .set(*n as i64);
    }
    registry.register(
        "hl7_sessions",
        "Sessions in the store by submission status",
        sessions,
    );
    let oldest = Gauge::<i64>::default();
    oldest.set(
        status
            .counts
            .oldest_waiting
            .as_ref()
            .map_or(0, |w| (status.at.saturating_sub(w.start_time) / 1000) as i64),
    );
    registry.register(
        "hl7_oldest_undelivered_seconds",
        "Age of the oldest complete session not yet delivered (0 when none waits)",
        oldest,
    );
    let deliveries = Family::<OutcomeLabel, Counter>::default();
    for (outcome, n) in [
        ("submitted", &counters.submitted),
        ("retried", &counters.retried),
        ("failed", &counters.failed),
    ] {
        deliveries
            .get_or_create(&OutcomeLabel { outcome })
            .inc_by(n.load(Ordering::Relaxed));
    }
    registry.register(
        "hl7_deliveries",
        "Delivery attempts since the daemon started, by outcome",
        deliveries,
    );
    register_relay(&mut registry, counters);
    let size = Gauge::<i64>::default();
    size.set(store_bytes.map_or(-1, |b| b as i64));
    registry.register(
        "hl7_store_bytes",
        "Bytes the live session files take (-1: unknown)",
        size,
    );
    let suspect = Gauge::<i64>::default();
    suspect.set(i64::from(status.clock.suspect.is_some()));
    registry.register(
        "hl7_clock_suspect",
        "1 when the store distrusts the wall clock",
        suspect,
    );
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

/// The relay's counters (zero when the daemon does not capture).
fn register_relay(registry: &mut Registry, counters: &StationCounters) {
    let relay = counters.relay.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let load =
        |f: fn(&RelayStats) -> &AtomicU64| relay.as_deref().map_or(0, |r| f(r).load(Ordering::Relaxed));
    registry.register(
        "hl7_capture_sessions",
        "Sessions the capture relay stored since the daemon started",
        ConstCounter::new(load(|r| &r.sessions)),
    );
    let bytes = Family::<DirectionLabel, Counter>::default();
    for (direction, n) in [
        ("device", load(|r| &r.bytes_from_device)),
        ("lis", load(|r| &r.bytes_from_lis)),
    ] {
        bytes.get_or_create(&DirectionLabel { direction }).inc_by(n);
    }
    registry.register(
        "hl7_capture_bytes",
        "Bytes the capture relay read, by the side that sent them",
        bytes,
    );
    registry.register(
        "hl7_recording_failures",
        "Captures whose recording failed (a full disk...) since the daemon started",
        ConstCounter::new(load(|r| &r.recording_failures)),
    );
}
