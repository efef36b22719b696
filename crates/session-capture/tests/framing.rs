//! The marker state machine over byte streams: the same conversation split at every
//! position gives the same record, every byte that passed is in it exactly once, and
//! each rule the app left open has a snapshot.

mod common;

use common::{Conversation, recorded, render};
use session_capture::{Framed, Framer, Markers, Side};
use session_model::InterruptionReason;

const NORMAL: Conversation = &[
    (Side::Device, b"\x05"),
    (Side::Lis, b"\x06"),
    (Side::Device, b"MSH|^~\\&|AN|LAB\rPID|1||7\r\n"),
    (Side::Lis, b"\x06"),
    (Side::Device, b"MSH|^~\\&|AN|LAB\rOBX|1|NM|GLU||5.6\r\n"),
    (Side::Lis, b"\x15"),
    (Side::Device, b"MSH|again\r\n\x04"),
];

#[test]
fn a_normal_transmission() {
    check_every_split("normal", NORMAL);
}

#[test]
fn everything_in_one_segment() {
    let all: Vec<u8> = b"\x05MSH|1\r\nMSH|2\r\n\x04".to_vec();
    let one: Conversation = &[(Side::Device, &all)];
    check_every_split("one_segment", one);
}

#[test]
fn a_start_marker_while_a_session_is_open_cuts_it_off_and_opens_another() {
    check_every_split(
        "start_while_open",
        &[
            (Side::Device, b"\x05MSH|1\r\nMSH|half"),
            (Side::Device, b"\x05MSH|2\r\n\x04"),
        ],
    );
}

#[test]
fn bytes_outside_any_session_are_an_unframed_session() {
    check_every_split(
        "outside_a_session",
        &[
            (Side::Lis, b"\x06"),
            (Side::Device, b"noise\r\nmore"),
            (Side::Device, b"\x05MSH|1\r\n\x04"),
            (Side::Lis, b"late\r\n"),
        ],
    );
}

#[test]
fn data_cut_off_before_its_cr_lf_is_a_fragment() {
    check_every_split(
        "cut_off",
        &[
            (Side::Device, b"\x05MSH|1\r\nMSH|2 no end"),
            (Side::Lis, b"MSA|AA"),
        ],
    );
}

#[test]
fn markers_from_the_wrong_side_and_a_nak_are_kept_as_they_came() {
    check_every_split(
        "wrong_side",
        &[
            (Side::Device, b"\x05MSH|\x061\r\n"),
            (Side::Lis, b"\x15\x04\x05"),
            (Side::Device, b"\x04"),
        ],
    );
}

#[test]
fn configured_markers_replace_the_defaults() {
    let markers = Markers {
        start: b'S',
        ack: b'A',
        nak: b'N',
        end: b'E',
    };
    let mut framer = Framer::new(markers);
    assert!(!framer.is_open());
    let mut events = framer.feed(Side::Device, b"Sx\r\n\x05", 1);
    assert!(framer.is_open());
    events.extend(framer.feed(Side::Lis, b"A", 2));
    events.extend(framer.feed(Side::Device, b"E", 3));
    assert!(!framer.is_open(), "the end marker closed it");
    // 0x05 is an ordinary byte now, cut off as a fragment by the end marker.
    insta::assert_snapshot!(render(&events), @r"
    begin
      start    device-to-pc S
      message  device-to-pc x\r\n
      ack      pc-to-device A
      fragment device-to-pc \x05
      end      device-to-pc E
    complete
    ");
}

#[test]
fn a_peer_that_never_sends_cr_lf_is_cut_into_bounded_fragments() {
    let mut framer = Framer::new(Markers::default());
    let big = vec![b'x'; session_capture::MAX_ELEMENT * 2 + 10];
    let mut events = framer.feed(Side::Device, b"\x05", 0);
    events.extend(framer.feed(Side::Device, &big, 0));
    assert_eq!(framer.pending(Side::Device), 10);
    let sizes: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Framed::Element(e) => Some(e.bytes.len()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sizes,
        vec![1, session_capture::MAX_ELEMENT, session_capture::MAX_ELEMENT]
    );
    // The bound is the documented 4 MiB, not whatever the constant happens to hold.
    assert_eq!(session_capture::MAX_ELEMENT, 4 * 1024 * 1024);
}

#[test]
fn element_debug_never_shows_the_bytes() {
    let mut framer = Framer::new(Markers::default());
    let events = framer.feed(Side::Device, b"\x05PID|Doe^John\r\n", 0);
    let shown = format!("{events:?}");
    assert!(!shown.contains("Doe") && shown.contains("bytes"), "{shown}");
}

fn begins(events: &[Framed]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Framed::Begin { .. }))
        .count()
}

#[test]
fn repeated_start_markers_stay_in_one_session() {
    // ENQ with no reply, or NAK after NAK, is sent again: one session, every byte kept.
    const REPEATED: Conversation = &[
        (Side::Device, b"\x05\x05\x05"),
        (Side::Lis, b"\x15"),
        (Side::Device, b"\x05"),
        (Side::Lis, b"\x06"),
        (Side::Device, b"MSH|^~\\&|AN|LAB\r\n\x04"),
    ];
    check_every_split("repeated_start_markers", REPEATED);
    let events = run(REPEATED, |_| vec![]);
    assert_eq!(begins(&events), 1);
    assert!(matches!(events.last(), Some(Framed::Complete { .. })));
}

#[test]
fn a_storm_of_start_markers_makes_one_session() {
    let storm = vec![0x05u8; 1024 * 1024];
    for chunk in [1, 7, 64 * 1024] {
        let mut framer = Framer::new(Markers::default());
        let mut events = Vec::new();
        for (i, part) in storm.chunks(chunk).enumerate() {
            events.extend(framer.feed(Side::Device, part, i as u64));
        }
        events.extend(framer.close(InterruptionReason::ConnectionClosed, 0));
        assert_eq!(begins(&events), 1, "chunks of {chunk}");
        assert_eq!(recorded(&events, Side::Device), storm, "every byte kept");
    }
}

/// `pairs` transmissions of `unit`, fed `gap_ms` apart; the events.
fn stormed(unit: &[u8], pairs: usize, gap_ms: u64) -> Vec<Framed> {
    let mut framer = Framer::new(Markers::default());
    let mut events = Vec::new();
    for i in 0..pairs {
        events.extend(framer.feed(Side::Device, unit, 1_000_000 + i as u64 * gap_ms));
    }
    events.extend(framer.close(InterruptionReason::ConnectionClosed, 0));
    events
}

#[test]
fn a_connection_begins_sessions_no_faster_than_the_bound_and_drops_nothing() {
    use session_capture::{SESSIONS_BURST, SESSIONS_PER_SECOND};
    let burst = SESSIONS_BURST as usize;
    for unit in [
        &b"\x05\x04"[..],
        b"\x05MSH|x\r\n\x04",
        b"\x05MSH|x\r\n\x05MSH|y\r\n",
        b"stray\r\n\x05\x04",
    ] {
        // All at once: the burst, and not one session more.
        let events = stormed(unit, 500_000 / unit.len(), 0);
        assert!(
            begins(&events) <= burst + 1,
            "{}: {}",
            unit.escape_ascii(),
            begins(&events)
        );
        let sent: Vec<u8> = unit.repeat(500_000 / unit.len());
        assert_eq!(
            recorded(&events, Side::Device),
            sent,
            "{}: a byte went missing",
            unit.escape_ascii()
        );
        // Spread over ten seconds: the burst and five a second.
        let per_10_s = 10_000;
        let events = stormed(unit, per_10_s, 1);
        let allowed = burst + SESSIONS_PER_SECOND as usize * 10 + 1;
        assert!(
            begins(&events) <= allowed,
            "{}: {} > {allowed}",
            unit.escape_ascii(),
            begins(&events)
        );
        // The last session ends as its bytes did: complete when its last marker was an end.
        if unit.ends_with(b"\x04") {
            assert!(
                matches!(events.last(), Some(Framed::Complete { .. })),
                "{}",
                unit.escape_ascii()
            );
        }
    }
    // Ordinary traffic, a transmission a second, is untouched: one session each.
    let events = stormed(b"\x05MSH|x\r\n\x04", 100, 1_000);
    assert_eq!(begins(&events), 100);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Framed::Complete { .. }))
            .count(),
        100
    );
}

fn check_every_split(name: &str, conversation: Conversation) {
    let rendered = common::every_split(session_capture::Framing::Markers, name, conversation);
    insta::assert_snapshot!(name, rendered);
}

fn run(conversation: Conversation, cut: impl Fn(usize) -> Vec<usize>) -> Vec<Framed> {
    common::run(session_capture::Framing::Markers, conversation, cut)
}

#[test]
fn a_start_marker_after_the_lis_sent_more_than_a_reply_begins_a_new_session() {
    // Only ENQs and the LIS's ACK/NAK replies between two ENQs make the second a repeat;
    // a message from the LIS (or stray bytes) means the first session had content.
    for lis in [&b"MSH|from the LIS\r\n"[..], b"partial", b"\x04"] {
        let conversation: Conversation =
            &[(Side::Device, b"\x05"), (Side::Lis, lis), (Side::Device, b"\x05")];
        let events = run(conversation, |_| vec![]);
        assert_eq!(begins(&events), 2, "after the LIS sent {lis:?}");
    }
    // Replies only: still one session.
    let replies: Conversation = &[
        (Side::Device, b"\x05"),
        (Side::Lis, b"\x06\x15"),
        (Side::Device, b"\x05"),
    ];
    assert_eq!(begins(&run(replies, |_| vec![])), 1);
}
