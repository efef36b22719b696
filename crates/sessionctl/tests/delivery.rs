//! Delivery as an operator meets it, with real processes on 127.0.0.1: one key per
//! content across stores and re-puts, rollback never beside a daemon, secrets checked
//! and never shown, the reference receiver a fair stand-in, what is stuck visible.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn put_all_fixtures(dir: &Path) {
    for entry in ["legacy", "v1"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(fixture(sub)).unwrap())
    {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let out = sessionctl(dir, &["put"], Some(&bytes));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

fn submit_once(dir: &Path, url: &str) -> std::process::Output {
    sessionctl(dir, &["--json", "submit", "--endpoint", url, "--once"], None)
}

#[test]
fn re_importing_the_same_files_into_a_fresh_store_delivers_under_the_same_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let recv = Receiver::start(tmp.path(), &[]);
    let url = format!("{}/sessions", recv.url);
    let first = tmp.path().join("first");
    put_all_fixtures(&first);
    submit_once(&first, &url);
    let delivered = recv.accepted();
    assert!(!delivered.is_empty());
    // The README's tour again, from scratch: same content, same keys, nothing new.
    let second = tmp.path().join("second");
    put_all_fixtures(&second);
    let out = submit_once(&second, &url);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["submitted"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(recv.accepted(), delivered, "the receiver saw one key per content");
}

#[test]
fn a_re_put_during_the_request_keeps_the_delivery_and_its_key() {
    let tmp = tempfile::tempdir().unwrap();
    let recv = Receiver::start(tmp.path(), &["--delay", "1500"]);
    let dir = tmp.path().join("s");
    let doc = std::fs::read(fixture("v1/session-21.json")).unwrap();
    assert!(sessionctl(&dir, &["put"], Some(&doc)).status.success());
    let mut submitting = test_support::ChildGuard::new(
        command()
            .args(["--dir"])
            .arg(&dir)
            .args([
                "submit",
                "--once",
                "--endpoint",
                &format!("{}/sessions", recv.url),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Once the session is inFlight on disk, the request is out: put the same document.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list: Value =
            serde_json::from_slice(&sessionctl(&dir, &["--json", "list"], None).stdout).unwrap();
        if list[0]["submissionStatus"] == "inFlight" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the request never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..3 {
        assert!(sessionctl(&dir, &["put"], Some(&doc)).status.success());
    }
    assert!(wait_at_most(&mut submitting, Duration::from_secs(60)).success());
    let shown: Value =
        serde_json::from_slice(&sessionctl(&dir, &["show", "session-21"], None).stdout).unwrap();
    assert_eq!(shown["submission"]["status"], "submitted");
    // Put again after delivery, then another pass: nothing more is sent.
    assert!(sessionctl(&dir, &["put"], Some(&doc)).status.success());
    submit_once(&dir, &format!("{}/sessions", recv.url));
    let accepted = recv.accepted();
    assert_eq!(accepted.len(), 1);
    let name = accepted[0].file_stem().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        json!(name),
        json!(format!(
            "session-21--{}",
            shown["submission"]["idempotencyKey"].as_str().unwrap()
        ))
    );
}

#[test]
fn rollback_is_refused_while_a_daemon_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(fixture("v1/session-21.json"), dir.join("session-21.json")).unwrap();
    let daemon = Daemon::start(&dir, &[]);
    daemon.wait_for_log("serving");
    let out = sessionctl(&dir, &["migrate", "--rollback"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("in use"), "{}", text(&out.stderr));
    assert!(dir.join(".backup").exists());
    let (code, _, _) = daemon.stop();
    assert_eq!(code, 0);
    // With the daemon gone, the unchanged file is restored.
    let out = sessionctl(&dir, &["--json", "migrate", "--rollback"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(dir.join("session-21.json")).unwrap(),
        std::fs::read(fixture("v1/session-21.json")).unwrap()
    );
}

#[test]
fn an_invalid_authorization_refuses_start_up_without_showing_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    for value in [
        "Bearer hunter2\r",
        "Bearer hunter2\n",
        "Bearer hunter2\r\nX-Evil: 1",
    ] {
        for (args, code) in [
            (&["run"][..], 1),
            (&["config"], 2),
            (&["submit", "--once", "--endpoint", "http://127.0.0.1:9/x"], 2),
        ] {
            let out = command()
                .arg("--dir")
                .arg(&dir)
                .args(args)
                .env("HL7_AUTHORIZATION", value)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(code), "{args:?} {value:?}");
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            assert!(all.contains("authorization"), "{all}");
            assert!(!all.contains("hunter2"), "{args:?}: {all}");
        }
    }
    // A typo in --set must not echo the secret either.
    let out = sessionctl(&dir, &["--set", "authorization:Bearer hunter2", "config"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).contains("hunter2"), "{}", text(&out.stderr));
}

#[test]
fn url_secrets_never_appear_in_config_or_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let endpoint = "http://user:pa55word@127.0.0.1:9/api?token=t0ken&x=1";
    let out = sessionctl(
        &dir,
        &["--set", &format!("endpoint={endpoint}"), "--json", "config"],
        None,
    );
    assert!(out.status.success());
    let shown = text(&out.stdout);
    assert!(shown.contains("127.0.0.1:9/api"), "{shown}");
    for secret in ["pa55word", "t0ken"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let daemon = Daemon::start(&dir, &["--set", &format!("endpoint={endpoint}")]);
    daemon.wait_for_log("submission worker started");
    let (_, _, log) = daemon.stop();
    let log = log.join("\n");
    assert!(log.contains("127.0.0.1:9/api"), "{log}");
    for secret in ["pa55word", "t0ken"] {
        assert!(!log.contains(secret), "{log}");
    }
}

#[test]
fn the_reference_receiver_takes_big_bodies_privately_and_host_names() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("received");
    let mut child = command()
        .args(["receiver", "--listen", "localhost:0", "--out"])
        .arg(&out_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let url = first.trim().strip_prefix("listening on ").unwrap().to_owned();
    let guard = test_support::ChildGuard::new(child);
    // A 3 MB session, as a real one with many results can be.
    let dir = tmp.path().join("s");
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(fixture("v1/session-21.json")).unwrap()).unwrap();
    let big = "OBX|1|TX|||".to_owned() + &"x".repeat(3 * 1024 * 1024);
    doc["messages"] = json!([big]);
    assert!(
        sessionctl(&dir, &["put"], Some(&serde_json::to_vec(&doc).unwrap()))
            .status
            .success()
    );
    let out = submit_once(&dir, &format!("{url}/sessions"));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["submitted"], 1, "{report} {}", text(&out.stderr));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out_dir), 0o700);
    let files: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(mode(&files[0]), 0o600);
    drop(guard);
}

#[test]
fn submit_once_exits_1_when_a_session_failed_for_good() {
    let tmp = tempfile::tempdir().unwrap();
    let recv = Receiver::start(tmp.path(), &["--status", "400"]);
    let dir = tmp.path().join("s");
    assert!(put_fixture(&dir, "v1/session-21.json").status.success());
    let out = submit_once(&dir, &format!("{}/sessions", recv.url));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 1);
    // And the operator sees it: in list, with its error, and in status.
    let list: Value = serde_json::from_slice(&sessionctl(&dir, &["--json", "list"], None).stdout).unwrap();
    assert_eq!(list[0]["lastError"], "HTTP 400");
    let status: Value =
        serde_json::from_slice(&sessionctl(&dir, &["--json", "status"], None).stdout).unwrap();
    assert_eq!(status["failed"][0]["id"], "session-21");
    assert_eq!(
        status["oldestUndelivered"],
        Value::Null,
        "a failed session is not waiting to be sent"
    );
}

#[test]
fn an_incomplete_session_is_counted_apart_and_never_named_oldest_undelivered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let mut incomplete: Value =
        serde_json::from_slice(&std::fs::read(fixture("v1/session-21.json")).unwrap()).unwrap();
    incomplete["id"] = json!("early");
    incomplete["isComplete"] = json!(false);
    incomplete["startTime"] = json!(1);
    assert!(
        sessionctl(&dir, &["put"], Some(&serde_json::to_vec(&incomplete).unwrap()))
            .status
            .success()
    );
    assert!(put_fixture(&dir, "v1/session-21.json").status.success());
    let status: Value =
        serde_json::from_slice(&sessionctl(&dir, &["--json", "status"], None).stdout).unwrap();
    assert_eq!(status["incomplete"], 1);
    assert_eq!(status["oldestUndelivered"]["id"], "session-21");
    let list = text(&sessionctl(&dir, &["list"], None).stdout);
    let early = list.lines().find(|l| l.starts_with("early")).unwrap();
    assert!(early.contains(" no "), "{list}");
}

#[test]
fn status_names_ten_failures_and_says_how_many_more() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let original: Value =
        serde_json::from_slice(&std::fs::read(fixture("v1/session-21.json")).unwrap()).unwrap();
    for i in 1..=12 {
        let mut failed = original.clone();
        failed["id"] = json!(format!("f-{i}"));
        failed["submissionStatus"] = json!("failed");
        failed["submissionError"] = json!("HTTP 400");
        let out = sessionctl(&dir, &["put"], Some(&serde_json::to_vec(&failed).unwrap()));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let human = text(&sessionctl(&dir, &["status"], None).stdout);
    let named: Vec<&str> = human.lines().filter(|l| l.starts_with("failed: ")).collect();
    assert_eq!(named.len(), 10, "{human}");
    assert_eq!(named[0], "failed: f-1: HTTP 400", "{human}");
    assert_eq!(named[9], "failed: f-10: HTTP 400", "{human}");
    assert!(
        human.contains("\n... and 2 more failed (`sessionctl list --status failed` names them all)\n"),
        "{human}"
    );
    let status: Value =
        serde_json::from_slice(&sessionctl(&dir, &["--json", "status"], None).stdout).unwrap();
    assert_eq!(status["counts"]["failed"], 12);
    assert_eq!(status["failed"].as_array().map(Vec::len), Some(10));
}
