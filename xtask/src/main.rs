//! `cargo xtask ...`: the workspace's automation, in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask ci`: fmt check, clippy (warnings denied), every test (nextest when
//!   installed, plus doctests), and docs (warnings denied), in that order.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        _ => {
            eprintln!("usage: cargo xtask ci");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(step) => {
            eprintln!("xtask: {step} failed");
            ExitCode::FAILURE
        }
    }
}

fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let shown = format!("cargo {}", args.join(" "));
    eprintln!("==> {shown}");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("{shown} ({e})"))?;
    if status.success() { Ok(()) } else { Err(shown) }
}

fn has_nextest() -> bool {
    Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--check"], &[])?;
    cargo(
        &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
        &[],
    )?;
    // Snapshots are reviewed by people: CI never writes or accepts one.
    let tests_env = [("INSTA_UPDATE", "no")];
    if has_nextest() {
        cargo(&["nextest", "run", "--workspace", "--no-fail-fast"], &tests_env)?;
        cargo(&["test", "--workspace", "--doc"], &tests_env)?;
    } else {
        eprintln!("(cargo-nextest not installed: using cargo test)");
        cargo(&["test", "--workspace", "--no-fail-fast"], &tests_env)?;
    }
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
}
