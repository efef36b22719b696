//! `cargo xtask bench` (filled by the performance issue).

/// Runs the benchmarks.
pub fn bench(_args: &[String]) -> Result<(), String> {
    Err("benchmarks are not written yet".into())
}
