//! Errors with the exit code they map to: 1 failure, 2 bad usage or bad input.

use session_fs::FsError;
use session_model::InvalidSessionId;
use session_store::StoreError;

/// A command's failure, printed as one line on stderr.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad usage or bad input: exit 2.
    #[error("{0}")]
    BadInput(String),
    /// The command could not do its job: exit 1.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::BadInput(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

impl From<InvalidSessionId> for CliError {
    fn from(e: InvalidSessionId) -> Self {
        CliError::BadInput(e.to_string())
    }
}

impl From<FsError> for CliError {
    fn from(e: FsError) -> Self {
        CliError::Failed(e.to_string())
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Failed(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Failed(e.to_string())
    }
}
