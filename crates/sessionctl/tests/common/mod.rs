//! Running `sessionctl` as a real process, and what a person sees of it.

#![allow(dead_code, unused_imports)] // each test binary uses a part of this module

use std::io::BufRead;
use std::io::BufReader;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) use test_support::{FIXTURES, fixture};

/// `sessionctl` with no `HL7_*` variable from the developer's environment.
pub(crate) fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessionctl"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HL7_") {
            command.env_remove(name);
        }
    }
    // Daemons in parallel tests must not fight over the default port: tests that want
    // the local API ask for it (`--set http_listen=127.0.0.1:0`). Nor read a
    // developer's own settings file.
    command
        .env("HL7_HTTP_LISTEN", "")
        .env("XDG_CONFIG_HOME", "/nonexistent/sessionctl-tests");
    command
}

pub(crate) fn sessionctl(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    spawn_with_input(dir, args, stdin).wait_with_output().unwrap()
}

/// `sessionctl --dir DIR ARGS...` running, its input written and closed.
fn spawn_with_input(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Child {
    spawn_through(&[], dir, args, stdin)
}

/// [`sessionctl`] run through a wrapper program (`wrapper[0]` with `wrapper[1..]` before
/// sessionctl's own path, as `faketime TIME sessionctl ...`), in the same environment.
pub(crate) fn sessionctl_through(
    wrapper: &[&str],
    dir: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Output {
    spawn_through(wrapper, dir, args, stdin)
        .wait_with_output()
        .unwrap()
}

fn spawn_through(wrapper: &[&str], dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Child {
    let mut command = command();
    if let Some((program, before)) = wrapper.split_first() {
        let mut wrapped = Command::new(program);
        wrapped.args(before).arg(command.get_program());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        command = wrapped;
    }
    let mut child = command
        .arg("--dir")
        .arg(dir)
        .args(args)
        // Logs carry timestamps; the transcripts cover results and errors.
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a person sees: exit code, stdout and stderr, with the temp dir and relative times redacted.
pub(crate) fn transcript(dir: &Path, out: &Output) -> String {
    let raw = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap(),
        text(&out.stdout),
        text(&out.stderr)
    );
    raw.replace(&dir.display().to_string(), "[DIR]")
}

pub(crate) fn relative_times() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        r"\d+ (year|day|hour|minute)s? ago|in \d+ (year|day|hour|minute)s?|just now",
        "[WHEN]",
    );
    settings
}

pub(crate) fn put_fixture(dir: &Path, rel: &str) -> Output {
    sessionctl(
        dir,
        &["--json", "put"],
        Some(&std::fs::read(fixture(rel)).unwrap()),
    )
}

/// The reference receiver as a real process on 127.0.0.1.
pub(crate) struct Receiver {
    child: std::process::Child,
    pub url: String,
    pub out: std::path::PathBuf,
}

impl Receiver {
    pub(crate) fn start(root: &Path, extra: &[&str]) -> Receiver {
        use std::io::BufRead;
        let out = root.join("received");
        let mut child = command()
            .args(["receiver", "--listen", "127.0.0.1:0", "--out"])
            .arg(&out)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .expect("the receiver announces its address")
            .to_owned();
        Receiver { child, url, out }
    }

    pub(crate) fn accepted(&self) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(&self.out)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// [`sessionctl`], but a process still running after `limit` is killed and the test
/// fails: for the cases where the bug is a hang (a FIFO, a lock never released).
pub(crate) fn sessionctl_within(
    dir: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    limit: std::time::Duration,
) -> Output {
    let child = spawn_with_input(dir, args, stdin);
    let pid = child.id() as libc::pid_t;
    // The output is drained while we wait, so a chatty child never blocks on a full
    // pipe and passes for a hang.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // SAFETY: a plain kill(2) on the pid of our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("sessionctl {args:?} still running after {limit:?}");
        }
    }
}

pub(crate) use test_support::tree;

/// A running `sessionctl run`, its stderr collected line by line.
pub(crate) struct Daemon {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Daemon {
        Self::start_logging(dir, args, "info")
    }

    pub(crate) fn start_logging(dir: &Path, args: &[&str], rust_log: &str) -> Daemon {
        Self::spawn(dir, args, &["run"], rust_log)
    }

    /// `sessionctl capture --listen 127.0.0.1:0 --forward LIS`, logging in JSON.
    pub(crate) fn capture(dir: &Path, forward: &str) -> Daemon {
        Self::spawn(
            dir,
            &[],
            &["capture", "--listen", "127.0.0.1:0", "--forward", forward],
            "info",
        )
    }

    /// The address a capture relay listens on, from its start-up log line.
    pub(crate) fn relay_addr(&self) -> String {
        self.log_field("capture relay listening", "listen")
    }

    /// A field of the first log line containing `needle` (waiting for it).
    pub(crate) fn log_field(&self, needle: &str, field: &str) -> String {
        self.wait_for_log(needle);
        let log = self.log.lock().unwrap();
        let line = log.iter().find(|l| l.contains(needle)).unwrap();
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        json["fields"][field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {line}"))
            .to_owned()
    }

    /// Every log line so far.
    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL, then reaped.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn spawn(dir: &Path, args: &[&str], command_args: &[&str], rust_log: &str) -> Daemon {
        let mut child = command()
            .arg("--dir")
            .arg(dir)
            .args(args)
            .args(command_args)
            .env("RUST_LOG", rust_log)
            .env("HL7_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Daemon { child, log }
    }

    pub(crate) fn wait_for_log(&self, needle: &str) {
        self.wait_for_log_within(needle, Duration::from_secs(30));
    }

    pub(crate) fn wait_for_log_within(&self, needle: &str, limit: Duration) {
        let found = test_support::poll_until(limit, || {
            self.log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
                .then_some(())
        });
        assert!(
            found.is_some(),
            "daemon never logged {needle:?}:\n{}",
            self.log.lock().unwrap().join("\n")
        );
    }

    pub(crate) fn stop(mut self) -> (i32, Duration, Vec<String>) {
        let started = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = wait_at_most(&mut self.child, Duration::from_secs(60));
        let log = self.log.lock().unwrap().clone();
        (status.code().unwrap_or(-1), started.elapsed(), log)
    }
}

/// The exit status of `child`, killing it (and failing) if it runs past `limit`.
pub(crate) fn wait_at_most(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} still running after {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Daemon {
    // A failed assertion must not leave a daemon holding the store's locks.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange over a plain socket, headers exactly as given (a test of the
/// local API must be able to send a foreign `Host` or `Origin`).
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method != "GET" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_owned() };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}

impl Daemon {
    /// The address of the daemon's local API, once start-up is done (it answers 503
    /// "starting up" before).
    pub(crate) fn api_addr(&self) -> String {
        self.wait_for_log("sessionctl run: serving");
        self.early_api_addr()
    }

    /// The address of the daemon's local API as soon as it listens (during start-up).
    pub(crate) fn early_api_addr(&self) -> String {
        self.wait_for_log("local API and web page");
        let log = self.log.lock().unwrap();
        let line = log.iter().find(|l| l.contains("local API and web page")).unwrap();
        let url = line.split("http://").nth(1).unwrap();
        url.split(['/', '"']).next().unwrap().to_owned()
    }
}
