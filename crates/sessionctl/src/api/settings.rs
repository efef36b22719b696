//! Retention and cleanup settings, changed through the API and kept in the TOML file.
//!
//! A change is checked against the same ranges as the configuration, written durably to
//! the configuration file (temp file, fsync, rename, directory fsync) with
//! `toml_edit`, so comments and other keys stay as the operator wrote them, and only
//! then applied.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use session_daemon::settings::{API_SETTINGS, SettingError, SettingType};

use crate::config::Config;

/// `GET /api/settings` (and the answer to a `PUT`): the values at the top level, in
/// the shape a `PUT` takes (`{"retention_days": 30, "delete_undelivered": false, ...}`),
/// and beside them, per key, where each comes from and what is allowed, and the file
/// changes go to.
pub(crate) fn shown(config: &Config) -> Value {
    let mut out = Map::new();
    let (mut sources, mut allowed, mut help) = (Map::new(), Map::new(), Map::new());
    for setting in crate::config::shown(config)
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
        sources.insert(setting.key.to_owned(), json!(setting.source));
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
    let file = file.to_owned();
    tokio::task::spawn_blocking(move || write(&file, &edits))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(updated)
}

/// Sets `edits` in the TOML file at `path` (created if missing), keeping everything else.
pub(crate) fn write(path: &Path, edits: &[(String, String)]) -> Result<(), String> {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    let text = session_daemon::settings::with_settings(&text, edits).map_err(|e| format!("{shown}: {e}"))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().map_or("config".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(format!("{shown}: {e}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_other_keys_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessionctl.toml");
        std::fs::write(
            &path,
            "# the lab's settings\ndir = \"/srv/s\"  # where\nretention_days = 30 # a month\n",
        )
        .unwrap();
        write(
            &path,
            &[
                ("retention_days".into(), "90".into()),
                ("delete_undelivered".into(), "true".into()),
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# the lab's settings"), "{text}");
        assert!(text.contains("dir = \"/srv/s\"  # where"), "{text}");
        assert!(text.contains("retention_days = 90 # a month"), "{text}");
        assert!(text.contains("delete_undelivered = true"), "{text}");
    }
}
