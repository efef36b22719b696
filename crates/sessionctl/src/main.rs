//! `sessionctl`: the command-line tool over the HL7 capture session store.
//!
//! See CONTRACT.md for the interface; `sessionctl --help` for usage.

mod cli;
mod commands;
mod error;
mod output;
mod settings;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use session_fs::Store;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::output::Output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sessionctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let out = Output { json: cli.json };
    let dir = settings::store_dir(cli.dir.as_deref(), cli.config.as_deref())?;
    // Ids are validated before any file (even the store directory) is touched.
    if let Command::Get { id } | Command::Show { id } | Command::Delete { id } = &cli.command {
        commands::parse_id(id)?;
    }
    // Opened per command: recovery needs the store exclusively, the others share it.
    let store = || Store::open(&dir);
    match cli.command {
        Command::Init => commands::documents::init(&store()?, &out),
        Command::Put { create } => commands::documents::put(&store()?, &out, create),
        Command::Get { id } => commands::documents::get(&store()?, &out, &commands::parse_id(&id)?),
        Command::Show { id } => commands::documents::show(&store()?, &commands::parse_id(&id)?),
        Command::Recover => commands::recovery::recover(&dir, &out),
        Command::Migrate { dry_run, rollback } => {
            commands::migration::migrate(&store()?, &out, dry_run, rollback)
        }
        Command::Verify => commands::recovery::verify(&store()?, &out),
        Command::Delete { id } => commands::documents::delete(&store()?, &out, &commands::parse_id(&id)?),
        Command::List { status } => {
            let rows = commands::list::rows(&store()?, &out, status)?;
            let colour = std::io::stdout().is_terminal();
            Ok(out.result(&rows, || {
                commands::list::table(&rows, session_fs::now_ms(), colour)
            })?)
        }
    }
}
