//! What every handler shares, and how an embedding program builds it.

use std::sync::Arc;

use session_daemon::metrics::StationCounters;
use session_daemon::settings::Configuration;
use session_station::SessionIndex;
use session_store::SessionStore;
use session_workers::cleanup::CleanupConfig;
use tokio::sync::{RwLock, broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::security::Guard;
use crate::settings::SettingsFile;

/// A change the page hears about through `/api/events`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreEvent {
    /// `stored` (created or replaced) or `deleted` (gone from the live set).
    kind: &'static str,
    /// The session.
    id: String,
}

impl StoreEvent {
    /// Session `id` was stored (`stored`) or left the live set.
    pub fn of(id: String, stored: bool) -> Self {
        let kind = if stored { "stored" } else { "deleted" };
        StoreEvent { kind, id }
    }
}

/// What every handler shares: the store, the configuration, who may call, and what the
/// daemon around the API offers (its session index, its workers' settings, its events).
/// [`ApiState::new`] is enough to serve; each `with_` adds what a daemon has.
pub struct ApiState {
    /// The store (its decode options as at start-up: see [`ApiState::typed`]).
    pub(crate) store: SessionStore,
    /// The effective configuration; settings changes land here.
    pub(crate) config: RwLock<Configuration>,
    /// Tells the cleanup worker about new settings.
    pub(crate) cleanup: watch::Sender<CleanupConfig>,
    /// Changes to sessions, for `/api/events`.
    pub(crate) events: broadcast::Sender<StoreEvent>,
    /// Who may call.
    pub(crate) guard: Guard,
    /// Fires at shutdown: event streams end then, so that stopping never waits on them.
    pub(crate) stopping: CancellationToken,
    /// The summary of every session, when the store is watched (else lists read files).
    pub(crate) index: Option<Arc<SessionIndex>>,
    /// What `/metrics` counts.
    pub(crate) counters: Arc<StationCounters>,
    /// Where settings changes are written; without one they are refused.
    pub(crate) settings_file: Option<Arc<dyn SettingsFile>>,
}

impl ApiState {
    /// The API over `store`, configured by `config`, answering whom `guard` lets in.
    /// Without more, lists are read from the files, no event is ever sent, settings
    /// cannot be changed and `/metrics` counts no delivery.
    pub fn new(store: SessionStore, config: Configuration, guard: Guard) -> Self {
        let cleanup = watch::Sender::new(config.settings().cleanup());
        ApiState {
            store,
            config: RwLock::new(config),
            cleanup,
            events: broadcast::Sender::new(16),
            guard,
            stopping: CancellationToken::new(),
            index: None,
            counters: Arc::default(),
            settings_file: None,
        }
    }

    /// Settings changes are told to the cleanup worker through `cleanup`.
    pub fn with_cleanup(mut self, cleanup: watch::Sender<CleanupConfig>) -> Self {
        self.cleanup = cleanup;
        self
    }

    /// `/api/events` streams what is sent on `events`.
    pub fn with_events(mut self, events: broadcast::Sender<StoreEvent>) -> Self {
        self.events = events;
        self
    }

    /// Lists, filters, counts and bulk filters answer from `index`, which the API also
    /// tells of every change it makes (the daemon's watch tells it of the others).
    pub fn with_index(mut self, index: Arc<SessionIndex>) -> Self {
        self.index = Some(index);
        self
    }

    /// `/metrics` reports `counters` (the daemon's deliveries and relay).
    pub fn with_counters(mut self, counters: Arc<StationCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// Event streams end when `stopping` fires, so that a graceful shutdown never
    /// waits on an open page.
    pub fn stopping_on(mut self, stopping: CancellationToken) -> Self {
        self.stopping = stopping;
        self
    }

    /// `PUT /api/settings` keeps its changes in the configuration's file through `file`.
    pub fn with_settings_file(mut self, file: Arc<dyn SettingsFile>) -> Self {
        self.settings_file = Some(file);
        self
    }

    /// The store with the current settings' decode options (retention may change).
    pub(crate) async fn typed(&self) -> SessionStore {
        SessionStore::new(
            self.store.fs().clone(),
            self.config.read().await.settings().decode_options(),
        )
    }
}

/// What `status` judges by, from the configuration: the retry cap (a pending session
/// due beyond it is a clock's doing) and how long undelivered is worth an alert.
pub fn status_options(config: &Configuration) -> session_daemon::StatusOptions {
    let settings = config.settings();
    session_daemon::StatusOptions {
        retry_cap_ms: u64::try_from(settings.submit().backoff.cap.as_millis()).unwrap_or(u64::MAX),
        alert_undelivered_ms: settings.alert_undelivered_minutes.saturating_mul(60_000),
    }
}
