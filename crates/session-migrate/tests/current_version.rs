//! The current version's own fixture: it must survive decode and encode byte for byte.
//!
//! This fails when someone changes the `Session` type (a field renamed, added with a
//! default, reordered) without adding a version: follow "Adding a schema version".

use session_migrate::{SchemaVersion, decode, encode};

const V2_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v2/session-41.json");

#[test]
fn a_current_document_round_trips_byte_for_byte_unknown_fields_included() {
    let bytes = std::fs::read(V2_FIXTURE).unwrap();
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.from, SchemaVersion::V2_0_0);
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
}

#[test]
fn the_current_document_as_the_model_sees_it() {
    let decoded = decode(&std::fs::read(V2_FIXTURE).unwrap()).unwrap();
    insta::assert_debug_snapshot!(decoded.session);
}
