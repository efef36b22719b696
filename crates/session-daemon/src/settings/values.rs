//! How each typed field reads a value. A value may come from a TOML file (typed) or
//! from the environment and the command line (text), so every reader takes a scalar
//! either way: `concurrency = 4` and `HL7_CONCURRENCY=4` mean the same. What a refusal
//! says comes from the key table, so the readers only say no.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use session_workers::submit::Secret;

/// A scalar, as text.
fn scalar<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct Scalar;
    impl Visitor<'_> for Scalar {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number, true or false, or text")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    deserializer.deserialize_any(Scalar)
}

fn refused<E: de::Error>() -> E {
    // The message is the key table's; see `super::Refusal`.
    E::custom("not allowed")
}

/// A whole number in `MIN..=MAX`.
pub(crate) fn within<'de, const MIN: u64, const MAX: u64, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<u64, D::Error> {
    let text = scalar(deserializer)?;
    match text.trim().parse::<u64>() {
        Ok(n) if (MIN..=MAX).contains(&n) => Ok(n),
        _ => Err(refused()),
    }
}

/// `true` or `false`.
pub(crate) fn switch<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    match scalar(deserializer)?.as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(refused()),
    }
}

/// A byte in decimal (`5`) or hex (`0x05`).
pub(crate) fn byte<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    let text = scalar(deserializer)?;
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
    .ok_or_else(refused)
}

/// Capture's framing: `markers`, `mllp` or `auto`.
pub(crate) fn framing<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<session_capture::Framing, D::Error> {
    scalar(deserializer)?.parse().map_err(|_| refused())
}

/// One of `allowed`.
fn one_of<'de, D: Deserializer<'de>>(deserializer: D, allowed: &[&str]) -> Result<String, D::Error> {
    let text = scalar(deserializer)?;
    if allowed.contains(&text.as_str()) {
        Ok(text)
    } else {
        Err(refused())
    }
}

/// A `tracing` level.
pub(crate) fn level<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    one_of(deserializer, &["error", "warn", "info", "debug", "trace"])
}

/// A log format on stderr.
pub(crate) fn format<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    one_of(deserializer, &["auto", "text", "json"])
}

/// `HOST:PORT`, or empty for off (`None`).
pub(crate) fn listen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = scalar(deserializer)?;
    match text.rsplit_once(':') {
        _ if text.is_empty() => Ok(None),
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(Some(text)),
        _ => Err(refused()),
    }
}

fn is_url(text: &str) -> bool {
    matches!(text.split_once("://"), Some(("http" | "https", rest)) if !rest.is_empty())
}

/// An `http://` or `https://` URL.
pub(crate) fn url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = scalar(deserializer)?;
    if is_url(&text) {
        Ok(Some(text))
    } else {
        Err(refused())
    }
}

/// A URL that may hold a token.
pub(crate) fn secret_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    Ok(url(deserializer)?.map(Secret::new))
}

/// Non-empty text.
pub(crate) fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = scalar(deserializer)?;
    if text.is_empty() {
        Err(refused())
    } else {
        Ok(Some(text))
    }
}

/// A non-empty path.
pub(crate) fn path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(text(deserializer)?.map(PathBuf::from))
}

/// A header value that is a secret: printable, no line breaks or trailing spaces.
pub(crate) fn header<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    let text = scalar(deserializer)?;
    if text.is_empty() || !session_workers::submit::is_valid_header_value(&text) {
        Err(refused())
    } else {
        Ok(Some(Secret::new(text)))
    }
}
