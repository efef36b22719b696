//! Running `sessionctl` as a real process, and what a person sees of it.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

/// `sessionctl` with no `HL7_*` variable from the developer's environment.
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessionctl"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HL7_") {
            command.env_remove(name);
        }
    }
    command
}

pub fn sessionctl(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = command()
        .arg("--dir")
        .arg(dir)
        .args(args)
        // Logs carry timestamps; the transcripts cover results and errors.
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a person sees: exit code, stdout and stderr, with the temp dir and relative times redacted.
pub fn transcript(dir: &Path, out: &Output) -> String {
    let raw = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap(),
        text(&out.stdout),
        text(&out.stderr)
    );
    raw.replace(&dir.display().to_string(), "[DIR]")
}

pub fn relative_times() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        r"\d+ (day|hour|minute)s? ago|in \d+ (day|hour|minute)s?|just now",
        "[WHEN]",
    );
    settings
}

pub fn put_fixture(dir: &Path, rel: &str) -> Output {
    sessionctl(
        dir,
        &["--json", "put"],
        Some(&std::fs::read(fixture(rel)).unwrap()),
    )
}
