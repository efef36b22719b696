//! A consuming team's first minutes with `session-fs`: durable bytes under session ids.
//! (To store typed sessions, use `session_migrate::SessionStore`, built on this.)
//!
//! `cargo run -p session-fs --example durable_bytes`

use session_fs::{SaveOutcome, Store};
use session_model::SessionId;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("sessions"))?;
    let id: SessionId = "session-1".parse()?;

    // create never replaces; save replaces durably (temp, fsync, rename, directory
    // fsync). The encoder receives the revision to record.
    store.create(&id, |stamp| {
        Ok::<_, std::io::Error>(
            format!(
                r#"{{"id":"session-1","_metadata":{{"revision":{}}}}}"#,
                stamp.revision
            )
            .into_bytes(),
        )
    })?;
    let outcome = store.save(&id, |stamp| {
        Ok::<_, std::io::Error>(
            format!(
                r#"{{"id":"session-1","_metadata":{{"revision":{}}}}}"#,
                stamp.revision
            )
            .into_bytes(),
        )
    })?;
    if let SaveOutcome::Written(stamp) = outcome {
        println!("saved revision {}", stamp.revision);
    }
    println!(
        "on disk: {}",
        String::from_utf8_lossy(&store.read(&id)?.unwrap_or_default())
    );

    // Hostile ids never reach the filesystem: they are not SessionIds.
    println!(
        "'../etc/passwd' as an id: {}",
        "../etc/passwd".parse::<SessionId>().unwrap_err()
    );

    // delete moves to .trash/; a read-only handle changes nothing, and never creates.
    println!("deleted: {}", store.delete(&id)?);
    let missing = Store::options().read_only().open(dir.path().join("typo"));
    println!("read-only open of a missing store: {}", missing.unwrap_err());
    Ok(())
}
