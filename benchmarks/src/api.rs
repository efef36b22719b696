//! The local API at scale: lists, filters, `status` and a text search answered by a
//! daemon over 100,000 sessions (10,000 with `--quick`), against the same requests on
//! 1,000 sessions in the same run.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::measure::{median, ms};
use crate::{Row, Settings};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const DEVICES: usize = 20;
/// 2026-01-01T00:00:00Z.
const FIRST_START: u64 = 1_767_225_600_000;

/// Whether session `i` of a generated store passes the deep page's filters (failed,
/// analyzer `10.1.0.7`, started from 2026-01-01 to 2026-02-01 00:00, both included, as
/// the API's `from` and `to` are): see [`REQUESTS`].
fn in_deep_page(i: usize) -> bool {
    i.is_multiple_of(7) && i % DEVICES == 7 && (i as u64) * 60_000 <= 31 * 24 * 3_600_000
}

/// The sessions of the 1,000-session store the figures at scale are compared against:
/// every session of the large store (`of`) the deep page's filters pass, then the first
/// others. The filtered request then gives the same answer on both stores (the same
/// total, the same page), so its ratio is what the store's size costs, not the answer's.
fn small_store(of: usize) -> Vec<usize> {
    let matching = (0..of).filter(|&i| in_deep_page(i));
    let others = (0..of).filter(|&i| !in_deep_page(i));
    let mut chosen: Vec<usize> = matching.chain(others).take(1_000).collect();
    chosen.sort_unstable();
    chosen
}

/// A store of the sessions `which` (session `i` started `i` minutes after the first),
/// from 20 analyzers, each with one ORU whose sample id is `S-<i>`.
fn generate(dir: &Path, which: &[usize]) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(err)?;
    let next = AtomicUsize::new(0);
    let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| {
                loop {
                    let Some(&i) = which.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let start = FIRST_START + i as u64 * 60_000;
                    let message = format!(
                        "MSH|^~\\&|AN|LAB|LIS|HOSP|20260101000000||ORU^R01|C{i}|P|2.5\rPID|1||P{i}\rOBR|1||S-{i:07}|GLU\rOBX|1|NM|GLU^Glucose||5.{}|mmol/L|3.9-5.8|N|||F",
                        i % 10
                    );
                    let doc = serde_json::json!({
                        "id": format!("s-{i:07}"),
                        "startTime": start,
                        "endTime": start + 900,
                        "isComplete": true,
                        "deviceIP": format!("10.1.0.{}", i % DEVICES),
                        "lisIP": "10.0.0.1",
                        "messages": [message],
                        "persistedUntil": u64::MAX / 2,
                        "submissionStatus": if i.is_multiple_of(7) { "failed" } else { "submitted" },
                    });
                    if let Ok(decoded) = session_store::decode(doc.to_string().as_bytes())
                        && let Ok(bytes) = session_store::encode(&decoded.session)
                    {
                        let _ = std::fs::write(dir.join(format!("s-{i:07}.json")), bytes);
                    }
                }
            });
        }
    });
    Ok(())
}

/// `GET path` on `addr`: the time to the whole answer, and the body.
fn get(addr: &str, path: &str) -> Result<(Duration, String), String> {
    let t = Instant::now();
    let mut stream = std::net::TcpStream::connect(addr).map_err(err)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(err)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(err)?;
    let took = t.elapsed();
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "GET {path}: {}",
            answer.lines().next().unwrap_or_default()
        ));
    }
    Ok((
        took,
        answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    ))
}

/// A daemon on `dir` with its API on a free port: the guard and the address.
fn daemon(sessionctl: &Path, dir: &Path) -> Result<(Guard, String), String> {
    let mut child = Guard(
        Command::new(sessionctl)
            .arg("--dir")
            .arg(dir)
            .args([
                "--set",
                "http_listen=127.0.0.1:0",
                "--set",
                "cleanup_dry_run=true",
                "run",
            ])
            .env("HL7_LOG_FORMAT", "json")
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(err)?,
    );
    let stderr = child.0.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.map_err(err)?;
        if let Some(url) = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["fields"]["url"].as_str().map(str::to_owned))
        {
            addr = Some(url.trim_start_matches("http://").trim_end_matches('/').to_owned());
        }
        if line.contains("serving") {
            break;
        }
        if Instant::now() > deadline {
            return Err("the daemon did not start".into());
        }
    }
    // Keep draining its log so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, addr.ok_or("the daemon logged no API address")?))
}

/// The median times of `runs` requests of `path` to each of two daemons, taken in
/// turn, so that the machine's noise falls on both alike.
fn timed_side_by_side(
    first: &str,
    second: &str,
    path: &str,
    runs: usize,
) -> Result<(Duration, Duration), String> {
    get(first, path)?; // warm
    get(second, path)?;
    let (mut a, mut b) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        a.push(get(first, path)?.0);
        b.push(get(second, path)?.0);
    }
    Ok((median(a), median(b)))
}

const REQUESTS: [(&str, &str); 4] = [
    (
        "`GET /api/sessions?limit=50` (newest first)",
        "/api/sessions?limit=50",
    ),
    (
        "`GET /api/sessions` filtered (status, analyzer, a month) and paged deep (both stores hold the same matches: the same answer)",
        "/api/sessions?status=failed&device=10.1.0.7&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&limit=50&offset=100",
    ),
    (
        "`GET /api/sessions?sort=deviceIP&limit=50` (sorted by a column)",
        "/api/sessions?sort=deviceIP&limit=50",
    ),
    ("`GET /api/status`", "/api/status"),
];

/// The figures.
pub(crate) fn at_scale(work: &Path, s: &Settings, sessionctl: Option<&Path>) -> Result<Vec<Row>, String> {
    let Some(sessionctl) = sessionctl else {
        return Ok(Vec::new());
    };
    let n = s.daemon_sessions;
    let small_dir = work.join("api-store-small");
    let big_dir = work.join("api-store-big");
    generate(&small_dir, &small_store(n))?;
    generate(&big_dir, &(0..n).collect::<Vec<_>>())?;
    let (_small_daemon, small_addr) = daemon(sessionctl, &small_dir)?;
    let (_daemon, addr) = daemon(sessionctl, &big_dir)?;
    let mut rows = Vec::new();
    for (what, path) in REQUESTS {
        let (ours, base) = timed_side_by_side(&addr, &small_addr, path, 41)?;
        let mut row = Row::ratio(
            &format!("{what}, {n} sessions"),
            ms(ours),
            format!("{} on 1,000 sessions", ms(base)),
            ours,
            base,
            "<= 2 x, and <= 50 ms",
            2.0,
        );
        row.met = row.met && ours <= Duration::from_millis(50);
        rows.push(row);
    }
    // A text search for one sample id in the middle: every file is read (on the page's
    // budget), newest first.
    let wanted = format!("S-{:07}", n / 2);
    let (took, body) = get(&addr, &format!("/api/sessions?q={wanted}&limit=50"))?;
    let answer: serde_json::Value = serde_json::from_str(&body).map_err(err)?;
    let found = answer["total"].as_u64().unwrap_or_default();
    let searched = answer["search"]["searched"].as_u64().unwrap_or_default();
    rows.push(Row {
        figure: format!("text search of every message for one sample id, {n} sessions"),
        ours: ms(took),
        baseline: format!("found {found}; searched {searched} of {n}"),
        ratio: "-".into(),
        target: "<= 2 s, finds it".into(),
        met: took <= Duration::from_secs(2) && found == 1,
    });
    Ok(rows)
}
