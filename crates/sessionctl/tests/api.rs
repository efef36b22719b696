//! The daemon's local API over real HTTP on 127.0.0.1: every endpoint, every error
//! path, and the security rules of CONTRACT.md.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn store_with_fixtures(dir: &Path) {
    for rel in [
        "legacy/session-11.json",
        "legacy/session-14.json",
        "v1/session-21.json",
        "v1/session-22.json",
        "v1/session-23.json",
    ] {
        let out = put_fixture(dir, rel);
        assert!(out.status.success(), "{rel}: {}", text(&out.stderr));
    }
}

fn start(dir: &Path, extra: &[&str]) -> (Daemon, String) {
    // Cleanup runs at start-up; a dry run keeps the expired fixtures for the test.
    let mut args = vec![
        "--set",
        "http_listen=127.0.0.1:0",
        "--set",
        "cleanup_dry_run=true",
    ];
    args.extend_from_slice(extra);
    let daemon = Daemon::start(dir, &args);
    let addr = daemon.api_addr();
    (daemon, addr)
}

#[test]
fn the_session_endpoints_answer_as_the_contract_says() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    store_with_fixtures(&dir);
    let (daemon, addr) = start(&dir, &[]);
    let all = http(&addr, "GET", "/api/sessions", &[], None);
    assert_eq!(all.status, 200);
    assert!(
        all.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let all = all.json();
    assert_eq!(all["total"], 5);
    let first = &all["sessions"][0];
    for field in [
        "id",
        "version",
        "startTime",
        "messageCount",
        "submissionStatus",
        "persistedUntil",
        "isComplete",
        "lastError",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }
    let failed = http(&addr, "GET", "/api/sessions?status=failed", &[], None).json();
    assert_eq!(failed["total"], 1);
    assert_eq!(failed["sessions"][0]["id"], "session-23");
    let page = http(&addr, "GET", "/api/sessions?limit=2&offset=2", &[], None).json();
    assert_eq!(
        (page["total"].as_u64(), page["sessions"].as_array().unwrap().len()),
        (Some(5), 2)
    );
    assert_eq!(page["sessions"][0]["id"], all["sessions"][2]["id"]);
    let one = http(&addr, "GET", "/api/sessions/session-21", &[], None);
    assert_eq!(one.status, 200);
    let shown: Value =
        serde_json::from_slice(&sessionctl(&dir, &["--json", "show", "session-21"], None).stdout).unwrap();
    assert_eq!(one.json(), shown, "as show --json");
    let retried = http(&addr, "POST", "/api/sessions/session-23/retry", &[], None);
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(
        retried.json(),
        json!({"id": "session-23", "submissionStatus": "pending"})
    );
    let ignored = http(&addr, "POST", "/api/sessions/session-23/ignore", &[], None).json();
    assert_eq!(ignored["submissionStatus"], "ignored");
    let status = http(&addr, "GET", "/api/status", &[], None).json();
    let cli: Value = serde_json::from_slice(&sessionctl(&dir, &["--json", "status"], None).stdout).unwrap();
    assert_eq!(status["counts"], cli["counts"]);
    assert_eq!(status["total"], cli["total"]);
    assert_eq!(
        http(&addr, "DELETE", "/api/sessions/session-22", &[], None).json(),
        json!({"deleted": true})
    );
    assert_eq!(
        http(&addr, "DELETE", "/api/sessions/session-22", &[], None).json(),
        json!({"deleted": false})
    );
    assert!(!dir.join("session-22.json").exists());
    drop(daemon);
}

#[test]
fn errors_are_json_with_fitting_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    store_with_fixtures(&dir);
    let (_daemon, addr) = start(&dir, &[]);
    for (method, path, code) in [
        ("GET", "/api/sessions/bad%20id", 400),
        ("GET", "/api/sessions/..%2F..%2Fetc%2Fpasswd", 400),
        ("GET", "/api/sessions/.hidden", 400),
        ("POST", "/api/sessions/bad%21/retry", 400),
        ("DELETE", "/api/sessions/a%2Fb", 400),
        ("GET", "/api/sessions/no-such", 404),
        ("POST", "/api/sessions/no-such/retry", 404),
        ("GET", "/api/sessions?status=lost", 400),
        ("GET", "/api/sessions?limit=many", 400),
        ("POST", "/api/sessions/session-22/retry", 409),
        ("POST", "/api/sessions/session-22/ignore", 409),
        ("GET", "/api/nothing", 404),
        ("PUT", "/api/settings", 400),
    ] {
        let reply = http(
            &addr,
            method,
            path,
            &[],
            Some(if method == "PUT" { "[1]" } else { "" }),
        );
        assert_eq!(reply.status, code, "{method} {path}: {}", reply.body);
        assert!(
            reply.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {path}"
        );
    }
    assert!(!dir.join(".locks/no-such.lock").exists(), "nothing stray");
}

#[test]
fn hosts_origins_and_tokens_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    store_with_fixtures(&dir);
    let (daemon, addr) = start(&dir, &[]);
    let port = addr.rsplit_once(':').unwrap().1.to_owned();
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        &format!("192.168.1.9:{port}"),
    ] {
        let reply = http(&addr, "GET", "/api/sessions", &[("Host", host)], None);
        assert_eq!(reply.status, 403, "Host {host}");
        assert!(reply.json()["error"].is_string());
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(
            http(&addr, "GET", "/api/status", &[("Host", &host)], None).status,
            200,
            "{host}"
        );
    }
    let foreign = http(
        &addr,
        "POST",
        "/api/sessions/session-23/retry",
        &[("Origin", "http://evil.example")],
        None,
    );
    assert_eq!(foreign.status, 403);
    let null = http(
        &addr,
        "DELETE",
        "/api/sessions/session-23",
        &[("Origin", "null")],
        None,
    );
    assert_eq!(null.status, 403);
    assert!(dir.join("session-23.json").exists(), "nothing changed");
    let own_origin = format!("http://{addr}");
    let own = http(
        &addr,
        "POST",
        "/api/sessions/session-23/retry",
        &[("Origin", &own_origin)],
        None,
    );
    assert_eq!(own.status, 200, "{}", own.body);
    // Reading with a foreign Origin is not a change: allowed (CORS keeps the answer from it).
    assert_eq!(
        http(
            &addr,
            "GET",
            "/api/status",
            &[("Origin", "http://evil.example")],
            None
        )
        .status,
        200
    );
    let page = http(&addr, "GET", "/", &[], None);
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    drop(daemon);

    // With a token, every request carries it.
    let (_daemon, addr) = start(&dir, &["--set", "http_token=s3cret-token"]);
    assert_eq!(http(&addr, "GET", "/api/status", &[], None).status, 401);
    assert_eq!(http(&addr, "GET", "/", &[], None).status, 401);
    assert_eq!(
        http(
            &addr,
            "GET",
            "/api/status",
            &[("Authorization", "Bearer wrong")],
            None
        )
        .status,
        401
    );
    assert_eq!(
        http(
            &addr,
            "GET",
            "/api/status",
            &[("Authorization", "Bearer s3cret-token")],
            None
        )
        .status,
        200
    );
}

#[test]
fn a_listener_beyond_loopback_needs_a_token() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let out = command()
        .arg("--dir")
        .arg(&dir)
        .args(["--set", "http_listen=0.0.0.0:0", "run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("http_token"), "{}", text(&out.stderr));
    // A port in use is a clear start-up failure too.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = command()
        .arg("--dir")
        .arg(&dir)
        .args(["--set", &format!("http_listen={addr}"), "run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&addr), "{}", text(&out.stderr));
}

#[test]
fn settings_are_checked_written_applied_and_kept_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    store_with_fixtures(&dir);
    let file = tmp.path().join("sessionctl.toml");
    std::fs::write(
        &file,
        "# the lab's settings\nretention_days = 30 # a month\nconcurrency = 3\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let (daemon, addr) = start(&dir, &["--config", config]);
    let shown = http(&addr, "GET", "/api/settings", &[], None).json();
    for key in [
        "retention_days",
        "cleanup_interval_hours",
        "cleanup_dry_run",
        "trash_max_age_days",
        "delete_undelivered",
    ] {
        assert!(shown.get(key).is_some(), "{key} in {shown}");
        assert!(shown["sources"].get(key).is_some(), "{key}");
    }
    assert_eq!(shown["retention_days"], 30);
    assert_eq!(shown["delete_undelivered"], false);
    assert_eq!(shown["allowed"]["retention_days"], json!({"min": 1, "max": 365}));
    // A GET's answer sent back as a PUT is accepted (the descriptive keys are ignored).
    let echoed = http(&addr, "PUT", "/api/settings", &[], Some(&shown.to_string()));
    assert_eq!(echoed.status, 200, "{}", echoed.body);
    let bad = http(
        &addr,
        "PUT",
        "/api/settings",
        &[],
        Some(r#"{"retention_days": 400}"#),
    );
    assert_eq!(bad.status, 400);
    let message = bad.json()["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains("retention_days") && message.contains("400") && message.contains("365"),
        "{message}"
    );
    let unknown = http(
        &addr,
        "PUT",
        "/api/settings",
        &[],
        Some(r#"{"endpoint": "http://x"}"#),
    );
    assert_eq!(unknown.status, 400);
    // Typed strictly: a string where a number or a boolean belongs is refused, naming
    // the key, and nothing is written.
    let before_wrong_types = std::fs::read_to_string(&file).unwrap();
    for (body, key, wanted) in [
        (r#"{"retention_days": "30"}"#, "retention_days", "a number"),
        (
            r#"{"delete_undelivered": "true"}"#,
            "delete_undelivered",
            "true or false",
        ),
        (r#"{"cleanup_dry_run": 1}"#, "cleanup_dry_run", "true or false"),
        (
            r#"{"trash_max_age_days": true}"#,
            "trash_max_age_days",
            "a number",
        ),
        (
            r#"{"retention_days": 90, "cleanup_interval_hours": null}"#,
            "cleanup_interval_hours",
            "a number",
        ),
    ] {
        let wrong = http(&addr, "PUT", "/api/settings", &[], Some(body));
        assert_eq!(wrong.status, 400, "{body}: {}", wrong.body);
        let message = wrong.json()["error"].as_str().unwrap().to_owned();
        assert!(
            message.contains(key) && message.contains(wanted),
            "{body}: {message}"
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before_wrong_types);
    let good = http(
        &addr,
        "PUT",
        "/api/settings",
        &[],
        Some(r#"{"retention_days": 90, "delete_undelivered": true}"#),
    );
    assert_eq!(good.status, 200, "{}", good.body);
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.contains("# the lab's settings") && written.contains("retention_days = 90 # a month"),
        "{written}"
    );
    assert!(
        written.contains("concurrency = 3") && written.contains("delete_undelivered = true"),
        "{written}"
    );
    daemon.wait_for_log("cleanup settings changed");
    let (_, _, _) = daemon.stop();
    // A restart reads them back.
    let (_daemon, addr) = start(&dir, &["--config", config]);
    let shown = http(&addr, "GET", "/api/settings", &[], None).json();
    assert_eq!(shown["retention_days"], 90);
    assert_eq!(shown["sources"]["retention_days"], "file");
}

#[test]
fn settings_from_the_environment_cannot_be_changed_here() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let file = tmp.path().join("sessionctl.toml");
    std::fs::write(&file, "").unwrap();
    let mut child = command()
        .arg("--dir")
        .arg(&dir)
        .args([
            "--config",
            file.to_str().unwrap(),
            "--set",
            "http_listen=127.0.0.1:0",
            "run",
        ])
        .env("HL7_RETENTION_DAYS", "45")
        .env("RUST_LOG", "info")
        .env("HL7_LOG_FORMAT", "json")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut lines = stderr.lines().map_while(Result::ok);
    for line in lines.by_ref() {
        if line.contains("local API and web page") {
            addr = line
                .split("http://")
                .nth(1)
                .map(|u| u.split(['/', '"']).next().unwrap().to_owned());
        }
        // Before this the API answers 503 (starting up).
        if line.contains("sessionctl run: serving") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let addr = addr.expect("the daemon announces its API");
    let guard = test_support::ChildGuard::new(child);
    let shown = http(&addr, "GET", "/api/settings", &[], None).json();
    assert_eq!(shown["sources"]["retention_days"], "env");
    let refused = http(
        &addr,
        "PUT",
        "/api/settings",
        &[],
        Some(r#"{"retention_days": 90}"#),
    );
    assert_eq!(refused.status, 409);
    assert!(refused.json()["error"].as_str().unwrap().contains("environment"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "", "nothing written");
    drop(guard);
}

#[test]
fn events_stream_what_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    store_with_fixtures(&dir);
    let (_daemon, addr) = start(&dir, &[]);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    reader.read_line(&mut head).unwrap();
    assert!(head.contains("200"), "{head}");
    // The handler subscribes before it answers, so the 200 means the subscription
    // exists: every change from here on is sent. Change two sessions.
    assert!(put_fixture(&dir, "v1/session-24.json").status.success());
    assert!(sessionctl(&dir, &["delete", "session-21"], None).status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    while Instant::now() < deadline
        && !(seen.contains(r#""id":"session-24""#) && seen.contains(r#""kind":"deleted","id":"session-21""#))
    {
        let mut line = String::new();
        if reader.read_line(&mut line).is_ok() {
            seen.push_str(&line);
        }
    }
    assert!(seen.contains("event: session"), "{seen}");
    assert!(seen.contains(r#""kind":"stored","id":"session-24""#), "{seen}");
    assert!(seen.contains(r#""kind":"deleted","id":"session-21""#), "{seen}");
}

#[test]
fn an_open_event_stream_never_holds_up_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (daemon, addr) = start(&dir, &[]);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut head = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut head)
        .unwrap();
    assert!(head.contains("200"), "{head}");
    let (code, took, _) = daemon.stop();
    assert_eq!(code, 0);
    // The drain allows the submission grace (10 s) and more; a stream held open would
    // use all of it.
    assert!(
        took < Duration::from_secs(9),
        "stopping took {took:?} with a page listening"
    );
}

#[test]
fn the_default_port_taken_does_not_stop_the_daemon() {
    // Someone else (another daemon's page) has the default address: this test takes it,
    // or it is taken already, which is the same case; it never skips.
    let taken = std::net::TcpListener::bind("127.0.0.1:8470").ok();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let mut child = command()
        .arg("--dir")
        .arg(&dir)
        .arg("run")
        .env_remove("HL7_HTTP_LISTEN")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let guard = test_support::ChildGuard::new(child);
    let mut log = String::new();
    for line in stderr.lines().map_while(Result::ok) {
        log.push_str(&line);
        log.push('\n');
        if line.contains("serving") {
            break;
        }
    }
    assert!(log.contains("the local API and page are off"), "{log}");
    assert!(log.contains("serving"), "the daemon runs without its page: {log}");
    drop(guard);
    drop(taken);
}
