//! HL7's Minimal Lower Layer Protocol over TCP: each message framed as `0x0B` message
//! `0x1C 0x0D`, the LIS answering with an MLLP-framed ACK. Pure, as [`Framer`] is.
//!
//! MLLP has no markers around a transmission, so a session is a *burst*: it begins with
//! the connection's first bytes, and ends when the connection closes or after
//! [`MLLP_IDLE_MS`] without a byte either way ([`MllpFramer::idle`], called by the relay
//! while it waits, and by `import-pcap` with each packet's time). Within it:
//!
//! - a frame's start block `0x0B` is a `start` element, its end block `0x1C 0x0D` an
//!   `end` element, and the bytes between them one element: a `message` from the
//!   analyzer, an `ack` from the LIS (its reply), so that a session's messages are what
//!   the analyzer sent, each as clean HL7 text;
//! - bytes outside a frame are `stray` elements; a frame cut off (by a new start block,
//!   the end of the connection, or [`MAX_ELEMENT`] bytes) is a `fragment`;
//! - a burst is complete when it ends between frames; a connection that closes inside a
//!   frame cuts it off (`interrupted`).
//!
//! Every byte that passes is in exactly one element. Sessions begin no faster than
//! [`Framer`]'s bound ([`SESSIONS_BURST`](crate::SESSIONS_BURST) at once,
//! [`SESSIONS_PER_SECOND`](crate::SESSIONS_PER_SECOND) a second).
//!
//! [`Framer`]: crate::Framer

use session_model::{ElementKind, InterruptionReason};

use crate::framing::{Framed, FramedElement, MAX_ELEMENT, SessionBudget, Side};

/// MLLP's start block.
pub const START_BLOCK: u8 = 0x0B;
/// MLLP's end block, followed by a carriage return.
pub const END_BLOCK: u8 = 0x1C;
/// Quiet time that ends an MLLP burst (a session).
pub const MLLP_IDLE_MS: u64 = 5_000;

#[derive(Debug, Clone, Default)]
struct SideState {
    /// Inside a frame: its payload so far.
    in_frame: bool,
    payload: Vec<u8>,
    /// The end block arrived; the carriage return that completes it not yet.
    saw_end_block: bool,
    /// Bytes outside any frame, waiting to be a `stray` element.
    outside: Vec<u8>,
}

/// The MLLP state machine for one connection.
#[derive(Debug, Clone, Default)]
pub struct MllpFramer {
    open: bool,
    sides: [SideState; 2],
    last_byte_at: u64,
    budget: SessionBudget,
}

fn index(side: Side) -> usize {
    match side {
        Side::Device => 0,
        Side::Lis => 1,
    }
}

impl MllpFramer {
    /// A machine with no session open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a session is open.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Feeds one chunk from `side`, received at `at`; returns what it completed.
    pub fn feed(&mut self, side: Side, chunk: &[u8], at: u64) -> Vec<Framed> {
        let mut out = Vec::new();
        if chunk.is_empty() {
            return out;
        }
        self.budget.top_up(at);
        if !self.open {
            self.budget.spend();
            out.push(Framed::Begin { at, unframed: false });
            self.open = true;
        }
        // The other side's bytes outside a frame end here, so elements keep the order
        // the bytes came in.
        let other = match side {
            Side::Device => Side::Lis,
            Side::Lis => Side::Device,
        };
        let outside = std::mem::take(&mut self.sides[index(other)].outside);
        element(other, ElementKind::Stray, outside, at, &mut out);
        for &b in chunk {
            self.byte(side, b, at, &mut out);
        }
        self.last_byte_at = self.last_byte_at.max(at);
        out
    }

    /// Time passed with nothing received: after [`MLLP_IDLE_MS`] of quiet, between
    /// frames, the burst is complete (if another session may begin; else it stays open
    /// and the next burst joins it).
    pub fn idle(&mut self, at: u64) -> Vec<Framed> {
        let mut out = Vec::new();
        let between_frames = self.sides.iter().all(|s| !s.in_frame);
        self.budget.top_up(at);
        if self.open
            && between_frames
            && at.saturating_sub(self.last_byte_at) >= MLLP_IDLE_MS
            && self.budget.may_begin()
        {
            self.flush_outside(at, &mut out);
            out.push(Framed::Complete { at });
            self.open = false;
        }
        out
    }

    /// The connection ended: a burst that ended between frames is complete; one cut off
    /// inside a frame is abandoned with `reason`, the frame kept as a fragment.
    pub fn close(&mut self, reason: InterruptionReason, at: u64) -> Vec<Framed> {
        let mut out = Vec::new();
        if !self.open {
            return out;
        }
        let cut = self.sides.iter().any(|s| s.in_frame);
        for side in [Side::Device, Side::Lis] {
            let state = &mut self.sides[index(side)];
            if state.in_frame {
                let mut bytes = std::mem::take(&mut state.payload);
                if std::mem::take(&mut state.saw_end_block) {
                    bytes.push(END_BLOCK);
                }
                state.in_frame = false;
                element(side, ElementKind::Fragment, bytes, at, &mut out);
            }
        }
        self.flush_outside(at, &mut out);
        out.push(if cut {
            Framed::Abandon { at, reason }
        } else {
            Framed::Complete { at }
        });
        self.open = false;
        out
    }

    fn byte(&mut self, side: Side, b: u8, at: u64, out: &mut Vec<Framed>) {
        let state = &mut self.sides[index(side)];
        if !state.in_frame {
            if b == START_BLOCK {
                let outside = std::mem::take(&mut state.outside);
                state.in_frame = true;
                element(side, ElementKind::Stray, outside, at, out);
                element(side, ElementKind::Start, vec![b], at, out);
            } else {
                state.outside.push(b);
                if state.outside.len() >= MAX_ELEMENT {
                    let outside = std::mem::take(&mut state.outside);
                    element(side, ElementKind::Stray, outside, at, out);
                }
            }
            return;
        }
        if state.saw_end_block {
            state.saw_end_block = false;
            if b == b'\r' {
                let payload = std::mem::take(&mut state.payload);
                state.in_frame = false;
                let kind = match side {
                    Side::Device => ElementKind::Message,
                    Side::Lis => ElementKind::Ack,
                };
                element(side, kind, payload, at, out);
                element(side, ElementKind::End, vec![END_BLOCK, b'\r'], at, out);
                return;
            }
            // An end block not followed by CR is payload after all.
            state.payload.push(END_BLOCK);
        }
        match b {
            END_BLOCK => state.saw_end_block = true,
            START_BLOCK => {
                // A new frame before this one ended: this one is cut off.
                let cut = std::mem::take(&mut state.payload);
                element(side, ElementKind::Fragment, cut, at, out);
                element(side, ElementKind::Start, vec![b], at, out);
            }
            _ => {
                state.payload.push(b);
                if state.payload.len() >= MAX_ELEMENT {
                    let cut = std::mem::take(&mut state.payload);
                    element(side, ElementKind::Fragment, cut, at, out);
                }
            }
        }
    }

    fn flush_outside(&mut self, at: u64, out: &mut Vec<Framed>) {
        for side in [Side::Device, Side::Lis] {
            let outside = std::mem::take(&mut self.sides[index(side)].outside);
            element(side, ElementKind::Stray, outside, at, out);
        }
    }
}

/// Emits an element, unless it has no bytes.
fn element(side: Side, kind: ElementKind, bytes: Vec<u8>, at: u64, out: &mut Vec<Framed>) {
    if bytes.is_empty() {
        return;
    }
    out.push(Framed::Element(FramedElement {
        timestamp: at,
        direction: side.direction(),
        kind,
        bytes,
    }));
}

/// How a connection's bytes are framed into sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// The app's marker bytes (ENQ ... EOT), see [`Framer`](crate::Framer).
    Markers,
    /// HL7 MLLP (`0x0B` message `0x1C 0x0D`), see [`MllpFramer`].
    Mllp,
    /// Decided per connection by its first byte: `0x0B` is MLLP, anything else markers.
    #[default]
    Auto,
}

impl std::str::FromStr for Framing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "markers" => Ok(Framing::Markers),
            "mllp" => Ok(Framing::Mllp),
            "auto" => Ok(Framing::Auto),
            other => Err(format!("{other:?} is not a framing (markers, mllp or auto)")),
        }
    }
}

#[derive(Debug, Clone)]
enum Machine {
    Undecided,
    Markers(crate::Framer),
    Mllp(MllpFramer),
}

/// One connection's framing: markers, MLLP, or decided by the first byte.
#[derive(Debug, Clone)]
pub struct ConnectionFramer {
    markers: crate::Markers,
    machine: Machine,
}

impl ConnectionFramer {
    /// A machine for one connection.
    pub fn new(framing: Framing, markers: crate::Markers) -> Self {
        let machine = match framing {
            Framing::Markers => Machine::Markers(crate::Framer::new(markers)),
            Framing::Mllp => Machine::Mllp(MllpFramer::new()),
            Framing::Auto => Machine::Undecided,
        };
        ConnectionFramer { markers, machine }
    }

    /// The framing in use, once decided.
    pub fn framing(&self) -> Option<Framing> {
        match self.machine {
            Machine::Undecided => None,
            Machine::Markers(_) => Some(Framing::Markers),
            Machine::Mllp(_) => Some(Framing::Mllp),
        }
    }

    /// Feeds one chunk (see [`Framer::feed`](crate::Framer::feed)).
    pub fn feed(&mut self, side: Side, chunk: &[u8], at: u64) -> Vec<Framed> {
        if let (Machine::Undecided, Some(&first)) = (&self.machine, chunk.first()) {
            self.machine = if first == START_BLOCK {
                Machine::Mllp(MllpFramer::new())
            } else {
                Machine::Markers(crate::Framer::new(self.markers))
            };
        }
        match &mut self.machine {
            Machine::Undecided => Vec::new(),
            Machine::Markers(framer) => framer.feed(side, chunk, at),
            Machine::Mllp(framer) => framer.feed(side, chunk, at),
        }
    }

    /// Quiet since the last chunk (MLLP ends a burst after [`MLLP_IDLE_MS`]).
    pub fn idle(&mut self, at: u64) -> Vec<Framed> {
        match &mut self.machine {
            Machine::Mllp(framer) => framer.idle(at),
            _ => Vec::new(),
        }
    }

    /// The connection ended (see [`Framer::close`](crate::Framer::close)).
    pub fn close(&mut self, reason: InterruptionReason, at: u64) -> Vec<Framed> {
        match &mut self.machine {
            Machine::Undecided => Vec::new(),
            Machine::Markers(framer) => framer.close(reason, at),
            Machine::Mllp(framer) => framer.close(reason, at),
        }
    }
}
