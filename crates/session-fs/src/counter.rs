//! Numbers that never repeat in a store, across restarts and processes: capture's
//! session numbers.

use std::ops::Range;

use crate::error::{FsError, Step};
use crate::layout;
use crate::storage::LockMode;
use crate::store::Store;

impl Store {
    /// Reserves `count` numbers of the counter `name` (kept in `.state/<name>`) that no
    /// reservation ever handed out before, in any process: at least `floor`, and above
    /// every earlier reservation. The new high mark is durable before this returns, so
    /// a crash can waste numbers but never repeat one.
    pub fn reserve_numbers(&self, name: &str, count: u64, floor: u64) -> Result<Range<u64>, FsError> {
        self.writable()?;
        let locks = self.area_path(layout::LOCKS_DIR)?;
        // `.<name>.lock` can never be a session's lock: no id starts with a dot.
        let lock_path = locks.join(format!(".{name}.lock"));
        let _lock = self
            .storage()
            .lock(&lock_path, LockMode::Exclusive, true)
            .map_err(FsError::io(Step::Lock, &lock_path))?;
        let state = self.area_path(layout::STATE_DIR)?.join(name);
        let stored = match self.read_state(name)? {
            None => 0,
            Some(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    FsError::io(Step::Reserve, &state)(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the counter is not a number; fix or remove it by hand",
                    ))
                })?,
        };
        let start = stored.max(floor);
        let end = start.checked_add(count).ok_or_else(|| {
            FsError::io(Step::Reserve, &state)(std::io::Error::other("the counter is exhausted"))
        })?;
        self.write_state(name, end.to_string().as_bytes())?;
        Ok(start..end)
    }
}
