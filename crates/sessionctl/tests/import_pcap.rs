//! `import-pcap` on captures built here packet by packet: the analyzer is the side that
//! opened the connection, retransmissions count once, out-of-order segments are put in
//! order, the packets' times are kept, and a file that is no capture is refused.

mod common;

use common::*;
use serde_json::Value;
use test_support::captures::{T0, frame, pcap};

fn write_pcap(path: &std::path::Path, frames: &[Vec<u8>]) {
    let times: Vec<u64> = (0..frames.len() as u64).map(|i| T0 + 10 * i).collect();
    write_pcap_at(path, frames, &times);
}

fn write_pcap_at(path: &std::path::Path, frames: &[Vec<u8>], times: &[u64]) {
    std::fs::write(path, pcap(frames, Some(times))).unwrap();
}

#[test]
fn a_captured_conversation_becomes_its_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let m1 = b"MSH|^~\\&|AN|LAB|||20251102||ORU^R01|P1|P|2.5\rOBX|1|NM|GLU||5.6\r\n";
    let (first, second) = m1.split_at(20);
    // Analyzer sequence numbers start at 1000 (SYN), data at 1001.
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
        frame(true, a + 1 + m1.len() as u32, "", b"\x04"),
        // A second transmission on the same connection, cut off by the end of the capture.
        frame(true, a + 2 + m1.len() as u32, "", b"\x05MSH|cut"),
        frame(true, a + 10 + m1.len() as u32, "F", b""),
    ];
    let pcap = tmp.path().join("lab.pcap");
    write_pcap(&pcap, &frames);
    let out = sessionctl(&dir, &["--json", "import-pcap", pcap.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            report["sessions"].as_u64(),
            report["complete"].as_u64(),
            report["interrupted"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(report["connections"], 1);
    assert_eq!(report["missingBytes"], 0);
    let list: Value = serde_json::from_slice(&sessionctl(&dir, &["--json", "list"], None).stdout).unwrap();
    let rows = list.as_array().unwrap();
    let complete = rows.iter().find(|r| r["isComplete"] == true).unwrap();
    let session: Value = serde_json::from_slice(
        &sessionctl(&dir, &["--json", "show", complete["id"].as_str().unwrap()], None).stdout,
    )
    .unwrap();
    assert_eq!(session["deviceIP"], "10.0.0.7");
    assert_eq!(session["lisIP"], "10.0.0.1");
    assert_eq!(session["startTime"], T0 + 20, "the packet's own time");
    let kinds: Vec<&str> = session["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["start", "ack", "message", "ack", "end"]);
    let message =
        serde_json::from_value::<session_model::Base64Bytes>(session["elements"][2]["data"].clone()).unwrap();
    assert_eq!(message.0, m1.to_vec(), "in order, the retransmission once");
    let cut = rows.iter().find(|r| r["isComplete"] == false).unwrap();
    assert_eq!(cut["interrupted"], true);
}

#[test]
fn a_file_that_is_no_capture_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bogus = tmp.path().join("notes.pcap");
    std::fs::write(&bogus, b"this is not a capture at all").unwrap();
    let out = sessionctl(
        &tmp.path().join("store"),
        &["import-pcap", bogus.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("notes.pcap"), "{}", text(&out.stderr));
}

#[test]
fn an_mllp_capture_becomes_one_session_per_burst() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
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
    let pcap = tmp.path().join("mllp.pcap");
    write_pcap_at(&pcap, &frames, &times);
    let out = sessionctl(&dir, &["--json", "import-pcap", pcap.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["sessions"].as_u64(), report["complete"].as_u64()),
        (Some(2), Some(2)),
        "{report}"
    );
    let list: Value = serde_json::from_slice(&sessionctl(&dir, &["--json", "list"], None).stdout).unwrap();
    let mut counts: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["messageCount"].as_u64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(counts, [1, 1], "{list}");
    let first = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["startTime"] == T0 + 10)
        .expect("the first burst");
    let session: Value = serde_json::from_slice(
        &sessionctl(&dir, &["--json", "show", first["id"].as_str().unwrap()], None).stdout,
    )
    .unwrap();
    let kinds: Vec<(&str, &str)> = session["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["direction"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("start", "device-to-pc"),
            ("message", "device-to-pc"),
            ("end", "device-to-pc"),
            ("start", "pc-to-device"),
            ("ack", "pc-to-device"),
            ("end", "pc-to-device")
        ]
    );
}
