//! Refusing numbers that would not survive a decode and encode unchanged.
//!
//! Unknown fields are kept as `serde_json` values, which hold integers within 64 bits
//! and `f64`s. A number outside that (an integer above 2^64 or below -2^63, `-0`,
//! `1E2`, `1.50`) would be written back as a different number, silently. The store
//! refuses such a document instead: it keeps what it does not know exactly, or not at all.

/// The byte offset of the first number in `bytes` (a JSON text that already parsed)
/// that `serde_json` would not write back with the same text.
pub(crate) fn first_inexact_number(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip the string: jump from quote or backslash to the next one.
                i += 1;
                loop {
                    i += memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
                    if bytes[i] == b'"' {
                        i += 1;
                        break;
                    }
                    i += 2;
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                let mut plain = bytes[i] != b'-';
                while i < bytes.len() && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    plain &= bytes[i].is_ascii_digit();
                    i += 1;
                }
                // The common case, every byte of a Buffer's data: a plain integer of at
                // most 19 digits always fits in a u64 and is written back as it is.
                if plain && i - start <= 19 {
                    continue;
                }
                let token = std::str::from_utf8(&bytes[start..i]).ok()?;
                if !round_trips(token) {
                    return Some(start);
                }
            }
            _ => i += 1,
        }
    }
    None
}

fn round_trips(token: &str) -> bool {
    if !token.contains(['.', 'e', 'E']) {
        return match token.strip_prefix('-') {
            Some("0") => false,
            Some(_) => token.parse::<i64>().is_ok(),
            None => token.parse::<u64>().is_ok(),
        };
    }
    match token.parse::<f64>() {
        Ok(value) if value.is_finite() => serde_json::to_string(&value).is_ok_and(|written| written == token),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_serde_writes_back_unchanged_pass() {
        for doc in [
            r#"{"a": 0, "b": -1, "c": 18446744073709551615, "d": -9223372036854775808}"#,
            r#"{"a": 1.5, "b": 100.0, "c": -0.25, "d": "1E2 -0 1.50 in a string", "e": [1, 2]}"#,
            r#"{"a\"1E2": 3}"#,
        ] {
            assert_eq!(first_inexact_number(doc.as_bytes()), None, "{doc}");
        }
    }

    #[test]
    fn a_number_at_the_very_end_is_read_to_its_end_and_no_further() {
        assert_eq!(first_inexact_number(b"123"), None);
        assert_eq!(first_inexact_number(b"-0"), Some(0));
        assert_eq!(first_inexact_number(b"[1, 1E2"), Some(4));
    }

    #[test]
    fn numbers_that_would_change_are_found() {
        for (doc, at) in [
            (r#"{"a": 18446744073709551616}"#, 6),
            (r#"{"a": -9223372036854775809}"#, 6),
            (r#"{"a": -0}"#, 6),
            (r#"{"a": 1E2}"#, 6),
            (r#"{"a": 1e2}"#, 6),
            (r#"{"a": 1.50}"#, 6),
            (r#"{"x": "s", "a": [1, 2.0e0]}"#, 20),
            (r#"{"a": 9007199254740993.0}"#, 6),
        ] {
            assert_eq!(first_inexact_number(doc.as_bytes()), Some(at), "{doc}");
        }
    }
}
