//! Our use of the Noise framework (via `snow`): the two patterns, the
//! prologue, and a crypto resolver that (a) draws every random byte from the
//! caller's RNG, so the crate has no RNG of its own and tests are
//! deterministic, and (b) refuses Diffie-Hellman with a small-order public
//! key, which `snow` itself does not check.

use std::sync::{Arc, Mutex};

use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use zeroize::{Zeroize, Zeroizing};

use crate::error::ProtocolError;
use crate::frame::Purpose;
use crate::identity::{StaticKeypair, StaticPublicKey};

/// The intake pattern: neither side knows the other's static key.
pub const INTAKE_PATTERN: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// The endpoint pattern: the initiator knows the responder's static key,
/// and its first message carries application data.
pub const ENDPOINT_PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// Prefix of every Noise prologue; the hello header follows it.
pub const PROLOGUE_DOMAIN: &[u8] = b"allium/v1/prologue\0";

/// Noise's maximum message size.
pub(crate) const NOISE_MAX: usize = 65535;
/// AEAD tag length.
pub(crate) const TAG_LEN: usize = 16;

type KeyProblem = Arc<Mutex<Option<ProtocolError>>>;

/// A Noise handshake in progress, with our key checks attached.
pub(crate) struct NoiseHandshake {
    state: snow::HandshakeState,
    key_problem: KeyProblem,
}

impl NoiseHandshake {
    pub(crate) fn new(
        purpose: Purpose,
        initiator: bool,
        local: &StaticKeypair,
        remote: Option<&StaticPublicKey>,
        prologue: &[u8],
        rng_seed: &[u8; 32],
    ) -> Result<Self, ProtocolError> {
        let key_problem = KeyProblem::default();
        let resolver = AlliumResolver {
            seed: Mutex::new(Some(Zeroizing::new(*rng_seed))),
            key_problem: key_problem.clone(),
        };
        let name = match purpose {
            Purpose::Intake => INTAKE_PATTERN,
            Purpose::Endpoint => ENDPOINT_PATTERN,
        };
        let params = name.parse().map_err(noise_internal)?;
        let mut builder = snow::Builder::with_resolver(params, Box::new(resolver))
            .local_private_key(local.secret())
            .map_err(noise_internal)?
            .prologue(prologue)
            .map_err(noise_internal)?;
        if let Some(remote) = remote {
            builder = builder
                .remote_public_key(&remote.0)
                .map_err(noise_internal)?;
        }
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .map_err(noise_internal)?;
        Ok(NoiseHandshake { state, key_problem })
    }

    pub(crate) fn write(&mut self, payload: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        // Room for two public keys, two tags and the payload: the most any
        // message of XX or IK adds around its payload.
        let mut out = vec![0u8; (payload.len() + 2 * 32 + 2 * TAG_LEN).min(NOISE_MAX)];
        let n = self
            .state
            .write_message(payload, &mut out)
            .map_err(|e| self.map_err(e))?;
        out.truncate(n);
        Ok(out)
    }

    /// Reads a handshake message; the peer's ephemeral key (always the first
    /// 32 bytes, sent in clear) is checked before anything else.
    pub(crate) fn read(&mut self, message: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let e: [u8; 32] = message.get(..32).and_then(|e| e.try_into().ok()).ok_or(
            ProtocolError::MalformedHandshake("handshake message too short"),
        )?;
        crate::identity::check_public_key(&e)?;
        self.read_final(message)
    }

    /// Reads the last XX message (`s, se`), which has no ephemeral key.
    pub(crate) fn read_final(&mut self, message: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let mut payload = vec![0u8; message.len()];
        let n = self
            .state
            .read_message(message, &mut payload)
            .map_err(|e| self.map_err(e))?;
        payload.truncate(n);
        Ok(payload)
    }

    pub(crate) fn remote_static(&self) -> Option<[u8; 32]> {
        self.state
            .get_remote_static()
            .and_then(|k| k.try_into().ok())
    }

    pub(crate) fn into_transport(self) -> Result<snow::TransportState, ProtocolError> {
        self.state.into_transport_mode().map_err(noise_internal)
    }

    fn map_err(&self, e: snow::Error) -> ProtocolError {
        if let Some(problem) = self.key_problem.lock().ok().and_then(|mut p| p.take()) {
            return problem;
        }
        match e {
            snow::Error::Decrypt | snow::Error::Input | snow::Error::Dh => {
                ProtocolError::HandshakeFailed
            }
            other => noise_internal(other),
        }
    }
}

pub(crate) fn noise_internal(e: snow::Error) -> ProtocolError {
    ProtocolError::Noise(e.to_string())
}

/// `DefaultResolver` for hashing and ciphers; our own RNG and DH.
struct AlliumResolver {
    /// Zeroized when taken or when the handshake is dropped unused: it
    /// determines the ephemeral key.
    seed: Mutex<Option<Zeroizing<[u8; 32]>>>,
    key_problem: KeyProblem,
}

impl CryptoResolver for AlliumResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        let seed = self.seed.lock().ok()?.take()?;
        Some(Box::new(SeededRng(ChaCha20Rng::from_seed(*seed))))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(CheckedX25519 {
                private: [0; 32],
                public: [0; 32],
                key_problem: self.key_problem.clone(),
            })),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

struct SeededRng(ChaCha20Rng);

impl Random for SeededRng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// X25519 that fails (instead of producing a predictable all-zero secret)
/// when the peer's public key has small order, and records which check
/// failed so the handshake can report it precisely.
struct CheckedX25519 {
    private: [u8; 32],
    public: [u8; 32],
    key_problem: KeyProblem,
}

impl Drop for CheckedX25519 {
    fn drop(&mut self) {
        self.private.zeroize();
    }
}

impl Dh for CheckedX25519 {
    fn name(&self) -> &'static str {
        "25519"
    }
    fn pub_len(&self) -> usize {
        32
    }
    fn priv_len(&self) -> usize {
        32
    }
    fn set(&mut self, privkey: &[u8]) {
        let n = privkey.len().min(32);
        self.private = [0; 32];
        self.private[..n].copy_from_slice(&privkey[..n]);
        self.public = MontgomeryPoint::mul_base_clamped(self.private).to_bytes();
    }
    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut k = [0u8; 32];
        rng.try_fill_bytes(&mut k)?;
        self.set(&k);
        k.zeroize();
        Ok(())
    }
    fn pubkey(&self) -> &[u8] {
        &self.public
    }
    fn privkey(&self) -> &[u8] {
        &self.private
    }
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let (Some(pk), Some(out)) = (pubkey.get(..32), out.get_mut(..32)) else {
            return Err(snow::Error::Dh);
        };
        let mut peer = [0u8; 32];
        peer.copy_from_slice(pk);
        let mut shared = MontgomeryPoint(peer).mul_clamped(self.private).to_bytes();
        // The clamped scalar is a multiple of the cofactor, so the result is
        // zero exactly when the peer's point has small order.
        if shared == [0u8; 32] {
            let problem = if peer == [0u8; 32] {
                ProtocolError::ZeroKey
            } else {
                ProtocolError::SmallOrderKey
            };
            if let Ok(mut slot) = self.key_problem.lock() {
                *slot = Some(problem);
            }
            return Err(snow::Error::Dh);
        }
        out.copy_from_slice(&shared);
        shared.zeroize();
        Ok(())
    }
}

/// The prologue for a hello header: domain || header bytes.
pub(crate) fn prologue(header: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(PROLOGUE_DOMAIN.len() + header.len());
    p.extend_from_slice(PROLOGUE_DOMAIN);
    p.extend_from_slice(header);
    p
}

#[cfg(test)]
mod tests {
    //! Our resolver (own DH, default hash and cipher) against the published
    //! Noise test vectors (cacophony) for the two patterns we use.
    use super::*;

    fn unhex(v: &serde_json::Value) -> Vec<u8> {
        hex::decode(v.as_str().unwrap_or_default()).expect("hex")
    }

    fn run_vector(v: &serde_json::Value) {
        let name = v["protocol_name"].as_str().expect("name");
        let mk = |initiator: bool| {
            let side = if initiator { "init" } else { "resp" };
            let resolver = AlliumResolver {
                seed: Mutex::new(Some(Zeroizing::new([0; 32]))),
                key_problem: KeyProblem::default(),
            };
            let mut b =
                snow::Builder::with_resolver(name.parse().expect("params"), Box::new(resolver));
            let prologue = unhex(&v[format!("{side}_prologue")]);
            let e = unhex(&v[format!("{side}_ephemeral")]);
            let s = unhex(&v[format!("{side}_static")]);
            let rs = v.get(format!("{side}_remote_static")).map(unhex);
            b = b.prologue(&prologue).expect("prologue");
            b = b.local_private_key(&s).expect("static");
            b = b.fixed_ephemeral_key_for_testing_only(&e);
            if let Some(rs) = &rs {
                b = b.remote_public_key(rs).expect("rs");
            }
            // `b` borrows the vectors above; finish building inside.
            if initiator {
                b.build_initiator()
            } else {
                b.build_responder()
            }
            .expect("build")
        };
        let mut init = mk(true);
        let mut resp = mk(false);
        let mut init_t = None;
        let mut resp_t = None;
        for (i, m) in v["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .enumerate()
        {
            let payload = unhex(&m["payload"]);
            let expected = unhex(&m["ciphertext"]);
            let mut buf = vec![0u8; 65535];
            let mut out = vec![0u8; 65535];
            let init_sends = i % 2 == 0;
            let n = match (init_sends, &mut init_t, &mut resp_t) {
                (true, None, _) => init.write_message(&payload, &mut buf),
                (false, _, None) => resp.write_message(&payload, &mut buf),
                (true, Some(t), _) => snow::TransportState::write_message(t, &payload, &mut buf),
                (false, _, Some(t)) => snow::TransportState::write_message(t, &payload, &mut buf),
            }
            .expect("write");
            assert_eq!(
                hex::encode(&buf[..n]),
                hex::encode(&expected),
                "{name} message {i}"
            );
            let r = match (init_sends, &mut init_t, &mut resp_t) {
                (true, _, None) => resp.read_message(&buf[..n], &mut out),
                (false, None, _) => init.read_message(&buf[..n], &mut out),
                (true, _, Some(t)) => snow::TransportState::read_message(t, &buf[..n], &mut out),
                (false, Some(t), _) => snow::TransportState::read_message(t, &buf[..n], &mut out),
            }
            .expect("read");
            assert_eq!(&out[..r], &payload[..]);
            if init_t.is_none() && init.is_handshake_finished() && resp.is_handshake_finished() {
                let i2 = std::mem::replace(&mut init, mk(true));
                let r2 = std::mem::replace(&mut resp, mk(false));
                init_t = Some(i2.into_transport_mode().expect("transport"));
                resp_t = Some(r2.into_transport_mode().expect("transport"));
            }
        }
    }

    #[test]
    fn published_noise_vectors() {
        let text = include_str!("../tests/vectors/noise/cacophony.json");
        let all: serde_json::Value = serde_json::from_str(text).expect("json");
        let vectors = all["vectors"].as_array().expect("array");
        let mut seen = Vec::new();
        for v in vectors {
            run_vector(v);
            seen.push(v["protocol_name"].as_str().unwrap_or_default().to_owned());
        }
        assert!(seen.contains(&INTAKE_PATTERN.to_owned()));
        assert!(seen.contains(&ENDPOINT_PATTERN.to_owned()));
    }
}
