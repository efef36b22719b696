//! The copy a capture keeps of what it journaled, so that the capture's own writer
//! stores its session without reading the journal back.
//!
//! Why: a journal's appends are written past the page cache where the store can
//! (`session-fs`'s in-place sync), so reading a journal back costs a disk read, and
//! folding it parses every record twice. The writer already holds every record it
//! journaled, in order, and knows that each append succeeded: a failed append spoils
//! the capture, which is then left to recovery and its journal. The session made from
//! the copy is the one the fold makes from the journal ([`crate::fold::settle_kept`]
//! shares the fold's conversions, and a test holds the two equal).
//!
//! Only small captures are kept: once a capture's elements hold more than
//! [`KEPT_BYTES`], the copy is dropped and its journal is read back as before, so a
//! connection's memory stays bounded whatever its analyzer sends.

use crate::record::{BeginRecord, ElementRecord};

/// The most element bytes a capture keeps a copy of. A lab session is a few KiB; 50
/// connections keeping this much each hold 3 MiB.
pub(crate) const KEPT_BYTES: usize = 64 * 1024;

/// The begin record and element records a capture journaled, in order.
#[derive(Debug)]
pub(crate) struct KeptRecords {
    pub(crate) begin: BeginRecord,
    pub(crate) elements: Vec<ElementRecord>,
    /// The elements' bytes, all told.
    bytes: usize,
}

impl KeptRecords {
    /// The copy of a capture that journaled `begin` and nothing after it yet.
    pub(crate) fn new(begin: BeginRecord) -> Self {
        KeptRecords {
            begin,
            elements: Vec::new(),
            bytes: 0,
        }
    }

    /// The copy with `elements` (journaled after those it holds) added; `None` once
    /// its elements would hold more than [`KEPT_BYTES`].
    pub(crate) fn with(mut self, elements: Vec<ElementRecord>) -> Option<Self> {
        let added: usize = elements.iter().map(|e| e.data.0.len()).sum();
        self.bytes = self.bytes.checked_add(added).filter(|&b| b <= KEPT_BYTES)?;
        self.elements.extend(elements);
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_model::{Base64Bytes, Direction, ElementKind, SessionId};

    fn begin() -> BeginRecord {
        BeginRecord {
            id: SessionId::new("session-1").unwrap(),
            session_number: 1,
            start_time: 1,
            device_ip: None,
            lis_ip: None,
            retention_days: 1,
        }
    }

    fn element(len: usize) -> ElementRecord {
        ElementRecord {
            timestamp: 1,
            direction: Direction::DeviceToPc,
            kind: ElementKind::Message,
            data: Base64Bytes(vec![b'x'; len]),
        }
    }

    #[test]
    fn a_copy_holds_up_to_its_bytes_in_order_and_is_dropped_past_them() {
        let kept = KeptRecords::new(begin())
            .with(vec![element(1), element(KEPT_BYTES - 2)])
            .unwrap();
        let kept = kept.with(vec![element(1)]).expect("exactly KEPT_BYTES is kept");
        assert_eq!(
            kept.elements.iter().map(|e| e.data.0.len()).collect::<Vec<_>>(),
            vec![1, KEPT_BYTES - 2, 1]
        );
        assert!(kept.with(vec![element(1)]).is_none(), "one byte more drops it");
        assert!(
            KeptRecords::new(begin())
                .with(vec![element(KEPT_BYTES + 1)])
                .is_none()
        );
    }
}
