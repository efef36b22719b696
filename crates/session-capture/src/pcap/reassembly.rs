//! One direction of a TCP connection put back in order: retransmitted bytes once,
//! segments ahead of a gap held until it fills (or until too much waits behind it),
//! the bytes a capture missed counted.

use std::collections::BTreeMap;

/// One direction of a connection, put back in order.
pub(super) struct Direction {
    /// How many bytes it holds ahead of a gap before it gives the gap up as missed: a
    /// capture that dropped a packet must not make an import hold the rest of the
    /// connection in memory.
    limit: usize,
    /// The next sequence number expected; `None` until the first segment.
    next: Option<u32>,
    /// How far the stream has come since its first byte: sequence numbers wrap at
    /// 4 GiB, this does not, so held segments sort in stream order across a wrap.
    position: u64,
    /// Segments that arrived ahead of a gap, by stream position.
    ahead: BTreeMap<u64, Vec<u8>>,
    /// Bytes held in `ahead`.
    ahead_bytes: usize,
    /// Bytes the capture missed (gaps given up).
    missing: u64,
}

impl Default for Direction {
    fn default() -> Self {
        Direction::new(super::Limits::default().behind_a_gap)
    }
}

impl Direction {
    /// A direction that holds at most `limit` bytes behind a gap.
    pub(super) fn new(limit: usize) -> Self {
        Direction {
            limit,
            next: None,
            position: 0,
            ahead: BTreeMap::new(),
            ahead_bytes: 0,
            missing: 0,
        }
    }

    /// The bytes `seq`/`payload` adds to the stream, in order (retransmitted bytes
    /// dropped, segments ahead of a gap held back until it fills).
    pub(super) fn accept(&mut self, seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
        let start = if syn { seq.wrapping_add(1) } else { seq };
        let next = *self.next.get_or_insert(start);
        if payload.is_empty() {
            return Vec::new();
        }
        let offset = start.wrapping_sub(next) as i32;
        let mut out = Vec::new();
        if offset > 0 {
            let at = self.position + offset as u64;
            if !self.ahead.contains_key(&at) {
                self.ahead_bytes += payload.len();
                self.ahead.insert(at, payload.to_vec());
            }
            if self.ahead_bytes <= self.limit {
                return out;
            }
            // Too much waits behind the gap: it is missed, the stream goes on after it.
            self.skip_to_first_held();
        } else {
            let skip = offset.unsigned_abs() as usize;
            self.push(&mut out, payload.get(skip..).unwrap_or_default());
        }
        self.drain_fitting(&mut out);
        out
    }

    /// Bytes held ahead of a gap.
    pub(super) fn held(&self) -> usize {
        self.ahead_bytes
    }

    /// What is still held back at the end (bytes after gaps the capture never filled,
    /// in stream order) and every byte the capture missed.
    pub(super) fn leftover(&mut self) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        while !self.ahead.is_empty() {
            self.skip_to_first_held();
            self.drain_fitting(&mut out);
        }
        (out, self.missing)
    }

    /// Appends `bytes` to the stream.
    fn push(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(bytes);
        self.position += bytes.len() as u64;
        self.next = self.next.map(|n| n.wrapping_add(bytes.len() as u32));
    }

    /// Counts the gap before the first held segment as missed and moves past it.
    fn skip_to_first_held(&mut self) {
        if let Some((&at, _)) = self.ahead.first_key_value()
            && at > self.position
        {
            let gap = at - self.position;
            self.missing += gap;
            self.position = at;
            self.next = self.next.map(|n| n.wrapping_add(gap as u32));
        }
    }

    /// Appends every held segment that now starts at or before the stream's end.
    fn drain_fitting(&mut self, out: &mut Vec<u8>) {
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() > self.position {
                break;
            }
            let (at, held) = entry.remove_entry();
            self.ahead_bytes -= held.len();
            let skip = (self.position - at) as usize;
            self.push(out, held.get(skip..).unwrap_or_default());
        }
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

    #[test]
    fn held_segments_across_the_wrap_come_out_in_stream_order() {
        let mut d = Direction::default();
        assert_eq!(d.accept(u32::MAX - 9, false, b"a"), b"a");
        // A gap of 4, then segments on both sides of the wrap, the later one first.
        assert_eq!(d.accept(2, false, b"yz"), b"");
        assert_eq!(d.accept(u32::MAX - 4, false, b"0123456"), b"");
        assert_eq!(d.leftover(), (b"0123456yz".to_vec(), 4));
        let mut filled = Direction::default();
        filled.accept(u32::MAX - 9, false, b"a");
        filled.accept(2, false, b"yz");
        filled.accept(u32::MAX - 4, false, b"0123456");
        assert_eq!(filled.accept(u32::MAX - 8, false, b"bcde"), b"bcde0123456yz");
        assert_eq!(filled.leftover(), (Vec::new(), 0));
    }

    #[test]
    fn a_gap_with_too_much_behind_it_is_given_up_as_missed() {
        let limit = 1 << 20;
        let mut d = Direction::new(limit);
        assert_eq!(d.accept(0, false, b"a"), b"a");
        let chunk = vec![b'x'; 1 << 16];
        let mut released = Vec::new();
        let mut seq = 11u32;
        while released.is_empty() {
            released = d.accept(seq, false, &chunk);
            seq += chunk.len() as u32;
        }
        assert_eq!(
            released.len(),
            limit + chunk.len(),
            "everything held comes out once the limit is passed"
        );
        assert_eq!(d.accept(seq, false, b"next"), b"next", "and the stream goes on");
        assert_eq!(
            d.accept(5, false, b"late"),
            b"",
            "the gap's bytes, too late, are dropped"
        );
        assert_eq!(d.leftover(), (Vec::new(), 10));
    }
}
