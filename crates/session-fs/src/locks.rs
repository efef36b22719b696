//! In-process per-id locks with call-order tickets, so that superseded saves coalesce.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use session_model::SessionId;

#[derive(Default)]
struct SlotState {
    held: bool,
    /// The ticket of the newest save applied to disk.
    applied: u64,
}

#[derive(Default)]
struct Slot {
    next_ticket: AtomicU64,
    state: Mutex<SlotState>,
    released: Condvar,
}

/// Per-id locks of one store handle.
#[derive(Default)]
pub(crate) struct LockTable {
    slots: Mutex<HashMap<SessionId, Arc<Slot>>>,
}

/// A place in the call order of one id's saves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

/// Holds one id's in-process lock until dropped.
pub(crate) struct IdLock<'a> {
    table: &'a LockTable,
    id: SessionId,
    slot: Arc<Slot>,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves no half-updated state (plain flags and counters).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LockTable {
    fn slot(&self, id: &SessionId) -> Arc<Slot> {
        relock(&self.slots).entry(id.clone()).or_default().clone()
    }

    /// Takes the next ticket for `id`: call order, fixed before any waiting.
    pub(crate) fn ticket(&self, id: &SessionId) -> (Ticket, Arc<SlotHandle>) {
        let slot = self.slot(id);
        let ticket = Ticket(slot.next_ticket.fetch_add(1, Ordering::SeqCst) + 1);
        (ticket, Arc::new(SlotHandle(slot)))
    }

    /// Waits for and takes `id`'s lock.
    pub(crate) fn lock(&self, id: &SessionId, held: Option<Arc<SlotHandle>>) -> IdLock<'_> {
        let slot = held.map(|h| h.0.clone()).unwrap_or_else(|| self.slot(id));
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
        }
    }
}

/// Keeps a slot alive between taking a ticket and taking the lock.
pub(crate) struct SlotHandle(Arc<Slot>);

impl IdLock<'_> {
    /// Whether a save with a later ticket has already been applied.
    pub(crate) fn is_superseded(&self, ticket: Ticket) -> bool {
        relock(&self.slot.state).applied > ticket.0
    }

    /// Records that the save holding `ticket` reached disk.
    pub(crate) fn mark_applied(&self, ticket: Ticket) {
        let mut state = relock(&self.slot.state);
        state.applied = state.applied.max(ticket.0);
    }
}

impl Drop for IdLock<'_> {
    fn drop(&mut self) {
        relock(&self.slot.state).held = false;
        self.slot.released.notify_all();
        let mut slots = relock(&self.table.slots);
        // Only the table and this lock refer to the slot: nobody waits, forget it.
        if Arc::strong_count(&self.slot) == 2 {
            slots.remove(&self.id);
        }
    }
}
