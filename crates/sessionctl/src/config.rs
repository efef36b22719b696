//! The effective configuration: flags win, then environment variables, then the TOML
//! file, then defaults. Every key is checked against its allowed range, and refused with
//! the key, the value, where it came from, and what is allowed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use session_workers::cleanup::CleanupConfig;
use session_workers::submit::{Backoff, HttpTransport, Secret, SubmitConfig};

use crate::error::CliError;

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Source {
    /// Built in.
    Default,
    /// The TOML file.
    File,
    /// An `HL7_*` environment variable.
    Env,
    /// A command-line flag.
    Flag,
}

enum Kind {
    Int {
        min: u64,
        max: u64,
    },
    Bool,
    Text,
    Path,
    Url,
    Level,
    Format,
    /// How capture frames sessions: markers, mllp or auto.
    Framing,
    /// `HOST:PORT`, or empty to turn the listener off.
    Listen,
    /// One byte: 0 to 255, in decimal or as `0xNN`.
    Byte,
}

/// A configuration key, by name: what the getters read, so that a mistyped key is a
/// compile error (`Name::ALL` and [`KEYS`] are checked against each other by a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    /// `dir`
    Dir,
    /// `retention_days`
    RetentionDays,
    /// `cleanup_interval_hours`
    CleanupIntervalHours,
    /// `cleanup_dry_run`
    CleanupDryRun,
    /// `trash_max_age_days`
    TrashMaxAgeDays,
    /// `delete_undelivered`
    DeleteUndelivered,
    /// `endpoint`
    Endpoint,
    /// `ca_file`
    CaFile,
    /// `authorization`
    Authorization,
    /// `concurrency`
    Concurrency,
    /// `max_attempts`
    MaxAttempts,
    /// `scan_interval_minutes`
    ScanIntervalMinutes,
    /// `request_timeout_seconds`
    RequestTimeoutSeconds,
    /// `retry_base_seconds`
    RetryBaseSeconds,
    /// `retry_cap_seconds`
    RetryCapSeconds,
    /// `performer`
    Performer,
    /// `deliver_lis_closed`
    DeliverLisClosed,
    /// `alert_undelivered_minutes`
    AlertUndeliveredMinutes,
    /// `alert_webhook`
    AlertWebhook,
    /// `http_listen`
    HttpListen,
    /// `http_token`
    HttpToken,
    /// `capture_listen`
    CaptureListen,
    /// `capture_forward`
    CaptureForward,
    /// `start_marker`
    StartMarker,
    /// `ack_marker`
    AckMarker,
    /// `nak_marker`
    NakMarker,
    /// `end_marker`
    EndMarker,
    /// `capture_framing`
    CaptureFraming,
    /// `log_level`
    LogLevel,
    /// `log_format`
    LogFormat,
    /// `log_dir`
    LogDir,
}

impl Name {
    /// Every key, in the table's order.
    #[cfg(test)]
    const ALL: [Name; 31] = [
        Name::Dir,
        Name::RetentionDays,
        Name::CleanupIntervalHours,
        Name::CleanupDryRun,
        Name::TrashMaxAgeDays,
        Name::DeleteUndelivered,
        Name::Endpoint,
        Name::CaFile,
        Name::Authorization,
        Name::Concurrency,
        Name::MaxAttempts,
        Name::ScanIntervalMinutes,
        Name::RequestTimeoutSeconds,
        Name::RetryBaseSeconds,
        Name::RetryCapSeconds,
        Name::Performer,
        Name::DeliverLisClosed,
        Name::AlertUndeliveredMinutes,
        Name::AlertWebhook,
        Name::HttpListen,
        Name::HttpToken,
        Name::CaptureListen,
        Name::CaptureForward,
        Name::StartMarker,
        Name::AckMarker,
        Name::NakMarker,
        Name::EndMarker,
        Name::CaptureFraming,
        Name::LogLevel,
        Name::LogFormat,
        Name::LogDir,
    ];

    /// The key as files, `--set` and `HL7_*` spell it.
    const fn as_str(self) -> &'static str {
        match self {
            Name::Dir => "dir",
            Name::RetentionDays => "retention_days",
            Name::CleanupIntervalHours => "cleanup_interval_hours",
            Name::CleanupDryRun => "cleanup_dry_run",
            Name::TrashMaxAgeDays => "trash_max_age_days",
            Name::DeleteUndelivered => "delete_undelivered",
            Name::Endpoint => "endpoint",
            Name::CaFile => "ca_file",
            Name::Authorization => "authorization",
            Name::Concurrency => "concurrency",
            Name::MaxAttempts => "max_attempts",
            Name::ScanIntervalMinutes => "scan_interval_minutes",
            Name::RequestTimeoutSeconds => "request_timeout_seconds",
            Name::RetryBaseSeconds => "retry_base_seconds",
            Name::RetryCapSeconds => "retry_cap_seconds",
            Name::Performer => "performer",
            Name::DeliverLisClosed => "deliver_lis_closed",
            Name::AlertUndeliveredMinutes => "alert_undelivered_minutes",
            Name::AlertWebhook => "alert_webhook",
            Name::HttpListen => "http_listen",
            Name::HttpToken => "http_token",
            Name::CaptureListen => "capture_listen",
            Name::CaptureForward => "capture_forward",
            Name::StartMarker => "start_marker",
            Name::AckMarker => "ack_marker",
            Name::NakMarker => "nak_marker",
            Name::EndMarker => "end_marker",
            Name::CaptureFraming => "capture_framing",
            Name::LogLevel => "log_level",
            Name::LogFormat => "log_format",
            Name::LogDir => "log_dir",
        }
    }
}

struct Key {
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    secret: bool,
    help: &'static str,
}

const fn key(name: &'static str, kind: Kind, default: Option<&'static str>, help: &'static str) -> Key {
    Key {
        name,
        kind,
        default,
        secret: false,
        help,
    }
}

/// Every configuration key, as the Electron app's settings had them.
const KEYS: &[Key] = &[
    key(
        "dir",
        Kind::Path,
        None,
        "store directory (default ~/.hl7-capture/sessions)",
    ),
    key(
        "retention_days",
        Kind::Int { min: 1, max: 365 },
        Some("30"),
        "retention for sessions without one",
    ),
    key(
        "cleanup_interval_hours",
        Kind::Int { min: 1, max: 168 },
        Some("24"),
        "hours between cleanups",
    ),
    key(
        "cleanup_dry_run",
        Kind::Bool,
        Some("false"),
        "report what cleanup would do, change nothing",
    ),
    key(
        "trash_max_age_days",
        Kind::Int { min: 1, max: 365 },
        Some("7"),
        "days before the trash is emptied",
    ),
    key(
        "delete_undelivered",
        Kind::Bool,
        Some("false"),
        "let cleanup remove expired undelivered sessions",
    ),
    key(
        "endpoint",
        Kind::Url,
        None,
        "submission endpoint; submission is off without one",
    ),
    key(
        "ca_file",
        Kind::Path,
        None,
        "PEM file of a private CA the endpoint's certificate is signed by (added to the system's roots)",
    ),
    Key {
        name: "authorization",
        kind: Kind::Text,
        default: None,
        secret: true,
        help: "Authorization header value (prefer HL7_AUTHORIZATION)",
    },
    key(
        "concurrency",
        Kind::Int { min: 1, max: 10 },
        Some("2"),
        "requests in flight at most",
    ),
    key(
        "max_attempts",
        Kind::Int { min: 1, max: 10 },
        Some("3"),
        "attempts before a session fails",
    ),
    key(
        "scan_interval_minutes",
        Kind::Int { min: 1, max: 60 },
        Some("5"),
        "minutes between submission scans",
    ),
    key(
        "request_timeout_seconds",
        Kind::Int { min: 1, max: 600 },
        Some("30"),
        "per-request timeout",
    ),
    key(
        "retry_base_seconds",
        Kind::Int { min: 1, max: 3600 },
        Some("5"),
        "backoff scale of the first retry",
    ),
    key(
        "retry_cap_seconds",
        Kind::Int { min: 1, max: 86_400 },
        Some("900"),
        "longest backoff",
    ),
    key(
        "performer",
        Kind::Text,
        None,
        "sent as `performer` in each submission",
    ),
    key(
        "deliver_lis_closed",
        Kind::Bool,
        Some("true"),
        "deliver complete sessions the LIS did not wholly receive, with their interruption",
    ),
    key(
        "alert_undelivered_minutes",
        Kind::Int { min: 1, max: 10_080 },
        Some("60"),
        "minutes the oldest complete session may wait for delivery before it is an alert",
    ),
    Key {
        name: "alert_webhook",
        kind: Kind::Url,
        default: None,
        secret: true,
        help: "URL the daemon POSTs each alert to (JSON, once while it stands; a URL may hold a token, so it is never shown)",
    },
    key(
        "http_listen",
        Kind::Listen,
        Some("127.0.0.1:8470"),
        "local API and web page of `run`; beyond loopback needs http_token",
    ),
    Key {
        name: "http_token",
        kind: Kind::Text,
        default: None,
        secret: true,
        help: "bearer token every API request must carry (prefer HL7_HTTP_TOKEN)",
    },
    key(
        "capture_listen",
        Kind::Listen,
        None,
        "where analyzers connect to the capture relay (`run` captures when this and capture_forward are set)",
    ),
    key(
        "capture_forward",
        Kind::Listen,
        None,
        "the LIS the capture relay forwards to, HOST:PORT",
    ),
    key(
        "start_marker",
        Kind::Byte,
        Some("0x05"),
        "marker byte that opens a session (from the device)",
    ),
    key(
        "ack_marker",
        Kind::Byte,
        Some("0x06"),
        "marker byte of an acknowledgement (from the LIS)",
    ),
    key(
        "nak_marker",
        Kind::Byte,
        Some("0x15"),
        "marker byte of a negative acknowledgement (from the LIS)",
    ),
    key(
        "end_marker",
        Kind::Byte,
        Some("0x04"),
        "marker byte that ends a session (from the device)",
    ),
    key(
        "capture_framing",
        Kind::Framing,
        Some("auto"),
        "how capture frames sessions: the marker bytes, HL7 MLLP, or auto (per connection, by its first byte)",
    ),
    key("log_level", Kind::Level, Some("info"), "how much to log"),
    key("log_format", Kind::Format, Some("auto"), "log format on stderr"),
    key(
        "log_dir",
        Kind::Path,
        None,
        "also log to a daily rolling file there",
    ),
];

/// A byte in decimal (`5`) or hex (`0x05`).
fn parse_byte(value: &str) -> Option<u8> {
    let value = value.trim();
    match value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

/// The environment variable of a key: `HL7_` and the key in capitals.
pub(crate) fn env_name(key: &str) -> String {
    if key == Name::Dir.as_str() {
        "HL7_SESSIONS_DIR".into()
    } else {
        format!("HL7_{}", key.to_uppercase())
    }
}

fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

fn unknown_key(name: &str, origin: &str) -> CliError {
    let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    CliError::BadInput(format!(
        "{origin}: unknown key {name:?}; known keys: {}",
        known.join(", ")
    ))
}

fn check(key: &Key, value: &str, origin: &str) -> Result<(), CliError> {
    let bad = |allowed: String| {
        let shown = if key.secret {
            "[redacted]".to_owned()
        } else if matches!(key.kind, Kind::Url) {
            format!("{:?}", session_workers::submit::redacted_url(value))
        } else {
            format!("{:?}", session_model::Printable(value))
        };
        Err(CliError::BadInput(format!(
            "{origin}: {} = {shown} is not allowed; expected {allowed}",
            key.name
        )))
    };
    match key.kind {
        Kind::Int { min, max } => match value.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(()),
            _ => bad(format!("a whole number from {min} to {max}")),
        },
        Kind::Bool => match value {
            "true" | "false" => Ok(()),
            _ => bad("true or false".into()),
        },
        Kind::Level => match value {
            "error" | "warn" | "info" | "debug" | "trace" => Ok(()),
            _ => bad("error, warn, info, debug or trace".into()),
        },
        Kind::Format => match value {
            "auto" | "text" | "json" => Ok(()),
            _ => bad("auto, text or json".into()),
        },
        Kind::Framing => match value.parse::<session_capture::Framing>() {
            Ok(_) => Ok(()),
            Err(_) => bad("markers, mllp or auto".into()),
        },
        Kind::Listen => match value.rsplit_once(':') {
            _ if value.is_empty() => Ok(()),
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
            _ => bad("HOST:PORT (e.g. 127.0.0.1:8470), or empty to turn it off".into()),
        },
        Kind::Byte => match parse_byte(value) {
            Some(_) => Ok(()),
            None => bad("a byte: 0 to 255, or 0x00 to 0xff".into()),
        },
        Kind::Url => match value.split_once("://") {
            Some(("http" | "https", rest)) if !rest.is_empty() => Ok(()),
            _ => bad("an http:// or https:// URL".into()),
        },
        Kind::Text | Kind::Path => {
            if value.is_empty() {
                bad("a non-empty value".into())
            } else if key.secret && !session_workers::submit::is_valid_header_value(value) {
                // A token file with a Windows line ending ends in CR: say so, without the value.
                bad("a valid HTTP header value (printable ASCII, no line breaks or trailing spaces)".into())
            } else {
                Ok(())
            }
        }
    }
}

impl Key {
    /// What values are allowed, in words.
    fn allowed(&self) -> String {
        if self.secret && !matches!(self.kind, Kind::Url) {
            return "an HTTP header value (printable ASCII)".into();
        }
        match &self.kind {
            Kind::Int { min, max } => format!("{min} to {max}"),
            Kind::Bool => "true or false".into(),
            Kind::Text => "text".into(),
            Kind::Path => "a path".into(),
            Kind::Url => "an http:// or https:// URL".into(),
            Kind::Level => "error, warn, info, debug or trace".into(),
            Kind::Format => "auto, text or json".into(),
            Kind::Framing => "markers, mllp or auto".into(),
            Kind::Listen => "HOST:PORT, or empty for off".into(),
            Kind::Byte => "0 to 255, or 0x00 to 0xff".into(),
        }
    }
}

/// The commented TOML example of every key, as the README shows it (a test keeps the
/// two the same).
pub(crate) fn example_toml() -> String {
    let mut text = String::from("# sessionctl.toml\n");
    for key in KEYS {
        let comment = format!("# {} ({})", key.help, key.allowed());
        let line = match (key.secret, key.default, &key.kind) {
            (true, _, _) => format!("# {} = \"...\"", key.name),
            (_, Some(default), Kind::Int { .. } | Kind::Bool | Kind::Byte) => {
                format!("{} = {default}", key.name)
            }
            (_, Some(default), _) => format!("{} = \"{default}\"", key.name),
            (_, None, _) => format!("# {} = \"...\"", key.name),
        };
        text.push_str(&format!("{line:<36}{comment}\n"));
    }
    text
}

/// `config`'s human table: key, value, where it came from, what is allowed.
pub(crate) fn shown_table(shown: &[ShownKey]) -> String {
    shown
        .iter()
        .map(|k| {
            let value = match k.value.as_deref() {
                Some("") => "(off)",
                Some(value) => value,
                None => "-",
            };
            let source = k
                .source
                .map_or("unset".to_owned(), |s| format!("{s:?}").to_lowercase());
            format!("{:<24} {value:<28} {source:<8} {}", k.key, k.allowed)
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One resolved value.
#[derive(Debug, Clone)]
struct Value {
    raw: String,
    source: Source,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    values: BTreeMap<&'static str, Value>,
    /// The TOML file settings are read from and written to: `--config`, `$HL7_CONFIG`,
    /// or the default path (read only when it exists).
    file: Option<PathBuf>,
    /// Whether `file` was read (the default path is not, when it does not exist).
    file_read: bool,
}

/// The settings the local API may change: retention and cleanup.
pub(crate) const SETTINGS: [&str; 5] = [
    "retention_days",
    "cleanup_interval_hours",
    "trash_max_age_days",
    "delete_undelivered",
    "cleanup_dry_run",
];

/// Where settings live when neither `--config` nor `$HL7_CONFIG` names a file:
/// `$XDG_CONFIG_HOME/hl7-capture/sessionctl.toml` (`~/.config/...` by default).
pub(crate) fn default_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".config"))
        })?;
    Some(base.join("hl7-capture").join("sessionctl.toml"))
}

/// Command-line overrides: `--dir` and `--set key=value`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Overrides {
    /// `--dir`.
    pub dir: Option<PathBuf>,
    /// `--set key=value`, in order.
    pub set: Vec<String>,
    /// `--endpoint` of `submit`.
    pub endpoint: Option<String>,
}

fn toml_to_string(key: &str, value: &toml::Value, origin: &str) -> Result<String, CliError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(CliError::BadInput(format!(
            "{origin}: {key} has an unsupported type ({})",
            other.type_str()
        ))),
    }
}

impl Config {
    /// Resolves the configuration from defaults, `file`, the environment and `overrides`.
    pub(crate) fn resolve(file: Option<&Path>, overrides: &Overrides) -> Result<Config, CliError> {
        let (file, read) = match file {
            Some(file) => (Some(file.to_path_buf()), true),
            None => {
                let default = default_file();
                let exists = default.as_ref().is_some_and(|d| d.is_file());
                (default, exists)
            }
        };
        let mut values: BTreeMap<&'static str, Value> = BTreeMap::new();
        for key in KEYS {
            if let Some(default) = key.default {
                values.insert(
                    key.name,
                    Value {
                        raw: default.into(),
                        source: Source::Default,
                    },
                );
            }
        }
        let mut set = |name: &str, raw: String, source: Source, origin: &str| -> Result<(), CliError> {
            let key = find(name).ok_or_else(|| unknown_key(name, origin))?;
            check(key, &raw, origin)?;
            values.insert(key.name, Value { raw, source });
            Ok(())
        };
        if let Some(path) = file.as_deref().filter(|_| read) {
            let origin = format!("config {}", path.display());
            let text = read_config_file(path).map_err(|e| CliError::BadInput(format!("{origin}: {e}")))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| CliError::BadInput(format!("{origin}: {}", e.message().trim())))?;
            for (name, value) in &table {
                set(name, toml_to_string(name, value, &origin)?, Source::File, &origin)?;
            }
        }
        for key in KEYS {
            let var = env_name(key.name);
            // An empty variable means unset, except where empty is a value (a listener off).
            let empty_is_a_value = matches!(key.kind, Kind::Listen);
            if let Some(raw) = std::env::var_os(&var).filter(|v| !v.is_empty() || empty_is_a_value) {
                let raw = raw
                    .into_string()
                    .map_err(|_| CliError::BadInput(format!("{var} is not UTF-8")))?;
                set(key.name, raw, Source::Env, &format!("environment variable {var}"))?;
            }
        }
        if let Some(dir) = &overrides.dir {
            set(
                Name::Dir.as_str(),
                dir.display().to_string(),
                Source::Flag,
                "--dir",
            )?;
        }
        if let Some(endpoint) = &overrides.endpoint {
            set(
                Name::Endpoint.as_str(),
                endpoint.clone(),
                Source::Flag,
                "--endpoint",
            )?;
        }
        for pair in &overrides.set {
            let (name, raw) = pair.split_once('=').ok_or_else(|| {
                // The argument may be a secret with a typo (`authorization:Bearer ...`):
                // name the key when it starts with one, never echo the rest.
                let named = KEYS
                    .iter()
                    .find(|k| pair.starts_with(k.name))
                    .map_or(String::new(), |k| format!(" {}...", k.name));
                CliError::BadInput(format!(
                    "--set{named}: expected key=value (the argument is not shown)"
                ))
            })?;
            set(
                name.trim(),
                raw.trim().to_owned(),
                Source::Flag,
                &format!("--set {}", name.trim()),
            )?;
        }
        Ok(Config {
            values,
            file,
            file_read: read,
        })
    }

    /// The configuration file settings are written to, if there is one to use.
    pub(crate) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The configuration file the settings were read from, if one was.
    pub(crate) fn file_read(&self) -> Option<&Path> {
        self.file.as_deref().filter(|_| self.file_read)
    }

    /// The local API's listen address; `None` when turned off.
    pub(crate) fn http_listen(&self) -> Option<&str> {
        self.raw(Name::HttpListen).filter(|v| !v.is_empty())
    }

    /// Whether `http_listen` is the built-in default (nobody asked for it).
    pub(crate) fn http_listen_is_default(&self) -> bool {
        self.values
            .get(Name::HttpListen.as_str())
            .is_none_or(|v| v.source == Source::Default)
    }

    /// The bearer token the local API requires, when set.
    pub(crate) fn http_token(&self) -> Option<&str> {
        self.raw(Name::HttpToken)
    }

    /// Changes one retention or cleanup setting in memory, checked as the configuration
    /// is: refused for other keys, for a value out of range, and for a key a flag or
    /// the environment sets (those win over the file, so the change would not stick),
    /// unless it is set to the value it has. `Ok(true)` when it changed something.
    pub(crate) fn set_setting(&mut self, name: &str, raw: &str) -> Result<bool, SettingError> {
        let key = setting_key(name)?;
        if let Some(current) = self.values.get(key.name)
            && let origin @ (Source::Flag | Source::Env) = current.source
        {
            // Setting it to what it is changes nothing, and is no conflict.
            if current.raw == raw {
                return Ok(false);
            }
            return Err(SettingError::Pinned {
                key: key.name,
                origin,
            });
        }
        check(key, raw, "settings").map_err(|e| SettingError::Invalid(e.to_string()))?;
        self.values.insert(
            key.name,
            Value {
                raw: raw.to_owned(),
                source: Source::File,
            },
        );
        Ok(true)
    }

    /// The retention and cleanup settings, as `config` shows them.
    pub(crate) fn settings(&self) -> Vec<ShownKey> {
        self.shown()
            .into_iter()
            .filter(|k| SETTINGS.contains(&k.key))
            .collect()
    }

    /// The capture relay's addresses, when both are set.
    pub(crate) fn capture(&self) -> Option<(&str, &str)> {
        let listen = self.raw(Name::CaptureListen).filter(|v| !v.is_empty())?;
        let forward = self.raw(Name::CaptureForward).filter(|v| !v.is_empty())?;
        Some((listen, forward))
    }

    /// `capture_framing`.
    pub(crate) fn framing(&self) -> session_capture::Framing {
        self.raw(Name::CaptureFraming)
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }

    /// The marker bytes of capture.
    pub(crate) fn markers(&self) -> session_capture::Markers {
        let byte = |name: Name| {
            self.raw(name)
                .or_else(|| find(name.as_str()).and_then(|k| k.default))
                .and_then(parse_byte)
                .unwrap_or_default()
        };
        session_capture::Markers {
            start: byte(Name::StartMarker),
            ack: byte(Name::AckMarker),
            nak: byte(Name::NakMarker),
            end: byte(Name::EndMarker),
        }
    }

    fn raw(&self, name: Name) -> Option<&str> {
        self.values.get(name.as_str()).map(|v| v.raw.as_str())
    }

    fn int(&self, name: Name) -> u64 {
        // Checked against its range when resolved, and every int key has a default (a
        // test says so); never below 1 all the same: a zero would be a zero interval.
        let default = find(name.as_str())
            .and_then(|k| k.default)
            .and_then(|d| d.parse().ok());
        self.raw(name)
            .and_then(|v| v.trim().parse().ok())
            .or(default)
            .unwrap_or(1)
            .max(1)
    }

    fn flag(&self, name: Name) -> bool {
        self.raw(name) == Some("true")
    }

    /// The store directory.
    pub(crate) fn dir(&self) -> Result<PathBuf, CliError> {
        if let Some(dir) = self.raw(Name::Dir) {
            return Ok(PathBuf::from(dir));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                CliError::BadInput("HOME is not set: pass --dir or set HL7_SESSIONS_DIR".into())
            })?;
        Ok(Path::new(&home).join(".hl7-capture").join("sessions"))
    }

    /// Retention for legacy files.
    pub(crate) fn decode_options(&self) -> session_store::DecodeOptions {
        session_store::DecodeOptions::default().retention_days(self.int(Name::RetentionDays) as u32)
    }

    /// The cleanup worker's settings.
    pub(crate) fn cleanup(&self) -> CleanupConfig {
        CleanupConfig::default()
            .interval(Duration::from_secs(self.int(Name::CleanupIntervalHours) * 3600))
            .dry_run(self.flag(Name::CleanupDryRun))
            .trash_max_age(Duration::from_secs(self.int(Name::TrashMaxAgeDays) * 86_400))
            .delete_undelivered(self.flag(Name::DeleteUndelivered))
    }

    /// The endpoint, when submission is on.
    pub(crate) fn endpoint(&self) -> Option<&str> {
        self.raw(Name::Endpoint)
    }

    /// The authorization value, when configured.
    pub(crate) fn authorization(&self) -> Option<Secret> {
        self.raw(Name::Authorization).map(Secret::new)
    }

    /// The endpoint's transport: the endpoint, the authorization and, with `ca_file`,
    /// a private CA beside the system's roots. A bad endpoint or CA file is bad input.
    pub(crate) fn transport(&self, endpoint: &str) -> Result<HttpTransport, CliError> {
        let ca = match self.raw(Name::CaFile).filter(|f| !f.is_empty()) {
            Some(file) => Some(
                read_config_file(Path::new(file))
                    .map_err(|e| CliError::BadInput(format!("ca_file {file}: {e}")))?,
            ),
            None => None,
        };
        HttpTransport::with_ca(
            endpoint,
            self.authorization(),
            self.submit().request_timeout,
            ca.as_deref().map(str::as_bytes),
        )
        .map_err(|e| CliError::BadInput(format!("endpoint: {e}")))
    }

    /// What `status` judges by.
    pub(crate) fn status_options(&self) -> crate::commands::status::StatusOptions {
        crate::commands::status::StatusOptions {
            retry_cap_ms: self.submit().backoff.cap.as_millis() as u64,
            alert_undelivered_ms: self.int(Name::AlertUndeliveredMinutes).saturating_mul(60_000),
        }
    }

    /// Where alerts are POSTed, when configured.
    pub(crate) fn alert_webhook(&self) -> Option<&str> {
        self.raw(Name::AlertWebhook).filter(|url| !url.is_empty())
    }

    /// The submission worker's settings.
    pub(crate) fn submit(&self) -> SubmitConfig {
        SubmitConfig::default()
            .concurrency(self.int(Name::Concurrency) as usize)
            .request_timeout(Duration::from_secs(self.int(Name::RequestTimeoutSeconds)))
            .max_attempts(self.int(Name::MaxAttempts) as u32)
            .backoff(Backoff::new(
                Duration::from_secs(self.int(Name::RetryBaseSeconds)),
                Duration::from_secs(self.int(Name::RetryCapSeconds)),
            ))
            .scan_interval(Duration::from_secs(self.int(Name::ScanIntervalMinutes) * 60))
            .performer(self.raw(Name::Performer).map(str::to_owned))
            .deliver_lis_closed(self.flag(Name::DeliverLisClosed))
    }

    /// `log_level`.
    pub(crate) fn log_level(&self) -> &str {
        self.raw(Name::LogLevel).unwrap_or("info")
    }

    /// `log_format`.
    pub(crate) fn log_format(&self) -> &str {
        self.raw(Name::LogFormat).unwrap_or("auto")
    }

    /// `log_dir`.
    pub(crate) fn log_dir(&self) -> Option<PathBuf> {
        self.raw(Name::LogDir).map(PathBuf::from)
    }

    /// Every key with its effective value and source; secrets redacted.
    pub(crate) fn shown(&self) -> Vec<ShownKey> {
        KEYS.iter()
            .map(|key| {
                let value = self.values.get(key.name);
                ShownKey {
                    key: key.name,
                    value: value.map(|v| {
                        if key.secret {
                            "[redacted]".to_owned()
                        } else if matches!(key.kind, Kind::Url) {
                            session_workers::submit::redacted_url(&v.raw)
                        } else {
                            v.raw.clone()
                        }
                    }),
                    source: value.map(|v| v.source),
                    allowed: key.allowed(),
                    env: env_name(key.name),
                    help: key.help,
                }
            })
            .collect()
    }
}

/// Why a settings change was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingError {
    /// Not one of the API's settings.
    #[error("{0:?} is not a setting here; the settings are {list}", list = SETTINGS.join(", "))]
    Unknown(String),
    /// Set by a flag or the environment, which win over the file.
    #[error("{key} is set by the {} and cannot be changed here", if *origin == Source::Env { "environment" } else { "command line" })]
    Pinned {
        /// The key.
        key: &'static str,
        /// Where its value comes from.
        origin: Source,
    },
    /// Out of range, or of the wrong kind.
    #[error("{0}")]
    Invalid(String),
}

/// Reads a configuration file, refusing at once anything that is not a regular file:
/// a FIFO would block every command, a device could be endless. Opened non-blocking,
/// checked on the open descriptor, read to at most 1 MiB.
fn read_config_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    const LIMIT: u64 = 1024 * 1024;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let what = if meta.file_type().is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, a socket or a device)"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("is {what}; a configuration file must be a regular file"),
        ));
    }
    if meta.len() > LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is larger than 1 MiB; not a configuration file",
        ));
    }
    let mut text = String::new();
    file.take(LIMIT).read_to_string(&mut text)?;
    Ok(text)
}

fn setting_key(name: &str) -> Result<&'static Key, SettingError> {
    find(name)
        .filter(|k| SETTINGS.contains(&k.name))
        .ok_or_else(|| SettingError::Unknown(name.to_owned()))
}

/// The JSON type a setting takes through the local API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SettingType {
    /// A whole number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// Text.
    Text,
}

/// The JSON type of API setting `name` (an error for a key that is not one).
pub(crate) fn setting_type(name: &str) -> Result<SettingType, SettingError> {
    Ok(match setting_key(name)?.kind {
        Kind::Int { .. } | Kind::Byte => SettingType::Number,
        Kind::Bool => SettingType::Boolean,
        _ => SettingType::Text,
    })
}

/// One line of `sessionctl config`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShownKey {
    /// The key.
    pub key: &'static str,
    /// Its value (secrets redacted), if set.
    pub value: Option<String>,
    /// Where the value came from.
    pub source: Option<Source>,
    /// What values are allowed.
    pub allowed: String,
    /// Its environment variable.
    pub env: String,
    /// What it does.
    pub help: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_every_key_as_the_table_defines_it() {
        let readme = include_str!("../../../README.md");
        let example = example_toml();
        assert!(
            readme.contains(&format!("```toml\n{example}```")),
            "README's TOML example is out of date; it must read:\n{example}"
        );
    }

    #[test]
    fn the_readme_names_the_current_version_and_links_only_to_files_a_clone_has() {
        let readme = include_str!("../../../README.md");
        let current = format!("current version is `{}`", session_model::CURRENT_VERSION);
        assert!(readme.contains(&current), "README must say: {current}");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for (i, _) in readme.match_indices("](") {
            let target = readme[i + 2..].split(')').next().unwrap_or_default();
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            assert!(
                root.join(file).exists(),
                "README links to {target}, which a clone does not have"
            );
        }
    }

    #[test]
    fn the_defaults_are_the_libraries_defaults() {
        let config = Config::resolve(None, &Overrides::default()).unwrap();
        let submit = config.submit();
        let library = SubmitConfig::default();
        assert_eq!(submit.concurrency, library.concurrency);
        assert_eq!(submit.max_attempts, library.max_attempts);
        assert_eq!(submit.request_timeout, library.request_timeout);
        assert_eq!(submit.scan_interval, library.scan_interval);
        assert_eq!(submit.backoff, library.backoff);
        assert_eq!(config.cleanup(), CleanupConfig::default());
        assert_eq!(config.decode_options(), session_store::DecodeOptions::default());
    }

    fn with(pairs: &[(&str, &str)]) -> Result<Config, CliError> {
        let overrides = Overrides {
            set: pairs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            ..Overrides::default()
        };
        Config::resolve(None, &overrides)
    }

    #[test]
    fn every_bound_of_every_key_holds() {
        for key in KEYS {
            match key.kind {
                Kind::Int { min, max } => {
                    for ok in [min, max] {
                        let config = with(&[(key.name, &ok.to_string())]).unwrap();
                        assert_eq!(config.int(name_of(key)), ok, "{}", key.name);
                    }
                    for bad in [min.saturating_sub(1), max + 1, u64::MAX] {
                        if bad == min && min == 0 {
                            continue;
                        }
                        let err = with(&[(key.name, &bad.to_string())]).unwrap_err().to_string();
                        assert!(
                            err.contains(key.name) && err.contains(&format!("from {min} to {max}")),
                            "{}={bad}: {err}",
                            key.name
                        );
                    }
                    assert!(with(&[(key.name, "ten")]).is_err(), "{}", key.name);
                }
                Kind::Bool => {
                    assert!(with(&[(key.name, "true")]).is_ok());
                    let err = with(&[(key.name, "yes")]).unwrap_err().to_string();
                    assert!(err.contains("true or false"), "{err}");
                }
                Kind::Level | Kind::Format | Kind::Framing => {
                    assert!(with(&[(key.name, "loud")]).is_err(), "{}", key.name);
                }
                Kind::Url => {
                    assert!(with(&[(key.name, "http://127.0.0.1:9/x")]).is_ok());
                    assert!(with(&[(key.name, "ftp://x")]).is_err());
                }
                Kind::Listen => {
                    assert!(with(&[(key.name, "127.0.0.1:0")]).is_ok());
                    assert_eq!(with(&[(key.name, "")]).unwrap().raw(name_of(key)), Some(""));
                    assert!(with(&[(key.name, "no-port")]).is_err());
                }
                Kind::Text | Kind::Path => {
                    assert!(with(&[(key.name, "")]).is_err(), "{} refuses empty", key.name);
                }
                Kind::Byte => {
                    assert!(with(&[(key.name, "0x1c")]).is_ok());
                    assert!(with(&[(key.name, "255")]).is_ok());
                    for bad in ["256", "0x100", "-1", "x", ""] {
                        let err = with(&[(key.name, bad)]).unwrap_err().to_string();
                        assert!(err.contains(key.name) && err.contains("0 to 255"), "{err}");
                    }
                }
            }
        }
        // An unknown key is refused, naming the known ones.
        let err = with(&[("concurrancy", "2")]).unwrap_err().to_string();
        assert!(
            err.contains("unknown key") && err.contains("concurrency"),
            "{err}"
        );
    }

    fn name_of(key: &Key) -> Name {
        *Name::ALL
            .iter()
            .find(|n| n.as_str() == key.name)
            .unwrap_or_else(|| panic!("{} has no Name", key.name))
    }

    #[test]
    fn every_name_is_one_key_of_the_table_and_every_key_has_a_name() {
        let names: Vec<&str> = Name::ALL.iter().map(|n| n.as_str()).collect();
        let keys: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        assert_eq!(names, keys, "Name::ALL and KEYS list the same keys, in order");
    }

    #[test]
    fn every_int_getter_names_a_key_with_a_default() {
        for key in KEYS {
            if let Kind::Int { min, .. } = key.kind {
                let default: u64 = key.default.expect("ints have defaults").parse().unwrap();
                assert!(default >= min && min >= 1, "{}", key.name);
            }
        }
    }
}
