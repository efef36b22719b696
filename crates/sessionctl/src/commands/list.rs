//! `list [--status S]`: one row per live session, like the app's session list.

use serde::Serialize;
use serde_json::Value;
use session_fs::Store;
use session_migrate::{DecodeError, DecodeOptions, StoreError};
use session_model::{SubmissionStatus, printable};

use crate::error::CliError;
use crate::output::Output;

/// One session in `list`'s output.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// The id.
    pub id: String,
    /// The version on disk (`legacy`, `1.0.0`, `2.0.0`, or a newer one).
    pub version: String,
    /// Capture start, epoch ms.
    pub start_time: Option<u64>,
    /// HL7 messages in the session.
    pub message_count: Option<usize>,
    /// Submission status (as the file says, for newer versions).
    pub submission_status: Option<String>,
    /// Retention end, epoch ms.
    pub persisted_until: Option<u64>,
    /// Whether capture finished (an incomplete session is never sent).
    pub is_complete: Option<bool>,
    /// The last submission error, if any.
    pub last_error: Option<String>,
}

/// A newer build's file: shown from whatever fields look familiar, never decoded.
fn newer_row(id: String, version: String, document: &[u8]) -> Row {
    let value: Value = serde_json::from_slice(document).unwrap_or(Value::Null);
    let status = value
        .pointer("/submission/status")
        .or_else(|| value.get("submissionStatus"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Row {
        id,
        version,
        start_time: value.get("startTime").and_then(Value::as_u64),
        message_count: value.get("messages").and_then(Value::as_array).map(Vec::len),
        submission_status: status,
        persisted_until: value.get("persistedUntil").and_then(Value::as_u64),
        is_complete: value.get("isComplete").and_then(Value::as_bool),
        last_error: None,
    }
}

/// Reads every live session into a row; damaged files are named on stderr and skipped.
pub fn rows(store: &Store, out: &Output, status: Option<SubmissionStatus>) -> Result<Vec<Row>, CliError> {
    let mut rows = Vec::new();
    let scan = store.scan()?;
    for (name, kind) in &scan.irregular {
        out.warn(&format!(
            "{}: is {}, not a regular file; skipped",
            name.to_string_lossy(),
            kind.describe()
        ));
    }
    for id in scan.live {
        let row = match session_migrate::load(store, &id, &DecodeOptions::default()) {
            Ok(Some(decoded)) => Row {
                id: id.to_string(),
                version: decoded.from.as_str().to_owned(),
                start_time: Some(decoded.session.start_time),
                message_count: Some(decoded.session.message_count()),
                submission_status: Some(decoded.session.submission.status.as_str().to_owned()),
                persisted_until: Some(decoded.session.persisted_until),
                is_complete: Some(decoded.session.is_complete),
                last_error: decoded.session.submission.last_error.clone(),
            },
            Ok(None) => continue, // deleted since the listing
            Err(StoreError::Decode {
                source: DecodeError::NewerVersion { version, document },
                ..
            }) => newer_row(id.to_string(), version, &document),
            Err(e) => {
                out.warn(&format!("skipped: {e}"));
                continue;
            }
        };
        if status.is_none_or(|s| row.submission_status.as_deref() == Some(s.as_str())) {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// "3 hours ago", "in 2 days".
pub fn relative(then: u64, now: u64) -> String {
    let (delta, past) = if then <= now {
        (now - then, true)
    } else {
        (then - now, false)
    };
    let secs = delta / 1000;
    let (n, unit) = match secs {
        0..60 => {
            return if past {
                "just now".into()
            } else {
                "in a moment".into()
            };
        }
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if past {
        format!("{n} {unit}{plural} ago")
    } else {
        format!("in {n} {unit}{plural}")
    }
}

/// The human table.
pub fn table(rows: &[Row], now: u64, colour: bool) -> String {
    if rows.is_empty() {
        return "no sessions".into();
    }
    let fmt_time = |t: Option<u64>| t.map_or_else(|| "-".to_owned(), |t| relative(t, now));
    let complete = |c: Option<bool>| match c {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    };
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                printable(&r.id),
                r.submission_status
                    .as_deref()
                    .map_or_else(|| "?".into(), printable),
                complete(r.is_complete).to_owned(),
                r.message_count.map_or_else(|| "?".into(), |n| n.to_string()),
                fmt_time(r.start_time),
                fmt_time(r.persisted_until),
                printable(&r.version),
                r.last_error
                    .as_deref()
                    .map_or_else(|| "-".into(), |e| shorten(&printable(e), 48)),
            ]
        })
        .collect();
    let header = [
        "ID",
        "STATUS",
        "COMPLETE",
        "MESSAGES",
        "STARTED",
        "KEPT UNTIL",
        "VERSION",
        "LAST ERROR",
    ];
    let widths: Vec<usize> = (0..8)
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |c: &[String]| {
        c.iter()
            .enumerate()
            .map(|(i, cell)| {
                let padded = format!("{cell:<w$}", w = widths[i]);
                if colour && i == 1 {
                    paint(cell, padded)
                } else {
                    padded
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut text = line(&header.map(String::from));
    for c in &cells {
        text.push('\n');
        text.push_str(&line(c));
    }
    text
}

/// `text` cut to `max` characters, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn paint(status: &str, padded: String) -> String {
    let code = match status {
        "submitted" => "32",
        "pending" | "inFlight" => "33",
        "failed" => "31",
        _ => "2",
    };
    format!("\x1b[{code}m{padded}\x1b[0m")
}
