//! The sessions of an analyzer–LIS conversation taken with tcpdump or
//! Wireshark (pcap or pcapng), recorded as if they had passed the relay.
//!
//! Each TCP connection is reassembled per direction (retransmitted bytes once,
//! out-of-order segments put in order), its analyzer is the side that opened it (sent
//! the SYN; without one, the side that sent the first start marker), and its bytes are
//! fed to the same [`ConnectionFramer`] and [`Recorder`] as live capture, in capture order, with
//! the packets' own times. Bytes a capture missed (a gap in sequence numbers, or one
//! that 4 MiB waited behind) are reported, never invented. A connection is closed
//! when it is reset or closed both ways, and a SYN on the ends of one that carried
//! data opens a new one: a week's capture holds open only the connections open at once.
//! Across all connections at most 16 MiB wait (behind gaps, or before the analyzer is
//! known): past that, the connection holding most is cut off there (its bytes recorded)
//! and goes on as a new one, so memory stays bounded whatever the capture.

//!
//! ```no_run
//! use session_capture::{Framing, Markers, Recorder, pcap};
//! use session_store::{DecodeOptions, SessionStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SessionStore::new(session_fs::Store::open("/var/lib/sessions")?, DecodeOptions::default());
//! let capture = std::fs::File::open("lis.pcapng")?;
//! let report = pcap::import(&Recorder::new(store), capture, Framing::Auto, Markers::default())?;
//! println!("{} sessions from {} connections", report.sessions, report.connections);
//! # Ok(())
//! # }
//! ```

mod packets;
mod reassembly;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;

use session_model::InterruptionReason;

use crate::{
    CaptureError, ConnectionFramer, Endpoints, Framed, Framing, Markers, OpenCapture, Recorder, Side,
};
use packets::{Segment, for_each_segment};
use reassembly::Direction;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The input is not a pcap or pcapng capture, or could not be read.
    #[error("{0}")]
    NotACapture(String),
    /// A session could not be recorded.
    #[error("recording: {0}")]
    Recording(#[from] CaptureError),
}

/// What an import found and recorded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// TCP connections that carried data.
    pub connections: usize,
    /// Sessions recorded.
    pub sessions: usize,
    /// Of those, complete (ended by their end marker).
    pub complete: usize,
    /// Of those, cut off (the capture ended or the connection closed first).
    pub interrupted: usize,
    /// Packets that were not TCP over IP (skipped).
    pub skipped_packets: usize,
    /// Bytes the capture missed (gaps in a direction's sequence numbers).
    pub missing_bytes: u64,
}

/// One connection: its sides, its machine, its open capture.
struct Connection {
    limits: Limits,
    /// Its place among the connections of the capture, for the order they are closed
    /// in at its end.
    opened: u64,
    /// Its two ends.
    ends: (SocketAddr, SocketAddr),
    analyzer: Option<SocketAddr>,
    directions: HashMap<SocketAddr, Direction>,
    framer: ConnectionFramer,
    open: Option<OpenCapture>,
    endpoints: Endpoints,
    last_ms: u64,
    carried_data: bool,
    /// Bytes that came before the analyzer was known (a capture that begins after the
    /// SYN, the LIS speaking first), in capture order: `(from, bytes, at_ms)`.
    undecided: Vec<(SocketAddr, Vec<u8>, u64)>,
    /// Sides that sent a FIN.
    finished: Vec<SocketAddr>,
    /// Bytes in `undecided`, counted as they come so that a capture of many tiny
    /// held segments stays linear.
    undecided_bytes: usize,
}

/// How much an import holds in memory while it waits for bytes that may yet come.
/// Past a limit it stops waiting (see the module docs): what it held is recorded then,
/// never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Bytes one direction holds behind a gap (4 MiB); past this, the gap is given up as
    /// missed.
    pub behind_a_gap: usize,
    /// Bytes a connection holds before its analyzer is known (1 MiB); past this, the
    /// first side that spoke is taken for the analyzer.
    pub before_the_analyzer: usize,
    /// Bytes all connections hold together (16 MiB); past this, the connection holding
    /// most is cut off and goes on as a new one.
    pub in_all: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(4 << 20, 1 << 20, 16 << 20)
    }
}

impl Limits {
    /// These limits, in bytes.
    pub fn new(behind_a_gap: usize, before_the_analyzer: usize, in_all: usize) -> Self {
        Limits {
            behind_a_gap,
            before_the_analyzer,
            in_all,
        }
    }
}

impl Connection {
    fn new(
        ends: (SocketAddr, SocketAddr),
        opened: u64,
        (framing, markers, limits): (Framing, Markers, Limits),
        at_ms: u64,
    ) -> Self {
        Connection {
            limits,
            opened,
            ends,
            analyzer: None,
            directions: HashMap::new(),
            framer: ConnectionFramer::new(framing, markers),
            open: None,
            endpoints: Endpoints::default(),
            last_ms: at_ms,
            carried_data: false,
            undecided: Vec::new(),
            finished: Vec::new(),
            undecided_bytes: 0,
        }
    }

    /// Frames `bytes` from `from` (the analyzer is known) and records what they end.
    fn feed(
        &mut self,
        recorder: &Recorder,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
        at_ms: u64,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        let from_analyzer = Some(from) == self.analyzer;
        let (device, lis, side) = if from_analyzer {
            (from, to, Side::Device)
        } else {
            (to, from, Side::Lis)
        };
        self.endpoints = Endpoints {
            device_ip: Some(device.ip().to_string()),
            lis_ip: Some(lis.ip().to_string()),
        };
        let events = self.framer.feed(side, bytes, at_ms);
        apply(recorder, self, events, report)
    }

    /// Bytes it holds: behind gaps, and before its analyzer is known.
    fn held(&self) -> usize {
        self.undecided_bytes + self.directions.values().map(Direction::held).sum::<usize>()
    }

    /// Takes the first side that spoke for the analyzer, when nothing better said.
    fn decide_by_first_speaker(&mut self) {
        if self.analyzer.is_none() {
            self.analyzer = self.undecided.first().map(|(from, ..)| *from);
        }
    }

    /// Feeds what was held while the analyzer was unknown.
    fn feed_undecided(&mut self, recorder: &Recorder, report: &mut ImportReport) -> Result<(), ImportError> {
        let Some(analyzer) = self.analyzer else {
            return Ok(());
        };
        self.undecided_bytes = 0;
        for (from, bytes, at_ms) in std::mem::take(&mut self.undecided) {
            // The connection has two sides: the other one is the LIS.
            let to = if from == analyzer {
                self.peer_of(analyzer)
            } else {
                analyzer
            };
            self.feed(recorder, from, to, &bytes, at_ms, report)?;
        }
        Ok(())
    }

    fn peer_of(&self, side: SocketAddr) -> SocketAddr {
        if side == self.ends.0 {
            self.ends.1
        } else {
            self.ends.0
        }
    }
}

fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

/// Reads a pcap or pcapng capture and records its sessions through `recorder`, as
/// if they had passed the relay. A capture of any size is read a packet at a time,
/// with the default [`Limits`].
pub fn import(
    recorder: &Recorder,
    capture: impl Read,
    framing: Framing,
    markers: Markers,
) -> Result<ImportReport, ImportError> {
    import_with(recorder, capture, framing, markers, Limits::default())
}

/// [`import`] holding at most `limits` in memory.
pub fn import_with(
    recorder: &Recorder,
    capture: impl Read,
    framing: Framing,
    markers: Markers,
    limits: Limits,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut connections: HashMap<(SocketAddr, SocketAddr), Connection> = HashMap::new();
    let (mut opened, mut held) = (0u64, 0usize);
    report.skipped_packets = for_each_segment(capture, |s| {
        let k = key(s.from, s.to);
        // A SYN on the ends of a connection that carried data opens a new one there.
        let reopened = s.syn && !s.ack && connections.get(&k).is_some_and(|c| c.carried_data);
        if reopened && let Some(done) = connections.remove(&k) {
            held -= done.held();
            finish(recorder, done, &mut report)?;
        }
        let conn = connections.entry(k).or_insert_with(|| {
            opened += 1;
            Connection::new(k, opened, (framing, markers, limits), s.at_ms)
        });
        let before = conn.held();
        segment(recorder, conn, &s, markers, &mut report)?;
        held = held + conn.held() - before;
        if s.fin && !conn.finished.contains(&s.from) {
            conn.finished.push(s.from);
        }
        // A connection closed both ways (or reset) is done: its open session is cut off
        // now, so that a long capture holds no more open sessions than connections
        // that are open at once.
        if (s.rst || conn.finished.len() == 2)
            && let Some(done) = connections.remove(&k)
        {
            held -= done.held();
            finish(recorder, done, &mut report)?;
        }
        // Past the limit, the connections holding most are cut off until it holds.
        while held > limits.in_all {
            let Some(largest) = connections.iter().max_by_key(|(_, c)| c.held()).map(|(k, _)| *k) else {
                break;
            };
            if let Some(done) = connections.remove(&largest) {
                held -= done.held();
                finish(recorder, done, &mut report)?;
            }
        }
        Ok(())
    })?;
    let mut open: Vec<Connection> = connections.into_values().collect();
    open.sort_by_key(|c| c.opened);
    for conn in open {
        finish(recorder, conn, &mut report)?;
    }
    Ok(report)
}

/// Takes one segment of `conn`: its quiet time, its side, its bytes in order.
fn segment(
    recorder: &Recorder,
    conn: &mut Connection,
    s: &Segment,
    markers: Markers,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    // A quiet time since the connection's last packet ends an MLLP burst.
    let events = conn.framer.idle(s.at_ms);
    apply(recorder, conn, events, report)?;
    conn.last_ms = s.at_ms;
    if s.syn && !s.ack {
        conn.analyzer = Some(s.from);
    }
    let bytes = conn
        .directions
        .entry(s.from)
        .or_insert_with(|| Direction::new(conn.limits.behind_a_gap))
        .accept(s.seq, s.syn, &s.payload);
    if bytes.is_empty() {
        return Ok(());
    }
    conn.carried_data = true;
    if conn.analyzer.is_none() {
        let starts = matches!(bytes.first(), Some(&b) if b == markers.start || b == crate::START_BLOCK);
        if starts {
            conn.analyzer = Some(s.from);
        } else {
            conn.undecided_bytes += bytes.len();
            conn.undecided.push((s.from, bytes, s.at_ms));
            if conn.undecided_bytes <= conn.limits.before_the_analyzer {
                return Ok(());
            }
            conn.decide_by_first_speaker();
            return conn.feed_undecided(recorder, report);
        }
    }
    conn.feed_undecided(recorder, report)?;
    conn.feed(recorder, s.from, s.to, &bytes, s.at_ms, report)
}

/// Feeds what a connection still holds (at its close or the end of the capture) and
/// closes it.
fn finish(recorder: &Recorder, mut conn: Connection, report: &mut ImportReport) -> Result<(), ImportError> {
    conn.decide_by_first_speaker();
    conn.feed_undecided(recorder, report)?;
    let analyzer = conn.analyzer;
    let mut flows: Vec<(SocketAddr, Direction)> = conn.directions.drain().collect();
    flows.sort_by_key(|(from, _)| Some(*from) != analyzer);
    for (from, mut direction) in flows {
        let (rest, missing) = direction.leftover();
        report.missing_bytes += missing;
        if !rest.is_empty() {
            let to = conn.peer_of(from);
            let at_ms = conn.last_ms;
            conn.feed(recorder, from, to, &rest, at_ms, report)?;
        }
    }
    let events = conn
        .framer
        .close(InterruptionReason::ConnectionClosed, conn.last_ms);
    apply(recorder, &mut conn, events, report)?;
    report.connections += usize::from(conn.carried_data);
    Ok(())
}

fn apply(
    recorder: &Recorder,
    conn: &mut Connection,
    events: Vec<Framed>,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let failed = ImportError::Recording;
    for event in events {
        match event {
            Framed::Begin { at, .. } => {
                conn.open = Some(recorder.begin(&conn.endpoints, at).map_err(failed)?)
            }
            Framed::Element(element) => {
                if let Some(open) = conn.open.as_mut() {
                    open.append(&element).map_err(failed)?;
                }
            }
            Framed::Complete { at } => {
                if let Some(open) = conn.open.take() {
                    open.complete(at).map_err(failed)?;
                    report.sessions += 1;
                    report.complete += 1;
                }
            }
            Framed::Abandon { at, reason } => {
                if let Some(open) = conn.open.take() {
                    open.abandon(at, reason).map_err(failed)?;
                    report.sessions += 1;
                    report.interrupted += 1;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 7], port))
    }

    #[test]
    fn bytes_held_until_the_analyzer_is_known_stop_counting_once_fed() {
        let tmp = tempfile::tempdir().unwrap();
        let store =
            session_store::SessionStore::open(tmp.path(), session_store::DecodeOptions::default()).unwrap();
        let recorder = Recorder::new(store);
        let (analyzer, lis) = (at(50_000), at(5_000));
        let mut conn = Connection::new(
            key(analyzer, lis),
            1,
            (Framing::Markers, Markers::default(), Limits::default()),
            0,
        );
        let mut report = ImportReport::default();
        let segment_of = |from, to, seq, payload: &[u8]| Segment {
            at_ms: 1,
            from,
            to,
            seq,
            syn: false,
            ack: true,
            fin: false,
            rst: false,
            payload: payload.to_vec(),
        };
        let markers = Markers::default();
        segment(
            &recorder,
            &mut conn,
            &segment_of(lis, analyzer, 7_000, b"\x06\x06\x06"),
            markers,
            &mut report,
        )
        .unwrap();
        assert_eq!(conn.held(), 3, "held while no side has started");
        segment(
            &recorder,
            &mut conn,
            &segment_of(analyzer, lis, 1_000, b"\x05"),
            markers,
            &mut report,
        )
        .unwrap();
        assert_eq!(conn.analyzer, Some(analyzer));
        assert_eq!(conn.held(), 0, "fed once the start decided: no longer held");
    }
}
