//! The API served on 127.0.0.1 over a store in a temp dir, and a client for it.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use session_api::security::Guard;
use session_api::{ApiState, SettingsFile};
use session_daemon::settings::Configuration;
use session_store::{DecodeOptions, Direction, Element, ElementKind, Session, SessionId, SessionStore};
use tokio_util::sync::CancellationToken;

/// A message with a patient, a sample and one result.
pub const ORU: &[u8] = b"MSH|^~\\&|LAB|ANALYZER|LIS|HOSP|20261204120000||ORU^R01|CTRL-1|P|2.5\rPID|1||PAT-77||Doe^Jane\rOBR|1||SAMPLE-9\rOBX|1|NM|GLU^Glucose||5.4|mmol/L|3.9-6.1|N|||F\r";

/// Starts of the sessions `Api::with_sessions` stores: one a minute.
pub const START: u64 = 1_780_000_000_000;

/// A session as the capture tool stores one: a message, complete.
pub fn session(id: &str, start: u64, device: &str) -> Session {
    Session::new(SessionId::new(id).unwrap(), start, 30)
        .with_addresses(device, "10.0.0.9")
        .with_elements(vec![Element::new(
            start + 1,
            Direction::DeviceToPc,
            ElementKind::Message,
            ORU.to_vec(),
        )])
        .completed_at(start + 2)
}

/// One write a [`SettingsFile`] was asked for: the file and its edits.
pub type Write = (PathBuf, Vec<(String, String)>);

/// What a [`SettingsFile`] was asked to write.
#[derive(Default)]
pub struct RecordingFile {
    pub writes: Mutex<Vec<Write>>,
    pub fail: bool,
}

impl SettingsFile for RecordingFile {
    fn write(&self, path: &Path, edits: &[(String, String)]) -> Result<(), String> {
        if self.fail {
            return Err(format!("{}: disk full", path.display()));
        }
        self.writes
            .lock()
            .unwrap()
            .push((path.to_owned(), edits.to_vec()));
        Ok(())
    }
}

/// An answer: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// The API served on 127.0.0.1.
pub struct Api {
    pub addr: SocketAddr,
    pub store: SessionStore,
    pub dir: tempfile::TempDir,
    pub stop: CancellationToken,
    client: reqwest::Client,
    token: Option<String>,
}

/// How a test wants the API.
#[derive(Default)]
pub struct Setup {
    pub token: Option<String>,
    pub config_file: Option<(PathBuf, String)>,
    pub settings_file: Option<Arc<dyn SettingsFile>>,
    pub indexed: bool,
    pub events: Option<tokio::sync::broadcast::Sender<session_api::StoreEvent>>,
    pub cleanup: Option<tokio::sync::watch::Sender<session_workers::cleanup::CleanupConfig>>,
    pub counters: Option<Arc<session_daemon::metrics::StationCounters>>,
}

impl Api {
    /// An empty store, served as `setup` says.
    pub async fn serve(setup: Setup) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let store = SessionStore::open(dir.path().join("s"), DecodeOptions::default()).unwrap();
        let mut builder = Configuration::builder();
        if let Some((path, text)) = &setup.config_file {
            builder = builder.file(path, Some(text));
        }
        let config = builder.resolve().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let guard = Guard::new("127.0.0.1:0", addr, setup.token.clone());
        let stop = CancellationToken::new();
        let mut state = ApiState::new(store.clone(), config, guard).stopping_on(stop.clone());
        if let Some(file) = setup.settings_file {
            state = state.with_settings_file(file);
        }
        if let Some(events) = setup.events {
            state = state.with_events(events);
        }
        if let Some(cleanup) = setup.cleanup {
            state = state.with_cleanup(cleanup);
        }
        if let Some(counters) = setup.counters {
            state = state.with_counters(counters);
        }
        if setup.indexed {
            let index = Arc::new(session_station::SessionIndex::new());
            index.rebuild(&store).unwrap();
            state = state.with_index(index);
        }
        let router = session_api::router(Arc::new(state));
        let stopped = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await
                .unwrap();
        });
        Api {
            addr,
            store,
            dir,
            stop,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            token: setup.token,
        }
    }

    /// Stores `n` sessions `s-1`..`s-n`, a minute apart, alternating two analyzers.
    pub fn with_sessions(&self, n: u64) {
        for i in 1..=n {
            let device = if i % 2 == 0 { "10.0.0.2" } else { "10.0.0.1" };
            let mut s = session(&format!("s-{i}"), START + i * 60_000, device);
            self.store.save(&mut s).unwrap();
        }
    }

    /// A request with the token (when there is one) and this listener's Host.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        self.call_with(method, path, body, &[]).await
    }

    /// [`Api::call`] with more (or other) headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("http://{}{path}", self.addr));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &str) -> Answer {
        self.call("POST", path, Some(body)).await
    }
}
