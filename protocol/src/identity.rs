//! Long-term keys and the proof that binds a Noise static key to an onion
//! identity.
//!
//! The proof is an Ed25519 signature by the onion identity key over
//! `BINDING_DOMAIN || signer onion id || Noise static public key`. It names
//! nothing else: not the peer, not the time, not the transcript. Anyone can
//! be shown it, and it only says "this onion identity uses this static key",
//! which is what makes a conversation deniable (PROTOCOL.md §7).

use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signer, SigningKey};
use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::address::OnionId;
use crate::error::ProtocolError;

/// Domain separation for identity proofs; never reused for anything else.
pub const BINDING_DOMAIN: &[u8] = b"allium/v1/static-key-binding\0";

/// An onion service identity keypair (Ed25519). Holds the 32-byte seed; the
/// onion layer derives Tor's expanded key from the same seed.
#[derive(Clone, ZeroizeOnDrop)]
pub struct IdentityKey {
    signing: SigningKey,
}

impl IdentityKey {
    /// A fresh random identity.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let key = Self::from_seed(&seed);
        seed.zeroize();
        key
    }

    /// Rebuilds an identity from its stored seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        IdentityKey {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The secret seed, for the vault. Handle with care.
    pub fn seed(&self) -> &[u8; 32] {
        self.signing.as_bytes()
    }

    /// The public onion identity.
    pub fn onion_id(&self) -> OnionId {
        // A public key derived from a clamped secret scalar is a valid point
        // of large order, so the checks of `OnionId::from_bytes` hold.
        OnionId::from_derived(self.signing.verifying_key().to_bytes())
    }

    /// Signs the binding of `static_key` to this identity.
    pub fn prove(&self, static_key: &StaticPublicKey) -> IdentityProof {
        let signer = self.onion_id();
        let sig = self.signing.sign(&binding_statement(&signer, static_key));
        IdentityProof {
            signer,
            signature: sig.to_bytes(),
        }
    }
}

fn binding_statement(signer: &OnionId, static_key: &StaticPublicKey) -> Vec<u8> {
    let mut m = Vec::with_capacity(BINDING_DOMAIN.len() + 64);
    m.extend_from_slice(BINDING_DOMAIN);
    m.extend_from_slice(signer.as_bytes());
    m.extend_from_slice(&static_key.0);
    m
}

/// A Noise static keypair (X25519). One per profile.
#[derive(Clone, ZeroizeOnDrop)]
pub struct StaticKeypair {
    secret: [u8; 32],
    #[zeroize(skip)]
    public: StaticPublicKey,
}

impl StaticKeypair {
    /// A fresh random static key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let key = Self::from_secret(&secret);
        secret.zeroize();
        key
    }

    /// Rebuilds a keypair from its stored secret.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let public = MontgomeryPoint::mul_base_clamped(*secret).to_bytes();
        StaticKeypair {
            secret: *secret,
            public: StaticPublicKey(public),
        }
    }

    /// The secret, for the vault and for Noise.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The public half.
    pub fn public(&self) -> StaticPublicKey {
        self.public
    }
}

/// A Noise static public key (X25519 u-coordinate).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct StaticPublicKey(pub [u8; 32]);

impl StaticPublicKey {
    /// Accepts a peer's key after rejecting all-zero and small-order values.
    pub fn from_peer(bytes: [u8; 32]) -> Result<Self, ProtocolError> {
        check_public_key(&bytes)?;
        Ok(StaticPublicKey(bytes))
    }
}

/// A signed binding of a static key to an onion identity, as carried in the
/// intake handshake: the signer's id (32 bytes) then the signature (64).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityProof {
    /// Who signed.
    pub signer: OnionId,
    /// Ed25519 signature over the binding statement.
    pub signature: [u8; 64],
}

/// Encoded size of an [`IdentityProof`].
pub const PROOF_LEN: usize = 96;

impl IdentityProof {
    /// Checks that `expected` signed the binding of `static_key`.
    ///
    /// The signer is compared before the signature is checked so that a valid
    /// proof by the wrong identity gets its own error.
    pub fn verify(
        &self,
        expected: &OnionId,
        static_key: &StaticPublicKey,
    ) -> Result<(), ProtocolError> {
        if &self.signer != expected {
            return Err(ProtocolError::IdentityMismatch);
        }
        let key = expected
            .verifying_key()
            .ok_or(ProtocolError::BadIdentityProof)?;
        let sig = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.verify_strict(&binding_statement(expected, static_key), &sig)
            .map_err(|_| ProtocolError::BadIdentityProof)
    }

    /// Wire encoding.
    pub fn to_bytes(&self) -> [u8; PROOF_LEN] {
        let mut out = [0u8; PROOF_LEN];
        out[..32].copy_from_slice(self.signer.as_bytes());
        out[32..].copy_from_slice(&self.signature);
        out
    }

    /// Parses the wire encoding; the signer must be a valid identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let bytes: &[u8; PROOF_LEN] = bytes.try_into().map_err(|_| {
            ProtocolError::MalformedHandshake("identity proof has the wrong length")
        })?;
        let mut signer = [0u8; 32];
        signer.copy_from_slice(&bytes[..32]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[32..]);
        Ok(IdentityProof {
            signer: OnionId::from_bytes(signer).map_err(ProtocolError::InvalidIdentity)?,
            signature,
        })
    }
}

/// Rejects X25519 public keys that make Diffie-Hellman non-contributory: all
/// zeros ([`ProtocolError::ZeroKey`]) and every other point whose order
/// divides the cofactor, on the curve or its twist
/// ([`ProtocolError::SmallOrderKey`]).
///
/// Those are exactly seven values once bit 255 (ignored by X25519) is
/// cleared: 0, 1, the two points of order 8, and p-1, p, p+1 (libsodium's
/// list; any other non-canonical encoding would need more than 255 bits).
/// The test `table_matches_scalar_multiplication` checks the table against
/// the definition. Comparing costs nanoseconds where a scalar
/// multiplication costs tens of microseconds per key.
pub fn check_public_key(bytes: &[u8; 32]) -> Result<(), ProtocolError> {
    if bytes.iter().all(|b| *b == 0) {
        return Err(ProtocolError::ZeroKey);
    }
    let mut masked = *bytes;
    masked[31] &= 0x7f;
    let mut small = subtle::Choice::from(0);
    for bad in &SMALL_ORDER {
        small |= masked.ct_eq(bad);
    }
    if bool::from(small) {
        return Err(ProtocolError::SmallOrderKey);
    }
    Ok(())
}

const SMALL_ORDER: [[u8; 32]; 7] = [
    // 0
    [0; 32],
    // 1
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    // order 8
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
        0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
        0xb8, 0x00,
    ],
    // order 8
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
        0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
        0x11, 0x57,
    ],
    // p - 1
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p + 1
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn proof_verifies_only_for_its_signer_and_key() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let alice = IdentityKey::generate(&mut rng);
        let bob = IdentityKey::generate(&mut rng);
        let s1 = StaticKeypair::generate(&mut rng).public();
        let s2 = StaticKeypair::generate(&mut rng).public();
        let proof = alice.prove(&s1);
        assert_eq!(proof.verify(&alice.onion_id(), &s1), Ok(()));
        assert_eq!(
            proof.verify(&bob.onion_id(), &s1),
            Err(ProtocolError::IdentityMismatch)
        );
        assert_eq!(
            proof.verify(&alice.onion_id(), &s2),
            Err(ProtocolError::BadIdentityProof)
        );
        let round = IdentityProof::from_bytes(&proof.to_bytes()).expect("parses");
        assert_eq!(round, proof);
    }

    #[test]
    fn proof_for_another_domain_is_rejected() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let alice = IdentityKey::generate(&mut rng);
        let s = StaticKeypair::generate(&mut rng).public();
        let mut m = b"gosling-identity-proof\0".to_vec();
        m.extend_from_slice(alice.onion_id().as_bytes());
        m.extend_from_slice(&s.0);
        let forged = IdentityProof {
            signer: alice.onion_id(),
            signature: alice.signing.sign(&m).to_bytes(),
        };
        assert_eq!(
            forged.verify(&alice.onion_id(), &s),
            Err(ProtocolError::BadIdentityProof)
        );
    }

    #[test]
    fn small_order_keys_are_rejected() {
        assert_eq!(check_public_key(&[0; 32]), Err(ProtocolError::ZeroKey));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(check_public_key(&one), Err(ProtocolError::SmallOrderKey));
        // The order-8 points (libsodium's blocklist), p-1, p and p+1, and
        // the same with the ignored top bit set.
        let order8 = hex32("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800");
        let order8b = hex32("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157");
        let mut p_minus_1 = [0xff; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        let mut p = p_minus_1;
        p[0] = 0xed;
        let mut p_plus_1 = p_minus_1;
        p_plus_1[0] = 0xee;
        for k in [order8, order8b, p_minus_1, p, p_plus_1] {
            assert_eq!(check_public_key(&k), Err(ProtocolError::SmallOrderKey));
            let mut high = k;
            high[31] |= 0x80;
            assert_eq!(check_public_key(&high), Err(ProtocolError::SmallOrderKey));
        }
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        assert_eq!(
            check_public_key(&StaticKeypair::generate(&mut rng).public().0),
            Ok(())
        );
    }

    /// The definition: a clamped scalar (a multiple of 8) sends exactly the
    /// small-order points to zero. Every table entry must, and random keys
    /// and near misses must not.
    #[test]
    fn table_matches_scalar_multiplication() {
        let by_definition =
            |k: &[u8; 32]| MontgomeryPoint(*k).mul_clamped([0x55; 32]).to_bytes() == [0u8; 32];
        for bad in &SMALL_ORDER {
            assert!(by_definition(bad));
            let mut high = *bad;
            high[31] |= 0x80;
            assert!(by_definition(&high));
        }
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        for _ in 0..2000 {
            let mut k = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut rng, &mut k);
            assert_eq!(check_public_key(&k).is_err(), by_definition(&k), "{k:02x?}");
        }
        for bad in &SMALL_ORDER {
            for i in 0..32 {
                let mut near = *bad;
                near[i] ^= 1;
                if !SMALL_ORDER.contains(&near) && near != [0; 32] {
                    assert_eq!(check_public_key(&near).is_err(), by_definition(&near));
                }
            }
        }
    }

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).expect("hex").try_into().expect("32 bytes")
    }
}
