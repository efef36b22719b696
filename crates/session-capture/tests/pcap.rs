//! `session_capture::pcap` on captures built here packet by packet, in memory: the
//! analyzer is the side that opened the connection (or, without a SYN, the side that
//! sent the first start), retransmissions count once, out-of-order segments are put in
//! order, gaps are counted and never invented, the packets' times are kept, packets
//! that are not TCP are skipped and counted, and input that is no capture is refused.
#![cfg(feature = "pcap")]

use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapPacket, PcapWriter};
use session_capture::pcap::{ImportError, ImportReport, Limits, import, import_with};
use session_capture::{Framing, Markers, Recorder};
use session_model::{Direction, ElementKind, InterruptionReason, Session};
use session_store::{DecodeOptions, SessionStore, StoredEntry};
use test_support::captures::{ANALYZER, LIS, T0, frame, pcap};

fn udp_frame() -> Vec<u8> {
    let udp = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(ANALYZER.0, LIS.0, 64)
        .udp(53, 53);
    let mut out = Vec::new();
    udp.write(&mut out, b"not tcp").unwrap();
    out
}

fn imported(capture: &[u8], framing: Framing) -> (tempfile::TempDir, ImportReport, Vec<Session>) {
    imported_within(capture, framing, Limits::default())
}

fn imported_within(
    capture: &[u8],
    framing: Framing,
    limits: Limits,
) -> (tempfile::TempDir, ImportReport, Vec<Session>) {
    let tmp = tempfile::tempdir().unwrap();
    let store = SessionStore::open(tmp.path(), DecodeOptions::default()).unwrap();
    let report = import_with(
        &Recorder::new(store.clone()),
        capture,
        framing,
        Markers::default(),
        limits,
    )
    .unwrap();
    let mut sessions: Vec<Session> = store
        .entries()
        .unwrap()
        .map(|entry| match entry {
            StoredEntry::Valid(chained) => chained.session,
            other => panic!("not a valid session: {other:?}"),
        })
        .collect();
    sessions.sort_by_key(|s| s.start_time);
    (tmp, report, sessions)
}

fn kinds(session: &Session) -> Vec<(ElementKind, Direction)> {
    session
        .elements
        .iter()
        .map(|e| (e.kind.clone(), e.direction.clone()))
        .collect()
}

const M1: &[u8] = b"MSH|^~\\&|AN|LAB|||20251102||ORU^R01|P1|P|2.5\rOBX|1|NM|GLU||5.6\r\n";

#[test]
fn a_conversation_becomes_its_sessions_in_order_with_the_packets_times() {
    let (first, second) = M1.split_at(20);
    let a = 1001u32;
    let frames = vec![
        frame(true, 1000, "S", b""),
        frame(false, 7000, "SA", b""),
        frame(true, a, "", b"\x05"),
        frame(false, 7001, "", b"\x06"),
        // The second half overtakes the first, and the first is sent twice.
        frame(true, a + 1 + first.len() as u32, "", second),
        frame(true, a + 1, "", first),
        frame(true, a + 1, "", first),
        frame(false, 7002, "", b"\x06"),
        udp_frame(),
        frame(true, a + 1 + M1.len() as u32, "", b"\x04"),
        // A second transmission on the same connection, cut off by the end of the capture.
        frame(true, a + 2 + M1.len() as u32, "", b"\x05MSH|cut"),
        frame(true, a + 10 + M1.len() as u32, "F", b""),
    ];
    let (_tmp, report, sessions) = imported(&pcap(&frames, None), Framing::Markers);
    assert_eq!(
        (
            report.connections,
            report.sessions,
            report.complete,
            report.interrupted
        ),
        (1, 2, 1, 1),
        "{report:?}"
    );
    assert_eq!(
        (report.skipped_packets, report.missing_bytes),
        (1, 0),
        "{report:?}"
    );
    let [complete, cut] = &sessions[..] else {
        panic!("{sessions:?}")
    };
    assert_eq!(complete.device_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(complete.lis_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(complete.start_time, T0 + 20, "the packet's own time");
    assert!(complete.is_complete && complete.interrupted.is_none());
    let to_pc = Direction::DeviceToPc;
    let to_device = Direction::PcToDevice;
    assert_eq!(
        kinds(complete),
        [
            (ElementKind::Start, to_pc.clone()),
            (ElementKind::Ack, to_device.clone()),
            (ElementKind::Message, to_pc.clone()),
            (ElementKind::Ack, to_device.clone()),
            (ElementKind::End, to_pc)
        ]
    );
    assert_eq!(
        complete.elements[2].data.0, M1,
        "in order, the retransmission once"
    );
    assert!(!cut.is_complete && cut.interrupted.is_some());
    assert_eq!(cut.start_time, T0 + 100);
}

#[test]
fn without_a_syn_the_side_that_sends_the_first_start_is_the_analyzer() {
    // The capture begins mid-connection: the LIS speaks first (a stray ACK), and the
    // analyzer is still the side that opens the session.
    let frames = vec![
        frame(false, 7001, "", b"\x06"),
        frame(true, 1001, "", b"\x05"),
        frame(false, 7002, "", b"\x06"),
        frame(true, 1002, "", b"\x04"),
    ];
    let (_tmp, report, sessions) = imported(&pcap(&frames, None), Framing::Markers);
    // The stray ACK is kept (nothing captured is lost), as the LIS's, on its own.
    assert_eq!((report.sessions, report.complete), (2, 1), "{report:?}");
    let stray = sessions.iter().find(|s| !s.is_complete).unwrap();
    assert_eq!(kinds(stray)[0], (ElementKind::Stray, Direction::PcToDevice));
    assert_eq!(
        stray.device_ip.as_deref(),
        Some("10.0.0.7"),
        "held bytes keep both ends"
    );
    assert_eq!(stray.lis_ip.as_deref(), Some("10.0.0.1"));
    let complete = sessions.iter().find(|s| s.is_complete).unwrap();
    assert_eq!(complete.device_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(complete.lis_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(
        kinds(complete),
        [
            (ElementKind::Start, Direction::DeviceToPc),
            (ElementKind::Ack, Direction::PcToDevice),
            (ElementKind::End, Direction::DeviceToPc)
        ]
    );
}

#[test]
fn bytes_the_capture_missed_are_counted_and_never_invented() {
    let a = 1001u32;
    let frames = vec![
        frame(true, 1000, "S", b""),
        frame(true, a, "", b"\x05"),
        frame(true, a + 1, "", b"MSH|a"),
        // Five bytes never captured, then the rest.
        frame(true, a + 11, "", b"\r\x04"),
    ];
    let (_tmp, report, sessions) = imported(&pcap(&frames, None), Framing::Markers);
    assert_eq!(report.missing_bytes, 5, "{report:?}");
    // What followed the gap was recorded at the end, still as the analyzer's.
    assert_eq!(report.complete, 1, "{report:?}");
    for session in &sessions {
        assert_eq!(session.device_ip.as_deref(), Some("10.0.0.7"));
        assert_eq!(session.lis_ip.as_deref(), Some("10.0.0.1"));
    }
    let recorded: Vec<u8> = sessions
        .iter()
        .flat_map(|s| s.elements.iter().flat_map(|e| e.data.0.clone()))
        .collect();
    assert!(
        !recorded.windows(5).any(|w| w == [0; 5]),
        "a gap is not filled with anything: {recorded:?}"
    );
}

#[test]
fn an_mllp_capture_becomes_one_session_per_burst() {
    let m1 = b"\x0bMSH|^~\\&|AN|LAB|||20251102||ORU^R01|P1|P|2.5\rOBX|1|NM|GLU||5.6\r\x1c\r";
    let ack = b"\x0bMSH|^~\\&|LIS|HOSP|||20251102||ACK|9|P|2.5\rMSA|AA|P1\r\x1c\r";
    let m2 = b"\x0bMSH|^~\\&|AN|LAB|||20251103||ORU^R01|P2|P|2.5\rOBX|1|NM|HGB||13.2\r\x1c\r";
    let a = 1001u32;
    let frames = vec![
        frame(true, 1000, "S", b""),
        frame(false, 7000, "SA", b""),
        frame(true, a, "", m1),
        frame(false, 7001, "", ack),
        // A minute of quiet, then the next burst on the same connection.
        frame(true, a + m1.len() as u32, "", m2),
        frame(true, a + (m1.len() + m2.len()) as u32, "F", b""),
    ];
    let times = [T0, T0 + 1, T0 + 10, T0 + 20, T0 + 60_000, T0 + 60_010];
    let (_tmp, report, sessions) = imported(&pcap(&frames, Some(&times)), Framing::Auto);
    assert_eq!((report.sessions, report.complete), (2, 2), "{report:?}");
    assert_eq!(sessions[0].start_time, T0 + 10);
    assert_eq!(sessions[1].start_time, T0 + 60_000);
    assert_eq!(
        kinds(&sessions[0]),
        [
            (ElementKind::Start, Direction::DeviceToPc),
            (ElementKind::Message, Direction::DeviceToPc),
            (ElementKind::End, Direction::DeviceToPc),
            (ElementKind::Start, Direction::PcToDevice),
            (ElementKind::Ack, Direction::PcToDevice),
            (ElementKind::End, Direction::PcToDevice)
        ]
    );
}

#[test]
fn a_pcapng_capture_reads_as_a_pcap_one_does() {
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    let frames = [
        frame(true, 1000, "S", b""),
        frame(true, 1001, "", b"\x05"),
        frame(true, 1002, "", b"\x04"),
    ];
    let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
    writer
        .write_pcapng_block(InterfaceDescriptionBlock {
            linktype: pcap_file::DataLink::ETHERNET,
            snaplen: 0,
            options: vec![],
        })
        .unwrap();
    for (i, f) in frames.iter().enumerate() {
        writer
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_millis(T0 + i as u64),
                original_len: f.len() as u32,
                data: f.clone().into(),
                options: vec![],
            })
            .unwrap();
    }
    let (_tmp, report, sessions) = imported(&writer.into_inner(), Framing::Markers);
    assert_eq!((report.sessions, report.complete), (1, 1), "{report:?}");
    assert_eq!(sessions[0].start_time, T0 + 1);
}

#[test]
fn input_that_is_no_capture_is_refused_and_records_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SessionStore::open(tmp.path(), DecodeOptions::default()).unwrap();
    for bogus in [&b"this is not a capture at all"[..], b"", &[0xd4, 0xc3, 0xb2]] {
        let err = import(
            &Recorder::new(store.clone()),
            bogus,
            Framing::Auto,
            Markers::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ImportError::NotACapture(_)), "{err:?}");
    }
    assert_eq!(store.entries().unwrap().count(), 0);
}

/// One TCP segment over IPv6 as a raw IP packet (no link header).
fn raw_v6_frame(from_analyzer: bool, seq: u32, payload: &[u8]) -> Vec<u8> {
    let (analyzer, lis) = ([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7], {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = 1;
        a
    });
    let ((src, sport), (dst, dport)) = if from_analyzer {
        ((analyzer, 50_000), (lis, 5_000))
    } else {
        ((lis, 5_000), (analyzer, 50_000))
    };
    let tcp = PacketBuilder::ipv6(src, dst, 64)
        .tcp(sport, dport, seq, 65_535)
        .ack(1);
    let mut out = Vec::new();
    tcp.write(&mut out, payload).unwrap();
    out
}

fn pcap_of_link(link: pcap_file::DataLink, frames: &[Vec<u8>]) -> Vec<u8> {
    let header = pcap_file::pcap::PcapHeader {
        datalink: link,
        ..Default::default()
    };
    let mut writer = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (i, f) in frames.iter().enumerate() {
        writer
            .write_packet(&PcapPacket::new(
                Duration::from_millis(T0 + i as u64),
                f.len() as u32,
                f,
            ))
            .unwrap();
    }
    writer.into_writer()
}

#[test]
fn raw_ip_captures_of_ipv6_read_as_ethernet_ones_do_and_unknown_links_are_skipped() {
    let frames = vec![
        raw_v6_frame(true, 1001, b"\x05"),
        raw_v6_frame(false, 7001, b"\x06"),
        raw_v6_frame(true, 1002, b"\x04"),
    ];
    let (_tmp, report, sessions) =
        imported(&pcap_of_link(pcap_file::DataLink::RAW, &frames), Framing::Markers);
    assert_eq!(
        (report.sessions, report.complete, report.skipped_packets),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(sessions[0].device_ip.as_deref(), Some("2001:db8::7"));
    assert_eq!(sessions[0].lis_ip.as_deref(), Some("2001:db8::1"));
    let (_tmp, report, sessions) = imported(
        &pcap_of_link(pcap_file::DataLink::USB_LINUX, &frames),
        Framing::Markers,
    );
    assert_eq!((report.sessions, report.skipped_packets), (0, 3), "{report:?}");
    assert!(sessions.is_empty());
}

#[test]
fn a_connection_that_carried_no_data_is_not_counted() {
    let frames = vec![
        frame(true, 1000, "S", b""),
        frame(false, 7000, "SA", b""),
        frame(true, 1001, "F", b""),
    ];
    let (_tmp, report, sessions) = imported(&pcap(&frames, None), Framing::Markers);
    assert_eq!((report.connections, report.sessions), (0, 0), "{report:?}");
    assert!(sessions.is_empty());
}

#[test]
fn without_any_start_the_first_side_to_speak_is_taken_for_the_analyzer() {
    // Only the LIS speaks, and never a start: its bytes are kept, as the device's (there
    // is nothing better to go by), not lost.
    let frames = vec![frame(false, 7001, "", b"\x06"), frame(false, 7002, "", b"\x15")];
    let (_tmp, report, sessions) = imported(&pcap(&frames, None), Framing::Markers);
    assert_eq!((report.connections, report.sessions), (1, 1), "{report:?}");
    assert_eq!(sessions[0].device_ip.as_deref(), Some("10.0.0.1"));
    assert!(
        sessions[0]
            .elements
            .iter()
            .all(|e| e.direction == Direction::DeviceToPc)
    );
}

/// The bytes of `a` recorded as the device's (the held bytes of [`lis_first`]).
fn held_as_device(sessions: &[Session]) -> usize {
    sessions
        .iter()
        .flat_map(|s| &s.elements)
        .filter(|e| e.direction == Direction::DeviceToPc && e.data.0.iter().all(|&b| b == b'a'))
        .map(|e| e.data.0.len())
        .sum()
}

/// The LIS speaks `held` bytes first (no SYN in the capture), then the analyzer starts.
fn lis_first(held: usize) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut seq = 7001u32;
    let mut left = held;
    while left > 0 {
        let n = left.min(60_000);
        frames.push(frame(false, seq, "", &vec![b'a'; n]));
        seq = seq.wrapping_add(n as u32);
        left -= n;
    }
    frames.push(frame(true, 1001, "", b"\x05"));
    frames.push(frame(true, 1002, "", b"\x04"));
    frames
}

#[test]
fn bytes_before_the_first_start_are_held_up_to_a_mebibyte_then_the_first_speaker_decides() {
    // Exactly a mebibyte is held: the start that follows decides, and the session is
    // the analyzer's.
    let (_tmp, _report, sessions) = imported(&pcap(&lis_first(1 << 20), None), Framing::Markers);
    let complete: Vec<_> = sessions.iter().filter(|s| s.is_complete).collect();
    assert_eq!(complete.len(), 1, "{sessions:?}");
    assert_eq!(complete[0].device_ip.as_deref(), Some("10.0.0.7"));
    // One byte more and the first speaker, the LIS, is taken for the device: its bytes
    // are the device's, and the real analyzer's start is not one.
    let (_tmp, _report, sessions) = imported(&pcap(&lis_first((1 << 20) + 1), None), Framing::Markers);
    assert!(sessions.iter().all(|s| !s.is_complete), "{sessions:?}");
    assert!(
        sessions
            .iter()
            .all(|s| s.device_ip.as_deref() == Some("10.0.0.1"))
    );
    let held = held_as_device(&sessions);
    assert_eq!(held, (1 << 20) + 1, "every held byte kept, as the device's");
}

#[test]
fn at_the_end_the_analyzers_held_bytes_go_first() {
    // Both sides end with bytes behind a gap the capture missed; the analyzer's end
    // closes the session before the LIS's late ACK, which is kept after it.
    let frames = vec![
        frame(true, 1000, "S", b""),
        frame(false, 7000, "SA", b""),
        frame(true, 1001, "", b"\x05"),
        frame(true, 1003, "", b"\x04"),
        frame(false, 7003, "", b"\x06"),
    ];
    let (_tmp, report, sessions) = imported(&pcap(&frames, None), Framing::Markers);
    assert_eq!(report.missing_bytes, 3, "{report:?}");
    let complete = sessions
        .iter()
        .find(|s| s.is_complete)
        .expect("a complete session");
    assert_eq!(
        kinds(complete),
        [
            (ElementKind::Start, Direction::DeviceToPc),
            (ElementKind::End, Direction::DeviceToPc)
        ]
    );
}

#[test]
fn linux_cooked_captures_and_pcapng_interfaces_of_other_links_are_read() {
    let sll = |from_analyzer: bool, seq: u32, payload: &[u8]| {
        let ((src, sport), (dst, dport)) = if from_analyzer {
            (ANALYZER, LIS)
        } else {
            (LIS, ANALYZER)
        };
        let tcp = PacketBuilder::linux_sll(
            etherparse::LinuxSllPacketType::OUTGOING,
            6,
            [1, 2, 3, 4, 5, 6, 0, 0],
        )
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 65_535)
        .ack(1);
        let mut out = Vec::new();
        tcp.write(&mut out, payload).unwrap();
        out
    };
    let frames = vec![
        sll(true, 1001, b"\x05"),
        sll(false, 7001, b"\x06"),
        sll(true, 1002, b"\x04"),
    ];
    let (_tmp, report, sessions) = imported(
        &pcap_of_link(pcap_file::DataLink::LINUX_SLL, &frames),
        Framing::Markers,
    );
    assert_eq!((report.complete, report.skipped_packets), (1, 0), "{report:?}");
    assert_eq!(sessions[0].device_ip.as_deref(), Some("10.0.0.7"));

    // A pcapng file whose interface is raw IP (not Ethernet): its packets read by it.
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    let raw = [
        raw_v6_frame(true, 1001, b"\x05"),
        raw_v6_frame(true, 1002, b"\x04"),
    ];
    let mut writer = PcapNgWriter::new(Vec::new()).unwrap();
    writer
        .write_pcapng_block(InterfaceDescriptionBlock {
            linktype: pcap_file::DataLink::RAW,
            snaplen: 0,
            options: vec![],
        })
        .unwrap();
    for (i, f) in raw.iter().enumerate() {
        writer
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_millis(T0 + i as u64),
                original_len: f.len() as u32,
                data: f.clone().into(),
                options: vec![],
            })
            .unwrap();
    }
    let (_tmp, report, sessions) = imported(&writer.into_inner(), Framing::Markers);
    assert_eq!((report.complete, report.skipped_packets), (1, 0), "{report:?}");
    assert_eq!(sessions[0].device_ip.as_deref(), Some("2001:db8::7"));
}

#[test]
fn a_syn_on_the_ends_of_a_closed_connection_opens_a_new_one() {
    // The analyzer reconnects from the same port with new sequence numbers: the first
    // connection's cut session is kept, and the second connection's session is read
    // from its own sequence numbers.
    let frames = vec![
        frame(true, 1000, "S", b""),
        frame(false, 7000, "SA", b""),
        frame(true, 1001, "", b"\x05MSH|cut"),
        frame(true, 1009, "F", b""),
        frame(false, 7001, "F", b""),
        frame(true, 90_000, "S", b""),
        frame(false, 3_000_000, "SA", b""),
        frame(true, 90_001, "", b"\x05"),
        frame(false, 3_000_001, "", b"\x06"),
        frame(true, 90_002, "", b"\x04"),
    ];
    let (_tmp, report, sessions) = imported(&pcap(&frames, None), Framing::Markers);
    assert_eq!(
        (
            report.connections,
            report.sessions,
            report.complete,
            report.interrupted
        ),
        (2, 2, 1, 1),
        "{report:?}"
    );
    assert_eq!(report.missing_bytes, 0, "{report:?}");
    let [cut, complete] = &sessions[..] else {
        panic!("{sessions:?}")
    };
    let interruption = cut.interrupted.as_ref().expect("cut off");
    assert_eq!(interruption.reason, InterruptionReason::ConnectionClosed);
    assert_eq!(interruption.at, T0 + 40, "cut off when the connection closed");
    assert_eq!(
        kinds(complete),
        [
            (ElementKind::Start, Direction::DeviceToPc),
            (ElementKind::Ack, Direction::PcToDevice),
            (ElementKind::End, Direction::DeviceToPc)
        ]
    );
}

#[test]
fn a_reset_connection_is_cut_off_at_the_reset_and_later_bytes_are_kept_apart() {
    // A byte the LIS had in flight arrives after the reset: the cut session ends at
    // the reset, and the byte is kept on its own.
    let frames = vec![
        frame(true, 1000, "S", b""),
        frame(false, 7000, "SA", b""),
        frame(true, 1001, "", b"\x05MSH|cut"),
        frame(false, 7001, "R", b""),
        frame(false, 7001, "", b"\x06"),
    ];
    let times = [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 5_000];
    let (_tmp, report, sessions) = imported(&pcap(&frames, Some(&times)), Framing::Markers);
    assert_eq!((report.sessions, report.interrupted), (2, 2), "{report:?}");
    let [cut, late] = &sessions[..] else {
        panic!("{sessions:?}")
    };
    assert_eq!(
        cut.interrupted.as_ref().map(|i| i.at),
        Some(T0 + 3),
        "cut off at the reset"
    );
    assert_eq!(
        kinds(cut),
        [
            (ElementKind::Start, Direction::DeviceToPc),
            (ElementKind::Fragment, Direction::DeviceToPc)
        ]
    );
    assert_eq!(late.start_time, T0 + 5_000);
    assert_eq!(late.elements.len(), 1, "{late:?}");
    assert_eq!(late.elements[0].data.0, b"\x06");
}

#[test]
fn many_small_segments_before_the_first_start_are_held_to_the_same_mebibyte() {
    // The hold is counted in bytes, however the LIS cuts them: 16-byte segments up to
    // one byte past the mebibyte, then the analyzer's start.
    let mut frames = Vec::new();
    let mut seq = 7001u32;
    let mut left = (1usize << 20) + 1;
    while left > 0 {
        let n = left.min(16);
        frames.push(frame(false, seq, "", &vec![b'a'; n]));
        seq += n as u32;
        left -= n;
    }
    frames.push(frame(true, 1001, "", b"\x05"));
    frames.push(frame(true, 1002, "", b"\x04"));
    let (_tmp, _report, sessions) = imported(&pcap(&frames, None), Framing::Markers);
    assert!(
        sessions.iter().all(|s| !s.is_complete),
        "the LIS was taken for the device"
    );
    let held = held_as_device(&sessions);
    assert_eq!(held, (1 << 20) + 1, "every held byte kept");
}

/// The analyzer's connection from `port`: its SYN and start, the byte after the start
/// never captured, then `bytes` of `x` in segments of `chunk` waiting behind that gap.
/// Returns the sequence number after them.
fn waiting_behind_a_gap(frames: &mut Vec<Vec<u8>>, port: u16, bytes: usize, chunk: usize) -> u32 {
    use test_support::captures::frame_on;
    frames.push(frame_on(port, true, 1000, "S", b""));
    frames.push(frame_on(port, true, 1001, "", b"\x05"));
    let mut seq = 1003u32;
    while ((seq - 1003) as usize) < bytes {
        frames.push(frame_on(port, true, seq, "", &vec![b'x'; chunk]));
        seq += chunk as u32;
    }
    seq
}

#[test]
fn bytes_waiting_behind_gaps_in_many_connections_are_bounded_together() {
    // Five connections each miss the byte after their start and send kilobytes after
    // it: each under its own limit, together past the limit of all. The one holding
    // most, the first, is cut off then (its wait given up as missed, its bytes
    // recorded), and its end, sent last, goes on as a new connection, kept on its own.
    // Nothing is lost.
    use test_support::captures::frame_on;
    let limits = Limits::new(64 << 10, 16 << 10, 256 << 10);
    let chunk = 4_000;
    let sizes = [16, 14, 14, 14, 14].map(|chunks| chunks * chunk);
    let mut frames = Vec::new();
    let mut ends = Vec::new();
    for (port, size) in (50_001..).zip(sizes) {
        let end = waiting_behind_a_gap(&mut frames, port, size, chunk);
        ends.push(frame_on(port, true, end, "", b"\x04"));
    }
    // The others end at once; the first, last.
    frames.extend(ends[1..].iter().cloned());
    frames.push(ends[0].clone());
    let (_tmp, report, sessions) = imported_within(&pcap(&frames, None), Framing::Markers, limits);
    assert_eq!(report.connections, 6, "the first goes on as a sixth: {report:?}");
    assert_eq!(
        report.missing_bytes, 5,
        "each connection's one missed byte: {report:?}"
    );
    let xs = |s: &Session| -> usize {
        s.elements
            .iter()
            .map(|e| e.data.0.iter().filter(|&&b| b == b'x').count())
            .sum()
    };
    let cut: Vec<usize> = sessions
        .iter()
        .filter(|s| s.interrupted.is_some())
        .map(xs)
        .collect();
    assert_eq!(
        cut,
        [sizes[0], 0],
        "the largest cut off whole, then its end alone: {report:?}"
    );
    assert_eq!(report.complete, 4, "{report:?}");
    let recorded: usize = sessions.iter().map(xs).sum();
    assert_eq!(
        recorded,
        sizes.iter().sum::<usize>(),
        "every byte that was captured is recorded"
    );
    // With the default limits nothing is cut.
    let (_tmp, report, _) = imported(&pcap(&frames, None), Framing::Markers);
    assert_eq!((report.connections, report.complete), (5, 5), "{report:?}");
}

#[test]
fn a_session_that_begins_behind_a_gap_keeps_both_ends() {
    // The analyzer's first byte was missed, so its start waits behind the gap until the
    // end of the capture: the session it begins then still names both ends.
    let frames = vec![
        frame(true, 1000, "S", b""),
        frame(false, 7000, "SA", b""),
        frame(true, 1002, "", b"\x05MSH|late"),
    ];
    let (_tmp, report, sessions) = imported(&pcap(&frames, None), Framing::Markers);
    assert_eq!((report.sessions, report.missing_bytes), (1, 1), "{report:?}");
    assert_eq!(sessions[0].device_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(sessions[0].lis_ip.as_deref(), Some("10.0.0.1"));
}

#[test]
fn a_syn_on_a_connection_still_open_opens_a_new_one_and_a_repeated_syn_ack_does_not() {
    // The analyzer restarts and reconnects from the same port: the capture holds no FIN
    // or RST of the first connection. Then, on the second, the LIS's SYN-ACK is
    // captured twice.
    let frames = vec![
        frame(true, 1000, "S", b""),
        frame(false, 7000, "SA", b""),
        frame(true, 1001, "", b"\x05MSH|cut"),
        frame(true, 90_000, "S", b""),
        frame(false, 3_000_000, "SA", b""),
        frame(true, 90_001, "", b"\x05"),
        frame(false, 3_000_001, "", b"\x06"),
        frame(false, 3_000_000, "SA", b""),
        frame(true, 90_002, "", b"\x04"),
    ];
    let (_tmp, report, sessions) = imported(&pcap(&frames, None), Framing::Markers);
    assert_eq!(
        (
            report.connections,
            report.complete,
            report.interrupted,
            report.missing_bytes
        ),
        (2, 1, 1, 0),
        "{report:?}"
    );
    assert!(sessions[0].interrupted.is_some() && sessions[1].is_complete);
}

#[test]
fn connections_open_at_the_end_are_closed_in_the_order_they_opened() {
    // Six connections whose starts wait behind a gap until the end of the capture: their
    // sessions begin at the end, numbered in the order the connections opened.
    use test_support::captures::frame_on;
    let mut frames = Vec::new();
    for port in 50_001..=50_006u16 {
        frames.push(frame_on(port, true, 1000, "S", b""));
        frames.push(frame_on(
            port,
            true,
            1002,
            "",
            format!("\x05MSH|{port}").as_bytes(),
        ));
    }
    let (_tmp, report, sessions) = imported(&pcap(&frames, None), Framing::Markers);
    assert_eq!(report.sessions, 6, "{report:?}");
    let mut by_number: Vec<&Session> = sessions.iter().collect();
    by_number.sort_by_key(|s| s.session_number);
    let starts: Vec<u64> = by_number.iter().map(|s| s.start_time).collect();
    let mut in_order = starts.clone();
    in_order.sort();
    assert_eq!(starts, in_order, "numbered in the order the connections opened");
}

#[test]
fn a_reopened_connection_no_longer_counts_toward_the_limit_of_all() {
    // C and A wait behind gaps (30 + 40 KB); A reconnects, which ends its wait; then B
    // waits 75 KB: 105 KB with C's, past the 100 KB limit, so B (holding most) is cut
    // off and its end goes on as a connection of its own. C completes at the end.
    use test_support::captures::frame_on;
    let limits = Limits::new(96_000, 16_000, 100_000);
    let waiting =
        |frames: &mut Vec<Vec<u8>>, port: u16, bytes: usize| waiting_behind_a_gap(frames, port, bytes, 5_000);
    let mut frames = Vec::new();
    let c_end = waiting(&mut frames, 50_003, 30_000);
    waiting(&mut frames, 50_001, 40_000);
    frames.push(frame_on(50_001, true, 90_000, "S", b""));
    frames.push(frame_on(50_001, true, 90_001, "", b"\x05"));
    frames.push(frame_on(50_001, true, 90_002, "", b"\x04"));
    let b_end = waiting(&mut frames, 50_002, 75_000);
    frames.push(frame_on(50_002, true, b_end, "", b"\x04"));
    frames.push(frame_on(50_003, true, c_end, "", b"\x04"));
    let (_tmp, report, _) = imported_within(&pcap(&frames, None), Framing::Markers, limits);
    // C, A's two connections, B cut off, and B's end on its own.
    assert_eq!(report.connections, 5, "{report:?}");
    // Complete: C and A's second; cut off: A's first, B, and B's end alone.
    assert_eq!((report.complete, report.interrupted), (2, 3), "{report:?}");
}

#[test]
fn a_connection_closed_both_ways_is_cut_off_at_its_close_and_a_late_byte_kept_apart() {
    // The LIS's ACK arrives after both FINs (captured late): the cut session ends at
    // the second FIN, and the byte is kept on its own.
    let frames = vec![
        frame(true, 1000, "S", b""),
        frame(false, 7000, "SA", b""),
        frame(true, 1001, "", b"\x05MSH|cut"),
        frame(true, 1009, "F", b""),
        frame(true, 1009, "F", b""),
        frame(false, 7001, "F", b""),
        frame(false, 7001, "", b"\x06"),
    ];
    let times = [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4, T0 + 5, T0 + 9_000];
    let (_tmp, report, sessions) = imported(&pcap(&frames, Some(&times)), Framing::Markers);
    assert_eq!((report.sessions, report.interrupted), (2, 2), "{report:?}");
    let [cut, late] = &sessions[..] else {
        panic!("{sessions:?}")
    };
    assert_eq!(
        cut.interrupted.as_ref().map(|i| i.at),
        Some(T0 + 5),
        "cut off at the close"
    );
    assert_eq!(late.start_time, T0 + 9_000);
}

#[test]
fn a_reset_connection_no_longer_counts_toward_the_limit_of_all() {
    // A waits 60 KB behind a gap and is reset; B then waits 60 KB: under the 100 KB
    // limit once A's wait is gone, so B is never cut off.
    use test_support::captures::frame_on;
    let limits = Limits::new(96_000, 16_000, 100_000);
    let mut frames = Vec::new();
    let mut waiting = |port: u16, bytes: usize| waiting_behind_a_gap(&mut frames, port, bytes, 5_000);
    let a_end = waiting(50_001, 60_000);
    let b_end = waiting(50_002, 60_000);
    // A's reset comes before B's bytes: move it there.
    let reset = frame_on(50_001, true, a_end, "R", b"");
    let b_start = frames.len() - 2 - 12;
    frames.insert(b_start, reset);
    frames.push(frame_on(50_002, true, b_end, "", b"\x04"));
    let (_tmp, report, _) = imported_within(&pcap(&frames, None), Framing::Markers, limits);
    assert_eq!(report.connections, 2, "B was never cut off: {report:?}");
    assert_eq!((report.complete, report.interrupted), (1, 1), "{report:?}");
}

#[test]
fn after_a_cut_the_rest_still_counts_toward_the_limit_of_all() {
    // A, B and C wait 50 + 30 + 30 KB: past the 100 KB limit, A (holding most) is cut
    // off, and 60 KB still wait. D then waits 45 KB: 105 KB, so D is cut off in its turn
    // and its end goes on as a connection of its own.
    use test_support::captures::frame_on;
    let limits = Limits::new(96_000, 16_000, 100_000);
    let mut frames = Vec::new();
    let mut waiting = |port: u16, bytes: usize| waiting_behind_a_gap(&mut frames, port, bytes, 5_000);
    waiting(50_001, 50_000);
    waiting(50_002, 30_000);
    waiting(50_003, 30_000);
    let d_end = waiting(50_004, 45_000);
    frames.push(frame_on(50_004, true, d_end, "", b"\x04"));
    let (_tmp, report, _) = imported_within(&pcap(&frames, None), Framing::Markers, limits);
    assert_eq!(
        report.connections, 5,
        "A, B, C, D cut off, and D's end: {report:?}"
    );
}
