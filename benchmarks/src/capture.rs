//! Capture's figures: durable appends against the durable-save floor, and the relay
//! against its floor: a plain relay (a tokio copy loop) plus the two durable appends a
//! relay that records before it forwards cannot avoid, measured in the same run.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use session_capture::{Endpoints, FramedElement, Recorder};
use session_model::{Direction, ElementKind};
use session_store::{DecodeOptions, SessionStore};

use crate::measure::{median, ms};
use crate::{Row, Settings};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// One HL7 message of about `bytes` bytes, ending in CR LF.
fn message(bytes: usize) -> Vec<u8> {
    let mut m = b"MSH|^~\\&|AN|LAB|||20251102||ORU^R01|1|P|2.5\r".to_vec();
    m.resize(bytes.saturating_sub(2).max(m.len()), b'x');
    m.extend_from_slice(b"\r\n");
    m
}

/// Appends of one message element, against the durable save of the same bytes by hand.
pub(crate) fn appends(work: &Path, s: &Settings) -> Result<Vec<Row>, String> {
    let dir = super::figures::fresh(&work.join("capture-appends"))?;
    let floor_dir = super::figures::fresh(&work.join("capture-floor"))?;
    let recorder = Recorder::new(SessionStore::open(&dir, DecodeOptions::default()).map_err(err)?);
    let mut open = recorder.begin(&Endpoints::default(), 1).map_err(err)?;
    let element = FramedElement {
        timestamp: 1,
        direction: Direction::DeviceToPc,
        kind: ElementKind::Message,
        bytes: message(1_000),
    };
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for n in 0..s.single_saves {
        let t = Instant::now();
        open.append(&element).map_err(err)?;
        ours.push(t.elapsed());
        let t = Instant::now();
        super::figures::floor_save(&floor_dir, "element", &element.bytes, n)?;
        floor.push(t.elapsed());
    }
    open.complete(2).map_err(err)?;
    let (ours, floor) = (median(ours), median(floor));
    let rate = |d: Duration| 1.0 / d.as_secs_f64().max(f64::MIN_POSITIVE);
    Ok(vec![Row::higher(
        "capture: durable appends of a 1 KB element (per second)",
        format!("{:.0}/s ({})", rate(ours), ms(ours)),
        format!("{:.0}/s durable save floor ({})", rate(floor), ms(floor)),
        rate(ours),
        rate(floor),
        ">= 1 x the save floor (one fsync, not two)",
        1.0,
    )])
}

/// A LIS that answers every CR LF (and every ENQ) with an ACK.
fn echo_lis() -> Result<(String, std::thread::JoinHandle<()>), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(err)?;
    let addr = listener.local_addr().map_err(err)?.to_string();
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_nodelay(true);
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let mut last = 0u8;
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let mut acks = 0;
                    for &b in &buf[..n] {
                        if b == 0x05 || (last == b'\r' && b == b'\n') {
                            acks += 1;
                        }
                        last = b;
                    }
                    if stream.write_all(&vec![0x06; acks]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((addr, handle))
}

/// A plain relay to `lis`: a tokio copy loop per connection, recording nothing. The
/// baseline every added cost of ours is measured against. Lives as long as the process.
fn plain_relay(lis: String) -> Result<String, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
    let addr = listener.local_addr().map_err(err)?.to_string();
    listener.set_nonblocking(true).map_err(err)?;
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Runtime::new() else {
            return;
        };
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((mut analyzer, _)) = listener.accept().await {
                let lis = lis.clone();
                tokio::spawn(async move {
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&lis).await else {
                        return;
                    };
                    let _ = analyzer.set_nodelay(true);
                    let _ = upstream.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut analyzer, &mut upstream).await;
                });
            }
        });
    });
    Ok(addr)
}

/// The least a relay that records before it forwards can do, measured as one: per
/// connection, a preallocated file both directions append to, and a thread per
/// direction that reads a chunk, writes it at the file's end (`pwrite`), makes it
/// durable (`fdatasync`), then forwards it. No framing, no sessions, no encoding. Timed
/// back-to-back, appends cost less than the same appends between a relay's reads (the
/// disk and the CPU idle in between): this measures them as a relay pays them. Lives
/// as long as the process; each connection's file is in `dir`.
///
/// With `session_files` (a size in bytes), it also stores each session as one durable
/// file of that size, as the contract's format asks of any capture (one JSON file per
/// session): per connection a thread that, for each EOT the analyzer sends, writes the
/// file the cheapest durable way a new file can be written (a new temp, its bytes, its
/// `fsync`, a rename to its name, the directory's `fsync`), beside the conversation as
/// ours does.
fn recording_relay(lis: String, dir: &Path, session_files: Option<usize>) -> Result<String, String> {
    use std::os::unix::fs::FileExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    /// Each connection's file, written round and round: the size of a journal.
    const ROOM: u64 = 64 << 10;
    /// The most one read takes: a chunk always fits below `ROOM` wherever it starts, so
    /// no append grows the file (a new size to commit is not the floor's cost).
    const CHUNK: usize = 16 << 10;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(err)?;
    let addr = listener.local_addr().map_err(err)?.to_string();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        for (n, analyzer) in listener.incoming().enumerate() {
            // A connection that cannot be set up is dropped; the analyzer sees it closed.
            let Ok(analyzer) = analyzer else { continue };
            let Ok(upstream) = TcpStream::connect(&lis) else {
                continue;
            };
            let Ok(file) = preallocated(&dir.join(format!("connection-{n}")), ROOM as usize) else {
                continue;
            };
            let _ = analyzer.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (Ok(analyzer_out), Ok(upstream_out)) = (analyzer.try_clone(), upstream.try_clone()) else {
                continue;
            };
            let (file, end) = (Arc::new(file), Arc::new(AtomicU64::new(0)));
            let mut ended = session_files.map(|size| session_file_writer(dir.clone(), n, size));
            for (mut from, mut to) in [(analyzer, upstream_out), (upstream, analyzer_out)] {
                let (file, end) = (file.clone(), end.clone());
                // The analyzer's direction tells the storing thread of each EOT.
                let ended = ended.take();
                std::thread::spawn(move || {
                    let mut buf = [0u8; CHUNK];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let at = end.fetch_add(n as u64, Ordering::Relaxed) % (ROOM - CHUNK as u64);
                        let recorded = file.write_all_at(&buf[..n], at).and_then(|()| file.sync_data());
                        if recorded.is_err() || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        if let Some(ended) = &ended
                            && buf[..n].contains(&EOT)
                        {
                            let _ = ended.send(());
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    Ok(addr)
}

/// The byte that ends a session.
const EOT: u8 = 0x04;

/// A thread that stores one durable file of `size` bytes in `dir` for each session
/// connection `connection` ends (each message sent to it), as the save figure's floor
/// writes one ([`super::figures::floor_save`]); it stops at the first failure, or when
/// the connection's sender goes.
fn session_file_writer(dir: PathBuf, connection: usize, size: usize) -> std::sync::mpsc::Sender<()> {
    let (sender, ended) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let body = vec![b'x'; size];
        for (k, ()) in ended.into_iter().enumerate() {
            let name = format!("session-{connection}-{k}");
            if super::figures::floor_save(&dir, &name, &body, k).is_err() {
                return;
            }
        }
    });
    sender
}

/// A file of `bytes` zeros, durable, to append into without changing its size.
fn preallocated(path: &Path, bytes: usize) -> Result<std::fs::File, String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(err)?;
    file.write_all(&vec![0u8; bytes]).map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok(file)
}

/// One durable append of `record` bytes: `pwrite` into a preallocated file, then
/// `fdatasync` (nothing about the file's size to commit). The cheapest durable append
/// there is: the floor of a relay that records before it forwards.
fn timed_appends(path: &Path, record: usize, n: usize) -> Result<Vec<Duration>, String> {
    use std::os::unix::fs::FileExt;
    let file = preallocated(path, record * n)?;
    let data = vec![b'x'; record];
    (0..n)
        .map(|i| {
            let t = Instant::now();
            file.write_all_at(&data, (i * record) as u64).map_err(err)?;
            file.sync_data().map_err(err)?;
            Ok(t.elapsed())
        })
        .collect()
}

/// How many such appends per second the disk takes from `writers` threads at once,
/// each on its own file: the most any relay can record for that many analyzers.
fn concurrent_append_rate(dir: &Path, writers: usize, record: usize, each: usize) -> Result<f64, String> {
    let started = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|w| scope.spawn(move || timed_appends(&dir.join(format!("w{w}")), record, each).map(|_| ())))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| "an append thread panicked".to_string())?)
    })?;
    Ok((writers * each) as f64 / started.elapsed().as_secs_f64())
}

/// Lockstep sessions over `addr`: ENQ, then `messages` messages each waiting for its
/// ACK, then EOT; every message's round trip.
fn lockstep(addr: &str, sessions: usize, messages: usize, bytes: usize) -> Result<Vec<Duration>, String> {
    let mut stream = TcpStream::connect(addr).map_err(err)?;
    stream.set_nodelay(true).map_err(err)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(err)?;
    let mut ack = [0u8; 1];
    let m = message(bytes);
    let mut times = Vec::with_capacity(sessions * messages);
    for _ in 0..sessions {
        stream.write_all(&[0x05]).map_err(err)?;
        stream.read_exact(&mut ack).map_err(err)?;
        for _ in 0..messages {
            let t = Instant::now();
            stream.write_all(&m).map_err(err)?;
            stream.read_exact(&mut ack).map_err(err)?;
            times.push(t.elapsed());
        }
        stream.write_all(&[0x04]).map_err(err)?;
    }
    Ok(times)
}

/// `analyzers` lockstep analyzers at once over `addr`: messages per second, all told.
fn lockstep_rate(
    addr: &str,
    analyzers: usize,
    sessions: usize,
    messages: usize,
    bytes: usize,
) -> Result<f64, String> {
    let started = Instant::now();
    let total: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..analyzers)
            .map(|_| scope.spawn(|| lockstep(addr, sessions, messages, bytes).map(|t| t.len())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "an analyzer thread panicked".to_string())?)
            .sum::<Result<usize, String>>()
    })?;
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// The median size of the files in `dir` named `prefix...suffix`; an error when there
/// is none.
fn median_file_size(dir: &Path, prefix: &str, suffix: &str) -> Result<usize, String> {
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(suffix) {
            sizes.push(entry.metadata().map_err(err)?.len() as usize);
        }
    }
    sizes.sort_unstable();
    sizes
        .get(sizes.len() / 2)
        .copied()
        .ok_or_else(|| format!("no {prefix}*{suffix} file in {}", dir.display()))
}

fn quantile(mut samples: Vec<Duration>, q: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1));
    samples.get(i).copied().unwrap_or_default()
}

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sessionctl capture` on `dir`, forwarding to `lis`: the child and its address.
fn start_relay(sessionctl: &Path, dir: &Path, lis: &str) -> Result<(Relay, String), String> {
    let mut child = Relay(
        Command::new(sessionctl)
            .arg("--dir")
            .arg(dir)
            .args(["capture", "--listen", "127.0.0.1:0", "--forward", lis])
            .env("HL7_LOG_FORMAT", "json")
            .env("HL7_HTTP_LISTEN", "")
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(err)?,
    );
    let stderr = child.0.stderr.take().ok_or("no stderr")?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let addr = loop {
        let line = lines
            .next()
            .ok_or("the relay exited before listening")?
            .map_err(err)?;
        if line.contains("capture relay listening") {
            let v: serde_json::Value = serde_json::from_str(&line).map_err(err)?;
            break v["fields"]["listen"]
                .as_str()
                .ok_or("no listen field")?
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((child, addr))
}

/// The capture relay against its floor: lockstep round trips of 200 B messages through
/// `sessionctl capture` and through a relay that only records before it forwards,
/// interleaved with a plain relay's and two durable appends of the same size (the sum
/// shown beside the floor); then 50 analyzers at once through both relays.
pub(crate) fn relay(work: &Path, s: &Settings, sessionctl: Option<&Path>) -> Result<Vec<Row>, String> {
    let Some(sessionctl) = sessionctl else {
        return Ok(Vec::new());
    };
    let dir = super::figures::fresh(&work.join("capture-relay"))?;
    let appends_dir = super::figures::fresh(&work.join("capture-append-floor"))?;
    // The figures before this one deleted hundreds of thousands of files: on ext4
    // without a journal, a file's creation skips every inode freed in the last minute,
    // or the last six while that inode's table block is dirty, a cost of the bench's own
    // clean-up that no analyzer's capture meets and the floor (one file per connection)
    // hardly pays. Settling the disk is not enough: the relay's own creations dirty the
    // table blocks the freed inodes share, so the six minutes apply (2026-12-07: after
    // a `syncfs` and 75 s, `find_inode_bit` was 8.5 % of the relay's CPU and `openat` 12 %;
    // after seven minutes without a deletion, 0.04 % and 3 %). The figure settles the
    // disk and waits those six minutes out. Its own files are removed after it, not
    // before the next run's.
    crate::measure::settle(work)?;
    std::thread::sleep(std::time::Duration::from_secs(365));
    let rows = relay_figures(&dir, &appends_dir, s, sessionctl);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&appends_dir);
    rows
}

fn relay_figures(
    dir: &Path,
    appends_dir: &Path,
    s: &Settings,
    sessionctl: &Path,
) -> Result<Vec<Row>, String> {
    const BYTES: usize = 200;
    const MESSAGES: usize = 10;
    const ANALYZERS: usize = 50;
    let (lis, _lis_thread) = echo_lis()?;
    let plain = plain_relay(lis.clone())?;
    let (relay, addr) = start_relay(sessionctl, dir, &lis)?;
    let sessions_per_round = (s.relay_sessions / s.rounds).max(1);
    let recording = recording_relay(lis.clone(), appends_dir, None)?;
    let (mut ours, mut baseline, mut append, mut recorded) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..s.rounds {
        ours.extend(lockstep(&addr, sessions_per_round, MESSAGES, BYTES)?);
        baseline.extend(lockstep(&plain, sessions_per_round, MESSAGES, BYTES)?);
        recorded.extend(lockstep(&recording, sessions_per_round, MESSAGES, BYTES)?);
        // The framed record is a little larger than the message: time that size.
        append.extend(timed_appends(
            &appends_dir.join(format!("round{round}")),
            BYTES + 64,
            sessions_per_round * MESSAGES,
        )?);
    }
    let plain_median = median(baseline.clone());
    let append_median = median(append.clone());
    let summed = plain_median + append_median * 2;
    let plain_p99 = quantile(baseline, 0.99);
    // The floor: the same round trips through a relay that only records before it
    // forwards. The issue's sum (a plain relay + two appends timed back-to-back) is
    // shown beside it: appends between a relay's reads cost more than back-to-back ones,
    // so no recording relay reaches the sum.
    let (recorded_median, recorded_p99) = (median(recorded.clone()), quantile(recorded, 0.99));
    let (ours_median, ours_p99) = (median(ours.clone()), quantile(ours.clone(), 0.99));
    let one_rate = 1.0 / ours_median.as_secs_f64().max(f64::MIN_POSITIVE);
    // Throughput: 50 analyzers at once. Its floor is the round trip's, scaled: what a
    // plain relay carries for the same 50 analyzers on the same cores, plus the two
    // durable appends per message the disk takes from 50 appenders at once (a message
    // costs the floor both: 1 / (1 / plain + 2 / disk)). 50 x one analyzer's rate
    // bounds it from above; on a machine with fewer cores than analyzers the plain
    // relay's own rate falls far below that.
    let each = (s.relay_sessions / ANALYZERS / 2).max(1);
    let messages = (ANALYZERS * each * MESSAGES).max(1) as f64;
    // A run's rate, and the relay's own CPU per message (microseconds): on a machine
    // the 50 analyzers keep busy, what each message and session costs sets the rate.
    let rate_and_relay_cpu_us =
        |rate: &mut dyn FnMut() -> Result<f64, String>| -> Result<(f64, f64), String> {
            let before = crate::measure::cpu_time(relay.0.id())?;
            let rate = rate()?;
            let used = crate::measure::cpu_time(relay.0.id())?.saturating_sub(before);
            Ok((rate, used.as_secs_f64() * 1e6 / messages))
        };
    let (many, many_cpu) =
        rate_and_relay_cpu_us(&mut || lockstep_rate(&addr, ANALYZERS, each, MESSAGES, BYTES))?;
    let plain_many = lockstep_rate(&plain, ANALYZERS, each, MESSAGES, BYTES)?;
    let recording_many = lockstep_rate(&recording, ANALYZERS, each, MESSAGES, BYTES)?;
    // The same recording relay storing each session as one durable file the size of
    // ours (the median of the session files ours just wrote): what the contract's one
    // file per session costs by itself, which the floor above does not pay.
    let session_file_size = median_file_size(dir, "session-", ".json")?;
    let storing_dir = super::figures::fresh(&appends_dir.join("storing"))?;
    let storing = recording_relay(lis.clone(), &storing_dir, Some(session_file_size))?;
    let storing_many = lockstep_rate(&storing, ANALYZERS, each, MESSAGES, BYTES)?;
    // The same analyzers with as many messages in one session each: what the sessions'
    // own costs (a journal made and removed, a session file written) take from the rate.
    let (one_session_each, one_session_cpu) =
        rate_and_relay_cpu_us(&mut || lockstep_rate(&addr, ANALYZERS, 1, each * MESSAGES, BYTES))?;
    let per_session_cpu = (many_cpu - one_session_cpu) * MESSAGES as f64;
    let disk = concurrent_append_rate(appends_dir, ANALYZERS, BYTES + 64, each * MESSAGES)?;
    let summed_floor = 1.0 / (1.0 / plain_many.max(f64::MIN_POSITIVE) + 2.0 / disk.max(f64::MIN_POSITIVE));
    let expected = (one_rate * ANALYZERS as f64).min(recording_many);
    let rss = crate::measure::status_kib(relay.0.id(), "VmHWM")? as f64 / 1024.0;
    drop(relay);
    let mut throughput = Row::higher(
        &format!("capture relay: {ANALYZERS} lockstep analyzers at once (messages per second, all told)"),
        format!(
            "{many:.0}/s ({one_session_each:.0}/s when each sends its {} messages as one session), relay peak RSS {rss:.1} MiB; the relay's CPU per message {many_cpu:.0} us ({one_session_cpu:.0} us as one session each: about {per_session_cpu:.0} us per session beyond its messages)",
            each * MESSAGES
        ),
        format!(
            "floor {expected:.0}/s: the same {ANALYZERS} analyzers through a relay that only records before it forwards (50 x one analyzer through ours: {:.0}/s). The same relay also storing each session as one durable file of {session_file_size} B (the contract's format, written the cheapest durable way): {storing_many:.0}/s, {:.2} x the floor; ours {:.2} x that. Summed instead: a plain tokio relay's {plain_many:.0}/s + 2 durable appends per message at the disk's {disk:.0}/s from {ANALYZERS} writers = {summed_floor:.0}/s, ours {:.2} x that",
            one_rate * ANALYZERS as f64,
            storing_many / expected.max(f64::MIN_POSITIVE),
            many / storing_many.max(f64::MIN_POSITIVE),
            many / summed_floor.max(f64::MIN_POSITIVE)
        ),
        many,
        expected,
        ">= 0.8 x, and peak RSS <= 64 MiB",
        0.8,
    );
    throughput.met &= rss <= 64.0;
    let of_sum = |d: Duration| d.as_secs_f64() / summed.as_secs_f64().max(f64::MIN_POSITIVE);
    Ok(vec![
        Row::ratio(
            &format!(
                "capture relay: lockstep round trip of a {BYTES} B message ({} messages, message and ACK each recorded before forwarding)",
                ours.len()
            ),
            ms(ours_median),
            format!(
                "floor {}: a relay that only records before it forwards (`pwrite` + `fdatasync` of each chunk into a preallocated file, then forward). Summed instead: plain tokio relay {} + 2 durable appends of {} B timed back-to-back ({} each) = {}, ours {:.2} x that",
                ms(recorded_median),
                ms(plain_median),
                BYTES + 64,
                ms(append_median),
                ms(summed),
                of_sum(ours_median)
            ),
            ours_median,
            recorded_median,
            "<= 1.2 x the floor",
            1.2,
        ),
        Row::ratio(
            "capture relay: p99 of the same round trips",
            ms(ours_p99),
            format!(
                "floor {} (median, as above; that relay's own p99 {}, the plain relay's {}; ours {:.2} x the sum above)",
                ms(recorded_median),
                ms(recorded_p99),
                ms(plain_p99),
                of_sum(ours_p99)
            ),
            ours_p99,
            recorded_median,
            "<= 3 x the floor",
            3.0,
        ),
        throughput,
    ])
}
