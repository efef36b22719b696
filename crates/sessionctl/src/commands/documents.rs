//! `init`, `put`, `get`, `show`, `delete`: one document at a time.

use std::io::{IsTerminal, Read};
use std::path::Path;

use serde_json::json;
use session_fs::{DEFAULT_MAX_FILE_SIZE, FsError, SaveOutcome};
use session_store::{DecodeError, SchemaVersion, SessionStore, StoreError};

use crate::error::CliError;
use crate::output::Output;
use session_model::SessionId;

/// `init`: the store directory exists (0700) with its dot-directories.
pub(crate) fn init(store: &SessionStore, out: &Output) -> Result<(), CliError> {
    let dir = store.fs().dir().display().to_string();
    if let Some(was) = store.fs().secure_dir()? {
        out.warn(&format!(
            "{dir} was mode {was:o}; now 0700 (sessions hold patient data)"
        ));
    }
    Ok(out.result(&json!({ "dir": dir }), || format!("store ready at {dir}"))?)
}

/// The document `put` stores: from `file`, or stdin for `-` or none.
fn read_document(file: Option<&Path>) -> Result<(String, Vec<u8>), CliError> {
    let mut bytes = Vec::new();
    let origin = match file.filter(|f| f.as_os_str() != "-") {
        Some(path) => {
            let shown = path.display().to_string();
            let file = std::fs::File::open(path).map_err(|e| CliError::BadInput(format!("{shown}: {e}")))?;
            file.take(DEFAULT_MAX_FILE_SIZE + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| CliError::BadInput(format!("{shown}: {e}")))?;
            shown
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!(
                    "reading a session document from the terminal (end with Ctrl-D); or: sessionctl put FILE"
                );
            }
            stdin
                .lock()
                .take(DEFAULT_MAX_FILE_SIZE + 1)
                .read_to_end(&mut bytes)?;
            "stdin".to_owned()
        }
    };
    if bytes.len() as u64 > DEFAULT_MAX_FILE_SIZE {
        return Err(CliError::BadInput(format!(
            "{origin}: over the {DEFAULT_MAX_FILE_SIZE}-byte limit"
        )));
    }
    Ok((origin, bytes))
}

/// `put [--create] [FILE]`: decode the document (any known version) and store it as
/// the current one.
pub(crate) fn put(
    store: &SessionStore,
    out: &Output,
    create: bool,
    file: Option<&Path>,
) -> Result<(), CliError> {
    let (origin, bytes) = read_document(file)?;
    let mut session = match session_store::decode_with(&bytes, store.options()) {
        Ok(decoded) => decoded.session,
        Err(DecodeError::NewerVersion { version, .. }) => {
            return Err(CliError::BadInput(format!(
                "{origin}: version {} is newer than this build understands (up to {}); not stored",
                session_model::Printable(&version),
                SchemaVersion::CURRENT
            )));
        }
        Err(e) => return Err(CliError::BadInput(format!("{origin}: {e}"))),
    };
    // What cannot be written exactly is refused as bad input, and nothing is written.
    let refused_input = |e: StoreError| match e {
        StoreError::Encode(e) => CliError::BadInput(format!("{origin}: {e}")),
        other => other.into(),
    };
    let revision = if create {
        store
            .create(&mut session)
            .map_err(|e| match e {
                StoreError::Fs(FsError::AlreadyExists { id }) => {
                    CliError::Failed(format!("session {id} already exists (--create never replaces)"))
                }
                other => refused_input(other),
            })?
            .revision
    } else {
        match store.save(&mut session).map_err(refused_input)? {
            SaveOutcome::Written(stamp) => stamp.revision,
            // A save of this id called later, and already durable, superseded this one:
            // report the revision that is on disk now.
            _ => store
                .load(&session.id)?
                .map_or(0, |stored| stored.session.metadata.revision),
        }
    };
    let id = session.id.to_string();
    let version = SchemaVersion::CURRENT.as_str();
    Ok(out.result(&json!({ "id": id, "version": version }), || {
        format!("saved {id} (version {version}, revision {revision})")
    })?)
}

/// `get ID`: the stored bytes exactly as on disk.
pub(crate) fn get(store: &SessionStore, out: &Output, id: &SessionId) -> Result<(), CliError> {
    let store = store.fs();
    let bytes = store
        .read(id)?
        .ok_or_else(|| CliError::Failed(format!("no session {id}")))?;
    if out.json && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
        return Err(CliError::Failed(format!(
            "{}: not valid JSON; run `sessionctl verify`",
            store.path_of(id).display()
        )));
    }
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&bytes)?;
    if !bytes.ends_with(b"\n") {
        stdout.write_all(b"\n")?;
    }
    Ok(())
}

/// `show ID`: the document upgraded to the current version; nothing is written.
pub(crate) fn show(store: &SessionStore, id: &SessionId) -> Result<(), CliError> {
    let decoded = store
        .load(id)?
        .ok_or_else(|| CliError::Failed(format!("no session {id}")))?;
    let text = serde_json::to_string_pretty(&decoded.session).map_err(|e| CliError::Failed(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// `delete ID`: move the session to the trash.
pub(crate) fn delete(store: &SessionStore, out: &Output, id: &SessionId) -> Result<(), CliError> {
    let deleted = store.delete(id)?;
    Ok(out.result(&json!({ "deleted": deleted }), || {
        if deleted {
            format!("moved {id} to the trash")
        } else {
            format!("no session {id}; nothing to delete")
        }
    })?)
}
