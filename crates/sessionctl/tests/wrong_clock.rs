//! The real binary under a wall clock set wrong by a careless operator, with Debian's
//! `faketime` (libfaketime: it changes what the process reads of the wall clock, not the
//! kernel's time since boot): nothing acknowledged is lost, nothing is delivered twice,
//! nothing is purged early. `.ci/run` installs `faketime`; without it these tests fail
//! under CI and are skipped, loudly, elsewhere.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

const REAL_TIME_NOTE: &str = "the real clock";

fn faketime_available() -> bool {
    let found = Command::new("faketime")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "faketime is missing: .ci/run installs Debian's faketime"
        );
        eprintln!(
            "WARNING: faketime is not installed (apt-get install faketime): the wrong-clock tests did not run"
        );
    }
    found
}

/// `sessionctl --dir DIR ARGS...` with the wall clock at `at` (a `date -d` string).
fn sessionctl_at(at: &str, dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    sessionctl_through(&["faketime", at], dir, args, stdin)
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Every file under the store but the clock's state and the lock files, by name.
fn files(dir: &Path) -> Vec<String> {
    test_support::files_under(dir, &[".state", ".locks"])
}

/// A store with what retention could destroy, all made just now at the real time: a
/// backup run (a real migration of the app's file), a session in the trash, and a
/// delivered session past its retention.
fn store_with_things_to_lose(dir: &Path) {
    ok(&sessionctl(dir, &["init"], None), "init");
    std::fs::copy(fixture("v1/session-23.json"), dir.join("session-23.json")).unwrap();
    ok(&sessionctl(dir, &["migrate"], None), "migrate");
    ok(&put_fixture(dir, "v1/session-22.json"), "put delivered");
    ok(&put_fixture(dir, "v1/session-21.json"), "put pending");
    ok(&sessionctl(dir, &["delete", "session-21"], None), "delete");
    assert!(files(dir).iter().any(|f| f.starts_with(".backup/")));
    assert!(files(dir).iter().any(|f| f.starts_with(".trash/")));
}

#[test]
fn cleanup_under_a_wrong_clock_destroys_nothing_until_the_clock_is_confirmed() {
    if !faketime_available() {
        return;
    }
    for wrong in ["+10 minutes", "+3 days", "2120-01-01 00:00:00", "-5 years"] {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sessions");
        store_with_things_to_lose(&dir);
        let before = files(&dir);
        let cleanup = sessionctl_at(wrong, &dir, &["cleanup"], None);
        assert_eq!(
            cleanup.status.code(),
            Some(1),
            "{wrong}: {}",
            text(&cleanup.stderr)
        );
        assert!(
            text(&cleanup.stderr).contains("CLOCK SUSPECT"),
            "{wrong}: {}",
            text(&cleanup.stderr)
        );
        assert_eq!(
            files(&dir),
            before,
            "{wrong}: cleanup under a wrong clock moved or removed a file"
        );
        let status = sessionctl_at(wrong, &dir, &["status"], None);
        assert!(
            text(&status.stdout).starts_with("CLOCK SUSPECT"),
            "{wrong}: {}",
            text(&status.stdout)
        );
        // Back at the real time, the suspicion stands until an operator confirms.
        let again = sessionctl(&dir, &["cleanup"], None);
        assert_eq!(again.status.code(), Some(1), "{wrong}, then {REAL_TIME_NOTE}");
        assert_eq!(files(&dir), before);
        ok(&sessionctl(&dir, &["clock", "confirm"], None), "clock confirm");
        let json = sessionctl(&dir, &["--json", "clock"], None);
        assert!(
            text(&json.stdout).contains(r#""suspect":false"#),
            "{}",
            text(&json.stdout)
        );
        let cleaned = sessionctl(&dir, &["--json", "cleanup"], None);
        ok(&cleaned, "cleanup after confirmation");
        let summary: serde_json::Value = serde_json::from_slice(&cleaned.stdout).unwrap();
        assert_eq!(
            (summary["trashed"].as_u64(), summary["purged"].as_u64()),
            (Some(1), Some(0)),
            "{wrong}: the expired delivered session goes; the minutes-old trash and backup stay"
        );
    }
}

#[test]
fn a_delivered_session_is_never_replaced_by_an_unacknowledged_temp_or_sent_again() {
    if !faketime_available() {
        return;
    }
    for temp_saved_at in [1_796_000_000_000u64 + 86_400_000, 4_102_444_800_000] {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sessions");
        ok(&sessionctl(&dir, &["init"], None), "init");
        // The app's leftover temp: one message, saved "later" than anything below.
        let mut app: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture("v1/session-21.json")).unwrap()).unwrap();
        app["messages"].as_array_mut().unwrap().truncate(1);
        app["_metadata"]["savedAt"] = temp_saved_at.into();
        std::fs::write(dir.join("session-21.json.tmp"), serde_json::to_vec(&app).unwrap()).unwrap();
        // Under a clock set to 2020: the full session is put and delivered.
        let receiver = Receiver::start(root.path(), &[]);
        let full = std::fs::read(fixture("v1/session-21.json")).unwrap();
        ok(
            &sessionctl_at("2020-06-01 00:00:00", &dir, &["put"], Some(&full)),
            "put",
        );
        ok(
            &sessionctl_at(
                "2020-06-01 00:00:00",
                &dir,
                &["submit", "--endpoint", &receiver.url],
                None,
            ),
            "submit",
        );
        assert_eq!(receiver.accepted().len(), 1);
        // Back at the real time: recovery keeps the delivered file, keeps the temp aside.
        ok(&sessionctl(&dir, &["recover"], None), "recover");
        assert!(!dir.join("session-21.json.tmp").exists());
        let shown = sessionctl(&dir, &["--json", "show", "session-21"], None);
        let live: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
        assert_eq!(live["submission"]["status"], "submitted", "{live}");
        assert_eq!(live["elements"].as_array().map(Vec::len), app_elements(&full));
        let kept = std::fs::read_dir(dir.join(".quarantine")).unwrap().count();
        assert!(kept >= 1, "the temp is kept in quarantine");
        ok(
            &sessionctl(&dir, &["submit", "--endpoint", &receiver.url], None),
            "submit again",
        );
        assert_eq!(receiver.accepted().len(), 1, "delivered once");
    }
}

fn app_elements(bytes: &[u8]) -> Option<usize> {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    value["elements"].as_array().map(Vec::len)
}

#[test]
fn a_retry_stored_under_a_clock_ahead_happens_when_the_clock_comes_back() {
    if !faketime_available() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("sessions");
    ok(&put_fixture(&dir, "v1/session-21.json"), "put");
    let receiver = Receiver::start(root.path(), &["--fail-first", "1"]);
    let failed = sessionctl_at(
        "2120-01-01 00:00:00",
        &dir,
        &["submit", "--endpoint", &receiver.url],
        None,
    );
    assert!(
        text(&failed.stdout).contains("retrying 1") || failed.status.code() == Some(1),
        "{}",
        text(&failed.stdout)
    );
    assert!(receiver.accepted().is_empty());
    let status = sessionctl(&dir, &["--json", "status"], None);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["retriesPulledIn"], 1, "{status}");
    ok(
        &sessionctl(&dir, &["submit", "--endpoint", &receiver.url], None),
        "submit",
    );
    assert_eq!(receiver.accepted().len(), 1, "sent at once, not in 2120");
}

#[test]
fn an_operators_now_is_taken_as_stated() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("sessions");
    store_with_things_to_lose(&dir);
    let in_eight_days = (session_fs::now_ms() + 8 * 86_400_000).to_string();
    let cleaned = sessionctl(&dir, &["--json", "cleanup", "--now", &in_eight_days], None);
    ok(&cleaned, "cleanup --now");
    let summary: serde_json::Value = serde_json::from_slice(&cleaned.stdout).unwrap();
    assert_eq!(summary["clockSuspect"], serde_json::Value::Null, "{summary}");
    assert!(
        summary["purged"].as_u64().unwrap() >= 2,
        "the trash and the backup run, by the stated time: {summary}"
    );
    let clock = sessionctl(&dir, &["--json", "clock"], None);
    assert!(
        text(&clock.stdout).contains(r#""suspect":false"#),
        "{}",
        text(&clock.stdout)
    );
}
