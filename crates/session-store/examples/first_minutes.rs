//! A consuming team's first minutes with `session-store`: the typed store. One handle,
//! built once with its options, for load, save, update, delete and iteration.
//!
//! `cargo run -p session-store --example first_minutes`

use session_store::{DecodeOptions, MigrateOptions, SessionStore, StoredEntry, decode, refused};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // A file the Electron app left, in its 1.0.0 format.
    std::fs::write(
        dir.path().join("old-1.json"),
        br#"{"id": "old-1", "startTime": 1700000000000, "isComplete": true, "elements": [], "messages": [],
             "submissionStatus": "pending", "persistedUntil": 1702592000000,
             "_metadata": {"version": "1.0.0", "savedAt": 1700000000000, "retentionDays": 30}}"#,
    )?;
    let store = SessionStore::open(dir.path(), DecodeOptions::default().retention_days(90))?;

    // Any known version in; the current version out, durably.
    let mut session = decode(br#"{"id": "new-1", "startTime": 1700000000000, "isComplete": true}"#)?.session;
    store.save(&mut session)?;

    // Locked read-modify-write through the model's state machine.
    let id = session.id.clone();
    let ((), updated) = store.update(&id, |s| s.submission.ignore().map_err(refused(&id)))?;
    println!("{} is now {}", updated.id, updated.submission.status);

    // Every file, already sorted into valid, newer-version and damaged.
    for entry in store.entries()? {
        match entry {
            StoredEntry::Valid(decoded) => println!("{} (read as {})", decoded.session.id, decoded.from),
            StoredEntry::Newer { id, version, .. } => println!("{id}: written by a newer build ({version})"),
            StoredEntry::Damaged { id, error } => println!("{id}: damaged: {error}"),
            _ => {}
        }
    }

    // The store-wide upgrade, originals kept in .backup/.
    let report = store.migrate(&MigrateOptions::default(), &|_, _| {})?;
    println!("migrated {}, up to date {}", report.migrated, report.up_to_date);
    Ok(())
}
