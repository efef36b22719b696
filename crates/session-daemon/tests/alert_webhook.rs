//! The alert webhook against a real HTTP server on 127.0.0.1: an alert is told once
//! while it stands (a refused POST retried with the same key), and its clearing once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use session_daemon::{AlertWebhook, StatusOptions};
use session_store::{DecodeOptions, SessionStore};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

/// One request the server received: its `Idempotency-Key` and its JSON body.
type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A server that answers 500 to the first request and 200 to the others.
async fn server() -> (String, Received) {
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
                    let first = {
                        let mut received = kept.lock().unwrap();
                        received.push((key, serde_json::from_slice(&body).unwrap()));
                        received.len() == 1
                    };
                    let status = if first {
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

fn wait_for(received: &Received, n: usize) -> Vec<(String, serde_json::Value)> {
    test_support::wait_until(Duration::from_secs(30), "the webhook's requests", || {
        let received = received.lock().unwrap();
        (received.len() >= n).then(|| received.clone())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standing_alert_is_told_once_retried_when_refused_and_its_clearing_told_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path(), DecodeOptions::default()).unwrap();
    let year = 365 * 24 * 3_600_000;
    store
        .fs()
        .corroborate_clock(store.fs().clock().now_ms() + year, "test")
        .unwrap();
    let (url, received) = server().await;
    let cancel = CancellationToken::new();
    let webhook = AlertWebhook {
        url,
        station: "lab-1".into(),
        store: store.clone(),
        index: None,
        options: StatusOptions {
            retry_cap_ms: 3_600_000,
            alert_undelivered_ms: 3_600_000,
        },
    };
    let running = tokio::spawn(webhook.run(cancel.clone()));
    let firing = tokio::task::spawn_blocking({
        let received = received.clone();
        move || wait_for(&received, 2)
    })
    .await
    .unwrap();
    let (key, body) = &firing[0];
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
    store.fs().confirm_clock().unwrap();
    let all = tokio::task::spawn_blocking({
        let received = received.clone();
        move || wait_for(&received, 3)
    })
    .await
    .unwrap();
    let (key, body) = &all[2];
    assert_eq!(body["state"], "resolved");
    assert_eq!(key, &format!("clockSuspect-resolved-{since}"));
    // Told once each: a check later, nothing more is sent.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(received.lock().unwrap().len(), 3);
    cancel.cancel();
    running.await.unwrap();
}
