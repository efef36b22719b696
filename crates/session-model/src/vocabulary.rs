//! Words shared by every version: which way an element went, and what it was.

use serde::{Deserialize, Serialize};

/// Which way a framed element travelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Direction {
    /// `device-to-pc`: from the analyzer to the capture PC.
    DeviceToPc,
    /// `pc-to-device`: from the capture PC to the analyzer.
    PcToDevice,
    /// A value this build does not know, kept as written.
    Other(String),
}

impl From<String> for Direction {
    fn from(value: String) -> Self {
        match value.as_str() {
            "device-to-pc" => Self::DeviceToPc,
            "pc-to-device" => Self::PcToDevice,
            _ => Self::Other(value),
        }
    }
}

impl From<Direction> for String {
    fn from(value: Direction) -> Self {
        match value {
            Direction::DeviceToPc => "device-to-pc".into(),
            Direction::PcToDevice => "pc-to-device".into(),
            Direction::Other(other) => other,
        }
    }
}

/// What a framed element is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ElementKind {
    /// `start`: the `0x05` (ENQ) that opens a transmission.
    Start,
    /// `ack`: the `0x06` acknowledgement.
    Ack,
    /// `end`: the `0x04` (EOT) that closes a transmission.
    End,
    /// `message`: one HL7 v2 message, ending in CR LF.
    Message,
    /// `nak`: a negative acknowledgement (`0x15`) from the LIS.
    Nak,
    /// `fragment`: bytes of a message cut off before its CR LF (by a marker, a new
    /// session or the end of the connection), kept as they came.
    Fragment,
    /// `stray`: bytes that arrived outside any session, or a marker from the side that
    /// does not send it, kept as they came.
    Stray,
    /// A value this build does not know, kept as written.
    Other(String),
}

impl From<String> for ElementKind {
    fn from(value: String) -> Self {
        match value.as_str() {
            "start" => Self::Start,
            "ack" => Self::Ack,
            "end" => Self::End,
            "message" => Self::Message,
            "nak" => Self::Nak,
            "fragment" => Self::Fragment,
            "stray" => Self::Stray,
            _ => Self::Other(value),
        }
    }
}

impl From<ElementKind> for String {
    fn from(value: ElementKind) -> Self {
        match value {
            ElementKind::Start => "start".into(),
            ElementKind::Ack => "ack".into(),
            ElementKind::End => "end".into(),
            ElementKind::Message => "message".into(),
            ElementKind::Nak => "nak".into(),
            ElementKind::Fragment => "fragment".into(),
            ElementKind::Stray => "stray".into(),
            ElementKind::Other(other) => other,
        }
    }
}

/// Unknown fields of a JSON object, kept in their original order and written back
/// unchanged. It derefs to the JSON map it holds. Its `Debug` shows the keys only: a kept
/// field may hold patient data (the app's `messages` list, say).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnknownFields(serde_json::Map<String, serde_json::Value>);

impl UnknownFields {
    /// No unknown field.
    pub fn new() -> Self {
        Self::default()
    }

    /// The JSON map.
    pub fn into_inner(self) -> serde_json::Map<String, serde_json::Value> {
        self.0
    }
}

impl std::ops::Deref for UnknownFields {
    type Target = serde_json::Map<String, serde_json::Value>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for UnknownFields {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl From<serde_json::Map<String, serde_json::Value>> for UnknownFields {
    fn from(map: serde_json::Map<String, serde_json::Value>) -> Self {
        Self(map)
    }
}

impl std::fmt::Debug for UnknownFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnknownFields")?;
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_words_survive() {
        let kind: ElementKind = serde_json::from_str(r#""nack""#).unwrap();
        assert_eq!(kind, ElementKind::Other("nack".into()));
        assert_eq!(serde_json::to_string(&kind).unwrap(), r#""nack""#);
        for word in ["start", "ack", "nak", "end", "message", "fragment", "stray"] {
            let kind = ElementKind::from(word.to_owned());
            assert!(!matches!(kind, ElementKind::Other(_)), "{word}");
            assert_eq!(String::from(kind), word);
        }
        let dir: Direction = serde_json::from_str(r#""pc-to-device""#).unwrap();
        assert_eq!(dir, Direction::PcToDevice);
    }
}
