//! The API's handlers: each a thin layer over what the command line does.

// axum handlers answer with a `Response` on every path, errors included.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use session_model::{SessionId, SubmissionStatus};
use session_store::{SessionStore, StoreError};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::ApiState;
use crate::views::{self, ClockView, StatusView};
use session_station::{Cancel, ListQuery, SessionIndex, SortKey};

/// `{"error": "..."}` with a status code: the shape of every API error.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> (StatusCode, Json<Value>) {
    let message = session_model::printable_lines(&message.into());
    (status, Json(json!({ "error": message })))
}

fn failed(e: impl std::fmt::Display) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
}

/// What a store error means to a caller of the API.
fn store_error(e: StoreError) -> Response {
    let status = match &e {
        _ if e.is_newer_version() => StatusCode::CONFLICT,
        StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        StoreError::Transition { .. } => StatusCode::CONFLICT,
        StoreError::Decode { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string()).into_response()
}

fn parse_id(raw: &str) -> Result<SessionId, Response> {
    SessionId::new(raw).map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()).into_response())
}

/// Runs store work off the async threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(work).await.map_err(failed)
}

/// A time in a query: epoch milliseconds, or RFC 3339 (`2026-12-04T14:00:00+01:00`).
fn parse_time(name: &str, raw: &str) -> Result<u64, Response> {
    if let Ok(ms) = raw.parse::<u64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{name} must be epoch milliseconds or an RFC 3339 time (2026-12-04T14:00:00Z), not {:?}",
                    session_model::printable(raw)
                ),
            )
            .into_response()
        })
}

/// A list request's filters, order and page, and its search text.
fn list_query(query: &HashMap<String, String>) -> Result<(ListQuery, Option<String>), Response> {
    let given = |name: &str| query.get(name).map(String::as_str).filter(|s| !s.is_empty());
    let number = |name: &str, default: usize, max: usize| -> Result<usize, Response> {
        match given(name) {
            None => Ok(default),
            Some(raw) => raw.parse::<usize>().map(|n| n.min(max)).map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{name} must be a whole number, not {:?}",
                        session_model::printable(raw)
                    ),
                )
                .into_response()
            }),
        }
    };
    let bad = |e: String| error(StatusCode::BAD_REQUEST, e).into_response();
    let status = given("status")
        .map(|raw| raw.parse::<SubmissionStatus>().map_err(|e| bad(e.to_string())))
        .transpose()?;
    let sort = given("sort")
        .map(str::parse::<SortKey>)
        .transpose()
        .map_err(bad)?;
    let descending = match given("order") {
        None => sort.is_none_or(|s| s == SortKey::Start),
        Some("desc") => true,
        Some("asc") => false,
        Some(other) => {
            return Err(bad(format!(
                "order must be asc or desc, not {:?}",
                session_model::printable(other)
            )));
        }
    };
    let list = ListQuery {
        status,
        device: given("device").map(str::to_owned),
        from: given("from").map(|raw| parse_time("from", raw)).transpose()?,
        to: given("to").map(|raw| parse_time("to", raw)).transpose()?,
        sort: sort.unwrap_or_default(),
        descending,
        offset: number("offset", 0, usize::MAX)?,
        limit: number("limit", 100, 1000)?,
    };
    let q = given("q")
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_owned);
    if q.as_ref().is_some_and(|q| q.len() > 200) {
        return Err(bad("q is longer than 200 characters".into()));
    }
    Ok((list, q))
}

/// The daemon's index; without a watch there is none, and one is built from the files
/// for this request (as `list` reads them).
async fn index_of(state: &ApiState) -> Result<Arc<SessionIndex>, Response> {
    if let Some(index) = &state.index {
        return Ok(index.clone());
    }
    let index = Arc::new(SessionIndex::new());
    let (built, store) = (index.clone(), state.typed().await);
    match blocking(move || built.rebuild(&store)).await? {
        Ok(()) => Ok(index),
        Err(e) => Err(store_error(e)),
    }
}

/// The session `raw` names, at the current version; a response for a bad id, a missing
/// session or a file that does not decode.
async fn load_session(state: &ApiState, raw: &str) -> Result<session_model::Session, Response> {
    let id = parse_id(raw)?;
    let store = state.typed().await;
    match blocking(move || store.load(&id).map(|d| d.map(|d| d.session))).await? {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(error(StatusCode::NOT_FOUND, format!("no session {raw}")).into_response()),
        Err(e) => Err(store_error(e)),
    }
}

/// How long a text search reads files before it answers with what it found.
const SEARCH_BUDGET: std::time::Duration = std::time::Duration::from_millis(1500);

/// `GET /api/sessions?status=S&device=IP&from=T&to=T&q=TEXT&sort=K&order=asc|desc&limit=N&offset=K`:
/// newest first unless sorted otherwise. Answers from the daemon's index; `q` reads the
/// files of the sessions the other filters pass, newest first, for at most 1.5 s.
pub(crate) async fn sessions(
    State(state): State<Arc<ApiState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (list, q) = match list_query(&query) {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let store = state.typed().await;
    let index = match index_of(&state).await {
        Ok(index) => index,
        Err(response) => return response,
    };
    let Some(needle) = q else {
        let page = index.page(&list);
        return Json(json!({ "total": page.total, "sessions": views::rows(&page.rows) })).into_response();
    };
    let candidates = index.candidates(&list);
    let cancel = Cancel::default();
    let flag = cancel.flag();
    let deadline = std::time::Instant::now() + SEARCH_BUDGET;
    let page = (list.offset, list.limit);
    let found =
        blocking(move || session_station::search(&store, candidates, &needle, page, deadline, &flag)).await;
    let found = found.map(|found| (index.rows(&found.ids), found));
    drop(cancel);
    match found {
        Err(response) => response,
        Ok((rows, found)) => Json(json!({
            "total": found.matched,
            "sessions": views::rows(&rows),
            "search": {
                "complete": found.complete,
                "searched": found.searched,
                "candidates": found.candidates,
            },
        }))
        .into_response(),
    }
}

/// `GET /api/sessions/{id}`: the session at the current version, as `show --json`.
pub(crate) async fn session(State(state): State<Arc<ApiState>>, Path(raw): Path<String>) -> Response {
    match load_session(&state, &raw).await {
        Ok(session) => Json(session).into_response(),
        Err(response) => response,
    }
}

/// `GET /api/sessions/{id}/hl7`: each message parsed into segments and fields.
pub(crate) async fn hl7(State(state): State<Arc<ApiState>>, Path(raw): Path<String>) -> Response {
    match load_session(&state, &raw).await {
        Ok(session) => {
            let messages = crate::hl7_view::messages(&session.messages());
            Json(json!({ "id": session.id.as_str(), "messages": messages })).into_response()
        }
        Err(response) => response,
    }
}

/// `GET /api/sessions/{id}/export?format=hl7|json`: a download of the messages as sent
/// (each message's segments separated by CR, one message after the other) or of the
/// stored document as it is on disk.
pub(crate) async fn export(
    State(state): State<Arc<ApiState>>,
    Path(raw): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let format = query.get("format").map_or("hl7", String::as_str);
    if !matches!(format, "hl7" | "json") {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "format must be hl7 or json, not {:?}",
                session_model::printable(format)
            ),
        )
        .into_response();
    }
    let store = state.typed().await;
    let wants_json = format == "json";
    let read = blocking(move || -> Result<Option<Vec<u8>>, StoreError> {
        // Decoded first either way: a damaged or newer file is not served as a session.
        let Some(decoded) = store.load(&id)? else {
            return Ok(None);
        };
        if wants_json {
            return Ok(store.fs().read(&id)?);
        }
        Ok(Some(decoded.session.hl7_file()))
    })
    .await;
    let (content_type, extension) = if wants_json {
        ("application/json", "json")
    } else {
        ("application/hl7-v2", "hl7")
    };
    match read {
        Err(response) => response,
        Ok(Ok(Some(bytes))) => {
            // A session id is `A-Z a-z 0-9 . _ -` only: nothing to escape in a header.
            let name = raw;
            (
                [
                    (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
                    (
                        axum::http::header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.{extension}\""),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, format!("no session {raw}")).into_response(),
        Ok(Err(e)) => store_error(e),
    }
}

/// A retry or an ignore, through the store's own function.
type Change = fn(&SessionStore, &SessionId) -> Result<session_model::Session, StoreError>;

async fn change_status(state: Arc<ApiState>, raw: String, change: Change) -> Response {
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let store = state.typed().await;
    let index = state.index.clone();
    let changed = blocking(move || {
        let changed = change(&store, &id);
        // The caller reads its own change at once; the watch would tell the index later.
        if let Some(index) = index {
            index.saved(&store, &id, changed.as_ref());
        }
        changed
    })
    .await;
    match changed {
        Err(response) => response,
        Ok(Ok(session)) => Json(json!({
            "id": session.id.as_str(),
            "submissionStatus": session.submission.status,
        }))
        .into_response(),
        Ok(Err(e)) => store_error(e),
    }
}

/// Sessions a bulk action may change at once.
const BULK_MAX: usize = 100_000;

/// `POST /api/bulk` (not under `/api/sessions/`, where it would shadow a session named so): `{"action": "retry"|"ignore", "ids": [...]}`, or with
/// `"filter": {"status", "device", "from", "to"}` instead of ids (every session the
/// list would show with those filters). Each session changes as its own button would
/// change it; those it cannot change are listed with why.
pub(crate) async fn bulk(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    let bad = |message: String| error(StatusCode::BAD_REQUEST, message).into_response();
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return bad(r#"expected {"action": "retry" or "ignore", "ids": [...]} or a "filter""#.into());
    };
    let change: Change = match request.get("action").and_then(Value::as_str) {
        Some("retry") => SessionStore::retry,
        Some("ignore") => SessionStore::ignore,
        _ => return bad(r#"action must be "retry" or "ignore""#.into()),
    };
    let ids = match bulk_ids(&state, &request).await {
        Ok(ids) => ids,
        Err(response) => return response,
    };
    if ids.len() > BULK_MAX {
        return bad(format!("at most {BULK_MAX} sessions at once, not {}", ids.len()));
    }
    let store = state.typed().await;
    let index = state.index.clone();
    let done = blocking(move || {
        let mut changed = 0usize;
        let mut skipped = Vec::new();
        for id in &ids {
            let result = change(&store, id);
            if let Some(index) = &index {
                index.saved(&store, id, result.as_ref());
            }
            match result {
                Ok(_) => changed += 1,
                Err(e) => skipped.push(json!({ "id": id.as_str(), "error": e.to_string() })),
            }
        }
        (changed, skipped)
    })
    .await;
    match done {
        Err(response) => response,
        Ok((changed, skipped)) => {
            tracing::info!(
                changed,
                skipped = skipped.len(),
                "a bulk action through the local API"
            );
            let skipped_count = skipped.len();
            Json(json!({
                "changed": changed,
                "skippedCount": skipped_count,
                "skipped": skipped.into_iter().take(50).collect::<Vec<_>>(),
            }))
            .into_response()
        }
    }
}

/// The sessions a bulk request names: its `ids`, or every session its `filter` passes.
async fn bulk_ids(
    state: &ApiState,
    request: &serde_json::Map<String, Value>,
) -> Result<Vec<SessionId>, Response> {
    let bad = |message: String| error(StatusCode::BAD_REQUEST, message).into_response();
    match (request.get("ids"), request.get("filter")) {
        (Some(Value::Array(ids)), None) => {
            let mut parsed = Vec::with_capacity(ids.len());
            for raw in ids {
                match raw.as_str().map(SessionId::new) {
                    Some(Ok(id)) => parsed.push(id),
                    _ => return Err(bad(format!("ids must be session ids, not {raw}"))),
                }
            }
            Ok(parsed)
        }
        (None, Some(Value::Object(filter))) => {
            let query: HashMap<String, String> = filter
                .iter()
                .filter_map(|(k, v)| {
                    v.as_str()
                        .map(|v| (k.clone(), v.to_owned()))
                        .or_else(|| v.as_u64().map(|v| (k.clone(), v.to_string())))
                })
                .collect();
            if let Some(unknown) = filter
                .keys()
                .find(|k| !["status", "device", "from", "to"].contains(&k.as_str()))
            {
                return Err(bad(format!(
                    "a bulk filter takes status, device, from and to, not {:?}",
                    session_model::printable(unknown)
                )));
            }
            let (list, _) = list_query(&query)?;
            let index = index_of(state).await?;
            Ok(index
                .candidates(&list)
                .into_iter()
                .filter_map(|id| SessionId::new(&*id).ok())
                .collect())
        }
        _ => Err(bad("give either ids (a list) or filter (an object)".into())),
    }
}

/// `POST /api/retention/apply`: gives every stored session the configured retention, as
/// if it had been stored under it (`persistedUntil` = its start plus `retention_days`).
/// A changed retention otherwise applies only to sessions stored from then on; this is
/// the operator's explicit choice to apply it to the rest.
pub(crate) async fn apply_retention(State(state): State<Arc<ApiState>>) -> Response {
    let days = state
        .config
        .read()
        .await
        .settings()
        .decode_options()
        .retention_days;
    let store = state.typed().await;
    let index = state.index.clone();
    let done = blocking(move || {
        store.apply_retention(days, |id, saved| {
            if let Some(index) = &index {
                index.saved(&store, id, saved);
            }
        })
    })
    .await;
    match done {
        Err(response) => response,
        Ok(Err(e)) => store_error(e),
        Ok(Ok(applied)) => {
            tracing::info!(
                days,
                changed = applied.changed,
                skipped = applied.skipped.len(),
                "retention applied to the stored sessions through the local API"
            );
            let skipped: Vec<Value> = applied
                .skipped
                .iter()
                .take(50)
                .map(|(id, e)| json!({ "id": id.as_str(), "error": e.to_string() }))
                .collect();
            Json(json!({
                "retentionDays": days,
                "changed": applied.changed,
                "skippedCount": applied.skipped.len(),
                "skipped": skipped,
            }))
            .into_response()
        }
    }
}

/// `POST /api/sessions/{id}/retry`.
pub(crate) async fn retry(State(state): State<Arc<ApiState>>, Path(raw): Path<String>) -> Response {
    change_status(state, raw, SessionStore::retry).await
}

/// `POST /api/sessions/{id}/ignore`.
pub(crate) async fn ignore(State(state): State<Arc<ApiState>>, Path(raw): Path<String>) -> Response {
    change_status(state, raw, SessionStore::ignore).await
}

/// `DELETE /api/sessions/{id}`: to the trash (a damaged file to the quarantine).
pub(crate) async fn delete(State(state): State<Arc<ApiState>>, Path(raw): Path<String>) -> Response {
    let id = match parse_id(&raw) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let store = state.typed().await;
    let index = state.index.clone();
    let deleted = blocking(move || {
        let deleted = store.delete(&id);
        if let Some(index) = index {
            index.refresh(&store, &id);
        }
        deleted
    });
    match deleted.await {
        Err(response) => response,
        Ok(Ok(deleted)) => Json(json!({ "deleted": deleted })).into_response(),
        Ok(Err(e)) => store_error(e),
    }
}

/// `GET /api/status`: as `status --json`, the sessions' part from the index.
pub(crate) async fn status(State(state): State<Arc<ApiState>>) -> Response {
    let store = state.typed().await;
    let options = crate::status_options(&*state.config.read().await);
    let index = state.index.clone();
    let computed = blocking(move || match index {
        Some(index) => session_daemon::status_from_index(&index, &store, &options),
        None => session_daemon::status(&store, &options),
    });
    match computed.await {
        Err(response) => response,
        Ok(Ok(report)) => Json(StatusView::from(&report)).into_response(),
        Ok(Err(e)) => store_error(e),
    }
}

/// `GET /metrics`: the Prometheus (OpenMetrics) text format.
pub(crate) async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    let store = state.typed().await;
    let options = crate::status_options(&*state.config.read().await);
    let (index, counters) = (state.index.clone(), state.counters.clone());
    let rendered = blocking(move || {
        let status = match &index {
            Some(index) => session_daemon::status_from_index(index, &store, &options)?,
            None => session_daemon::status(&store, &options)?,
        };
        let bytes = counters.store_bytes(|| store.fs().maintenance().live_bytes().ok());
        Ok(session_daemon::metrics::render(&status, &counters, bytes))
    });
    match rendered.await {
        Err(response) => response,
        Ok(Ok(text)) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(Err(e)) => store_error(e),
    }
}

/// `POST /api/clock/confirm`: an operator says the wall clock is right now.
pub(crate) async fn confirm_clock(State(state): State<Arc<ApiState>>) -> Response {
    let store = state.typed().await;
    match blocking(move || store.fs().confirm_clock()).await {
        Err(response) => response,
        Ok(Ok(check)) => {
            tracing::info!("an operator confirmed the clock through the local API");
            Json(ClockView::from(&check.record)).into_response()
        }
        Ok(Err(e)) => failed(e),
    }
}

/// `GET /api/clock`: what the store knows of its clock.
pub(crate) async fn clock(State(state): State<Arc<ApiState>>) -> Response {
    let store = state.typed().await;
    match blocking(move || ClockView::of(&store)).await {
        Err(response) => response,
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(e)) => failed(e),
    }
}

/// `GET /api/settings`.
pub(crate) async fn get_settings(State(state): State<Arc<ApiState>>) -> Response {
    let config = state.config.read().await;
    Json(crate::settings::shown(&config)).into_response()
}

/// `PUT /api/settings`: `{"retention_days": 90, ...}`, checked, written, applied.
pub(crate) async fn put_settings(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    let changes: serde_json::Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(changes)) => changes,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected a JSON object of settings, e.g. {\"retention_days\": 90}",
            )
            .into_response();
        }
    };
    let mut config = state.config.write().await;
    match crate::settings::apply(&config, &changes, state.settings_file.clone()).await {
        Ok(updated) => {
            state.cleanup.send_replace(updated.settings().cleanup());
            *config = updated;
            tracing::info!(keys = ?changes.keys().collect::<Vec<_>>(), "settings changed through the local API");
            Json(crate::settings::shown(&config)).into_response()
        }
        Err((status, message)) => error(status, message).into_response(),
    }
}

/// `GET /api/events`: server-sent events, one per session stored or deleted.
pub(crate) async fn events(State(state): State<Arc<ApiState>>) -> Response {
    let stopping = state.stopping.clone().cancelled_owned();
    let stream = BroadcastStream::new(state.events.subscribe()).filter_map(|event| {
        // A lagging client misses events, not the stream: it refetches on the next one.
        let event = event.ok()?;
        let data = serde_json::to_string(&event).ok()?;
        Some(Ok::<_, Infallible>(Event::default().event("session").data(data)))
    });
    // The stream ends when the daemon stops, so that shutdown never waits on a page.
    let stream = futures_util::StreamExt::take_until(stream, stopping);
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Anything else: 404, as JSON.
pub(crate) async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such page or endpoint").into_response()
}
