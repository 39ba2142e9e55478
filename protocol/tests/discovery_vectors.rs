//! Discovery-key vectors (PROTOCOL.md §6.1): from the 32 bytes a
//! CONTACT_REQUEST or CONTACT_ACCEPT carries to the public key the issuer
//! authorizes, and to each form a Tor implementation takes them in. Pinned
//! in `tests/vectors/discovery-keys.json`; the onion crate replays the same
//! file through Arti's own parsers (`onion/tests/discovery_encodings.rs`).
//! Regenerate (only when the rules change on purpose) with
//! `ALLIUM_REGENERATE_VECTORS=1 cargo test -p allium-protocol --test discovery_vectors`.

mod common;

use allium_protocol::{DiscoveryKey, IdentityKey};
use common::vector_file::{check, pinned};
use data_encoding::{BASE32_NOPAD, BASE64};
use serde_json::{Value, json};

fn base32(b: &[u8]) -> String {
    BASE32_NOPAD.encode(b).to_ascii_lowercase()
}

/// Every encoding of one key, computed from the rules of §6.1 alone.
fn encodings(onion: &str, secret: &[u8; 32]) -> Value {
    let key = DiscoveryKey(*secret);
    let mut clamped = *secret;
    DiscoveryKey::clamp(&mut clamped);
    let public = key.public_key();
    json!({
        "secret": hex::encode(secret),
        "clamped_secret": hex::encode(clamped),
        "public_key": hex::encode(public),
        "ctor_client_auth_private": format!("{onion}:descriptor:x25519:{}", base32(secret)),
        "ctor_service_auth": format!("descriptor:x25519:{}", base32(&public)),
        "control_port_client_auth_add": format!("ONION_CLIENT_AUTH_ADD {onion} x25519:{}", BASE64.encode(secret)),
        "control_port_add_onion_argument": format!("ClientAuthV3={}", base32(&public)),
        "arti_restricted_discovery_static_key": format!("descriptor:x25519:{}", base32(&public)),
    })
}

#[test]
fn discovery_key_encodings() {
    // The issuer's endpoint: the encodings for a client name it.
    let endpoint = IdentityKey::from_seed(&[9; 32]).onion_id();
    let onion = endpoint.to_onion_id_string();
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([5; 32]);
    let generated = DiscoveryKey::generate(&mut rng).0;
    let mut unclamped = generated;
    unclamped[0] |= 0x07;
    unclamped[31] |= 0x80;
    unclamped[31] &= !0x40;
    let cases = [
        ("as the reference generates it: random, clamped", generated),
        (
            "the same key unclamped: other bytes, the same public key",
            unclamped,
        ),
        (
            "all zero: valid (clamping makes it a non-zero scalar)",
            [0; 32],
        ),
        ("all 0xff: valid", [0xff; 32]),
    ];
    let list: Vec<Value> = cases
        .iter()
        .map(|(what, secret)| {
            let mut v = encodings(&onion, secret);
            v["case"] = json!(what);
            v
        })
        .collect();
    assert_eq!(
        list[0]["public_key"], list[1]["public_key"],
        "clamping changes the bytes, not the key"
    );
    let doc = json!({
        "description": "PROTOCOL.md §6.1: a discovery key's 32 bytes as a CONTACT_REQUEST or \
                        CONTACT_ACCEPT carries them, the public key the issuer's endpoint \
                        authorizes (X25519 of the clamped secret and the base point 9), and the \
                        form each Tor implementation takes them in, for the endpoint `endpoint`",
        "endpoint": onion,
        "cases": list,
    });
    check("discovery-keys", &doc);
    // Replay from the file alone.
    let pinned = pinned("discovery-keys");
    let onion = pinned["endpoint"].as_str().expect("endpoint");
    for c in pinned["cases"].as_array().expect("cases") {
        let secret: [u8; 32] = hex::decode(c["secret"].as_str().expect("secret"))
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        let mut got = encodings(onion, &secret);
        got["case"] = c["case"].clone();
        assert_eq!(&got, c, "{}", c["case"]);
    }
}
