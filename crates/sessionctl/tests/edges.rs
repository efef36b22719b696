//! The store's edges, attacked as a hostile user and a careless operator would: every
//! write reads back, nothing damaged is destroyed, nothing outside the store is
//! touched, nothing hangs, one bad file never stops a run.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{fixture, sessionctl, sessionctl_within, text, tree};
use serde_json::{Value, json};

const PROMPTLY: Duration = Duration::from_secs(20);

fn v1_doc(id: &str) -> Value {
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(fixture("v1/session-21.json")).unwrap()).unwrap();
    doc["id"] = json!(id);
    doc
}

fn put(dir: &Path, doc: &Value) -> std::process::Output {
    sessionctl(dir, &["put"], Some(&serde_json::to_vec(doc).unwrap()))
}

fn init(dir: &Path) {
    assert!(sessionctl(dir, &["init"], None).status.success());
}

#[test]
fn a_document_that_cannot_be_written_exactly_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    init(&dir);
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut d = v1_doc("c-1");
    d["submission"] = json!({"status": "submitted", "attempts": 1});
    cases.push(("top-level submission in 1.0.0", d));
    let mut d = v1_doc("c-2");
    d["elements"][1]["data"] = json!("TVNI");
    cases.push(("an element's data in 1.0.0", d));
    let mut d = v1_doc("c-3");
    d["_metadata"]["revision"] = json!(99);
    cases.push(("_metadata.revision in 1.0.0", d));
    let mut d = v1_doc("c-4");
    d["_metadata"] = Value::Null;
    cases.push(("_metadata null", d));
    for (what, doc) in cases {
        let id = doc["id"].as_str().unwrap().to_owned();
        let out = put(&dir, &doc);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", text(&out.stderr));
        assert!(
            !dir.join(format!("{id}.json")).exists(),
            "{what}: nothing is written"
        );
    }
    // Numbers and strings the decoder could only change.
    for raw in [
        r#"{"id": "n-1", "startTime": 1, "xCount": 1E2}"#,
        r#"{"id": "n-2", "startTime": 1, "xCount": -0}"#,
        r#"{"id": "n-3", "startTime": 1, "xCount": 123456789012345678901234567890}"#,
        r#"{"id": "n-4", "startTime": 1, "xNote": "\ud800"}"#,
    ] {
        let out = sessionctl(&dir, &["put"], Some(raw.as_bytes()));
        assert_eq!(out.status.code(), Some(2), "{raw}: {}", text(&out.stderr));
    }
    assert_eq!(
        test_support::names_in(&dir)
            .iter()
            .filter(|n| n.ends_with(".json"))
            .count(),
        0
    );
    // And what is accepted reads back: verify and show agree with put.
    let mut d = v1_doc("ok-1");
    d["xSubmission"] = json!({"status": 1, "big": 18446744073709551615u64});
    assert!(put(&dir, &d).status.success());
    assert!(sessionctl(&dir, &["verify"], None).status.success());
    let shown: Value = serde_json::from_slice(&sessionctl(&dir, &["show", "ok-1"], None).stdout).unwrap();
    assert_eq!(shown["xSubmission"], d["xSubmission"]);
}

#[test]
fn put_and_delete_over_a_damaged_file_keep_it_in_quarantine() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    init(&dir);
    // Valid JSON, but damaged: an id that is not its name, a field of the wrong type.
    let mut wrong_id = v1_doc("other");
    wrong_id["id"] = json!("someone-else");
    let mut wrong_type = v1_doc("d-2");
    wrong_type["startTime"] = json!("yesterday");
    let damaged = [
        ("d-1", serde_json::to_vec(&wrong_id).unwrap()),
        ("d-2", serde_json::to_vec(&wrong_type).unwrap()),
    ];
    for (id, bytes) in &damaged {
        std::fs::write(dir.join(format!("{id}.json")), bytes).unwrap();
    }
    // put over d-1, delete d-2: both originals end up in quarantine, byte for byte.
    assert!(put(&dir, &v1_doc("d-1")).status.success());
    let deleted = sessionctl(&dir, &["--json", "delete", "d-2"], None);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    let quarantine = dir.join(".quarantine");
    for (id, bytes) in &damaged {
        let kept: Vec<_> = test_support::names_in(&quarantine)
            .into_iter()
            .filter(|n| n.ends_with(&format!(".{id}.json")))
            .collect();
        assert_eq!(kept.len(), 1, "{id}: {:?}", test_support::names_in(&quarantine));
        assert_eq!(&std::fs::read(quarantine.join(&kept[0])).unwrap(), bytes, "{id}");
        let why: Value =
            serde_json::from_slice(&std::fs::read(quarantine.join(format!("{}.why.json", kept[0]))).unwrap())
                .unwrap();
        // The one quarantine-note format, whoever wrote it.
        assert_eq!(why["file"], json!(format!("{id}.json")), "{why}");
        assert!(why["reason"].as_str().unwrap().contains("damaged"), "{why}");
        assert!(why["quarantinedAt"].as_u64().unwrap() > 0, "{why}");
        assert!(why["by"].as_str().unwrap().starts_with("session-fs "), "{why}");
    }
    assert!(
        test_support::names_in(&dir.join(".trash")).is_empty(),
        "nothing damaged goes to the trash"
    );
}

#[test]
fn a_fifo_named_like_a_session_never_hangs_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    init(&dir);
    assert!(put(&dir, &v1_doc("good-1")).status.success());
    test_support::mkfifo(&dir.join("f-1.json"));
    for args in [
        &["get", "f-1"][..],
        &["show", "f-1"],
        &["delete", "f-1"],
        &["retry", "f-1"],
        &["ignore", "f-1"],
    ] {
        let out = sessionctl_within(&dir, args, None, PROMPTLY);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains("FIFO"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = sessionctl_within(
        &dir,
        &["put"],
        Some(&serde_json::to_vec(&v1_doc("f-1")).unwrap()),
        PROMPTLY,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "put over a FIFO: {}",
        text(&out.stderr)
    );
    let list = sessionctl_within(&dir, &["list"], None, PROMPTLY);
    assert!(list.status.success());
    assert!(text(&list.stdout).contains("good-1"));
    assert!(
        text(&list.stderr).contains("f-1.json: is a FIFO"),
        "{}",
        text(&list.stderr)
    );
    let verify = sessionctl_within(&dir, &["--json", "verify"], None, PROMPTLY);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        text(&verify.stdout).contains(r#""file":"f-1.json","problem":"is a FIFO"#),
        "{}",
        text(&verify.stdout)
    );
    // Recovery reports it and carries on; the FIFO stays where it is. What both say to
    // a person: each name and why, what recovery does with it and what it leaves.
    std::os::unix::fs::symlink("/etc/passwd", dir.join("l-1.json")).unwrap();
    let verify = sessionctl_within(&dir, &["verify"], None, PROMPTLY);
    let recover = sessionctl_within(&dir, &["recover"], None, PROMPTLY);
    assert_eq!(recover.status.code(), Some(1));
    assert!(text(&recover.stderr).contains("FIFO"));
    assert!(dir.join("f-1.json").exists());
    assert!(dir.join("l-1.json").is_symlink());
    insta::assert_snapshot!(format!(
        "## verify\n{}\n## recover\n{}",
        common::transcript(&dir, &verify),
        common::transcript(&dir, &recover)
    ));
}

#[test]
fn a_configuration_file_that_is_not_a_regular_file_is_refused_at_once() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("s");
    init(&dir);
    let fifo = root.path().join("config.fifo");
    test_support::mkfifo(&fifo);
    let folder = root.path().join("config.d");
    std::fs::create_dir(&folder).unwrap();
    for config in [&fifo, &folder, &std::path::PathBuf::from("/dev/zero")] {
        for via_env in [false, true] {
            let out = if via_env {
                let mut command = common::command();
                command
                    .arg("--dir")
                    .arg(&dir)
                    .arg("status")
                    .env("HL7_CONFIG", config)
                    .stdin(std::process::Stdio::null());
                let child = command
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut child = test_support::ChildGuard::new(child);
                let status = common::wait_at_most(&mut child, PROMPTLY);
                let mut stderr = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
                (status.code(), stderr)
            } else {
                let config = config.to_str().unwrap();
                let out = sessionctl_within(&dir, &["--config", config, "status"], None, PROMPTLY);
                (out.status.code(), text(&out.stderr))
            };
            assert_eq!(out.0, Some(2), "{config:?} (env: {via_env}): {}", out.1);
            assert!(
                out.1.contains(&config.display().to_string()) && out.1.contains("regular file"),
                "{}",
                out.1
            );
        }
    }
}

#[test]
fn a_ca_file_that_is_not_a_pem_regular_file_is_refused_at_once() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("s");
    init(&dir);
    let fifo = root.path().join("ca.fifo");
    test_support::mkfifo(&fifo);
    let not_pem = root.path().join("ca.txt");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    for (file, said) in [(&fifo, "regular file"), (&not_pem, "certificate")] {
        let set = format!("ca_file={}", file.display());
        let out = sessionctl_within(
            &dir,
            &[
                "--set",
                &set,
                "submit",
                "--endpoint",
                "https://127.0.0.1:9/sessions",
            ],
            None,
            PROMPTLY,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(said), "{stderr}");
    }
}

#[test]
fn symlinked_dot_directories_are_refused_and_never_followed() {
    for area in [".trash", ".quarantine", ".locks", ".backup", ".state"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        init(&dir);
        assert!(put(&dir, &v1_doc("s-1")).status.success());
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("1700000000000.1-2-3.precious.json"), b"mine").unwrap();
        std::fs::write(elsewhere.join("2023-report.pdf"), b"mine too").unwrap();
        let target = dir.join(area);
        if target.exists() {
            std::fs::remove_dir_all(&target).unwrap();
        }
        std::os::unix::fs::symlink(&elsewhere, &target).unwrap();
        let before = tree(&elsewhere);
        for args in [
            &["delete", "s-1"][..],
            &["cleanup", "--now", "99999999999999"],
            &["migrate"],
            &["retry", "s-1"],
            &["recover"],
            &["list"],
        ] {
            let out = sessionctl_within(&dir, args, None, PROMPTLY);
            assert!(!out.status.success(), "{area} {args:?} must refuse");
            let err = text(&out.stderr);
            assert!(
                err.contains(area) && err.contains("symlink"),
                "{area} {args:?}: {err}"
            );
        }
        assert_eq!(
            tree(&elsewhere),
            before,
            "{area}: nothing outside the store changed"
        );
        assert!(dir.join("s-1.json").exists(), "{area}");
    }
}

#[test]
fn one_oversized_file_never_stops_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    init(&dir);
    for id in ["a-1", "a-2"] {
        let mut legacy: Value =
            serde_json::from_slice(&std::fs::read(fixture("legacy/session-11.json")).unwrap()).unwrap();
        legacy["id"] = json!(id);
        std::fs::write(
            dir.join(format!("{id}.json")),
            serde_json::to_vec(&legacy).unwrap(),
        )
        .unwrap();
    }
    // A sparse file far over the read limit, named like a session.
    let huge = std::fs::File::create(dir.join("b-1.json")).unwrap();
    huge.set_len(300 * 1024 * 1024).unwrap();
    drop(huge);
    let migrate = sessionctl(&dir, &["--json", "migrate"], None);
    assert_eq!(migrate.status.code(), Some(1), "{}", text(&migrate.stderr));
    let report: Value = serde_json::from_slice(&migrate.stdout).unwrap();
    assert_eq!(report["migrated"], 2, "the others were migrated: {report}");
    assert_eq!(report["failed"], 1);
    assert!(text(&migrate.stderr).contains("b-1.json"));
    let cleanup = sessionctl(&dir, &["--json", "cleanup", "--now", "99999999999999"], None);
    assert_eq!(cleanup.status.code(), Some(1), "{}", text(&cleanup.stderr));
    assert!(text(&cleanup.stderr).contains("b-1.json"));
    // Recovery quarantines it and the store is whole again.
    let recover = sessionctl(&dir, &["--json", "recover"], None);
    assert!(recover.status.success(), "{}", text(&recover.stderr));
    assert!(!dir.join("b-1.json").exists());
    assert!(sessionctl(&dir, &["verify"], None).status.success());
}

#[test]
fn recovery_never_lets_an_unacknowledged_temp_beat_the_apps_later_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    init(&dir);
    assert!(put(&dir, &v1_doc("r-1")).status.success());
    assert!(put(&dir, &v1_doc("r-1")).status.success());
    // A complete store temp, revision 2 from a save never acknowledged...
    let temp_bytes = std::fs::read(dir.join("r-1.json")).unwrap();
    let temp = dir.join(".r-1.json.99-1-1.tmp");
    std::fs::write(&temp, &temp_bytes).unwrap();
    // ...then the app writes a newer 1.0.0 file its usual way (no revision).
    let mut newer = v1_doc("r-1");
    let saved_at: u64 = serde_json::from_slice::<Value>(&temp_bytes).unwrap()["_metadata"]["savedAt"]
        .as_u64()
        .unwrap();
    newer["_metadata"]["savedAt"] = json!(saved_at + 60_000);
    newer["xNewer"] = json!(true);
    let newer_bytes = serde_json::to_vec(&newer).unwrap();
    std::fs::write(dir.join("r-1.json"), &newer_bytes).unwrap();
    let out = sessionctl(&dir, &["recover"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(dir.join("r-1.json")).unwrap(),
        newer_bytes,
        "the app's later file stays"
    );
    let kept: Vec<_> = test_support::names_in(&dir.join(".quarantine"))
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert_eq!(kept.len(), 1, "the temp is kept, not trashed");
    assert!(test_support::names_in(&dir.join(".trash")).is_empty());
}

#[test]
fn a_long_legal_temp_name_is_recovered_with_names_that_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    init(&dir);
    let name = format!(".{}.json.{}.tmp", "x".repeat(120), "u".repeat(120));
    assert!(name.len() > 240);
    std::fs::write(dir.join(&name), b"{torn").unwrap();
    let out = sessionctl(&dir, &["recover"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let quarantined = test_support::names_in(&dir.join(".quarantine"));
    assert_eq!(quarantined.len(), 2, "{quarantined:?}");
    assert!(quarantined.iter().all(|n| n.len() <= 255));
    let sidecar = quarantined.iter().find(|n| n.ends_with(".why.json")).unwrap();
    let why: Value =
        serde_json::from_slice(&std::fs::read(dir.join(".quarantine").join(sidecar)).unwrap()).unwrap();
    assert_eq!(
        why["file"],
        json!(name),
        "the sidecar keeps the full original name"
    );
}

#[test]
fn document_strings_never_reach_the_terminal_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    init(&dir);
    let evil = "9.9\u{1b}]0;owned\u{7}\u{1b}[2J";
    std::fs::write(
        dir.join("e-1.json"),
        serde_json::to_vec(&json!({"id": "e-1", "_metadata": {"version": evil}, "submission": {"status": "\u{1b}[31mfailed"}})).unwrap(),
    )
    .unwrap();
    let mut wrong_id = v1_doc("e-2");
    wrong_id["id"] = json!("x\u{1b}[31m");
    std::fs::write(dir.join("e-2.json"), serde_json::to_vec(&wrong_id).unwrap()).unwrap();
    for args in [
        &["list"][..],
        &["show", "e-1"],
        &["show", "e-2"],
        &["delete", "e-1"],
        &["retry", "e-1"],
        &["verify"],
    ] {
        let out = sessionctl(&dir, args, None);
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !bytes.iter().any(|&b| b == 0x1b || b == 0x07),
                "{args:?} {stream}: {:?}",
                text(bytes)
            );
        }
    }
    let out = sessionctl(
        &dir,
        &["put"],
        Some(&serde_json::to_vec(&json!({"_metadata": {"version": evil}})).unwrap()),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.contains(&0x1b), "{}", text(&out.stderr));
}

#[test]
fn read_only_commands_create_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("typo");
    for args in [
        &["list"][..],
        &["get", "a"],
        &["show", "a"],
        &["status"],
        &["verify"],
    ] {
        let out = sessionctl(&missing, args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains("no store at"),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("sessionctl init"));
        assert!(!missing.exists(), "{args:?} created the store");
    }
    // On a store the app made (no dot-directories at all): nothing appears.
    let dir = tmp.path().join("app");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(fixture("v1/session-21.json"), dir.join("session-21.json")).unwrap();
    std::fs::copy(fixture("legacy/session-11.json"), dir.join("session-11.json")).unwrap();
    let before = tree(&dir);
    for args in [
        &["list"][..],
        &["get", "session-21"],
        &["show", "session-11"],
        &["status"],
        &["verify"],
        &["config"],
    ] {
        let out = sessionctl(&dir, args, None);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(tree(&dir), before, "{args:?} changed the store");
    }
}

#[test]
fn permissions_hold_for_what_already_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sessionctl(&dir, &["init"], None);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("0700"),
        "said once: {}",
        text(&out.stderr)
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let again = sessionctl(&dir, &["init"], None);
    assert!(!text(&again.stderr).contains("0700"), "only when it changed");
    // The app's files are 0644: their backups and restored originals must be 0600.
    let file = dir.join("session-21.json");
    std::fs::copy(fixture("v1/session-21.json"), &file).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(sessionctl(&dir, &["migrate"], None).status.success());
    let backups: Vec<_> = walk_files(&dir.join(".backup"));
    assert_eq!(backups.len(), 1);
    assert_eq!(mode(&backups[0]), 0o600);
    assert!(
        sessionctl(&dir, &["migrate", "--rollback"], None)
            .status
            .success()
    );
    assert_eq!(mode(&file), 0o600);
    // Deleting an id that was never stored leaves nothing behind.
    let out = sessionctl(&dir, &["delete", "never-stored"], None);
    assert!(out.status.success());
    assert!(!dir.join(".locks/never-stored.lock").exists());
    let out = sessionctl(&dir, &["retry", "never-stored"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.join(".locks/never-stored.lock").exists());
}

fn walk_files(root: &Path) -> Vec<std::path::PathBuf> {
    tree(root)
        .into_iter()
        .filter(|(_, bytes)| bytes != b"<dir>")
        .map(|(rel, _)| root.join(rel))
        .collect()
}

#[test]
fn get_json_refuses_what_is_not_json_and_reads_are_size_limited() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    init(&dir);
    std::fs::write(dir.join("torn-1.json"), b"{\"id\": \"torn").unwrap();
    let out = sessionctl(&dir, &["--json", "get", "torn-1"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not valid JSON"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing half-printed");
    // Without --json, get prints the bytes as they are: it is the raw view.
    let raw = sessionctl(&dir, &["get", "torn-1"], None);
    assert!(raw.status.success());
    // A file over the read limit is refused by name, never read into memory.
    let huge = std::fs::File::create(dir.join("big-1.json")).unwrap();
    huge.set_len(257 * 1024 * 1024).unwrap();
    let out = sessionctl(&dir, &["show", "big-1"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("big-1.json") && err.contains("limit"), "{err}");
}

#[test]
fn the_store_keeps_its_areas_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    init(&dir);
    let mut wrong = v1_doc("q-1");
    wrong["startTime"] = json!("soon");
    std::fs::write(dir.join("q-1.json"), serde_json::to_vec(&wrong).unwrap()).unwrap();
    std::fs::set_permissions(dir.join("q-1.json"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(put(&dir, &v1_doc("p-1")).status.success());
    assert!(sessionctl(&dir, &["recover"], None).status.success());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for area in [".quarantine", ".locks", ".trash"] {
        assert_eq!(mode(&dir.join(area)), 0o700, "{area}");
    }
    for file in walk_files(&dir) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
