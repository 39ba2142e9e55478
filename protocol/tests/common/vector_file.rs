//! The pinned JSON files under `tests/vectors/`: compare what the reference
//! computes with what the file says, and rewrite the file only when asked
//! (`ALLIUM_REGENERATE_VECTORS=1`, when a rule changes on purpose).

use serde_json::Value;

fn path(name: &str) -> String {
    format!("{}/tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"))
}

/// Fails unless `tests/vectors/{name}.json` holds exactly `v`, so that a
/// file can never go stale against the code.
pub fn check(name: &str, v: &Value) {
    let path = path(name);
    let text = serde_json::to_string_pretty(v).expect("json") + "\n";
    if std::env::var_os("ALLIUM_REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, &text).expect("write vector");
    }
    let pinned = std::fs::read_to_string(&path).expect("vector file exists");
    assert!(pinned == text, "{name}: the reference differs from {path}");
}

/// The file as another implementation would read it.
pub fn pinned(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path(name)).expect("read")).expect("json")
}
