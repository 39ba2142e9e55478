//! The one error type of this crate.
//!
//! Every failure a person can hit while opening or saving a profile has its
//! own variant, so the app can branch on it, and a `Display` message written
//! for the person in front of the screen, not for a developer. Messages never
//! contain passphrases, keys, addresses, nicknames or message text.

use std::io;
use std::sync::Arc;

/// Why the vault could not do what was asked.
///
/// `Clone` so that the background saver can both keep the last error for a
/// status query and return it from `flush`.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The passphrase does not unlock this profile. Typically a typo, the
    /// caps-lock key, or a different keyboard layout. Nothing was changed.
    #[error(
        "that passphrase does not unlock this profile; check it and try again (nothing was changed)"
    )]
    WrongPassphrase,

    /// The file's checksum does not match its contents, its fixed marker is
    /// missing, its inner structure is invalid, or it has extra bytes at the
    /// end. Typically accidental damage (a failing disk, an interrupted copy
    /// made by another program) or a file that is not an Allium profile.
    #[error(
        "the profile file is damaged and cannot be read; restore it from a backup if you have one"
    )]
    Corrupted,

    /// The file is internally consistent (its checksum matches) and the
    /// passphrase is right, but the encrypted contents fail authentication:
    /// someone or something rewrote the file without knowing the key. Treat
    /// the computer as possibly compromised.
    #[error(
        "the profile file was altered by something other than Allium and was not trusted; \
         the computer may be compromised — restore the profile from a backup on a machine you trust"
    )]
    Tampered,

    /// The file was written by a newer version of Allium, in a layout this
    /// version does not know.
    #[error(
        "this profile was saved by a newer version of Allium (file format {found}, this version reads up to {supported}); \
         update Allium to open it"
    )]
    NewerVersion {
        /// The format version in the file.
        found: u16,
        /// The newest format version this build reads.
        supported: u16,
    },

    /// The file ends before its own header says it should: it was cut short
    /// (an incomplete copy or download, or a full disk while another program
    /// copied it). Allium's own saves never leave a file like this.
    #[error(
        "the profile file is incomplete (cut short); restore it from a backup or copy it again"
    )]
    Truncated,

    /// The disk (or the user's quota) is full. A save that fails this way
    /// leaves the previously saved profile exactly as it was.
    #[error(
        "the disk is full; free some space and Allium will save again — your previous save is intact"
    )]
    DiskFull,

    /// The profile's folder cannot be written: a read-only disk or mount, or
    /// missing permissions. The previously saved profile is untouched.
    #[error(
        "Allium cannot write to the profile's folder (the disk is read-only or permission is denied); \
         your previous save is intact"
    )]
    NotWritable,

    /// Any other failure of the operating system while reading or writing.
    #[error("the operating system reported an error while {doing}: {source}")]
    Io {
        /// What Allium was doing, e.g. "reading the profile file".
        doing: &'static str,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },

    /// No profile (or vault file) exists under that name or path.
    #[error("there is no profile with that name")]
    ProfileNotFound,

    /// A profile with that name already exists; creating it again would
    /// destroy it.
    #[error("a profile with that name already exists; choose another name")]
    ProfileExists,

    /// The profile is unlocked by another Allium process (or another part of
    /// this one).
    #[error("this profile is already open in another Allium window")]
    ProfileInUse,

    /// A profile name outside the allowed set (see `ProfileName`).
    #[error(
        "a profile name must be 1 to 32 letters, digits, spaces, '-' or '_', \
         and must not start or end with a space"
    )]
    InvalidProfileName,

    /// Key-derivation parameters outside the accepted bounds were asked for
    /// when creating a vault.
    #[error("these key-derivation settings are outside what Allium accepts")]
    InvalidKdfParams,

    /// The system does not say where applications keep their data (no home
    /// directory); pass a data directory explicitly.
    #[error("Allium cannot find a place to keep profiles on this system; start it with --data-dir")]
    NoDataDir,
}

impl VaultError {
    /// Wraps an error from reading: a missing file is a missing profile.
    pub(crate) fn read(doing: &'static str, err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::NotFound => VaultError::ProfileNotFound,
            _ => VaultError::Io {
                doing,
                source: Arc::new(err),
            },
        }
    }

    /// Wraps an error from writing, sorting out the kinds a person can act
    /// on (disk full, read-only).
    pub(crate) fn write(doing: &'static str, err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => VaultError::DiskFull,
            io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied => {
                VaultError::NotWritable
            }
            _ => VaultError::Io {
                doing,
                source: Arc::new(err),
            },
        }
    }
}
