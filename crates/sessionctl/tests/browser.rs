//! The lab's page in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven over WebDriver against a daemon on 127.0.0.1 that delivers
//! to the reference receiver. Screenshots go to `target/browser-artifacts/`.
//!
//! Without chromedriver the tests say so and pass, except in CI (`CI` set), where
//! `.ci/run` installs it and its absence is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver(std::process::Child);
impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn available() -> bool {
    let there = Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists();
    if !there {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromium and chromium-driver (.ci/run installs them)"
        );
        eprintln!("skipped: {CHROMEDRIVER} or {CHROMIUM} is missing (apt install chromium chromium-driver)");
    }
    there
}

async fn browser() -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = tempfile::tempdir().unwrap().keep();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800", "--disable-background-networking", "--disable-quic",
                     "--no-first-run", "--disable-component-update", "--disable-sync",
                     format!("--user-data-dir={}", profile.display())],
        }),
    );
    let client = ClientBuilder::rustls()
        .unwrap()
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("chromedriver session");
    (driver, client)
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}

/// Clicks the element with this id, looking it up again if the page re-rendered it
/// between the lookup and the click (the list updates live); fails after 30 s.
async fn click(client: &Client, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let clicked = match client.find(Locator::Id(id)).await {
            Ok(element) => element.click().await,
            Err(e) => Err(e),
        };
        match clicked {
            Ok(_) => return,
            Err(e) if Instant::now() > deadline => panic!("could not click #{id}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits (bounded) until `check` accepts the text of the first element `css` finds. An
/// element not there yet, or re-rendered between the lookup and the read (stale), is
/// looked up again: the page updates live, so no read may assume it holds still.
async fn until_in(client: &Client, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = match client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.ok(),
            Err(_) => None,
        };
        if let Some(text) = text.as_deref().filter(|t| check(t)) {
            return text.to_owned();
        }
        if Instant::now() > deadline {
            screenshot(client, &format!("timeout-{}", what.replace(' ', "-"))).await;
            panic!("page never showed {what} in {css}:\n{}", text.unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until `check` sees what it wants in the page's text.
async fn until(client: &Client, what: &str, check: impl Fn(&str) -> bool) -> String {
    until_in(client, "body", what, check).await
}

fn store_for_the_page(dir: &Path) {
    for rel in [
        "legacy/session-11.json",
        "v1/session-21.json",
        "v1/session-22.json",
        "v1/session-23.json",
    ] {
        assert!(put_fixture(dir, rel).status.success());
    }
    // A session whose HL7 carries markup: the page must show it as characters.
    let mut hostile: Value =
        serde_json::from_slice(&std::fs::read(fixture("v1/session-21.json")).unwrap()).unwrap();
    hostile["id"] = json!("hostile-1");
    hostile["submissionStatus"] = json!("ignored");
    let evil = "PID|1||<img src=x onerror=\"window.__pwned=1\">^^^^MR||DOE^JANE\r\n";
    let hex: String = evil.bytes().map(|b| format!("{b:02x}")).collect();
    for element in hostile["elements"].as_array_mut().unwrap() {
        if element["type"] == "message" {
            element["hexData"] = json!(hex);
            element["rawBytes"] = json!({"type": "Buffer", "data": evil.as_bytes()});
            element["content"] = json!(evil);
            element["decodedMessage"] = json!(evil);
        }
    }
    hostile["messages"] = json!([evil]);
    let out = sessionctl(dir, &["put"], Some(&serde_json::to_vec(&hostile).unwrap()));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lab_uses_the_page() {
    if !available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    store_for_the_page(&dir);
    let config = tmp.path().join("sessionctl.toml");
    std::fs::write(&config, "# lab settings\nretention_days = 30\n").unwrap();
    let recv = Receiver::start(tmp.path(), &[]);
    let endpoint = format!("endpoint={}/sessions", recv.url);
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--set",
        "http_listen=127.0.0.1:0",
        "--set",
        &endpoint,
        // Cleanup runs at start-up; a dry run keeps the expired fixtures on the page.
        "--set",
        "cleanup_dry_run=true",
    ];
    let daemon = Daemon::start(&dir, &args);
    let addr = daemon.api_addr();
    let (_driver, client) = browser().await;

    // The list shows the sessions with their statuses.
    client.goto(&format!("http://{addr}/")).await.unwrap();
    let text = until(&client, "the list", |t| {
        t.contains("session-23") && t.contains("hostile-1")
    })
    .await;
    assert!(text.contains("failed"), "{text}");
    screenshot(&client, "list").await;
    let rows = client.find_all(Locator::Css("#sessions tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 5);
    until_in(&client, "tr[data-id='session-23']", "the failed row", |t| {
        t.contains("failed")
    })
    .await;

    // Filtering by status.
    client
        .find(Locator::Id("status-filter"))
        .await
        .unwrap()
        .select_by_value("failed")
        .await
        .unwrap();
    until(&client, "the filtered list", |t| {
        t.contains("session-23") && !t.contains("session-11")
    })
    .await;
    assert_eq!(
        client
            .find_all(Locator::Css("#sessions tbody tr"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("/?status=failed")
    );
    screenshot(&client, "filtered").await;

    // Opening a session shows its HL7 segments; markup from the session stays text.
    client
        .goto(&format!("http://{addr}/sessions/hostile-1"))
        .await
        .unwrap();
    let text = until(&client, "the hostile session", |t| t.contains("PID-3")).await;
    assert!(
        text.contains("<img src=x onerror=\"window.__pwned=1\">"),
        "{text}"
    );
    assert!(
        client
            .find_all(Locator::Css("#timeline img"))
            .await
            .unwrap()
            .is_empty()
    );
    let pwned = client
        .execute("return window.__pwned === undefined", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, json!(true));
    client
        .goto(&format!("http://{addr}/sessions/session-21"))
        .await
        .unwrap();
    let text = until(&client, "the segments", |t| {
        t.contains("MSH-9") && t.contains("OBX")
    })
    .await;
    assert!(text.contains("analyzer → LIS"), "{text}");
    screenshot(&client, "detail").await;

    // Retry on a failed session: delivered, and the page updates live.
    client
        .goto(&format!("http://{addr}/sessions/session-23"))
        .await
        .unwrap();
    until(&client, "the failed session", |t| {
        t.contains("Session session-23")
    })
    .await;
    click(&client, "retry").await;
    until(&client, "the delivery", |t| {
        t.contains("Idempotency key") && t.contains("Delivered") && !t.contains("Delivered\n–")
    })
    .await;
    until_in(&client, "#detail-title .badge", "the submitted badge", |t| {
        t == "submitted"
    })
    .await;
    assert!(!recv.accepted().is_empty());
    screenshot(&client, "delivered").await;

    // A narrow window still works.
    client.set_window_size(420, 800).await.unwrap();
    client.goto(&format!("http://{addr}/")).await.unwrap();
    until(&client, "the narrow list", |t| t.contains("session-23")).await;
    screenshot(&client, "narrow").await;
    client.set_window_size(1280, 800).await.unwrap();

    // A settings change persists across a restart.
    client.goto(&format!("http://{addr}/")).await.unwrap();
    click(&client, "nav-settings").await;
    let input = client
        .wait()
        .for_element(Locator::Id("setting-retention_days"))
        .await
        .unwrap();
    input.clear().await.unwrap();
    input.send_keys("60").await.unwrap();
    click(&client, "save-settings").await;
    until(&client, "the saved settings", |t| t.contains("Settings saved.")).await;
    screenshot(&client, "settings").await;
    let (code, _, _) = daemon.stop();
    assert_eq!(code, 0);
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("retention_days = 60")
    );
    let daemon = Daemon::start(&dir, &args);
    let addr = daemon.api_addr();
    client.goto(&format!("http://{addr}/")).await.unwrap();
    click(&client, "nav-settings").await;
    let input = client
        .wait()
        .for_element(Locator::Id("setting-retention_days"))
        .await
        .unwrap();
    assert_eq!(input.prop("value").await.unwrap().as_deref(), Some("60"));
    client.close().await.unwrap();
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_is_keyboard_navigable() {
    if !available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    store_for_the_page(&dir);
    let daemon = Daemon::start(
        &dir,
        &[
            "--set",
            "http_listen=127.0.0.1:0",
            "--set",
            "cleanup_dry_run=true",
        ],
    );
    let addr = daemon.api_addr();
    let (_driver, client) = browser().await;
    client.goto(&format!("http://{addr}/")).await.unwrap();
    until(&client, "the list", |t| t.contains("session-23")).await;
    // Tab reaches a session link, Enter opens it.
    let mut reached = None;
    for _ in 0..40 {
        client
            .active_element()
            .await
            .unwrap()
            .send_keys("\u{e004}")
            .await
            .unwrap();
        let active = client.active_element().await.unwrap();
        if active.attr("class").await.unwrap().as_deref() == Some("session-link") {
            reached = active.text().await.ok();
            active.send_keys("\u{e007}").await.unwrap();
            break;
        }
    }
    let id = reached.expect("Tab reaches a session link");
    until(&client, "the detail by keyboard", |t| {
        t.contains(&format!("Session {id}"))
    })
    .await;
    client.close().await.unwrap();
}
