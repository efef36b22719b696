//! The store's performance figures, each measured against its baseline in the same run.
//!
//! Run through `cargo xtask bench`, which builds in release mode, runs this binary on the
//! real disk under `target/bench-work`, and writes the table to `BENCHMARKS.md`.

mod api;
mod capture;
mod daemon;
mod data;
mod figures;
mod import;
mod measure;
mod storage;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How much work each figure does.
#[derive(Clone, Copy)]
pub struct Settings {
    pub session_bytes: usize,
    pub single_saves: usize,
    pub threads: usize,
    pub saves_per_thread: usize,
    pub hot_saves: usize,
    pub store_files: usize,
    pub startup_runs: usize,
    pub decode_runs: usize,
    pub rounds: usize,
    pub daemon_sessions: usize,
    pub daemon_puts: usize,
    pub idle_window: Duration,
    /// Lockstep sessions of 10 messages the relay figures send.
    pub relay_sessions: usize,
    /// Legacy files the daemon migrates at start-up (and a tenth of them).
    pub migration_sessions: usize,
    /// Held LIS segments `import-pcap` reads (and a tenth of them).
    pub import_segments: usize,
}

/// One benchmark, producing its rows.
type Figure<'a> = Box<dyn Fn() -> Result<Vec<Row>, String> + 'a>;

/// One line of the table.
pub struct Row {
    pub figure: String,
    pub ours: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub met: bool,
}

impl Row {
    /// A time against a baseline time; met when `ours / base <= limit`.
    pub fn ratio(
        figure: &str,
        ours: String,
        baseline: String,
        o: Duration,
        b: Duration,
        target: &str,
        limit: f64,
    ) -> Row {
        let r = o.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE);
        Row {
            figure: figure.into(),
            ours,
            baseline,
            ratio: format!("{r:.2} x"),
            target: target.into(),
            met: r <= limit,
        }
    }

    /// A rate against a baseline rate; met when `ours / base >= limit`.
    pub fn higher(
        figure: &str,
        ours: String,
        baseline: String,
        o: f64,
        b: f64,
        target: &str,
        limit: f64,
    ) -> Row {
        let r = o / b.max(f64::MIN_POSITIVE);
        Row {
            figure: figure.into(),
            ours,
            baseline,
            ratio: format!("{r:.2} x"),
            target: target.into(),
            met: r >= limit,
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // First: the helper's own arguments hold the child's (`--child-migrate`...).
    if let Some(i) = args.iter().position(|a| a == "--child-peak") {
        return match measure::child_peak(&args[i + 1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(i) = args.iter().position(|a| a == "--child-migrate") {
        return match args
            .get(i + 1)
            .map(|d| figures::child_migrate(std::path::Path::new(d)))
        {
            Some(Ok(())) => ExitCode::SUCCESS,
            Some(Err(e)) => {
                eprintln!("child: {e}");
                ExitCode::FAILURE
            }
            None => ExitCode::from(2),
        };
    }
    let quick = args.iter().any(|a| a == "--quick");
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    let work = value_of("--work").unwrap_or_else(|| PathBuf::from("target/bench-work"));
    let sessionctl = value_of("--sessionctl");
    let settings = if quick {
        Settings {
            session_bytes: 10_000,
            single_saves: 60,
            threads: 8,
            saves_per_thread: 30,
            hot_saves: 200,
            store_files: 1_000,
            startup_runs: 3,
            decode_runs: 5,
            rounds: 3,
            daemon_sessions: 10_000,
            daemon_puts: 20,
            idle_window: Duration::from_secs(5),
            relay_sessions: 100,
            migration_sessions: 5_000,
            import_segments: 6_400,
        }
    } else {
        Settings {
            session_bytes: 10_000,
            single_saves: 400,
            threads: 8,
            saves_per_thread: 150,
            hot_saves: 1_000,
            store_files: 10_000,
            startup_runs: 5,
            decode_runs: 21,
            rounds: 5,
            daemon_sessions: if args.iter().any(|a| a == "--million") {
                1_000_000
            } else {
                100_000
            },
            daemon_puts: 100,
            idle_window: Duration::from_secs(60),
            relay_sessions: 1_000,
            migration_sessions: 100_000,
            import_segments: 64_000,
        }
    };
    let me = match std::env::current_exe() {
        Ok(me) => me,
        Err(e) => {
            eprintln!("benchmarks: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    let figures: [(&str, Figure); 12] = [
        (
            "single writer",
            Box::new(|| figures::single_writer(&work, &settings)),
        ),
        (
            "parallel writers",
            Box::new(|| figures::parallel_writers(&work, &settings)),
        ),
        ("one hot id", Box::new(|| figures::one_hot_id(&work, &settings))),
        ("start-up", Box::new(|| figures::startup(&work, &settings))),
        (
            "migration",
            Box::new(|| figures::migration_and_memory(&work, &settings, &me, sessionctl.as_deref())),
        ),
        ("big fixture", Box::new(|| figures::big_fixture(&settings))),
        ("capture appends", Box::new(|| capture::appends(&work, &settings))),
        (
            "daemon at scale",
            Box::new(|| daemon::at_scale(&work, &settings, sessionctl.as_deref())),
        ),
        (
            "start-up migration",
            Box::new(|| daemon::startup_migration(&work, &settings, sessionctl.as_deref())),
        ),
        (
            "api at scale",
            Box::new(|| api::at_scale(&work, &settings, sessionctl.as_deref())),
        ),
        (
            "capture relay",
            Box::new(|| capture::relay(&work, &settings, sessionctl.as_deref())),
        ),
        ("pcap import", Box::new(|| import::hostile(&work, &settings))),
    ];
    // `--only NAME`: one figure (e.g. `--only "daemon at scale" --million`).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    for (name, run) in figures {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        eprintln!("bench: {name}...");
        match run() {
            Ok(mut r) => rows.append(&mut r),
            Err(e) => {
                eprintln!("benchmarks: {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    println!("| figure | ours | baseline (same run) | ratio | target | met |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let met = if r.met { "yes" } else { "**no**" };
        println!(
            "| {} | {} | {} | {} | {} | {met} |",
            r.figure, r.ours, r.baseline, r.ratio, r.target
        );
    }
    ExitCode::SUCCESS
}
