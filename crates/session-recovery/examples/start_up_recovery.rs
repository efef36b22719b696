//! A consuming team's first minutes with `session-recovery`: what to run at start-up.
//!
//! `cargo run -p session-recovery --example start_up_recovery`

use session_fs::Store;
use session_store::{DecodeOptions, SessionStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // What a crash leaves: a torn file, and the app's orphaned temp file.
    std::fs::write(dir.path().join("torn-1.json"), br#"{"id": "torn-1", "startT"#)?;
    std::fs::write(
        dir.path().join("app-1.json.tmp"),
        br#"{"id": "app-1", "startTime": 1700000000000, "isComplete": true}"#,
    )?;
    // Recovery needs the store to itself: no writer may be filling a temp file.
    let store = SessionStore::new(
        Store::options().exclusive().open(dir.path())?,
        DecodeOptions::default(),
    );
    println!(
        "before: {} problem(s)",
        session_recovery::verify(&store)?.problems.len()
    );
    let report = session_recovery::recover(&store)?;
    for moved in &report.moved {
        println!("{:?} {}: {}", moved.action, moved.file, moved.reason);
    }
    println!(
        "after: {} problem(s); nothing was deleted",
        session_recovery::verify(&store)?.problems.len()
    );
    Ok(())
}
