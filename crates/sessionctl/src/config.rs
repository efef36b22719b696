//! The effective configuration: [`session_daemon::settings`] layers flags over
//! environment variables over the TOML file over defaults, and types and checks every
//! value; this module reads the file (refusing what is not a regular file) and turns
//! the settings into what the commands need.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use session_daemon::settings::{Configuration, Source};
use session_workers::submit::HttpTransport;

use crate::error::CliError;

pub(crate) use session_daemon::settings::Configuration as Config;

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

/// Resolves the configuration from defaults, `file` (or the default file, when it
/// exists), the environment and `overrides`.
pub(crate) fn resolve(file: Option<&Path>, overrides: &Overrides) -> Result<Config, CliError> {
    let bad = |e: &dyn std::fmt::Display| CliError::BadInput(e.to_string());
    let mut builder = Configuration::builder();
    let named = file.map(Path::to_path_buf);
    if let Some(path) = named.or_else(default_file) {
        let text = if file.is_some() || path.is_file() {
            let text = read_config_file(&path)
                .map_err(|e| CliError::BadInput(format!("config {}: {e}", path.display())))?;
            Some(text)
        } else {
            None
        };
        builder = builder.file(&path, text.as_deref());
    }
    builder = builder.environment();
    if let Some(dir) = &overrides.dir {
        builder = builder.flag("--dir", "dir", &dir.display().to_string());
    }
    if let Some(endpoint) = &overrides.endpoint {
        builder = builder.flag("--endpoint", "endpoint", endpoint);
    }
    for pair in &overrides.set {
        builder = builder.set(pair);
    }
    builder.resolve().map_err(|e| bad(&e))
}

/// The store directory: `dir`, or `~/.hl7-capture/sessions`.
pub(crate) fn store_dir(config: &Config) -> Result<PathBuf, CliError> {
    if let Some(dir) = &config.settings().dir {
        return Ok(dir.clone());
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| CliError::BadInput("HOME is not set: pass --dir or set HL7_SESSIONS_DIR".into()))?;
    Ok(Path::new(&home).join(".hl7-capture").join("sessions"))
}

/// Whether `http_listen` is the built-in default (nobody asked for it).
pub(crate) fn http_listen_is_default(config: &Config) -> bool {
    config.source("http_listen").is_none_or(|s| s == Source::Default)
}

/// The endpoint's transport: the endpoint, the authorization and, with `ca_file`,
/// a private CA beside the system's roots. A bad endpoint or CA file is bad input.
pub(crate) fn transport(config: &Config, endpoint: &str) -> Result<HttpTransport, CliError> {
    let settings = config.settings();
    let ca = match &settings.ca_file {
        Some(file) => Some(
            read_config_file(file)
                .map_err(|e| CliError::BadInput(format!("ca_file {}: {e}", file.display())))?,
        ),
        None => None,
    };
    HttpTransport::with_ca(
        endpoint,
        settings.authorization.clone(),
        settings.submit().request_timeout,
        ca.as_deref().map(str::as_bytes),
    )
    .map_err(|e| CliError::BadInput(format!("endpoint: {e}")))
}

/// One line of `sessionctl config`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShownKey {
    /// The key.
    pub key: &'static str,
    /// Its value (secrets redacted), if set.
    pub value: Option<String>,
    /// Where the value came from: `default`, `file`, `env` or `flag`.
    pub source: Option<&'static str>,
    /// What values are allowed.
    pub allowed: String,
    /// Its environment variable.
    pub env: String,
    /// What it does.
    pub help: &'static str,
}

/// Every key with its effective value and source; secrets redacted.
pub(crate) fn shown(config: &Config) -> Vec<ShownKey> {
    config
        .described()
        .into_iter()
        .map(|d| ShownKey {
            key: d.key,
            value: d.value,
            source: d.source.map(Source::as_str),
            allowed: d.allowed,
            env: d.env,
            help: d.help,
        })
        .collect()
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
            let source = k.source.unwrap_or("unset");
            format!("{:<24} {value:<28} {source:<8} {}", k.key, k.allowed)
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
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

/// Keeps the local API's settings changes in the configuration file.
pub(crate) struct SettingsFileWriter;

impl session_api::SettingsFile for SettingsFileWriter {
    fn write(&self, path: &Path, edits: &[(String, String)]) -> Result<(), String> {
        write_settings(path, edits)
    }
}

/// Sets `edits` in the TOML file at `path` (created if missing), keeping everything else:
/// edited with `toml_edit`, so comments and other keys stay as the operator wrote them,
/// then replaced durably (temp file, fsync, rename, directory fsync).
fn write_settings(path: &Path, edits: &[(String, String)]) -> Result<(), String> {
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
    fn the_readme_shows_every_key_as_the_table_defines_it() {
        let readme = include_str!("../../../README.md");
        let example = session_daemon::settings::example_toml();
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
    fn comments_and_other_keys_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessionctl.toml");
        std::fs::write(
            &path,
            "# the lab's settings\ndir = \"/srv/s\"  # where\nretention_days = 30 # a month\n",
        )
        .unwrap();
        write_settings(
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
