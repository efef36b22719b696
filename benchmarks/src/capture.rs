//! Capture's figures: durable appends against the durable-save floor, and the relay's
//! added latency per message against a direct connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
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

/// A LIS that answers every CR LF with an ACK.
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

/// Round trips (message out, ACK back) over `addr`: the median.
fn round_trips(addr: &str, n: usize) -> Result<Duration, String> {
    let mut stream = TcpStream::connect(addr).map_err(err)?;
    stream.set_nodelay(true).map_err(err)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(err)?;
    let mut ack = [0u8; 1];
    stream.write_all(&[0x05]).map_err(err)?;
    stream.read_exact(&mut ack).map_err(err)?;
    let m = message(1_000);
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        stream.write_all(&m).map_err(err)?;
        stream.read_exact(&mut ack).map_err(err)?;
        times.push(t.elapsed());
    }
    stream.write_all(&[0x04]).map_err(err)?;
    Ok(median(times))
}

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The relay's added latency per acknowledged message, against a direct connection.
pub(crate) fn relay_latency(
    work: &Path,
    s: &Settings,
    sessionctl: Option<&Path>,
) -> Result<Vec<Row>, String> {
    let Some(sessionctl) = sessionctl else {
        return Ok(Vec::new());
    };
    let dir = super::figures::fresh(&work.join("capture-relay"))?;
    let (lis, _lis_thread) = echo_lis()?;
    let mut child = Relay(
        Command::new(sessionctl)
            .arg("--dir")
            .arg(&dir)
            .args(["capture", "--listen", "127.0.0.1:0", "--forward", &lis])
            .env("HL7_LOG_FORMAT", "json")
            .env("HL7_HTTP_LISTEN", "")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(err)?,
    );
    let stderr = child.0.stderr.take().ok_or("no stderr")?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let relay = loop {
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
    let n = s.single_saves;
    let (mut direct, mut relayed) = (Vec::new(), Vec::new());
    for _ in 0..s.rounds {
        direct.push(round_trips(&lis, n)?);
        relayed.push(round_trips(&relay, n)?);
    }
    let (direct, relayed) = (median(direct), median(relayed));
    let added = relayed.saturating_sub(direct);
    // Measured in this run: one durable append of the same element.
    let append = {
        let adir = super::figures::fresh(&work.join("capture-append-ref"))?;
        let recorder = Recorder::new(SessionStore::open(&adir, DecodeOptions::default()).map_err(err)?);
        let mut open = recorder.begin(&Endpoints::default(), 1).map_err(err)?;
        let e = FramedElement {
            timestamp: 1,
            direction: Direction::DeviceToPc,
            kind: ElementKind::Message,
            bytes: message(1_000),
        };
        let mut t = Vec::new();
        for _ in 0..n {
            let start = Instant::now();
            open.append(&e).map_err(err)?;
            t.push(start.elapsed());
        }
        median(t)
    };
    Ok(vec![Row::ratio(
        "capture: relay's added latency per acknowledged 1 KB message (message and ACK each recorded before forwarding)",
        format!("{} added ({} through the relay)", ms(added), ms(relayed)),
        format!("{} direct; one durable append {}", ms(direct), ms(append)),
        added,
        append,
        "<= 3 x one durable append (two appends per round trip, plus the hop)",
        3.0,
    )])
}
