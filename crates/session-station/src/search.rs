//! A text search over the messages of the sessions a list's filters pass: bounded by a
//! deadline, stopped when its request goes away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

use session_model::SessionId;
use session_store::SessionStore;

/// What a text search found.
#[derive(Debug, Clone)]
pub struct Found {
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
pub fn search(
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
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// The flag a search checks.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        // Only the request's own copy cancels: the search holds the flag, not a Cancel.
        self.0.store(true, Ordering::Relaxed);
    }
}
