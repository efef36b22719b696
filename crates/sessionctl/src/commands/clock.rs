//! `clock [show|confirm]`: whether the store trusts the wall clock.

use serde::Serialize;
use session_fs::clock::{ClockRecord, rfc3339};
use session_store::SessionStore;

use crate::error::CliError;
use crate::output::Output;

/// What `clock --json`, `status --json` (`clock`) and `/api/status` say of the clock.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClockView {
    /// Whether the clock is suspect: nothing is then purged, trashed or expired.
    pub suspect: bool,
    /// Why, in words.
    pub reason: Option<String>,
    /// The wall-clock reading that raised the suspicion, epoch ms.
    pub suspect_since: Option<u64>,
    /// The newest reading the store trusted, epoch ms.
    pub trusted_at: Option<u64>,
    /// What cleared the last suspicion ("operator", "endpoint's Date").
    pub last_cleared_by: Option<String>,
}

impl From<&ClockRecord> for ClockView {
    fn from(record: &ClockRecord) -> Self {
        ClockView {
            suspect: record.suspect.is_some(),
            reason: record.suspect.as_ref().map(|s| s.reason.clone()),
            suspect_since: record.suspect.as_ref().map(|s| s.at.wall_ms),
            trusted_at: record.trusted.as_ref().map(|t| t.wall_ms),
            last_cleared_by: record.cleared.as_ref().map(|c| c.by.clone()),
        }
    }
}

impl ClockView {
    /// The store's clock as its record says (read only).
    pub(crate) fn of(store: &SessionStore) -> Result<ClockView, CliError> {
        Ok(ClockView::from(&store.fs().clock_record()?))
    }

    /// The line `status` and `clock` print while the clock is suspect.
    pub(crate) fn warning(&self) -> Option<String> {
        let reason = self.reason.as_deref()?;
        Some(format!(
            "CLOCK SUSPECT: {}. Nothing is purged, trashed or expired until the endpoint's Date agrees or an operator runs `sessionctl clock confirm`",
            session_model::printable(reason)
        ))
    }
}

/// `clock`: what the store knows of its clock.
pub(crate) fn show(store: &SessionStore, out: &Output) -> Result<(), CliError> {
    let view = ClockView::of(store)?;
    Ok(out.result(&view, || human(&view))?)
}

/// `clock confirm`: the operator says the wall clock is right now.
pub(crate) fn confirm(store: &SessionStore, out: &Output) -> Result<(), CliError> {
    let before = ClockView::of(store)?;
    let check = store.fs().confirm_clock()?;
    tracing::info!(was_suspect = before.suspect, "an operator confirmed the clock");
    let view = ClockView::from(&check.record);
    Ok(out.result(&view, || {
        let now = rfc3339(check.reading.wall_ms);
        if before.suspect {
            format!("the clock is confirmed at {now}: the suspicion is cleared; the next cleanup purges and expires as usual")
        } else {
            format!("the clock is confirmed at {now} (it was not suspect)")
        }
    })?)
}

fn human(view: &ClockView) -> String {
    match view.warning() {
        Some(warning) => warning,
        None => match view.trusted_at {
            Some(at) => format!("the clock is trusted (last reading taken in {})", rfc3339(at)),
            None => "no clock reading recorded yet".into(),
        },
    }
}
