//! `tracing` output: human-readable text (coloured on a terminal) or JSON lines on
//! stderr, and a daily rolling file when a log directory is set.

use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::error::CliError;

/// Keeps the file writer flushing; hold it until the process ends.
pub(crate) struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Starts logging. `RUST_LOG`, when set, overrides `level`.
/// `ansi` colours the text format (the caller applies `--color` and `NO_COLOR`).
pub(crate) fn init(level: &str, format: &str, ansi: bool, dir: Option<&Path>) -> Result<LogGuard, CliError> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let json = format == "json";
    let ansi = ansi && !json;
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(BoxMakeWriter::new(std::io::stderr))
        .with_ansi(ansi);
    let stderr = if json {
        stderr.json().boxed()
    } else {
        stderr.boxed()
    };
    let (file, guard) = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::Failed(format!("log directory {}: {e}", dir.display())))?;
            let appender = tracing_appender::rolling::daily(dir, "sessionctl.log");
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_writer(writer)
                .with_filter(filter());
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    use tracing_subscriber::Layer;
    tracing_subscriber::registry()
        .with(stderr.with_filter(filter()))
        .with(file)
        .try_init()
        .map_err(|e| CliError::Failed(format!("logging: {e}")))?;
    Ok(LogGuard(guard))
}
