//! Retention and cleanup settings, changed through the API and kept in the TOML file.
//!
//! A change is checked against the same ranges as the configuration, written to the
//! configuration file by the embedding program's [`SettingsFile`], and only then applied.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use session_daemon::settings::{API_SETTINGS, SettingError, SettingType};

use session_daemon::settings::Configuration as Config;

/// Where the API keeps settings changes: the configuration file, which is the embedding
/// program's (this crate touches no file). `sessionctl` edits it with
/// `session_daemon::settings::with_settings` (comments and other keys kept) and
/// replaces it durably.
pub trait SettingsFile: Send + Sync {
    /// Sets each `(key, value)` of `edits` (values as TOML literals) in the file at
    /// `path`, durably, keeping everything else; an error in words, naming the file.
    fn write(&self, path: &Path, edits: &[(String, String)]) -> Result<(), String>;
}

/// `GET /api/settings` (and the answer to a `PUT`): the values at the top level, in
/// the shape a `PUT` takes (`{"retention_days": 30, "delete_undelivered": false, ...}`),
/// and beside them, per key, where each comes from and what is allowed, and the file
/// changes go to.
pub(crate) fn shown(config: &Config) -> Value {
    let mut out = Map::new();
    let (mut sources, mut allowed, mut help) = (Map::new(), Map::new(), Map::new());
    for setting in config
        .described()
        .into_iter()
        .filter(|k| API_SETTINGS.contains(&k.key))
    {
        let raw = setting.value.clone().unwrap_or_default();
        let value = match (raw.parse::<u64>(), raw.as_str()) {
            (Ok(n), _) => json!(n),
            (_, "true") => json!(true),
            (_, "false") => json!(false),
            _ => json!(raw),
        };
        out.insert(setting.key.to_owned(), value);
        sources.insert(setting.key.to_owned(), json!(setting.source.map(|s| s.as_str())));
        let range = setting.allowed.split_once(" to ").and_then(|(min, max)| {
            Some(json!({ "min": min.parse::<u64>().ok()?, "max": max.parse::<u64>().ok()? }))
        });
        allowed.insert(
            setting.key.to_owned(),
            range.unwrap_or_else(|| json!(setting.allowed)),
        );
        help.insert(setting.key.to_owned(), json!(setting.help));
    }
    out.insert("sources".into(), Value::Object(sources));
    out.insert("allowed".into(), Value::Object(allowed));
    out.insert("help".into(), Value::Object(help));
    out.insert(
        "file".into(),
        json!(config.file().map(|f| f.display().to_string())),
    );
    Value::Object(out)
}

/// Keys of [`shown`] that describe the settings rather than set them: a client may send
/// a whole `GET` answer back as a `PUT`.
const DESCRIPTIVE: [&str; 4] = ["sources", "allowed", "help", "file"];

/// Checks every change, writes them to the file, and returns the new configuration;
/// nothing is changed (in memory or on disk) unless all of them are valid and written.
pub(crate) async fn apply(
    config: &Config,
    changes: &Map<String, Value>,
    settings_file: Option<Arc<dyn SettingsFile>>,
) -> Result<Config, (StatusCode, String)> {
    let mut updated = config.clone();
    let mut edits = Vec::new();
    for (key, value) in changes
        .iter()
        .filter(|(key, _)| !DESCRIPTIVE.contains(&key.as_str()))
    {
        // Typed strictly: "30" is not a number and "true" is not a boolean.
        let expected = Config::setting_type(key).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        let raw = match (expected, value) {
            (SettingType::Number, Value::Number(n)) => n.to_string(),
            (SettingType::Boolean, Value::Bool(b)) => b.to_string(),
            (SettingType::Text, Value::String(s)) => s.clone(),
            (expected, other) => {
                let wanted = match expected {
                    SettingType::Number => "a number",
                    SettingType::Boolean => "true or false",
                    SettingType::Text => "a string",
                };
                let got = match other {
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    Value::Null => "null",
                    Value::Array(_) => "an array",
                    Value::Object(_) => "an object",
                };
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("{key}: expected {wanted}, not {got}"),
                ));
            }
        };
        let changed = updated.set_setting(key, &raw).map_err(|e| match e {
            SettingError::Pinned { .. } => (StatusCode::CONFLICT, e.to_string()),
            other => (StatusCode::BAD_REQUEST, other.to_string()),
        })?;
        if changed {
            edits.push((key.clone(), raw));
        }
    }
    let file = config.file().ok_or((
        StatusCode::CONFLICT,
        "no configuration file to keep settings in: start `run` with --config FILE".to_owned(),
    ))?;
    let writer = settings_file.ok_or((
        StatusCode::CONFLICT,
        "this program keeps no settings: change them in the configuration file".to_owned(),
    ))?;
    let file = file.to_owned();
    tokio::task::spawn_blocking(move || writer.write(&file, &edits))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(updated)
}
