//! One module per group of commands.

pub(crate) mod cleanup;
pub(crate) mod clock;
pub(crate) mod daemon;
pub(crate) mod documents;
pub(crate) mod list;
pub(crate) mod migration;
pub(crate) mod receiver;
pub(crate) mod recovery;
pub(crate) mod status;
pub(crate) mod submission;

use session_model::SessionId;

use crate::error::CliError;

/// Validates an id given on the command line before any file is touched.
pub(crate) fn parse_id(raw: &str) -> Result<SessionId, CliError> {
    Ok(SessionId::new(raw)?)
}
