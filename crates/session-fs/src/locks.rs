//! In-process per-id locks. Saves carry call-order tickets: when the lock frees, the
//! newest waiting save goes first, and the older ones it overtakes return as superseded
//! once it is durable (last write wins, superseded writes coalesce).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use session_model::SessionId;

#[derive(Default)]
struct SlotState {
    held: bool,
    /// The last ticket handed out.
    issued: u64,
    /// The ticket of the newest save applied to disk.
    applied: u64,
    /// Tickets of saves waiting for the lock.
    waiting: BTreeSet<u64>,
    /// Saves superseded since the last write: the id is contended.
    superseded: usize,
}

/// Under contention, how long the newest save waits for newer ones before writing, so
/// that one write covers them all. Short against an fsync (about half a millisecond).
const LINGER: std::time::Duration = std::time::Duration::from_micros(60);

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    released: Condvar,
}

/// Per-id locks of one store handle.
#[derive(Default)]
pub(crate) struct LockTable {
    slots: Mutex<HashMap<SessionId, Arc<Slot>>>,
}

/// Holds one id's in-process lock until dropped.
pub(crate) struct IdLock<'a> {
    table: &'a LockTable,
    id: SessionId,
    slot: Arc<Slot>,
    /// The save ticket this lock was taken for, if any.
    ticket: Option<u64>,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves no half-updated state (plain flags and counters).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LockTable {
    fn slot(&self, id: &SessionId) -> Arc<Slot> {
        relock(&self.slots).entry(id.clone()).or_default().clone()
    }

    /// Waits for and takes `id`'s lock.
    pub(crate) fn lock(&self, id: &SessionId) -> IdLock<'_> {
        let slot = self.slot(id);
        let mut state = relock(&slot.state);
        while state.held {
            state = slot.released.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.held = true;
        drop(state);
        IdLock {
            table: self,
            id: id.clone(),
            slot,
            ticket: None,
        }
    }

    /// Takes `id`'s lock for a save called now, or `None` when a save called later
    /// became durable first (this one is superseded).
    pub(crate) fn lock_for_save(&self, id: &SessionId) -> Option<IdLock<'_>> {
        let slot = self.slot(id);
        let mut state = relock(&slot.state);
        state.issued += 1;
        let ticket = state.issued;
        state.waiting.insert(ticket);
        let mut lingered = false;
        loop {
            if state.applied > ticket {
                state.waiting.remove(&ticket);
                state.superseded += 1;
                drop(state);
                self.forget_if_unused(id, &slot);
                return None;
            }
            let newest = state.waiting.last() == Some(&ticket);
            if !state.held && newest && state.superseded > 0 && !lingered {
                lingered = true;
                state = slot
                    .released
                    .wait_timeout(state, LINGER)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
            if !state.held && newest {
                state.waiting.remove(&ticket);
                state.superseded = 0;
                state.held = true;
                drop(state);
                return Some(IdLock {
                    table: self,
                    id: id.clone(),
                    slot,
                    ticket: Some(ticket),
                });
            }
            state = slot.released.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn forget_if_unused(&self, id: &SessionId, slot: &Arc<Slot>) {
        let mut slots = relock(&self.slots);
        // Only the table and the caller refer to the slot: nobody waits, forget it.
        if Arc::strong_count(slot) == 2 {
            slots.remove(id);
        }
    }
}

impl IdLock<'_> {
    /// Records that this lock's save reached disk.
    pub(crate) fn mark_applied(&self) {
        if let Some(ticket) = self.ticket {
            let mut state = relock(&self.slot.state);
            state.applied = state.applied.max(ticket);
        }
    }
}

impl Drop for IdLock<'_> {
    fn drop(&mut self) {
        relock(&self.slot.state).held = false;
        self.slot.released.notify_all();
        self.table.forget_if_unused(&self.id, &self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(table: &LockTable, id: &SessionId) -> usize {
        relock(&table.slot(id).state).waiting.len()
    }

    /// Waits (bounded) until `n` saves queue for `id`: synchronised on the queue itself.
    fn until_waiting(table: &LockTable, id: &SessionId, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while waiting(table, id) < n {
            assert!(std::time::Instant::now() < deadline, "{n} saves never queued");
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_waiting_save_overtaken_by_a_newer_applied_one_is_superseded() {
        let table = LockTable::default();
        let id = SessionId::new("q").unwrap();
        let holder = table.lock_for_save(&id).expect("the first save takes the lock");
        std::thread::scope(|scope| {
            let older = scope.spawn(|| table.lock_for_save(&id).map(|lock| lock.mark_applied()).is_some());
            until_waiting(&table, &id, 1);
            let newer = scope.spawn(|| table.lock_for_save(&id).map(|lock| lock.mark_applied()).is_some());
            until_waiting(&table, &id, 2);
            holder.mark_applied();
            drop(holder);
            assert!(newer.join().unwrap(), "the newest waiting save goes first");
            assert!(
                !older.join().unwrap(),
                "the older one is superseded, never written"
            );
        });
    }

    #[test]
    fn a_slot_is_forgotten_once_nobody_holds_or_waits_for_it_and_never_before() {
        let table = LockTable::default();
        let id = SessionId::new("f").unwrap();
        let slots = || relock(&table.slots).len();
        drop(table.lock(&id));
        assert_eq!(slots(), 0, "a plain lock's slot is forgotten on release");
        let holder = table.lock_for_save(&id).expect("free");
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let lock = table.lock_for_save(&id).expect("the only waiter goes next");
                // The holder released while this one waited: the slot it waits on must
                // still be the table's, or a third locker would get a fresh one.
                assert_eq!(slots(), 1, "forgotten while a save waited on it");
                let third = table.slot(&id);
                assert!(
                    Arc::ptr_eq(&third, &lock.slot),
                    "a new locker would not wait for this one"
                );
                drop(third);
                drop(lock);
            });
            until_waiting(&table, &id, 1);
            drop(holder);
            waiter.join().unwrap();
        });
        assert_eq!(slots(), 0, "forgotten once the last one released");
    }

    #[test]
    fn a_plain_lock_waits_for_the_holder() {
        let table = LockTable::default();
        let id = SessionId::new("p").unwrap();
        let first = table.lock(&id);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let _second = table.lock(&id);
                tx.send(()).unwrap();
            });
            assert!(
                rx.recv_timeout(std::time::Duration::from_millis(50)).is_err(),
                "taken while held"
            );
            drop(first);
            rx.recv_timeout(std::time::Duration::from_secs(10))
                .expect("taken once released");
        });
    }
}
