//! Time for decisions that are stored (next-attempt times, expiry): the store's
//! [`session_fs::clock`] seam, so that the workers and the store read one clock.

pub use session_fs::clock::{Clock, ManualClock, SystemClock};
