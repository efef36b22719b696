//! `import-pcap`: the sessions of an analyzer–LIS conversation taken with tcpdump or
//! Wireshark (pcap or pcapng), recorded as if they had passed the relay.
//!
//! Each TCP connection is reassembled per direction (retransmitted bytes once,
//! out-of-order segments put in order), its analyzer is the side that opened it (sent
//! the SYN; without one, the side that sent the first start marker), and its bytes are
//! fed to the same [`ConnectionFramer`] and [`Recorder`] as live capture, in capture order, with
//! the packets' own times. Bytes a capture missed (a gap in sequence numbers) are
//! reported, never invented.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use session_capture::{ConnectionFramer, Endpoints, Framed, Framing, Markers, OpenCapture, Recorder, Side};
use session_model::InterruptionReason;

use crate::error::CliError;

/// What an import found and recorded.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImportReport {
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

/// One packet of a TCP connection.
struct Segment {
    at_ms: u64,
    from: SocketAddr,
    to: SocketAddr,
    seq: u32,
    syn: bool,
    ack: bool,
    payload: Vec<u8>,
}

/// Hands every TCP segment of a pcap or pcapng file to `visit`, in capture order, one
/// packet at a time (a capture of any size is never held in memory); returns how many
/// packets were not TCP over IP.
fn for_each_segment(
    path: &Path,
    mut visit: impl FnMut(Segment) -> Result<(), CliError>,
) -> Result<usize, CliError> {
    let bad = |e: &dyn std::fmt::Display| CliError::BadInput(format!("{}: {e}", path.display()));
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| bad(&e))?);
    let pcapng = file
        .fill_buf()
        .map_err(|e| bad(&e))?
        .starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]);
    let mut skipped = 0;
    let mut push = |link: DataLink, at: std::time::Duration, data: &[u8]| match segment(link, at, data) {
        Some(s) => visit(s),
        None => {
            skipped += 1;
            Ok(())
        }
    };
    if pcapng {
        let mut reader = pcap_file::pcapng::PcapNgReader::new(file).map_err(|e| bad(&e))?;
        let mut links = Vec::new();
        while let Some(block) = reader.next_block() {
            match block.map_err(|e| bad(&e))? {
                pcap_file::pcapng::Block::InterfaceDescription(interface) => links.push(interface.linktype),
                pcap_file::pcapng::Block::EnhancedPacket(packet) => {
                    let link = links.get(packet.interface_id as usize).copied();
                    push(link.unwrap_or(DataLink::ETHERNET), packet.timestamp, &packet.data)?;
                }
                _ => {}
            }
        }
    } else {
        let mut reader = pcap_file::pcap::PcapReader::new(file).map_err(|e| bad(&e))?;
        let link = reader.header().datalink;
        while let Some(packet) = reader.next_packet() {
            let packet = packet.map_err(|e| bad(&e))?;
            push(link, packet.timestamp, &packet.data)?;
        }
    }
    Ok(skipped)
}

fn segment(link: DataLink, at: std::time::Duration, data: &[u8]) -> Option<Segment> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data).ok()?,
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data).ok()?,
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data).ok()?,
        _ => return None,
    };
    let (source, destination) = match sliced.net? {
        NetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
        ),
        NetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
        ),
        _ => return None,
    };
    let TransportSlice::Tcp(tcp) = sliced.transport? else {
        return None;
    };
    Some(Segment {
        at_ms: at.as_millis() as u64,
        from: SocketAddr::new(source, tcp.source_port()),
        to: SocketAddr::new(destination, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        payload: tcp.payload().to_vec(),
    })
}

/// One direction of a connection, put back in order.
#[derive(Default)]
struct Direction {
    /// The next sequence number expected; `None` until the first segment.
    next: Option<u32>,
    /// Segments that arrived ahead of a gap, by sequence number.
    ahead: BTreeMap<u32, Vec<u8>>,
}

impl Direction {
    /// The bytes `seq`/`payload` adds to the stream, in order (retransmitted bytes
    /// dropped, segments ahead of a gap held back until it fills).
    fn accept(&mut self, seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
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
    fn leftover(&mut self) -> (Vec<u8>, u64) {
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

/// One connection: its sides, its machine, its open capture.
struct Connection {
    analyzer: Option<SocketAddr>,
    directions: HashMap<SocketAddr, Direction>,
    framer: ConnectionFramer,
    open: Option<OpenCapture>,
    endpoints: Endpoints,
    last_ms: u64,
    carried_data: bool,
}

fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b { (a, b) } else { (b, a) }
}

/// Reads `path` and records its sessions through `recorder`.
pub(crate) fn import(
    recorder: &Recorder,
    path: &Path,
    framing: Framing,
    markers: Markers,
) -> Result<ImportReport, CliError> {
    let mut report = ImportReport::default();
    let mut connections: HashMap<(SocketAddr, SocketAddr), Connection> = HashMap::new();
    let mut order = Vec::new();
    report.skipped_packets = for_each_segment(path, |s| {
        let k = key(s.from, s.to);
        let conn = connections.entry(k).or_insert_with(|| {
            order.push(k);
            Connection {
                analyzer: None,
                directions: HashMap::new(),
                framer: ConnectionFramer::new(framing, markers),
                open: None,
                endpoints: Endpoints::default(),
                last_ms: s.at_ms,
                carried_data: false,
            }
        });
        // A quiet time since the connection's last packet ends an MLLP burst.
        let events = conn.framer.idle(s.at_ms);
        apply(recorder, conn, events, &mut report)?;
        conn.last_ms = s.at_ms;
        if s.syn && !s.ack {
            conn.analyzer = Some(s.from);
        }
        let bytes = conn
            .directions
            .entry(s.from)
            .or_default()
            .accept(s.seq, s.syn, &s.payload);
        if bytes.is_empty() {
            return Ok(());
        }
        if conn.analyzer.is_none()
            && matches!(bytes.first(), Some(&b) if b == markers.start || b == session_capture::START_BLOCK)
        {
            conn.analyzer = Some(s.from);
        }
        let analyzer = *conn.analyzer.get_or_insert(s.from);
        let (device, lis) = if s.from == analyzer {
            (s.from, s.to)
        } else {
            (s.to, s.from)
        };
        conn.endpoints = Endpoints {
            device_ip: Some(device.ip().to_string()),
            lis_ip: Some(lis.ip().to_string()),
        };
        conn.carried_data = true;
        let side = if s.from == analyzer {
            Side::Device
        } else {
            Side::Lis
        };
        let events = conn.framer.feed(side, &bytes, s.at_ms);
        apply(recorder, conn, events, &mut report)
    })?;
    for k in order {
        let Some(mut conn) = connections.remove(&k) else {
            continue;
        };
        let analyzer = conn.analyzer;
        let mut flows: Vec<(SocketAddr, Direction)> = conn.directions.drain().collect();
        flows.sort_by_key(|(from, _)| Some(*from) != analyzer);
        for (from, mut direction) in flows {
            let (rest, missing) = direction.leftover();
            report.missing_bytes += missing;
            if !rest.is_empty() {
                let side = if Some(from) == analyzer {
                    Side::Device
                } else {
                    Side::Lis
                };
                let events = conn.framer.feed(side, &rest, conn.last_ms);
                apply(recorder, &mut conn, events, &mut report)?;
            }
        }
        let events = conn
            .framer
            .close(InterruptionReason::ConnectionClosed, conn.last_ms);
        apply(recorder, &mut conn, events, &mut report)?;
        report.connections += usize::from(conn.carried_data);
    }
    Ok(report)
}

fn apply(
    recorder: &Recorder,
    conn: &mut Connection,
    events: Vec<Framed>,
    report: &mut ImportReport,
) -> Result<(), CliError> {
    let failed = |e: session_capture::CaptureError| CliError::Failed(format!("recording: {e}"));
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
            // A kind of event a later framing adds: nothing an import records.
            _ => {}
        }
    }
    Ok(())
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
