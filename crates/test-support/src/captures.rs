//! pcap captures built packet by packet, in memory: one analyzer
//! and one LIS talking TCP over Ethernet.

use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapPacket, PcapWriter};

/// The analyzer's address and port.
pub const ANALYZER: ([u8; 4], u16) = ([10, 0, 0, 7], 50_000);
/// The LIS's address and port.
pub const LIS: ([u8; 4], u16) = ([10, 0, 0, 1], 5_000);
/// The first packet's time, epoch ms.
pub const T0: u64 = 1_762_600_000_000;

/// One TCP segment between [`ANALYZER`] and [`LIS`] as an Ethernet frame. `flags`:
/// "S" SYN, "SA" SYN-ACK, "F" FIN, "R" RST; every segment but a SYN carries an ACK.
pub fn frame(from_analyzer: bool, seq: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
    frame_on(ANALYZER.1, from_analyzer, seq, flags, payload)
}

/// [`frame`] of the analyzer's connection from `port` (another connection of the
/// same analyzer).
pub fn frame_on(port: u16, from_analyzer: bool, seq: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
    let analyzer = (ANALYZER.0, port);
    let ((src, sport), (dst, dport)) = if from_analyzer {
        (analyzer, LIS)
    } else {
        (LIS, analyzer)
    };
    let mut tcp = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 65_535);
    if flags.contains('S') {
        tcp = tcp.syn();
    }
    if flags.contains('A') || !flags.contains('S') {
        tcp = tcp.ack(1);
    }
    if flags.contains('F') {
        tcp = tcp.fin();
    }
    if flags.contains('R') {
        tcp = tcp.rst();
    }
    let mut out = Vec::with_capacity(tcp.size(payload.len()));
    tcp.write(&mut out, payload).expect("a frame fits in memory");
    out
}

/// A pcap file of `frames`: at `times` (epoch ms, one per frame), or 10 ms apart from
/// [`T0`].
pub fn pcap(frames: &[Vec<u8>], times: Option<&[u64]>) -> Vec<u8> {
    let mut writer = PcapWriter::new(Vec::new()).expect("a pcap header fits in memory");
    for (i, f) in frames.iter().enumerate() {
        let at = times.map_or(T0 + 10 * i as u64, |t| t[i]);
        writer
            .write_packet(&PcapPacket::new(Duration::from_millis(at), f.len() as u32, f))
            .expect("a packet fits in memory");
    }
    writer.into_writer()
}
