//! Document values never reach errors, logs or `--json` output: a wrongly typed field
//! holding recognisable text, in a document of every version, is named by its path and
//! its kind of problem only, by every command, at every log level.

mod common;

use common::*;
use serde_json::{Value, json};

const PLANTED: &str = "PATIENT-DOE-JANE-19800101";

/// One damaged document per version, the planted text in a wrongly typed field.
fn planted_documents() -> Vec<(&'static str, Value)> {
    let v1: Value = serde_json::from_slice(&std::fs::read(fixture("v1/session-21.json")).unwrap()).unwrap();
    let legacy: Value =
        serde_json::from_slice(&std::fs::read(fixture("legacy/session-11.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut doc = legacy.clone();
    doc["id"] = json!("p-legacy");
    doc["startTime"] = json!(PLANTED);
    out.push(("legacy", doc));
    let mut doc = v1.clone();
    doc["id"] = json!("p-v1");
    doc["elements"][0]["timestamp"] = json!(PLANTED);
    out.push(("1.0.0", doc));
    let mut doc = v1.clone();
    doc["id"] = json!("p-v1-status");
    doc["submissionStatus"] = json!(PLANTED);
    out.push(("1.0.0 enum", doc));
    let mut doc = v1;
    doc["id"] = json!("p-v2");
    let bytes = sessionctl_put_and_read(&doc);
    let mut v2: Value = serde_json::from_slice(&bytes).unwrap();
    v2["id"] = json!("p-v2");
    v2["submission"]["attempts"] = json!(PLANTED);
    out.push(("2.0.0", v2.clone()));
    let mut v2_id = v2;
    v2_id["id"] = json!(7);
    v2_id["deviceIP"] = json!({ "name": PLANTED });
    out.push(("2.0.0 id", v2_id));
    out
}

/// A valid `2.0.0` rendering of `doc`, as the store writes it.
fn sessionctl_put_and_read(doc: &Value) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let out = sessionctl(tmp.path(), &["put"], Some(&serde_json::to_vec(doc).unwrap()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::read(tmp.path().join(format!("{}.json", doc["id"].as_str().unwrap()))).unwrap()
}

fn assert_clean(what: &str, out: &std::process::Output) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !text(bytes).contains(PLANTED),
            "{what} {stream} leaks a document value:\n{}",
            text(bytes)
        );
    }
}

#[test]
fn no_command_repeats_a_document_value() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    for (version, doc) in planted_documents() {
        let bytes = serde_json::to_vec(&doc).unwrap();
        let put = sessionctl(&dir, &["put"], Some(&bytes));
        assert_eq!(put.status.code(), Some(2), "{version}: {}", text(&put.stderr));
        assert_clean(&format!("put {version}"), &put);
        let put = sessionctl(&dir, &["--json", "put"], Some(&bytes));
        assert_clean(&format!("put --json {version}"), &put);
        let name = match doc["id"].as_str() {
            Some(id) => format!("{id}.json"),
            None => "p-v2-id.json".to_owned(),
        };
        std::fs::write(dir.join(name), &bytes).unwrap();
    }
    let ids = ["p-legacy", "p-v1", "p-v1-status", "p-v2", "p-v2-id"];
    for json in [false, true] {
        let flag: &[&str] = if json { &["--json"] } else { &[] };
        let mut runs: Vec<Vec<&str>> = vec![
            vec!["list"],
            vec!["status"],
            vec!["verify"],
            vec!["migrate", "--dry-run"],
        ];
        for id in ids {
            runs.push(vec!["show", id]);
            runs.push(vec!["retry", id]);
        }
        for args in runs {
            let all: Vec<&str> = flag.iter().copied().chain(args.iter().copied()).collect();
            let out = command()
                .arg("--dir")
                .arg(&dir)
                .args(&all)
                .env("RUST_LOG", "trace")
                .output()
                .unwrap();
            assert_clean(&format!("{all:?}"), &out);
        }
    }
    // The daemon, logging everything in both formats: recovery quarantines them all.
    for format in ["json", "text"] {
        let daemon = Daemon::start_logging(&dir, &["--set", &format!("log_format={format}")], "trace");
        daemon.wait_for_log("serving");
        let (_, _, log) = daemon.stop();
        let log = log.join("\n");
        assert!(
            !log.contains(PLANTED),
            "daemon log ({format}) leaks a document value:\n{log}"
        );
    }
    let quarantined = std::fs::read_dir(dir.join(".quarantine")).unwrap().count();
    assert_eq!(quarantined, 2 * ids.len(), "each file and its sidecar");
    let recover = sessionctl(&dir, &["--json", "recover"], None);
    assert_clean("recover", &recover);
    // The sidecars say why without the value, too.
    for entry in std::fs::read_dir(dir.join(".quarantine")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".why.json") {
            let why = std::fs::read_to_string(&path).unwrap();
            assert!(!why.contains(PLANTED), "{}: {why}", path.display());
        }
    }
}

#[test]
fn the_full_serde_message_is_there_for_whoever_asks() {
    let doc = json!({"id": "x", "startTime": PLANTED});
    let err = session_store::decode(&serde_json::to_vec(&doc).unwrap()).unwrap_err();
    assert!(!err.to_string().contains(PLANTED), "{err}");
    assert!(!format!("{err:?}").contains(PLANTED), "{err:?}");
    assert!(err.detail_with_values().unwrap().contains(PLANTED));
}
