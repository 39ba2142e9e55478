//! One vault file on disk, and the crash-safe way it is replaced.
//!
//! This module owns the file operations: reading a vault, and writing one
//! by temp file, fsync, rename, fsync of the directory, so that a crash at
//! any point leaves either the old or the new vault. It must never write a
//! vault file in place, never leave a temporary file behind after an error
//! it saw, and never write plaintext (it only writes what `format::seal`
//! returns).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::VaultError;
use crate::format::{self, KdfParams, VaultKey};
use crate::profile::Profile;

/// An unlocked vault file: where it is and the key it is sealed with. The
/// key is wiped from memory when this is dropped.
///
/// A `Vault` does not hold the profile; the caller does, and hands a
/// snapshot to [`Vault::save`]. (Saving in the background, coalesced, is the
/// engine's job: it calls `save` on a blocking thread.)
pub struct Vault {
    path: PathBuf,
    key: VaultKey,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .field("kdf", &self.key.params())
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Creates a new vault file at `path` holding `profile`, sealed under a
    /// key derived from `passphrase` with `params`. Fails with
    /// [`VaultError::ProfileExists`] if anything is already at `path`.
    pub fn create(
        path: impl Into<PathBuf>,
        passphrase: &str,
        params: KdfParams,
        profile: &Profile,
    ) -> Result<Vault, VaultError> {
        let path = path.into();
        let key = VaultKey::generate(passphrase.as_bytes(), params)?;
        let sealed = format::seal(&key, profile)?;
        write_atomically(&path, &sealed, Placement::CreateNew)?;
        Ok(Vault { path, key })
    }

    /// Opens the vault at `path` with `passphrase`: the handle and the
    /// profile it holds.
    pub fn open(
        path: impl Into<PathBuf>,
        passphrase: &str,
    ) -> Result<(Vault, Profile), VaultError> {
        let path = path.into();
        let bytes = fs::read(&path).map_err(|e| VaultError::read("reading the profile file", e))?;
        let (key, profile) = format::open(&bytes, passphrase.as_bytes())?;
        Ok((Vault { path, key }, profile))
    }

    /// Replaces the vault with `profile` (a fresh nonce, the same key).
    /// On error the previous save is untouched.
    pub fn save(&mut self, profile: &Profile) -> Result<(), VaultError> {
        let sealed = format::seal(&self.key, profile)?;
        write_atomically(&self.path, &sealed, Placement::Replace)
    }

    /// Re-encrypts the vault under `new_passphrase`, with a new salt and
    /// the vault's current KDF parameters, writing `profile` (the current
    /// state). `current_passphrase` must be right
    /// ([`VaultError::WrongPassphrase`] otherwise). If writing fails, the
    /// file and this handle keep the old passphrase.
    pub fn change_passphrase(
        &mut self,
        current_passphrase: &str,
        new_passphrase: &str,
        profile: &Profile,
    ) -> Result<(), VaultError> {
        let params = self.key.params();
        self.rekey(current_passphrase, new_passphrase, params, profile)
    }

    /// Like [`Vault::change_passphrase`], also setting new KDF parameters
    /// (to raise them as machines get faster). The passphrase may be the
    /// same.
    pub fn rekey(
        &mut self,
        current_passphrase: &str,
        new_passphrase: &str,
        params: KdfParams,
        profile: &Profile,
    ) -> Result<(), VaultError> {
        if !self.key.matches(current_passphrase.as_bytes())? {
            return Err(VaultError::WrongPassphrase);
        }
        let key = VaultKey::generate(new_passphrase.as_bytes(), params)?;
        let sealed = format::seal(&key, profile)?;
        write_atomically(&self.path, &sealed, Placement::Replace)?;
        // Only now: a failed write leaves the old key matching the old file.
        self.key = key;
        Ok(())
    }

    /// The KDF parameters this vault is sealed with.
    pub fn kdf_params(&self) -> KdfParams {
        self.key.params()
    }

    /// The vault file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether a write may replace an existing file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    Replace,
    CreateNew,
}

/// The prefix of temporary files next to `path` (`.<name>.tmp-`).
fn temp_prefix(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    Some(format!(".{name}.tmp-"))
}

/// Writes `bytes` to `path` so that a crash at any moment leaves either the
/// old file or the new one: temp file (0600) in the same directory, write,
/// fsync, rename over (or hard-link, for a new file, which fails instead of
/// replacing), fsync the directory. On error the temp file is removed.
fn write_atomically(path: &Path, bytes: &[u8], placement: Placement) -> Result<(), VaultError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = temp_prefix(path).ok_or(VaultError::ProfileNotFound)?;
    let temp = dir.join(format!("{prefix}{}", format::random_hex(8)?));

    let result = write_and_place(&temp, path, bytes, placement);
    if result.is_err() {
        // Best effort: a failed removal must not hide the real error.
        let _ = fs::remove_file(&temp);
        return result;
    }
    // After the rename, a failed directory fsync means the new vault may
    // not survive a power cut; the old-or-new guarantee still holds.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| VaultError::write("making the saved profile durable", e))
}

fn write_and_place(
    temp: &Path,
    path: &Path,
    bytes: &[u8],
    placement: Placement,
) -> Result<(), VaultError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(|e| VaultError::write("creating a temporary file for the profile", e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| VaultError::write("writing the profile", e))?;
    drop(file);
    match placement {
        Placement::Replace => {
            fs::rename(temp, path).map_err(|e| VaultError::write("replacing the profile file", e))
        }
        Placement::CreateNew => {
            fs::hard_link(temp, path).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => VaultError::ProfileExists,
                _ => VaultError::write("creating the profile file", e),
            })?;
            fs::remove_file(temp).map_err(|e| VaultError::write("creating the profile file", e))
        }
    }
}

/// Removes temporary files a crash left beside `path`. Only call this while
/// no other process can be saving to `path` (the profile lock is held).
pub(crate) fn remove_stale_temp_files(path: &Path) -> Result<(), VaultError> {
    let (Some(dir), Some(prefix)) = (path.parent(), temp_prefix(path)) else {
        return Ok(());
    };
    let entries =
        fs::read_dir(dir).map_err(|e| VaultError::read("listing the profile folder", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| VaultError::read("listing the profile folder", e))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix))
        {
            fs::remove_file(entry.path())
                .map_err(|e| VaultError::write("removing an unfinished save", e))?;
        }
    }
    Ok(())
}
