//! What one journal record holds: the capture's own format (`session-fs` stores the
//! records as opaque bytes). JSON, one object per record, externally tagged:
//! `{"begin": {...}}` first, then `{"element": {...}}` per element, and
//! `{"end": {...}}` when the capture completed or was abandoned.

use serde::{Deserialize, Serialize};
use session_model::{Base64Bytes, Direction, Element, ElementKind, InterruptionReason, SessionId};

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Record {
    /// The first record: who, when, and how long to keep it.
    Begin(BeginRecord),
    /// One element.
    Element(ElementRecord),
    /// How it ended.
    End(EndRecord),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BeginRecord {
    pub id: SessionId,
    #[serde(rename = "sessionId")]
    pub session_number: u64,
    pub start_time: u64,
    #[serde(rename = "deviceIP", default, skip_serializing_if = "Option::is_none")]
    pub device_ip: Option<String>,
    #[serde(rename = "lisIP", default, skip_serializing_if = "Option::is_none")]
    pub lis_ip: Option<String>,
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ElementRecord {
    pub timestamp: u64,
    pub direction: Direction,
    #[serde(rename = "type")]
    pub kind: ElementKind,
    pub data: Base64Bytes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndRecord {
    pub at: u64,
    /// `None`: completed by its end marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<InterruptionReason>,
    /// The LIS went away while the session was open: when, and how many of the
    /// analyzer's bytes it never received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lis_gone: Option<LisGone>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LisGone {
    pub at: u64,
    pub missed_bytes: u64,
}

impl ElementRecord {
    /// The session's element this record is, the `index`th of its session (from 0):
    /// the one conversion both the fold from the journal and the fold from the
    /// capture's memory make, so that the two give the same session.
    pub(crate) fn into_element(self, index: usize) -> Element {
        let mut element = Element::new(self.timestamp, self.direction, self.kind, self.data.0);
        element.id = format!("element-{}-{index}", self.timestamp);
        element
    }
}

impl Record {
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// `Record::Element(element.clone()).to_bytes()`, without the clone: the capture
    /// keeps its element records after journaling them.
    pub(crate) fn element_bytes(element: &ElementRecord) -> Result<Vec<u8>, serde_json::Error> {
        /// An externally tagged variant is an object with one field, named as it is.
        #[derive(Serialize)]
        struct Tagged<'a> {
            element: &'a ElementRecord,
        }
        serde_json::to_vec(&Tagged { element })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_encodes_as_its_record_does() {
        let element = ElementRecord {
            timestamp: 7,
            direction: Direction::PcToDevice,
            kind: ElementKind::Message,
            data: Base64Bytes(b"MSH|1\r\xff\r\n".to_vec()),
        };
        let bytes = Record::element_bytes(&element).unwrap();
        assert_eq!(bytes, Record::Element(element.clone()).to_bytes().unwrap());
        assert_eq!(
            serde_json::from_slice::<Record>(&bytes).unwrap(),
            Record::Element(element)
        );
    }
}
