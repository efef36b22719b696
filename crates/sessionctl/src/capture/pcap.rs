//! `import-pcap`: `session_capture::pcap` on a file, and its report as the tool prints it.

use std::path::Path;

use serde::Serialize;
use session_capture::pcap::{ImportError, ImportReport};
use session_capture::{Framing, Markers, Recorder};

use crate::error::CliError;

/// What an import found and recorded, as `--json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImportJson {
    /// TCP connections that carried data.
    pub connections: usize,
    /// Sessions recorded.
    pub sessions: usize,
    /// Of those, complete (ended by their end marker).
    pub complete: usize,
    /// Of those, cut off (the capture ended or the connection closed first).
    pub interrupted: usize,
    /// Packets that were not TCP over IP (skipped).
    pub skipped_packets: usize,
    /// Bytes the capture missed (gaps in a direction's sequence numbers).
    pub missing_bytes: u64,
}

impl From<ImportReport> for ImportJson {
    fn from(r: ImportReport) -> Self {
        ImportJson {
            connections: r.connections,
            sessions: r.sessions,
            complete: r.complete,
            interrupted: r.interrupted,
            skipped_packets: r.skipped_packets,
            missing_bytes: r.missing_bytes,
        }
    }
}

/// Reads the capture at `path` and records its sessions through `recorder`.
pub(crate) fn import(
    recorder: &Recorder,
    path: &Path,
    framing: Framing,
    markers: Markers,
) -> Result<ImportJson, CliError> {
    let bad = |e: &dyn std::fmt::Display| CliError::BadInput(format!("{}: {e}", path.display()));
    let capture = std::fs::File::open(path).map_err(|e| bad(&e))?;
    match session_capture::pcap::import(recorder, capture, framing, markers) {
        Ok(report) => Ok(report.into()),
        Err(ImportError::Recording(e)) => Err(CliError::Failed(format!("recording: {e}"))),
        Err(e) => Err(bad(&e)),
    }
}
