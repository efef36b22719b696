//! Settings written back into the TOML file's text, keeping everything else in it.

/// The file's text is not TOML. Says where, never what: the line may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not valid TOML (line {line})")]
pub struct NotToml {
    /// The line the parser stopped at, from 1.
    pub line: usize,
}

/// `text` (a TOML file's, possibly empty) with each `(key, value)` of `edits` set:
/// a whole number or `true`/`false` as such, anything else as a string. Comments,
/// order and the other keys are kept, and a changed key keeps its own comment.
pub fn with_settings(text: &str, edits: &[(String, String)]) -> Result<String, NotToml> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| NotToml {
        line: e.span().map_or(1, |span| {
            text[..span.start.min(text.len())].matches('\n').count() + 1
        }),
    })?;
    for (key, raw) in edits {
        let item = match (raw.parse::<i64>(), raw.as_str()) {
            (Ok(n), _) => toml_edit::value(n),
            (_, "true") => toml_edit::value(true),
            (_, "false") => toml_edit::value(false),
            _ => toml_edit::value(raw.as_str()),
        };
        match doc.get_mut(key) {
            Some(existing) if existing.is_value() => {
                let decor = existing.as_value().map(|v| v.decor().clone());
                *existing = item;
                if let (Some(decor), Some(value)) = (decor, existing.as_value_mut()) {
                    *value.decor_mut() = decor;
                }
            }
            _ => doc[key.as_str()] = item,
        }
    }
    Ok(doc.to_string())
}
