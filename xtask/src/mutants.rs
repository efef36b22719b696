//! `cargo xtask mutants [--iterate [--re=REGEX]] [--report-only] [CRATE...]`: mutation testing with
//! cargo-mutants (installed when missing), each library crate judged by its own tests
//! only.
//!
//! Each run's outcomes are kept under version control, one compact file per crate
//! (`mutants/<crate>.json`: the source hash the run measured, the days it ran, every
//! mutant's name and outcome), and MUTANTS.md is written from those files alone: it is
//! output, never edited, and `--report-only` re-derives all of it. `--iterate` tests
//! only the mutants the kept outcomes do not show caught or unviable, and its outcomes
//! are merged into the kept ones. An equivalence claim names one mutant exactly, and a
//! claim that matches no missed mutant of its crate's kept outcomes fails the report.
//!
//! Too slow for CI: run it before a release and after changing a crate's core.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, has_cargo_tool, root};

/// The crates measured, lowest layer first, each with its target: the most missed
/// mutants, in percent of viable ones, its own tests may leave.
const CRATES: [(&str, f64); 10] = [
    ("session-model", 5.0),
    ("session-fs", 5.0),
    ("session-migrate", 5.0),
    ("session-store", 5.0),
    ("session-capture", 5.0),
    ("session-recovery", 10.0),
    ("session-workers", 10.0),
    ("session-daemon", 15.0),
    // `sessionctl`'s logic, moved into a library: the target the CLI's would have.
    ("session-station", 15.0),
    // The local API: HTTP glue over the libraries, judged like the daemon that serves it.
    ("session-api", 15.0),
];

/// Why the partial selection before a page's sort cannot change the page.
const SELECTION_ONLY_SAVES_WORK: &str = "the selection only saves work: `sort_unstable_by` then orders whatever is left, and a page never reads past \
         `end`, so skipping or widening the selection gives the same rows";

/// Why the settings' scalar reader never sees an unsigned number.
const VISIT_U64_UNREACHABLE: &str = "no layer holds an unsigned number: a TOML integer is an `i64` (figment keeps it \
     as one, read by `visit_i64`) and every other layer is text, so `visit_u64` is never called";

/// Why the clamp of a row's message count is never reached.
const MESSAGE_COUNT_CLAMP: &str = "a session would need 4,294,967,295 messages (over 12 GB of JSON, 48 times the default file-size limit) for the \
         clamp of its message count to matter: not equivalent in principle, unreachable in practice";

/// Missed mutants that cannot be caught, because they change nothing observable: (the
/// mutant's exact name, as cargo-mutants gives it, with file, line and column; why).
/// Reviewed for issue 26: the linger, `create_dir`, `create_new` and submission-log
/// claims were wrong (those mutants change what is written, an error's kind, a
/// descriptor flag or a log) and are gone; so are claims that named more than one mutant.
const WEBHOOK_LOG_WORDS: &str = "the guard only picks the words of the warning logged for a failed POST (\"timed out\" or \
\"network error\"): what is retried, under which key and when, is the same either way";

/// Why `^` for `|` changes no inotify mask.
const DISJOINT_FLAGS: &str =
    "each inotify flag is one bit of its own, so no two of them share a bit and `^` of them equals `|`";

/// Why `|` and `^` agree between `open(2)` flags that are bits of their own.
const DISJOINT_OPEN_FLAGS: &str = "`O_TMPFILE` (with its `O_DIRECTORY`), `O_DIRECT`, `O_WRONLY` and `O_CLOEXEC` share no bit, so `^` \
     of them equals `|`";

/// Why the `STATX_DIOALIGN` mask check can be loosened without effect.
const STATX_ZERO_FILLS: &str = "where the kernel does not report `STATX_DIOALIGN`, `statx` leaves both alignments 0 (it \
     zero-fills what it does not fill), and the next check refuses a sector of 0: `None` either way";

/// Why the sector-size bounds' mutants show nowhere here.
const SECTOR_OVER_A_PAGE: &str = "differs only for a filesystem whose direct writes need an alignment over 4,096 bytes, or exactly \
     4,096: this machine's and CI's need 512, and the check is reached only through a real file's `statx`: not \
     equivalent in principle, unobservable on this disk";

/// Why the direct write's error guard's mutants show nowhere here.
const DIRECT_WRITE_FAILING: &str = "differs only when a direct write fails: with `EINVAL` (an alignment the filesystem refuses after \
     reporting it) or another error (a failing device). Neither happens on a working disk that reports its \
     alignment, and no test can make the real file fail: not equivalent in principle, unobservable here";

const EQUIVALENT: &[(&str, &str)] = &[
    (
        "crates/session-model/src/bytes.rs:66:48: replace | with ^ in hex_bytes",
        "the high nibble is shifted left by 4 and the low one is under 16: the bits never overlap, so `|` and `^` agree",
    ),
    (
        "crates/session-fs/src/locks.rs:123:30: replace > with >= in LockTable::lock_for_save",
        "a waiting ticket is never the applied one (a ticket is applied only by its own holder, after it stopped \
         waiting), so `>` and `>=` agree",
    ),
    (
        "crates/session-fs/src/locks.rs:42:41: replace + with * in SlotState::uncovered",
        "the mutant counts from the applied ticket itself, which is never waiting: a save leaves `waiting` when it \
         takes the lock, before it can be applied",
    ),
    (
        "crates/session-fs/src/locks.rs:48:79: replace < with <= in SlotState::recently_contended",
        "the two differ only when the last release was exactly `HISTORY` ago to the nanosecond: not equivalent in \
         principle, unobservable in practice (either way a contention a second old is forgotten)",
    ),
    (
        "crates/session-fs/src/rooted.rs:278:23: replace match guard e.kind() == io::ErrorKind::NotFound with true \
         in <impl Storage for RootedStorage>::lock",
        "the retry creates the same name with the same no-follow, non-blocking flags: any error but NotFound recurs",
    ),
    (
        "crates/session-fs/src/storage.rs:491:23: replace match guard e.kind() == io::ErrorKind::NotFound with true \
         in <impl Storage for OsStorage>::lock",
        "the retry creates the same name with the same no-follow, non-blocking flags: any error but NotFound recurs",
    ),
    (
        "crates/session-fs/src/clock_keeper.rs:68:44: replace < with <= in Store::stamp_ms",
        "the two differ only when the cached record is exactly 60 s old to the nanosecond; either way the \
         record is at most a minute old: not equivalent in principle, unobservable in practice",
    ),
    (
        "crates/session-fs/src/clock.rs:381:52: replace > with >= in ClockRecord::corroborate",
        "the branch is reached only when the reading and the reference differ by more than `TOLERANCE_MS`, \
         so they are never equal there and `>` and `>=` agree",
    ),
    (
        "crates/session-fs/src/journal/spares.rs:95:15: replace < with <= in Store::spare_name",
        "with 128 spares kept the mutant names one more spare, which `keep_spare` then finds no room for and \
         removes: the same spares are kept and the same file removed, after one rename more",
    ),
    (
        "crates/session-fs/src/journal/spares.rs:122:40: replace < with <= in Store::keep_spare",
        "`spare_name` names no spare once 128 are kept, so this second check only matters when two threads \
         finish journals at once past that check: not equivalent in principle (it keeps the bound under that \
         race), unreachable from a test that cannot order the two threads",
    ),
    (
        "crates/session-fs/src/store/areas.rs:244:61: replace && with || in Store::area_dir",
        "every `Area::Backup` the API can make holds a run name `parse_backup_run` accepted (digits and dashes, \
         from `BackupRun::parse` or a listing filtered by it), for which `own_name` is true, so `&&` and `||` \
         agree on every area a caller can name",
    ),
    (
        "crates/session-fs/src/storage.rs:423:44: replace | with & in <impl Storage for OsStorage>::create_new",
        "the standard library opens every file with `O_CLOEXEC` on Linux whatever the custom flags say \
         (`tests/storage_edges.rs` checks the descriptor, and passes with this mutant), and `create_new`'s \
         `O_CREAT | O_EXCL` never follows a symlink in the last component, so dropping `O_NOFOLLOW` too changes \
         no open",
    ),
    (
        "crates/session-fs/src/storage.rs:28:9: replace WriteFile::preallocate -> io::Result<bool> with Ok(false)",
        "the default body is `Ok(false)` already (after ignoring `len`): the mutant is the code",
    ),
    (
        "crates/session-fs/src/storage.rs:204:9: replace Storage::remove_held_lock -> io::Result<bool> with Ok(false)",
        "the default body is `Ok(false)` already (after ignoring `path`): the mutant is the code",
    ),
    (
        "crates/session-fs/src/storage.rs:344:16: replace > with >= in <impl WriteFile for OsFile>::preallocate",
        "at `len == size` it writes an empty run of zeros at the end of the file, which changes nothing; the \
         sync after it happens either way",
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:137:37: replace | with ^ in OverwriteSync::flush_file",
        DISJOINT_OPEN_FLAGS,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:137:54: replace | with ^ in OverwriteSync::flush_file",
        DISJOINT_OPEN_FLAGS,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:258:28: replace | with ^ in DirectWriter::open",
        DISJOINT_OPEN_FLAGS,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:258:45: replace | with ^ in DirectWriter::open",
        DISJOINT_OPEN_FLAGS,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:246:46: replace | with ^ in DirectWriter::open",
        "`STATX_DIOALIGN` and `STATX_SIZE` are one bit each, different ones: `^` of them equals `|`",
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:312:43: replace | with ^ in write_and_wait",
        "`sync_file_range`'s three flags are one bit each, different ones (1, 2 and 4): `^` of them equals `|`",
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:312:73: replace | with ^ in write_and_wait",
        "`sync_file_range`'s three flags are one bit each, different ones (1, 2 and 4): `^` of them equals `|`",
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:249:27: replace & with | in DirectWriter::open",
        STATX_ZERO_FILLS,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:249:27: replace & with ^ in DirectWriter::open",
        STATX_ZERO_FILLS,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:253:24: replace || with && in DirectWriter::open",
        SECTOR_OVER_A_PAGE,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:253:47: replace || with && in DirectWriter::open",
        SECTOR_OVER_A_PAGE,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:253:34: replace > with == in DirectWriter::open",
        SECTOR_OVER_A_PAGE,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:253:34: replace > with >= in DirectWriter::open",
        SECTOR_OVER_A_PAGE,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:278:16: replace > with >= in DirectWriter::write",
        "at `end == size` the mutant looks at the file's size once more (one `fstat`) and finds the same size: \
         the sectors still fit, and the write goes direct either way",
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:294:23: replace match guard e.raw_os_error() == Some(libc::EINVAL) with true in DirectWriter::write",
        DIRECT_WRITE_FAILING,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:294:23: replace match guard e.raw_os_error() == Some(libc::EINVAL) with false in DirectWriter::write",
        DIRECT_WRITE_FAILING,
    ),
    (
        "crates/session-fs/src/overwrite_sync.rs:294:40: replace == with != in DirectWriter::write",
        DIRECT_WRITE_FAILING,
    ),
    (
        "crates/session-fs/src/store/mod.rs:211:9: replace Store::options -> OpenOptions with Default::default()",
        "the body is `OpenOptions::default()`: the mutant is the code",
    ),
    (
        "crates/session-daemon/src/watch.rs:21:9: replace | with ^ in store_events",
        DISJOINT_FLAGS,
    ),
    (
        "crates/session-daemon/src/watch.rs:22:9: replace | with ^ in store_events",
        DISJOINT_FLAGS,
    ),
    (
        "crates/session-daemon/src/watch.rs:23:9: replace | with ^ in store_events",
        DISJOINT_FLAGS,
    ),
    (
        "crates/session-daemon/src/watch.rs:24:9: replace | with ^ in store_events",
        DISJOINT_FLAGS,
    ),
    (
        "crates/session-daemon/src/watch.rs:25:9: replace | with ^ in store_events",
        DISJOINT_FLAGS,
    ),
    (
        "crates/session-daemon/src/watch.rs:26:9: replace | with ^ in store_events",
        DISJOINT_FLAGS,
    ),
    (
        "crates/session-daemon/src/watch.rs:27:9: replace | with ^ in store_events",
        DISJOINT_FLAGS,
    ),
    (
        "crates/session-daemon/src/watch.rs:130:48: replace | with ^ in read_events",
        DISJOINT_FLAGS,
    ),
    (
        "crates/session-daemon/src/watch.rs:130:73: replace | with ^ in read_events",
        DISJOINT_FLAGS,
    ),
    (
        "crates/session-daemon/src/watch.rs:112:31: replace * with + in read_events",
        "a 1,088-byte buffer still holds the largest inotify event (16 bytes and a name of at most 255): the same \
         events are read, in more reads",
    ),
    (
        "crates/session-daemon/src/settings/values.rs:18:13: replace scalar::<impl Visitor<'_> for Scalar>::expecting \
         -> fmt::Result with Ok(Default::default())",
        "serde's expected text goes only into the error figment returns, and a refusal's words are taken from the \
         key table instead (`SettingsError::Refused::expected`), so this text is never shown",
    ),
    (
        "crates/session-daemon/src/settings/values.rs:24:13: replace scalar::<impl Visitor<'_> for Scalar>::visit_u64 \
         -> Result<String, E> with Ok(String::new())",
        VISIT_U64_UNREACHABLE,
    ),
    (
        "crates/session-daemon/src/settings/values.rs:24:13: replace scalar::<impl Visitor<'_> for Scalar>::visit_u64 \
         -> Result<String, E> with Ok(\"xyzzy\".into())",
        VISIT_U64_UNREACHABLE,
    ),
    (
        "crates/session-daemon/src/settings/mod.rs:431:26: replace match guard self.error.is_none() with true in \
         ConfigurationBuilder::push",
        "once a layer's error is kept, `resolve` returns it before it looks at any layer, so whether later layers \
         are pushed changes nothing",
    ),
    (
        "crates/session-daemon/src/settings/file_edit.rs:28:31: replace match guard existing.is_value() with true in \
         with_settings",
        "a key that is a table, not a value, has no decoration to keep: the arm then assigns the item in its place, \
         which is what the other arm's `doc[key] = item` does",
    ),
    (
        "crates/session-daemon/src/metrics.rs:69:29: replace < with <= in StationCounters::store_bytes",
        "a size read exactly 60 s ago to the nanosecond is reused once more instead of read again: the figure is \
         one a scrape could have seen either way (a cache's age, not a value)",
    ),
    (
        "crates/session-daemon/src/alert_webhook.rs:151:76: replace > with >= in Told::tell",
        "`next_try` is a reading of the monotonic clock taken before `due` (when the alert is taken in), or `due` \
         plus a wait of at least `check_every`: the two are equal only on a clock that did not advance between \
         two readings, and then the POST goes one check later, under the same key",
    ),
    (
        "crates/session-daemon/src/alert_webhook.rs:181:39: replace match guard e.is_timeout() with true in Told::tell",
        WEBHOOK_LOG_WORDS,
    ),
    (
        "crates/session-daemon/src/alert_webhook.rs:181:39: replace match guard e.is_timeout() with false in Told::tell",
        WEBHOOK_LOG_WORDS,
    ),
    // These two name mutants of the source session-capture's kept outcomes measured, which
    // is older than its source (MUTANTS.md says stale): the next full run finds `key`'s
    // comparison at pcap/mod.rs:222 and no such comparison left in `leftover`.
    (
        "crates/session-capture/src/pcap/reassembly.rs:52:20: replace > with >= in Direction::leftover",
        "at a gap of 0 the held segment starts where the stream is: `missing` grows by 0 and `next` is set to \
         the value it has, so `>` and `>=` agree",
    ),
    (
        "crates/session-capture/src/pcap/mod.rs:149:10: replace <= with > in key",
        "either way a connection's two directions get one key (its ends in a fixed order, ascending or \
         descending), and the key is only looked up, never shown or ordered by",
    ),
    (
        "crates/session-migrate/src/codec.rs:283:61: replace && with || in confirmed",
        "the quoted-name look is a filter only: whatever it lets through is parsed as the last version and kept only \
         when the parsed `_metadata.version` states it, else decoded the full way, so letting an unquoted \
         occurrence through changes what is parsed twice, never what is decoded (an unquoted name at the tail's \
         first byte, which the other two mutants of the line would index before, is `tests/current_version.rs`'s)",
    ),
    (
        "crates/session-migrate/src/codec.rs:506:25: replace match guard back == element with true in encode_streamed",
        "no `Element` that serializes reads back as another: every known field is required and round-trips \
         exactly, and an unknown field named like a known one makes the read fail (a duplicate field), which the \
         other arm refuses (`tests/streamed.rs` checks that case)",
    ),
    (
        "crates/session-migrate/src/exact.rs:28:42: replace != with == in first_inexact_number",
        "the loop's `plain &= is_ascii_digit()` takes the first byte too, so a leading `-` clears `plain` either \
         way; starting it false for a digit only sends plain integers through `round_trips`, which passes every \
         one of at most 19 digits (they fit a u64): the same verdict, more work",
    ),
    (
        "crates/session-migrate/src/exact.rs:35:31: replace - with + in first_inexact_number",
        "`i + start` is at least `i - start`, so fewer plain integers skip `round_trips`, which passes every plain \
         integer of at most 19 digits anyway: the same verdict, more work",
    ),
    (
        "crates/session-migrate/src/exact.rs:58:22: replace match guard value.is_finite() with true in round_trips",
        "serde_json writes a non-finite `f64` as `null`, which never equals a number's text, so the verdict is \
         false either way (and a text that parsed holds no such number)",
    ),
    (
        "crates/session-capture/src/relay.rs:52:25: replace * with +",
        "the most one read takes from a socket becomes 1,088 bytes instead of 64 KiB: a chunk is split into more \
         reads, each recorded before it is forwarded, and the bytes, elements and sessions are the same",
    ),
    (
        "crates/session-capture/src/relay.rs:408:41: replace > with >= in pump",
        "also hands a chunk that completed nothing and missed nothing to `apply`, which then has no event to \
         record and no byte to count: only a blocking-thread hand-off more",
    ),
    (
        "crates/session-capture/src/relay.rs:420:39: replace match guard !ended.is_empty() with true in pump",
        "also spawns `store_ended` for an empty list, which stores nothing and counts nothing",
    ),
    (
        "crates/session-capture/src/relay.rs:492:19: replace > with >= in apply",
        "also calls `lis_missed(since, 0)` on an open session while the LIS is gone; every session open then is \
         marked already (by `lis_gone`, or at its `Begin`), so adding 0 bytes to the same mark changes nothing",
    ),
    (
        "crates/session-station/src/index.rs:179:63: replace - with + in Rows::pack",
        MESSAGE_COUNT_CLAMP,
    ),
    (
        "crates/session-station/src/index.rs:179:63: replace - with / in Rows::pack",
        MESSAGE_COUNT_CLAMP,
    ),
    (
        "crates/session-station/src/index.rs:223:9: replace Rows::shrink with ()",
        "`shrink_to_fit` gives back spare capacity: memory only, no row, order or count changes",
    ),
    (
        "crates/session-station/src/index.rs:393:9: replace SessionIndex::settle with ()",
        "`settle` only shrinks the maps to fit after start-up: memory only, no row, order or count changes",
    ),
    (
        "crates/session-station/src/index.rs:547:16: replace > with < in SessionIndex::page",
        SELECTION_ONLY_SAVES_WORK,
    ),
    (
        "crates/session-station/src/index.rs:547:27: replace < with == in SessionIndex::page",
        SELECTION_ONLY_SAVES_WORK,
    ),
    (
        "crates/session-station/src/index.rs:547:27: replace < with > in SessionIndex::page",
        SELECTION_ONLY_SAVES_WORK,
    ),
    (
        "crates/session-station/src/index.rs:547:27: replace < with <= in SessionIndex::page",
        SELECTION_ONLY_SAVES_WORK,
    ),
    (
        "crates/session-station/src/index.rs:548:49: replace - with / in SessionIndex::page",
        "selecting the `end`-th row instead of the `end - 1`-th still puts the `end` smallest before it, and the \
         truncation keeps exactly those",
    ),
    (
        "crates/session-station/src/index.rs:595:51: replace < with <= in SessionIndex::counts",
        "the two differ only when the cached listing is exactly 10 s old to the nanosecond; either way a listing \
         is reused for at most 10 s (`tests/index.rs` waits past them): not equivalent in principle, \
         unobservable in practice",
    ),
    (
        "crates/session-station/src/index.rs:238:9: replace Rows::page_by_device -> Option<Page> with None",
        "the sorting path then gives the page, and it is the same page (`tests/pages.rs` compares the two at every \
         offset, both ways): only slower",
    ),
    (
        "crates/session-station/src/index.rs:256:71: replace < with <= in Rows::page_by_device",
        "also walks the start order for sessions without an analyzer when every session has one, and finds none: \
         the same page, more work",
    ),
    (
        "crates/session-station/src/tally.rs:47:9: replace <impl PartialOrd for NaturalId>::partial_cmp -> \
         Option<std::cmp::Ordering> with None",
        "the ids are keys of a `BTreeMap`, which orders by `Ord::cmp`; nothing calls `partial_cmp`",
    ),
    (
        "crates/session-recovery/src/recover.rs:459:36: replace == with != in read_every_live",
        "only the batches' size changes (each finding is sent alone, then an empty batch): every finding still \
         reaches the caller once, and recovery's outcome does not depend on how they were grouped",
    ),
    (
        "crates/session-recovery/src/recover.rs:459:63: replace >= with < in read_every_live",
        "only the batches' size changes (below 1 MiB of files each finding is sent alone): every finding still \
         reaches the caller once, and recovery's outcome does not depend on how they were grouped",
    ),
    (
        "crates/session-recovery/src/recover.rs:281:30: replace << with >>",
        "the byte bound becomes 0, so each finding is sent alone: only the batches' size changes, every finding \
         still reaches the caller once, and recovery's outcome does not depend on how they were grouped",
    ),
    (
        "crates/session-recovery/src/recover.rs:458:27: replace += with *= in read_every_live",
        "the bytes counted stay 0, so batches are bounded by their count alone (256 findings): every finding \
         still reaches the caller once; not equivalent in principle (a batch of large sessions may then hold more \
         than 1 MiB of them), which a test sees only by measuring memory",
    ),
];

/// What a note on the whole crate says beside its list (why something is not generated).
const CRATE_NOTES: &[(&str, &str)] = &[(
    "session-fs",
    "Every binary `|` in `rooted.rs` and `storage.rs` joins open(2) flags, which are distinct bits: \
     `.cargo/mutants.toml` does not generate its `^` mutants (they give the same flags).",
)];

/// One mutant and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    mutant: String,
    /// `caught`, `missed`, `timeout` or `unviable`.
    outcome: String,
}

/// A crate's kept outcomes: `mutants/<crate>.json`.
#[derive(Debug, Clone, PartialEq, Default)]
struct Kept {
    /// The hash of the source the outcomes were measured on.
    source: String,
    /// The days of the runs that made them (a run, then `--iterate` runs).
    runs: Vec<String>,
    /// By mutant name.
    outcomes: BTreeMap<String, String>,
}

impl Kept {
    fn path(krate: &str) -> PathBuf {
        root().join("mutants").join(format!("{krate}.json"))
    }

    fn load(krate: &str) -> Result<Option<Kept>, String> {
        let path = Self::path(krate);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        Self::parse(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<Kept, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let strings = |key: &str| -> Vec<String> {
            value[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        let mut outcomes = BTreeMap::new();
        for o in value["outcomes"].as_array().into_iter().flatten() {
            let (Some(mutant), Some(outcome)) = (o["mutant"].as_str(), o["outcome"].as_str()) else {
                return Err(format!("an outcome without mutant or outcome: {o}"));
            };
            outcomes.insert(mutant.to_owned(), outcome.to_owned());
        }
        Ok(Kept {
            source: value["source"].as_str().unwrap_or_default().to_owned(),
            runs: strings("runs"),
            outcomes,
        })
    }

    /// One outcome per line, so that a run's diff reads mutant by mutant.
    fn render(&self, krate: &str) -> String {
        let mut text = format!(
            "{{\n  \"crate\": {},\n  \"source\": {},\n  \"runs\": {},\n  \"outcomes\": [\n",
            serde_json::Value::from(krate),
            serde_json::Value::from(self.source.as_str()),
            serde_json::Value::from(self.runs.clone()),
        );
        let lines: Vec<String> = self
            .outcomes
            .iter()
            .map(|(mutant, outcome)| {
                format!(
                    "    {{\"mutant\": {}, \"outcome\": {}}}",
                    serde_json::Value::from(mutant.as_str()),
                    serde_json::Value::from(outcome.as_str())
                )
            })
            .collect();
        text.push_str(&lines.join(",\n"));
        text.push_str("\n  ]\n}\n");
        text
    }

    fn named(&self, outcome: &str) -> Vec<&str> {
        self.outcomes
            .iter()
            .filter(|(_, o)| *o == outcome)
            .map(|(m, _)| m.as_str())
            .collect()
    }

    fn count(&self, outcome: &str) -> usize {
        self.outcomes.values().filter(|o| *o == outcome).count()
    }
}

/// The outcomes of one cargo-mutants run, from its `outcomes.json`.
fn run_outcomes(outcomes_json: &Path) -> Result<(String, Vec<Outcome>), String> {
    let text =
        std::fs::read_to_string(outcomes_json).map_err(|e| format!("{}: {e}", outcomes_json.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", outcomes_json.display()))?;
    let day = value["start_time"]
        .as_str()
        .unwrap_or("")
        .chars()
        .take(10)
        .collect();
    let mut found = Vec::new();
    for outcome in value["outcomes"].as_array().into_iter().flatten() {
        let Some(mutant) = outcome["scenario"]["Mutant"]["name"].as_str() else {
            continue; // the baseline
        };
        let kind = match outcome["summary"].as_str().unwrap_or("") {
            "CaughtMutant" => "caught",
            "MissedMutant" => "missed",
            "Timeout" => "timeout",
            "Unviable" => "unviable",
            other => return Err(format!("{mutant}: an outcome this report does not know: {other}")),
        };
        found.push(Outcome {
            mutant: mutant.to_owned(),
            outcome: kind.to_owned(),
        });
    }
    Ok((day, found))
}

/// The hash of what a crate's mutants are made from: every file under its `src/` and
/// its `Cargo.toml`, by relative path, in order (SHA-256, the first 12 hex digits).
pub(crate) fn source_hash(krate: &str) -> Result<String, String> {
    use sha2::Digest;
    let dir = root().join("crates").join(krate);
    let mut files = vec![dir.join("Cargo.toml")];
    let mut stack = vec![dir.join("src")];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).map_err(|e| format!("{}: {e}", at.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = sha2::Sha256::new();
    for file in files {
        let rel = file
            .strip_prefix(&dir)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        hasher.update((rel.len() as u64).to_le_bytes());
        hasher.update(rel.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let digest = hasher.finalize();
    Ok(digest.iter().take(6).map(|b| format!("{b:02x}")).collect())
}

/// The crates whose kept outcomes were not measured on their current source (or that
/// have none), each with why: `cargo xtask ci` warns of them and `cargo xtask release`
/// refuses while there are any.
pub(crate) fn stale_rows() -> Result<Vec<(String, String)>, String> {
    let mut stale = Vec::new();
    for (krate, _) in CRATES {
        let now = source_hash(krate)?;
        let why = match Kept::load(krate)? {
            None => format!("no kept outcomes (mutants/{krate}.json): not run since outcomes are kept"),
            Some(kept) if kept.source != now => {
                format!("run on source {}, the source is now {now}", kept.source)
            }
            Some(_) => continue,
        };
        stale.push((krate.to_owned(), why));
    }
    Ok(stale)
}

/// Runs cargo-mutants on `krate`, judged by its own tests, into `out_dir`; with
/// `previously_caught`, only the other mutants (`--iterate`), and of those only the ones
/// matching `only`, when given.
fn run_cargo_mutants(
    krate: &str,
    out_dir: &Path,
    previously_caught: Option<&[&str]>,
    only: Option<&str>,
) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(out_dir);
    let listed = out_dir.join("mutants.out");
    std::fs::create_dir_all(&listed).map_err(|e| format!("{}: {e}", listed.display()))?;
    let mut args = vec![
        "mutants",
        "--package",
        krate,
        "--test-package",
        krate,
        "--all-features",
    ];
    if let Some(caught) = previously_caught {
        let file = listed.join("previously_caught.txt");
        std::fs::write(&file, caught.join("\n")).map_err(|e| format!("{}: {e}", file.display()))?;
        args.push("--iterate");
        if let Some(only) = only {
            args.extend(["--re", only]);
        }
    }
    eprintln!("==> cargo {}", args.join(" "));
    // Exit status 2 means "some mutants were missed": that is the report, not a failure.
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(&args)
        .arg("--output")
        .arg(out_dir)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cargo mutants: {e}"))?;
    if !matches!(status.code(), Some(0 | 2 | 3)) {
        return Err(format!("cargo mutants -p {krate} failed ({status})"));
    }
    Ok(())
}

/// The kept outcomes after a run: a whole run replaces them; an `--iterate` run's
/// outcomes replace those of the same mutants, on the same source only.
fn merged(previous: Option<Kept>, source: String, day: String, run: Vec<Outcome>, iterate: bool) -> Kept {
    let mut kept = match previous {
        Some(previous) if iterate && previous.source == source => previous,
        _ => Kept {
            source,
            ..Kept::default()
        },
    };
    kept.runs.push(if iterate {
        format!("{day} (--iterate)")
    } else {
        day
    });
    for o in run {
        kept.outcomes.insert(o.mutant, o.outcome);
    }
    kept
}

/// MUTANTS.md from the kept outcomes of every crate. Fails on an equivalence claim that
/// names no missed mutant of a crate whose outcomes are kept.
fn report(kept: &[(&str, f64, Option<Kept>, String)]) -> Result<String, String> {
    let mut text = String::from(
        "# Mutation testing\n\nWritten by `cargo xtask mutants` from the outcomes kept in `mutants/<crate>.json`; \
         never edited by hand (`cargo xtask mutants --report-only` writes it again). Each crate's mutants are \
         judged by that crate's own tests only. A mutant claimed equivalent counts as missed in `missed %`; \
         `not equivalent %` leaves the claims out. `source` is the hash of the crate's `src/` and `Cargo.toml` \
         the outcomes were measured on; `current` says whether that is still the crate's source (`cargo xtask ci` \
         warns of every stale row, `cargo xtask release` refuses to tag while there is one).\n\n\
         | crate | runs | caught | missed | of them claimed equivalent | timed out | unviable | missed % of viable | \
         not equivalent % | target | within | source | current |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut lists = String::new();
    let mut unmatched = Vec::new();
    for (krate, target, kept, now) in kept {
        let Some(kept) = kept else {
            text.push_str(&format!(
                "| {krate} | no kept outcomes | | | | | | | | {target} % | unknown | | no |\n"
            ));
            continue;
        };
        let missed = kept.named("missed");
        let claims: Vec<&(&str, &str)> = EQUIVALENT
            .iter()
            .filter(|(name, _)| name.starts_with(&format!("crates/{krate}/")))
            .collect();
        for (name, _) in &claims {
            if !missed.contains(name) {
                unmatched.push(name.to_string());
            }
        }
        let equivalent = claims.len();
        let (caught, timeout, unviable) = (
            kept.count("caught"),
            kept.count("timeout"),
            kept.count("unviable"),
        );
        let viable = caught + missed.len() + timeout;
        let share = |n: usize| {
            if viable == 0 {
                0.0
            } else {
                100.0 * n as f64 / viable as f64
            }
        };
        let missed_share = share(missed.len());
        text.push_str(&format!(
            "| {krate} | {} | {caught} | {} | {equivalent} | {timeout} | {unviable} | {missed_share:.1} % | {:.1} % | \
             {target} % | {} | {} | {} |\n",
            kept.runs.join(", "),
            missed.len(),
            share(missed.len().saturating_sub(equivalent)),
            if missed_share <= *target { "yes" } else { "**no**" },
            kept.source,
            if &kept.source == now { "yes" } else { "**no: stale**" },
        ));
        let timed_out = kept.named("timeout");
        let note = CRATE_NOTES.iter().find(|(k, _)| k == krate).map(|(_, n)| *n);
        if missed.is_empty() && timed_out.is_empty() && note.is_none() {
            continue;
        }
        lists.push_str(&format!("\n## {krate}\n\n"));
        if let Some(note) = note {
            lists.push_str(&format!("{note}\n\n"));
        }
        for name in &missed {
            match EQUIVALENT.iter().find(|(claimed, _)| claimed == name) {
                Some((_, why)) => lists.push_str(&format!("- missed: `{name}`: claimed equivalent, {why}\n")),
                None => lists.push_str(&format!("- missed: `{name}`\n")),
            }
        }
        for name in &timed_out {
            lists.push_str(&format!("- timed out: `{name}`\n"));
        }
    }
    if !unmatched.is_empty() {
        return Err(format!(
            "equivalence claims that name no missed mutant of their crate's kept outcomes (review and remove or \
             correct them in xtask/src/mutants.rs): {unmatched:#?}"
        ));
    }
    text.push_str(&lists);
    Ok(text)
}

/// Whether MUTANTS.md is exactly what the kept outcomes make (not edited by hand, not
/// left behind by a change to the claims): `cargo xtask ci` warns when it is not.
pub(crate) fn report_is_current() -> Result<bool, String> {
    let mut all = Vec::new();
    for (krate, target) in CRATES {
        all.push((krate, target, Kept::load(krate)?, source_hash(krate)?));
    }
    let written = std::fs::read_to_string(root().join("MUTANTS.md")).unwrap_or_default();
    Ok(report(&all)? == written)
}

/// Runs cargo-mutants over the chosen crates (all when none), keeps their outcomes, and
/// writes MUTANTS.md from every crate's kept outcomes.
pub(crate) fn mutants(args: &[String]) -> Result<(), String> {
    let report_only = args.iter().any(|a| a == "--report-only");
    let iterate = args.iter().any(|a| a == "--iterate");
    // `--re=REGEX`: an `--iterate` run tests only the mutants (not yet caught) whose
    // names match; the others keep their outcomes.
    let only = args.iter().find_map(|a| a.strip_prefix("--re="));
    let named: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if let Some(unknown) = args.iter().find(|a| {
        a.starts_with("--")
            && !["--report-only", "--iterate"].contains(&a.as_str())
            && !a.starts_with("--re=")
    }) {
        return Err(format!("mutants: unknown option {unknown}"));
    }
    if only.is_some() && !iterate {
        return Err("mutants: --re= narrows an --iterate run only (a whole run tests every mutant)".into());
    }
    if let Some(unknown) = named
        .iter()
        .find(|a| !CRATES.iter().any(|(c, _)| *c == a.as_str()))
    {
        let known: Vec<&str> = CRATES.iter().map(|(c, _)| *c).collect();
        return Err(format!(
            "mutants: no library crate named {unknown:?} (one of {})",
            known.join(", ")
        ));
    }
    if !report_only && !has_cargo_tool("mutants") {
        eprintln!("mutants: installing cargo-mutants");
        cargo(&["install", "--locked", "cargo-mutants"], &[])?;
    }
    if !report_only {
        for (krate, _) in CRATES
            .iter()
            .filter(|(c, _)| named.is_empty() || named.iter().any(|n| n == c))
        {
            let source = source_hash(krate)?;
            let previous = Kept::load(krate)?;
            let caught: Option<Vec<String>> = match (&previous, iterate) {
                (Some(p), true) if p.source == source => Some(
                    p.outcomes
                        .iter()
                        .filter(|(_, o)| *o == "caught" || *o == "unviable")
                        .map(|(m, _)| m.clone())
                        .collect(),
                ),
                _ => None,
            };
            if only.is_some() && caught.is_none() {
                return Err(format!(
                    "mutants: {krate}'s kept outcomes are not of its current source: --re= narrows a run \
                     of the same source only (run it whole)"
                ));
            }
            let out_dir = root().join("target/mutants").join(krate);
            let caught_names: Option<Vec<&str>> =
                caught.as_ref().map(|c| c.iter().map(String::as_str).collect());
            run_cargo_mutants(krate, &out_dir, caught_names.as_deref(), only)?;
            let (day, run) = run_outcomes(&out_dir.join("mutants.out/outcomes.json"))?;
            let kept = merged(previous, source, day, run, caught.is_some());
            let path = Kept::path(krate);
            std::fs::create_dir_all(root().join("mutants")).map_err(|e| e.to_string())?;
            std::fs::write(&path, kept.render(krate)).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let mut all = Vec::new();
    for (krate, target) in CRATES {
        all.push((krate, target, Kept::load(krate)?, source_hash(krate)?));
    }
    let text = report(&all)?;
    let path = root().join("MUTANTS.md");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(source: &str, outcomes: &[(&str, &str)]) -> Kept {
        Kept {
            source: source.into(),
            runs: vec!["2026-12-05".into()],
            outcomes: outcomes
                .iter()
                .map(|(m, o)| (m.to_string(), o.to_string()))
                .collect(),
        }
    }

    #[test]
    fn kept_outcomes_read_back_as_written() {
        let k = kept(
            "0123456789ab",
            &[
                ("crates/a/src/x.rs:1:2: replace \"a\" with b", "missed"),
                ("y", "caught"),
            ],
        );
        assert_eq!(Kept::parse(&k.render("a")).unwrap(), k);
    }

    #[test]
    fn an_iterate_run_replaces_only_its_mutants_and_only_on_the_same_source() {
        let previous = kept(
            "aaaaaaaaaaaa",
            &[("m1", "caught"), ("m2", "missed"), ("m3", "timeout")],
        );
        let run = vec![Outcome {
            mutant: "m2".into(),
            outcome: "caught".into(),
        }];
        let same = merged(
            Some(previous.clone()),
            "aaaaaaaaaaaa".into(),
            "2026-12-06".into(),
            run.clone(),
            true,
        );
        assert_eq!(same.count("caught"), 2);
        assert_eq!(same.named("timeout"), ["m3"]);
        assert_eq!(same.runs, ["2026-12-05", "2026-12-06 (--iterate)"]);
        // Another source: nothing of the old run counts.
        let other = merged(
            Some(previous.clone()),
            "bbbbbbbbbbbb".into(),
            "2026-12-06".into(),
            run.clone(),
            true,
        );
        assert_eq!(other.outcomes.len(), 1);
        // A whole run replaces everything.
        let whole = merged(
            Some(previous),
            "aaaaaaaaaaaa".into(),
            "2026-12-06".into(),
            run,
            false,
        );
        assert_eq!(whole.outcomes.len(), 1);
        assert_eq!(whole.runs, ["2026-12-06"]);
    }

    #[test]
    fn rows_give_shares_of_viable_mutants_claims_counted_as_missed_and_stale_sources_said() {
        let claimed = EQUIVALENT[0].0;
        let model = kept(
            "aaaaaaaaaaaa",
            &[
                (claimed, "missed"),
                ("crates/session-model/src/x.rs:1:1: replace == with !=", "missed"),
                ("c1", "caught"),
                ("c2", "caught"),
                ("t", "timeout"),
                ("u", "unviable"),
            ],
        );
        let text = report(&[
            ("session-model", 5.0, Some(model), "bbbbbbbbbbbb".into()),
            ("session-fs", 5.0, None, "cccccccccccc".into()),
        ])
        .unwrap();
        assert!(
            text.contains(
                "| session-model | 2026-12-05 | 2 | 2 | 1 | 1 | 1 | 40.0 % | 20.0 % | 5 % | **no** | aaaaaaaaaaaa | **no: stale** |"
            ),
            "{text}"
        );
        assert!(text.contains("| session-fs | no kept outcomes |"), "{text}");
        assert!(
            text.contains(&format!("- missed: `{claimed}`: claimed equivalent, ")),
            "{text}"
        );
        assert!(text.contains("- timed out: `t`"), "{text}");
    }

    #[test]
    fn a_claim_that_names_no_missed_mutant_fails_the_report() {
        let claim = EQUIVALENT[0].0;
        let krate = claim.split('/').nth(1).unwrap_or_default();
        let caught_now = kept("aaaaaaaaaaaa", &[(claim, "caught")]);
        let err = report(&[(krate, 5.0, Some(caught_now), "aaaaaaaaaaaa".into())]).unwrap_err();
        assert!(err.contains(EQUIVALENT[0].0), "{err}");
    }

    #[test]
    fn every_claim_names_one_mutant_of_a_measured_crate_exactly() {
        for (name, why) in EQUIVALENT {
            let krate = name
                .strip_prefix("crates/")
                .and_then(|r| r.split('/').next())
                .unwrap_or("");
            assert!(CRATES.iter().any(|(c, _)| *c == krate), "{name}");
            let place: Vec<&str> = name.splitn(4, ':').collect();
            assert!(
                place.len() == 4 && place[1].parse::<u32>().is_ok() && place[2].parse::<u32>().is_ok(),
                "file:line:col: mutation, exactly: {name}"
            );
            assert!(!why.is_empty());
        }
    }

    #[test]
    fn a_narrowed_run_is_refused_unless_it_iterates() {
        let refused = mutants(&["--re=confirmed".into(), "session-migrate".into()]).unwrap_err();
        assert!(refused.contains("--iterate"), "{refused}");
        let unknown = mutants(&["--re".into(), "confirmed".into()]).unwrap_err();
        assert!(unknown.contains("unknown option --re"), "{unknown}");
    }

    #[test]
    fn the_source_hash_follows_the_source() {
        let a = source_hash("session-model").unwrap();
        assert_eq!(a, source_hash("session-model").unwrap(), "deterministic");
        assert_eq!(a.len(), 12);
        assert_ne!(a, source_hash("session-fs").unwrap());
    }
}
