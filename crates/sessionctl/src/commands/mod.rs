//! One module per group of commands.

pub mod cleanup;
pub mod clock;
pub mod daemon;
pub mod documents;
pub mod list;
pub mod migration;
pub mod receiver;
pub mod recovery;
pub mod status;
pub mod submission;

use session_model::SessionId;

use crate::error::CliError;

/// Validates an id given on the command line before any file is touched.
pub fn parse_id(raw: &str) -> Result<SessionId, CliError> {
    Ok(SessionId::new(raw)?)
}
