//! `cargo xtask ci`.

use crate::{cargo, has_cargo_tool};

/// Keeps every core busy until dropped: `cargo xtask ci --stress` runs the whole suite
/// under it, to find tests that pass only on an idle machine.
struct CpuHog {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuHog {
    fn start() -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                })
            })
            .collect();
        eprintln!("(stress: {cores} busy threads for the whole run)");
        CpuHog { stop, threads }
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// `cargo xtask ci [--stress]`.
pub(crate) fn ci_with(args: &[String]) -> Result<(), String> {
    let _hog = args.iter().any(|a| a == "--stress").then(CpuHog::start);
    ci()
}

/// fmt, clippy, tests, examples, docs: exactly what CI runs.
pub(crate) fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--check"], &[])?;
    cargo(
        &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
        &[],
    )?;
    // Snapshots are reviewed by people: CI never writes or accepts one.
    let tests_env = [("INSTA_UPDATE", "no")];
    if has_cargo_tool("nextest") {
        cargo(&["nextest", "run", "--workspace", "--no-fail-fast"], &tests_env)?;
        cargo(&["test", "--workspace", "--doc"], &tests_env)?;
    } else {
        eprintln!("(cargo-nextest not installed: using cargo test)");
        cargo(&["test", "--workspace", "--no-fail-fast"], &tests_env)?;
    }
    run_examples()?;
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    warn_of_stale_mutants();
    warn_of_skipped_programs();
    Ok(())
}

/// Outside CI, a test whose program is missing skips with a word on stderr that scrolls
/// away: say it again, loudly, last.
fn warn_of_skipped_programs() {
    let missing: Vec<&str> = [
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromedriver", "chromium-driver"),
        ("/usr/bin/strace", "strace"),
        ("/usr/bin/faketime", "faketime"),
        ("/usr/bin/script", "bsdutils"),
    ]
    .into_iter()
    .filter(|(path, _)| !std::path::Path::new(path).exists())
    .map(|(_, package)| package)
    .collect();
    if missing.is_empty() {
        return;
    }
    let line = "!".repeat(78);
    eprintln!("\n{line}");
    eprintln!(
        "WARNING: tests that need these programs were SKIPPED: {}",
        missing.join(", ")
    );
    eprintln!("         (the browser tests, the fsync-order test or the wrong-clock tests).");
    eprintln!(
        "         Install them to run the whole suite: apt-get install {}",
        missing.join(" ")
    );
    eprintln!("         Under CI they are required and their absence fails the run.");
    eprintln!("{line}\n");
}

/// Names each crate whose MUTANTS.md row was not measured on its current source: the
/// report says when it is stale (mutation runs are too slow for CI).
fn warn_of_stale_mutants() {
    match crate::mutants::stale_rows() {
        Ok(stale) if stale.is_empty() => {
            eprintln!("mutants: every MUTANTS.md row matches its crate's source")
        }
        Ok(stale) => {
            for (krate, why) in stale {
                eprintln!("WARNING: MUTANTS.md is STALE for {krate}: {why} (`cargo xtask mutants {krate}`)");
            }
        }
        Err(e) => eprintln!("WARNING: cannot check MUTANTS.md against the source: {e}"),
    }
    match crate::mutants::report_is_current() {
        Ok(true) => {}
        Ok(false) => eprintln!(
            "WARNING: MUTANTS.md is not what the kept outcomes make (edited by hand?): `cargo xtask mutants --report-only`"
        ),
        Err(e) => eprintln!("WARNING: MUTANTS.md cannot be made from the kept outcomes: {e}"),
    }
}

/// Builds and runs every library crate's examples: a consuming team's first minutes
/// must keep working.
fn run_examples() -> Result<(), String> {
    let crates = crate::root().join("crates");
    let mut examples = Vec::new();
    for krate in std::fs::read_dir(&crates).map_err(|e| format!("{}: {e}", crates.display()))? {
        let krate = krate.map_err(|e| e.to_string())?.path();
        let Ok(files) = std::fs::read_dir(krate.join("examples")) else {
            continue;
        };
        for file in files {
            let file = file.map_err(|e| e.to_string())?.path();
            if file.extension().is_some_and(|e| e == "rs") {
                let package = krate
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let example = file
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                examples.push((package, example));
            }
        }
    }
    examples.sort();
    for (package, example) in &examples {
        cargo(&["run", "--quiet", "-p", package, "--example", example], &[])?;
    }
    Ok(())
}
