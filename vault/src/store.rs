//! Profiles on disk: where they live, their names, and the lock that keeps
//! two processes from opening one profile.
//!
//! This module owns the directory layout under the data directory:
//!
//! ```text
//! <base>/profiles/<name>/vault        the encrypted vault (0600)
//! <base>/profiles/<name>/lock         empty; locked while unlocked (0600)
//! <base>/profiles/<name>/tor/state    Arti's state directory (0700)
//! <base>/profiles/<name>/tor/cache    Arti's cache directory (0700)
//! <base>/profile-names-hidden         empty; present if the window hides names
//! ```
//!
//! It must never write anything about a profile outside its vault except
//! the name (the directory's name, readable without unlocking by design),
//! the empty lock file and what Arti itself keeps in `tor/`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::VaultError;
use crate::format::KdfParams;
use crate::profile::Profile;
use crate::vault::{self, Vault};

const PROFILES_DIR: &str = "profiles";
const VAULT_FILE: &str = "vault";
const LOCK_FILE: &str = "lock";
/// Present (empty) when the window should not list profile names.
const NAMES_HIDDEN_FILE: &str = "profile-names-hidden";

/// A valid profile name: 1 to 32 characters, each a letter or digit (any
/// script), a space, `-` or `_`, not starting or ending with a space. So a
/// name can never be a path, a hidden file or `..`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProfileName(String);

impl ProfileName {
    /// Checks `name` ([`VaultError::InvalidProfileName`] if it is not valid).
    pub fn new(name: &str) -> Result<ProfileName, VaultError> {
        let count = name.chars().count();
        let allowed = |c: char| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_';
        let valid = (1..=32).contains(&count)
            && name.chars().all(allowed)
            && !name.starts_with(' ')
            && !name.ends_with(' ');
        if valid {
            Ok(ProfileName(name.to_owned()))
        } else {
            Err(VaultError::InvalidProfileName)
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProfileName({:?})", self.0)
    }
}

impl std::str::FromStr for ProfileName {
    type Err = VaultError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProfileName::new(s)
    }
}

/// Where one profile's files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfilePaths {
    /// The profile's directory.
    pub dir: PathBuf,
    /// The vault file.
    pub vault: PathBuf,
    /// Arti's state directory.
    pub tor_state: PathBuf,
    /// Arti's cache directory.
    pub tor_cache: PathBuf,
}

impl ProfilePaths {
    fn new(dir: PathBuf) -> Self {
        ProfilePaths {
            vault: dir.join(VAULT_FILE),
            tor_state: dir.join("tor").join("state"),
            tor_cache: dir.join("tor").join("cache"),
            dir,
        }
    }
}

/// The exclusive lock on a profile: held while the profile is unlocked, so
/// that no other process (or second window) opens it and overwrites its
/// saves. Released when dropped.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
}

impl ProfileLock {
    fn acquire(dir: &Path) -> Result<ProfileLock, VaultError> {
        let path = dir.join(LOCK_FILE);
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            // On read-only media the profile can still be opened (and
            // locked through a read-only descriptor); saves then fail with
            // `NotWritable`.
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                    File::open(&path)
                }
                _ => Err(e),
            });
        let file = opened.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => VaultError::ProfileNotFound,
            _ => VaultError::write("opening the profile's lock file", e),
        })?;
        match file.try_lock() {
            Ok(()) => Ok(ProfileLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(VaultError::ProfileInUse),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(VaultError::write("locking the profile", e))
            }
        }
    }
}

/// The profiles under one data directory.
#[derive(Clone, Debug)]
pub struct ProfileStore {
    base: PathBuf,
}

/// The platform's data directory for Allium (e.g.
/// `~/.local/share/allium` on Linux), from the `directories` crate.
pub fn default_data_dir() -> Result<PathBuf, VaultError> {
    directories::ProjectDirs::from("org", "Allium", "Allium")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or(VaultError::NoDataDir)
}

/// Creates `dir` and its missing parents with mode 0700.
pub(crate) fn create_private_dir_all(dir: &Path) -> Result<(), VaultError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| VaultError::write("creating a folder for the profile", e))
}

impl ProfileStore {
    /// Profiles under `base` (the app's `--data-dir`). Nothing is created
    /// until a profile is.
    pub fn new(base: impl Into<PathBuf>) -> ProfileStore {
        ProfileStore { base: base.into() }
    }

    /// Profiles under [`default_data_dir`].
    pub fn open_default() -> Result<ProfileStore, VaultError> {
        default_data_dir().map(ProfileStore::new)
    }

    /// The data directory.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    fn profiles_dir(&self) -> PathBuf {
        self.base.join(PROFILES_DIR)
    }

    /// Where the files of profile `name` are (whether or not it exists).
    pub fn paths(&self, name: &ProfileName) -> ProfilePaths {
        ProfilePaths::new(self.profiles_dir().join(name.as_str()))
    }

    /// The names of the existing profiles, sorted, without unlocking any
    /// (nothing else about them can be read without the passphrase).
    pub fn list(&self) -> Result<Vec<ProfileName>, VaultError> {
        let entries = match fs::read_dir(self.profiles_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(VaultError::read("listing the profiles", e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| VaultError::read("listing the profiles", e))?;
            let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|n| ProfileName::new(n).ok())
            else {
                continue;
            };
            if entry.path().join(VAULT_FILE).is_file() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Whether the window should keep profile names off the unlock
    /// screen (the person then unlocks by passphrase alone). The names
    /// stay readable on disk as folder names: this hides them from
    /// someone looking at the screen, not from someone reading the disk.
    pub fn names_hidden(&self) -> bool {
        self.base.join(NAMES_HIDDEN_FILE).is_file()
    }

    /// Sets [`Self::names_hidden`].
    pub fn set_names_hidden(&self, hidden: bool) -> Result<(), VaultError> {
        let marker = self.base.join(NAMES_HIDDEN_FILE);
        if hidden {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.base)
                .map_err(|e| VaultError::write("creating the data directory", e))?;
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&marker)
                .map(drop)
                .map_err(|e| VaultError::write("saving the choice", e))
        } else {
            match fs::remove_file(&marker) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(VaultError::write("saving the choice", e))
                }
                _ => Ok(()),
            }
        }
    }

    /// Creates profile `name` holding `profile`, with the default KDF
    /// parameters, and returns it unlocked. Fails with
    /// [`VaultError::ProfileExists`] if the name is taken.
    pub fn create(
        &self,
        name: &ProfileName,
        passphrase: &str,
        profile: &Profile,
    ) -> Result<UnlockedProfile, VaultError> {
        self.create_with_params(name, passphrase, KdfParams::default(), profile)
    }

    /// Like [`ProfileStore::create`] with explicit KDF parameters (tests use
    /// [`KdfParams::insecure_for_tests`]).
    pub fn create_with_params(
        &self,
        name: &ProfileName,
        passphrase: &str,
        params: KdfParams,
        profile: &Profile,
    ) -> Result<UnlockedProfile, VaultError> {
        let profiles = self.profiles_dir();
        create_private_dir_all(&profiles)?;
        let paths = self.paths(name);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&paths.dir)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => VaultError::ProfileExists,
                _ => VaultError::write("creating the profile's folder", e),
            })?;
        let made = (|| {
            let lock = ProfileLock::acquire(&paths.dir)?;
            create_private_dir_all(&paths.tor_state)?;
            create_private_dir_all(&paths.tor_cache)?;
            let vault = Vault::create(&paths.vault, passphrase, params, profile)?;
            Ok(UnlockedProfile {
                name: name.clone(),
                paths: paths.clone(),
                vault,
                _lock: lock,
            })
        })();
        if made.is_err() {
            // No half-made profile: it would be listed but never open.
            let _ = fs::remove_dir_all(&paths.dir);
        }
        made
    }

    /// Unlocks profile `name`: the handle (holding the profile's lock) and
    /// the profile.
    pub fn unlock(
        &self,
        name: &ProfileName,
        passphrase: &str,
    ) -> Result<(UnlockedProfile, Profile), VaultError> {
        let paths = self.paths(name);
        if !paths.vault.is_file() {
            return Err(VaultError::ProfileNotFound);
        }
        let lock = ProfileLock::acquire(&paths.dir)?;
        // Safe now that we hold the lock: no one else is saving here.
        vault::remove_stale_temp_files(&paths.vault)?;
        let (vault, profile) = Vault::open(&paths.vault, passphrase)?;
        create_private_dir_all(&paths.tor_state)?;
        create_private_dir_all(&paths.tor_cache)?;
        Ok((
            UnlockedProfile {
                name: name.clone(),
                paths,
                vault,
                _lock: lock,
            },
            profile,
        ))
    }

    /// Deletes profile `name` and everything in its folder. Fails with
    /// [`VaultError::ProfileInUse`] while it is unlocked anywhere.
    ///
    /// Every file is overwritten with zeros and synced before the folder
    /// is removed (as far as it can: see `overwrite_all`), so that a plain
    /// disk keeps no readable copy of the current files (Arti's state in
    /// `tor/` is not encrypted). On an SSD, a copy-on-write file
    /// system or under snapshots, the old blocks can survive an overwrite;
    /// what survives of the vault is still ciphertext.
    pub fn delete(&self, name: &ProfileName) -> Result<(), VaultError> {
        let paths = self.paths(name);
        if !paths.dir.is_dir() {
            return Err(VaultError::ProfileNotFound);
        }
        let _lock = ProfileLock::acquire(&paths.dir)?;
        // Best effort: a file that cannot be overwritten is still removed.
        overwrite_all(&paths.dir);
        fs::remove_dir_all(&paths.dir).map_err(|e| VaultError::write("deleting the profile", e))
    }
}

/// Overwrites every regular file under `dir` with zeros, syncing each, as
/// far as it can. Links are not followed, and a file with another hard
/// link (a backup made with `cp -al`, say) is left as it is: zeroing it
/// would destroy the other copy, not this one. Older copies of a file
/// that was replaced by renaming (each save writes a new vault file) are
/// beyond reach.
fn overwrite_all(dir: &Path) {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let zero = |path: &Path| -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).open(path)?;
        let meta = f.metadata()?;
        if meta.nlink() > 1 {
            return Ok(());
        }
        let mut left = meta.len();
        let zeros = [0u8; 64 * 1024];
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            f.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        f.sync_all()
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            overwrite_all(&entry.path());
        } else if kind.is_file() {
            let _ = zero(&entry.path());
        }
    }
}

/// An unlocked profile: its vault handle, its paths, and the lock that
/// keeps every other process out until this is dropped.
#[derive(Debug)]
pub struct UnlockedProfile {
    name: ProfileName,
    paths: ProfilePaths,
    vault: Vault,
    /// Held, never read: dropping it lets the next process in.
    _lock: ProfileLock,
}

impl UnlockedProfile {
    /// The profile's name.
    pub fn name(&self) -> &ProfileName {
        &self.name
    }

    /// Where its files are (Arti's state and cache directories among them).
    pub fn paths(&self) -> &ProfilePaths {
        &self.paths
    }

    /// The vault, for synchronous saves and passphrase changes.
    pub fn vault_mut(&mut self) -> &mut Vault {
        &mut self.vault
    }
}

/// Sets `path`'s mode to 0700 (used for directories we create under a
/// shared parent, where the umask might have been permissive).
pub(crate) fn make_private(path: &Path) -> Result<(), VaultError> {
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(|e| VaultError::write("protecting a folder", e))
}
