//! The element as the Electron app wrote it (legacy and `1.0.0` alike). Frozen.

use serde::{Deserialize, Serialize};

use crate::bytes::{NodeBuffer, decode_hex, hex_matches};
use crate::vocabulary::{Direction, ElementKind, UnknownFields};

/// One framed element in the app's format: its bytes three times over. Its `Debug`
/// shows the sizes of the bytes and texts, never their content.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppElement {
    /// The app's element id (`element-<ms>-<random>`).
    pub id: String,
    /// When the element was captured, epoch milliseconds.
    pub timestamp: u64,
    /// Which way it travelled.
    pub direction: Direction,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: ElementKind,
    /// The bytes as lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hex_data: Option<String>,
    /// The bytes as a Node `Buffer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_bytes: Option<NodeBuffer>,
    /// Messages only: the bytes as (lossy) UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Messages only: the same text again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded_message: Option<String>,
    /// Fields this build does not know.
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl std::fmt::Debug for AppElement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::redact::MaybeTextSize;
        f.debug_struct("AppElement")
            .field("id", &self.id)
            .field("timestamp", &self.timestamp)
            .field("direction", &self.direction)
            .field("kind", &self.kind)
            .field("hex_data", &MaybeTextSize(self.hex_data.as_deref()))
            .field("raw_bytes", &self.raw_bytes)
            .field("content", &MaybeTextSize(self.content.as_deref()))
            .field("decoded_message", &MaybeTextSize(self.decoded_message.as_deref()))
            .field("unknown", &self.unknown)
            .finish()
    }
}

/// Why an app element's bytes cannot be established.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ElementBytesError {
    /// Neither `rawBytes` nor `hexData` is present.
    #[error("element {}: has neither rawBytes nor hexData", crate::Printable(element_id))]
    Missing {
        /// The element's id.
        element_id: String,
    },
    /// `hexData` is not valid hex.
    #[error("element {}: hexData is not valid hex", crate::Printable(element_id))]
    BadHex {
        /// The element's id.
        element_id: String,
    },
    /// `hexData` and `rawBytes` hold different bytes, so neither can be trusted.
    #[error("element {}: hexData and rawBytes disagree", crate::Printable(element_id))]
    Disagree {
        /// The element's id.
        element_id: String,
    },
}

impl AppElement {
    /// The element's exact bytes, checked across the copies the app wrote.
    pub fn bytes(&self) -> Result<Vec<u8>, ElementBytesError> {
        self.clone().into_bytes()
    }

    /// [`AppElement::bytes`], without copying them.
    pub fn into_bytes(self) -> Result<Vec<u8>, ElementBytesError> {
        let element_id = self.id;
        match (self.hex_data, self.raw_bytes) {
            (Some(hex), Some(raw)) => match hex_matches(&hex, &raw.data) {
                Some(true) => Ok(raw.data),
                Some(false) => Err(ElementBytesError::Disagree { element_id }),
                None => Err(ElementBytesError::BadHex { element_id }),
            },
            (None, Some(raw)) => Ok(raw.data),
            (Some(hex), None) => decode_hex(&hex).ok_or(ElementBytesError::BadHex { element_id }),
            (None, None) => Err(ElementBytesError::Missing { element_id }),
        }
    }
}
