//! The threat model, the protocol and the READMEs back their claims with
//! the code and the tests that hold them (`src/engine/core/conns.rs`,
//! `hostile_peers.rs::h3_silent_and_idle_strangers_cannot_shut_the_intake`).
//! A rename must not leave a claim pointing at nothing: every source file
//! they name exists, and every `file.rs::name` names a function in it.

use std::path::{Path, PathBuf};

/// The documents whose references are checked, from the workspace root.
const DOCS: &[&str] = &[
    "README.md",
    "docs/threat-model.md",
    "docs/json-rpc.md",
    "protocol/PROTOCOL.md",
    "protocol/README.md",
    "onion/README.md",
    "vault/README.md",
    "testnet/README.md",
];

/// Files of our dependencies that the documents quote (they are checked
/// against the pinned sources by whoever quotes them, not here).
const THEIRS: &[&str] = &["vanguards/config.rs"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under the workspace, as paths relative to its root.
fn sources(dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            sources(&path, found);
        } else if name.ends_with(".rs")
            && let Ok(rel) = path.strip_prefix(root())
        {
            found.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The references in `text`: a path ending in `.rs` (letters, digits, `_`
/// and `/`), and the function after `::`, if one follows.
fn references(text: &str) -> Vec<(String, Option<String>)> {
    let path_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '/';
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(".rs") {
        let before = &rest[..at];
        let start = before
            .char_indices()
            .rev()
            .take_while(|&(_, c)| path_char(c))
            .last()
            .map_or(at, |(i, _)| i);
        let path = format!("{}.rs", &rest[start..at]);
        let after = &rest[at + 3..];
        // A domain (`docs.rs/…`) or a word like `.rsync` is not a file.
        let domain = after.starts_with('/') || before[..start].ends_with('.');
        let word = after.starts_with(name_char);
        let function = after
            .strip_prefix("::")
            .map(|f| f.chars().take_while(|&c| name_char(c)).collect::<String>());
        if start < at && !domain && !word {
            found.push((path, function.filter(|f| !f.is_empty())));
        }
        rest = after;
    }
    found
}

#[test]
fn every_file_and_test_the_documents_name_exists() {
    let mut files = Vec::new();
    sources(&root(), &mut files);
    let mut missing = Vec::new();
    let mut checked = 0;
    for doc in DOCS {
        let Ok(text) = std::fs::read_to_string(root().join(doc)) else {
            missing.push(format!("{doc}: the document itself"));
            continue;
        };
        for (path, function) in references(&text) {
            checked += 1;
            if THEIRS.contains(&path.as_str()) {
                continue;
            }
            let matching: Vec<&String> = files
                .iter()
                .filter(|f| **f == path || f.ends_with(&format!("/{path}")))
                .collect();
            if matching.is_empty() {
                missing.push(format!("{doc}: {path}"));
                continue;
            }
            if let Some(f) = function {
                let defined = matching.iter().any(|m| {
                    std::fs::read_to_string(root().join(m)).is_ok_and(|src| {
                        src.match_indices(&format!("fn {f}")).any(|(i, _)| {
                            !src[i + 3 + f.len()..]
                                .starts_with(|c: char| c == '_' || c.is_ascii_alphanumeric())
                        })
                    })
                });
                if !defined {
                    missing.push(format!("{doc}: {path}::{f}"));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} references found: the scan is broken"
    );
    assert!(
        missing.is_empty(),
        "named in the documents but not in the code:\n{}",
        missing.join("\n")
    );
}

#[test]
fn references_are_read_as_a_reader_reads_them() {
    let found = references(
        "see `src/engine/core/conns.rs` `on_incoming`, \
         `hostile_peers.rs::h3_x`, docs.rs/arti and `.rsync`; tor.rs.",
    );
    assert_eq!(
        found,
        vec![
            ("src/engine/core/conns.rs".to_owned(), None),
            ("hostile_peers.rs".to_owned(), Some("h3_x".to_owned())),
            ("tor.rs".to_owned(), None),
        ]
    );
}
