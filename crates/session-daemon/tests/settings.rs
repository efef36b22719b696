//! The settings as the workers receive them: every value a layer sets reaches the
//! submission and cleanup configurations, in the units they take.

use std::path::Path;
use std::time::Duration;

use session_daemon::settings::{Configuration, NotToml, with_settings};

#[test]
fn every_submission_and_cleanup_setting_reaches_its_worker() {
    let configuration = Configuration::builder()
        .file(
            Path::new("/etc/sessionctl.toml"),
            Some(
                "concurrency = 4\nrequest_timeout_seconds = 17\nmax_attempts = 9\n\
                 retry_base_seconds = 3\nretry_cap_seconds = 1200\nscan_interval_minutes = 7\n\
                 performer = \"lab-7\"\ndeliver_lis_closed = false\n\
                 cleanup_interval_hours = 5\ncleanup_dry_run = true\ntrash_max_age_days = 11\n\
                 delete_undelivered = true\n",
            ),
        )
        .resolve()
        .unwrap();
    let submit = configuration.settings().submit();
    assert_eq!(submit.concurrency, 4);
    assert_eq!(submit.request_timeout, Duration::from_secs(17));
    assert_eq!(submit.max_attempts, 9);
    assert_eq!(submit.backoff.base, Duration::from_secs(3));
    assert_eq!(submit.backoff.cap, Duration::from_secs(1200));
    assert_eq!(submit.scan_interval, Duration::from_secs(7 * 60));
    assert_eq!(submit.performer.as_deref(), Some("lab-7"));
    assert!(!submit.deliver_lis_closed);
    let cleanup = configuration.settings().cleanup();
    assert_eq!(cleanup.interval, Duration::from_secs(5 * 3600));
    assert!(cleanup.dry_run);
    assert_eq!(cleanup.trash_max_age, Duration::from_secs(11 * 86_400));
    assert!(cleanup.delete_undelivered);
}

#[test]
fn a_configurations_debug_shows_its_settings_and_file_and_no_secret() {
    let configuration = Configuration::builder()
        .file(
            Path::new("/etc/sessionctl.toml"),
            Some("http_token = \"hunter2\"\nconcurrency = 3\n"),
        )
        .resolve()
        .unwrap();
    let shown = format!("{configuration:?}");
    assert!(shown.starts_with("Configuration {"), "{shown}");
    assert!(
        shown.contains("concurrency: 3") && shown.contains("/etc/sessionctl.toml"),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
}

fn refusal(pair: &str) -> String {
    Configuration::builder()
        .set(pair)
        .resolve()
        .unwrap_err()
        .to_string()
}

#[test]
fn each_refusal_says_what_its_key_allows_in_words() {
    for (pair, expected) in [
        (
            "capture_listen=nowhere",
            "expected HOST:PORT (e.g. 127.0.0.1:8470), or empty to turn it off",
        ),
        ("start_marker=0x100", "expected a byte: 0 to 255, or 0x00 to 0xff"),
        ("performer=", "expected a non-empty value"),
        ("log_dir=", "expected a non-empty value"),
        ("concurrency=11", "expected a whole number from 1 to 10"),
        ("log_level=loud", "expected error, warn, info, debug or trace"),
        ("endpoint=ftp://x", "expected an http:// or https:// URL"),
    ] {
        let err = refusal(pair);
        assert!(err.ends_with(expected), "{pair}: {err}");
    }
    // A secret header value, refused without being shown.
    let err = Configuration::builder()
        .file(
            Path::new("/etc/s.toml"),
            Some("authorization = \"Bearer x\\nInjected: 1\"\n"),
        )
        .resolve()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "config /etc/s.toml: authorization = \"[redacted]\" is not allowed; expected a valid HTTP header \
         value (printable ASCII, no line breaks or trailing spaces)"
    );
}

#[test]
fn config_describes_what_each_key_allows() {
    let configuration = Configuration::builder().resolve().unwrap();
    let allowed = |key: &str| {
        configuration
            .described()
            .into_iter()
            .find(|d| d.key == key)
            .map(|d| d.allowed)
            .unwrap()
    };
    assert_eq!(allowed("concurrency"), "1 to 10");
    assert_eq!(allowed("authorization"), "an HTTP header value (printable ASCII)");
    assert_eq!(allowed("http_token"), "an HTTP header value (printable ASCII)");
    assert_eq!(allowed("alert_webhook"), "an http:// or https:// URL");
    assert_eq!(allowed("performer"), "text");
    assert_eq!(allowed("capture_listen"), "HOST:PORT, or empty for off");
    assert_eq!(allowed("start_marker"), "0 to 255, or 0x00 to 0xff");
}

#[test]
fn the_example_file_sets_every_default_and_comments_out_the_rest() {
    let example = session_daemon::settings::example_toml();
    let lines: Vec<&str> = example.lines().collect();
    assert_eq!(lines[0], "# sessionctl.toml");
    assert_eq!(lines.len(), 1 + 31, "one line per key");
    let line = |key: &str| {
        *lines
            .iter()
            .find(|l| l.trim_start_matches("# ").starts_with(&format!("{key} ")))
            .unwrap()
    };
    assert!(
        line("concurrency").starts_with("concurrency = 2 "),
        "{}",
        line("concurrency")
    );
    assert!(line("start_marker").starts_with("start_marker = 0x05 "));
    assert!(line("log_level").starts_with("log_level = \"info\" "));
    assert!(line("authorization").starts_with("# authorization = \"...\""));
    assert!(line("endpoint").starts_with("# endpoint = \"...\""));
    assert!(line("concurrency").ends_with("# requests in flight at most (1 to 10)"));
    // And it is a file the configuration reads back as the defaults.
    let read = Configuration::builder()
        .file(Path::new("/etc/example.toml"), Some(&example))
        .resolve()
        .unwrap();
    assert_eq!(read.settings().concurrency, 2);
    assert_eq!(
        read.source("concurrency"),
        Some(session_daemon::settings::Source::File)
    );
}

#[test]
fn settings_written_into_the_files_text_keep_its_comments_and_other_keys() {
    let text = "# the lab's settings\ndir = \"/srv/s\"  # where\nretention_days = 30 # a month\n";
    let edits = [
        ("retention_days".to_owned(), "90".to_owned()),
        ("delete_undelivered".to_owned(), "true".to_owned()),
        ("endpoint".to_owned(), "https://lis.example/api".to_owned()),
        ("dir".to_owned(), "false".to_owned()),
    ];
    let edited = with_settings(text, &edits).unwrap();
    assert_eq!(
        edited,
        "# the lab's settings\ndir = false  # where\nretention_days = 90 # a month\n\
         delete_undelivered = true\nendpoint = \"https://lis.example/api\"\n"
    );
    // What it wrote reads back as the settings it was given.
    let resolved = Configuration::builder()
        .file(
            "/etc/sessionctl.toml".as_ref(),
            Some(&with_settings("", &edits[..3]).unwrap()),
        )
        .resolve()
        .unwrap();
    assert_eq!(resolved.settings().retention_days, 90);
    assert!(resolved.settings().delete_undelivered);
}

#[test]
fn a_file_that_is_not_toml_is_refused_by_line_without_its_text() {
    let text = "retention_days = 30\n\nhttp_token = \"s3cret\" oops\n";
    let refused = with_settings(text, &[]).unwrap_err();
    assert_eq!(refused, NotToml { line: 3 });
    assert!(!refused.to_string().contains("s3cret"), "{refused}");
    assert_eq!(with_settings("= 1", &[]).unwrap_err().line, 1);
}
