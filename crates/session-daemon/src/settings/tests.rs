use super::*;

fn with(pairs: &[(&str, &str)]) -> Result<Configuration, SettingsError> {
    pairs
        .iter()
        .fold(Configuration::builder(), |builder, (k, v)| {
            builder.set(&format!("{k}={v}"))
        })
        .resolve()
}

#[test]
fn the_defaults_are_the_libraries_defaults() {
    let settings = Settings::defaults();
    let submit = settings.submit();
    let library = SubmitConfig::default();
    assert_eq!(submit.concurrency, library.concurrency);
    assert_eq!(submit.max_attempts, library.max_attempts);
    assert_eq!(submit.request_timeout, library.request_timeout);
    assert_eq!(submit.scan_interval, library.scan_interval);
    assert_eq!(submit.backoff, library.backoff);
    assert_eq!(settings.cleanup(), CleanupConfig::default());
    assert_eq!(settings.decode_options(), session_store::DecodeOptions::default());
    assert_eq!(settings.markers(), session_capture::Markers::default());
    assert_eq!(settings.http_listen.as_deref(), Some("127.0.0.1:8470"));
    assert_eq!(settings.capture(), None);
}

/// The typed field of `key`, as text, read through the struct (not the layers).
fn typed(settings: &Settings, key: &str) -> String {
    let secret = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_owned());
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    match key {
        "dir" => path(&settings.dir),
        "retention_days" => Some(settings.retention_days.to_string()),
        "cleanup_interval_hours" => Some(settings.cleanup_interval_hours.to_string()),
        "cleanup_dry_run" => Some(settings.cleanup_dry_run.to_string()),
        "trash_max_age_days" => Some(settings.trash_max_age_days.to_string()),
        "delete_undelivered" => Some(settings.delete_undelivered.to_string()),
        "endpoint" => settings.endpoint.clone(),
        "ca_file" => path(&settings.ca_file),
        "authorization" => secret(&settings.authorization),
        "concurrency" => Some(settings.concurrency.to_string()),
        "max_attempts" => Some(settings.max_attempts.to_string()),
        "scan_interval_minutes" => Some(settings.scan_interval_minutes.to_string()),
        "request_timeout_seconds" => Some(settings.request_timeout_seconds.to_string()),
        "retry_base_seconds" => Some(settings.retry_base_seconds.to_string()),
        "retry_cap_seconds" => Some(settings.retry_cap_seconds.to_string()),
        "performer" => settings.performer.clone(),
        "deliver_lis_closed" => Some(settings.deliver_lis_closed.to_string()),
        "alert_undelivered_minutes" => Some(settings.alert_undelivered_minutes.to_string()),
        "alert_webhook" => secret(&settings.alert_webhook),
        "http_listen" => settings.http_listen.clone(),
        "http_token" => secret(&settings.http_token),
        "capture_listen" => settings.capture_listen.clone(),
        "capture_forward" => settings.capture_forward.clone(),
        "start_marker" => Some(settings.start_marker.to_string()),
        "ack_marker" => Some(settings.ack_marker.to_string()),
        "nak_marker" => Some(settings.nak_marker.to_string()),
        "end_marker" => Some(settings.end_marker.to_string()),
        "capture_framing" => Some(format!("{:?}", settings.capture_framing).to_lowercase()),
        "log_level" => Some(settings.log_level.clone()),
        "log_format" => Some(settings.log_format.clone()),
        "log_dir" => path(&settings.log_dir),
        other => panic!("{other} is in the table but not read here"),
    }
    .unwrap_or_default()
}

#[test]
fn every_key_of_the_table_is_a_field_and_reads_its_bounds() {
    for key in KEYS {
        let refused = |value: &str| {
            let err = with(&[(key.name, value)])
                .expect_err(&format!("{} = {value:?} is refused", key.name))
                .to_string();
            assert!(
                err.contains(&format!("--set {}: {} = ", key.name, key.name))
                    && err.contains(&key.expected()),
                "{err}"
            );
            if key.secret {
                let hidden = err.replace(&key.expected(), "");
                assert!(
                    value.is_empty() || !hidden.contains(value),
                    "a secret is never shown: {err}"
                );
            }
        };
        let accepted = |value: &str, read: &str| {
            let configuration = with(&[(key.name, value)]).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(typed(configuration.settings(), key.name), read, "{}", key.name);
            assert_eq!(configuration.source(key.name), Some(Source::Flag));
        };
        match key.kind {
            Kind::Int { min, max } => {
                accepted(&min.to_string(), &min.to_string());
                accepted(&max.to_string(), &max.to_string());
                for bad in [min - 1, max + 1, u64::MAX] {
                    refused(&bad.to_string());
                }
                refused("ten");
                refused("-1");
            }
            Kind::Bool => {
                accepted("true", "true");
                accepted("false", "false");
                refused("yes");
            }
            Kind::Level => {
                accepted("debug", "debug");
                refused("loud");
            }
            Kind::Format => {
                accepted("json", "json");
                refused("loud");
            }
            Kind::Framing => {
                accepted("mllp", "mllp");
                refused("loud");
            }
            Kind::Url => {
                accepted("http://127.0.0.1:9/x", "http://127.0.0.1:9/x");
                refused("ftp://x");
                refused("http://");
            }
            Kind::Listen => {
                accepted("127.0.0.1:0", "127.0.0.1:0");
                accepted("", "");
                refused("no-port");
                refused(":80");
                refused("host:99999");
            }
            Kind::Text | Kind::Path => {
                accepted("x y", "x y");
                refused("");
                if key.secret {
                    refused("Bearer token\r\nX-Injected: 1");
                }
            }
            Kind::Byte => {
                accepted("0x1c", "28");
                accepted("255", "255");
                for bad in ["256", "0x100", "-1", "x", ""] {
                    refused(bad);
                }
            }
        }
    }
}

#[test]
fn an_unknown_key_is_refused_naming_the_known_ones_wherever_it_comes_from() {
    let err = with(&[("concurrancy", "2")]).unwrap_err().to_string();
    assert!(
        err.starts_with("--set concurrancy: unknown key \"concurrancy\"") && err.contains("concurrency"),
        "{err}"
    );
    let err = Configuration::builder()
        .file(Path::new("/etc/x.toml"), Some("concurrancy = 2\n"))
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("config /etc/x.toml: unknown key"), "{err}");
}

#[test]
fn later_layers_win_and_say_so() {
    let configuration = Configuration::builder()
        .file(
            Path::new("/etc/x.toml"),
            Some("concurrency = 4\nmax_attempts = \"5\"\nstart_marker = 0x1c\n"),
        )
        .set("concurrency=6")
        .flag("--dir", "dir", "/srv/s")
        .resolve()
        .unwrap();
    let settings = configuration.settings();
    assert_eq!((settings.concurrency, settings.max_attempts), (6, 5));
    assert_eq!(settings.start_marker, 0x1c);
    assert_eq!(settings.dir.as_deref(), Some(Path::new("/srv/s")));
    assert_eq!(configuration.source("concurrency"), Some(Source::Flag));
    assert_eq!(configuration.source("max_attempts"), Some(Source::File));
    assert_eq!(configuration.source("retention_days"), Some(Source::Default));
    assert_eq!(configuration.source("performer"), None);
    assert_eq!(configuration.file_read(), Some(Path::new("/etc/x.toml")));
    let shown = configuration.described();
    let concurrency = shown.iter().find(|d| d.key == "concurrency").unwrap();
    assert_eq!(concurrency.value.as_deref(), Some("6"));
    assert_eq!(concurrency.env, "HL7_CONCURRENCY");
}

#[test]
fn a_file_that_is_not_toml_or_holds_a_table_is_refused_by_name() {
    let err = Configuration::builder()
        .file(Path::new("/etc/x.toml"), Some("concurrency = = 2\n"))
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("config /etc/x.toml: "), "{err}");
    let err = Configuration::builder()
        .file(Path::new("/etc/x.toml"), Some("concurrency = [1, 2]\n"))
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("concurrency = \"(a list)\" is not allowed; expected a whole number from 1 to 10"),
        "{err}"
    );
}

#[test]
fn secrets_are_never_shown_by_config_debug_or_refusals() {
    let configuration = with(&[
        ("authorization", "Bearer hunter2"),
        ("http_token", "hunter3"),
        ("alert_webhook", "https://hooks.example/t/hunter4?key=hunter5"),
    ])
    .unwrap();
    let debug = format!("{configuration:?} {:?}", configuration.described());
    for secret in ["hunter2", "hunter3", "hunter4", "hunter5"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    let err = with(&[("authorization", "Bearer hunter2\nX: 1")])
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2") && err.contains("[redacted]"), "{err}");
    let err = Configuration::builder()
        .set("authorization:Bearer hunter2")
        .resolve()
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains("--set authorization..."), "{err}");
}

#[test]
fn settings_changes_are_checked_and_yield_to_what_pins_a_key() {
    let mut configuration = Configuration::builder()
        .file(Path::new("/etc/x.toml"), Some("retention_days = 30\n"))
        .set("trash_max_age_days=9")
        .resolve()
        .unwrap();
    assert!(configuration.set_setting("retention_days", "90").unwrap());
    assert_eq!(configuration.settings().retention_days, 90);
    assert_eq!(configuration.source("retention_days"), Some(Source::File));
    assert!(matches!(
        configuration.set_setting("retention_days", "900"),
        Err(SettingError::Invalid(_))
    ));
    assert_eq!(
        configuration.settings().retention_days,
        90,
        "a refused change changes nothing"
    );
    assert!(matches!(
        configuration.set_setting("trash_max_age_days", "3"),
        Err(SettingError::Pinned {
            origin: Source::Flag,
            ..
        })
    ));
    assert!(!configuration.set_setting("trash_max_age_days", "9").unwrap());
    assert!(matches!(
        configuration.set_setting("concurrency", "3"),
        Err(SettingError::Unknown(_))
    ));
    assert_eq!(
        Configuration::setting_type("delete_undelivered").unwrap(),
        SettingType::Boolean
    );
    assert_eq!(
        Configuration::setting_type("retention_days").unwrap(),
        SettingType::Number
    );
}

#[test]
fn a_refusal_shows_the_value_as_it_was_written() {
    let refused = |toml: &str| {
        Configuration::builder()
            .file(Path::new("/etc/x.toml"), Some(toml))
            .resolve()
            .unwrap_err()
            .to_string()
    };
    assert!(refused("concurrency = -3\n").contains("concurrency = \"-3\" is not allowed"));
    assert!(refused("concurrency = 2.5\n").contains("concurrency = \"2.5\" is not allowed"));
    assert!(refused("concurrency = { a = 1 }\n").contains("concurrency = \"(a table)\" is not allowed"));
    assert!(refused("cleanup_dry_run = 1\n").contains("cleanup_dry_run = \"1\" is not allowed"));
    let err = refused("endpoint = \"ftp://user:pw@host/x?token=t\"\n");
    assert!(!err.contains("pw") && !err.contains("token=t"), "{err}");
}

#[test]
fn capture_runs_only_with_both_of_its_addresses() {
    let both = with(&[
        ("capture_listen", "0.0.0.0:5000"),
        ("capture_forward", "10.0.0.1:5000"),
    ])
    .unwrap();
    assert_eq!(both.settings().capture(), Some(("0.0.0.0:5000", "10.0.0.1:5000")));
    let one = with(&[("capture_listen", "0.0.0.0:5000")]).unwrap();
    assert_eq!(one.settings().capture(), None);
    let other = with(&[("capture_forward", "10.0.0.1:5000")]).unwrap();
    assert_eq!(other.settings().capture(), None);
    let markers = with(&[
        ("start_marker", "0x0b"),
        ("ack_marker", "7"),
        ("nak_marker", "8"),
        ("end_marker", "0x1C"),
    ])
    .unwrap()
    .settings()
    .markers();
    assert_eq!(
        (markers.start, markers.ack, markers.nak, markers.end),
        (0x0b, 7, 8, 0x1c)
    );
    let options = with(&[("retention_days", "12")])
        .unwrap()
        .settings()
        .decode_options();
    assert_eq!(
        options,
        session_store::DecodeOptions::default().retention_days(12)
    );
}

#[test]
fn every_source_is_named_as_config_shows_it() {
    assert_eq!(
        [Source::Default, Source::File, Source::Env, Source::Flag].map(Source::as_str),
        ["default", "file", "env", "flag"]
    );
    let configuration = Configuration::builder()
        .file(Path::new("/etc/x.toml"), None)
        .resolve()
        .unwrap();
    assert_eq!(configuration.file(), Some(Path::new("/etc/x.toml")));
    assert_eq!(
        configuration.file_read(),
        None,
        "a file that does not exist is not read"
    );
}

#[test]
fn the_environment_layer_reads_each_keys_variable_and_an_empty_one_only_for_listeners() {
    // The only test that reads the environment: no other one races these variables.
    let vars = [
        ("HL7_CONCURRENCY", "7"),
        ("HL7_SESSIONS_DIR", "/srv/from-env"),
        ("HL7_PERFORMER", ""),
        ("HL7_HTTP_LISTEN", ""),
    ];
    for (var, value) in vars {
        // SAFETY: no other test of this crate reads or writes these variables.
        unsafe { std::env::set_var(var, value) };
    }
    let resolved = Configuration::builder()
        .environment()
        .set("max_attempts=4")
        .resolve();
    for (var, _) in vars {
        // SAFETY: as above.
        unsafe { std::env::remove_var(var) };
    }
    let configuration = resolved.unwrap();
    let settings = configuration.settings();
    assert_eq!(settings.concurrency, 7);
    assert_eq!(settings.dir.as_deref(), Some(Path::new("/srv/from-env")));
    assert_eq!(settings.performer, None, "an empty variable is unset");
    assert_eq!(settings.http_listen, None, "an empty listener is off");
    assert_eq!(configuration.source("concurrency"), Some(Source::Env));
    assert_eq!(configuration.source("http_listen"), Some(Source::Env));
    assert_eq!(configuration.source("max_attempts"), Some(Source::Flag));
    assert_eq!(configuration.source("performer"), None);
    let concurrency = configuration
        .described()
        .into_iter()
        .find(|d| d.key == "concurrency")
        .unwrap();
    assert_eq!(concurrency.source, Some(Source::Env));
}
