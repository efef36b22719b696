//! `encode_streamed` writes exactly the bytes `encode` writes, for every fixture and
//! for sessions built to confuse the place the elements go; what it cannot place, it
//! refuses.

use std::path::Path;

use session_migrate::{EncodeError, decode, encode, encode_streamed};
use session_model::{Element, Session};
use test_support::FIXTURES;

fn streamed(session: &Session) -> Result<Vec<u8>, EncodeError> {
    let mut envelope = session.clone();
    let elements = std::mem::take(&mut envelope.elements);
    let mut out = Vec::new();
    encode_streamed(
        &envelope,
        elements.into_iter().map(Ok::<_, std::io::Error>),
        &mut out,
    )?;
    Ok(out)
}

fn every_fixture() -> Vec<Session> {
    let mut sessions = Vec::new();
    for group in ["legacy", "v1", "v2", "v2.1", "guide-example"] {
        let Ok(entries) = std::fs::read_dir(Path::new(FIXTURES).join(group)) else {
            continue;
        };
        for entry in entries {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(decoded) = decode(&bytes) {
                sessions.push(decoded.session);
            }
        }
    }
    sessions
}

#[test]
fn every_fixture_streams_to_the_bytes_encode_gives() {
    let sessions = every_fixture();
    assert!(sessions.len() >= 8, "{} fixtures decoded", sessions.len());
    assert!(
        sessions.iter().any(|s| s.elements.len() > 100),
        "a long session is among them"
    );
    for session in sessions {
        assert_eq!(
            String::from_utf8(streamed(&session).unwrap()).unwrap(),
            String::from_utf8(encode(&session).unwrap()).unwrap(),
            "{}",
            session.id
        );
    }
}

#[test]
fn strings_and_unknown_fields_that_look_like_the_elements_do_not_move_them() {
    let mut session = every_fixture()
        .into_iter()
        .find(|s| s.elements.len() > 1)
        .expect("a fixture with elements");
    session.device_ip = Some(r#"","elements":[],"x":""#.into());
    session.unknown.insert(
        "note".into(),
        serde_json::json!({"elements": [], "text": "\"elements\":[]"}),
    );
    session.elements[0]
        .unknown
        .insert("elements".into(), serde_json::json!([]));
    let bytes = streamed(&session).unwrap();
    assert_eq!(bytes, encode(&session).unwrap());
    assert_eq!(decode(&bytes).unwrap().session, session);
}

#[test]
fn an_envelope_with_elements_or_an_element_source_that_fails_is_refused() {
    let session = every_fixture()
        .into_iter()
        .find(|s| !s.elements.is_empty())
        .unwrap();
    let mut out = Vec::new();
    let err = encode_streamed(
        &session,
        std::iter::empty::<Result<Element, std::io::Error>>(),
        &mut out,
    )
    .unwrap_err();
    assert!(err.to_string().contains("must hold no elements"), "{err}");
    assert!(out.is_empty(), "nothing written before the check");
    let mut envelope = session.clone();
    let first = envelope.elements.remove(0);
    envelope.elements.clear();
    let failing = [Ok(first), Err(std::io::Error::other("disk gone"))];
    let err = encode_streamed(&envelope, failing, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, EncodeError::Elements { .. }), "{err}");
    assert!(
        err.to_string().contains("disk gone") && err.to_string().contains(session.id.as_str()),
        "{err}"
    );
}

#[test]
fn an_element_that_would_not_read_back_as_itself_is_refused() {
    let session = every_fixture()
        .into_iter()
        .find(|s| !s.elements.is_empty())
        .unwrap();
    let mut envelope = session.clone();
    let mut elements = std::mem::take(&mut envelope.elements);
    // An unknown field named like a known one: written twice, read back as the other.
    let other = serde_json::json!(elements[0].timestamp + 1);
    elements[0].unknown.insert("timestamp".into(), other);
    let mut out = Vec::new();
    let result = encode_streamed(
        &envelope,
        elements.into_iter().map(Ok::<_, std::io::Error>),
        &mut out,
    );
    let err = result.expect_err("an element whose encoding reads back differently is refused");
    assert!(
        err.to_string()
            .contains("element 0 would not read back as itself"),
        "{err}"
    );
}
