//! A consuming team's first minutes with `session-model`: read an app file's types,
//! upgrade them, and move a submission through its state machine. No I/O.
//!
//! `cargo run -p session-model --example upgrade_and_deliver`

use session_model::{LegacySession, LegacyUpgrade, Session, SessionV1, SubmissionStatus};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A legacy file of the Electron app: no `_metadata`, bytes as hex and as a Buffer.
    let legacy: LegacySession = serde_json::from_str(
        r#"{"id": "session-7", "startTime": 1700000000000, "endTime": 1700000005000, "isComplete": true,
            "elements": [{"id": "e1", "timestamp": 1700000000000, "direction": "device-to-pc",
                          "type": "message", "hexData": "4d53487c31",
                          "rawBytes": {"type": "Buffer", "data": [77, 83, 72, 124, 49]}}],
            "messages": ["MSH|1"], "labNote": "kept, though no version knows it"}"#,
    )?;
    // Legacy -> 1.0.0 needs what the file lacks (its save time, the retention); 1.0.0 ->
    // 2.0.0 checks that hex and raw bytes agree, and keeps each element's bytes once;
    // 2.0.0 -> 2.1.0 adds room for an interruption (none here).
    let v1 = SessionV1::from(LegacyUpgrade {
        session: legacy,
        saved_at: 1700000006000,
        retention_days: 30,
    });
    let mut session = Session::from_v1(v1)?;
    println!(
        "{} holds {} message(s): {:?}",
        session.id,
        session.message_count(),
        session.messages()
    );
    println!(
        "unknown fields kept: {:?}",
        session.unknown.keys().collect::<Vec<_>>()
    );

    // The one expiry rule, and the one submission state machine.
    let now = 1700000010000;
    println!(
        "expired now? {}; sendable now? {}",
        session.is_expired(now),
        session.is_sendable(now)
    );
    let key = session
        .submission
        .begin_attempt(now, || "key-derived-from-the-body".into())?
        .to_owned();
    session.submission.succeed(now + 120)?;
    assert_eq!(session.submission.status, SubmissionStatus::Submitted);
    println!(
        "delivered under {key}; a second attempt is refused: {}",
        session.submission.begin_attempt(now, String::new).unwrap_err()
    );
    Ok(())
}
