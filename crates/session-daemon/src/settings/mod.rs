//! The daemon's settings: one struct of typed fields, resolved from layers with
//! [figment]: built-in defaults, then the TOML file, then `HL7_*` environment
//! variables, then command-line flags, each layer winning over the ones before, and
//! each value remembering which layer it came from.
//!
//! Reading files is the caller's: the configuration takes the TOML file's text, so
//! that this crate does no file I/O of its own and the caller decides how a file is
//! read (`sessionctl` refuses FIFOs and files over 1 MiB).
//!
//! ```
//! use session_daemon::settings::{Configuration, Source};
//!
//! let configuration = Configuration::builder()
//!     .file("/etc/sessionctl.toml".as_ref(), Some("concurrency = 4\n"))
//!     .set("max_attempts=5")
//!     .resolve()?;
//! assert_eq!(configuration.settings().concurrency, 4);
//! assert_eq!(configuration.settings().max_attempts, 5);
//! assert_eq!(configuration.source("concurrency"), Some(Source::File));
//! assert_eq!(configuration.source("retention_days"), Some(Source::Default));
//! # Ok::<(), session_daemon::settings::SettingsError>(())
//! ```

mod error;
mod file_edit;
mod keys;
mod layers;
mod values;

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use serde::Deserialize;
use session_workers::cleanup::CleanupConfig;
use session_workers::submit::{Backoff, Secret, SubmitConfig};

pub use error::{SettingError, SettingsError};
pub use file_edit::{NotToml, with_settings};
use keys::{KEYS, Kind};
pub use keys::{env_name, example_toml};
use layers::{Layer, as_text, source_of};

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Built in.
    Default,
    /// The TOML file (or a settings change kept in it).
    File,
    /// An `HL7_*` environment variable.
    Env,
    /// A command-line flag.
    Flag,
}

impl Source {
    /// `default`, `file`, `env` or `flag`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Env => "env",
            Source::Flag => "flag",
        }
    }
}

/// Every setting, typed and checked against its range. Its `Debug` shows no secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// The store directory; `None` for the caller's default.
    #[serde(default, deserialize_with = "values::path")]
    pub dir: Option<PathBuf>,
    /// Retention of legacy sessions that have none, in days.
    #[serde(deserialize_with = "values::within::<1, 365, _>")]
    pub retention_days: u64,
    /// Hours between cleanups.
    #[serde(deserialize_with = "values::within::<1, 168, _>")]
    pub cleanup_interval_hours: u64,
    /// Cleanup reports what it would do and changes nothing.
    #[serde(deserialize_with = "values::switch")]
    pub cleanup_dry_run: bool,
    /// Days before the trash is emptied.
    #[serde(deserialize_with = "values::within::<1, 365, _>")]
    pub trash_max_age_days: u64,
    /// Cleanup may remove expired sessions that were never delivered.
    #[serde(deserialize_with = "values::switch")]
    pub delete_undelivered: bool,
    /// The submission endpoint; submission is off without one.
    #[serde(default, deserialize_with = "values::url")]
    pub endpoint: Option<String>,
    /// A PEM file of a private CA the endpoint's certificate is signed by.
    #[serde(default, deserialize_with = "values::path")]
    pub ca_file: Option<PathBuf>,
    /// The `Authorization` header of submissions.
    #[serde(default, deserialize_with = "values::header")]
    pub authorization: Option<Secret>,
    /// Requests in flight at most.
    #[serde(deserialize_with = "values::within::<1, 10, _>")]
    pub concurrency: u64,
    /// Attempts before a session fails.
    #[serde(deserialize_with = "values::within::<1, 10, _>")]
    pub max_attempts: u64,
    /// Minutes between submission scans.
    #[serde(deserialize_with = "values::within::<1, 60, _>")]
    pub scan_interval_minutes: u64,
    /// The per-request timeout, in seconds.
    #[serde(deserialize_with = "values::within::<1, 600, _>")]
    pub request_timeout_seconds: u64,
    /// The backoff of the first retry, in seconds.
    #[serde(deserialize_with = "values::within::<1, 3600, _>")]
    pub retry_base_seconds: u64,
    /// The longest backoff, in seconds.
    #[serde(deserialize_with = "values::within::<1, 86_400, _>")]
    pub retry_cap_seconds: u64,
    /// Sent as `performer` in each submission.
    #[serde(default, deserialize_with = "values::text")]
    pub performer: Option<String>,
    /// Deliver complete sessions the LIS did not wholly receive.
    #[serde(deserialize_with = "values::switch")]
    pub deliver_lis_closed: bool,
    /// Minutes the oldest complete session may wait before it is an alert.
    #[serde(deserialize_with = "values::within::<1, 10_080, _>")]
    pub alert_undelivered_minutes: u64,
    /// Where alerts are POSTed (a URL may hold a token).
    #[serde(default, deserialize_with = "values::secret_url")]
    pub alert_webhook: Option<Secret>,
    /// The local API's address; `None` when turned off.
    #[serde(default, deserialize_with = "values::listen")]
    pub http_listen: Option<String>,
    /// The bearer token every API request must carry.
    #[serde(default, deserialize_with = "values::header")]
    pub http_token: Option<Secret>,
    /// Where analyzers connect to the capture relay.
    #[serde(default, deserialize_with = "values::listen")]
    pub capture_listen: Option<String>,
    /// The LIS the capture relay forwards to.
    #[serde(default, deserialize_with = "values::listen")]
    pub capture_forward: Option<String>,
    /// The marker byte that opens a session.
    #[serde(deserialize_with = "values::byte")]
    pub start_marker: u8,
    /// The marker byte of an acknowledgement.
    #[serde(deserialize_with = "values::byte")]
    pub ack_marker: u8,
    /// The marker byte of a negative acknowledgement.
    #[serde(deserialize_with = "values::byte")]
    pub nak_marker: u8,
    /// The marker byte that ends a session.
    #[serde(deserialize_with = "values::byte")]
    pub end_marker: u8,
    /// How capture frames sessions.
    #[serde(deserialize_with = "values::framing")]
    pub capture_framing: session_capture::Framing,
    /// How much to log: `error`, `warn`, `info`, `debug` or `trace`.
    #[serde(deserialize_with = "values::level")]
    pub log_level: String,
    /// The log format on stderr: `auto`, `text` or `json`.
    #[serde(deserialize_with = "values::format")]
    pub log_format: String,
    /// Also log to a daily rolling file there.
    #[serde(default, deserialize_with = "values::path")]
    pub log_dir: Option<PathBuf>,
}

impl Settings {
    /// The built-in defaults, as a program that reads no file starts with.
    pub fn defaults() -> Settings {
        match Configuration::builder().resolve() {
            Ok(configuration) => configuration.settings,
            // The defaults are the table's, and a test resolves them.
            Err(e) => unreachable!("the built-in defaults are valid: {e}"),
        }
    }

    /// The submission worker's settings.
    pub fn submit(&self) -> SubmitConfig {
        SubmitConfig::default()
            .concurrency(self.concurrency as usize)
            .request_timeout(Duration::from_secs(self.request_timeout_seconds))
            .max_attempts(self.max_attempts as u32)
            .backoff(Backoff::new(
                Duration::from_secs(self.retry_base_seconds),
                Duration::from_secs(self.retry_cap_seconds),
            ))
            .scan_interval(Duration::from_secs(self.scan_interval_minutes * 60))
            .performer(self.performer.clone())
            .deliver_lis_closed(self.deliver_lis_closed)
    }

    /// The cleanup worker's settings.
    pub fn cleanup(&self) -> CleanupConfig {
        CleanupConfig::default()
            .interval(Duration::from_secs(self.cleanup_interval_hours * 3600))
            .dry_run(self.cleanup_dry_run)
            .trash_max_age(Duration::from_secs(self.trash_max_age_days * 86_400))
            .delete_undelivered(self.delete_undelivered)
    }

    /// How legacy files are decoded (their retention).
    pub fn decode_options(&self) -> session_store::DecodeOptions {
        session_store::DecodeOptions::default().retention_days(self.retention_days as u32)
    }

    /// Capture's marker bytes.
    pub fn markers(&self) -> session_capture::Markers {
        session_capture::Markers {
            start: self.start_marker,
            ack: self.ack_marker,
            nak: self.nak_marker,
            end: self.end_marker,
        }
    }

    /// The capture relay's addresses (listen, forward), when both are set.
    pub fn capture(&self) -> Option<(&str, &str)> {
        Some((self.capture_listen.as_deref()?, self.capture_forward.as_deref()?))
    }
}

/// The settings the local API may change: retention and cleanup.
pub const API_SETTINGS: [&str; 5] = [
    "retention_days",
    "cleanup_interval_hours",
    "trash_max_age_days",
    "delete_undelivered",
    "cleanup_dry_run",
];

/// Settings resolved from their layers, with where each value came from.
#[derive(Clone)]
pub struct Configuration {
    settings: Settings,
    layers: Vec<Layer>,
    figment: Figment,
    file: Option<PathBuf>,
    file_read: bool,
}

impl std::fmt::Debug for Configuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configuration")
            .field("settings", &self.settings)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Configuration`], lowest layer first.
#[derive(Default)]
pub struct ConfigurationBuilder {
    layers: Vec<Layer>,
    file: Option<PathBuf>,
    file_read: bool,
    error: Option<SettingsError>,
}

impl Configuration {
    /// A builder that starts from the built-in defaults.
    pub fn builder() -> ConfigurationBuilder {
        let defaults = KEYS
            .iter()
            .filter_map(|key| Some((key.name, key.default?)))
            .fold(Layer::new(Source::Default, "default"), |layer, (name, value)| {
                layer.with(name, value)
            });
        ConfigurationBuilder {
            layers: vec![defaults],
            ..ConfigurationBuilder::default()
        }
    }

    /// The typed settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Where `key`'s value came from; `None` for a key that is unset or unknown.
    pub fn source(&self, key: &str) -> Option<Source> {
        source_of(self.figment.find_metadata(key)?)
    }

    /// The file settings changes are kept in, if there is one to use.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The file the settings were read from, if one was.
    pub fn file_read(&self) -> Option<&Path> {
        self.file.as_deref().filter(|_| self.file_read)
    }

    fn text(&self, key: &str) -> Option<String> {
        self.figment.find_value(key).ok().map(|v| as_text(&v))
    }

    /// Every key with its value as written (secrets redacted), its source and what
    /// it allows, in the table's order.
    pub fn described(&self) -> Vec<Described> {
        KEYS.iter()
            .map(|key| Described {
                key: key.name,
                value: self.text(key.name).map(|v| key.shown(&v)),
                source: self.source(key.name),
                allowed: key.allowed(),
                env: env_name(key.name),
                help: key.help,
            })
            .collect()
    }

    /// Changes one of the [`API_SETTINGS`], checked as the configuration is: refused
    /// for other keys, for a value the key does not allow, and for a key a flag or the
    /// environment sets (those win over the file, so the change would not stick)
    /// unless it is set to the value it has. `Ok(true)` when it changed something.
    pub fn set_setting(&mut self, name: &str, raw: &str) -> Result<bool, SettingError> {
        let key = keys::find(name)
            .filter(|k| API_SETTINGS.contains(&k.name))
            .ok_or_else(|| SettingError::Unknown(name.to_owned()))?;
        if let Some(origin @ (Source::Flag | Source::Env)) = self.source(key.name) {
            if self.text(key.name).as_deref() == Some(raw) {
                return Ok(false);
            }
            return Err(SettingError::Pinned {
                key: key.name,
                origin,
            });
        }
        let mut layers = self.layers.clone();
        // Changes sit just above the file they are written to, below what pins a key.
        let at = layers
            .iter()
            .position(|l| matches!(l.source, Source::Env | Source::Flag))
            .unwrap_or(layers.len());
        layers.insert(at, Layer::new(Source::File, "settings").with(key.name, raw));
        let figment = figure(&layers);
        let settings = extract(&figment).map_err(|e| SettingError::Invalid(e.to_string()))?;
        self.layers = layers;
        self.figment = figment;
        self.settings = settings;
        Ok(true)
    }

    /// The JSON type an API setting takes (an error for a key that is not one).
    pub fn setting_type(name: &str) -> Result<SettingType, SettingError> {
        let key = keys::find(name)
            .filter(|k| API_SETTINGS.contains(&k.name))
            .ok_or_else(|| SettingError::Unknown(name.to_owned()))?;
        Ok(match key.kind {
            Kind::Int { .. } | Kind::Byte => SettingType::Number,
            Kind::Bool => SettingType::Boolean,
            _ => SettingType::Text,
        })
    }
}

/// The JSON type of a setting the local API changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingType {
    /// A whole number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// Text.
    Text,
}

/// One key as `config` shows it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Described {
    /// The key.
    pub key: &'static str,
    /// Its value as written (secrets redacted), if set.
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

fn figure(layers: &[Layer]) -> Figment {
    layers
        .iter()
        .fold(Figment::new(), |figment, layer| figment.merge(layer.clone()))
}

fn extract(figment: &Figment) -> Result<Settings, SettingsError> {
    figment.extract::<Settings>().map_err(|error| {
        let Some(error) = error.into_iter().next() else {
            return SettingsError::Unreadable("no settings".into());
        };
        let origin = |key: &str| {
            figment
                .find_metadata(key)
                .or(error.metadata.as_ref())
                .map_or_else(|| "configuration".to_owned(), |m| m.name.to_string())
        };
        if let figment::error::Kind::UnknownField(field, _) = &error.kind {
            return SettingsError::UnknownKey {
                origin: origin(field),
                key: field.clone(),
            };
        }
        let name = error.path.last().cloned().unwrap_or_default();
        match keys::find(&name) {
            Some(key) => SettingsError::Refused {
                origin: origin(key.name),
                key: key.name,
                shown: figment
                    .find_value(key.name)
                    .map_or_else(|_| String::new(), |v| key.shown(&as_text(&v))),
                expected: key.expected(),
            },
            None => SettingsError::Unreadable(error.to_string()),
        }
    })
}

impl ConfigurationBuilder {
    fn push(mut self, layer: Result<Layer, SettingsError>) -> Self {
        match layer {
            Ok(layer) if self.error.is_none() => self.layers.push(layer),
            Ok(_) => {}
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// The TOML file at `path`, with its `text` when it was read; `None` when it does
    /// not exist (settings changes will create it).
    pub fn file(mut self, path: &Path, text: Option<&str>) -> Self {
        self.file = Some(path.to_path_buf());
        self.file_read = text.is_some();
        let Some(text) = text else { return self };
        let origin = format!("config {}", path.display());
        let layer = toml::from_str::<toml::Table>(text)
            .map_err(|e| SettingsError::NotToml {
                origin: origin.clone(),
                message: e.message().trim().to_owned(),
            })
            .and_then(|table| {
                table
                    .into_iter()
                    .try_fold(Layer::new(Source::File, &origin), |layer, (key, value)| {
                        let value = figment::value::Value::serialize(value)
                            .map_err(|e| SettingsError::Unreadable(format!("{origin}: {e}")))?;
                        Ok(layer.with(&key, value))
                    })
            });
        self.push(layer)
    }

    /// The `HL7_*` environment variables of the keys (see [`env_name`]). An empty
    /// variable means unset, except where empty is a value (a listener turned off).
    pub fn environment(mut self) -> Self {
        for key in KEYS {
            let var = env_name(key.name);
            let empty_is_a_value = matches!(key.kind, Kind::Listen);
            let Some(raw) = std::env::var_os(&var).filter(|v| !v.is_empty() || empty_is_a_value) else {
                continue;
            };
            let layer = raw
                .into_string()
                .map_err(|_| SettingsError::NotUtf8 {
                    variable: var.clone(),
                })
                .map(|raw| {
                    Layer::new(Source::Env, format!("environment variable {var}")).with(key.name, raw)
                });
            self = self.push(layer);
        }
        self
    }

    /// A flag that sets `key` (`--dir`, `--endpoint`), named `flag` in refusals.
    pub fn flag(self, flag: &str, key: &str, value: &str) -> Self {
        self.push(Ok(Layer::new(Source::Flag, flag).with(key, value)))
    }

    /// `--set key=value`. An argument without `=` is refused without being shown: it
    /// may be a secret with a typo (`authorization:Bearer ...`).
    pub fn set(self, pair: &str) -> Self {
        let layer = match pair.split_once('=') {
            Some((name, raw)) => {
                let name = name.trim();
                Ok(Layer::new(Source::Flag, format!("--set {name}")).with(name, raw.trim()))
            }
            None => Err(SettingsError::NotAPair {
                named: KEYS.iter().find(|k| pair.starts_with(k.name)).map(|k| k.name),
            }),
        };
        self.push(layer)
    }

    /// Resolves the layers into typed settings, or says which value of which layer
    /// is refused and what is allowed.
    pub fn resolve(self) -> Result<Configuration, SettingsError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let figment = figure(&self.layers);
        let settings = extract(&figment)?;
        Ok(Configuration {
            settings,
            layers: self.layers,
            figment,
            file: self.file,
            file_read: self.file_read,
        })
    }
}

#[cfg(test)]
mod tests;
