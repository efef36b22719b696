//! `sessionctl run` and `sessionctl receiver` as real processes, and the end-to-end run.

mod common;

use std::path::Path;
use std::process::Stdio;

use std::time::{Duration, Instant};

use common::*;

/// A plain HTTP/1.1 POST over a socket: no client library needed for two headers.
fn post(url: &str, key: Option<&str>, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let key_header = key.map_or(String::new(), |k| format!("Idempotency-Key: {k}\r\n"));
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{key_header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

#[test]
fn the_receiver_deduplicates_and_misbehaves_on_demand() {
    let tmp = tempfile::tempdir().unwrap();
    let recv = Receiver::start(tmp.path(), &["--fail-first", "1"]);
    let (url, out) = (recv.url.clone(), recv.out.clone());
    assert!(url.starts_with("http://127.0.0.1:"), "loopback by default: {url}");
    let mut report = Vec::new();
    for (name, key, body) in [
        (
            "first request fails (--fail-first 1)",
            Some("k-1"),
            r#"{"sessionId":"a"}"#,
        ),
        ("retry of it is accepted", Some("k-1"), r#"{"sessionId":"a"}"#),
        (
            "a repeat returns the first response",
            Some("k-1"),
            r#"{"sessionId":"a"}"#,
        ),
        ("another key", Some("k-2"), r#"{"sessionId":"b"}"#),
        ("no key", None, r#"{"sessionId":"c"}"#),
        ("hostile key", Some("../x"), r#"{"sessionId":"c"}"#),
        ("not JSON", Some("k-3"), "hello"),
    ] {
        let (code, body) = post(&format!("{url}/sessions"), key, body);
        report.push(format!("{name}: {code} {body}"));
    }
    drop(recv);
    insta::assert_snapshot!(report.join("\n"));
    let mut stored: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    stored.sort();
    // Each file names the session it holds, then the key.
    assert_eq!(stored, ["a--k-1.json", "b--k-2.json"]);
    assert_eq!(
        std::fs::read_to_string(out.join("a--k-1.json")).unwrap(),
        r#"{"sessionId":"a"}"#
    );

    let recv = Receiver::start(&tmp.path().join("second"), &["--status", "422"]);
    let url = recv.url.clone();
    assert_eq!(post(&url, Some("k-9"), "{}").0, 422);
    drop(recv);
}

#[test]
fn a_second_daemon_exits_1_naming_the_first_and_sigterm_stops_it_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let daemon = Daemon::start(&dir, &[]);
    daemon.wait_for_log("serving");
    let second = command()
        .arg("--dir")
        .arg(&dir)
        .arg("run")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = text(&second.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("sessionctl run (pid {}", daemon.child.id())),
        "{err}"
    );
    let (code, took, log) = daemon.stop();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(15), "stopping took {took:?}");
    assert!(
        log.iter().any(|l| l.contains("submission is off")),
        "without an endpoint it says so once"
    );
    assert_eq!(log.iter().filter(|l| l.contains("submission is off")).count(), 1);
}

#[test]
fn start_up_failures_exit_1_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    for (name, args) in [
        (
            "store is a file",
            vec![
                "--dir".to_owned(),
                file.join("s").display().to_string(),
                "run".into(),
            ],
        ),
        (
            "bad configuration",
            vec![
                "--dir".into(),
                tmp.path().display().to_string(),
                "--set".into(),
                "concurrency=99".into(),
                "run".into(),
            ],
        ),
    ] {
        let out = command().args(&args).env("RUST_LOG", "off").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(
            text(&out.stderr).lines().count(),
            1,
            "{name}: {}",
            text(&out.stderr)
        );
    }
}

fn list(dir: &Path) -> Vec<serde_json::Value> {
    serde_json::from_slice(&sessionctl(dir, &["--json", "list"], None).stdout).unwrap()
}

#[test]
fn end_to_end_every_complete_pending_session_is_delivered_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    std::fs::create_dir_all(&dir).unwrap();
    let mut originals = Vec::new();
    for group in ["legacy", "v1"] {
        for entry in std::fs::read_dir(fixture(group)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            originals.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    // Orphaned temps: one whole (a session the app never renamed into place), one torn.
    std::fs::copy(
        fixture("corrupt/session-31.json.tmp"),
        dir.join("session-31.json.tmp"),
    )
    .unwrap();
    std::fs::copy(
        fixture("corrupt/session-32.json.tmp"),
        dir.join("session-32.json.tmp"),
    )
    .unwrap();
    let recv = Receiver::start(tmp.path(), &["--fail-first", "3"]);
    let (url, received) = (recv.url.clone(), recv.out.clone());
    let endpoint = format!("endpoint={url}/sessions");
    let daemon = Daemon::start(
        &dir,
        &[
            "--set",
            &endpoint,
            "--set",
            "retry_base_seconds=1",
            "--set",
            "retry_cap_seconds=2",
        ],
    );

    // Until nothing complete is pending or in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = list(&dir);
        let waiting = rows
            .iter()
            .filter(|r| matches!(r["submissionStatus"].as_str(), Some("pending" | "inFlight")));
        // session-13 is incomplete: it stays pending, never sent.
        if waiting
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .all(|id| id == "session-13")
        {
            break;
        }
        assert!(Instant::now() < deadline, "still pending: {rows:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, _, log) = daemon.stop();
    drop(recv);
    assert_eq!(code, 0, "{}", log.join("\n"));

    // Delivered exactly once each, by key: 11, 12, 21, 25 and the recovered 31.
    let mut delivered: Vec<String> = std::fs::read_dir(&received)
        .unwrap()
        .map(|e| {
            let body: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            body["sessionId"].as_str().unwrap().to_owned()
        })
        .collect();
    delivered.sort();
    assert_eq!(
        delivered,
        [
            "session-11",
            "session-12",
            "session-21",
            "session-25",
            "session-31"
        ]
    );
    let retried = log.iter().filter(|l| l.contains("will retry")).count();
    assert_eq!(retried, 3, "the receiver's first three answers were 503s");

    // Statuses persisted, every live file migrated, the orphans handled, nothing lost.
    let rows = list(&dir);
    for row in &rows {
        assert_eq!(row["version"], session_model::CURRENT_VERSION, "{row}");
        let id = row["id"].as_str().unwrap();
        let expected = match id {
            "session-13" => "pending",
            "session-23" => "failed",
            "session-24" => "ignored",
            _ => "submitted",
        };
        assert_eq!(row["submissionStatus"], expected, "{id}");
    }
    let live: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let trash = std::fs::read_dir(dir.join(".trash"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    for id in originals.iter().chain(std::iter::once(&"session-31".to_owned())) {
        let in_trash = trash.iter().any(|t| t.ends_with(&format!(".{id}.json")));
        assert!(
            live.contains(&id.as_str()) ^ in_trash,
            "{id}: live {} trash {in_trash}",
            live.contains(&id.as_str())
        );
    }
    let quarantined = std::fs::read_dir(dir.join(".quarantine")).unwrap().count();
    assert_eq!(quarantined, 2, "the torn temp and its sidecar");
    assert!(!dir.join("session-31.json.tmp").exists() && !dir.join("session-32.json.tmp").exists());
    let verify = sessionctl(&dir, &["verify"], None);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
}

#[test]
fn logs_go_to_a_rolling_file_as_json_lines_without_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("v1/session-21.json"), dir.join("session-21.json")).unwrap();
    let recv = Receiver::start(tmp.path(), &["--status", "503"]);
    let url = recv.url.clone();
    let log_dir = format!("log_dir={}", logs.display());
    let endpoint = format!("endpoint={url}/sessions");
    let mut daemon = test_support::ChildGuard::new(
        command()
            .arg("--dir")
            .arg(&dir)
            .args(["--set", &log_dir, "--set", &endpoint, "run"])
            .env("HL7_AUTHORIZATION", "Bearer very-secret-token")
            .env("RUST_LOG", "info")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let read_logs = || -> String {
        std::fs::read_dir(&logs)
            .map(|d| {
                d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    };
    while !read_logs().contains("will retry") {
        assert!(Instant::now() < deadline, "no retry logged:\n{}", read_logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    assert!(daemon.wait().unwrap().success());
    drop(recv);
    let text = read_logs();
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    }
    for secret in ["very-secret-token", "MSH|", "Doe^John"] {
        assert!(!text.contains(secret), "{secret} leaked into the log file");
    }
}

#[test]
fn a_session_put_while_the_daemon_runs_is_sent_without_waiting_for_the_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let recv = Receiver::start(tmp.path(), &[]);
    let (url, received) = (recv.url.clone(), recv.out.clone());
    let endpoint = format!("endpoint={url}/sessions");
    // A scan only every hour: delivery within seconds can only come from the watch.
    let daemon = Daemon::start_logging(
        &dir,
        &["--set", &endpoint, "--set", "scan_interval_minutes=60"],
        "info,session_workers=debug",
    );
    // The first pass (of an empty store) is over: from here only the watch can send it.
    daemon.wait_for_log("nothing was due");
    let put = put_fixture(&dir, "v1/session-21.json");
    assert!(put.status.success());
    test_support::wait_until(Duration::from_secs(20), "the delivery after the put", || {
        (std::fs::read_dir(&received).map_or(0, |d| d.count()) > 0).then_some(())
    });
    let (code, _, _) = daemon.stop();
    assert_eq!(code, 0);
    drop(recv);
}
