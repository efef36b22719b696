//! The local API served on 127.0.0.1 over a real store in a temp dir, called over HTTP:
//! every endpoint, its errors, and the rules every request must pass.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{Value, json};
use session_store::{DecodeOptions, SessionId, SubmissionStatus};

/// The ids of a page's sessions.
fn ids(page: &Value) -> Vec<String> {
    ids_in(&page["sessions"])
}

/// The ids of a JSON list of objects that each have one.
fn ids_in(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn status_of(api: &Api, id: &str) -> SubmissionStatus {
    let loaded = api.store.load(&SessionId::new(id).unwrap()).unwrap().unwrap();
    loaded.session.submission.status
}

/// Marks `id` delivered, as the submission worker would.
fn deliver(api: &Api, id: &str) {
    let id = SessionId::new(id).unwrap();
    let mut session = api.store.load(&id).unwrap().unwrap().session;
    session.submission.begin_attempt(START, || "key".into()).unwrap();
    session.submission.succeed(START).unwrap();
    api.store.save(&mut session).unwrap();
}

/// Marks `id` failed for good, as the submission worker would on a 400 (a locked
/// update: a plain save keeps the store's delivery state).
fn fail(api: &Api, id: &str) {
    let id = SessionId::new(id).unwrap();
    api.store
        .update(&id, |session| {
            session.submission.begin_attempt(START, || "key".into()).unwrap();
            session.submission.fail("HTTP 400".into()).unwrap();
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn lists_page_newest_first_and_as_asked() {
    let api = Api::serve(Setup::default()).await;
    api.with_sessions(5);
    {
        let page = api.get("/api/sessions").await;
        assert_eq!(page.status, 200);
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        let page = page.json();
        assert_eq!(page["total"], 5);
        assert_eq!(ids(&page), ["s-5", "s-4", "s-3", "s-2", "s-1"]);
        let first = &page["sessions"][0];
        assert_eq!(first["startTime"], START + 5 * 60_000);
        assert_eq!(first["messageCount"], 1);
        assert_eq!(first["submissionStatus"], "pending");
        assert_eq!(first["deviceIP"], "10.0.0.1");
        assert_eq!(first["lisIP"], "10.0.0.9");
        assert_eq!(first["isComplete"], true);
        assert!(first.get("messages").is_none(), "a list never carries messages");

        let asc = api.get("/api/sessions?order=asc&limit=2&offset=1").await.json();
        assert_eq!(asc["total"], 5);
        assert_eq!(ids(&asc), ["s-2", "s-3"]);
        let by_device = api.get("/api/sessions?device=10.0.0.2").await.json();
        assert_eq!(ids(&by_device), ["s-4", "s-2"]);
        let window = format!(
            "/api/sessions?from={}&to={}",
            START + 2 * 60_000,
            START + 3 * 60_000
        );
        assert_eq!(ids(&api.get(&window).await.json()), ["s-3", "s-2"]);
        let rfc = api
            .get("/api/sessions?from=2026-05-28T22:30:40%2B02:00&order=asc&limit=1")
            .await
            .json();
        // 2026-05-28T20:30:40Z is START + 4 minutes (START is 1_780_000_000_000 ms).
        assert_eq!(ids(&rfc), ["s-4"], "{rfc}");
        let capped = api.get("/api/sessions?limit=5000").await.json();
        assert_eq!(capped["total"], 5);
        let zero = api.get("/api/sessions?limit=0").await.json();
        assert_eq!(zero["total"], 5);
        assert!(ids(&zero).is_empty());
        let by_id = api.get("/api/sessions?sort=id&order=desc&limit=1").await.json();
        assert_eq!(ids(&by_id), ["s-5"]);
        let by_id = api.get("/api/sessions?sort=id&limit=1").await.json();
        assert_eq!(
            ids(&by_id),
            ["s-1"],
            "a sort other than start is ascending by default"
        );
        deliver(&api, "s-3");
        let submitted = api.get("/api/sessions?status=submitted").await.json();
        assert_eq!(ids(&submitted), ["s-3"]);
        assert_eq!(submitted["total"], 1);
    }
}

#[tokio::test]
async fn the_index_answers_lists_and_hears_the_apis_own_changes() {
    let api = Api::serve(Setup {
        indexed: true,
        ..Setup::default()
    })
    .await;
    assert_eq!(api.get("/api/sessions").await.json()["total"], 0);
    // Saved behind the index's back: only a watch (the daemon's) would tell it.
    api.with_sessions(2);
    assert_eq!(api.get("/api/sessions").await.json()["total"], 0);
    // The API's own change is told to the index at once.
    let ignored = api.post("/api/sessions/s-1/ignore", "").await;
    assert_eq!(ignored.status, 200);
    let listed = api.get("/api/sessions?status=ignored").await.json();
    assert_eq!(ids(&listed), ["s-1"]);
    let retried = api.post("/api/bulk", r#"{"action":"retry","ids":["s-2"]}"#).await;
    assert_eq!(retried.json()["changed"], 1);
    assert_eq!(
        ids(&api.get("/api/sessions?status=pending").await.json()),
        ["s-2"]
    );
    let deleted = api.call("DELETE", "/api/sessions/s-1", None).await;
    assert_eq!(deleted.json()["deleted"], true);
    assert_eq!(api.get("/api/sessions?status=ignored").await.json()["total"], 0);
    let status = api.get("/api/status").await.json();
    assert_eq!(status["total"], 1, "{status}");
}

#[tokio::test]
async fn a_bad_list_request_is_a_400_that_says_what_is_wrong() {
    let api = Api::serve(Setup::default()).await;
    for (query, says) in [
        ("status=lost", "lost"),
        ("sort=colour", "colour"),
        ("order=sideways", "order must be asc or desc"),
        ("limit=ten", "limit must be a whole number"),
        ("offset=-1", "offset must be a whole number"),
        (
            "from=yesterday",
            "from must be epoch milliseconds or an RFC 3339 time",
        ),
        ("to=2026-13-01T00:00:00Z", "to must be epoch milliseconds"),
    ] {
        let answer = api.get(&format!("/api/sessions?{query}")).await;
        assert_eq!(answer.status, 400, "{query}");
        assert!(answer.error().contains(says), "{query}: {}", answer.error());
    }
    let long = format!("/api/sessions?q={}", "x".repeat(201));
    let answer = api.get(&long).await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("longer than 200"));
    assert_eq!(
        api.get(&format!("/api/sessions?q={}", "x".repeat(200)))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_search_reads_the_messages_and_says_how_far_it_got() {
    let api = Api::serve(Setup::default()).await;
    api.with_sessions(3);
    let found = api.get("/api/sessions?q=PAT-77&limit=2").await.json();
    assert_eq!(found["total"], 3);
    assert_eq!(ids(&found), ["s-3", "s-2"]);
    assert_eq!(found["search"]["complete"], true);
    assert_eq!(found["search"]["searched"], 3);
    assert_eq!(found["search"]["candidates"], 3);
    let none = api.get("/api/sessions?q=NOBODY").await.json();
    assert_eq!(none["total"], 0);
    // Blank text is no search.
    let blank = api.get("/api/sessions?q=%20%20").await.json();
    assert!(blank.get("search").is_none());
    assert_eq!(blank["total"], 3);
}

#[tokio::test]
async fn a_session_reads_whole_parsed_and_exported() {
    let api = Api::serve(Setup::default()).await;
    api.with_sessions(1);
    let whole = api.get("/api/sessions/s-1").await.json();
    assert_eq!(whole["id"], "s-1", "{whole}");
    assert_eq!(whole["elements"][0]["type"], "message", "{whole}");
    assert_eq!(whole["submission"]["status"], "pending");
    let parsed = api.get("/api/sessions/s-1/hl7").await.json();
    assert_eq!(parsed["id"], "s-1");
    let message = &parsed["messages"][0];
    assert_eq!(message["messageType"], "ORU^R01");
    assert_eq!(message["controlId"], "CTRL-1");
    assert_eq!(message["summary"]["patientId"], "PAT-77");
    assert_eq!(message["summary"]["sampleId"], "SAMPLE-9");
    assert_eq!(message["summary"]["results"][0]["value"], "5.4");
    assert_eq!(message["summary"]["results"][0]["units"], "mmol/L");
    assert_eq!(message["segments"][0]["name"], "MSH");

    let hl7 = api.get("/api/sessions/s-1/export").await;
    assert_eq!(hl7.status, 200);
    assert_eq!(hl7.header("content-type"), Some("application/hl7-v2"));
    assert_eq!(
        hl7.header("content-disposition"),
        Some("attachment; filename=\"s-1.hl7\"")
    );
    assert_eq!(hl7.body, ORU);
    let json = api.get("/api/sessions/s-1/export?format=json").await;
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(
        json.header("content-disposition"),
        Some("attachment; filename=\"s-1.json\"")
    );
    let on_disk = api
        .store
        .fs()
        .read(&SessionId::new("s-1").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(json.body, on_disk, "the stored document, byte for byte");
    let bad = api.get("/api/sessions/s-1/export?format=pdf").await;
    assert_eq!(bad.status, 400);
    assert!(bad.error().contains("format must be hl7 or json"));

    for path in [
        "/api/sessions/s-9",
        "/api/sessions/s-9/hl7",
        "/api/sessions/s-9/export",
    ] {
        let missing = api.get(path).await;
        assert_eq!(missing.status, 404, "{path}");
        assert!(missing.error().contains("no session s-9"), "{path}");
    }
    for path in ["/api/sessions/..%2Fetc", "/api/sessions/a%20b/hl7"] {
        assert_eq!(api.get(path).await.status, 400, "{path}");
    }
}

#[tokio::test]
async fn a_damaged_or_newer_file_is_not_served_as_a_session() {
    let api = Api::serve(Setup::default()).await;
    let dir = api.dir.path().join("s");
    std::fs::write(dir.join("bad.json"), b"{ not json").unwrap();
    let newer = serde_json::json!({
        "sessionId": "new", "startTime": START, "elements": [],
        "_metadata": {"version": "9.0.0"}
    });
    std::fs::write(dir.join("new.json"), newer.to_string()).unwrap();
    let damaged = api.get("/api/sessions/bad").await;
    assert_eq!(damaged.status, 422, "{}", damaged.text());
    assert_eq!(api.get("/api/sessions/bad/export?format=json").await.status, 422);
    let newer = api.get("/api/sessions/new").await;
    assert_eq!(newer.status, 409, "{}", newer.text());
    assert_eq!(api.post("/api/sessions/new/ignore", "").await.status, 409);
}

#[tokio::test]
async fn retry_ignore_and_delete_change_one_session_as_the_rules_allow() {
    let api = Api::serve(Setup::default()).await;
    api.with_sessions(2);
    let ignored = api.post("/api/sessions/s-1/ignore", "").await;
    assert_eq!(ignored.status, 200);
    assert_eq!(
        ignored.json(),
        json!({"id": "s-1", "submissionStatus": "ignored"})
    );
    assert_eq!(status_of(&api, "s-1"), SubmissionStatus::Ignored);
    let retried = api.post("/api/sessions/s-1/retry", "").await;
    assert_eq!(retried.json()["submissionStatus"], "pending");
    assert_eq!(status_of(&api, "s-1"), SubmissionStatus::Pending);

    deliver(&api, "s-2");
    for action in ["retry", "ignore"] {
        let refused = api.post(&format!("/api/sessions/s-2/{action}"), "").await;
        assert_eq!(refused.status, 409, "{action}");
        assert_eq!(status_of(&api, "s-2"), SubmissionStatus::Submitted);
    }
    assert_eq!(api.post("/api/sessions/s-9/retry", "").await.status, 404);
    let bad_id = api.post("/api/sessions/a%20b/ignore", "").await;
    assert_eq!(bad_id.status, 400);
    assert!(
        bad_id.error().contains("invalid session id"),
        "{}",
        bad_id.error()
    );

    let deleted = api.call("DELETE", "/api/sessions/s-1", None).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json(), json!({"deleted": true}));
    assert!(api.store.load(&SessionId::new("s-1").unwrap()).unwrap().is_none());
    let again = api.call("DELETE", "/api/sessions/s-1", None).await;
    assert_eq!(again.json(), json!({"deleted": false}));
    assert_eq!(api.call("DELETE", "/api/sessions/a%2Fb", None).await.status, 400);
}

#[tokio::test]
async fn a_bulk_action_changes_what_it_names_and_says_what_it_skipped() {
    let api = Api::serve(Setup::default()).await;
    api.with_sessions(4);
    deliver(&api, "s-2");
    let done = api
        .post("/api/bulk", r#"{"action":"ignore","ids":["s-1","s-2","s-9"]}"#)
        .await
        .json();
    assert_eq!(done["changed"], 1);
    assert_eq!(done["skippedCount"], 2);
    assert_eq!(ids_in(&done["skipped"]), ["s-2", "s-9"]);
    assert!(
        done["skipped"][0]["error"]
            .as_str()
            .unwrap()
            .contains("submitted")
    );
    assert_eq!(status_of(&api, "s-1"), SubmissionStatus::Ignored);

    // A filter: every session the list would show with it.
    let by_filter = api
        .post(
            "/api/bulk",
            r#"{"action":"ignore","filter":{"device":"10.0.0.1"}}"#,
        )
        .await
        .json();
    // s-1 (already ignored: ignoring again is allowed) and s-3.
    assert_eq!(by_filter["changed"], 2, "{by_filter}");
    assert_eq!(status_of(&api, "s-3"), SubmissionStatus::Ignored);
    assert_eq!(status_of(&api, "s-4"), SubmissionStatus::Pending);
    let numeric = format!(
        r#"{{"action":"retry","filter":{{"from":{},"status":"ignored"}}}}"#,
        START + 2 * 60_000
    );
    let retried = api.post("/api/bulk", &numeric).await.json();
    assert_eq!(retried["changed"], 1, "{retried}");
    assert_eq!(status_of(&api, "s-3"), SubmissionStatus::Pending);
    assert_eq!(status_of(&api, "s-1"), SubmissionStatus::Ignored);

    for (body, says) in [
        ("not json", "expected"),
        ("[]", "expected"),
        (r#"{"action":"delete","ids":[]}"#, "action must be"),
        (r#"{"ids":["s-1"]}"#, "action must be"),
        (r#"{"action":"retry"}"#, "either ids"),
        (r#"{"action":"retry","ids":["s-1"],"filter":{}}"#, "either ids"),
        (r#"{"action":"retry","ids":"s-1"}"#, "either ids"),
        (r#"{"action":"retry","ids":[7]}"#, "ids must be session ids"),
        (r#"{"action":"retry","ids":["../x"]}"#, "ids must be session ids"),
        (
            r#"{"action":"retry","filter":{"colour":"red"}}"#,
            "a bulk filter takes",
        ),
        (
            r#"{"action":"retry","filter":{"order":"up"}}"#,
            "a bulk filter takes",
        ),
        (r#"{"action":"retry","filter":{"status":"lost"}}"#, "lost"),
    ] {
        let answer = api.post("/api/bulk", body).await;
        assert_eq!(answer.status, 400, "{body}");
        assert!(answer.error().contains(says), "{body}: {}", answer.error());
    }
    let too_many: Vec<String> = (0..100_001).map(|n| format!("x{n}")).collect();
    let answer = api
        .post(
            "/api/bulk",
            &json!({"action": "retry", "ids": too_many}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.error().contains("at most 100000"), "{}", answer.error());
    let most: Vec<String> = (0..100_000).map(|n| format!("x{n}")).collect();
    let answer = api
        .post("/api/bulk", &json!({"action": "retry", "ids": most}).to_string())
        .await;
    assert_eq!(answer.status, 200);
    let answer = answer.json();
    assert_eq!(answer["skippedCount"], 100_000);
    assert_eq!(
        answer["skipped"].as_array().unwrap().len(),
        50,
        "the list is cut at 50"
    );
}

#[tokio::test]
async fn retention_applies_to_every_stored_session_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sessionctl.toml");
    let api = Api::serve(Setup {
        config_file: Some((file, "retention_days = 90\n".into())),
        ..Setup::default()
    })
    .await;
    api.with_sessions(2);
    let applied = api.post("/api/retention/apply", "").await;
    assert_eq!(applied.status, 200);
    let applied = applied.json();
    assert_eq!(applied["retentionDays"], 90);
    assert_eq!(applied["changed"], 2);
    assert_eq!(applied["skippedCount"], 0);
    let kept = api.get("/api/sessions/s-1").await.json();
    assert_eq!(kept["persistedUntil"], START + 60_000 + 90 * 86_400_000, "{kept}");
}

#[tokio::test]
async fn status_metrics_and_the_clock_report_the_store() {
    let api = Api::serve(Setup::default()).await;
    api.with_sessions(3);
    deliver(&api, "s-1");
    let status = api.get("/api/status").await;
    assert_eq!(status.status, 200);
    let status = status.json();
    assert_eq!(status["total"], 3);
    assert_eq!(status["counts"]["pending"], 2);
    assert_eq!(status["counts"]["submitted"], 1);
    assert_eq!(status["oldestUndelivered"]["id"], "s-2");
    assert_eq!(status["oldestUndelivered"]["submissionStatus"], "pending");
    assert_eq!(status["problems"], 0);
    assert_eq!(status["clock"]["suspect"], false);
    assert!(status["lastCleanup"].is_null());

    let metrics = api.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = metrics.text();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("submitted\"} 1"), "{text}");

    let clock = api.get("/api/clock").await.json();
    assert_eq!(clock["suspect"], false);
    let confirmed = api.post("/api/clock/confirm", "").await;
    assert_eq!(confirmed.status, 200);
    let confirmed = confirmed.json();
    assert_eq!(confirmed["suspect"], false);
    assert!(confirmed["trustedAt"].as_u64().unwrap() > START);
    assert_eq!(
        api.get("/api/clock").await.json()["trustedAt"],
        confirmed["trustedAt"]
    );
}

#[tokio::test]
async fn settings_are_shown_checked_written_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessionctl.toml");
    let file = Arc::new(RecordingFile::default());
    let api = Api::serve(Setup {
        config_file: Some((path.clone(), "retention_days = 30\n".into())),
        settings_file: Some(file.clone()),
        ..Setup::default()
    })
    .await;
    let shown = api.get("/api/settings").await.json();
    assert_eq!(shown["retention_days"], 30);
    assert_eq!(shown["sources"]["retention_days"], "file");
    assert_eq!(shown["sources"]["cleanup_dry_run"], "default");
    assert_eq!(shown["delete_undelivered"], false);
    assert_eq!(shown["file"], path.display().to_string());
    assert!(shown["allowed"]["retention_days"]["min"].is_u64(), "{shown}");
    assert!(shown["help"]["retention_days"].is_string());
    assert!(shown.get("dir").is_none(), "only the API's settings");

    let put = api
        .call(
            "PUT",
            "/api/settings",
            Some(r#"{"retention_days": 90, "delete_undelivered": true}"#),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let put = put.json();
    assert_eq!(put["retention_days"], 90);
    assert_eq!(put["delete_undelivered"], true);
    let writes = file.writes.lock().unwrap().clone();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].0, path);
    assert_eq!(
        writes[0].1,
        [
            ("retention_days".to_owned(), "90".to_owned()),
            ("delete_undelivered".to_owned(), "true".to_owned())
        ]
    );
    assert_eq!(api.get("/api/settings").await.json()["retention_days"], 90);
    // A GET's answer sent back whole changes no value (its defaults are kept in the file
    // from then on: they were sent as settings).
    let back = api.get("/api/settings").await.json();
    let answer = api.call("PUT", "/api/settings", Some(&back.to_string())).await;
    assert_eq!(answer.status, 200);
    let writes = file.writes.lock().unwrap().clone();
    assert_eq!(writes.len(), 2);
    for (key, value) in &writes[1].1 {
        assert_eq!(back[key].to_string(), *value, "{key}");
    }
    let after = answer.json();
    for key in ["retention_days", "delete_undelivered", "cleanup_dry_run"] {
        assert_eq!(after[key], back[key], "{key}");
    }
    for (body, status, says) in [
        ("[1]", 400, "expected a JSON object"),
        (
            r#"{"retention_days": "90"}"#,
            400,
            "expected a number, not a string",
        ),
        (
            r#"{"delete_undelivered": 1}"#,
            400,
            "expected true or false, not a number",
        ),
        (r#"{"retention_days": null}"#, 400, "not null"),
        (r#"{"retention_days": [1]}"#, 400, "not an array"),
        (r#"{"retention_days": {}}"#, 400, "not an object"),
        (r#"{"retention_days": true}"#, 400, "not a boolean"),
        (r#"{"retention_days": 0}"#, 400, "retention_days"),
        (r#"{"dir": "/tmp"}"#, 400, "dir"),
    ] {
        let answer = api.call("PUT", "/api/settings", Some(body)).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text());
        assert!(answer.error().contains(says), "{body}: {}", answer.error());
    }
    assert_eq!(file.writes.lock().unwrap().len(), 2, "nothing invalid is written");
    assert_eq!(api.get("/api/settings").await.json()["retention_days"], 90);
}

#[tokio::test]
async fn settings_need_a_file_and_a_writer_and_a_failed_write_changes_nothing() {
    let none = Api::serve(Setup {
        settings_file: Some(Arc::new(RecordingFile::default())),
        ..Setup::default()
    })
    .await;
    let answer = none
        .call("PUT", "/api/settings", Some(r#"{"retention_days": 60}"#))
        .await;
    assert_eq!(answer.status, 409);
    assert!(answer.error().contains("no configuration file"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessionctl.toml");
    let no_writer = Api::serve(Setup {
        config_file: Some((path.clone(), String::new())),
        ..Setup::default()
    })
    .await;
    let answer = no_writer
        .call("PUT", "/api/settings", Some(r#"{"retention_days": 60}"#))
        .await;
    assert_eq!(answer.status, 409);
    assert!(answer.error().contains("keeps no settings"));

    let failing = Api::serve(Setup {
        config_file: Some((path, String::new())),
        settings_file: Some(Arc::new(RecordingFile {
            fail: true,
            ..RecordingFile::default()
        })),
        ..Setup::default()
    })
    .await;
    let answer = failing
        .call("PUT", "/api/settings", Some(r#"{"retention_days": 60}"#))
        .await;
    assert_eq!(answer.status, 500);
    assert!(answer.error().contains("disk full"));
    assert_eq!(failing.get("/api/settings").await.json()["retention_days"], 30);
}

#[tokio::test]
async fn events_stream_store_changes_and_end_when_the_api_stops() {
    let (events, _) = tokio::sync::broadcast::channel(16);
    let api = Api::serve(Setup {
        events: Some(events.clone()),
        ..Setup::default()
    })
    .await;
    let client = reqwest::Client::new();
    let mut stream = client
        .get(format!("http://{}/api/events", api.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // The subscription exists once the response has started.
    events
        .send(session_api::StoreEvent::of("s-1".into(), true))
        .unwrap();
    events
        .send(session_api::StoreEvent::of("s-2".into(), false))
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("s-2") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream is open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: session"), "{seen}");
    assert!(seen.contains(r#"data: {"kind":"stored","id":"s-1"}"#), "{seen}");
    assert!(seen.contains(r#"data: {"kind":"deleted","id":"s-2"}"#), "{seen}");
    api.stop.cancel();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ends when the API stops");
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_and_anything_else_is_a_json_404() {
    let api = Api::serve(Setup::default()).await;
    for path in ["/", "/sessions/s-1"] {
        let page = api.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(page.text().contains("<html"), "{path}");
    }
    let script = api.get("/assets/app.js").await;
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(!script.body.is_empty());
    let style = api.get("/assets/app.css").await;
    assert_eq!(style.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(!style.body.is_empty());
    for path in [
        "/assets/secret.txt",
        "/api/nothing",
        "/api/sessions/s-1/more/deep",
        "/elsewhere",
    ] {
        let missing = api.get(path).await;
        assert_eq!(missing.status, 404, "{path}");
        assert!(missing.error().contains("no such"), "{path}");
    }
}

#[tokio::test]
async fn every_answer_is_hardened_and_a_foreign_host_or_origin_is_refused() {
    let api = Api::serve(Setup::default()).await;
    api.with_sessions(1);
    let answer = api.get("/api/sessions").await;
    assert_eq!(
        answer.header("content-security-policy"),
        Some(session_api::security::CSP)
    );
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let rebound = api
        .call_with("GET", "/api/sessions", None, &[("host", "evil.example")])
        .await;
    assert_eq!(rebound.status, 403);
    assert!(rebound.error().contains("Host"));
    assert_eq!(
        rebound.header("content-security-policy"),
        Some(session_api::security::CSP)
    );
    let localhost = format!("localhost:{}", api.addr.port());
    let named = api
        .call_with("GET", "/api/sessions", None, &[("host", &localhost)])
        .await;
    assert_eq!(named.status, 200);
    let other_port = api
        .call_with("GET", "/api/sessions", None, &[("host", "localhost:1")])
        .await;
    assert_eq!(other_port.status, 403);

    let foreign = api
        .call_with(
            "POST",
            "/api/sessions/s-1/ignore",
            None,
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(foreign.status, 403);
    assert!(foreign.error().contains("another origin"));
    assert_eq!(status_of(&api, "s-1"), SubmissionStatus::Pending);
    let own = format!("http://{}", api.addr);
    let same = api
        .call_with("POST", "/api/sessions/s-1/ignore", None, &[("origin", &own)])
        .await;
    assert_eq!(same.status, 200);
    // A read from another origin is allowed (the browser's CORS keeps its answer away).
    let read = api
        .call_with("GET", "/api/sessions", None, &[("origin", "http://evil.example")])
        .await;
    assert_eq!(read.status, 200);
}

#[tokio::test]
async fn with_a_token_every_request_needs_it() {
    let api = Api::serve(Setup {
        token: Some("s3cret-token".into()),
        ..Setup::default()
    })
    .await;
    assert_eq!(api.get("/api/sessions").await.status, 200);
    let client = reqwest::Client::new();
    for authorization in [
        None,
        Some("Bearer wrong"),
        Some("s3cret-token"),
        Some("Bearer s3cret-toke"),
    ] {
        let mut request = client.get(format!("http://{}/api/status", api.addr));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 401, "{authorization:?}");
    }
    let guard = session_api::security::Guard::new("127.0.0.1:0", api.addr, Some("s3cret-token".into()));
    let debug = format!("{guard:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
}

#[tokio::test]
async fn while_starting_the_page_is_served_and_the_api_says_what_start_up_does() {
    use session_api::starting::{Starting, router};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let guard = session_api::security::Guard::new("127.0.0.1:0", addr, None);
    let starting = Starting::new(guard.clone());
    let served = router(starting.clone());
    tokio::spawn(async move { axum::serve(listener, served).await });
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("http://{addr}{path}")).send();

    let early = get("/api/sessions").await.unwrap();
    assert_eq!(early.status(), 503);
    assert_eq!(early.headers()["retry-after"], "1");
    let body: Value = early.json().await.unwrap();
    assert_eq!(body["error"], "starting up: recovering: 0 sessions read");
    assert_eq!(body["starting"]["phase"], "recovering");
    starting.report(session_api::starting::Progress::new("migrating", 40, Some(100)));
    let body: Value = get("/api/status").await.unwrap().json().await.unwrap();
    assert_eq!(body["error"], "starting up: migrating 40 of 100 sessions");
    assert_eq!(body["starting"]["total"], 100);
    let page = get("/sessions/s-1").await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-security-policy"],
        session_api::security::CSP
    );
    assert_eq!(get("/assets/app.js").await.unwrap().status(), 200);
    assert_eq!(get("/assets/nope").await.unwrap().status(), 404);
    let foreign = client
        .get(format!("http://{addr}/"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);

    let store_dir = tempfile::tempdir().unwrap();
    let store =
        session_store::SessionStore::open(store_dir.path(), session_store::DecodeOptions::default()).unwrap();
    let config = session_daemon::settings::Configuration::builder()
        .resolve()
        .unwrap();
    let state = session_api::ApiState::new(store, config, guard);
    starting.serve(session_api::router(Arc::new(state)));
    let ready = get("/api/sessions").await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["total"], 0);
}

#[tokio::test]
async fn status_judges_by_the_configured_alert_age_and_retry_cap() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::serve(Setup {
        config_file: Some((
            dir.path().join("sessionctl.toml"),
            "alert_undelivered_minutes = 60\nretry_cap_seconds = 3600\n".into(),
        )),
        ..Setup::default()
    })
    .await;
    let now = session_fs::now_ms();
    // Waiting half an hour: within the hour the configuration allows.
    let mut recent = session("recent", now - 30 * 60_000, "10.0.0.1");
    api.store.save(&mut recent).unwrap();
    let status = api.get("/api/status").await.json();
    assert_eq!(status["alerts"], json!([]), "{status}");
    assert_eq!(status["retriesPulledIn"], 0);
    // Stored with its next attempt ten days ahead: beyond the hour's cap.
    let mut ahead = session("ahead", now - 60_000, "10.0.0.1");
    ahead.submission.begin_attempt(now, || "key".into()).unwrap();
    ahead
        .submission
        .retry_later("503".into(), now + 10 * 86_400_000)
        .unwrap();
    api.store.save(&mut ahead).unwrap();
    // Waiting two hours: an alert.
    let mut old = session("old", now - 120 * 60_000, "10.0.0.1");
    api.store.save(&mut old).unwrap();
    let status = api.get("/api/status").await.json();
    assert_eq!(status["retriesPulledIn"], 1, "{status}");
    assert_eq!(status["alerts"][0]["kind"], "undelivered", "{status}");
    assert_eq!(status["alerts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_settings_change_reaches_the_cleanup_worker_and_metrics_show_the_daemons_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (cleanup, mut heard) =
        tokio::sync::watch::channel(session_workers::cleanup::CleanupConfig::default());
    let counters = Arc::new(session_daemon::metrics::StationCounters::default());
    counters.submitted.store(7, std::sync::atomic::Ordering::Relaxed);
    let api = Api::serve(Setup {
        config_file: Some((dir.path().join("sessionctl.toml"), String::new())),
        settings_file: Some(Arc::new(RecordingFile::default())),
        cleanup: Some(cleanup),
        counters: Some(counters),
        ..Setup::default()
    })
    .await;
    heard.mark_unchanged();
    let put = api
        .call("PUT", "/api/settings", Some(r#"{"cleanup_dry_run": true}"#))
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert!(heard.has_changed().unwrap(), "the worker is told");
    assert!(heard.borrow_and_update().dry_run);
    let metrics = api.get("/metrics").await.text();
    assert!(
        metrics.contains("hl7_deliveries_total{outcome=\"submitted\"} 7"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_rules_read_hosts_without_case_heads_from_anywhere_and_tokens_whole() {
    let api = Api::serve(Setup {
        token: Some("s3cret-token".into()),
        ..Setup::default()
    })
    .await;
    let upper = format!("LOCALHOST:{}", api.addr.port());
    let answer = api
        .call_with("GET", "/api/status", None, &[("host", &upper)])
        .await;
    assert_eq!(answer.status, 200);
    let head = api
        .call_with("HEAD", "/api/status", None, &[("origin", "http://evil.example")])
        .await;
    assert_eq!(head.status, 200);
    let client = reqwest::Client::new();
    // Two characters swapped: every byte differs from its place, yet the bytes are the same.
    for token in [
        "Bearer s3cret-tkoen",
        "Bearer 3scret-token",
        "Bearer s3cret-tokenX",
    ] {
        let answer = client
            .get(format!("http://{}/api/status", api.addr))
            .header("authorization", token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{token}");
    }
}

#[tokio::test]
async fn a_clock_record_that_cannot_be_read_is_an_error_naming_it() {
    // A directory, a FIFO (a read must not block the answer) and a symlink out of the
    // store where the record should be.
    for odd in ["directory", "fifo", "symlink"] {
        let api = Api::serve(Setup::default()).await;
        let record = api.dir.path().join("s/.state/clock.json");
        let _ = std::fs::remove_file(&record);
        std::fs::create_dir_all(record.parent().unwrap()).unwrap();
        match odd {
            "directory" => std::fs::create_dir(&record).unwrap(),
            "fifo" => assert!(
                std::process::Command::new("mkfifo")
                    .arg(&record)
                    .status()
                    .unwrap()
                    .success()
            ),
            _ => {
                let outside = api.dir.path().join("elsewhere.json");
                std::fs::write(&outside, "{}").unwrap();
                std::os::unix::fs::symlink(&outside, &record).unwrap();
            }
        }
        for (method, path) in [("GET", "/api/clock"), ("POST", "/api/clock/confirm")] {
            let answer = api.call(method, path, Some("")).await;
            assert_eq!(answer.status, 500, "{odd}: {method} {path}");
            let error = answer.error();
            assert!(error.contains("clock.json"), "{odd}: {method} {path}: {error}");
        }
    }
}

#[tokio::test]
async fn status_names_the_first_failures_and_counts_them_all() {
    let api = Api::serve(Setup::default()).await;
    let n = session_station::FAILED_NAMED + 3;
    api.with_sessions(n as u64 + 1);
    for i in 1..=n {
        fail(&api, &format!("s-{i}"));
    }
    let status = api.get("/api/status").await.json();
    assert_eq!(status["counts"]["failed"], n, "{status}");
    let first: Vec<String> = (1..=session_station::FAILED_NAMED)
        .map(|i| format!("s-{i}"))
        .collect();
    assert_eq!(ids_in(&status["failed"]), first);
    assert_eq!(status["failed"][0]["lastError"], "HTTP 400");
}

#[test]
fn the_daemons_progress_reads_as_it_reported_it() {
    use session_daemon::Claimed;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    std::fs::create_dir(&store).unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/legacy");
    for name in ["session-11.json", "session-12.json"] {
        std::fs::copy(format!("{fixtures}/{name}"), store.join(name)).unwrap();
    }
    // A directory where session-12's lock file belongs: recovery's pass cannot upgrade
    // it, so the second try (which reports its progress per file) has it to do.
    let blocker = store.join(".locks").join("session-12.lock");
    std::fs::create_dir_all(&blocker).unwrap();
    let claimed = Claimed::claim(&store, DecodeOptions::default(), "test").unwrap();
    let recovered = claimed.recover(|_, _| {}, |_| {}).unwrap();
    std::fs::remove_dir(&blocker).unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    claimed
        .migrate(recovered.outdated, |progress| {
            let shown = serde_json::to_value(session_api::starting::Progress::from(progress)).unwrap();
            seen.lock().unwrap().push(shown);
        })
        .unwrap();
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last, json!({"phase": "migrating", "done": 1, "total": 1}));
}
