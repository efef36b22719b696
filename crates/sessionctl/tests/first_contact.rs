//! What a new user meets first: colour that obeys `--color` and `NO_COLOR`, ids in
//! natural order, words that agree with their numbers, `put FILE`, one report per
//! problem, readable times in logs, completions.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};

fn store_of_numbered_sessions(dir: &Path) {
    let base: Value = serde_json::from_slice(&std::fs::read(fixture("v1/session-21.json")).unwrap()).unwrap();
    for (id, status) in [
        ("session-109", "pending"),
        ("session-11", "failed"),
        ("session-9", "submitted"),
    ] {
        let mut doc = base.clone();
        doc["id"] = json!(id);
        doc["submissionStatus"] = json!(status);
        doc["persistedUntil"] = json!(1); // long expired
        let out = sessionctl(dir, &["put"], Some(&serde_json::to_vec(&doc).unwrap()));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

#[test]
fn ids_are_listed_in_natural_order() {
    let tmp = tempfile::tempdir().unwrap();
    store_of_numbered_sessions(tmp.path());
    let rows: Vec<Value> =
        serde_json::from_slice(&sessionctl(tmp.path(), &["--json", "list"], None).stdout).unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["session-9", "session-11", "session-109"]);
}

#[test]
fn list_in_colour_and_without() {
    let tmp = tempfile::tempdir().unwrap();
    store_of_numbered_sessions(tmp.path());
    let settings = relative_times();
    let coloured = sessionctl(tmp.path(), &["--color", "always", "list"], None);
    let plain = sessionctl(tmp.path(), &["--color", "never", "list"], None);
    settings.bind(|| {
        insta::assert_snapshot!(
            "list_colour_always",
            text(&coloured.stdout).replace('\x1b', "<ESC>")
        );
        insta::assert_snapshot!("list_colour_never", text(&plain.stdout));
    });
    let header = text(&coloured.stdout).lines().next().unwrap().to_owned();
    assert!(
        !header.contains('\x1b'),
        "the header is never painted: {header:?}"
    );
    assert!(text(&coloured.stdout).contains("\x1b[31m"), "failed is red");
    assert!(!plain.stdout.contains(&0x1b));
    // Expired but kept because never delivered: said in words.
    let row = text(&plain.stdout)
        .lines()
        .find(|l| l.starts_with("session-109"))
        .unwrap()
        .to_owned();
    assert!(row.contains("expired, kept: not delivered"), "{row}");
    let delivered = text(&plain.stdout)
        .lines()
        .find(|l| l.starts_with("session-9 "))
        .unwrap()
        .to_owned();
    assert!(!delivered.contains("kept: not delivered"), "{delivered}");
}

/// Runs `sessionctl list` on a pseudo-terminal (util-linux `script`), so `auto` applies.
fn list_on_a_terminal(dir: &Path, no_color: Option<&str>) -> Vec<u8> {
    let exe = env!("CARGO_BIN_EXE_sessionctl");
    let mut command = std::process::Command::new("script");
    command
        .args([
            "-qec",
            &format!("{exe} --dir {} list", dir.display()),
            "/dev/null",
        ])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let out = command
        .output()
        .expect("util-linux script runs commands on a pty");
    assert!(out.status.success(), "{}", text(&out.stderr));
    out.stdout
}

#[test]
fn no_color_removes_every_escape_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "util-linux `script` is needed in CI"
        );
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    store_of_numbered_sessions(tmp.path());
    assert!(
        list_on_a_terminal(tmp.path(), None).contains(&0x1b),
        "a terminal gets colour by default"
    );
    assert!(
        !list_on_a_terminal(tmp.path(), Some("1")).contains(&0x1b),
        "NO_COLOR=1"
    );
    assert!(
        list_on_a_terminal(tmp.path(), Some("")).contains(&0x1b),
        "an empty NO_COLOR is unset"
    );
}

#[test]
fn a_filter_with_no_match_says_so_with_the_total() {
    let tmp = tempfile::tempdir().unwrap();
    store_of_numbered_sessions(tmp.path());
    let out = sessionctl(tmp.path(), &["list", "--status", "ignored"], None);
    assert_eq!(
        text(&out.stdout).trim(),
        "no sessions with status ignored (3 in total)"
    );
}

#[test]
fn put_takes_a_file_a_dash_or_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let file = fixture("v1/session-22.json");
    let out = sessionctl(tmp.path(), &["--json", "put", file.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(fixture("v1/session-23.json")).unwrap();
    assert!(
        sessionctl(tmp.path(), &["put", "-"], Some(&bytes))
            .status
            .success()
    );
    assert!(
        sessionctl(
            tmp.path(),
            &["put"],
            Some(&std::fs::read(fixture("v1/session-24.json")).unwrap())
        )
        .status
        .success()
    );
    let rows: Vec<Value> =
        serde_json::from_slice(&sessionctl(tmp.path(), &["--json", "list"], None).stdout).unwrap();
    assert_eq!(rows.len(), 3);
    let missing = sessionctl(tmp.path(), &["put", "/nonexistent/x.json"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent/x.json"));
}

#[test]
fn words_agree_with_their_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("v1/session-21.json")).unwrap();
    assert!(sessionctl(tmp.path(), &["put"], Some(&bytes)).status.success());
    let status = text(&sessionctl(tmp.path(), &["status"], None).stdout);
    // After the alert the fixture raises (it has waited more than an hour).
    let counted = status
        .lines()
        .find(|l| !l.starts_with("ALERT: "))
        .unwrap_or_default();
    assert!(counted.starts_with("1 session in "), "{status}");
    std::fs::write(tmp.path().join("broken.json"), b"{").unwrap();
    let verify = sessionctl(tmp.path(), &["verify"], None);
    assert!(
        text(&verify.stdout).contains("1 ok, 1 problem\n"),
        "{}",
        text(&verify.stdout)
    );
    assert!(
        text(&verify.stderr).contains("1 problem found"),
        "{}",
        text(&verify.stderr)
    );
}

#[test]
fn status_counts_the_problems_verify_names() {
    let tmp = tempfile::tempdir().unwrap();
    for rel in [
        "corrupt/session-31.json.tmp",
        "corrupt/session-33.json",
        "corrupt/session-34.json",
        "v1/session-21.json",
    ] {
        let path = fixture(rel);
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    let status: Value =
        serde_json::from_slice(&sessionctl(tmp.path(), &["--json", "status"], None).stdout).unwrap();
    let verify: Value =
        serde_json::from_slice(&sessionctl(tmp.path(), &["--json", "verify"], None).stdout).unwrap();
    assert_eq!(
        status["problems"],
        json!(verify["problems"].as_array().unwrap().len())
    );
    assert_eq!(status["orphanedTemps"], 1);
}

#[test]
fn recover_reports_each_file_once_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    for rel in ["corrupt/session-33.json", "corrupt/session-35.json"] {
        let path = fixture(rel);
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    let out = command()
        .arg("--dir")
        .arg(tmp.path())
        .arg("recover")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success());
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for name in ["session-33.json", "session-35.json"] {
        assert_eq!(all.matches(name).count(), 1, "{name} reported once:\n{all}");
    }
}

#[test]
fn logs_show_times_as_rfc_3339() {
    let tmp = tempfile::tempdir().unwrap();
    let recv = Receiver::start(tmp.path(), &["--status", "503"]);
    let dir = tmp.path().join("s");
    assert!(put_fixture(&dir, "v1/session-21.json").status.success());
    let out = command()
        .arg("--dir")
        .arg(&dir)
        .args(["submit", "--once", "--endpoint", &format!("{}/x", recv.url)])
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let log = text(&out.stderr);
    let field = log
        .split("next_attempt_at=")
        .nth(1)
        .expect("the retry is logged")
        .split_whitespace()
        .next()
        .unwrap();
    assert!(
        field.len() == 20 && field.ends_with('Z') && field.as_bytes()[10] == b'T',
        "RFC 3339, not epoch milliseconds: {field}"
    );
}

#[test]
fn completions_for_every_common_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = command().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(
            script.contains("sessionctl") && script.contains("migrate"),
            "{shell}"
        );
    }
    let man = command().arg("man").output().unwrap();
    assert!(text(&man.stdout).starts_with(".ie") || text(&man.stdout).contains(".TH sessionctl"));
}
