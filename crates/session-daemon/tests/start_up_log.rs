//! What start-up's pass says of its upgrades: a line when it upgraded or failed to
//! upgrade anything, none on a store already current.

use session_daemon::Claimed;
use session_store::DecodeOptions;
use test_support::CapturedLogs;

/// The log lines of one recovery pass over `dir`.
fn logged_recovery(dir: &std::path::Path) -> String {
    let captured = CapturedLogs::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let claimed = Claimed::claim(dir, DecodeOptions::default(), "test").unwrap();
        claimed.recover(|_, _| {}, |_| {}).unwrap();
    });
    captured.text()
}

fn legacy(dir: &std::path::Path, id: &str) {
    let doc = format!(r#"{{"id": "{id}", "startTime": 1000, "isComplete": true, "messages": ["MSH|1"]}}"#);
    std::fs::write(dir.join(format!("{id}.json")), doc).unwrap();
}

const LINE: &str = "outdated sessions upgraded as recovery read them";

/// The pass's line about its upgrades, which must be there.
fn pass_line(logs: &str) -> &str {
    logs.lines()
        .find(|l| l.contains(LINE))
        .unwrap_or_else(|| panic!("{logs}"))
}

#[test]
fn the_pass_says_what_it_upgraded_and_nothing_on_a_current_store() {
    let dir = tempfile::tempdir().unwrap();
    for n in 0..3 {
        legacy(dir.path(), &format!("old-{n}"));
    }
    let logs = logged_recovery(dir.path());
    let line = pass_line(&logs);
    assert!(line.contains("migrated=3") && line.contains("failed=0"), "{line}");
    assert!(!logs.contains("MSH"), "no message content: {logs}");

    // Upgraded now: the next start has nothing to say about it.
    let logs = logged_recovery(dir.path());
    assert!(!logs.contains(LINE), "{logs}");
}

#[test]
fn the_pass_says_so_when_it_could_upgrade_nothing() {
    let dir = tempfile::tempdir().unwrap();
    legacy(dir.path(), "old-0");
    // A directory where its lock file belongs: the one upgrade fails.
    std::fs::create_dir_all(dir.path().join(".locks").join("old-0.lock")).unwrap();
    let logs = logged_recovery(dir.path());
    let line = pass_line(&logs);
    assert!(line.contains("migrated=0") && line.contains("failed=1"), "{line}");
}
