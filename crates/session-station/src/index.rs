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
//! times are plain numbers), keyed by a shared id; a [`SessionRow`] is made only for the rows a
//! page returns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use session_model::{SessionId, SubmissionStatus};
use session_store::{DecodeError, Decoded, SessionStore, StoreError, StoredEntry};

use crate::{Counted, FileProblems, SessionCounts, SessionRow, Tally, natural_cmp};

/// Every session's row, packed, ordered by start time; see the crate docs.
#[derive(Debug, Default)]
pub struct SessionIndex {
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

/// Keys in start order, each with the status its row's file states (see
/// [`Entry::filed_status`]): a status filter passes over the rows of other statuses
/// without looking them up (a set per status would cost megabytes at 100,000 rows; a
/// status beside each key costs a byte).
type Keys = BTreeMap<Key, Option<SubmissionStatus>>;

/// "Not known" in an entry's time fields.
const NONE: u64 = u64::MAX;

fn packed(time: Option<u64>) -> u64 {
    time.unwrap_or(NONE)
}

fn unpacked(time: u64) -> Option<u64> {
    (time != NONE).then_some(time)
}

/// One session as the index keeps it: a [`SessionRow`], packed.
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

    /// The known status the file states, word for word, as a status filter compares
    /// it: a newer build's file has no typed status but may state a known word.
    fn filed_status(&self) -> Option<SubmissionStatus> {
        let word = self.status_word.as_deref()?;
        SubmissionStatus::ALL.into_iter().find(|s| s.as_str() == word)
    }

    fn key(&self) -> Key {
        (self.start, self.id.clone())
    }

    fn row(&self) -> SessionRow {
        SessionRow {
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
    by_start: Keys,
    /// The keys of each analyzer's rows: a filter by analyzer walks only its own rows.
    by_device: HashMap<Arc<str>, Keys>,
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

    fn pack(&mut self, row: SessionRow) -> Entry {
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
    fn put(&mut self, row: SessionRow) {
        let entry = self.pack(row);
        self.remove(&entry.id);
        self.damaged.remove(&*entry.id);
        let key = entry.key();
        let status = entry.filed_status();
        self.tally.add(&entry.counted());
        if let Some(device) = &entry.device {
            self.by_device
                .entry(device.clone())
                .or_default()
                .insert(key.clone(), status);
        }
        self.by_start.insert(key, status);
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

    /// A page in analyzer order without a status or time filter, walked from the
    /// per-analyzer sets (analyzers in order, each in start order, after the sessions
    /// with no analyzer) instead of sorting every row: its cost is the page's, plus one
    /// walk of the start order when some sessions have no analyzer (rare: capture and
    /// every app version record the address). `None` for any other query.
    fn page_by_device(&self, query: &ListQuery) -> Option<Page> {
        if query.sort != SortKey::Device
            || query.status.is_some()
            || query.from.is_some()
            || query.to.is_some()
        {
            return None;
        }
        let mut devices: Vec<(&Arc<str>, &Keys)> = match &query.device {
            Some(device) => self
                .by_device
                .get_key_value(device.as_str())
                .into_iter()
                .collect(),
            None => self.by_device.iter().collect(),
        };
        devices.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let with_device: usize = devices.iter().map(|(_, keys)| keys.len()).sum();
        // Sessions without an analyzer come first (`None` sorts before any address).
        let without_device = if query.device.is_none() && with_device < self.by_id.len() {
            self.by_start
                .keys()
                .filter(|(_, id)| self.by_id.get(id).is_some_and(|e| e.device.is_none()))
                .collect()
        } else {
            Vec::new()
        };
        let total = with_device + without_device.len();
        let keys = without_device
            .into_iter()
            .chain(devices.into_iter().flat_map(|(_, keys)| keys.keys()));
        let keys: Box<dyn Iterator<Item = &Key>> = if query.descending {
            Box::new(keys.rev())
        } else {
            Box::new(keys)
        };
        let rows = keys
            .skip(query.offset)
            .take(query.limit)
            .filter_map(|(_, id)| self.by_id.get(id).map(Entry::row))
            .collect();
        Some(Page { total, rows })
    }

    /// The entries that pass a query's filters, in start order: an analyzer's own keys
    /// (or every key) within the time range, of the status asked for. Every filter is
    /// answered by the keys; an entry is looked up only once it passes.
    fn matching<'a>(&'a self, query: &ListQuery) -> Box<dyn DoubleEndedIterator<Item = &'a Entry> + 'a> {
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
        let status = query.status;
        match keys {
            Some(keys) => Box::new(
                keys.range(range)
                    .filter(move |(_, kept)| status.is_none_or(|s| **kept == Some(s)))
                    .filter_map(|((_, id), _)| self.by_id.get(id)),
            ),
            None => Box::new(std::iter::empty()),
        }
    }
}

/// What a list asks for: filters, an order, a page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
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
pub enum SortKey {
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

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// How many sessions pass the filters.
    pub total: usize,
    /// Those on this page, in order.
    pub rows: Vec<SessionRow>,
}

impl SessionIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Rows> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Rows> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Start-up's pass is over: gives back what the index's growth left over.
    pub fn settle(&self) {
        self.write().shrink();
    }

    /// Takes in a session as read from its file by someone else (recovery's pass): a
    /// reading of an older revision than the row has is ignored.
    pub fn observe(&self, decoded: &Decoded) {
        let row = SessionRow::of(decoded);
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
    pub fn saved(
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
                self.write().put(SessionRow::of(&decoded));
            }
            Err(_) => self.refresh(store, id),
        }
    }

    /// Reads `id`'s file again: stored, gone, damaged or from a newer build. Readings
    /// are taken and applied one at a time, so the last one taken is the one kept, whoever
    /// wrote the file (an outside writer's revision need not grow).
    pub fn refresh(&self, store: &SessionStore, id: &SessionId) {
        let _one_at_a_time = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        match store.load(id) {
            Ok(Some(decoded)) => self.write().put(SessionRow::of(&decoded)),
            Ok(None) => {
                let mut rows = self.write();
                rows.remove(id.as_str());
                rows.damaged.remove(id.as_str());
            }
            Err(StoreError::Decode {
                source: DecodeError::NewerVersion { version, .. },
                ..
            }) => match store.fs().read(id) {
                Ok(Some(bytes)) => self
                    .write()
                    .put(SessionRow::of_newer(id.to_string(), version, &bytes)),
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
    pub fn rebuild(&self, store: &SessionStore) -> Result<(), StoreError> {
        let _one_at_a_time = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        let mut fresh = Rows::default();
        *self.files.lock().unwrap_or_else(|p| p.into_inner()) = None;
        for entry in store.entries()? {
            match SessionRow::of_entry(&entry) {
                Some(row) => fresh.put(row),
                None => {
                    if let StoredEntry::Damaged { id, .. } = entry {
                        fresh.damaged.insert(id.to_string());
                    }
                }
            }
        }
        fresh.shrink();
        *self.write() = fresh;
        Ok(())
    }

    /// The page `query` asks for. The default order walks the index; another order
    /// puts in order only the rows up to the page's end.
    pub fn page(&self, query: &ListQuery) -> Page {
        let rows = self.read();
        if let Some(page) = rows.page_by_device(query) {
            return page;
        }
        let unfiltered =
            query.status.is_none() && query.device.is_none() && query.from.is_none() && query.to.is_none();
        if query.sort == SortKey::Start {
            let walk = rows.matching(query);
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
            for entry in walk {
                if total >= query.offset && total - query.offset < query.limit {
                    page.push(entry.row());
                }
                total += 1;
            }
            return Page { total, rows: page };
        }
        let mut matching: Vec<&Entry> = rows.matching(query).collect();
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
    pub fn candidates(&self, query: &ListQuery) -> Vec<Arc<str>> {
        let rows = self.read();
        let walk = rows.matching(query);
        if query.descending {
            walk.rev().map(|e| e.id.clone()).collect()
        } else {
            walk.map(|e| e.id.clone()).collect()
        }
    }

    /// The rows of `ids` still indexed, in that order.
    pub fn rows(&self, ids: &[Arc<str>]) -> Vec<SessionRow> {
        let rows = self.read();
        ids.iter()
            .filter_map(|id| rows.by_id.get(id).map(Entry::row))
            .collect()
    }

    /// `status`'s counts from the index at `now` (see [`Tally::counts`]), and the files'
    /// problems: the damaged files it knows of, the temps and odd names from a listing
    /// of the directory at most 10 s old.
    pub fn counts(
        &self,
        store: &SessionStore,
        now: u64,
        retry_cap_ms: u64,
    ) -> Result<(SessionCounts, FileProblems), StoreError> {
        let listed = {
            let mut cached = self.files.lock().unwrap_or_else(|p| p.into_inner());
            match *cached {
                Some((at, files)) if at.elapsed() < FILES_REUSED => files,
                _ => {
                    let files = FileProblems::listed(store, 0)?;
                    *cached = Some((Instant::now(), files));
                    files
                }
            }
        };
        // Under the read lock: readers do not wait for each other, and the tally's sets
        // are not copied.
        let rows = self.read();
        let damaged = rows.damaged.len();
        Ok((
            rows.tally.counts(now, retry_cap_ms),
            FileProblems { damaged, ..listed },
        ))
    }
}
