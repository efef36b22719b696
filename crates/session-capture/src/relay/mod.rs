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
//! Each connection is copied by two threads of its own, one per direction, blocked on
//! its socket: a chunk is read, recorded and forwarded by one thread, with no hand-off
//! on the way. At most [`RelayConfig::max_connections`] are relayed at once (512 by
//! default); more wait in the listen backlog until one ends. Stopping the relay shuts
//! every connection's sockets down, which wakes a thread blocked on either.
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

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_fs::now_ms;
use session_model::InterruptionReason;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

mod recording;
use recording::apply;

use crate::{
    ConnectionFramer, EndedCapture, Endpoints, Framing, MLLP_IDLE_MS, Markers, OpenCapture, Recorder, Side,
};

/// How long the relay waits for the LIS to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the relay tries again to store captures whose recording failed.
const FOLD_RETRY: Duration = Duration::from_secs(5);
/// The most one read takes from a socket.
const CHUNK: usize = 64 * 1024;
/// [`RelayConfig::max_connections`] by default: far more analyzers than a lab has.
pub const MAX_CONNECTIONS: usize = 512;

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
    /// The most connections relayed at once; more wait in the listen backlog until one
    /// ends. Each connection is copied by two threads of its own: the bound keeps a
    /// storm of connections from taking every thread the process may have.
    pub max_connections: usize,
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
            max_connections: MAX_CONNECTIONS,
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

    /// Relaying at most `max` connections at once (at least one).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
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
            accepted = listener.accept(), if connections.len() < config.max_connections => match accepted {
                Ok((analyzer, peer)) => {
                    stats.connections.fetch_add(1, Ordering::Relaxed);
                    if connections.len() + 1 == config.max_connections {
                        tracing::warn!(max = config.max_connections, "capture: relaying as many connections as allowed; more wait until one ends");
                    }
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
    // The conversation is copied by two threads of its own, blocked on their sockets:
    // a chunk is read, recorded and forwarded by one thread, with no hand-off between
    // threads on the way (each hand-off costs a wake-up, the largest part of what a
    // relay adds to a round trip).
    let sockets = match (blocking(analyzer), blocking(lis)) {
        (Ok(analyzer), Ok(lis)) => Sockets { analyzer, lis },
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(analyzer = %peer, error = %e, "capture: cannot take over the connection's sockets; closing it");
            return;
        }
    };
    // Kept here to wake the connection's threads at shutdown.
    let woken = match sockets.try_clone() {
        Ok(woken) => woken,
        Err(e) => {
            tracing::error!(analyzer = %peer, error = %e, "capture: cannot take over the connection's sockets; closing it");
            return;
        }
    };
    tracing::info!(analyzer = %peer, lis = %config.forward, "capture: connection opened");
    let conversation = Conversation {
        capture: Mutex::new(Capture {
            framer: ConnectionFramer::new(config.framing, config.markers),
            open: None,
            endpoints,
            lis_gone_at: None,
            recording_failed: false,
            analyzer_done: false,
            ended: Vec::new(),
        }),
        recorder,
        stats,
        cancel: cancel.clone(),
        stopped: AtomicBool::new(false),
        sockets,
        storing: Mutex::new(None),
    };
    let (done, mut ended) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("capture-connection".into())
        .spawn(move || {
            conversation.run();
            let _ = done.send(());
        });
    if let Err(e) = spawned {
        tracing::error!(analyzer = %peer, error = %e, "capture: cannot start the connection's thread; closing it");
        woken.shut_down();
        return;
    }
    tokio::select! {
        _ = cancel.cancelled() => {
            // Shutting the sockets down wakes the threads blocked on them.
            woken.shut_down();
            let _ = (&mut ended).await;
        }
        _ = &mut ended => {}
    }
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

/// A tokio socket as a blocking standard one, for the connection's own threads.
fn blocking(stream: TcpStream) -> std::io::Result<std::net::TcpStream> {
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    // Reads wake up this often on a quiet line, to end MLLP bursts that went quiet.
    stream.set_read_timeout(Some(Duration::from_millis(MLLP_IDLE_MS.min(1_000))))?;
    Ok(stream)
}

/// The two sockets of one connection.
struct Sockets {
    analyzer: std::net::TcpStream,
    lis: std::net::TcpStream,
}

impl Sockets {
    fn try_clone(&self) -> std::io::Result<Sockets> {
        Ok(Sockets {
            analyzer: self.analyzer.try_clone()?,
            lis: self.lis.try_clone()?,
        })
    }

    /// Ends both directions: every read blocked on them returns.
    fn shut_down(&self) {
        let _ = self.analyzer.shutdown(Shutdown::Both);
        let _ = self.lis.shutdown(Shutdown::Both);
    }

    /// What `side` sends is read from, and where it is forwarded to.
    fn of(&self, side: Side) -> (&std::net::TcpStream, &std::net::TcpStream) {
        match side {
            Side::Device => (&self.analyzer, &self.lis),
            Side::Lis => (&self.lis, &self.analyzer),
        }
    }
}

/// One connection, copied both ways by its own threads.
struct Conversation {
    capture: Mutex<Capture>,
    recorder: Arc<Recorder>,
    stats: Arc<RelayStats>,
    cancel: CancellationToken,
    /// The connection is being closed by the relay (a socket failed, or shutdown):
    /// reads that end now are no side closing its connection.
    stopped: AtomicBool,
    sockets: Sockets,
    /// Hands sessions whose ends are journaled to the connection's storing thread,
    /// started with the first of them; closed when both directions are done.
    storing: Mutex<Option<std::sync::mpsc::Sender<Vec<EndedCapture>>>>,
}

impl Conversation {
    fn state(&self) -> std::sync::MutexGuard<'_, Capture> {
        // Recording keeps no invariant across a panic that a later call could break:
        // what was appended is durable, what was not is recovery's.
        self.capture
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        self.stopped.load(Ordering::Relaxed) || self.cancel.is_cancelled()
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.sockets.shut_down();
    }

    /// Copies both ways until both sides are done, then ends the open session.
    /// Sessions a chunk ended are stored by a thread of the connection's own while the
    /// chunk goes on (their ends are durable already); all are stored before this
    /// returns.
    fn run(self) {
        std::thread::scope(|scope| {
            let lis_side = std::thread::Builder::new()
                .name("capture-lis".into())
                .spawn_scoped(scope, || self.pump(Side::Lis, scope));
            match lis_side {
                Ok(lis_side) => {
                    self.pump(Side::Device, scope);
                    let _ = lis_side.join();
                }
                Err(e) => {
                    tracing::error!(error = %e, "capture: cannot start the LIS side's thread; closing the connection");
                    self.stop();
                    self.pump(Side::Device, scope);
                }
            }
            // Both directions are done: the storing thread ends once it has stored
            // what it was handed.
            drop(self.storing_queue().take());
        });
        let reason = if self.cancel.is_cancelled() {
            InterruptionReason::Shutdown
        } else {
            InterruptionReason::ConnectionClosed
        };
        let mut state = self.state();
        let events = state.framer.close(reason, now_ms());
        apply(&mut state, events, &self.recorder, &self.stats, 0);
        store_ended(std::mem::take(&mut state.ended), &self.stats);
        // A capture whose recording failed is stored now, from its journal, if it can
        // be; else the relay's retry (or the next start) does it.
        if state.recording_failed {
            recover_orphans(&self.recorder);
        }
    }

    /// Copies what `side` sends to the other side, recording each chunk before writing
    /// it. Ends at end of stream (then half-closes the other side), at an error on
    /// either socket (then stops the other direction too), or at shutdown.
    fn pump<'scope>(&'scope self, side: Side, scope: &'scope std::thread::Scope<'scope, '_>) {
        let (mut from, mut to) = self.sockets.of(side);
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match from.read(&mut buf) {
                Ok(n) if n > 0 => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.quiet(scope);
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                _ if self.stopping() => return,
                Ok(_) => return self.side_ended(side, None),
                Err(e) => return self.side_ended(side, Some(e)),
            };
            match side {
                Side::Device => &self.stats.bytes_from_device,
                Side::Lis => &self.stats.bytes_from_lis,
            }
            .fetch_add(n as u64, Ordering::Relaxed);
            let chunk = &buf[..n];
            let mut state = self.state();
            let at = now_ms();
            // After the LIS went away nothing reaches it: recorded, counted, not forwarded.
            let lis_gone = side == Side::Device && state.lis_gone_at.is_some();
            let events = state.framer.feed(side, chunk, at);
            let missed = if lis_gone { n as u64 } else { 0 };
            if !events.is_empty() || missed > 0 {
                // Record before forward: the chunk goes on once what it completed is durable.
                apply(&mut state, events, &self.recorder, &self.stats, missed);
                self.store_off_path(&mut state, scope);
            }
            drop(state);
            if lis_gone {
                continue;
            }
            if let Err(e) = to.write_all(chunk) {
                if self.stopping() {
                    return;
                }
                if side == Side::Device {
                    // The LIS refused the bytes: they never reached it. The analyzer's
                    // side stays open and recorded until it closes.
                    tracing::info!(error = %e, "capture: the LIS is gone; recording what the analyzer still sends");
                    let mut state = self.state();
                    state.lis_gone(at, false);
                    apply(&mut state, Vec::new(), &self.recorder, &self.stats, n as u64);
                    continue;
                }
                tracing::info!(?side, error = %e, "capture: cannot forward; closing the connection");
                self.stop();
                return;
            }
        }
    }

    /// Nothing came for a while: the framing may end a burst (MLLP sessions end so,
    /// without a marker).
    fn quiet<'scope>(&'scope self, scope: &'scope std::thread::Scope<'scope, '_>) {
        let mut state = self.state();
        let events = state.framer.idle(now_ms());
        if !events.is_empty() {
            apply(&mut state, events, &self.recorder, &self.stats, 0);
            self.store_off_path(&mut state, scope);
        }
    }

    fn storing_queue(&self) -> std::sync::MutexGuard<'_, Option<std::sync::mpsc::Sender<Vec<EndedCapture>>>> {
        // A sender keeps no invariant a panic could break.
        self.storing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands the sessions whose ends `state` journaled to the connection's storing
    /// thread (started the first time), off the conversation's path.
    fn store_off_path<'scope>(
        &'scope self,
        state: &mut Capture,
        scope: &'scope std::thread::Scope<'scope, '_>,
    ) {
        if state.ended.is_empty() {
            return;
        }
        let ended = std::mem::take(&mut state.ended);
        let mut queue = self.storing_queue();
        if queue.is_none() {
            let (sender, received) = std::sync::mpsc::channel::<Vec<EndedCapture>>();
            let stats = &self.stats;
            let spawned = std::thread::Builder::new()
                .name("capture-store".into())
                .spawn_scoped(scope, move || {
                    for ended in received {
                        store_ended(ended, stats);
                    }
                });
            match spawned {
                Ok(_) => *queue = Some(sender),
                Err(e) => {
                    // The ends are journaled: recovery folds them, at the connection's end.
                    tracing::error!(error = %e, "capture: cannot start a thread to store finished sessions; their journals are folded when the connection ends");
                    state.recording_failed = true;
                    return;
                }
            }
        }
        if let Some(Err(unsent)) = queue.as_ref().map(|sender| sender.send(ended)) {
            // The storing thread is gone (it panicked): stored here instead.
            store_ended(unsent.0, &self.stats);
        }
    }

    /// `side` closed its connection (`failed`: it failed instead). The LIS gone: the
    /// analyzer may still be sending, so its direction goes on and is recorded. The
    /// analyzer gone: at its end of stream the LIS's direction goes on until the LIS
    /// closes; a failed analyzer socket stops both.
    fn side_ended(&self, side: Side, failed: Option<std::io::Error>) {
        if let Some(e) = &failed {
            tracing::info!(?side, error = %e, "capture: a side's connection failed");
        }
        let mut state = self.state();
        match side {
            Side::Lis => state.lis_gone(now_ms(), self.stopping()),
            Side::Device => state.analyzer_done = true,
        }
        drop(state);
        if side == Side::Device && failed.is_some() {
            self.stop();
        } else {
            let (_, to) = self.sockets.of(side);
            let _ = to.shutdown(Shutdown::Write);
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
