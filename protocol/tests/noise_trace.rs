//! Every intermediate value of the two handshake transcripts (PROTOCOL.md
//! §4, §5, §10), computed by a Noise written here from the Noise
//! specification (revision 34, §5) and nothing else: no `snow`, no code of
//! this crate's handshake. It must rebuild every byte of
//! `intake-handshake.json` and `endpoint-handshake.json`; what it finds on
//! the way (the handshake hash `h` and chaining key `ck` after each token,
//! the cipher key, the decrypted payloads, the transport keys) is pinned in
//! `tests/vectors/handshake-traces.json`, so that an implementation whose
//! bytes differ can find the first value where it parts from ours.
//! Regenerate (only when a rule changes on purpose) with
//! `ALLIUM_REGENERATE_VECTORS=1 cargo test -p allium-protocol --test noise_trace`.

mod common;

use allium_protocol::noise::PROLOGUE_DOMAIN;
use allium_protocol::{IdentityProof, OnionId};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key};
use common::noise::{Symmetric, dh, nonce, pad, public};
use common::vector_file::{check, pinned, transcript_frames as frames, unhex};
use serde_json::{Value, json};

fn arr(v: &Value) -> [u8; 32] {
    unhex(v).try_into().expect("32 bytes")
}

/// Runs the handshake of transcript `name` from its recorded secrets, the
/// way both sides compute it (one symmetric state suffices: both sides hold
/// the same values), checks every byte against the transcript, and returns
/// the trace.
fn trace(name: &str) -> Value {
    let v = pinned(name);
    let protocol = v["noise_protocol"].as_str().expect("protocol");
    let endpoint = protocol.starts_with("Noise_IK");
    let hello = &frames(&v, "HELLO")[0].1;
    let header_len = 6 + 1 + 2 + 1 + 32 + 32;
    let header = &hello[..header_len];
    let mut prologue = PROLOGUE_DOMAIN.to_vec();
    prologue.extend_from_slice(header);
    let is = arr(&v["initiator"]["static_secret"]);
    let rs = arr(&v["responder"]["static_secret"]);
    let ie = arr(&v["initiator_ephemeral_secret"]);
    let re = arr(&v["responder_ephemeral_secret"]);
    let (is_pub, rs_pub, ie_pub, re_pub) = (public(&is), public(&rs), public(&ie), public(&re));
    assert_eq!(hex::encode(is_pub), v["initiator"]["static_public"]);
    assert_eq!(hex::encode(rs_pub), v["responder"]["static_public"]);

    let mut s = Symmetric::new(protocol, &prologue);
    let mut messages = Vec::new();
    let handshake = frames(&v, "HANDSHAKE");
    let mut payloads = Vec::new();
    if endpoint {
        s.mix_hash(&rs_pub);
        s.record("MixHash(rs) (pre-message)");
        // -> e, es, s, ss, payload
        let mut m = ie_pub.to_vec();
        s.mix_hash(&ie_pub);
        s.record("e");
        s.mix_key(&dh(&ie, &rs_pub), "es");
        m.extend(s.encrypt_and_hash(&is_pub, "s"));
        s.mix_key(&dh(&is, &rs_pub), "ss");
        let early = pad(&unhex(&v["first_message"]));
        m.extend(s.encrypt_and_hash(&early, "payload (the padded early message)"));
        payloads.push(early);
        messages.push(m);
        // <- e, ee, se, payload
        let mut m = re_pub.to_vec();
        s.mix_hash(&re_pub);
        s.record("e");
        s.mix_key(&dh(&re, &ie_pub), "ee");
        s.mix_key(&dh(&re, &is_pub), "se");
        m.extend(s.encrypt_and_hash(&[], "payload (empty)"));
        payloads.push(Vec::new());
        messages.push(m);
    } else {
        // -> e
        let mut m = ie_pub.to_vec();
        s.mix_hash(&ie_pub);
        s.record("e");
        m.extend(s.encrypt_and_hash(&[], "payload (empty)"));
        payloads.push(Vec::new());
        messages.push(m);
        // <- e, ee, s, es, payload: the responder's proof. The proof is
        // read back from the transcript: it is a signature, made by the
        // reference, and checked below.
        let mut m = re_pub.to_vec();
        s.mix_hash(&re_pub);
        s.record("e");
        s.mix_key(&dh(&re, &ie_pub), "ee");
        m.extend(s.encrypt_and_hash(&rs_pub, "s"));
        s.mix_key(&dh(&ie, &rs_pub), "es");
        let proof = decrypt_tail(&s, &handshake[0].1, m.len());
        m.extend(s.encrypt_and_hash(&proof, "payload (the responder's identity proof)"));
        payloads.push(proof);
        messages.push(m);
        // -> s, se, payload: the initiator's proof.
        let mut m = s.encrypt_and_hash(&is_pub, "s");
        s.mix_key(&dh(&is, &re_pub), "se");
        let proof = decrypt_tail(&s, &handshake[1].1, m.len());
        m.extend(s.encrypt_and_hash(&proof, "payload (the initiator's identity proof)"));
        payloads.push(proof);
        messages.push(m);
    }
    // Every handshake message, byte for byte.
    assert_eq!(
        hex::encode(&messages[0]),
        hex::encode(&hello[header_len..]),
        "{name}: message 1"
    );
    for (i, (_, body)) in handshake.iter().enumerate() {
        assert_eq!(
            hex::encode(&messages[i + 1]),
            hex::encode(body),
            "{name}: message {}",
            i + 2
        );
    }
    // The proofs verify for the ids of the hello (§4.4).
    let mut proofs = Vec::new();
    if !endpoint {
        let responder = OnionId::from_bytes(arr(&v["responder"]["identity_public"])).expect("id");
        let initiator = OnionId::from_bytes(arr(&v["initiator"]["identity_public"])).expect("id");
        for (payload, (signer, key)) in payloads[1..]
            .iter()
            .zip([(responder, rs_pub), (initiator, is_pub)])
        {
            let proof = IdentityProof::from_bytes(payload).expect("a proof");
            proof
                .verify(
                    &signer,
                    &allium_protocol::StaticPublicKey::from_peer(key).expect("key"),
                )
                .expect("the proof verifies");
            proofs.push(json!({
                "signer": hex::encode(signer.as_bytes()),
                "static_key": hex::encode(key),
                "proof": hex::encode(payload),
            }));
        }
    }
    // Split: the initiator sends with k1, the responder with k2; every
    // transport frame decrypts with them to the padded messages.
    let (k1, k2) = s.split();
    let mut counters = [0u64, 0u64];
    let mut transport = Vec::new();
    for (from_init, body) in frames(&v, "TRANSPORT") {
        let (k, n) = if from_init {
            (k1, &mut counters[0])
        } else {
            (k2, &mut counters[1])
        };
        let plain = ChaCha20Poly1305::new(Key::from_slice(&k))
            .decrypt(
                &nonce(*n),
                Payload {
                    msg: &body,
                    aad: &[],
                },
            )
            .expect("a transport frame decrypts");
        transport.push(json!({
            "from": if from_init { "initiator" } else { "responder" },
            "nonce": *n,
            "plaintext_length": plain.len(),
            "message": hex::encode(&plain[2..2 + usize::from(u16::from_be_bytes([plain[0], plain[1]]))]),
        }));
        *n += 1;
    }
    let mut expected = Vec::new();
    if !endpoint {
        expected.push(v["first_message"].clone());
    }
    expected.push(v["reply_message"].clone());
    let got: Vec<Value> = transport.iter().map(|t| t["message"].clone()).collect();
    assert_eq!(got, expected, "{name}: transport messages");

    json!({
        "transcript": format!("{name}.json"),
        "noise_protocol": protocol,
        "prologue": hex::encode(&prologue),
        "ephemeral_public": {
            "initiator": hex::encode(ie_pub),
            "responder": hex::encode(re_pub),
        },
        "dh": dh_values(endpoint, &is, &ie, &rs_pub, &re_pub),
        "steps": s.steps,
        "handshake_messages": messages.iter().map(hex::encode).collect::<Vec<_>>(),
        "handshake_payloads": payloads.iter().map(hex::encode).collect::<Vec<_>>(),
        "identity_proofs": proofs,
        "handshake_hash": hex::encode(s.h),
        "initiator_to_responder_key": hex::encode(k1),
        "responder_to_initiator_key": hex::encode(k2),
        "transport": transport,
    })
}

/// The DH results of the pattern, named as Noise names the tokens.
fn dh_values(
    endpoint: bool,
    is: &[u8; 32],
    ie: &[u8; 32],
    rs_pub: &[u8; 32],
    re_pub: &[u8; 32],
) -> Value {
    let mut v = json!({
        "ee": hex::encode(dh(ie, re_pub)),
        "es": hex::encode(dh(ie, rs_pub)),
        "se": hex::encode(dh(is, re_pub)),
    });
    if endpoint {
        v["ss"] = json!(hex::encode(dh(is, rs_pub)));
    }
    v
}

/// The plaintext of the payload at the end of a handshake message whose
/// first `prefix` bytes we have built: decrypted with the state's key (the
/// state is not advanced; `encrypt_and_hash` then re-encrypts it, and the
/// caller checks that the bytes match).
fn decrypt_tail(s: &Symmetric, message: &[u8], prefix: usize) -> Vec<u8> {
    let k = s.k.expect("a key by now");
    ChaCha20Poly1305::new(Key::from_slice(&k))
        .decrypt(
            &nonce(s.n),
            Payload {
                msg: &message[prefix..],
                aad: &s.h,
            },
        )
        .expect("the payload authenticates")
}

#[test]
fn every_intermediate_value_of_both_transcripts() {
    let doc = json!({
        "description": "PROTOCOL.md §4 and §5: the intermediate values of the two handshake \
                        transcripts, as Noise revision 34 §5 computes them (both sides hold \
                        the same values): h and ck after each step, the cipher key k once \
                        there is one, the DH results, the payloads, the identity proofs, \
                        the handshake hash and the transport keys after Split",
        "traces": [trace("intake-handshake"), trace("endpoint-handshake")],
    });
    check("handshake-traces", &doc);
}
