//! The relay as a library (feature `relay`): real sockets on 127.0.0.1, a LIS played by
//! the test that, every time bytes reach it, checks that each element they complete is
//! already in the capture's journal: record before forward, seen from the LIS's side.
#![cfg(feature = "relay")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use session_capture::Recorder;
use session_capture::relay::{RelayConfig, RelayStats, bind, relay};
use session_model::{Base64Bytes, InterruptionReason};
use session_store::{DecodeOptions, SessionStore, StoredEntry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Every journal's bytes, as text (records are JSON lines with base64 element bytes).
fn journals(dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(dir.join(".journal")) else {
        return String::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p: &PathBuf| p.extension().is_some_and(|x| x == "journal"))
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned())
        .collect()
}

fn journaled(dir: &Path, bytes: &[u8]) -> bool {
    let encoded = serde_json::to_value(Base64Bytes(bytes.to_vec())).unwrap();
    journals(dir).contains(encoded.as_str().unwrap())
}

/// A LIS that answers each complete unit (`ends` marks its end) with `answer(unit)`,
/// first checking that the unit is journaled. Returns its address, and what it got.
async fn checking_lis(
    dir: PathBuf,
    ends: &'static [u8],
    strip: fn(&[u8]) -> Vec<u8>,
    answer: fn(&[u8]) -> Vec<u8>,
) -> (String, tokio::task::JoinHandle<(Vec<u8>, usize)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let lis = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let (mut got, mut checked, mut start) = (Vec::new(), 0, 0);
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return (got, checked);
            }
            got.extend_from_slice(&buf[..n]);
            while let Some(at) = got[start..].windows(ends.len()).position(|w| w == ends) {
                let unit = got[start..start + at + ends.len()].to_vec();
                start += at + ends.len();
                assert!(
                    journaled(&dir, &strip(&unit)),
                    "the LIS received a unit before it was durable: {}",
                    unit.escape_ascii()
                );
                checked += 1;
                socket.write_all(&answer(&unit)).await.unwrap();
            }
        }
    });
    (addr, lis)
}

/// A message unit as the marker framing records it: without the start marker before it.
fn after_start_marker(unit: &[u8]) -> Vec<u8> {
    unit.strip_prefix(b"\x05").unwrap_or(unit).to_vec()
}

struct Running {
    store: SessionStore,
    stop: CancellationToken,
    relaying: tokio::task::JoinHandle<()>,
    stats: Arc<RelayStats>,
    addr: String,
}

async fn start(dir: &Path, lis: &str) -> Running {
    start_with(dir, RelayConfig::new("127.0.0.1:0", lis)).await
}

async fn start_with(dir: &Path, config: RelayConfig) -> Running {
    let store = SessionStore::open(dir, DecodeOptions::default()).unwrap();
    let listener = bind(&config).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = CancellationToken::new();
    let stats = Arc::new(RelayStats::default());
    let relaying = tokio::spawn(relay(
        listener,
        Arc::new(Recorder::new(store.clone())),
        config,
        stats.clone(),
        stop.clone(),
    ));
    Running {
        store,
        stop,
        relaying,
        stats,
        addr,
    }
}

fn sessions(store: &SessionStore) -> Vec<session_model::Session> {
    store
        .entries()
        .unwrap()
        .filter_map(|e| match e {
            StoredEntry::Valid(d) => Some(d.session),
            _ => None,
        })
        .collect()
}

async fn read_until(stream: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(end) {
        tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut byte))
            .await
            .expect("the relay forwards the answer")
            .unwrap();
        got.push(byte[0]);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marker_framing_records_each_message_before_the_lis_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let (lis_addr, lis) = checking_lis(dir.path().to_path_buf(), b"\r\n", after_start_marker, |_| {
        vec![0x06]
    })
    .await;
    let running = start(dir.path(), &lis_addr).await;
    let mut analyzer = TcpStream::connect(&running.addr).await.unwrap();
    let messages: Vec<String> = (1..=5)
        .map(|n| format!("MSH|^~\\&|AN|LAB|LIS|HOSP|20261205||ORU^R01|{n}|P|2.5\r\n"))
        .collect();
    analyzer.write_all(b"\x05").await.unwrap();
    for message in &messages {
        // Split mid-message: nothing of it is forwarded as a message until it is whole
        // and durable.
        let (head, tail) = message.as_bytes().split_at(7);
        analyzer.write_all(head).await.unwrap();
        analyzer.write_all(tail).await.unwrap();
        assert_eq!(read_until(&mut analyzer, b"\x06").await, b"\x06");
    }
    analyzer.write_all(b"\x04").await.unwrap();
    analyzer.shutdown().await.unwrap();
    let (got, checked) = lis.await.unwrap();
    assert_eq!(checked, messages.len());
    let sent: Vec<u8> = [b"\x05".to_vec(), messages.concat().into_bytes(), b"\x04".to_vec()].concat();
    assert_eq!(got, sent, "bytes pass unchanged");
    let stored = test_support::wait_until(Duration::from_secs(30), "the session stored", || {
        Some(sessions(&running.store)).filter(|s| !s.is_empty())
    });
    assert_eq!(stored.len(), 1);
    assert!(stored[0].is_complete && stored[0].interrupted.is_none());
    assert_eq!(stored[0].messages(), messages);
    running.stop.cancel();
    running.relaying.await.unwrap();
    assert_eq!(
        running.stats.sessions.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        running
            .stats
            .unrecorded
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_framing_records_each_frame_before_the_lis_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let (lis_addr, lis) = checking_lis(
        dir.path().to_path_buf(),
        b"\x1c\r",
        |frame| frame[1..frame.len() - 2].to_vec(),
        |_| b"\x0bMSH|^~\\&|LIS|HOSP|AN|LAB|20261205||ACK|1|P|2.5\rMSA|AA|1\r\x1c\r".to_vec(),
    )
    .await;
    let running = start(dir.path(), &lis_addr).await;
    let mut analyzer = TcpStream::connect(&running.addr).await.unwrap();
    for n in 1..=3 {
        let frame =
            format!("\x0bMSH|^~\\&|AN|LAB|LIS|HOSP|20261205||ORU^R01|{n}|P|2.5\rOBX|1|NM|GLU||5.{n}\r\x1c\r");
        analyzer.write_all(frame.as_bytes()).await.unwrap();
        read_until(&mut analyzer, b"\x1c\r").await;
    }
    drop(analyzer);
    let (_, checked) = lis.await.unwrap();
    assert_eq!(checked, 3);
    let stored = test_support::wait_until(Duration::from_secs(30), "the session stored", || {
        Some(sessions(&running.store)).filter(|s| !s.is_empty())
    });
    assert_eq!(stored.len(), 1, "one burst, one session");
    assert_eq!(stored[0].message_count(), 3);
    running.stop.cancel();
    running.relaying.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_relay_stores_an_open_session_as_interrupted_by_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (lis_addr, _lis) = checking_lis(dir.path().to_path_buf(), b"\r\n", after_start_marker, |_| {
        vec![0x06]
    })
    .await;
    let running = start(dir.path(), &lis_addr).await;
    let mut analyzer = TcpStream::connect(&running.addr).await.unwrap();
    analyzer.write_all(b"\x05MSH|1\r\n").await.unwrap();
    read_until(&mut analyzer, b"\x06").await;
    running.stop.cancel();
    running.relaying.await.unwrap();
    let stored = sessions(&running.store);
    assert_eq!(stored.len(), 1, "stored before the relay returned");
    let interruption = stored[0].interrupted.as_ref().expect("interrupted");
    assert_eq!(interruption.reason, InterruptionReason::Shutdown);
    assert_eq!(stored[0].messages(), vec!["MSH|1\r\n".to_string()]);
}

/// A LIS that reads `keep` bytes of its first connection, then closes it (with a reset
/// when `reset`); sends the bytes it read on `got`.
async fn closing_lis(keep: usize, reset: bool) -> (String, tokio::sync::oneshot::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut got = vec![0u8; keep];
        socket.read_exact(&mut got).await.unwrap();
        if reset {
            // SO_LINGER 0: the close sends RST.
            socket.set_zero_linger().unwrap();
        }
        drop(socket);
        let _ = tx.send(got);
    });
    (addr, rx)
}

fn message(n: usize) -> Vec<u8> {
    format!("MSH|^~\\&|AN|LAB|||20261205||ORU^R01|{n}|P|2.5\rOBX|1|NM|GLU||5.{n}\r\n").into_bytes()
}

/// Writes `bytes` and waits until the relay has read all `total` bytes the analyzer has
/// sent so far: each write is then a chunk of its own.
async fn send_as_one_chunk(analyzer: &mut TcpStream, bytes: &[u8], running: &Running, total: u64) {
    analyzer.write_all(bytes).await.unwrap();
    test_support::wait_until(Duration::from_secs(30), "the relay read the chunk", || {
        (running
            .stats
            .bytes_from_device
            .load(std::sync::atomic::Ordering::Relaxed)
            >= total)
            .then_some(())
    });
}

fn stored_one(store: &SessionStore) -> session_model::Session {
    let stored = test_support::wait_until(Duration::from_secs(30), "the session stored", || {
        Some(sessions(store)).filter(|s| !s.is_empty())
    });
    assert_eq!(stored.len(), 1, "{stored:?}");
    stored.into_iter().next().unwrap()
}

fn device_bytes(session: &session_model::Session) -> Vec<u8> {
    session
        .elements
        .iter()
        .filter(|e| e.direction == session_model::Direction::DeviceToPc)
        .flat_map(|e| e.data.0.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_lis_stopped_receiving_says_so_and_counts_every_byte_it_missed() {
    for reset in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let first: Vec<u8> = [&b"\x05"[..], &message(1)].concat();
        let (lis_addr, got) = closing_lis(20, reset).await;
        let running = start(dir.path(), &lis_addr).await;
        let mut analyzer = TcpStream::connect(&running.addr).await.unwrap();
        send_as_one_chunk(&mut analyzer, &first[..20], &running, 20).await;
        assert_eq!(got.await.unwrap(), &first[..20]);
        // The relay passes the LIS's close on: the analyzer reads its end (or a reset).
        let mut sink = [0u8; 16];
        let _ = tokio::time::timeout(Duration::from_secs(30), analyzer.read(&mut sink)).await;
        // The analyzer goes on regardless: a chunk that completes nothing, then the end
        // of its message, another message and the end marker.
        let partial = &first[20..first.len() - 2];
        send_as_one_chunk(&mut analyzer, partial, &running, (first.len() - 2) as u64).await;
        let rest: Vec<u8> = [&first[first.len() - 2..], &message(2), &b"\x04"[..]].concat();
        let sent = first.len() - 2 + rest.len();
        send_as_one_chunk(&mut analyzer, &rest, &running, sent as u64).await;
        drop(analyzer);
        let session = stored_one(&running.store);
        let interruption = session.interrupted.as_ref().expect("interrupted");
        assert_eq!(
            interruption.reason,
            InterruptionReason::LisClosed,
            "reset {reset}"
        );
        assert_eq!(
            interruption.lis_missed_bytes(),
            Some((sent - 20) as u64),
            "reset {reset}: every byte after the close, the chunk that completed nothing too"
        );
        assert!(session.is_complete, "the analyzer finished its transmission");
        assert_eq!(
            device_bytes(&session).len(),
            sent,
            "every byte the analyzer sent is recorded"
        );
        assert_eq!(session.message_count(), 2);
        running.stop.cancel();
        running.relaying.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lis_that_closes_after_the_analyzer_did_missed_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // This LIS reads to the analyzer's end of stream, answers, then closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_addr = listener.local_addr().unwrap().to_string();
    let lis = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        socket.read_to_end(&mut got).await.unwrap();
        socket.write_all(b"\x06after your end").await.unwrap();
        got
    });
    let running = start(dir.path(), &lis_addr).await;
    let mut analyzer = TcpStream::connect(&running.addr).await.unwrap();
    let sent: Vec<u8> = [&b"\x05"[..], &message(1)].concat();
    analyzer.write_all(&sent).await.unwrap();
    analyzer.shutdown().await.unwrap();
    // The LIS's answer to a half-closed analyzer still reaches it.
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), analyzer.read_to_end(&mut answer))
        .await
        .expect("the relay passes the LIS's answer and its close on")
        .unwrap();
    assert_eq!(answer, b"\x06after your end");
    assert_eq!(lis.await.unwrap(), sent);
    let session = stored_one(&running.store);
    let interruption = session
        .interrupted
        .as_ref()
        .expect("cut off before its end marker");
    assert_eq!(interruption.reason, InterruptionReason::ConnectionClosed);
    assert_eq!(interruption.lis_missed_bytes(), None);
    running.stop.cancel();
    running.relaying.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mllp_burst_is_stored_once_the_line_is_quiet_while_the_connection_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let (lis_addr, _lis) = checking_lis(
        dir.path().to_path_buf(),
        b"\x1c\r",
        |frame| frame[1..frame.len() - 2].to_vec(),
        |_| b"\x0bMSA|AA|1\r\x1c\r".to_vec(),
    )
    .await;
    let running = start(dir.path(), &lis_addr).await;
    let mut analyzer = TcpStream::connect(&running.addr).await.unwrap();
    analyzer
        .write_all(b"\x0bMSH|^~\\&|AN|LAB|LIS|HOSP|20261205||ORU^R01|1|P|2.5\r\x1c\r")
        .await
        .unwrap();
    read_until(&mut analyzer, b"\x1c\r").await;
    // No close: the quiet alone ends the burst, and the session is stored.
    let session = stored_one(&running.store);
    assert!(session.is_complete, "{session:?}");
    assert_eq!(session.message_count(), 1);
    drop(analyzer);
    running.stop.cancel();
    running.relaying.await.unwrap();
}

/// A LIS that accepts and then never reads: whatever the relay forwards piles up.
async fn deaf_lis() -> (String, tokio::task::JoinHandle<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move { listener.accept().await.unwrap().0 });
    (addr, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_relay_while_it_is_stuck_forwarding_to_a_lis_that_does_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let (lis_addr, _held) = deaf_lis().await;
    let running = start(dir.path(), &lis_addr).await;
    let mut analyzer = TcpStream::connect(&running.addr).await.unwrap();
    analyzer.write_all(b"\x05").await.unwrap();
    // Far more than the sockets' buffers hold: the relay ends up blocked writing.
    let line = message(1);
    let sender = tokio::spawn(async move {
        for _ in 0..200_000 {
            if analyzer.write_all(&line).await.is_err() {
                break;
            }
        }
        analyzer
    });
    test_support::wait_until(Duration::from_secs(30), "the relay's forwarding is stuck", || {
        let read = running
            .stats
            .bytes_from_device
            .load(std::sync::atomic::Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(200));
        (read > 0
            && read
                == running
                    .stats
                    .bytes_from_device
                    .load(std::sync::atomic::Ordering::Relaxed))
        .then_some(())
    });
    running.stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), running.relaying)
        .await
        .expect("stopping is not held up by a write the LIS never takes")
        .unwrap();
    sender.abort();
    let stored = sessions(&running.store);
    assert_eq!(
        stored.len(),
        1,
        "the open session is stored before the relay returns"
    );
    let interruption = stored[0].interrupted.as_ref().expect("interrupted");
    assert_eq!(interruption.reason, InterruptionReason::Shutdown);
    assert!(!stored[0].messages().is_empty(), "what was recorded is kept");
}

/// A LIS that answers every CR LF with an ACK, on every connection, and counts the
/// connections that ended (end of stream or error).
async fn acking_lis() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let ended = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = ended.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let ended = counted.clone();
            tokio::spawn(async move {
                let (mut buf, mut last) = ([0u8; 4096], 0u8);
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                    let mut acks = Vec::new();
                    for &b in &buf[..n] {
                        if last == b'\r' && b == b'\n' {
                            acks.push(0x06);
                        }
                        last = b;
                    }
                    if socket.write_all(&acks).await.is_err() {
                        ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                }
            });
        }
    });
    (addr, ended)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyzer_that_resets_mid_session_leaves_it_stored_interrupted_and_the_lis_released() {
    let dir = tempfile::tempdir().unwrap();
    let (lis_addr, lis_ended) = acking_lis().await;
    let running = start(dir.path(), &lis_addr).await;
    let mut analyzer = TcpStream::connect(&running.addr).await.unwrap();
    analyzer.write_all(b"\x05").await.unwrap();
    analyzer.write_all(&message(1)).await.unwrap();
    read_until(&mut analyzer, b"\x06").await;
    // SO_LINGER 0: the close sends RST.
    analyzer.set_zero_linger().unwrap();
    drop(analyzer);
    let stored = test_support::wait_until(Duration::from_secs(30), "the cut session is stored", || {
        let stored = sessions(&running.store);
        (!stored.is_empty()).then_some(stored)
    });
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].messages(), vec![String::from_utf8(message(1)).unwrap()]);
    let interruption = stored[0].interrupted.as_ref().expect("interrupted");
    assert_eq!(interruption.reason, InterruptionReason::ConnectionClosed);
    test_support::wait_until(
        Duration::from_secs(30),
        "the LIS's connection is closed too",
        || (lis_ended.load(std::sync::atomic::Ordering::SeqCst) == 1).then_some(()),
    );
    running.stop.cancel();
    running.relaying.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_analyzers_at_once_each_get_their_own_complete_session() {
    const ANALYZERS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let (lis_addr, _) = acking_lis().await;
    let running = start(dir.path(), &lis_addr).await;
    let mut talking = tokio::task::JoinSet::new();
    for n in 0..ANALYZERS {
        let addr = running.addr.clone();
        talking.spawn(async move {
            let mut analyzer = TcpStream::connect(&addr).await.unwrap();
            analyzer.write_all(b"\x05").await.unwrap();
            for m in 0..3 {
                analyzer.write_all(&message(n * 10 + m)).await.unwrap();
                read_until(&mut analyzer, b"\x06").await;
            }
            analyzer.write_all(b"\x04").await.unwrap();
            analyzer
        });
    }
    let mut open = Vec::new();
    while let Some(analyzer) = talking.join_next().await {
        open.push(analyzer.unwrap());
    }
    let stored = test_support::wait_until(Duration::from_secs(60), "every session is stored", || {
        let stored = sessions(&running.store);
        (stored.len() >= ANALYZERS).then_some(stored)
    });
    assert_eq!(stored.len(), ANALYZERS, "one session per analyzer, no more");
    let mut firsts: Vec<String> = stored
        .iter()
        .map(|s| {
            assert!(s.is_complete && s.interrupted.is_none(), "complete, not cut");
            assert_eq!(
                s.messages().len(),
                3,
                "every message in its own analyzer's session"
            );
            s.messages()[0].clone()
        })
        .collect();
    firsts.sort();
    firsts.dedup();
    assert_eq!(
        firsts.len(),
        ANALYZERS,
        "no analyzer's messages in another's session"
    );
    let mut ids: Vec<_> = stored.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ANALYZERS, "ids never repeat");
    drop(open);
    running.stop.cancel();
    running.relaying.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_connection_bound_the_relay_lets_analyzers_wait_until_one_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (lis_addr, _) = acking_lis().await;
    let running = start_with(
        dir.path(),
        RelayConfig::new("127.0.0.1:0", &lis_addr).max_connections(2),
    )
    .await;
    let (addr, stats) = (running.addr.clone(), running.stats.clone());
    let mut relayed = Vec::new();
    for n in 0..2 {
        let mut analyzer = TcpStream::connect(&addr).await.unwrap();
        analyzer.write_all(b"\x05").await.unwrap();
        analyzer.write_all(&message(n)).await.unwrap();
        read_until(&mut analyzer, b"\x06").await;
        relayed.push(analyzer);
    }
    // The third connects (the backlog takes it) but is not relayed while two are.
    let mut waiting = TcpStream::connect(&addr).await.unwrap();
    waiting.write_all(b"\x05").await.unwrap();
    waiting.write_all(&message(2)).await.unwrap();
    let mut ack = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(500), waiting.read_exact(&mut ack))
            .await
            .is_err(),
        "a connection past the bound is not relayed"
    );
    assert_eq!(stats.connections.load(std::sync::atomic::Ordering::Relaxed), 2);
    drop(relayed.remove(0));
    let got = read_until(&mut waiting, b"\x06").await;
    assert_eq!(
        got, b"\x06",
        "relayed once a connection ended, its bytes unchanged"
    );
    assert_eq!(stats.connections.load(std::sync::atomic::Ordering::Relaxed), 3);
    drop(waiting);
    drop(relayed);
    running.stop.cancel();
    running.relaying.await.unwrap();
    let stored = sessions(&running.store);
    assert_eq!(stored.len(), 3, "every connection's session is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_begun_and_ended_within_one_chunk_keep_every_element_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (lis_addr, _) = acking_lis().await;
    let running = start(dir.path(), &lis_addr).await;
    let mut analyzer = TcpStream::connect(&running.addr).await.unwrap();
    // Two whole sessions and the start of a third in one chunk: each session's journal
    // is created holding its first elements and ended with its last.
    let mut chunk = Vec::new();
    for n in 0..2 {
        chunk.push(0x05);
        chunk.extend_from_slice(&message(n * 2));
        chunk.extend_from_slice(&message(n * 2 + 1));
        chunk.push(0x04);
    }
    chunk.push(0x05);
    chunk.extend_from_slice(&message(9));
    let total = chunk.len() as u64;
    send_as_one_chunk(&mut analyzer, &chunk, &running, total).await;
    read_until(&mut analyzer, b"\x06\x06\x06\x06\x06").await;
    analyzer.write_all(b"\x04").await.unwrap();
    let stored = test_support::wait_until(Duration::from_secs(30), "three sessions stored", || {
        let stored = sessions(&running.store);
        (stored.len() == 3).then_some(stored)
    });
    let mut messages: Vec<Vec<String>> = stored
        .iter()
        .map(|s| {
            assert!(s.is_complete && s.interrupted.is_none(), "{:?}", s.interrupted);
            let kinds: Vec<_> = s.elements.iter().map(|e| e.kind.clone()).collect();
            assert_eq!(kinds.first(), Some(&session_model::ElementKind::Start));
            assert_eq!(kinds.last(), Some(&session_model::ElementKind::End));
            s.messages()
        })
        .collect();
    messages.sort();
    let text = |n: usize| String::from_utf8(message(n)).unwrap();
    assert_eq!(
        messages,
        vec![vec![text(0), text(1)], vec![text(2), text(3)], vec![text(9)]]
    );
    let recorded: usize = stored.iter().map(|s| s.elements.len()).sum();
    assert_eq!(
        running.stats.elements.load(std::sync::atomic::Ordering::Relaxed),
        recorded as u64,
        "every element counted once"
    );
    assert_eq!(
        running
            .stats
            .unrecorded
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    running.stop.cancel();
    running.relaying.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_cannot_begin_counts_itself_and_every_element_unrecorded() {
    let dir = tempfile::tempdir().unwrap();
    let (lis_addr, _) = acking_lis().await;
    let running = start(dir.path(), &lis_addr).await;
    // Journals cannot be made: `.journal` is a file.
    std::fs::write(dir.path().join(".journal"), b"in the way").unwrap();
    let mut analyzer = TcpStream::connect(&running.addr).await.unwrap();
    let mut total = 0;
    for chunk in [&b"\x05"[..], &message(1)] {
        total += chunk.len() as u64;
        send_as_one_chunk(&mut analyzer, chunk, &running, total).await;
    }
    read_until(&mut analyzer, b"\x06").await;
    send_as_one_chunk(&mut analyzer, b"\x04", &running, total + 1).await;
    let counted = |stat: &std::sync::atomic::AtomicU64| stat.load(std::sync::atomic::Ordering::Relaxed);
    test_support::wait_until(Duration::from_secs(30), "the end is handled", || {
        (counted(&running.stats.unrecorded) >= 5).then_some(())
    });
    // The session that could not begin, then its ENQ (with the begin), its message, the
    // LIS's ACK and its EOT (with the end).
    assert_eq!(counted(&running.stats.unrecorded), 5);
    assert_eq!(counted(&running.stats.elements), 0);
    assert_eq!(counted(&running.stats.recording_failures), 1);
    assert_eq!(counted(&running.stats.sessions), 0);
    drop(analyzer);
    running.stop.cancel();
    running.relaying.await.unwrap();
}
