//! `clock [show|confirm]`: whether the store trusts the wall clock.

use session_api::views::ClockView;
use session_fs::clock::rfc3339;
use session_store::SessionStore;

use crate::error::CliError;
use crate::output::Output;

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
