//! `cargo xtask mutants [CRATE...]`: mutation testing with cargo-mutants (installed with
//! `cargo install` when missing), each library crate judged by its own tests only, and
//! MUTANTS.md written with caught, missed (and how many of them are equivalent), timed
//! out and unviable per crate. `--report-only` rewrites MUTANTS.md from the last run's
//! outcomes in `target/mutants/` without running anything.
//!
//! Too slow for CI: run it before a release and after changing a crate's core.

use std::path::Path;
use std::process::Command;

use crate::{cargo, has_cargo_tool, root};

/// The crates measured, lowest layer first.
const CRATES: [&str; 7] = [
    "session-model",
    "session-fs",
    "session-migrate",
    "session-store",
    "session-capture",
    "session-recovery",
    "session-workers",
];

/// Missed mutants that cannot be caught, because they change nothing observable, each
/// with the reason: (what the mutant's name contains, all of it, why it is equivalent).
/// The linger, `create_dir`, `create_new`, `count` and `recover_visiting` claims were
/// dropped after review (issue 26): those mutants change what is written, an error's
/// kind, a descriptor flag or a log, so they count as missed until a test catches them.
const EQUIVALENT: &[(&[&str], &str)] = &[
    (
        &["bytes.rs:66:48: replace | with ^ in hex_bytes"],
        "the high nibble is shifted left by 4 and the low one is under 16: the bits never overlap, so `|` and `^` agree",
    ),
    (
        &["exact.rs:58:22: replace match guard value.is_finite() with true in round_trips"],
        "serde_json writes a non-finite f64 as `null`, which never equals the number's text, so the guard's verdict \
         is reached either way",
    ),
    (
        &["exact.rs:35:31: replace - with"],
        "it only changes which plain integers take the fast path; the full round-trip check gives the same verdict \
         on every plain integer of at most 19 digits",
    ),
    (
        &["exact.rs:28:42: replace != with == in first_inexact_number"],
        "it only decides whether a number takes the fast path (a plain integer of at most 19 digits) or the full \
         round-trip check; both give the same verdict on every number",
    ),
    (
        &["locks.rs:85:30: replace > with >= in LockTable::lock_for_save"],
        "a waiting ticket is never the applied one (a ticket is applied only by its own holder, after it stopped \
         waiting), so `>` and `>=` agree",
    ),
    (
        &["store.rs", "replace && with || in Store::area_dir"],
        "`area_dir` only ever receives an `Area`'s own directory (`.backup/<run>` with a run `BackupRun` parsed), \
         where both sides hold together",
    ),
    (
        &["Store::options -> OpenOptions with Default::default()"],
        "`Store::options()` is `OpenOptions::default()`",
    ),
    (
        &[
            "replace match guard e.kind() == io::ErrorKind::NotFound with true in <impl Storage for",
            ">::lock",
        ],
        "the retry creates the same name with the same no-follow, non-blocking flags: any error but NotFound \
         recurs",
    ),
];

/// Why a missed mutant is equivalent, when it is one.
fn equivalent(name: &str) -> Option<&'static str> {
    EQUIVALENT
        .iter()
        .find(|(parts, _)| parts.iter().all(|part| name.contains(part)))
        .map(|(_, why)| *why)
}

/// The counts of one crate's run, from cargo-mutants' `outcomes.json`.
#[derive(Debug, Default)]
struct Counts {
    caught: usize,
    missed: usize,
    timeout: usize,
    unviable: usize,
    missed_names: Vec<String>,
    /// The day the run started (`YYYY-MM-DD`), from cargo-mutants' own record.
    run_on: String,
}

impl Counts {
    /// How many of the missed mutants are listed as equivalent.
    fn equivalent(&self) -> usize {
        self.missed_names
            .iter()
            .filter(|name| equivalent(name).is_some())
            .count()
    }

    fn row(&self, krate: &str, source: &str) -> String {
        let viable = self.caught + self.missed + self.timeout;
        let share = |n: usize| {
            if viable == 0 {
                0.0
            } else {
                100.0 * n as f64 / viable as f64
            }
        };
        let equivalent = self.equivalent();
        format!(
            "| {krate} | {} | {} | {} | {equivalent} | {} | {} | {:.1} % | {:.1} % | {source} |",
            self.run_on,
            self.caught,
            self.missed,
            self.timeout,
            self.unviable,
            share(self.missed),
            share(self.missed - equivalent)
        )
    }
}

/// The hash of what a crate's mutants are made from: every file under its `src/` and
/// its `Cargo.toml`, by relative path, in order (SHA-256, the first 12 hex digits).
pub(crate) fn source_hash(krate: &str) -> Result<String, String> {
    use sha2::Digest;
    let dir = root().join("crates").join(krate);
    let mut files = vec![dir.join("Cargo.toml")];
    let mut stack = vec![dir.join("src")];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).map_err(|e| format!("{}: {e}", at.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = sha2::Sha256::new();
    for file in files {
        let rel = file
            .strip_prefix(&dir)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        hasher.update((rel.len() as u64).to_le_bytes());
        hasher.update(rel.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let digest = hasher.finalize();
    Ok(digest.iter().take(6).map(|b| format!("{b:02x}")).collect())
}

/// The source hash a row of MUTANTS.md records (its last column), if any.
fn row_source(row: &str) -> Option<&str> {
    let cells: Vec<&str> = row.trim().trim_matches('|').split('|').map(str::trim).collect();
    // The crate, the run, seven counts and shares, then the source.
    cells
        .get(9)
        .copied()
        .filter(|c| c.len() == 12 && c.chars().all(|ch| ch.is_ascii_hexdigit()))
}

/// The crates whose MUTANTS.md row was not measured on their current source (or was
/// never measured), each with why: `cargo xtask ci` warns of them and `cargo xtask
/// release` refuses while there are any.
pub(crate) fn stale_rows() -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(root().join("MUTANTS.md")).unwrap_or_default();
    let mut stale = Vec::new();
    for krate in CRATES {
        let now = source_hash(krate)?;
        let why = match previous_row(&text, krate).as_deref().map(row_source) {
            None => "no row: never run".to_owned(),
            Some(None) => "its row records no source hash (a run before rows had one)".to_owned(),
            Some(Some(then)) if then != now => format!("run on source {then}, the source is now {now}"),
            Some(Some(_)) => continue,
        };
        stale.push((krate.to_owned(), why));
    }
    Ok(stale)
}

/// The table row of `krate` in a MUTANTS.md text.
fn previous_row(text: &str, krate: &str) -> Option<String> {
    let start = format!("| {krate} |");
    text.lines()
        .find(|line| line.starts_with(&start))
        .map(str::to_owned)
}

/// The `## Missed in KRATE` section of a MUTANTS.md text, up to the next section.
fn previous_section(text: &str, krate: &str) -> Option<String> {
    let heading = format!("## Missed in {krate}");
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let rest = line.strip_prefix(heading.as_str());
        if rest.is_some_and(|r| r.starts_with([' ', '\n'])) {
            let body = &text[offset + line.len()..];
            let end = body.find("\n## ").map_or(body.len(), |i| i + 1);
            return Some(format!("{line}{}", &body[..end]));
        }
        offset += line.len();
    }
    None
}

fn count(outcomes: &Path) -> Result<Counts, String> {
    let text = std::fs::read_to_string(outcomes).map_err(|e| format!("{}: {e}", outcomes.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", outcomes.display()))?;
    let mut counts = Counts {
        run_on: value["start_time"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(10)
            .collect(),
        ..Counts::default()
    };
    for outcome in value["outcomes"].as_array().into_iter().flatten() {
        let summary = outcome["summary"].as_str().unwrap_or("");
        match summary {
            "CaughtMutant" => counts.caught += 1,
            "MissedMutant" => {
                counts.missed += 1;
                let name = outcome["scenario"]["Mutant"]["name"]
                    .as_str()
                    .or_else(|| outcome["scenario"]["Mutant"]["description"].as_str())
                    .unwrap_or("?");
                counts.missed_names.push(name.to_owned());
            }
            "Timeout" => counts.timeout += 1,
            "Unviable" => counts.unviable += 1,
            _ => {}
        }
    }
    Ok(counts)
}

/// Runs cargo-mutants on `krate`, judged by its own tests, into `out_dir`.
fn run_cargo_mutants(krate: &str, out_dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(out_dir);
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    eprintln!("==> cargo mutants -p {krate}");
    // Exit status 2 means "some mutants were missed": that is the report, not a failure.
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["mutants", "--package", krate, "--test-package", krate, "--output"])
        .arg(out_dir)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cargo mutants: {e}"))?;
    if !matches!(status.code(), Some(0 | 2 | 3)) {
        return Err(format!("cargo mutants -p {krate} failed ({status})"));
    }
    Ok(())
}

/// Runs cargo-mutants over `crates` (all library crates when empty) and writes MUTANTS.md.
pub(crate) fn mutants(args: &[String]) -> Result<(), String> {
    if !has_cargo_tool("mutants") {
        eprintln!("mutants: installing cargo-mutants");
        cargo(&["install", "--locked", "cargo-mutants"], &[])?;
    }
    // `--report-only`: rewrite MUTANTS.md from the last run's outcomes, running nothing.
    let report_only = args.iter().any(|a| a == "--report-only");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--report-only").collect();
    if let Some(unknown) = args.iter().find(|a| !CRATES.contains(&a.as_str())) {
        return Err(format!(
            "mutants: no library crate named {unknown:?} (one of {})",
            CRATES.join(", ")
        ));
    }
    let chosen: Vec<&str> = if args.is_empty() {
        CRATES.to_vec()
    } else {
        CRATES
            .iter()
            .copied()
            .filter(|c| args.iter().any(|a| a == c))
            .collect()
    };
    let path = root().join("MUTANTS.md");
    // A run of some crates replaces their rows and lists and keeps the others' last run,
    // hand-written notes included: one crate's run is not a reason to forget another's.
    let previous = std::fs::read_to_string(&path).unwrap_or_default();
    let mut rows = Vec::new();
    let mut missed_lists = Vec::new();
    for krate in CRATES {
        if !chosen.contains(&krate) {
            // Kept as it was; a row from before rows had a source hash gets an empty
            // cell, which reads as stale.
            let row = previous_row(&previous, krate)
                .unwrap_or_else(|| format!("| {krate} | not run yet | | | | | | | |"));
            let cells = row.matches('|').count();
            rows.push(if cells < 11 { format!("{row} |") } else { row });
            missed_lists.extend(previous_section(&previous, krate));
            continue;
        }
        let out_dir = root().join("target/mutants").join(krate);
        if !report_only {
            run_cargo_mutants(krate, &out_dir)?;
        }
        let counts = count(&out_dir.join("mutants.out/outcomes.json"))?;
        rows.push(counts.row(krate, &source_hash(krate)?));
        if !counts.missed_names.is_empty() {
            let mut list = format!("## Missed in {krate}\n\n");
            for name in &counts.missed_names {
                match equivalent(name) {
                    Some(why) => list.push_str(&format!("- `{name}`: equivalent, {why}\n")),
                    None => list.push_str(&format!("- `{name}`\n")),
                }
            }
            missed_lists.push(list);
        }
    }
    let mut report = String::from(
        "# Mutation testing\n\nWritten by `cargo xtask mutants` (cargo-mutants), each crate's mutants judged by that \
         crate's own tests only. Targets: at most 5% missed of viable mutants in session-model, session-fs, \
         session-migrate and session-capture; at most 10% in session-recovery and session-workers.\n\n\
         | crate | run | caught | missed | of them equivalent | timed out | unviable | missed % of viable | not equivalent % | source |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        report.push_str(&row);
        report.push('\n');
    }
    report.push_str(
        "\nEach crate is run on its own (`cargo xtask mutants CRATE`); the table keeps the last run of each. \
         `source` is the hash of the crate's `src/` and `Cargo.toml` the run measured: `cargo xtask ci` warns of \
         every row whose crate changed since (or that has none), and `cargo xtask release` refuses to tag then.\n",
    );
    for list in missed_lists {
        report.push('\n');
        report.push_str(list.trim_end());
        report.push('\n');
    }
    std::fs::write(&path, report).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EARLIER: &str = "# Mutation testing\n\n| crate | run |\n|---|---|\n\
        | session-fs | 2026-11-01 | 1 | 2 | 0 | 0 | 66.7 % |\n| session-fs-extra | x |\n\n\
        ## Missed in session-fs (hand note)\n\n- `a`\n- `b`: equivalent, why\n\n\
        ## Missed in session-workers\n\n- `c`\n";

    #[test]
    fn a_previous_row_is_found_by_its_exact_crate_name() {
        assert_eq!(
            previous_row(EARLIER, "session-fs").as_deref(),
            Some("| session-fs | 2026-11-01 | 1 | 2 | 0 | 0 | 66.7 % |")
        );
        assert_eq!(previous_row(EARLIER, "session-model"), None);
    }

    #[test]
    fn a_previous_section_runs_to_the_next_heading_and_keeps_hand_notes() {
        assert_eq!(
            previous_section(EARLIER, "session-fs").as_deref(),
            Some("## Missed in session-fs (hand note)\n\n- `a`\n- `b`: equivalent, why\n\n")
        );
        assert_eq!(
            previous_section(EARLIER, "session-workers").as_deref(),
            Some("## Missed in session-workers\n\n- `c`\n")
        );
        assert_eq!(previous_section(EARLIER, "session-f"), None);
    }

    #[test]
    fn a_row_records_its_source_and_a_row_without_one_reads_as_none() {
        let counts = Counts {
            caught: 9,
            missed: 1,
            run_on: "2026-12-05".into(),
            ..Counts::default()
        };
        let row = counts.row("session-fs", "0123456789ab");
        assert_eq!(row_source(&row), Some("0123456789ab"));
        assert_eq!(
            row_source("| session-fs | 2026-11-28 | 367 | 13 | 13 | 24 | 80 | 3.2 % | 0.0 % |"),
            None
        );
        assert_eq!(
            row_source("| session-fs | 2026-11-28 | 367 | 13 | 13 | 24 | 80 | 3.2 % | 0.0 % | |"),
            None
        );
    }

    #[test]
    fn the_source_hash_follows_the_source() {
        let a = source_hash("session-model").unwrap();
        assert_eq!(a, source_hash("session-model").unwrap(), "deterministic");
        assert_eq!(a.len(), 12);
        assert_ne!(a, source_hash("session-fs").unwrap());
    }

    #[test]
    fn a_row_gives_missed_as_a_share_of_viable_mutants_with_and_without_equivalents() {
        let counts = Counts {
            caught: 17,
            missed: 2,
            timeout: 1,
            unviable: 7,
            run_on: "2026-11-28".into(),
            missed_names: vec![
                "crates/session-fs/src/store.rs:1:1: replace Store::options -> OpenOptions with Default::default()".into(),
                "crates/session-fs/src/store.rs:1:1: replace == with != in g".into(),
            ],
        };
        assert_eq!(
            counts.row("session-fs", "abcdef012345"),
            "| session-fs | 2026-11-28 | 17 | 2 | 1 | 1 | 7 | 10.0 % | 5.0 % | abcdef012345 |"
        );
    }
}
