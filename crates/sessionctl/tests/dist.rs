//! What `cargo xtask dist` packages: a hardened systemd unit that `systemd-analyze`
//! accepts, a configuration the binary accepts, and package metadata that ships them.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn unit() -> String {
    std::fs::read_to_string(repo().join("dist/debian/hl7-session-store.service")).unwrap()
}

#[test]
fn the_unit_is_hardened_and_writes_only_the_store() {
    let unit = unit();
    for line in [
        "User=hl7-session-store",
        "ExecStart=/usr/bin/sessionctl --config /etc/hl7-session-store/sessionctl.toml run",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ReadWritePaths=/var/lib/hl7-session-store",
        "StateDirectoryMode=0700",
        "CapabilityBoundingSet=",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing from the unit");
    }
    let writable: Vec<&str> = unit
        .lines()
        .filter(|l| l.starts_with("ReadWritePaths="))
        .collect();
    assert_eq!(
        writable,
        ["ReadWritePaths=/var/lib/hl7-session-store"],
        "the store only"
    );
    // The packaged configuration keeps the store where the unit lets it write.
    let config = std::fs::read_to_string(repo().join("dist/debian/sessionctl.toml")).unwrap();
    assert!(config.contains("dir = \"/var/lib/hl7-session-store/sessions\""));
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let Ok(version) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI has systemd-analyze (Debian's systemd)"
        );
        eprintln!("skipped: no systemd-analyze here");
        return;
    };
    assert!(version.status.success());
    // The unit as installed, but run by this build's binary (verify checks that the
    // command exists and is executable).
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hl7-session-store.service");
    std::fs::write(
        &path,
        unit().replace("/usr/bin/sessionctl", env!("CARGO_BIN_EXE_sessionctl")),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said = text(&out.stderr);
    assert!(out.status.success(), "{said}");
    // verify exits 0 on a line it ignores; any word about the unit is a fault here.
    assert!(!said.contains("hl7-session-store.service"), "{said}");
    // A misspelt directive is what this catches.
    std::fs::write(
        &path,
        unit()
            .replace("ProtectSystem=strict", "ProtectSystem=stricter")
            .replace("/usr/bin/sessionctl", env!("CARGO_BIN_EXE_sessionctl")),
    )
    .unwrap();
    let bad = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        text(&bad.stderr).contains("hl7-session-store.service"),
        "the check can fail"
    );
}

#[test]
fn the_packaged_configuration_is_one_the_binary_accepts() {
    let config = repo().join("dist/debian/sessionctl.toml");
    let out = command()
        .args(["--config", config.to_str().unwrap(), "--json", "config"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dir = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "dir")
        .unwrap();
    assert_eq!(
        (&dir["value"], &dir["source"]),
        (
            &serde_json::json!("/var/lib/hl7-session-store/sessions"),
            &serde_json::json!("file")
        )
    );
}

#[test]
fn the_package_ships_the_unit_the_configuration_and_the_docs() {
    let manifest: toml::Value = toml::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap(),
    )
    .unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let targets: Vec<String> = deb["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a[1].as_str().unwrap().to_owned())
        .collect();
    for want in [
        "usr/bin/",
        "usr/share/man/man1/sessionctl.1",
        "usr/share/bash-completion/completions/sessionctl",
        "etc/hl7-session-store/sessionctl.toml",
    ] {
        assert!(targets.iter().any(|t| t == want), "{want} in {targets:?}");
    }
    assert_eq!(
        deb["systemd-units"]["unit-name"].as_str(),
        Some("hl7-session-store")
    );
    assert_eq!(
        deb["conf-files"][0].as_str(),
        Some("/etc/hl7-session-store/sessionctl.toml")
    );
    // Every source the package takes from the repository is in it.
    for asset in deb["assets"].as_array().unwrap() {
        let source = asset[0].as_str().unwrap();
        if source.starts_with("../../dist/") || source.starts_with("../../README") {
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(source).exists(),
                "{source}"
            );
        }
    }
    let postinst = std::fs::read_to_string(repo().join("dist/debian/maintainer-scripts/postinst")).unwrap();
    assert!(postinst.contains("adduser --system") && postinst.contains("#DEBHELPER#"));
}
