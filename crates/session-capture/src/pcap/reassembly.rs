//! One direction of a TCP connection put back in order: retransmitted bytes once,
//! segments ahead of a gap held until it fills, the bytes a capture missed counted.

use std::collections::BTreeMap;

/// One direction of a connection, put back in order.
#[derive(Default)]
pub(super) struct Direction {
    /// The next sequence number expected; `None` until the first segment.
    next: Option<u32>,
    /// Segments that arrived ahead of a gap, by sequence number.
    ahead: BTreeMap<u32, Vec<u8>>,
}

impl Direction {
    /// The bytes `seq`/`payload` adds to the stream, in order (retransmitted bytes
    /// dropped, segments ahead of a gap held back until it fills).
    pub(super) fn accept(&mut self, seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
        let start = if syn { seq.wrapping_add(1) } else { seq };
        let next = *self.next.get_or_insert(start);
        if payload.is_empty() {
            return Vec::new();
        }
        let offset = start.wrapping_sub(next) as i32;
        if offset > 0 {
            self.ahead.entry(start).or_insert_with(|| payload.to_vec());
            return Vec::new();
        }
        let skip = (-offset) as usize;
        let mut out = payload.get(skip..).unwrap_or_default().to_vec();
        let mut next = next.wrapping_add(out.len() as u32);
        // Anything held back that now fits.
        while let Some((&seq, _)) = self.ahead.iter().find(|(s, _)| s.wrapping_sub(next) as i32 <= 0) {
            let held = self.ahead.remove(&seq).unwrap_or_default();
            let skip = next.wrapping_sub(seq) as usize;
            if let Some(rest) = held.get(skip..) {
                out.extend_from_slice(rest);
                next = next.wrapping_add(rest.len() as u32);
            }
        }
        self.next = Some(next);
        out
    }

    /// What is still held back at the end: bytes after a gap the capture never filled.
    pub(super) fn leftover(&mut self) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        let mut missing = 0;
        let mut next = self.next.unwrap_or_default();
        for (seq, bytes) in std::mem::take(&mut self.ahead) {
            let gap = seq.wrapping_sub(next) as i32;
            if gap > 0 {
                missing += gap as u64;
                next = seq;
            }
            let skip = next.wrapping_sub(seq) as usize;
            if let Some(rest) = bytes.get(skip..) {
                out.extend_from_slice(rest);
                next = next.wrapping_add(rest.len() as u32);
            }
        }
        (out, missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmissions_count_once_and_out_of_order_segments_wait_for_the_gap() {
        let mut d = Direction::default();
        assert_eq!(d.accept(99, true, b""), b"");
        assert_eq!(d.accept(100, false, b"abc"), b"abc");
        assert_eq!(d.accept(100, false, b"abc"), b"", "a retransmission adds nothing");
        assert_eq!(
            d.accept(101, false, b"bcde"),
            b"de",
            "an overlap adds only what is new"
        );
        assert_eq!(d.accept(108, false, b"ij"), b"", "ahead of a gap: held");
        assert_eq!(
            d.accept(105, false, b"fgh"),
            b"fghij",
            "the gap fills, the held part follows"
        );
        assert_eq!(d.accept(u32::MAX, false, b""), b"");
        let mut wrap = Direction::default();
        assert_eq!(wrap.accept(u32::MAX - 1, false, b"xy"), b"xy");
        assert_eq!(wrap.accept(0, false, b"z"), b"z", "sequence numbers wrap");
        let mut gap = Direction::default();
        gap.accept(10, false, b"a");
        gap.accept(15, false, b"f");
        assert_eq!(gap.leftover(), (b"f".to_vec(), 4), "4 bytes the capture missed");
    }
}
