//! `sessionctl`: the command-line tool and daemon over the HL7 capture session store.
//!
//! See CONTRACT.md for the interface and `sessionctl --help` for usage. Results go to
//! stdout (one JSON document with `--json`), diagnostics to stderr; exit codes are 0
//! (success), 1 (failure) and 2 (bad usage or bad input).

mod capture;
mod cli;
mod commands;
mod config;
mod error;
mod logging;
mod output;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use session_fs::Store;
use session_store::SessionStore;

use crate::cli::{Cli, Command};
use crate::commands::{
    cleanup, clock, daemon, documents, list, migration, receiver, recovery, status, submission,
};
use crate::config::Overrides;
use crate::error::CliError;
use crate::output::Output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Errors may quote file names and document strings: never raw on a terminal.
            eprintln!("sessionctl: {}", session_model::printable_lines(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let out = Output { json: cli.json };
    // These two need neither configuration nor a store.
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "sessionctl", &mut std::io::stdout());
            return Ok(());
        }
        Command::Man => {
            let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            return Ok(page.render(&mut std::io::stdout())?);
        }
        _ => {}
    }
    // Ids are validated before any file (even the store directory) is touched.
    if let Some(id) = cli.command.id() {
        commands::parse_id(id)?;
    }
    let endpoint = match &cli.command {
        Command::Submit { endpoint, .. } => endpoint.clone(),
        _ => None,
    };
    let mut set = cli.set.clone();
    if let Command::Capture { listen, forward } = &cli.command {
        // The flags are the configuration keys, checked the same way.
        set.extend(listen.iter().map(|v| format!("capture_listen={v}")));
        set.extend(forward.iter().map(|v| format!("capture_forward={v}")));
    }
    let overrides = Overrides {
        dir: cli.dir.clone(),
        set,
        endpoint,
    };
    let config = config::resolve(cli.config.as_deref(), &overrides).map_err(|e| match cli.command {
        Command::Run => CliError::Failed(e.to_string()),
        _ => e,
    })?;
    // The long-running commands log at the configured level; the others stay quiet.
    let long_running = matches!(
        cli.command,
        Command::Run | Command::Capture { .. } | Command::Receiver { .. }
    );
    let level = if long_running {
        config.settings().log_level.as_str()
    } else {
        "warn"
    };
    let log_dir = if long_running {
        config.settings().log_dir.clone()
    } else {
        None
    };
    let ansi = cli.color.enabled(std::io::stderr().is_terminal());
    let _logs = logging::init(level, &config.settings().log_format, ansi, log_dir.as_deref())?;

    let dir = crate::config::store_dir(&config)?;
    // Opened per command: recovery needs the store exclusively, the others share it,
    // and the read-only commands create and change nothing (not even a missing store).
    let typed = |fs: Store| SessionStore::new(fs, config.settings().decode_options());
    // A command that writes takes a clock reading into the store's record first, so
    // that a jump of the wall clock shows against this boot's earlier readings.
    let store = || {
        let fs = Store::open(&dir)?;
        if let Err(e) = fs.note_clock() {
            tracing::warn!(error = %e, "could not update the clock record");
        }
        Ok::<_, session_fs::FsError>(typed(fs))
    };
    let read_only = || Store::options().read_only().open(&dir).map(typed);
    match cli.command {
        Command::Init => documents::init(&store()?, &out),
        Command::Put { create, file } => documents::put(&store()?, &out, create, file.as_deref()),
        Command::Get { id } => documents::get(&read_only()?, &out, &commands::parse_id(&id)?),
        Command::Show { id } => documents::show(&read_only()?, &commands::parse_id(&id)?),
        Command::List { status } => {
            let colour = cli.color.enabled(std::io::stdout().is_terminal());
            list::print(&read_only()?, &out, status, colour)
        }
        Command::Delete { id } => documents::delete(&store()?, &out, &commands::parse_id(&id)?),
        Command::Recover => recovery::recover(&dir, config.settings().decode_options(), &out),
        Command::Verify => recovery::verify(&read_only()?, &out),
        Command::Migrate {
            rollback: true,
            force,
            ..
        } => migration::rollback(&dir, &config, &out, force),
        Command::Migrate { dry_run, .. } => migration::migrate(&store()?, &out, dry_run),
        Command::Cleanup { dry_run, now } => cleanup::cleanup(&store()?, &config, &out, dry_run, now),
        Command::Retry { id } => submission::retry(&store()?, &out, &commands::parse_id(&id)?),
        Command::Ignore { id } => submission::ignore(&store()?, &out, &commands::parse_id(&id)?),
        Command::Submit { .. } => submission::submit(&store()?, &config, &out),
        Command::Status => status::status(&read_only()?, &out, &session_api::status_options(&config)),
        Command::Clock { action } => match action {
            cli::ClockAction::Show => clock::show(&read_only()?, &out),
            cli::ClockAction::Confirm => clock::confirm(&store()?, &out),
        },
        Command::Config { example: true } => {
            print!("{}", session_daemon::settings::example_toml());
            Ok(())
        }
        Command::Config { example: false } => {
            let shown = config::shown(&config);
            let read = match config.file_read() {
                Some(file) => format!("settings read from {}", file.display()),
                None => "no configuration file was read (--config FILE, HL7_CONFIG, or ~/.config/hl7-capture/sessionctl.toml)".to_owned(),
            };
            Ok(out.result(&shown, || format!("{read}\n{}", config::shown_table(&shown)))?)
        }
        // A daemon's start-up failure is exit 1 whatever its cause, as supervisors expect.
        Command::Run => daemon::run(&config).map_err(|e| CliError::Failed(e.to_string())),
        Command::Capture { .. } => capture::run(&config),
        Command::ImportPcap { file } => {
            let recorder = session_capture::Recorder::new(store()?);
            let report = capture::pcap::import(
                &recorder,
                &file,
                config.settings().capture_framing,
                config.settings().markers(),
            )?;
            Ok(out.result(&report, || {
                format!(
                    "{} sessions from {} connections: {} complete, {} cut off; {} packets skipped (not TCP), {} bytes missing from the capture",
                    report.sessions,
                    report.connections,
                    report.complete,
                    report.interrupted,
                    report.skipped_packets,
                    report.missing_bytes
                )
            })?)
        }
        Command::Completions { .. } | Command::Man => Ok(()),
        Command::Receiver {
            listen,
            out: out_dir,
            fail_first,
            status,
            delay,
        } => receiver::receiver(
            listen,
            receiver::Behaviour {
                out: out_dir,
                fail_first,
                status,
                delay: Duration::from_millis(delay),
            },
        ),
    }
}
