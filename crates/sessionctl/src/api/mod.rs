//! The daemon's local JSON API and the lab's web page, on `http_listen`.
//!
//! The API is CONTRACT.md's "Local API"; the page at `/` (and `/sessions/{id}`) is built
//! on it, every asset embedded in the binary. Loopback by default; see [`security`] for
//! what every request must pass.

mod handlers;
pub(crate) mod hl7_view;
mod page;
pub(crate) mod security;
pub(crate) mod settings;
pub(crate) mod starting;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use session_store::SessionStore;
use session_workers::cleanup::CleanupConfig;
use tokio::sync::{RwLock, broadcast, watch};

use crate::config::Config;

/// A change the page hears about through `/api/events`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoreEvent {
    /// `stored` (created or replaced) or `deleted` (gone from the live set).
    pub kind: &'static str,
    /// The session.
    pub id: String,
}

/// What every handler shares.
pub(crate) struct ApiState {
    /// The store (its decode options as at start-up: see [`ApiState::typed`]).
    pub store: SessionStore,
    /// The effective configuration; settings changes land here.
    pub config: RwLock<Config>,
    /// Tells the cleanup worker about new settings.
    pub cleanup: watch::Sender<CleanupConfig>,
    /// Changes to sessions, for `/api/events`.
    pub events: broadcast::Sender<StoreEvent>,
    /// Who may call.
    pub guard: security::Guard,
    /// Fires at shutdown: event streams end then, so that stopping never waits on them.
    pub stopping: tokio_util::sync::CancellationToken,
    /// The summary of every session, when the store is watched (else lists read files).
    pub index: Option<Arc<session_station::SessionIndex>>,
    /// What `/metrics` counts.
    pub counters: Arc<session_daemon::metrics::StationCounters>,
}

impl ApiState {
    /// The store with the current settings' decode options (retention may change).
    pub(crate) async fn typed(&self) -> SessionStore {
        SessionStore::new(
            self.store.fs().clone(),
            self.config.read().await.settings().decode_options(),
        )
    }
}

/// The router: the API under `/api`, the page everywhere else.
pub(crate) fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/sessions", get(handlers::sessions))
        .route("/api/bulk", post(handlers::bulk))
        .route("/api/retention/apply", post(handlers::apply_retention))
        .route(
            "/api/sessions/{id}",
            get(handlers::session).delete(handlers::delete),
        )
        .route("/api/sessions/{id}/hl7", get(handlers::hl7))
        .route("/api/sessions/{id}/export", get(handlers::export))
        .route("/api/sessions/{id}/retry", post(handlers::retry))
        .route("/api/sessions/{id}/ignore", post(handlers::ignore))
        .route("/api/status", get(handlers::status))
        .route("/api/clock", get(handlers::clock))
        .route("/api/clock/confirm", post(handlers::confirm_clock))
        .route(
            "/api/settings",
            get(handlers::get_settings).put(handlers::put_settings),
        )
        .route("/api/events", get(handlers::events))
        .route("/api/{*rest}", axum::routing::any(handlers::not_found))
        .route("/metrics", get(handlers::metrics))
        .route("/assets/{name}", get(page::asset))
        .route("/", get(page::index))
        .route("/sessions/{id}", get(page::index))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::check,
        ))
        .with_state(state)
}
