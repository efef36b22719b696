//! `cargo xtask release [--dry-run] [--version X.Y.Z]`: ready the crates for publishing.

use std::process::Command;

use crate::{cargo, has_cargo_tool, root};

/// The crates to publish, each after every crate it depends on.
const CRATES: [&str; 10] = [
    "session-model",
    "session-fs",
    "session-migrate",
    "session-store",
    "session-capture",
    "session-recovery",
    "session-workers",
    "session-daemon",
    "session-station",
    "sessionctl",
];

fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The `[workspace.package] version`.
fn workspace_version(manifest: &str) -> Result<String, String> {
    let section = manifest
        .split("[workspace.package]")
        .nth(1)
        .ok_or("no [workspace.package] in Cargo.toml")?;
    let line = section
        .lines()
        .find(|l| l.trim_start().starts_with("version"))
        .ok_or("no version in [workspace.package]")?;
    Ok(line.split('"').nth(1).ok_or("unreadable version")?.to_owned())
}

/// Every member inherits the workspace version, and every internal dependency asks for it.
fn check_versions(version: &str) -> Result<(), String> {
    let root = root();
    let manifest = read(&root.join("Cargo.toml"))?;
    for krate in CRATES {
        let own = read(&root.join("crates").join(krate).join("Cargo.toml"))?;
        if !own.contains("version.workspace = true") {
            return Err(format!("{krate}: does not inherit the workspace version"));
        }
        // Only the libraries are depended on; the binary need not be listed.
        let Some(dep) = manifest.lines().find(|l| l.starts_with(&format!("{krate} = "))) else {
            if krate == "sessionctl" {
                continue;
            }
            return Err(format!("{krate}: missing from [workspace.dependencies]"));
        };
        if !dep.contains(&format!("version = \"{version}\"")) {
            return Err(format!(
                "{krate}: [workspace.dependencies] asks for another version than {version}: {dep}"
            ));
        }
    }
    eprintln!("ok: all {} crates at version {version}", CRATES.len());
    Ok(())
}

fn check_changelog(version: &str) -> Result<(), String> {
    let changelog = read(&root().join("CHANGELOG.md"))?;
    if changelog
        .lines()
        .any(|l| l.starts_with("## ") && l.contains(&format!("[{version}]")))
    {
        eprintln!("ok: CHANGELOG.md has an entry for {version}");
        Ok(())
    } else {
        Err(format!("CHANGELOG.md has no `## [{version}]` entry"))
    }
}

fn last_tag() -> Option<String> {
    let out = Command::new("git")
        .args(["describe", "--tags", "--abbrev=0", "--match", "v*"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// API compatibility against the last release tag, with cargo-semver-checks (installed
/// with `cargo install` when missing). Without a tag there is nothing to compare with,
/// and it says so.
fn check_semver() -> Result<(), String> {
    let Some(tag) = last_tag() else {
        eprintln!("semver: NOT CHECKED, no release tag yet (the first release sets the baseline)");
        return Ok(());
    };
    if !has_cargo_tool("semver-checks") {
        eprintln!("semver: installing cargo-semver-checks");
        cargo(&["install", "--locked", "cargo-semver-checks"], &[])?;
    }
    eprintln!("semver: checking the public API against {tag}");
    // sessionctl is a binary: its interface is the CLI, checked by its own tests.
    let mut args = vec!["semver-checks", "--workspace"];
    args.extend(excluding(&["sessionctl"]));
    args.extend(["--baseline-rev", &tag]);
    cargo(&args, &[])
}

fn bump(version: &str, next: &str) -> Result<(), String> {
    let path = root().join("Cargo.toml");
    let manifest = read(&path)?;
    let bumped = manifest.replace(
        &format!("version = \"{version}\""),
        &format!("version = \"{next}\""),
    );
    std::fs::write(&path, bumped).map_err(|e| format!("{}: {e}", path.display()))
}

fn next_patch(version: &str) -> Result<String, String> {
    let mut parts: Vec<u64> = version
        .split('.')
        .map(|p| p.parse().map_err(|_| format!("bad version {version}")))
        .collect::<Result<_, _>>()?;
    let last = parts.last_mut().ok_or("empty version")?;
    *last += 1;
    Ok(parts.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

fn git(args: &[&str]) -> Result<(), String> {
    let ok = Command::new("git")
        .args(args)
        .status()
        .map_err(|e| e.to_string())?
        .success();
    if ok {
        Ok(())
    } else {
        Err(format!("git {} failed", args.join(" ")))
    }
}

/// `cargo package --workspace` verifies each crate against its siblings through a local
/// registry, and cargo trusts what it unpacked and built from a registry by version: a
/// second run at the same version would build against the first run's sources. Forget
/// them (the verification also builds in its own, fresh target directory).
fn forget_earlier_packages(version: &str) {
    let _ = std::fs::remove_dir_all(root().join("target/package"));
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(sources) = cargo_home.map(|h| h.join("registry/src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&sources) else {
        return;
    };
    for registry in registries.flatten() {
        // Local registries have no host in their name: `-<hash>`.
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for krate in CRATES {
            let _ = std::fs::remove_dir_all(registry.path().join(format!("{krate}-{version}")));
        }
    }
}

/// Refuses while MUTANTS.md has a row not measured on its crate's current source (or
/// none): a release states its test strength, and a stale row would state a wrong one.
fn check_mutants() -> Result<(), String> {
    let stale = crate::mutants::stale_rows()?;
    if stale.is_empty() {
        eprintln!("mutants: every MUTANTS.md row matches its crate's source");
        return Ok(());
    }
    let named: Vec<String> = stale
        .iter()
        .map(|(krate, why)| format!("{krate} ({why})"))
        .collect();
    Err(format!(
        "MUTANTS.md is stale for {}: run `cargo xtask mutants` for them first",
        named.join(", ")
    ))
}

/// Writes `target/man/sessionctl.1`, rendered by `sessionctl man` (clap_mangen) from
/// the same definitions as `--help`, so the two never disagree.
fn write_man_page() -> Result<(), String> {
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--release", "-p", "sessionctl", "--", "man"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cargo run sessionctl man: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sessionctl man: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = root().join("target/man");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let page = dir.join("sessionctl.1");
    std::fs::write(&page, &out.stdout).map_err(|e| format!("{}: {e}", page.display()))?;
    eprintln!("man page: {}", page.display());
    Ok(())
}

/// Checks (and without `--dry-run`, bumps, commits and tags) a release. Never publishes.
pub(crate) fn release(args: &[String]) -> Result<(), String> {
    let dry_run = args.iter().any(|a| a == "--dry-run");
    let requested = args
        .iter()
        .position(|a| a == "--version")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let current = workspace_version(&read(&root().join("Cargo.toml"))?)?;
    check_versions(&current)?;
    let version = if dry_run {
        current.clone()
    } else {
        requested.map_or_else(|| next_patch(&current), Ok)?
    };
    check_changelog(&version)?;
    // A stale mutation report refuses a release before anything changes; a dry run says so.
    match check_mutants() {
        Err(e) if !dry_run => return Err(e),
        Err(e) => eprintln!("WARNING: a release would stop here: {e}"),
        Ok(()) => {}
    }
    if !dry_run {
        bump(&current, &version)?;
        check_versions(&version)?;
    }
    forget_earlier_packages(&version);
    let check_dir = root().join("target/package-check");
    let _ = std::fs::remove_dir_all(&check_dir);
    let check_dir = check_dir.display().to_string();
    let mut package = vec!["package", "--workspace"];
    package.extend(excluding(&[]));
    package.extend(["--allow-dirty", "--target-dir", &check_dir]);
    cargo(&package, &[])?;
    check_semver()?;
    write_man_page()?;
    if dry_run {
        eprintln!(
            "dry run: {version} is ready to publish crate by crate (nothing changed, nothing published)"
        );
        return Ok(());
    }
    git(&["commit", "-am", &format!("Release v{version}")])?;
    git(&[
        "tag",
        "-a",
        &format!("v{version}"),
        "-m",
        &format!("Release v{version}"),
    ])?;
    eprintln!(
        "tagged v{version}; publishing is left to a person: cargo publish -p <crate>, in dependency order"
    );
    Ok(())
}

/// The workspace members never published (`publish = false`), which release steps skip.
const UNPUBLISHED: &[&str] = &["xtask", "benchmarks", "test-support"];

/// `--exclude` arguments for every unpublished member and `more`.
fn excluding(more: &[&'static str]) -> Vec<&'static str> {
    UNPUBLISHED
        .iter()
        .chain(more)
        .flat_map(|name| ["--exclude", name])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpublished_is_exactly_the_members_marked_publish_false() {
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
        let members = manifest.split("members = [").nth(1).unwrap();
        let members = &members[..members.find(']').unwrap()];
        let mut marked: Vec<String> = members
            .split(',')
            .map(|m| m.trim().trim_matches('"'))
            .filter(|m| !m.is_empty())
            .filter(|m| {
                std::fs::read_to_string(root().join(m).join("Cargo.toml"))
                    .unwrap()
                    .contains("publish = false")
            })
            .map(|m| m.rsplit('/').next().unwrap().to_owned())
            .collect();
        marked.sort();
        let mut listed: Vec<String> = UNPUBLISHED.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(marked, listed);
    }

    #[test]
    fn excluding_names_every_unpublished_member_and_the_extra_ones() {
        let args = excluding(&["sessionctl"]);
        for name in UNPUBLISHED.iter().chain(&["sessionctl"]) {
            let at = args.iter().position(|a| a == name).unwrap();
            assert_eq!(args[at - 1], "--exclude");
        }
        assert_eq!(args.len(), 2 * (UNPUBLISHED.len() + 1));
    }
}
