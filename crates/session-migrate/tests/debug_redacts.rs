//! No patient data through `Debug`: every fixture, read as the version it is and as the
//! current one, prints no message text and no element bytes in any form.

use std::path::Path;

use session_model::{LegacySession, SessionV1};
use test_support::FIXTURES;

/// Pieces of every HL7 message: none may appear in a `Debug`.
const HL7: [&str; 3] = ["MSH|", "PID|", "OBX|"];

fn assert_clean(what: &str, shown: &str) {
    for piece in HL7 {
        assert!(!shown.contains(piece), "{what} shows {piece}: {shown}");
    }
    // Nor as hex (`4d53487c` is "MSH|") or a Node Buffer's numbers (77, 83, 72, 124).
    assert!(
        !shown.to_ascii_lowercase().contains("4d53487c"),
        "{what} shows hex: {shown}"
    );
    assert!(!shown.contains("77, 83, 72, 124"), "{what} shows bytes: {shown}");
}

#[test]
fn no_fixture_shows_its_messages_through_debug() {
    let mut seen = 0;
    for group in ["legacy", "v1", "v2", "v2.1"] {
        let Ok(entries) = std::fs::read_dir(Path::new(FIXTURES).join(group)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            if !HL7.iter().any(|p| text.contains(p)) {
                continue;
            }
            let name = path.display().to_string();
            if let Ok(legacy) = serde_json::from_slice::<LegacySession>(&bytes) {
                assert_clean(&name, &format!("{legacy:?}"));
            }
            if let Ok(v1) = serde_json::from_slice::<SessionV1>(&bytes) {
                assert_clean(&name, &format!("{v1:?}"));
            }
            if let Ok(decoded) = session_migrate::decode(&bytes) {
                assert_clean(&name, &format!("{decoded:?}"));
                seen += 1;
            }
        }
    }
    assert!(seen >= 5, "{seen} fixtures with messages checked");
}

#[test]
fn unknown_fields_show_their_keys_only() {
    let doc = br#"{"id": "s-1", "startTime": 1, "isComplete": true, "messages": ["MSH|^~\\&|PATIENT-TEXT"], "ward": "PID|secret"}"#;
    let decoded = session_migrate::decode(doc).unwrap();
    let shown = format!("{:?}", decoded.session);
    assert_clean("a session with a kept messages list", &shown);
    assert!(
        !shown.contains("PATIENT-TEXT") && !shown.contains("secret"),
        "{shown}"
    );
    assert!(
        shown.contains("\"messages\"") && shown.contains("\"ward\""),
        "the keys are shown: {shown}"
    );
}

#[test]
fn serdes_message_shows_its_length_through_debug_never_its_text() {
    // A wrongly typed field holding a name: serde quotes it in its message.
    let doc = br#"{"id":"s-1","startTime":"DOE^JANE","_metadata":{"version":"2.1.0"}}"#;
    let err = session_migrate::decode(doc).unwrap_err();
    let detail = err.detail_with_values().expect("serde's message").to_owned();
    let session_migrate::DecodeError::Invalid { message, .. } = &err else {
        panic!("not an invalid document: {err}");
    };
    let shown = format!("{message:?}");
    assert_eq!(shown, format!("WithValues(<{} bytes>)", detail.len()));
    assert!(
        !shown.contains("DOE") && !format!("{err:?}").contains("DOE"),
        "{shown}"
    );
}
