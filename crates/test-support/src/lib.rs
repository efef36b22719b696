//! Scaffolding shared by the workspace's tests (never a dependency of library code).
//!
//! - [`rerun_as_child`]: the test binary running one of its own tests as a child process,
//!   the way the kill tests get a real process to SIGKILL.
//! - [`ChildGuard`]: a child that is killed and reaped when the guard drops, so a failed
//!   assertion never leaves a process holding a store's locks.
//! - [`FIXTURES`] and [`fixture`]: the app's real-format files in the repository.
//! - [`tree`]: every name under a directory with its bytes, to prove that nothing changed.
//! - [`names_in`]: the names directly in a directory, sorted.
//! - [`wait_until`]: a poll with a deadline (never a bare loop).
//! - [`mkfifo`]: a FIFO where a session file is expected, the hostile name no reader
//!   may block on.
//! - [`captures`]: pcap captures built packet by packet.
//!
//! ```
//! let mut child = test_support::ChildGuard::new(std::process::Command::new("sleep").arg("30").spawn().unwrap());
//! assert!(child.try_wait().unwrap().is_none());
//! drop(child); // killed and reaped here
//! ```
#![warn(missing_docs)]

pub mod captures;

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The workspace's `fixtures/` directory: files in the Electron app's formats, damaged
/// ones included.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");

/// A fixture's path, `rel` under [`FIXTURES`] (`"v1/session-21.json"`).
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(FIXTURES).join(rel)
}

/// The fixture `rel` as a file of the session `id`: its JSON with the id replaced
/// (compact), for a store of many sessions written from one real file.
pub fn fixture_as(rel: &str, id: &str) -> Vec<u8> {
    let bytes = std::fs::read(fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
    doc["id"] = id.into();
    serde_json::to_vec(&doc).expect("a JSON value serializes")
}

/// Every name under `root` (relative to it), with its bytes: a directory as `<dir>`, a
/// symlink as its target, anything else that is not a regular file as `<special>`.
/// Symlinks are never followed. Comparing two trees proves nothing was created,
/// removed or changed, byte for byte.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("its metadata");
            let rel = path.strip_prefix(root).expect("under the root").to_path_buf();
            if meta.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("a symlink's target");
                out.insert(rel, target.into_os_string().into_encoded_bytes());
            } else if meta.is_file() {
                out.insert(rel, std::fs::read(&path).expect("a file's bytes"));
            } else {
                out.insert(rel, b"<special>".to_vec());
            }
        }
    }
    out
}

/// The paths (relative to `root`, sorted) of everything under it that is not a
/// directory, leaving out what lies under the top-level names in `skip`.
pub fn files_under(root: &Path, skip: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = tree(root)
        .into_iter()
        .filter(|(rel, bytes)| bytes.as_slice() != b"<dir>" && !skip.iter().any(|s| rel.starts_with(s)))
        .map(|(rel, _)| rel.display().to_string())
        .collect();
    out.sort();
    out
}

/// The names directly in `dir`, sorted; none when `dir` does not exist.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| {
                    e.expect("a directory entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The journals of the store at `store_dir` (`.journal/<id>.journal`): captures not
/// yet stored as session files. The spares beside them (finished journals kept, emptied,
/// for the next capture) are not journals.
pub fn journals_in(store_dir: &Path) -> Vec<String> {
    names_in(&store_dir.join(".journal"))
        .into_iter()
        .filter(|name| name.ends_with(".journal") && !name.starts_with('.'))
        .collect()
}

/// Polls `ready` every 10 ms until it returns `Some`, or panics naming `what` after
/// `limit`. For waiting on another process; never for deciding an outcome by a clock.
pub fn wait_until<T>(limit: Duration, what: &str, ready: impl FnMut() -> Option<T>) -> T {
    poll_until(limit, ready).unwrap_or_else(|| panic!("waited {limit:?} for {what}"))
}

/// [`wait_until`] that returns `None` at the deadline, for a caller that has more to
/// say when it fails (a child's log, say).
pub fn poll_until<T>(limit: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = ready() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until someone is blocked in `flock` on the file `path` names (a `->` line of
/// `/proc/locks` for its inode), so that a test can act while the wait is certainly
/// under way. Panics with `what` when none is after 10 s, or the file is gone.
pub fn wait_for_flock_waiter(path: &Path, what: &str) {
    use std::os::unix::fs::MetadataExt;
    let waiting = poll_until(Duration::from_secs(10), || {
        let inode = std::fs::metadata(path).ok()?.ino();
        let on_inode = format!(":{inode} ");
        let locks = std::fs::read_to_string("/proc/locks").expect("/proc/locks");
        locks
            .lines()
            .any(|line| line.contains("->") && line.contains(&on_inode))
            .then_some(())
    });
    assert!(waiting.is_some(), "no one waits on {}: {what}", path.display());
}

/// Makes a FIFO at `path` (mode 0600), panicking with the path when it cannot.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("a path without NUL");
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let made = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(
        made,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

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

/// A journal's bytes up to the end of its records: the header and every record, without
/// the zeros a journal is preallocated with (an all-zero record head ends the records).
/// Written back with `std::fs::write`, it is the journal a store that cannot
/// preallocate would have left.
pub fn journal_written(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut end = 8.min(bytes.len());
    while let Some(head) = bytes.get(end..end + 8) {
        if head.iter().all(|&b| b == 0) {
            break;
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        end = (end + 8 + len).min(bytes.len());
    }
    bytes[..end].to_vec()
}

/// The system calls `calls` (strace's `trace=` list) that one test of the current test
/// binary makes when rerun alone as a child under `strace -f`, with `env` set: strace's
/// lines, in order. `None` (said on stderr) where strace is missing or ptrace is not
/// allowed, outside CI only: CI must have both, and fails without them.
pub fn strace_of_child(test: &str, calls: &str, env: (&str, &Path)) -> Option<Vec<String>> {
    let in_ci = std::env::var_os("CI").is_some();
    if Command::new("strace").arg("-V").output().is_err() {
        assert!(!in_ci, "CI must have strace (.ci/run installs it)");
        eprintln!("skipped: strace is not installed");
        return None;
    }
    let trace_dir = tempfile::tempdir().expect("a temp directory");
    let trace = trace_dir.path().join("trace.txt");
    let out = Command::new("strace")
        .args(["-f", "-e", &format!("trace={calls}"), "-o"])
        .arg(&trace)
        .arg(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .output()
        .expect("strace runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("ptrace") {
        assert!(!in_ci, "CI must allow ptrace: {stderr}");
        eprintln!("WARNING: skipped: this machine does not allow ptrace: {stderr}");
        return None;
    }
    assert!(out.status.success(), "{stderr}");
    let lines = std::fs::read_to_string(&trace)
        .expect("strace's output")
        .lines()
        .map(str::to_owned)
        .collect();
    Some(lines)
}

/// The descriptor a traced call returned (`openat(...) = 7` gives 7).
pub fn strace_returned_fd(line: &str) -> Option<i64> {
    line.rsplit_once("= ")?.1.split_whitespace().next()?.parse().ok()
}

/// The descriptor a traced `call` was made on, its first argument (`write(5, ...` gives
/// 5 for `write`); `None` when the line is not that call.
pub fn strace_call_fd(line: &str, call: &str) -> Option<i64> {
    let (_, args) = line.split_once(&format!("{call}("))?;
    args.split(',').next()?.trim().parse().ok()
}

/// A writer whose bytes every clone shares: what a test hands a log subscriber
/// (`tracing_subscriber::fmt().with_writer(move || logs.clone())`) to read the lines
/// afterwards with [`CapturedLogs::text`].
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
