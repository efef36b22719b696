//! The marker state machine: directional byte chunks in, session events out. Pure: no
//! I/O, no clock (the caller gives each chunk's time).
//!
//! The app's rules, on a byte stream (a marker may share a TCP segment with other
//! bytes, a message may span many segments):
//!
//! - the device's **start** marker (`0x05`) opens a session with a `start` element;
//! - the LIS's **ack** (`0x06`) is an `ack` element, its **nak** (`0x15`) a `nak` element;
//! - the device's **end** marker (`0x04`) is an `end` element and completes the session;
//! - other bytes accumulate per direction, and each CR LF ends one `message` element.
//!
//! What the app left open, decided here so that no byte that passes is missing from the
//! record:
//!
//! - **A start marker while a session is open** cuts the open session off
//!   (`interrupted`, reason `restarted`) and opens a new one with it.
//! - **Bytes outside any session** open an *unframed* session: its bytes are `stray`
//!   elements (split at CR LF and around marker bytes), and it ends, interrupted with
//!   reason `unframed`, at the next start marker or when the connection closes. It is
//!   never submitted, but nothing is dropped.
//! - **A marker from the side that does not send it** (an ack from the device, an end
//!   from the LIS) is a one-byte `stray` element, and ends the bytes before it.
//! - **Bytes cut off before their CR LF** (by a marker, a new session, the end of the
//!   connection, or [`MAX_ELEMENT`] bytes without a CR LF) become a `fragment` element.
//!
//! Traffic never multiplies storage:
//!
//! - **A start marker while the open session holds nothing but start markers** (and
//!   the LIS's replies to them) stays in that session as another `start` element: in
//!   ASTM E1381 a sender that gets no reply sends ENQ again, so 1 MB of ENQ is one session.
//! - **A connection begins at most [`SESSIONS_BURST`] sessions at once and
//!   [`SESSIONS_PER_SECOND`] a second after that** (a token bucket over the chunks'
//!   times). Beyond it nothing is dropped: a start marker goes into the open session as
//!   a `start` element instead of cutting it off, and an end marker is recorded but
//!   leaves its session open ("held") until a session may begin again, the next end
//!   marker after that completes it, or the connection ends (then it is complete: its
//!   last marker was an end).

use session_model::{Direction, ElementKind, InterruptionReason};

/// The longest element the machine accumulates: a peer that never sends CR LF is cut
/// into `fragment` elements of this size instead of growing without bound.
pub const MAX_ELEMENT: usize = 4 * 1024 * 1024;

/// Sessions a connection may begin at once (see the module docs).
pub const SESSIONS_BURST: u64 = 10;
/// Sessions a connection may begin per second after the burst.
pub const SESSIONS_PER_SECOND: u64 = 5;
/// One session's worth of the bucket, in thousandths.
const TOKEN: u64 = 1000;

/// The marker bytes, configurable 0-255 as in the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Markers {
    /// Opens a session, from the device (`0x05`, ENQ).
    pub start: u8,
    /// Acknowledges, from the LIS (`0x06`, ACK).
    pub ack: u8,
    /// Refuses, from the LIS (`0x15`, NAK).
    pub nak: u8,
    /// Ends a session, from the device (`0x04`, EOT).
    pub end: u8,
}

impl Default for Markers {
    fn default() -> Self {
        Markers {
            start: 0x05,
            ack: 0x06,
            nak: 0x15,
            end: 0x04,
        }
    }
}

impl Markers {
    fn is_marker(&self, b: u8) -> bool {
        b == self.start || b == self.ack || b == self.nak || b == self.end
    }
}

/// Which end of the conversation a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The analyzer: its bytes are `device-to-pc`.
    Device,
    /// The LIS: its bytes are `pc-to-device`.
    Lis,
}

impl Side {
    /// The direction the model records for bytes from this side.
    pub fn direction(self) -> Direction {
        match self {
            Side::Device => Direction::DeviceToPc,
            Side::Lis => Direction::PcToDevice,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::Device => 0,
            Side::Lis => 1,
        }
    }
}

/// What the machine saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framed {
    /// A session opens at `at` (framed by a start marker, or `unframed`: bytes outside
    /// any session).
    Begin {
        /// Epoch ms of the chunk that opened it.
        at: u64,
        /// Whether it holds bytes outside any framing.
        unframed: bool,
    },
    /// One element of the open session.
    Element(FramedElement),
    /// The end marker closed the open session at `at`.
    Complete {
        /// Epoch ms.
        at: u64,
    },
    /// The open session was cut off at `at`.
    Abandon {
        /// Epoch ms.
        at: u64,
        /// Why.
        reason: InterruptionReason,
    },
}

/// One element: its bytes exactly as they passed, which way, and what they are.
#[derive(Clone, PartialEq, Eq)]
pub struct FramedElement {
    /// Epoch ms of the chunk that completed it.
    pub timestamp: u64,
    /// Which way it went.
    pub direction: Direction,
    /// What it is.
    pub kind: ElementKind,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for FramedElement {
    // Element bytes are patient data: Debug shows their size only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramedElement")
            .field("timestamp", &self.timestamp)
            .field("direction", &self.direction)
            .field("kind", &self.kind)
            .field("bytes", &format_args!("[{} bytes]", self.bytes.len()))
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Framed,
    Unframed,
}

/// The state machine for one connection.
#[derive(Debug, Clone)]
pub struct Framer {
    markers: Markers,
    state: State,
    pending: [Vec<u8>; 2],
    /// The open framed session holds only start markers and the LIS's replies.
    only_starts: bool,
    /// The open framed session saw its end marker while no session could begin.
    held: bool,
    budget: SessionBudget,
}

/// How many sessions a connection may begin now: a token bucket over the chunks' times
/// ([`SESSIONS_BURST`] at once, [`SESSIONS_PER_SECOND`] a second after that).
#[derive(Debug, Clone)]
pub(crate) struct SessionBudget {
    /// In thousandths of a session.
    tokens: u64,
    topped_up_at: Option<u64>,
}

impl Default for SessionBudget {
    fn default() -> Self {
        SessionBudget {
            tokens: SESSIONS_BURST * TOKEN,
            topped_up_at: None,
        }
    }
}

impl SessionBudget {
    /// Tops the bucket up for the time since the last chunk (times only count forward).
    pub(crate) fn top_up(&mut self, at: u64) {
        let elapsed = self.topped_up_at.map_or(0, |then| at.saturating_sub(then));
        // SESSIONS_PER_SECOND tokens a second is that many thousandths a millisecond.
        self.tokens = (self.tokens + elapsed.saturating_mul(SESSIONS_PER_SECOND)).min(SESSIONS_BURST * TOKEN);
        self.topped_up_at = Some(self.topped_up_at.map_or(at, |then| then.max(at)));
    }

    /// Whether a session may begin now.
    pub(crate) fn may_begin(&self) -> bool {
        self.tokens >= TOKEN
    }

    /// A session began.
    pub(crate) fn spend(&mut self) {
        self.tokens = self.tokens.saturating_sub(TOKEN);
    }
}

impl Framer {
    /// A machine with no session open.
    pub fn new(markers: Markers) -> Self {
        Framer {
            markers,
            state: State::Idle,
            pending: [Vec::new(), Vec::new()],
            only_starts: false,
            held: false,
            budget: SessionBudget::default(),
        }
    }

    fn may_begin(&self) -> bool {
        self.budget.may_begin()
    }

    fn begin(&mut self, at: u64, unframed: bool, out: &mut Vec<Framed>) {
        self.budget.spend();
        out.push(Framed::Begin { at, unframed });
        self.state = if unframed { State::Unframed } else { State::Framed };
        self.only_starts = !unframed;
        self.held = false;
    }

    /// Whether a session is open.
    pub fn is_open(&self) -> bool {
        self.state != State::Idle
    }

    /// Bytes of `side` waiting for their CR LF (forwarded, not yet an element).
    pub fn pending(&self, side: Side) -> usize {
        self.pending[side.index()].len()
    }

    /// Feeds one chunk from `side`, received at `at`; returns what it completed.
    pub fn feed(&mut self, side: Side, chunk: &[u8], at: u64) -> Vec<Framed> {
        let mut out = Vec::new();
        self.budget.top_up(at);
        for &b in chunk {
            self.byte(side, b, at, &mut out);
        }
        out
    }

    /// The connection ended (or capture stops): whatever is open is cut off with
    /// `reason` (an unframed session always with `unframed`), its waiting bytes kept
    /// as fragments.
    pub fn close(&mut self, reason: InterruptionReason, at: u64) -> Vec<Framed> {
        let mut out = Vec::new();
        self.cut_off(reason, at, &mut out);
        out
    }

    fn byte(&mut self, side: Side, b: u8, at: u64, out: &mut Vec<Framed>) {
        let m = self.markers;
        if side == Side::Device && b == m.start {
            let repeated = self.state == State::Framed && self.only_starts && !self.held;
            if self.state != State::Idle && (repeated || !self.may_begin()) {
                // A repeated ENQ, or more sessions than the bound: it stays in the open one.
                self.flush(Side::Device, at, out);
                self.flush(Side::Lis, at, out);
                self.state = State::Framed;
                self.held = false;
                self.element(side, ElementKind::Start, vec![b], at, out);
                return;
            }
            self.cut_off(InterruptionReason::Restarted, at, out);
            self.begin(at, false, out);
            self.element(side, ElementKind::Start, vec![b], at, out);
            return;
        }
        if self.state == State::Idle {
            // A session ends only when another may begin, so there is room here.
            self.begin(at, true, out);
        }
        if self.state == State::Unframed {
            if m.is_marker(b) {
                self.flush(side, at, out);
                self.element(side, ElementKind::Stray, vec![b], at, out);
            } else {
                self.accumulate(side, b, at, out);
            }
            return;
        }
        match (side, b) {
            (Side::Device, b) if b == m.end => {
                self.flush(Side::Device, at, out);
                self.flush(Side::Lis, at, out);
                self.element(side, ElementKind::End, vec![b], at, out);
                if self.may_begin() {
                    out.push(Framed::Complete { at });
                    self.state = State::Idle;
                } else {
                    // Beyond the bound: held open, so that what follows has a session.
                    self.held = true;
                }
            }
            (Side::Lis, b) if b == m.ack => {
                self.flush(side, at, out);
                self.element(side, ElementKind::Ack, vec![b], at, out);
            }
            (Side::Lis, b) if b == m.nak => {
                self.flush(side, at, out);
                self.element(side, ElementKind::Nak, vec![b], at, out);
            }
            (_, b) if m.is_marker(b) => {
                self.flush(side, at, out);
                self.element(side, ElementKind::Stray, vec![b], at, out);
            }
            _ => self.accumulate(side, b, at, out),
        }
    }

    fn accumulate(&mut self, side: Side, b: u8, at: u64, out: &mut Vec<Framed>) {
        self.only_starts = false;
        let pending = &mut self.pending[side.index()];
        pending.push(b);
        if pending.ends_with(b"\r\n") {
            let bytes = std::mem::take(pending);
            let kind = match self.state {
                State::Unframed => ElementKind::Stray,
                _ => ElementKind::Message,
            };
            self.element(side, kind, bytes, at, out);
        } else if pending.len() >= MAX_ELEMENT {
            self.flush(side, at, out);
        }
    }

    /// Emits `side`'s waiting bytes as an element cut off before its CR LF.
    fn flush(&mut self, side: Side, at: u64, out: &mut Vec<Framed>) {
        let bytes = std::mem::take(&mut self.pending[side.index()]);
        if bytes.is_empty() {
            return;
        }
        let kind = match self.state {
            State::Unframed => ElementKind::Stray,
            _ => ElementKind::Fragment,
        };
        self.element(side, kind, bytes, at, out);
    }

    fn element(&mut self, side: Side, kind: ElementKind, bytes: Vec<u8>, at: u64, out: &mut Vec<Framed>) {
        let reply = side == Side::Lis && matches!(kind, ElementKind::Ack | ElementKind::Nak);
        if !(kind == ElementKind::Start || reply) {
            self.only_starts = false;
        }
        out.push(Framed::Element(FramedElement {
            timestamp: at,
            direction: side.direction(),
            kind,
            bytes,
        }));
    }

    fn cut_off(&mut self, reason: InterruptionReason, at: u64, out: &mut Vec<Framed>) {
        if self.state == State::Idle {
            return;
        }
        self.flush(Side::Device, at, out);
        self.flush(Side::Lis, at, out);
        self.state = match self.state {
            // Held open past its end marker: it was complete.
            State::Framed if self.held => {
                out.push(Framed::Complete { at });
                State::Idle
            }
            State::Unframed => {
                out.push(Framed::Abandon {
                    at,
                    reason: InterruptionReason::Unframed,
                });
                State::Idle
            }
            _ => {
                out.push(Framed::Abandon { at, reason });
                State::Idle
            }
        };
        self.held = false;
    }
}
