//! The result of a command: one JSON document with `--json`, human text otherwise.

use std::io::Write;

use serde::Serialize;

/// Prints a command's result.
pub(crate) struct Output {
    /// Whether `--json` was given.
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or `human()` as text.
    pub(crate) fn result<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> std::io::Result<()> {
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
    pub(crate) fn warn(&self, line: &str) {
        eprintln!("warning: {}", session_model::printable_lines(line));
    }
}

/// `n` and the noun in the right number: "1 session", "2 sessions".
pub(crate) fn count(n: usize, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// Whether to colour: `--color always|never` decides; `auto` colours a terminal unless
/// `NO_COLOR` is set to anything but the empty string (no-color.org).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum ColourChoice {
    /// Colour a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColourChoice {
    /// Whether output to a stream that `is_terminal` (or not) gets colour.
    pub(crate) fn enabled(self, is_terminal: bool) -> bool {
        match self {
            ColourChoice::Always => true,
            ColourChoice::Never => false,
            ColourChoice::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nouns_agree_with_their_number() {
        assert_eq!(count(0, "session", "sessions"), "0 sessions");
        assert_eq!(count(1, "session", "sessions"), "1 session");
        assert_eq!(count(2, "problem", "problems"), "2 problems");
    }

    #[test]
    fn explicit_choices_win() {
        assert!(ColourChoice::Always.enabled(false));
        assert!(!ColourChoice::Never.enabled(true));
        assert!(!ColourChoice::Auto.enabled(false));
    }
}
