//! Where the store is: `--dir`, then `HL7_SESSIONS_DIR`, then the config file, then
//! the Electron app's own default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::CliError;

/// The environment variable that names the store directory.
pub const DIR_ENV: &str = "HL7_SESSIONS_DIR";

/// The configuration file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The store directory.
    pub dir: Option<PathBuf>,
}

/// Reads a TOML configuration file; unknown keys are refused.
pub fn read_config(path: &Path) -> Result<FileConfig, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::BadInput(format!("config {}: {e}", path.display())))?;
    toml::from_str(&text)
        .map_err(|e| CliError::BadInput(format!("config {}: {}", path.display(), e.message())))
}

/// The store directory to use.
pub fn store_dir(flag: Option<&Path>, config: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(dir) = flag {
        return Ok(dir.to_owned());
    }
    if let Some(dir) = std::env::var_os(DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = config.map(read_config).transpose()?.and_then(|c| c.dir) {
        return Ok(dir);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| CliError::BadInput(format!("HOME is not set: pass --dir or set {DIR_ENV}")))?;
    Ok(Path::new(&home).join(".hl7-capture").join("sessions"))
}
