//! `cargo xtask ci`.

use crate::{cargo, has_cargo_tool};

/// fmt, clippy, tests, examples, docs: exactly what CI runs.
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
    run_examples()?;
    cargo(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
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
