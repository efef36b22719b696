//! The capture relay: a TCP relay between analyzers and the LIS that records each
//! transmission as a session (feature `relay`).
//!
//! The analyzer connects to `listen`; the relay connects to `forward` (the LIS) and
//! copies bytes both ways, unchanged. Each chunk read is fed to the connection's
//! [`ConnectionFramer`], and every element it completes is made durable by the
//! [`Recorder`] *before* the chunk is written on (record before forward): whatever the
//! other side has received complete is in the store after a crash. When recording
//! fails (a full disk), the relay keeps forwarding, logs an error and counts what it
//! could not record: the conversation is never held up or altered by the store.
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_capture::Recorder;
//! use session_capture::relay::{RelayConfig, RelayStats, bind, recover_orphans, relay};
//! use session_store::{DecodeOptions, SessionStore};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let recorder = Arc::new(Recorder::new(SessionStore::open("/var/lib/hl7", DecodeOptions::default())?));
//! recover_orphans(&recorder); // captures a crash cut off, first
//! let config = RelayConfig::new("0.0.0.0:5600", "10.0.0.9:5600");
//! let listener = bind(&config).await?;
//! let stop = CancellationToken::new();
//! relay(listener, recorder, config, Arc::new(RelayStats::default()), stop).await;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use session_fs::now_ms;
use session_model::InterruptionReason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{
    ConnectionFramer, EndedCapture, Endpoints, Framed, FramedElement, Framing, MLLP_IDLE_MS, Markers,
    OpenCapture, Recorder, Side,
};

/// How long the relay waits for the LIS to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the relay tries again to store captures whose recording failed.
const FOLD_RETRY: Duration = Duration::from_secs(5);
/// The most one read takes from a socket.
const CHUNK: usize = 64 * 1024;

/// Where to listen and where to forward, and the marker bytes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RelayConfig {
    /// The address analyzers connect to.
    pub listen: String,
    /// The LIS's address.
    pub forward: String,
    /// The marker bytes.
    pub markers: Markers,
    /// Markers, MLLP, or decided per connection.
    pub framing: Framing,
}

impl RelayConfig {
    /// Listen on `listen`, forward to `forward`, default markers, framing decided per
    /// connection by its first byte.
    pub fn new(listen: impl Into<String>, forward: impl Into<String>) -> Self {
        RelayConfig {
            listen: listen.into(),
            forward: forward.into(),
            markers: Markers::default(),
            framing: Framing::Auto,
        }
    }

    /// With these marker bytes.
    pub fn markers(mut self, markers: Markers) -> Self {
        self.markers = markers;
        self
    }

    /// With this framing.
    pub fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }
}

/// The relay's listening address could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {listen}: {source}")]
pub struct BindError {
    /// The address asked for.
    pub listen: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// What the relay did: for its last log line and for metrics.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Elements recorded.
    pub elements: AtomicU64,
    /// Sessions stored.
    pub sessions: AtomicU64,
    /// Elements or sessions that could not be recorded.
    pub unrecorded: AtomicU64,
    /// Bytes read from analyzers.
    pub bytes_from_device: AtomicU64,
    /// Bytes read from the LIS.
    pub bytes_from_lis: AtomicU64,
    /// Times a capture's recording failed (a full disk...).
    pub recording_failures: AtomicU64,
}

/// Binds the relay's listening address.
pub async fn bind(config: &RelayConfig) -> Result<TcpListener, BindError> {
    let failed = |source| BindError {
        listen: config.listen.clone(),
        source,
    };
    let listener = TcpListener::bind(&config.listen).await.map_err(failed)?;
    let local = listener.local_addr().map_err(failed)?;
    tracing::info!(listen = %local, forward = %config.forward, "capture relay listening");
    Ok(listener)
}

/// Relays every connection `listener` accepts until `cancel`; open sessions are then
/// abandoned as interrupted (`shutdown`).
pub async fn relay(
    listener: TcpListener,
    recorder: Arc<Recorder>,
    config: RelayConfig,
    stats: Arc<RelayStats>,
    cancel: CancellationToken,
) {
    let mut connections = tokio::task::JoinSet::new();
    // Journals no capture holds (a recording that failed for want of space) are folded
    // as soon as space allows: tried again every 5 s.
    let mut retry_folds = tokio::time::interval(FOLD_RETRY);
    retry_folds.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = retry_folds.tick() => {
                let recorder = recorder.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let stalled = recorder.store().fs().journals().unwrap_or_default().into_iter().any(|id| {
                        !recorder.store().fs().journal_held(&id).unwrap_or(true)
                    });
                    if stalled {
                        recover_orphans(&recorder);
                    }
                })
                .await;
            }
            accepted = listener.accept() => match accepted {
                Ok((analyzer, peer)) => {
                    stats.connections.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(connection(
                        analyzer,
                        peer,
                        config.clone(),
                        recorder.clone(),
                        stats.clone(),
                        cancel.clone(),
                    ));
                }
                Err(e) => {
                    // Out of descriptors, say: keep serving the connections there are.
                    tracing::error!(error = %e, "capture: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    let unrecorded = stats.unrecorded.load(Ordering::Relaxed);
    tracing::info!(
        connections = stats.connections.load(Ordering::Relaxed),
        sessions = stats.sessions.load(Ordering::Relaxed),
        elements = stats.elements.load(Ordering::Relaxed),
        unrecorded,
        "capture relay stopped"
    );
}

/// Folds the journals of captures a crash cut off (those no live relay holds), and
/// says so.
pub fn recover_orphans(recorder: &Recorder) {
    match recorder.recover() {
        Ok(found) => {
            if !found.interrupted.is_empty() || !found.finished.is_empty() || found.torn_records > 0 {
                tracing::warn!(
                    interrupted = found.interrupted.len(),
                    finished = found.finished.len(),
                    torn_records = found.torn_records,
                    "capture: sessions a crash cut off were stored, marked interrupted"
                );
            }
            for (id, problem) in found.failures {
                tracing::error!(session = %id, %problem, "capture: a journal could not be stored as a session yet; the relay tries again (and so does the next start)");
            }
        }
        Err(e) => tracing::error!(error = %e, "capture: cannot look for interrupted captures"),
    }
}

/// One analyzer connection's capture: its machine and its open session.
struct Capture {
    framer: ConnectionFramer,
    open: Option<OpenCapture>,
    endpoints: Endpoints,
    /// When the LIS closed, reset or refused its side: from then on nothing the
    /// analyzer sends reaches it, and every session open then or later says so.
    lis_gone_at: Option<u64>,
    /// Recording failed during this connection: its journal waits to be folded.
    recording_failed: bool,
    /// The analyzer has closed its side (or its socket failed): a LIS that closes after
    /// that missed nothing.
    analyzer_done: bool,
    /// Sessions whose end is journaled, to be stored as files off the conversation's
    /// path (the end marker is forwarded meanwhile).
    ended: Vec<EndedCapture>,
}

impl Capture {
    /// The LIS is gone at `at` (the first time counts); the open session says so. A
    /// LIS that closes after the analyzer did, or because the relay is stopping, went
    /// away with nothing left to receive: that is no `lisClosed`.
    fn lis_gone(&mut self, at: u64, stopping: bool) {
        if self.analyzer_done || stopping {
            return;
        }
        let since = *self.lis_gone_at.get_or_insert(at);
        if let Some(open) = self.open.as_mut() {
            open.lis_missed(since, 0);
        }
    }
}

async fn connection(
    analyzer: TcpStream,
    peer: SocketAddr,
    config: RelayConfig,
    recorder: Arc<Recorder>,
    stats: Arc<RelayStats>,
    cancel: CancellationToken,
) {
    let Some(lis) = connect_lis(&config.forward, peer).await else {
        return;
    };
    let _ = analyzer.set_nodelay(true);
    let _ = lis.set_nodelay(true);
    let endpoints = Endpoints {
        device_ip: Some(peer.ip().to_string()),
        lis_ip: lis.peer_addr().ok().map(|a| a.ip().to_string()),
    };
    tracing::info!(analyzer = %peer, lis = %config.forward, "capture: connection opened");
    let capture = Arc::new(tokio::sync::Mutex::new(Capture {
        framer: ConnectionFramer::new(config.framing, config.markers),
        open: None,
        endpoints,
        lis_gone_at: None,
        recording_failed: false,
        analyzer_done: false,
        ended: Vec::new(),
    }));
    let (analyzer_read, analyzer_write) = analyzer.into_split();
    let (lis_read, lis_write) = lis.into_split();
    let stop = cancel.child_token();
    let storing = TaskTracker::new();
    let to_lis = pump(
        Side::Device,
        (analyzer_read, lis_write),
        &capture,
        (&recorder, &stats),
        &storing,
        &stop,
    );
    let to_analyzer = pump(
        Side::Lis,
        (lis_read, analyzer_write),
        &capture,
        (&recorder, &stats),
        &storing,
        &stop,
    );
    let pumps_done = CancellationToken::new();
    let pumping = async {
        tokio::join!(to_lis, to_analyzer);
        pumps_done.cancel();
    };
    tokio::join!(
        pumping,
        end_quiet_bursts(&capture, &recorder, &stats, &pumps_done)
    );
    storing.close();
    storing.wait().await;
    let reason = if cancel.is_cancelled() {
        InterruptionReason::Shutdown
    } else {
        InterruptionReason::ConnectionClosed
    };
    let mut state = capture.clone().lock_owned().await;
    let events = state.framer.close(reason, now_ms());
    let (recorder, stats) = (recorder.clone(), stats.clone());
    let _ = tokio::task::spawn_blocking(move || {
        apply(&mut state, events, &recorder, &stats, 0);
        store_ended(std::mem::take(&mut state.ended), &stats);
        // A capture whose recording failed is stored now, from its journal, if it can
        // be; else the relay's retry (or the next start) does it.
        if state.recording_failed {
            recover_orphans(&recorder);
        }
    })
    .await;
    tracing::info!(analyzer = %peer, "capture: connection closed");
}

/// Connects to the LIS for the analyzer at `peer`; `None` (logged) when it cannot be
/// reached within [`CONNECT_TIMEOUT`].
async fn connect_lis(forward: &str, peer: SocketAddr) -> Option<TcpStream> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(forward)).await {
        Ok(Ok(lis)) => Some(lis),
        Ok(Err(e)) => {
            tracing::error!(analyzer = %peer, %forward, error = %e, "capture: cannot reach the LIS; closing the analyzer's connection");
            None
        }
        Err(_) => {
            tracing::error!(analyzer = %peer, %forward, "capture: the LIS did not accept within 10 s; closing the analyzer's connection");
            None
        }
    }
}

/// While the connection lasts, asks the framing once a second whether the traffic has
/// been quiet long enough to end a burst (MLLP sessions end so, without a marker).
async fn end_quiet_bursts(
    capture: &Arc<tokio::sync::Mutex<Capture>>,
    recorder: &Arc<Recorder>,
    stats: &Arc<RelayStats>,
    done: &CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_millis(MLLP_IDLE_MS.min(1_000)));
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = every.tick() => {}
        }
        let mut state = capture.clone().lock_owned().await;
        let events = state.framer.idle(now_ms());
        if events.is_empty() {
            continue;
        }
        let (recorder, stats) = (recorder.clone(), stats.clone());
        let _ = tokio::task::spawn_blocking(move || {
            apply(&mut state, events, &recorder, &stats, 0);
            store_ended(std::mem::take(&mut state.ended), &stats);
        })
        .await;
    }
}

/// Copies `from` to `to`, recording each chunk before writing it. Ends at end of
/// stream (then half-closes `to`), at an error on either socket (then stops the other
/// direction too), or at shutdown. Sessions a chunk ended are stored on `storing`
/// while the chunk goes on: their ends are durable already.
async fn pump(
    side: Side,
    (mut from, mut to): (tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf),
    capture: &Arc<tokio::sync::Mutex<Capture>>,
    (recorder, stats): (&Arc<Recorder>, &Arc<RelayStats>),
    storing: &TaskTracker,
    stop: &CancellationToken,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = tokio::select! {
            _ = stop.cancelled() => return,
            read = from.read(&mut buf) => match read {
                Ok(0) => return side_ended(side, None, &mut to, capture, stop).await,
                Ok(n) => n,
                Err(e) => return side_ended(side, Some(e), &mut to, capture, stop).await,
            },
        };
        match side {
            Side::Device => &stats.bytes_from_device,
            Side::Lis => &stats.bytes_from_lis,
        }
        .fetch_add(n as u64, Ordering::Relaxed);
        let chunk = buf[..n].to_vec();
        let mut state = capture.clone().lock_owned().await;
        let at = now_ms();
        // After the LIS went away nothing reaches it: recorded, counted, not forwarded.
        let lis_gone = side == Side::Device && state.lis_gone_at.is_some();
        let events = state.framer.feed(side, &chunk, at);
        let missed = if lis_gone { n as u64 } else { 0 };
        if !events.is_empty() || missed > 0 {
            let (recorder, stats) = (recorder.clone(), stats.clone());
            // Record before forward: the chunk goes on once what it completed is durable.
            let stats = stats.clone();
            match tokio::task::spawn_blocking(move || {
                apply(&mut state, events, &recorder, &stats, missed);
                let ended = std::mem::take(&mut state.ended);
                drop(state);
                (ended, stats)
            })
            .await
            {
                Ok((ended, stats)) if !ended.is_empty() => {
                    storing.spawn_blocking(move || store_ended(ended, &stats));
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "capture: recording panicked; forwarding anyway"),
            }
        } else {
            drop(state);
        }
        if lis_gone {
            continue;
        }
        if let Err(e) = to.write_all(&chunk).await {
            if side == Side::Device {
                // The LIS refused the bytes: they never reached it. The analyzer's side
                // stays open and recorded until it closes.
                tracing::info!(error = %e, "capture: the LIS is gone; recording what the analyzer still sends");
                let mut state = capture.clone().lock_owned().await;
                state.lis_gone(at, stop.is_cancelled());
                let (recorder, stats) = (recorder.clone(), stats.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    apply(&mut state, Vec::new(), &recorder, &stats, n as u64)
                })
                .await;
                continue;
            }
            tracing::info!(?side, error = %e, "capture: cannot forward; closing the connection");
            stop.cancel();
            return;
        }
    }
}

/// `side` closed its connection (`failed`: it failed instead). The LIS gone: the
/// analyzer may still be sending, so its direction goes on and is recorded. The
/// analyzer gone: at its end of stream the LIS's direction goes on until the LIS
/// closes; a failed analyzer socket stops both.
async fn side_ended(
    side: Side,
    failed: Option<std::io::Error>,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    capture: &Arc<tokio::sync::Mutex<Capture>>,
    stop: &CancellationToken,
) {
    if let Some(e) = &failed {
        tracing::info!(?side, error = %e, "capture: a side's connection failed");
    }
    let mut state = capture.lock().await;
    match side {
        Side::Lis => state.lis_gone(now_ms(), stop.is_cancelled()),
        Side::Device => state.analyzer_done = true,
    }
    drop(state);
    if side == Side::Device && failed.is_some() {
        stop.cancel();
    } else {
        let _ = to.shutdown().await;
    }
}

/// Applies the machine's events to the recorder. A failure is logged (without bytes)
/// and counted; the session it hit is left to recovery, which keeps what was durable.
fn apply(
    capture: &mut Capture,
    events: Vec<Framed>,
    recorder: &Recorder,
    stats: &RelayStats,
    mut missed: u64,
) {
    // The chunk's bytes the LIS never received count against the session open when it
    // came, or else the one it began.
    if let (Some(since), Some(open)) = (capture.lis_gone_at, capture.open.as_mut())
        && missed > 0
    {
        open.lis_missed(since, std::mem::take(&mut missed));
    }
    // The elements between two other events are appended together, with one fsync.
    let mut batch: Vec<FramedElement> = Vec::new();
    for event in events {
        if let Framed::Element(element) = event {
            batch.push(element);
            continue;
        }
        append_batch(capture, &mut batch, stats);
        match event {
            Framed::Begin { at, unframed } => {
                // A session still open here was already ended by the machine; a leftover
                // means its ending failed to record: recovery takes its journal.
                capture.open = None;
                match recorder.begin(&capture.endpoints, at) {
                    Ok(mut open) => {
                        tracing::info!(session = %open.id(), unframed, "capture: session opened");
                        if let Some(since) = capture.lis_gone_at {
                            open.lis_missed(since, std::mem::take(&mut missed));
                        }
                        capture.open = Some(open);
                    }
                    Err(e) => {
                        stats.unrecorded.fetch_add(1, Ordering::Relaxed);
                        stats.recording_failures.fetch_add(1, Ordering::Relaxed);
                        capture.recording_failed = true;
                        tracing::error!(error = %e, "capture: CANNOT RECORD a new session; still forwarding");
                    }
                }
            }
            Framed::Element(_) => {}
            Framed::Complete { at } => end_open(capture, stats, at, None),
            Framed::Abandon { at, reason } => end_open(capture, stats, at, Some(reason)),
        }
    }
    append_batch(capture, &mut batch, stats);
}

fn append_batch(capture: &mut Capture, batch: &mut Vec<FramedElement>, stats: &RelayStats) {
    if batch.is_empty() {
        return;
    }
    let count = batch.len() as u64;
    match capture.open.as_mut().map(|open| open.append_all(batch)) {
        Some(Ok(())) => {
            stats.elements.fetch_add(count, Ordering::Relaxed);
        }
        Some(Err(e)) => {
            stats.unrecorded.fetch_add(count, Ordering::Relaxed);
            tracing::error!(error = %e, "capture: CANNOT RECORD an element; still forwarding (the session keeps what was recorded)");
            // Its journal may end in a partial record now: stop writing to it, and let
            // it go (unlocked), so that `status` shows it as failed and it is folded.
            stats.recording_failures.fetch_add(1, Ordering::Relaxed);
            capture.open = None;
            capture.recording_failed = true;
        }
        None => {
            stats.unrecorded.fetch_add(count, Ordering::Relaxed);
        }
    }
    batch.clear();
}

/// Journals the end of the open session (durably); its file is stored later, by
/// [`store_ended`].
fn end_open(capture: &mut Capture, stats: &RelayStats, at: u64, interrupted: Option<InterruptionReason>) {
    let Some(open) = capture.open.take() else { return };
    match open.end(at, interrupted) {
        Ok(ended) => capture.ended.push(ended),
        Err(e) => {
            stats.unrecorded.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "capture: CANNOT RECORD the end of a session; its journal is kept for recovery");
        }
    }
}

/// Stores sessions whose ends are journaled as session files.
fn store_ended(ended: Vec<EndedCapture>, stats: &RelayStats) {
    for capture in ended {
        match capture.store() {
            Ok(id) => {
                stats.sessions.fetch_add(1, Ordering::Relaxed);
                tracing::info!(session = %id, "capture: session stored");
            }
            Err(e) => {
                stats.unrecorded.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "capture: CANNOT STORE a finished session; its journal is kept for recovery");
            }
        }
    }
}
