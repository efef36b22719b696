//! `list [--status S]`: one row per live session, like the app's session list.

use std::io::Write;

use serde::Serialize;
use serde_json::Value;
use session_model::{SubmissionStatus, printable};
use session_store::{SessionStore, StoredEntry};

use crate::error::CliError;
use crate::output::Output;

/// One session in `list`'s output, and in the daemon's in-memory index: everything a
/// list, a filter or `status` needs, never the messages.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Row {
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
    /// Whether capture was cut off (a crash, a lost connection, a stop), or the LIS
    /// did not receive all of it.
    pub interrupted: bool,
    /// Whether the LIS did not receive all of it (`interrupted.reason` `lisClosed`).
    pub not_received_by_lis: bool,
    /// The last submission error, if any.
    pub last_error: Option<String>,
    /// The analyzer's address.
    #[serde(rename = "deviceIP")]
    pub device_ip: Option<String>,
    /// The LIS's address.
    #[serde(rename = "lisIP")]
    pub lis_ip: Option<String>,
    /// Capture end, epoch ms.
    pub end_time: Option<u64>,
    /// The last delivery attempt, epoch ms.
    pub last_attempt_at: Option<u64>,
    /// When the worker sends it next, epoch ms (pending sessions).
    pub next_attempt_at: Option<u64>,
    /// The submission status, typed (`None` for a status this build does not know).
    #[serde(skip)]
    pub status: Option<SubmissionStatus>,
    /// The file's `_metadata.revision`: which of two readings of it is newer.
    #[serde(skip)]
    pub revision: u64,
    /// Written by a newer build: shown, never counted with this build's sessions.
    #[serde(skip)]
    pub newer: bool,
}

impl Row {
    /// The row of a decoded session.
    pub(crate) fn of(decoded: &session_store::Decoded) -> Row {
        let s = &decoded.session;
        Row {
            id: s.id.to_string(),
            version: decoded.from.as_str().to_owned(),
            start_time: Some(s.start_time),
            message_count: Some(s.message_count()),
            submission_status: Some(s.submission.status.as_str().to_owned()),
            persisted_until: Some(s.persisted_until),
            is_complete: Some(s.is_complete),
            interrupted: s.interrupted.is_some(),
            not_received_by_lis: s
                .interrupted
                .as_ref()
                .is_some_and(|i| i.reason == session_model::InterruptionReason::LisClosed),
            last_error: s.submission.last_error.clone(),
            device_ip: s.device_ip.clone(),
            lis_ip: s.lis_ip.clone(),
            end_time: s.end_time,
            last_attempt_at: s.submission.last_attempt_at,
            next_attempt_at: s.submission.next_attempt_at,
            status: Some(s.submission.status),
            revision: s.metadata.revision,
            newer: false,
        }
    }
}

/// A newer build's file: shown from whatever fields look familiar, never decoded.
pub(crate) fn newer_row(id: String, version: String, document: &[u8]) -> Row {
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
        interrupted: value.get("interrupted").is_some_and(Value::is_object),
        not_received_by_lis: value.pointer("/interrupted/reason").and_then(Value::as_str)
            == Some("lisClosed"),
        last_error: None,
        device_ip: value.get("deviceIP").and_then(Value::as_str).map(str::to_owned),
        lis_ip: value.get("lisIP").and_then(Value::as_str).map(str::to_owned),
        end_time: value.get("endTime").and_then(Value::as_u64),
        last_attempt_at: None,
        next_attempt_at: None,
        status: None,
        revision: value
            .pointer("/_metadata/revision")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        newer: true,
    }
}

/// Orders ids as people do: runs of digits compare as numbers.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn runs(s: &str) -> impl Iterator<Item = (bool, &str)> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digits = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(end);
            rest = tail;
            Some((digits, run))
        })
    }
    let mut left = runs(a);
    let mut right = runs(b);
    loop {
        match (left.next(), right.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some((true, x)), Some((true, y))) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                let order = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
                if order.is_ne() {
                    return order;
                }
            }
            (Some((_, x)), Some((_, y))) => {
                if x != y {
                    return x.cmp(y);
                }
            }
        }
    }
}

/// Rows the human table holds before it fixes its column widths; later rows stream
/// (a wider cell widens its own line only), so a listing of any size holds at most
/// this many rows.
const TABLE_HEAD: usize = 1000;

/// `list`: every live session as a row, ids in natural order, printed as they are read:
/// the store's ids are sorted, never its sessions, so memory stays flat whatever the
/// store's size. Damaged files are named on stderr and skipped.
pub(crate) fn print(
    store: &SessionStore,
    out: &Output,
    status: Option<SubmissionStatus>,
    colour: bool,
) -> Result<(), CliError> {
    // One listing of the directory: the odd names to warn of, the live ids to read.
    let scan = store.fs().maintenance().scan()?;
    for (name, kind) in &scan.irregular {
        out.warn(&format!(
            "{}: is {}, not a regular file; skipped",
            name.to_string_lossy(),
            kind.describe()
        ));
    }
    let mut ids = scan.live;
    ids.sort_by(|a, b| natural_cmp(a.as_str(), b.as_str()));
    let mut total = 0;
    let rows = store
        .entries_of(ids)
        .filter_map(|entry| match entry {
            StoredEntry::Valid(decoded) => Some(Row::of(&decoded)),
            StoredEntry::Newer {
                id,
                version,
                document,
            } => Some(newer_row(id.to_string(), version, &document)),
            StoredEntry::Damaged { error, .. } => {
                out.warn(&format!("skipped: {error}"));
                None
            }
            _ => None,
        })
        .inspect(|_| total += 1)
        .filter(|row| status.is_none_or(|s| row.submission_status.as_deref() == Some(s.as_str())));
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    if out.json {
        stdout.write_all(b"[")?;
        for (n, row) in rows.enumerate() {
            if n > 0 {
                stdout.write_all(b",")?;
            }
            serde_json::to_writer(&mut stdout, &row).map_err(std::io::Error::from)?;
        }
        stdout.write_all(b"]\n")?;
        return Ok(stdout.flush()?);
    }
    let now = session_fs::now_ms();
    let mut rows = rows.map(|row| cells(&row, now));
    let head: Vec<[String; 8]> = rows.by_ref().take(TABLE_HEAD).collect();
    if head.is_empty() {
        drop(rows);
        let said = match status {
            Some(status) => format!("no sessions with status {status} ({total} in total)"),
            None => "no sessions".into(),
        };
        writeln!(stdout, "{said}")?;
        return Ok(stdout.flush()?);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| {
            head.iter()
                .map(|c| c[i].chars().count())
                .chain([HEADER[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    writeln!(stdout, "{}", line(&HEADER.map(String::from), &widths, false))?;
    for cells in head.into_iter().chain(rows) {
        writeln!(stdout, "{}", line(&cells, &widths, colour))?;
    }
    Ok(stdout.flush()?)
}

const HEADER: [&str; 8] = [
    "ID",
    "STATUS",
    "COMPLETE",
    "MESSAGES",
    "STARTED",
    "KEPT UNTIL",
    "VERSION",
    "LAST ERROR",
];

/// A row's cells in the human table.
fn cells(r: &Row, now: u64) -> [String; 8] {
    let fmt_time = |t: Option<u64>| t.map_or_else(|| "-".to_owned(), |t| relative(t, now));
    // Past its retention but kept, because cleanup never removes what was not delivered.
    let settled = matches!(r.submission_status.as_deref(), Some("submitted" | "ignored"));
    let kept_until = match r.persisted_until {
        Some(t) if t <= now && !settled => "expired, kept: not delivered".to_owned(),
        other => fmt_time(other),
    };
    let complete = match r.is_complete {
        _ if r.not_received_by_lis => "not at LIS",
        _ if r.interrupted => "cut off",
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    };
    [
        printable(&r.id),
        r.submission_status
            .as_deref()
            .map_or_else(|| "?".into(), printable),
        complete.to_owned(),
        r.message_count.map_or_else(|| "?".into(), |n| n.to_string()),
        r.start_time
            .map_or_else(|| "-".to_owned(), |t| relative_past(t, now)),
        kept_until,
        printable(&r.version),
        r.last_error
            .as_deref()
            .map_or_else(|| "-".into(), |e| shorten(&printable(e), 48)),
    ]
}

/// One line of the table; `colour` paints the status cell.
fn line(cells: &[String], widths: &[usize], colour: bool) -> String {
    cells
        .iter()
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
}

/// "3 hours ago", "in 2 days".
pub(crate) fn relative(then: u64, now: u64) -> String {
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
        86_400..31_536_000 => (secs / 86_400, "day"),
        _ => (secs / 31_536_000, "year"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if past {
        format!("{n} {unit}{plural} ago")
    } else {
        format!("in {n} {unit}{plural}")
    }
}

/// [`relative`] for a time that must be past (a start, a save, an attempt): one in the
/// future says so, since only a wrong clock (now or when it was stored) makes it.
pub(crate) fn relative_past(then: u64, now: u64) -> String {
    let shown = relative(then, now);
    if then > now.saturating_add(session_fs::clock::TOLERANCE_MS) {
        format!("{shown} (clock?)")
    } else {
        shown
    }
}

/// `text` cut to `max` characters, with `…` when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = 1_000_000_000_000;
        let cases = [
            (now, "just now"),
            (now - 59_000, "just now"),
            (now - 60_000, "1 minute ago"),
            (now - 7_200_000, "2 hours ago"),
            (now - 86_400_000, "1 day ago"),
            (now - 3 * 86_400_000 - 5, "3 days ago"),
            (now + 30_000, "in a moment"),
            (now + 90_000, "in 1 minute"),
            (now + 2 * 86_400_000, "in 2 days"),
        ];
        for (then, said) in cases {
            assert_eq!(relative(then, now), said, "{}", then as i64 - now as i64);
        }
    }

    #[test]
    fn ids_sort_as_people_read_them() {
        let mut ids = vec![
            "session-109",
            "session-11",
            "session-9",
            "a",
            "session-011",
            "b2",
            "b10",
            "session-x",
        ];
        ids.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            ids,
            [
                "a",
                "b2",
                "b10",
                "session-9",
                "session-011",
                "session-11",
                "session-109",
                "session-x"
            ]
        );
    }
}
