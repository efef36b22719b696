//! What each name in a store directory means.

use std::ffi::OsStr;

use session_model::SessionId;

/// Moved-aside files that did not decode, each with a sidecar saying why.
pub(crate) const QUARANTINE_DIR: &str = ".quarantine";
/// Deleted sessions and superseded copies, until retention purges them.
pub(crate) const TRASH_DIR: &str = ".trash";
/// Original bytes of files a migration rewrote.
pub(crate) const BACKUP_DIR: &str = ".backup";
/// Small state files: the last cleanup summary, role holders.
pub(crate) const STATE_DIR: &str = ".state";
/// One lock file per session id, for cross-process read-modify-write.
pub(crate) const LOCKS_DIR: &str = ".locks";
/// Journals of sessions being captured (`<id>.journal`), until they are folded into
/// session files.
pub(crate) const JOURNAL_DIR: &str = ".journal";
/// Every dot-directory of the store: each must be a real directory, never a symlink.
pub(crate) const AREA_DIRS: [&str; 6] = [
    LOCKS_DIR,
    TRASH_DIR,
    QUARANTINE_DIR,
    BACKUP_DIR,
    STATE_DIR,
    JOURNAL_DIR,
];
/// Shared by every open store, exclusive for recovery.
pub(crate) const STORE_LOCK: &str = ".store.lock";

const LIVE_SUFFIX: &str = ".json";
const APP_TEMP_SUFFIX: &str = ".json.tmp";
const STORE_TEMP_SUFFIX: &str = ".tmp";
const STORE_TEMP_INFIX: &str = ".json.";

/// The meaning of one name in the store directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryName {
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
pub(crate) fn classify(name: &OsStr) -> EntryName {
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

/// The longest file name the store derives (Linux's `NAME_MAX`).
pub(crate) const NAME_MAX: usize = 255;

/// `{prefix}{name}{suffix}` within [`NAME_MAX`] bytes for any `name`: a name too long
/// keeps its start and ends in `~` and a hash of the whole, so it stays distinct.
pub(crate) fn fitted_name(prefix: &str, name: &str, suffix: &str) -> String {
    let full = format!("{prefix}{name}{suffix}");
    if full.len() <= NAME_MAX {
        return full;
    }
    // FNV-1a: stable across builds, so the same name always shortens the same way.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let tail = format!("~{hash:016x}");
    let room = NAME_MAX.saturating_sub(prefix.len() + suffix.len() + tail.len());
    let mut cut = room.min(name.len());
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{prefix}{}{tail}{suffix}", &name[..cut])
}

/// Suffix of the sidecar that says why a file was quarantined.
pub(crate) const SIDECAR_SUFFIX: &str = ".why.json";

/// A name the store gave a file it moved aside (`.trash/`, `.quarantine/`):
/// `<ms>.<pid>-<ms>-<n>.<original name>`. Parsed strictly: anything else in those
/// directories was not put there by the store, and retention never touches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AsideName<'a> {
    /// When the file was moved aside, epoch milliseconds.
    pub moved_at: u64,
    /// The name it had before (possibly shortened, see [`fitted_name`]).
    pub original: &'a str,
}

/// A decimal number as the store writes one into a name: 1 to 20 ASCII digits.
fn digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a name made by the store for a file moved aside; `None` for any other name.
pub(crate) fn parse_aside_name(name: &str) -> Option<AsideName<'_>> {
    let (moved_at, rest) = name.split_once('.')?;
    let (unique, original) = rest.split_once('.')?;
    let mut parts = unique.split('-');
    let unique_ok = (0..3).all(|_| parts.next().is_some_and(digits)) && parts.next().is_none();
    if !digits(moved_at) || !unique_ok || original.is_empty() {
        return None;
    }
    Some(AsideName {
        moved_at: moved_at.parse().ok()?,
        original,
    })
}

/// A backup run's name: `<13-digit ms>-<pid>-<ms>-<n>`; `None` for any other name.
pub(crate) fn parse_backup_run(name: &str) -> Option<u64> {
    let mut parts = name.split('-');
    let at = parts.next().filter(|s| digits(s))?;
    let rest_ok = (0..3).all(|_| parts.next().is_some_and(digits)) && parts.next().is_none();
    rest_ok.then(|| at.parse().ok()).flatten()
}

/// The name of a new store temp file for `id`; `unique` must not contain `.`.
pub(crate) fn store_temp_name(id: &SessionId, unique: &str) -> String {
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
            (".a.json..tmp", EntryName::Other),
            (".a.json.1.2.tmp", EntryName::Other),
        ];
        for (name, expected) in cases {
            assert_eq!(classify(OsStr::new(name)), expected, "{name}");
        }
    }

    #[test]
    fn derived_names_always_fit() {
        let long = "x".repeat(300);
        let a = fitted_name("1700000000000.1-2-3.", &long, SIDECAR_SUFFIX);
        let b = fitted_name("1700000000000.1-2-3.", &format!("{long}y"), SIDECAR_SUFFIX);
        assert_eq!(a.len(), NAME_MAX);
        assert!(a.ends_with(SIDECAR_SUFFIX) && a.starts_with("1700000000000.1-2-3.xxx"));
        assert_ne!(a, b, "two long names stay distinct");
        assert_eq!(fitted_name("p.", "short", ".s"), "p.short.s");
        // The hash is FNV-1a of the whole name: the same name shortens the same way in
        // every build (a retention run must recognise what an earlier one wrote).
        assert_eq!(
            fitted_name("", &long, ""),
            format!("{}~e78ddf9f1ba85555", "x".repeat(238))
        );
        // Multi-byte characters are never cut in half: with an odd room the cut moves
        // back to the last whole character.
        let wide = "é".repeat(200);
        let fitted = fitted_name("p", &wide, "");
        assert_eq!(
            fitted,
            format!("p{}~{}", "é".repeat(118), &fitted[fitted.len() - 16..])
        );
        assert_eq!(fitted.len(), NAME_MAX - 1);
    }

    #[test]
    fn aside_names_parse_strictly() {
        let parsed = parse_aside_name("1700000000000.12-1700000000000-3.session-1.json").unwrap();
        assert_eq!(parsed.moved_at, 1_700_000_000_000);
        assert_eq!(parsed.original, "session-1.json");
        for foreign in [
            "2023-report.pdf",
            "12.notes.txt",
            "1700000000000.1-2.x",
            "1700000000000.1-2-3-4.x",
            "1700000000000.1-2-3.",
            "a1.1-2-3.x",
            "99999999999999999999999.1-2-3.x",
            "1700000000000.a-2-3.x",
            "1700000000000.-2-3.x",
            "1700000000000.1-2-.x",
        ] {
            assert_eq!(parse_aside_name(foreign), None, "{foreign}");
        }
        assert_eq!(parse_backup_run("1700000000000-1-2-3"), Some(1_700_000_000_000));
        assert_eq!(parse_backup_run("2023-photos"), None);
        assert_eq!(parse_backup_run("1-2-3-x"), None);
    }

    #[test]
    fn temp_names_classify_back_to_their_id() {
        let id = id("x.json.tmp");
        let name = store_temp_name(&id, "42-7");
        assert_eq!(classify(OsStr::new(&name)), EntryName::StoreTemp(id));
    }
}
