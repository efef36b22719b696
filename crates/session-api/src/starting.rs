//! The page during start-up. Recovery and migration need the store to themselves, which
//! can take a while on a large store; meanwhile the listener already answers: the page
//! and its assets are served, and every API request gets 503 with what start-up is doing
//! (`{"error": "starting up: migrating 4000 of 10000 sessions", "starting": {...}}`), so
//! the page can say so instead of being unreachable. Once the daemon serves, every
//! request goes to the real router. The Host, token and Origin rules hold throughout.

use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower::ServiceExt;

use crate::security::{Guard, hardened, refusal};

/// What start-up is doing, as the page is told.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// `recovering` or `migrating`.
    phase: &'static str,
    /// Sessions done so far in this phase.
    done: usize,
    /// Sessions this phase has in all, when known.
    total: Option<usize>,
}

impl Progress {
    /// `done` of `total` sessions (when known) in `phase` (`recovering`, `migrating`).
    pub fn new(phase: &'static str, done: usize, total: Option<usize>) -> Self {
        Progress { phase, done, total }
    }
}

impl From<session_daemon::Progress> for Progress {
    fn from(progress: session_daemon::Progress) -> Self {
        Progress {
            phase: progress.phase.as_str(),
            done: progress.done,
            total: progress.total,
        }
    }
}

impl Progress {
    fn words(&self) -> String {
        match self.total {
            Some(total) => format!("{} {} of {total} sessions", self.phase, self.done),
            None => format!("{}: {} sessions read", self.phase, self.done),
        }
    }
}

/// The listener's state from its first request on.
#[derive(Debug)]
pub struct Starting {
    guard: Guard,
    progress: Mutex<Progress>,
    ready: OnceLock<Router>,
}

impl Starting {
    /// Start-up under `guard`'s rules, recovering.
    pub fn new(guard: Guard) -> Arc<Self> {
        Arc::new(Starting {
            guard,
            progress: Mutex::new(Progress {
                phase: "recovering",
                ..Progress::default()
            }),
            ready: OnceLock::new(),
        })
    }

    /// Start-up has reached `progress`.
    pub fn report(&self, progress: Progress) {
        *self.progress.lock().unwrap_or_else(|p| p.into_inner()) = progress;
    }

    /// Start-up is over: `router` answers from now on.
    pub fn serve(&self, router: Router) {
        let _ = self.ready.set(router);
    }
}

/// The router the listener serves from the start.
pub fn router(starting: Arc<Starting>) -> Router {
    Router::new().fallback(gate).with_state(starting)
}

async fn gate(State(starting): State<Arc<Starting>>, request: Request) -> Response {
    if let Some(router) = starting.ready.get() {
        return match router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    if let Some((status, message)) = refusal(&starting.guard, &request) {
        return hardened(crate::handlers::error(status, message).into_response());
    }
    let path = request.uri().path();
    let response = if path == "/" || path.starts_with("/sessions/") {
        crate::page::index().await
    } else if let Some(name) = path.strip_prefix("/assets/") {
        crate::page::asset(axum::extract::Path(name.to_owned())).await
    } else {
        let progress = starting
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "1")],
            axum::Json(serde_json::json!({
                "error": format!("starting up: {}", progress.words()),
                "starting": progress,
            })),
        )
            .into_response()
    };
    hardened(response)
}
