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
    let store = SessionStore::open(dir, DecodeOptions::default()).unwrap();
    let config = RelayConfig::new("127.0.0.1:0", lis);
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
