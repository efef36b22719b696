//! The capture relay as a real process between a simulated analyzer and LIS, all on
//! 127.0.0.1: bytes arrive unchanged at both ends, each transmission becomes a session,
//! a SIGKILL mid-session loses nothing the LIS acknowledged, ids never repeat across
//! restarts, five analyzers at once, a failing store never holds traffic up.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use serde_json::Value;

const ENQ: u8 = 0x05;
const ACK: u8 = 0x06;
const EOT: u8 = 0x04;

/// A LIS that acknowledges the start marker and every CR LF, and keeps every byte it got
/// (per connection) and sent.
struct Lis {
    addr: String,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    _accepting: JoinHandle<()>,
}

impl Lis {
    fn start() -> Lis {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (r, s) = (received.clone(), sent.clone());
        let accepting = std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (r, s) = (r.clone(), s.clone());
                std::thread::spawn(move || {
                    let index = {
                        r.lock().unwrap().push(Vec::new());
                        s.lock().unwrap().push(Vec::new());
                        r.lock().unwrap().len() - 1
                    };
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let mut got = r.lock().unwrap();
                        let before = got[index].len();
                        got[index].extend_from_slice(&buf[..n]);
                        // One ACK per start marker and per message end seen in this chunk.
                        let all = got[index].clone();
                        drop(got);
                        let acks = (before..all.len())
                            .filter(|&i| all[i] == ENQ || (all[i] == b'\n' && i > 0 && all[i - 1] == b'\r'))
                            .count();
                        for _ in 0..acks {
                            if stream.write_all(&[ACK]).is_err() {
                                return;
                            }
                            s.lock().unwrap()[index].push(ACK);
                        }
                    }
                });
            }
        });
        Lis {
            addr,
            received,
            sent,
            _accepting: accepting,
        }
    }
}

/// A LIS, and a relay in front of it recording into `dir`; the relay's address.
fn relay_to_a_lis(dir: &Path) -> (Lis, Daemon, String) {
    let lis = Lis::start();
    let relay = Daemon::capture(dir, &lis.addr);
    let addr = relay.relay_addr();
    (lis, relay, addr)
}

/// An analyzer: sends each part, waiting for the LIS's ACK after the start marker and
/// after each message, as ASTM-style analyzers do. Returns what it received.
fn analyzer(relay: &str, parts: &[&[u8]], then_end: bool) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(relay).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut received = Vec::new();
    for part in parts {
        stream.write_all(part).unwrap();
        if part.last() == Some(&ENQ) || part.ends_with(b"\r\n") {
            let mut ack = [0u8; 1];
            stream
                .read_exact(&mut ack)
                .expect("the LIS's ACK through the relay");
            received.push(ack[0]);
        }
    }
    if then_end {
        stream.write_all(&[EOT]).unwrap();
    }
    (stream, received)
}

fn list(dir: &Path) -> Vec<Value> {
    let out = sessionctl(dir, &["--json", "list"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn show(dir: &Path, id: &str) -> Value {
    let out = sessionctl(dir, &["--json", "show", id], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls until `list` shows `n` sessions (the relay folds a session after its end
/// marker passed), at most 30 s.
fn wait_for_sessions(dir: &Path, n: usize) -> Vec<Value> {
    test_support::wait_until(Duration::from_secs(30), &format!("{n} sessions"), || {
        Some(list(dir)).filter(|rows| rows.len() >= n)
    })
}

/// Waits until the LIS's connection `index` has received `len` bytes.
fn wait_for_lis_bytes(lis: &Lis, index: usize, len: usize) {
    test_support::wait_until(Duration::from_secs(10), "the LIS to receive everything", || {
        let received = lis.received.lock().unwrap();
        received.get(index).filter(|got| got.len() >= len).map(|_| ())
    });
}

fn message(n: usize, tag: &str) -> Vec<u8> {
    format!("MSH|^~\\&|AN|LAB|||20251102||ORU^R01|{tag}{n}|P|2.5\rOBX|1|NM|GLU||5.{n}\r\n").into_bytes()
}

#[test]
fn bytes_pass_unchanged_and_a_transmission_becomes_a_complete_session() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (lis, relay, addr) = relay_to_a_lis(dir);
    let (m1, m2) = (message(1, "A"), message(2, "A"));
    // The message split over segments, with bytes that are not UTF-8.
    let parts: Vec<&[u8]> = vec![&[ENQ], &m1[..10], &m1[10..], b"\xff\xfe raw\r\n", &m2];
    let (stream, analyzer_got) = analyzer(&addr, &parts, true);
    drop(stream);
    let rows = wait_for_sessions(dir, 1);
    let sent: Vec<u8> = parts.concat().into_iter().chain([EOT]).collect();
    wait_for_lis_bytes(&lis, 0, sent.len());
    assert_eq!(
        lis.received.lock().unwrap()[0],
        sent,
        "the LIS got exactly what the analyzer sent"
    );
    assert_eq!(
        analyzer_got,
        lis.sent.lock().unwrap()[0],
        "the analyzer got exactly what the LIS sent"
    );
    let row = &rows[0];
    assert_eq!(row["isComplete"], true, "{row}");
    assert_eq!(row["messageCount"], 3, "{row}");
    assert_eq!(row["submissionStatus"], "pending");
    let session = show(dir, row["id"].as_str().unwrap());
    assert_eq!(session["deviceIP"], "127.0.0.1");
    assert_eq!(session["lisIP"], "127.0.0.1");
    assert!(
        session["endTime"].is_u64() && session.get("interrupted").is_none(),
        "{session}"
    );
    let kinds: Vec<(&str, &str)> = session["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["direction"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("start", "device-to-pc"),
            ("ack", "pc-to-device"),
            ("message", "device-to-pc"),
            ("ack", "pc-to-device"),
            ("message", "device-to-pc"),
            ("ack", "pc-to-device"),
            ("message", "device-to-pc"),
            ("ack", "pc-to-device"),
            ("end", "device-to-pc"),
        ]
    );
    // Every byte that passed is in the record, in order, per direction.
    let recorded: Vec<u8> = device_bytes(&session);
    assert_eq!(recorded, sent);
    let (code, _, _) = relay.stop();
    assert_eq!(code, 0);
    assert!(
        list(dir).iter().all(|r| r["isComplete"] == true),
        "nothing else was recorded"
    );
}

#[test]
fn sigkill_mid_session_keeps_every_acknowledged_message_and_ids_never_repeat() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (lis, relay, addr) = relay_to_a_lis(dir);
    let (m1, m2) = (message(1, "K"), message(2, "K"));
    // Both messages acknowledged by the LIS (so they passed the relay complete), then
    // half of a third, then the relay dies.
    let (mut stream, _) = analyzer(&addr, &[&[ENQ], &m1, &m2], false);
    stream.write_all(b"MSH|half").unwrap();
    relay.kill();
    drop(stream);
    assert!(
        list(dir).is_empty(),
        "nothing is a session file yet: it is a journal"
    );
    // The restart recovers the capture as an interrupted session.
    let relay = Daemon::capture(dir, &lis.addr);
    let addr = relay.relay_addr();
    let rows = wait_for_sessions(dir, 1);
    let cut = &rows[0];
    assert_eq!(cut["isComplete"], false, "{cut}");
    assert_eq!(cut["interrupted"], true, "{cut}");
    assert_eq!(
        cut["messageCount"], 2,
        "every message the LIS acknowledged: {cut}"
    );
    let first = show(dir, cut["id"].as_str().unwrap());
    assert_eq!(first["interrupted"]["reason"], "crash");
    let messages: Vec<String> = first["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| String::from_utf8(base64_decode(e["data"].as_str().unwrap())).unwrap())
        .collect();
    assert_eq!(
        messages,
        vec![String::from_utf8(m1).unwrap(), String::from_utf8(m2).unwrap()]
    );
    // A new transmission after the restart: a new id and a new sessionId.
    let (stream, _) = analyzer(&addr, &[&[ENQ], &message(3, "K")], true);
    drop(stream);
    let rows = wait_for_sessions(dir, 2);
    let second = rows.iter().find(|r| r["id"] != cut["id"]).unwrap();
    let second = show(dir, second["id"].as_str().unwrap());
    assert_ne!(first["sessionId"], second["sessionId"]);
    assert!(
        second["sessionId"].as_u64() > first["sessionId"].as_u64(),
        "numbers rise"
    );
    // Interrupted sessions are never submitted: status counts it apart.
    let status = sessionctl(dir, &["--json", "status"], None);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["interrupted"], 1, "{status}");
    let (code, _, _) = relay.stop();
    assert_eq!(code, 0);
}

#[test]
fn five_analyzers_at_once_each_get_their_own_session() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_lis, relay, addr) = relay_to_a_lis(dir);
    let threads: Vec<_> = (0..5)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let tag = format!("N{i}-");
                let (m1, m2) = (message(1, &tag), message(2, &tag));
                let (stream, got) = analyzer(&addr, &[&[ENQ], &m1, &m2], true);
                drop(stream);
                got
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), vec![ACK; 3]);
    }
    let rows = wait_for_sessions(dir, 5);
    let mut tags = Vec::new();
    for row in &rows {
        assert_eq!(
            (row["isComplete"].clone(), row["messageCount"].clone()),
            (true.into(), 2.into()),
            "{row}"
        );
        let session = show(dir, row["id"].as_str().unwrap());
        let texts: Vec<String> = session["elements"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "message")
            .map(|e| String::from_utf8(base64_decode(e["data"].as_str().unwrap())).unwrap())
            .collect();
        // Both messages of one analyzer, none of another's.
        let tag = texts[0]
            .split('|')
            .nth(9)
            .unwrap()
            .trim_end_matches('1')
            .to_owned();
        assert!(texts[1].contains(&format!("|{tag}2|")), "{texts:?}");
        tags.push(tag);
    }
    tags.sort();
    assert_eq!(tags, vec!["N0-", "N1-", "N2-", "N3-", "N4-"]);
    let (code, _, _) = relay.stop();
    assert_eq!(code, 0);
}

#[test]
fn sigterm_stores_open_sessions_as_interrupted_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_lis, relay, addr) = relay_to_a_lis(dir);
    let (stream, _) = analyzer(&addr, &[&[ENQ], &message(1, "T")], false);
    let (code, _, _) = relay.stop();
    assert_eq!(code, 0);
    drop(stream);
    let rows = list(dir);
    assert_eq!(rows.len(), 1);
    let session = show(dir, rows[0]["id"].as_str().unwrap());
    assert_eq!(session["interrupted"]["reason"], "shutdown", "{session}");
    assert_eq!(session["isComplete"], false);
}

#[test]
fn a_store_that_fails_never_holds_up_or_alters_the_traffic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (lis, relay, addr) = relay_to_a_lis(dir);
    // Journals cannot be made: `.journal` is a file now.
    std::fs::write(dir.join(".journal"), b"in the way").unwrap();
    let m1 = message(1, "F");
    let (stream, got) = analyzer(&addr, &[&[ENQ], &m1], true);
    drop(stream);
    assert_eq!(got, vec![ACK, ACK], "the conversation went on");
    let sent: Vec<u8> = [&[ENQ][..], &m1, &[EOT]].concat();
    wait_for_lis_bytes(&lis, 0, sent.len());
    assert_eq!(lis.received.lock().unwrap()[0], sent);
    relay.wait_for_log("CANNOT RECORD");
    let (code, _, log) = relay.stop();
    assert_eq!(code, 0);
    let last = log
        .iter()
        .rev()
        .find(|l| l.contains("capture relay stopped"))
        .unwrap();
    let last: Value = serde_json::from_str(last).unwrap();
    assert!(last["fields"]["unrecorded"].as_u64().unwrap() >= 1, "{last}");
    for line in &log {
        assert!(!line.contains("GLU"), "message content in the log: {line}");
    }
}

#[test]
fn bad_capture_arguments_are_refused_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sessionctl(tmp.path(), &["capture", "--listen", "127.0.0.1:0"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--forward"), "{}", text(&out.stderr));
    let out = sessionctl(
        tmp.path(),
        &["capture", "--listen", "nowhere", "--forward", "127.0.0.1:9"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("capture_listen"),
        "{}",
        text(&out.stderr)
    );
    let out = sessionctl(tmp.path(), &["--set", "end_marker=300", "capture"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("end_marker"), "{}", text(&out.stderr));
}

/// An element's bytes, decoded as the model decodes them.
/// Every byte the analyzer sent that a session recorded, in order.
fn device_bytes(session: &Value) -> Vec<u8> {
    session["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["direction"] == "device-to-pc")
        .flat_map(|e| base64_decode(e["data"].as_str().unwrap()))
        .collect()
}

fn base64_decode(text: &str) -> Vec<u8> {
    serde_json::from_value::<session_model::Base64Bytes>(Value::from(text))
        .unwrap()
        .0
}

#[test]
fn run_with_capture_configured_records_and_delivers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let lis = Lis::start();
    let recv = Receiver::start(tmp.path(), &[]);
    let endpoint = format!("endpoint={}", recv.url);
    let forward = format!("capture_forward={}", lis.addr);
    let daemon = Daemon::start(
        &dir,
        &[
            "--set",
            "capture_listen=127.0.0.1:0",
            "--set",
            &forward,
            "--set",
            &endpoint,
            "--set",
            "http_listen=127.0.0.1:0",
        ],
    );
    let addr = daemon.relay_addr();
    let sent = [&[ENQ][..], &message(1, "R")];
    let (stream, _) = analyzer(&addr, &sent, true);
    drop(stream);
    let accepted = test_support::wait_until(Duration::from_secs(30), "the delivery", || {
        Some(recv.accepted()).filter(|a| !a.is_empty())
    });
    let body: Value = serde_json::from_slice(&std::fs::read(&accepted[0]).unwrap()).unwrap();
    assert_eq!(body["deviceIP"], "127.0.0.1");
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    assert!(body["messages"][0].as_str().unwrap().contains("|R1|"));
    // The relay's counters reach /metrics: one session, every byte the analyzer sent.
    let metrics = http(&daemon.api_addr(), "GET", "/metrics", &[], None).body;
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok())
    };
    assert_eq!(value("hl7_capture_sessions_total"), Some(1), "{metrics}");
    // The parts, then the end marker (`then_end`).
    let device_bytes: usize = sent.iter().map(|b| b.len()).sum::<usize>() + 1;
    assert_eq!(
        value(r#"hl7_capture_bytes_total{direction="device"}"#),
        Some(device_bytes as u64),
        "{metrics}"
    );
    assert_eq!(
        value(r#"hl7_capture_bytes_total{direction="lis"}"#),
        Some(2),
        "the LIS's two ACKs: {metrics}"
    );
    let (code, _, _) = daemon.stop();
    assert_eq!(code, 0);
}

#[test]
fn recover_folds_a_killed_capture_and_counts_its_torn_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_lis, relay, addr) = relay_to_a_lis(dir);
    let (stream, _) = analyzer(&addr, &[&[ENQ], &message(1, "V")], false);
    relay.kill();
    drop(stream);
    // A record the crash cut short, as a power cut mid-append leaves it.
    let journal = std::fs::read_dir(dir.join(".journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "journal"))
        .expect("the killed capture's journal");
    let mut file = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
    file.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(file);
    let out = sessionctl(dir, &["recover"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    insta::assert_snapshot!(text(&out.stdout), @r"
    recovered 0, cleaned 0, quarantined 0
    captures cut off by a crash: 1 stored as interrupted, 0 finished ones stored; 1 torn journal records dropped (never acknowledged)
    ");
    let rows = list(dir);
    assert_eq!((rows.len(), rows[0]["messageCount"].as_u64()), (1, Some(1)));
    assert_eq!(rows[0]["interrupted"], true);
    assert!(!journal.exists());
    // Again: nothing left to do.
    let again = sessionctl(dir, &["--json", "recover"], None);
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (again["interrupted"].as_u64(), again["tornRecords"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn two_relays_on_one_store_never_share_an_id() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_lis, first, first_addr) = relay_to_a_lis(dir);
    let (_other_lis, second, second_addr) = relay_to_a_lis(dir);
    for (n, addr) in [
        (1, &first_addr),
        (2, &second_addr),
        (3, &first_addr),
        (4, &second_addr),
    ] {
        let (stream, _) = analyzer(addr, &[&[ENQ], &message(n, "W")], true);
        drop(stream);
    }
    let rows = wait_for_sessions(dir, 4);
    let mut numbers: Vec<u64> = rows
        .iter()
        .map(|r| {
            show(dir, r["id"].as_str().unwrap())["sessionId"]
                .as_u64()
                .unwrap()
        })
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 4, "four sessions, four numbers: {numbers:?}");
    assert_eq!(first.stop().0, 0);
    assert_eq!(second.stop().0, 0);
}

#[test]
fn a_storm_of_start_markers_through_the_relay_makes_a_handful_of_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("s");
    let (lis, _relay, addr) = relay_to_a_lis(&dir);
    // 3,000 ENQ in one write, then a whole transmission: every byte reaches the LIS
    // (its ACK per ENQ comes back), and the store holds one or two sessions, not 3,000.
    let mut storm = vec![ENQ; 3000];
    storm.extend_from_slice(&message(1, "storm"));
    storm.push(EOT);
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(&storm).unwrap();
    wait_for_lis_bytes(&lis, 0, storm.len());
    let mut acks = vec![0u8; 3001];
    stream.read_exact(&mut acks).unwrap();
    drop(stream);
    // Record before forward: the end marker reached the LIS only after the session's
    // end was journaled; its file is written meanwhile, and the journal then removed.
    test_support::wait_until(Duration::from_secs(10), "the session file", || {
        test_support::journals_in(&dir).is_empty().then_some(())
    });
    let rows = list(&dir);
    assert!(rows.len() <= 2, "{} sessions: {rows:?}", rows.len());
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json")
        })
        .count();
    assert!(files <= 2, "{files} files");
    // Every byte the analyzer sent is in the record.
    let recorded: usize = rows
        .iter()
        .map(|row| device_bytes(&show(&dir, row["id"].as_str().unwrap())).len())
        .sum();
    assert_eq!(recorded, storm.len());
}

/// A LIS that reads `keep` bytes of its first connection, then closes it (with a reset
/// when `reset`); the bytes it read.
fn closing_lis(keep: usize, reset: bool) -> (String, std::sync::mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut got = vec![0u8; keep];
        let _ = stream.read_exact(&mut got);
        if reset {
            // SO_LINGER 0: close(2) sends RST.
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            use std::os::fd::AsRawFd;
            // SAFETY: setsockopt on our own open socket with a properly sized struct.
            unsafe {
                libc::setsockopt(
                    stream.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
        }
        drop(stream);
        let _ = tx.send(got);
    });
    (addr, rx)
}

#[test]
fn a_session_the_lis_did_not_receive_says_so_and_how_much_it_missed() {
    for reset in [false, true] {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("s");
        let (lis, got) = closing_lis(20, reset);
        let relay = Daemon::capture(&dir, &lis);
        let addr = relay.relay_addr();
        let first: Vec<u8> = [&[ENQ][..], &message(1, "X")].concat();
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.write_all(&first[..20]).unwrap();
        assert_eq!(got.recv_timeout(Duration::from_secs(30)).unwrap(), &first[..20]);
        // The relay passes the LIS's close on: the analyzer reads end of stream (or a reset).
        let mut sink = [0u8; 16];
        let _ = stream.read(&mut sink);
        // The analyzer goes on: the rest of its message, another, and the end marker.
        let rest: Vec<u8> = [&first[20..], &message(2, "X"), &[EOT][..]].concat();
        stream.write_all(&rest).unwrap();
        drop(stream);
        let rows = wait_for_sessions(&dir, 1);
        assert_eq!(rows.len(), 1, "{rows:?}");
        let row = &rows[0];
        assert_eq!(row["notReceivedByLis"], true, "reset {reset}: {row}");
        let session = show(&dir, row["id"].as_str().unwrap());
        let interrupted = &session["interrupted"];
        assert_eq!(interrupted["reason"], "lisClosed", "{session}");
        assert!(interrupted["at"].is_u64(), "{session}");
        assert_eq!(
            interrupted["lisMissedBytes"],
            rest.len() as u64,
            "reset {reset}: {session}"
        );
        assert_eq!(session["isComplete"], true, "the analyzer finished: {session}");
        // Every byte the analyzer sent is recorded.
        let recorded: Vec<u8> = device_bytes(&session);
        assert_eq!(recorded, [&first[..20], &rest[..]].concat());
        let status = sessionctl(&dir, &["--json", "status"], None);
        let status: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(status["notReceivedByLis"], 1, "{status}");
        let human = text(&sessionctl(&dir, &["list"], None).stdout);
        assert!(human.contains("not at LIS"), "{human}");
    }
}

#[test]
fn a_session_completed_before_the_lis_closes_is_whole() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("s");
    let whole: Vec<u8> = [&[ENQ][..], &message(1, "Y"), &[EOT][..]].concat();
    let (lis, got) = closing_lis(whole.len(), false);
    let relay = Daemon::capture(&dir, &lis);
    let mut stream = TcpStream::connect(relay.relay_addr()).unwrap();
    stream.write_all(&whole).unwrap();
    assert_eq!(got.recv_timeout(Duration::from_secs(30)).unwrap(), whole);
    drop(stream);
    let rows = wait_for_sessions(&dir, 1);
    assert_eq!(rows[0]["notReceivedByLis"], false, "{rows:?}");
    assert_eq!(rows[0]["interrupted"], false, "{rows:?}");
    assert_eq!(rows[0]["isComplete"], true, "{rows:?}");
}

/// An MLLP LIS: answers each frame it receives with an MLLP-framed ACK; the bytes it got.
fn mllp_lis() -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 4096];
        let mut frames = 0;
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut all = seen.lock().unwrap();
            all.extend_from_slice(&buf[..n]);
            let ends = all.windows(2).filter(|w| w == b"\x1c\r").count();
            drop(all);
            while frames < ends {
                frames += 1;
                let ack = format!(
                    "\x0bMSH|^~\\&|LIS|HOSP|AN|LAB|20251102||ACK|{frames}|P|2.5\rMSA|AA|{frames}\r\x1c\r"
                );
                if stream.write_all(ack.as_bytes()).is_err() {
                    return;
                }
            }
        }
    });
    (addr, got)
}

#[test]
fn an_mllp_conversation_is_recorded_before_it_is_forwarded_message_by_message() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("s");
    let (lis, got) = mllp_lis();
    // The default framing is auto: the first byte (0x0B) makes this connection MLLP.
    let relay = Daemon::capture(&dir, &lis);
    let mut stream = TcpStream::connect(relay.relay_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let messages = [
        "MSH|^~\\&|AN|LAB|LIS|HOSP|20251102||ORU^R01|1|P|2.5\rPID|1||77\rOBX|1|NM|GLU||5.6\r",
        "MSH|^~\\&|AN|LAB|LIS|HOSP|20251102||ORU^R01|2|P|2.5\rOBX|1|NM|HGB||13.2\r",
    ];
    let mut acks = Vec::new();
    for (n, message) in messages.iter().enumerate() {
        let frame = format!("\x0b{message}\x1c\r");
        // Split mid-message: the frame is forwarded only once it is durable as a whole.
        stream.write_all(&frame.as_bytes()[..10]).unwrap();
        stream.write_all(&frame.as_bytes()[10..]).unwrap();
        let mut ack = Vec::new();
        let mut byte = [0u8; 1];
        while !ack.ends_with(b"\x1c\r") {
            stream.read_exact(&mut byte).unwrap();
            ack.push(byte[0]);
        }
        assert!(String::from_utf8_lossy(&ack).contains(&format!("MSA|AA|{}", n + 1)));
        acks.push(ack);
        // When the LIS answered, the message was already in the store's journal.
        let journal = std::fs::read_dir(dir.join(".journal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "journal"))
            .expect("an open capture while the connection lasts");
        let encoded = serde_json::to_value(session_model::Base64Bytes(message.as_bytes().to_vec())).unwrap();
        let journaled = String::from_utf8_lossy(&std::fs::read(&journal).unwrap()).into_owned();
        assert!(
            journaled.contains(encoded.as_str().unwrap()),
            "message {n} not durable before the LIS saw it"
        );
    }
    drop(stream);
    let rows = wait_for_sessions(&dir, 1);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["isComplete"], true, "{rows:?}");
    assert_eq!(rows[0]["messageCount"], 2, "{rows:?}");
    let session = show(&dir, rows[0]["id"].as_str().unwrap());
    let texts: Vec<String> = session["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| String::from_utf8(base64_decode(e["data"].as_str().unwrap())).unwrap())
        .collect();
    assert_eq!(texts, messages);
    let lis_acks: Vec<Vec<u8>> = session["elements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "ack")
        .map(|e| base64_decode(e["data"].as_str().unwrap()))
        .collect();
    assert_eq!(lis_acks.len(), 2, "each ACK an element: {session}");
    // The LIS got exactly the frames, byte for byte.
    let sent: Vec<u8> = messages
        .iter()
        .flat_map(|m| format!("\x0b{m}\x1c\r").into_bytes())
        .collect();
    assert_eq!(*got.lock().unwrap(), sent);
}

/// A small tmpfs mounted at `at` (root only), unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root and must be able to mount a tmpfs"
            );
            eprintln!(
                "WARNING: cannot mount a tmpfs here (not root?): the full-disk capture test did not run"
            );
            return None;
        }
        Some(SmallDisk(at.to_path_buf()))
    }

    /// Fills the disk; the filler's path.
    fn fill(&self) -> std::path::PathBuf {
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        for size in [1 << 20, 1 << 12, 1] {
            let block = vec![0u8; size];
            while file.write_all(&block).is_ok() {}
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_capture_whose_recording_failed_shows_at_once_and_is_stored_when_space_frees() {
    let root = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&root.path().join("disk"), "4m") else {
        return;
    };
    let dir = root.path().join("disk/s");
    let (lis, relay, addr) = relay_to_a_lis(&dir);
    let m1 = message(1, "D");
    let (mut stream, got) = analyzer(&addr, &[&[ENQ], &m1], false);
    assert_eq!(got, vec![ACK, ACK]);
    // The disk fills in the middle of the session.
    let filler = disk.fill();
    let m2 = message(2, "D");
    stream.write_all(&m2).unwrap();
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack).unwrap();
    stream.write_all(&[EOT]).unwrap();
    drop(stream);
    let sent: Vec<u8> = [&[ENQ][..], &m1, &m2, &[EOT]].concat();
    wait_for_lis_bytes(&lis, 0, sent.len());
    assert_eq!(
        lis.received.lock().unwrap()[0],
        sent,
        "the conversation went on unchanged"
    );
    // An element, or the finished session, could not be written.
    relay.wait_for_log("CANNOT");
    // Shown at once: a capture that could not be recorded, not stored yet.
    let status = test_support::wait_until(Duration::from_secs(30), "the stalled capture in status", || {
        let out = sessionctl(&dir, &["--json", "status"], None);
        let status: Value = serde_json::from_slice(&out.stdout).ok()?;
        (status["recordingStalled"] == 1).then_some(status)
    });
    assert_eq!(status["capturing"], 0, "{status}");
    let human = text(&sessionctl(&dir, &["status"], None).stdout);
    assert!(human.contains("RECORDING FAILED"), "{human}");
    // Space frees: the relay stores it by itself, with what was recorded.
    std::fs::remove_file(filler).unwrap();
    let rows = wait_for_sessions(&dir, 1);
    let session = show(&dir, rows[0]["id"].as_str().unwrap());
    let recorded: Vec<u8> = device_bytes(&session);
    assert!(
        recorded.starts_with(&[&[ENQ][..], &m1].concat()),
        "what was recorded is kept"
    );
    assert!(sent.starts_with(&recorded), "nothing that was not sent");
    // Complete exactly when its ending was journaled before the disk filled.
    if session["isComplete"] == true {
        assert_eq!(recorded, sent, "{session}");
    } else {
        assert!(session["interrupted"].is_object(), "{session}");
    }
    let status: Value =
        serde_json::from_slice(&sessionctl(&dir, &["--json", "status"], None).stdout).unwrap();
    assert_eq!(status["recordingStalled"], 0, "{status}");
    drop(relay);
}

#[test]
fn a_lis_that_closes_after_the_analyzer_did_missed_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("s");
    // This LIS closes as soon as it reads the analyzer's end of stream.
    let (lis, relay, addr) = relay_to_a_lis(&dir);
    let (stream, _) = analyzer(&addr, &[&[ENQ], &message(1, "Z")], false);
    drop(stream);
    let rows = wait_for_sessions(&dir, 1);
    let session = show(&dir, rows[0]["id"].as_str().unwrap());
    assert_eq!(session["interrupted"]["reason"], "connectionClosed", "{session}");
    assert_eq!(rows[0]["notReceivedByLis"], false);
    drop((lis, relay));
}
