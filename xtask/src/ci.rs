//! `cargo xtask ci`.

use crate::{cargo, has_cargo_tool};

/// fmt, clippy, tests, docs: exactly what CI runs.
pub fn ci() -> Result<(), String> {
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
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
}
