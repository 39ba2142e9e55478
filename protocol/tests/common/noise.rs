//! A Noise (revision 34, §4–§5) written from its specification for the
//! tests, with no Noise library and no code of this crate: BLAKE2s with its
//! HMAC and HKDF, ChaCha20-Poly1305, X25519. `tests/noise_trace.rs` checks
//! it against the pinned transcripts; `tests/hello_vectors.rs` builds with
//! it hellos the reference would never write.

use blake2::{Blake2s256, Digest};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use serde_json::{Value, json};

pub fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Blake2s256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// HMAC (RFC 2104) over BLAKE2s, block length 64, as Noise §4.3 defines it.
pub fn hmac(key: &[u8; 32], data: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(key);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let mut inner = vec![&ipad[..]];
    inner.extend_from_slice(data);
    let inner = hash(&inner);
    hash(&[&opad, &inner])
}

/// Noise §4.3 HKDF with two outputs.
pub fn hkdf(ck: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let temp = hmac(ck, &[ikm]);
    let o1 = hmac(&temp, &[&[1]]);
    let o2 = hmac(&temp, &[&o1, &[2]]);
    (o1, o2)
}

pub fn dh(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint(*public).mul_clamped(*secret).to_bytes()
}

pub fn public(secret: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
}

pub fn nonce(n: u64) -> Nonce {
    let mut b = [0u8; 12];
    b[4..].copy_from_slice(&n.to_le_bytes());
    b.into()
}

/// Noise §5.2 SymmetricState, with a record of every step.
pub struct Symmetric {
    pub h: [u8; 32],
    pub ck: [u8; 32],
    pub k: Option<[u8; 32]>,
    pub n: u64,
    pub steps: Vec<Value>,
}

impl Symmetric {
    pub fn new(protocol: &str, prologue: &[u8]) -> Self {
        let name = protocol.as_bytes();
        let h = if name.len() <= 32 {
            let mut h = [0u8; 32];
            h[..name.len()].copy_from_slice(name);
            h
        } else {
            hash(&[name])
        };
        let mut s = Symmetric {
            h,
            ck: h,
            k: None,
            n: 0,
            steps: Vec::new(),
        };
        s.record("InitializeSymmetric");
        s.mix_hash(prologue);
        s.record("MixHash(prologue)");
        s
    }

    pub fn record(&mut self, what: &str) {
        self.steps.push(json!({
            "step": what,
            "h": hex::encode(self.h),
            "ck": hex::encode(self.ck),
            "k": self.k.map(hex::encode),
        }));
    }

    pub fn mix_hash(&mut self, data: &[u8]) {
        self.h = hash(&[&self.h, data]);
    }

    pub fn mix_key(&mut self, ikm: &[u8; 32], what: &str) {
        let (ck, k) = hkdf(&self.ck, ikm);
        self.ck = ck;
        self.k = Some(k);
        self.n = 0;
        self.record(what);
    }

    pub fn encrypt_and_hash(&mut self, plaintext: &[u8], what: &str) -> Vec<u8> {
        let out = match self.k {
            Some(k) => {
                let c = ChaCha20Poly1305::new(Key::from_slice(&k))
                    .encrypt(
                        &nonce(self.n),
                        Payload {
                            msg: plaintext,
                            aad: &self.h,
                        },
                    )
                    .expect("encrypt");
                self.n += 1;
                c
            }
            None => plaintext.to_vec(),
        };
        self.mix_hash(&out);
        self.record(what);
        out
    }

    pub fn split(&self) -> ([u8; 32], [u8; 32]) {
        hkdf(&self.ck, &[])
    }
}

/// A message padded as PROTOCOL.md §5 says: `MLEN || MESSAGE || zeros` to
/// the smallest bucket that fits.
pub fn pad(m: &[u8]) -> Vec<u8> {
    let bucket = [256usize, 1024, 4096, 16384, 65504]
        .into_iter()
        .find(|b| *b >= m.len() + 2)
        .expect("fits a bucket");
    let mut out = u16::try_from(m.len())
        .expect("fits a bucket")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(m);
    out.resize(bucket, 0);
    out
}

/// The Noise ephemeral secret of a session of this crate built with
/// `ChaCha20Rng::from_seed(seed)`: the session draws a 32-byte seed for
/// its Noise RNG, and Noise draws the ephemeral key as that RNG's first 32
/// bytes.
pub fn ephemeral_for(seed: [u8; 32]) -> [u8; 32] {
    use rand_core::{RngCore, SeedableRng};
    let mut outer = rand_chacha::ChaCha20Rng::from_seed(seed);
    let mut inner_seed = [0u8; 32];
    outer.fill_bytes(&mut inner_seed);
    let mut inner = rand_chacha::ChaCha20Rng::from_seed(inner_seed);
    let mut e = [0u8; 32];
    inner.fill_bytes(&mut e);
    e
}
