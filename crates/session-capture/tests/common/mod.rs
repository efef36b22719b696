//! What the framing tests share: conversations fed at every split, and the record as
//! text.

#![allow(dead_code)] // each test binary uses a part of this module

use session_capture::{ConnectionFramer, Framed, Framing, Markers, Side};
use session_model::InterruptionReason;

/// A conversation: (side, bytes) in the order they crossed the relay.
pub(crate) type Conversation<'a> = &'a [(Side, &'a [u8])];

/// The record as text, one event per line: kinds, directions and escaped bytes.
pub(crate) fn render(events: &[Framed]) -> String {
    events
        .iter()
        .map(|e| match e {
            Framed::Begin { unframed, .. } => format!("begin{}", if *unframed { " (unframed)" } else { "" }),
            Framed::Element(e) => format!(
                "  {:<8} {:<12} {}",
                String::from(e.kind.clone()),
                String::from(e.direction.clone()),
                e.bytes.escape_ascii()
            ),
            Framed::Complete { .. } => "complete".into(),
            Framed::Abandon { reason, .. } => format!("abandon: {reason}"),
            other => format!("(an event this test does not know: {other:?})"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Feeds the conversation with `framing`, each side's bytes in chunks cut at `cuts`,
/// then closes.
pub(crate) fn run(
    framing: Framing,
    conversation: Conversation,
    cut: impl Fn(usize) -> Vec<usize>,
) -> Vec<Framed> {
    let mut framer = ConnectionFramer::new(framing, Markers::default());
    let mut events = Vec::new();
    for (i, (side, bytes)) in conversation.iter().enumerate() {
        let mut start = 0;
        for at in cut(i).into_iter().chain([bytes.len()]) {
            let at = at.clamp(start, bytes.len());
            events.extend(framer.feed(*side, &bytes[start..at], 0));
            start = at;
        }
    }
    events.extend(framer.close(InterruptionReason::ConnectionClosed, 0));
    events
}

/// Every byte, by side, in the order it passed: what the record must hold.
pub(crate) fn bytes_of(conversation: Conversation, side: Side) -> Vec<u8> {
    conversation
        .iter()
        .filter(|(s, _)| *s == side)
        .flat_map(|(_, b)| b.iter().copied())
        .collect()
}

/// The bytes the record holds for `side`, in order.
pub(crate) fn recorded(events: &[Framed], side: Side) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Framed::Element(e) if e.direction == side.direction() => Some(e.bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Checks that no byte goes missing and that a cut at every position of every chunk,
/// and byte-at-a-time feeding, give the same record; returns it rendered, for the
/// caller's snapshot.
pub(crate) fn every_split(framing: Framing, name: &str, conversation: Conversation) -> String {
    let whole = run(framing, conversation, |_| vec![]);
    for side in [Side::Device, Side::Lis] {
        assert_eq!(
            recorded(&whole, side),
            bytes_of(conversation, side),
            "{name}: a byte went missing"
        );
    }
    for (i, (_, bytes)) in conversation.iter().enumerate() {
        for at in 0..=bytes.len() {
            let split = run(framing, conversation, |j| if j == i { vec![at] } else { vec![] });
            assert_eq!(render(&split), render(&whole), "{name}: chunk {i} cut at {at}");
        }
    }
    let bytewise = run(framing, conversation, |j| (1..conversation[j].1.len()).collect());
    assert_eq!(render(&bytewise), render(&whole), "{name}: byte at a time");
    render(&whole)
}
