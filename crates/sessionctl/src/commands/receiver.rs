//! `receiver`: a reference server for the submission request of CONTRACT.md, so that
//! other teams can test against something that behaves (or misbehaves) on demand.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::Mutex;

use crate::error::CliError;

/// How the receiver behaves.
#[derive(Debug, Clone)]
pub(crate) struct Behaviour {
    /// Where accepted bodies go.
    pub out: PathBuf,
    /// Answer the first N requests with 503.
    pub fail_first: u32,
    /// Answer every request with this status instead of 201.
    pub status: Option<u16>,
    /// Wait before answering.
    pub delay: Duration,
}

struct Shared {
    behaviour: Behaviour,
    seen: AtomicU32,
    duplicates: AtomicU64,
    /// Serialises "already accepted?" and "accept", so two concurrent repeats of a key
    /// store it once.
    accepting: Mutex<()>,
}

fn valid_key(key: &str) -> bool {
    (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

async fn accept(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let b = &shared.behaviour;
    let n = shared.seen.fetch_add(1, Ordering::SeqCst) + 1;
    if !b.delay.is_zero() {
        tokio::time::sleep(b.delay).await;
    }
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| valid_key(k))
    else {
        return reply(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "missing or invalid Idempotency-Key"}),
        );
    };
    let json_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let Some(parsed) = json_type
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten()
    else {
        return reply(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "expected an application/json body"}),
        );
    };
    // The file says which session it holds: `<sessionId>--<key>.json` (the key alone
    // when the body names no session in a safe file name).
    let holds = parsed
        .get("sessionId")
        .or_else(|| parsed.get("alert"))
        .and_then(serde_json::Value::as_str)
        .filter(|name| valid_key(name))
        .map(|name| format!("{name}--"))
        .unwrap_or_default();
    if n <= b.fail_first {
        tracing::info!(key, request = n, "receiver: failing on purpose (--fail-first)");
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "failing on purpose"}),
        );
    }
    if let Some(status) = b.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return reply(status, serde_json::json!({"status": status.as_u16()}));
    }
    let _one_at_a_time = shared.accepting.lock().await;
    let path = b.out.join(format!("{holds}{key}.json"));
    if path.exists() {
        shared.duplicates.fetch_add(1, Ordering::SeqCst);
        tracing::info!(
            key,
            "receiver: repeat of an accepted key; answering as the first time"
        );
        return reply(StatusCode::CREATED, serde_json::json!({"received": key}));
    }
    let temp = b.out.join(format!(".{holds}{key}.json.tmp"));
    // Bodies are patient data: 0600, like the store's own files.
    let stored = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| std::io::Write::write_all(&mut file, &body))
        .and_then(|()| std::fs::rename(&temp, &path));
    if let Err(e) = stored {
        tracing::error!(key, error = %e, "receiver: cannot store the body");
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": "cannot store"}),
        );
    }
    tracing::info!(key, bytes = body.len(), "receiver: accepted");
    reply(StatusCode::CREATED, serde_json::json!({"received": key}))
}

/// The largest body accepted: the store's own file-size limit, so that whatever the
/// store holds, the receiver takes.
pub(crate) const BODY_LIMIT: usize = session_fs::DEFAULT_MAX_FILE_SIZE as usize;

/// Serves until SIGINT or SIGTERM.
pub(crate) fn receiver(listen: String, behaviour: Behaviour) -> Result<(), CliError> {
    let out_dir = &behaviour.out;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(out_dir)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(out_dir, std::fs::Permissions::from_mode(0o700))
        })
        .map_err(|e| CliError::Failed(format!("--out {}: {e}", out_dir.display())))?;
    let shared = Arc::new(Shared {
        behaviour,
        seen: AtomicU32::new(0),
        duplicates: AtomicU64::new(0),
        accepting: Mutex::new(()),
    });
    let app = Router::new()
        .fallback(axum::routing::post(accept))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared.clone());
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // Host names resolve (`localhost:8080`); the first address that binds is used.
        let listener = tokio::net::TcpListener::bind(listen.as_str())
            .await
            .map_err(|e| CliError::Failed(format!("cannot listen on {listen}: {e}")))?;
        let bound = listener.local_addr()?;
        // One line on stdout that scripts (and tests) can wait for.
        println!("listening on http://{bound}");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                use tokio::signal::unix::{SignalKind, signal};
                if let (Ok(mut term), Ok(mut int)) =
                    (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
                {
                    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
                }
            })
            .await?;
        tracing::info!(
            requests = shared.seen.load(Ordering::SeqCst),
            duplicates = shared.duplicates.load(Ordering::SeqCst),
            "receiver stopped"
        );
        Ok(())
    })
}
