//! The command line, as CONTRACT.md fixes it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use session_model::SubmissionStatus;

/// Store, inspect and deliver HL7 capture sessions.
#[derive(Debug, Parser)]
#[command(name = "sessionctl", version, about)]
pub struct Cli {
    /// Store directory (default: $HL7_SESSIONS_DIR, the config file's `dir`, or ~/.hl7-capture/sessions).
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Configuration file (TOML).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the result as one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the store directory with safe permissions.
    Init,
    /// Save the session document read from stdin (any known version; stored as the current one).
    Put {
        /// Fail if the id already exists.
        #[arg(long)]
        create: bool,
    },
    /// Print a session exactly as it is on disk.
    Get {
        /// Session id.
        id: String,
    },
    /// Print a session upgraded to the current version (nothing is written).
    Show {
        /// Session id.
        id: String,
    },
    /// List sessions.
    List {
        /// Only sessions with this submission status.
        #[arg(long, value_parser = parse_status)]
        status: Option<SubmissionStatus>,
    },
    /// Recover from interrupted writes and damaged files (needs the store to itself).
    Recover,
    /// Check every file without changing anything; exit 1 if anything is wrong.
    Verify,
    /// Upgrade every outdated session to the current version (originals kept in .backup/).
    Migrate {
        /// Report what would change; write nothing.
        #[arg(long, conflicts_with = "rollback")]
        dry_run: bool,
        /// Restore the files the latest migration run changed.
        #[arg(long)]
        rollback: bool,
    },
    /// Move a session to the trash.
    Delete {
        /// Session id.
        id: String,
    },
}

fn parse_status(s: &str) -> Result<SubmissionStatus, String> {
    s.parse()
}
