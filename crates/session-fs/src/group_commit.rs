//! Group commit of the store directory's fsync: one fsync that starts after a rename
//! makes that rename durable, so concurrent saves share fsyncs instead of queueing one
//! each.

use std::sync::{Condvar, Mutex, PoisonError};

#[derive(Default)]
struct State {
    /// Renames announced so far.
    announced: u64,
    /// Every rename up to this number is durable.
    durable: u64,
    syncing: bool,
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    /// Called after a rename: returns once an fsync of the directory that began after
    /// this call has succeeded (this thread's own, or another's that covered it).
    pub(crate) fn commit<E>(&self, fsync: impl Fn() -> Result<(), E>) -> Result<(), E> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.announced += 1;
        let mine = state.announced;
        loop {
            if state.durable >= mine {
                return Ok(());
            }
            if state.syncing {
                state = self.done.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead: this fsync covers every rename announced before it starts.
            state.syncing = true;
            let covers = state.announced;
            drop(state);
            let result = fsync();
            state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.syncing = false;
            if result.is_ok() {
                state.durable = state.durable.max(covers);
            }
            self.done.notify_all();
            // On failure, the waiters it would have covered lead their own attempt.
            result?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn concurrent_commits_share_fsyncs_and_each_is_covered() {
        // One clock of events: a commit is covered when some fsync *started* after the
        // commit was called and *finished* before it returned.
        let clock = AtomicUsize::new(0);
        let group = GroupCommit::default();
        let syncs = Mutex::new(Vec::new());
        let commits = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let called = clock.fetch_add(1, Ordering::SeqCst);
                        group
                            .commit(|| {
                                let start = clock.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_micros(200));
                                let end = clock.fetch_add(1, Ordering::SeqCst);
                                syncs.lock().unwrap().push((start, end));
                                Ok::<(), ()>(())
                            })
                            .unwrap();
                        let returned = clock.fetch_add(1, Ordering::SeqCst);
                        commits.lock().unwrap().push((called, returned));
                    }
                });
            }
        });
        let (syncs, commits) = (syncs.into_inner().unwrap(), commits.into_inner().unwrap());
        assert!(
            syncs.len() < 400,
            "{} fsyncs for 400 commits: none shared",
            syncs.len()
        );
        for (called, returned) in commits {
            assert!(
                syncs.iter().any(|&(start, end)| start > called && end < returned),
                "a commit called at {called} returned at {returned} with no fsync begun after it"
            );
        }
    }

    #[test]
    fn a_failed_fsync_fails_its_leader_and_covers_nobody() {
        let group = GroupCommit::default();
        assert_eq!(group.commit(|| Err("EIO")), Err("EIO"));
        // The next commit must fsync again, not ride on the failed one.
        let called = AtomicUsize::new(0);
        group
            .commit(|| {
                called.fetch_add(1, Ordering::SeqCst);
                Ok::<(), &str>(())
            })
            .unwrap();
        assert_eq!(called.load(Ordering::SeqCst), 1);
    }
}
