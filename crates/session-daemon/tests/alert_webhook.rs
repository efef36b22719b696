//! The alert webhook against a real HTTP server on 127.0.0.1: an alert is told once
//! while it stands (a refused POST retried with the same key, each wait twice the one
//! before), and its clearing once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use session_daemon::{AlertWebhook, StatusOptions};
use session_store::{DecodeOptions, SessionStore};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

/// Each request the server received: its `Idempotency-Key`, its JSON body and when.
type Received = Arc<Mutex<Vec<(String, serde_json::Value, Instant)>>>;

/// How often the webhook under test looks at the alerts.
const EVERY: Duration = Duration::from_millis(300);

/// A server that answers 500 to the first `refusals` requests and 200 to the others.
async fn server(refusals: usize) -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook?token=secret", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let kept = received.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut socket = BufReader::new(socket);
                loop {
                    let (mut key, mut length) = (String::new(), 0usize);
                    loop {
                        let mut line = String::new();
                        if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        if lower.starts_with("idempotency-key:") {
                            key = line["idempotency-key:".len()..].trim().to_owned();
                        }
                    }
                    let mut body = vec![0; length];
                    socket.read_exact(&mut body).await.unwrap();
                    let refused = {
                        let mut received = kept.lock().unwrap();
                        received.push((key, serde_json::from_slice(&body).unwrap(), Instant::now()));
                        received.len() <= refusals
                    };
                    let status = if refused {
                        "500 Internal Server Error"
                    } else {
                        "200 OK"
                    };
                    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                    socket.get_mut().write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (url, received)
}

fn wait_for(received: &Received, n: usize) -> Vec<(String, serde_json::Value, Instant)> {
    test_support::wait_until(Duration::from_secs(30), "the webhook's requests", || {
        let received = received.lock().unwrap();
        (received.len() >= n).then(|| received.clone())
    })
}

/// A store whose clock is suspect (an independent time a year ahead), and a webhook
/// on it telling `url`.
fn suspect_store(url: String) -> (tempfile::TempDir, SessionStore, AlertWebhook) {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    let year = 365 * 24 * 3_600_000;
    store
        .fs()
        .corroborate_clock(store.fs().clock().now_ms() + year, "test")
        .unwrap();
    let webhook = AlertWebhook {
        url,
        station: "lab-1".into(),
        store: store.clone(),
        index: None,
        options: StatusOptions {
            retry_cap_ms: 3_600_000,
            alert_undelivered_ms: 3_600_000,
        },
        check_every: EVERY,
    };
    (dir, store, webhook)
}

async fn received_at_least(received: &Received, n: usize) -> Vec<(String, serde_json::Value, Instant)> {
    let received = received.clone();
    tokio::task::spawn_blocking(move || wait_for(&received, n))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standing_alert_is_told_once_retried_when_refused_and_its_clearing_told_once() {
    let (url, received) = server(1).await;
    let (dir, store, webhook) = suspect_store(url);
    let cancel = CancellationToken::new();
    let running = tokio::spawn(webhook.run(cancel.clone()));
    let firing = received_at_least(&received, 2).await;
    let (key, body, _) = &firing[0];
    assert_eq!(body["alert"], "clockSuspect");
    assert_eq!(body["state"], "firing");
    assert_eq!(body["station"], "lab-1");
    assert_eq!(body["store"], dir.path().display().to_string());
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("the computer's clock is suspect")
    );
    let since = body["since"].as_u64().unwrap();
    assert_eq!(key, &format!("clockSuspect-firing-{since}"));
    assert_eq!(firing[1].0, *key, "refused, then told again under the same key");
    assert_eq!(firing[1].1["state"], "firing");
    // Told: while it stands, never again.
    tokio::time::sleep(EVERY * 4).await;
    assert_eq!(received.lock().unwrap().len(), 2);
    store.fs().confirm_clock().unwrap();
    let all = received_at_least(&received, 3).await;
    let (key, body, _) = &all[2];
    assert_eq!(body["state"], "resolved");
    assert_eq!(key, &format!("clockSuspect-resolved-{since}"));
    // Its clearing told once too.
    tokio::time::sleep(EVERY * 4).await;
    assert_eq!(received.lock().unwrap().len(), 3);
    cancel.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_wait_after_a_refusal_is_twice_the_one_before() {
    let (url, received) = server(3).await;
    let (_dir, _store, webhook) = suspect_store(url);
    let cancel = CancellationToken::new();
    let running = tokio::spawn(webhook.run(cancel.clone()));
    let tries = received_at_least(&received, 4).await;
    let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1].2 - w[0].2).collect();
    // Waits of 1, 2 and 4 checks: a busy machine only makes them longer, and half a
    // check is left for the POSTs' own times, which may differ.
    assert!(gaps[0] >= EVERY / 2, "{gaps:?}");
    assert!(gaps[1] >= EVERY * 3 / 2, "{gaps:?}");
    assert!(gaps[2] >= EVERY * 7 / 2, "{gaps:?}");
    assert!(
        tries.iter().all(|(key, ..)| *key == tries[0].0),
        "one key for every try"
    );
    cancel.cancel();
    running.await.unwrap();
}
