//! One vault file through the public API: every field survives, each
//! failure has its own error, passphrase changes are safe.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use allium_vault::{FORMAT_VERSION, HEADER_LEN, KdfParams, MAGIC, Profile, Vault, VaultError};
use common::{full_profile, keys};

const PASS: &str = "violet tractor sings at dawn";

fn weak() -> KdfParams {
    KdfParams::insecure_for_tests()
}

#[test]
fn every_field_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault");
    let profile = full_profile();
    Vault::create(&path, PASS, weak(), &profile).unwrap();
    let (_, opened) = Vault::open(&path, PASS).unwrap();
    assert_eq!(opened, profile);
    // And through a save of a changed profile.
    let (mut vault, mut changed) = Vault::open(&path, PASS).unwrap();
    changed.contacts[0].outbox.pop();
    changed.settings.display_name = "second".into();
    vault.save(&changed).unwrap();
    assert_eq!(Vault::open(&path, PASS).unwrap().1, changed);
}

#[test]
fn default_parameters_are_strong_and_recorded_in_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault");
    let profile = Profile::new(keys("defaults"));
    let vault = Vault::create(&path, PASS, KdfParams::default(), &profile).unwrap();
    assert_eq!(vault.kdf_params(), KdfParams::default());
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes[..8], MAGIC);
    assert_eq!(u16::from_be_bytes([bytes[8], bytes[9]]), FORMAT_VERSION);
    assert_eq!(bytes[10], 1, "KDF id: Argon2id v0x13");
    let memory = u32::from_be_bytes(bytes[11..15].try_into().unwrap());
    let passes = u32::from_be_bytes(bytes[15..19].try_into().unwrap());
    let lanes = u32::from_be_bytes(bytes[19..23].try_into().unwrap());
    assert!(memory >= 64 * 1024 && passes >= 3 && lanes >= 1);
    let (reopened, opened) = Vault::open(&path, PASS).unwrap();
    assert_eq!(opened, profile);
    assert_eq!(reopened.kdf_params(), KdfParams::default());
}

fn created() -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().expect("test fixture");
    let path = dir.path().join("vault");
    Vault::create(&path, PASS, weak(), &full_profile()).expect("test fixture");
    let bytes = fs::read(&path).expect("test fixture");
    (dir, path, bytes)
}

fn open_err(path: &std::path::Path, pass: &str) -> VaultError {
    Vault::open(path, pass)
        .map(|_| ())
        .expect_err("the vault should not have opened")
}

#[test]
fn wrong_passphrase() {
    let (_d, path, _) = created();
    let err = open_err(&path, "violet tractor sings at dusk");
    assert!(matches!(err, VaultError::WrongPassphrase), "{err:?}");
    assert!(err.to_string().contains("passphrase"));
}

#[test]
fn damaged_file_is_corrupted() {
    let (_d, path, mut bytes) = created();
    bytes[HEADER_LEN + 100] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(open_err(&path, PASS), VaultError::Corrupted));
}

#[test]
fn tampered_file_is_tampered() {
    use sha2::Digest;
    let (_d, path, mut bytes) = created();
    bytes[HEADER_LEN + 100] ^= 0x10;
    let n = bytes.len() - 32;
    let sum = sha2::Sha256::digest(&bytes[..n]);
    bytes[n..].copy_from_slice(&sum);
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(open_err(&path, PASS), VaultError::Tampered));
}

#[test]
fn newer_format_version() {
    let (_d, path, mut bytes) = created();
    bytes[8..10].copy_from_slice(&(FORMAT_VERSION + 1).to_be_bytes());
    fs::write(&path, &bytes).unwrap();
    let err = open_err(&path, PASS);
    assert!(
        matches!(err, VaultError::NewerVersion { found, supported } if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION),
        "{err:?}"
    );
}

#[test]
fn truncated_file() {
    let (_d, path, bytes) = created();
    for len in [0, 5, 9, 60, HEADER_LEN, bytes.len() / 2, bytes.len() - 1] {
        fs::write(&path, &bytes[..len]).unwrap();
        let err = open_err(&path, PASS);
        assert!(
            matches!(err, VaultError::Truncated),
            "length {len}: {err:?}"
        );
    }
}

#[test]
fn missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = open_err(&dir.path().join("nothing"), PASS);
    assert!(matches!(err, VaultError::ProfileNotFound), "{err:?}");
}

#[test]
fn create_never_replaces_an_existing_file() {
    let (_d, path, bytes) = created();
    let err = Vault::create(&path, "other", weak(), &Profile::new(keys("x"))).unwrap_err();
    assert!(matches!(err, VaultError::ProfileExists), "{err:?}");
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(
        fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1,
        "no temp file left"
    );
}

#[test]
fn invalid_kdf_parameters_are_refused_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let bad = KdfParams {
        memory_kib: 4,
        passes: 1,
        lanes: 1,
    };
    let err = Vault::create(dir.path().join("v"), PASS, bad, &full_profile()).unwrap_err();
    assert!(matches!(err, VaultError::InvalidKdfParams), "{err:?}");
    assert!(matches!(
        KdfParams::new(8, 0, 1),
        Err(VaultError::InvalidKdfParams)
    ));
}

#[test]
fn vault_file_is_private() {
    let (_d, path, _) = created();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn passphrase_change_re_encrypts_under_a_new_salt() {
    let (_d, path, before) = created();
    let (mut vault, mut profile) = Vault::open(&path, PASS).unwrap();
    profile.settings.display_name = "after the change".into();

    let err = vault
        .change_passphrase("not it", "new one", &profile)
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongPassphrase));
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "a refused change writes nothing"
    );

    vault
        .change_passphrase(PASS, "a brand new passphrase", &profile)
        .unwrap();
    let after = fs::read(&path).unwrap();
    assert_ne!(before[23..55], after[23..55], "the salt changes");
    assert!(matches!(open_err(&path, PASS), VaultError::WrongPassphrase));
    let (_, opened) = Vault::open(&path, "a brand new passphrase").unwrap();
    assert_eq!(opened, profile);

    // The handle now saves under the new key.
    profile.settings.display_name = "saved later".into();
    vault.save(&profile).unwrap();
    assert_eq!(
        Vault::open(&path, "a brand new passphrase").unwrap().1,
        profile
    );
}

#[test]
fn rekey_raises_the_kdf_parameters() {
    let (_d, path, _) = created();
    let (mut vault, profile) = Vault::open(&path, PASS).unwrap();
    let stronger = KdfParams::new(64, 2, 1).unwrap();
    vault.rekey(PASS, PASS, stronger, &profile).unwrap();
    assert_eq!(vault.kdf_params(), stronger);
    let (reopened, opened) = Vault::open(&path, PASS).unwrap();
    assert_eq!(reopened.kdf_params(), stronger);
    assert_eq!(opened, profile);
}

#[test]
fn file_size_does_not_count_small_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut sizes = Vec::new();
    for contacts in [0usize, 1, 3] {
        let mut p = full_profile();
        p.contacts.truncate(contacts);
        let path = dir.path().join(format!("v{contacts}"));
        Vault::create(&path, PASS, weak(), &p).unwrap();
        sizes.push(fs::metadata(&path).unwrap().len());
    }
    assert!(sizes.iter().all(|s| *s == sizes[0]), "{sizes:?}");
}
