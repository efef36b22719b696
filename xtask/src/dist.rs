//! `cargo xtask dist`: the Debian package a lab installs (cargo-deb): the binary, its
//! man page and shell completions, the hardened systemd unit
//! (`dist/debian/hl7-session-store.service`), `/etc/hl7-session-store/sessionctl.toml`
//! and the maintainer scripts that create the service's user. Written to
//! `target/debian/`.

use std::process::Command;

use crate::{cargo, has_cargo_tool, root};

/// Builds the package; installs cargo-deb first when it is missing.
pub(crate) fn dist(_args: &[String]) -> Result<(), String> {
    let root = root();
    cargo(&["build", "--release", "--locked", "-p", "sessionctl"], &[])?;
    let binary = root.join("target/release/sessionctl");
    let out = root.join("target/dist");
    let completions = out.join("completions");
    std::fs::create_dir_all(&completions).map_err(|e| format!("{}: {e}", completions.display()))?;
    let run = |args: &[&str]| -> Result<Vec<u8>, String> {
        let output = Command::new(&binary)
            .args(args)
            .output()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        if !output.status.success() {
            return Err(format!("sessionctl {} failed", args.join(" ")));
        }
        Ok(output.stdout)
    };
    let write = |name: &std::path::Path, bytes: &[u8]| {
        std::fs::write(name, bytes).map_err(|e| format!("{}: {e}", name.display()))
    };
    write(&out.join("sessionctl.1"), &run(&["man"])?)?;
    for (shell, file) in [
        ("bash", "sessionctl.bash"),
        ("zsh", "_sessionctl"),
        ("fish", "sessionctl.fish"),
    ] {
        write(&completions.join(file), &run(&["completions", shell])?)?;
    }
    if !has_cargo_tool("deb") {
        cargo(&["install", "--locked", "cargo-deb"], &[])?;
    }
    cargo(&["deb", "-p", "sessionctl", "--no-build"], &[])?;
    eprintln!(
        "ok: the package is in target/debian/ (install: sudo apt install ./target/debian/hl7-session-store_*.deb)"
    );
    Ok(())
}
