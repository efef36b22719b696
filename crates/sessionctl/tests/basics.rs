//! `sessionctl` as a real process: init, put, get, show, list, delete.

mod common;

use std::path::Path;

use common::*;

#[test]
fn init_creates_a_private_directory() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let out = sessionctl(&dir, &["--json", "init"], None);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["dir"], dir.display().to_string());
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn put_upgrades_and_get_returns_the_bytes_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = put_fixture(dir, "v1/session-21.json");
    assert_eq!(
        text(&out.stdout),
        format!(
            "{{\"id\":\"session-21\",\"version\":\"{}\"}}\n",
            session_model::CURRENT_VERSION
        )
    );
    let get = sessionctl(dir, &["--json", "get", "session-21"], None);
    assert!(get.status.success());
    let on_disk = std::fs::read(dir.join("session-21.json")).unwrap();
    assert_eq!(get.stdout.strip_suffix(b"\n").unwrap(), &on_disk[..]);
    let doc: serde_json::Value = serde_json::from_slice(&on_disk).unwrap();
    assert_eq!(doc["_metadata"]["version"], session_model::CURRENT_VERSION);
    assert_eq!(doc["_metadata"]["revision"], 1);
    // A second put replaces and bumps the revision; --create refuses with exit 1.
    assert!(put_fixture(dir, "v1/session-21.json").status.success());
    let create = sessionctl(dir, &["put", "--create"], Some(&on_disk));
    assert_eq!(create.status.code(), Some(1));
    assert!(text(&create.stderr).contains("session-21 already exists"));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("session-21.json")).unwrap()).unwrap();
    assert_eq!(doc["_metadata"]["revision"], 2);
}

#[test]
fn show_upgrades_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sessionctl(dir, &["init"], None);
    std::fs::copy(fixture("legacy/session-12.json"), dir.join("session-12.json")).unwrap();
    let before = std::fs::read(dir.join("session-12.json")).unwrap();
    let out = sessionctl(dir, &["show", "session-12"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    insta::assert_snapshot!(text(&out.stdout));
    assert_eq!(std::fs::read(dir.join("session-12.json")).unwrap(), before);
}

#[test]
fn hostile_ids_exit_2_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("never-created");
    for id in ["../x", "a/b", ".hidden", "", &"a".repeat(129), "a\u{1}b"] {
        for cmd in ["get", "show", "delete"] {
            let out = sessionctl(&dir, &[cmd, id], None);
            assert_eq!(out.status.code(), Some(2), "{cmd} {id:?}");
            let err = text(&out.stderr);
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(err.contains("invalid session id"), "{err}");
        }
    }
    assert!(
        !dir.exists(),
        "the store directory must not be created for a refused id"
    );
}

#[test]
fn malformed_input_exits_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases: [(&str, &[u8]); 4] = [
        ("array", b"[1, 2, 3]"),
        ("torn", b"{\"id\": \"x\", \"startTi"),
        ("hostile id", br#"{"id": "../../etc/passwd", "startTime": 1}"#),
        ("newer", br#"{"id": "n", "_metadata": {"version": "7.0.0"}}"#),
    ];
    let mut report = String::new();
    for (name, input) in cases {
        let out = sessionctl(dir, &["put"], Some(input));
        report.push_str(&format!("## {name}\n{}\n", transcript(dir, &out)));
    }
    insta::assert_snapshot!(report);
    assert!(
        std::fs::read_dir(dir)
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".json"))
    );
}

fn store_with_everything(dir: &Path) {
    for rel in [
        "legacy/session-11.json",
        "legacy/session-14.json",
        "v1/session-22.json",
        "v1/session-23.json",
    ] {
        assert!(put_fixture(dir, rel).status.success());
    }
    for name in ["session-35.json", "session-38.json", "session-39.json"] {
        std::fs::copy(fixture(&format!("corrupt/{name}")), dir.join(name)).unwrap();
    }
}

#[test]
fn list_names_damaged_files_and_carries_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    store_with_everything(dir);
    let human = sessionctl(dir, &["list"], None);
    let json = sessionctl(dir, &["--json", "list"], None);
    let failed = sessionctl(dir, &["--json", "list", "--status", "failed"], None);
    relative_times().bind(|| {
        insta::assert_snapshot!("list_human", transcript(dir, &human));
        insta::assert_snapshot!("list_json", transcript(dir, &json));
        insta::assert_snapshot!("list_failed", transcript(dir, &failed));
    });
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(rows.len(), 5, "four sessions and the newer-version file");
}

#[test]
fn delete_moves_to_trash_and_reports_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    store_with_everything(dir);
    let first = sessionctl(dir, &["--json", "delete", "session-11"], None);
    assert_eq!(text(&first.stdout), "{\"deleted\":true}\n");
    let again = sessionctl(dir, &["--json", "delete", "session-11"], None);
    assert_eq!(text(&again.stdout), "{\"deleted\":false}\n");
    assert!(!dir.join("session-11.json").exists());
    assert_eq!(std::fs::read_dir(dir.join(".trash")).unwrap().count(), 1);
    // A newer build's file is never moved.
    let newer = sessionctl(dir, &["--json", "delete", "session-39"], None);
    assert_eq!(newer.status.code(), Some(1));
    assert!(dir.join("session-39.json").exists());
}

fn store_of_corrupt_fixtures(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(fixture("corrupt")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
}

#[test]
fn verify_then_recover_the_corrupt_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    store_of_corrupt_fixtures(dir);
    let verify_human = sessionctl(dir, &["verify"], None);
    let verify_json = sessionctl(dir, &["--json", "verify"], None);
    assert_eq!(verify_json.status.code(), Some(1));
    let recover = sessionctl(dir, &["--json", "recover"], None);
    let verify_after = sessionctl(dir, &["--json", "verify"], None);
    insta::assert_snapshot!(format!(
        "## verify\n{}\n## verify --json\n{}\n## recover --json\n{}\n## verify --json after recovery\n{}",
        transcript(dir, &verify_human),
        transcript(dir, &verify_json),
        transcript(dir, &recover),
        transcript(dir, &verify_after)
    ));
    assert_eq!(verify_after.status.code(), Some(0));
}

#[test]
fn recover_refuses_to_run_beside_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    store_of_corrupt_fixtures(dir);
    let held = session_fs::Store::open(dir).unwrap();
    let out = sessionctl(dir, &["recover"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is in use"), "{}", text(&out.stderr));
    assert!(dir.join("session-34.json").exists(), "nothing may be moved");
    drop(held);
    assert!(sessionctl(dir, &["recover"], None).status.success());
}

#[test]
fn migrate_dry_run_then_run_then_roll_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir).unwrap();
    for rel in [
        "legacy/session-12.json",
        "v1/session-22.json",
        "corrupt/session-35.json",
        "corrupt/session-39.json",
    ] {
        std::fs::copy(fixture(rel), dir.join(Path::new(rel).file_name().unwrap())).unwrap();
    }
    let original = std::fs::read(dir.join("session-22.json")).unwrap();
    let steps = [
        ("migrate --dry-run", vec!["migrate", "--dry-run"]),
        ("migrate --json", vec!["--json", "migrate"]),
        ("migrate again", vec!["migrate"]),
        ("migrate --rollback", vec!["migrate", "--rollback"]),
        ("migrate --rollback again", vec!["migrate", "--rollback"]),
    ];
    let mut report = String::new();
    for (name, args) in steps {
        let out = sessionctl(dir, &args, None);
        report.push_str(&format!("## {name}\n{}\n", transcript(dir, &out)));
    }
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{13}-\d+-\d+-\d+", "[RUN]");
    settings.bind(|| insta::assert_snapshot!(report));
    assert_eq!(std::fs::read(dir.join("session-22.json")).unwrap(), original);
}

#[test]
fn help_lists_every_command_of_the_contract() {
    let out = command().arg("--help").output().unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!(text(&out.stdout));
    let bad = command().arg("frobnicate").output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "bad usage is exit 2");
}

#[test]
fn a_listing_longer_than_the_tables_head_streams_every_row_in_natural_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 1,100 sessions, more than the 1,000 rows the table measures before it streams; the
    // last in natural order has the longest id of all, and comes after the head.
    let mut ids: Vec<String> = (0..1_099).map(|n| format!("s-{n}")).collect();
    ids.push("s-99999-with-a-longer-name-than-any-before".into());
    for id in &ids {
        let doc = format!(r#"{{"id": "{id}", "startTime": 1000, "isComplete": true, "messages": []}}"#);
        std::fs::write(dir.join(format!("{id}.json")), doc).unwrap();
    }
    let json = sessionctl(dir, &["--json", "list"], None);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    let listed: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids, "every row, ids in natural order (s-9 before s-10)");

    let table = sessionctl(dir, &["list"], None);
    assert!(table.status.success());
    let lines: Vec<String> = text(&table.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1 + ids.len(), "a header and a line per session");
    assert!(lines[0].starts_with("ID "));
    let first_cells: Vec<&str> = lines[1..].iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        first_cells, ids,
        "whole ids, in order, even past the measured head"
    );
    let status_column = lines[0].find("STATUS").unwrap();
    assert_eq!(
        &lines[1][status_column..status_column + 7],
        "pending",
        "{}",
        lines[1]
    );
}
