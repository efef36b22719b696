//! The current version's own fixture: it must survive decode and encode byte for byte.
//!
//! This fails when someone changes the `Session` type (a field renamed, added with a
//! default, reordered) without adding a version: follow "Adding a schema version".

use session_migrate::{SchemaVersion, decode, encode};

/// A capture cut off by a closed connection, with a NAK, unknown fields at every level
/// (the interruption's too) and element bytes that are not UTF-8.
const CURRENT_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v2.1/session-41.json");

#[test]
fn a_current_document_round_trips_byte_for_byte_unknown_fields_included() {
    let bytes = std::fs::read(CURRENT_FIXTURE).unwrap();
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.from, SchemaVersion::CURRENT);
    assert_eq!(
        String::from_utf8(encode(&decoded.session).unwrap()).unwrap(),
        String::from_utf8(bytes).unwrap()
    );
    // Unknown fields at every level are kept, and element bytes that are not UTF-8 too.
    let s = &decoded.session;
    assert!(s.unknown.contains_key("labNote"));
    assert_eq!(s.elements[2].unknown["checksum"], "crc32:1234abcd");
    assert_eq!(s.submission.unknown["traceId"], "abc-123");
    assert_eq!(s.metadata.unknown["writer"], "sessionctl 0.1.0");
    assert!(std::str::from_utf8(&s.elements[2].data.0).is_err());
    let interrupted = s.interrupted.as_ref().expect("the fixture is interrupted");
    assert_eq!(interrupted.unknown["relay"], "lab-a");
    assert!(!s.is_sendable(u64::MAX), "an interrupted session is never sent");
}

#[test]
fn a_2_0_0_document_upgrades_to_the_current_one_without_interruption() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/v2/session-41.json"
    ))
    .unwrap();
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.from, SchemaVersion::V2_0_0);
    assert_eq!(decoded.session.interrupted, None);
    assert_eq!(decoded.session.metadata.version, SchemaVersion::CURRENT.as_str());
    // A 2.0.0 field nobody knew, named like the new one: refused, never dropped.
    let text = String::from_utf8(bytes).unwrap();
    let colliding = text.replacen(
        "\"isComplete\":true,",
        "\"isComplete\":true,\"interrupted\":1,",
        1,
    );
    let err = decode(colliding.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("interrupted") && err.contains("named like"), "{err}");
}

#[test]
fn the_current_document_as_the_model_sees_it() {
    let decoded = decode(&std::fs::read(CURRENT_FIXTURE).unwrap()).unwrap();
    insta::assert_debug_snapshot!(decoded.session);
}

/// `text` with `field` added as its last member.
fn with_last_member(text: &str, field: &str) -> String {
    let end = text.trim_end().rfind('}').unwrap();
    format!("{},{field}}}", &text[..end])
}

#[test]
fn a_document_that_names_the_current_version_near_its_end_is_decoded_as_what_it_states() {
    let current = format!("\"{}\"", SchemaVersion::CURRENT.as_str());
    let read =
        |path: &str| std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    // A 2.0.0 document parses as the current type too (its one new field is optional):
    // it must still be read as 2.0.0 and upgraded.
    let older = with_last_member(
        &read("tests/fixtures/v2/session-41.json"),
        &format!("\"labVersion\":{current}"),
    );
    let decoded = decode(older.as_bytes()).unwrap();
    assert_eq!(decoded.from, SchemaVersion::V2_0_0);
    assert_eq!(
        decoded.session.unknown["labVersion"],
        SchemaVersion::CURRENT.as_str()
    );
    assert!(session_migrate::__private::confirmed::<session_model::Session>(older.as_bytes()).is_none());
    // A legacy document that happens to end with the same text stays legacy.
    let legacy = with_last_member(
        &read("../../fixtures/legacy/session-11.json"),
        &format!("\"note\":{current}"),
    );
    assert_eq!(decode(legacy.as_bytes()).unwrap().from, SchemaVersion::LEGACY);
    // A current document with a second `_metadata` is refused as before.
    let fixture = read("tests/fixtures/v2.1/session-41.json");
    let twice = with_last_member(
        &fixture,
        &format!("\"_metadata\":{{\"version\":{current},\"savedAt\":1,\"retentionDays\":1}}"),
    );
    let err = decode(twice.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("duplicate field `_metadata`"), "{err}");
    // The current document itself is taken in one parse, and decodes the same.
    let confirmed = session_migrate::__private::confirmed::<session_model::Session>(fixture.as_bytes());
    assert_eq!(confirmed, Some(decode(fixture.as_bytes()).unwrap().session));
}

#[test]
fn a_document_whose_last_512_bytes_begin_with_the_version_name_is_decoded_unharmed() {
    // The fast path looks for the version's name in quotes within the last 512 bytes;
    // here an unknown member's value puts the name at the very first byte of them, with
    // its opening quote just outside: not a quoted occurrence, and nothing to read
    // before it.
    let name = SchemaVersion::CURRENT.as_str();
    let text = std::fs::read_to_string(CURRENT_FIXTURE).unwrap();
    let end = text.trim_end().rfind('}').unwrap();
    let head = format!("{},\"labTrail\":\"", &text[..end]);
    // `head` + name + filler + closing: the name starts exactly 512 bytes from the end.
    let closing = "\"}";
    let filler = "x".repeat(512 - name.len() - closing.len());
    let doc = format!("{head}{name}{filler}{closing}");
    assert_eq!(&doc.as_bytes()[doc.len() - 512..][..name.len()], name.as_bytes());
    let decoded = decode(doc.as_bytes()).unwrap();
    assert_eq!(decoded.from, SchemaVersion::CURRENT);
    assert_eq!(
        decoded.session.unknown["labTrail"],
        format!("{name}{filler}").as_str()
    );
}
