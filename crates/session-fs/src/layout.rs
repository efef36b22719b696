//! What each name in a store directory means.

use std::ffi::OsStr;

use session_model::SessionId;

/// Moved-aside files that did not decode, each with a sidecar saying why.
pub const QUARANTINE_DIR: &str = ".quarantine";
/// Deleted sessions and superseded copies, until retention purges them.
pub const TRASH_DIR: &str = ".trash";
/// Original bytes of files a migration rewrote.
pub const BACKUP_DIR: &str = ".backup";
/// Small state files: the last cleanup summary, role holders.
pub const STATE_DIR: &str = ".state";
/// One lock file per session id, for cross-process read-modify-write.
pub const LOCKS_DIR: &str = ".locks";
/// Shared by every open store, exclusive for recovery.
pub const STORE_LOCK: &str = ".store.lock";

const LIVE_SUFFIX: &str = ".json";
const APP_TEMP_SUFFIX: &str = ".json.tmp";
const STORE_TEMP_SUFFIX: &str = ".tmp";
const STORE_TEMP_INFIX: &str = ".json.";

/// The meaning of one name in the store directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryName {
    /// `<id>.json`: a live session.
    Live(SessionId),
    /// `<id>.json.tmp`: the Electron app's temp file.
    AppTemp(SessionId),
    /// `.<id>.json.<unique>.tmp`: this store's temp file.
    StoreTemp(SessionId),
    /// Anything else (dot-directories, foreign files): never a session.
    Other,
}

/// Classifies a directory entry's name.
pub fn classify(name: &OsStr) -> EntryName {
    let Some(name) = name.to_str() else {
        return EntryName::Other;
    };
    if let Some(rest) = name.strip_prefix('.') {
        let Some(inner) = rest.strip_suffix(STORE_TEMP_SUFFIX) else {
            return EntryName::Other;
        };
        return match inner.rsplit_once(STORE_TEMP_INFIX) {
            Some((id, unique)) if !unique.is_empty() && !unique.contains('.') => SessionId::new(id)
                .map(EntryName::StoreTemp)
                .unwrap_or(EntryName::Other),
            _ => EntryName::Other,
        };
    }
    if let Some(id) = name.strip_suffix(APP_TEMP_SUFFIX) {
        return SessionId::new(id)
            .map(EntryName::AppTemp)
            .unwrap_or(EntryName::Other);
    }
    if let Some(id) = name.strip_suffix(LIVE_SUFFIX) {
        return SessionId::new(id)
            .map(EntryName::Live)
            .unwrap_or(EntryName::Other);
    }
    EntryName::Other
}

/// The name of a new store temp file for `id`; `unique` must not contain `.`.
pub fn store_temp_name(id: &SessionId, unique: &str) -> String {
    format!(".{id}{STORE_TEMP_INFIX}{unique}{STORE_TEMP_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SessionId {
        SessionId::new(s).unwrap()
    }

    #[test]
    fn names_are_classified() {
        let cases = [
            ("session-1.json", EntryName::Live(id("session-1"))),
            ("a.json.json", EntryName::Live(id("a.json"))),
            ("session-1.json.tmp", EntryName::AppTemp(id("session-1"))),
            (".session-1.json.123-4.tmp", EntryName::StoreTemp(id("session-1"))),
            (".a.json.json.9-9.tmp", EntryName::StoreTemp(id("a.json"))),
            (".quarantine", EntryName::Other),
            (".hidden.json", EntryName::Other),
            ("notes.txt", EntryName::Other),
            ("bad id.json", EntryName::Other),
            (".json", EntryName::Other),
        ];
        for (name, expected) in cases {
            assert_eq!(classify(OsStr::new(name)), expected, "{name}");
        }
    }

    #[test]
    fn temp_names_classify_back_to_their_id() {
        let id = id("x.json.tmp");
        let name = store_temp_name(&id, "42-7");
        assert_eq!(classify(OsStr::new(&name)), EntryName::StoreTemp(id));
    }
}
