//! The vault file format: sealing a [`Profile`] into bytes and opening it
//! again. No I/O happens here; `vault.rs` reads and writes the files.
//!
//! This module owns the key derivation (Argon2id), the passphrase check, the
//! encryption (XChaCha20-Poly1305), the padding and the checksum. It must
//! never hand out plaintext except as a parsed [`Profile`], never keep a
//! plaintext buffer that is not wiped on drop, and never run Argon2 on
//! parameters read from a file before bounding them. The byte layout is
//! documented in the crate README.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::profile::Profile;

/// The first eight bytes of every vault file.
pub const MAGIC: [u8; 8] = *b"ALLIUMV\0";
/// The file layout this build writes. Versions 2 to 4 have version 1's
/// layout; their profiles may hold fields older versions do not know
/// (2: `Contact::unsynced_from`; 3: `Profile::blocked_names`,
/// `Contact::verified`, `Contact::peer_keeps_history`,
/// `Settings::auto_lock_minutes`; 4: `Settings::download_folder`), so an
/// older build must refuse them.
pub const FORMAT_VERSION: u16 = 4;
/// The oldest version this build still reads (same layout; the profile's
/// newer fields take their defaults).
const OLDEST_READABLE: u16 = 1;
/// KDF identifier for Argon2id, version 0x13.
const KDF_ARGON2ID_V13: u8 = 1;

const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const CHECK_LEN: usize = 32;
const TAG_LEN: usize = 16;
const CHECKSUM_LEN: usize = 32;
/// Bytes of the plaintext length prefix inside the encrypted body.
const LEN_PREFIX: usize = 8;

// Offsets of the header fields (see the README's table).
const OFF_VERSION: usize = 8;
const OFF_KDF: usize = 10;
const OFF_MEMORY: usize = 11;
const OFF_PASSES: usize = 15;
const OFF_LANES: usize = 19;
const OFF_SALT: usize = 23;
const OFF_NONCE: usize = OFF_SALT + SALT_LEN;
const OFF_CHECK: usize = OFF_NONCE + NONCE_LEN;
const OFF_BODY_LEN: usize = OFF_CHECK + CHECK_LEN;
/// Length of the header: everything the AEAD authenticates as associated
/// data, up to and including the body length.
pub const HEADER_LEN: usize = OFF_BODY_LEN + 8;

/// The smallest padded plaintext: a near-empty profile and one with a few
/// contacts have the same file size.
const MIN_PADDED: usize = 16 * 1024;

/// What the passphrase check authenticates under the check key. Fixed, so
/// the check says nothing but "this passphrase and salt derive this key".
const CHECK_LABEL: &[u8] = b"allium vault passphrase check v1";

/// Argon2id parameters, stored in each vault's header so that the defaults
/// can be raised later without breaking older vaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Number of passes over the memory.
    pub passes: u32,
    /// Degree of parallelism (lanes).
    pub lanes: u32,
}

impl KdfParams {
    /// The most memory a vault may ask for (4 GiB): a crafted header cannot
    /// make opening it allocate more.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// The most passes a vault may ask for.
    pub const MAX_PASSES: u32 = 100;
    /// The most lanes a vault may ask for.
    pub const MAX_LANES: u32 = 16;

    /// Parameters within the accepted bounds: 1 to 16 lanes, 1 to 100
    /// passes, at least 8 KiB of memory per lane and at most 4 GiB.
    pub fn new(memory_kib: u32, passes: u32, lanes: u32) -> Result<Self, VaultError> {
        let params = KdfParams {
            memory_kib,
            passes,
            lanes,
        };
        if params.in_bounds() {
            Ok(params)
        } else {
            Err(VaultError::InvalidKdfParams)
        }
    }

    /// The smallest parameters Argon2 allows (8 KiB, 1 pass, 1 lane), so
    /// that tests which open thousands of vaults run fast. **Never use them
    /// for a real profile**: they make guessing the passphrase cheap.
    pub fn insecure_for_tests() -> Self {
        KdfParams {
            memory_kib: 8,
            passes: 1,
            lanes: 1,
        }
    }

    fn in_bounds(&self) -> bool {
        (1..=Self::MAX_LANES).contains(&self.lanes)
            && (1..=Self::MAX_PASSES).contains(&self.passes)
            && self.memory_kib <= Self::MAX_MEMORY_KIB
            && u64::from(self.memory_kib) >= 8 * u64::from(self.lanes)
    }
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane. One lane because this build of Argon2
    /// computes lanes one after another: more lanes would cost us the same
    /// time and save an attacker with parallel hardware time.
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            passes: 3,
            lanes: 1,
        }
    }
}

/// The key a vault is sealed with, derived once per unlock so that saves
/// need not rerun Argon2. The encryption key is wiped on drop.
pub(crate) struct VaultKey {
    params: KdfParams,
    salt: [u8; SALT_LEN],
    enc_key: Zeroizing<[u8; 32]>,
    check: [u8; CHECK_LEN],
}

impl VaultKey {
    /// Derives a key under a fresh random salt (new vault, new passphrase).
    pub(crate) fn generate(passphrase: &[u8], params: KdfParams) -> Result<Self, VaultError> {
        if !params.in_bounds() {
            return Err(VaultError::InvalidKdfParams);
        }
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        derive(passphrase, params, salt)
    }

    /// Whether `passphrase` is the one this key was derived from (reruns
    /// Argon2 with the same salt and parameters).
    pub(crate) fn matches(&self, passphrase: &[u8]) -> Result<bool, VaultError> {
        let other = derive(passphrase, self.params, self.salt)?;
        Ok(check_eq(&other.check, &self.check))
    }

    pub(crate) fn params(&self) -> KdfParams {
        self.params
    }
}

fn fill_random(buf: &mut [u8]) -> Result<(), VaultError> {
    OsRng.try_fill_bytes(buf).map_err(|e| VaultError::Io {
        doing: "getting random numbers from the system",
        source: std::sync::Arc::new(std::io::Error::other(e.to_string())),
    })
}

/// Random bytes for names of temporary files.
pub(crate) fn random_hex(bytes: usize) -> Result<String, VaultError> {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf)?;
    Ok(hex::encode(buf))
}

/// Argon2id(passphrase, salt) → 64 bytes: the first half encrypts, the
/// second half keys the passphrase check.
fn derive(
    passphrase: &[u8],
    params: KdfParams,
    salt: [u8; SALT_LEN],
) -> Result<VaultKey, VaultError> {
    let argon_params = Params::new(params.memory_kib, params.passes, params.lanes, Some(64))
        .map_err(|_| VaultError::InvalidKdfParams)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut out = Zeroizing::new([0u8; 64]);
    argon
        .hash_password_into(passphrase, &salt, &mut out[..])
        .map_err(|_| VaultError::InvalidKdfParams)?;
    let mut enc_key = Zeroizing::new([0u8; 32]);
    enc_key.copy_from_slice(&out[..32]);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&out[32..])
        .map_err(|_| VaultError::InvalidKdfParams)?;
    mac.update(CHECK_LABEL);
    let check: [u8; CHECK_LEN] = mac.finalize().into_bytes().into();
    Ok(VaultKey {
        params,
        salt,
        enc_key,
        check,
    })
}

/// Constant-time comparison, so that timing says nothing about how much of
/// a guess matched.
fn check_eq(a: &[u8; CHECK_LEN], b: &[u8; CHECK_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The padded plaintext length for `len` bytes of content: at least
/// 16 KiB, then Padmé (Nikitin et al., "Reducing metadata leakage from
/// encrypted files and communication with PURBs", 2019): the length is
/// rounded up so that only its top bits vary, at most 12 % overhead, and
/// the file size reveals O(log log n) bits about the content size.
pub(crate) fn padded_len(len: usize) -> usize {
    if len <= MIN_PADDED {
        return MIN_PADDED;
    }
    let e = usize::BITS - 1 - len.leading_zeros(); // floor(log2 len)
    let s = u32::BITS - e.leading_zeros(); // floor(log2 e) + 1
    let last_bits = e - s;
    let mask = (1usize << last_bits) - 1;
    (len + mask) & !mask
}

/// Counts what serde_json would write, so that the plaintext buffer can be
/// allocated once at its final size and never reallocated (a reallocation
/// would leave a copy of the plaintext in freed memory).
struct CountingWriter(usize);

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Seals `profile` under `key` with a fresh nonce: the complete file
/// contents. The returned buffer holds only ciphertext, but it is wiped on
/// drop anyway (it held plaintext while being encrypted in place).
pub(crate) fn seal(key: &VaultKey, profile: &Profile) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    seal_as(key, profile, FORMAT_VERSION)
}

fn seal_as(
    key: &VaultKey,
    profile: &Profile,
    version: u16,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let mut counter = CountingWriter(0);
    serde_json::to_writer(&mut counter, profile).map_err(|_| VaultError::Corrupted)?;
    let json_len = counter.0;
    let padded = padded_len(LEN_PREFIX + json_len);
    let body_len = padded + TAG_LEN;
    let total = HEADER_LEN + body_len + CHECKSUM_LEN;

    let mut buf = Zeroizing::new(Vec::with_capacity(total));
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&version.to_be_bytes());
    buf.push(KDF_ARGON2ID_V13);
    buf.extend_from_slice(&key.params.memory_kib.to_be_bytes());
    buf.extend_from_slice(&key.params.passes.to_be_bytes());
    buf.extend_from_slice(&key.params.lanes.to_be_bytes());
    buf.extend_from_slice(&key.salt);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    buf.extend_from_slice(&nonce);
    buf.extend_from_slice(&key.check);
    buf.extend_from_slice(&(body_len as u64).to_be_bytes());
    debug_assert_eq!(buf.len(), HEADER_LEN);

    buf.extend_from_slice(&(json_len as u64).to_be_bytes());
    serde_json::to_writer(&mut *buf, profile).map_err(|_| VaultError::Corrupted)?;
    if buf.len() != HEADER_LEN + LEN_PREFIX + json_len {
        // The two serializations disagreed; never write such a file.
        return Err(VaultError::Corrupted);
    }
    buf.resize(HEADER_LEN + padded, 0);

    let cipher = XChaCha20Poly1305::new((&*key.enc_key).into());
    let (header, body) = buf.split_at_mut(HEADER_LEN);
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), header, body)
        .map_err(|_| VaultError::Corrupted)?;
    buf.extend_from_slice(&tag);
    let checksum = Sha256::digest(&buf[..]);
    buf.extend_from_slice(&checksum);
    debug_assert_eq!(buf.len(), total);
    Ok(buf)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(b)
}

/// Opens a sealed vault: the profile and the key to seal it again.
///
/// Checks run cheapest first and each failure has its own error: marker,
/// version, length, checksum (accidental damage) and parameter bounds all
/// before Argon2 runs; then the passphrase check; then authenticated
/// decryption (deliberate tampering); then the JSON.
pub(crate) fn open(bytes: &[u8], passphrase: &[u8]) -> Result<(VaultKey, Profile), VaultError> {
    let magic_seen = bytes.len().min(MAGIC.len());
    if bytes[..magic_seen] != MAGIC[..magic_seen] {
        return Err(VaultError::Corrupted);
    }
    if bytes.len() < OFF_KDF {
        return Err(VaultError::Truncated);
    }
    let version = u16::from_be_bytes([bytes[OFF_VERSION], bytes[OFF_VERSION + 1]]);
    if version > FORMAT_VERSION {
        return Err(VaultError::NewerVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version < OLDEST_READABLE {
        return Err(VaultError::Corrupted);
    }
    if bytes.len() < HEADER_LEN {
        return Err(VaultError::Truncated);
    }
    let mut body_len_bytes = [0u8; 8];
    body_len_bytes.copy_from_slice(&bytes[OFF_BODY_LEN..HEADER_LEN]);
    let body_len = u64::from_be_bytes(body_len_bytes);
    // Bounded by the file's real length before anything is allocated.
    let available = (bytes.len() - HEADER_LEN) as u64;
    let expected = body_len.checked_add(CHECKSUM_LEN as u64);
    match expected {
        Some(n) if n == available => {}
        Some(n) if n > available => return Err(VaultError::Truncated),
        None => return Err(VaultError::Truncated),
        Some(_) => return Err(VaultError::Corrupted),
    }
    let body_len = body_len as usize; // ≤ the file length, so it fits
    let (sealed, checksum) = bytes.split_at(HEADER_LEN + body_len);
    if Sha256::digest(sealed)[..] != checksum[..] {
        return Err(VaultError::Corrupted);
    }
    // From here the header is what Allium wrote, unless someone rewrote the
    // checksum too; bounds still apply.
    if bytes[OFF_KDF] != KDF_ARGON2ID_V13 || body_len < TAG_LEN + LEN_PREFIX {
        return Err(VaultError::Corrupted);
    }
    let params = KdfParams::new(
        be_u32(bytes, OFF_MEMORY),
        be_u32(bytes, OFF_PASSES),
        be_u32(bytes, OFF_LANES),
    )
    .map_err(|_| VaultError::Corrupted)?;
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&bytes[OFF_SALT..OFF_NONCE]);
    let mut stored_check = [0u8; CHECK_LEN];
    stored_check.copy_from_slice(&bytes[OFF_CHECK..OFF_BODY_LEN]);

    let key = derive(passphrase, params, salt).map_err(|_| VaultError::Corrupted)?;
    if !check_eq(&key.check, &stored_check) {
        return Err(VaultError::WrongPassphrase);
    }

    let header = &bytes[..HEADER_LEN];
    let nonce = XNonce::from_slice(&bytes[OFF_NONCE..OFF_CHECK]);
    let ciphertext = &sealed[HEADER_LEN..HEADER_LEN + body_len - TAG_LEN];
    let tag = Tag::from_slice(&sealed[HEADER_LEN + body_len - TAG_LEN..]);
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    let cipher = XChaCha20Poly1305::new((&*key.enc_key).into());
    cipher
        .decrypt_in_place_detached(nonce, header, &mut plain[..], tag)
        .map_err(|_| VaultError::Tampered)?;

    let mut len_bytes = [0u8; LEN_PREFIX];
    len_bytes.copy_from_slice(&plain[..LEN_PREFIX]);
    let json_len = u64::from_be_bytes(len_bytes);
    let json_end = (json_len as u128) + LEN_PREFIX as u128;
    if json_end > plain.len() as u128 {
        return Err(VaultError::Corrupted);
    }
    let json = &plain[LEN_PREFIX..json_end as usize];
    // serde_json's error text can quote the input, which is secret: drop it.
    let profile: Profile = serde_json::from_slice(json).map_err(|_| VaultError::Corrupted)?;
    Ok((key, profile))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{ProfileKeys, Secret32};

    const PASS: &[u8] = b"correct horse battery staple";

    fn small_profile() -> Profile {
        let mut p = Profile::new(ProfileKeys {
            intake_seed: Secret32([1; 32]),
            endpoint_seed: Secret32([2; 32]),
            static_secret: Secret32([3; 32]),
        });
        p.settings.display_name = "tiny".into();
        p
    }

    fn sealed() -> (VaultKey, Vec<u8>) {
        let key = VaultKey::generate(PASS, KdfParams::insecure_for_tests()).unwrap();
        let bytes = seal(&key, &small_profile()).unwrap().to_vec();
        (key, bytes)
    }

    /// Rewrites the trailing checksum, as someone who edits the file on
    /// purpose would.
    fn fix_checksum(bytes: &mut [u8]) {
        let n = bytes.len() - CHECKSUM_LEN;
        let sum = Sha256::digest(&bytes[..n]);
        bytes[n..].copy_from_slice(&sum);
    }

    fn open_err(bytes: &[u8]) -> VaultError {
        match open(bytes, PASS) {
            Ok(_) => panic!("a damaged vault opened"),
            Err(e) => e,
        }
    }

    #[test]
    fn seals_and_opens() {
        let (_, bytes) = sealed();
        let (key, profile) = open(&bytes, PASS).unwrap();
        assert_eq!(profile, small_profile());
        assert_eq!(key.params(), KdfParams::insecure_for_tests());
        assert_eq!(
            bytes.len(),
            HEADER_LEN + MIN_PADDED + TAG_LEN + CHECKSUM_LEN
        );
    }

    #[test]
    fn every_bit_flip_is_rejected_with_the_right_error() {
        let (_, bytes) = sealed();
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                let err = open_err(&damaged);
                let ok = match at {
                    OFF_VERSION..OFF_KDF => {
                        matches!(err, VaultError::NewerVersion { .. } | VaultError::Corrupted)
                    }
                    OFF_BODY_LEN..HEADER_LEN => {
                        matches!(err, VaultError::Truncated | VaultError::Corrupted)
                    }
                    _ => matches!(err, VaultError::Corrupted),
                };
                assert!(ok, "flipping bit {bit} of byte {at} gave {err:?}");
            }
        }
    }

    #[test]
    fn every_truncation_is_reported_as_truncated() {
        let (_, bytes) = sealed();
        for len in 0..bytes.len() {
            let err = open_err(&bytes[..len]);
            assert!(
                matches!(err, VaultError::Truncated),
                "length {len} gave {err:?}"
            );
        }
    }

    #[test]
    fn extra_bytes_are_corruption() {
        let (_, mut bytes) = sealed();
        bytes.push(0);
        assert!(matches!(open_err(&bytes), VaultError::Corrupted));
    }

    #[test]
    fn wrong_passphrase_is_told_apart() {
        let (_, bytes) = sealed();
        assert!(matches!(
            open(&bytes, b"correct horse battery stapler"),
            Err(VaultError::WrongPassphrase)
        ));
        assert!(matches!(
            open(&bytes, b""),
            Err(VaultError::WrongPassphrase)
        ));
    }

    #[test]
    fn a_version_1_file_still_opens() {
        let key = VaultKey::generate(PASS, KdfParams::insecure_for_tests()).unwrap();
        let bytes = seal_as(&key, &small_profile(), 1).unwrap();
        assert_eq!(u16::from_be_bytes([bytes[8], bytes[9]]), 1);
        let (_, profile) = open(&bytes, PASS).expect("a version-1 vault opens");
        assert_eq!(profile.contacts.len(), small_profile().contacts.len());
    }

    #[test]
    fn newer_version_is_told_apart() {
        let newer = FORMAT_VERSION + 1;
        let (_, mut bytes) = sealed();
        bytes[OFF_VERSION..OFF_KDF].copy_from_slice(&newer.to_be_bytes());
        // A newer layout need not have our checksum where we expect it.
        let err = open_err(&bytes);
        assert!(
            matches!(
                err,
                VaultError::NewerVersion {
                    found,
                    supported: FORMAT_VERSION
                } if found == newer
            ),
            "{err:?}"
        );
        // Reported even when the rest is shorter than our header.
        assert!(matches!(
            open_err(&bytes[..OFF_KDF]),
            VaultError::NewerVersion { found, .. } if found == newer
        ));
    }

    #[test]
    fn other_files_are_corruption_not_vaults() {
        assert!(matches!(open_err(b"{\"keys\": 1}"), VaultError::Corrupted));
        assert!(matches!(open_err(&[0u8; 300]), VaultError::Corrupted));
    }

    #[test]
    fn edited_ciphertext_with_a_fixed_checksum_is_tampering() {
        let (_, bytes) = sealed();
        for at in [
            HEADER_LEN,
            HEADER_LEN + 1000,
            bytes.len() - CHECKSUM_LEN - 1,
        ] {
            let mut edited = bytes.clone();
            edited[at] ^= 0x40;
            fix_checksum(&mut edited);
            assert!(
                matches!(open_err(&edited), VaultError::Tampered),
                "byte {at}"
            );
        }
        // The nonce is authenticated too.
        let mut edited = bytes.clone();
        edited[OFF_NONCE] ^= 1;
        fix_checksum(&mut edited);
        assert!(matches!(open_err(&edited), VaultError::Tampered));
    }

    #[test]
    fn edited_salt_or_kdf_with_a_fixed_checksum_cannot_pass_the_check() {
        // Changing what the key is derived from changes the key: the
        // passphrase check fails (indistinguishable from a wrong passphrase).
        let (_, bytes) = sealed();
        for at in [OFF_SALT, OFF_PASSES + 3, OFF_MEMORY + 3] {
            let mut edited = bytes.clone();
            edited[at] ^= 2; // keeps the parameters valid (1 pass → 3)
            fix_checksum(&mut edited);
            assert!(
                matches!(open_err(&edited), VaultError::WrongPassphrase),
                "byte {at}"
            );
        }
    }

    #[test]
    fn crafted_kdf_parameters_are_refused_before_argon2_runs() {
        let (_, bytes) = sealed();
        for (at, value) in [
            (OFF_MEMORY, u32::MAX),  // 4 TiB of memory
            (OFF_PASSES, 1_000_000), // hours of work
            (OFF_LANES, 1_000),      // more lanes than allowed
            (OFF_PASSES, 0),         // invalid for Argon2
        ] {
            let mut edited = bytes.clone();
            edited[at..at + 4].copy_from_slice(&value.to_be_bytes());
            fix_checksum(&mut edited);
            let started = std::time::Instant::now();
            assert!(
                matches!(open_err(&edited), VaultError::Corrupted),
                "offset {at}"
            );
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
        }
        let mut edited = bytes.clone();
        edited[OFF_KDF] = 2; // an unknown KDF
        fix_checksum(&mut edited);
        assert!(matches!(open_err(&edited), VaultError::Corrupted));
    }

    #[test]
    fn huge_body_length_is_truncation_without_allocating() {
        let (_, mut bytes) = sealed();
        bytes[OFF_BODY_LEN..HEADER_LEN].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(open_err(&bytes), VaultError::Truncated));
        bytes[OFF_BODY_LEN..HEADER_LEN].copy_from_slice(&(u64::MAX - 31).to_be_bytes());
        assert!(matches!(open_err(&bytes), VaultError::Truncated));
    }

    /// Encrypts `plain` as a body under `key` (for inputs `seal` never makes).
    fn reseal(key: &VaultKey, bytes: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut out = bytes[..HEADER_LEN].to_vec();
        let body_len = (plain.len() + TAG_LEN) as u64;
        out[OFF_BODY_LEN..HEADER_LEN].copy_from_slice(&body_len.to_be_bytes());
        let mut body = plain.to_vec();
        let cipher = XChaCha20Poly1305::new((&*key.enc_key).into());
        let (header, _) = out.split_at(HEADER_LEN);
        let tag = cipher
            .encrypt_in_place_detached(
                XNonce::from_slice(&bytes[OFF_NONCE..OFF_CHECK]),
                header,
                &mut body,
            )
            .unwrap();
        out.extend_from_slice(&body);
        out.extend_from_slice(&tag);
        out.extend_from_slice(&[0; CHECKSUM_LEN]);
        fix_checksum(&mut out);
        out
    }

    #[test]
    fn authentic_but_unreadable_contents_are_corruption() {
        let (key, bytes) = sealed();
        // A control: resealing a valid body opens.
        let json = serde_json::to_vec(&small_profile()).unwrap();
        let mut good = (json.len() as u64).to_be_bytes().to_vec();
        good.extend_from_slice(&json);
        assert!(open(&reseal(&key, &bytes, &good), PASS).is_ok());

        let mut bad_json = (5u64).to_be_bytes().to_vec();
        bad_json.extend_from_slice(b"{oops");
        assert!(matches!(
            open_err(&reseal(&key, &bytes, &bad_json)),
            VaultError::Corrupted
        ));

        let mut bad_len = (1_000u64).to_be_bytes().to_vec();
        bad_len.extend_from_slice(&json);
        assert!(matches!(
            open_err(&reseal(&key, &bytes, &bad_len)),
            VaultError::Corrupted
        ));

        // Well-formed JSON that is not a profile (e.g. a field we don't know).
        let alien = br#"{"keys":1}"#;
        let mut not_profile = (alien.len() as u64).to_be_bytes().to_vec();
        not_profile.extend_from_slice(alien);
        assert!(matches!(
            open_err(&reseal(&key, &bytes, &not_profile)),
            VaultError::Corrupted
        ));
    }

    #[test]
    fn each_save_has_a_fresh_nonce_and_the_same_salt() {
        let (key, a) = sealed();
        let b = seal(&key, &small_profile()).unwrap();
        assert_ne!(a[OFF_NONCE..OFF_CHECK], b[OFF_NONCE..OFF_CHECK]);
        assert_eq!(a[OFF_SALT..OFF_NONCE], b[OFF_SALT..OFF_NONCE]);
        assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
    }

    #[test]
    fn the_key_recognises_its_passphrase() {
        let (key, _) = sealed();
        assert!(key.matches(PASS).unwrap());
        assert!(!key.matches(b"nope").unwrap());
    }

    #[test]
    fn header_is_119_bytes_as_documented() {
        assert_eq!(HEADER_LEN, 119);
        assert_eq!(OFF_NONCE, 55);
        assert_eq!(OFF_CHECK, 79);
        assert_eq!(OFF_BODY_LEN, 111);
    }

    #[test]
    fn padding_has_a_floor_and_bounded_overhead() {
        assert_eq!(padded_len(0), MIN_PADDED);
        assert_eq!(padded_len(MIN_PADDED), MIN_PADDED);
        let mut prev = 0;
        for len in (MIN_PADDED..4_000_000).step_by(997) {
            let p = padded_len(len);
            assert!(p >= len, "{len} padded to {p}");
            assert!((p - len) as f64 <= 0.12 * len as f64, "{len} padded to {p}");
            assert!(p >= prev, "padding must not shrink as content grows");
            prev = p;
        }
        // Sizes close together share a bucket.
        assert_eq!(padded_len(1_000_000), padded_len(1_000_000 + 10_000));
    }

    #[test]
    fn kdf_bounds_are_enforced() {
        assert!(KdfParams::new(8, 1, 1).is_ok());
        assert!(KdfParams::new(7, 1, 1).is_err());
        assert!(KdfParams::new(16, 1, 3).is_err()); // < 8 KiB per lane
        assert!(KdfParams::new(64, 0, 1).is_err());
        assert!(KdfParams::new(64, 101, 1).is_err());
        assert!(KdfParams::new(256, 1, 17).is_err());
        assert!(KdfParams::new(KdfParams::MAX_MEMORY_KIB + 1, 1, 1).is_err());
        assert!(KdfParams::new(KdfParams::MAX_MEMORY_KIB, 100, 16).is_ok());
        let d = KdfParams::default();
        assert!(d.memory_kib >= 64 * 1024 && d.passes >= 3);
    }
}
