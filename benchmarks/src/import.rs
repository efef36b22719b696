//! pcap import on a hostile capture: an LIS that speaks first in many tiny segments
//! (held until the analyzer is known) must cost what the bytes cost, not the square of
//! the segments. Ten times the segments against one tenth, in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use session_capture::{Framing, Markers, Recorder, pcap};
use session_store::{DecodeOptions, SessionStore};
use test_support::captures::{frame, pcap as pcap_of};

use crate::measure::ms;
use crate::{Row, Settings};

/// Bytes in each of the LIS's segments.
const SEGMENT: usize = 16;

/// The import of `segments` held segments of the LIS (all within the 1 MiB hold), then
/// the analyzer's start and end.
fn import_held(work: &Path, segments: usize) -> Result<Duration, String> {
    let dir = super::figures::fresh(&work.join(format!("import-{segments}")))?;
    let mut frames = Vec::with_capacity(segments + 2);
    let mut seq = 7001u32;
    for _ in 0..segments {
        frames.push(frame(false, seq, "", &[b'a'; SEGMENT]));
        seq += SEGMENT as u32;
    }
    frames.push(frame(true, 1001, "", b"\x05"));
    frames.push(frame(true, 1002, "", b"\x04"));
    let capture = pcap_of(&frames, None);
    let store = SessionStore::open(&dir, DecodeOptions::default()).map_err(|e| e.to_string())?;
    let recorder = Recorder::new(store);
    let t = Instant::now();
    let report = pcap::import(
        &recorder,
        capture.as_slice(),
        Framing::Markers,
        Markers::default(),
    )
    .map_err(|e| e.to_string())?;
    let took = t.elapsed();
    if report.complete != 1 {
        return Err(format!("the analyzer's session was not found: {report:?}"));
    }
    Ok(took)
}

pub(crate) fn hostile(work: &Path, s: &Settings) -> Result<Vec<Row>, String> {
    // 64,000 segments of 16 B are 1,000 KB: all held (the hold is 1 MiB).
    let many = s.import_segments;
    let few = many / 10;
    let (small, large) = (import_held(work, few)?, import_held(work, many)?);
    Ok(vec![Row::ratio(
        &format!(
            "`import-pcap`: {many} LIS segments of {SEGMENT} B held before the first start, against {few}"
        ),
        ms(large),
        format!("{} for {few}", ms(small)),
        large,
        small,
        "linear: <= 11 x the time for 10 x the segments",
        11.0,
    )])
}
