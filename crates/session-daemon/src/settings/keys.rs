//! The table of keys: each one's name, kind, default, help, and whether it is a secret.
//! What the typed [`Settings`](super::Settings) checks, said in words for `config`, the
//! README's example and error messages (a test holds the two together).

/// What a key holds, for the words that describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A whole number in `min..=max`.
    Int { min: u64, max: u64 },
    /// `true` or `false`.
    Bool,
    /// Non-empty text.
    Text,
    /// A non-empty path.
    Path,
    /// An `http://` or `https://` URL.
    Url,
    /// A `tracing` level.
    Level,
    /// A log format.
    Format,
    /// How capture frames sessions: markers, mllp or auto.
    Framing,
    /// `HOST:PORT`, or empty to turn the listener off.
    Listen,
    /// One byte: 0 to 255, in decimal or as `0xNN`.
    Byte,
}

/// One key of the table.
pub(crate) struct Key {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) default: Option<&'static str>,
    pub(crate) secret: bool,
    pub(crate) help: &'static str,
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

const fn secret(name: &'static str, kind: Kind, help: &'static str) -> Key {
    Key {
        name,
        kind,
        default: None,
        secret: true,
        help,
    }
}

/// Every configuration key, as the Electron app's settings had them, in the order
/// `config` shows them.
pub(crate) const KEYS: &[Key] = &[
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
    secret(
        "authorization",
        Kind::Text,
        "Authorization header value (prefer HL7_AUTHORIZATION)",
    ),
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
    secret(
        "alert_webhook",
        Kind::Url,
        "URL the daemon POSTs each alert to (JSON, once while it stands; a URL may hold a token, so it is never shown)",
    ),
    key(
        "http_listen",
        Kind::Listen,
        Some("127.0.0.1:8470"),
        "local API and web page of `run`; beyond loopback needs http_token",
    ),
    secret(
        "http_token",
        Kind::Text,
        "bearer token every API request must carry (prefer HL7_HTTP_TOKEN)",
    ),
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

/// The key named `name`.
pub(crate) fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The environment variable of a key: `HL7_` and the key in capitals
/// (`HL7_SESSIONS_DIR` for `dir`, as the Electron app had it).
pub fn env_name(key: &str) -> String {
    if key == "dir" {
        "HL7_SESSIONS_DIR".into()
    } else {
        format!("HL7_{}", key.to_uppercase())
    }
}

impl Key {
    /// What values are allowed, briefly (`config`'s table).
    pub(crate) fn allowed(&self) -> String {
        if self.secret && !matches!(self.kind, Kind::Url) {
            return "an HTTP header value (printable ASCII)".into();
        }
        match self.kind {
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

    /// What values are allowed, as a refusal says it.
    pub(crate) fn expected(&self) -> String {
        match self.kind {
            Kind::Int { min, max } => format!("a whole number from {min} to {max}"),
            Kind::Listen => "HOST:PORT (e.g. 127.0.0.1:8470), or empty to turn it off".into(),
            Kind::Byte => "a byte: 0 to 255, or 0x00 to 0xff".into(),
            // A token file with a Windows line ending ends in CR: say what is allowed.
            Kind::Text if self.secret => {
                "a valid HTTP header value (printable ASCII, no line breaks or trailing spaces)".into()
            }
            Kind::Text | Kind::Path => "a non-empty value".into(),
            _ => self.allowed(),
        }
    }

    /// `value` as `config` and refusals may show it: a secret never, a URL without
    /// its credentials and query.
    pub(crate) fn shown(&self, value: &str) -> String {
        if self.secret {
            "[redacted]".to_owned()
        } else if matches!(self.kind, Kind::Url) {
            session_workers::submit::redacted_url(value)
        } else {
            value.to_owned()
        }
    }
}

/// The commented TOML example of every key, as the README shows it.
pub fn example_toml() -> String {
    let mut text = String::from("# sessionctl.toml\n");
    for key in KEYS {
        let comment = format!("# {} ({})", key.help, key.allowed());
        let line = match (key.secret, key.default, &key.kind) {
            (true, _, _) | (_, None, _) => format!("# {} = \"...\"", key.name),
            (_, Some(default), Kind::Int { .. } | Kind::Bool | Kind::Byte) => {
                format!("{} = {default}", key.name)
            }
            (_, Some(default), _) => format!("{} = \"{default}\"", key.name),
        };
        text.push_str(&format!("{line:<36}{comment}\n"));
    }
    text
}
