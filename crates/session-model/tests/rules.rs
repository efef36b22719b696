//! The model's own rules, each checked by its result: what the workers, the store and
//! the page rely on, judged by this crate's tests alone (see MUTANTS.md).

use serde_json::json;
use session_model::{
    AppElement, DAY_MS, Direction, Document, ElementKind, LegacySession, LegacyUpgrade, Printable,
    SchemaVersion, Session, SessionId, SessionV1, SessionV2_0, SubmissionStatus, UpgradeError, Version,
    decode_hex,
};

fn v1(extra: serde_json::Value) -> SessionV1 {
    let mut doc = json!({
        "id": "s-1", "sessionId": 3, "startTime": 1000, "endTime": 2000,
        "deviceIP": "10.0.0.1", "lisIP": "10.0.0.2", "isComplete": true,
        "elements": [
            {"id": "e1", "timestamp": 1000, "direction": "device-to-pc", "type": "start",
             "hexData": "05", "rawBytes": {"type": "Buffer", "data": [5]}},
            {"id": "e2", "timestamp": 1001, "direction": "device-to-pc", "type": "message",
             "hexData": "4d53487c31", "rawBytes": {"type": "Buffer", "data": [77, 83, 72, 124, 49]},
             "content": "MSH|1"},
            {"id": "e3", "timestamp": 1002, "direction": "pc-to-device", "type": "ack",
             "hexData": "06", "rawBytes": {"type": "Buffer", "data": [6]}},
            {"id": "e4", "timestamp": 1003, "direction": "device-to-pc", "type": "message",
             "hexData": "4f42587c32", "rawBytes": {"type": "Buffer", "data": [79, 66, 88, 124, 50]}},
            {"id": "e5", "timestamp": 1004, "direction": "device-to-pc", "type": "end",
             "hexData": "04", "rawBytes": {"type": "Buffer", "data": [4]}}
        ],
        "messages": ["MSH|1", "OBX|2"],
        "submissionStatus": "pending", "persistedUntil": 5000,
        "_metadata": {"version": "1.0.0", "savedAt": 1500, "retentionDays": 30}
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    serde_json::from_value(doc).unwrap()
}

fn current() -> Session {
    Session::from_v1(v1(json!({}))).unwrap()
}

#[test]
fn element_bytes_come_from_the_copies_the_app_wrote() {
    let element: AppElement =
        serde_json::from_value(json!({"id": "e", "timestamp": 1, "direction": "device-to-pc",
        "type": "message", "hexData": "4d5348", "rawBytes": {"type": "Buffer", "data": [77, 83, 72]}}))
        .unwrap();
    assert_eq!(element.bytes().unwrap(), b"MSH");
    let hex_only: AppElement = serde_json::from_value(
        json!({"id": "e", "timestamp": 1, "direction": "x", "type": "y", "hexData": "f00a"}),
    )
    .unwrap();
    assert_eq!(hex_only.bytes().unwrap(), vec![0xf0, 0x0a]);
    assert_eq!(decode_hex("A5ff"), Some(vec![0xa5, 0xff]));
    assert_eq!(
        decode_hex("1f"),
        Some(vec![0x1f]),
        "high and low nibbles combine by or"
    );
    assert_eq!(decode_hex("ff"), Some(vec![0xff]));
}

#[test]
fn the_upgrade_keeps_text_only_when_it_differs_from_the_bytes() {
    let session = current();
    // e2's content equals its bytes: dropped; the messages list equals the elements': dropped.
    assert!(session.elements[1].unknown.get("content").is_none());
    assert!(session.unknown.get("messages").is_none());
    assert_eq!(session.messages(), ["MSH|1", "OBX|2"]);
    assert_eq!(session.message_count(), 2);
    assert_eq!(session.elements[3].text_lossy(), "OBX|2");
    // Different text is kept verbatim, and wins as the messages.
    let kept = SessionV2_0::try_from(v1(json!({"messages": ["MSH|1 edited", "OBX|2"]}))).unwrap();
    assert_eq!(kept.unknown["messages"], json!(["MSH|1 edited", "OBX|2"]));
    assert_eq!(kept.messages(), ["MSH|1 edited", "OBX|2"]);
    let mut odd = v1(json!({}));
    odd.elements[1].content = Some("not the bytes".into());
    let odd = SessionV2_0::try_from(odd).unwrap();
    assert_eq!(odd.elements[1].unknown["content"], "not the bytes");
    // Fewer messages than message elements is also a difference.
    let fewer = SessionV2_0::try_from(v1(json!({"messages": ["MSH|1"]}))).unwrap();
    assert_eq!(fewer.messages(), ["MSH|1"]);
    assert_eq!(fewer.message_count(), 1);
}

#[test]
fn colliding_unknown_fields_are_refused_at_every_level() {
    let top = SessionV2_0::try_from(v1(json!({"submission": {}}))).unwrap_err();
    assert!(matches!(top, UpgradeError::FieldCollision { ref field, .. } if field == "submission"));
    let mut element = v1(json!({}));
    element.elements[0].unknown.insert("data".into(), json!("AA=="));
    let err = SessionV2_0::try_from(element).unwrap_err();
    assert!(
        matches!(err, UpgradeError::FieldCollision { ref field, ref level } if field == "data" && level == "in element 0")
    );
    let mut meta = v1(json!({}));
    meta.metadata.unknown.insert("revision".into(), json!(3));
    assert!(matches!(
        SessionV2_0::try_from(meta).unwrap_err(),
        UpgradeError::FieldCollision { .. }
    ));
    // Names no version uses are kept.
    assert!(SessionV2_0::try_from(v1(json!({"labNote": 1}))).is_ok());
}

#[test]
fn sendability_and_delivery_content() {
    let mut s = current();
    assert!(s.is_sendable(0));
    s.is_complete = false;
    assert!(!s.is_sendable(0), "an incomplete session is never sent");
    s.is_complete = true;
    s.submission.status = SubmissionStatus::Failed;
    assert!(!s.is_sendable(0));
    let base = current();
    assert!(base.same_delivery_content(&current()));
    let changes: [fn(&mut Session); 6] = [
        |s| s.id = SessionId::new("other").unwrap(),
        |s| s.start_time += 1,
        |s| s.end_time = None,
        |s| s.device_ip = None,
        |s| s.lis_ip = Some("x".into()),
        |s| s.elements[1].data.0.push(b'!'),
    ];
    for change in changes {
        let mut other = current();
        change(&mut other);
        assert!(!base.same_delivery_content(&other));
        assert!(!Document::same_delivery_content(&base, &other));
    }
    // What does not reach the receiver does not count.
    let mut other = current();
    other.submission.attempts = 9;
    other.metadata.revision = 4;
    other.unknown.insert("labNote".into(), json!(1));
    assert!(Document::same_delivery_content(&base, &other));
}

#[test]
fn the_document_records_its_saves() {
    let mut s = current();
    s.metadata.version = "old".into();
    Document::stamp(&mut s, 7, 1234);
    assert_eq!(s.saved(), (7, 1234));
    assert_eq!(
        (
            s.metadata.revision,
            s.metadata.saved_at,
            s.metadata.version.as_str()
        ),
        (7, 1234, session_model::CURRENT_VERSION)
    );
    assert_eq!(Document::id(&s).as_str(), "s-1");
    Document::submission_mut(&mut s).attempts = 5;
    assert_eq!(Document::submission(&s).attempts, 5);
}

#[test]
fn statuses_and_versions_say_what_they_are() {
    assert!(SubmissionStatus::Submitted.is_settled() && SubmissionStatus::Ignored.is_settled());
    for unsettled in [
        SubmissionStatus::Pending,
        SubmissionStatus::InFlight,
        SubmissionStatus::Failed,
    ] {
        assert!(!unsettled.is_settled(), "{unsettled}");
    }
    assert_eq!(SubmissionStatus::InFlight.to_string(), "inFlight");
    assert_eq!(SchemaVersion::V2_0_0.to_string(), "2.0.0");
    assert_eq!(SchemaVersion::V1_0_0.order(), 1);
    assert_eq!(<SessionV2_0 as Version>::SCHEMA.order(), 2);
    assert!(SchemaVersion::V1_0_0.is_outdated() && SchemaVersion::LEGACY.is_outdated());
    assert!(!SchemaVersion::CURRENT.is_outdated());
    let mut s = current();
    assert!(!s.submission.was_ever_delivered());
    s.submission.status = SubmissionStatus::Submitted;
    assert!(s.submission.was_ever_delivered());
    let mut earlier = current();
    earlier.submission.submitted_at = Some(5);
    assert!(earlier.submission.was_ever_delivered());
    // content_changed records a delivery known only by its time, too.
    earlier.submission.content_changed();
    assert_eq!(earlier.submission.earlier_deliveries.len(), 1);
    let mut never = current();
    never.submission.content_changed();
    assert!(never.submission.earlier_deliveries.is_empty());
}

#[test]
fn ids_and_text_print_as_they_are() {
    let id = SessionId::new("session-7").unwrap();
    assert_eq!(id.to_string(), "session-7");
    assert!(format!("{id:?}").contains("session-7"));
    assert_eq!(AsRef::<str>::as_ref(&id), "session-7");
    assert_eq!(format!("{:?}", Printable("a\u{1b}")), "\"a\\u{1b}\"");
}

#[test]
fn legacy_retention_counts_whole_days() {
    assert_eq!(DAY_MS, 86_400_000);
    let legacy: LegacySession = serde_json::from_value(json!({"id": "l", "startTime": 1000})).unwrap();
    let upgraded = SessionV1::from(LegacyUpgrade {
        session: legacy,
        saved_at: 1,
        retention_days: 2,
    });
    assert_eq!(upgraded.persisted_until, 1000 + 2 * 86_400_000);
}

#[test]
fn words_the_app_wrote_read_back_as_the_same_words() {
    for word in ["device-to-pc", "pc-to-device", "sideways"] {
        let direction = Direction::from(word.to_owned());
        assert_eq!(String::from(direction.clone()), word);
        assert_eq!(
            matches!(direction, Direction::Other(_)),
            word == "sideways",
            "{word}"
        );
    }
    for word in ["start", "ack", "end", "message", "nak", "nack"] {
        let kind = ElementKind::from(word.to_owned());
        assert_eq!(String::from(kind.clone()), word);
        assert_eq!(matches!(kind, ElementKind::Other(_)), word == "nack", "{word}");
    }
}

#[test]
fn a_session_the_lis_did_not_wholly_receive_is_delivered_only_when_asked_and_only_complete() {
    use session_model::{Interruption, InterruptionReason};
    let mut s = current();
    assert!(s.may_deliver(false) && s.may_deliver(true));
    s.interrupted = Some(Interruption::lis_closed(1500, 42));
    let i = s.interrupted.as_ref().unwrap();
    assert_eq!(
        (i.reason.clone(), i.lis_missed_bytes()),
        (InterruptionReason::LisClosed, Some(42))
    );
    assert!(s.may_deliver(true) && !s.may_deliver(false));
    assert!(s.is_sendable_capped(10_000, 1, true) && !s.is_sendable_capped(10_000, 1, false));
    assert!(
        !s.is_sendable(10_000),
        "the plain rule never sends an interrupted session"
    );
    // Written as "lisClosed" with the count beside it; read back the same; an unknown
    // reason stays as written.
    let text = serde_json::to_value(s.interrupted.as_ref().unwrap()).unwrap();
    assert_eq!(
        text,
        json!({"at": 1500, "reason": "lisClosed", "lisMissedBytes": 42})
    );
    let back: Interruption = serde_json::from_value(text).unwrap();
    assert_eq!(back.lis_missed_bytes(), Some(42));
    assert_eq!(
        InterruptionReason::from("lisClosed".to_owned()).to_string(),
        "lisClosed"
    );
    // Not complete, or another reason: never delivered.
    s.is_complete = false;
    assert!(!s.may_deliver(true));
    s.is_complete = true;
    s.interrupted.as_mut().unwrap().reason = InterruptionReason::Crash;
    assert!(!s.may_deliver(true));
    assert_eq!(
        s.interrupted.as_ref().unwrap().lis_missed_bytes(),
        Some(42),
        "the count is kept whatever the reason"
    );
}

/// The `2.0.0` copies of the rules (a released version keeps its own): each checked by
/// its result, as the current version's are.
#[test]
fn the_2_0_0_rules_decide_as_the_current_ones_do() {
    let base = SessionV2_0::try_from(v1(json!({}))).unwrap();
    // Expiry: at `persistedUntil` (5000) and after, not before.
    assert!(!base.is_expired(4_999));
    assert!(base.is_expired(5_000));
    assert!(base.is_expired(5_001));
    // Sendable: complete and pending; not when incomplete, not when settled.
    assert!(base.is_sendable(0));
    let mut incomplete = base.clone();
    incomplete.is_complete = false;
    assert!(!incomplete.is_sendable(0));
    let mut failed = base.clone();
    failed.submission.status = SubmissionStatus::Failed;
    assert!(!failed.is_sendable(0));
    // Messages: the kept list (it differs from the bytes here), counted.
    assert_eq!(base.messages(), ["MSH|1", "OBX|2"]);
    assert_eq!(base.message_count(), 2);
    let derived = SessionV2_0::try_from(v1(json!({"messages": ["MSH|1", "OBX|2"]}))).unwrap();
    assert_eq!(derived.message_count(), 2);
    // Delivery content: each field the receiver gets counts, nothing else does.
    assert!(base.same_delivery_content(&base.clone()));
    let changes: [fn(&mut SessionV2_0); 6] = [
        |s| s.id = SessionId::new("other").unwrap(),
        |s| s.start_time += 1,
        |s| s.end_time = None,
        |s| s.device_ip = None,
        |s| s.lis_ip = Some("x".into()),
        |s| {
            s.unknown.remove("messages");
            s.elements[1].data.0.push(b'!');
        },
    ];
    for change in changes {
        let mut other = base.clone();
        change(&mut other);
        assert!(!base.same_delivery_content(&other), "{other:?}");
    }
    let mut bookkeeping = base.clone();
    bookkeeping.submission.attempts = 9;
    bookkeeping.metadata.revision = 4;
    assert!(base.same_delivery_content(&bookkeeping));
}

#[test]
fn every_interruption_reason_reads_and_prints_as_its_word() {
    use session_model::InterruptionReason;
    let words = [
        ("connectionClosed", InterruptionReason::ConnectionClosed),
        ("restarted", InterruptionReason::Restarted),
        ("unframed", InterruptionReason::Unframed),
        ("shutdown", InterruptionReason::Shutdown),
        ("crash", InterruptionReason::Crash),
        ("lisClosed", InterruptionReason::LisClosed),
        ("powerCut", InterruptionReason::Other("powerCut".into())),
    ];
    for (word, reason) in words {
        assert_eq!(InterruptionReason::from(word.to_owned()), reason, "{word}");
        assert_eq!(String::from(reason.clone()), word);
        assert_eq!(reason.to_string(), word);
        let json: InterruptionReason = serde_json::from_value(json!(word)).unwrap();
        assert_eq!(json, reason);
    }
}

#[test]
fn a_rejected_id_is_never_quoted_only_measured() {
    for typed in [
        "Jane Doe 1984-03-02",
        "../../etc/passwd",
        "x\u{1b}[31m",
        ".hidden",
    ] {
        let error = session_model::SessionId::new(typed).unwrap_err();
        let said = format!("{error} {error:?}");
        for part in typed
            .split(['/', ' ', '\u{1b}', '[', '.'])
            .filter(|p| p.len() > 2)
        {
            assert!(!said.contains(part), "{typed:?} quoted in {said}");
        }
        assert_eq!(error.length, typed.chars().count(), "{said}");
    }
}

#[test]
fn an_hl7_file_holds_each_message_as_sent_each_ended_by_one_cr() {
    use session_model::Element;
    let message =
        |at: u64, bytes: &[u8]| Element::new(at, Direction::DeviceToPc, ElementKind::Message, bytes.to_vec());
    let session = Session::new(SessionId::new("s-1").unwrap(), 1_000, 30).with_elements(vec![
        Element::new(1_000, Direction::DeviceToPc, ElementKind::Start, vec![5]),
        message(1_001, b"MSH|1\rOBX|1\r"),
        Element::new(1_002, Direction::PcToDevice, ElementKind::Ack, vec![6]),
        // Not UTF-8, and without its closing CR.
        message(1_003, b"MSH|\xff\rOBX|2"),
    ]);
    assert_eq!(session.hl7_file(), b"MSH|1\rOBX|1\rMSH|\xff\rOBX|2\r");
    // An app file that kept only its text list: that list.
    let mut doc = serde_json::to_value(Session::new(SessionId::new("s-2").unwrap(), 1_000, 30)).unwrap();
    doc["messages"] = json!(["MSH|a\r", "MSH|b"]);
    let texts: Session = serde_json::from_value(doc).unwrap();
    assert_eq!(texts.hl7_file(), b"MSH|a\rMSH|b\r");
    assert_eq!(
        Session::new(SessionId::new("s-3").unwrap(), 1_000, 30).hl7_file(),
        b"",
        "no message, nothing"
    );
}

#[test]
fn a_retention_applied_later_counts_from_the_sessions_start() {
    let mut session = Session::new(SessionId::new("s-1").unwrap(), 5_000, 30);
    assert_eq!(session.persisted_until, 5_000 + 30 * DAY_MS);
    session.retain_for(90);
    assert_eq!(session.persisted_until, 5_000 + 90 * DAY_MS);
    assert_eq!(session.metadata.retention_days, 90);
    session.retain_for(u32::MAX);
    assert_eq!(session.persisted_until, 5_000 + u64::from(u32::MAX) * DAY_MS);
    let mut late = Session::new(SessionId::new("s-2").unwrap(), u64::MAX - 1, 1);
    assert_eq!(late.persisted_until, u64::MAX, "saturates");
    late.retain_for(0);
    assert_eq!(late.persisted_until, u64::MAX - 1);
}

#[test]
fn each_version_states_the_version_its_document_says_not_its_own_name() {
    // What a decoder confirms a parse with: the document's word, whatever it is.
    let stated = |mut doc: serde_json::Value, version: &str| {
        doc["_metadata"]["version"] = json!(version);
        doc
    };
    let v1_doc = serde_json::to_value(v1(json!({}))).unwrap();
    let v1: SessionV1 = serde_json::from_value(stated(v1_doc.clone(), "1.0.0")).unwrap();
    assert_eq!(v1.stated_version(), Some("1.0.0"));
    let other: SessionV1 = serde_json::from_value(stated(v1_doc, "7.7.7")).unwrap();
    assert_eq!(other.stated_version(), Some("7.7.7"));

    let current_doc = serde_json::to_value(current()).unwrap();
    let v2_0: SessionV2_0 = serde_json::from_value(stated(current_doc.clone(), "2.0.0")).unwrap();
    assert_eq!(v2_0.stated_version(), Some("2.0.0"));
    let other: SessionV2_0 = serde_json::from_value(stated(current_doc.clone(), "7.7.7")).unwrap();
    assert_eq!(other.stated_version(), Some("7.7.7"));

    let now: Session = serde_json::from_value(current_doc.clone()).unwrap();
    assert_eq!(now.stated_version(), Some(Session::NAME));
    let other: Session = serde_json::from_value(stated(current_doc, "7.7.7")).unwrap();
    assert_eq!(other.stated_version(), Some("7.7.7"));
}

#[test]
fn a_version_that_does_not_say_how_to_read_its_word_states_none() {
    #[derive(serde::Deserialize)]
    struct Bare {}
    impl Version for Bare {
        const SCHEMA: SchemaVersion = SchemaVersion::new("9.0.0", 9);
    }
    let bare: Bare = serde_json::from_value(json!({"_metadata": {"version": "9.0.0"}})).unwrap();
    assert_eq!(
        bare.stated_version(),
        None,
        "a decoder then skims for the version instead"
    );
}

#[test]
fn the_message_count_is_the_number_of_messages_whatever_the_kept_list_holds() {
    let kept = |list: serde_json::Value| {
        let mut doc = serde_json::to_value(current()).unwrap();
        doc["messages"] = list;
        serde_json::from_value::<Session>(doc).unwrap()
    };
    let cases = [
        (current(), 2),
        (kept(json!(["MSH|a", "MSH|b", "MSH|c"])), 3),
        (kept(json!([])), 0),
        // Not a list of strings: the message elements count, as `messages` reads them.
        (kept(json!(["MSH|a", 7, "MSH|c"])), 2),
        (kept(json!("MSH|a")), 2),
    ];
    for (session, count) in cases {
        assert_eq!(session.messages().len(), count);
        assert_eq!(
            session.message_count(),
            count,
            "{:?}",
            session.unknown.get("messages")
        );
    }
}
