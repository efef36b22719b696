//! `cargo xtask ...`: the workspace's automation, in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask ci [--stress]`: fmt check, clippy (warnings denied), every test
//!   (nextest when installed, plus doctests), every example, and docs (warnings denied),
//!   in that order; `--stress` keeps every core busy meanwhile.
//! - `cargo xtask release --dry-run`: checks the workspace can be published crate by
//!   crate; without `--dry-run` it also bumps the version, commits and tags. It never
//!   publishes.
//! - `cargo xtask bench`: the benchmarks, with a table written to BENCHMARKS.md.
//! - `cargo xtask dist`: the Debian package (cargo-deb) with the hardened systemd unit.
//! - `cargo xtask mutants [--iterate [--re=REGEX]] [--report-only] [CRATE...]`: mutation
//!   testing, each crate by its own tests, written to MUTANTS.md (too slow for CI: before
//!   a release, after a core change).

mod bench;
mod ci;
mod dist;
mod mutants;
mod release;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = &args[args.len().min(1)..];
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::ci_with(rest),
        Some("release") => release::release(rest),
        Some("bench") => bench::bench(rest),
        Some("mutants") => mutants::mutants(rest),
        Some("dist") => dist::dist(rest),
        _ => {
            eprintln!(
                "usage: cargo xtask ci [--stress] | release [--dry-run] [--version X.Y.Z] | bench [--quick] | mutants | dist"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(step) => {
            eprintln!("xtask: {step}");
            ExitCode::FAILURE
        }
    }
}

/// Runs cargo with `args`, failing with the command line.
pub fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let shown = format!("cargo {}", args.join(" "));
    eprintln!("==> {shown}");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("{shown} ({e})"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed"))
    }
}

/// Whether `cargo <subcommand> --version` works.
pub fn has_cargo_tool(subcommand: &str) -> bool {
    Command::new("cargo")
        .args([subcommand, "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The workspace root.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_owned()
}
