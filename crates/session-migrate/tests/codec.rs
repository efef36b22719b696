//! The codec's smaller promises, each with the value that matters: options reach the
//! decoded document, errors say what they are without the document's values (unless
//! asked), and `encode` refuses a session that would not read back as itself.

use session_migrate::{DecodeError, DecodeOptions, EncodeError, decode, decode_with, encode};

const LEGACY: &[u8] =
    br#"{"id": "s-1", "startTime": 1000, "endTime": 2000, "isComplete": true, "messages": []}"#;

#[test]
fn legacy_saved_at_is_what_the_option_says_or_the_end_time() {
    let given = decode_with(LEGACY, &DecodeOptions::default().legacy_saved_at(Some(123))).unwrap();
    assert_eq!(given.session.metadata.saved_at, 123);
    let derived = decode_with(LEGACY, &DecodeOptions::default()).unwrap();
    assert_eq!(
        derived.session.metadata.saved_at, 2000,
        "the end time, deterministically"
    );
    let retention = decode_with(LEGACY, &DecodeOptions::default().retention_days(7)).unwrap();
    assert_eq!(retention.session.metadata.retention_days, 7);
}

#[test]
fn an_invalid_document_keeps_serdes_detail_apart_from_its_message() {
    let err = decode(br#"{"id": "s-1", "startTime": "PATIENT-VALUE", "isComplete": true}"#).unwrap_err();
    assert!(!err.to_string().contains("PATIENT-VALUE"), "{err}");
    assert!(!format!("{err:?}").contains("PATIENT-VALUE"), "{err:?}");
    assert!(format!("{err:?}").starts_with("DecodeError("), "{err:?}");
    let detail = err
        .detail_with_values()
        .expect("an invalid document has serde's detail");
    assert!(detail.contains("PATIENT-VALUE"), "{detail}");
    assert!(!err.is_newer_version());
    // Other errors have no separate detail.
    let newer =
        decode(br#"{"id": "s-1", "_metadata": {"version": "99.0.0"}, "note": "PATIENT-VALUE"}"#).unwrap_err();
    assert!(newer.is_newer_version());
    assert_eq!(newer.detail_with_values(), None);
    let shown = format!("{newer:?}");
    assert!(
        shown.contains("NewerVersion") && shown.contains("document_len"),
        "{shown}"
    );
    assert!(!shown.contains("PATIENT-VALUE"), "{shown}");
    assert!(matches!(newer, DecodeError::NewerVersion { .. }));
}

#[test]
fn encode_refuses_a_session_that_would_not_read_back_as_itself() {
    let mut session = decode(LEGACY).unwrap().session;
    // An unknown field named like an optional known one, null: it would read back as
    // the known field's absence, and the unknown field would be lost.
    session
        .unknown
        .insert("interrupted".into(), serde_json::Value::Null);
    match encode(&session) {
        Err(EncodeError::ReadBack { id, reason }) => {
            assert_eq!(id, "s-1");
            assert!(reason.contains("different session"), "{reason}");
        }
        other => panic!("expected a read-back refusal, got {other:?}"),
    }
}

#[test]
fn a_member_without_a_value_is_not_json_even_before_a_version_that_reads() {
    // The fast skim for `_metadata.version` must give up on an empty value rather than
    // step over it and believe the version after it.
    for bytes in [
        &br#"{"id":,"_metadata":{"version":"2.1.0"}}"#[..],
        br#"{"id":"s","n": ,"_metadata":{"version":"2.1.0"}}"#,
    ] {
        let err = decode(bytes).unwrap_err();
        assert!(
            matches!(err, DecodeError::NotJson { .. }),
            "{}: {err:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn metadata_behind_an_escaped_key_is_read_by_the_full_parse_null_included() {
    // An escaped key makes the fast skim give up; the full parse must still tell an
    // absent `_metadata` (legacy) from a null one, and read a version inside it.
    let null = br#"{"\u0069d":"s","_metadata":null}"#;
    let err = decode(null).unwrap_err();
    assert!(
        matches!(&err, DecodeError::BadMetadata { found } if *found == "null"),
        "{err:?}"
    );
    let newer = br#"{"\u0069d":"s","_metadata":{"version":"9.9.9"}}"#;
    let err = decode(newer).unwrap_err();
    assert!(
        matches!(&err, DecodeError::NewerVersion { version, .. } if version == "9.9.9"),
        "{err:?}"
    );
}
