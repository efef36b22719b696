//! ARCHITECTURE.md checked against the code, as rust-analyzer's tidy test does: what a
//! machine can check of its claims, checked on every `cargo xtask ci`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn architecture() -> String {
    read(&root().join("ARCHITECTURE.md"))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found
}

fn members() -> BTreeSet<String> {
    let manifest = read(&root().join("Cargo.toml"));
    let list = manifest
        .split("members = [")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap();
    list.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn the_code_map_has_exactly_the_workspace_members() {
    let mapped: BTreeSet<String> = architecture()
        .lines()
        .filter_map(|l| l.strip_prefix("### `")?.strip_suffix('`').map(str::to_owned))
        .collect();
    assert_eq!(
        mapped,
        members(),
        "ARCHITECTURE.md's code map against Cargo.toml's members"
    );
}

#[test]
fn only_session_fs_touches_the_filesystem_among_the_libraries() {
    for krate in libraries().iter().filter(|k| *k != "session-fs") {
        for file in sources(&root().join("crates").join(krate).join("src")) {
            for (n, line) in read(&file).lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                assert!(
                    !code.contains("std::fs")
                        && !code.contains("File::open")
                        && !code.contains("File::create"),
                    "{}:{}: the filesystem outside session-fs: {line}",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}

#[test]
fn session_model_depends_on_what_the_architecture_says() {
    let said = architecture();
    // The bullet that says it, over as many lines as it takes.
    let start = said
        .find("`session-model` does no I/O")
        .expect("the claim about session-model's dependencies");
    let claim = said[start..].split("\n- ").next().unwrap_or_default();
    let manifest = read(&root().join("crates/session-model/Cargo.toml"));
    let deps: Vec<&str> = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split([' ', '.', '=']).next().filter(|n| !n.is_empty()))
        .collect();
    assert!(!deps.is_empty());
    for dep in deps {
        assert!(
            claim.contains(&format!("`{dep}`")),
            "session-model depends on {dep}; the claim says: {claim}"
        );
    }
}

#[test]
fn no_type_holding_message_text_derives_debug() {
    let crates = libraries().into_iter().chain(["sessionctl".to_owned()]);
    for file in crates.flat_map(|krate| sources(&root().join("crates").join(krate).join("src"))) {
        let text = read(&file);
        for (at, _) in text.match_indices("struct ") {
            let before = &text[..at];
            // A struct's own line: `struct`, `pub struct`, `pub(crate) struct`...
            let line_start = before.rfind('\n').map_or(0, |n| n + 1);
            if !["", "pub ", "pub(crate) ", "pub(super) "].contains(&&before[line_start..]) {
                continue;
            }
            let before = &before[..line_start];
            let attrs: Vec<&str> = before
                .lines()
                .rev()
                .take_while(|l| {
                    let l = l.trim_start();
                    l.starts_with("#[") || l.starts_with("///")
                })
                .collect();
            let derives_debug = attrs.iter().any(|l| l.contains("derive(") && l.contains("Debug"));
            let body = text[at..].split("\n}").next().unwrap_or_default();
            let holds_text = [
                "messages: Vec<String>",
                "content: Option<String>",
                "hex_data: Option<String>",
                "data: Vec<u8>",
                // The page's parsed view of a message.
                "pub raw: String",
                "patient_name: Option<String>",
            ]
            .iter()
            .any(|field| body.contains(field));
            assert!(
                !(derives_debug && holds_text),
                "{}: a type holding message text or bytes derives Debug: {}",
                file.display(),
                body.lines().next().unwrap_or_default()
            );
        }
    }
}

#[test]
fn every_path_and_function_the_architecture_names_exists() {
    let said = architecture();
    let all_sources: String = ["crates", "xtask", "benchmarks"]
        .iter()
        .flat_map(|d| sources(&root().join(d)))
        .map(|f| read(&f))
        .collect();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (i, quoted) in said.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        // Paths in the repository.
        if (quoted.starts_with("crates/") || quoted.starts_with("dist/")) && !quoted.contains(' ') {
            checked += 1;
            if !root().join(quoted.trim_end_matches('/')).exists() {
                missing.push(quoted.to_owned());
            }
            continue;
        }
        // `Type`: a type of that name is declared somewhere (std's traits and HTTP's
        // header names are not ours to declare).
        const NOT_OURS: &[&str] = &["From", "TryFrom", "Debug", "Serialize", "Date", "Location"];
        if quoted.len() > 2
            && !NOT_OURS.contains(&quoted)
            && quoted.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && quoted.chars().any(|c| c.is_ascii_lowercase())
            && quoted.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            checked += 1;
            let declared = ["struct", "enum", "trait", "type"]
                .iter()
                .any(|kind| all_sources.contains(&format!("{kind} {quoted}")));
            if !declared {
                missing.push(quoted.to_owned());
            }
            continue;
        }
        // `Type::function` and `Type::function()`: the function exists.
        let name = quoted.trim_end_matches("()");
        if let Some((owner, function)) = name.rsplit_once("::")
            && owner.chars().next().is_some_and(char::is_uppercase)
            && function
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !function.is_empty()
        {
            checked += 1;
            if !all_sources.contains(&format!("fn {function}")) {
                missing.push(quoted.to_owned());
            }
        }
    }
    assert!(
        checked >= 20,
        "only {checked} names checked: the check reads nothing"
    );
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what the code does not have: {missing:?}"
    );
}

/// The library crates: the workspace members named `crates/session-*` (`sessionctl`
/// and `test-support` are not libraries), so that a new library is checked at once.
fn libraries() -> Vec<String> {
    let found: Vec<String> = members()
        .iter()
        .filter_map(|m| m.strip_prefix("crates/"))
        .filter(|name| name.starts_with("session-"))
        .map(str::to_owned)
        .collect();
    assert!(
        found.len() >= 8,
        "the libraries were not found among the members: {found:?}"
    );
    found
}

/// Each function of `text` as (first line, length in lines): from its `fn` line to the
/// closing brace at the same indentation.
fn functions(text: &str) -> Vec<(usize, usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = &line[..line.len() - code.len()];
        let signature = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(super) fn ",
            "async fn ",
            "pub async fn ",
            "pub(crate) async fn ",
            "pub(super) async fn ",
            "const fn ",
            "pub const fn ",
        ]
        .iter()
        .any(|p| code.starts_with(p));
        if !signature || line.trim_end().ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == close) {
            found.push((i + 1, end + 2, code.chars().take(60).collect()));
        }
    }
    found
}

#[test]
fn library_files_and_functions_stay_small() {
    let mut too_big = Vec::new();
    for krate in libraries() {
        for file in sources(&root().join("crates").join(krate).join("src")) {
            let text = read(&file);
            let lines = text.lines().count();
            if lines > 700 {
                too_big.push(format!("{}: {lines} lines (at most 700)", file.display()));
            }
            for (at, length, signature) in functions(&text) {
                if length > 80 {
                    too_big.push(format!(
                        "{}:{at}: {signature}: {length} lines (at most 80)",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(too_big.is_empty(), "{too_big:#?}");
}

#[test]
fn the_size_check_finds_functions_and_their_ends() {
    let text = "fn a() {\n    x();\n}\n\nimpl T {\n    pub(crate) async fn b(\n        y: u8,\n    ) {\n        z();\n    }\n    fn c();\n}\n";
    let found: Vec<(usize, usize)> = functions(text).into_iter().map(|(at, n, _)| (at, n)).collect();
    assert_eq!(found, [(1, 3), (6, 5)]);
}

#[test]
fn no_library_report_type_is_a_format() {
    // A report is what a call did; the JSON a tool prints is that tool's own type, so that
    // a library's field rename never changes a documented output.
    let mut formats = Vec::new();
    for krate in libraries() {
        for file in sources(&root().join("crates").join(krate).join("src")) {
            let text = read(&file);
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let Some(name) = line
                    .strip_prefix("pub struct ")
                    .or_else(|| line.strip_prefix("pub enum "))
                    .and_then(|rest| rest.split([' ', '<', '{', '(']).next())
                else {
                    continue;
                };
                let is_report = ["Report", "Summary", "Outcome"].iter().any(|s| name.ends_with(s));
                let serializes = lines[..i]
                    .iter()
                    .rev()
                    .take_while(|l| l.trim_start().starts_with("#[") || l.trim_start().starts_with("///"))
                    .any(|l| l.contains("derive(") && l.replace("Deserialize", "").contains("Serialize"));
                if is_report && serializes {
                    formats.push(format!("{}: {name}", file.display()));
                }
            }
        }
    }
    assert!(
        formats.is_empty(),
        "library report types deriving Serialize: {formats:?}"
    );
}
