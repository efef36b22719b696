//! `retry`, `ignore`, `cleanup`, `submit`, `status` and `config` as real processes.

mod common;

use std::path::Path;

use common::*;

fn put(dir: &Path, doc: &serde_json::Value) {
    let out = sessionctl(dir, &["put"], Some(&serde_json::to_vec(doc).unwrap()));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn fixture_json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture(rel)).unwrap()).unwrap()
}

fn status_of(dir: &Path, id: &str) -> serde_json::Value {
    let out = sessionctl(dir, &["get", id], None);
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["submission"].clone()
}

#[test]
fn retry_and_ignore_follow_the_state_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    put(dir, &fixture_json("v1/session-23.json")); // failed, 3 attempts
    put(dir, &fixture_json("v1/session-22.json")); // submitted
    let mut report = String::new();
    for args in [
        vec!["--json", "retry", "session-23"],
        vec!["ignore", "session-23"],
        vec!["--json", "ignore", "session-22"],
        vec!["retry", "session-22"],
        vec!["retry", "no-such-session"],
        vec!["retry", "../etc"],
    ] {
        let out = sessionctl(dir, &args, None);
        report.push_str(&format!("## {}\n{}\n", args.join(" "), transcript(dir, &out)));
    }
    insta::assert_snapshot!(report);
    let s23 = status_of(dir, "session-23");
    assert_eq!(
        (s23["status"].as_str(), s23["attempts"].as_u64()),
        (Some("ignored"), Some(0))
    );
    assert_eq!(status_of(dir, "session-22")["status"], "submitted");
}

#[test]
fn cleanup_with_a_given_now_trashes_only_delivered_expired_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for rel in [
        "v1/session-21.json",
        "v1/session-22.json",
        "v1/session-23.json",
        "v1/session-24.json",
    ] {
        put(dir, &fixture_json(rel));
    }
    // 2025-11-15: session-22 (submitted) and session-23 (failed) are past their retention.
    let now = "1763200000000";
    let dry = sessionctl(dir, &["--json", "cleanup", "--dry-run", "--now", now], None);
    let real = sessionctl(dir, &["--json", "cleanup", "--now", now], None);
    let again = sessionctl(dir, &["cleanup", "--now", now], None);
    insta::assert_snapshot!(format!(
        "## dry run\n{}\n## cleanup\n{}\n## again (human)\n{}",
        transcript(dir, &dry),
        transcript(dir, &real),
        transcript(dir, &again)
    ));
    let live: Vec<String> =
        serde_json::from_slice::<Vec<serde_json::Value>>(&sessionctl(dir, &["--json", "list"], None).stdout)
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(live, ["session-21", "session-23", "session-24"]);
}

#[test]
fn submit_once_against_the_reference_receiver() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    put(&dir, &fixture_json("v1/session-21.json"));
    put(&dir, &fixture_json("legacy/session-13.json")); // incomplete: not sent
    let receiver = Receiver::start(tmp.path(), &[]);
    let endpoint = format!("{}/sessions", receiver.url);
    let out = sessionctl(
        &dir,
        &["--json", "submit", "--endpoint", &endpoint, "--once"],
        None,
    );
    assert_eq!(
        text(&out.stdout),
        "{\"submitted\":1,\"failed\":0,\"retrying\":0}\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(receiver.accepted().len(), 1);
    let no_endpoint = sessionctl(&dir, &["submit", "--once"], None);
    assert_eq!(no_endpoint.status.code(), Some(2));
    assert!(text(&no_endpoint.stderr).contains("no endpoint"));
}

#[test]
fn status_counts_and_names_the_oldest_undelivered() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for rel in [
        "v1/session-21.json",
        "v1/session-22.json",
        "v1/session-23.json",
        "legacy/session-13.json",
    ] {
        put(dir, &fixture_json(rel));
    }
    std::fs::copy(fixture("corrupt/session-39.json"), dir.join("session-39.json")).unwrap();
    std::fs::copy(fixture("corrupt/session-35.json"), dir.join("session-35.json")).unwrap();
    sessionctl(dir, &["cleanup", "--now", "1763200000000"], None);
    let json = sessionctl(dir, &["--json", "status"], None);
    let human = sessionctl(dir, &["status"], None);
    let mut settings = relative_times();
    settings.add_filter(r#""durationMs":\d+"#, r#""durationMs":"[MS]""#);
    settings.add_filter(r#""trustedAt":\d+"#, r#""trustedAt":"[TIME]""#);
    settings.bind(|| {
        insta::assert_snapshot!("status_json", transcript(dir, &json));
        insta::assert_snapshot!("status_human", transcript(dir, &human));
    });
}

#[test]
fn config_shows_sources_and_redacts_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sessionctl.toml");
    std::fs::write(&file, "concurrency = 4\nmax_attempts = 5\nendpoint = \"https://lis.example/api\"\nauthorization = \"Bearer from-file\"\n").unwrap();
    let out = command()
        .args(["--dir", "/srv/sessions", "--config"])
        .arg(&file)
        .args(["--set", "max_attempts=7", "config"])
        .env("HL7_CONCURRENCY", "6")
        .env("HL7_AUTHORIZATION", "Bearer super-secret")
        .output()
        .unwrap();
    let shown = text(&out.stdout).replace(&tmp.path().display().to_string(), "[TMP]");
    assert!(
        !shown.contains("super-secret") && !shown.contains("from-file"),
        "{shown}"
    );
    insta::assert_snapshot!(shown);
}

#[test]
fn bad_configuration_is_refused_with_key_value_and_range() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.toml");
    let mut report = String::new();
    for (name, toml, set) in [
        ("out of range in the file", "concurrency = 11\n", None),
        ("unknown key", "concurrancy = 2\n", None),
        ("not TOML", "concurrency = = 2\n", None),
        ("out of range flag", "", Some("scan_interval_minutes=0")),
        ("bad boolean", "", Some("cleanup_dry_run=yes")),
        ("bad endpoint", "", Some("endpoint=ftp://x")),
    ] {
        std::fs::write(&file, toml).unwrap();
        let mut command = command();
        command
            .args(["--dir"])
            .arg(tmp.path().join("s"))
            .arg("--config")
            .arg(&file);
        if let Some(set) = set {
            command.args(["--set", set]);
        }
        let out = command.arg("config").output().unwrap();
        let stderr = text(&out.stderr).replace(&tmp.path().display().to_string(), "[TMP]");
        report.push_str(&format!(
            "## {name}\nexit {}: {stderr}",
            out.status.code().unwrap()
        ));
    }
    let out = command()
        .args(["config"])
        .env("HL7_MAX_ATTEMPTS", "11")
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    report.push_str(&format!(
        "## bad environment\nexit {}: {}",
        out.status.code().unwrap(),
        text(&out.stderr)
    ));
    insta::assert_snapshot!(report);
}
