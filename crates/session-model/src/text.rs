//! Text from documents and file names, made safe to print.
//!
//! A session file is input from outside: its strings (a version, an element id, a
//! field name) may hold terminal escape sequences. Everything the store prints or logs
//! that came from a document goes through [`Printable`], which escapes control
//! characters so that they show as text and never act on a terminal.

use std::fmt;

/// Displays a string with every control character (C0, DEL, C1) escaped as `\u{..}`,
/// and `\` as `\\`, so that the output is one line of inert text.
///
/// ```
/// use session_model::Printable;
/// assert_eq!(Printable("2.0\u{1b}[31m").to_string(), "2.0\\u{1b}[31m");
/// assert_eq!(Printable("session-1").to_string(), "session-1");
/// ```
#[derive(Clone, Copy)]
pub struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            } else if c == '\\' {
                f.write_str("\\\\")?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// `s` with control characters escaped (see [`Printable`]).
pub fn printable(s: &str) -> String {
    Printable(s).to_string()
}

/// `s` with control characters escaped except line breaks and tabs: for multi-line
/// messages (an error with its causes) that must still be inert on a terminal.
pub fn printable_lines(s: &str) -> String {
    s.split('\n')
        .map(|line| line.split('\t').map(printable).collect::<Vec<_>>().join("\t"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_character_is_escaped() {
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            let shown = printable(&format!("a{c}b"));
            assert!(!shown.chars().any(char::is_control), "{c:?} -> {shown:?}");
            assert!(shown.starts_with('a') && shown.ends_with('b'));
        }
        assert_eq!(printable("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(
            printable("a\\u{1b}"),
            "a\\\\u{1b}",
            "an escape-looking text stays distinct"
        );
        assert_eq!(printable("é日本"), "é日本");
    }

    #[test]
    fn lines_keep_their_breaks_only() {
        assert_eq!(printable_lines("a\n\tb\u{1b}"), "a\n\tb\\u{1b}");
        assert_eq!(printable_lines("a\r\nb"), "a\\u{d}\nb");
    }
}
