//! The MLLP state machine over byte streams: the same conversation split at every
//! position gives the same record, every byte that passed is in it exactly once, a
//! burst ends at a quiet time or the connection's end, and `auto` picks the framing
//! by the first byte.

mod common;

use common::{Conversation, render};
use session_capture::{ConnectionFramer, Framed, Framing, MLLP_IDLE_MS, Markers, MllpFramer, Side};
use session_model::InterruptionReason;

/// Two results, each acknowledged by the LIS with an MLLP-framed ACK.
const TWO_RESULTS: Conversation = &[
    (
        Side::Device,
        b"\x0bMSH|^~\\&|AN|LAB|LIS|HOSP|20251102||ORU^R01|1|P|2.5\rOBX|1|NM|GLU||5.6\r\x1c\r",
    ),
    (
        Side::Lis,
        b"\x0bMSH|^~\\&|LIS|HOSP|AN|LAB|20251102||ACK|9|P|2.5\rMSA|AA|1\r\x1c\r",
    ),
    (
        Side::Device,
        b"\x0bMSH|^~\\&|AN|LAB|LIS|HOSP|20251102||ORU^R01|2|P|2.5\rOBX|1|NM|HGB||13.2\r\x1c\r",
    ),
    (
        Side::Lis,
        b"\x0bMSH|^~\\&|LIS|HOSP|AN|LAB|20251102||ACK|10|P|2.5\rMSA|AA|2\r\x1c\r",
    ),
];

#[test]
fn an_mllp_burst_is_one_complete_session_of_messages_and_acks() {
    check_every_split("mllp_two_results", TWO_RESULTS);
}

#[test]
fn a_frame_cut_off_and_bytes_outside_frames_are_kept() {
    const CUT: Conversation = &[
        (Side::Device, b"noise\x0bMSH|1\r\x1c\r"),
        (Side::Lis, b"\x06"),
        (Side::Device, b"\x0bMSH|2\r\x0bMSH|3\rOBX|1\x1cX"),
    ];
    check_every_split("mllp_cut_off", CUT);
    let events = run(CUT, |_| vec![]);
    assert!(matches!(
        events.last(),
        Some(Framed::Abandon {
            reason: InterruptionReason::ConnectionClosed,
            ..
        })
    ));
}

#[test]
fn a_quiet_time_ends_a_burst_and_the_next_frame_begins_another() {
    let mut framer = MllpFramer::new();
    let mut events = framer.feed(Side::Device, TWO_RESULTS[0].1, 1_000);
    events.extend(framer.feed(Side::Lis, TWO_RESULTS[1].1, 1_050));
    // Not yet quiet long enough; then quiet.
    assert!(framer.idle(1_050 + MLLP_IDLE_MS - 1).is_empty());
    let ended = framer.idle(1_050 + MLLP_IDLE_MS);
    assert!(
        matches!(ended.as_slice(), [Framed::Complete { .. }]),
        "{}",
        render(&ended)
    );
    events.extend(ended);
    events.extend(framer.feed(Side::Device, TWO_RESULTS[2].1, 60_000));
    events.extend(framer.close(InterruptionReason::ConnectionClosed, 60_001));
    let begins = events
        .iter()
        .filter(|e| matches!(e, Framed::Begin { .. }))
        .count();
    let completes = events
        .iter()
        .filter(|e| matches!(e, Framed::Complete { .. }))
        .count();
    assert_eq!((begins, completes), (2, 2));
    // Inside a frame, quiet never ends the burst.
    let mut framer = MllpFramer::new();
    framer.feed(Side::Device, b"\x0bMSH|partial", 0);
    assert!(framer.idle(10 * MLLP_IDLE_MS).is_empty());
}

#[test]
fn a_storm_of_frames_begins_no_more_sessions_than_the_bound() {
    let mut framer = MllpFramer::new();
    let mut events = Vec::new();
    for i in 0..10_000u64 {
        events.extend(framer.feed(Side::Device, b"\x0bMSH|x\r\x1c\r", i));
        events.extend(framer.idle(i + MLLP_IDLE_MS));
    }
    let begins = events
        .iter()
        .filter(|e| matches!(e, Framed::Begin { .. }))
        .count() as u64;
    assert!(
        begins <= session_capture::SESSIONS_BURST + 10_000 * session_capture::SESSIONS_PER_SECOND / 1000 + 1,
        "{begins}"
    );
}

#[test]
fn auto_decides_by_the_first_byte() {
    let mut mllp = ConnectionFramer::new(Framing::Auto, Markers::default());
    assert_eq!(mllp.framing(), None);
    let events = mllp.feed(Side::Device, TWO_RESULTS[0].1, 0);
    assert_eq!(mllp.framing(), Some(Framing::Mllp));
    assert!(render(&events).contains("message  device-to-pc MSH|"));
    let mut markers = ConnectionFramer::new(Framing::Auto, Markers::default());
    markers.feed(Side::Device, b"\x05", 0);
    assert_eq!(markers.framing(), Some(Framing::Markers));
    // Configured framings are not second-guessed.
    let mut forced = ConnectionFramer::new(Framing::Markers, Markers::default());
    forced.feed(Side::Device, b"\x0b", 0);
    assert_eq!(forced.framing(), Some(Framing::Markers));
    assert_eq!("mllp".parse::<Framing>(), Ok(Framing::Mllp));
    assert!("hl7".parse::<Framing>().is_err());
}

fn check_every_split(name: &str, conversation: Conversation) {
    let rendered = common::every_split(session_capture::Framing::Mllp, name, conversation);
    insta::assert_snapshot!(name, rendered);
}

fn run(conversation: Conversation, cut: impl Fn(usize) -> Vec<usize>) -> Vec<Framed> {
    common::run(session_capture::Framing::Mllp, conversation, cut)
}

#[test]
fn an_mllp_session_is_open_from_its_first_byte_until_the_quiet_ends_it() {
    let mut framer = MllpFramer::new();
    assert!(!framer.is_open(), "nothing received yet");
    framer.feed(Side::Device, b"\x0bMSH|^~\\&|AN|LAB\r\x1c\x0d", 1_000);
    assert!(framer.is_open(), "a burst is open after its first frame");
    assert!(framer.idle(1_000 + MLLP_IDLE_MS - 1).is_empty());
    assert!(framer.is_open(), "not yet quiet long enough");
    let ended = framer.idle(1_000 + MLLP_IDLE_MS);
    assert!(
        ended.iter().any(|e| matches!(e, Framed::Complete { .. })),
        "{ended:?}"
    );
    assert!(!framer.is_open(), "the quiet ended it");
}

#[test]
fn the_quiet_that_ends_a_burst_keeps_the_bytes_outside_its_frames_and_reaches_it_through_a_connection() {
    let frame = b"\x0bMSH|^~\\&|AN|LAB\r\x1c\x0d";
    let mut framer = MllpFramer::new();
    framer.feed(Side::Device, frame, 10);
    framer.feed(Side::Device, b"junk", 20);
    let ended = framer.idle(20 + MLLP_IDLE_MS);
    let stray: Vec<&[u8]> = ended
        .iter()
        .filter_map(|e| match e {
            Framed::Element(el) if el.kind == session_model::ElementKind::Stray => Some(el.bytes.as_slice()),
            _ => None,
        })
        .collect();
    assert_eq!(stray, [b"junk".as_slice()], "{ended:?}");
    assert!(matches!(ended.last(), Some(Framed::Complete { .. })), "{ended:?}");
    // Through a connection's framer (decided by the first byte), the quiet ends it too.
    for framing in [Framing::Mllp, Framing::Auto] {
        let mut connection = ConnectionFramer::new(framing, Markers::default());
        connection.feed(Side::Device, frame, 10);
        assert!(connection.idle(10 + MLLP_IDLE_MS - 1).is_empty());
        let ended = connection.idle(10 + MLLP_IDLE_MS);
        assert!(
            matches!(ended.last(), Some(Framed::Complete { .. })),
            "{framing:?}: {ended:?}"
        );
    }
}
