//! The running daemon's handle: what it starts, what it reports, how it stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use session_capture::relay::RelayConfig;
use session_daemon::{Claimed, Phase, Running, Services, StopSignals, StoreWatch, Submission};
use session_store::{DecodeOptions, SessionStore};
use session_workers::submit::{ChangeFeed, HttpTransport, SubmitConfig};

async fn started(dir: &std::path::Path, services: Services<HttpTransport>) -> (SessionStore, Running) {
    let claimed = Claimed::claim(dir, DecodeOptions::default(), "test").unwrap();
    assert!(format!("{claimed:?}").contains("Claimed"));
    let recovered = claimed.recover(|_, _| {}, |_| {}).unwrap();
    let store = claimed.migrate(recovered.outdated, |_| {}).unwrap();
    let running = claimed.start(&store, recovered.delivery, None, services).unwrap();
    (store, running)
}

#[test]
fn phases_read_as_the_page_says_them() {
    assert_eq!(Phase::Recovering.as_str(), "recovering");
    assert_eq!(Phase::Migrating.as_str(), "migrating");
}

#[test]
fn recovery_reports_progress_every_500_files() {
    // Current files: recovering; old ones: migrating, once the pass has upgraded one.
    for (legacy, phase) in [(false, Phase::Recovering), (true, Phase::Migrating)] {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..1_000 {
            let doc = format!(r#"{{"id": "s-{n}", "startTime": 1, "isComplete": true, "messages": []}}"#);
            let bytes = if legacy {
                doc.into_bytes()
            } else {
                session_store::encode(&session_store::decode(doc.as_bytes()).unwrap().session).unwrap()
            };
            std::fs::write(dir.path().join(format!("s-{n}.json")), bytes).unwrap();
        }
        let claimed = Claimed::claim(dir.path(), DecodeOptions::default(), "test").unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        claimed
            .recover(
                |_, _| {},
                |p| seen.lock().unwrap().push((p.phase, p.done, p.total)),
            )
            .unwrap();
        assert_eq!(
            seen.into_inner().unwrap(),
            [(phase, 500, Some(1000)), (phase, 1000, Some(1000))],
            "legacy: {legacy}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_record_is_taken_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (store, running) = started(dir.path(), Services::default()).await;
    let taken = test_support::poll_until(Duration::from_secs(10), || {
        store.fs().clock_record().ok().filter(|r| r.trusted.is_some())
    });
    assert!(taken.is_some(), "no clock reading recorded");
    assert!(running.stop(Duration::from_secs(1)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_runs_when_asked_and_counts_into_its_stats() {
    let dir = tempfile::tempdir().unwrap();
    let lis = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = RelayConfig::new("127.0.0.1:0", lis.local_addr().unwrap().to_string());
    let listener = session_capture::relay::bind(&config).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let services = Services::default().relay(listener, config);
    let (_store, running) = started(dir.path(), services).await;
    let stats = running.relay_stats().expect("the relay's counters");
    let _analyzer = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _accepted = lis.accept().await.unwrap();
    let counted = test_support::poll_until(Duration::from_secs(10), || {
        (stats.connections.load(Ordering::Relaxed) == 1).then_some(())
    });
    assert!(counted.is_some(), "the relay did not count its connection");
    assert!(format!("{running:?}").contains("Running"));
    assert!(running.stop(Duration::from_secs(1)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_relay_there_are_no_relay_stats_and_a_submission_worker_holds_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let transport = HttpTransport::new("http://127.0.0.1:9/", None, Duration::from_secs(1)).unwrap();
    let services = Services::default().submission(Submission::new(transport, SubmitConfig::default()));
    let (store, running) = started(dir.path(), services).await;
    assert!(running.relay_stats().is_none());
    // The worker holds the submitter role: a second worker is refused.
    let second = session_workers::submit::SubmissionWorker::new(
        store.clone(),
        HttpTransport::new("http://127.0.0.1:9/", None, Duration::from_secs(1)).unwrap(),
        SubmitConfig::default(),
        Arc::new(session_workers::SystemClock),
        tokio::sync::broadcast::channel(1).0,
    );
    assert!(second.is_err(), "the daemon's submission worker holds the role");
    assert!(running.stop(Duration::from_secs(1)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_tasks_see_the_stop_and_one_that_ignores_it_makes_stop_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, mut running) = started(dir.path(), Services::default()).await;
    let stopping = running.stopping();
    assert!(!stopping.is_cancelled());
    let saw_stop = Arc::new(AtomicBool::new(false));
    let saw = saw_stop.clone();
    let token = running.stopping();
    running.spawn(async move {
        token.cancelled().await;
        saw.store(true, Ordering::SeqCst);
    });
    assert!(running.stop(Duration::ZERO).await);
    assert!(stopping.is_cancelled());
    assert!(
        saw_stop.load(Ordering::SeqCst),
        "a spawned task is awaited by stop"
    );

    let dir = tempfile::tempdir().unwrap();
    let (_store, mut running) = started(dir.path(), Services::default()).await;
    running.spawn(std::future::pending());
    let stopped_in_time = tokio::time::timeout(Duration::from_secs(30), running.stop(Duration::ZERO))
        .await
        .expect("stop gives up after grace + 5 s");
    assert!(!stopped_in_time, "a task that never stops is reported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_reports_stored_and_deleted_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let feed = ChangeFeed::new();
    let (sender, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let watch = StoreWatch::start(dir.path(), vec![feed.clone()], move |id, stored| {
        let _ = sender.send((id.to_string(), stored));
    })
    .expect("a temp dir can be watched");
    assert!(format!("{watch:?}").contains("StoreWatch"));
    std::fs::write(dir.path().join("s-1.json"), b"{}").unwrap();
    std::fs::write(dir.path().join("not-a-session.txt"), b"x").unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, ("s-1".to_owned(), true));
    std::fs::remove_file(dir.path().join("s-1.json")).unwrap();
    let gone = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .unwrap()
            .unwrap();
        if !next.1 {
            break next;
        }
    };
    assert_eq!(gone.0, "s-1");
    assert_eq!(feed.take().0.len(), 1, "the feed heard of s-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_ends_the_wait() {
    let signals = StopSignals::catch().unwrap();
    let waiting = tokio::spawn(signals.wait());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished());
    // Caught by the handler installed above: this test process is not terminated.
    unsafe { libc::raise(libc::SIGTERM) };
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the wait ends at SIGTERM")
        .unwrap();
}
