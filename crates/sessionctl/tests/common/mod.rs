//! Running `sessionctl` as a real process, and what a person sees of it.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");

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

/// The reference receiver as a real process on 127.0.0.1.
pub struct Receiver {
    child: std::process::Child,
    pub url: String,
    pub out: std::path::PathBuf,
}

impl Receiver {
    pub fn start(root: &Path, extra: &[&str]) -> Receiver {
        use std::io::BufRead;
        let out = root.join("received");
        let mut child = command()
            .args(["receiver", "--listen", "127.0.0.1:0", "--out"])
            .arg(&out)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .expect("the receiver announces its address")
            .to_owned();
        Receiver { child, url, out }
    }

    pub fn accepted(&self) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(&self.out)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
