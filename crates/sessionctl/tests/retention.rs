//! The configured retention applies on every path: a legacy file without
//! `persistedUntil` is kept `retention_days` after it started, whichever command or
//! worker looks at it, before and after migration.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};

const DAY: u64 = 86_400_000;

/// One delivered legacy session with no `persistedUntil`; returns its start time.
fn legacy_store(dir: &Path, id: &str) -> u64 {
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(fixture("legacy/session-12.json")).unwrap()).unwrap();
    doc.as_object_mut().unwrap().remove("persistedUntil");
    doc["id"] = json!(id);
    doc["submissionStatus"] = json!("submitted");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{id}.json")), serde_json::to_vec(&doc).unwrap()).unwrap();
    doc["startTime"].as_u64().unwrap()
}

fn json_of(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--set", "retention_days=90", "--json"];
    all.extend_from_slice(args);
    let out = sessionctl(dir, &all, None);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_command_applies_the_configured_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let start = legacy_store(&dir, "old-1");
    let kept_until = start + 90 * DAY;
    let day_60 = (start + 60 * DAY).to_string();
    let day_91 = (start + 91 * DAY).to_string();
    // Reading commands, before any migration.
    assert_eq!(json_of(&dir, &["show", "old-1"])["persistedUntil"], kept_until);
    assert_eq!(json_of(&dir, &["list"])[0]["persistedUntil"], kept_until);
    let dry = json_of(&dir, &["cleanup", "--dry-run", "--now", &day_60]);
    assert_eq!(
        dry["expired"], 0,
        "60 days in, a 90-day retention has not expired: {dry}"
    );
    let dry = json_of(&dir, &["cleanup", "--dry-run", "--now", &day_91]);
    assert_eq!(dry["expired"], 1, "{dry}");
    // A put of the same legacy document records 90 days.
    let bytes = std::fs::read(dir.join("old-1.json")).unwrap();
    let mut other: Value = serde_json::from_slice(&bytes).unwrap();
    other["id"] = json!("old-2");
    let out = sessionctl(
        &dir,
        &["--set", "retention_days=90", "put"],
        Some(&serde_json::to_vec(&other).unwrap()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json_of(&dir, &["show", "old-2"])["persistedUntil"], kept_until);
    // Migration, and everything after it, agree.
    json_of(&dir, &["migrate"]);
    let stored: Value = serde_json::from_slice(&std::fs::read(dir.join("old-1.json")).unwrap()).unwrap();
    assert_eq!(stored["persistedUntil"], kept_until);
    let dry = json_of(&dir, &["cleanup", "--dry-run", "--now", &day_60]);
    assert_eq!(dry["expired"], 0, "{dry}");
}

#[test]
fn recovery_and_the_daemon_apply_it_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let start = legacy_store(&dir, "old-1");
    // A temp copy recovery promotes: decoded with the configured retention.
    let mut temp: Value = serde_json::from_slice(&std::fs::read(dir.join("old-1.json")).unwrap()).unwrap();
    temp["id"] = json!("old-3");
    std::fs::write(dir.join("old-3.json.tmp"), serde_json::to_vec(&temp).unwrap()).unwrap();
    json_of(&dir, &["recover"]);
    assert_eq!(
        json_of(&dir, &["show", "old-3"])["persistedUntil"],
        start + 90 * DAY
    );
    // The daemon migrates with it at start-up.
    let daemon = Daemon::start(
        &dir,
        &["--set", "retention_days=90", "--set", "cleanup_dry_run=true"],
    );
    daemon.wait_for_log("serving");
    let (code, _, _) = daemon.stop();
    assert_eq!(code, 0);
    for id in ["old-1", "old-3"] {
        let stored: Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{id}.json"))).unwrap()).unwrap();
        assert_eq!(
            stored["_metadata"]["version"],
            session_model::CURRENT_VERSION,
            "{id}"
        );
        assert_eq!(stored["persistedUntil"], start + 90 * DAY, "{id}");
    }
}
