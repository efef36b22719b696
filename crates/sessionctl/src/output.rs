//! The result of a command: one JSON document with `--json`, human text otherwise.

use std::io::Write;

use serde::Serialize;

/// Prints a command's result.
pub struct Output {
    /// Whether `--json` was given.
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or `human()` as text.
    pub fn result<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer(&mut out, value)?;
            writeln!(out)
        } else {
            let text = human();
            if text.ends_with('\n') {
                out.write_all(text.as_bytes())
            } else {
                writeln!(out, "{text}")
            }
        }
    }

    /// A diagnostic on stderr (never stdout, so `--json` output stays parseable).
    pub fn warn(&self, line: &str) {
        eprintln!("warning: {}", session_model::printable_lines(line));
    }
}
