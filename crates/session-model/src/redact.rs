//! `Debug` for what may be patient data: message text and bytes show their size, never
//! their content, so that no `{:?}` in a log or a panic can leak them.

use std::fmt;

/// A text shown by its length.
pub(crate) struct TextSize<'a>(pub &'a str);

impl fmt::Debug for TextSize<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// An optional text shown by its length.
pub(crate) struct MaybeTextSize<'a>(pub Option<&'a str>);

impl fmt::Debug for MaybeTextSize<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(text) => write!(f, "Some({:?})", TextSize(text)),
            None => f.write_str("None"),
        }
    }
}

/// Texts shown by how many there are and their total length.
pub(crate) struct TextsSize<'a>(pub &'a [String]);

impl fmt::Debug for TextsSize<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes: usize = self.0.iter().map(String::len).sum();
        write!(f, "<{} texts, {bytes} bytes>", self.0.len())
    }
}
