//! HL7 timestamps read exactly (they are evidence of the time), and the model's `Debug`
//! shows sizes and keys, never message text or bytes: each checked by its result.

use serde_json::json;
use session_model::{LegacySession, SessionV1, UnknownFields, hl7_timestamp_ms, msh7};

#[test]
fn every_field_of_an_hl7_timestamp_counts() {
    assert_eq!(hl7_timestamp_ms("20260102030405"), Some(1_767_323_045_000));
    // Offsets: east of UTC is earlier, and the minutes of an offset count.
    assert_eq!(hl7_timestamp_ms("20260101000000+0100"), Some(1_767_222_000_000));
    assert_eq!(hl7_timestamp_ms("20260101000000-0130"), Some(1_767_231_000_000));
    // A leap second is a time; the bounds of every field hold exactly.
    assert_eq!(hl7_timestamp_ms("20260101235960"), Some(1_767_312_000_000));
    for bad in [
        "20260101240000", // hour 24
        "20260101006000", // minute 60
        "20260101000061", // second 61
        "20261301",       // month 13
        "20260001",       // month 0
        "20260132",       // day 32
        "20260100",       // day 0
        "2026010100+12345",
        "2026010100+012",
        "2026010100+01a0",
        "202",
        "20261",
        "2026010100000000",
        "2026O101",
    ] {
        assert_eq!(hl7_timestamp_ms(bad), None, "{bad}");
    }
    // Each field at its largest still reads.
    assert!(hl7_timestamp_ms("20261231235959").is_some());
    assert!(hl7_timestamp_ms("2026123123").is_some());
    assert!(hl7_timestamp_ms("202612312359").is_some());
}

#[test]
fn msh7_is_found_whatever_ends_the_segment() {
    for end in ["\r", "\n", "\r\n"] {
        let message = format!("MSH|^~\\&|A|B|C|D|20260101000000||ORU^R01{end}PID|1");
        assert_eq!(msh7(message.as_bytes()), Some("20260101000000"), "{end:?}");
    }
    // A field that ends the segment is not read into the next one.
    assert_eq!(msh7(b"MSH|^~\\&|A|B|C|D|2026\nPID|1|x|y|z"), Some("2026"));
    assert_eq!(msh7(b"MSH|^~\\&|A|B|C|D|\rPID|1|2|3|4|5|6"), None);
}

#[test]
fn the_newest_message_time_counts_messages_only() {
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let doc = json!({
        "id": "s-1", "startTime": 1, "isComplete": true,
        "elements": [
            {"id": "e1", "timestamp": 1, "direction": "device-to-pc", "type": "message",
             "hexData": hex("MSH|^~\\&|A|B|C|D|20260101000000\r")},
            {"id": "e2", "timestamp": 2, "direction": "device-to-pc", "type": "message",
             "hexData": hex("MSH|^~\\&|A|B|C|D|20260102030405\r")},
            // Not a message: its MSH-7, newer, is no evidence.
            {"id": "e3", "timestamp": 3, "direction": "pc-to-device", "type": "ack",
             "hexData": hex("MSH|^~\\&|A|B|C|D|20300101000000\r")},
        ],
    });
    let session = session_migrate_free_decode(&doc);
    assert_eq!(session.newest_message_time(), Some(1_767_323_045_000));
}

/// The current version of a legacy document, through the model's own upgrades.
fn session_migrate_free_decode(doc: &serde_json::Value) -> session_model::Session {
    let legacy: LegacySession = serde_json::from_value(doc.clone()).unwrap();
    let v1 = SessionV1::from(session_model::LegacyUpgrade {
        session: legacy,
        saved_at: 1,
        retention_days: 30,
    });
    session_model::Session::from_v1(v1).unwrap()
}

#[test]
fn debug_shows_sizes_and_keys_never_content() {
    let doc = json!({
        "id": "s-1", "startTime": 1, "isComplete": true,
        "elements": [{"id": "e1", "timestamp": 1, "direction": "device-to-pc", "type": "message",
                      "hexData": "4d53487c", "rawBytes": {"type": "Buffer", "data": [77, 83, 72, 124]},
                      "content": "MSH|", "decodedMessage": "MSH|"}],
        "messages": ["MSH|", "PID|secret"],
        "ward": "PID|secret",
    });
    let legacy: LegacySession = serde_json::from_value(doc.clone()).unwrap();
    let shown = format!("{legacy:?}");
    assert!(shown.starts_with("LegacySession { id: "), "{shown}");
    assert!(shown.contains("messages: <2 texts, 14 bytes>"), "{shown}");
    assert!(shown.contains("hex_data: Some(<8 bytes>)"), "{shown}");
    assert!(shown.contains("content: Some(<4 bytes>)"), "{shown}");
    assert!(
        shown.contains("raw_bytes: Some(NodeBuffer(\"Buffer\", 4 bytes))"),
        "{shown}"
    );
    assert!(shown.contains("unknown: UnknownFields{\"ward\"}"), "{shown}");
    assert!(
        !shown.contains("MSH|") && !shown.contains("secret") && !shown.contains("77, 83"),
        "{shown}"
    );
    let mut v1_doc = doc.clone();
    v1_doc["submissionStatus"] = json!("pending");
    v1_doc["persistedUntil"] = json!(5);
    v1_doc["_metadata"] = json!({"version": "1.0.0", "savedAt": 1, "retentionDays": 30});
    let v1: SessionV1 = serde_json::from_value(v1_doc).unwrap();
    let shown = format!("{v1:?}");
    assert!(
        shown.starts_with("SessionV1 { id: ") && shown.contains("messages: <2 texts, 14 bytes>"),
        "{shown}"
    );
    assert!(
        shown.contains("decoded_message: Some(<4 bytes>)") && !shown.contains("secret"),
        "{shown}"
    );
    let mut no_text = legacy.elements[0].clone();
    no_text.content = None;
    assert!(format!("{no_text:?}").contains("content: None"));
}

#[test]
fn unknown_fields_are_the_map_they_hold() {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(json!({"a": 1, "b": [2]})).unwrap();
    let unknown = UnknownFields::from(map.clone());
    assert_eq!(unknown.len(), 2);
    assert_eq!(unknown.get("b"), Some(&json!([2])));
    assert_eq!(format!("{unknown:?}"), r#"UnknownFields{"a", "b"}"#);
    assert_eq!(unknown.clone().into_inner(), map);
    assert_eq!(serde_json::to_value(&unknown).unwrap(), json!({"a": 1, "b": [2]}));
    assert_eq!(format!("{:?}", UnknownFields::new()), "UnknownFields{}");
}
