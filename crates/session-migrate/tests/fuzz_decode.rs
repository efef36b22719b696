//! Mutational fuzzing of `decode`: arbitrary bytes must give an error, never a panic,
//! and never an allocation out of proportion to the input.
//!
//! The corpus is every fixture; each case mutates one (bit flips, byte edits, cuts,
//! splices, duplicated or deleted spans). `FUZZ_ITERATIONS` sets the number of cases
//! (CI runs the default; a long local run is `FUZZ_ITERATIONS=2000000 cargo test
//! --release -p session-migrate --test fuzz_decode -- --nocapture`). Inputs that ever
//! failed are kept in `tests/fuzz-regressions/` and replayed first.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Tracks the bytes allocated at once, to catch allocation without bound.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SHARED: &str = test_support::FIXTURES;
const OWN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const REGRESSIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-regressions");

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn corpus() -> Vec<Vec<u8>> {
    let mut files = files_under(Path::new(SHARED));
    files.extend(files_under(Path::new(OWN)));
    assert!(
        files.len() >= 15,
        "the fixtures are missing: {} files",
        files.len()
    );
    files
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        // The 1.3 MB fixture slows every case down; cuts of it are covered by the others.
        .filter(|b| b.len() < 64 * 1024)
        .collect()
}

fn mutate(rng: &mut StdRng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = corpus[rng.random_range(0..corpus.len())].clone();
    for _ in 0..rng.random_range(1..6) {
        let len = bytes.len();
        if len == 0 {
            bytes.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..len);
        match rng.random_range(0..9) {
            0 => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes[at] = rng.random(),
            2 => bytes.insert(
                at,
                *b"{}[]\",:0-9.e\\nu".get(rng.random_range(0..16)).unwrap_or(&b'x'),
            ),
            3 => {
                bytes.remove(at);
            }
            4 => bytes.truncate(at),
            5 => {
                let end = (at + rng.random_range(1..64)).min(len);
                let span = bytes[at..end].to_vec();
                let to = rng.random_range(0..len);
                bytes.splice(to..to, span);
            }
            6 => {
                let end = (at + rng.random_range(1..64)).min(len);
                bytes.drain(at..end);
            }
            7 => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                let from = rng.random_range(0..other.len().max(1));
                bytes.truncate(at);
                bytes.extend_from_slice(&other[from.min(other.len())..]);
            }
            _ => {
                // Deep nesting, the classic stack and allocation bomb.
                let depth = rng.random_range(1..4000);
                let mut bomb = vec![b'['; depth];
                bomb.extend(vec![b']'; depth]);
                bytes.splice(at..at, bomb);
            }
        }
    }
    bytes
}

fn decode_bounded(input: &[u8]) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let result = session_migrate::decode(input);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    // Generous, but proportional: a bounded decoder stays within a small multiple of its input.
    let bound = 64 * input.len() + 1024 * 1024;
    assert!(
        peak <= bound,
        "decode allocated {peak} bytes for a {}-byte input",
        input.len()
    );
    drop(result);
}

#[test]
fn regressions_still_pass() {
    let regressions = files_under(Path::new(REGRESSIONS));
    // Moved or emptied, the folder would make this pass on nothing.
    assert!(
        !regressions.is_empty(),
        "no regression inputs under {REGRESSIONS}"
    );
    for path in regressions {
        decode_bounded(&std::fs::read(&path).unwrap());
    }
}

#[test]
fn mutated_fixtures_never_panic_or_allocate_without_bound() {
    let iterations: usize = std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xf022);
    let corpus = corpus();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut ok, mut errors) = (0usize, 0usize);
    let started = std::time::Instant::now();
    for n in 0..iterations {
        let input = mutate(&mut rng, &corpus);
        let outcome = std::panic::catch_unwind(|| decode_bounded(&input));
        if outcome.is_err() {
            let kept = Path::new(REGRESSIONS).join(format!("case-{seed}-{n}.bin"));
            std::fs::create_dir_all(REGRESSIONS).unwrap();
            std::fs::write(&kept, &input).unwrap();
            panic!("decode failed on case {n}; input kept in {}", kept.display());
        }
        match session_migrate::decode(&input) {
            Ok(_) => ok += 1,
            Err(_) => errors += 1,
        }
    }
    eprintln!(
        "fuzzed decode: {iterations} cases in {:.1}s ({ok} decoded, {errors} errors), seed {seed}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        errors > 0 && ok > 0,
        "the mutator must produce both valid and invalid inputs"
    );
}
