//! Property tests: unknown fields at every level and arbitrary element bytes survive
//! decode -> upgrade -> encode, and the rewrites the workers do later.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use session_migrate::{DecodeOptions, decode, encode};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1.0e9f64..1.0e9).prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Extra fields whose names no version uses (`x` + letters, so never a known key).
fn extras() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("x[A-Za-z]{1,8}", json_value(), 0..4).prop_map(|m| m.into_iter().collect())
}

#[derive(Debug, Clone, Copy)]
enum Version {
    Legacy,
    V1,
    V2,
}

fn element(bytes: &[u8], n: usize, version: Version, extra: &Map<String, Value>) -> Value {
    let mut e = json!({"id": format!("e{n}"), "timestamp": 1000 + n as u64,
                       "direction": "device-to-pc", "type": "message"});
    match version {
        Version::V2 => {
            use base64::Engine;
            e["data"] = base64::engine::general_purpose::STANDARD.encode(bytes).into();
        }
        Version::Legacy | Version::V1 => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            e["hexData"] = session_model::encode_hex(bytes).into();
            e["rawBytes"] = json!({"type": "Buffer", "data": bytes});
            e["content"] = text.clone().into();
            e["decodedMessage"] = text.into();
        }
    }
    e.as_object_mut().unwrap().extend(extra.clone());
    e
}

fn document(
    version: Version,
    elements: &[Vec<u8>],
    session_extra: &Map<String, Value>,
    element_extra: &Map<String, Value>,
    meta_extra: &Map<String, Value>,
) -> Value {
    let els: Vec<Value> = elements
        .iter()
        .enumerate()
        .map(|(n, b)| element(b, n, version, element_extra))
        .collect();
    let messages: Vec<String> = elements
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let mut doc = json!({"id": "prop-1", "sessionId": 1, "startTime": 1000, "endTime": 2000,
                         "deviceIP": "10.0.0.1", "lisIP": "10.0.0.2", "isComplete": true, "elements": els});
    match version {
        Version::Legacy => doc["messages"] = json!(messages),
        Version::V1 => {
            doc["messages"] = json!(messages);
            doc["submissionStatus"] = "pending".into();
            doc["persistedUntil"] = 5000.into();
            let mut meta = json!({"version": "1.0.0", "savedAt": 1500, "retentionDays": 30});
            meta.as_object_mut().unwrap().extend(meta_extra.clone());
            doc["_metadata"] = meta;
        }
        Version::V2 => {
            doc["persistedUntil"] = 5000.into();
            doc["submission"] = json!({"status": "pending", "attempts": 0});
            let mut meta = json!({"version": "2.0.0", "savedAt": 1500, "retentionDays": 30, "revision": 3});
            meta.as_object_mut().unwrap().extend(meta_extra.clone());
            doc["_metadata"] = meta;
        }
    }
    doc.as_object_mut().unwrap().extend(session_extra.clone());
    doc
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::Legacy), Just(Version::V1), Just(Version::V2)]
}

fn assert_kept(
    decoded: &session_model::Session,
    elements: &[Vec<u8>],
    se: &Map<String, Value>,
    ee: &Map<String, Value>,
    me: &Map<String, Value>,
    version: Version,
) {
    for (k, v) in se {
        assert_eq!(decoded.unknown.get(k), Some(v), "session field {k}");
    }
    for (e, bytes) in decoded.elements.iter().zip(elements) {
        assert_eq!(&e.data.0, bytes);
        for (k, v) in ee {
            assert_eq!(e.unknown.get(k), Some(v), "element field {k}");
        }
    }
    if !matches!(version, Version::Legacy) {
        for (k, v) in me {
            assert_eq!(decoded.metadata.unknown.get(k), Some(v), "metadata field {k}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn unknown_fields_and_bytes_survive_decode_upgrade_encode(
        version in version(),
        elements in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..5),
        se in extras(), ee in extras(), me in extras(),
    ) {
        let doc = document(version, &elements, &se, &ee, &me);
        let decoded = decode(&serde_json::to_vec(&doc).unwrap()).unwrap().session;
        assert_kept(&decoded, &elements, &se, &ee, &me, version);
        prop_assert_eq!(decoded.elements.len(), elements.len());
        // Encoded and decoded again: identical, still carrying every unknown field.
        let again = decode(&encode(&decoded).unwrap()).unwrap().session;
        prop_assert_eq!(&again, &decoded);
        // And the text the app derived from the bytes is derived identically.
        let messages: Vec<String> = elements.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
        prop_assert_eq!(again.messages(), messages);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn unknown_fields_survive_the_rewrites_of_the_workers(
        version in version(), se in extras(), ee in extras(), me in extras(),
    ) {
        let elements = vec![b"MSH|^~\\&|\xc3\x28|\r\n".to_vec()];
        let doc = document(version, &elements, &se, &ee, &me);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("prop-1.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
        let store = session_store::SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
        let id = "prop-1".parse().unwrap();
        // What the submission worker does: two locked read-modify-writes.
        store.update(&id, |s| {
            s.submission.begin_attempt(10, || "key".into()).map(|_| ()).map_err(session_store::refused(&id))
        }).unwrap();
        store.update(&id, |s| {
            s.submission.succeed(20).map_err(session_store::refused(&id))
        }).unwrap();
        let stored = store.load(&id).unwrap().unwrap().session;
        assert_kept(&stored, &elements, &se, &ee, &me, version);
        prop_assert_eq!(stored.submission.status, session_model::SubmissionStatus::Submitted);
    }
}

/// The submission record's names: unknown fields named like them at other levels
/// are as likely to be confused as the levels' own names.
const SUBMISSION: &[&str] = &[
    "status",
    "attempts",
    "submittedAt",
    "lastAttemptAt",
    "nextAttemptAt",
    "lastError",
    "idempotencyKey",
    "earlierDeliveries",
];

/// Every field name any version uses, at any level: unknown fields named like known
/// ones are where a decoder and an encoder disagree. Derived from the per-level lists,
/// so a field added to a version is tried here without another edit.
fn every_name() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = [
        V1_SESSION,
        APP_ELEMENT,
        V1_METADATA,
        SUBMISSION,
        session_model::SESSION_FIELDS,
        session_model::ELEMENT_FIELDS,
        session_model::METADATA_FIELDS,
    ]
    .concat();
    names.sort_unstable();
    names.dedup();
    names
}

const V1_SESSION: &[&str] = &[
    "id",
    "sessionId",
    "startTime",
    "endTime",
    "deviceIP",
    "lisIP",
    "elements",
    "messages",
    "isComplete",
    "submissionStatus",
    "submissionAttempts",
    "submittedAt",
    "submissionError",
    "persistedUntil",
    "_metadata",
];
const APP_ELEMENT: &[&str] = &[
    "id",
    "timestamp",
    "direction",
    "type",
    "hexData",
    "rawBytes",
    "content",
    "decodedMessage",
];
const V1_METADATA: &[&str] = &["version", "savedAt", "retentionDays"];

/// The names `version` itself knows at each level (session, element, metadata).
fn known(version: Version) -> [&'static [&'static str]; 3] {
    match version {
        Version::Legacy | Version::V1 => [V1_SESSION, APP_ELEMENT, V1_METADATA],
        Version::V2 => [
            session_model::SESSION_FIELDS,
            session_model::ELEMENT_FIELDS,
            session_model::METADATA_FIELDS,
        ],
    }
}

fn named_like_known() -> impl Strategy<Value = Map<String, Value>> {
    let name = prop_oneof![
        prop::sample::select(every_name()).prop_map(str::to_owned),
        "x[a-z]{1,4}",
    ];
    prop::collection::btree_map(name, json_value(), 0..4).prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every write reads back: whatever `decode` accepts, `encode` writes, and the bytes
    /// decode to the same session, every unknown field kept exactly. What cannot be
    /// kept exactly is refused by `decode` (so `put` exits 2 and writes nothing).
    #[test]
    fn every_accepted_document_is_written_exactly(
        version in version(),
        elements in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 0..3),
        se in named_like_known(), ee in named_like_known(), me in named_like_known(),
    ) {
        let doc = document(version, &elements, &se, &ee, &me);
        let Ok(decoded) = decode(&serde_json::to_vec(&doc).unwrap()) else {
            return Ok(()); // refused: nothing would be written
        };
        let bytes = encode(&decoded.session);
        prop_assert!(bytes.is_ok(), "accepted but cannot be written: {:?}", bytes.err());
        let again = decode(&bytes.unwrap());
        prop_assert!(again.is_ok(), "written bytes do not read back: {:?}", again.err());
        prop_assert_eq!(&again.unwrap().session, &decoded.session);
        // Unknown to the source version: kept exactly, at every level.
        let [session_known, element_known, metadata_known] = known(version);
        let session = &decoded.session;
        for (k, v) in se.iter().filter(|(k, _)| !session_known.contains(&k.as_str())) {
            prop_assert_eq!(session.unknown.get(k), Some(v), "session field {}", k);
        }
        for e in &session.elements {
            for (k, v) in ee.iter().filter(|(k, _)| !element_known.contains(&k.as_str())) {
                prop_assert_eq!(e.unknown.get(k), Some(v), "element field {}", k);
            }
        }
        if !matches!(version, Version::Legacy) && !se.contains_key("_metadata") {
            for (k, v) in me.iter().filter(|(k, _)| !metadata_known.contains(&k.as_str())) {
                prop_assert_eq!(session.metadata.unknown.get(k), Some(v), "metadata field {}", k);
            }
        }
    }
}

#[test]
fn fields_named_like_the_current_versions_are_refused_not_duplicated() {
    let v1 = |patch: &dyn Fn(&mut Value)| {
        let mut doc = document(
            Version::V1,
            &[b"MSH|1\r\n".to_vec()],
            &Map::new(),
            &Map::new(),
            &Map::new(),
        );
        patch(&mut doc);
        serde_json::to_vec(&doc).unwrap()
    };
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "top-level submission",
            v1(&|d| d["submission"] = json!({"status": "submitted"})),
        ),
        ("element data", v1(&|d| d["elements"][0]["data"] = json!("AAAA"))),
        (
            "_metadata.revision",
            v1(&|d| d["_metadata"]["revision"] = json!(7)),
        ),
        ("legacy submission", {
            let mut d = document(Version::Legacy, &[], &Map::new(), &Map::new(), &Map::new());
            d["submission"] = json!(1);
            serde_json::to_vec(&d).unwrap()
        }),
    ];
    for (what, bytes) in cases {
        let err = decode(&bytes).expect_err(what).to_string();
        assert!(
            err.contains("named like a field of the version it upgrades to"),
            "{what}: {err}"
        );
    }
    let null_metadata = br#"{"id": "a", "startTime": 1, "_metadata": null}"#;
    let err = decode(null_metadata).unwrap_err().to_string();
    assert!(err.contains("_metadata is null"), "{err}");
}

#[test]
fn numbers_that_would_change_are_refused() {
    for number in [
        "1E2",
        "-0",
        "18446744073709551616",
        "1.50",
        "-9223372036854775809",
    ] {
        let doc = format!(r#"{{"id": "a", "startTime": 1, "xNote": {number}}}"#);
        let err = decode(doc.as_bytes()).expect_err(number).to_string();
        assert!(err.contains("cannot be kept exactly"), "{number}: {err}");
    }
    let fine = br#"{"id": "a", "startTime": 1, "xNote": [0, -1, 1.5, 18446744073709551615]}"#;
    let decoded = decode(fine).unwrap().session;
    assert_eq!(
        decoded.unknown["xNote"],
        json!([0, -1, 1.5, 18446744073709551615u64])
    );
}
