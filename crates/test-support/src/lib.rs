//! Scaffolding shared by the workspace's tests (never a dependency of library code).
//!
//! - [`rerun_as_child`]: the test binary running one of its own tests as a child process,
//!   the way the kill tests get a real process to SIGKILL.
//! - [`ChildGuard`]: a child that is killed and reaped when the guard drops, so a failed
//!   assertion never leaves a process holding a store's locks.
//!
//! ```
//! let mut child = test_support::ChildGuard::new(std::process::Command::new("sleep").arg("30").spawn().unwrap());
//! assert!(child.try_wait().unwrap().is_none());
//! drop(child); // killed and reaped here
//! ```
#![warn(missing_docs)]

use std::ops::{Deref, DerefMut};
use std::process::{Child, Command};

/// A command that runs exactly one test of the current test binary, alone, in a child.
pub fn rerun_as_child(test: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    command
}

/// A child process killed (SIGKILL) and reaped on drop, if it still runs.
#[derive(Debug)]
pub struct ChildGuard(Child);

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child) -> Self {
        ChildGuard(child)
    }
}

impl Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        // After SIGKILL the wait is immediate: the kernel reaps a killed process at once.
        let _ = self.0.wait();
    }
}
