//! `list [--status S]`: one row per live session, like the app's session list.

use std::io::Write;

use session_api::views::RowView;
use session_model::{SubmissionStatus, printable};
use session_station::{SessionRow, natural_cmp};
use session_store::{SessionStore, StoredEntry};

use crate::error::CliError;
use crate::output::Output;

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
        .filter_map(|entry| {
            if let StoredEntry::Damaged { error, .. } = &entry {
                out.warn(&format!("skipped: {error}"));
            }
            SessionRow::of_entry(&entry)
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
            serde_json::to_writer(&mut stdout, &RowView::from(&row)).map_err(std::io::Error::from)?;
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
fn cells(r: &SessionRow, now: u64) -> [String; 8] {
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
}
