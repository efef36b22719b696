//! The daemon's in-memory summary of every session: what lists, filters and `status`
//! need, so that they cost what they return instead of a read of the whole store.
//!
//! Derived state, never the truth: built from the files at start-up (recovery's one pass
//! hands it every session), kept current by the directory watch (each change re-reads
//! that one file), rebuilt from the files whenever the watch may have missed something.
//! Readings are taken and applied one at a time, so a slow reader never puts back an
//! older state. Without a watch the daemon does not keep one and lists read the
//! files.
//!
//! Memory is what bounds it (64 MiB for a 100,000-session daemon): each session is a
//! packed [`Entry`] (strings that repeat, such as addresses and versions, are shared;
//! times are plain numbers), keyed by a shared id; a [`Row`] is made only for the rows a
//! page returns.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use session_model::{SessionId, SubmissionStatus};
use session_store::{DecodeError, Decoded, SessionStore, StoreError, StoredEntry};

use crate::commands::list::{Row, natural_cmp, newer_row};
use crate::commands::status::{Counted, FileProblems, Tally};

/// Every session's [`Entry`], ordered by start time.
#[derive(Debug, Default)]
pub(crate) struct SessionIndex {
    inner: RwLock<Rows>,
    /// The last count of temps and odd names (a listing of the whole directory), reused
    /// for [`FILES_REUSED`].
    files: std::sync::Mutex<Option<(Instant, FileProblems)>>,
    /// Held while a file is read and its row replaced.
    reading: std::sync::Mutex<()>,
}

/// How long `status` reuses its count of temp files and odd names.
const FILES_REUSED: std::time::Duration = std::time::Duration::from_secs(10);

/// A row's place in start order: (start time, id).
type Key = (u64, Arc<str>);

/// "Not known" in an entry's time fields.
const NONE: u64 = u64::MAX;

fn packed(time: Option<u64>) -> u64 {
    time.unwrap_or(NONE)
}

fn unpacked(time: u64) -> Option<u64> {
    (time != NONE).then_some(time)
}

/// One session as the index keeps it: a [`Row`], packed.
#[derive(Debug)]
struct Entry {
    id: Arc<str>,
    version: Arc<str>,
    status_word: Option<Arc<str>>,
    status: Option<SubmissionStatus>,
    device: Option<Arc<str>>,
    lis: Option<Arc<str>>,
    last_error: Option<Box<str>>,
    start: u64,
    end: u64,
    persisted_until: u64,
    last_attempt: u64,
    next_attempt: u64,
    revision: u64,
    messages: u32,
    complete: Option<bool>,
    interrupted: bool,
    not_received_by_lis: bool,
    newer: bool,
}

impl Entry {
    fn counted(&self) -> Counted<'_> {
        Counted {
            id: &self.id,
            status: self.status,
            newer: self.newer,
            is_complete: self.complete,
            interrupted: self.interrupted,
            not_received_by_lis: self.not_received_by_lis,
            start_time: unpacked(self.start),
            last_error: self.last_error.as_deref(),
            last_attempt_at: unpacked(self.last_attempt),
            next_attempt_at: unpacked(self.next_attempt),
        }
    }

    fn key(&self) -> Key {
        (self.start, self.id.clone())
    }

    fn row(&self) -> Row {
        Row {
            id: self.id.to_string(),
            version: self.version.to_string(),
            start_time: unpacked(self.start),
            message_count: (self.messages != u32::MAX).then_some(self.messages as usize),
            submission_status: self.status_word.as_deref().map(str::to_owned),
            persisted_until: unpacked(self.persisted_until),
            is_complete: self.complete,
            interrupted: self.interrupted,
            not_received_by_lis: self.not_received_by_lis,
            last_error: self.last_error.as_deref().map(str::to_owned),
            device_ip: self.device.as_deref().map(str::to_owned),
            lis_ip: self.lis.as_deref().map(str::to_owned),
            end_time: unpacked(self.end),
            last_attempt_at: unpacked(self.last_attempt),
            next_attempt_at: unpacked(self.next_attempt),
            status: self.status,
            revision: self.revision,
            newer: self.newer,
        }
    }
}

#[derive(Debug, Default)]
struct Rows {
    by_id: HashMap<Arc<str>, Entry>,
    /// Every key in start order: the default order costs no sort.
    by_start: BTreeSet<Key>,
    /// The keys of each analyzer's rows: a filter by analyzer walks only its own rows.
    /// (A status filter walks them all: a few milliseconds at 100,000, where a set per
    /// status would cost megabytes.)
    by_device: HashMap<Arc<str>, BTreeSet<Key>>,
    /// One copy of each string that repeats (versions, statuses, addresses).
    shared: HashSet<Arc<str>>,
    /// `status`'s counts, kept as rows come and go.
    tally: Tally,
    /// Files that do not decode (counted by `status`, never listed).
    damaged: HashSet<String>,
}

impl Rows {
    fn share(&mut self, text: &str) -> Arc<str> {
        if let Some(kept) = self.shared.get(text) {
            return kept.clone();
        }
        let kept: Arc<str> = Arc::from(text);
        self.shared.insert(kept.clone());
        kept
    }

    fn pack(&mut self, row: Row) -> Entry {
        let id = self
            .by_id
            .get_key_value(row.id.as_str())
            .map_or_else(|| Arc::from(row.id.as_str()), |(id, _)| id.clone());
        Entry {
            id,
            version: self.share(&row.version),
            status_word: row.submission_status.as_deref().map(|s| self.share(s)),
            status: row.status,
            device: row.device_ip.as_deref().map(|d| self.share(d)),
            lis: row.lis_ip.as_deref().map(|l| self.share(l)),
            last_error: row.last_error.map(String::into_boxed_str),
            start: row.start_time.unwrap_or(0),
            end: packed(row.end_time),
            persisted_until: packed(row.persisted_until),
            last_attempt: packed(row.last_attempt_at),
            next_attempt: packed(row.next_attempt_at),
            revision: row.revision,
            messages: row
                .message_count
                .map_or(u32::MAX, |n| n.min(u32::MAX as usize - 1) as u32),
            complete: row.is_complete,
            interrupted: row.interrupted,
            not_received_by_lis: row.not_received_by_lis,
            newer: row.newer,
        }
    }

    fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.by_id.remove(id)?;
        let key = entry.key();
        self.by_start.remove(&key);
        self.tally.remove(&entry.counted());
        if let Some(device) = &entry.device
            && let Some(keys) = self.by_device.get_mut(device)
        {
            keys.remove(&key);
            if keys.is_empty() {
                self.by_device.remove(device);
            }
        }
        Some(entry)
    }

    /// Takes `row` in, in place of any row of its id.
    fn put(&mut self, row: Row) {
        let entry = self.pack(row);
        self.remove(&entry.id);
        self.damaged.remove(&*entry.id);
        let key = entry.key();
        self.tally.add(&entry.counted());
        if let Some(device) = &entry.device {
            self.by_device
                .entry(device.clone())
                .or_default()
                .insert(key.clone());
        }
        self.by_start.insert(key);
        self.by_id.insert(entry.id.clone(), entry);
    }

    /// Gives back what the build's growth left over (a rebuild, start-up's pass).
    fn shrink(&mut self) {
        self.by_id.shrink_to_fit();
        self.by_device.shrink_to_fit();
        self.shared.shrink_to_fit();
    }

    fn revision_of(&self, id: &str) -> Option<(u64, bool)> {
        self.by_id.get(id).map(|e| (e.revision, e.newer))
    }

    /// The entries a query's filters may pass, in start order: an analyzer's own, or
    /// every one, within the time range.
    fn candidates<'a>(&'a self, query: &ListQuery) -> Box<dyn DoubleEndedIterator<Item = &'a Entry> + 'a> {
        let from: Key = (query.from.unwrap_or(0), Arc::from(""));
        let range = match query.to {
            Some(to) => (
                std::ops::Bound::Included(from),
                std::ops::Bound::Excluded((to.saturating_add(1), Arc::from(""))),
            ),
            None => (std::ops::Bound::Included(from), std::ops::Bound::Unbounded),
        };
        let keys = match &query.device {
            Some(device) => self.by_device.get(device.as_str()),
            None => Some(&self.by_start),
        };
        match keys {
            Some(keys) => Box::new(keys.range(range).filter_map(|(_, id)| self.by_id.get(id))),
            None => Box::new(std::iter::empty()),
        }
    }
}

/// What a list asks for: filters, an order, a page.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ListQuery {
    /// Only this submission status.
    pub status: Option<SubmissionStatus>,
    /// Only this analyzer address (exact).
    pub device: Option<String>,
    /// Only sessions started at or after this, epoch ms.
    pub from: Option<u64>,
    /// Only sessions started at or before this, epoch ms.
    pub to: Option<u64>,
    /// The order.
    pub sort: SortKey,
    /// Largest first (the newest first, by default).
    pub descending: bool,
    /// Rows to skip.
    pub offset: usize,
    /// Rows to return at most.
    pub limit: usize,
}

/// A column a list may be sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum SortKey {
    /// `startTime` (the default; ties by id).
    #[default]
    Start,
    /// The id, in natural order.
    Id,
    /// The submission status.
    Status,
    /// The analyzer's address.
    Device,
    /// How many messages.
    Messages,
    /// The last delivery attempt.
    LastAttempt,
}

impl std::str::FromStr for SortKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "startTime" => SortKey::Start,
            "id" => SortKey::Id,
            "status" => SortKey::Status,
            "deviceIP" => SortKey::Device,
            "messageCount" => SortKey::Messages,
            "lastAttemptAt" => SortKey::LastAttempt,
            other => {
                return Err(format!(
                    "sort must be one of startTime, id, status, deviceIP, messageCount, lastAttemptAt, not {:?}",
                    session_model::printable(other)
                ));
            }
        })
    }
}

impl ListQuery {
    /// Whether `entry` passes the filters.
    fn matches(&self, entry: &Entry) -> bool {
        self.status
            .is_none_or(|s| entry.status_word.as_deref() == Some(s.as_str()))
            && self
                .device
                .as_deref()
                .is_none_or(|d| entry.device.as_deref() == Some(d))
            && self.from.is_none_or(|from| entry.start >= from)
            && self.to.is_none_or(|to| entry.start <= to)
    }
}

/// One page of a list.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    /// How many sessions pass the filters.
    pub total: usize,
    /// Those on this page, in order.
    pub rows: Vec<Row>,
}

impl SessionIndex {
    /// An empty index.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Rows> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Rows> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Start-up's pass is over: gives back what the index's growth left over.
    pub(crate) fn settle(&self) {
        self.write().shrink();
    }

    /// Takes in a session as read from its file by someone else (recovery's pass): a
    /// reading of an older revision than the row has is ignored.
    pub(crate) fn observe(&self, decoded: &Decoded) {
        let row = Row::of(decoded);
        let mut rows = self.write();
        if let Some((revision, newer)) = rows.revision_of(&row.id)
            && !newer
            && revision > row.revision
        {
            return;
        }
        rows.put(row);
    }

    /// Takes in what a change through this daemon just saved (its own copy, so the
    /// file is not read again); a change that failed re-reads the file instead.
    pub(crate) fn saved(
        &self,
        store: &SessionStore,
        id: &SessionId,
        saved: Result<&session_model::Session, &StoreError>,
    ) {
        match saved {
            Ok(session) => {
                let _one_at_a_time = self.reading.lock().unwrap_or_else(|p| p.into_inner());
                let decoded = session_store::Chained {
                    session: session.clone(),
                    from: <session_model::Session as session_model::Version>::SCHEMA,
                };
                self.write().put(Row::of(&decoded));
            }
            Err(_) => self.refresh(store, id),
        }
    }

    /// Reads `id`'s file again: stored, gone, damaged or from a newer build. Readings
    /// are taken and applied one at a time, so the last one taken is the one kept, whoever
    /// wrote the file (an outside writer's revision need not grow).
    pub(crate) fn refresh(&self, store: &SessionStore, id: &SessionId) {
        let _one_at_a_time = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        match store.load(id) {
            Ok(Some(decoded)) => self.write().put(Row::of(&decoded)),
            Ok(None) => {
                let mut rows = self.write();
                rows.remove(id.as_str());
                rows.damaged.remove(id.as_str());
            }
            Err(StoreError::Decode {
                source: DecodeError::NewerVersion { version, .. },
                ..
            }) => match store.fs().read(id) {
                Ok(Some(bytes)) => self.write().put(newer_row(id.to_string(), version, &bytes)),
                _ => tracing::debug!(session = %id, "a newer session vanished while indexed"),
            },
            Err(StoreError::Decode { .. } | StoreError::Fs(session_fs::FsError::TooLarge { .. })) => {
                let mut rows = self.write();
                rows.remove(id.as_str());
                rows.damaged.insert(id.to_string());
            }
            // Not a regular file any more (a FIFO, a symlink, a directory put there):
            // no session to list; `status` counts it among the odd names.
            Err(StoreError::Fs(session_fs::FsError::Io { source, .. }))
                if source.kind() == std::io::ErrorKind::InvalidInput =>
            {
                let mut rows = self.write();
                rows.remove(id.as_str());
                *self.files.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
            // An I/O error says nothing about the file: the row stays as it was.
            Err(e) => tracing::warn!(session = %id, error = %e, "could not re-read a session for the index"),
        }
    }

    /// Rebuilds every row from the files (the watch may have missed changes).
    pub(crate) fn rebuild(&self, store: &SessionStore) -> Result<(), StoreError> {
        let _one_at_a_time = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        let mut fresh = Rows::default();
        *self.files.lock().unwrap_or_else(|p| p.into_inner()) = None;
        for entry in store.entries()? {
            match entry {
                StoredEntry::Valid(decoded) => fresh.put(Row::of(&decoded)),
                StoredEntry::Newer {
                    id,
                    version,
                    document,
                } => fresh.put(newer_row(id.to_string(), version, &document)),
                StoredEntry::Damaged { id, .. } => {
                    fresh.damaged.insert(id.to_string());
                }
                _ => {}
            }
        }
        fresh.shrink();
        *self.write() = fresh;
        Ok(())
    }

    /// The page `query` asks for. The default order walks the index; another order
    /// puts in order only the rows up to the page's end.
    pub(crate) fn page(&self, query: &ListQuery) -> Page {
        let rows = self.read();
        let unfiltered =
            query.status.is_none() && query.device.is_none() && query.from.is_none() && query.to.is_none();
        if query.sort == SortKey::Start {
            let walk = rows.candidates(query);
            let walk: Box<dyn Iterator<Item = &Entry>> = if query.descending {
                Box::new(walk.rev())
            } else {
                walk
            };
            // Without filters the total is known and only the page is walked.
            if unfiltered {
                return Page {
                    total: rows.by_id.len(),
                    rows: walk
                        .skip(query.offset)
                        .take(query.limit)
                        .map(Entry::row)
                        .collect(),
                };
            }
            let mut total = 0;
            let mut page = Vec::new();
            for entry in walk.filter(|e| query.matches(e)) {
                if total >= query.offset && total - query.offset < query.limit {
                    page.push(entry.row());
                }
                total += 1;
            }
            return Page { total, rows: page };
        }
        let mut matching: Vec<&Entry> = rows.candidates(query).filter(|e| query.matches(e)).collect();
        let by_column = |a: &&Entry, b: &&Entry| {
            let order = match query.sort {
                SortKey::Start => std::cmp::Ordering::Equal,
                SortKey::Id => natural_cmp(&a.id, &b.id),
                SortKey::Status => a.status_word.cmp(&b.status_word),
                SortKey::Device => a.device.cmp(&b.device),
                SortKey::Messages => a.messages.cmp(&b.messages),
                SortKey::LastAttempt => unpacked(a.last_attempt).cmp(&unpacked(b.last_attempt)),
            };
            // Ties in start order, then by id: every order is total, so pages never overlap.
            let order = order
                .then_with(|| a.start.cmp(&b.start))
                .then_with(|| a.id.cmp(&b.id));
            if query.descending { order.reverse() } else { order }
        };
        let total = matching.len();
        // Only the rows up to the page's end are put in order.
        let end = query.offset.saturating_add(query.limit).min(total);
        if end > 0 && end < total {
            matching.select_nth_unstable_by(end - 1, by_column);
            matching.truncate(end);
        }
        matching.sort_unstable_by(by_column);
        Page {
            total,
            rows: matching
                .into_iter()
                .skip(query.offset)
                .take(query.limit)
                .map(Entry::row)
                .collect(),
        }
    }

    /// The ids of every row that passes `query`'s filters, in its order (for a search to
    /// read, or a bulk action to change).
    pub(crate) fn candidates(&self, query: &ListQuery) -> Vec<Arc<str>> {
        let rows = self.read();
        let walk = rows.candidates(query).filter(|e| query.matches(e));
        if query.descending {
            walk.rev().map(|e| e.id.clone()).collect()
        } else {
            walk.map(|e| e.id.clone()).collect()
        }
    }

    /// The rows of `ids` still indexed, in that order.
    pub(crate) fn rows(&self, ids: &[Arc<str>]) -> Vec<Row> {
        let rows = self.read();
        ids.iter()
            .filter_map(|id| rows.by_id.get(id).map(Entry::row))
            .collect()
    }

    /// `status` from the index: the sessions' part from its tally, the temps and odd
    /// names from a listing at most 10 s old, the rest (journals, cleanup, clock) read
    /// from the store.
    pub(crate) fn status(
        &self,
        store: &SessionStore,
        options: &crate::commands::status::StatusOptions,
    ) -> Result<crate::commands::status::Status, crate::error::CliError> {
        let listed = {
            let mut cached = self.files.lock().unwrap_or_else(|p| p.into_inner());
            match *cached {
                Some((at, files)) if at.elapsed() < FILES_REUSED => files,
                _ => {
                    let scan = store.fs().maintenance().scan()?;
                    let files = FileProblems {
                        damaged: 0,
                        orphaned_temps: scan.temps.len(),
                        not_regular_files: scan.irregular.len(),
                    };
                    *cached = Some((Instant::now(), files));
                    files
                }
            }
        };
        // Under the read lock: readers do not wait for each other, and the tally's sets
        // are not copied.
        let rows = self.read();
        let damaged = rows.damaged.len();
        rows.tally
            .status(FileProblems { damaged, ..listed }, store, options)
    }
}

/// What a text search found.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The ids of the matches on the page asked for, in the list's order.
    pub ids: Vec<Arc<str>>,
    /// Matches among the sessions searched.
    pub matched: usize,
    /// Sessions searched (a prefix of the candidates, in order).
    pub searched: usize,
    /// Sessions that passed the other filters.
    pub candidates: usize,
    /// Whether every candidate was searched (else the deadline or a cancel came first).
    pub complete: bool,
}

/// Searches the messages of `candidates` (in order) for `needle`, case-insensitively,
/// reading their files on up to `threads` threads, until `deadline` or `cancelled`.
/// Returns the page `offset`/`limit` of the matches found in the prefix searched.
pub(crate) fn search(
    store: &SessionStore,
    candidates: Vec<Arc<str>>,
    needle: &str,
    page: (usize, usize),
    deadline: Instant,
    cancelled: &AtomicBool,
) -> Found {
    const CHUNK: usize = 64;
    let needle = needle.to_lowercase();
    // 0: not searched, 1: matches, 2: does not.
    let verdicts: Vec<AtomicU8> = candidates.iter().map(|_| AtomicU8::new(0)).collect();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    if cancelled.load(Ordering::Relaxed) || Instant::now() >= deadline {
                        return;
                    }
                    let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if start >= candidates.len() {
                        return;
                    }
                    for i in start..(start + CHUNK).min(candidates.len()) {
                        let found = holds(store, &candidates[i], &needle);
                        verdicts[i].store(if found { 1 } else { 2 }, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let searched = verdicts
        .iter()
        .position(|v| v.load(Ordering::Relaxed) == 0)
        .unwrap_or(candidates.len());
    let (offset, limit) = page;
    let mut matched = 0;
    let mut ids = Vec::new();
    for (id, verdict) in candidates.iter().zip(&verdicts).take(searched) {
        if verdict.load(Ordering::Relaxed) == 1 {
            if matched >= offset && matched - offset < limit {
                ids.push(id.clone());
            }
            matched += 1;
        }
    }
    Found {
        ids,
        matched,
        searched,
        candidates: candidates.len(),
        complete: searched == candidates.len(),
    }
}

/// Whether the messages of `id` (or its id) hold `needle` (lower case).
fn holds(store: &SessionStore, id: &str, needle: &str) -> bool {
    if id.to_lowercase().contains(needle) {
        return true;
    }
    let Ok(id) = id.parse::<SessionId>() else {
        return false;
    };
    match store.load(&id) {
        Ok(Some(decoded)) => decoded
            .session
            .messages()
            .iter()
            .any(|m| m.to_lowercase().contains(needle)),
        _ => false,
    }
}

/// A search's cancel switch: set when the request that started it goes away.
#[derive(Debug, Default)]
pub(crate) struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// The flag a search checks.
    pub(crate) fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        // Only the request's own copy cancels: the search holds the flag, not a Cancel.
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_store::DecodeOptions;

    fn store_with(dir: &std::path::Path, sessions: &[(&str, u64, &str)]) -> SessionStore {
        let store = SessionStore::open(dir, DecodeOptions::default()).unwrap();
        for (id, start, message) in sessions {
            let doc = serde_json::json!({
                "id": id, "startTime": start, "isComplete": true, "messages": [message],
            });
            let mut session = session_store::decode(doc.to_string().as_bytes()).unwrap().session;
            store.save(&mut session).unwrap();
        }
        store
    }

    fn ids(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn an_older_reading_never_replaces_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &[("s-1", 10, "MSH|old")]);
        let old = store.load(&"s-1".parse().unwrap()).unwrap().unwrap();
        store
            .update(&"s-1".parse().unwrap(), |s| {
                s.submission
                    .ignore()
                    .map_err(session_store::refused(&s.id.clone()))
            })
            .unwrap();
        let index = SessionIndex::new();
        index.refresh(&store, &"s-1".parse().unwrap());
        // A reader that read the file before the change reports after it.
        index.observe(&old);
        let page = index.page(&ListQuery {
            limit: 10,
            ..ListQuery::default()
        });
        assert_eq!(page.rows[0].submission_status.as_deref(), Some("ignored"));
        assert_eq!(page.rows[0].revision, 2);
    }

    #[test]
    fn the_kept_tally_agrees_with_a_count_of_the_files_after_every_change() {
        use crate::commands::status::{StatusOptions, compute};
        let dir = tempfile::tempdir().unwrap();
        let sessions: Vec<(String, u64, &str)> =
            (0..12).map(|i| (format!("s-{i}"), 1_000 + i, "MSH|x")).collect();
        let borrowed: Vec<(&str, u64, &str)> =
            sessions.iter().map(|(id, t, m)| (id.as_str(), *t, *m)).collect();
        let store = store_with(dir.path(), &borrowed);
        let index = SessionIndex::new();
        index.rebuild(&store).unwrap();
        let options = StatusOptions {
            retry_cap_ms: 900_000,
            alert_undelivered_ms: 3_600_000,
        };
        let same = |step: &str| {
            let kept = serde_json::to_value(index.status(&store, &options).unwrap()).unwrap();
            let counted = serde_json::to_value(compute(&store, &options).unwrap()).unwrap();
            for key in [
                "total",
                "counts",
                "incomplete",
                "oldestUndelivered",
                "failed",
                "damaged",
                "newerVersion",
                "retriesPulledIn",
            ] {
                assert_eq!(kept[key], counted[key], "{key} after {step}");
            }
        };
        same("the build");
        let id = |i: usize| -> SessionId { format!("s-{i}").parse().unwrap() };
        let change = |i: usize, f: fn(&mut session_model::Submission) -> Result<(), session_model::TransitionError>| {
            store
                .update(&id(i), |s| f(&mut s.submission).map_err(session_store::refused(&id(i))))
                .unwrap();
            index.refresh(&store, &id(i));
        };
        change(0, session_model::Submission::ignore);
        same("an ignore");
        change(0, session_model::Submission::retry);
        same("a retry");
        store
            .update(&id(3), |s| {
                s.submission.status = session_model::SubmissionStatus::Failed;
                s.submission.last_error = Some("HTTP 503".into());
                s.submission.next_attempt_at = Some(u64::MAX / 4);
                Ok(())
            })
            .unwrap();
        index.refresh(&store, &id(3));
        same("a failure");
        store
            .update(&id(4), |s| {
                s.submission.next_attempt_at = Some(u64::MAX / 4);
                Ok(())
            })
            .unwrap();
        index.refresh(&store, &id(4));
        same("a retry far ahead");
        store.delete(&id(5)).unwrap();
        index.refresh(&store, &id(5));
        same("a delete");
        std::fs::write(
            dir.path().join("s-6.json"),
            b"{\"id\": \"s-6\", \"startTime\": \"x\"",
        )
        .unwrap();
        index.refresh(&store, &id(6));
        same("a damaged file");
        std::fs::write(
            dir.path().join("s-7.json"),
            br#"{"id": "s-7", "startTime": 1, "_metadata": {"version": "9.0.0"}, "submission": {"status": "pending"}}"#,
        )
        .unwrap();
        index.refresh(&store, &id(7));
        same("a newer build's file");
        index.rebuild(&store).unwrap();
        same("a rebuild");
    }

    #[test]
    fn a_session_replaced_by_a_fifo_or_a_symlink_leaves_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(
            dir.path(),
            &[("s-1", 1, "MSH|a"), ("s-2", 2, "MSH|b"), ("s-3", 3, "MSH|c")],
        );
        let index = SessionIndex::new();
        index.rebuild(&store).unwrap();
        let file = |id: &str| dir.path().join(format!("{id}.json"));
        std::fs::remove_file(file("s-1")).unwrap();
        let fifo = std::ffi::CString::new(file("s-1").to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo has no other precondition.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::fs::remove_file(file("s-2")).unwrap();
        std::os::unix::fs::symlink(file("s-3"), file("s-2")).unwrap();
        for id in ["s-1", "s-2"] {
            index.refresh(&store, &id.parse().unwrap());
        }
        let page = index.page(&ListQuery {
            limit: 10,
            ..ListQuery::default()
        });
        assert_eq!(ids(&page.rows), ["s-3"]);
        let status = serde_json::to_value(
            index
                .status(
                    &store,
                    &crate::commands::status::StatusOptions {
                        retry_cap_ms: 1,
                        alert_undelivered_ms: 1,
                    },
                )
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (&status["total"], &status["notRegularFiles"]),
            (&serde_json::json!(1), &serde_json::json!(2)),
            "{status}"
        );
    }

    #[test]
    fn what_a_change_saved_is_taken_as_saved_and_a_failed_change_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), &[("s-1", 1, "MSH|a")]);
        let index = SessionIndex::new();
        index.rebuild(&store).unwrap();
        let id: SessionId = "s-1".parse().unwrap();
        let ignored = store.ignore(&id).unwrap();
        // The saved copy is taken as it is: the file is not read (it is gone here).
        std::fs::remove_file(dir.path().join("s-1.json")).unwrap();
        index.saved(&store, &id, Ok(&ignored));
        let page = index.page(&ListQuery {
            limit: 10,
            ..ListQuery::default()
        });
        assert_eq!(page.rows[0].submission_status.as_deref(), Some("ignored"));
        assert_eq!(page.rows[0].revision, 2);
        // A change that failed says nothing of the file: it is read, and it is gone.
        let failed = store.retry(&id).unwrap_err();
        index.saved(&store, &id, Err(&failed));
        assert_eq!(
            index
                .page(&ListQuery {
                    limit: 10,
                    ..ListQuery::default()
                })
                .total,
            0
        );
    }

    #[test]
    fn a_search_stops_at_its_deadline_or_cancel_and_says_how_far_it_got() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(
            dir.path(),
            &[("s-1", 1, "MSH|GLU"), ("s-2", 2, "MSH|NA"), ("s-3", 3, "MSH|glu")],
        );
        let index = SessionIndex::new();
        index.rebuild(&store).unwrap();
        let query = ListQuery {
            descending: true,
            limit: 10,
            ..ListQuery::default()
        };
        let never = AtomicBool::new(false);
        let later = Instant::now() + std::time::Duration::from_secs(60);
        let found = search(&store, index.candidates(&query), "Glu", (0, 10), later, &never);
        assert_eq!(
            (ids(&index.rows(&found.ids)), found.matched, found.complete),
            (vec!["s-3", "s-1"], 2, true)
        );
        let past = Instant::now();
        let found = search(&store, index.candidates(&query), "glu", (0, 10), past, &never);
        assert_eq!((found.searched, found.matched, found.complete), (0, 0, false));
        let cancelled = AtomicBool::new(true);
        let found = search(
            &store,
            index.candidates(&query),
            "glu",
            (0, 10),
            later,
            &cancelled,
        );
        assert!(!found.complete && found.ids.is_empty());
        // The request's switch: dropping it cancels.
        let cancel = Cancel::default();
        let flag = cancel.flag();
        drop(cancel);
        assert!(flag.load(Ordering::Relaxed));
    }
}
