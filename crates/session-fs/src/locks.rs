//! In-process per-id locks. Saves carry call-order tickets: when the lock frees, the
//! newest waiting save goes first, and the older ones it overtakes return as superseded
//! once it is durable (last write wins, superseded writes coalesce).
//!
//! Under contention the newest save waits a little before it writes (group commit):
//! until as many saves wait as the last write covered, or for at most as long as the
//! last write took. Writers that wait for their save to be durable come back together
//! once a write returns them, but one by one (each encodes its session first): writing
//! for the first to come back would leave the rest for one more write each.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

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
    /// How many saves the last write covered: those waiting when it took the lock,
    /// itself included. More than one: the id is contended.
    last_batch: usize,
    /// How long the last save held the lock (its write, to durable).
    last_write: Duration,
    /// Until when the newest save waits for more to come (one deadline per write,
    /// whichever save is the newest meanwhile).
    linger_until: Option<Instant>,
    /// When the lock was last released.
    released_at: Option<Instant>,
}

impl SlotState {
    /// Saves waiting that no write has covered yet (those a write covered stay in
    /// `waiting` until their threads wake up to return).
    fn uncovered(&self) -> usize {
        self.waiting.range(self.applied + 1..).count()
    }

    /// The id was contended a moment ago: its slot is kept, unused, so that the saves
    /// coming back from the last write find how many to wait for.
    fn recently_contended(&self) -> bool {
        self.last_batch > 1 && self.released_at.is_some_and(|at| at.elapsed() < HISTORY)
    }
}

/// The longest a save lingers, however slow the last write was: a stalled disk must not
/// hold every later save back for as long as it stalled.
const MAX_LINGER: Duration = Duration::from_secs(1);
/// How long an unused slot keeps the history of its contention.
const HISTORY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    released: Condvar,
    /// A save came in while the newest lingered.
    arrived: Condvar,
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
    /// When it was taken.
    taken: Instant,
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
            taken: Instant::now(),
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
        if state.linger_until.is_some() {
            slot.arrived.notify_all();
        }
        loop {
            if state.applied > ticket {
                state.waiting.remove(&ticket);
                drop(state);
                self.forget_if_unused(id, &slot);
                return None;
            }
            let newest = state.waiting.last() == Some(&ticket);
            if !state.held && newest {
                if let Some(left) = linger_left(&mut state) {
                    state = slot
                        .arrived
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    continue;
                }
                state.last_batch = state.uncovered();
                state.linger_until = None;
                state.waiting.remove(&ticket);
                state.held = true;
                drop(state);
                return Some(IdLock {
                    table: self,
                    id: id.clone(),
                    slot,
                    ticket: Some(ticket),
                    taken: Instant::now(),
                });
            }
            state = slot.released.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Forgets `id`'s slot when nobody holds or waits for it and it keeps no recent
    /// contention, and any other slot unused whose contention is over.
    fn forget_if_unused(&self, id: &SessionId, slot: &Arc<Slot>) {
        let mut slots = relock(&self.slots);
        // Only the table and the caller refer to the slot: nobody waits, forget it.
        if Arc::strong_count(slot) == 2 && !relock(&slot.state).recently_contended() {
            slots.remove(id);
        }
        if !slots.is_empty() {
            slots.retain(|kept, other| {
                kept == id || Arc::strong_count(other) > 1 || relock(&other.state).recently_contended()
            });
        }
    }
}

/// How much longer the newest save, free to write, waits for more saves to come: `None`
/// when it writes now (the id is not contended, as many wait as the last write
/// covered, or the linger is over).
fn linger_left(state: &mut SlotState) -> Option<Duration> {
    if state.last_batch <= 1 || state.uncovered() >= state.last_batch {
        return None;
    }
    let now = Instant::now();
    let until = *state
        .linger_until
        .get_or_insert_with(|| now + state.last_write.min(MAX_LINGER));
    until.checked_duration_since(now).filter(|left| !left.is_zero())
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
        let mut state = relock(&self.slot.state);
        state.held = false;
        if self.ticket.is_some() {
            state.last_write = self.taken.elapsed();
        }
        state.released_at = Some(Instant::now());
        drop(state);
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

    fn lingering(table: &LockTable, id: &SessionId) -> bool {
        relock(&table.slot(id).state).linger_until.is_some()
    }

    /// Waits (bounded) until the newest save of `id` lingers.
    fn until_lingering(table: &LockTable, id: &SessionId) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !lingering(table, id) {
            assert!(
                std::time::Instant::now() < deadline,
                "the newest save took the lock at once: it did not wait for the others"
            );
            std::thread::yield_now();
        }
    }

    /// A save that takes the lock, holds it `hold` (its write), marks it applied: whether
    /// it got the lock (else it was superseded).
    fn save(table: &LockTable, id: &SessionId, hold: Duration) -> bool {
        table
            .lock_for_save(id)
            .map(|lock| {
                std::thread::sleep(hold);
                lock.mark_applied();
            })
            .is_some()
    }

    /// Makes `id` contended: a write that covered two saves, held `hold`.
    fn contended(table: &LockTable, id: &SessionId, hold: Duration) {
        let holder = table.lock_for_save(id).expect("free");
        std::thread::scope(|scope| {
            let older = scope.spawn(|| save(table, id, Duration::ZERO));
            until_waiting(table, id, 1);
            let newer = scope.spawn(|| save(table, id, hold));
            until_waiting(table, id, 2);
            holder.mark_applied();
            drop(holder);
            assert!(newer.join().unwrap() && !older.join().unwrap());
        });
        assert_eq!(relock(&table.slot(id).state).last_batch, 2);
    }

    #[test]
    fn under_contention_the_newest_save_waits_for_as_many_as_the_last_write_covered() {
        let table = LockTable::default();
        let id = SessionId::new("g").unwrap();
        contended(&table, &id, Duration::from_millis(500));
        std::thread::scope(|scope| {
            let first = scope.spawn(|| save(&table, &id, Duration::ZERO));
            // The lock is free and the last write covered two: it waits for a second.
            until_lingering(&table, &id);
            let second = scope.spawn(|| save(&table, &id, Duration::ZERO));
            assert!(second.join().unwrap(), "the newest writes once two wait");
            assert!(
                !first.join().unwrap(),
                "the first is covered by the same write, not written on its own"
            );
        });
        assert_eq!(relock(&table.slot(&id).state).last_batch, 2);
    }

    #[test]
    fn a_linger_ends_after_the_last_write_s_time_and_a_lone_save_never_lingers() {
        let table = LockTable::default();
        let id = SessionId::new("h").unwrap();
        contended(&table, &id, Duration::from_millis(20));
        std::thread::scope(|scope| {
            let alone = scope.spawn(|| save(&table, &id, Duration::ZERO));
            until_lingering(&table, &id);
            assert!(alone.join().unwrap(), "nobody else came: it writes, alone");
        });
        assert!(
            relock(&table.slots).is_empty(),
            "a write that covered one save leaves no contention behind: the next does not wait"
        );
    }

    #[test]
    fn a_contended_slot_outlives_its_last_save_for_its_history_then_goes() {
        let table = LockTable::default();
        let (hot, other) = (SessionId::new("k").unwrap(), SessionId::new("o").unwrap());
        contended(&table, &hot, Duration::ZERO);
        assert!(
            relock(&table.slots).contains_key(&hot),
            "kept, unused, for its history"
        );
        std::thread::sleep(HISTORY + Duration::from_millis(50));
        drop(table.lock(&other));
        assert!(
            relock(&table.slots).is_empty(),
            "an old history is dropped by the next release of any id"
        );
    }

    /// A slot's state as the newest free save sees it: the last write covered
    /// `last_batch` saves and held the lock `last_write`; `uncovered` saves wait now.
    fn seen(last_batch: usize, last_write: Duration, uncovered: u64) -> SlotState {
        SlotState {
            issued: 10 + uncovered,
            applied: 10,
            // Ticket 9 was covered by the write of 10 and has not woken up yet.
            waiting: std::iter::once(9).chain(11..=10 + uncovered).collect(),
            last_batch,
            last_write,
            ..SlotState::default()
        }
    }

    #[test]
    fn the_newest_save_writes_at_once_when_as_many_wait_as_the_last_write_covered() {
        let mut enough = seen(3, Duration::from_secs(1), 3);
        assert_eq!(
            enough.uncovered(),
            3,
            "the covered ticket still queued is not counted"
        );
        assert_eq!(
            linger_left(&mut enough),
            None,
            "three wait, as the last write covered"
        );
        assert_eq!(
            enough.linger_until, None,
            "no deadline is set when it writes at once"
        );
        let mut more = seen(2, Duration::from_secs(1), 5);
        assert_eq!(
            linger_left(&mut more),
            None,
            "more wait than the last write covered"
        );
        let mut lone = seen(1, Duration::from_secs(1), 1);
        assert_eq!(linger_left(&mut lone), None, "an id not contended never lingers");
    }

    #[test]
    fn short_of_the_last_batch_the_newest_save_lingers_for_the_last_write_s_time_at_most_a_second() {
        let mut short = seen(4, Duration::from_millis(300), 2);
        let left = linger_left(&mut short).expect("two of four wait: it lingers");
        assert!(left <= Duration::from_millis(300), "{left:?}");
        let deadline = short.linger_until.expect("the deadline is shared");
        // A later look keeps the deadline; it may find it passed (a thread stalled
        // 300 ms between the two looks), never moved.
        let again = linger_left(&mut short);
        assert!(
            again.is_none_or(|again| again <= left),
            "a later look keeps the same deadline: {again:?} after {left:?}"
        );
        assert_eq!(short.linger_until, Some(deadline));
        let mut stalled = seen(4, Duration::from_secs(30), 2);
        let left = linger_left(&mut stalled).expect("it lingers");
        assert!(left <= MAX_LINGER, "a stalled disk holds saves back {left:?}");
        let mut over = seen(4, Duration::from_millis(300), 2);
        over.linger_until = Some(Instant::now());
        assert_eq!(linger_left(&mut over), None, "a deadline passed: it writes");
    }

    #[test]
    fn releasing_one_id_never_forgets_another_id_s_slot_in_use() {
        let table = LockTable::default();
        let (held, other) = (SessionId::new("held").unwrap(), SessionId::new("other").unwrap());
        let lock = table.lock(&held);
        drop(table.lock_for_save(&other).expect("free"));
        drop(table.lock(&other));
        let slots = relock(&table.slots);
        let kept = slots.get(&held).expect("the held id's slot was forgotten");
        assert!(
            Arc::ptr_eq(kept, &lock.slot),
            "a new locker of the held id would not wait for its holder"
        );
        assert!(!slots.contains_key(&other), "the released id's slot is forgotten");
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
