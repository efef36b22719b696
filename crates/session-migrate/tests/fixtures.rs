//! Every fixture from the Electron app, decoded and shown as the current version.

use std::path::{Path, PathBuf};

use session_migrate::{DecodeError, DecodeOptions, SchemaVersion, decode, decode_stored, encode};
use session_model::{ElementKind, SessionId};

use test_support::FIXTURES;

fn files_in(group: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(FIXTURES).join(group))
        .unwrap_or_else(|e| panic!("fixtures at {FIXTURES}/{group}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

fn stem(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The 300-message fixture would make a 250 KB snapshot: show its shape instead.
fn summary(session: &session_model::Session) -> serde_json::Value {
    let mut head = serde_json::to_value(session).unwrap();
    head["elements"] = serde_json::json!({
        "count": session.elements.len(),
        "first": serde_json::to_value(&session.elements[..3]).unwrap(),
        "messageElements": session.elements.iter().filter(|e| e.kind == ElementKind::Message).count(),
        "totalBytes": session.elements.iter().map(|e| e.data.0.len()).sum::<usize>(),
    });
    head
}

#[test]
fn app_fixtures_decode_to_the_current_version() {
    for (group, version) in [("legacy", SchemaVersion::LEGACY), ("v1", SchemaVersion::V1_0_0)] {
        for path in files_in(group) {
            let bytes = std::fs::read(&path).unwrap();
            let decoded = decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(decoded.from, version, "{}", path.display());
            let shown = if decoded.session.elements.len() > 50 {
                summary(&decoded.session)
            } else {
                serde_json::to_value(&decoded.session).unwrap()
            };
            insta::assert_json_snapshot!(format!("{group}-{}", stem(&path)), shown);
        }
    }
}

#[test]
fn element_bytes_survive_exactly_including_invalid_utf8() {
    for group in ["legacy", "v1"] {
        for path in files_in(group) {
            let bytes = std::fs::read(&path).unwrap();
            let original: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let decoded = decode(&bytes).unwrap().session;
            let again = decode(&encode(&decoded).unwrap()).unwrap();
            assert_eq!(again.from, SchemaVersion::CURRENT);
            assert_eq!(
                again.session,
                decoded,
                "{}: round trip through the current version changed it",
                path.display()
            );
            let raw = original["elements"].as_array().unwrap();
            assert_eq!(raw.len(), decoded.elements.len());
            for (app, ours) in raw.iter().zip(&decoded.elements) {
                let app_bytes: Vec<u8> = serde_json::from_value(app["rawBytes"]["data"].clone()).unwrap();
                assert_eq!(ours.data.0, app_bytes, "{}: element {}", path.display(), ours.id);
            }
            let messages: Vec<String> = serde_json::from_value(original["messages"].clone()).unwrap();
            assert_eq!(decoded.messages(), messages, "{}", path.display());
        }
    }
    // session-14 is the fixture with bytes that are not UTF-8: make sure it stays in the test.
    let s14 = decode(&std::fs::read(Path::new(FIXTURES).join("legacy/session-14.json")).unwrap()).unwrap();
    assert!(
        s14.session
            .elements
            .iter()
            .any(|e| std::str::from_utf8(&e.data.0).is_err())
    );
}

fn error_of(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let name = stem(path);
    let id = name.split(".json").next().unwrap();
    let id: SessionId = id.parse().unwrap();
    match decode_stored(&id, &bytes, &DecodeOptions::default()) {
        Ok(decoded) => format!(
            "{name}: decodes ({} version {})",
            decoded.session.id, decoded.from
        ),
        Err(e) => format!("{name}: {e}"),
    }
}

#[test]
fn corrupt_fixtures_fail_with_a_precise_error() {
    let report: Vec<String> = files_in("corrupt").iter().map(|p| error_of(p)).collect();
    insta::assert_snapshot!(report.join("\n"));
}

#[test]
fn newer_versions_carry_their_raw_bytes() {
    let bytes = std::fs::read(Path::new(FIXTURES).join("corrupt/session-39.json")).unwrap();
    match decode(&bytes) {
        Err(DecodeError::NewerVersion { version, document }) => {
            assert_eq!(version, "9.0.0");
            assert_eq!(document, bytes);
        }
        other => panic!("expected NewerVersion, got {other:?}"),
    }
}

#[test]
fn shapes_that_are_not_sessions_are_named() {
    let cases: [(&[u8], &str); 8] = [
        (b"", "the file is empty"),
        (b"  \n", "the file is empty"),
        (b"\0\0\0", "not JSON"),
        (b"[1]", "the document is an array"),
        (b"\"x\"", "the document is a string"),
        (
            br#"{"_metadata": {"version": 2}}"#,
            "_metadata.version is a number",
        ),
        (
            br#"{"id": "a", "startTime": 1, "elements": [{"id": "e", "timestamp": "soon"}]}"#,
            "at elements[0].timestamp",
        ),
        (br#"{"id": "../x", "startTime": 1}"#, "invalid session id"),
    ];
    for (bytes, expected) in cases {
        let err = decode(bytes).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{:?}: {err}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn debug_of_a_newer_document_does_not_leak_its_content() {
    let err = decode(br#"{"_metadata": {"version": "3.0.0"}, "messages": ["PID|1||SECRET"]}"#).unwrap_err();
    assert!(!format!("{err:?}").contains("SECRET"));
}
