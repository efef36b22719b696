//! Timing and memory measurement.

use std::time::{Duration, Instant};

/// The median of `samples`.
pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Writes back everything the filesystem holding `dir` has dirty (`syncfs`), so that a
/// timed run does not share the disk with the write-back of the set-up that made its
/// store: at 100,000 files (a GB) that write-back was still running when the timing
/// began, and at 10,000 it was not, which made growth look worse than linear.
pub(crate) fn settle(dir: &std::path::Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let handle = std::fs::File::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // SAFETY: syncfs takes an open descriptor, which `handle` keeps open for the call.
    if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
        return Err(format!(
            "syncfs {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Times `f` `n` times; the median.
pub(crate) fn median_of(n: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

/// Runs a command to completion and returns (wall time, peak RSS in KiB) of that child.
///
/// The child is started by a small helper process (this binary's `--child-peak`), not by
/// the bench itself: Linux counts the memory of the process a child was forked or
/// vforked from into the child's `ru_maxrss` (the old address space's high-water mark is
/// kept across `exec`), so a child of a bench holding a 100,000-session store would
/// report the bench's peak, not its own. The helper's own few MiB are the floor of what
/// this can report. Its standard output and error are discarded.
pub(crate) fn run_child(command: &mut std::process::Command) -> Result<(Duration, u64), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::env::temp_dir().join(format!("bench-peak-{}-{}", std::process::id(), next_call()));
    let mut helper = std::process::Command::new(me);
    helper
        .arg("--child-peak")
        .arg(&out)
        .arg(command.get_program())
        .args(command.get_args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => helper.env(key, value),
            None => helper.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        helper.current_dir(dir);
    }
    let started = Instant::now();
    let status = helper.status().map_err(|e| format!("{command:?}: {e}"))?;
    let elapsed = started.elapsed();
    let peak = std::fs::read_to_string(&out);
    let _ = std::fs::remove_file(&out);
    if !status.success() {
        return Err(format!("{command:?} failed ({status})"));
    }
    let peak = peak.map_err(|e| format!("{command:?}: no peak reported: {e}"))?;
    Ok((
        elapsed,
        peak.trim()
            .parse()
            .map_err(|e| format!("{command:?}: peak {peak:?}: {e}"))?,
    ))
}

/// A number that differs between calls in one process (the helper's result file name).
fn next_call() -> u64 {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// `benchmarks --child-peak OUT PROGRAM ARGS...`: runs PROGRAM with ARGS (standard input
/// closed, output inherited), waits for it, and writes its peak RSS in KiB to OUT. Fails
/// when PROGRAM does.
pub(crate) fn child_peak(args: &[String]) -> Result<(), String> {
    let [out, program, rest @ ..] = args else {
        return Err("--child-peak OUT PROGRAM ARGS...".into());
    };
    let child = std::process::Command::new(program)
        .args(rest)
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; status and usage point to live locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{program} failed (status {status})"));
    }
    std::fs::write(out, usage.ru_maxrss.to_string()).map_err(|e| e.to_string())
}

/// Milliseconds with three decimals.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// CPU time process `pid` has used so far (user + system).
pub(crate) fn cpu_time(pid: u32) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .ok_or("short stat")?
            .parse::<u64>()
            .map_err(|e| e.to_string())
    };
    let ticks = field(11)? + field(12)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_millis(ticks * 1000 / hz))
}

/// A `/proc/<pid>/status` figure in KiB: `VmRSS` (resident now) or `VmHWM` (its peak).
pub(crate) fn status_kib(pid: u32, field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field}"))
}
