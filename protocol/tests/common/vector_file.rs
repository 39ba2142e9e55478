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

/// A hex string of a vector file as bytes.
pub fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("hex")
}

/// The frames of a handshake transcript (`intake-handshake.json`,
/// `endpoint-handshake.json`) whose type is `kind` (`HELLO`, `HANDSHAKE`,
/// `TRANSPORT`), in order, each with whether the initiator sent it.
pub fn transcript_frames(v: &Value, kind: &str) -> Vec<(bool, Vec<u8>)> {
    v["wire"]
        .as_array()
        .expect("wire")
        .iter()
        .flat_map(|t| {
            let from_init = t["from"] == "initiator";
            t["frames"]
                .as_array()
                .expect("frames")
                .iter()
                .filter(|f| f["type"] == kind)
                .map(move |f| (from_init, unhex(&f["body"])))
                .collect::<Vec<_>>()
        })
        .collect()
}
