//! The command line, as CONTRACT.md fixes it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use session_model::SubmissionStatus;

use crate::output::ColourChoice;

/// Store, inspect and deliver HL7 capture sessions.
#[derive(Debug, Parser)]
#[command(name = "sessionctl", version, about)]
pub(crate) struct Cli {
    /// Store directory (default: $HL7_SESSIONS_DIR, the config file's `dir`, or ~/.hl7-capture/sessions).
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Configuration file (TOML; default: $HL7_CONFIG when set).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "HL7_CONFIG",
        hide_env_values = true
    )]
    pub config: Option<PathBuf>,
    /// Override one configuration key (repeatable), e.g. --set concurrency=4.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the result as one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Colour on a terminal: auto (unless NO_COLOR is set), always or never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = ColourChoice::Auto,
        value_name = "WHEN",
        hide_possible_values = true
    )]
    pub color: ColourChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the store directory with safe permissions.
    Init,
    /// Save a session document (any known version; stored as the current one).
    Put {
        /// Fail if the id already exists.
        #[arg(long)]
        create: bool,
        /// The document's file; `-` or nothing reads stdin.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
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
    /// Move a session to the trash.
    Delete {
        /// Session id.
        id: String,
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
        /// Restore the files the latest migration run changed and nobody changed since
        /// (needs the store to itself: not while `run` is active).
        #[arg(long)]
        rollback: bool,
        /// With --rollback: also restore files changed since, keeping each newer copy in
        /// .backup/ (a recorded delivery is never undone, a deleted session never restored).
        #[arg(long, requires = "rollback")]
        force: bool,
    },
    /// Expire old sessions and empty old trash.
    Cleanup {
        /// Report what would happen; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Take this time (epoch ms) as now, as stated: the clock is neither judged nor recorded.
        #[arg(long, value_name = "MS")]
        now: Option<u64>,
    },
    /// Set a session's submission back to pending, attempts reset.
    Retry {
        /// Session id.
        id: String,
    },
    /// Never submit a session.
    Ignore {
        /// Session id.
        id: String,
    },
    /// Run the submission worker.
    Submit {
        /// The REST endpoint (else the configured one).
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// One pass, then exit (the only mode today; kept for the contract).
        #[arg(long)]
        once: bool,
    },
    /// Counts by status, the oldest undelivered session, the last cleanup.
    Status,
    /// Whether the store trusts the clock; `clock confirm` says it is right now.
    Clock {
        /// `show` (the default) or `confirm`.
        #[arg(value_enum, default_value = "show")]
        action: ClockAction,
    },
    /// Print the effective configuration (secrets redacted), or a commented example file.
    Config {
        /// Print a commented TOML file with every key and its default instead.
        #[arg(long)]
        example: bool,
    },
    /// The daemon: lock, recover, migrate, then cleanup and submission until SIGINT/SIGTERM;
    /// also captures when capture_listen and capture_forward are set.
    ///
    /// The lab's page and the local API are at http://127.0.0.1:8470/ (setting
    /// http_listen). Completed sessions are delivered to the setting endpoint
    /// (HL7_ENDPOINT, or --set endpoint=URL); without one, nothing is sent. Installed as
    /// a service, it runs as `hl7-session-store.service`.
    Run,
    /// A TCP relay between analyzers (connecting to --listen) and the LIS (--forward):
    /// forwards every byte unchanged and records each transmission as a session.
    Capture {
        /// Where analyzers connect, HOST:PORT (config capture_listen).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// The LIS, HOST:PORT (config capture_forward).
        #[arg(long, value_name = "ADDR")]
        forward: Option<String>,
    },
    /// Record the sessions of a pcap or pcapng capture of an analyzer–LIS conversation.
    ImportPcap {
        /// The capture file (tcpdump, Wireshark).
        file: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff); `cargo xtask release` writes it to target/man/.
    #[command(hide = true)]
    Man,
    /// A reference HTTP receiver for the submission request, for testing against.
    Receiver {
        /// Address to listen on, HOST:PORT (`localhost:8080` or `127.0.0.1:0` too).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Directory for accepted bodies, one file per idempotency key.
        #[arg(long)]
        out: PathBuf,
        /// Answer the first N requests with 503.
        #[arg(long, default_value_t = 0)]
        fail_first: u32,
        /// Answer every request with this status instead of 201.
        #[arg(long, value_parser = clap::value_parser!(u16).range(100..=599))]
        status: Option<u16>,
        /// Wait this long before answering.
        #[arg(long, default_value_t = 0, value_name = "MS")]
        delay: u64,
    },
}

impl Command {
    /// The session id the command names, to validate before anything is touched.
    pub(crate) fn id(&self) -> Option<&str> {
        match self {
            Command::Get { id }
            | Command::Show { id }
            | Command::Delete { id }
            | Command::Retry { id }
            | Command::Ignore { id } => Some(id),
            _ => None,
        }
    }
}

/// What `sessionctl clock` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ClockAction {
    /// Show what the store knows of its clock (read only).
    Show,
    /// An operator says the wall clock is right now: a suspicion clears, and purging,
    /// trashing and expiry resume at the next cleanup.
    Confirm,
}

fn parse_status(s: &str) -> Result<SubmissionStatus, String> {
    s.parse()
}
