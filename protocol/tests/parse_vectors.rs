//! Verdict vectors: inputs a parser must accept or refuse, each with the
//! required verdict, pinned in `tests/vectors/addresses.json` (PROTOCOL.md
//! §2.3) and `tests/vectors/refuse-bodies.json` (§4.8). The format is in
//! `tests/vectors/README.md`.
//!
//! Two checks: the cases below, run through our parser, must give exactly
//! the file (so the file cannot go stale), and every case in the file is
//! replayed from the file alone (so another implementation can do the
//! same without reading this). Regenerate (only when the rules change on
//! purpose) with
//! `ALLIUM_REGENERATE_VECTORS=1 cargo test -p allium-protocol --test parse_vectors`.

use allium_protocol::{IdentityKey, OnionId, RefuseReason};
use data_encoding::BASE32_NOPAD;
use serde_json::{Value, json};
use sha3::{Digest, Sha3_256};

/// `allium:` and the base32 of `key || checksum || version`, with a
/// correct checksum for whatever key and version: lets a case reach the
/// checks after the checksum.
fn encode(key: [u8; 32], version: u8) -> String {
    let mut h = Sha3_256::new();
    h.update(b".onion checksum");
    h.update(key);
    h.update([version]);
    let d = h.finalize();
    let mut raw = key.to_vec();
    raw.extend_from_slice(&[d[0], d[1], version]);
    format!("allium:{}", BASE32_NOPAD.encode(&raw).to_ascii_lowercase())
}

fn address_verdict(input: &str) -> Value {
    match OnionId::parse(input) {
        Ok(id) => json!({"verdict": "valid", "key": hex::encode(id.as_bytes())}),
        Err(e) => json!({"verdict": format!("{e:?}")}),
    }
}

fn refuse_verdict(body: &[u8]) -> Value {
    match RefuseReason::decode(body) {
        Ok(r) => json!({"verdict": "valid", "reason": format!("{r:?}")}),
        Err(e) => json!({"verdict": format!("{e:?}")}),
    }
}

fn address_cases() -> Vec<(&'static str, String)> {
    let id = IdentityKey::from_seed(&[7; 32]).onion_id();
    let a = id.to_address();
    let bare = id.to_onion_id_string();
    let mut typo = bare.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).expect("ascii");
    // The y coordinate 2 is on no point of the curve; y = p + 1 encodes the
    // point y = 1 (the identity) in a second, non-canonical way; 01 00…00
    // is the identity itself, of small order.
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    let mut y_above_p = [0xffu8; 32];
    y_above_p[0] = 0xee;
    y_above_p[31] = 0x7f;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut one_char_more = bare.clone();
    one_char_more.push('a');
    vec![
        ("the canonical form", a.clone()),
        ("the bare id", bare.clone()),
        ("the id with .onion", format!("{bare}.onion")),
        ("prefix and suffix together", format!("allium:{bare}.onion")),
        ("any ASCII case", a.to_ascii_uppercase()),
        (
            "mixed case prefix and suffix",
            format!("AlLiUm:{bare}.OnIoN"),
        ),
        (
            "surrounding white space: ASCII, NBSP, ideographic space",
            format!(" \t\n\u{a0}\u{3000}{a}\r\n "),
        ),
        ("empty", String::new()),
        ("white space only", " \t\u{a0} ".into()),
        ("a bare prefix", "allium:".into()),
        ("a bare suffix", ".onion".into()),
        ("55 characters", a[..a.len() - 1].into()),
        ("57 characters", format!("allium:{one_char_more}")),
        (
            "white space inside is not trimmed (applications may drop it first)",
            format!("allium:{} {}", &bare[..28], &bare[28..]),
        ),
        (
            "56 characters, one of them not ASCII: counted as characters",
            format!("allium:{}é", &bare[..55]),
        ),
        ("a digit outside 2-7", format!("allium:{}1", &bare[..55])),
        ("the prefix twice", format!("allium:allium:{bare}")),
        (
            "a typo: the checksum does not match",
            format!("allium:{typo}"),
        ),
        ("version 2, checksum right", encode(*id.as_bytes(), 2)),
        ("a key that is not a curve point", encode(off_curve, 3)),
        (
            "a non-canonical key encoding (y >= p)",
            encode(y_above_p, 3),
        ),
        (
            "a small-order key (the identity point)",
            encode(identity, 3),
        ),
    ]
}

fn refuse_cases() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("code 1, versions [3, 2]", vec![1, 2, 3, 2]),
        ("code 1, one version", vec![1, 1, 2]),
        ("code 2, wrong domain", vec![2]),
        ("code 3, wrong destination", vec![3]),
        ("code 4, busy", vec![4]),
        ("code 5, not authorized", vec![5]),
        ("code 6, protocol error", vec![6]),
        ("empty", vec![]),
        ("code 0", vec![0]),
        ("code 7", vec![7]),
        ("code 1 without a count", vec![1]),
        ("code 1, count 0", vec![1, 0]),
        ("code 1, count 9", vec![1, 9, 9, 8, 7, 6, 5, 4, 3, 2, 1]),
        ("code 1, fewer versions than counted", vec![1, 2, 3]),
        ("code 1, versions not decreasing", vec![1, 2, 2, 3]),
        ("code 1, a repeated version", vec![1, 2, 3, 3]),
        ("code 1, version 0", vec![1, 2, 3, 0]),
        ("code 1, trailing byte", vec![1, 1, 2, 0]),
        ("code 5, trailing byte", vec![5, 0]),
    ]
}

fn check(name: &str, v: &Value) {
    let path = format!("{}/tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(v).expect("json") + "\n";
    if std::env::var_os("ALLIUM_REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, &text).expect("write vector");
    }
    let pinned = std::fs::read_to_string(&path).expect("vector file exists");
    assert!(pinned == text, "{name}: our verdicts differ from {path}");
}

fn pinned(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

#[test]
fn address_verdicts() {
    let cases: Vec<Value> = address_cases()
        .into_iter()
        .map(|(what, input)| {
            let mut v = address_verdict(&input);
            v["case"] = json!(what);
            v["input"] = json!(input);
            v
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §2.3: each input and the verdict a parser must give: \
                        \"valid\" with the 32-byte key, or the error (the check that fails \
                        first, named as the reference names it)",
        "cases": cases,
    });
    check("addresses", &doc);
    // Replay from the file alone.
    for c in pinned("addresses")["cases"].as_array().expect("cases") {
        let input = c["input"].as_str().expect("input");
        let got = address_verdict(input);
        assert_eq!(got["verdict"], c["verdict"], "{}", c["case"]);
        assert_eq!(got["key"], c["key"], "{}", c["case"]);
    }
}

#[test]
fn refuse_body_verdicts() {
    let cases: Vec<Value> = refuse_cases()
        .into_iter()
        .map(|(what, body)| {
            let mut v = refuse_verdict(&body);
            v["case"] = json!(what);
            v["body"] = json!(hex::encode(&body));
            v
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §4.8: each REFUSE frame body (hex) and the verdict: \
                        \"valid\" with the reason, or the error",
        "cases": cases,
    });
    check("refuse-bodies", &doc);
    for c in pinned("refuse-bodies")["cases"].as_array().expect("cases") {
        let body = hex::decode(c["body"].as_str().expect("body")).expect("hex");
        let got = refuse_verdict(&body);
        assert_eq!(got["verdict"], c["verdict"], "{}", c["case"]);
        assert_eq!(got["reason"], c["reason"], "{}", c["case"]);
    }
}
