//! Identity-proof verdict vectors (PROTOCOL.md §4.4), pinned in
//! `tests/vectors/identity-proofs.json`: proofs that some Ed25519 verifier
//! would accept, each with the verdict this protocol requires. The edge
//! cases are built by hand, with curve arithmetic, because no signer makes
//! them: a mixed-order key, a scalar `s` ≥ L, a small-order `R`.
//!
//! Regenerate with
//! `ALLIUM_REGENERATE_VECTORS=1 cargo test -p allium-protocol --test proof_vectors`.

mod common;

use allium_protocol::{IdentityProof, OnionId, StaticPublicKey};
use common::vector_file::{check, pinned};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

const DOMAIN: &[u8] = b"allium/v1/static-key-binding";

fn statement(signer: &[u8; 32], static_key: &[u8; 32]) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.push(0);
    m.extend_from_slice(signer);
    m.extend_from_slice(static_key);
    m
}

/// k = SHA-512(R || A || M) mod L.
fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(m);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// The two equations an Ed25519 verifier may use, for the record.
fn equations(a: &[u8; 32], r: &[u8; 32], s: &[u8; 32], m: &[u8]) -> (bool, bool) {
    let (Some(a_pt), Some(r_pt)) = (
        CompressedEdwardsY(*a).decompress(),
        CompressedEdwardsY(*r).decompress(),
    ) else {
        return (false, false);
    };
    // Either equation with s reduced mod L, as a lax verifier would.
    let s = Scalar::from_bytes_mod_order(*s);
    let k = challenge(r, a, m);
    let lhs = B * s;
    let rhs = r_pt + a_pt * k;
    let cofactorless = (lhs - rhs).is_identity();
    let cofactored = (lhs - rhs).mul_by_cofactor().is_identity();
    (cofactorless, cofactored)
}

/// An order-8 point (a torsion point no honest key has).
fn torsion8() -> EdwardsPoint {
    let mut b = [0u8; 32];
    hex_into(
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        &mut b,
    );
    let t = CompressedEdwardsY(b).decompress().expect("a point");
    assert!(
        t.is_small_order() && !(t + t + t + t).is_identity(),
        "order 8"
    );
    t
}

fn hex_into(h: &str, out: &mut [u8]) {
    out.copy_from_slice(&hex::decode(h).expect("hex"));
}

/// L, the order of the base point, little-endian.
fn order_l() -> [u8; 32] {
    let mut l = (Scalar::ZERO - Scalar::ONE).to_bytes();
    // (L - 1) + 1, with the carry.
    for b in l.iter_mut() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            break;
        }
    }
    l
}

fn add_le(x: &[u8; 32], y: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(x[i]) + u16::from(y[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

struct Case {
    what: &'static str,
    expected: [u8; 32],
    signer: [u8; 32],
    static_key: [u8; 32],
    r: [u8; 32],
    s: [u8; 32],
}

fn sign(
    a: Scalar,
    a_bytes: [u8; 32],
    nonce: Scalar,
    static_key: &[u8; 32],
) -> ([u8; 32], [u8; 32]) {
    let r = (B * nonce).compress().to_bytes();
    let k = challenge(&r, &a_bytes, &statement(&a_bytes, static_key));
    (r, (nonce + k * a).to_bytes())
}

fn cases() -> Vec<Case> {
    let a = Scalar::from_bytes_mod_order([0x31; 32]);
    let a_pub = (B * a).compress().to_bytes();
    let static_key = [0x09; 32];
    let mut v = Vec::new();

    let (r, s) = sign(
        a,
        a_pub,
        Scalar::from_bytes_mod_order([0x52; 32]),
        &static_key,
    );
    v.push(Case {
        what: "a valid proof",
        expected: a_pub,
        signer: a_pub,
        static_key,
        r,
        s,
    });

    // A mixed-order key: the prime-order key plus an order-8 point. It
    // passes the address checks (canonical, not of small order). Signed
    // with the prime-order secret, it satisfies the cofactored equation,
    // and the cofactorless one only when 8 divides k; pick a nonce for which
    // it does not.
    let mixed = ((B * a) + torsion8()).compress().to_bytes();
    assert!(
        OnionId::from_bytes(mixed).is_ok(),
        "a mixed-order key is a valid address"
    );
    let mut n = 1u8;
    let (r, s) = loop {
        let (r, s) = sign(a, mixed, Scalar::from_bytes_mod_order([n; 32]), &static_key);
        if equations(&mixed, &r, &s, &statement(&mixed, &static_key)) == (false, true) {
            break (r, s);
        }
        n += 1;
    };
    v.push(Case {
        what: "a mixed-order key, valid under the cofactored equation only",
        expected: mixed,
        signer: mixed,
        static_key,
        r,
        s,
    });

    // The same mixed-order key with a nonce for which the cofactorless
    // equation holds too (8 divides k): the equation this protocol uses
    // holds, and a mixed-order key is a valid address, so the proof is
    // valid. A verifier that refuses every mixed-order key fails here.
    let mut n = 1u8;
    let (r, s) = loop {
        let (r, s) = sign(a, mixed, Scalar::from_bytes_mod_order([n; 32]), &static_key);
        if equations(&mixed, &r, &s, &statement(&mixed, &static_key)) == (true, true) {
            break (r, s);
        }
        n += 1;
    };
    v.push(Case {
        what: "a mixed-order key, valid under both equations",
        expected: mixed,
        signer: mixed,
        static_key,
        r,
        s,
    });

    // s + L: the same scalar mod L, not in canonical form.
    let (r, s) = sign(
        a,
        a_pub,
        Scalar::from_bytes_mod_order([0x52; 32]),
        &static_key,
    );
    v.push(Case {
        what: "s not reduced (s + L): valid under either equation with s taken mod L",
        expected: a_pub,
        signer: a_pub,
        static_key,
        r,
        s: add_le(&s, &order_l()),
    });

    // A small-order R with s chosen so that the cofactored equation holds:
    // R = T (order 8), s = k·a, so [s]B − [k]A = 0 and [8](sB − R − kA) = 0.
    let t = torsion8().compress().to_bytes();
    let k = challenge(&t, &a_pub, &statement(&a_pub, &static_key));
    v.push(Case {
        what: "a small-order R, valid under the cofactored equation",
        expected: a_pub,
        signer: a_pub,
        static_key,
        r: t,
        s: (k * a).to_bytes(),
    });

    // R = the identity point, s = k·a: then [s]B = R + [k]A exactly, so
    // even the cofactorless equation holds. Only the rule against a
    // small-order R refuses it (a verifier without it accepts).
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let k = challenge(&identity, &a_pub, &statement(&a_pub, &static_key));
    v.push(Case {
        what: "R is the identity point: the cofactorless equation holds, R has small order",
        expected: a_pub,
        signer: a_pub,
        static_key,
        r: identity,
        s: (k * a).to_bytes(),
    });

    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    let (_, s) = sign(
        a,
        a_pub,
        Scalar::from_bytes_mod_order([0x52; 32]),
        &static_key,
    );
    v.push(Case {
        what: "R is not a curve point",
        expected: a_pub,
        signer: a_pub,
        static_key,
        r: not_a_point,
        s,
    });

    let (r, s) = sign(
        a,
        a_pub,
        Scalar::from_bytes_mod_order([0x52; 32]),
        &static_key,
    );
    v.push(Case {
        what: "a valid proof for another static key",
        expected: a_pub,
        signer: a_pub,
        static_key: [0x0a; 32],
        r,
        s,
    });
    let other = (B * Scalar::from_bytes_mod_order([0x77; 32]))
        .compress()
        .to_bytes();
    v.push(Case {
        what: "a valid proof by another signer than the one expected",
        expected: other,
        signer: a_pub,
        static_key,
        r,
        s,
    });
    v
}

fn verdict(
    expected: &[u8; 32],
    signer: &[u8; 32],
    static_key: &[u8; 32],
    sig: &[u8; 64],
) -> String {
    let (Ok(expected), Ok(signer)) = (OnionId::from_bytes(*expected), OnionId::from_bytes(*signer))
    else {
        return "invalid key".into();
    };
    let Ok(static_key) = StaticPublicKey::from_peer(*static_key) else {
        return "invalid static key".into();
    };
    let proof = IdentityProof {
        signer,
        signature: *sig,
    };
    match proof.verify(&expected, &static_key) {
        Ok(()) => "valid".into(),
        Err(e) => format!("{e:?}"),
    }
}

#[test]
fn identity_proof_verdicts() {
    let list: Vec<Value> = cases()
        .into_iter()
        .map(|c| {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&c.r);
            sig[32..].copy_from_slice(&c.s);
            let m = statement(&c.signer, &c.static_key);
            let (cofactorless, cofactored) = equations(&c.signer, &c.r, &c.s, &m);
            json!({
                "case": c.what,
                "expected_signer": hex::encode(c.expected),
                "signer": hex::encode(c.signer),
                "static_key": hex::encode(c.static_key),
                "signature": hex::encode(sig),
                "cofactorless_equation_holds": cofactorless,
                "cofactored_equation_holds": cofactored,
                "verdict": verdict(&c.expected, &c.signer, &c.static_key, &sig),
            })
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §4.4: identity proofs (SIGNER || SIGNATURE = R || s) of \
                        STATEMENT(SIGNER, static_key), checked against the expected signer; \
                        the two *_equation_holds fields say what a lax verifier (s taken mod L) \
                        would find, the verdict is what this protocol requires",
        "cases": list,
    });
    check("identity-proofs", &doc);
    let pinned = pinned("identity-proofs");
    // Replay from the file alone.
    for c in pinned["cases"].as_array().expect("cases") {
        let get = |k: &str| hex::decode(c[k].as_str().expect(k)).expect("hex");
        let arr = |k: &str| -> [u8; 32] { get(k).try_into().expect("32 bytes") };
        let sig: [u8; 64] = get("signature").try_into().expect("64 bytes");
        let got = verdict(
            &arr("expected_signer"),
            &arr("signer"),
            &arr("static_key"),
            &sig,
        );
        assert_eq!(Value::from(got), c["verdict"], "{}", c["case"]);
    }
}
