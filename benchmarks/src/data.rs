//! The sessions the benchmarks write and read, made from the app's fixtures.

use std::path::{Path, PathBuf};

use session_model::{Session, SessionId};

/// The app's fixture files in `fixtures/`, from the workspace root.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The 300-message `1.0.0` fixture's bytes.
pub(crate) fn big_fixture() -> Result<Vec<u8>, String> {
    let path = fixtures().join("v1/session-25.json");
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A `2.0.0` session of about `target` encoded bytes, from the 300-message fixture.
pub(crate) fn session_of_size(id: &str, target: usize) -> Result<Session, String> {
    let mut session = session_store::decode(&big_fixture()?)
        .map_err(|e| e.to_string())?
        .session;
    session.id = SessionId::new(id).map_err(|e| e.to_string())?;
    while session.elements.len() > 2 && encoded_len(&session) > target {
        session.elements.pop();
    }
    Ok(session)
}

pub(crate) fn encoded_len(session: &Session) -> usize {
    session_store::encode(session).map(|b| b.len()).unwrap_or(0)
}

/// Writes `count` `1.0.0` files like the fixtures (the small ones, in turn) into `dir`;
/// returns their total size.
pub(crate) fn store_of_v1_files(dir: &Path, count: usize) -> Result<u64, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let sources: Vec<serde_json::Value> = [
        "v1/session-21.json",
        "v1/session-22.json",
        "v1/session-23.json",
        "v1/session-24.json",
    ]
    .iter()
    .map(|rel| {
        let bytes = std::fs::read(fixtures().join(rel)).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    })
    .collect::<Result<_, String>>()?;
    let mut total = 0;
    for n in 0..count {
        let mut doc = sources[n % sources.len()].clone();
        let id = format!("bench-{n:05}");
        doc["id"] = id.clone().into();
        // Pretty, as the Electron app wrote them.
        let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
        total += bytes.len() as u64;
        std::fs::write(dir.join(format!("{id}.json")), bytes).map_err(|e| e.to_string())?;
    }
    Ok(total)
}

/// Runs `f` on every `*.json` in `dir`, on every core; how long it took.
pub(crate) fn on_every_json_file(
    dir: &Path,
    f: impl Fn(&Path) + Sync,
) -> Result<std::time::Duration, String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    let next = AtomicUsize::new(0);
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| {
                while let Some(path) = names.get(next.fetch_add(1, Ordering::Relaxed)) {
                    f(path);
                }
            });
        }
    });
    Ok(started.elapsed())
}

/// Reads and parses `path` into `serde_json::Value`: the floor of any decode.
pub(crate) fn read_and_parse(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_default();
    std::hint::black_box(serde_json::from_slice::<serde_json::Value>(&bytes).ok());
}
