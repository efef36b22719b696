//! The local JSON API of an HL7 session store and the lab's web page, as an axum
//! [`Router`] another program can serve.
//!
//! The API is CONTRACT.md's "Local API": lists, filters and a text search over the
//! sessions, a session read, parsed or exported, retry and ignore (one or in bulk),
//! delete, `status`, the clock, the retention settings, server-sent events and
//! Prometheus metrics. The page at `/` (and `/sessions/{id}`) is built on it, every
//! asset embedded in the crate. [`security`] says what every request must pass (loopback
//! Host, bearer token, same Origin for changes); [`starting`] answers while a daemon is
//! still recovering and migrating.
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_api::{ApiState, security::Guard};
//! use session_daemon::settings::Configuration;
//! use session_store::{DecodeOptions, SessionStore};
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SessionStore::open("/var/lib/hl7/sessions", DecodeOptions::default())?;
//! let config = Configuration::builder().resolve()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8470").await?;
//! let guard = Guard::new("127.0.0.1:8470", listener.local_addr()?, None);
//! let state = ApiState::new(store, config, guard);
//! axum::serve(listener, session_api::router(Arc::new(state))).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Where it sits
//!
//! On top of the libraries, beside `sessionctl`: it reads through `session-store` and
//! `session-station`, computes `status` with `session-daemon`, and writes no file of its
//! own (a settings change reaches the configuration file through the [`SettingsFile`]
//! the embedding program gives it). The JSON it answers with is its own types
//! ([`views`]), which `sessionctl --json` prints too, so the two never drift apart.
#![warn(missing_docs)]

mod handlers;
mod hl7_view;
mod page;
pub mod security;
mod settings;
pub mod starting;
mod state;
pub mod views;

pub use settings::SettingsFile;
pub use state::{ApiState, StoreEvent, status_options};

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

/// The router: the API under `/api`, `/metrics`, and the page everywhere else; every
/// request checked by [`security`] first.
pub fn router(state: Arc<ApiState>) -> Router {
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
