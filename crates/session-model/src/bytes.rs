//! The two byte encodings found in session files.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Raw element bytes, stored in `2.0.0` documents as one standard base64 string.
///
/// Base64 keeps the exact bytes (valid UTF-8 or not) at 4/3 of their size, where the
/// app's three copies (hex, a Node `Buffer` array and lossy text) took about 15 times it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Base64Bytes(pub Vec<u8>);

impl std::fmt::Debug for Base64Bytes {
    // Element bytes are patient data: Debug shows their length, never their content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Base64Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Base64Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Base64Bytes)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// Node.js's JSON form of a `Buffer`: `{"type":"Buffer","data":[5]}`, as the app wrote it.
/// Its `Debug` shows the size of the bytes, never their content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeBuffer {
    /// Always `"Buffer"` in the app's files.
    #[serde(rename = "type")]
    pub kind: String,
    /// The bytes, one JSON number each.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for NodeBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeBuffer({:?}, {} bytes)", self.kind, self.data.len())
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex_bytes(hex: &str) -> impl Iterator<Item = Option<u8>> + '_ {
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
}

/// Decodes the app's `hexData` string.
pub fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex_bytes(hex).collect()
}

/// Whether `hex` is valid hex for exactly `bytes`: `None` when it is not hex at all.
pub fn hex_matches(hex: &str, bytes: &[u8]) -> Option<bool> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let mut same = hex.len() / 2 == bytes.len();
    for (i, decoded) in hex_bytes(hex).enumerate() {
        same &= bytes.get(i) == Some(&decoded?);
    }
    Some(same)
}

/// Encodes bytes as the app's lowercase `hexData`.
pub fn encode_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let bytes = vec![0x00, 0x05, 0xff, 0x7f];
        assert_eq!(encode_hex(&bytes), "0005ff7f");
        assert_eq!(decode_hex("0005FF7f"), Some(bytes));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é1"), None);
        assert_eq!(hex_matches("0005ff7f", &[0, 5, 0xff, 0x7f]), Some(true));
        assert_eq!(hex_matches("0005", &[0, 6]), Some(false));
        assert_eq!(hex_matches("00", &[0, 0]), Some(false));
        assert_eq!(hex_matches("0g", &[0]), None);
    }

    #[test]
    fn base64_keeps_invalid_utf8() {
        let bytes = Base64Bytes(vec![0xc3, 0x28, 0xa0, 0xa1]);
        let json = serde_json::to_string(&bytes).unwrap();
        assert_eq!(json, r#""wyigoQ==""#);
        assert_eq!(serde_json::from_str::<Base64Bytes>(&json).unwrap(), bytes);
        assert!(serde_json::from_str::<Base64Bytes>(r#""***""#).is_err());
    }

    #[test]
    fn debug_hides_content() {
        assert_eq!(
            format!("{:?}", Base64Bytes(b"PID|1".to_vec())),
            "Base64Bytes(5 bytes)"
        );
    }
}
