//! The lab's station over real HTTP on 127.0.0.1: lists from the daemon's index (filters,
//! orders, pages, kept current by the watch), text search, the HL7 view, export, metrics
//! and alerts.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const HOUR: u64 = 3_600_000;
/// 2026-12-04T12:00:00Z.
const NOON: u64 = 1_796_385_600_000;

fn msh(control_id: &str, sample: &str, test: &str, value: &str) -> String {
    format!(
        "MSH|^~\\&|ANALYZER|LAB|LIS|HOSP|20261204120000||ORU^R01|{control_id}|P|2.5\r\
         PID|1||PAT-{control_id}||DOE^JANE\r\
         OBR|1||{sample}|{test}^{test} test\r\
         OBX|1|NM|{test}^{test} test||{value}|mmol/L|3.9-5.8|N|||F"
    )
}

/// A session as the old app wrote it, started `start`, from `device`.
fn put(dir: &Path, id: &str, start: u64, device: &str, messages: &[String]) {
    let doc = json!({
        "id": id,
        "startTime": start,
        "endTime": start + 1000,
        "isComplete": true,
        "deviceIP": device,
        "lisIP": "10.0.0.1",
        "messages": messages,
        "persistedUntil": start + 3_650 * 24 * HOUR,
    });
    let out = sessionctl(dir, &["--json", "put"], Some(doc.to_string().as_bytes()));
    assert!(out.status.success(), "{id}: {}", text(&out.stderr));
}

fn station(dir: &Path) -> (Daemon, String) {
    put(
        dir,
        "session-1",
        NOON - 48 * HOUR,
        "10.0.0.3",
        &[msh("C1", "S-100", "GLU", "5.1")],
    );
    put(
        dir,
        "session-2",
        NOON - 24 * HOUR,
        "10.0.0.4",
        &[msh("C2", "S-200", "NA", "140")],
    );
    put(
        dir,
        "session-3",
        NOON + 2 * HOUR,
        "10.0.0.3",
        &[
            msh("C3", "GLU-4711", "GLU", "6.2"),
            msh("C4", "S-301", "K", "4.1"),
        ],
    );
    put(
        dir,
        "session-4",
        NOON + 3 * HOUR,
        "10.0.0.4",
        &[msh("C5", "S-400", "GLU", "4.8")],
    );
    put(
        dir,
        "session-5",
        NOON + 30 * HOUR,
        "10.0.0.3",
        &[msh("C6", "S-500", "CRP", "12")],
    );
    let daemon = Daemon::start(
        dir,
        &[
            "--set",
            "http_listen=127.0.0.1:0",
            "--set",
            "cleanup_dry_run=true",
        ],
    );
    let addr = daemon.api_addr();
    (daemon, addr)
}

fn ids(reply: &Value) -> Vec<String> {
    reply["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

fn get(addr: &str, path: &str) -> Value {
    let reply = http(addr, "GET", path, &[], None);
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.json()
}

/// Polls `path` until `done` holds (the watch is asynchronous), at most 20 s.
fn until(addr: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = get(addr, path);
        if done(&reply) || Instant::now() > deadline {
            return reply;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn lists_filter_sort_and_page_newest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (_daemon, addr) = station(&dir);
    let all = get(&addr, "/api/sessions");
    assert_eq!(all["total"], 5);
    assert_eq!(
        ids(&all),
        ["session-5", "session-4", "session-3", "session-2", "session-1"]
    );
    let row = &all["sessions"][0];
    assert_eq!(
        (&row["deviceIP"], &row["lisIP"]),
        (&json!("10.0.0.3"), &json!("10.0.0.1"))
    );
    assert!(
        row.get("lastAttemptAt").is_some() && row.get("endTime").is_some(),
        "{row}"
    );

    let device = get(&addr, "/api/sessions?device=10.0.0.3");
    assert_eq!(ids(&device), ["session-5", "session-3", "session-1"]);
    // Yesterday afternoon in any notation: RFC 3339 with an offset, or epoch ms.
    let day = format!(
        "/api/sessions?from={}&to={}",
        "2026-12-04T13:00:00%2B01:00",
        NOON + 12 * HOUR
    );
    assert_eq!(ids(&get(&addr, &day)), ["session-4", "session-3"]);
    let combined = get(&addr, &format!("{day}&device=10.0.0.3&status=pending"));
    assert_eq!(
        (ids(&combined), &combined["total"]),
        (vec!["session-3".to_owned()], &json!(1))
    );
    let oldest_first = get(&addr, "/api/sessions?order=asc&limit=2&offset=1");
    assert_eq!(
        (ids(&oldest_first), &oldest_first["total"]),
        (vec!["session-2".to_owned(), "session-3".to_owned()], &json!(5))
    );
    let by_messages = get(&addr, "/api/sessions?sort=messageCount&order=desc&limit=1");
    assert_eq!(ids(&by_messages), ["session-3"]);
    let by_id = get(&addr, "/api/sessions?sort=id");
    assert_eq!(
        ids(&by_id)[0],
        "session-1",
        "a column sorts ascending unless asked"
    );

    for (query, key) in [
        ("sort=colour", "sort"),
        ("order=sideways", "order"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("limit=-1", "limit"),
        ("status=lost", "status"),
    ] {
        let reply = http(&addr, "GET", &format!("/api/sessions?{query}"), &[], None);
        assert_eq!(reply.status, 400, "{query}");
        let message = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(message.contains(key) || key == "status", "{query}: {message}");
    }
}

#[test]
fn text_search_finds_a_sample_case_insensitively_and_combines_with_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (_daemon, addr) = station(&dir);
    let sample = get(&addr, "/api/sessions?q=glu-4711");
    assert_eq!(ids(&sample), ["session-3"]);
    assert_eq!(sample["search"]["complete"], true);
    assert_eq!(sample["search"]["searched"], 5);
    // A test code in three sessions, narrowed by device and time.
    assert_eq!(
        ids(&get(&addr, "/api/sessions?q=GLU%5EGLU")),
        ["session-4", "session-3", "session-1"]
    );
    let narrowed = get(
        &addr,
        &format!("/api/sessions?q=GLU%5EGLU&device=10.0.0.3&from={}", NOON),
    );
    assert_eq!(ids(&narrowed), ["session-3"]);
    assert_eq!(narrowed["search"]["candidates"], 2);
    // A control id (MSH-10), paged.
    let page = get(&addr, "/api/sessions?q=mmol&limit=2&offset=2");
    assert_eq!(
        (ids(&page), &page["total"]),
        (vec!["session-3".to_owned(), "session-2".to_owned()], &json!(5))
    );
    assert_eq!(get(&addr, "/api/sessions?q=nowhere-at-all")["total"], 0);
}

#[test]
fn the_index_follows_changes_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (_daemon, addr) = station(&dir);
    // Stored by another process while the daemon runs.
    put(
        &dir,
        "session-6",
        NOON + 40 * HOUR,
        "10.0.0.9",
        &[msh("C7", "S-600", "GLU", "5.5")],
    );
    let listed = until(&addr, "/api/sessions", |r| r["total"] == 6);
    assert_eq!(ids(&listed)[0], "session-6");
    assert_eq!(ids(&get(&addr, "/api/sessions?device=10.0.0.9")), ["session-6"]);
    // Changed: ignored through the API, then filtered by its new status.
    let ignored = http(&addr, "POST", "/api/sessions/session-2/ignore", &[], None);
    assert_eq!(ignored.status, 200, "{}", ignored.body);
    let now_ignored = until(&addr, "/api/sessions?status=ignored", |r| r["total"] == 1);
    assert_eq!(ids(&now_ignored), ["session-2"]);
    // Deleted by another process.
    assert!(sessionctl(&dir, &["delete", "session-1"], None).status.success());
    let after = until(&addr, "/api/sessions", |r| r["total"] == 5);
    assert!(!ids(&after).contains(&"session-1".to_owned()), "{after}");
    // A file damaged behind the store's back: not listed, counted by status.
    std::fs::write(
        dir.join("session-4.json"),
        b"{\"id\": \"session-4\", \"startTime\": \"noon\"",
    )
    .unwrap();
    let status = until(&addr, "/api/status", |r| r["damaged"] == 1);
    assert_eq!(
        (&status["damaged"], &status["total"]),
        (&json!(1), &json!(4)),
        "{status}"
    );
    assert!(!ids(&get(&addr, "/api/sessions")).contains(&"session-4".to_owned()));
    // Status from the index agrees with `status --json` read from the files.
    let from_files: Value =
        serde_json::from_slice(&sessionctl(&dir, &["--json", "status"], None).stdout).unwrap();
    for key in [
        "total",
        "counts",
        "damaged",
        "incomplete",
        "oldestUndelivered",
        "failed",
    ] {
        assert_eq!(status[key], from_files[key], "{key}");
    }
}

#[test]
fn a_session_reads_as_hl7_and_downloads_as_sent_or_as_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (_daemon, addr) = station(&dir);
    let view = get(&addr, "/api/sessions/session-3/hl7");
    let messages = view["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    let first = &messages[0];
    assert_eq!(
        (&first["messageType"], &first["controlId"]),
        (&json!("ORU^R01"), &json!("C3"))
    );
    assert_eq!(first["summary"]["sampleId"], "GLU-4711");
    assert_eq!(first["summary"]["patientName"], "DOE JANE");
    let result = &first["summary"]["results"][0];
    assert_eq!(
        [
            &result["test"],
            &result["value"],
            &result["units"],
            &result["referenceRange"],
            &result["flag"]
        ],
        [
            &json!("GLU GLU test"),
            &json!("6.2"),
            &json!("mmol/L"),
            &json!("3.9-5.8"),
            &json!("N")
        ]
    );
    let obx = &first["segments"][3];
    assert_eq!(obx["name"], "OBX");
    let value = obx["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["number"] == 5)
        .unwrap();
    assert_eq!(
        (&value["name"], &value["value"]),
        (&json!("Observation value"), &json!("6.2"))
    );
    assert_eq!(first["raw"], msh("C3", "GLU-4711", "GLU", "6.2"));

    let hl7 = http(
        &addr,
        "GET",
        "/api/sessions/session-3/export?format=hl7",
        &[],
        None,
    );
    assert_eq!(hl7.status, 200);
    assert_eq!(hl7.header("content-type"), Some("application/hl7-v2"));
    assert_eq!(
        hl7.header("content-disposition"),
        Some("attachment; filename=\"session-3.hl7\"")
    );
    let expected = format!(
        "{}\r{}\r",
        msh("C3", "GLU-4711", "GLU", "6.2"),
        msh("C4", "S-301", "K", "4.1")
    );
    assert_eq!(hl7.body, expected);
    let stored = http(
        &addr,
        "GET",
        "/api/sessions/session-3/export?format=json",
        &[],
        None,
    );
    assert_eq!(stored.status, 200);
    assert_eq!(
        stored.body.as_bytes(),
        std::fs::read(dir.join("session-3.json")).unwrap()
    );
    assert_eq!(
        stored.header("content-disposition"),
        Some("attachment; filename=\"session-3.json\"")
    );
    assert_eq!(
        http(
            &addr,
            "GET",
            "/api/sessions/session-3/export?format=pdf",
            &[],
            None
        )
        .status,
        400
    );
    assert_eq!(
        http(&addr, "GET", "/api/sessions/session-9/export", &[], None).status,
        404
    );
    assert_eq!(
        http(&addr, "GET", "/api/sessions/session-9/hl7", &[], None).status,
        404
    );
    assert_eq!(
        http(&addr, "GET", "/api/sessions/..%2Fetc/hl7", &[], None).status,
        400
    );
}

/// The value of the sample `name` (with its labels, as written) in a metrics text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_sessions_deliveries_and_age_in_the_openmetrics_format() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    put(
        &dir,
        "session-1",
        NOON - 48 * HOUR,
        "10.0.0.3",
        &[msh("C1", "S-100", "GLU", "5.1")],
    );
    put(
        &dir,
        "session-2",
        NOON - 24 * HOUR,
        "10.0.0.4",
        &[msh("C2", "S-200", "NA", "140")],
    );
    let recv = Receiver::start(tmp.path(), &["--fail-first", "1"]);
    let daemon = Daemon::start(
        &dir,
        &[
            "--set",
            "http_listen=127.0.0.1:0",
            "--set",
            "cleanup_dry_run=true",
            "--set",
            &format!("endpoint={}", recv.url),
            "--set",
            "retry_base_seconds=1",
        ],
    );
    let addr = daemon.api_addr();
    until(&addr, "/api/sessions?status=submitted", |r| r["total"] == 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let reply = http(&addr, "GET", "/metrics", &[], None);
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .header("content-type")
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        if sample(&reply.body, r#"hl7_deliveries_total{outcome="submitted"}"#) == Some(2.0)
            || Instant::now() > deadline
        {
            break reply.body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        sample(&text, r#"hl7_deliveries_total{outcome="submitted"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"hl7_deliveries_total{outcome="retried"}"#),
        Some(1.0),
        "--fail-first 1: {text}"
    );
    assert_eq!(
        sample(&text, r#"hl7_sessions{status="submitted"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"hl7_sessions{status="pending"}"#),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "hl7_oldest_undelivered_seconds"),
        Some(0.0),
        "nothing waits: {text}"
    );
    assert_eq!(sample(&text, "hl7_clock_suspect"), Some(0.0));
    assert_eq!(sample(&text, "hl7_capture_sessions_total"), Some(0.0));
    assert_eq!(
        sample(&text, r#"hl7_capture_bytes_total{direction="device"}"#),
        Some(0.0)
    );
    assert_eq!(sample(&text, "hl7_recording_failures_total"), Some(0.0));
    let on_disk: u64 = ["session-1.json", "session-2.json"]
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
        .sum();
    assert!(sample(&text, "hl7_store_bytes").unwrap() > 0.0, "{text}");
    assert!(
        sample(&text, "hl7_store_bytes").unwrap() <= on_disk as f64 * 2.0,
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert!(
        !text.contains("GLU") && !text.contains("DOE"),
        "no message content: {text}"
    );
    // The API's rules hold for /metrics too.
    let foreign = http(&addr, "GET", "/metrics", &[("Host", "evil.example")], None);
    assert_eq!(foreign.status, 403);
}

#[test]
fn the_oldest_undelivered_session_ages_in_the_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (_daemon, addr) = station(&dir);
    let text = http(&addr, "GET", "/metrics", &[], None).body;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let expected = (now - (NOON - 48 * HOUR)) as f64 / 1000.0;
    let age = sample(&text, "hl7_oldest_undelivered_seconds").unwrap();
    assert!((age - expected).abs() < 120.0, "{age} vs {expected}: {text}");
    assert_eq!(
        sample(&text, r#"hl7_sessions{status="pending"}"#),
        Some(5.0),
        "{text}"
    );
}

#[test]
fn the_fleet_dashboard_queries_only_metrics_the_daemon_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (_daemon, addr) = station(&dir);
    let served = http(&addr, "GET", "/metrics", &[], None).body;
    let names: Vec<&str> = served
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../dist/grafana/hl7-stations.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    let mut queried = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("hl7_") {
                    assert!(
                        names.contains(&word),
                        "{word} (in {expr:?}) is not served: {names:?}"
                    );
                    queried.push(word.to_owned());
                }
            }
        }
    }
    // Every metric the contract names is on the dashboard.
    for name in [
        "hl7_sessions",
        "hl7_oldest_undelivered_seconds",
        "hl7_deliveries_total",
        "hl7_capture_sessions_total",
        "hl7_capture_bytes_total",
        "hl7_recording_failures_total",
        "hl7_store_bytes",
        "hl7_clock_suspect",
    ] {
        assert!(
            queried.iter().any(|q| q == name),
            "{name} is not on the dashboard"
        );
    }
}

#[test]
fn alerts_show_in_status_and_reach_the_webhook_once_while_they_stand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    // Two days waiting, no endpoint: past any alert_undelivered_minutes.
    put(
        &dir,
        "session-1",
        NOON - 48 * HOUR,
        "10.0.0.3",
        &[msh("C1", "S-100", "GLU", "5.1")],
    );
    let hook = Receiver::start(tmp.path(), &["--fail-first", "1"]);
    let token_url = format!("{}?token=hook-secret", hook.url);
    let daemon = Daemon::start(
        &dir,
        &[
            "--set",
            "http_listen=127.0.0.1:0",
            "--set",
            "cleanup_dry_run=true",
            "--set",
            "alert_undelivered_minutes=5",
            "--set",
            &format!("alert_webhook={token_url}"),
        ],
    );
    let addr = daemon.api_addr();
    let status = get(&addr, "/api/status");
    let alerts = status["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{status}");
    assert_eq!(alerts[0]["kind"], "undelivered");
    assert!(
        alerts[0]["message"].as_str().unwrap().contains("session-1"),
        "{status}"
    );
    let human = sessionctl(&dir, &["--set", "alert_undelivered_minutes=5", "status"], None);
    assert!(
        text(&human.stdout)
            .starts_with("ALERT: session-1 has waited to be delivered since 2026-12-02T12:00:00Z"),
        "{}",
        text(&human.stdout)
    );
    // The first POST fails (--fail-first 1); the retry lands, and nothing more while
    // the alert stands.
    let told = test_support::wait_until(Duration::from_secs(30), "the alert at the webhook", || {
        Some(hook.accepted()).filter(|a| !a.is_empty())
    });
    let body: Value = serde_json::from_slice(&std::fs::read(&told[0]).unwrap()).unwrap();
    assert_eq!(
        (&body["alert"], &body["state"]),
        (&json!("undelivered"), &json!("firing"))
    );
    assert!(!body.to_string().contains("GLU") && !body.to_string().contains("hook-secret"));
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(hook.accepted().len(), 1, "told once while it stands");
    // Cleared (ignored): one "resolved".
    assert_eq!(
        http(&addr, "POST", "/api/sessions/session-1/ignore", &[], None).status,
        200
    );
    let both = test_support::wait_until(Duration::from_secs(30), "the resolution at the webhook", || {
        Some(hook.accepted()).filter(|a| a.len() == 2)
    });
    let states: Vec<String> = both
        .iter()
        .map(|f| {
            serde_json::from_slice::<Value>(&std::fs::read(f).unwrap()).unwrap()["state"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(states.contains(&"resolved".to_owned()), "{states:?}");
    assert!(get(&addr, "/api/status")["alerts"].as_array().unwrap().is_empty());
    // The token never reaches the log.
    assert!(
        !daemon.log().iter().any(|l| l.contains("hook-secret")),
        "{:?}",
        daemon.log()
    );
}

#[test]
fn a_bulk_action_changes_the_chosen_or_the_filtered_sessions_and_says_which_it_could_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (_daemon, addr) = station(&dir);
    let post = |body: Value| {
        let reply = http(
            &addr,
            "POST",
            "/api/bulk",
            &[("Content-Type", "application/json")],
            Some(&body.to_string()),
        );
        (
            reply.status,
            if reply.status == 200 || reply.status == 400 {
                reply.json()
            } else {
                Value::Null
            },
        )
    };
    // Chosen ids: two ignored; a missing one is named, not fatal.
    let (code, done) = post(json!({"action": "ignore", "ids": ["session-1", "session-2", "session-404"]}));
    assert_eq!(code, 200, "{done}");
    assert_eq!((&done["changed"], &done["skippedCount"]), (&json!(2), &json!(1)));
    assert_eq!(done["skipped"][0]["id"], "session-404");
    until(&addr, "/api/sessions?status=ignored", |r| r["total"] == 2);
    // Everything a filter shows: the pending sessions of one device.
    let (code, done) =
        post(json!({"action": "ignore", "filter": {"status": "pending", "device": "10.0.0.3"}}));
    assert_eq!((code, &done["changed"]), (200, &json!(2)), "{done}");
    let ignored = until(&addr, "/api/sessions?status=ignored", |r| r["total"] == 4);
    assert_eq!(
        ids(&ignored),
        ["session-5", "session-3", "session-2", "session-1"]
    );
    // Retry brings them back; a submitted session could not be retried (not here: none).
    let (code, done) = post(json!({"action": "retry", "filter": {"status": "ignored"}}));
    assert_eq!((code, &done["changed"]), (200, &json!(4)), "{done}");
    for bad in [
        json!({"action": "delete", "ids": ["session-1"]}),
        json!({"action": "retry"}),
        json!({"action": "retry", "ids": ["../x"]}),
        json!({"action": "retry", "filter": {"q": "GLU"}}),
        json!({"action": "retry", "ids": [], "filter": {}}),
    ] {
        let (code, reply) = post(bad.clone());
        assert_eq!(code, 400, "{bad}: {reply}");
    }
    // Through a foreign Origin: refused like any change.
    let foreign = http(
        &addr,
        "POST",
        "/api/bulk",
        &[
            ("Origin", "http://evil.example"),
            ("Content-Type", "application/json"),
        ],
        Some(r#"{"action":"ignore","ids":["session-1"]}"#),
    );
    assert_eq!(foreign.status, 403);
}

#[test]
fn the_page_answers_during_start_up_and_says_what_it_is_doing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    std::fs::create_dir_all(&dir).unwrap();
    // Old files to migrate: start-up takes a while on them.
    for i in 0..4_000 {
        let doc = json!({"id": format!("old-{i}"), "startTime": NOON + i, "isComplete": true, "messages": [msh("C", "S", "GLU", "5")]});
        std::fs::write(dir.join(format!("old-{i}.json")), doc.to_string()).unwrap();
    }
    // Another handle on the store holds start-up at recovery (which needs the store to
    // itself): the gate that makes the "starting" answer certain, whatever the machine's speed.
    let holder = session_fs::Store::open(&dir).unwrap();
    let daemon = Daemon::start(
        &dir,
        &[
            "--set",
            "http_listen=127.0.0.1:0",
            "--set",
            "cleanup_dry_run=true",
        ],
    );
    let addr = daemon.early_api_addr();
    daemon.wait_for_log("waiting for other sessionctl processes");
    let held = http(&addr, "GET", "/api/sessions", &[], None);
    assert_eq!(held.status, 503, "{}", held.body);
    assert_eq!(held.json()["starting"]["phase"], "recovering", "{}", held.body);
    let page = http(&addr, "GET", "/sessions/old-1", &[], None);
    assert_eq!((page.status, page.body.contains("HL7 sessions")), (200, true));
    assert_eq!(
        http(&addr, "GET", "/api/status", &[("Host", "evil.example")], None).status,
        403
    );
    drop(holder);
    let mut starting = None;
    let mut page_while_starting = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = http(&addr, "GET", "/api/status", &[], None);
        if status.status == 200 {
            break;
        }
        assert_eq!(status.status, 503, "{}", status.body);
        assert_eq!(status.header("retry-after"), Some("1"));
        let body = status.json();
        assert!(
            body["error"].as_str().unwrap().starts_with("starting up: "),
            "{body}"
        );
        if page_while_starting.is_none() {
            page_while_starting = Some(http(&addr, "GET", "/", &[], None));
            // The rules hold while starting too.
            assert_eq!(
                http(&addr, "GET", "/api/sessions", &[("Host", "evil.example")], None).status,
                403
            );
        }
        if body["starting"]["phase"] == "migrating" {
            starting = Some(body);
        }
        assert!(Instant::now() < deadline, "start-up never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    let page = page_while_starting.expect("the page was asked for while starting");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("HL7 sessions"));
    let migrating = starting.expect("a 503 said it was migrating");
    assert_eq!(migrating["starting"]["total"], 4_000, "{migrating}");
    assert!(
        migrating["error"].as_str().unwrap().contains("of 4000 sessions"),
        "{migrating}"
    );
    // Then the real API.
    assert_eq!(get(&addr, "/api/sessions?limit=1")["total"], 4_000);
}

#[test]
fn a_new_retention_applies_to_stored_sessions_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let config = tmp.path().join("sessionctl.toml");
    std::fs::write(&config, "retention_days = 30\n").unwrap();
    put(
        &dir,
        "session-1",
        NOON,
        "10.0.0.3",
        &[msh("C1", "S-100", "GLU", "5.1")],
    );
    let daemon = Daemon::start(
        &dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--set",
            "http_listen=127.0.0.1:0",
            "--set",
            "cleanup_dry_run=true",
        ],
    );
    let addr = daemon.api_addr();
    let kept = |addr: &str| {
        get(addr, "/api/sessions/session-1")["persistedUntil"]
            .as_u64()
            .unwrap()
    };
    let before = kept(&addr);
    let saved = http(
        &addr,
        "PUT",
        "/api/settings",
        &[("Content-Type", "application/json")],
        Some(r#"{"retention_days": 90}"#),
    );
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(kept(&addr), before, "a stored session keeps its own date");
    let applied = http(&addr, "POST", "/api/retention/apply", &[], None);
    assert_eq!(applied.status, 200, "{}", applied.body);
    assert_eq!(
        (&applied.json()["changed"], &applied.json()["retentionDays"]),
        (&json!(1), &json!(90))
    );
    assert_eq!(kept(&addr), NOON + 90 * 24 * HOUR);
    let listed = get(&addr, "/api/sessions");
    assert_eq!(
        listed["sessions"][0]["persistedUntil"],
        NOON + 90 * 24 * HOUR,
        "the index has it too"
    );
}

#[test]
fn an_hl7_export_is_the_bytes_as_sent_even_when_they_are_not_utf8() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    // Latin-1 from an old analyzer: "MÜLLER" with Ü as the byte 0xDC.
    let sent: &[u8] =
        b"MSH|^~\\&|AN|LAB|LIS|HOSP|20261204120000||ORU^R01|C9|P|2.3\rPID|1||P9||M\xdcLLER^HANS";
    let hex: String = sent.iter().map(|b| format!("{b:02x}")).collect();
    let doc = json!({
        "id": "latin-1", "startTime": NOON, "endTime": NOON + 1, "isComplete": true,
        "elements": [{"id": "e-1", "timestamp": NOON, "direction": "device-to-pc", "type": "message", "hexData": hex}],
    });
    let out = sessionctl(&dir, &["put"], Some(doc.to_string().as_bytes()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let daemon = Daemon::start(
        &dir,
        &[
            "--set",
            "http_listen=127.0.0.1:0",
            "--set",
            "cleanup_dry_run=true",
        ],
    );
    let addr = daemon.api_addr();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /api/sessions/latin-1/export?format=hl7 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&answer[..split]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body = &answer[split..];
    assert_eq!(body, [sent, b"\r"].concat(), "byte for byte, then CR");
}
