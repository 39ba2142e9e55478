//! Onion identities and the address forms people exchange.
//!
//! An Allium address is a Tor v3 onion service id: the 32-byte Ed25519 public
//! key, a 2-byte checksum and the version byte 3, in lowercase base32
//! (56 characters). People see it as `allium:<id>`; the bare id and
//! `<id>.onion` are accepted too. This module owns parsing and display; it
//! never logs an address (callers wrap it in `safelog` where they log).

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;
use sha3::{Digest, Sha3_256};

use crate::error::AddressError;

/// The URI-like prefix of an address as shown to people.
pub const ADDRESS_PREFIX: &str = "allium:";
/// Number of base32 characters of a v3 onion id.
pub const ONION_ID_CHARS: usize = 56;
const ONION_VERSION: u8 = 3;

/// A validated v3 onion service identity: an Ed25519 public key that is a
/// valid, non-weak curve point.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OnionId([u8; 32]);

impl OnionId {
    /// Accepts raw key bytes (from the wire or from a key we hold) after
    /// checking that they are a valid, non-weak Ed25519 point.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, AddressError> {
        let point = curve25519_dalek::edwards::CompressedEdwardsY(bytes)
            .decompress()
            .ok_or(AddressError::InvalidKey)?;
        // One point, one encoding: reject y ≥ p and a set sign bit with
        // x = 0, so that two different addresses never name the same key.
        if point.compress().to_bytes() != bytes {
            return Err(AddressError::NonCanonicalKey);
        }
        if point.is_small_order() {
            return Err(AddressError::WeakKey);
        }
        Ok(OnionId(bytes))
    }

    /// For a public key derived from a secret we hold (always valid).
    pub(crate) fn from_derived(bytes: [u8; 32]) -> Self {
        OnionId(bytes)
    }

    /// The Ed25519 public key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The verifying key. Infallible: validated on construction.
    pub(crate) fn verifying_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).ok()
    }

    /// The 56-character lowercase base32 id, without prefix or suffix.
    pub fn to_onion_id_string(&self) -> String {
        let mut raw = [0u8; 35];
        raw[..32].copy_from_slice(&self.0);
        raw[32..34].copy_from_slice(&checksum(&self.0, ONION_VERSION));
        raw[34] = ONION_VERSION;
        BASE32_NOPAD.encode(&raw).to_ascii_lowercase()
    }

    /// The `.onion` host name Tor dials.
    pub fn to_onion_host(&self) -> String {
        format!("{}.onion", self.to_onion_id_string())
    }

    /// The form shown to people: `allium:` + the id.
    pub fn to_address(&self) -> String {
        format!("{ADDRESS_PREFIX}{}", self.to_onion_id_string())
    }

    /// Parses any accepted form: `allium:<id>`, `<id>`, `<id>.onion`, with
    /// surrounding whitespace ignored and any letter case.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        let s = strip_prefix_ignore_case(s, ADDRESS_PREFIX).unwrap_or(s);
        let s = strip_suffix_ignore_case(s, ".onion").unwrap_or(s);
        if s.chars().count() != ONION_ID_CHARS {
            return Err(AddressError::WrongLength(s.chars().count()));
        }
        let upper = s.to_ascii_uppercase();
        let raw = BASE32_NOPAD
            .decode(upper.as_bytes())
            .map_err(|_| AddressError::InvalidCharacter)?;
        let raw: [u8; 35] = raw.try_into().map_err(|_| AddressError::InvalidCharacter)?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&raw[..32]);
        // The checksum covers the version byte, so check it first: a typo
        // anywhere reads as a typo, and only a well-formed address of
        // another version reads as one.
        let version = raw[34];
        if raw[32..34] != checksum(&key, version) {
            return Err(AddressError::BadChecksum);
        }
        if version != ONION_VERSION {
            return Err(AddressError::UnsupportedVersion(version));
        }
        OnionId::from_bytes(key)
    }
}

/// The v3 checksum: SHA3-256(".onion checksum" || key || version)[..2]
/// (Tor's rend-spec-v3, "Encoding onion addresses").
fn checksum(key: &[u8; 32], version: u8) -> [u8; 2] {
    let mut h = Sha3_256::new();
    h.update(b".onion checksum");
    h.update(key);
    h.update([version]);
    let d = h.finalize();
    [d[0], d[1]]
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..cut])
}

impl FromStr for OnionId {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OnionId::parse(s)
    }
}

/// Shows the full `allium:` address. Callers must not pass it to a log at
/// info level or above unredacted.
impl fmt::Display for OnionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_address())
    }
}

/// Debug output is redacted so that a stray `{:?}` cannot leak an address.
impl fmt::Debug for OnionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.to_onion_id_string();
        write!(f, "OnionId({}…)", id.get(..4).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The onion id of Tor's rend-spec-v3 test vector key
    // ("Encoding onion addresses" example) is not published with its key, so
    // check against a key we derive and against C tor's encoding rules.
    fn sample() -> OnionId {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        OnionId::from_bytes(sk.verifying_key().to_bytes()).expect("valid key")
    }

    #[test]
    fn round_trips_every_form() {
        let id = sample();
        let bare = id.to_onion_id_string();
        assert_eq!(bare.len(), 56);
        assert!(bare.ends_with('d'), "v3 ids end in 'd' (version 3)");
        for form in [
            id.to_address(),
            bare.clone(),
            format!("{bare}.onion"),
            format!("  ALLIUM:{}  ", bare.to_uppercase()),
            format!("{}.ONION", bare.to_uppercase()),
        ] {
            assert_eq!(OnionId::parse(&form), Ok(id), "{form}");
        }
    }

    #[test]
    fn rejects_bad_addresses_with_exact_errors() {
        let bare = sample().to_onion_id_string();
        assert_eq!(OnionId::parse("   "), Err(AddressError::Empty));
        assert_eq!(
            OnionId::parse("allium:abc"),
            Err(AddressError::WrongLength(3))
        );
        assert_eq!(
            OnionId::parse(&format!("{bare}x")),
            Err(AddressError::WrongLength(57))
        );
        let mut bad_char = bare.clone();
        bad_char.replace_range(0..1, "1");
        assert_eq!(
            OnionId::parse(&bad_char),
            Err(AddressError::InvalidCharacter)
        );
        let mut typo = bare.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).expect("ascii");
        assert_eq!(OnionId::parse(&typo), Err(AddressError::BadChecksum));
        // A multi-byte character must not be sliced in the middle.
        let emoji = format!("{}é", &bare[..55]);
        assert_eq!(OnionId::parse(&emoji), Err(AddressError::InvalidCharacter));
    }

    fn encode_raw(key: [u8; 32], version: u8) -> String {
        let fix_checksum = true;
        let mut raw = [0u8; 35];
        raw[..32].copy_from_slice(&key);
        if fix_checksum {
            raw[32..34].copy_from_slice(&checksum(&key, version));
        }
        raw[34] = version;
        BASE32_NOPAD.encode(&raw).to_ascii_lowercase()
    }

    #[test]
    fn rejects_wrong_version() {
        let key = *sample().as_bytes();
        assert_eq!(
            OnionId::parse(&encode_raw(key, 2)),
            Err(AddressError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn rejects_weak_and_invalid_keys() {
        // The identity point (y = 1) is small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            OnionId::parse(&encode_raw(identity, 3)),
            Err(AddressError::WeakKey)
        );
        // y = 2 is not on the curve.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert_eq!(
            OnionId::parse(&encode_raw(off_curve, 3)),
            Err(AddressError::InvalidKey)
        );
    }

    #[test]
    fn rejects_non_canonical_encodings() {
        // y = p + 1 encodes the same point as y = 1 (weak anyway), and
        // y = p + 3 ... p + 18 are non-canonical encodings of small y.
        let mut found = 0;
        for extra in 0u8..19 {
            let mut y = [0xffu8; 32];
            y[31] = 0x7f;
            y[0] = 0xed + extra; // p + extra, little-endian, fits below 2^255
            if extra > 18 {
                continue;
            }
            for sign in [0u8, 0x80] {
                let mut b = y;
                b[31] |= sign;
                match OnionId::from_bytes(b) {
                    Err(AddressError::NonCanonicalKey) => found += 1,
                    Err(AddressError::InvalidKey | AddressError::WeakKey) => {}
                    other => panic!("p+{extra} sign {sign}: {other:?}"),
                }
            }
        }
        assert!(found > 0, "some non-canonical encodings decode to points");
        // Through the text form too.
        let mut y = [0xffu8; 32];
        y[31] = 0x7f;
        y[0] = 0xed + 3;
        if OnionId::from_bytes(y) == Err(AddressError::NonCanonicalKey) {
            assert_eq!(
                OnionId::parse(&encode_raw(y, 3)),
                Err(AddressError::NonCanonicalKey)
            );
        }
    }

    #[test]
    fn debug_is_redacted() {
        let id = sample();
        let dbg = format!("{id:?}");
        assert!(!dbg.contains(&id.to_onion_id_string()));
    }
}
