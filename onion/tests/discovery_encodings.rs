//! The discovery-key vectors of PROTOCOL.md §6.1
//! (`protocol/tests/vectors/discovery-keys.json`), read back by Arti's own
//! parsers and derived with Arti's own X25519: what the file tells an
//! implementer to hand Tor is what Tor takes, and the key it names is the
//! one our endpoint authorizes.

use std::str::FromStr;

use allium_onion::ClientKey;
use allium_protocol::DiscoveryKey;
use serde_json::Value;
use tor_hscrypto::pk::HsClientDescEncKey;
use tor_llcrypto::pk::curve25519;

#[test]
fn arti_reads_every_vector_as_the_same_key() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../protocol/tests/vectors/discovery-keys.json"
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    let cases = doc["cases"].as_array().expect("cases");
    assert!(cases.len() >= 4);
    for c in cases {
        let field = |k: &str| c[k].as_str().unwrap_or_else(|| panic!("{k}"));
        let secret: [u8; 32] = hex::decode(field("secret"))
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        // Arti's X25519, as its client uses the secret we insert.
        let arti_public =
            curve25519::PublicKey::from(&curve25519::StaticSecret::from(secret)).to_bytes();
        assert_eq!(
            hex::encode(arti_public),
            field("public_key"),
            "{}",
            c["case"]
        );
        // What our endpoint authorizes for that secret.
        assert_eq!(ClientKey::from_secret(&DiscoveryKey(secret)).0, arti_public);
        // The strings an endpoint is configured with, through Arti's parser.
        for k in ["arti_restricted_discovery_static_key", "ctor_service_auth"] {
            let parsed = HsClientDescEncKey::from_str(field(k)).expect("Arti parses it");
            assert_eq!(
                curve25519::PublicKey::from(parsed).to_bytes(),
                arti_public,
                "{k}: {}",
                c["case"]
            );
        }
    }
}
