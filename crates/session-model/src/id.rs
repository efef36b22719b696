//! The validated session id: the only way an id becomes a file name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest id the store accepts, in bytes (all allowed characters are ASCII).
pub const MAX_ID_LEN: usize = 128;

/// A session id that is safe to use as a file name.
///
/// 1 to 128 characters of `A-Z a-z 0-9 . _ -`, not starting with `.`. Because the
/// only way to build one is [`SessionId::new`] (or parsing / deserializing, which call
/// it), a value of this type can never name a path outside the store directory, a
/// hidden file, or a file with a NUL in its name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

/// Why a string is not a valid [`SessionId`].
///
/// It never quotes the rejected string: ids are typed by hand, and what was typed can
/// be a patient's name or birth date. It says how long it was and which rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session id ({length} character{}): {problem}", if *.length == 1 { "" } else { "s" })]
#[non_exhaustive]
pub struct InvalidSessionId {
    /// How many characters the rejected id had.
    pub length: usize,
    /// What is wrong with it.
    pub problem: IdProblem,
}

/// The rule a rejected id broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdProblem {
    /// The id is the empty string.
    #[error("it is empty")]
    Empty,
    /// The id is longer than [`MAX_ID_LEN`].
    #[error("it is longer than 128 characters")]
    TooLong,
    /// The id starts with `.` (hidden files, `.` and `..`).
    #[error("it starts with '.'")]
    LeadingDot,
    /// The id holds a character outside `A-Z a-z 0-9 . _ -`.
    #[error("it contains {0:?}; only A-Z a-z 0-9 . _ - are allowed")]
    BadCharacter(char),
}

impl SessionId {
    /// Validates `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidSessionId> {
        let id = id.into();
        match Self::problem(&id) {
            None => Ok(Self(id)),
            Some(problem) => Err(InvalidSessionId {
                length: id.chars().count(),
                problem,
            }),
        }
    }

    fn problem(id: &str) -> Option<IdProblem> {
        if id.is_empty() {
            return Some(IdProblem::Empty);
        }
        if let Some(bad) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Some(IdProblem::BadCharacter(bad));
        }
        if id.len() > MAX_ID_LEN {
            return Some(IdProblem::TooLong);
        }
        if id.starts_with('.') {
            return Some(IdProblem::LeadingDot);
        }
        None
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of this session's live file inside the store directory: `<id>.json`.
    pub fn file_name(&self) -> String {
        format!("{}.json", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({:?})", self.0)
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for SessionId {
    type Err = InvalidSessionId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for SessionId {
    type Error = InvalidSessionId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_contract_alphabet() {
        for ok in ["session-1", "a", "A.b_c-9", "x.json", &"a".repeat(128)] {
            assert_eq!(SessionId::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_hostile_ids_with_the_rule_they_break() {
        let cases: [(&str, IdProblem); 9] = [
            ("", IdProblem::Empty),
            ("../x", IdProblem::BadCharacter('/')),
            ("a/b", IdProblem::BadCharacter('/')),
            ("a\\b", IdProblem::BadCharacter('\\')),
            (".hidden", IdProblem::LeadingDot),
            ("..", IdProblem::LeadingDot),
            ("a\0b", IdProblem::BadCharacter('\0')),
            ("sé", IdProblem::BadCharacter('é')),
            ("a b", IdProblem::BadCharacter(' ')),
        ];
        for (id, problem) in cases {
            assert_eq!(SessionId::new(id).unwrap_err().problem, problem, "{id:?}");
        }
        assert_eq!(
            SessionId::new("a".repeat(129)).unwrap_err().problem,
            IdProblem::TooLong
        );
    }

    #[test]
    fn error_message_names_the_character_escaped_and_not_the_id() {
        let err = SessionId::new("ab\0cd").unwrap_err().to_string();
        assert!(err.contains(r"'\0'"), "{err}");
        assert!(err.contains("(5 characters)"), "{err}");
        assert!(!err.contains("ab") && !err.contains("cd"), "{err}");
        assert_eq!(
            SessionId::new(".").unwrap_err().to_string(),
            "invalid session id (1 character): it starts with '.'"
        );
        assert!(
            SessionId::new("")
                .unwrap_err()
                .to_string()
                .contains("(0 characters)")
        );
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<SessionId>(r#""../etc/passwd""#).is_err());
        let id: SessionId = serde_json::from_str(r#""session-7""#).unwrap();
        assert_eq!(id.file_name(), "session-7.json");
    }
}
