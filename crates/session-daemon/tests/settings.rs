//! The settings as the workers receive them: every value a layer sets reaches the
//! submission and cleanup configurations, in the units they take.

use std::path::Path;
use std::time::Duration;

use session_daemon::settings::Configuration;

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
