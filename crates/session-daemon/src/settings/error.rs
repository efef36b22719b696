//! Why a configuration or a settings change is refused. No message shows a secret.

use super::{API_SETTINGS, Source};

/// Why the configuration cannot be resolved; each names where the value came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value the key does not allow.
    #[error("{origin}: {key} = {shown:?} is not allowed; expected {expected}", shown = session_model::Printable(shown))]
    Refused {
        /// Where the value came from (`config FILE`, `--set KEY`, `environment variable VAR`).
        origin: String,
        /// The key.
        key: &'static str,
        /// The value as it may be shown (a secret is `[redacted]`).
        shown: String,
        /// What is allowed.
        expected: String,
    },
    /// A key no setting has.
    #[error("{origin}: unknown key {key:?}; known keys: {}", super::KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "))]
    UnknownKey {
        /// Where it came from.
        origin: String,
        /// The key as written.
        key: String,
    },
    /// The file is not TOML.
    #[error("{origin}: {message}")]
    NotToml {
        /// The file.
        origin: String,
        /// The parser's complaint.
        message: String,
    },
    /// An `HL7_*` variable that is not UTF-8.
    #[error("{variable} is not UTF-8")]
    NotUtf8 {
        /// The variable.
        variable: String,
    },
    /// A `--set` argument without `=`.
    #[error("--set{}: expected key=value (the argument is not shown)", named.map_or(String::new(), |k| format!(" {k}...")))]
    NotAPair {
        /// The key it starts with, if any.
        named: Option<&'static str>,
    },
    /// Anything else the layers could not give.
    #[error("{0}")]
    Unreadable(String),
}

/// Why a settings change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingError {
    /// Not one of the API's settings.
    #[error("{0:?} is not a setting here; the settings are {list}", list = API_SETTINGS.join(", "))]
    Unknown(String),
    /// Set by a flag or the environment, which win over the file.
    #[error("{key} is set by the {} and cannot be changed here", if *origin == Source::Env { "environment" } else { "command line" })]
    Pinned {
        /// The key.
        key: &'static str,
        /// Where its value comes from.
        origin: Source,
    },
    /// A value the key does not allow.
    #[error("{0}")]
    Invalid(String),
}
